package daemontest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/iotcop/iotcop/proto"
)

// Service is a started daemon: where it listens and the one credential it
// takes.
type Service struct {
	Host      string
	Port      int
	Transport string // "tcp" or "udp"
	TLS       bool
	// Username and Password are the valid credential; both are empty when
	// the service has none to give (no login, anonymous only, key-only).
	// For SNMP Password is the community.
	Username string
	Password string
	// Timeout is a per-operation timeout that suits the daemon (BusyBox
	// login sleeps about 3s after a failure, OpenSSH is slow to start a
	// session).
	Timeout time.Duration
	// Root is the directory the daemon serves (document root, FTP root or
	// home, telnetd's chroot), when it has one.
	Root string
}

// Endpoint returns the proto.Endpoint that reaches the service.
func (s Service) Endpoint() proto.Endpoint {
	return proto.Endpoint{Host: s.Host, Port: s.Port, Transport: s.Transport, TLS: s.TLS, Timeout: s.Timeout}
}

// Addr returns host:port.
func (s Service) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Credential returns the valid credential.
func (s Service) Credential() proto.Credential {
	return proto.Credential{Username: s.Username, Password: s.Password}
}

// StrongPassword returns a random password no dictionary holds, for
// hardened configurations.
func StrongPassword() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "Hq7-" + hex.EncodeToString(b)
}

// Listen says where a daemon listens. The zero value picks a fresh
// loopback address and the protocol's conventional port.
type Listen struct {
	// Host is the address (default: a fresh loopback address from Addr;
	// give the same Host to several daemons to make one device).
	Host string
	// Port defaults to the protocol's conventional port (23, 22, 21, 80,
	// 443, 1883, 8883, 161, 5683), or a free one when another daemon of
	// this machine holds it on the wildcard address.
	Port int
}

// at returns the address and port to listen on.
func (l Listen) at(t TB, network string, conventional int) (string, int) {
	t.Helper()
	host := l.Host
	if host == "" {
		host = Addr()
	}
	switch {
	case l.Port != 0:
		return host, l.Port
	case free(host, network, conventional):
		return host, conventional
	}
	return host, freePort(t, host, network)
}

func free(host, network string, port int) bool {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	if network == "udp" {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		pc.Close()
		return true
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func freePort(t TB, host, network string) int {
	t.Helper()
	if network == "udp" {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatalf("find a free UDP port on %s: %v", host, err)
		}
		defer pc.Close()
		return pc.LocalAddr().(*net.UDPAddr).Port
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("find a free TCP port on %s: %v", host, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// PublicDir makes a world-readable directory holding files (name →
// content), removed when the test ends. Daemons that drop privileges
// (vsftpd) cannot reach t.TempDir's 0700 parents.
func PublicDir(t TB, files map[string]string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "iotcop-daemon-")
	if err != nil {
		t.Fatalf("make public directory: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("make public directory: %v", err)
	}
	for name, content := range files {
		WriteFile(t, dir, name, content, 0o644)
	}
	return dir
}

// SelfSigned writes a throwaway self-signed certificate for host and its
// key into dir and returns their paths.
func SelfSigned(t TB, dir, host string) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "iotcop test device"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("self-sign certificate: %v", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatalf("marshal key: %v", err)
	}
	certPath = WriteFile(t, dir, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), 0o644)
	keyPath = WriteFile(t, dir, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})), 0o600)
	return certPath, keyPath
}

// CryptSHA512 returns the sha512-crypt hash of password with a random salt
// (BusyBox mkpasswd), as /etc/shadow holds it.
func CryptSHA512(t TB, password string) string {
	t.Helper()
	Require(t, "busybox=busybox-static")
	cmd := exec.Command("busybox", "mkpasswd", "-m", "sha512", "-P", "0")
	cmd.Stdin = strings.NewReader(password) // not on the command line
	out, err := cmd.Output()
	hash := strings.TrimSpace(string(out))
	if err != nil || !strings.HasPrefix(hash, "$6$") {
		t.Fatalf("busybox mkpasswd: %v (%q)", err, out)
	}
	return hash
}
