package httpproto

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/proto"
)

// Compile-time checks that Protocol implements the proto interfaces.
var (
	_ proto.Identifier       = (*Protocol)(nil)
	_ proto.Authenticator    = (*Protocol)(nil)
	_ proto.OpenAccessProber = (*Protocol)(nil)
)

// serveHTTP runs handler on a fresh loopback address.
func serveHTTP(t *testing.T, handler http.Handler) proto.Endpoint {
	t.Helper()
	host := daemontest.Addr()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return proto.Endpoint{Host: host, Port: ln.Addr().(*net.TCPAddr).Port, Transport: "tcp", Timeout: time.Second}
}

// serveRaw runs a raw TCP handler (for servers net/http cannot imitate).
func serveRaw(t *testing.T, handler func(net.Conn)) proto.Endpoint {
	t.Helper()
	return daemontest.ServeTCP(t, "", 0, handler).Endpoint(500 * time.Millisecond)
}

const loginPage = `<html><head><title>Web Login</title></head><body>
<form name="f" action="/cgi-bin/login.cgi" method="POST">
<input type="hidden" name="csrf" value="%s">
User <input type="text" name="username">
Password <input type="password" name="pwd">
<input type="submit" name="do" value="Login">
</form></body></html>`

// formDevice is a device with a login form, a CSRF token tied to a cookie,
// a session cookie on success and a redirect back to the form on failure.
type formDevice struct {
	user, pass string
	lockAfter  int  // failures before "Too many failed attempts" (0: never)
	acceptAny  bool // every POST logs in (broken device)

	mu       sync.Mutex
	failures int
	sessions map[string]bool
}

func (d *formDevice) handler() http.Handler {
	d.sessions = map[string]bool{}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		http.Redirect(w, r, "/login.html", http.StatusFound)
	})
	mux.HandleFunc("/login.html", func(w http.ResponseWriter, r *http.Request) {
		token := randomToken()
		http.SetCookie(w, &http.Cookie{Name: "csrf", Value: token, Path: "/"})
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, loginPage, token)
	})
	mux.HandleFunc("/cgi-bin/login.cgi", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "method", http.StatusMethodNotAllowed)
			return
		}
		ck, err := r.Cookie("csrf")
		if err != nil || r.FormValue("csrf") != ck.Value || r.FormValue("do") != "Login" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.lockAfter > 0 && d.failures >= d.lockAfter {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html><body>Too many failed attempts. Try again later.</body></html>")
			return
		}
		if d.acceptAny || (r.FormValue("username") == d.user && r.FormValue("pwd") == d.pass) {
			sid := randomToken()
			d.sessions[sid] = true
			http.SetCookie(w, &http.Cookie{Name: "SID", Value: sid, Path: "/"})
			http.Redirect(w, r, "/status.html", http.StatusFound)
			return
		}
		d.failures++
		http.Redirect(w, r, "/login.html?error=1", http.StatusFound)
	})
	mux.HandleFunc("/status.html", func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie("SID")
		d.mu.Lock()
		ok := err == nil && d.sessions[ck.Value]
		d.mu.Unlock()
		if !ok {
			http.Redirect(w, r, "/login.html", http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, adminPage)
	})
	return mux
}

func TestFormLogin(t *testing.T) {
	t.Parallel()
	dev := &formDevice{user: "admin", pass: "1234"}
	ep := serveHTTP(t, dev.handler())
	id, err := identify(t, ep)
	if err != nil {
		t.Fatalf("Identify: %v", err)
	}
	wantInfo(t, id, map[string]string{
		InfoAuthPath: "/login.html", InfoAuthScheme: "form", InfoFormAction: "/cgi-bin/login.cgi",
		InfoFormMethod: "post", InfoFormUserField: "username", InfoFormPassField: "pwd",
		InfoRedirect: "/login.html", InfoTitle: "Web Login", InfoStatus: "302",
	})
	res := tryAll(t, ep, id,
		proto.Credential{Username: "admin", Password: "admin"},
		proto.Credential{Username: "root", Password: "1234"},
		proto.Credential{Username: "admin", Password: "1234"},
		proto.Credential{Username: "admin", Password: "12345"})
	want := []proto.Outcome{proto.Rejected, proto.Rejected, proto.Accepted, proto.Rejected}
	for i := range want {
		if res[i].Outcome != want[i] {
			t.Errorf("try %d = %+v, want %v", i, res[i], want[i])
		}
	}
	if !strings.Contains(res[2].Proof, "redirect to /status.html") {
		t.Errorf("proof = %q", res[2].Proof)
	}
	// The status page needs the session: no open access.
	if oa, err := New().ProbeOpenAccess(daemontest.Context(t), ep, id); oa != nil || err != nil {
		t.Errorf("ProbeOpenAccess = %+v, %v; want nil", oa, err)
	}
}

func TestFormLoginLockout(t *testing.T) {
	t.Parallel()
	dev := &formDevice{user: "admin", pass: "1234", lockAfter: 2}
	ep := serveHTTP(t, dev.handler())
	res := tryAll(t, ep, nil,
		proto.Credential{Username: "admin", Password: "admin"},
		proto.Credential{Username: "admin", Password: "1234"})
	if res[0].Outcome != proto.Rejected || res[1].Outcome != proto.LockedOut {
		t.Errorf("outcomes = %+v, want rejected then locked out", res)
	}
}

func TestFormLoginNeverClaimsWithoutProof(t *testing.T) {
	t.Parallel()
	samePage := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, loginPage, "t")
	})
	// Every answer differs (a random token), but the login form stays.
	randomPage := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, loginPage, randomToken())
		fmt.Fprintf(w, "<!-- %s -->", strings.Repeat("x", len(randomToken())%7))
	})
	// A welcome text without a form or a cookie, only for the good
	// password: different, yet no sign of a session.
	stateless := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		if r.Method == http.MethodPost && r.FormValue("pwd") == "1234" {
			fmt.Fprint(w, "<html><body>Welcome</body></html>")
			return
		}
		fmt.Fprintf(w, loginPage, "t")
	})
	tests := []struct {
		name    string
		handler http.Handler
	}{
		{"same page for everything", samePage},
		{"random page with the form", randomPage},
		{"welcome without session", stateless},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ep := serveHTTP(t, tt.handler)
			for _, r := range tryAll(t, ep, nil, proto.Credential{Username: "admin", Password: "1234"}, proto.Credential{Username: "admin", Password: "admin"}) {
				if r.Outcome == proto.Accepted {
					t.Errorf("accepted without proof: %+v", r)
				}
			}
		})
	}
}

// A form that logs anyone in is reported as it behaves: the caller's
// random-pair calibration turns that into "accepts any credential".
func TestFormLoginAnyCredential(t *testing.T) {
	t.Parallel()
	ep := serveHTTP(t, (&formDevice{acceptAny: true}).handler())
	res := tryAll(t, ep, nil, proto.Credential{Username: "iotcop" + randomToken(), Password: randomToken()})
	if res[0].Outcome != proto.Accepted {
		t.Errorf("random pair = %+v, want accepted as the server behaves", res[0])
	}
}

func TestBasicOutcomes(t *testing.T) {
	t.Parallel()
	challenge := func(w http.ResponseWriter) {
		w.Header().Set("WWW-Authenticate", `Basic realm="cam"`)
		w.WriteHeader(http.StatusUnauthorized)
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    proto.Outcome
	}{
		{"2xx for any credential", func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") == "" {
				challenge(w)
				return
			}
			fmt.Fprint(w, "ok")
		}, proto.Accepted}, // as it behaves; the caller's random pair tells
		{"redirect for any credential", func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") == "" {
				challenge(w)
				return
			}
			http.Redirect(w, r, "http://10.1.2.3/elsewhere", http.StatusFound)
		}, proto.Unknown},
		{"429", func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") == "" {
				challenge(w)
				return
			}
			w.WriteHeader(http.StatusTooManyRequests)
		}, proto.LockedOut},
		{"500", func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") == "" {
				challenge(w)
				return
			}
			w.WriteHeader(http.StatusInternalServerError)
		}, proto.Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ep := serveHTTP(t, tt.handler)
			res := tryAll(t, ep, nil, proto.Credential{Username: "admin", Password: "admin"})
			if res[0].Outcome != tt.want {
				t.Errorf("outcome = %+v, want %v", res[0], tt.want)
			}
		})
	}
}

func TestIdentifyRejectsOthers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		handler func(net.Conn)
	}{
		{"rtsp", func(c net.Conn) {
			_, _ = c.Read(make([]byte, 1024))
			_, _ = c.Write([]byte("RTSP/1.0 400 Bad Request\r\nCSeq: 0\r\n\r\n"))
		}},
		{"garbage", func(c net.Conn) {
			_, _ = c.Read(make([]byte, 1024))
			_, _ = c.Write([]byte("\x00\x01\x02garbage\r\n\r\n"))
		}},
		{"silent", func(c net.Conn) { _, _ = io.Copy(io.Discard, c) }},
		{"endless headers", func(c net.Conn) {
			_, _ = c.Read(make([]byte, 1024))
			_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\n"))
			line := []byte("X-Pad: " + strings.Repeat("p", 200) + "\r\n")
			for {
				if _, err := c.Write(line); err != nil {
					return
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ep := serveRaw(t, tt.handler)
			id, err := identify(t, ep)
			if !errors.Is(err, proto.ErrNotThisProtocol) {
				t.Fatalf("Identify = %+v, %v; want ErrNotThisProtocol", id, err)
			}
		})
	}
}

func TestIdentifyEndlessBody(t *testing.T) {
	t.Parallel()
	ep := serveRaw(t, func(c net.Conn) {
		_, _ = c.Read(make([]byte, 1024))
		_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nServer: Boa/0.94.14rc21\r\nContent-Type: text/html\r\n\r\n<html><title>DVR</title>"))
		junk := []byte(strings.Repeat("<p>x</p>", 512))
		for {
			if _, err := c.Write(junk); err != nil {
				return
			}
		}
	})
	id, err := identify(t, ep)
	if err != nil {
		t.Fatalf("Identify: %v", err)
	}
	if id.Product != "Boa" || id.Version != "0.94.14rc21" || id.Info[InfoTitle] != "DVR" {
		t.Errorf("identity = %+v", id)
	}
}

// menuPage is a device's admin landing page: a menu, device facts and a
// logout link, no form.
const menuPage = `<!DOCTYPE html><html><head><title>Sentrix NVR-808 - Web Admin</title></head>
<body><h1>Sentrix NVR-808</h1><p>Serial number: 123<br>MAC address: 00:11:22:33:44:55<br>Firmware version: 3.4</p>
<ul><li><a href="/admin/users.html">User Management</a></li><li><a href="/admin/maint.html">Device Maintenance</a></li></ul>
<a href="/logout.cgi">Logout</a></body></html>`

// productPage is a maker's public page that talks of firmware and setup
// but is no admin page.
const productPage = `<html><head><title>Camera C2 setup guide</title></head><body><h1>Setup guide</h1>
<p>Download the latest firmware and read the admin manual. Configuration settings are explained below.</p>
<a href="/downloads">Downloads</a></body></html>`

func TestProbeOpenAccessPages(t *testing.T) {
	t.Parallel()
	loginOnly := fmt.Sprintf(loginPage, "t")
	search := `<html><head><title>Product news</title></head><body><h1>News</h1>
<form action="/search"><input type="text" name="q"><input type="text" name="lang"></form>
<p>Read about our settings and firmware.</p></body></html>`
	tests := []struct {
		name  string
		pages map[string]string
		want  string // path reported, "" for none
	}{
		{"admin page at /", map[string]string{"/": adminPage}, "/"},
		{"admin page under /admin/", map[string]string{"/": itWorks, "/admin/": adminPage}, "/admin/"},
		{"it works", map[string]string{"/": itWorks}, ""},
		{"menu page with logout", map[string]string{"/": menuPage}, "/"},
		{"menu page without logout", map[string]string{"/": strings.ReplaceAll(menuPage, `<a href="/logout.cgi">Logout</a>`, "")}, ""},
		{"product page", map[string]string{"/": productPage}, ""},
		{"login page", map[string]string{"/": loginOnly}, ""},
		{"search form, admin words only in text", map[string]string{"/": search}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ep := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, ok := tt.pages[r.URL.Path]
				if !ok {
					http.NotFound(w, r)
					return
				}
				w.Header().Set("Content-Type", "text/html")
				fmt.Fprint(w, body)
			}))
			oa, err := New().ProbeOpenAccess(daemontest.Context(t), ep, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				if oa != nil {
					t.Errorf("ProbeOpenAccess = %+v, want nil", oa)
				}
				return
			}
			if oa == nil || oa.Details["path"] != tt.want || oa.What != "HTTP admin page without authentication" {
				t.Errorf("ProbeOpenAccess = %+v, want path %q", oa, tt.want)
			}
		})
	}
}

func TestParsePage(t *testing.T) {
	pg := parsePage([]byte(adminPage))
	if pg.title != "Router Settings" || len(pg.forms) != 1 || pg.controls != 4 || !pg.hasPassword {
		t.Fatalf("parsePage(adminPage) = %+v", pg)
	}
	if pg.isLoginPage() {
		t.Error("admin page with a WPA key field taken for a login page")
	}
	if ok, signs := pg.isAdminPage(); !ok || len(signs) < 2 {
		t.Errorf("isAdminPage = %v %v", ok, signs)
	}
	lp := parsePage([]byte(fmt.Sprintf(loginPage, "tok")))
	lf, ok := lp.loginForm()
	if !ok || !lp.isLoginPage() || lf.action != "/cgi-bin/login.cgi" || lf.method != "post" || lf.userField() != "username" || lf.passwordFields()[0] != "pwd" {
		t.Errorf("login page parsed as %+v / %+v", lp, lf)
	}
	if ok, _ := lp.isAdminPage(); ok {
		t.Error("login page taken for an admin page")
	}
	for _, body := range []string{itWorks, "", "<html><form><input type=password name=p></form>", "not html at all"} {
		if ok, _ := parsePage([]byte(body)).isAdminPage(); ok {
			t.Errorf("isAdminPage(%q) = true", body)
		}
	}
	// Password-only login (no user field), script text ignored.
	p2 := parsePage([]byte(`<title> Admin
	Login </title><script>var settings="firmware wireless";</script><form action=x><input type=password name=pw><input type=submit></form>`))
	if p2.title != "Admin Login" || strings.Contains(p2.text, "firmware") {
		t.Errorf("title %q text %q", p2.title, p2.text)
	}
	if f, ok := p2.loginForm(); !ok || f.userField() != "" || f.method != "get" {
		t.Errorf("password-only form = %+v", f)
	}
}

func TestParseServerAndVendor(t *testing.T) {
	tests := []struct{ server, product, version string }{
		{"lighttpd/1.4.69", "lighttpd", "1.4.69"},
		{"Apache/2.4.57 (Debian)", "Apache", "2.4.57"},
		{"mini_httpd/1.30 26Oct2018", "mini_httpd", "1.30"},
		{"GoAhead-Webs", "GoAhead-Webs", ""},
		{"nginx", "nginx", ""},
		{"Microsoft-IIS/10.0", "Microsoft-IIS", "10.0"},
		{"RomPager/4.07 UPnP/1.0", "RomPager", "4.07"},
		{"", "", ""},
	}
	for _, tt := range tests {
		p, v := parseServer(tt.server)
		if p != tt.product || v != tt.version {
			t.Errorf("parseServer(%q) = %q %q, want %q %q", tt.server, p, v, tt.product, tt.version)
		}
	}
	vendors := []struct{ server, realm, title, want string }{
		{"Hikvision-Webs", "", "", "hikvision"},
		{"", "TP-LINK Wireless N Router WR841N", "", "tp-link"},
		{"", "DCS-930L", "", "d-link"},
		{"lighttpd", "", "NETGEAR Router R7000", "netgear"},
		{"", "", "NETSurveillance WEB", "xiongmai"},
		{"lighttpd/1.4.69", "Web Server Authentication", "It works!", ""},
	}
	for _, v := range vendors {
		if got := vendorHint(v.server, v.realm, v.title); got != v.want {
			t.Errorf("vendorHint(%q, %q, %q) = %q, want %q", v.server, v.realm, v.title, got, v.want)
		}
	}
}

func TestSamePath(t *testing.T) {
	f := newFetcher(proto.Endpoint{Host: "127.0.0.9", Port: 80})
	tests := []struct{ base, ref, want string }{
		{"/", "/login.htm", "/login.htm"},
		{"/admin/index.html", "login.cgi", "/admin/login.cgi"},
		{"/a/b", "../c?x=1", "/c?x=1"},
		{"/", "http://127.0.0.9/x", "/x"},
		{"/", "http://127.0.0.9:80/x", "/x"},
		{"/", "https://10.0.0.1/x", ""},
		{"/", "http://evil.example/x", ""},
		{"/", "javascript:alert(1)", ""},
		{"/", "", ""},
		{"/", "//other.example/x", ""},
	}
	for _, tt := range tests {
		if got := f.samePath(tt.base, tt.ref); got != tt.want {
			t.Errorf("samePath(%q, %q) = %q, want %q", tt.base, tt.ref, got, tt.want)
		}
	}
}

func TestPickChallenge(t *testing.T) {
	tests := []struct {
		in            []string
		scheme, realm string
	}{
		{[]string{`Basic realm="Web Server Authentication"`}, "basic", "Web Server Authentication"},
		{[]string{`Digest realm="cam", nonce="n", qop="auth"`, `Basic realm="cam2"`}, "basic", "cam2"},
		{[]string{`Digest realm="cam", nonce="n", qop="auth", algorithm=MD5`}, "digest", "cam"},
		{[]string{`Digest realm="cam"`}, "", ""},
		{[]string{`Bearer realm="x"`, `Negotiate`}, "", ""},
	}
	for _, tt := range tests {
		ch := pickChallenge(tt.in)
		got, realm := "", ""
		if ch != nil {
			got, realm = ch.scheme, ch.realm
		}
		if got != tt.scheme || realm != tt.realm {
			t.Errorf("pickChallenge(%q) = %q %q, want %q %q", tt.in, got, realm, tt.scheme, tt.realm)
		}
	}
}

func FuzzParsePage(f *testing.F) {
	f.Add([]byte(adminPage))
	f.Add([]byte(fmt.Sprintf(loginPage, "tok")))
	f.Add([]byte(itWorks))
	f.Add([]byte("<form><form><input type=password><select><textarea></form></form><title>x"))
	f.Add([]byte("<HTML><HEAD><TITLE>404 Not Found</TITLE></HEAD>\n<BODY><H1>404 Not Found</H1>"))
	f.Fuzz(func(t *testing.T, body []byte) {
		pg := parsePage(body)
		if len(pg.forms) > maxForms || len(pg.title) > maxTitleBytes || len(pg.text) > maxTextBytes*2 {
			t.Fatalf("unbounded page: %d forms, title %d, text %d", len(pg.forms), len(pg.title), len(pg.text))
		}
		for _, fm := range pg.forms {
			if len(fm.inputs) > maxInputs {
				t.Fatalf("%d inputs", len(fm.inputs))
			}
			fm.userField()
		}
		pg.isLoginPage()
		pg.isAdminPage()
		if lf, ok := pg.loginForm(); ok && len(lf.passwordFields()) == 0 {
			t.Fatal("login form without password field")
		}
	})
}

func FuzzPickChallenge(f *testing.F) {
	f.Add(`Basic realm="x"`, `Digest realm="y", nonce="n", qop="auth"`)
	f.Add(`basic realm=tok,charset=UTF-8`, `Digest ,,=,"`)
	f.Add(`Basic realm="a\"`, `Digest realm="", nonce="", algorithm=SHA-256, qop="auth-int"`)
	f.Fuzz(func(t *testing.T, a, b string) {
		ch := pickChallenge([]string{a, b})
		if ch != nil && ch.scheme != "basic" && ch.scheme != "digest" {
			t.Fatalf("scheme %q", ch.scheme)
		}
	})
}

func TestDiscoveryBudget(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	requests := 0
	// Every path redirects to a new one: discovery must stop on its own.
	ep := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		n := requests
		mu.Unlock()
		http.Redirect(w, r, fmt.Sprintf("/next%d", n), http.StatusFound)
	}))
	id, err := identify(t, ep)
	if err != nil {
		t.Fatal(err)
	}
	if id.Info[InfoAuthPath] != "" {
		t.Errorf("found a login on a redirect loop: %v", id.Info)
	}
	mu.Lock()
	defer mu.Unlock()
	if requests > 1+maxDiscoveryRequests+1 {
		t.Errorf("%d requests, want at most %d", requests, 2+maxDiscoveryRequests)
	}
}
