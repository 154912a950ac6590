package ftp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/proto"
)

// publicDir makes a world-readable directory (vsftpd drops privileges
// before reading it, so t.TempDir's 0700 parents would hide it).
func publicDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "iotcop-ftp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		daemontest.WriteFile(t, dir, name, content, 0o644)
	}
	return dir
}

// freePort finds a port free on host.
func freePort(t *testing.T, host string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startVsftpd runs the real vsftpd with the given extra configuration
// lines on its own loopback address.
func startVsftpd(t *testing.T, extra string) proto.Endpoint {
	t.Helper()
	daemontest.Require(t, "vsftpd")
	daemontest.RequireRoot(t)
	host := daemontest.Addr()
	port := freePort(t, host)
	empty := publicDir(t, nil)
	conf := fmt.Sprintf(`listen=YES
listen_address=%s
listen_port=%d
background=NO
secure_chroot_dir=%s
pam_service_name=vsftpd
seccomp_sandbox=NO
xferlog_enable=NO
delay_failed_login=0
pasv_enable=YES
%s
`, host, port, empty, extra)
	cfg := daemontest.WriteFile(t, t.TempDir(), "vsftpd.conf", conf, 0o600)
	daemontest.Start(t, "vsftpd", cfg)
	daemontest.WaitTCP(t, host, port)
	return proto.Endpoint{Host: host, Port: port, Transport: "tcp", Timeout: 3 * time.Second}
}

// addUser creates a local account for the test and removes it afterwards.
func addUser(t *testing.T, home, password string) string {
	t.Helper()
	daemontest.RequireRoot(t)
	name := "iotcopftp" + randomHex(3)
	run := func(cmd string, args ...string) error {
		var err error
		var out []byte
		// Other tests may hold the passwd lock for a moment.
		for i := 0; i < 10; i++ {
			c := exec.Command(cmd, args...)
			if cmd == "chpasswd" {
				c.Stdin = strings.NewReader(name + ":" + password + "\n")
			}
			if out, err = c.CombinedOutput(); err == nil {
				return nil
			}
			time.Sleep(200 * time.Millisecond)
		}
		return fmt.Errorf("%s: %v: %s", cmd, err, out)
	}
	if err := run("useradd", "-M", "-d", home, "-s", "/bin/sh", name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := run("userdel", name); err != nil {
			t.Errorf("remove test user: %v", err)
		}
	})
	if err := run("chpasswd"); err != nil {
		t.Fatal(err)
	}
	return name
}

func identifyConn(t *testing.T, ep proto.Endpoint) (*proto.Identity, error) {
	t.Helper()
	ctx := daemontest.Context(t)
	conn, err := ep.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	banner, _ := proto.ReadSome(conn, proto.MaxBanner, 2*time.Second)
	return New().Identify(ctx, conn, banner, ep)
}

func TestVsftpdAnonymous(t *testing.T) {
	t.Parallel()
	root := publicDir(t, map[string]string{"readme.txt": "hello\n", "firmware.bin": "x"})
	ep := startVsftpd(t, "anonymous_enable=YES\nlocal_enable=NO\nanon_root="+root)

	id, err := identifyConn(t, ep)
	if err != nil {
		t.Fatalf("Identify: %v", err)
	}
	if id.Protocol != "ftp" || id.Product != "vsFTPd" || id.Version == "" {
		t.Errorf("identity = %+v, want vsFTPd with a version", id)
	}
	if id.Info["greeting"] != "(vsFTPd "+id.Version+")" {
		t.Errorf("Info[greeting] = %q", id.Info["greeting"])
	}

	ctx := daemontest.Context(t)
	p := New()
	p.ProbeWrite = true
	oa, err := p.ProbeOpenAccess(ctx, ep, id)
	if err != nil || oa == nil {
		t.Fatalf("ProbeOpenAccess = %+v, %v; want anonymous FTP", oa, err)
	}
	if oa.What != "anonymous FTP" || oa.Details["user"] != "anonymous" {
		t.Errorf("open access = %+v", oa)
	}
	names, _ := oa.Details["entries"].([]string)
	if strings.Join(names, ",") != "firmware.bin,readme.txt" && strings.Join(names, ",") != "readme.txt,firmware.bin" {
		t.Errorf("entries = %q, want the two files", names)
	}
	if oa.Details["entry_count"] != 2 {
		t.Errorf("entry_count = %v", oa.Details["entry_count"])
	}
	// Anonymous writes are off: MKD is refused and nothing is left behind.
	if oa.Details["writable"] != false {
		t.Errorf("writable = %v (%v), want false", oa.Details["writable"], oa.Details["write_test"])
	}
	if left, _ := filepath.Glob(filepath.Join(root, "iotcop-*")); len(left) != 0 {
		t.Errorf("write probe left %v", left)
	}

	// The anonymous account takes any password: never a default credential.
	sess, err := p.Open(ctx, ep, id)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	for _, c := range []proto.Credential{{Username: "anonymous", Password: "anonymous"}, {Username: "ftp", Password: "ftp"}, {Username: "admin", Password: "admin"}} {
		res, err := sess.Try(ctx, c)
		if err != nil {
			t.Fatalf("Try(%v): %v", c, err)
		}
		if res.Outcome == proto.Accepted {
			t.Errorf("Try(%v) = %+v, want no acceptance", c, res)
		}
	}
}

func TestVsftpdLocalUser(t *testing.T) {
	t.Parallel()
	home := publicDir(t, map[string]string{"config.xml": "<x/>"})
	user := addUser(t, home, "s3cret-Pass")
	ep := startVsftpd(t, "anonymous_enable=NO\nlocal_enable=YES\nmax_login_fails=2")
	ctx := daemontest.Context(t)
	p := New()

	sess, err := p.Open(ctx, ep, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	// More refusals than max_login_fails: the session reconnects.
	for _, pw := range []string{"admin", "12345", ""} {
		res, err := sess.Try(ctx, proto.Credential{Username: user, Password: pw})
		if err != nil {
			t.Fatalf("Try(%q): %v", pw, err)
		}
		if res.Outcome != proto.Rejected {
			t.Errorf("Try(%q) = %+v, want rejected", pw, res)
		}
	}
	res, err := sess.Try(ctx, proto.Credential{Username: user, Password: "s3cret-Pass"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != proto.Accepted || !strings.HasPrefix(res.Proof, "230 and a directory listing") || !strings.Contains(res.Detail, "config.xml") {
		t.Fatalf("Try(good) = %+v, want accepted with the listing", res)
	}
	res, err = sess.Try(ctx, proto.Credential{Username: user, Password: "wrong"})
	if err != nil || res.Outcome != proto.Rejected {
		t.Errorf("Try(wrong after good) = %+v, %v; want rejected", res, err)
	}
	if oa, err := p.ProbeOpenAccess(ctx, ep, nil); oa != nil || err != nil {
		t.Errorf("ProbeOpenAccess = %+v, %v; want nil, nil", oa, err)
	}
}

func TestVsftpdHardened(t *testing.T) {
	t.Parallel()
	ep := startVsftpd(t, "anonymous_enable=NO\nlocal_enable=YES")
	ctx := daemontest.Context(t)
	p := New()
	if oa, err := p.ProbeOpenAccess(ctx, ep, nil); oa != nil || err != nil {
		t.Fatalf("ProbeOpenAccess = %+v, %v; want nil, nil", oa, err)
	}
	sess, err := p.Open(ctx, ep, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	for _, c := range []proto.Credential{{Username: "root", Password: "root"}, {Username: "admin", Password: "admin"}, {Username: "anonymous", Password: "x@y"}} {
		res, err := sess.Try(ctx, c)
		if err != nil {
			t.Fatalf("Try(%v): %v", c, err)
		}
		if res.Outcome != proto.Rejected {
			t.Errorf("Try(%v) = %+v, want rejected", c, res)
		}
	}
}

// selfSigned writes a throwaway certificate and key for vsftpd.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "iotcop test nas"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = daemontest.WriteFile(t, dir, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), 0o600)
	keyFile = daemontest.WriteFile(t, dir, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})), 0o600)
	return certFile, keyFile
}

// Implicit FTPS (port 990 style): the control and data connections are TLS.
func TestVsftpdImplicitTLS(t *testing.T) {
	t.Parallel()
	root := publicDir(t, map[string]string{"share.txt": "x"})
	cert, key := selfSigned(t, t.TempDir())
	ep := startVsftpd(t, fmt.Sprintf(`anonymous_enable=YES
local_enable=NO
anon_root=%s
ssl_enable=YES
implicit_ssl=YES
allow_anon_ssl=YES
require_ssl_reuse=NO
rsa_cert_file=%s
rsa_private_key_file=%s`, root, cert, key))
	ep.TLS = true
	id, err := identifyConn(t, ep)
	if err != nil {
		t.Fatalf("Identify over TLS: %v", err)
	}
	if id.Product != "vsFTPd" || !id.TLS {
		t.Errorf("identity = %+v, want vsFTPd over TLS", id)
	}
	oa, err := New().ProbeOpenAccess(daemontest.Context(t), ep, id)
	if err != nil || oa == nil {
		t.Fatalf("ProbeOpenAccess = %+v, %v; want anonymous FTPS", oa, err)
	}
	if names, _ := oa.Details["entries"].([]string); len(names) != 1 || names[0] != "share.txt" {
		t.Errorf("entries = %v", oa.Details["entries"])
	}
}
