package check

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/proto"
)

// ExposedServices flags services a consumer device should not expose on
// the network (EN 303 645 5.6-1, 5.6-2): telnet on any port, ADB, TR-069
// (CWMP) reachable from the LAN, UPnP control answering without
// authentication, SNMP with a readable write-style community, and debug
// pages or file-system paths served over HTTP. With a Manifest, every
// listener the manifest does not list is a finding too.
//
// It only reads: HTTP GETs of a short list of paths on the device itself,
// one UPnP SOAP read (GetExternalIPAddress) on the device itself, SNMP
// GETs; never a SET, an AddPortMapping, or a request to another host.
type ExposedServices struct {
	// SNMP reads sysDescr with the communities "public" and "private"
	// (proto/snmp implements it); nil skips the write-community check.
	SNMP proto.OpenAccessProber
	// Manifest lists the expected services; nil skips the comparison.
	Manifest *Manifest
}

// ID implements Check.
func (c *ExposedServices) ID() string { return finding.CheckExposedDebugService }

// Provisions implements Check.
func (c *ExposedServices) Provisions() []string { return []string{"5.6-1", "5.6-2"} }

// Intrusive implements Check: a handful of read-only requests per service.
func (c *ExposedServices) Intrusive() bool { return false }

// Bounds on what the check sends and reads.
const (
	maxWebServicesProbed = 4
	maxProbeBody         = 64 << 10
	maxUPnPDescription   = 64 << 10
	maxSOAPBody          = 16 << 10
	maxUPnPServices      = 32
	maxUPnPDepth         = 6
)

// Run implements Check.
func (c *ExposedServices) Run(ctx context.Context, dev *Device) ([]finding.Finding, error) {
	var out []finding.Finding
	var errs []error
	webProbed := 0
	for i, s := range dev.Services {
		if ctx.Err() != nil {
			break
		}
		if s.Identity == nil {
			s.Identity = &proto.Identity{Protocol: "unknown"}
		}
		var got []finding.Finding
		var err error
		switch s.Identity.Protocol {
		case "telnet":
			got = append(got, c.telnet(dev, i, s))
		case "adb":
			got = append(got, c.adb(s))
		case "ssdp":
			got, err = c.upnp(ctx, s)
		case "snmp":
			got, err = c.snmp(ctx, s)
		case "http":
			if f := c.cwmp(s); f != nil {
				got = append(got, *f)
			}
			if webProbed < maxWebServicesProbed {
				webProbed++
				var dbg []finding.Finding
				dbg, err = c.debugPaths(ctx, s)
				got = append(got, dbg...)
			}
		default:
			if f := c.cwmp(s); f != nil {
				got = append(got, *f)
			}
		}
		out = append(out, got...)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s on %s/%s: %w", c.ID(), s.Endpoint.Addr(), s.Endpoint.Transport, err))
		}
	}
	out = c.compareManifest(dev, out)
	return out, errors.Join(errs...)
}

func (c *ExposedServices) finding(sev finding.Severity, s Service, title string) finding.Finding {
	f := base(c, sev, s, title)
	f.Evidence["reachable_from"] = "the scanning host (LAN side)"
	if s.Identity.Product != "" {
		f.Evidence["product"] = strings.TrimSpace(s.Identity.Product + " " + s.Identity.Version)
	}
	return f
}

func (c *ExposedServices) telnet(dev *Device, i int, s Service) finding.Finding {
	f := c.finding(finding.High, s, fmt.Sprintf("telnet is reachable on port %d", s.Endpoint.Port))
	f.Evidence["reason"] = "telnet is a remote shell login without encryption; consumer devices should not expose it (debug or legacy interface)"
	for _, k := range []string{"login_prompt", "prompt"} {
		if v := s.Identity.Info[k]; v != "" {
			f.Evidence[k] = v
		}
	}
	if accepted, open := dev.wasAccepted(i); accepted || open {
		f.Evidence["note"] = "the credential checks got in: see their finding for the access itself"
	}
	f.Remediation = "Disable telnet in production firmware; if remote administration is needed, offer SSH with per-device credentials (EN 303 645 5.6-1, 5.6-2)."
	return f
}

func (c *ExposedServices) adb(s Service) finding.Finding {
	auth := s.Identity.Info["auth"]
	sev := finding.Medium
	why := "ADB over the network is a developer debug interface"
	switch auth {
	case "none":
		sev = finding.High
		why += "; it accepts connections without key authentication"
	case "rsa-key":
		why += "; it asks for an authorised RSA key"
	case "tls":
		why += "; it speaks TLS (wireless debugging) and needs a paired host"
	}
	f := c.finding(sev, s, fmt.Sprintf("Android Debug Bridge (ADB) is reachable on port %d", s.Endpoint.Port))
	f.Evidence["reason"] = why
	if auth != "" {
		f.Evidence["adb_auth"] = auth
	}
	for _, k := range []string{"product_model", "state"} {
		if v := s.Identity.Info[k]; v != "" {
			f.Evidence[k] = v
		}
	}
	f.Remediation = "Disable ADB over TCP (persist.adb.tcp.port, service.adb.tcp.port) in production builds (EN 303 645 5.6-1, 5.6-2)."
	return f
}

// cwmpSign matches TR-069 agents in a Server header, realm or title.
var cwmpSign = regexp.MustCompile(`(?i)cwmp|rompager|tr-?069`)

// cwmp flags a TR-069 (CWMP) connection-request service: TCP 7547, or an
// HTTP server naming CWMP, TR-069 or RomPager (the usual TR-069 agent).
func (c *ExposedServices) cwmp(s Service) *finding.Finding {
	var reasons []string
	if s.Endpoint.Transport == "tcp" && s.Endpoint.Port == 7547 {
		reasons = append(reasons, "port 7547 is the TR-069 (CWMP) connection-request port")
	}
	if s.Identity.Protocol == "http" {
		for _, k := range []string{"server", "realm", "title"} {
			if v := s.Identity.Info[k]; cwmpSign.MatchString(v) {
				reasons = append(reasons, fmt.Sprintf("the %s %q names a TR-069 agent", k, clipText(v, 80)))
			}
		}
	}
	if len(reasons) == 0 {
		return nil
	}
	f := c.finding(finding.Medium, s, fmt.Sprintf("TR-069 (CWMP) management interface is reachable from the LAN on port %d", s.Endpoint.Port))
	f.Evidence["reason"] = strings.Join(reasons, "; ")
	if sch := s.Identity.Info["auth_scheme"]; sch != "" {
		f.Evidence["auth_scheme"] = sch
	}
	f.Evidence["note"] = "the connection-request interface is meant for the ISP's ACS on the WAN side; on the LAN it only widens the attack surface (TR-069 agents such as RomPager have had remote code execution flaws)"
	f.Remediation = "Bind the TR-069 connection-request listener to the WAN interface only, and firewall it from the LAN (EN 303 645 5.6-1, 5.6-2)."
	return &f
}

// snmp flags a readable write-style community.
func (c *ExposedServices) snmp(ctx context.Context, s Service) ([]finding.Finding, error) {
	if c.SNMP == nil {
		return nil, nil
	}
	acc, err := c.SNMP.ProbeOpenAccess(ctx, s.Endpoint, s.Identity)
	if err != nil || acc == nil {
		return nil, err
	}
	comms, _ := acc.Details["communities"].([]string)
	anyCommunity, _ := acc.Details["any_community"].(bool)
	if !slices.Contains(comms, "private") && !anyCommunity {
		return nil, nil
	}
	title := `SNMP answers the write-style community "private"`
	if anyCommunity {
		title = "SNMP answers any community string, including write-style ones"
	}
	f := c.finding(finding.High, s, title)
	f.Evidence["communities"] = comms
	f.Evidence["proof"] = acc.Proof
	f.Evidence["reason"] = `"private" is conventionally the read-write community: whoever knows it may be able to reconfigure the device`
	f.Evidence["note"] = "write access was not tested (iotcop never sends SET)"
	f.Remediation = "Disable SNMP v1/v2c write communities; use SNMPv3 with per-device credentials or turn SNMP off (EN 303 645 5.6-1, 5.6-2)."
	return []finding.Finding{f}, nil
}

// webEndpoint returns a TCP endpoint on the same host as s at port.
func webEndpoint(s Service, port int, useTLS bool) proto.Endpoint {
	ep := s.Endpoint
	ep.Port, ep.Transport, ep.TLS = port, "tcp", useTLS
	return ep
}

// endpointClient returns an HTTP client whose every connection goes to ep
// (whatever host a URL names), follows no redirect, uses no proxy, and
// bounds headers and time.
func endpointClient(ep proto.Endpoint) *http.Client {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		e := ep
		e.TLS = false
		return e.Connect(ctx)
	}
	return &http.Client{
		Timeout: 2 * ep.IOTimeout(),
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            dial,
			TLSClientConfig:        &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10}, //nolint:gosec // devices use self-signed certificates; weak-tls judges them
			DisableKeepAlives:      true,
			DisableCompression:     true,
			MaxResponseHeaderBytes: 16 << 10,
			ResponseHeaderTimeout:  ep.IOTimeout(),
			TLSHandshakeTimeout:    ep.IOTimeout(),
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func baseURL(ep proto.Endpoint) string {
	scheme := "http"
	if ep.TLS {
		scheme = "https"
	}
	return scheme + "://" + ep.Addr()
}

// webResponse is a fetched response with its (capped) body.
type webResponse struct {
	status int
	header http.Header
	body   []byte
}

func fetch(ctx context.Context, cl *http.Client, method, rawURL string, header http.Header, body []byte, limit int64) (*webResponse, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		return nil, fmt.Errorf("build %s %s: %w", method, rawURL, err)
	}
	req.Header.Set("User-Agent", "Mozilla/5.0 (compatible; iotcop)")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := cl.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil && len(b) == 0 {
		return nil, fmt.Errorf("%s %s: read body: %w", method, rawURL, err)
	}
	return &webResponse{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// debugProbe is one read-only path tried on a web server, and what must be
// in the answer for it to count.
type debugProbe struct {
	path  string
	title string
	sev   finding.Severity
	// match returns evidence when the body shows the thing; generic probes
	// (nil match) need a debug word and a page unlike the server's answer
	// to a random path.
	match func(body []byte) (map[string]any, bool)
}

var (
	passwdRoot   = regexp.MustCompile(`(?m)^root:[^:\n]*:0:0:`)
	passwdLine   = regexp.MustCompile(`(?m)^([a-z_][a-z0-9_.-]{0,31}):([^:\n]*):\d+:\d+:`)
	procVersion  = regexp.MustCompile(`^Linux version \S+`)
	sysCmdForm   = regexp.MustCompile(`(?i)formSysCmd|name=["']?sysCmd`)
	pprofIndex   = regexp.MustCompile(`Types of profiles available|/debug/pprof/(heap|goroutine)`)
	debugWords   = regexp.MustCompile(`(?i)\b(debug|diagnos\w*|shell|console|command|telnetd?)\b`)
	passwordForm = regexp.MustCompile(`(?i)type\s*=\s*["']?password`)
)

// debugProbes are requested, in order, on each web service. Handlers that
// act on GET (Tenda's /goform/telnet starts telnetd) are never requested:
// only pages that show a debug facility are read.
var debugProbes = []debugProbe{
	{path: "/etc/passwd", title: "the web server serves /etc/passwd from the device's file system", sev: finding.High, match: func(b []byte) (map[string]any, bool) {
		if !passwdRoot.Match(b) {
			return nil, false
		}
		var users []string
		hashes := false
		for _, m := range passwdLine.FindAllSubmatch(b, 32) {
			users = append(users, string(m[1]))
			if pw := string(m[2]); pw != "" && pw != "x" && pw != "*" && !strings.HasPrefix(pw, "!") {
				hashes = true
			}
		}
		ev := map[string]any{"accounts": users}
		if hashes {
			ev["password_hashes_in_passwd"] = true
		}
		return ev, true
	}},
	{path: "/proc/version", title: "the web server serves /proc from the device", sev: finding.High, match: func(b []byte) (map[string]any, bool) {
		m := procVersion.Find(bytes.TrimSpace(b))
		if m == nil {
			return nil, false
		}
		return map[string]any{"kernel": string(m)}, true
	}},
	{path: "/syscmd.htm", title: "a web page that runs shell commands (System Command) is served", sev: finding.High, match: sysCmdMatch},
	{path: "/syscmd.asp", title: "a web page that runs shell commands (System Command) is served", sev: finding.High, match: sysCmdMatch},
	{path: "/debug/pprof/", title: "the Go pprof debug endpoint is served", sev: finding.Medium, match: func(b []byte) (map[string]any, bool) {
		return nil, pprofIndex.Match(b)
	}},
	{path: "/debug", title: "a debug page is served", sev: finding.Medium},
	{path: "/cgi-bin/debug", title: "a debug CGI is served", sev: finding.Medium},
}

func sysCmdMatch(b []byte) (map[string]any, bool) {
	if !sysCmdForm.Match(b) {
		return nil, false
	}
	return map[string]any{"form": "posts a shell command to the device (Realtek SDK formSysCmd or alike); not submitted"}, true
}

// debugPaths requests the debug probes on one web service. A finding
// needs a 200 with the probe's signature; generic pages must also differ
// from what the server answers for a random path (catch-all routes, soft
// 404s) and hold a debug word that the random-path answer does not.
func (c *ExposedServices) debugPaths(ctx context.Context, s Service) ([]finding.Finding, error) {
	ep := webEndpoint(s, s.Endpoint.Port, s.Endpoint.TLS || s.Identity.TLS)
	cl := endpointClient(ep)
	root := baseURL(ep)
	var out []finding.Finding

	randomPath := "/iotcop-" + randomToken(6) + ".htm"
	baseline, err := fetch(ctx, cl, http.MethodGet, root+randomPath, nil, nil, maxProbeBody)
	if err != nil {
		return nil, fmt.Errorf("debug path probe: %w", err)
	}
	baseBody := bytes.ReplaceAll(baseline.body, []byte(randomPath), nil)
	genericOK := !debugWords.Match(baseBody)

	failures := 0
	for _, p := range debugProbes {
		if ctx.Err() != nil {
			break
		}
		if p.match == nil && !genericOK {
			continue
		}
		r, err := fetch(ctx, cl, http.MethodGet, root+p.path, nil, nil, maxProbeBody)
		if err != nil {
			if failures++; failures >= 2 {
				return out, fmt.Errorf("debug path probe stopped after repeated failures: %w", err)
			}
			continue
		}
		failures = 0
		if r.status != http.StatusOK {
			continue
		}
		body := bytes.ReplaceAll(r.body, []byte(p.path), nil)
		var ev map[string]any
		if p.match != nil {
			var ok bool
			if ev, ok = p.match(r.body); !ok {
				continue
			}
		} else {
			if baseline.status == http.StatusOK && bytes.Equal(body, baseBody) {
				continue
			}
			if passwordForm.Match(body) {
				continue // a login page: the debug facility is protected
			}
			w := debugWords.Find(body)
			if w == nil {
				continue
			}
			ev = map[string]any{"matched": string(w), "excerpt": excerpt(body, 160)}
		}
		f := c.finding(p.sev, s, p.title)
		f.Evidence["url"] = root + p.path
		f.Evidence["status"] = r.status
		f.Evidence["random_path_status"] = baseline.status
		for k, v := range ev {
			f.Evidence[k] = v
		}
		f.Remediation = "Remove debug pages and file-system access from the production web server, or require authentication (EN 303 645 5.6-1, 5.6-2)."
		out = append(out, f)
	}
	return out, nil
}

// excerpt returns printable text around the start of b.
func excerpt(b []byte, n int) string {
	s := proto.Printable(b[:min(len(b), 4*n)])
	return clipText(strings.Join(strings.Fields(s), " "), n)
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// upnpRoot is the part of a UPnP device description read here: the
// services and their control URLs (proto/ssdp reads the rest).
type upnpRoot struct {
	URLBase string     `xml:"URLBase"`
	Device  upnpDevice `xml:"device"`
}

type upnpDevice struct {
	DeviceType string        `xml:"deviceType"`
	Services   []upnpService `xml:"serviceList>service"`
	Devices    []upnpDevice  `xml:"deviceList>device"`
}

type upnpService struct {
	ServiceType string `xml:"serviceType"`
	ControlURL  string `xml:"controlURL"`
}

func (d upnpDevice) flatten(depth int, out *[]upnpService) {
	if depth > maxUPnPDepth {
		return
	}
	for _, s := range d.Services {
		if len(*out) < maxUPnPServices {
			*out = append(*out, s)
		}
	}
	for _, sub := range d.Devices {
		sub.flatten(depth+1, out)
	}
}

// wanConnection reports the IGD services that manage port mappings.
func wanConnection(serviceType string) bool {
	return strings.Contains(serviceType, ":service:WANIPConnection:") || strings.Contains(serviceType, ":service:WANPPPConnection:")
}

// sameHostURL resolves ref against base and returns it when it is an http
// URL on host; UPnP URLs are device-supplied and must not steer requests
// elsewhere.
func sameHostURL(base *url.URL, ref, host string) (*url.URL, bool) {
	r, err := url.Parse(strings.TrimSpace(ref))
	if err != nil {
		return nil, false
	}
	u := base.ResolveReference(r)
	a, b := net.ParseIP(u.Hostname()), net.ParseIP(host)
	if u.Scheme != "http" || u.User != nil || a == nil || b == nil || !a.Equal(b) {
		return nil, false
	}
	return u, true
}

func urlPort(u *url.URL) int {
	if p, err := strconv.Atoi(u.Port()); err == nil && p > 0 && p < 65536 {
		return p
	}
	return 80
}

// upnp reads the device description named by the SSDP LOCATION (on the
// same host only) for its control URLs, and sends a single read-only SOAP
// action, GetExternalIPAddress, to a port-mapping (WAN*Connection)
// service. An IGD that answers it unauthenticated takes port mappings from
// any LAN host; iotcop never tries AddPortMapping.
func (c *ExposedServices) upnp(ctx context.Context, s Service) ([]finding.Finding, error) {
	loc := s.Identity.Info["location"]
	if loc == "" {
		return nil, nil
	}
	locURL, err := url.Parse(loc)
	if err != nil {
		return nil, nil
	}
	if _, ok := sameHostURL(locURL, "", s.Endpoint.Host); !ok {
		return nil, nil // proto/ssdp already recorded that it is elsewhere
	}
	descEP := webEndpoint(s, urlPort(locURL), false)
	cl := endpointClient(descEP)
	r, err := fetch(ctx, cl, http.MethodGet, locURL.String(), nil, nil, maxUPnPDescription)
	if err != nil {
		return nil, fmt.Errorf("read UPnP description: %w", err)
	}
	if r.status != http.StatusOK {
		return nil, nil // 401/403: the description is protected; anything else tells nothing
	}
	var root upnpRoot
	dec := xml.NewDecoder(bytes.NewReader(r.body))
	dec.Strict = false
	dec.CharsetReader = func(_ string, in io.Reader) (io.Reader, error) { return in, nil }
	if err := dec.Decode(&root); err != nil {
		return nil, nil // proto/ssdp reports unreadable descriptions
	}
	base := locURL
	if root.URLBase != "" {
		if u, ok := sameHostURL(locURL, root.URLBase, s.Endpoint.Host); ok {
			base = u
		}
	}
	var services []upnpService
	root.Device.flatten(0, &services)

	var controls []string
	var wan *url.URL
	wanType := ""
	for _, sv := range services {
		u, ok := sameHostURL(base, sv.ControlURL, s.Endpoint.Host)
		if sv.ControlURL == "" || !ok {
			continue
		}
		controls = append(controls, clipText(sv.ServiceType, 80)+" "+u.Path)
		if wan == nil && wanConnection(sv.ServiceType) {
			wan, wanType = u, sv.ServiceType
		}
	}
	if len(controls) == 0 {
		return nil, nil
	}
	ev := map[string]any{"location": loc, "control_urls": controls, "description_auth": "none (read without credentials)"}
	if wan != nil {
		res := soapRead(ctx, webEndpoint(s, urlPort(wan), false), wan, wanType)
		ev["control_read"] = res.detail
		switch res.outcome {
		case soapAnswered:
			f := c.finding(finding.High, s, "UPnP port-mapping control (IGD) answers without authentication")
			for k, v := range ev {
				f.Evidence[k] = v
			}
			f.Evidence["proof"] = res.detail
			f.Evidence["note"] = "AddPortMapping was not tried (iotcop never changes device state); an IGD that answers GetExternalIPAddress unauthenticated normally lets any LAN host open ports in its firewall"
			f.Remediation = "Disable UPnP IGD by default, or restrict port mappings to the requesting host and to unprivileged ports (EN 303 645 5.6-1, 5.6-2)."
			return []finding.Finding{f}, nil
		case soapRefused:
			return nil, nil // control requires authentication
		}
	}
	f := c.finding(finding.Low, s, "UPnP control URLs are readable without authentication on the LAN")
	for k, v := range ev {
		f.Evidence[k] = v
	}
	f.Evidence["note"] = "the control actions were not exercised"
	f.Remediation = "Offer UPnP only where the product needs it, and require authentication for actions that change the device (EN 303 645 5.6-1, 5.6-2)."
	return []finding.Finding{f}, nil
}

type soapOutcome int

const (
	soapUnknown soapOutcome = iota
	soapAnswered
	soapRefused
)

type soapResult struct {
	outcome soapOutcome
	detail  string
}

var (
	externalIP     = regexp.MustCompile(`<(?:\w+:)?NewExternalIPAddress>([^<]{0,64})<`)
	upnpErrorCode  = regexp.MustCompile(`<(?:\w+:)?errorCode>\s*(\d{3})\s*<`)
	getExternalRes = []byte("GetExternalIPAddressResponse")
)

// soapRead sends GetExternalIPAddress, a read-only action, to control.
func soapRead(ctx context.Context, ep proto.Endpoint, control *url.URL, serviceType string) soapResult {
	action := "GetExternalIPAddress"
	var body bytes.Buffer
	body.WriteString(`<?xml version="1.0"?>` +
		`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">` +
		`<s:Body><u:` + action + ` xmlns:u="`)
	_ = xml.EscapeText(&body, []byte(serviceType))
	body.WriteString(`"></u:` + action + `></s:Body></s:Envelope>`)
	h := http.Header{
		"Content-Type": {`text/xml; charset="utf-8"`},
		"Soapaction":   {`"` + serviceType + "#" + action + `"`},
	}
	r, err := fetch(ctx, endpointClient(ep), http.MethodPost, control.String(), h, body.Bytes(), maxSOAPBody)
	if err != nil {
		return soapResult{soapUnknown, "SOAP " + action + " failed: " + clipText(err.Error(), 160)}
	}
	switch {
	case r.status == http.StatusOK && bytes.Contains(r.body, getExternalRes):
		d := "SOAP " + action + " answered 200 without credentials"
		if m := externalIP.FindSubmatch(r.body); m != nil {
			d += fmt.Sprintf(" (NewExternalIPAddress %q)", proto.Printable(m[1]))
		}
		return soapResult{soapAnswered, d}
	case r.status == http.StatusUnauthorized || r.status == http.StatusForbidden:
		return soapResult{soapRefused, fmt.Sprintf("SOAP %s refused with HTTP %d", action, r.status)}
	}
	if m := upnpErrorCode.FindSubmatch(r.body); m != nil {
		code := string(m[1])
		if code == "606" {
			return soapResult{soapRefused, "SOAP " + action + " refused: UPnP error 606 (Action not authorized)"}
		}
		return soapResult{soapUnknown, fmt.Sprintf("SOAP %s answered HTTP %d with UPnP error %s", action, r.status, code)}
	}
	return soapResult{soapUnknown, fmt.Sprintf("SOAP %s answered HTTP %d without a result", action, r.status)}
}

// compareManifest adds a finding for every listener the manifest does not
// expect. A listener already reported above gets the manifest verdict in
// its evidence instead of a second finding.
func (c *ExposedServices) compareManifest(dev *Device, out []finding.Finding) []finding.Finding {
	expected, entry, ok := c.Manifest.Expected(dev)
	if !ok {
		return out
	}
	var list []string
	for _, e := range expected {
		list = append(list, e.String())
	}
	for _, s := range dev.Services {
		if s.Identity == nil {
			s.Identity = &proto.Identity{Protocol: "unknown"}
		}
		allowed, mismatch := false, ""
		for _, e := range expected {
			ok, why := e.Allows(s)
			if ok {
				allowed = true
				break
			}
			if why != "" && mismatch == "" {
				mismatch = why
			}
		}
		reported := -1
		for i, f := range out {
			if f.Port == s.Endpoint.Port && f.Transport == s.Endpoint.Transport {
				reported = i
				break
			}
		}
		if reported >= 0 {
			out[reported].Evidence["in_manifest"] = allowed
			continue
		}
		if allowed {
			continue
		}
		label := fmt.Sprintf("%d/%s", s.Endpoint.Port, s.Endpoint.Transport)
		title := fmt.Sprintf("%s (%s) is not in the manifest of expected services", label, s.Identity.Protocol)
		if mismatch != "" {
			title = fmt.Sprintf("%s %s", label, mismatch)
		}
		f := base(c, finding.Medium, s, title)
		f.Provisions = []string{"5.6-1"}
		f.Evidence["manifest"] = c.Manifest.Source
		f.Evidence["manifest_entry"] = entry
		f.Evidence["expected"] = capList(list, 24)
		if s.Identity.Product != "" {
			f.Evidence["product"] = strings.TrimSpace(s.Identity.Product + " " + s.Identity.Version)
		}
		f.Remediation = "Disable the listener, or declare it in the manifest if the product needs it (EN 303 645 5.6-1)."
		out = append(out, f)
	}
	return out
}

func capList(l []string, n int) []string {
	if len(l) <= n {
		if l == nil {
			return []string{}
		}
		return l
	}
	return append(slices.Clone(l[:n]), fmt.Sprintf("... and %d more", len(l)-n))
}
