package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/jobs"
	"github.com/iotcop/iotcop/report"
	"github.com/iotcop/iotcop/store"
)

const testPassword = "correct horse battery staple"

type fixture struct {
	st  *store.Store
	srv *Server
	ts  *httptest.Server
	// q is the job queue, when the fixture has one.
	q *jobs.Queue
}

// backend is a database the service runs on, as the tests see it.
type backend struct {
	name string
	// location returns a new, empty database: a data folder or a
	// postgres:// URL (skipping the test when PostgreSQL cannot be had).
	location func(t *testing.T) string
}

func backends() []backend {
	return []backend{
		{"sqlite", func(t *testing.T) string { return t.TempDir() }},
		{"postgres", func(t *testing.T) string { return pg.Get(t).DSN(t) }},
	}
}

// eachBackend runs fn as one parallel subtest per database, each with a
// new, empty one.
func eachBackend(t *testing.T, fn func(t *testing.T, location string)) {
	t.Helper()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, b.location(t))
		})
	}
}

// newFixture serves a new SQLite store without a job queue.
func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	return newFixtureAt(t, t.TempDir(), opts, nil)
}

// newFixtureAt serves the store at location with three users (viewer,
// operator, admin) and, when qc is not nil, a job queue (started when it
// has workers) that the server uses.
func newFixtureAt(t *testing.T, location string, opts Options, qc *jobs.Config) *fixture {
	t.Helper()
	st, err := store.Open(context.Background(), location)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var q *jobs.Queue
	if qc != nil {
		if q, err = jobs.Open(context.Background(), st, *qc); err != nil {
			t.Fatal(err)
		}
		if err := q.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := q.Stop(ctx); err != nil {
				t.Error(err)
			}
		})
		opts.Queue = q
	}
	srv, err := New(st, opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	for _, u := range []struct{ name, role string }{{"viewer", store.RoleViewer}, {"operator", store.RoleOperator}, {"admin", store.RoleAdmin}} {
		if _, err := st.CreateUser(context.Background(), u.name, u.role, testPassword); err != nil {
			t.Fatal(err)
		}
	}
	return &fixture{st: st, srv: srv, ts: ts, q: q}
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// browser is a logged-in cookie client and its session's CSRF token.
type browser struct {
	c    *http.Client
	base string
	csrf string
}

var hiddenCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (f *fixture) login(t *testing.T, name string) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &browser{c: &http.Client{Jar: jar, CheckRedirect: noRedirect}, base: f.ts.URL}
	page := b.get(t, "/login", http.StatusOK)
	m := hiddenCSRF.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("login page has no CSRF field")
	}
	resp, err := b.c.PostForm(b.base+"/login", url.Values{"name": {name}, "password": {testPassword}, "csrf": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login %s: status %d", name, resp.StatusCode)
	}
	home := b.get(t, "/", http.StatusOK)
	m = hiddenCSRF.FindStringSubmatch(home)
	if m == nil {
		t.Fatal("overview has no CSRF field")
	}
	b.csrf = m[1]
	return b
}

func (b *browser) get(t *testing.T, path string, want int) string {
	t.Helper()
	resp, err := b.c.Get(b.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: status %d, want %d: %s", path, resp.StatusCode, want, body)
	}
	return string(body)
}

func (b *browser) postForm(t *testing.T, path string, v url.Values) (int, string) {
	t.Helper()
	resp, err := b.c.PostForm(b.base+path, v)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (b *browser) upload(t *testing.T, csrf string, doc []byte) (int, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if csrf != "" {
		mw.WriteField("csrf", csrf)
	}
	fw, _ := mw.CreateFormFile("report", "report.json")
	fw.Write(doc)
	mw.Close()
	resp, err := b.c.Post(b.base+"/upload", mw.FormDataContentType(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// api makes a request with a bearer token ("" for none).
func api(t *testing.T, base, method, path, token string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{CheckRedirect: noRedirect}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func (f *fixture) token(t *testing.T, user string, scopes ...string) string {
	t.Helper()
	us, err := f.st.Users(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range us {
		if u.Name == user {
			secret := "iotcop_test_" + user + strings.Join(scopes, "_") + randomToken(8)
			if _, err := f.st.CreateToken(context.Background(), u.ID, "test", secret, scopes); err != nil {
				t.Fatal(err)
			}
			return secret
		}
	}
	t.Fatalf("no user %s", user)
	return ""
}

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func reportDoc(t *testing.T, start time.Time, fs ...finding.Finding) []byte {
	t.Helper()
	rep := &finding.Report{Tool: finding.Tool{Name: "iotcop", Version: "test"}, StartedAt: start, FinishedAt: start.Add(time.Second)}
	for _, f := range fs {
		rep.Devices = append(rep.Devices, finding.Device{Address: f.Host, Services: []finding.Service{{Port: f.Port, Transport: "tcp", Protocol: f.Protocol}}})
	}
	rep.Findings = fs
	rep.Finalize()
	rep.RevealSecrets() // as --show-secrets: the plain password is in the report
	var buf bytes.Buffer
	if err := report.WriteJSON(&buf, rep); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func defCreds(host string) finding.Finding {
	return finding.Finding{Check: finding.CheckDefaultCredentials, Provisions: []string{"5.1-1"}, Severity: finding.Critical,
		Title: "telnet accepts a default credential", Host: host, Port: 23, Transport: "tcp", Protocol: "telnet",
		Evidence: map[string]any{"username": "root", "password": finding.Secret("xc3511")}}
}

// concrete turns a mux pattern into a request path.
func concrete(pattern string) string {
	p := strings.ReplaceAll(pattern, "{$}", "")
	p = strings.ReplaceAll(p, "{address}", "127.0.0.1")
	return strings.ReplaceAll(p, "{id}", "1")
}

func TestEveryRouteRefusesWithoutAuthentication(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	// A session cookie of a logged-out session and a wrong token count as none.
	b := f.login(t, "admin")
	var stale *http.Cookie
	u, _ := url.Parse(f.ts.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "iotcop_session" {
			stale = c
		}
	}
	if code, _ := b.postForm(t, "/logout", url.Values{"csrf": {b.csrf}}); code != http.StatusSeeOther {
		t.Fatalf("logout: %d", code)
	}
	for _, rt := range f.srv.routes() {
		if rt.need == public {
			continue
		}
		for _, cred := range []string{"none", "bad token", "stale session", "malformed header"} {
			t.Run(rt.method+" "+rt.pattern+" "+cred, func(t *testing.T) {
				req, _ := http.NewRequest(rt.method, f.ts.URL+concrete(rt.pattern), strings.NewReader("{}"))
				switch cred {
				case "bad token":
					req.Header.Set("Authorization", "Bearer iotcop_not-a-token")
				case "stale session":
					req.AddCookie(stale)
				case "malformed header":
					req.Header.Set("Authorization", "Basic YWRtaW46YWRtaW4=")
				}
				resp, err := (&http.Client{CheckRedirect: noRedirect}).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				switch {
				case rt.api && resp.StatusCode != http.StatusUnauthorized:
					t.Fatalf("status %d, want 401", resp.StatusCode)
				case !rt.api && (resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login"):
					t.Fatalf("status %d to %q, want 303 to /login", resp.StatusCode, resp.Header.Get("Location"))
				}
			})
		}
	}
	// The public routes answer without credentials.
	for _, p := range []string{"/healthz", "/readyz", "/login"} {
		if code, _ := api(t, f.ts.URL, "GET", p, "", nil); code != http.StatusOK {
			t.Fatalf("GET %s: %d", p, code)
		}
	}
}

func TestOpenAPIListsEveryRoute(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	code, body := api(t, f.ts.URL, "GET", "/api/v1/openapi.json", f.token(t, "viewer", store.ScopeRead), nil)
	if code != http.StatusOK {
		t.Fatalf("openapi: %d", code)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	var documented, served []string
	for p, ops := range doc.Paths {
		for m := range ops {
			if m == "parameters" {
				continue
			}
			documented = append(documented, strings.ToUpper(m)+" "+p)
		}
	}
	for _, rt := range f.srv.routes() {
		served = append(served, rt.method+" "+strings.ReplaceAll(rt.pattern, "{$}", ""))
	}
	slices.Sort(documented)
	slices.Sort(served)
	for _, s := range served {
		if !slices.Contains(documented, s) {
			t.Errorf("served but not in openapi.json: %s", s)
		}
	}
	for _, d := range documented {
		if !slices.Contains(served, d) {
			t.Errorf("in openapi.json but not served: %s", d)
		}
	}
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	b := f.login(t, "operator")
	doc := reportDoc(t, t0, defCreds("127.0.0.7"))
	for _, tc := range []struct{ name, csrf string }{{"missing", ""}, {"forged", "forged-" + b.csrf[:10]}} {
		if code, _ := b.upload(t, tc.csrf, doc); code != http.StatusForbidden {
			t.Fatalf("upload with %s CSRF: %d, want 403", tc.name, code)
		}
		if code, _ := b.postForm(t, "/tokens", url.Values{"name": {"x"}, "scope_read": {"1"}, "csrf": {tc.csrf}}); code != http.StatusForbidden {
			t.Fatalf("token form with %s CSRF: %d", tc.name, code)
		}
		if code, _ := b.postForm(t, "/logout", url.Values{"csrf": {tc.csrf}}); code != http.StatusForbidden {
			t.Fatalf("logout with %s CSRF: %d", tc.name, code)
		}
		req, _ := http.NewRequest("POST", f.ts.URL+"/api/v1/tokens", strings.NewReader(`{"name":"x","scopes":["read"]}`))
		if tc.csrf != "" {
			req.Header.Set("X-CSRF-Token", tc.csrf)
		}
		resp, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("API token with session and %s CSRF: %d", tc.name, resp.StatusCode)
		}
	}
	if c, _ := f.st.Counts(context.Background()); c.Reports != 0 || c.Tokens != 0 {
		t.Fatalf("refused requests changed state: %+v", c)
	}
	// A login form without the double-submit cookie is refused.
	resp, err := http.PostForm(f.ts.URL+"/login", url.Values{"name": {"operator"}, "password": {testPassword}, "csrf": {"x"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("login without CSRF cookie: %d", resp.StatusCode)
	}
	// The right token works.
	if code, body := b.upload(t, b.csrf, doc); code != http.StatusCreated || !strings.Contains(body, "Stored as report") {
		t.Fatalf("upload with CSRF: %d %s", code, body)
	}
	req, _ := http.NewRequest("POST", f.ts.URL+"/api/v1/tokens", strings.NewReader(`{"name":"ci","scopes":["import"]}`))
	req.Header.Set("X-CSRF-Token", b.csrf)
	resp, err = b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tr TokenResponse
	json.NewDecoder(resp.Body).Decode(&tr)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(tr.Token, "iotcop_") {
		t.Fatalf("create token: %d %+v", resp.StatusCode, tr)
	}
	if code, _ := api(t, f.ts.URL, "POST", "/api/v1/reports", tr.Token, reportDoc(t, t0.Add(time.Hour), defCreds("127.0.0.8"))); code != http.StatusCreated {
		t.Fatalf("import with the new token: %d", code)
	}
}

func TestViewerCannotImportAndSeesRedactedSecrets(t *testing.T) {
	t.Parallel()
	eachBackend(t, testViewerCannotImportAndSeesRedactedSecrets)
}

func testViewerCannotImportAndSeesRedactedSecrets(t *testing.T, location string) {
	f := newFixtureAt(t, location, Options{}, nil)
	doc := reportDoc(t, t0, defCreds("127.0.0.9"))
	res, err := f.st.Import(context.Background(), doc, "test")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(doc, []byte("xc3511")) {
		t.Fatal("test report should hold the plain secret")
	}
	v := f.login(t, "viewer")
	if code, _ := v.upload(t, v.csrf, reportDoc(t, t0.Add(time.Hour), defCreds("127.0.0.10"))); code != http.StatusForbidden {
		t.Fatalf("viewer upload: %d", code)
	}
	v.get(t, "/upload", http.StatusForbidden)
	if code, body := v.postForm(t, "/tokens", url.Values{"name": {"x"}, "scope_import": {"1"}, "csrf": {v.csrf}}); code != http.StatusBadRequest {
		t.Fatalf("viewer granting import: %d %s", code, body)
	}
	// Even a token with scope import in the database gives a viewer no import.
	if code, _ := api(t, f.ts.URL, "POST", "/api/v1/reports", f.token(t, "viewer", store.ScopeRead, store.ScopeImport), doc); code != http.StatusForbidden {
		t.Fatalf("viewer token import: %d", code)
	}
	viewerTok, opTok := f.token(t, "viewer", store.ScopeRead), f.token(t, "operator", store.ScopeRead)
	paths := []string{"/api/v1/findings", fmt.Sprintf("/api/v1/reports/%d", res.ReportID), "/api/v1/devices/127.0.0.9/diff"}
	for _, p := range paths {
		code, body := api(t, f.ts.URL, "GET", p, viewerTok, nil)
		if code != http.StatusOK || bytes.Contains(body, []byte("xc3511")) || !bytes.Contains(body, []byte(`"x*****"`)) {
			t.Fatalf("viewer GET %s: %d, want redacted password: %s", p, code, body)
		}
		code, body = api(t, f.ts.URL, "GET", p, opTok, nil)
		if code != http.StatusOK || !bytes.Contains(body, []byte("xc3511")) {
			t.Fatalf("operator GET %s: %d, want the password: %s", p, code, body)
		}
	}
	for _, p := range []string{"/findings", "/devices/127.0.0.9"} {
		if body := v.get(t, p, http.StatusOK); strings.Contains(body, "xc3511") || !strings.Contains(body, "x*****") {
			t.Fatalf("viewer page %s shows the secret or no redaction", p)
		}
	}
	if body := f.login(t, "operator").get(t, "/findings", http.StatusOK); !strings.Contains(body, "xc3511") {
		t.Fatal("operator findings page lacks the secret")
	}
	if c, _ := f.st.Counts(context.Background()); c.Reports != 1 {
		t.Fatalf("viewer imported: %+v", c)
	}
}

func TestTokenScopes(t *testing.T) {
	t.Parallel()
	eachBackend(t, testTokenScopes)
}

func testTokenScopes(t *testing.T, location string) {
	f := newFixtureAt(t, location, Options{}, nil)
	read, imp := f.token(t, "operator", store.ScopeRead), f.token(t, "operator", store.ScopeImport)
	doc := reportDoc(t, t0, defCreds("127.0.0.11"))
	tests := []struct {
		name, method, path, token string
		body                      []byte
		want                      int
	}{
		{"read token cannot import", "POST", "/api/v1/reports", read, doc, http.StatusForbidden},
		{"import token cannot read", "GET", "/api/v1/devices", imp, nil, http.StatusForbidden},
		{"import token cannot read metrics", "GET", "/metrics", imp, nil, http.StatusForbidden},
		{"import token imports", "POST", "/api/v1/reports", imp, doc, http.StatusCreated},
		{"same report again is a duplicate", "POST", "/api/v1/reports", imp, doc, http.StatusOK},
		{"invalid report refused", "POST", "/api/v1/reports", imp, []byte(`{"schema":"nope"}`), http.StatusBadRequest},
		{"read token reads", "GET", "/api/v1/devices", read, nil, http.StatusOK},
		{"read token reads a device", "GET", "/api/v1/devices/127.0.0.11", read, nil, http.StatusOK},
		{"unknown device", "GET", "/api/v1/devices/127.0.0.99", read, nil, http.StatusNotFound},
		{"bad filter", "GET", "/api/v1/findings?severity=dire", read, nil, http.StatusBadRequest},
		{"tokens cannot mint tokens", "POST", "/api/v1/tokens", read, []byte(`{"name":"x","scopes":["read"]}`), http.StatusForbidden},
		{"tokens cannot use the dashboard", "GET", "/devices", read, nil, http.StatusForbidden},
	}
	for _, tc := range tests {
		if code, body := api(t, f.ts.URL, tc.method, tc.path, tc.token, tc.body); code != tc.want {
			t.Fatalf("%s: %d, want %d: %s", tc.name, code, tc.want, body)
		}
	}
	c, _ := f.st.Counts(context.Background())
	if c.Reports != 1 {
		t.Fatalf("reports stored = %d, want 1", c.Reports)
	}
	_, body := api(t, f.ts.URL, "GET", "/metrics", read, nil)
	for _, want := range []string{"iotcop_report_imports_total 1\n", "iotcop_report_imports_duplicate_total 1\n", "iotcop_report_imports_failed_total 1\n", "iotcop_devices 1\n"} {
		if !bytes.Contains(body, []byte(want)) {
			t.Fatalf("metrics lack %q:\n%s", want, body)
		}
	}
	log, _ := f.st.AuditLog(context.Background(), 100)
	imports := 0
	for _, e := range log {
		if e.Action == "report-import" && e.Actor == "operator" {
			imports++
		}
	}
	if imports != 2 {
		t.Fatalf("audit log has %d imports, want 2 (stored and duplicate)", imports)
	}
}

func TestLoginRateLimit(t *testing.T) {
	t.Parallel()
	// Rate 0: exactly three attempts per address, whatever the clock.
	f := newFixture(t, Options{LoginBurst: 3})
	h := f.srv.Handler()
	attempt := func(ip, password string) int {
		req := httptest.NewRequest("POST", "/login", strings.NewReader(url.Values{"name": {"admin"}, "password": {password}, "csrf": {"c"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: loginCSRFCookie, Value: "c"})
		req.RemoteAddr = ip + ":40000"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for i := range 3 {
		if code := attempt("127.0.0.20", "wrong password"); code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d, want 401", i+1, code)
		}
	}
	if code := attempt("127.0.0.20", testPassword); code != http.StatusTooManyRequests {
		t.Fatalf("4th attempt, right password: %d, want 429", code)
	}
	if code := attempt("127.0.0.21", testPassword); code != http.StatusSeeOther {
		t.Fatalf("other address: %d, want 303", code)
	}
	log, _ := f.st.AuditLog(context.Background(), 100)
	var fails, logins int
	for _, e := range log {
		switch e.Action {
		case "login-failed":
			fails++
		case "login":
			logins++
		}
	}
	if fails != 3 || logins != 1 {
		t.Fatalf("audit: %d failed, %d logins", fails, logins)
	}
}

func TestBootstrapSecretShownOnceStoredHashed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	secret, err := Bootstrap(ctx, st, "")
	if err != nil || len(secret) < 24 {
		t.Fatalf("Bootstrap = %q, %v", secret, err)
	}
	again, err := Bootstrap(ctx, st, "")
	if err != nil || again != "" {
		t.Fatalf("second Bootstrap = %q, %v; want nothing", again, err)
	}
	var hash string
	if err := st.DB().QueryRow("SELECT password_hash FROM users WHERE name = ?", AdminName).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(hash, secret) || !strings.HasPrefix(hash, "$2") {
		t.Fatalf("admin secret not stored as a bcrypt hash: %q", hash)
	}
	// Nowhere else in the database either.
	for _, q := range []string{"SELECT COALESCE(group_concat(detail), '') FROM audit_log", "SELECT COALESCE(group_concat(name || role), '') FROM users"} {
		var all string
		st.DB().QueryRow(q).Scan(&all)
		if strings.Contains(all, secret) {
			t.Fatalf("secret found by %s", q)
		}
	}
	if _, err := st.Authenticate(ctx, AdminName, secret); err != nil {
		t.Fatalf("the printed secret does not log in: %v", err)
	}
	// From the environment: nothing is printed, and it logs in.
	st2, _ := store.Open(ctx, t.TempDir())
	defer st2.Close()
	if s, err := Bootstrap(ctx, st2, "from the environment 1"); err != nil || s != "" {
		t.Fatalf("Bootstrap(env) = %q, %v", s, err)
	}
	if _, err := st2.Authenticate(ctx, AdminName, "from the environment 1"); err != nil {
		t.Fatal(err)
	}
	// No built-in default password logs in.
	for _, pw := range []string{"admin", "password", "iotcop", "changeme", ""} {
		if _, err := st.Authenticate(ctx, AdminName, pw); err == nil {
			t.Fatalf("default password %q logs in", pw)
		}
	}
}

func TestDashboardPages(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{Version: "test"})
	b := f.login(t, "admin")
	first := reportDoc(t, t0, defCreds("127.0.0.30"))
	second := reportDoc(t, t0.Add(24*time.Hour), finding.Finding{Check: finding.CheckCleartextProtocol, Provisions: []string{"5.5-1"},
		Severity: finding.Medium, Title: "telnet is cleartext", Host: "127.0.0.30", Port: 23, Transport: "tcp", Protocol: "telnet"})
	for _, d := range [][]byte{first, second} {
		if code, body := b.upload(t, b.csrf, d); code != http.StatusCreated {
			t.Fatalf("upload: %d %s", code, body)
		}
	}
	if code, body := b.upload(t, b.csrf, first); code != http.StatusOK || !strings.Contains(body, "Already stored") {
		t.Fatalf("re-upload: %d %s", code, body)
	}
	if code, body := b.upload(t, b.csrf, []byte("not json")); code != http.StatusBadRequest || !strings.Contains(body, "invalid report") {
		t.Fatalf("bad upload: %d %s", code, body)
	}
	// Overview: the latest report of 127.0.0.30 has no default credential.
	home := b.get(t, "/", http.StatusOK)
	if !strings.Contains(home, `<b>0</b> device(s) fail 5.1-1`) || !strings.Contains(home, "5.5-1") {
		t.Fatalf("overview:\n%s", home)
	}
	if body := b.get(t, "/devices", http.StatusOK); !strings.Contains(body, `href="/devices/127.0.0.30"`) {
		t.Fatal("device list lacks the device")
	}
	dev := b.get(t, "/devices/127.0.0.30", http.StatusOK)
	if !strings.Contains(dev, "<b>1</b> new, <b>1</b> fixed") {
		t.Fatalf("device page diff:\n%s", dev)
	}
	hist, _ := f.st.DeviceHistory(context.Background(), "127.0.0.30")
	rev := b.get(t, fmt.Sprintf("/devices/127.0.0.30?from=%d&to=%d", hist[1].ReportID, hist[0].ReportID), http.StatusOK)
	if !strings.Contains(rev, "telnet accepts a default credential") || !strings.Contains(rev, "<b>1</b> new, <b>1</b> fixed") {
		t.Fatal("reversed diff wrong")
	}
	b.get(t, "/devices/127.0.0.30?from=abc", http.StatusBadRequest)
	b.get(t, "/devices/127.0.0.99", http.StatusNotFound)
	if body := b.get(t, "/findings?severity=medium", http.StatusOK); !strings.Contains(body, "telnet is cleartext") {
		t.Fatal("findings filter lost the finding")
	}
	if body := b.get(t, "/findings?severity=critical", http.StatusOK); strings.Contains(body, "telnet is cleartext") {
		t.Fatal("findings filter kept a medium finding")
	}
	code, body := b.postForm(t, "/tokens", url.Values{"name": {"ci"}, "scope_import": {"1"}, "csrf": {b.csrf}})
	m := regexp.MustCompile(`id="new-token">(iotcop_[^<]+)<`).FindStringSubmatch(body)
	if code != http.StatusCreated || m == nil {
		t.Fatalf("token page: %d %s", code, body)
	}
	if c, _ := api(t, f.ts.URL, "POST", "/api/v1/reports", m[1], reportDoc(t, t0.Add(48*time.Hour), defCreds("127.0.0.31"))); c != http.StatusCreated {
		t.Fatalf("token from the page does not import: %d", c)
	}
	code, body = b.postForm(t, "/users", url.Values{"name": {"carol"}, "role": {"viewer"}, "csrf": {b.csrf}})
	m = regexp.MustCompile(`id="new-password">([^<]+)<`).FindStringSubmatch(body)
	if code != http.StatusCreated || m == nil {
		t.Fatalf("users page: %d", code)
	}
	if _, err := f.st.Authenticate(context.Background(), "carol", m[1]); err != nil {
		t.Fatalf("new user's password: %v", err)
	}
	audit := b.get(t, "/audit", http.StatusOK)
	for _, want := range []string{"report-import", "token-create", "user-create", "login"} {
		if !strings.Contains(audit, want) {
			t.Fatalf("audit page lacks %s", want)
		}
	}
	op := f.login(t, "operator")
	op.get(t, "/audit", http.StatusForbidden)
	op.get(t, "/users", http.StatusForbidden)
	if code, _ := op.postForm(t, "/users", url.Values{"name": {"eve"}, "role": {"admin"}, "csrf": {op.csrf}}); code != http.StatusForbidden {
		t.Fatalf("operator created a user: %d", code)
	}
}

func TestSessionCookieFlagsAndTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, fp, err := LoadOrCreateSelfSigned(dir, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	_, fp2, err := LoadOrCreateSelfSigned(dir, []string{"127.0.0.1"})
	if err != nil || fp2 != fp {
		t.Fatalf("second load: fingerprint %s vs %s (%v)", fp2, fp, err)
	}
	st, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.CreateUser(context.Background(), "admin", store.RoleAdmin, testPassword)
	srv, err := New(st, Options{Secure: true})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	ts.StartTLS()
	defer ts.Close()
	pool := x509.NewCertPool()
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	pool.AddCert(leaf)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: noRedirect, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(ts.URL + "/login")
	if err != nil {
		t.Fatalf("TLS with the pinned self-signed certificate: %v", err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csrf := hiddenCSRF.FindStringSubmatch(string(page))[1]
	resp, err = c.PostForm(ts.URL+"/login", url.Values{"name": {"admin"}, "password": {testPassword}, "csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var sc *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "__Host-iotcop_session" {
			sc = ck
		}
	}
	if resp.StatusCode != http.StatusSeeOther || sc == nil || !sc.Secure || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Path != "/" {
		t.Fatalf("session cookie %+v (status %d)", sc, resp.StatusCode)
	}
	if resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatal("no HSTS under TLS")
	}
}
