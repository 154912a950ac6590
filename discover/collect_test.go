package discover

import (
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/iotcop/iotcop/proto/mdns"
	"github.com/iotcop/iotcop/proto/ssdp"
)

var update = flag.Bool("update", false, "rewrite golden files")

// captureIDs are the query ids of the capture in testdata/capture: answers
// from avahi-daemon 0.8 and miniupnpd 2.3.1 (Debian 12) to one M-SEARCH
// ssdp:all and to three mDNS queries (the service types; the instances of
// _http._tcp; SRV, TXT and A of the instance), with the description
// miniupnpd served. Files are named <kind>-<order>-<source address>.bin.
var captureIDs = []uint16{1234, 1235, 1236}

// replay feeds the captured datagrams to a collector in capture order.
func replay(t *testing.T, dir string) *collector {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.bin"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no capture in %s: %v", dir, err)
	}
	slices.SortFunc(files, func(a, b string) int {
		return strings.Compare(strings.SplitN(filepath.Base(a), "-", 3)[1], strings.SplitN(filepath.Base(b), "-", 3)[1])
	})
	c := newCollector()
	for _, id := range captureIDs {
		c.ids[id] = true
	}
	for _, f := range files {
		parts := strings.SplitN(strings.TrimSuffix(filepath.Base(f), ".bin"), "-", 3)
		src := netip.MustParseAddr(parts[2])
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		switch parts[0] {
		case "ssdp":
			r, err := ssdp.ParseResponse(b)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			c.addSSDP(src, r)
		case "mdns":
			m, err := mdns.ParseMessage(b)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			c.addMDNS(src, m)
		}
	}
	return c
}

func TestCapturedAnswers(t *testing.T) {
	dir := filepath.Join("testdata", "capture")
	c := replay(t, dir)
	devices := c.devices()
	if len(devices) != 1 {
		t.Fatalf("%d devices from one responder", len(devices))
	}
	desc, err := os.ReadFile(filepath.Join(dir, "rootDesc.xml"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := ssdp.ParseDescription(desc)
	if err != nil {
		t.Fatal(err)
	}
	devices[0].apply(d)

	// The facts the golden file must hold, so that -update cannot bless
	// a regression.
	got := devices[0]
	if got.Address.String() != "10.231.0.1" || got.Manufacturer != "D-Link Corporation" || got.Serial != "SN123456" ||
		!slices.Equal(got.Names, []string{"testcam.local"}) || len(got.Services) != 1 || got.Services[0].Port != 80 ||
		got.Vendor() != "dlink" || !slices.Equal(got.Sources, []string{SourceMDNS, SourceSSDP}) {
		t.Errorf("captured device: %+v", got)
	}

	out, err := json.MarshalIndent(devices, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join(dir, "devices.golden.json")
	if *update {
		if err := os.WriteFile(golden, append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(strings.TrimSpace(string(want)), string(out)); diff != "" {
		t.Errorf("devices differ from %s (-want +got; go test -update to accept):\n%s", golden, diff)
	}
}

func TestUnsolicitedAndForeignAnswersIgnored(t *testing.T) {
	src := netip.MustParseAddr("10.0.0.7")
	c := newCollector()
	// A unicast answer to a query we never sent.
	c.addMDNS(src, mdns.Message{ID: 999, PTRs: []mdns.PTR{{Owner: "_http._tcp.local.", Target: "X._http._tcp.local."}}})
	// An SSDP NOTIFY-like or error status is not a search answer.
	c.addSSDP(src, ssdp.Response{Status: 404, Headers: map[string]string{"location": "http://10.0.0.7/"}})
	// Address records for others name nothing and create nothing.
	c.addMDNS(src, mdns.Message{Addrs: []mdns.Addr{{Owner: "other.local.", IP: netip.MustParseAddr("10.0.0.8")}}})
	if got := c.devices(); len(got) != 0 {
		t.Fatalf("devices from ignored answers: %+v", got)
	}
}

func TestPendingAsksEachQuestionTwiceAtMost(t *testing.T) {
	c := newCollector()
	src := netip.MustParseAddr("10.0.0.7")
	c.ids[1] = true
	c.addMDNS(src, mdns.Message{ID: 1, PTRs: []mdns.PTR{{Owner: mdns.ServicesName, Target: "_http._tcp.local."}}})
	now := time.Now()
	var asked []int
	for i := range 6 {
		asked = append(asked, len(c.pending(now.Add(time.Duration(i)*retryAfter))))
	}
	if want := []int{1, 1, 0, 0, 0, 0}; !slices.Equal(asked, want) {
		t.Errorf("questions per round %v, want %v", asked, want)
	}
	// Once the type's instances arrive, nothing more is asked about it,
	// but the new instance is.
	c2 := newCollector()
	c2.ids[1] = true
	c2.addMDNS(src, mdns.Message{ID: 1, PTRs: []mdns.PTR{{Owner: mdns.ServicesName, Target: "_http._tcp.local."}, {Owner: "_http._tcp.local.", Target: "Cam._http._tcp.local."}}})
	qs := c2.pending(now)
	if len(qs) != 2 || qs[0].Name != "Cam._http._tcp.local." {
		t.Errorf("pending after instances arrived: %+v", qs)
	}
}

func TestSplitInstance(t *testing.T) {
	tests := []struct {
		in, instance, typ string
		ok                bool
	}{
		{"Living Room._http._tcp.local.", "Living Room", "_http._tcp", true},
		{"My.Cam._hap._TCP.LOCAL.", "My.Cam", "_hap._TCP", true},
		{"Printer._ipp._udp.local", "Printer", "_ipp._udp", true},
		{"_http._tcp.local.", "", "", false},
		{"cam.local.", "", "", false},
		{"x._tcp.local.", "", "", false},
		{"a.__tcp.local.", "", "", false},
		{"1.0.0.10.in-addr.arpa.", "", "", false},
	}
	for _, tt := range tests {
		inst, typ, ok := splitInstance(tt.in)
		if inst != tt.instance || typ != tt.typ || ok != tt.ok {
			t.Errorf("splitInstance(%q) = %q %q %v, want %q %q %v", tt.in, inst, typ, ok, tt.instance, tt.typ, tt.ok)
		}
	}
}

func TestClean(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"  Küche Lautsprecher ", 100, "Küche Lautsprecher"},
		{"a\x00b\x1b[31m", 100, `a\u0000b\u001b[31m`},
		{"bad\xffbyte", 100, `bad\xffbyte`},
		{"ééé", 5, "éé"},
		{"ab\x01", 4, "ab"},
		{"\U000e0001", 100, `\U000e0001`},
	}
	for _, tt := range tests {
		if got := clean(tt.in, tt.max); got != tt.want {
			t.Errorf("clean(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

// FuzzCollect feeds arbitrary datagrams, as SSDP answers and as mDNS
// responses, to a collector and checks that what it keeps stays bounded
// and printable.
func FuzzCollect(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "capture", "*.bin"))
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b, strings.HasPrefix(filepath.Base(file), "ssdp"))
		}
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nST: upnp:rootdevice\r\nLOCATION: http://10.0.0.1:1/\x00\r\nSERVER: \xff\xfe\r\n\r\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, asSSDP bool) {
		c := newCollector()
		src := netip.MustParseAddr("10.0.0.1")
		// Twice, as answers repeat.
		for range 2 {
			if asSSDP {
				if r, err := ssdp.ParseResponse(data); err == nil {
					c.addSSDP(src, r)
				}
			} else if m, err := mdns.ParseMessage(data); err == nil {
				m.ID = 0
				c.addMDNS(src, m)
			}
		}
		if qs := c.pending(time.Now()); len(qs) > 2*(maxTypes+2*maxInstances+maxTargets) {
			t.Fatalf("%d follow-up questions", len(qs))
		}
		devices := c.devices()
		if len(devices) > 1 {
			t.Fatalf("%d devices from one source", len(devices))
		}
		for _, d := range devices {
			if len(d.Names) > maxNames || len(d.Services) > maxServices || len(d.Locations) > maxLocations {
				t.Fatalf("unbounded device: %d names, %d services, %d locations", len(d.Names), len(d.Services), len(d.Locations))
			}
			texts := append([]string{d.Server}, d.Names...)
			texts = append(texts, d.Locations...)
			for _, s := range d.Services {
				if len(s.TXT) > maxTXT {
					t.Fatalf("%d TXT strings", len(s.TXT))
				}
				texts = append(texts, s.Instance, s.Type, s.Host)
				texts = append(texts, s.TXT...)
			}
			for _, s := range texts {
				if !utf8.ValidString(s) || len(s) > maxLocation || strings.ContainsAny(s, "\x00\r\n\x1b") {
					t.Fatalf("unsafe text %q", s)
				}
			}
			_ = d.Vendor()
		}
	})
}
