package tlsaudit

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iotcop/iotcop/internal/daemontest"
)

func weakIDsOf(r *Result) []uint16 {
	var out []uint16
	for _, w := range r.WeakSuites {
		out = append(out, w.ID)
	}
	return out
}

func sorted(ids ...uint16) []uint16 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

func TestAuditScriptedServers(t *testing.T) {
	t.Parallel()
	cert, _ := makeCert(t, certSpec{rsaBits: 1024})
	legacySuites := []uint16{0x002F, 0x0005, 0x0003, 0x0001, 0x000A, 0x0018}
	tests := []struct {
		name         string
		srv          *fakeServer
		budget       int
		wantVersions []Version
		wantWeak     []uint16
		wantComplete bool
		wantCert     bool
	}{
		{
			name:         "SSLv3 and TLS 1.0 with RC4, export, NULL, 3DES, anonymous",
			srv:          &fakeServer{versions: []Version{SSL30, TLS10}, suites: legacySuites, cert: cert.Raw},
			wantVersions: []Version{SSL30, TLS10},
			wantWeak:     sorted(0x0005, 0x0003, 0x0001, 0x000A, 0x0018),
			wantComplete: true, wantCert: true,
		},
		{
			name:         "refusal by closing the connection",
			srv:          &fakeServer{versions: []Version{SSL30, TLS10}, suites: legacySuites, cert: cert.Raw, closeOnRefuse: true},
			wantVersions: []Version{SSL30, TLS10},
			wantWeak:     sorted(0x0005, 0x0003, 0x0001, 0x000A, 0x0018),
			wantComplete: true, wantCert: true,
		},
		{
			name:         "weak suite preferred by the server is found by the version probe",
			srv:          &fakeServer{versions: []Version{TLS12}, suites: []uint16{0x0004, 0xC02F}, cert: cert.Raw},
			wantVersions: []Version{TLS12},
			wantWeak:     []uint16{0x0004},
			wantComplete: true, wantCert: true,
		},
		{
			name:         "TLS 1.2 and 1.3, strong suites only",
			srv:          &fakeServer{versions: []Version{TLS12, TLS13}, suites: []uint16{0x1301, 0xC02F, 0xC030}, cert: cert.Raw},
			wantVersions: []Version{TLS12, TLS13},
			wantComplete: true, wantCert: true,
		},
		{
			name:         "budget spent: partial, never more connections",
			srv:          &fakeServer{versions: []Version{SSL30, TLS10}, suites: legacySuites, cert: cert.Raw},
			budget:       8,
			wantVersions: []Version{SSL30, TLS10},
			wantWeak:     sorted(0x0005, 0x0003, 0x0001),
			wantComplete: false, wantCert: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := tc.srv.start(t)
			p := Prober{Timeout: 2 * time.Second, MaxConnections: tc.budget}
			res, err := p.Audit(context.Background(), addr)
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Accepted(); !slices.Equal(got, tc.wantVersions) {
				t.Errorf("versions = %v, want %v", got, tc.wantVersions)
			}
			if got := weakIDsOf(res); !slices.Equal(got, tc.wantWeak) {
				t.Errorf("weak suites = %04x, want %04x", got, tc.wantWeak)
			}
			for _, w := range res.WeakSuites {
				if w.Weakness == 0 || len(w.Versions) == 0 {
					t.Errorf("weak suite %+v lacks weakness or versions", w)
				}
			}
			if res.Complete != tc.wantComplete {
				t.Errorf("complete = %v, want %v (notes %v)", res.Complete, tc.wantComplete, res.Notes)
			}
			if (res.Leaf() != nil) != tc.wantCert {
				t.Errorf("leaf = %v, want present=%v (%v)", res.Leaf(), tc.wantCert, res.CertErr)
			}
			budget := tc.budget
			if budget == 0 {
				budget = DefaultMaxConnections
			}
			if res.Connections > budget || tc.srv.count() > budget {
				t.Errorf("connections = %d (server saw %d), budget %d", res.Connections, tc.srv.count(), budget)
			}
			if res.Connections != tc.srv.count() {
				t.Errorf("result counts %d connections, server saw %d hellos", res.Connections, tc.srv.count())
			}
		})
	}
}

func TestAuditScriptedVersionsPerSuite(t *testing.T) {
	t.Parallel()
	srv := &fakeServer{versions: []Version{SSL30, TLS10}, suites: []uint16{0x0005, 0x000A}}
	res, err := Prober{Timeout: 2 * time.Second}.Audit(context.Background(), srv.start(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range res.WeakSuites {
		if !slices.Equal(w.Versions, []Version{SSL30, TLS10}) {
			t.Errorf("%s versions = %v, want SSLv3 and TLSv1.0", w.Name, w.Versions)
		}
	}
	// No certificate in the flight: the crypto/tls fallback fails against
	// this scripted server and says so.
	if res.Leaf() != nil || res.CertErr == nil {
		t.Errorf("leaf = %v err = %v, want none with an error", res.Leaf(), res.CertErr)
	}
}

// goServer runs a crypto/tls server with cfg.
func goServer(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", net.JoinHostPort(daemontest.Addr(), "0"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(2 * time.Second))
				_ = c.(*tls.Conn).Handshake()
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestAuditGoServers(t *testing.T) {
	t.Parallel()
	cert, key := makeCert(t, certSpec{ips: []string{"127.0.0.1"}})
	tests := []struct {
		name         string
		cfg          *tls.Config
		wantVersions []Version
		wantWeak     []uint16
	}{
		{"default (TLS 1.2+)", &tls.Config{}, []Version{TLS12, TLS13}, nil},
		{"TLS 1.3 only: certificate from a real handshake", &tls.Config{MinVersion: tls.VersionTLS13}, []Version{TLS13}, nil},
		{"TLS 1.0 with 3DES and RC4", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_RC4_128_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
		}}, []Version{TLS10, TLS11, TLS12}, []uint16{0x000A, 0xC011}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.cfg.Certificates = []tls.Certificate{tlsCert(cert, key)}
			addr := goServer(t, tc.cfg)
			res, err := Prober{Timeout: 2 * time.Second}.Audit(context.Background(), addr)
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Accepted(); !slices.Equal(got, tc.wantVersions) {
				t.Errorf("versions = %v, want %v", got, tc.wantVersions)
			}
			if got := weakIDsOf(res); !slices.Equal(got, tc.wantWeak) {
				t.Errorf("weak suites = %04x, want %04x", got, tc.wantWeak)
			}
			if res.Leaf() == nil || !res.Leaf().Equal(cert) {
				t.Errorf("leaf is not the served certificate (err %v)", res.CertErr)
			}
			if !res.Complete {
				t.Errorf("incomplete: %v", res.Notes)
			}
		})
	}
}

// hostile starts a listener whose every connection is handled by fn.
func hostile(t *testing.T, fn func(net.Conn)) string {
	t.Helper()
	srv := daemontest.ServeTCP(t, "", 0, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		fn(c)
	})
	return net.JoinHostPort(srv.Host, strconv.Itoa(srv.Port))
}

func TestAuditHostilePeers(t *testing.T) {
	t.Parallel()
	readHello := func(c net.Conn) { _, _ = c.Read(make([]byte, 4096)) }
	tests := []struct {
		name    string
		fn      func(net.Conn)
		wantErr string
	}{
		{"garbage", func(c net.Conn) { readHello(c); _, _ = c.Write([]byte("\x00\xff garbage \x13\x37")) }, "does not speak TLS"},
		{"http", func(c net.Conn) { readHello(c); _, _ = io.WriteString(c, "HTTP/1.0 400 Bad Request\r\n\r\n") }, "does not speak TLS"},
		{"huge record length", func(c net.Conn) { readHello(c); _, _ = c.Write([]byte{22, 3, 3, 0xFF, 0xFF}) }, "record length"},
		{"endless stream", func(c net.Conn) {
			readHello(c)
			rec := []byte{22, 3, 3, 0x40, 0x00}
			rec = append(rec, make([]byte, 0x4000)...)
			rec[5] = 2 // a ServerHello announcing 16 MB that never ends
			rec[6], rec[7], rec[8] = 0xFF, 0xFF, 0xFF
			_, _ = c.Write(rec)
			chunk := append([]byte{22, 3, 3, 0x40, 0x00}, make([]byte, 0x4000)...)
			for {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}, "no probe was answered"},
		{"silent", func(c net.Conn) { readHello(c); time.Sleep(2 * time.Second) }, "no probe was answered"},
		{"slow drip", func(c net.Conn) {
			readHello(c)
			for _, b := range serverFlight(TLS12, 0xC02F, nil, false) {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}, "no probe was answered"},
		{"immediate close", func(c net.Conn) {}, "no probe was answered"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := hostile(t, tc.fn)
			res, err := Prober{Timeout: 400 * time.Millisecond}.Audit(context.Background(), addr)
			if tc.name == "immediate close" {
				// Closing at once is how some stacks refuse every hello:
				// an answer, not an error, and nothing accepted.
				if err != nil {
					t.Fatal(err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if res == nil {
				t.Fatal("nil result")
			}
			if got := res.Accepted(); len(got) != 0 {
				t.Errorf("hostile peer counted as accepting %v", got)
			}
			if len(res.WeakSuites) != 0 {
				t.Errorf("hostile peer counted as accepting suites %v", res.WeakSuites)
			}
			if res.Connections > maxProbeFailures+1 && tc.name != "immediate close" {
				t.Errorf("kept probing a hostile peer: %d connections", res.Connections)
			}
		})
	}
}

func TestAuditClosedPortAndCancel(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", net.JoinHostPort(daemontest.Addr(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	res, err := Prober{Timeout: time.Second}.Audit(context.Background(), addr)
	if err == nil || res.Connections != 1 {
		t.Errorf("closed port: err = %v after %d connections, want an error after 1", err, res.Connections)
	}

	silent := hostile(t, func(c net.Conn) { time.Sleep(3 * time.Second) })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Prober{Timeout: 5 * time.Second}.Audit(ctx, silent)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled audit: err = %v, want context.Canceled", err)
	}
}
