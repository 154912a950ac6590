package httpproto

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/iotcop/iotcop/proto"
)

// Bounds on what one response may cost.
const (
	// maxBody caps how much of a body is read.
	maxBody = 256 << 10
	// maxHeaderBytes caps a response's header block.
	maxHeaderBytes = 32 << 10
	// maxRedirects bounds redirects followed by hand (same host only).
	maxRedirects = 2
)

const userAgent = "Mozilla/5.0 (compatible; iotcop)"

// fetcher sends requests to one endpoint only: whatever a URL, a redirect
// or a form action names, the connection goes to ep.
type fetcher struct {
	ep     proto.Endpoint
	client *http.Client
	// requests counts the requests sent, for budgets and tests.
	requests int
}

func newFetcher(ep proto.Endpoint) *fetcher {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		e := ep
		e.TLS = false
		return e.Connect(ctx)
	}
	tr := &http.Transport{
		Proxy:       nil, // never an environment proxy: traffic goes to the device only
		DialContext: dial,
		DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			e := ep
			e.TLS = true
			return e.Connect(ctx)
		},
		TLSClientConfig:        &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10}, //nolint:gosec // devices use self-signed certificates
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: maxHeaderBytes,
		ResponseHeaderTimeout:  ep.IOTimeout(),
		TLSHandshakeTimeout:    ep.IOTimeout(),
	}
	return &fetcher{ep: ep, client: &http.Client{
		Transport: tr,
		Timeout:   2 * ep.IOTimeout(),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
}

// baseURL is scheme://host:port of the endpoint.
func (f *fetcher) baseURL() string {
	scheme := "http"
	if f.ep.TLS {
		scheme = "https"
	}
	return scheme + "://" + f.ep.Addr()
}

// response is a fetched response with its body read (capped).
type response struct {
	path   string // request path and query
	status int
	header http.Header
	body   []byte
}

// location returns the same-host path a redirect points to, or "" when it
// points elsewhere or nowhere.
func (f *fetcher) location(r *response) string {
	if r.status < 300 || r.status > 399 {
		return ""
	}
	return f.samePath(r.path, r.header.Get("Location"))
}

// samePath resolves ref against base (a path) and returns the path and
// query when it stays on the endpoint, else "". An absolute URL counts as
// the endpoint when it names the endpoint's address (devices redirect to
// "http://192.168.1.1/login.htm") or a loopback name.
func (f *fetcher) samePath(base, ref string) string {
	ref = strings.TrimSpace(ref)
	if ref == "" || len(ref) > 2048 {
		return ""
	}
	b, err := url.Parse(base)
	if err != nil {
		return ""
	}
	u, err := url.Parse(ref)
	if err != nil {
		return ""
	}
	if u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https" {
		return ""
	}
	if u.Host != "" && !f.isSelf(u) {
		return ""
	}
	r := b.ResolveReference(u)
	p := r.EscapedPath()
	if p == "" {
		p = "/"
	}
	if r.RawQuery != "" {
		p += "?" + r.RawQuery
	}
	return p
}

func (f *fetcher) isSelf(u *url.URL) bool {
	h := u.Hostname()
	if strings.EqualFold(h, f.ep.Host) || h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && (ip.IsLoopback() || ip.Equal(net.ParseIP(f.ep.Host)))
}

// do sends one request for path (path and query) and reads the response.
func (f *fetcher) do(ctx context.Context, method, path string, header http.Header, body string) (*response, error) {
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, f.baseURL()+path, rd)
	if err != nil {
		return nil, fmt.Errorf("build %s %s: %w", method, path, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", userAgent)
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	}
	f.requests++
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil && len(b) == 0 && !proto.IsTimeout(err) {
		// A truncated body still tells the status; only a body that
		// failed outright with nothing read is kept empty.
		b = nil
	}
	return &response{path: path, status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// get follows same-host redirects (at most maxRedirects) from path.
func (f *fetcher) get(ctx context.Context, path string, header http.Header) (*response, error) {
	resp, err := f.do(ctx, http.MethodGet, path, header, "")
	for hops := 0; err == nil && hops < maxRedirects; hops++ {
		next := f.location(resp)
		if next == "" || next == resp.path {
			break
		}
		resp, err = f.do(ctx, http.MethodGet, next, header, "")
	}
	return resp, err
}

// isHTML reports whether a response looks like an HTML document.
func (r *response) isHTML() bool {
	ct := strings.ToLower(r.header.Get("Content-Type"))
	if strings.Contains(ct, "html") {
		return true
	}
	if ct != "" && !strings.HasPrefix(ct, "text/") {
		return false
	}
	head := strings.ToLower(string(r.body[:min(len(r.body), 512)]))
	return strings.Contains(head, "<html") || strings.Contains(head, "<!doctype html") || strings.Contains(head, "<form")
}
