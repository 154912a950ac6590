package httpproto

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/proto"
)

// adminPage is a device configuration page: what ProbeOpenAccess must find
// when it is served without a login.
const adminPage = `<!DOCTYPE html><html><head><title>Router Settings</title></head><body>
<h1>Wireless Settings</h1>
<form action="/cgi-bin/apply.cgi" method="post">
SSID <input type="text" name="ssid" value="HomeNet">
Channel <select name="channel"><option>1</option><option>6</option></select>
WPA key <input type="password" name="wpakey">
DHCP <input type="checkbox" name="dhcp" checked>
<input type="hidden" name="token" value="x">
<input type="submit" value="Apply">
</form>
<a href="/reboot.html">Reboot</a> <a href="/firmware.html">Firmware upgrade</a>
</body></html>`

// itWorks is a plain static page: never an admin page.
const itWorks = `<html><head><title>It works!</title></head><body><h1>It works!</h1>
<p>This is the default web page for this server.</p></body></html>`

func freePort(t *testing.T, host string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startBusybox runs the real BusyBox httpd with conf as its httpd.conf.
func startBusybox(t *testing.T, conf string, files map[string]string) proto.Endpoint {
	t.Helper()
	daemontest.Require(t, "busybox=busybox-static")
	host := daemontest.Addr()
	port := freePort(t, host)
	dir := t.TempDir()
	www := dir + "/www"
	daemontest.WriteFile(t, www, ".keep", "", 0o644)
	for name, content := range files {
		daemontest.WriteFile(t, www, name, content, 0o644)
	}
	cfg := daemontest.WriteFile(t, dir, "httpd.conf", conf, 0o644)
	daemontest.Start(t, "busybox", "httpd", "-f", "-p", net.JoinHostPort(host, fmt.Sprint(port)), "-h", www, "-c", cfg)
	daemontest.WaitTCP(t, host, port)
	return proto.Endpoint{Host: host, Port: port, Transport: "tcp", Timeout: 2 * time.Second}
}

// startLighttpd runs the real lighttpd with the given extra configuration;
// with tlsOn it listens with a self-signed certificate made here.
func startLighttpd(t *testing.T, extra string, tlsOn bool, files map[string]string) proto.Endpoint {
	t.Helper()
	daemontest.Require(t, "lighttpd")
	if tlsOn {
		daemontest.Require(t, "/usr/lib/lighttpd/mod_openssl.so=lighttpd-mod-openssl")
	}
	host := daemontest.Addr()
	port := freePort(t, host)
	dir := t.TempDir()
	www := dir + "/www"
	daemontest.WriteFile(t, www, "index.html", itWorks, 0o644)
	for name, content := range files {
		daemontest.WriteFile(t, www, name, content, 0o644)
	}
	modules := `"mod_auth", "mod_authn_file"`
	tlsConf := ""
	if tlsOn {
		certPEM, keyPEM := selfSigned(t, host)
		cert := daemontest.WriteFile(t, dir, "cert.pem", certPEM, 0o600)
		key := daemontest.WriteFile(t, dir, "key.pem", keyPEM, 0o600)
		modules += `, "mod_openssl"`
		tlsConf = fmt.Sprintf("ssl.engine = \"enable\"\nssl.pemfile = %q\nssl.privkey = %q\n", cert, key)
	}
	conf := fmt.Sprintf(`server.document-root = %q
server.bind = %q
server.port = %d
server.modules = (%s)
server.errorlog = %q
mimetype.assign = (".html" => "text/html")
index-file.names = ("index.html")
%s
%s
`, www, host, port, modules, dir+"/error.log", tlsConf, extra)
	cfg := daemontest.WriteFile(t, dir, "lighttpd.conf", conf, 0o644)
	daemontest.Start(t, "lighttpd", "-D", "-f", cfg)
	daemontest.WaitTCP(t, host, port)
	return proto.Endpoint{Host: host, Port: port, Transport: "tcp", TLS: tlsOn, Timeout: 2 * time.Second}
}

// htdigestFile writes a lighttpd htdigest user file line.
func htdigestLine(user, realm, pass string) string {
	sum := md5.Sum([]byte(user + ":" + realm + ":" + pass))
	return user + ":" + realm + ":" + hex.EncodeToString(sum[:]) + "\n"
}

// selfSigned makes a throwaway certificate for host.
func selfSigned(t *testing.T, host string) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "iotcop test camera"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP(host)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}

func identify(t *testing.T, ep proto.Endpoint) (*proto.Identity, error) {
	t.Helper()
	ctx := daemontest.Context(t)
	conn, err := ep.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return New().Identify(ctx, conn, nil, ep)
}

// tryAll opens a session and tries each credential, returning outcomes.
func tryAll(t *testing.T, ep proto.Endpoint, id *proto.Identity, creds ...proto.Credential) []proto.LoginResult {
	t.Helper()
	ctx := daemontest.Context(t)
	sess, err := New().Open(ctx, ep, id)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer sess.Close()
	var out []proto.LoginResult
	for _, c := range creds {
		res, err := sess.Try(ctx, c)
		if err != nil {
			t.Fatalf("Try(%v): %v", c, err)
		}
		out = append(out, res)
	}
	return out
}

func wantInfo(t *testing.T, id *proto.Identity, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if id.Info[k] != v {
			t.Errorf("Info[%q] = %q, want %q (Info %v)", k, id.Info[k], v, id.Info)
		}
	}
}

func TestBusyboxBasicAuthOnRoot(t *testing.T) {
	t.Parallel()
	ep := startBusybox(t, "/:admin:s3cret\n", map[string]string{"index.html": adminPage})
	id, err := identify(t, ep)
	if err != nil {
		t.Fatalf("Identify: %v", err)
	}
	if id.Product != "BusyBox httpd" || id.Protocol != "http" {
		t.Errorf("identity = %+v, want BusyBox httpd", id)
	}
	wantInfo(t, id, map[string]string{InfoAuthPath: "/", InfoAuthScheme: "basic", InfoRealm: "Web Server Authentication", InfoStatus: "401"})

	res := tryAll(t, ep, id,
		proto.Credential{Username: "admin", Password: "admin"},
		proto.Credential{Username: "root", Password: "s3cret"},
		proto.Credential{Username: "admin", Password: "s3cret"},
		proto.Credential{Username: "admin", Password: "wrong"})
	want := []proto.Outcome{proto.Rejected, proto.Rejected, proto.Accepted, proto.Rejected}
	for i := range want {
		if res[i].Outcome != want[i] {
			t.Errorf("try %d = %+v, want %v", i, res[i], want[i])
		}
	}
	if res[2].Proof != "2xx on / (401 without credentials)" {
		t.Errorf("proof = %q", res[2].Proof)
	}
	// Everything is behind the login: no open admin page.
	if oa, err := New().ProbeOpenAccess(daemontest.Context(t), ep, id); oa != nil || err != nil {
		t.Errorf("ProbeOpenAccess = %+v, %v; want nil, nil", oa, err)
	}
}

func TestBusyboxProtectedAdminDir(t *testing.T) {
	t.Parallel()
	ep := startBusybox(t, "/admin:user:pass\n", map[string]string{"index.html": itWorks, "admin/index.html": adminPage})
	id, err := identify(t, ep)
	if err != nil {
		t.Fatalf("Identify: %v", err)
	}
	if id.Product != "BusyBox httpd" {
		t.Errorf("Product = %q, want BusyBox httpd (Info %v)", id.Product, id.Info)
	}
	// Identification stays cheap; the login behind a probe path is found
	// when credentials are checked, and recorded on the identity.
	if id.Info[InfoAuthPath] != "" {
		t.Errorf("Identify searched the probe paths: %v", id.Info)
	}
	openSession(t, ep, id)
	wantInfo(t, id, map[string]string{InfoAuthPath: "/admin/", InfoAuthScheme: "basic", InfoTitle: "It works!", InfoStatus: "200"})
	res := tryAll(t, ep, id, proto.Credential{Username: "user", Password: "pass"})
	if res[0].Outcome != proto.Accepted || res[0].Proof != "2xx on /admin/ (401 without credentials)" {
		t.Errorf("Try(user:pass) = %+v", res[0])
	}
	if oa, err := New().ProbeOpenAccess(daemontest.Context(t), ep, id); oa != nil || err != nil {
		t.Errorf("ProbeOpenAccess = %+v, %v; want nil (It works is no admin page)", oa, err)
	}
}

func TestBusyboxOpenAdminPage(t *testing.T) {
	t.Parallel()
	ep := startBusybox(t, "", map[string]string{"index.html": adminPage})
	id, err := identify(t, ep)
	if err != nil {
		t.Fatalf("Identify: %v", err)
	}
	oa, err := New().ProbeOpenAccess(daemontest.Context(t), ep, id)
	if err != nil || oa == nil {
		t.Fatalf("ProbeOpenAccess = %+v, %v; want the open admin page", oa, err)
	}
	if oa.Details["path"] != "/" || oa.Details["title"] != "Router Settings" {
		t.Errorf("open access = %+v", oa)
	}
	// No login anywhere: Open says so.
	if _, err := New().Open(daemontest.Context(t), ep, id); err == nil || !strings.Contains(err.Error(), ErrNoLogin.Error()) {
		t.Errorf("Open err = %v, want ErrNoLogin", err)
	}
}

func TestBusyboxHardened(t *testing.T) {
	t.Parallel()
	ep := startBusybox(t, "/:admin:Xk9-long-unique-pass\n", map[string]string{"index.html": adminPage})
	res := tryAll(t, ep, nil, // no identity: Open discovers the login itself
		proto.Credential{Username: "admin", Password: "admin"},
		proto.Credential{Username: "root", Password: "root"},
		proto.Credential{Username: "admin", Password: ""})
	for i, r := range res {
		if r.Outcome != proto.Rejected {
			t.Errorf("try %d = %+v, want rejected", i, r)
		}
	}
}

func TestLighttpdBasicAndDigest(t *testing.T) {
	t.Parallel()
	for _, method := range []string{"basic", "digest"} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			users := daemontest.WriteFile(t, dir, "htdigest", htdigestLine("admin", "NETGEAR R7000", "password"), 0o644)
			extra := fmt.Sprintf(`auth.backend = "htdigest"
auth.backend.htdigest.userfile = %q
auth.require = ( "/admin/" => ( "method" => %q, "realm" => "NETGEAR R7000", "require" => "valid-user" ) )
`, users, method)
			ep := startLighttpd(t, extra, false, map[string]string{"admin/index.html": adminPage})
			id, err := identify(t, ep)
			if err != nil {
				t.Fatalf("Identify: %v", err)
			}
			openSession(t, ep, id)
			if id.Product != "lighttpd" || !strings.HasPrefix(id.Version, "1.") || id.Vendor != "netgear" {
				t.Errorf("identity = %+v, want lighttpd 1.x by netgear", id)
			}
			wantInfo(t, id, map[string]string{InfoAuthPath: "/admin/", InfoAuthScheme: method, InfoRealm: "NETGEAR R7000", InfoServer: "lighttpd/" + id.Version})
			res := tryAll(t, ep, id,
				proto.Credential{Username: "admin", Password: "admin"},
				proto.Credential{Username: "admin", Password: "password"},
				proto.Credential{Username: "admin", Password: "1234"})
			want := []proto.Outcome{proto.Rejected, proto.Accepted, proto.Rejected}
			for i := range want {
				if res[i].Outcome != want[i] {
					t.Errorf("try %d = %+v, want %v", i, res[i], want[i])
				}
			}
			if oa, err := New().ProbeOpenAccess(daemontest.Context(t), ep, id); oa != nil || err != nil {
				t.Errorf("ProbeOpenAccess = %+v, %v; want nil", oa, err)
			}
		})
	}
}

func TestLighttpdTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	users := daemontest.WriteFile(t, dir, "htdigest", htdigestLine("admin", "Camera", "12345"), 0o644)
	extra := fmt.Sprintf(`auth.backend = "htdigest"
auth.backend.htdigest.userfile = %q
auth.require = ( "/" => ( "method" => "digest", "realm" => "Camera", "require" => "valid-user" ) )
`, users)
	ep := startLighttpd(t, extra, true, nil)
	id, err := identify(t, ep)
	if err != nil {
		t.Fatalf("Identify: %v", err)
	}
	if id.Product != "lighttpd" || !id.TLS {
		t.Errorf("identity = %+v, want lighttpd over TLS", id)
	}
	wantInfo(t, id, map[string]string{InfoAuthPath: "/", InfoAuthScheme: "digest", InfoRealm: "Camera"})
	res := tryAll(t, ep, id, proto.Credential{Username: "admin", Password: "admin"}, proto.Credential{Username: "admin", Password: "12345"})
	if res[0].Outcome != proto.Rejected || res[1].Outcome != proto.Accepted {
		t.Errorf("outcomes = %+v, want rejected then accepted", res)
	}
}

// openSession runs Open (which completes the login search) and closes it.
func openSession(t *testing.T, ep proto.Endpoint, id *proto.Identity) {
	t.Helper()
	sess, err := New().Open(daemontest.Context(t), ep, id)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	sess.Close()
}
