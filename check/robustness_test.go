package check

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/lab"
	"github.com/iotcop/iotcop/proto"
	"github.com/iotcop/iotcop/robustness"
)

// labDevice turns a running lab device into what the scanner would hand
// the checks after identification.
func labDevice(rd lab.RunningDevice) *Device {
	dev := &Device{Address: rd.Address}
	for _, s := range rd.Services {
		p, tls := s.Protocol, s.TLS
		switch p {
		case "https":
			p = "http"
		case "mqtts":
			p = "mqtt"
		case "upnp":
			p = "ssdp"
		}
		dev.Services = append(dev.Services, Service{
			Endpoint: proto.Endpoint{Host: rd.Address, Port: s.Port, Transport: s.Transport, TLS: tls, Timeout: 2 * time.Second},
			Identity: &proto.Identity{Protocol: p, TLS: tls},
		})
	}
	slices.SortStableFunc(dev.Services, func(a, b Service) int {
		if a.Endpoint.Transport != b.Endpoint.Transport {
			if a.Endpoint.Transport == "tcp" {
				return -1
			}
			return 1
		}
		return a.Endpoint.Port - b.Endpoint.Port
	})
	return dev
}

// robustDevice is a device with one service of each probed protocol;
// fragile makes one of them fail.
func robustDevice(name string, fragile map[string]lab.ServiceSpec) lab.DeviceSpec {
	svcs := []lab.ServiceSpec{
		{Protocol: "telnet", Port: 2323, NoAuth: true},
		{Protocol: "http", Port: 8080, Username: "admin", Password: "admin", Auth: "digest"},
		{Protocol: "rtsp", Port: 8554, Username: "admin", Password: "admin"},
		{Protocol: "mqtt", NoAuth: true},
		{Protocol: "coap"},
		{Protocol: "ssh", Port: 2222, Username: "root", RandomPassword: true},
	}
	for i, s := range svcs {
		if f, ok := fragile[s.Protocol]; ok {
			svcs[i].Fragile, svcs[i].FragileMode = f.Fragile, f.FragileMode
		}
	}
	return lab.DeviceSpec{Name: name, Kind: "camera", Services: svcs}
}

func TestRobustnessLab(t *testing.T) {
	t.Parallel()
	budget := robustness.Budget{ReplyWait: 300 * time.Millisecond, BurstConns: 20, BurstHold: 300 * time.Millisecond,
		LivenessTimeout: 2 * time.Second, Settle: 10 * time.Millisecond, RecoveryWait: time.Minute}
	tests := []struct {
		name    string
		fragile map[string]lab.ServiceSpec
		// want: the probe named, the service it was sent to, what stopped,
		// whether it came back.
		wantProbe    string
		wantProtocol string
		wantStopped  []string
		wantBack     bool
		recoveryWait time.Duration
		liveness     time.Duration
	}{
		{name: "robust"},
		{name: "reboot on oversized header",
			fragile:   map[string]lab.ServiceSpec{"http": {Fragile: []string{robustness.HTTPOversizedHeader}}},
			wantProbe: robustness.HTTPOversizedHeader, wantProtocol: "http",
			wantStopped: []string{"http 8080/tcp", "telnet 2323/tcp", "ssh 2222/tcp", "rtsp 8554/tcp", "mqtt 1883/tcp", "coap 5683/udp"},
			wantBack:    true},
		{name: "mqtt hangs on publish before connect",
			fragile:   map[string]lab.ServiceSpec{"mqtt": {Fragile: []string{robustness.MQTTPublishBeforeConnect}, FragileMode: lab.FragileHang}},
			wantProbe: robustness.MQTTPublishBeforeConnect, wantProtocol: "mqtt",
			wantStopped: []string{"mqtt 1883/tcp"}, recoveryWait: time.Second, liveness: time.Second},
		{name: "telnet reboots on the connection burst",
			fragile:   map[string]lab.ServiceSpec{"telnet": {Fragile: []string{robustness.TCPConnectionBurst}}},
			wantProbe: robustness.TCPConnectionBurst, wantProtocol: "telnet",
			wantStopped: []string{"telnet 2323/tcp", "http 8080/tcp", "ssh 2222/tcp", "rtsp 8554/tcp", "mqtt 1883/tcp", "coap 5683/udp"},
			wantBack:    true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := daemontest.Context(t)
			l, err := lab.Start(ctx, lab.Config{Devices: []lab.DeviceSpec{robustDevice("d", tt.fragile)}},
				lab.Options{Base: daemontest.Base()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = l.Close() })
			dev := labDevice(l.Devices()[0])
			b := budget
			if tt.recoveryWait > 0 {
				b.RecoveryWait = tt.recoveryWait
			}
			if tt.liveness > 0 {
				b.LivenessTimeout = tt.liveness
			}
			c := &Robustness{Budget: b}
			if !c.Intrusive() || c.ID() != finding.CheckDeviceUnresponsive {
				t.Fatalf("check %s intrusive %v", c.ID(), c.Intrusive())
			}
			fs, err := c.Run(ctx, dev)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantProbe == "" {
				if len(fs) != 0 {
					t.Fatalf("robust device: %+v", fs)
				}
				return
			}
			if len(fs) != 1 {
				t.Fatalf("got %d findings, want 1: %+v", len(fs), fs)
			}
			f := fs[0]
			ev := f.Evidence
			if f.Check != finding.CheckDeviceUnresponsive || f.Severity != finding.High ||
				!slices.Equal(f.Provisions, []string{"5.13-1", "5.9-1"}) || f.Protocol != tt.wantProtocol || f.Host != dev.Address {
				t.Errorf("finding %+v", f)
			}
			if ev["probe"] != tt.wantProbe || ev["came_back"] != tt.wantBack {
				t.Errorf("evidence probe %v came back %v, want %s %v", ev["probe"], ev["came_back"], tt.wantProbe, tt.wantBack)
			}
			stopped, _ := ev["stopped_answering"].([]string)
			if !sameSet(stopped, tt.wantStopped) {
				t.Errorf("stopped answering %v, want %v (in any order)", stopped, tt.wantStopped)
			}
			if asked, _ := ev["liveness_checks"].(map[string]any); asked["mqtt 1883/tcp"] != "mqtt connack" {
				t.Errorf("liveness checks %v: want mqtt judged by its CONNACK", ev["liveness_checks"])
			}
			if tt.wantProbe == robustness.TCPConnectionBurst {
				if n, _ := ev["connections"].(int); n < 16 {
					t.Errorf("burst held %v connections", ev["connections"])
				}
			} else if n, _ := ev["bytes_sent"].(int); n == 0 {
				t.Errorf("bytes_sent %v", ev["bytes_sent"])
			}
			if _, ok := ev["came_back_after_seconds"]; ok != tt.wantBack {
				t.Errorf("came_back_after_seconds present %v, want %v", ok, tt.wantBack)
			}
			if _, ok := ev["watched_seconds"]; ok == tt.wantBack {
				t.Errorf("watched_seconds present %v, want %v", ok, !tt.wantBack)
			}
			t.Logf("%s: %v", f.Title, ev)
		})
	}
}

// sameSet compares two lists as sets.
func sameSet(got, want []string) bool {
	g := slices.Clone(got)
	slices.Sort(g)
	w := slices.Clone(want)
	slices.Sort(w)
	return slices.Equal(g, w)
}

func TestRobustnessNothingToWatch(t *testing.T) {
	t.Parallel()
	host := daemontest.Addr()
	dev := &Device{Address: host, Services: []Service{{
		Endpoint: proto.Endpoint{Host: host, Port: 161, Transport: "udp", Timeout: time.Second},
		Identity: &proto.Identity{Protocol: "snmp"},
	}}}
	fs, err := (&Robustness{}).Run(context.Background(), dev)
	if err != nil || len(fs) != 0 {
		t.Errorf("findings %v, err %v", fs, err)
	}
}
