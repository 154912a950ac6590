package robustness

import (
	"context"
	"testing"
	"time"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/lab"
	"github.com/iotcop/iotcop/proto"
)

// survives runs the whole catalogue against services and wants every
// applicable probe delivered, every service watched and no failure.
func survives(t *testing.T, ctx context.Context, services []Service) Outcome {
	t.Helper()
	want := 0
	for _, s := range services {
		for _, p := range Catalogue() {
			if p.appliesTo(s) {
				want++
			}
		}
	}
	r := &Runner{Budget: testBudget}
	out, err := r.Run(ctx, services)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Unwatched) > 0 {
		t.Fatalf("services not watched: %v", out.Unwatched)
	}
	if out.Failure != nil {
		t.Fatalf("failure after %s on %s: stopped %v, restart %q", out.Failure.Run.Probe, out.Failure.Run.Service,
			out.Failure.Stopped, out.Failure.Restart)
	}
	if len(out.Runs) != want {
		t.Errorf("%d probes sent, want %d", len(out.Runs), want)
	}
	for _, r := range out.Runs {
		if r.Err != nil {
			t.Errorf("%s on %s not delivered: %v", r.Probe, r.Service, r.Err)
		}
		t.Logf("%-32s %-16s %6d bytes  %s", r.Probe, r.Service, r.BytesSent, r.Reply)
	}
	return out
}

// TestRealDaemonsSurvive: real Debian daemons take the whole catalogue.
func TestRealDaemonsSurvive(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		start func(t *testing.T) (daemontest.Service, string)
	}{
		{"lighttpd", func(t *testing.T) (daemontest.Service, string) {
			return daemontest.Lighttpd(t, daemontest.LighttpdOptions{Auth: daemontest.HTTPAuth{None: true},
				Files: map[string]string{"index.html": "hello"}}), "http"
		}},
		{"lighttpd https", func(t *testing.T) (daemontest.Service, string) {
			return daemontest.Lighttpd(t, daemontest.LighttpdOptions{Auth: daemontest.HTTPAuth{Path: "/admin"}, TLS: true}), "http"
		}},
		{"mosquitto", func(t *testing.T) (daemontest.Service, string) {
			return daemontest.Mosquitto(t, daemontest.MosquittoOptions{Anonymous: true}), "mqtt"
		}},
		{"mosquitto with passwords", func(t *testing.T) (daemontest.Service, string) {
			return daemontest.Mosquitto(t, daemontest.MosquittoOptions{}), "mqtt"
		}},
		{"libcoap", func(t *testing.T) (daemontest.Service, string) {
			return daemontest.CoapServer(t, daemontest.CoapServerOptions{}), "coap"
		}},
		{"busybox telnetd", func(t *testing.T) (daemontest.Service, string) {
			return daemontest.BusyboxTelnetd(t, daemontest.TelnetdOptions{}), "telnet"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, protocol := tt.start(t)
			ep := d.Endpoint()
			survives(t, daemontest.Context(t), []Service{{Endpoint: ep, Protocol: protocol, ServerFirst: protocol == "telnet"}})
		})
	}
}

// TestMosquittoUptime reads a real broker's $SYS uptime, the restart sign.
func TestMosquittoUptime(t *testing.T) {
	t.Parallel()
	d := daemontest.Mosquitto(t, daemontest.MosquittoOptions{Anonymous: true})
	ctx := daemontest.Context(t)
	si, err := readSys(ctx, d.Endpoint())
	if err != nil {
		t.Fatalf("read $SYS: %v", err)
	}
	if !si.hasUptime {
		t.Fatalf("no uptime: %+v", si)
	}
	// A broker that wants a password gives nothing, and says so.
	locked := daemontest.Mosquitto(t, daemontest.MosquittoOptions{})
	if _, err := readSys(ctx, locked.Endpoint()); err == nil {
		t.Error("read $SYS from a broker that refuses anonymous sessions")
	}
}

// TestLabDeviceSurvives: a lab device of every probed protocol, plain and
// TLS, takes the whole catalogue (the robust counterpart of the fragile
// devices in check's tests).
func TestLabDeviceSurvives(t *testing.T) {
	t.Parallel()
	ctx := daemontest.Context(t)
	l, err := lab.Start(ctx, lab.Config{Devices: []lab.DeviceSpec{{Name: "robust", Kind: "hub", Services: []lab.ServiceSpec{
		{Protocol: "telnet", Port: 2323, NoAuth: true},
		{Protocol: "http", Port: 8080, Username: "admin", Password: "admin"},
		{Protocol: "https", Port: 8443, Username: "admin", RandomPassword: true, Auth: "digest+form"},
		{Protocol: "rtsp", Port: 8554, Username: "admin", Password: "12345"},
		{Protocol: "mqtt", NoAuth: true},
		{Protocol: "mqtts", Username: "hub", Password: "hub"},
		{Protocol: "coap"},
		{Protocol: "adb"},
	}}}}, lab.Options{Base: daemontest.Base()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	d := l.Devices()[0]
	var services []Service
	for _, s := range d.Services {
		p := map[string]string{"https": "http", "mqtts": "mqtt"}[s.Protocol]
		if p == "" {
			p = s.Protocol
		}
		services = append(services, Service{
			Endpoint:    proto.Endpoint{Host: d.Address, Port: s.Port, Transport: s.Transport, TLS: s.TLS, Timeout: 2 * time.Second},
			Protocol:    p,
			ServerFirst: p == "telnet",
		})
	}
	out := survives(t, ctx, services)
	// The anonymous broker told its age; the one with a password did not.
	if len(out.Runs) == 0 {
		t.Fatal("nothing sent")
	}
	w := &watcher{budget: testBudget.WithDefaults()}
	for _, s := range services {
		if s.Protocol == "mqtt" && !s.Endpoint.TLS {
			if _, err := readSys(context.Background(), w.endpoint(s)); err != nil {
				t.Errorf("lab broker $SYS: %v", err)
			}
		}
	}
}
