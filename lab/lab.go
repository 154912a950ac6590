// Package lab runs a fleet of virtual consumer IoT devices on loopback
// addresses for the demo, examples, tests and benchmarks. Each device speaks
// the real protocols (telnet with option negotiation, SSH via x/crypto/ssh, an
// MQTT broker, FTP, HTTP basic/digest/form, RTSP, CoAP, SNMP, SSDP, ADB) with
// flaws set by a small config, so a scanner cannot tell it from hardware.
//
// Every device gets its own 127.x.y.z address; the lab refuses to bind to
// anything outside 127.0.0.0/8. Servers bound every read, time out idle peers
// and close when the lab's context is cancelled or Close is called.
package lab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/proto"
)

// Config is a fleet of virtual devices (the YAML form of a lab).
type Config struct {
	Devices []DeviceSpec `yaml:"devices"`
}

// DeviceSpec is one virtual device.
type DeviceSpec struct {
	// Name is unique within the lab ("camera-1").
	Name string `yaml:"name"`
	// Kind selects the device's personality (CPU, pages, MIB, topics):
	// camera, hub, plug, router, tv, nvr or hardened.
	Kind     string `yaml:"kind"`
	Vendor   string `yaml:"vendor"`
	Model    string `yaml:"model"`
	Firmware string `yaml:"firmware"`
	// Address is the device's 127.x.y.z address; empty means allocate one
	// from Options.Base.
	Address  string        `yaml:"address"`
	Services []ServiceSpec `yaml:"services"`
}

// ServiceSpec is one listening service and its flaw.
type ServiceSpec struct {
	// Protocol is one of telnet, ssh, http, https, ftp, mqtt, mqtts, rtsp,
	// coap, snmp, upnp, adb.
	Protocol string `yaml:"protocol"`
	// Port is the listening port; 0 means the protocol's usual one.
	Port int `yaml:"port"`
	// Username and Password are the service's account. A fixed password in
	// the config is the same on every unit: a universal default password,
	// reported as a default-credentials flaw.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// RandomPassword gives each device its own strong random password (and
	// SNMP community): no flaw.
	RandomPassword bool `yaml:"random_password"`
	// NoAuth opens the service to anyone: telnet shell without login,
	// anonymous FTP, anonymous MQTT, RTSP or HTTP without authentication.
	NoAuth bool `yaml:"no_auth"`
	// Community is the SNMP read community.
	Community string `yaml:"community"`
	// Auth is the HTTP/RTSP scheme: basic, digest or form; "digest+form"
	// (or "basic+form") protects the site with digest and also offers a
	// login form at /login.html. Default basic.
	Auth string `yaml:"auth"`
	// Realm is the HTTP/RTSP authentication realm (default from the device).
	Realm string `yaml:"realm"`
	// Banner is what the service calls itself: the HTTP/RTSP Server header,
	// the SSH version string, the FTP greeting, the telnet pre-login text or
	// the MQTT $SYS/broker/version. Default from the device.
	Banner string `yaml:"banner"`
	// Paths are the RTSP stream paths that answer DESCRIBE (default
	// live/ch01_0 and live.sdp).
	Paths []string `yaml:"paths"`
	// SharedHostKey makes devices of the same vendor and model share one SSH
	// host key (as a firmware image baked with a key does).
	SharedHostKey bool `yaml:"shared_host_key"`
	// SecurityTxt serves a valid RFC 9116 vulnerability disclosure policy
	// at /.well-known/security.txt (http and https).
	SecurityTxt bool `yaml:"security_txt"`
	// DescriptionPort is the TCP port serving the UPnP description XML that
	// SSDP answers point to (default 49152).
	DescriptionPort int `yaml:"description_port"`
	// Fragile names malformed inputs (by iotcop's robustness probe names,
	// e.g. "http-oversized-header") that make this service fail, for testing
	// the robustness check; see fragile.go. Plain-text TCP services only.
	Fragile []string `yaml:"fragile"`
	// FragileMode is how it fails: "reboot" (default; the whole device is
	// down for a few seconds) or "hang" (this service stops answering).
	FragileMode string `yaml:"fragile_mode"`
}

// Options control how a lab starts.
type Options struct {
	// Base is the first address handed to devices without one (default
	// 127.77.0.1); later devices get the following addresses, skipping
	// .0 and .255. It must lie in 127.0.0.0/8.
	Base string
	// Logger receives connection and error logs; nil discards them.
	Logger *slog.Logger
}

// DefaultBase is the first address allocated when Options.Base is empty.
const DefaultBase = "127.77.0.1"

// RunningService is a started service: its resolved spec (random passwords
// filled in, default port applied) and how to reach it.
type RunningService struct {
	ServiceSpec
	// Transport is "tcp" or "udp".
	Transport string
	// TLS is true for https and mqtts.
	TLS bool
}

// Flaw is a finding a correct scanner is expected to report.
type Flaw struct {
	// Check is finding.CheckDefaultCredentials or
	// finding.CheckUnauthenticatedAccess.
	Check     string
	Protocol  string
	Port      int
	Transport string
	// Credential is the universal default (for SNMP the community is the
	// Password); empty for unauthenticated access.
	Credential proto.Credential
}

// RunningDevice is a started device.
type RunningDevice struct {
	Name, Kind, Vendor, Model, Firmware string
	Address                             string
	Services                            []RunningService
	// Flaws are what a dictionary scan with the built-in lists should find.
	Flaws []Flaw
}

// Lab is a running fleet.
type Lab struct {
	devices []RunningDevice
	log     *slog.Logger

	mu      sync.Mutex
	closers []func()
	closed  bool
	stop    func() bool
	// wrap, when set, wraps each TCP listener (fragile devices watch input).
	wrap func(net.Listener, RunningService) net.Listener
}

// Start starts every device of cfg and returns once all listen. Devices stop
// when ctx is cancelled or Close is called. On any error nothing is left
// running.
func Start(ctx context.Context, cfg Config, opts Options) (*Lab, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	addrs, err := allocateAddresses(cfg, opts.Base)
	if err != nil {
		return nil, err
	}
	l := &Lab{log: log}
	keys := newKeyStore()
	for i, spec := range cfg.Devices {
		if err := ctx.Err(); err != nil {
			l.Close()
			return nil, fmt.Errorf("start lab: %w", err)
		}
		rd, err := l.startDevice(spec, addrs[i], keys)
		if err != nil {
			l.Close()
			return nil, err
		}
		l.devices = append(l.devices, rd)
	}
	l.stop = context.AfterFunc(ctx, func() { _ = l.Close() })
	return l, nil
}

// Devices returns the running devices in config order (a copy the caller
// may change).
func (l *Lab) Devices() []RunningDevice {
	out := make([]RunningDevice, len(l.devices))
	for i, d := range l.devices {
		d.Services = slices.Clone(d.Services)
		for j := range d.Services {
			d.Services[j].Paths = slices.Clone(d.Services[j].Paths)
			d.Services[j].Fragile = slices.Clone(d.Services[j].Fragile)
		}
		d.Flaws = slices.Clone(d.Flaws)
		out[i] = d
	}
	return out
}

// Targets returns the device addresses in config order.
func (l *Lab) Targets() []string {
	out := make([]string, len(l.devices))
	for i, d := range l.devices {
		out[i] = d.Address
	}
	return out
}

// Close stops every device and waits for their goroutines to end. It is
// safe to call more than once.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	closers := l.closers
	l.closers = nil
	stop := l.stop
	l.mu.Unlock()
	if stop != nil {
		stop()
	}
	// Close in reverse start order; each closer waits for its goroutines.
	var wg sync.WaitGroup
	for i := len(closers) - 1; i >= 0; i-- {
		wg.Go(closers[i])
	}
	wg.Wait()
	return nil
}

func (l *Lab) addCloser(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closers = append(l.closers, f)
}

// startDevice starts each service of spec on addr.
func (l *Lab) startDevice(spec DeviceSpec, addr string, keys *keyStore) (RunningDevice, error) {
	if spec.fragile() {
		return l.startFragileDevice(spec, addr, keys)
	}
	dev := newDevice(spec, addr)
	rd := RunningDevice{Name: spec.Name, Kind: spec.Kind, Vendor: dev.vendor, Model: dev.model,
		Firmware: dev.firmware, Address: addr}
	for _, svc := range spec.Services {
		rs := resolveService(svc)
		started, err := l.startService(dev, rs, keys)
		if err != nil {
			return rd, fmt.Errorf("device %s: start %s on %s: %w", spec.Name, rs.Protocol,
				net.JoinHostPort(addr, strconv.Itoa(rs.Port)), explainBindError(err, rs.Port))
		}
		for _, s := range started {
			rd.Services = append(rd.Services, s)
			rd.Flaws = append(rd.Flaws, flawsOf(s)...)
		}
	}
	return rd, nil
}

// explainBindError adds a hint when a privileged port cannot be bound.
func explainBindError(err error, port int) error {
	if port < 1024 && errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w (ports below 1024 need root or CAP_NET_BIND_SERVICE, or sysctl net.ipv4.ip_unprivileged_port_start=0)", err)
	}
	return err
}

// flawsOf lists what a scanner should report for one started service.
func flawsOf(s RunningService) []Flaw {
	base := Flaw{Protocol: s.Protocol, Port: s.Port, Transport: s.Transport}
	var out []Flaw
	switch s.Protocol {
	case "upnp":
		return nil
	case "http":
		if s.Username == "" && !s.NoAuth {
			return nil // the UPnP description server
		}
	case "coap", "adb":
		f := base
		f.Check = finding.CheckUnauthenticatedAccess
		return []Flaw{f}
	case "snmp":
		if !s.RandomPassword {
			f := base
			f.Check = finding.CheckDefaultCredentials
			f.Credential = proto.Credential{Password: s.Community}
			out = append(out, f)
		}
		return out
	}
	if s.NoAuth {
		f := base
		f.Check = finding.CheckUnauthenticatedAccess
		out = append(out, f)
	}
	if s.Username != "" && !s.RandomPassword && (!s.NoAuth || s.Protocol == "ftp") {
		f := base
		f.Check = finding.CheckDefaultCredentials
		f.Credential = proto.Credential{Username: s.Username, Password: s.Password}
		out = append(out, f)
	}
	return out
}
