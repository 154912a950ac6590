package disclosure

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Paths where RFC 9116 files live.
const (
	CanonicalPath = "/.well-known/security.txt"
	LegacyPath    = "/security.txt"
)

// Bounds on one Check.
const (
	defaultTimeout = 5 * time.Second
	maxRedirects   = 3
	maxRequests    = 16
	maxOrigins     = 4
	maxHeaderBytes = 16 << 10
)

// Checker fetches security.txt files and judges them. The zero value
// works; a scanner sets Dial to its rate-limited, scope-checked dialer.
type Checker struct {
	// Dial connects to addr ("host:port"); nil uses a net.Dialer. Every
	// connection the Checker makes goes through it.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// VerifyTLS checks certificates (against RootCAs, or the system roots
	// when nil). Devices use self-signed certificates, which weak-tls
	// judges, so the device check leaves it off.
	VerifyTLS bool
	RootCAs   *x509.CertPool
	// Timeout bounds each request (default 5s).
	Timeout time.Duration
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// Attempt is one request made while looking for the file.
type Attempt struct {
	URL         string
	Status      int // 0 when no response came
	ContentType string
	// Outcome says what the answer meant: "found", "not found",
	// "redirect to ...", an error.
	Outcome string
}

// String renders "URL: outcome".
func (a Attempt) String() string { return a.URL + ": " + a.Outcome }

// Result is what Check found on one site.
type Result struct {
	// URL is where the judged file was retrieved (after redirects); empty
	// when none was found.
	URL string
	// Attempts lists every request in order.
	Attempts []Attempt
	// File is the parsed file (nil when none was found).
	File *File
	// Signature is empty for an unsigned file, else "verified: ...",
	// "signed, not verified: ..." or "invalid: ...".
	Signature string
	// Problems lists everything wrong, each named separately.
	Problems []Problem
}

// Found reports whether a file was found.
func (r *Result) Found() bool { return r.File != nil }

// Valid reports whether a file was found with no problem at all.
func (r *Result) Valid() bool { return r.File != nil && len(r.Problems) == 0 }

// Has reports whether a problem with the code was found.
func (r *Result) Has(code string) bool {
	for _, p := range r.Problems {
		if p.Code == code {
			return true
		}
	}
	return false
}

// ProblemStrings renders the problems as "code: detail".
func (r *Result) ProblemStrings() []string {
	out := make([]string, 0, len(r.Problems))
	for _, p := range r.Problems {
		out = append(out, p.String())
	}
	return out
}

// AttemptStrings renders the attempts as "URL: outcome".
func (r *Result) AttemptStrings() []string {
	out := make([]string, 0, len(r.Attempts))
	for _, a := range r.Attempts {
		out = append(out, a.String())
	}
	return out
}

func (c *Checker) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Checker) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return defaultTimeout
}

// client builds an HTTP client that dials only through c.Dial, never uses
// an environment proxy, and follows no redirect by itself.
func (c *Checker) client() *http.Client {
	dial := c.Dial
	if dial == nil {
		d := &net.Dialer{Timeout: c.timeout()}
		dial = d.DialContext
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: c.RootCAs}
	if !c.VerifyTLS {
		tlsCfg = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10} //nolint:gosec // devices use self-signed certificates; weak-tls judges them
	}
	return &http.Client{
		Timeout: c.timeout(),
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            dial,
			TLSClientConfig:        tlsCfg,
			DisableKeepAlives:      true,
			DisableCompression:     true,
			MaxResponseHeaderBytes: maxHeaderBytes,
			ResponseHeaderTimeout:  c.timeout(),
			TLSHandshakeTimeout:    c.timeout(),
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// ParseOrigin turns "https://host[:port]" (a path is dropped) into the
// origin URL; a bare "host" means https.
func ParseOrigin(s string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("parse site URL %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("site URL %q: want http or https, not %q", s, u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("site URL %q names no host", s)
	}
	if u.User != nil {
		return nil, fmt.Errorf("site URL %q must not carry credentials", s)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// fetched is a file served at a URL.
type fetched struct {
	asked, final string
	body         []byte
	contentType  string
	https        bool
}

// Check looks for security.txt on the origins of one site (the same host
// over https and/or http, e.g. "https://192.168.1.1" and
// "http://192.168.1.1:8080") and judges the best file found. It tries
// /.well-known/security.txt over https, then over http, then the legacy
// /security.txt over https and http, stopping at the first file. Redirects
// are followed (at most 3) only within the same site. The error is only
// for unusable origins; what the site answered is in the Result.
func (c *Checker) Check(ctx context.Context, origins []string) (*Result, error) {
	var secure, plain []*url.URL
	for _, o := range origins {
		u, err := ParseOrigin(o)
		if err != nil {
			return nil, err
		}
		if u.Scheme == "https" {
			secure = append(secure, u)
		} else {
			plain = append(plain, u)
		}
	}
	if len(secure)+len(plain) == 0 {
		return nil, fmt.Errorf("security.txt check: no site URL given")
	}
	secure, plain = secure[:min(len(secure), maxOrigins)], plain[:min(len(plain), maxOrigins)]

	res := &Result{}
	cl := c.client()
	budget := maxRequests
	var found *fetched
	for _, try := range []struct {
		origins []*url.URL
		path    string
	}{{secure, CanonicalPath}, {plain, CanonicalPath}, {secure, LegacyPath}, {plain, LegacyPath}} {
		for _, o := range try.origins {
			if found != nil || ctx.Err() != nil {
				break
			}
			u := *o
			u.Path = try.path
			found = c.fetch(ctx, cl, res, u.String(), &budget)
		}
	}
	if found == nil {
		detail := "no security.txt at " + CanonicalPath + " or " + LegacyPath
		if ctx.Err() != nil {
			detail += " (interrupted: " + ctx.Err().Error() + ")"
		}
		res.Problems = append(res.Problems, Problem{ProblemMissing, detail})
		return res, nil
	}
	res.URL = found.final
	if !found.https {
		detail := "served over plain HTTP only"
		if len(secure) == 0 {
			detail += " (no HTTPS origin to try)"
		} else {
			detail += " (HTTPS: " + c.httpsOutcome(res) + ")"
		}
		res.Problems = append(res.Problems, Problem{ProblemNotHTTPS, detail})
	}
	// Judged by the path asked for: a canonical path that redirects
	// within the site is still the canonical location.
	if mustPath(found.asked) == LegacyPath && mustPath(found.final) != CanonicalPath {
		res.Problems = append(res.Problems, Problem{ProblemLegacyLocation, "found only at the legacy " + LegacyPath + ", not at " + CanonicalPath})
	}
	if msg := contentTypeProblem(found.contentType); msg != "" {
		res.Problems = append(res.Problems, Problem{ProblemContentType, msg})
	}
	f, probs := Parse(found.body)
	res.File = f
	res.Problems = append(res.Problems, probs...)
	res.Problems = append(res.Problems, f.Judge(c.now(), found.asked, found.final)...)
	if f.Signed {
		sig, prob := c.verify(ctx, cl, f, found.final, &budget)
		res.Signature = sig
		if prob != nil {
			res.Problems = append(res.Problems, *prob)
		}
	}
	return res, nil
}

// httpsOutcome summarises what the https attempts got.
func (c *Checker) httpsOutcome(res *Result) string {
	var parts []string
	for _, a := range res.Attempts {
		if strings.HasPrefix(a.URL, "https://") {
			parts = append(parts, a.String())
		}
	}
	if len(parts) == 0 {
		return "not tried"
	}
	return clip(strings.Join(parts, "; "), 400)
}

func mustPath(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Path
}

// contentTypeProblem judges the Content-Type header ("" when fine): RFC
// 9116 section 3 asks for text/plain with charset utf-8.
func contentTypeProblem(ct string) string {
	if strings.TrimSpace(ct) == "" {
		return "no Content-Type header (want text/plain; charset=utf-8)"
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Sprintf("Content-Type %q does not parse (want text/plain; charset=utf-8)", clip(ct, 80))
	}
	if mt != "text/plain" {
		return fmt.Sprintf("Content-Type is %q (want text/plain; charset=utf-8)", clip(mt, 80))
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return fmt.Sprintf("charset is %q (want utf-8)", clip(cs, 40))
	}
	return ""
}

// fetch GETs rawURL, following same-site redirects, and returns the file
// when one is served. Every request is recorded in res.
func (c *Checker) fetch(ctx context.Context, cl *http.Client, res *Result, rawURL string, budget *int) *fetched {
	asked := rawURL
	for hop := 0; hop <= maxRedirects; hop++ {
		if *budget <= 0 {
			res.Attempts = append(res.Attempts, Attempt{URL: rawURL, Outcome: "not requested: request budget spent"})
			return nil
		}
		*budget--
		resp, body, err := c.get(ctx, cl, rawURL, MaxFileSize+1)
		if err != nil {
			res.Attempts = append(res.Attempts, Attempt{URL: rawURL, Outcome: err.Error()})
			return nil
		}
		a := Attempt{URL: rawURL, Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type")}
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode <= 399:
			next, why := c.redirect(rawURL, resp.Header.Get("Location"))
			if why != "" {
				a.Outcome = fmt.Sprintf("%d redirect %s", resp.StatusCode, why)
				res.Attempts = append(res.Attempts, a)
				if strings.HasPrefix(why, "to another site") {
					res.Problems = append(res.Problems, Problem{ProblemRedirectOffsite, rawURL + " redirects " + why})
				}
				return nil
			}
			a.Outcome = fmt.Sprintf("%d redirect to %s", resp.StatusCode, next)
			res.Attempts = append(res.Attempts, a)
			rawURL = next
			continue
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			// RFC 9116 files must be readable by anyone.
			a.Outcome = fmt.Sprintf("%d, behind a login", resp.StatusCode)
			res.Attempts = append(res.Attempts, a)
			return nil
		case resp.StatusCode != http.StatusOK:
			a.Outcome = fmt.Sprintf("%d, not found", resp.StatusCode)
			res.Attempts = append(res.Attempts, a)
			return nil
		case looksHTML(a.ContentType, body):
			a.Outcome = "200 with an HTML page, not a security.txt"
			res.Attempts = append(res.Attempts, a)
			return nil
		}
		a.Outcome = fmt.Sprintf("200, found (%d bytes)", len(body))
		res.Attempts = append(res.Attempts, a)
		return &fetched{asked: asked, final: rawURL, body: body, contentType: a.ContentType, https: strings.HasPrefix(rawURL, "https://")}
	}
	res.Attempts = append(res.Attempts, Attempt{URL: rawURL, Outcome: fmt.Sprintf("not requested: more than %d redirects", maxRedirects)})
	return nil
}

// get sends one GET and reads at most limit bytes of the body.
func (c *Checker) get(ctx context.Context, cl *http.Client, rawURL string, limit int64) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("User-Agent", "iotcop (security.txt check)")
	req.Header.Set("Accept", "text/plain, */*;q=0.5")
	resp, err := cl.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("GET failed: %s", shortErr(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, nil, fmt.Errorf("reading the body failed: %s", shortErr(err))
	}
	return resp, body, nil
}

// shortErr drops the "Get \"url\": " prefix net/http adds.
func shortErr(err error) string {
	var ue *url.Error
	if e, ok := err.(*url.Error); ok {
		ue = e
		return clip(ue.Err.Error(), 200)
	}
	return clip(err.Error(), 200)
}

// redirect resolves a Location against from; why is non-empty when the
// redirect is not followed.
func (c *Checker) redirect(from, loc string) (next, why string) {
	if loc == "" {
		return "", "without a Location"
	}
	base, err := url.Parse(from)
	if err != nil {
		return "", "from an unparseable URL"
	}
	ref, err := url.Parse(strings.TrimSpace(loc))
	if err != nil {
		return "", fmt.Sprintf("to an unparseable Location %q", clip(loc, 80))
	}
	u := base.ResolveReference(ref)
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Sprintf("to a %q URL, not followed", clip(u.Scheme, 20))
	}
	if !SameSite(base.Hostname(), u.Hostname()) {
		return "", fmt.Sprintf("to another site %s, not followed", clip(u.Redacted(), 120))
	}
	u.User = nil
	return u.String(), ""
}

// SameSite reports whether two host names are the same site: equal, or
// equal once a leading "www." is dropped ("vendor.example" and
// "www.vendor.example"). Redirects are followed only within a site.
func SameSite(a, b string) bool {
	a, b = strings.ToLower(strings.TrimSuffix(a, ".")), strings.ToLower(strings.TrimSuffix(b, "."))
	return a == b || strings.TrimPrefix(a, "www.") == strings.TrimPrefix(b, "www.")
}

// looksHTML reports a web page served where the plain-text file should be
// (a catch-all route or a soft 404), which is not a security.txt at all.
func looksHTML(contentType string, body []byte) bool {
	if mt, _, err := mime.ParseMediaType(contentType); err == nil && (mt == "text/html" || mt == "application/xhtml+xml") {
		return true
	}
	head := bytes.ToLower(bytes.TrimSpace(body[:min(len(body), 512)]))
	return bytes.HasPrefix(head, []byte("<!doctype html")) || bytes.HasPrefix(head, []byte("<html"))
}

// hostOf returns the host name of a URL ("" when it does not parse).
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Hostname()
}
