package check

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/iotcop/iotcop/internal/yamlpath"
)

// Manifest lists the services devices are expected to expose, from a small
// YAML file or an RFC 8520 MUD file. Every listener not in it is a finding
// of ExposedServices (EN 303 645 5.6-1: unused interfaces disabled).
type Manifest struct {
	// Source names the file it was read from.
	Source string
	// Format is "yaml" or "mud".
	Format string
	// Default applies to devices no entry of Devices matches; nil when the
	// manifest says nothing about such devices (an empty, non-nil list
	// expects no service at all).
	Default []ExpectedService
	// Devices are per-address or per-model lists, first match wins.
	Devices []DeviceManifest
	// MUDURL is the mud-url of a MUD file.
	MUDURL string
}

// DeviceManifest is the expected services of the devices at an address (or
// in a prefix) and/or of one model.
type DeviceManifest struct {
	// Address is an IP address or CIDR prefix; invalid when both are unset.
	Address netip.Prefix
	// Model matches the model a device names (UPnP modelName or
	// modelNumber, ADB ro.product.model), case-insensitively.
	Model    string
	Services []ExpectedService
	// Entry names the entry for evidence ("devices[2]").
	Entry string
}

// ExpectedService is one expected listener: a port or port range on a
// transport, optionally of one protocol.
type ExpectedService struct {
	Port, PortTo int    // inclusive range; PortTo == Port for a single port
	Transport    string // "tcp" or "udp"
	// Protocol is the expected protocol ("https", "ssh", "mqtts" ...);
	// empty accepts any.
	Protocol string
	// From says where the entry came from (a MUD ACE name), for evidence.
	From string
}

// String renders "443/tcp https", "8000-8010/tcp", "any/udp".
func (e ExpectedService) String() string {
	ports := strconv.Itoa(e.Port)
	switch {
	case e.Port == 1 && e.PortTo == 65535:
		ports = "any"
	case e.PortTo != e.Port:
		ports += "-" + strconv.Itoa(e.PortTo)
	}
	s := ports + "/" + e.Transport
	if e.Protocol != "" {
		s += " " + e.Protocol
	}
	return s
}

// maxManifestSize bounds a manifest file.
const maxManifestSize = 4 << 20

// manifestProtocols are the protocol names a manifest may use: what
// iotcop identifies, plus TLS variants and aliases.
var manifestProtocols = []string{
	"adb", "coap", "coaps", "ftp", "ftps", "http", "https", "mdns", "mqtt", "mqtts",
	"rtsp", "rtsps", "snmp", "ssdp", "ssh", "telnet", "tls", "upnp",
}

// LoadManifest reads a manifest of expected services, detecting the
// format: an RFC 8520 MUD file (JSON with an "ietf-mud:mud" or
// "ietf-access-control-list:acls" member) or the YAML form
//
//	services:                 # every device not matched below
//	  - {port: 443, transport: tcp, protocol: https}
//	devices:
//	  - address: 192.168.1.0/24   # and/or model: WR-840
//	    services: [{port: 22}]    # transport defaults to tcp
//
// Errors name the file, the line and the field at fault.
func LoadManifest(path string) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load manifest: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("load manifest %s: %w", path, err)
	}
	if len(data) > maxManifestSize {
		return nil, fmt.Errorf("load manifest %s: larger than %d bytes", path, maxManifestSize)
	}
	return ParseManifest(data, path)
}

// ParseManifest parses a manifest held in memory; name labels errors.
func ParseManifest(data []byte, name string) (*Manifest, error) {
	if isMUD(data) {
		m, err := parseMUD(data, name)
		if err != nil {
			return nil, err
		}
		return m, nil
	}
	return parseYAMLManifest(data, name)
}

// isMUD reports a JSON object with a MUD or ACL member at the top.
func isMUD(data []byte) bool {
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return false
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil {
		// Broken JSON: a MUD file if it says so, so that the error is a
		// JSON one with a position rather than a confusing YAML one.
		return bytes.Contains(data, []byte(`"ietf-mud:mud"`)) || bytes.Contains(data, []byte(`"ietf-access-control-list:acls"`))
	}
	_, mud := top["ietf-mud:mud"]
	_, acls := top["ietf-access-control-list:acls"]
	return mud || acls
}

// yamlManifest is the YAML form.
type yamlManifest struct {
	Services *[]yamlService `yaml:"services"`
	Devices  []yamlDevice   `yaml:"devices"`
}

type yamlDevice struct {
	Address  string        `yaml:"address"`
	Model    string        `yaml:"model"`
	Services []yamlService `yaml:"services"`
}

type yamlService struct {
	Port      int    `yaml:"port"`
	Transport string `yaml:"transport"`
	Protocol  string `yaml:"protocol"`
}

func parseYAMLManifest(data []byte, name string) (*Manifest, error) {
	var raw yamlManifest
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty manifest (want a services: or devices: list, or a MUD file)", name)
		}
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			return nil, fmt.Errorf("%s:%s", name, yamlTypeError(te.Errors[0]))
		}
		return nil, fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root)
	fail := func(msg string, path ...any) error {
		var fe = &manifestFieldError{path: path, msg: msg}
		if line := yamlpath.Line(&root, path); line > 0 {
			return fmt.Errorf("%s:%d: %w", name, line, fe)
		}
		return fmt.Errorf("%s: %w", name, fe)
	}
	if raw.Services == nil && len(raw.Devices) == 0 {
		return nil, fail("no services: or devices: list (want e.g. services: [{port: 443, transport: tcp, protocol: https}])")
	}
	m := &Manifest{Source: name, Format: "yaml"}
	if raw.Services != nil {
		m.Default = []ExpectedService{}
		for i, s := range *raw.Services {
			e, err := s.expected(fail, "services", i)
			if err != nil {
				return nil, err
			}
			m.Default = append(m.Default, e)
		}
	}
	for i, d := range raw.Devices {
		dm := DeviceManifest{Model: strings.TrimSpace(d.Model), Entry: fmt.Sprintf("devices[%d]", i), Services: []ExpectedService{}}
		if d.Address == "" && dm.Model == "" {
			return nil, fail("an entry needs an address (IP or CIDR) or a model", "devices", i)
		}
		if d.Address != "" {
			p, err := parseAddressOrPrefix(d.Address)
			if err != nil {
				return nil, fail(err.Error(), "devices", i, "address")
			}
			dm.Address = p
		}
		for j, s := range d.Services {
			e, err := s.expected(fail, "devices", i, "services", j)
			if err != nil {
				return nil, err
			}
			dm.Services = append(dm.Services, e)
		}
		m.Devices = append(m.Devices, dm)
	}
	return m, nil
}

// yamlUnknownField matches yaml.v3's message for a field KnownFields refuses.
var yamlUnknownField = regexp.MustCompile(`^line (\d+): field (\S+) not found in type \S+\.(\w+)$`)

// yamlFields are the fields each YAML manifest type takes, for errors.
var yamlFields = map[string]string{
	"yamlManifest": "services, devices",
	"yamlDevice":   "address, model, services",
	"yamlService":  "port, transport, protocol",
}

// yamlTypeError rewrites a yaml.v3 decoding error as "LINE: message"
// without Go type names.
func yamlTypeError(msg string) string {
	if m := yamlUnknownField.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s: unknown field %q (want %s)", m[1], m[2], yamlFields[m[3]])
	}
	if line, rest, ok := strings.Cut(strings.TrimPrefix(msg, "line "), ": "); ok {
		return line + ": " + rest
	}
	return " " + msg
}

func (s yamlService) expected(fail func(string, ...any) error, path ...any) (ExpectedService, error) {
	at := func(field string) []any { return append(slices.Clone(path), field) }
	if s.Port < 1 || s.Port > 65535 {
		return ExpectedService{}, fail(fmt.Sprintf("port %d: want a port number 1-65535", s.Port), at("port")...)
	}
	tr := strings.ToLower(strings.TrimSpace(s.Transport))
	switch tr {
	case "":
		tr = "tcp"
	case "tcp", "udp":
	default:
		return ExpectedService{}, fail(fmt.Sprintf("transport %q: want tcp or udp", s.Transport), at("transport")...)
	}
	p := strings.ToLower(strings.TrimSpace(s.Protocol))
	if p != "" && !slices.Contains(manifestProtocols, p) {
		return ExpectedService{}, fail(fmt.Sprintf("unknown protocol %q (want one of %s, or leave it out)", s.Protocol, strings.Join(manifestProtocols, ", ")), at("protocol")...)
	}
	return ExpectedService{Port: s.Port, PortTo: s.Port, Transport: tr, Protocol: p}, nil
}

func parseAddressOrPrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("address %q: not an IP address or CIDR prefix", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("address %q: not an IP address or CIDR prefix", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// manifestFieldError is a problem at a path such as devices[1].services[0].port.
type manifestFieldError struct {
	path []any // string keys and int indexes
	msg  string
}

func (e *manifestFieldError) Error() string {
	p := fieldPath(e.path)
	if p == "" {
		return e.msg
	}
	return p + ": " + e.msg
}

func fieldPath(path []any) string {
	var sb strings.Builder
	for i, p := range path {
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
	return sb.String()
}

// Expected returns the services the manifest expects on dev and which
// entry said so; ok is false when the manifest says nothing about dev.
func (m *Manifest) Expected(dev *Device) (services []ExpectedService, entry string, ok bool) {
	if m == nil {
		return nil, "", false
	}
	addr, _ := netip.ParseAddr(dev.Address)
	addr = addr.Unmap()
	models := deviceModels(dev)
	for _, d := range m.Devices {
		if d.Address.IsValid() && (!addr.IsValid() || !d.Address.Contains(addr)) {
			continue
		}
		if d.Model != "" && !slices.ContainsFunc(models, func(s string) bool { return strings.EqualFold(s, d.Model) }) {
			continue
		}
		return d.Services, d.Entry, true
	}
	if m.Default != nil {
		entry := "services (every device)"
		if m.Format == "mud" {
			entry = "MUD " + m.MUDURL
		}
		return m.Default, entry, true
	}
	return nil, "", false
}

// deviceModels lists the model names a device's services gave.
func deviceModels(dev *Device) []string {
	var out []string
	for _, s := range dev.Services {
		if s.Identity == nil {
			continue
		}
		for _, k := range []string{"model_name", "model_number", "product_model"} {
			if v := strings.TrimSpace(s.Identity.Info[k]); v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

// Allows reports whether e covers the service, and when the port matches
// but the protocol does not, why.
func (e ExpectedService) Allows(s Service) (ok bool, mismatch string) {
	if !strings.EqualFold(e.Transport, s.Endpoint.Transport) || s.Endpoint.Port < e.Port || s.Endpoint.Port > e.PortTo {
		return false, ""
	}
	if e.Protocol == "" || s.Identity == nil {
		return true, ""
	}
	got := s.Identity.Protocol
	if got == "" || got == "unknown" {
		return true, "" // nothing proves it is another protocol
	}
	tls := s.Endpoint.TLS || s.Identity.TLS
	names := []string{got}
	if got == "ssdp" {
		names = append(names, "upnp")
	}
	if tls {
		names = append(names, got+"s", "tls")
	}
	if slices.Contains(names, e.Protocol) {
		return true, ""
	}
	label := got
	if tls {
		label += " over TLS"
	} else if strings.TrimSuffix(e.Protocol, "s") == got {
		label += " without TLS"
	}
	return false, fmt.Sprintf("serves %s, the manifest expects %s", label, e.Protocol)
}

// mudFile is the part of an RFC 8520 MUD file read: the policies and the
// ietf-access-control-list ACLs they name (RFC 8519).
type mudFile struct {
	MUD *struct {
		Version    *int       `json:"mud-version"`
		URL        string     `json:"mud-url"`
		Systeminfo string     `json:"systeminfo"`
		From       *mudPolicy `json:"from-device-policy"`
		To         *mudPolicy `json:"to-device-policy"`
	} `json:"ietf-mud:mud"`
	ACLs *struct {
		ACL []mudACL `json:"acl"`
	} `json:"ietf-access-control-list:acls"`
}

type mudPolicy struct {
	AccessLists struct {
		AccessList []struct {
			Name string `json:"name"`
		} `json:"access-list"`
	} `json:"access-lists"`
}

type mudACL struct {
	Name string `json:"name"`
	Aces struct {
		Ace []mudACE `json:"ace"`
	} `json:"aces"`
}

type mudACE struct {
	Name    string `json:"name"`
	Matches struct {
		IPv4 *mudIPMatch      `json:"ipv4"`
		IPv6 *mudIPMatch      `json:"ipv6"`
		TCP  *mudL4Match      `json:"tcp"`
		UDP  *mudL4Match      `json:"udp"`
		MUD  *json.RawMessage `json:"ietf-mud:mud"` // local-networks, same-manufacturer, controller ...: all accepted
	} `json:"matches"`
	Actions struct {
		Forwarding string `json:"forwarding"`
	} `json:"actions"`
}

type mudIPMatch struct {
	Protocol *int `json:"protocol"`
}

type mudL4Match struct {
	Direction string       `json:"ietf-mud:direction-initiated"`
	Src       *mudPortSpec `json:"source-port"`
	Dst       *mudPortSpec `json:"destination-port"`
}

type mudPortSpec struct {
	Operator string `json:"operator"`
	Port     *int   `json:"port"`
	Lower    *int   `json:"lower-port"`
	Upper    *int   `json:"upper-port"`
}

const (
	mudRoot = "ietf-mud:mud"
	aclRoot = "ietf-access-control-list:acls"
)

// parseMUD reads the inbound ports a MUD file allows to the device: in
// to-device ACLs the destination port of accepted TCP (not initiated by
// the device) and UDP traffic, in from-device ACLs the source port of the
// device's answers to connections initiated towards it. Any source is
// accepted (local-networks, same-manufacturer, controller, a cloud name):
// the device may listen on the port.
func parseMUD(data []byte, name string) (*Manifest, error) {
	offsets := jsonOffsets(data)
	lineAt := func(off int64) int { return 1 + bytes.Count(data[:min(int(off), len(data))], []byte("\n")) }
	fail := func(msg string, path ...any) error {
		fe := &manifestFieldError{path: path, msg: msg}
		for p := path; ; p = p[:len(p)-1] {
			if off, ok := offsets[fieldPath(p)]; ok && len(p) > 0 {
				return fmt.Errorf("%s:%d: %w", name, lineAt(off), fe)
			}
			if len(p) == 0 {
				return fmt.Errorf("%s: %w", name, fe)
			}
		}
	}
	var mf mudFile
	if err := json.Unmarshal(data, &mf); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, fmt.Errorf("%s:%d: MUD file is not valid JSON: %v", name, lineAt(se.Offset), se)
		case errors.As(err, &te):
			return nil, fmt.Errorf("%s:%d: %s: %s where the MUD file needs %s", name, lineAt(te.Offset), te.Field, te.Value, te.Type)
		}
		return nil, fmt.Errorf("%s: MUD file: %w", name, err)
	}
	if mf.MUD == nil {
		return nil, fail("no "+mudRoot+" container (an RFC 8520 MUD file needs one)", mudRoot)
	}
	if mf.MUD.Version == nil || *mf.MUD.Version != 1 {
		return nil, fail("want mud-version 1", mudRoot, "mud-version")
	}
	if mf.MUD.From == nil && mf.MUD.To == nil {
		return nil, fail("neither from-device-policy nor to-device-policy", mudRoot)
	}
	acls := map[string]int{}
	if mf.ACLs != nil {
		for i, a := range mf.ACLs.ACL {
			acls[a.Name] = i
		}
	}
	m := &Manifest{Source: name, Format: "mud", MUDURL: mf.MUD.URL, Default: []ExpectedService{}}
	for _, pol := range []struct {
		p        *mudPolicy
		field    string
		toDevice bool
	}{{mf.MUD.From, "from-device-policy", false}, {mf.MUD.To, "to-device-policy", true}} {
		if pol.p == nil {
			continue
		}
		for i, ref := range pol.p.AccessLists.AccessList {
			ai, ok := acls[ref.Name]
			if !ok {
				return nil, fail(fmt.Sprintf("access list %q is not defined under %s", ref.Name, aclRoot), mudRoot, pol.field, "access-lists", "access-list", i, "name")
			}
			acl := mf.ACLs.ACL[ai]
			for j, ace := range acl.Aces.Ace {
				path := []any{aclRoot, "acl", ai, "aces", "ace", j}
				got, err := ace.listeners(pol.toDevice, func(msg string, sub ...any) error {
					return fail(msg, append(slices.Clone(path), sub...)...)
				})
				if err != nil {
					return nil, err
				}
				for _, e := range got {
					e.From = acl.Name + "/" + ace.Name
					if !slices.ContainsFunc(m.Default, func(x ExpectedService) bool {
						return x.Port == e.Port && x.PortTo == e.PortTo && x.Transport == e.Transport
					}) {
						m.Default = append(m.Default, e)
					}
				}
			}
		}
	}
	return m, nil
}

// listeners returns the device ports an accepted ACE lets peers connect to.
func (a mudACE) listeners(toDevice bool, fail func(string, ...any) error) ([]ExpectedService, error) {
	fwd := strings.TrimPrefix(a.Actions.Forwarding, "ietf-access-control-list:")
	if fwd != "accept" {
		if fwd != "drop" && fwd != "reject" {
			return nil, fail(fmt.Sprintf("forwarding %q: want accept, drop or reject", a.Actions.Forwarding), "actions", "forwarding")
		}
		return nil, nil
	}
	ipProto := -1
	for _, ip := range []*mudIPMatch{a.Matches.IPv4, a.Matches.IPv6} {
		if ip != nil && ip.Protocol != nil {
			ipProto = *ip.Protocol
		}
	}
	anyPort := func(tr string) ExpectedService { return ExpectedService{Port: 1, PortTo: 65535, Transport: tr} }
	var out []ExpectedService
	for _, l4 := range []struct {
		m     *mudL4Match
		tr    string
		num   int
		field string
	}{{a.Matches.TCP, "tcp", 6, "tcp"}, {a.Matches.UDP, "udp", 17, "udp"}} {
		m := l4.m
		if m == nil {
			if ipProto == l4.num && toDevice {
				out = append(out, anyPort(l4.tr)) // the protocol with no port limit
			}
			continue
		}
		byDevice := l4.tr == "tcp" && m.Direction == "from-device"
		if m.Direction != "" && m.Direction != "from-device" && m.Direction != "to-device" {
			return nil, fail(fmt.Sprintf("direction-initiated %q: want from-device or to-device", m.Direction), "matches", l4.field, "ietf-mud:direction-initiated")
		}
		spec, field := m.Src, "source-port"
		if toDevice {
			spec, field = m.Dst, "destination-port"
		}
		if byDevice {
			continue // connections the device opens: not a listener
		}
		if spec == nil {
			if toDevice && m.Src == nil {
				out = append(out, anyPort(l4.tr))
			}
			continue
		}
		ranges, err := spec.ranges(func(msg string, sub ...any) error {
			return fail(msg, append([]any{"matches", l4.field, field}, sub...)...)
		})
		if err != nil {
			return nil, err
		}
		for _, r := range ranges {
			out = append(out, ExpectedService{Port: r[0], PortTo: r[1], Transport: l4.tr})
		}
	}
	if a.Matches.TCP == nil && a.Matches.UDP == nil && ipProto == -1 && toDevice {
		out = append(out, anyPort("tcp"), anyPort("udp")) // everything from the matched peers
	}
	return out, nil
}

// ranges turns an RFC 8519 port match into inclusive ranges.
func (p *mudPortSpec) ranges(fail func(string, ...any) error) ([][2]int, error) {
	valid := func(v *int, field string) (int, error) {
		if v == nil {
			return 0, fail("missing", field)
		}
		if *v < 0 || *v > 65535 {
			return 0, fail(fmt.Sprintf("%d: want a port number 0-65535", *v), field)
		}
		return max(*v, 1), nil
	}
	if p.Lower != nil || p.Upper != nil {
		lo, err := valid(p.Lower, "lower-port")
		if err != nil {
			return nil, err
		}
		hi, err := valid(p.Upper, "upper-port")
		if err != nil {
			return nil, err
		}
		if lo > hi {
			return nil, fail(fmt.Sprintf("lower-port %d is above upper-port %d", lo, hi), "lower-port")
		}
		return [][2]int{{lo, hi}}, nil
	}
	port, err := valid(p.Port, "port")
	if err != nil {
		return nil, err
	}
	switch strings.TrimPrefix(p.Operator, "ietf-netmod-ip-types:") {
	case "", "eq":
		return [][2]int{{port, port}}, nil
	case "lte":
		return [][2]int{{1, port}}, nil
	case "gte":
		return [][2]int{{port, 65535}}, nil
	case "neq":
		var out [][2]int
		if port > 1 {
			out = append(out, [2]int{1, port - 1})
		}
		if port < 65535 {
			out = append(out, [2]int{port + 1, 65535})
		}
		return out, nil
	}
	return nil, fail(fmt.Sprintf("operator %q: want eq, lte, gte or neq", p.Operator), "operator")
}

// jsonOffsets maps the path of every value in a JSON document
// ("a.b[2].c") to the input offset where it was read, for error lines.
// Malformed input ends the walk early; the caller reports the syntax error.
func jsonOffsets(data []byte) map[string]int64 {
	type frame struct {
		object  bool
		path    string
		key     string
		wantKey bool
		index   int
	}
	join := func(parent, key string) string {
		if parent == "" {
			return key
		}
		return parent + "." + key
	}
	out := map[string]int64{}
	dec := json.NewDecoder(bytes.NewReader(data))
	var stack []*frame
	for len(out) < 1<<16 {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		delim, isDelim := tok.(json.Delim)
		if isDelim && (delim == '}' || delim == ']') {
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		path := ""
		if len(stack) > 0 {
			top := stack[len(stack)-1]
			if top.object {
				if top.wantKey {
					top.key, _ = tok.(string)
					top.wantKey = false
					out[join(top.path, top.key)] = dec.InputOffset()
					continue
				}
				path = join(top.path, top.key)
				top.wantKey = true
			} else {
				path = top.path + "[" + strconv.Itoa(top.index) + "]"
				out[path] = dec.InputOffset()
				top.index++
			}
		}
		if isDelim && (delim == '{' || delim == '[') {
			stack = append(stack, &frame{object: delim == '{', path: path, wantKey: true})
		}
	}
	return out
}
