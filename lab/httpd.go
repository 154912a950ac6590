package lab

import (
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// defaultHTTPServer is the Server header per kind when the config sets no
// banner.
var defaultHTTPServer = map[string]string{
	"camera": "uc-httpd 1.0.0", "hub": "lighttpd/1.4.55", "plug": "GoAhead-Webs",
	"router": "mini_httpd/1.19 19dec2003", "tv": "Jetty(9.4.z-SNAPSHOT)", "nvr": "Boa/0.94.14rc21",
	"hardened": "nginx",
}

// serveHTTP serves h on ln (TLS-wrapped when tlsCfg is set) with bounded
// headers and timeouts; the returned func stops it and its connections.
func serveHTTP(ln net.Listener, h http.Handler, tlsCfg *tls.Config, log *slog.Logger) func() {
	ln = newLimitListener(ln, maxConnsPerService)
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Debug("http serve", "err", err)
		}
	}()
	return func() {
		_ = srv.Close()
		<-done
	}
}

// webAdmin is a device's web interface with its authentication.
type webAdmin struct {
	dev     *device
	rs      RunningService
	auth    httpAuth
	realm   string
	server  string
	digest  *digestAuth
	mu      sync.Mutex
	session map[string]time.Time // form-login session cookies
}

const (
	maxSessions   = 64
	sessionCookie = "SESSIONID"
)

// httpHandler builds the web interface for an http/https service.
func httpHandler(dev *device, rs RunningService) (http.Handler, error) {
	a, err := parseAuth(rs.Auth, rs.Protocol)
	if err != nil {
		return nil, err
	}
	w := &webAdmin{dev: dev, rs: rs, auth: a, realm: rs.Realm, server: rs.Banner, session: map[string]time.Time{}}
	if w.realm == "" {
		w.realm = dev.vendor + " " + dev.model
	}
	if w.server == "" {
		w.server = defaultHTTPServer[dev.kind]
	}
	if a.digest {
		w.digest = newDigestAuth(w.realm, rs.Username, rs.Password)
	}
	return w, nil
}

func (w *webAdmin) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if w.server != "" {
		rw.Header().Set("Server", w.server)
	}
	if r.URL.Path == "/favicon.ico" {
		http.NotFound(rw, r)
		return
	}
	if w.rs.SecurityTxt && r.URL.Path == "/.well-known/security.txt" {
		w.securityTxt(rw)
		return
	}
	if w.auth.form {
		switch r.URL.Path {
		case "/login.html", "/login.htm":
			w.loginPage(rw, "")
			return
		case "/login.cgi":
			w.formLogin(rw, r)
			return
		}
	}
	if !w.rs.NoAuth && !w.authorized(r) {
		w.unauthorized(rw, r)
		return
	}
	switch {
	case r.URL.Path == "/" || r.URL.Path == "/index.html" || r.URL.Path == "/index.htm" ||
		strings.HasPrefix(r.URL.Path, "/admin") || strings.HasPrefix(r.URL.Path, "/cgi-bin/") ||
		strings.HasSuffix(r.URL.Path, "status.html"):
		w.adminPage(rw, r)
	case r.URL.Path == "/logout.cgi":
		w.dropSession(r)
		http.Redirect(rw, r, "/login.html", http.StatusFound)
	default:
		http.NotFound(rw, r)
	}
}

// authorized reports whether r carries valid credentials for the site.
func (w *webAdmin) authorized(r *http.Request) bool {
	if w.auth.form && w.validSession(r) {
		return true
	}
	switch {
	case w.auth.digest:
		return w.digest.verify(r.Header.Get("Authorization"), r.Method)
	case w.auth.basic:
		u, p, ok := r.BasicAuth()
		return ok && subtle.ConstantTimeCompare([]byte(u), []byte(w.rs.Username)) == 1 &&
			subtle.ConstantTimeCompare([]byte(p), []byte(w.rs.Password)) == 1
	}
	return false
}

func (w *webAdmin) unauthorized(rw http.ResponseWriter, r *http.Request) {
	switch {
	case w.auth.digest:
		rw.Header().Set("WWW-Authenticate", w.digest.challenge(true))
	case w.auth.basic:
		rw.Header().Set("WWW-Authenticate", fmt.Sprintf(`Basic realm="%s"`, w.realm))
	default:
		// Form login only: send browsers (and scanners) to the login page.
		http.Redirect(rw, r, "/login.html", http.StatusFound)
		return
	}
	rw.Header().Set("Content-Type", "text/html")
	rw.WriteHeader(http.StatusUnauthorized)
	fmt.Fprint(rw, "<HTML><HEAD><TITLE>401 Unauthorized</TITLE></HEAD>\n<BODY><H1>401 Unauthorized</H1>\nAuthorization required.\n</BODY></HTML>\n")
}

func (w *webAdmin) title() string {
	return html.EscapeString(w.dev.vendor + " " + w.dev.model)
}

func (w *webAdmin) loginPage(rw http.ResponseWriter, msg string) {
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	var errLine string
	if msg != "" {
		errLine = `<p class="error">` + html.EscapeString(msg) + "</p>\n"
	}
	fmt.Fprintf(rw, `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>%s - Login</title></head>
<body><h2>%s</h2>
%s<form method="post" action="/login.cgi" name="login">
<label>Username <input type="text" name="username"></label>
<label>Password <input type="password" name="password"></label>
<input type="submit" value="Login">
</form></body></html>
`, w.title(), w.title(), errLine)
}

// formLogin checks a POSTed login form and starts a session.
func (w *webAdmin) formLogin(rw http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.loginPage(rw, "")
		return
	}
	r.Body = http.MaxBytesReader(rw, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		http.Error(rw, "Bad Request", http.StatusBadRequest)
		return
	}
	u, p := r.PostForm.Get("username"), r.PostForm.Get("password")
	ok := w.rs.NoAuth || (w.rs.Username != "" &&
		subtle.ConstantTimeCompare([]byte(u), []byte(w.rs.Username)) == 1 &&
		subtle.ConstantTimeCompare([]byte(p), []byte(w.rs.Password)) == 1)
	if !ok {
		w.loginPage(rw, "Invalid username or password")
		return
	}
	id := randomHex(16)
	w.mu.Lock()
	if len(w.session) >= maxSessions {
		// Evict the oldest session.
		var oldest string
		var t time.Time
		for k, v := range w.session {
			if oldest == "" || v.Before(t) {
				oldest, t = k, v
			}
		}
		delete(w.session, oldest)
	}
	w.session[id] = time.Now()
	w.mu.Unlock()
	http.SetCookie(rw, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true})
	http.Redirect(rw, r, "/index.html", http.StatusFound)
}

func (w *webAdmin) validSession(r *http.Request) bool {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.session[c.Value]
	return ok
}

func (w *webAdmin) dropSession(r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		w.mu.Lock()
		delete(w.session, c.Value)
		w.mu.Unlock()
	}
}

// adminMenus are the admin page sections per kind.
var adminMenus = map[string][]string{
	"camera":   {"Live View", "Playback", "Image Settings", "Network", "Users", "System Maintenance"},
	"hub":      {"Devices", "Automations", "Network", "Users", "Firmware Upgrade"},
	"plug":     {"Switch", "Schedule", "Energy", "Wi-Fi Settings", "Firmware Upgrade"},
	"router":   {"Status", "Quick Setup", "Wireless", "DHCP", "Forwarding", "Security", "System Tools", "Logout"},
	"tv":       {"Apps", "Network", "Developer Options"},
	"nvr":      {"Live View", "Playback", "Channel Management", "Record Schedule", "User Management", "Device Maintenance"},
	"hardened": {"Status", "Network", "Users", "Updates"},
}

func (w *webAdmin) adminPage(rw http.ResponseWriter, _ *http.Request) {
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	var items strings.Builder
	for _, m := range adminMenus[w.dev.kind] {
		fmt.Fprintf(&items, "<li><a href=\"/admin/%s.html\">%s</a></li>\n",
			strings.ToLower(strings.ReplaceAll(m, " ", "_")), html.EscapeString(m))
	}
	fmt.Fprintf(rw, `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>%s - Web Admin</title></head>
<body><h1>%s</h1>
<p>Device name: %s<br>Serial number: %s<br>MAC address: %s<br>Firmware version: %s</p>
<ul class="menu">
%s</ul>
<a href="/logout.cgi">Logout</a>
</body></html>
`, w.title(), w.title(), html.EscapeString(w.dev.hostname), html.EscapeString(w.dev.serial),
		w.dev.mac, html.EscapeString(w.dev.firmware), items.String())
}

// securityTxt serves an RFC 9116 policy that expires in half a year.
func (w *webAdmin) securityTxt(rw http.ResponseWriter) {
	domain := strings.ToLower(strings.ReplaceAll(w.dev.vendor, " ", "")) + ".example"
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(rw, "Contact: mailto:security@%s\nContact: https://%s/security\nExpires: %s\nPreferred-Languages: en\nPolicy: https://%s/disclosure-policy\n",
		domain, domain, time.Now().UTC().Add(180*24*time.Hour).Format(time.RFC3339), domain)
}
