package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/time/rate"

	"github.com/iotcop/iotcop/store"
)

// principal is who makes a request: a browser session or an API token.
type principal struct {
	user store.User
	// scopes are what the request may do: the role's rights, narrowed by
	// the token's scopes for a token.
	scopes  []string
	session *store.Session
	// sessionID is the raw cookie value, for logout.
	sessionID string
}

// scopeAdmin is a right of admin sessions only (never of a token).
const scopeAdmin = "admin"

func roleScopes(role string) []string {
	switch role {
	case store.RoleAdmin:
		return []string{store.ScopeRead, store.ScopeImport, store.ScopeScan, scopeAdmin}
	case store.RoleOperator:
		return []string{store.ScopeRead, store.ScopeImport, store.ScopeScan}
	default:
		return []string{store.ScopeRead}
	}
}

func (p principal) can(scope string) bool { return slices.Contains(p.scopes, scope) }

// seesSecrets: viewers get evidence secrets redacted.
func (p principal) seesSecrets() bool { return p.user.Role != store.RoleViewer }

func (p principal) name() string {
	if p.user.Name == "" {
		return "anonymous"
	}
	return p.user.Name
}

func (s *Server) sessionCookieName() string {
	if s.opts.Secure {
		return "__Host-iotcop_session"
	}
	return "iotcop_session"
}

const loginCSRFCookie = "iotcop_login_csrf"

// authenticate finds the principal of r; ok is false when it has none.
func (s *Server) authenticate(r *http.Request) (principal, bool) {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		secret, found := strings.CutPrefix(h, "Bearer ")
		if !found || secret == "" {
			return principal{}, false
		}
		tok, err := s.st.LookupToken(ctx, strings.TrimSpace(secret))
		if err != nil {
			if !errors.Is(err, store.ErrBadCredentials) {
				s.log.Error("token lookup", "err", err)
			}
			return principal{}, false
		}
		var scopes []string
		for _, sc := range roleScopes(tok.User.Role) {
			if tok.Has(sc) {
				scopes = append(scopes, sc)
			}
		}
		return principal{user: tok.User, scopes: scopes}, true
	}
	c, err := r.Cookie(s.sessionCookieName())
	if err != nil || c.Value == "" {
		return principal{}, false
	}
	ses, err := s.st.LookupSession(ctx, c.Value)
	if err != nil {
		if !errors.Is(err, store.ErrBadCredentials) {
			s.log.Error("session lookup", "err", err)
		}
		return principal{}, false
	}
	return principal{user: ses.User, scopes: roleScopes(ses.User.Role), session: &ses, sessionID: c.Value}, true
}

// guard enforces a route's requirements before its handler runs.
func (s *Server) guard(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.need == public {
			rt.h(w, r, principal{})
			return
		}
		p, ok := s.authenticate(r)
		if ok && rt.sessionOnly && p.session == nil {
			s.metrics.scopeForbidden.Add(1)
			s.deny(w, r, rt, http.StatusForbidden, "this route needs a browser session, not an API token")
			return
		}
		if !ok {
			s.metrics.refused.Add(1)
			if rt.api {
				w.Header().Set("WWW-Authenticate", `Bearer realm="iotcop"`)
				writeError(w, http.StatusUnauthorized, "authentication required")
				return
			}
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		want := map[need]string{readScope: store.ScopeRead, importScope: store.ScopeImport, scanScope: store.ScopeScan, adminRole: scopeAdmin}[rt.need]
		if !p.can(want) {
			s.metrics.scopeForbidden.Add(1)
			s.deny(w, r, rt, http.StatusForbidden, fmt.Sprintf("%s may not do this (needs %s)", p.name(), want))
			return
		}
		// Cookies ride along on cross-site requests; tokens do not. So
		// every state-changing request of a session must prove it came
		// from our own page.
		if p.session != nil && r.Method != http.MethodGet && r.Method != http.MethodHead {
			ok, err := s.csrfOK(r, rt, p.session.CSRF)
			if errors.As(err, new(*http.MaxBytesError)) {
				s.deny(w, r, rt, http.StatusRequestEntityTooLarge, fmt.Sprintf("request larger than %d bytes", rt.formLimit(r)))
				return
			}
			if !ok {
				s.metrics.csrfRefused.Add(1)
				s.deny(w, r, rt, http.StatusForbidden, "missing or wrong CSRF token")
				return
			}
		}
		rt.h(w, r, p)
	})
}

func (s *Server) deny(w http.ResponseWriter, r *http.Request, rt route, code int, msg string) {
	if rt.api {
		writeError(w, code, msg)
		return
	}
	http.Error(w, msg, code)
}

// csrfOK checks the X-CSRF-Token header or, without it, the form field
// "csrf" against want. Reading the form may fail for a body over the
// route's limit (an *http.MaxBytesError).
func (s *Server) csrfOK(r *http.Request, rt route, want string) (bool, error) {
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		r.Body = http.MaxBytesReader(nil, r.Body, rt.formLimit(r))
		var err error
		if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
			err = r.ParseMultipartForm(32 << 20)
		} else {
			err = r.ParseForm()
		}
		if err != nil {
			return false, err
		}
		got = r.PostFormValue("csrf")
	}
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1, nil
}

// formLimit is the most a session's form may carry on this route.
func (rt route) formLimit(r *http.Request) int64 {
	if rt.maxForm > 0 {
		return rt.maxForm
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
		return 64<<20 + 1<<20
	}
	return 1 << 20
}

// allowLogin applies the per-address login rate limit.
func (s *Server) allowLogin(ip string) bool {
	s.loginMu.Lock()
	defer s.loginMu.Unlock()
	lim, ok := s.loginLimits[ip]
	if !ok {
		if len(s.loginLimits) >= 10000 {
			// Bounded memory: forget every address (attackers with this
			// many addresses are beyond a per-address limit anyway).
			clear(s.loginLimits)
		}
		lim = rate.NewLimiter(s.opts.LoginRate, s.opts.LoginBurst)
		s.loginLimits[ip] = lim
	}
	return lim.Allow()
}

func (s *Server) setLoginCSRF(w http.ResponseWriter) string {
	v := randomToken(24)
	http.SetCookie(w, &http.Cookie{Name: loginCSRFCookie, Value: v, Path: "/login", HttpOnly: true,
		Secure: s.opts.Secure, SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	return v
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request, _ principal) {
	s.render(w, r, http.StatusOK, "login", principal{}, map[string]any{"CSRF": s.setLoginCSRF(w)})
}

func (s *Server) loginSubmit(w http.ResponseWriter, r *http.Request, _ principal) {
	ip := clientIP(r)
	if !s.allowLogin(ip) {
		s.metrics.loginLimited.Add(1)
		w.Header().Set("Retry-After", "60")
		http.Error(w, "too many login attempts; wait a minute", http.StatusTooManyRequests)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	// Login CSRF: double submit of a random cookie set by the login page.
	c, err := r.Cookie(loginCSRFCookie)
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		s.metrics.csrfRefused.Add(1)
		http.Error(w, "missing or wrong CSRF token: reload the login page", http.StatusForbidden)
		return
	}
	name, password := r.PostFormValue("name"), r.PostFormValue("password")
	u, err := s.st.Authenticate(r.Context(), name, password)
	if err != nil {
		s.metrics.loginFailures.Add(1)
		s.audit(r.Context(), name, "login-failed", "", ip)
		if !errors.Is(err, store.ErrBadCredentials) {
			s.log.Error("login", "err", err)
		}
		s.render(w, r, http.StatusUnauthorized, "login", principal{}, map[string]any{"CSRF": s.setLoginCSRF(w), "Error": "Wrong name or password."})
		return
	}
	id, csrf := randomToken(32), randomToken(32)
	if err := s.st.CreateSession(r.Context(), u.ID, id, csrf, s.opts.SessionTTL); err != nil {
		s.log.Error("create session", "err", err)
		http.Error(w, "could not start a session", http.StatusInternalServerError)
		return
	}
	s.metrics.logins.Add(1)
	s.audit(r.Context(), u.Name, "login", "", ip)
	http.SetCookie(w, &http.Cookie{Name: s.sessionCookieName(), Value: id, Path: "/", HttpOnly: true,
		Secure: s.opts.Secure, SameSite: http.SameSiteStrictMode, MaxAge: int(s.opts.SessionTTL.Seconds())})
	http.SetCookie(w, &http.Cookie{Name: loginCSRFCookie, Value: "", Path: "/login", MaxAge: -1})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, p principal) {
	if err := s.st.DeleteSession(r.Context(), p.sessionID); err != nil {
		s.log.Error("logout", "err", err)
	}
	s.audit(r.Context(), p.name(), "logout", "", clientIP(r))
	http.SetCookie(w, &http.Cookie{Name: s.sessionCookieName(), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.opts.Secure, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (s *Server) audit(ctx context.Context, actor, action, detail, remote string) {
	if err := s.st.Audit(ctx, actor, action, detail, remote); err != nil {
		s.log.Error("audit", "err", err, "action", action)
	}
}

// createToken makes a token for p with scopes no wider than p's role.
// It returns the secret, to be shown once.
func (s *Server) createToken(ctx context.Context, p principal, name string, scopes []string, remote string) (string, store.Token, error) {
	if strings.TrimSpace(name) == "" {
		return "", store.Token{}, fmt.Errorf("a token needs a name")
	}
	for _, sc := range scopes {
		if !store.ValidScope(sc) {
			return "", store.Token{}, fmt.Errorf("unknown scope %q (read, import, scan)", sc)
		}
		if !p.can(sc) {
			return "", store.Token{}, fmt.Errorf("role %s cannot grant scope %s", p.user.Role, sc)
		}
	}
	secret := "iotcop_" + randomToken(32)
	tok, err := s.st.CreateToken(ctx, p.user.ID, name, secret, scopes)
	if err != nil {
		return "", store.Token{}, err
	}
	s.metrics.tokensCreated.Add(1)
	s.audit(ctx, p.name(), "token-create", fmt.Sprintf("token %q scopes %s", name, strings.Join(scopes, ",")), remote)
	return secret, tok, nil
}

// AdminName is the account Bootstrap creates.
const AdminName = "admin"

// Bootstrap makes sure the service has an account. On a store without
// users it creates the admin account with password (from the
// environment) or, when password is empty, with a fresh random secret,
// which it returns to be shown once; only its hash is stored. On a store
// with users it does nothing and returns "".
func Bootstrap(ctx context.Context, st *store.Store, password string) (string, error) {
	n, err := st.UserCount(ctx)
	if err != nil {
		return "", err
	}
	if n > 0 {
		return "", nil
	}
	generated := ""
	if password == "" {
		password = randomToken(24)
		generated = password
	}
	if _, err := st.CreateUser(ctx, AdminName, store.RoleAdmin, password); err != nil {
		return "", fmt.Errorf("create the first admin: %w", err)
	}
	if err := st.Audit(ctx, "system", "user-create", "first admin account "+AdminName, ""); err != nil {
		return "", err
	}
	return generated, nil
}
