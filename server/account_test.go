package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/iotcop/iotcop/store"
)

// userID returns the id of the account called name.
func (f *fixture) userID(t *testing.T, name string) int64 {
	t.Helper()
	us, err := f.st.Users(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range us {
		if u.Name == name {
			return u.ID
		}
	}
	t.Fatalf("no user %s", name)
	return 0
}

// signedIn reports whether b's session still works.
func (b *browser) signedIn(t *testing.T) bool {
	t.Helper()
	resp, err := b.c.Get(b.base + "/account")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		return true
	case resp.StatusCode == http.StatusSeeOther && resp.Header.Get("Location") == "/login":
		return false
	}
	t.Fatalf("GET /account: %d", resp.StatusCode)
	return false
}

// loginStatus posts the login form with password and returns the status.
func (f *fixture) loginStatus(t *testing.T, name, password string) int {
	t.Helper()
	jar := &browser{c: &http.Client{CheckRedirect: noRedirect}, base: f.ts.URL}
	resp, err := jar.c.Get(f.ts.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var csrf string
	for _, c := range resp.Cookies() {
		if c.Name == loginCSRFCookie {
			csrf = c.Value
		}
	}
	req, _ := http.NewRequest("POST", f.ts.URL+"/login", strings.NewReader(url.Values{"name": {name}, "password": {password}, "csrf": {csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: loginCSRFCookie, Value: csrf})
	resp, err = jar.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestPasswordChange(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{LoginBurst: 50})
	here, elsewhere := f.login(t, "operator"), f.login(t, "operator")
	admin := f.login(t, "admin")
	const next = "a new and longer passphrase"
	refused := []struct {
		name string
		form url.Values
		want int
	}{
		{"wrong current password", url.Values{"current": {"guess guess guess"}, "new": {next}, "confirm": {next}}, http.StatusForbidden},
		{"confirmation differs", url.Values{"current": {testPassword}, "new": {next}, "confirm": {next + "!"}}, http.StatusBadRequest},
		{"too short", url.Values{"current": {testPassword}, "new": {"short"}, "confirm": {"short"}}, http.StatusBadRequest},
		{"unchanged", url.Values{"current": {testPassword}, "new": {testPassword}, "confirm": {testPassword}}, http.StatusBadRequest},
	}
	for _, tc := range refused {
		tc.form.Set("csrf", here.csrf)
		if code, page := here.postForm(t, "/account/password", tc.form); code != tc.want || !strings.Contains(page, `id="password-error"`) {
			t.Fatalf("%s: %d, want %d", tc.name, code, tc.want)
		}
	}
	if !elsewhere.signedIn(t) {
		t.Fatal("a refused change ended another session")
	}
	code, page := here.postForm(t, "/account/password", url.Values{"current": {testPassword}, "new": {next}, "confirm": {next}, "csrf": {here.csrf}})
	if code != http.StatusOK || !strings.Contains(page, `id="password-changed">Password changed; 1 other session(s) logged out.`) {
		t.Fatalf("change: %d\n%s", code, page)
	}
	if !here.signedIn(t) || elsewhere.signedIn(t) || !admin.signedIn(t) {
		t.Fatal("after the change: want this session kept, the other one ended, other users untouched")
	}
	if c := f.loginStatus(t, "operator", testPassword); c != http.StatusUnauthorized {
		t.Fatalf("old password: %d, want 401", c)
	}
	if c := f.loginStatus(t, "operator", next); c != http.StatusSeeOther {
		t.Fatalf("new password: %d, want 303", c)
	}
	if !auditHas(t, f.st, "operator", "password-change", "1 other session(s) ended") || !auditHas(t, f.st, "operator", "password-change-failed", "") {
		t.Fatal("password change not in the audit log")
	}
}

func TestPasswordChangeIsRateLimited(t *testing.T) {
	t.Parallel()
	// Exactly three attempts per address, logins included.
	f := newFixture(t, Options{LoginBurst: 3})
	b := f.login(t, "operator")
	for i := range 2 {
		if code, _ := b.postForm(t, "/account/password", url.Values{"current": {"guess guess guess"}, "new": {"x"}, "confirm": {"x"}, "csrf": {b.csrf}}); code != http.StatusForbidden {
			t.Fatalf("guess %d: %d, want 403", i+1, code)
		}
	}
	code, _ := b.postForm(t, "/account/password", url.Values{"current": {testPassword}, "new": {"a new and longer passphrase"}, "confirm": {"a new and longer passphrase"}, "csrf": {b.csrf}})
	if code != http.StatusTooManyRequests {
		t.Fatalf("attempt past the limit: %d, want 429", code)
	}
	if _, err := f.st.Authenticate(context.Background(), "operator", testPassword); err != nil {
		t.Fatal("the password changed past the limit")
	}
}

func TestTokenListAndRevoke(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	opTok, opID := f.tokenWithID(t, "operator", store.ScopeRead)
	opTok2, opID2 := f.tokenWithID(t, "operator", store.ScopeRead, store.ScopeScan)
	viewTok, viewID := f.tokenWithID(t, "viewer", store.ScopeRead)
	works := func(tok string) bool {
		code, _ := api(t, f.ts.URL, "GET", "/api/v1/devices", tok, nil)
		if code != http.StatusOK && code != http.StatusUnauthorized {
			t.Fatalf("GET /api/v1/devices: %d", code)
		}
		return code == http.StatusOK
	}
	// A user lists their own tokens only, never the secrets.
	code, body := api(t, f.ts.URL, "GET", "/api/v1/tokens", opTok, nil)
	list := decode[struct{ Tokens []store.Token }](t, body)
	if code != http.StatusOK || len(list.Tokens) != 2 || list.Tokens[0].ID != opID2 || list.Tokens[1].ID != opID || strings.Contains(string(body), opTok) {
		t.Fatalf("operator's token list: %d %s", code, body)
	}
	// Another user's token is not theirs to revoke (and not said to exist).
	if code, _ := api(t, f.ts.URL, "DELETE", fmt.Sprintf("/api/v1/tokens/%d", opID), viewTok, nil); code != http.StatusNotFound {
		t.Fatalf("viewer revokes the operator's token: %d, want 404", code)
	}
	if !works(opTok) {
		t.Fatal("a refused revoke revoked")
	}
	// The owner revokes with the API; the token stops at once.
	if code, body := api(t, f.ts.URL, "DELETE", fmt.Sprintf("/api/v1/tokens/%d", opID2), opTok, nil); code != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", code, body)
	}
	if works(opTok2) || !works(opTok) {
		t.Fatal("after revoking: the revoked token works, or the other one stopped")
	}
	if code, _ := api(t, f.ts.URL, "DELETE", fmt.Sprintf("/api/v1/tokens/%d", opID2), opTok, nil); code != http.StatusNotFound {
		t.Fatalf("revoke again: %d", code)
	}
	// An admin sees and revokes anyone's, on the page.
	admin := f.login(t, "admin")
	page := admin.get(t, "/tokens", http.StatusOK)
	if !strings.Contains(page, fmt.Sprintf(`id="token-row-%d"`, viewID)) || !strings.Contains(page, fmt.Sprintf(`id="token-row-%d"`, opID)) {
		t.Fatalf("admin's token page lacks other users' tokens:\n%s", page)
	}
	if code, _ := admin.postForm(t, fmt.Sprintf("/tokens/%d/revoke", viewID), url.Values{"csrf": {admin.csrf}}); code != http.StatusSeeOther {
		t.Fatalf("admin revokes: %d", code)
	}
	if works(viewTok) {
		t.Fatal("the token an admin revoked works")
	}
	// An operator's page lists only their own.
	if page := f.login(t, "operator").get(t, "/tokens", http.StatusOK); !strings.Contains(page, fmt.Sprintf(`id="token-row-%d"`, opID)) ||
		strings.Contains(page, `class="token-row" data-token-id="`+fmt.Sprint(viewID)+`"`) {
		t.Fatal("operator's token page")
	}
	if !auditHas(t, f.st, "operator", "token-revoke", fmt.Sprintf("token %d", opID2)) || !auditHas(t, f.st, "admin", "token-revoke", fmt.Sprintf("token %d \"test\" of viewer", viewID)) {
		t.Fatal("revocations not in the audit log")
	}
}

func TestDisableAndDeleteUser(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{LoginBurst: 50})
	admin := f.login(t, "admin")
	op := f.login(t, "operator")
	tok := f.token(t, "operator", store.ScopeRead)
	opID := f.userID(t, "operator")
	tokenWorks := func() bool {
		code, _ := api(t, f.ts.URL, "GET", "/api/v1/devices", tok, nil)
		return code == http.StatusOK
	}
	action := func(b *browser, id int64, what string) int {
		code, _ := b.postForm(t, fmt.Sprintf("/users/%d/%s", id, what), url.Values{"csrf": {b.csrf}})
		return code
	}
	if code := action(op, f.userID(t, "viewer"), "disable"); code != http.StatusForbidden {
		t.Fatalf("operator disables a user: %d", code)
	}
	if code := action(admin, f.userID(t, "admin"), "disable"); code != http.StatusBadRequest {
		t.Fatalf("admin disables themself: %d", code)
	}
	if code := action(admin, 999, "disable"); code != http.StatusNotFound {
		t.Fatalf("disable a missing user: %d", code)
	}

	if code := action(admin, opID, "disable"); code != http.StatusSeeOther {
		t.Fatalf("disable: %d", code)
	}
	if op.signedIn(t) || tokenWorks() || f.loginStatus(t, "operator", testPassword) != http.StatusUnauthorized {
		t.Fatal("a disabled user's session, token or password still works")
	}
	if page := admin.get(t, "/users", http.StatusOK); !strings.Contains(page, fmt.Sprintf(`id="user-row-%d" class="user-row" data-user="operator">`, opID)) ||
		!strings.Contains(page, `<td class="user-state">disabled</td>`) {
		t.Fatal("users page does not show the account disabled")
	}
	if code := action(admin, opID, "enable"); code != http.StatusSeeOther {
		t.Fatalf("enable: %d", code)
	}
	if !tokenWorks() || f.loginStatus(t, "operator", testPassword) != http.StatusSeeOther {
		t.Fatal("a re-enabled user cannot log in or use their token")
	}

	if code := action(admin, opID, "delete"); code != http.StatusSeeOther {
		t.Fatalf("delete: %d", code)
	}
	if tokenWorks() || f.loginStatus(t, "operator", testPassword) != http.StatusUnauthorized {
		t.Fatal("a deleted user's token or password still works")
	}
	if _, err := f.st.User(context.Background(), opID); err == nil {
		t.Fatal("deleted user still stored")
	}
	for _, a := range []string{"user-disable", "user-enable", "user-delete"} {
		if !auditHas(t, f.st, "admin", a, "user operator role operator") {
			t.Fatalf("%s not in the audit log", a)
		}
	}
}

// TestNewFormsNeedCSRF: every form added with scans, schedules and account
// security refuses a missing or forged CSRF token and changes nothing.
func TestNewFormsNeedCSRF(t *testing.T) {
	t.Parallel()
	f := newFixtureAt(t, t.TempDir(), Options{LoginBurst: 50}, queueConfig(t, 0, "127.88.0.0/16"))
	admin := f.login(t, "admin")
	sched, err := f.st.CreateSchedule(context.Background(), store.Schedule{Name: "keep", Targets: "127.88.0.1", Every: time.Hour, CreatedBy: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	tok, tokID := f.tokenWithID(t, "viewer", store.ScopeRead)
	viewerID := f.userID(t, "viewer")
	forms := []struct {
		path string
		form url.Values
	}{
		{"/scans", url.Values{"targets": {"127.88.0.1"}}},
		{"/schedules", url.Values{"name": {"n"}, "targets": {"127.88.0.1"}, "every": {"1h"}}},
		{fmt.Sprintf("/schedules/%d/delete", sched.ID), url.Values{}},
		{"/account/password", url.Values{"current": {testPassword}, "new": {"another long passphrase"}, "confirm": {"another long passphrase"}}},
		{fmt.Sprintf("/tokens/%d/revoke", tokID), url.Values{}},
		{fmt.Sprintf("/users/%d/disable", viewerID), url.Values{}},
		{fmt.Sprintf("/users/%d/delete", viewerID), url.Values{}},
	}
	for _, fm := range forms {
		for _, csrf := range []string{"", "forged-" + admin.csrf[:10]} {
			fm.form.Set("csrf", csrf)
			if code, _ := admin.postForm(t, fm.path, fm.form); code != http.StatusForbidden {
				t.Fatalf("POST %s with CSRF %q: %d, want 403", fm.path, csrf, code)
			}
		}
	}
	if resp := admin.uploadFirmware(t, "", "fw.bin", []byte("image")); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("firmware form without CSRF: %d", resp.StatusCode)
	}
	// Nothing changed.
	scs, _ := f.st.Schedules(context.Background())
	if scanCount(t, f.st) != 0 || len(scs) != 1 {
		t.Fatalf("refused forms changed scans or schedules: %d scans, %d schedules", scanCount(t, f.st), len(scs))
	}
	if _, err := f.st.Authenticate(context.Background(), "admin", testPassword); err != nil {
		t.Fatal("refused form changed the password")
	}
	if _, err := f.st.LookupToken(context.Background(), tok); err != nil {
		t.Fatal("refused form revoked a token")
	}
	if u, err := f.st.User(context.Background(), viewerID); err != nil || u.Disabled {
		t.Fatalf("refused form changed the viewer: %+v, %v", u, err)
	}
	if !admin.signedIn(t) {
		t.Fatal("admin session ended")
	}
}
