package fingerprint

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/proto"
)

// greeter is a server-first test identifier: it matches a greeting prefix.
type greeter struct{ name, prefix string }

func (g greeter) Name() string          { return g.name }
func (g greeter) Transport() string     { return "tcp" }
func (g greeter) PortPriority(int) bool { return false }
func (g greeter) ServerFirst() bool     { return true }
func (g greeter) Identify(_ context.Context, _ net.Conn, banner []byte, _ proto.Endpoint) (*proto.Identity, error) {
	if !bytes.HasPrefix(banner, []byte(g.prefix)) {
		return nil, proto.ErrNotThisProtocol
	}
	return &proto.Identity{Protocol: g.name, Product: strings.TrimSpace(string(banner[len(g.prefix):]))}, nil
}

// httpID is a client-first test identifier speaking real HTTP.
type httpID struct{}

func (httpID) Name() string            { return "http" }
func (httpID) Transport() string       { return "tcp" }
func (httpID) PortPriority(p int) bool { return p == 80 || p == 443 }
func (httpID) ServerFirst() bool       { return false }
func (httpID) Identify(_ context.Context, c net.Conn, _ []byte, ep proto.Endpoint) (*proto.Identity, error) {
	if _, err := c.Write([]byte("GET / HTTP/1.0\r\nHost: x\r\n\r\n")); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, proto.ErrNotThisProtocol
	}
	resp.Body.Close()
	return &proto.Identity{Protocol: "http", Product: resp.Header.Get("Server")}, nil
}

func listen(t *testing.T, serve func(net.Conn)) (string, int) {
	t.Helper()
	srv := daemontest.ServeTCP(t, "", 0, serve)
	return srv.Host, srv.Port
}

func TestIdentify(t *testing.T) {
	eng := New([]proto.Identifier{greeter{"ftp", "220 "}, greeter{"ssh", "SSH-2.0-"}, httpID{}}, Options{BannerWait: 300 * time.Millisecond})

	sshHost, sshPort := listen(t, func(c net.Conn) { c.Write([]byte("SSH-2.0-dropbear_2022.83\r\n")); time.Sleep(time.Second) })
	junkHost, junkPort := listen(t, func(c net.Conn) { c.Write([]byte("\x00\x01hello?")); time.Sleep(time.Second) })
	silentHost, silentPort := listen(t, func(c net.Conn) { time.Sleep(2 * time.Second) })

	web := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "lighttpd/1.4.69")
	}))
	web.Listener.Close()
	ln, _ := net.Listen("tcp", daemontest.Addr()+":0")
	web.Listener = ln
	web.StartTLS()
	defer web.Close()
	tlsAddr := ln.Addr().(*net.TCPAddr)

	tests := []struct {
		name              string
		host              string
		port              int
		wantProto, wantPr string
		wantTLS           bool
		wantBanner        string
	}{
		{"ssh on odd port", sshHost, sshPort, "ssh", "dropbear_2022.83", false, ""},
		{"https on odd port", tlsAddr.IP.String(), tlsAddr.Port, "http", "lighttpd/1.4.69", true, ""},
		{"unknown greeting kept", junkHost, junkPort, "unknown", "", false, `\x00\x01hello?`},
		{"silent", silentHost, silentPort, "unknown", "", false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ep := proto.Endpoint{Host: tc.host, Port: tc.port, Transport: "tcp", Timeout: 500 * time.Millisecond}
			id := eng.Identify(context.Background(), &ep, nil)
			if id.Protocol != tc.wantProto || id.Product != tc.wantPr || id.TLS != tc.wantTLS || ep.TLS != tc.wantTLS {
				t.Fatalf("got %+v (ep.TLS=%v), want %s %q tls=%v", id, ep.TLS, tc.wantProto, tc.wantPr, tc.wantTLS)
			}
			if tc.wantBanner != "" && id.Banner != tc.wantBanner {
				t.Fatalf("banner %q want %q", id.Banner, tc.wantBanner)
			}
		})
	}
}
