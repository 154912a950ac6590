package httpproto

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/icholy/digest"

	"github.com/iotcop/iotcop/proto"
)

// ErrNoLogin is returned by Open when the server shows no login to try:
// nothing answers 401 and no login form was found.
var ErrNoLogin = fmt.Errorf("no HTTP login found: %w", proto.ErrNoLogin)

// session tries credentials against one login: Basic or Digest on the
// resource that answered 401, or a login form.
type session struct {
	f      *fetcher
	scheme string // "basic", "digest" or "form"
	path   string // the resource that asked for credentials / the form page
	ch     *challenge
	nc     int // uses of the current digest nonce

	baselineDone bool
	fail         *formOutcome // a form's answer to a random password
}

// Open prepares a login session from the identity's auth_path and
// auth_scheme (running the discovery again when they are missing). For
// Basic and Digest it checks that the resource still answers 401 without
// credentials: the first half of the proof.
func (p *Protocol) Open(ctx context.Context, ep proto.Endpoint, id *proto.Identity) (proto.LoginSession, error) {
	f := newFetcher(ep)
	var info map[string]string
	if id != nil {
		info = id.Info
	}
	if info[InfoAuthPath] == "" || info[InfoAuthScheme] == "" {
		root, err := f.do(ctx, http.MethodGet, "/", nil, "")
		if err != nil {
			return nil, fmt.Errorf("http login to %s: %w", ep.Addr(), err)
		}
		found := &proto.Identity{}
		d := &discovery{p: p, f: f, id: found}
		d.run(ctx, root)
		info = found.Info
		// Later checks (clear text) read the login found here.
		if id != nil {
			for _, k := range []string{InfoAuthPath, InfoAuthScheme, InfoRealm, InfoFormAction, InfoFormMethod, InfoFormUserField, InfoFormPassField} {
				if v := info[k]; v != "" {
					id.Set(k, v)
				}
			}
			if id.Vendor == "" {
				id.Vendor = vendorHint(id.Info[InfoServer], info[InfoRealm], id.Info[InfoTitle])
			}
		}
	}
	s := &session{f: f, scheme: info[InfoAuthScheme], path: info[InfoAuthPath]}
	switch s.scheme {
	case "basic", "digest":
		r, err := f.do(ctx, http.MethodGet, s.path, nil, "")
		if err != nil {
			return nil, fmt.Errorf("http login to %s: %w", ep.Addr(), err)
		}
		ch := pickChallenge(r.header.Values("Www-Authenticate"))
		if r.status != 401 || ch == nil {
			return nil, fmt.Errorf("http login to %s: %s no longer asks for credentials (status %d)", ep.Addr(), s.path, r.status)
		}
		if ch.scheme != s.scheme {
			s.scheme = ch.scheme
		}
		s.ch = ch
	case "form":
	default:
		return nil, fmt.Errorf("http login to %s: %w", ep.Addr(), ErrNoLogin)
	}
	return s, nil
}

// Close releases nothing: every request used its own connection.
func (s *session) Close() error { return nil }

// Try claims Accepted only on positive proof: for Basic and Digest a 2xx
// on the resource that answered 401 without credentials; for a form, an
// answer unlike the one to a random password (learnt on the first call)
// that also opens a session: a redirect to a page without a login form, or
// a new cookie and no login form. A server that lets any credential in is
// reported as it behaves (Accepted for a random pair too): callers try a
// random pair first to tell such servers apart, as check.DefaultCredentials
// does.
func (s *session) Try(ctx context.Context, c proto.Credential) (proto.LoginResult, error) {
	if s.scheme != "form" {
		return s.tryHTTPAuth(ctx, c)
	}
	if !s.baselineDone {
		res, err := s.tryForm(ctx, proto.Credential{Username: c.Username, Password: randomToken()}, true)
		if err != nil {
			return proto.LoginResult{Outcome: proto.Unknown, Detail: "learning the failure signature failed"}, err
		}
		s.baselineDone = true
		if res.Outcome == proto.LockedOut {
			return res, nil
		}
	}
	return s.tryForm(ctx, c, false)
}

// authorization computes the Authorization header for a GET of path.
func (s *session) authorization(path string, c proto.Credential) (string, error) {
	if s.ch.scheme == "basic" {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.Username+":"+c.Password)), nil
	}
	s.nc++
	cred, err := digest.Digest(s.ch.digest, digest.Options{
		Method: http.MethodGet, URI: path, Username: c.Username, Password: c.Password, Count: s.nc,
	})
	if err != nil {
		return "", fmt.Errorf("compute digest response: %w", err)
	}
	return cred.String(), nil
}

// tryHTTPAuth sends one Basic or Digest attempt, following same-host
// redirects with the credential.
func (s *session) tryHTTPAuth(ctx context.Context, c proto.Credential) (proto.LoginResult, error) {
	for retry := 0; ; retry++ {
		path := s.path
		var r *response
		for hops := 0; ; hops++ {
			auth, err := s.authorization(path, c)
			if err != nil {
				return proto.LoginResult{Outcome: proto.Unknown}, err
			}
			r, err = s.f.do(ctx, http.MethodGet, path, http.Header{"Authorization": {auth}}, "")
			if err != nil {
				return proto.LoginResult{Outcome: proto.Unknown}, fmt.Errorf("http login to %s: %w", s.f.ep.Addr(), err)
			}
			next := s.f.location(r)
			if next == "" || next == path || hops >= maxRedirects {
				break
			}
			path = next
		}
		detail := strconv.Itoa(r.status) + " on " + r.path
		switch {
		case lockedOut(r):
			return proto.LoginResult{Outcome: proto.LockedOut, Detail: detail}, nil
		case r.status >= 200 && r.status <= 299:
			proof := "2xx on " + s.path + " (401 without credentials)"
			if r.path != s.path {
				proof = "2xx on " + r.path + " redirected from " + s.path + " (401 without credentials)"
			}
			return proto.LoginResult{Outcome: proto.Accepted, Proof: proof, Detail: detail}, nil
		case r.status == 401:
			stale := false
			if ch := pickChallenge(r.header.Values("Www-Authenticate")); ch != nil {
				stale = ch.digest != nil && ch.digest.Stale
				if ch.scheme == "digest" && (s.ch.digest == nil || ch.digest.Nonce != s.ch.digest.Nonce) {
					s.nc = 0
				}
				if ch.scheme == s.ch.scheme {
					s.ch = ch
				}
			}
			if stale && retry == 0 {
				continue // the nonce expired: the password was not judged
			}
			return proto.LoginResult{Outcome: proto.Rejected, Detail: detail}, nil
		case r.status == 403:
			return proto.LoginResult{Outcome: proto.Rejected, Detail: detail}, nil
		}
		return proto.LoginResult{Outcome: proto.Unknown, Detail: detail}, nil
	}
}

// lockoutPhrases are signs in a page that the device stopped taking
// attempts.
var lockoutPhrases = []string{"locked out", "account locked", "account is locked", "too many",
	"try again later", "temporarily blocked", "login is locked", "has been locked"}

// lockedOut reports a lockout: 429 or a lockout phrase in the page.
func lockedOut(r *response) bool {
	if r.status == 429 {
		return true
	}
	body := strings.ToLower(string(r.body[:min(len(r.body), 64<<10)]))
	for _, p := range lockoutPhrases {
		if strings.Contains(body, p) {
			return true
		}
	}
	return false
}

// formOutcome is what a form submission led to.
type formOutcome struct {
	resp      *response
	status    int
	location  string // same-host redirect target, "" if none
	loginPage bool   // the answer is a login page again
	cookies   map[string]bool
	jar       map[string]string // cookies to send on the next request
}

// tryForm fetches the login page, fills in the form and classifies the
// answer. With baseline set the answer becomes the failure signature,
// unless it shows signs of a session itself (then there is none, and every
// answer is judged on its own signs).
func (s *session) tryForm(ctx context.Context, c proto.Credential, baseline bool) (proto.LoginResult, error) {
	out, err := s.submit(ctx, c)
	if err != nil {
		return proto.LoginResult{Outcome: proto.Unknown}, fmt.Errorf("http form login to %s: %w", s.f.ep.Addr(), err)
	}
	detail := strconv.Itoa(out.status) + " on " + out.resp.path
	if out.location != "" {
		detail += " → " + out.location
	}
	if lockedOut(out.resp) {
		return proto.LoginResult{Outcome: proto.LockedOut, Detail: detail}, nil
	}
	if !baseline && s.fail != nil && out.status == s.fail.status && out.location == s.fail.location && out.loginPage == s.fail.loginPage {
		return proto.LoginResult{Outcome: proto.Rejected, Detail: detail}, nil
	}
	proof, err := s.sessionSigns(ctx, out)
	if err != nil {
		return proto.LoginResult{Outcome: proto.Unknown, Detail: detail}, fmt.Errorf("http form login to %s: %w", s.f.ep.Addr(), err)
	}
	switch {
	case proof != "":
		return proto.LoginResult{Outcome: proto.Accepted, Proof: proof, Detail: detail}, nil
	case baseline:
		s.fail = out
		return proto.LoginResult{Outcome: proto.Rejected, Detail: detail}, nil
	case out.status == 401 || out.status == 403:
		return proto.LoginResult{Outcome: proto.Rejected, Detail: detail}, nil
	}
	return proto.LoginResult{Outcome: proto.Unknown, Detail: detail + ": unlike a wrong password's answer, but no sign of a session"}, nil
}

// sessionSigns returns the proof that a form answer opened a session, or
// "": a redirect (not where a wrong password goes, not to a login or error
// page) to a page served 2xx without a login form, or a 2xx answer without
// a login form that sets a cookie a wrong password did not get.
func (s *session) sessionSigns(ctx context.Context, out *formOutcome) (string, error) {
	fail := s.fail
	if out.location != "" && (fail == nil || out.location != fail.location) &&
		!looksLikeLogin(out.location) && pathOnly(out.location) != pathOnly(s.path) {
		next, err := s.f.do(ctx, http.MethodGet, out.location, cookieHeader(out.jar), "")
		if err != nil {
			return "", err
		}
		if next.status >= 200 && next.status <= 299 && next.isHTML() && !parsePage(next.body).isLoginPage() && !lockedOut(next) {
			return "form login: redirect to " + next.path + ", which serves " + strconv.Itoa(next.status) + " without a login form", nil
		}
		return "", nil
	}
	if out.status >= 200 && out.status <= 299 && !out.loginPage {
		for name := range out.cookies {
			if fail == nil || !fail.cookies[name] {
				return "form login: " + strconv.Itoa(out.status) + " with a new session cookie and no login form", nil
			}
		}
	}
	return "", nil
}

// submit fetches the form page and posts the credential through its login
// form, carrying hidden fields and cookies along.
func (s *session) submit(ctx context.Context, c proto.Credential) (*formOutcome, error) {
	page, err := s.f.get(ctx, s.path, nil)
	if err != nil {
		return nil, err
	}
	lf, ok := loginFormOf(page)
	if !ok {
		return nil, fmt.Errorf("%s no longer shows a login form (status %d)", s.path, page.status)
	}
	jar := map[string]string{}
	addCookies(jar, page.header)
	action := page.path
	if lf.action != "" {
		action = s.f.samePath(page.path, lf.action)
	}
	if action == "" {
		return nil, fmt.Errorf("login form of %s posts to another host", page.path)
	}
	userField, passField := lf.userField(), lf.passwordFields()[0]
	values := url.Values{}
	submitted := false
	for _, in := range lf.inputs {
		if in.name == "" || in.name == userField || in.name == passField {
			continue
		}
		switch {
		case in.tag == "input" && (in.typ == "hidden" || in.typ == "" || in.typ == "text" || in.typ == "email"):
			values.Set(in.name, in.value)
		case (in.tag == "input" && in.typ == "submit") || (in.tag == "button" && (in.typ == "" || in.typ == "submit")):
			if !submitted {
				values.Set(in.name, in.value)
				submitted = true
			}
		}
	}
	if userField != "" {
		values.Set(userField, c.Username)
	}
	values.Set(passField, c.Password)
	header := cookieHeader(jar)
	header.Set("Referer", s.f.baseURL()+page.path)
	var r *response
	if lf.method == "post" {
		header.Set("Content-Type", "application/x-www-form-urlencoded")
		r, err = s.f.do(ctx, http.MethodPost, action, header, values.Encode())
	} else {
		target := action
		if i := strings.IndexByte(target, '?'); i >= 0 {
			target = target[:i]
		}
		r, err = s.f.do(ctx, http.MethodGet, target+"?"+values.Encode(), header, "")
	}
	if err != nil {
		return nil, err
	}
	out := &formOutcome{resp: r, status: r.status, location: s.f.location(r), cookies: map[string]bool{}, jar: jar}
	for _, ck := range (&http.Response{Header: r.header}).Cookies() {
		if ck.Value != "" && ck.MaxAge >= 0 {
			out.cookies[ck.Name] = true
		}
	}
	addCookies(jar, r.header)
	if r.isHTML() {
		out.loginPage = parsePage(r.body).isLoginPage()
	}
	return out, nil
}

func addCookies(jar map[string]string, h http.Header) {
	for _, ck := range (&http.Response{Header: h}).Cookies() {
		if len(jar) < 32 {
			jar[ck.Name] = ck.Value
		}
	}
}

func cookieHeader(jar map[string]string) http.Header {
	h := http.Header{}
	var parts []string
	for k, v := range jar {
		parts = append(parts, (&http.Cookie{Name: k, Value: v}).String())
	}
	if len(parts) > 0 {
		h.Set("Cookie", strings.Join(parts, "; "))
	}
	return h
}

// looksLikeLogin reports a path that is a login or error page by its name.
func looksLikeLogin(path string) bool {
	p := strings.ToLower(path)
	for _, w := range []string{"login", "logon", "signin", "sign_in", "error", "fail", "denied", "auth", "retry"} {
		if strings.Contains(p, w) {
			return true
		}
	}
	return false
}

func pathOnly(p string) string {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		return p[:i]
	}
	return p
}

func randomToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "iotcop-" + hex.EncodeToString(b[:])
}
