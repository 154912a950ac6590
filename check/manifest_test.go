package check

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/iotcop/iotcop/proto"
)

func expectedStrings(es []ExpectedService) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, e.String())
	}
	return out
}

func TestLoadManifest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file       string
		format     string
		defaults   []string // nil: no default list
		devices    int
		mudURL     string
		firstEntry []string
	}{
		{file: "good.yaml", format: "yaml", defaults: []string{"443/tcp https", "1900/udp upnp"}, devices: 2, firstEntry: []string{"22/tcp ssh"}},
		{file: "lightbulb.mud.json", format: "mud", defaults: []string{}, mudURL: "https://lighting.example.com/lightbulb2000"},
		{file: "camera.mud.json", format: "mud", defaults: []string{"554/tcp", "443/tcp", "5683/udp", "8000-8010/tcp"}, mudURL: "https://vistacam.example/mud/ipc-2130.json"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			m, err := LoadManifest(filepath.Join("testdata", "manifest", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if m.Format != tc.format || m.MUDURL != tc.mudURL || len(m.Devices) != tc.devices {
				t.Fatalf("manifest %+v", m)
			}
			if got := expectedStrings(m.Default); !slices.Equal(got, tc.defaults) {
				t.Fatalf("default services %v, want %v", got, tc.defaults)
			}
			if tc.firstEntry != nil {
				if got := expectedStrings(m.Devices[0].Services); !slices.Equal(got, tc.firstEntry) {
					t.Fatalf("devices[0] services %v, want %v", got, tc.firstEntry)
				}
			}
		})
	}
}

func TestLoadManifestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want []string // substrings of the error
	}{
		{file: "bad-port.yaml", want: []string{"bad-port.yaml:4:", "services[1].port", "70000"}},
		{file: "bad-protocol.yaml", want: []string{"bad-protocol.yaml:5:", "devices[0].services[0].protocol", `unknown protocol "htps"`}},
		{file: "bad-transport.yaml", want: []string{"bad-transport.yaml:3:", "services[0].transport", "sctp"}},
		{file: "bad-address.yaml", want: []string{"bad-address.yaml:3:", "devices[0].address", "10.0.0.300"}},
		{file: "no-match.yaml", want: []string{"no-match.yaml:2:", "devices[0]", "address (IP or CIDR) or a model"}},
		{file: "unknown-field.yaml", want: []string{"unknown-field.yaml:3:", `unknown field "proto" (want port, transport, protocol)`}},
		{file: "not-yaml.yaml", want: []string{"not-yaml.yaml", "line"}},
		{file: "bad-type.yaml", want: []string{"bad-type.yaml:2:", "cannot unmarshal"}},
		{file: "empty.yaml", want: []string{"empty.yaml", "empty manifest"}},
		{file: "mud-broken-json.json", want: []string{"mud-broken-json.json:5:", "not valid JSON"}},
		{file: "mud-missing-acl.json", want: []string{"mud-missing-acl.json:4:", `ietf-mud:mud.to-device-policy.access-lists.access-list[1].name`, `"cam-typo" is not defined`}},
		{file: "mud-bad-port.json", want: []string{"mud-bad-port.json:13:", "acl[0].aces.ace[1].matches.tcp.destination-port.port", "99999"}},
		{file: "mud-bad-operator.json", want: []string{"mud-bad-operator.json:8:", "destination-port.operator", `"lt"`}},
		{file: "mud-wrong-type.json", want: []string{"mud-wrong-type.json:8:", "port", "string"}},
		{file: "mud-version.json", want: []string{"mud-version.json:3:", "mud-version"}},
		{file: "does-not-exist.yaml", want: []string{"load manifest", "does-not-exist.yaml"}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			_, err := LoadManifest(filepath.Join("testdata", "manifest", tc.file))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestManifestExpected(t *testing.T) {
	t.Parallel()
	m, err := LoadManifest(filepath.Join("testdata", "manifest", "good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	camera := []Service{{Endpoint: proto.Endpoint{Port: 1900, Transport: "udp"}, Identity: &proto.Identity{Protocol: "ssdp", Info: map[string]string{"model_name": "ipc-2130"}}}}
	tests := []struct {
		name      string
		dev       *Device
		wantEntry string
		want      []string
	}{
		{name: "address in the prefix", dev: &Device{Address: "192.168.1.20"}, wantEntry: "devices[0]", want: []string{"22/tcp ssh"}},
		{name: "model named by UPnP", dev: &Device{Address: "10.1.1.1", Services: camera}, wantEntry: "devices[1]", want: []string{}},
		{name: "anything else gets the default", dev: &Device{Address: "10.1.1.2"}, wantEntry: "services (every device)", want: []string{"443/tcp https", "1900/udp upnp"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, entry, ok := m.Expected(tc.dev)
			if !ok || entry != tc.wantEntry || !slices.Equal(expectedStrings(got), tc.want) {
				t.Fatalf("expected %v from %q (%v), want %v from %q", expectedStrings(got), entry, ok, tc.want, tc.wantEntry)
			}
		})
	}
	perDevice, err := ParseManifest([]byte("devices: [{address: 10.0.0.5, services: [{port: 80}]}]"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := perDevice.Expected(&Device{Address: "10.0.0.6"}); ok {
		t.Fatal("a manifest without a default list says nothing about other devices")
	}
}

func TestExpectedServiceAllows(t *testing.T) {
	t.Parallel()
	tls := func(s Service) Service { s.Endpoint.TLS = true; s.Identity.TLS = true; return s }
	tests := []struct {
		name     string
		e        ExpectedService
		s        Service
		ok       bool
		mismatch string
	}{
		{name: "https", e: ExpectedService{Port: 443, PortTo: 443, Transport: "tcp", Protocol: "https"}, s: tls(svc("h", 443, "tcp", &proto.Identity{Protocol: "http"})), ok: true},
		{name: "http where https expected", e: ExpectedService{Port: 443, PortTo: 443, Transport: "tcp", Protocol: "https"}, s: svc("h", 443, "tcp", &proto.Identity{Protocol: "http"}),
			mismatch: "serves http without TLS, the manifest expects https"},
		{name: "telnet where ssh expected", e: ExpectedService{Port: 22, PortTo: 22, Transport: "tcp", Protocol: "ssh"}, s: svc("h", 22, "tcp", &proto.Identity{Protocol: "telnet"}),
			mismatch: "serves telnet, the manifest expects ssh"},
		{name: "unidentified is not disproved", e: ExpectedService{Port: 8883, PortTo: 8883, Transport: "tcp", Protocol: "mqtts"}, s: svc("h", 8883, "tcp", &proto.Identity{Protocol: "unknown"}), ok: true},
		{name: "range", e: ExpectedService{Port: 8000, PortTo: 8010, Transport: "tcp"}, s: svc("h", 8005, "tcp", &proto.Identity{Protocol: "http"}), ok: true},
		{name: "other transport", e: ExpectedService{Port: 161, PortTo: 161, Transport: "udp"}, s: svc("h", 161, "tcp", &proto.Identity{Protocol: "unknown"})},
		{name: "upnp alias", e: ExpectedService{Port: 1900, PortTo: 1900, Transport: "udp", Protocol: "upnp"}, s: svc("h", 1900, "udp", &proto.Identity{Protocol: "ssdp"}), ok: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, mismatch := tc.e.Allows(tc.s)
			if ok != tc.ok || mismatch != tc.mismatch {
				t.Fatalf("Allows = %v %q, want %v %q", ok, mismatch, tc.ok, tc.mismatch)
			}
		})
	}
}

func FuzzParseManifest(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "manifest", "*"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"ietf-mud:mud": {"mud-version": 1, "to-device-policy": {"access-lists": {"access-list": [{"name": "a"}]}}}, "ietf-access-control-list:acls": {"acl": [{"name": "a", "aces": {"ace": [{"matches": {"udp": {"destination-port": {"operator": "neq", "port": 1}}}, "actions": {"forwarding": "accept"}}]}}]}}`))
	f.Add([]byte(`{"services": [{"port": 443}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data, "fuzz")
		if err != nil {
			if m != nil {
				t.Fatal("manifest and error")
			}
			return
		}
		for _, e := range m.Default {
			if e.Port < 1 || e.PortTo > 65535 || e.Port > e.PortTo || (e.Transport != "tcp" && e.Transport != "udp") {
				t.Fatalf("bad expected service %+v", e)
			}
		}
		_, _, _ = m.Expected(&Device{Address: "10.0.0.1"})
	})
}
