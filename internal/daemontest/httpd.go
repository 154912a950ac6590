package daemontest

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"time"
)

// HTTPAuth is the login an HTTP daemon asks for.
type HTTPAuth struct {
	// Path is the protected prefix (default "/").
	Path string
	// User and Password are the valid pair (User defaults to "admin"; an
	// empty Password makes a strong random one).
	User, Password string
	// None serves everything without a login.
	None bool
}

func (a HTTPAuth) fill() HTTPAuth {
	a.Path = orDefault(a.Path, "/")
	a.User, a.Password = orDefault(a.User, "admin"), orDefault(a.Password, StrongPassword())
	return a
}

// service fills the credential of s from a unless the server has no login.
func (a HTTPAuth) service(s Service) Service {
	if !a.None {
		s.Username, s.Password = a.User, a.Password
	}
	return s
}

// BusyboxHttpdOptions configures BusyboxHttpd.
type BusyboxHttpdOptions struct {
	Listen
	// Auth is the Basic authentication httpd.conf asks for.
	Auth HTTPAuth
	// Files are served from the document root (name → content).
	Files map[string]string
}

// BusyboxHttpd runs the real BusyBox httpd with Basic authentication.
func BusyboxHttpd(t TB, o BusyboxHttpdOptions) Service {
	t.Helper()
	Require(t, "busybox=busybox-static")
	host, port := o.Listen.at(t, "tcp", 80)
	dir := t.TempDir()
	www := dir + "/www"
	WriteFile(t, www, ".keep", "", 0o644)
	for name, content := range o.Files {
		WriteFile(t, www, name, content, 0o644)
	}
	a := o.Auth.fill()
	conf := ""
	if !a.None {
		conf = a.Path + ":" + a.User + ":" + a.Password + "\n"
	}
	cfg := WriteFile(t, dir, "httpd.conf", conf, 0o644)
	Start(t, "busybox", "httpd", "-f", "-p", net.JoinHostPort(host, strconv.Itoa(port)), "-h", www, "-c", cfg)
	WaitTCP(t, host, port)
	return a.service(Service{Host: host, Port: port, Transport: "tcp", Timeout: 2 * time.Second, Root: www})
}

// LighttpdOptions configures Lighttpd.
type LighttpdOptions struct {
	Listen
	// Auth is the login mod_auth asks for.
	Auth HTTPAuth
	// Digest selects HTTP Digest instead of Basic authentication.
	Digest bool
	// Realm is the authentication realm (default "iotcop test").
	Realm string
	// TLS serves HTTPS with a self-signed certificate.
	TLS bool
	// Files are served from the document root (name → content).
	Files map[string]string
	// Extra holds more lighttpd.conf lines.
	Extra string
}

// Lighttpd runs the real lighttpd with mod_auth (htdigest user file).
func Lighttpd(t TB, o LighttpdOptions) Service {
	t.Helper()
	Require(t, "lighttpd")
	if o.TLS {
		Require(t, "/usr/lib/lighttpd/mod_openssl.so=lighttpd-mod-openssl")
	}
	conventional := 80
	if o.TLS {
		conventional = 443
	}
	host, port := o.Listen.at(t, "tcp", conventional)
	dir := t.TempDir()
	www := dir + "/www"
	WriteFile(t, www, ".keep", "", 0o644)
	for name, content := range o.Files {
		WriteFile(t, www, name, content, 0o644)
	}
	modules := `"mod_auth", "mod_authn_file"`
	extra := ""
	if o.TLS {
		cert, key := SelfSigned(t, dir, host)
		modules += `, "mod_openssl"`
		extra += fmt.Sprintf("ssl.engine = \"enable\"\nssl.pemfile = %q\nssl.privkey = %q\n", cert, key)
	}
	a := o.Auth.fill()
	if !a.None {
		realm := orDefault(o.Realm, "iotcop test")
		sum := md5.Sum([]byte(a.User + ":" + realm + ":" + a.Password))
		users := WriteFile(t, dir, "htdigest", a.User+":"+realm+":"+hex.EncodeToString(sum[:])+"\n", 0o644)
		method := "basic"
		if o.Digest {
			method = "digest"
		}
		extra += fmt.Sprintf(`auth.backend = "htdigest"
auth.backend.htdigest.userfile = %q
auth.require = ( %q => ( "method" => %q, "realm" => %q, "require" => "valid-user" ) )
`, users, a.Path, method, realm)
	}
	cfg := WriteFile(t, dir, "lighttpd.conf", fmt.Sprintf(`server.document-root = %q
server.bind = %q
server.port = %d
server.modules = (%s)
server.errorlog = %q
mimetype.assign = (".html" => "text/html")
index-file.names = ("index.html")
%s
%s
`, www, host, port, modules, dir+"/error.log", extra, o.Extra), 0o644)
	Start(t, "lighttpd", "-D", "-f", cfg)
	WaitTCP(t, host, port)
	return a.service(Service{Host: host, Port: port, Transport: "tcp", TLS: o.TLS, Timeout: 2 * time.Second, Root: www})
}
