package check

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/iotcop/iotcop/disclosure"
	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/target"
)

// Disclosure looks for a vulnerability disclosure policy, an RFC 9116
// security.txt (EN 303 645 5.2-1, UK PSTI requirement 2), on each device's
// web interface and on the manufacturer's site: the one the user names
// (VendorURL) and the manufacturerURL a UPnP description gives.
//
// Network safety: a device-supplied manufacturer URL is fetched only when
// its host is an IP address in a private or loopback range; anything else
// is listed in the evidence as not fetched. Only VendorURL, which the user
// passes explicitly, may be on the public Internet. A present and valid
// policy makes no finding.
type Disclosure struct {
	// VendorURL is the manufacturer's site the user named (--vendor-url),
	// e.g. "https://vendor.example"; empty for none.
	VendorURL string
	// Timeout bounds each request to a manufacturer's site (default 10s);
	// requests to devices use the endpoint's timeout.
	Timeout time.Duration
	// Now returns the current time (default time.Now).
	Now func() time.Time

	mu     sync.Mutex
	vendor map[string]*vendorPolicy // by site origin, fetched once per scan
}

type vendorPolicy struct {
	once sync.Once
	res  *disclosure.Result
	err  error
}

// NewDisclosure returns the check; vendorURL may be empty. It fails on a
// vendor URL that is not an http(s) site.
func NewDisclosure(vendorURL string) (*Disclosure, error) {
	if vendorURL != "" {
		u, err := disclosure.ParseOrigin(vendorURL)
		if err != nil {
			return nil, fmt.Errorf("--vendor-url: %w", err)
		}
		vendorURL = u.String()
	}
	return &Disclosure{VendorURL: vendorURL}, nil
}

// ID implements Check.
func (c *Disclosure) ID() string { return finding.CheckVulnDisclosure }

// Provisions implements Check.
func (c *Disclosure) Provisions() []string { return []string{"5.2-1"} }

// Intrusive implements Check: a few GETs.
func (c *Disclosure) Intrusive() bool { return false }

const pstiRequirement = "PSTI requirement 2: the manufacturer must publish how to report security issues"

// Run implements Check.
func (c *Disclosure) Run(ctx context.Context, dev *Device) ([]finding.Finding, error) {
	var out []finding.Finding
	var errs []error

	web := webServices(dev)
	if len(web) > 0 {
		f, err := c.deviceInterface(ctx, dev, web)
		if err != nil {
			errs = append(errs, err)
		}
		if f != nil {
			out = append(out, *f)
		}
	}

	sites, skipped := c.vendorSites(dev)
	for _, site := range sites {
		if ctx.Err() != nil {
			break
		}
		res, err := c.vendorResult(ctx, site.origin)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: manufacturer site %s: %w", c.ID(), site.origin, err))
			continue
		}
		if res.Valid() {
			continue
		}
		sev := finding.Medium
		title := "the manufacturer's security.txt at " + site.origin + " has problems"
		if !res.Found() || res.Has(disclosure.ProblemNoContact) || res.Has(disclosure.ProblemExpired) {
			// No usable policy: PSTI requirement 2 is mandatory.
			sev = finding.High
		}
		if !res.Found() {
			title = "no vulnerability disclosure policy (security.txt) on the manufacturer's site " + site.origin
		}
		f := base(c, sev, dev.Services[site.service], title)
		fillEvidence(f.Evidence, res)
		f.Evidence["site"] = site.origin
		f.Evidence["source"] = site.source
		f.Evidence["psti"] = pstiRequirement
		f.Remediation = "Publish a vulnerability disclosure policy at https://<manufacturer site>/.well-known/security.txt with Contact and an Expires less than a year ahead (RFC 9116; EN 303 645 5.2-1; PSTI requirement 2)."
		out = append(out, f)
	}

	if len(skipped) > 0 {
		var list []string
		for _, n := range skipped {
			list = append(list, n.url+": "+n.reason)
		}
		switch {
		case len(out) > 0:
			for i := range out {
				out[i].Evidence["manufacturer_url_not_fetched"] = list
			}
		default:
			// Nothing else to attach it to: say the manufacturer's policy
			// was not checked, without inflating any severity gate.
			f := base(c, finding.Info, dev.Services[skipped[0].service], "the manufacturer's vulnerability disclosure policy was not checked")
			f.Evidence["manufacturer_url_not_fetched"] = list
			f.Evidence["psti"] = pstiRequirement
			out = append(out, f)
		}
	}
	return out, errors.Join(errs...)
}

// webServices returns the indexes of the device's HTTP services, HTTPS
// first, at most maxWebServicesProbed.
func webServices(dev *Device) []int {
	var secure, plain []int
	for i, s := range dev.Services {
		if s.Identity == nil || s.Identity.Protocol != "http" || s.Endpoint.Transport != "tcp" {
			continue
		}
		if s.Endpoint.TLS || s.Identity.TLS {
			secure = append(secure, i)
		} else {
			plain = append(plain, i)
		}
	}
	all := append(secure, plain...)
	return all[:min(len(all), maxWebServicesProbed)]
}

// deviceInterface checks the device's own web interface.
func (c *Disclosure) deviceInterface(ctx context.Context, dev *Device, web []int) (*finding.Finding, error) {
	first := dev.Services[web[0]]
	var origins []string
	for _, i := range web {
		s := dev.Services[i]
		origins = append(origins, baseURL(webEndpoint(s, s.Endpoint.Port, s.Endpoint.TLS || s.Identity.TLS)))
	}
	chk := &disclosure.Checker{
		Dial:    deviceDial(first),
		Timeout: 2 * first.Endpoint.IOTimeout(),
		Now:     c.Now,
	}
	res, err := chk.Check(ctx, origins)
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", c.ID(), dev.Address, err)
	}
	if res.Valid() {
		return nil, nil
	}
	title := "the device's security.txt has problems"
	if !res.Found() {
		title = "no vulnerability disclosure policy (security.txt) on the device's web interface"
	}
	f := base(c, finding.Medium, first, title)
	fillEvidence(f.Evidence, res)
	f.Evidence["source"] = "device web interface"
	f.Remediation = "Serve an RFC 9116 security.txt at https://<device>/.well-known/security.txt (or link the manufacturer's policy), with Contact and an Expires less than a year ahead (EN 303 645 5.2-1)."
	return &f, nil
}

// fillEvidence copies a result into finding evidence.
func fillEvidence(ev map[string]any, res *disclosure.Result) {
	ev["problems"] = res.ProblemStrings()
	ev["attempts"] = capList(res.AttemptStrings(), 12)
	if res.URL != "" {
		ev["url"] = res.URL
	}
	if res.Signature != "" {
		ev["signature"] = res.Signature
	}
	if f := res.File; f != nil {
		if len(f.Contact) > 0 {
			ev["contact"] = capList(f.Contact, 8)
		}
		if len(f.ExpiresRaw) > 0 {
			ev["expires"] = f.ExpiresRaw[0]
		}
		if len(f.Policy) > 0 {
			ev["policy"] = capList(f.Policy, 4)
		}
	}
}

// deviceDial connects only to the device's own address, on whatever port a
// same-host redirect names, through the scanner's dialer.
func deviceDial(s Service) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, _, addr string) (net.Conn, error) {
		host, portStr, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		a, errA := netip.ParseAddr(host)
		b, errB := netip.ParseAddr(s.Endpoint.Host)
		port, errP := strconv.Atoi(portStr)
		if errA != nil || errB != nil || errP != nil || a.Unmap() != b.Unmap() {
			return nil, fmt.Errorf("refusing to connect to %s: not the device %s", addr, s.Endpoint.Host)
		}
		return webEndpoint(s, port, false).Connect(ctx)
	}
}

// scopeDial connects only to private or loopback IP addresses.
func scopeDial(timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		a, err := netip.ParseAddr(host)
		if err != nil || !target.InScope(a) {
			return nil, fmt.Errorf("refusing to connect to %s: not a private or loopback address", addr)
		}
		d := net.Dialer{Timeout: timeout}
		return d.DialContext(ctx, network, addr)
	}
}

// vendorSite is a manufacturer site to check for one device.
type vendorSite struct {
	origin  string
	source  string
	service int // the device service the finding is attached to
}

// notFetched is a device-supplied manufacturer URL iotcop did not contact.
type notFetched struct {
	url, reason string
	service     int
}

// vendorSites lists the manufacturer sites to check for dev, and the
// device-supplied ones not to contact.
func (c *Disclosure) vendorSites(dev *Device) (sites []vendorSite, skipped []notFetched) {
	attach := 0
	if web := webServices(dev); len(web) > 0 {
		attach = web[0]
	}
	explicitHost := ""
	if c.VendorURL != "" {
		if u, err := disclosure.ParseOrigin(c.VendorURL); err == nil {
			explicitHost = u.Hostname()
		}
	}
	explicitAttach := attach
	seen := map[string]bool{}
	for i, s := range dev.Services {
		if s.Identity == nil {
			continue
		}
		raw := s.Identity.Info["manufacturer_url"]
		if raw == "" {
			continue
		}
		u, err := disclosure.ParseOrigin(raw)
		if err != nil {
			skipped = appendNotFetched(skipped, notFetched{url: clipText(raw, 200), reason: "not an http(s) URL", service: i})
			continue
		}
		origin := u.String()
		switch {
		case explicitHost != "" && disclosure.SameSite(u.Hostname(), explicitHost):
			explicitAttach = i // the --vendor-url site: checked below, reported here
		case isDeviceHost(u.Hostname(), dev.Address):
			// The device's own web interface, checked above.
		case inScopeIP(u.Hostname()):
			if !seen[origin] {
				seen[origin] = true
				sites = append(sites, vendorSite{origin: origin, source: "manufacturerURL from the UPnP description", service: i})
			}
		default:
			skipped = appendNotFetched(skipped, notFetched{url: clipText(raw, 200), reason: "not fetched: pass --vendor-url to check it", service: i})
		}
	}
	if c.VendorURL != "" {
		sites = append(sites, vendorSite{origin: c.VendorURL, source: "--vendor-url", service: explicitAttach})
	}
	return sites, skipped
}

func appendNotFetched(l []notFetched, n notFetched) []notFetched {
	if slices.ContainsFunc(l, func(x notFetched) bool { return x.url == n.url }) {
		return l
	}
	return append(l, n)
}

func isDeviceHost(host, device string) bool {
	a, errA := netip.ParseAddr(host)
	b, errB := netip.ParseAddr(device)
	return errA == nil && errB == nil && a.Unmap() == b.Unmap()
}

func inScopeIP(host string) bool {
	a, err := netip.ParseAddr(host)
	return err == nil && target.InScope(a)
}

// vendorResult checks a manufacturer site once per scan; devices of the
// same maker share the result.
func (c *Disclosure) vendorResult(ctx context.Context, origin string) (*disclosure.Result, error) {
	c.mu.Lock()
	if c.vendor == nil {
		c.vendor = map[string]*vendorPolicy{}
	}
	vp := c.vendor[origin]
	if vp == nil {
		vp = &vendorPolicy{}
		c.vendor[origin] = vp
	}
	c.mu.Unlock()
	vp.once.Do(func() {
		timeout := c.Timeout
		if timeout <= 0 {
			timeout = 10 * time.Second
		}
		u, err := disclosure.ParseOrigin(origin)
		if err != nil {
			vp.err = err
			return
		}
		chk := &disclosure.Checker{Timeout: timeout, Now: c.Now}
		if inScopeIP(u.Hostname()) {
			// A LAN or loopback host: self-signed certificates are the
			// norm there, and only in-scope addresses may be dialled.
			chk.Dial = scopeDial(timeout)
		} else {
			// The public site the user named: certificates must verify.
			chk.VerifyTLS = true
		}
		// Without an explicit port, try both schemes: a policy served
		// over plain HTTP only is a problem to name, not a miss.
		origins := []string{origin}
		if u.Port() == "" {
			other := "http://" + u.Host
			if u.Scheme == "http" {
				other = "https://" + u.Host
			}
			origins = append(origins, other)
		}
		vp.res, vp.err = chk.Check(ctx, origins)
	})
	return vp.res, vp.err
}
