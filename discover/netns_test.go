package discover

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/internal/netnstest"
)

// The device namespace runs a real miniupnpd and a real avahi-daemon; the
// client namespace runs discovery through the test binary. They share only
// a veth pair, so nothing leaves them.
const (
	upnpPort  = 5000
	upnpUUID  = "3a6f1c2e-1b2c-4d5e-8f90-0123456789ab"
	avahiHost = "iotcop-cam"
)

func miniupnpdConf(iface string, addr netip.Addr) string {
	return fmt.Sprintf(`ext_ifname=wan0
listening_ip=%s
port=%d
enable_natpmp=no
enable_upnp=yes
secure_mode=yes
system_uptime=no
notify_interval=600
uuid=%s
friendly_name=Test Router
manufacturer_name=D-Link Corporation
manufacturer_url=http://www.dlink.com
model_name=DIR-615
model_description=Wireless Router
model_number=DIR-615-E4
serial=SN123456
presentation_url=http://%s/
`, iface, upnpPort, upnpUUID, addr)
}

func avahiConf(iface string) string {
	return `[server]
host-name=` + avahiHost + `
domain-name=local
use-ipv4=yes
use-ipv6=no
allow-interfaces=` + iface + `
enable-dbus=no
ratelimit-interval-usec=0
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
[reflector]
enable-reflector=no
`
}

const (
	httpService = `<?xml version="1.0" standalone='no'?>
<!DOCTYPE service-group SYSTEM "avahi-service.dtd">
<service-group>
  <name>Test Camera Web</name>
  <service>
    <type>_http._tcp</type>
    <port>80</port>
    <txt-record>path=/index.html</txt-record>
    <txt-record>model=IPC-1</txt-record>
  </service>
</service-group>
`
	sshService = `<?xml version="1.0" standalone='no'?>
<!DOCTYPE service-group SYSTEM "avahi-service.dtd">
<service-group>
  <name replace-wildcards="yes">%h shell</name>
  <service>
    <type>_ssh._tcp</type>
    <port>22</port>
  </service>
</service-group>
`
)

// startResponders starts miniupnpd and avahi-daemon in p.A and waits until
// both listen.
func startResponders(t *testing.T, p *netnstest.Pair) {
	t.Helper()
	dir := t.TempDir()
	// miniupnpd wants an external interface with an address; this one
	// leads nowhere.
	p.A.AddVeth(t, "wan0", "wan0-peer", netip.MustParsePrefix("10.214.0.1/24"))
	conf := daemontest.WriteFile(t, dir, "miniupnpd.conf", miniupnpdConf(p.IfaceA, p.AddrA), 0o644)
	p.A.StartPrivate(t, nil, "miniupnpd", "-d", "-f", conf, "-P", filepath.Join(dir, "miniupnpd.pid"))

	services := filepath.Join(dir, "services")
	daemontest.WriteFile(t, services, "http.service", httpService, 0o644)
	daemontest.WriteFile(t, services, "ssh.service", sshService, 0o644)
	aconf := daemontest.WriteFile(t, dir, "avahi-daemon.conf", avahiConf(p.IfaceA), 0o644)
	avahi := p.A.StartPrivate(t, map[string]string{"/etc/avahi/services": services},
		"avahi-daemon", "--no-drop-root", "--no-chroot", "--no-rlimits", "-f", aconf)

	p.A.WaitUDP(t, 1900)
	p.A.WaitTCP(t, upnpPort)
	avahi.WaitOutput(t, `Service "Test Camera Web"`)
	avahi.WaitOutput(t, `Service "`+avahiHost+` shell"`)
}

func TestDiscoverInNamespaces(t *testing.T) {
	daemontest.Require(t, "miniupnpd=miniupnpd-nftables", "avahi-daemon", "ss=iproute2")
	p := netnstest.NewPair(t)
	startResponders(t, p)

	wantServices := []Service{
		{Instance: "Test Camera Web", Type: "_http._tcp", Host: avahiHost + ".local", Port: 80, TXT: []string{"path=/index.html", "model=IPC-1"}},
		{Instance: avahiHost + " shell", Type: "_ssh._tcp", Host: avahiHost + ".local", Port: 22},
	}
	upnp := Device{
		FriendlyName:    "Test Router",
		Manufacturer:    "D-Link Corporation",
		ManufacturerURL: "http://www.dlink.com",
		Model:           "DIR-615",
		ModelNumber:     "DIR-615-E4",
		Serial:          "SN123456",
		DeviceType:      "urn:schemas-upnp-org:device:InternetGatewayDevice:2",
		UDN:             "uuid:" + upnpUUID,
		Locations:       []string{fmt.Sprintf("http://%s:%d/rootDesc.xml", p.AddrA, upnpPort)},
	}
	both := upnp
	both.Address, both.Sources = p.AddrA, []string{SourceMDNS, SourceSSDP}
	both.Names, both.Services = []string{avahiHost + ".local"}, wantServices
	onlyMDNS := Device{Address: p.AddrA, Sources: []string{SourceMDNS}, Names: both.Names, Services: wantServices}
	onlySSDP := upnp
	onlySSDP.Address, onlySSDP.Sources = p.AddrA, []string{SourceSSDP}

	tests := []struct {
		name string
		opts Options
		want Device
	}{
		{name: "on the named interface", opts: Options{Interface: p.IfaceB}, want: both},
		{name: "on the kernel's multicast route", opts: Options{}, want: both},
		{name: "mDNS only", opts: Options{Interface: p.IfaceB, NoSSDP: true}, want: onlyMDNS},
		{name: "SSDP only", opts: Options{Interface: p.IfaceB, NoMDNS: true}, want: onlySSDP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each run has its own sockets and query ids
			tt.opts.Wait = 2 * time.Second
			tt.opts.FetchTimeout = 10 * time.Second
			// Answers can be late when the kernel is busy (creating and
			// deleting namespaces holds locks the daemons need): a run
			// that misses something is repeated; one that finds too much
			// or something wrong fails at once.
			var problems []string
			for attempt := 1; attempt <= 3; attempt++ {
				devices := discoverIn(t, p.B, tt.opts)
				var missing bool
				problems, missing = judge(tt.want, devices)
				if len(problems) == 0 {
					return
				}
				if !missing {
					break
				}
				t.Logf("attempt %d incomplete:\n%s", attempt, strings.Join(problems, "\n"))
			}
			t.Error(strings.Join(problems, "\n"))
		})
	}
}

// judge compares what a discovery found with the one device expected. It
// returns what differs, and whether it is only a shortfall (fields or
// services not yet heard) that a second run may fill.
func judge(want Device, devices []Device) (problems []string, missing bool) {
	if len(devices) == 0 {
		return []string{"found no device"}, true
	}
	if len(devices) > 1 {
		return []string{fmt.Sprintf("found %d devices, want 1: %+v", len(devices), devices)}, false
	}
	got := devices[0]
	if got.Server != "" && !strings.Contains(got.Server, "MiniUPnPd/") {
		problems = append(problems, fmt.Sprintf("server %q does not name MiniUPnPd", got.Server))
	}
	if got.Server == "" && want.ssdp() {
		problems = append(problems, "no SSDP server header")
	}
	got.Server = ""
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		problems = append(problems, "device (-want +got):\n"+diff)
	}
	wantVendor := ""
	if want.ssdp() {
		wantVendor = "dlink"
	}
	if v := got.Vendor(); v != wantVendor {
		problems = append(problems, fmt.Sprintf("vendor %q, want %q", v, wantVendor))
	}
	return problems, len(problems) > 0 && subset(got, want)
}

// subset reports whether everything got holds is also in want.
func subset(got, want Device) bool {
	within := func(a, b []string) bool {
		for _, x := range a {
			if !slices.Contains(b, x) {
				return false
			}
		}
		return true
	}
	field := func(g, w string) bool { return g == "" || g == w }
	for _, s := range got.Services {
		if !slices.ContainsFunc(want.Services, func(w Service) bool { return cmp.Equal(s, w) || (s.Instance == w.Instance && s.Port == 0) }) {
			return false
		}
	}
	return got.Address == want.Address && within(got.Sources, want.Sources) && within(got.Names, want.Names) &&
		within(got.Locations, want.Locations) && field(got.FriendlyName, want.FriendlyName) &&
		field(got.Manufacturer, want.Manufacturer) && field(got.ManufacturerURL, want.ManufacturerURL) &&
		field(got.Model, want.Model) && field(got.ModelNumber, want.ModelNumber) && field(got.Serial, want.Serial) &&
		field(got.FirmwareVersion, want.FirmwareVersion) && field(got.DeviceType, want.DeviceType) && field(got.UDN, want.UDN)
}

func (d Device) ssdp() bool {
	for _, s := range d.Sources {
		if s == SourceSSDP {
			return true
		}
	}
	return false
}

// discoverIn runs Run with opts inside ns (through TestDiscoverHelper) and
// returns what it found.
func discoverIn(t *testing.T, ns netnstest.Namespace, opts Options) []Device {
	t.Helper()
	raw, err := json.Marshal(opts)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "devices.json")
	log, err := ns.RunTest(t, "TestDiscoverHelper", helperEnv+"="+string(raw), helperOutEnv+"="+out)
	if err != nil {
		t.Fatalf("discovery in %s: %v\n%s", ns.Name, err, log)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("discovery in %s:\n%s", ns.Name, log)
		}
	})
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("discovery in %s wrote nothing: %v\n%s", ns.Name, err, log)
	}
	var devices []Device
	if err := json.Unmarshal(b, &devices); err != nil {
		t.Fatal(err)
	}
	return devices
}
