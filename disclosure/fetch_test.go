package disclosure

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/iotcop/iotcop/internal/daemontest"
)

// site is a test web site on its own loopback address: an HTTPS server
// and a plain HTTP server, each serving a path → response table.
type site struct {
	host   string
	secure *httptest.Server
	plain  *httptest.Server
}

type page struct {
	status      int
	contentType string
	body        string
	location    string
}

func serve(pages map[string]page) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if p.location != "" {
			w.Header().Set("Location", p.location)
		}
		if p.contentType != "" {
			w.Header().Set("Content-Type", p.contentType)
		}
		if p.status == 0 {
			p.status = http.StatusOK
		}
		w.WriteHeader(p.status)
		_, _ = w.Write([]byte(p.body))
	})
}

func listen(t *testing.T, host string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("listen on %s: %v", host, err)
	}
	return ln
}

// newSite starts the servers whose page tables are non-nil.
func newSite(t *testing.T, secure, plain map[string]page) *site {
	t.Helper()
	s := &site{host: daemontest.Addr()}
	if secure != nil {
		s.secure = httptest.NewUnstartedServer(serve(secure))
		s.secure.Listener = listen(t, s.host)
		s.secure.StartTLS()
		t.Cleanup(s.secure.Close)
	}
	if plain != nil {
		s.plain = httptest.NewUnstartedServer(serve(plain))
		s.plain.Listener = listen(t, s.host)
		s.plain.Start()
		t.Cleanup(s.plain.Close)
	}
	return s
}

// origins returns the site's origins; a missing server is represented by
// a closed port so that the attempt fails as on a real device.
func (s *site) origins(t *testing.T) []string {
	var out []string
	for _, srv := range []*httptest.Server{s.secure, s.plain} {
		if srv != nil {
			out = append(out, srv.URL)
		}
	}
	if s.secure == nil {
		ln := listen(t, s.host)
		addr := ln.Addr().String()
		ln.Close()
		out = append(out, "https://"+addr)
	}
	return out
}

// dialRecorder dials and records every address, failing on anything
// outside loopback.
type dialRecorder struct {
	t     *testing.T
	mu    sync.Mutex
	addrs []string
}

func (d *dialRecorder) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.addrs = append(d.addrs, addr)
	d.mu.Unlock()
	host, _, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		d.t.Errorf("dialled %s, outside loopback", addr)
		return nil, &net.AddrError{Err: "refused by test", Addr: addr}
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

func policy(expires time.Time, extra string) string {
	return "Contact: mailto:security@vendor.example\nExpires: " + expires.UTC().Format(time.RFC3339) + "\n" + extra
}

const plainText = "text/plain; charset=utf-8"

func TestCheck(t *testing.T) {
	t.Parallel()
	now := time.Now()
	good := policy(now.AddDate(0, 6, 0), "Policy: https://vendor.example/disclosure\n")
	tests := []struct {
		name          string
		secure, plain map[string]page
		want          []string // problem codes, sorted
		wantPath      string   // path of the judged file ("" = none found)
		wantAttempts  int
	}{
		{name: "good over https", secure: map[string]page{CanonicalPath: {contentType: plainText, body: good}},
			wantPath: CanonicalPath, wantAttempts: 1},
		{name: "expired", secure: map[string]page{CanonicalPath: {contentType: plainText, body: policy(now.AddDate(0, -1, 0), "")}},
			want: []string{ProblemExpired}, wantPath: CanonicalPath, wantAttempts: 1},
		{name: "expires more than a year ahead", secure: map[string]page{CanonicalPath: {contentType: plainText, body: policy(now.AddDate(2, 0, 0), "")}},
			want: []string{ProblemExpiresTooFar}, wantPath: CanonicalPath, wantAttempts: 1},
		{name: "no contact", secure: map[string]page{CanonicalPath: {contentType: plainText, body: "Expires: " + now.AddDate(0, 6, 0).UTC().Format(time.RFC3339) + "\n"}},
			want: []string{ProblemNoContact}, wantPath: CanonicalPath, wantAttempts: 1},
		{name: "plain http only", plain: map[string]page{CanonicalPath: {contentType: plainText, body: good}},
			want: []string{ProblemNotHTTPS}, wantPath: CanonicalPath, wantAttempts: 2},
		{name: "missing everywhere", secure: map[string]page{}, plain: map[string]page{},
			want: []string{ProblemMissing}, wantAttempts: 4},
		{name: "legacy location only", secure: map[string]page{LegacyPath: {contentType: plainText, body: good}},
			want: []string{ProblemLegacyLocation}, wantPath: LegacyPath, wantAttempts: 2},
		{name: "wrong content type", secure: map[string]page{CanonicalPath: {contentType: "application/octet-stream", body: good}},
			want: []string{ProblemContentType}, wantPath: CanonicalPath, wantAttempts: 1},
		{name: "catch-all HTML page is not a file", secure: map[string]page{CanonicalPath: {contentType: "text/html", body: "<!DOCTYPE html><html><title>Login</title></html>"}},
			want: []string{ProblemMissing}, wantAttempts: 2},
		{name: "same-site redirect followed", secure: map[string]page{
			CanonicalPath:            {status: http.StatusMovedPermanently, location: "/policies/security.txt"},
			"/policies/security.txt": {contentType: plainText, body: good}},
			wantPath: "/policies/security.txt", wantAttempts: 2},
		{name: "redirect to another site not followed", secure: map[string]page{
			CanonicalPath: {status: http.StatusFound, location: "https://203.0.113.7/.well-known/security.txt"}},
			want: []string{ProblemMissing, ProblemRedirectOffsite}, wantAttempts: 2},
		{name: "canonical names another URL", secure: map[string]page{CanonicalPath: {contentType: plainText,
			body: policy(now.AddDate(0, 6, 0), "Canonical: https://vendor.example/.well-known/security.txt\n")}},
			want: []string{ProblemCanonicalMismatch}, wantPath: CanonicalPath, wantAttempts: 1},
		{name: "oversized file read only up to the cap", secure: map[string]page{CanonicalPath: {contentType: plainText,
			body: good + strings.Repeat("# padding padding padding\n", 1<<16)}},
			want: []string{ProblemTooLarge}, wantPath: CanonicalPath, wantAttempts: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSite(t, tc.secure, tc.plain)
			rec := &dialRecorder{t: t}
			c := &Checker{Dial: rec.dial, Timeout: 2 * time.Second}
			res, err := c.Check(context.Background(), s.origins(t))
			if err != nil {
				t.Fatal(err)
			}
			got := codes(res.Problems)
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("problems %v, want %v\n%v\nattempts %v", got, tc.want, res.ProblemStrings(), res.AttemptStrings())
			}
			if len(res.Attempts) != tc.wantAttempts {
				t.Errorf("attempts %v, want %d", res.AttemptStrings(), tc.wantAttempts)
			}
			if tc.wantPath == "" {
				if res.Found() || res.URL != "" {
					t.Fatalf("found %q, want none", res.URL)
				}
				return
			}
			if !res.Found() || mustPath(res.URL) != tc.wantPath {
				t.Fatalf("found at %q, want path %q", res.URL, tc.wantPath)
			}
			if len(tc.want) == 0 && !res.Valid() {
				t.Fatalf("not valid: %v", res.ProblemStrings())
			}
			if len(res.File.Contact) == 0 && !slices.Contains(tc.want, ProblemNoContact) {
				t.Errorf("contact not parsed")
			}
		})
	}
}

// TestCheckHostilePeer: a server that accepts and never answers, and one
// that drips an endless body, cost a bounded time and memory and find nothing.
func TestCheckHostilePeer(t *testing.T) {
	t.Parallel()
	host := daemontest.Addr()
	silent := listen(t, host)
	t.Cleanup(func() { silent.Close() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			// Hold the connection open without a word until the test ends.
			go func() { defer c.Close(); _, _ = c.Read(make([]byte, 1)); time.Sleep(3 * time.Second) }()
		}
	}()
	drip := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", plainText)
		chunk := bytes.Repeat([]byte("# x\n"), 1024)
		for i := 0; i < 1<<12; i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	drip.Listener = listen(t, host)
	drip.Start()
	t.Cleanup(drip.Close)

	c := &Checker{Timeout: 300 * time.Millisecond}
	res, err := c.Check(context.Background(), []string{"https://" + silent.Addr().String(), drip.URL})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Has(ProblemNotHTTPS) || !res.Has(ProblemTooLarge) || !res.Has(ProblemNoContact) {
		t.Fatalf("problems %v; attempts %v", res.ProblemStrings(), res.AttemptStrings())
	}
	if !strings.Contains(res.Attempts[0].Outcome, "GET failed") {
		t.Fatalf("silent server attempt %v", res.Attempts[0])
	}
}

// signer is an OpenPGP key made for a test.
type signer struct {
	entity *openpgp.Entity
	public string // armoured public key
}

func newSigner(t *testing.T) *signer {
	t.Helper()
	cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA}
	e, err := openpgp.NewEntity("Vendor PSIRT", "", "security@vendor.example", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return &signer{entity: e, public: buf.String()}
}

func (s *signer) sign(t *testing.T, text string) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := clearsign.Encode(&buf, s.entity.PrivateKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(text)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestCheckSigned(t *testing.T) {
	t.Parallel()
	key, other := newSigner(t), newSigner(t)
	expires := time.Now().AddDate(0, 6, 0)
	tests := []struct {
		name      string
		make      func(host string) (file string, pages map[string]page)
		want      []string
		wantSig   string
		wantDials int // connections made: file + key fetches
	}{
		{name: "signed and verified with the key on the same host", make: func(base string) (string, map[string]page) {
			text := policy(expires, "Encryption: "+base+"/pgp-key.txt\nCanonical: "+base+CanonicalPath+"\n")
			return key.sign(t, text), map[string]page{"/pgp-key.txt": {contentType: "application/pgp-keys", body: key.public}}
		}, wantSig: "verified: signed by key ", wantDials: 2},
		{name: "tampered after signing", make: func(base string) (string, map[string]page) {
			text := policy(expires, "Encryption: "+base+"/pgp-key.txt\nCanonical: "+base+CanonicalPath+"\n")
			signed := strings.Replace(key.sign(t, text), "mailto:security@vendor.example", "mailto:attacker@evil.example", 1)
			return signed, map[string]page{"/pgp-key.txt": {body: key.public}}
		}, want: []string{ProblemBadSignature}, wantSig: "invalid: ", wantDials: 2},
		{name: "signed by another key than the published one", make: func(base string) (string, map[string]page) {
			text := policy(expires, "Encryption: "+base+"/pgp-key.txt\nCanonical: "+base+CanonicalPath+"\n")
			return other.sign(t, text), map[string]page{"/pgp-key.txt": {body: key.public}}
		}, wantSig: "signed, not verified: the signing key is not the one at", wantDials: 2},
		{name: "key on another host is not fetched", make: func(base string) (string, map[string]page) {
			text := policy(expires, "Encryption: https://keys.vendor.example/psirt.asc\nCanonical: "+base+CanonicalPath+"\n")
			return key.sign(t, text), nil
		}, wantSig: "signed, not verified: key at https://keys.vendor.example/psirt.asc (another host; not fetched)", wantDials: 1},
		{name: "signed without canonical", make: func(base string) (string, map[string]page) {
			text := policy(expires, "Encryption: "+base+"/pgp-key.txt\n")
			return key.sign(t, text), map[string]page{"/pgp-key.txt": {body: key.public}}
		}, want: []string{ProblemSignedNoCanonical}, wantSig: "verified: ", wantDials: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pages := map[string]page{}
			h := &handlerSwitch{}
			srv := httptest.NewUnstartedServer(h)
			srv.Listener = listen(t, daemontest.Addr())
			srv.StartTLS()
			t.Cleanup(srv.Close)
			file, extra := tc.make(srv.URL)
			for k, v := range extra {
				pages[k] = v
			}
			pages[CanonicalPath] = page{contentType: plainText, body: file}
			h.set(serve(pages))

			rec := &dialRecorder{t: t}
			c := &Checker{Dial: rec.dial, Timeout: 2 * time.Second}
			res, err := c.Check(context.Background(), []string{srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			got := codes(res.Problems)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("problems %v, want %v", res.ProblemStrings(), tc.want)
			}
			if !res.File.Signed || !strings.HasPrefix(res.Signature, tc.wantSig) {
				t.Fatalf("signature %q, want prefix %q", res.Signature, tc.wantSig)
			}
			if len(rec.addrs) != tc.wantDials {
				t.Fatalf("dialled %v, want %d connections", rec.addrs, tc.wantDials)
			}
		})
	}
}

type handlerSwitch struct {
	mu sync.Mutex
	h  http.Handler
}

func (s *handlerSwitch) set(h http.Handler) { s.mu.Lock(); s.h = h; s.mu.Unlock() }

func (s *handlerSwitch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	h := s.h
	s.mu.Unlock()
	h.ServeHTTP(w, r)
}

func TestParseOrigin(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want, err string }{
		{in: "vendor.example", want: "https://vendor.example"},
		{in: "https://www.vendor.example/support/", want: "https://www.vendor.example"},
		{in: "http://127.0.0.1:8080/x", want: "http://127.0.0.1:8080"},
		{in: "ftp://vendor.example", err: "want http or https"},
		{in: "https://user:pw@vendor.example", err: "credentials"},
		{in: "https://", err: "no host"},
	}
	for _, tc := range tests {
		u, err := ParseOrigin(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || u.String() != tc.want {
			t.Errorf("%q: %v %v, want %s", tc.in, u, err, tc.want)
		}
	}
}

func TestSameSite(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"vendor.example", "www.vendor.example", true},
		{"Vendor.Example.", "vendor.example", true},
		{"vendor.example", "evil.example", false},
		{"vendor.example", "vendor.example.evil.example", false},
		{"127.0.0.1", "127.0.0.2", false},
	} {
		if got := SameSite(tc.a, tc.b); got != tc.want {
			t.Errorf("SameSite(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}
