package discover

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/iotcop/iotcop/internal/daemontest"
)

// These tests run discovery against fake responders on their own loopback
// addresses, sending unicast where Run sends multicast: loopback carries no
// multicast without setup, and tests must not send to a real network. The
// namespace test covers the multicast path with real daemons.

const fakeDescription = `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
 <specVersion><major>1</major><minor>0</minor></specVersion>
 <device>
  <deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
  <friendlyName>Office	Router</friendlyName>
  <manufacturer>TP-LINK</manufacturer>
  <manufacturerURL>http://www.tp-link.com</manufacturerURL>
  <modelName>TL-WR841N</modelName>
  <modelNumber>9.0</modelNumber>
  <serialNumber>1.0</serialNumber>
  <firmwareVersion>3.16.9 Build 150310</firmwareVersion>
  <UDN>uuid:upnp-InternetGatewayDevice-1_0-0019e0000000</UDN>
 </device>
</root>`

// descServer serves fakeDescription at /desc.xml on host and counts hits.
func descServer(t *testing.T, host string) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/desc.xml" {
			fmt.Fprint(w, fakeDescription)
			return
		}
		http.NotFound(w, r)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/desc.xml", &hits
}

// udpResponder answers each datagram to host with what reply returns.
func udpResponder(t *testing.T, host string, reply func(req []byte) [][]byte) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp4", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 9000)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			for _, r := range reply(append([]byte(nil), buf[:n]...)) {
				_, _ = pc.WriteTo(r, from)
			}
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

func ssdpAnswer(st, location string) []byte {
	return []byte("HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nEXT:\r\nST: " + st +
		"\r\nUSN: uuid:upnp-InternetGatewayDevice-1_0-0019e0000000::" + st +
		"\r\nSERVER: Linux/2.6 UPnP/1.0 Fake/1.0\r\nLOCATION: " + location + "\r\n\r\n")
}

// zone is what the fake mDNS responder knows: it answers only the exact
// question asked, with no additional records, so discovery must follow up
// (types, then instances, then addresses) to learn everything.
type zone struct {
	ptr   map[string][]string
	srv   map[string]dnsmessage.SRVResource
	txt   map[string][]string
	a     map[string][]netip.Addr
	idXor uint16 // non-zero: answer with a wrong id
}

func (z zone) answer(req []byte) [][]byte {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil || h.Response {
		return nil
	}
	qs, err := p.AllQuestions()
	if err != nil {
		return nil
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID ^ z.idXor, Response: true, Authoritative: true})
	_ = b.StartAnswers()
	n := 0
	for _, q := range qs {
		name := q.Name.String()
		rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 120}
		switch q.Type {
		case dnsmessage.TypePTR:
			for _, target := range z.ptr[name] {
				_ = b.PTRResource(rh, dnsmessage.PTRResource{PTR: dnsmessage.MustNewName(target)})
				n++
			}
		case dnsmessage.TypeSRV:
			if srv, ok := z.srv[name]; ok {
				_ = b.SRVResource(rh, srv)
				n++
			}
		case dnsmessage.TypeTXT:
			if txt, ok := z.txt[name]; ok {
				_ = b.TXTResource(rh, dnsmessage.TXTResource{TXT: txt})
				n++
			}
		case dnsmessage.TypeA:
			for _, a := range z.a[name] {
				_ = b.AResource(rh, dnsmessage.AResource{A: a.As4()})
				n++
			}
		}
	}
	if n == 0 {
		return nil
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return [][]byte{out}
}

func TestRunLoopback(t *testing.T) {
	t.Parallel()
	ssdpHost := daemontest.Addr()
	ownDesc, ownHits := descServer(t, ssdpHost)
	foreignDesc, foreignHits := descServer(t, daemontest.Addr())
	// The SSDP responder answers from the address its HTTP server is on.
	ssdpEP := udpResponder(t, ssdpHost, func(req []byte) [][]byte {
		if !strings.HasPrefix(string(req), "M-SEARCH * HTTP/1.1\r\n") {
			return nil
		}
		return [][]byte{
			ssdpAnswer("upnp:rootdevice", ownDesc),
			ssdpAnswer("urn:schemas-upnp-org:device:InternetGatewayDevice:1", ownDesc),
			// A LOCATION on another host must not be fetched.
			ssdpAnswer("urn:schemas-upnp-org:service:WANIPConnection:1", foreignDesc),
			[]byte("HTTP/1.1 200 OK\r\nbroken header line\r\n\r\n"),
		}
	})

	mdnsSelf := netip.MustParseAddr(daemontest.Addr())
	z := zone{
		ptr: map[string][]string{
			"_services._dns-sd._udp.local.": {"_http._tcp.local.", "_printer._tcp.local."},
			"_http._tcp.local.":             {"Kitchen Plug._http._tcp.local."},
			"_printer._tcp.local.":          {"Office Printer._printer._tcp.local."},
		},
		srv: map[string]dnsmessage.SRVResource{
			"Kitchen Plug._http._tcp.local.":      {Port: 8080, Target: dnsmessage.MustNewName("plug-1.local.")},
			"Office Printer._printer._tcp.local.": {Port: 515, Target: dnsmessage.MustNewName("printer.local.")},
		},
		txt: map[string][]string{
			"Kitchen Plug._http._tcp.local.":      {"path=/", ""},
			"Office Printer._printer._tcp.local.": {"usb_MFG=Canon", "note=\x01bell"},
		},
		a: map[string][]netip.Addr{
			"plug-1.local.": {mdnsSelf},
			// Claims about other addresses make no device and no name.
			"printer.local.": {netip.MustParseAddr("8.8.8.8")},
		},
	}

	wantSSDP := Device{
		Address:         netip.MustParseAddr(ssdpHost),
		Sources:         []string{SourceSSDP},
		FriendlyName:    `Office\u0009Router`,
		Manufacturer:    "TP-LINK",
		ManufacturerURL: "http://www.tp-link.com",
		Model:           "TL-WR841N",
		ModelNumber:     "9.0",
		Serial:          "1.0",
		FirmwareVersion: "3.16.9 Build 150310",
		DeviceType:      "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
		UDN:             "uuid:upnp-InternetGatewayDevice-1_0-0019e0000000",
		Server:          "Linux/2.6 UPnP/1.0 Fake/1.0",
		Locations:       sorted(ownDesc, foreignDesc),
	}
	wantMDNS := Device{
		Address: mdnsSelf,
		Sources: []string{SourceMDNS},
		Names:   []string{"plug-1.local"},
		Services: []Service{
			{Instance: "Kitchen Plug", Type: "_http._tcp", Host: "plug-1.local", Port: 8080, TXT: []string{"path=/"}},
			{Instance: "Office Printer", Type: "_printer._tcp", Host: "printer.local", Port: 515, TXT: []string{"usb_MFG=Canon", `note=\u0001bell`}},
		},
	}

	wrongID := z
	wrongID.idXor = 0xffff
	tests := []struct {
		name      string
		opts      Options
		mdns      zone
		want      []Device
		wantVends []string
	}{
		{name: "both", mdns: z, want: []Device{wantSSDP, wantMDNS}, wantVends: []string{"tplink", "canon"}},
		{name: "mDNS answers with a wrong id", mdns: wrongID, want: []Device{wantSSDP}, wantVends: []string{"tplink"}},
		{name: "SSDP off", opts: Options{NoSSDP: true}, mdns: z, want: []Device{wantMDNS}, wantVends: []string{"canon"}},
		{name: "both off", opts: Options{NoSSDP: true, NoMDNS: true}, mdns: z, want: []Device{}},
	}
	t.Run("runs", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel() // each run has its own responder and sockets
				mdnsEP := udpResponder(t, mdnsSelf.String(), tt.mdns.answer)
				tt.opts.Wait = 2 * time.Second
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				got, err := run(ctx, tt.opts, endpoints{ssdp: ssdpEP, mdns: mdnsEP})
				if err != nil {
					t.Fatal(err)
				}
				want := slices.Clone(tt.want)
				slices.SortFunc(want, func(a, b Device) int { return a.Address.Compare(b.Address) })
				if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{}), cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("devices (-want +got):\n%s", diff)
				}
				var vendors []string
				for _, d := range tt.want {
					for _, g := range got {
						if g.Address == d.Address {
							vendors = append(vendors, g.Vendor())
						}
					}
				}
				if diff := cmp.Diff(tt.wantVends, vendors, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("vendors (-want +got):\n%s", diff)
				}
			})
		}
	})
	if ownHits.Load() == 0 {
		t.Error("the device's own description was never fetched")
	}
	if n := foreignHits.Load(); n != 0 {
		t.Errorf("a description on another host was fetched %d times", n)
	}
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

func TestRunFailsOnUnknownInterface(t *testing.T) {
	t.Parallel()
	_, err := Run(context.Background(), Options{Interface: "iotcop-no-such-if0"})
	if err == nil || !strings.Contains(err.Error(), "iotcop-no-such-if0") {
		t.Fatalf("err = %v, want one naming the interface", err)
	}
}

func TestFetchRefusesPublicAddresses(t *testing.T) {
	t.Parallel()
	devices := []Device{{Address: netip.MustParseAddr("8.8.8.8"), Locations: []string{"http://8.8.8.8/desc.xml"}}}
	fetchDescriptions(context.Background(), devices, time.Second)
	if !strings.Contains(devices[0].DescriptionError, "not a private or loopback address") || devices[0].Manufacturer != "" {
		t.Fatalf("public device description: %+v", devices[0])
	}
}
