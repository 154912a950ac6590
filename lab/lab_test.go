package lab

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/proto"
)

var labSeq atomic.Uint32

// testBase returns a base address no other lab in any test process uses:
// 127.(220+pid%35).(4*n).1 — second octets 220-254 stay clear of
// daemontest.Addr (20-219), the pid separates processes and the counter
// gives each lab of this process four /24s (about 1000 devices).
func testBase(t testing.TB) string {
	t.Helper()
	n := labSeq.Add(1)
	if n > 62 {
		t.Fatal("testBase: too many labs in one test process")
	}
	return fmt.Sprintf("127.%d.%d.1", 220+os.Getpid()%35, 4*n)
}

// startLab starts cfg on a fresh base and closes it when the test ends.
func startLab(t testing.TB, cfg Config) *Lab {
	t.Helper()
	l, err := Start(context.Background(), cfg, Options{Base: testBase(t)})
	if err != nil {
		t.Fatalf("start lab: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// service finds the running service of the device of kind with protocol
// on port (0 = any).
func service(t testing.TB, l *Lab, kind, protocol string, port int) (RunningDevice, RunningService) {
	t.Helper()
	for _, d := range l.Devices() {
		if d.Kind != kind {
			continue
		}
		for _, s := range d.Services {
			if s.Protocol == protocol && (port == 0 || s.Port == port) {
				return d, s
			}
		}
	}
	t.Fatalf("no %s service %s/%d in lab", kind, protocol, port)
	return RunningDevice{}, RunningService{}
}

func hostPort(d RunningDevice, s RunningService) string {
	return net.JoinHostPort(d.Address, strconv.Itoa(s.Port))
}

func TestDefaultConfigTemplates(t *testing.T) {
	cfg := DefaultConfig(0)
	var got []string
	for _, d := range cfg.Devices {
		got = append(got, d.Name+"/"+d.Kind)
	}
	want := []string{"camera-1/camera", "hub-1/hub", "plug-1/plug", "router-1/router", "tv-1/tv", "hardened-1/hardened", "nvr-1/nvr"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("default fleet (-want +got):\n%s", diff)
	}
	big := DefaultConfig(15)
	if len(big.Devices) != 15 || big.Devices[7].Name != "camera-2" || big.Devices[14].Name != "camera-3" {
		t.Errorf("DefaultConfig(15) names: %s, %s (%d devices)", big.Devices[7].Name, big.Devices[14].Name, len(big.Devices))
	}
	// Scaled copies must not share slices with each other.
	big.Devices[0].Services[2].Paths[0] = "changed"
	if big.Devices[7].Services[2].Paths[0] == "changed" {
		t.Error("DefaultConfig copies share the Paths slice")
	}
	if err := big.Validate(); err != nil {
		t.Errorf("DefaultConfig(15) invalid: %v", err)
	}
}

func TestExpectedFlaws(t *testing.T) {
	l := startLab(t, DefaultConfig(0))
	type flaw struct {
		Kind, Check, Protocol string
		Port                  int
		Cred                  string
	}
	var got []flaw
	for _, d := range l.Devices() {
		for _, f := range d.Flaws {
			got = append(got, flaw{d.Kind, f.Check, f.Protocol, f.Port, f.Credential.String()})
		}
	}
	dc, ua := finding.CheckDefaultCredentials, finding.CheckUnauthenticatedAccess
	want := []flaw{
		{"camera", dc, "telnet", 23, "root:xc3511"},
		{"camera", dc, "http", 80, "admin:admin"},
		{"camera", dc, "rtsp", 554, "admin:admin"},
		{"hub", ua, "mqtt", 1883, ":"},
		{"hub", ua, "ftp", 21, ":"},
		{"hub", dc, "ssh", 22, "root:admin"},
		{"plug", ua, "coap", 5683, ":"},
		{"plug", dc, "telnet", 2323, "admin:admin"},
		{"router", dc, "http", 80, "admin:password"},
		{"router", dc, "snmp", 161, ":public"},
		{"tv", ua, "adb", 5555, ":"},
		{"nvr", ua, "telnet", 23, ":"},
		{"nvr", ua, "http", 80, ":"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("flaws (-want +got):\n%s", diff)
	}
	// The hardened device's random passwords differ per device and are in
	// no dictionary.
	_, s := service(t, l, "hardened", "ssh", 0)
	if len(s.Password) < 16 || s.Password == "admin" {
		t.Errorf("hardened ssh password %q is not a strong random one", s.Password)
	}
}

// The default fleet's credentials must come from the shared Mirai and
// vendor lists so that a dictionary scan finds them.
func TestDefaultCredentialsInSharedLists(t *testing.T) {
	lists := []string{"mirai.csv", "routersploit-defaults.csv"}
	known := map[string]bool{}
	for _, name := range lists {
		data, err := os.ReadFile("../../shared/data/creds/" + name)
		if err != nil {
			data, err = os.ReadFile("/work/shared/data/creds/" + name)
		}
		if err != nil {
			t.Skipf("shared credential lists not found: %v", err)
		}
		for line := range strings.Lines(string(data)) {
			known[strings.TrimSpace(line)] = true
		}
	}
	for _, d := range DefaultConfig(0).Devices {
		for _, s := range d.Services {
			if s.Username == "" || s.RandomPassword || s.Protocol == "rtsp" {
				continue
			}
			if pair := s.Username + "," + s.Password; !known[pair] {
				t.Errorf("%s %s credential %s is in none of %v", d.Name, s.Protocol, pair, lists)
			}
		}
	}
}

func TestAllocateAddresses(t *testing.T) {
	devs := func(addrs ...string) Config {
		var c Config
		for i, a := range addrs {
			c.Devices = append(c.Devices, DeviceSpec{Name: fmt.Sprintf("d%d", i), Address: a})
		}
		return c
	}
	tests := []struct {
		name    string
		cfg     Config
		base    string
		want    []string
		wantErr string
	}{
		{"default base", devs("", ""), "", []string{"127.77.0.1", "127.77.0.2"}, ""},
		{"wraps third octet skipping .255 and .0", devs("", "", "", ""), "127.9.0.253",
			[]string{"127.9.0.253", "127.9.0.254", "127.9.1.1", "127.9.1.2"}, ""},
		{"wraps second octet", devs("", ""), "127.9.255.254", []string{"127.9.255.254", "127.10.0.1"}, ""},
		{"skips addresses devices name", devs("", "127.5.0.2", ""), "127.5.0.1",
			[]string{"127.5.0.1", "127.5.0.2", "127.5.0.3"}, ""},
		{"runs out at the end of 127/8", devs("", "", ""), "127.255.255.253", nil, "out of loopback addresses"},
		{"refuses a non-loopback base", devs(""), "192.168.1.1", nil, "outside 127.0.0.0/8"},
		{"refuses IPv6", devs(""), "::1", nil, "outside 127.0.0.0/8"},
		{"refuses a non-loopback device", devs("10.0.0.1"), "", nil, "outside 127.0.0.0/8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := allocateAddresses(tt.cfg, tt.base)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("addresses (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStartRefusesNonLoopback(t *testing.T) {
	cfg := DefaultConfig(1)
	cfg.Devices[0].Address = "192.168.1.10"
	if _, err := Start(context.Background(), cfg, Options{}); err == nil || !strings.Contains(err.Error(), "127.0.0.0/8") {
		t.Errorf("device address outside loopback: err = %v", err)
	}
	if _, err := Start(context.Background(), DefaultConfig(1), Options{Base: "10.1.2.3"}); err == nil || !strings.Contains(err.Error(), "127.0.0.0/8") {
		t.Errorf("base outside loopback: err = %v", err)
	}
}

func TestStartFailsCleanlyOnPortClash(t *testing.T) {
	base := testBase(t)
	ln, err := net.Listen("tcp4", net.JoinHostPort(base, "2323"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// The camera (first device) starts; the plug's telnet on 2323 cannot.
	cfg := Config{Devices: []DeviceSpec{DefaultConfig(0).Devices[0], DefaultConfig(0).Devices[2]}}
	cfg.Devices[1].Address = base
	cfg.Devices[0].Address = ""
	_, err = Start(context.Background(), cfg, Options{Base: strings.TrimSuffix(base, ".1") + ".2"})
	if err == nil || !strings.Contains(err.Error(), "plug-1") || !strings.Contains(err.Error(), "2323") {
		t.Fatalf("err = %v, want one naming plug-1 and port 2323", err)
	}
	// Everything started before the failure was stopped again.
	camera := net.JoinHostPort(strings.TrimSuffix(base, ".1")+".2", "23")
	if c, err := net.DialTimeout("tcp", camera, time.Second); err == nil {
		c.Close()
		t.Errorf("camera telnet %s still listening after failed Start", camera)
	}
}

func TestCloseOnContextCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	l, err := Start(ctx, DefaultConfig(1), Options{Base: testBase(t)})
	if err != nil {
		t.Fatal(err)
	}
	d, s := service(t, l, "camera", "telnet", 23)
	c, err := net.Dial("tcp", hostPort(d, s))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cancel()
	// The open session is closed and the port stops listening.
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1024)
	for {
		if _, err := c.Read(buf); err != nil {
			if proto.IsTimeout(err) {
				t.Fatal("open connection not closed after cancel")
			}
			break
		}
	}
	if c2, err := net.DialTimeout("tcp", hostPort(d, s), time.Second); err == nil {
		c2.Close()
		t.Error("still listening after cancel")
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// A 500-device lab starts, every device gets its own address, the last
// one answers, and Close leaves no goroutine behind.
func TestLargeLab(t *testing.T) {
	if testing.Short() {
		t.Skip("large lab skipped in -short")
	}
	before := runtime.NumGoroutine()
	l, err := Start(context.Background(), DefaultConfig(500), Options{Base: testBase(t)})
	if err != nil {
		t.Fatal(err)
	}
	devs := l.Devices()
	if len(devs) != 500 || len(l.Targets()) != 500 {
		t.Fatalf("%d devices, %d targets", len(devs), len(l.Targets()))
	}
	seen := map[string]bool{}
	for _, d := range devs {
		if seen[d.Address] {
			t.Fatalf("address %s used twice", d.Address)
		}
		seen[d.Address] = true
		if _, err := loopbackAddr(d.Address); err != nil {
			t.Fatal(err)
		}
	}
	last := devs[len(devs)-1]
	for _, s := range last.Services {
		if s.Transport != "tcp" {
			continue
		}
		c, err := net.DialTimeout("tcp", hostPort(last, s), 2*time.Second)
		if err != nil {
			t.Fatalf("last device %s: %v", last.Name, err)
		}
		c.Close()
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Goroutines end soon after Close (some library ones exit lazily).
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+10 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+10 {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		file    string
		wantErr []string // substrings; empty = loads
	}{
		{"testdata/valid.yaml", nil},
		{"testdata/unknown-field.yaml", []string{"line 6", "portt"}},
		{"testdata/bad-protocol.yaml", []string{"bad-protocol.yaml:9:", "devices[0].services[1].protocol", `"telnt"`}},
		{"testdata/bad-yaml.yaml", []string{"bad-yaml.yaml: line 3:", "did not find expected"}},
		{"testdata/bad-address.yaml", []string{"bad-address.yaml:4:", "devices[0].address", "127.0.0.0/8"}},
		{"testdata/duplicate-port.yaml", []string{"duplicate-port.yaml:9:", "devices[0].services[1].port", "tcp/23"}},
		{"testdata/missing-account.yaml", []string{"missing-account.yaml:5:", "devices[0].services[0]", "username"}},
		{"testdata/empty.yaml", []string{"empty lab config"}},
		{"testdata/does-not-exist.yaml", []string{"does-not-exist.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			cfg, err := LoadConfig(tt.file)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if len(cfg.Devices) == 0 {
					t.Fatal("no devices loaded")
				}
				return
			}
			if err == nil {
				t.Fatalf("loaded %+v, want an error", cfg)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestValidateServices(t *testing.T) {
	tests := []struct {
		name    string
		svc     ServiceSpec
		wantErr string
	}{
		{"telnet account", ServiceSpec{Protocol: "telnet", Username: "root", Password: "x"}, ""},
		{"blank password is an account", ServiceSpec{Protocol: "telnet", Username: "root"}, ""},
		{"no account", ServiceSpec{Protocol: "ssh"}, "needs a username"},
		{"both passwords", ServiceSpec{Protocol: "ssh", Username: "a", Password: "b", RandomPassword: true}, "either password or random_password"},
		{"ftp anonymous plus account", ServiceSpec{Protocol: "ftp", NoAuth: true, Username: "a", Password: "b"}, ""},
		{"telnet no_auth with account", ServiceSpec{Protocol: "telnet", NoAuth: true, Username: "a"}, "only makes sense for ftp"},
		{"snmp without community", ServiceSpec{Protocol: "snmp"}, "community"},
		{"coap with credentials", ServiceSpec{Protocol: "coap", Username: "a"}, "no login"},
		{"bad auth", ServiceSpec{Protocol: "http", Username: "a", Auth: "ntlm"}, "unknown auth"},
		{"rtsp form", ServiceSpec{Protocol: "rtsp", Username: "a", Auth: "form"}, "no form login"},
		{"bad port", ServiceSpec{Protocol: "http", NoAuth: true, Port: 70000}, "out of range"},
		{"control character", ServiceSpec{Protocol: "telnet", Username: "ro\not"}, "control character"},
		{"ssh banner", ServiceSpec{Protocol: "ssh", Username: "a", Banner: "dropbear"}, "SSH-2.0-"},
		{"paths on http", ServiceSpec{Protocol: "http", NoAuth: true, Paths: []string{"x"}}, "only for rtsp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Devices: []DeviceSpec{{Name: "d", Kind: "camera", Services: []ServiceSpec{tt.svc}}}}
			err := cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
