package daemontest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// CertSpec describes a self-signed RSA certificate made for a test server.
type CertSpec struct {
	// Bits is the RSA key size.
	Bits int
	// SigAlg is the signature algorithm (zero: Go's default, SHA-256).
	SigAlg x509.SignatureAlgorithm
	// NotBefore and NotAfter default to an hour ago and thirty days ahead.
	NotBefore, NotAfter time.Time
	// IP is put in the subjectAltName; empty for a CN-only certificate.
	IP string
	// CoverHost puts the server's own address in the subjectAltName
	// (servers started by this package set IP from it).
	CoverHost bool
}

// WriteCert creates the self-signed certificate c describes and writes
// cert.pem and key.pem into dir.
func WriteCert(t TB, dir string, c CertSpec) (certPath, keyPath string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, c.Bits)
	if err != nil {
		t.Fatalf("generate a %d-bit RSA key: %v", c.Bits, err)
	}
	if c.NotBefore.IsZero() {
		c.NotBefore = time.Now().Add(-time.Hour)
	}
	if c.NotAfter.IsZero() {
		c.NotAfter = time.Now().Add(30 * 24 * time.Hour)
	}
	tpl := &x509.Certificate{
		SerialNumber:       big.NewInt(time.Now().UnixNano()),
		Subject:            pkix.Name{CommonName: "iotcop test camera", Organization: []string{"iotcop"}},
		NotBefore:          c.NotBefore,
		NotAfter:           c.NotAfter,
		SignatureAlgorithm: c.SigAlg,
		KeyUsage:           x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:        []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if c.IP != "" {
		tpl.IPAddresses = []net.IP{net.ParseIP(c.IP)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, key.Public(), crypto.Signer(key))
	if err != nil {
		t.Fatalf("self-sign certificate: %v", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("marshal key: %v", err)
	}
	certPath = WriteFile(t, dir, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), 0o644)
	keyPath = WriteFile(t, dir, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})), 0o600)
	return certPath, keyPath
}

// certFor fills in the server's address when the certificate covers it.
func certFor(c CertSpec, host string) CertSpec {
	if c.CoverHost {
		c.IP = host
	}
	return c
}

// LighttpdTLS runs lighttpd serving HTTPS on a fresh loopback address and
// free port, with the TLS module given ("mod_openssl", "mod_gnutls"), the
// certificate c describes and tlsConf's extra ssl.* lines (for example
// an "ssl.openssl.ssl-conf-cmd" enabling legacy protocols).
func LighttpdTLS(t TB, module, tlsConf string, c CertSpec) Service {
	t.Helper()
	Require(t, "lighttpd", "/usr/lib/lighttpd/"+module+".so=lighttpd-"+strings.ReplaceAll(module, "_", "-"))
	host := Addr()
	port := freePort(t, host, "tcp")
	dir := t.TempDir()
	cert, key := WriteCert(t, dir, certFor(c, host))
	WriteFile(t, dir+"/www", "index.html", "camera", 0o644)
	cfg := WriteFile(t, dir, "lighttpd.conf", fmt.Sprintf(`server.document-root = %q
server.bind = %q
server.port = %d
server.modules = ("%s")
server.errorlog = %q
ssl.engine = "enable"
ssl.pemfile = %q
ssl.privkey = %q
%s
`, dir+"/www", host, port, module, dir+"/error.log", cert, key, tlsConf), 0o644)
	Start(t, "lighttpd", "-D", "-f", cfg)
	WaitTCP(t, host, port)
	return Service{Host: host, Port: port, Transport: "tcp", TLS: true, Timeout: 2 * time.Second}
}

// OpenSSLServer runs `openssl s_server -www` on a fresh loopback address
// and free port with the certificate c describes and extra s_server
// arguments (for example "-min_protocol", "TLSv1", "-cipher",
// "ALL:eNULL:@SECLEVEL=0").
func OpenSSLServer(t TB, c CertSpec, args ...string) Service {
	t.Helper()
	Require(t, "openssl")
	host := Addr()
	port := freePort(t, host, "tcp")
	cert, key := WriteCert(t, t.TempDir(), certFor(c, host))
	all := append([]string{"s_server", "-accept", net.JoinHostPort(host, strconv.Itoa(port)), "-cert", cert, "-key", key, "-www", "-quiet"}, args...)
	Start(t, "openssl", all...)
	WaitTCP(t, host, port)
	return Service{Host: host, Port: port, Transport: "tcp", TLS: true, Timeout: 2 * time.Second}
}

// sshKeygen makes an OpenSSH host key of the given type and size in dir.
func sshKeygen(t TB, dir, typ string, bits int) string {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("host_%s_%d", typ, bits))
	args := []string{"-q", "-t", typ, "-N", "", "-C", "", "-f", path}
	if bits > 0 {
		args = append(args, "-b", strconv.Itoa(bits))
	}
	if out, err := exec.Command("ssh-keygen", args...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
	}
	return path
}

// OpenSSHNoLogin runs Debian's OpenSSH on a fresh loopback address, port
// 2222, with host keys of the given types ("rsa:1024", "dsa", "ed25519")
// and extra sshd_config lines (KexAlgorithms, Ciphers, ...). Nobody can
// log in: these servers are only looked at. Needs root.
func OpenSSHNoLogin(t TB, keys []string, extra string) Service {
	t.Helper()
	Require(t, "/usr/sbin/sshd=openssh-server", "ssh-keygen=openssh-client")
	RequireRoot(t)
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // privilege separation directory
		t.Fatalf("sshd: %v", err)
	}
	dir := t.TempDir()
	host, port := Addr(), 2222
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "ListenAddress %s:%d\n", host, port)
	for _, k := range keys {
		typ, bits, _ := strings.Cut(k, ":")
		n := 0
		if bits != "" {
			var err error
			if n, err = strconv.Atoi(bits); err != nil {
				t.Fatalf("host key %q: %v", k, err)
			}
		}
		fmt.Fprintf(&cfg, "HostKey %s\n", sshKeygen(t, dir, typ, n))
	}
	cfg.WriteString("PidFile none\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n" +
		"AuthorizedKeysFile none\nStrictModes no\nLogLevel ERROR\n" + extra)
	path := WriteFile(t, dir, "sshd_config", cfg.String(), 0o600)
	Start(t, "/usr/sbin/sshd", "-D", "-e", "-f", path)
	WaitTCP(t, host, port)
	return Service{Host: host, Port: port, Transport: "tcp", Timeout: 3 * time.Second}
}

// DropbearDefaults runs Debian's Dropbear on a fresh loopback address,
// port 2222, with its default algorithms and the host keys its package
// generates (RSA, ECDSA, Ed25519 at dropbearkey's default sizes).
// Password logins are off. Needs root.
func DropbearDefaults(t TB) Service {
	t.Helper()
	Require(t, "dropbear=dropbear-bin", "dropbearkey=dropbear-bin")
	RequireRoot(t)
	dir := t.TempDir()
	host, port := Addr(), 2222
	args := []string{"-F", "-E", "-s", "-p", fmt.Sprintf("%s:%d", host, port)}
	for _, typ := range []string{"rsa", "ecdsa", "ed25519"} {
		key := filepath.Join(dir, "dropbear_"+typ+"_host_key")
		if out, err := exec.Command("dropbearkey", "-t", typ, "-f", key).CombinedOutput(); err != nil {
			t.Fatalf("dropbearkey -t %s: %v\n%s", typ, err, out)
		}
		args = append(args, "-r", key)
	}
	Start(t, "dropbear", args...)
	WaitTCP(t, host, port)
	return Service{Host: host, Port: port, Transport: "tcp", Timeout: 3 * time.Second}
}
