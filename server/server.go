// Package server is the fleet service behind `iotcop serve`: a versioned
// JSON API (/api/v1/…, described by the embedded OpenAPI document), a
// server-rendered dashboard that needs no outside network (one small
// embedded script only refreshes running scans live; every page works
// without it), health, readiness and Prometheus metrics. Storage is
// package store; scans, firmware analyses and schedules run as jobs of
// package jobs.
//
// Security of the service itself: every route except /healthz, /readyz,
// /login and the embedded script needs a browser session (cookie;
// HttpOnly, SameSite=Strict, Secure under TLS) or an API token
// (Authorization: Bearer, kept hashed, scoped read, import and/or scan).
// Every state-changing browser request carries the session's CSRF token.
// Logins and password changes are rate limited per client address.
// Viewers see secrets redacted and cannot import or start anything; the
// job queue applies the server's scan-scope policy, and every start,
// upload, schedule change and policy refusal goes to the audit log. Only
// admins manage users and read the audit log.
package server

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/iotcop/iotcop/jobs"
	"github.com/iotcop/iotcop/scan"
	"github.com/iotcop/iotcop/standard"
	"github.com/iotcop/iotcop/store"
)

//go:embed openapi.json
var openAPIDoc []byte

//go:embed templates/*.html
var templateFiles embed.FS

// staticFiles are served under /static/: the dashboard's one script.
//
//go:embed static
var staticFiles embed.FS

// OpenAPI returns the embedded OpenAPI 3 document of the service.
func OpenAPI() []byte { return append([]byte(nil), openAPIDoc...) }

// Options configure a Server. The zero value is usable.
type Options struct {
	// Secure marks session cookies Secure (set when serving TLS).
	Secure bool
	// LoginRate and LoginBurst limit login attempts per client address
	// (default: a burst of 5, then one every 12 seconds). A LoginRate of
	// 0 with a LoginBurst set allows exactly LoginBurst attempts.
	LoginRate  rate.Limit
	LoginBurst int
	// SessionTTL is how long a login lasts (default 12 hours).
	SessionTTL time.Duration
	// Logger receives structured logs (default: discarded).
	Logger *slog.Logger
	// Version is shown in the dashboard and metrics.
	Version string
	// Queue runs scans, firmware analyses and schedules; nil serves the
	// fleet's history only and answers 503 to requests to start anything.
	Queue *jobs.Queue
	// MaxUploadBytes bounds an uploaded firmware image (default and
	// maximum store.MaxUploadBytes).
	MaxUploadBytes int64
}

// Server serves the fleet API and dashboard over a Store.
type Server struct {
	st    *store.Store
	opts  Options
	log   *slog.Logger
	pages map[string]*template.Template
	// liveChecks are the ids of the live checks a scan may select.
	liveChecks []string
	// pstiRoutes maps each provision to the UK PSTI requirement it is a
	// route to, from the embedded EN 303 645 catalogue.
	pstiRoutes map[string]int

	loginMu     sync.Mutex
	loginLimits map[string]*rate.Limiter

	metrics metrics
}

type metrics struct {
	requests       [6]atomic.Int64 // by status class 1xx..5xx (index 1..5)
	imports        atomic.Int64
	duplicates     atomic.Int64
	importFailures atomic.Int64
	logins         atomic.Int64
	loginFailures  atomic.Int64
	loginLimited   atomic.Int64
	refused        atomic.Int64
	tokensCreated  atomic.Int64
	csrfRefused    atomic.Int64
	scopeForbidden atomic.Int64
	scansStarted   atomic.Int64
	firmwareJobs   atomic.Int64
	policyRefused  atomic.Int64
}

// New returns a Server over st.
func New(st *store.Store, opts Options) (*Server, error) {
	if opts.LoginBurst == 0 {
		opts.LoginBurst = 5
		if opts.LoginRate == 0 {
			opts.LoginRate = rate.Every(12 * time.Second)
		}
	}
	if opts.SessionTTL == 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxUploadBytes <= 0 || opts.MaxUploadBytes > store.MaxUploadBytes {
		opts.MaxUploadBytes = store.MaxUploadBytes
	}
	s := &Server{st: st, opts: opts, log: opts.Logger, loginLimits: map[string]*rate.Limiter{}}
	for _, c := range scan.DefaultChecks(scan.DefaultProtocols(), scan.CheckOptions{}) {
		if !slices.Contains(s.liveChecks, c.ID()) {
			s.liveChecks = append(s.liveChecks, c.ID())
		}
	}
	cat, err := standard.Load()
	if err != nil {
		return nil, fmt.Errorf("load the provision catalogue: %w", err)
	}
	s.pstiRoutes = map[string]int{}
	for _, p := range cat.Provisions {
		if p.PSTI != nil {
			s.pstiRoutes[p.ID] = p.PSTI.Requirement
		}
	}
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	return s, nil
}

// need says what a route requires.
type need int

const (
	public      need = iota
	readScope        // any signed-in principal
	importScope      // operator or admin, token with scope import
	scanScope        // operator or admin, token with scope scan
	adminRole        // admin browser session
)

// route is one entry of the mux; the OpenAPI document lists every one.
type route struct {
	method, pattern string
	need            need
	// sessionOnly refuses API tokens (token creation: a leaked token must
	// not mint more).
	sessionOnly bool
	// api routes answer 401 in JSON; dashboard routes redirect to /login.
	api bool
	// maxForm bounds the form a session's POST carries (default 1 MiB,
	// 65 MiB for multipart).
	maxForm int64
	h       func(http.ResponseWriter, *http.Request, principal)
}

func (s *Server) routes() []route {
	return []route{
		{method: "GET", pattern: "/healthz", need: public, api: true, h: s.healthz},
		{method: "GET", pattern: "/readyz", need: public, api: true, h: s.readyz},
		{method: "GET", pattern: "/metrics", need: readScope, api: true, h: s.metricsText},
		{method: "GET", pattern: "/api/v1/openapi.json", need: readScope, api: true, h: s.apiOpenAPI},
		{method: "GET", pattern: "/api/v1/overview", need: readScope, api: true, h: s.apiOverview},
		{method: "GET", pattern: "/api/v1/devices", need: readScope, api: true, h: s.apiDevices},
		{method: "GET", pattern: "/api/v1/devices/{address}", need: readScope, api: true, h: s.apiDevice},
		{method: "GET", pattern: "/api/v1/devices/{address}/diff", need: readScope, api: true, h: s.apiDiff},
		{method: "GET", pattern: "/api/v1/findings", need: readScope, api: true, h: s.apiFindings},
		{method: "POST", pattern: "/api/v1/reports", need: importScope, api: true, h: s.apiImport},
		{method: "GET", pattern: "/api/v1/reports/{id}", need: readScope, api: true, h: s.apiReport},
		{method: "GET", pattern: "/api/v1/tokens", need: readScope, api: true, h: s.apiTokens},
		{method: "POST", pattern: "/api/v1/tokens", need: readScope, sessionOnly: true, api: true, h: s.apiCreateToken},
		{method: "DELETE", pattern: "/api/v1/tokens/{id}", need: readScope, api: true, h: s.apiRevokeToken},
		{method: "GET", pattern: "/api/v1/scans", need: readScope, api: true, h: s.apiScans},
		{method: "POST", pattern: "/api/v1/scans", need: scanScope, api: true, h: s.apiStartScan},
		{method: "GET", pattern: "/api/v1/scans/{id}", need: readScope, api: true, h: s.apiScan},
		{method: "GET", pattern: "/api/v1/scans/{id}/findings", need: readScope, api: true, h: s.apiScanFindings},
		{method: "POST", pattern: "/api/v1/firmware", need: scanScope, api: true, h: s.apiFirmware},
		{method: "GET", pattern: "/api/v1/schedules", need: readScope, api: true, h: s.apiSchedules},
		{method: "POST", pattern: "/api/v1/schedules", need: scanScope, api: true, h: s.apiCreateSchedule},
		{method: "DELETE", pattern: "/api/v1/schedules/{id}", need: scanScope, api: true, h: s.apiDeleteSchedule},

		{method: "GET", pattern: "/static/{name}", need: public, h: s.static},
		{method: "GET", pattern: "/login", need: public, h: s.loginPage},
		{method: "POST", pattern: "/login", need: public, h: s.loginSubmit},
		{method: "POST", pattern: "/logout", need: readScope, sessionOnly: true, h: s.logout},
		{method: "GET", pattern: "/{$}", need: readScope, sessionOnly: true, h: s.overviewPage},
		{method: "GET", pattern: "/devices", need: readScope, sessionOnly: true, h: s.devicesPage},
		{method: "GET", pattern: "/devices/{address}", need: readScope, sessionOnly: true, h: s.devicePage},
		{method: "GET", pattern: "/findings", need: readScope, sessionOnly: true, h: s.findingsPage},
		{method: "GET", pattern: "/upload", need: importScope, sessionOnly: true, h: s.uploadPage},
		{method: "POST", pattern: "/upload", need: importScope, sessionOnly: true, h: s.uploadSubmit},
		{method: "GET", pattern: "/scans", need: readScope, sessionOnly: true, h: s.scansPage},
		{method: "POST", pattern: "/scans", need: scanScope, sessionOnly: true, h: s.scansSubmit},
		{method: "GET", pattern: "/scans/{id}", need: readScope, sessionOnly: true, h: s.scanPage},
		{method: "POST", pattern: "/firmware", need: scanScope, sessionOnly: true, maxForm: s.opts.MaxUploadBytes + 1<<20, h: s.firmwareSubmit},
		{method: "GET", pattern: "/schedules", need: readScope, sessionOnly: true, h: s.schedulesPage},
		{method: "POST", pattern: "/schedules", need: scanScope, sessionOnly: true, h: s.schedulesSubmit},
		{method: "POST", pattern: "/schedules/{id}/delete", need: scanScope, sessionOnly: true, h: s.scheduleDelete},
		{method: "GET", pattern: "/account", need: readScope, sessionOnly: true, h: s.accountPage},
		{method: "POST", pattern: "/account/password", need: readScope, sessionOnly: true, h: s.passwordSubmit},
		{method: "GET", pattern: "/tokens", need: readScope, sessionOnly: true, h: s.tokensPage},
		{method: "POST", pattern: "/tokens", need: readScope, sessionOnly: true, h: s.tokensSubmit},
		{method: "POST", pattern: "/tokens/{id}/revoke", need: readScope, sessionOnly: true, h: s.tokenRevoke},
		{method: "GET", pattern: "/users", need: adminRole, sessionOnly: true, h: s.usersPage},
		{method: "POST", pattern: "/users", need: adminRole, sessionOnly: true, h: s.usersSubmit},
		{method: "POST", pattern: "/users/{id}/disable", need: adminRole, sessionOnly: true, h: s.userAction("disable")},
		{method: "POST", pattern: "/users/{id}/enable", need: adminRole, sessionOnly: true, h: s.userAction("enable")},
		{method: "POST", pattern: "/users/{id}/delete", need: adminRole, sessionOnly: true, h: s.userAction("delete")},
		{method: "GET", pattern: "/audit", need: adminRole, sessionOnly: true, h: s.auditPage},
	}
}

// Handler returns the HTTP handler of the whole service.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		mux.Handle(rt.method+" "+rt.pattern, s.guard(rt))
	}
	return s.observe(securityHeaders(mux))
}

// statusRecorder remembers the status code for metrics and logs.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		start := time.Now()
		next.ServeHTTP(rec, r)
		if rec.code == 0 {
			rec.code = http.StatusOK
		}
		if c := rec.code / 100; c >= 1 && c <= 5 {
			s.metrics.requests[c].Add(1)
		}
		s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.code,
			"remote", clientIP(r), "duration_ms", time.Since(start).Milliseconds())
	})
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// script-src 'self': the embedded /static/ script and nothing
		// inline; connect-src 'self': its polling of the scan API.
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// clientIP is the peer address; forwarding headers are not trusted.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

type apiError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{Error: msg})
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request, _ principal) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ principal) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.st.Ping(ctx); err != nil {
		s.log.Error("readiness", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) apiOpenAPI(w http.ResponseWriter, _ *http.Request, _ principal) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPIDoc)
}

func (s *Server) metricsText(w http.ResponseWriter, r *http.Request, _ principal) {
	c, err := s.st.Counts(r.Context())
	if err != nil {
		http.Error(w, "counts unavailable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	var b strings.Builder
	counter := func(name, help string, v int64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
	}
	gauge := func(name, help string, v int) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n%s %d\n", name, help, name, name, v)
	}
	b.WriteString("# HELP iotcop_http_requests_total HTTP requests answered, by status class.\n# TYPE iotcop_http_requests_total counter\n")
	for i := 1; i <= 5; i++ {
		fmt.Fprintf(&b, "iotcop_http_requests_total{code=\"%dxx\"} %d\n", i, s.metrics.requests[i].Load())
	}
	counter("iotcop_report_imports_total", "Reports stored by import.", s.metrics.imports.Load())
	counter("iotcop_report_imports_duplicate_total", "Imports of a report already stored.", s.metrics.duplicates.Load())
	counter("iotcop_report_imports_failed_total", "Imports refused (invalid report or error).", s.metrics.importFailures.Load())
	counter("iotcop_logins_total", "Successful logins.", s.metrics.logins.Load())
	counter("iotcop_login_failures_total", "Failed logins.", s.metrics.loginFailures.Load())
	counter("iotcop_login_rate_limited_total", "Login attempts refused by the rate limit.", s.metrics.loginLimited.Load())
	counter("iotcop_unauthenticated_refused_total", "Requests refused for lack of authentication.", s.metrics.refused.Load())
	counter("iotcop_forbidden_total", "Requests refused for lack of a role or scope.", s.metrics.scopeForbidden.Load())
	counter("iotcop_csrf_refused_total", "Requests refused for a missing or wrong CSRF token.", s.metrics.csrfRefused.Load())
	counter("iotcop_api_tokens_created_total", "API tokens created.", s.metrics.tokensCreated.Load())
	counter("iotcop_scans_started_total", "Live scans started from the API or the dashboard.", s.metrics.scansStarted.Load())
	counter("iotcop_firmware_uploads_total", "Firmware images uploaded for analysis.", s.metrics.firmwareJobs.Load())
	counter("iotcop_scan_policy_refused_total", "Scans and schedules refused by the scan-scope policy.", s.metrics.policyRefused.Load())
	gauge("iotcop_reports", "Reports stored.", c.Reports)
	gauge("iotcop_devices", "Devices in the inventory.", c.Devices)
	gauge("iotcop_findings", "Findings stored (all reports).", c.Findings)
	gauge("iotcop_users", "User accounts.", c.Users)
	w.Write([]byte(b.String()))
}

func (s *Server) parseTemplates() error {
	funcs := template.FuncMap{
		"evidence": formatEvidence,
		"join":     strings.Join,
		"time":     func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
		"lower":    strings.ToLower,
		"percent":  percent,
		"every":    formatEvery,
		"finished": func(sc store.Scan) bool { return sc.Status == store.ScanDone || sc.Status == store.ScanFailed },
	}
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return err
	}
	s.pages = map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" || strings.HasPrefix(base, "_") {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/_*.html", n)
		if err != nil {
			return fmt.Errorf("parse template %s: %w", n, err)
		}
		s.pages[base] = t
	}
	return nil
}
