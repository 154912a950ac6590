package ssdp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/proto"
)

const deviceXML = `<?xml version="1.0" encoding="ISO-8859-1"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
 <specVersion><major>1</major><minor>1</minor></specVersion>
 <device>
  <deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
  <friendlyName>Living Room Router</friendlyName>
  <manufacturer>ACME Networks</manufacturer>
  <manufacturerURL>http://acme.example/</manufacturerURL>
  <modelName>AR-500</modelName>
  <modelNumber>500v2</modelNumber>
  <serialNumber>SN123456</serialNumber>
  <UDN>uuid:abc</UDN>
 </device>
</root>`

// descriptionServer serves deviceXML on host and counts requests.
func descriptionServer(t *testing.T, host string, hits *atomic.Int32) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/rootDesc.xml":
			fmt.Fprint(w, deviceXML)
		case "/huge.xml":
			fmt.Fprint(w, "<root><device><manufacturer>")
			for range 1 << 12 {
				fmt.Fprint(w, strings.Repeat("A", 1024))
			}
		case "/redirect.xml":
			http.Redirect(w, r, "http://127.0.0.1:9/x", http.StatusFound)
		}
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// responder answers M-SEARCH with replies built from the request source.
func responder(t *testing.T, host string, replies func() []string) proto.Endpoint {
	t.Helper()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if !strings.HasPrefix(string(buf[:n]), "M-SEARCH * HTTP/1.1\r\n") || !strings.Contains(string(buf[:n]), "ST: ssdp:all") {
				continue
			}
			for _, r := range replies() {
				_, _ = pc.WriteTo([]byte(r), from)
			}
		}
	}()
	a := pc.LocalAddr().(*net.UDPAddr)
	return proto.Endpoint{Host: a.IP.String(), Port: a.Port, Transport: "udp", Timeout: 600 * time.Millisecond}
}

func answer(server, location, st string) string {
	return "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: " + st + "\r\nUSN: uuid:abc::" + st +
		"\r\nEXT:\r\nSERVER: " + server + "\r\nLOCATION: " + location + "\r\n\r\n"
}

func TestResponders(t *testing.T) {
	t.Parallel()
	const server = "Linux/5.x UPnP/1.1 MiniUPnPd/2.3.3"
	tests := []struct {
		name         string
		path         string // description path on the device host
		otherHost    bool   // LOCATION on another loopback address
		replies      func(loc string) []string
		wantIdentify error
		wantInfo     map[string]string
		wantVendor   string
		wantFetch    bool
	}{
		{
			name: "router with description",
			path: "/rootDesc.xml",
			replies: func(loc string) []string {
				return []string{
					answer(server, loc, "upnp:rootdevice"),
					answer(server, loc, "urn:schemas-upnp-org:device:InternetGatewayDevice:1"),
				}
			},
			wantInfo: map[string]string{
				"server":           server,
				"search_targets":   "upnp:rootdevice,urn:schemas-upnp-org:device:InternetGatewayDevice:1",
				"manufacturer":     "ACME Networks",
				"manufacturer_url": "http://acme.example/",
				"model_name":       "AR-500",
				"model_number":     "500v2",
				"serial_number":    "SN123456",
				"friendly_name":    "Living Room Router",
			},
			wantVendor: "acme networks",
			wantFetch:  true,
		},
		{
			name:      "location on another host is not fetched",
			path:      "/rootDesc.xml",
			otherHost: true,
			replies:   func(loc string) []string { return []string{answer(server, loc, "upnp:rootdevice")} },
			wantInfo:  map[string]string{"server": server},
		},
		{
			name:      "huge description is capped",
			path:      "/huge.xml",
			replies:   func(loc string) []string { return []string{answer(server, loc, "upnp:rootdevice")} },
			wantInfo:  map[string]string{"server": server},
			wantFetch: true,
		},
		{
			name:      "redirect is not followed",
			path:      "/redirect.xml",
			replies:   func(loc string) []string { return []string{answer(server, loc, "upnp:rootdevice")} },
			wantInfo:  map[string]string{"server": server},
			wantFetch: true,
		},
		{
			name:         "silent",
			replies:      func(string) []string { return nil },
			wantIdentify: proto.ErrNotThisProtocol,
		},
		{
			name: "not ssdp",
			replies: func(string) []string {
				return []string{"HTTP/1.1 400 Bad Request\r\nServer: lighttpd\r\n\r\n", "\x00\x01garbage", "SSH-2.0-x\r\n"}
			},
			wantIdentify: proto.ErrNotThisProtocol,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			host := daemontest.Addr()
			descHost := host
			if tt.otherHost {
				descHost = daemontest.Addr()
			}
			var hits atomic.Int32
			loc := "http://" + descriptionServer(t, descHost, &hits) + tt.path
			ep := responder(t, host, func() []string { return tt.replies(loc) })
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			conn, err := ep.Connect(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			id, err := New().Identify(ctx, conn, nil, ep)
			if !errors.Is(err, tt.wantIdentify) {
				t.Fatalf("Identify err = %v, want %v", err, tt.wantIdentify)
			}
			if err != nil {
				return
			}
			if id.Protocol != "ssdp" || id.Product != "MiniUPnPd" || id.Version != "2.3.3" {
				t.Errorf("identity %q %q %q", id.Protocol, id.Product, id.Version)
			}
			for k, want := range tt.wantInfo {
				if got := id.Info[k]; got != want {
					t.Errorf("Info[%s] = %q, want %q", k, got, want)
				}
			}
			if id.Vendor != tt.wantVendor {
				t.Errorf("Vendor = %q, want %q", id.Vendor, tt.wantVendor)
			}
			if got := hits.Load() > 0; got != tt.wantFetch {
				t.Errorf("description fetched = %v, want %v", got, tt.wantFetch)
			}
			if tt.wantVendor == "" {
				if id.Info["manufacturer"] != "" {
					t.Errorf("manufacturer %q from a description that should not have been read", id.Info["manufacturer"])
				}
				if id.Info["description_error"] == "" {
					t.Error("no description_error for an unread description")
				}
			}
		})
	}
}

func TestProductFromServer(t *testing.T) {
	tests := []struct{ in, product, version string }{
		{"Linux/5.x UPnP/1.1 MiniUPnPd/2.3.3", "MiniUPnPd", "2.3.3"},
		{"Linux/3.14.0 UPnP/1.0 IpBridge/1.26.0", "IpBridge", "1.26.0"},
		{"Linux, UPnP/1.0, Portable SDK for UPnP devices/1.6.19", "Portable SDK for UPnP devices", "1.6.19"},
		{"Microsoft-Windows/10.0 UPnP/1.0 UPnP-Device-Host/1.0", "UPnP-Device-Host", "1.0"},
		{"UPnP/1.0", "", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		p, v := productFromServer(tt.in)
		if p != tt.product || v != tt.version {
			t.Errorf("productFromServer(%q) = %q %q, want %q %q", tt.in, p, v, tt.product, tt.version)
		}
	}
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr bool
	}{
		{name: "crlf", in: "HTTP/1.1 200 OK\r\nST: a\r\nLocation: http://x/\r\nst: dup\r\n\r\n", want: map[string]string{"st": "a", "location": "http://x/"}},
		{name: "bare lf", in: "HTTP/1.0 200 OK\nSERVER: s\n\n", want: map[string]string{"server": "s"}},
		{name: "request not response", in: "M-SEARCH * HTTP/1.1\r\n\r\n", wantErr: true},
		{name: "bad code", in: "HTTP/1.1 2x0 OK\r\n\r\n", wantErr: true},
		{name: "header without colon", in: "HTTP/1.1 200 OK\r\nbogus\r\n\r\n", wantErr: true},
		{name: "too many headers", in: "HTTP/1.1 200 OK\r\n" + strings.Repeat("A: b\r\n", 65), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseResponse([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil {
				if diff := cmp.Diff(tt.want, r.Headers); diff != "" {
					t.Errorf("headers (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// FuzzParseResponse checks the HTTP-over-UDP parser and the SERVER header
// reader on arbitrary input.
func FuzzParseResponse(f *testing.F) {
	f.Add([]byte(answer("Linux/5.x UPnP/1.1 MiniUPnPd/2.3.3", "http://127.0.0.1:5000/rootDesc.xml", "upnp:rootdevice")))
	f.Add([]byte("HTTP/1.0 200 OK\nSERVER: Linux, UPnP/1.0, SDK/1.6\n\n"))
	f.Add([]byte("HTTP/1.1 404 Not Found\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseResponse(data)
		if err != nil {
			return
		}
		if len(r.Headers) > maxHeaders {
			t.Fatalf("%d headers", len(r.Headers))
		}
		if r.Status < 100 || r.Status > 599 {
			t.Fatalf("status %d", r.Status)
		}
		productFromServer(r.Headers["server"])
	})
}

func TestParseDescriptionVersions(t *testing.T) {
	tests := []struct {
		name, in           string
		firmware, software string
	}{
		{name: "no version", in: deviceXML},
		{name: "vendor firmware and software versions", in: strings.Replace(deviceXML, "<UDN>",
			"<firmwareVersion>1.0.4</firmwareVersion><softwareVersion>build 77</softwareVersion><UDN>", 1),
			firmware: "1.0.4", software: "build 77"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParseDescription([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if d.Device.Manufacturer != "ACME Networks" || d.Device.FirmwareVersion != tt.firmware || d.Device.SoftwareVersion != tt.software {
				t.Errorf("got %+v", d.Device)
			}
		})
	}
}

// FuzzParseDescription checks the device description reader on arbitrary
// input.
func FuzzParseDescription(f *testing.F) {
	f.Add([]byte(deviceXML))
	f.Add([]byte(`<root><device><manufacturer>x</manufacturer><firmwareVersion>1</firmwareVersion></device></root>`))
	f.Add([]byte(`<?xml version="1.0"?><root><device><device>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseDescription(data)
		if err != nil {
			return
		}
		if len(d.Device.Manufacturer) > len(data) {
			t.Fatalf("manufacturer longer than the document")
		}
	})
}
