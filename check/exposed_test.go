package check

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/proto"
	"github.com/iotcop/iotcop/proto/snmp"
)

func svc(host string, port int, transport string, id *proto.Identity) Service {
	return Service{Endpoint: proto.Endpoint{Host: host, Port: port, Transport: transport, Timeout: 2 * time.Second}, Identity: id}
}

func titles(fs []finding.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Severity.String()+" "+f.Title)
	}
	return out
}

// TestExposedFromIdentity covers the verdicts made from what
// identification recorded, without any further traffic.
func TestExposedFromIdentity(t *testing.T) {
	t.Parallel()
	const host = "127.0.0.9"
	tests := []struct {
		name     string
		service  Service
		wantSev  finding.Severity
		wantText string // in the title
		wantKey  string // an evidence key that must be set
		none     bool
	}{
		{name: "telnet on 23", service: svc(host, 23, "tcp", &proto.Identity{Protocol: "telnet", Info: map[string]string{"login_prompt": "cam login:"}}),
			wantSev: finding.High, wantText: "telnet is reachable on port 23", wantKey: "login_prompt"},
		{name: "telnet on a vendor port", service: svc(host, 2323, "tcp", &proto.Identity{Protocol: "telnet"}),
			wantSev: finding.High, wantText: "port 2323", wantKey: "reason"},
		{name: "adb without auth", service: svc(host, 5555, "tcp", &proto.Identity{Protocol: "adb", Info: map[string]string{"auth": "none", "product_model": "Pixel Cam"}}),
			wantSev: finding.High, wantText: "ADB", wantKey: "product_model"},
		{name: "adb with key auth", service: svc(host, 5555, "tcp", &proto.Identity{Protocol: "adb", Info: map[string]string{"auth": "rsa-key"}}),
			wantSev: finding.Medium, wantText: "ADB", wantKey: "adb_auth"},
		{name: "cwmp port unidentified", service: svc(host, 7547, "tcp", &proto.Identity{Protocol: "unknown"}),
			wantSev: finding.Medium, wantText: "TR-069", wantKey: "reason"},
		{name: "ssh is not a debug service", service: svc(host, 22, "tcp", &proto.Identity{Protocol: "ssh"}), none: true},
		{name: "ssdp without location", service: svc(host, 1900, "udp", &proto.Identity{Protocol: "ssdp"}), none: true},
		{name: "snmp without a prober is skipped", service: svc(host, 161, "udp", &proto.Identity{Protocol: "snmp"}), none: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev := &Device{Address: host, Services: []Service{tc.service}}
			fs, err := (&ExposedServices{}).Run(context.Background(), dev)
			if err != nil {
				t.Fatal(err)
			}
			if tc.none {
				if len(fs) != 0 {
					t.Fatalf("findings %v, want none", titles(fs))
				}
				return
			}
			if len(fs) != 1 {
				t.Fatalf("findings %v, want one", titles(fs))
			}
			f := fs[0]
			if f.Check != finding.CheckExposedDebugService || f.Severity != tc.wantSev || !strings.Contains(f.Title, tc.wantText) {
				t.Fatalf("finding %s %s %q", f.Check, f.Severity, f.Title)
			}
			if f.Evidence[tc.wantKey] == nil || f.Port != tc.service.Endpoint.Port || f.Host != host {
				t.Fatalf("evidence %v at %s:%d", f.Evidence, f.Host, f.Port)
			}
			if !slices.Equal(f.Provisions, []string{"5.6-1", "5.6-2"}) {
				t.Fatalf("provisions %v", f.Provisions)
			}
		})
	}
}

// webServer is a test web server on its own loopback address that
// records every request.
type webServer struct {
	srv  *httptest.Server
	host string
	port int
	tls  bool

	mu       sync.Mutex
	requests []string // "METHOD path"
	bodies   []string
}

func newWebServer(t *testing.T, h http.HandlerFunc) *webServer {
	t.Helper()
	return startWebServer(t, daemontest.Addr(), false, h)
}

// startWebServer serves h on host (HTTPS when useTLS).
func startWebServer(t *testing.T, host string, useTLS bool, h http.HandlerFunc) *webServer {
	t.Helper()
	ws := &webServer{host: host, tls: useTLS}
	ws.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
		ws.mu.Lock()
		ws.requests = append(ws.requests, r.Method+" "+r.URL.Path)
		ws.bodies = append(ws.bodies, string(b))
		ws.mu.Unlock()
		h(w, r)
	}))
	ln, err := net.Listen("tcp", net.JoinHostPort(ws.host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	ws.srv.Listener = ln
	if useTLS {
		ws.srv.StartTLS()
	} else {
		ws.srv.Start()
	}
	t.Cleanup(ws.srv.Close)
	ws.port = ln.Addr().(*net.TCPAddr).Port
	return ws
}

func (ws *webServer) log() []string {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return slices.Clone(ws.requests)
}

func (ws *webServer) service() Service {
	s := svc(ws.host, ws.port, "tcp", &proto.Identity{Protocol: "http", TLS: ws.tls})
	s.Endpoint.TLS = ws.tls
	return s
}

func (ws *webServer) count(req string) int {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	n := 0
	for _, r := range ws.requests {
		if r == req {
			n++
		}
	}
	return n
}

const spa = "<!DOCTYPE html><html><head><title>Smart Cam</title></head><body><div id=app></div><script src=/app.js></script></body></html>"

func TestDebugPaths(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		pages   map[string]string // path → 200 body; other paths get notFound
		catch   string            // body of every other path with 200 (a catch-all route) when set
		status  int               // status for every path when set (401 everywhere ...)
		want    []string          // "severity title" substrings, in order
		wantKey string
	}{
		{name: "passwd served", pages: map[string]string{"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\nadmin:$1$abc$def:1000:1000::/home/admin:/bin/sh\n"},
			want: []string{"high the web server serves /etc/passwd"}, wantKey: "password_hashes_in_passwd"},
		{name: "proc served", pages: map[string]string{"/proc/version": "Linux version 3.10.14 (builder@host) #1 PREEMPT\n"},
			want: []string{"high the web server serves /proc"}, wantKey: "kernel"},
		{name: "system command page", pages: map[string]string{"/syscmd.htm": `<form action=/goform/formSysCmd method=POST><input name=sysCmd></form>`},
			want: []string{"high a web page that runs shell commands"}, wantKey: "form"},
		{name: "pprof", pages: map[string]string{"/debug/pprof/": "<p>Types of profiles available:</p>"},
			want: []string{"medium the Go pprof debug endpoint"}},
		{name: "debug page on a catch-all site", catch: spa, pages: map[string]string{"/debug": "<h1>Debug console</h1><pre>log level: 3</pre>"},
			want: []string{"medium a debug page is served"}, wantKey: "excerpt"},
		{name: "catch-all site alone is nothing", catch: spa},
		{name: "catch-all page naming debug disables generic probes", catch: "<html>enable debug mode in settings</html>",
			pages: map[string]string{"/debug": "<h1>Debug</h1>"}},
		{name: "soft 404 echoing the path is nothing", catch: "ECHO"},
		{name: "debug page behind a login form is nothing", catch: spa,
			pages: map[string]string{"/debug": `<form><input name=user><input type="password" name=pw></form> debug`}},
		{name: "passwd-looking path without the signature", pages: map[string]string{"/etc/passwd": "not here"}},
		{name: "401 everywhere", status: http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ws := newWebServer(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.status != 0 {
					w.WriteHeader(tc.status)
					return
				}
				if b, ok := tc.pages[r.URL.Path]; ok {
					_, _ = io.WriteString(w, b)
					return
				}
				switch tc.catch {
				case "":
					http.NotFound(w, r)
				case "ECHO":
					_, _ = io.WriteString(w, "<html>No page "+r.URL.Path+" here</html>")
				default:
					_, _ = io.WriteString(w, tc.catch)
				}
			})
			dev := &Device{Address: ws.host, Services: []Service{ws.service()}}
			fs, err := (&ExposedServices{}).Run(context.Background(), dev)
			if err != nil {
				t.Fatal(err)
			}
			got := titles(fs)
			if len(got) != len(tc.want) {
				t.Fatalf("findings %v, want %v", got, tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Fatalf("finding %q, want %q", got[i], w)
				}
				if tc.wantKey != "" && fs[i].Evidence[tc.wantKey] == nil {
					t.Fatalf("evidence %v lacks %s", fs[i].Evidence, tc.wantKey)
				}
			}
			// Read-only and bounded: GETs of the random path and the probe list only.
			reqs := ws.log()
			if len(reqs) > 1+len(debugProbes) {
				t.Fatalf("%d requests: %v", len(reqs), reqs)
			}
			for i, r := range reqs {
				method, path, _ := strings.Cut(r, " ")
				known := slices.ContainsFunc(debugProbes, func(p debugProbe) bool { return p.path == path })
				if method != http.MethodGet || (i > 0 && !known) || (i == 0 && !strings.HasPrefix(path, "/iotcop-")) {
					t.Fatalf("unexpected request %q", r)
				}
			}
		})
	}
}

// TestDebugPathsBusyboxHttpd: the real BusyBox httpd serving a copy of
// the file system root, as misconfigured cameras do.
func TestDebugPathsBusyboxHttpd(t *testing.T) {
	t.Parallel()
	s := daemontest.BusyboxHttpd(t, daemontest.BusyboxHttpdOptions{
		Auth:  daemontest.HTTPAuth{None: true},
		Files: map[string]string{"etc/passwd": "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1::/:/bin/false\n", "index.html": "<html>cam</html>"},
	})
	dev := &Device{Address: s.Host, Services: []Service{{Endpoint: s.Endpoint(), Identity: &proto.Identity{Protocol: "http", Product: "BusyBox httpd"}}}}
	fs, err := (&ExposedServices{}).Run(daemontest.Context(t), dev)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].Severity != finding.High || !strings.Contains(fs[0].Title, "/etc/passwd") {
		t.Fatalf("findings %v", titles(fs))
	}
	if got := fs[0].Evidence["accounts"]; !slices.Equal(got.([]string), []string{"root", "daemon"}) {
		t.Fatalf("accounts %v", got)
	}
	if _, hashes := fs[0].Evidence["password_hashes_in_passwd"]; hashes {
		t.Fatalf("no hashes in this passwd, evidence %v", fs[0].Evidence)
	}
}

func TestCWMPFromHTTPIdentity(t *testing.T) {
	t.Parallel()
	ws := newWebServer(t, func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	s := ws.service()
	s.Identity.Info = map[string]string{"server": "RomPager/4.07 UPnP/1.0", "realm": "IGD"}
	dev := &Device{Address: ws.host, Services: []Service{s}}
	fs, err := (&ExposedServices{}).Run(context.Background(), dev)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].Severity != finding.Medium || !strings.Contains(fs[0].Title, "TR-069") ||
		!strings.Contains(fs[0].Evidence["reason"].(string), "RomPager") {
		t.Fatalf("findings %v %v", titles(fs), fs)
	}
}

// upnpDevice serves a device description and a control URL.
type upnpFixture struct {
	deviceType  string
	serviceType string
	descStatus  int
	control     func(w http.ResponseWriter)
	controlURL  string // default /ctl/IPConn
}

const igdService = "urn:schemas-upnp-org:service:WANIPConnection:1"

func (u upnpFixture) handler(w http.ResponseWriter, r *http.Request) {
	ctl := u.controlURL
	if ctl == "" {
		ctl = "/ctl/IPConn"
	}
	switch r.URL.Path {
	case "/rootDesc.xml":
		if u.descStatus != 0 {
			w.WriteHeader(u.descStatus)
			return
		}
		w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
		_, _ = io.WriteString(w, `<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device><deviceType>`+u.deviceType+`</deviceType>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType><deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>
<serviceList><service><serviceType>`+u.serviceType+`</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
<controlURL>`+ctl+`</controlURL><eventSubURL>/evt/IPConn</eventSubURL><SCPDURL>/WANIPCn.xml</SCPDURL></service></serviceList>
</device></deviceList></device></deviceList></device></root>`)
	case "/ctl/IPConn":
		u.control(w)
	default:
		http.NotFound(w, r)
	}
}

func soapOK(w http.ResponseWriter) {
	w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
	_, _ = io.WriteString(w, `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>`+
		`<u:GetExternalIPAddressResponse xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1"><NewExternalIPAddress>198.51.100.7</NewExternalIPAddress>`+
		`</u:GetExternalIPAddressResponse></s:Body></s:Envelope>`)
}

func TestUPnPControl(t *testing.T) {
	t.Parallel()
	const igd = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"
	tests := []struct {
		name      string
		fx        upnpFixture
		elsewhere bool // LOCATION names another host
		want      string
		wantSOAP  int
	}{
		{name: "IGD control open", fx: upnpFixture{deviceType: igd, serviceType: igdService, control: soapOK},
			want: "high UPnP port-mapping control (IGD) answers without authentication", wantSOAP: 1},
		{name: "IGD control asks for credentials", fx: upnpFixture{deviceType: igd, serviceType: igdService,
			control: func(w http.ResponseWriter) { w.WriteHeader(http.StatusUnauthorized) }}, wantSOAP: 1},
		{name: "IGD control refuses with UPnP error 606", fx: upnpFixture{deviceType: igd, serviceType: igdService,
			control: func(w http.ResponseWriter) {
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = io.WriteString(w, `<s:Envelope><s:Body><s:Fault><detail><UPnPError><errorCode>606</errorCode></UPnPError></detail></s:Fault></s:Body></s:Envelope>`)
			}}, wantSOAP: 1},
		{name: "media renderer control not exercised", fx: upnpFixture{deviceType: "urn:schemas-upnp-org:device:MediaRenderer:1",
			serviceType: "urn:schemas-upnp-org:service:RenderingControl:1", control: soapOK},
			want: "low UPnP control URLs are readable without authentication on the LAN", wantSOAP: 0},
		{name: "description protected", fx: upnpFixture{deviceType: igd, serviceType: igdService, descStatus: http.StatusUnauthorized, control: soapOK}},
		{name: "control URL on another host is ignored", fx: upnpFixture{deviceType: igd, serviceType: igdService,
			controlURL: "http://203.0.113.9:5000/ctl/IPConn", control: soapOK}},
		{name: "location on another host is not read", elsewhere: true, fx: upnpFixture{deviceType: igd, serviceType: igdService, control: soapOK}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ws := newWebServer(t, tc.fx.handler)
			host := ws.host
			if tc.elsewhere {
				host = daemontest.Addr() // the SSDP answer came from another address
			}
			s := svc(host, 1900, "udp", &proto.Identity{Protocol: "ssdp", Info: map[string]string{
				"location": "http://" + net.JoinHostPort(ws.host, strconv.Itoa(ws.port)) + "/rootDesc.xml"}})
			dev := &Device{Address: host, Services: []Service{s}}
			fs, err := (&ExposedServices{}).Run(context.Background(), dev)
			if err != nil {
				t.Fatal(err)
			}
			got := titles(fs)
			if tc.want == "" && len(got) != 0 || tc.want != "" && (len(got) != 1 || got[0] != tc.want) {
				t.Fatalf("findings %v, want %q", got, tc.want)
			}
			soap := 0
			ws.mu.Lock()
			for i, r := range ws.requests {
				if strings.HasPrefix(r, "POST ") {
					soap++
					if !strings.Contains(ws.bodies[i], "GetExternalIPAddress") || strings.Contains(ws.bodies[i], "AddPortMapping") {
						t.Errorf("SOAP body %q", ws.bodies[i])
					}
				} else if r != "GET /rootDesc.xml" {
					t.Errorf("unexpected request %q", r)
				}
			}
			n := len(ws.requests)
			ws.mu.Unlock()
			if soap != tc.wantSOAP {
				t.Fatalf("%d SOAP requests, want %d", soap, tc.wantSOAP)
			}
			if tc.elsewhere && n != 0 {
				t.Fatalf("requests to another host: %d", n)
			}
			if tc.want != "" && strings.HasPrefix(tc.want, "high") {
				if proof, _ := fs[0].Evidence["proof"].(string); !strings.Contains(proof, "198.51.100.7") {
					t.Fatalf("proof %q", proof)
				}
			}
		})
	}
}

// fakeSNMP answers ProbeOpenAccess as proto/snmp does.
type fakeSNMP struct{ acc *proto.OpenAccess }

func (f fakeSNMP) Name() string { return "snmp" }
func (f fakeSNMP) ProbeOpenAccess(context.Context, proto.Endpoint, *proto.Identity) (*proto.OpenAccess, error) {
	return f.acc, nil
}

func TestSNMPWriteCommunity(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		acc  *proto.OpenAccess
		want string
	}{
		{name: "private readable", acc: &proto.OpenAccess{Details: map[string]any{"communities": []string{"public", "private"}}},
			want: `high SNMP answers the write-style community "private"`},
		{name: "any community", acc: &proto.OpenAccess{Details: map[string]any{"communities": []string{"public", "private"}, "any_community": true}},
			want: "high SNMP answers any community string, including write-style ones"},
		{name: "public only", acc: &proto.OpenAccess{Details: map[string]any{"communities": []string{"public"}}}},
		{name: "nothing readable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev := &Device{Address: "127.0.0.9", Services: []Service{svc("127.0.0.9", 161, "udp", &proto.Identity{Protocol: "snmp"})}}
			fs, err := (&ExposedServices{SNMP: fakeSNMP{tc.acc}}).Run(context.Background(), dev)
			if err != nil {
				t.Fatal(err)
			}
			got := titles(fs)
			if tc.want == "" && len(got) != 0 || tc.want != "" && (len(got) != 1 || got[0] != tc.want) {
				t.Fatalf("findings %v, want %q", got, tc.want)
			}
		})
	}
}

// TestSNMPWriteCommunitySnmpd: net-snmp's agent with the classic
// public/private pair, and a hardened one.
func TestSNMPWriteCommunitySnmpd(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		agent daemontest.SnmpdOptions
		want  int
	}{
		{name: "public and private", agent: daemontest.SnmpdOptions{ReadOnly: []string{"public"}, ReadWrite: []string{"private"}}, want: 1},
		{name: "hardened", agent: daemontest.SnmpdOptions{}, want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := daemontest.Snmpd(t, tc.agent)
			ep := s.Endpoint()
			id := &proto.Identity{Protocol: "snmp", Info: map[string]string{"snmp_versions": "v1,v2c,v3"}}
			dev := &Device{Address: s.Host, Services: []Service{{Endpoint: ep, Identity: id}}}
			fs, err := (&ExposedServices{SNMP: snmp.New()}).Run(daemontest.Context(t), dev)
			if err != nil {
				t.Fatal(err)
			}
			if len(fs) != tc.want {
				t.Fatalf("findings %v, want %d", titles(fs), tc.want)
			}
			if tc.want == 1 && !slices.Contains(fs[0].Evidence["communities"].([]string), "private") {
				t.Fatalf("evidence %v", fs[0].Evidence)
			}
		})
	}
}

func TestManifestComparison(t *testing.T) {
	t.Parallel()
	const host = "127.0.0.9"
	m, err := ParseManifest([]byte(`
services:
  - {port: 443, transport: tcp, protocol: https}
  - {port: 1900, transport: udp, protocol: upnp}
  - {port: 23, protocol: telnet}
`), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	https := svc(host, 443, "tcp", &proto.Identity{Protocol: "http", TLS: true})
	https.Endpoint.TLS = true
	dev := &Device{Address: host, Services: []Service{
		https,
		svc(host, 1900, "udp", &proto.Identity{Protocol: "ssdp"}),
		svc(host, 23, "tcp", &proto.Identity{Protocol: "telnet"}),
		svc(host, 8080, "tcp", &proto.Identity{Protocol: "unknown"}),
		svc(host, 5353, "udp", &proto.Identity{Protocol: "mdns"}),
	}}
	// compareManifest alone: nothing serves these ports.
	c := &ExposedServices{Manifest: m}
	out := c.compareManifest(dev, nil)
	got := titles(out)
	// Telnet is declared, so the manifest allows it (ExposedServices
	// still reports it, with in_manifest=true).
	want := []string{
		"medium 8080/tcp (unknown) is not in the manifest of expected services",
		"medium 5353/udp (mdns) is not in the manifest of expected services",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("findings %v, want %v", got, want)
	}
	for _, f := range out {
		if !slices.Equal(f.Provisions, []string{"5.6-1"}) || f.Evidence["manifest"] != "m.yaml" || f.Evidence["manifest_entry"] != "services (every device)" {
			t.Fatalf("finding %+v", f)
		}
	}

	// A telnet finding from the protocol pass gets the manifest verdict
	// instead of a second finding.
	telnetOnly := &Device{Address: host, Services: []Service{svc(host, 23, "tcp", &proto.Identity{Protocol: "telnet"}), svc(host, 2323, "tcp", &proto.Identity{Protocol: "telnet"})}}
	fs, err := c.Run(context.Background(), telnetOnly)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 2 || fs[0].Evidence["in_manifest"] != true || fs[1].Evidence["in_manifest"] != false {
		t.Fatalf("findings %v %v", titles(fs), fs)
	}

	// Plain HTTP where the manifest expects HTTPS is named as such.
	plain := &Device{Address: host, Services: []Service{svc(host, 443, "tcp", &proto.Identity{Protocol: "http"})}}
	out = c.compareManifest(plain, nil)
	if len(out) != 1 || out[0].Title != "443/tcp serves http without TLS, the manifest expects https" {
		t.Fatalf("findings %v", titles(out))
	}
}
