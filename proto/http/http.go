// Package httpproto identifies HTTP(S) servers of devices (product, version
// and maker from the Server header, the realm and the title), finds their
// login (Basic or Digest authentication, or a login form), tries
// credentials with positive proof only, and looks for admin pages served
// without any login. The package is named httpproto so that it does not
// shadow net/http where both are used.
package httpproto

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/icholy/digest"

	"github.com/iotcop/iotcop/proto"
	"github.com/iotcop/iotcop/proto/authparam"
)

// DefaultProbePaths are requested, in order, when / neither asks for
// credentials nor shows a login form: the commonest admin entry points of
// routers, cameras and NAS boxes. Kept short: each is one request.
var DefaultProbePaths = []string{
	"/admin/",
	"/cgi-bin/",
	"/login.html",
	"/login.htm",
	"/login.asp",
	"/setup.cgi",
	"/cgi-bin/luci",
	"/index.asp",
}

// Protocol implements proto.Identifier, proto.Authenticator and
// proto.OpenAccessProber for HTTP and, when the endpoint says TLS, HTTPS.
type Protocol struct {
	// ProbePaths replaces DefaultProbePaths when non-nil.
	ProbePaths []string
}

// New returns an HTTP protocol with the default probe paths.
func New() *Protocol { return &Protocol{} }

// Name returns "http".
func (p *Protocol) Name() string { return "http" }

// Transport returns "tcp".
func (p *Protocol) Transport() string { return "tcp" }

// PortPriority reports the usual web ports of devices.
func (p *Protocol) PortPriority(port int) bool {
	switch port {
	case 80, 81, 443, 5000, 7547, 8000, 8008, 8080, 8081, 8088, 8443, 8888, 49152:
		return true
	}
	return false
}

// ServerFirst returns false: the client speaks first in HTTP.
func (p *Protocol) ServerFirst() bool { return false }

func (p *Protocol) probePaths() []string {
	if p.ProbePaths != nil {
		return p.ProbePaths
	}
	return DefaultProbePaths
}

// Identity.Info keys set by Identify.
const (
	InfoStatus        = "status"          // status code of GET /
	InfoServer        = "server"          // Server header
	InfoTitle         = "title"           // <title> of / (after same-host redirects)
	InfoRedirect      = "redirect"        // where / redirects to, when it does
	InfoAuthPath      = "auth_path"       // the resource that asks for credentials
	InfoAuthScheme    = "auth_scheme"     // "basic", "digest" or "form"
	InfoRealm         = "realm"           // realm of the Basic/Digest challenge
	InfoFormAction    = "form_action"     // path the login form posts to
	InfoFormMethod    = "form_method"     // "post" or "get"
	InfoFormUserField = "form_user_field" // name of the user input ("" if none)
	InfoFormPassField = "form_pass_field" // name of the password input
)

// rawRecorder keeps the first bytes read, to see header names as sent
// (net/http canonicalises them).
type rawRecorder struct {
	r   io.Reader
	buf bytes.Buffer
}

func (r *rawRecorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if room := 8192 - r.buf.Len(); room > 0 {
		r.buf.Write(p[:min(n, room)])
	}
	return n, err
}

// Identify sends GET / on conn, parses the response, and looks for the
// login on / itself and where / redirects (one more request at most). The
// probe paths are searched later, by Open, only when credentials are
// checked.
// See the Info* constants for the Identity.Info keys it sets.
func (p *Protocol) Identify(ctx context.Context, conn net.Conn, banner []byte, ep proto.Endpoint) (*proto.Identity, error) {
	if len(banner) > 0 {
		return nil, fmt.Errorf("%w: http servers do not speak first", proto.ErrNotThisProtocol)
	}
	deadline := time.Now().Add(ep.IOTimeout())
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	host := ep.Addr()
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: "+host+"\r\nUser-Agent: "+userAgent+
		"\r\nAccept: */*\r\nConnection: close\r\n\r\n"); err != nil {
		return nil, fmt.Errorf("%w: send GET / to %s: %v", proto.ErrNotThisProtocol, host, err)
	}
	rec := &rawRecorder{r: io.LimitReader(conn, maxHeaderBytes+maxBody)}
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	resp, err := http.ReadResponse(bufio.NewReader(rec), req)
	if err != nil {
		return nil, fmt.Errorf("%w: response to GET / from %s: %v", proto.ErrNotThisProtocol, host, err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	root := &response{path: "/", status: resp.StatusCode, header: resp.Header, body: body}

	id := &proto.Identity{Protocol: "http", TLS: ep.TLS}
	id.Banner = proto.Printable(statusAndServer(rec.buf.Bytes()))
	server := strings.TrimSpace(resp.Header.Get("Server"))
	id.Set(InfoStatus, strconv.Itoa(resp.StatusCode))
	if server != "" {
		id.Set(InfoServer, proto.Printable([]byte(truncate(server, 200))))
	}
	id.Product, id.Version = parseServer(server)

	d := &discovery{p: p, f: newFetcher(ep), id: id, quick: true}
	d.busyboxRaw = server == "" && bytes.Contains(headerBlock(rec.buf.Bytes()), []byte("\r\nContent-type: "))
	d.note(root)
	if etag := resp.Header.Get("Etag"); busyboxETag.MatchString(etag) {
		d.busyboxSign = true
	}
	d.run(ctx, root)
	if id.Product == "" && d.busyboxRaw && d.busyboxSign {
		id.Product = "BusyBox httpd"
	}
	id.Vendor = vendorHint(server, id.Info[InfoRealm], id.Info[InfoTitle])
	return id, nil
}

// statusAndServer returns the status line and the Server line of a raw
// response, for the banner.
func statusAndServer(raw []byte) []byte {
	block := headerBlock(raw)
	lines := bytes.Split(block, []byte("\r\n"))
	out := append([]byte{}, lines[0]...)
	for _, l := range lines[1:] {
		if len(l) > 7 && bytes.EqualFold(l[:7], []byte("server:")) {
			out = append(append(out, "\r\n"...), l...)
		}
	}
	return out
}

func headerBlock(raw []byte) []byte {
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		return raw[:i]
	}
	return raw
}

// maxDiscoveryRequests bounds the requests discovery sends after GET /.
const maxDiscoveryRequests = 10

// discovery finds the login of a web server within a request budget.
type discovery struct {
	p  *Protocol
	f  *fetcher
	id *proto.Identity

	// quick stops after / and its redirect: identification stays at two
	// requests, and the probe paths are left to Open, which runs only when
	// credentials are actually checked.
	quick bool

	busyboxRaw  bool // no Server header and BusyBox's "Content-type" spelling
	busyboxSign bool // a BusyBox error page, realm or ETag was seen
	titleSet    bool
}

// note records what any response shows about the server.
func (d *discovery) note(r *response) {
	if busyboxErrorPage.Match(r.body) {
		d.busyboxSign = true
	}
	if r.status == 401 {
		if ch := pickChallenge(r.header.Values("Www-Authenticate")); ch != nil && ch.realm == "Web Server Authentication" {
			d.busyboxSign = true
		}
	}
}

// run looks at / (and where it redirects) and then the probe paths,
// stopping at the first login found.
func (d *discovery) run(ctx context.Context, root *response) {
	d.setTitle(root)
	if d.login(root) {
		return
	}
	if next := d.f.location(root); next != "" {
		// / redirects (to /login.htm, /cgi-bin/luci, ...): follow it.
		d.id.Set(InfoRedirect, next)
		if r, err := d.f.get(ctx, next, nil); err == nil {
			d.note(r)
			d.setTitle(r)
			if d.login(r) {
				return
			}
		}
	}
	if d.quick {
		return
	}
	failures := 0
	for _, path := range d.p.probePaths() {
		if ctx.Err() != nil || d.f.requests >= maxDiscoveryRequests {
			return
		}
		r, err := d.f.do(ctx, http.MethodGet, path, nil, "")
		if err != nil {
			// A server that stops answering is not probed further.
			if failures++; failures >= 2 {
				return
			}
			continue
		}
		failures = 0
		d.note(r)
		if next := d.f.location(r); next != "" && next != path {
			// "/admin" → "/admin/": one hop, counted like any request.
			if r2, err := d.f.do(ctx, http.MethodGet, next, nil, ""); err == nil {
				d.note(r2)
				r = r2
			}
		}
		if d.login(r) {
			return
		}
	}
}

// setTitle records the first page title seen on / or its redirect target.
func (d *discovery) setTitle(r *response) {
	if d.titleSet || !r.isHTML() {
		return
	}
	if t := parsePage(r.body).title; t != "" {
		d.id.Set(InfoTitle, proto.Printable([]byte(t)))
		d.titleSet = true
	}
}

// login records r as the login when it asks for credentials (401 with a
// usable challenge) or shows a login form.
func (d *discovery) login(r *response) bool {
	if r.status == 401 {
		ch := pickChallenge(r.header.Values("Www-Authenticate"))
		if ch == nil {
			return false
		}
		d.id.Set(InfoAuthPath, r.path)
		d.id.Set(InfoAuthScheme, ch.scheme)
		if ch.realm != "" {
			d.id.Set(InfoRealm, proto.Printable([]byte(truncate(ch.realm, 200))))
		}
		return true
	}
	lf, ok := loginFormOf(r)
	if !ok {
		return false
	}
	action := r.path
	if lf.action != "" {
		action = d.f.samePath(r.path, lf.action)
	}
	if action == "" {
		return false // posts to another host: not ours to try
	}
	d.id.Set(InfoAuthPath, r.path)
	d.id.Set(InfoAuthScheme, "form")
	d.id.Set(InfoFormAction, action)
	d.id.Set(InfoFormMethod, lf.method)
	d.id.Set(InfoFormUserField, lf.userField())
	d.id.Set(InfoFormPassField, lf.passwordFields()[0])
	return true
}

// loginFormOf returns the login form of a 2xx HTML login page.
func loginFormOf(r *response) (form, bool) {
	if r.status < 200 || r.status > 299 || !r.isHTML() {
		return form{}, false
	}
	pg := parsePage(r.body)
	lf, ok := pg.loginForm()
	if !ok || !pg.isLoginPage() {
		return form{}, false
	}
	return lf, true
}

// challenge is a parsed WWW-Authenticate challenge.
type challenge struct {
	scheme string // "basic" or "digest"
	realm  string
	digest *digest.Challenge
}

// pickChallenge prefers Basic (the simplest to prove) and takes Digest
// when it is the only usable one.
func pickChallenge(values []string) *challenge {
	var dig *challenge
	for _, v := range values {
		v = strings.TrimSpace(v)
		if realm, ok := authparam.Basic(v); ok {
			return &challenge{scheme: "basic", realm: realm}
		}
		if dig == nil && digest.IsDigest(v) {
			if dc, err := digest.ParseChallenge(v); err == nil && digest.CanDigest(dc) && dc.Nonce != "" {
				dig = &challenge{scheme: "digest", realm: dc.Realm, digest: dc}
			}
		}
	}
	return dig
}

// reSlashVersion finds "product/version" ("lighttpd/1.4.69",
// "Apache/2.4.57 (Debian)", "mini_httpd/1.30 26Oct2018").
var reSlashVersion = regexp.MustCompile(`^([A-Za-z][\w .\-]{0,40}?)/v?(\d[\w.\-]*)`)

// parseServer splits a Server header into product and version.
func parseServer(server string) (product, version string) {
	server = strings.TrimSpace(server)
	if server == "" {
		return "", ""
	}
	if len(server) > 128 {
		server = server[:128]
	}
	if m := reSlashVersion.FindStringSubmatch(server); m != nil {
		return strings.TrimSpace(m[1]), m[2]
	}
	first, _, _ := strings.Cut(server, " ")
	return proto.Printable([]byte(first)), ""
}

// vendorPatterns map text in a Server header, realm or title to a maker.
var vendorPatterns = []struct {
	re     *regexp.Regexp
	vendor string
}{
	{regexp.MustCompile(`(?i)hikvision|DNVRS-Webs|DVRDVS-Webs|App-webs`), "hikvision"},
	{regexp.MustCompile(`(?i)dahua`), "dahua"},
	{regexp.MustCompile(`(?i)\btp-?link\b`), "tp-link"},
	{regexp.MustCompile(`(?i)\bd-?link\b|\bDIR-\d|\bDCS-\d|\bDSL-\d|\bDNS-\d`), "d-link"},
	{regexp.MustCompile(`(?i)netgear`), "netgear"},
	{regexp.MustCompile(`(?i)linksys`), "linksys"},
	{regexp.MustCompile(`(?i)\basus\b|\bRT-[A-Z]{1,2}\d`), "asus"},
	{regexp.MustCompile(`(?i)zyxel`), "zyxel"},
	{regexp.MustCompile(`(?i)huawei`), "huawei"},
	{regexp.MustCompile(`\bZTE\b`), "zte"},
	{regexp.MustCompile(`(?i)\baxis\b`), "axis"},
	{regexp.MustCompile(`(?i)foscam`), "foscam"},
	{regexp.MustCompile(`(?i)ubiquiti|\bubnt\b|airos`), "ubiquiti"},
	{regexp.MustCompile(`(?i)mikrotik|routeros`), "mikrotik"},
	{regexp.MustCompile(`(?i)synology|diskstation`), "synology"},
	{regexp.MustCompile(`(?i)\bqnap\b`), "qnap"},
	{regexp.MustCompile(`(?i)NETSurveillance|xiongmai`), "xiongmai"},
	{regexp.MustCompile(`(?i)avtech`), "avtech"},
	{regexp.MustCompile(`(?i)\btenda\b`), "tenda"},
	{regexp.MustCompile(`(?i)totolink`), "totolink"},
	{regexp.MustCompile(`(?i)fritz!?box`), "avm"},
	{regexp.MustCompile(`(?i)draytek|vigor`), "draytek"},
	{regexp.MustCompile(`(?i)\bbelkin\b`), "belkin"},
	{regexp.MustCompile(`(?i)\bcisco\b`), "cisco"},
	{regexp.MustCompile(`(?i)reolink`), "reolink"},
	{regexp.MustCompile(`(?i)vivotek`), "vivotek"},
	{regexp.MustCompile(`(?i)\bmotorola\b|\barris\b`), "arris"},
	{regexp.MustCompile(`(?i)\btechnicolor\b|\bthomson\b`), "technicolor"},
	{regexp.MustCompile(`(?i)\bsagemcom\b`), "sagemcom"},
}

// vendorHint returns the first maker named in the texts, lower case.
func vendorHint(texts ...string) string {
	for _, t := range texts {
		if t == "" {
			continue
		}
		for _, v := range vendorPatterns {
			if v.re.MatchString(t) {
				return v.vendor
			}
		}
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
