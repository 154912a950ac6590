package lab

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/iotcop/iotcop/internal/yamlpath"
)

//go:embed default.yaml
var defaultFleetYAML []byte

// Kinds are the device personalities a DeviceSpec may name.
var kinds = []string{"camera", "hub", "plug", "router", "tv", "nvr", "hardened"}

// protocolInfo describes each protocol a ServiceSpec may name.
type protocolInfo struct {
	port      int
	transport string
	tls       bool
	login     bool // has an account (username/password or no_auth)
}

var protocols = map[string]protocolInfo{
	"telnet": {23, "tcp", false, true},
	"ssh":    {22, "tcp", false, true},
	"http":   {80, "tcp", false, true},
	"https":  {443, "tcp", true, true},
	"ftp":    {21, "tcp", false, true},
	"mqtt":   {1883, "tcp", false, true},
	"mqtts":  {8883, "tcp", true, true},
	"rtsp":   {554, "tcp", false, true},
	"coap":   {5683, "udp", false, false},
	"snmp":   {161, "udp", false, false},
	"upnp":   {1900, "udp", false, false},
	"adb":    {5555, "tcp", false, false},
}

func protocolNames() string {
	names := make([]string, 0, len(protocols))
	for n := range protocols {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// maxField bounds every string in a config (names, banners, credentials).
const maxField = 256

// DefaultConfig returns the embedded default fleet scaled to n devices by
// repeating its templates (camera, hub, plug, router, tv, hardened, nvr)
// in turn; names get a -1, -2, ... suffix. n <= 0 gives one of each.
func DefaultConfig(n int) Config {
	tmpl, err := ParseConfig(defaultFleetYAML, "default.yaml")
	if err != nil {
		// The embedded file is tested; failing here is a build defect.
		panic(fmt.Sprintf("lab: embedded default fleet: %v", err))
	}
	if n <= 0 {
		n = len(tmpl.Devices)
	}
	cfg := Config{Devices: make([]DeviceSpec, 0, n)}
	for i := range n {
		t := tmpl.Devices[i%len(tmpl.Devices)]
		d := t
		d.Name = fmt.Sprintf("%s-%d", t.Name, i/len(tmpl.Devices)+1)
		d.Address = ""
		d.Services = make([]ServiceSpec, len(t.Services))
		for j, s := range t.Services {
			s.Paths = slices.Clone(s.Paths)
			d.Services[j] = s
		}
		cfg.Devices = append(cfg.Devices, d)
	}
	return cfg
}

// WebFleet is a fleet of n cameras with one web interface each (HTTP basic
// authentication on port 8080): even-numbered ones keep the universal
// admin/admin, a default-credentials flaw; odd ones have their own random
// password. One listener per device makes it cheap in the thousands, for
// scale tests and benchmarks.
func WebFleet(n int) Config {
	cfg := Config{Devices: make([]DeviceSpec, 0, n)}
	for i := range n {
		svc := ServiceSpec{Protocol: "http", Port: 8080, Auth: "basic", Username: "admin", Password: "admin"}
		if i%2 == 1 {
			svc.Password, svc.RandomPassword = "", true
		}
		cfg.Devices = append(cfg.Devices, DeviceSpec{Name: fmt.Sprintf("cam-%d", i), Kind: "camera",
			Vendor: "Vistacam", Model: "IPC-2130", Firmware: "4.02", Services: []ServiceSpec{svc}})
	}
	return cfg
}

// LoadConfig reads a lab config from a YAML file. Errors name the file, the
// line and the field at fault.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("load lab config: %w", err)
	}
	return ParseConfig(data, path)
}

// ParseConfig parses and validates a YAML lab config; name labels errors.
func ParseConfig(data []byte, name string) (Config, error) {
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return Config{}, fmt.Errorf("%s: empty lab config (want a devices: list)", name)
		}
		return Config{}, fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if err := cfg.Validate(); err != nil {
		var fe *fieldError
		if errors.As(err, &fe) {
			var root yaml.Node
			if yaml.Unmarshal(data, &root) == nil {
				if line := yamlpath.Line(&root, fe.path); line > 0 {
					return Config{}, fmt.Errorf("%s:%d: %w", name, line, err)
				}
			}
		}
		return Config{}, fmt.Errorf("%s: %w", name, err)
	}
	return cfg, nil
}

// fieldError is a validation error at a path such as devices[1].services[0].port.
type fieldError struct {
	path []any // string keys and int indexes
	msg  string
}

func (e *fieldError) Error() string {
	var sb strings.Builder
	for i, p := range e.path {
		switch v := p.(type) {
		case int:
			sb.WriteString("[" + strconv.Itoa(v) + "]")
		case string:
			if i > 0 {
				sb.WriteByte('.')
			}
			sb.WriteString(v)
		}
	}
	return sb.String() + ": " + e.msg
}

func fieldErr(msg string, path ...any) error {
	return &fieldError{path: path, msg: msg}
}

// Validate checks a config and returns the first problem found, naming its
// field (devices[1].services[0].protocol).
func (c Config) Validate() error {
	if len(c.Devices) == 0 {
		return fieldErr("no devices configured", "devices")
	}
	names := map[string]int{}
	addrs := map[string]int{}
	for i, d := range c.Devices {
		at := func(field string) []any { return []any{"devices", i, field} }
		if strings.TrimSpace(d.Name) == "" {
			return fieldErr("missing device name", at("name")...)
		}
		if j, dup := names[d.Name]; dup {
			return fieldErr(fmt.Sprintf("device name %q already used by devices[%d]", d.Name, j), at("name")...)
		}
		names[d.Name] = i
		if !slices.Contains(kinds, d.Kind) {
			return fieldErr(fmt.Sprintf("unknown kind %q (want one of %s)", d.Kind, strings.Join(kinds, ", ")), at("kind")...)
		}
		for _, f := range [][2]string{{"name", d.Name}, {"vendor", d.Vendor}, {"model", d.Model}, {"firmware", d.Firmware}} {
			if err := checkText(f[1]); err != nil {
				return fieldErr(err.Error(), at(f[0])...)
			}
		}
		if d.Address != "" {
			a, err := loopbackAddr(d.Address)
			if err != nil {
				return fieldErr(err.Error(), at("address")...)
			}
			if j, dup := addrs[a.String()]; dup {
				return fieldErr(fmt.Sprintf("address %s already used by devices[%d]", a, j), at("address")...)
			}
			addrs[a.String()] = i
		}
		if len(d.Services) == 0 {
			return fieldErr("device has no services", at("services")...)
		}
		ports := map[string]int{}
		for j, s := range d.Services {
			if err := s.validate(); err != nil {
				var fe *fieldError
				if errors.As(err, &fe) {
					fe.path = append([]any{"devices", i, "services", j}, fe.path...)
				}
				return err
			}
			rs := resolveService(s)
			for _, tp := range rs.sockets() {
				if k, dup := ports[tp]; dup {
					return fieldErr(fmt.Sprintf("port %s already used by services[%d]", tp, k),
						"devices", i, "services", j, "port")
				}
				ports[tp] = j
			}
		}
	}
	return nil
}

// validate checks one service on its own.
func (s ServiceSpec) validate() error {
	info, ok := protocols[s.Protocol]
	if !ok {
		return fieldErr(fmt.Sprintf("unknown protocol %q (want one of %s)", s.Protocol, protocolNames()), "protocol")
	}
	if s.Port < 0 || s.Port > 65535 {
		return fieldErr(fmt.Sprintf("port %d out of range 1-65535 (0 = the usual %d)", s.Port, info.port), "port")
	}
	for _, f := range [][2]string{{"username", s.Username}, {"password", s.Password},
		{"community", s.Community}, {"realm", s.Realm}, {"banner", s.Banner}} {
		if err := checkText(f[1]); err != nil {
			return fieldErr(err.Error(), f[0])
		}
	}
	if s.Protocol == "ssh" && s.Banner != "" && !strings.HasPrefix(s.Banner, "SSH-2.0-") {
		return fieldErr(`an ssh banner is the version string and starts with "SSH-2.0-"`, "banner")
	}
	if strings.ContainsAny(s.Realm, `"\`) {
		return fieldErr(`realm must not contain " or \`, "realm")
	}
	hasCreds := s.Username != "" || s.Password != "" || s.RandomPassword
	switch {
	case s.Protocol == "snmp":
		if s.Username != "" || s.Password != "" || s.NoAuth {
			return fieldErr("snmp takes a community (or random_password), not username/password/no_auth", "username")
		}
		if (s.Community == "") == !s.RandomPassword {
			return fieldErr("snmp needs exactly one of community or random_password", "community")
		}
		if len(s.Community) > 64 {
			return fieldErr("community longer than 64 bytes", "community")
		}
	case !info.login:
		if hasCreds || s.Community != "" {
			return fieldErr(s.Protocol+" has no login in the lab (it is always open); remove the credentials", "username")
		}
	default:
		if s.Community != "" {
			return fieldErr("community is only for snmp", "community")
		}
		if s.RandomPassword && s.Password != "" {
			return fieldErr("set either password or random_password, not both", "password")
		}
		if s.Password != "" && s.Username == "" {
			return fieldErr("password without username", "username")
		}
		if s.RandomPassword && s.Username == "" {
			return fieldErr("random_password needs a username", "username")
		}
		if !s.NoAuth && s.Username == "" {
			return fieldErr(s.Protocol+" needs a username (and password or random_password) or no_auth: true", "username")
		}
		if s.NoAuth && hasCreds && s.Protocol != "ftp" {
			return fieldErr("no_auth with an account only makes sense for ftp (anonymous plus an account)", "no_auth")
		}
	}
	if s.Auth != "" {
		if s.Protocol != "http" && s.Protocol != "https" && s.Protocol != "rtsp" {
			return fieldErr("auth is only for http, https and rtsp", "auth")
		}
		if _, err := parseAuth(s.Auth, s.Protocol); err != nil {
			return fieldErr(err.Error(), "auth")
		}
	}
	if len(s.Paths) > 0 {
		if s.Protocol != "rtsp" {
			return fieldErr("paths is only for rtsp", "paths")
		}
		for k, p := range s.Paths {
			if p == "" || len(p) > maxField || strings.ContainsAny(p, " \t\r\n?#") {
				return fieldErr(fmt.Sprintf("bad stream path %q", p), "paths", k)
			}
		}
	}
	if s.SharedHostKey && s.Protocol != "ssh" {
		return fieldErr("shared_host_key is only for ssh", "shared_host_key")
	}
	if err := s.validateFragile(); err != nil {
		return err
	}
	if s.DescriptionPort != 0 {
		if s.Protocol != "upnp" {
			return fieldErr("description_port is only for upnp", "description_port")
		}
		if s.DescriptionPort < 0 || s.DescriptionPort > 65535 {
			return fieldErr(fmt.Sprintf("description_port %d out of range 1-65535", s.DescriptionPort), "description_port")
		}
	}
	return nil
}

// checkText refuses control characters (they would break line-based
// protocols) and overlong values.
func checkText(v string) error {
	if len(v) > maxField {
		return fmt.Errorf("longer than %d bytes", maxField)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("control character %q not allowed", r)
		}
	}
	return nil
}

// loopbackAddr parses an IPv4 address and refuses anything outside
// 127.0.0.0/8.
func loopbackAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("address %q is not an IPv4 address", s)
	}
	a = a.Unmap()
	if !a.Is4() || a.As4()[0] != 127 {
		return netip.Addr{}, fmt.Errorf("address %s is outside 127.0.0.0/8: the lab binds only to loopback addresses", s)
	}
	return a, nil
}

// httpAuth is a parsed Auth setting.
type httpAuth struct {
	basic, digest, form bool
}

func parseAuth(s, protocol string) (httpAuth, error) {
	var a httpAuth
	if s == "" {
		a.basic = true
		return a, nil
	}
	for part := range strings.SplitSeq(s, "+") {
		switch strings.TrimSpace(part) {
		case "basic":
			a.basic = true
		case "digest":
			a.digest = true
		case "form":
			if protocol == "rtsp" {
				return a, errors.New("rtsp has no form login (want basic or digest)")
			}
			a.form = true
		default:
			return a, fmt.Errorf("unknown auth %q (want basic, digest, form, basic+form or digest+form)", part)
		}
	}
	if a.basic && a.digest {
		return a, errors.New("choose basic or digest, not both")
	}
	return a, nil
}

// resolveService applies defaults: the usual port, transport, TLS and a
// random password where asked.
func resolveService(s ServiceSpec) RunningService {
	info := protocols[s.Protocol]
	if s.Port == 0 {
		s.Port = info.port
	}
	if s.Protocol == "upnp" && s.DescriptionPort == 0 {
		s.DescriptionPort = 49152
	}
	if s.Protocol == "rtsp" && len(s.Paths) == 0 {
		s.Paths = []string{"live/ch01_0", "live.sdp"}
	}
	if s.Protocol == "coap" || s.Protocol == "adb" {
		// The lab's CoAP and ADB have no login at all.
		s.NoAuth = true
	}
	return RunningService{ServiceSpec: s, Transport: info.transport, TLS: info.tls}
}

// sockets lists the transport/port pairs a service binds.
func (s RunningService) sockets() []string {
	out := []string{s.Transport + "/" + strconv.Itoa(s.Port)}
	if s.Protocol == "upnp" {
		out = append(out, "tcp/"+strconv.Itoa(s.DescriptionPort))
	}
	return out
}
