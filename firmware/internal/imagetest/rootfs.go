package imagetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/iotcop/iotcop/internal/daemontest"
)

// Planted describes the flaws FlawedRootfs plants, for assertions.
type Planted struct {
	// Cracked maps user to the password its hash must crack to.
	Cracked map[string]string
	// Uncracked lists users with a preset hash outside every dictionary.
	Uncracked []string
	// Empty lists users with an empty password.
	Empty []string
	// Keys maps path to the key type expected there.
	Keys map[string]string
	// EncryptedKeys lists paths of passphrase-protected keys.
	EncryptedKeys []string
}

// FlawedRootfs builds a root filesystem with known flaws, generating the
// hashes and keys with the real tools (openssl, perl's crypt(3),
// ssh-keygen, dropbearkey): shadow entries with dictionary passwords in
// every crypt scheme, an empty password, locked and no-login accounts that
// must not be reported, private keys in several formats, a library that
// only contains the string "PRIVATE KEY", boot scripts starting telnetd
// (with a shell), tftpd from inetd, a console shell in inittab and a
// telnetd -u login.
func FlawedRootfs(t testing.TB) (string, Planted) {
	t.Helper()
	daemontest.Require(t, "openssl", "perl=perl-base", "ssh-keygen=openssh-client", "dropbearkey=dropbear-bin", "gcc")
	hash := func(args ...string) string {
		return strings.TrimSpace(string(Run(t, "", nil, "openssl", append([]string{"passwd"}, args...)...)))
	}
	des := strings.TrimSpace(string(Run(t, "", nil, "perl", "-e", `print crypt("support", "Xy")`)))
	bc, err := bcrypt.GenerateFromPassword([]byte("admin1234"), 5)
	if err != nil {
		t.Fatal(err)
	}
	shadow := strings.Join([]string{
		"root:" + hash("-1", "-salt", "Vq3fL2Hb", "xc3511") + ":19000:0:99999:7:::",
		"admin:" + hash("-6", "admin") + ":19000:0:99999:7:::",
		"support:" + des + ":19000:0:99999:7:::",
		"tech:" + hash("-1", "-salt", "saltsalt", "Kq8#zR2!vW9p-unguessable") + ":19000:0:99999:7:::",
		"operator:" + hash("-5", "-salt", "opsalt", "888888") + ":19000:0:99999:7:::",
		"web:" + string(bc) + ":19000:0:99999:7:::",
		"apache:" + hash("-apr1", "vizxv") + ":19000:0:99999:7:::",
		"guest::19000:0:99999:7:::",
		"locked:!:19000:0:99999:7:::",
		"star:*:19000:0:99999:7:::",
		"daemon:" + hash("-1", "admin") + ":19000:0:99999:7:::",
	}, "\n") + "\n"
	passwd := strings.Join([]string{
		"root:x:0:0:root:/root:/bin/sh",
		"admin:x:1000:1000::/home/admin:/bin/sh",
		"support:x:1001:1001::/:/bin/ash",
		"tech:x:1002:1002::/:/bin/sh",
		"operator:x:1008:1008::/:/bin/sh",
		"web:x:1003:1003::/:/bin/sh",
		"apache:x:1004:1004::/:/bin/sh",
		"guest:x:1005:1005::/:/bin/sh",
		"locked:x:1006:1006::/:/bin/sh",
		"star:x:1007:1007::/:/bin/sh",
		"daemon:x:1:1::/:/sbin/nologin",
	}, "\n") + "\n"
	dir := Rootfs(t, map[string]Entry{
		"etc/passwd":  {Content: passwd},
		"etc/shadow":  {Content: shadow, Mode: 0o600},
		"etc/inittab": {Content: "::sysinit:/etc/init.d/rcS\nttyS0::respawn:-/bin/sh\n::shutdown:/bin/umount -a -r\n"},
		"etc/init.d/rcS": {Content: "#!/bin/sh\nmount -a\n# telnetd -l /bin/login (commented out)\n" +
			"killall telnetd 2>/dev/null\n/usr/sbin/telnetd -l /bin/sh &\n" +
			"utelnetd -p 2323 -u maint:M41ntP4ss -d\n", Mode: 0o755},
		"etc/inetd.conf": {Content: "tftp dgram udp wait root /usr/sbin/tftpd tftpd -s /tftpboot\n"},
		"lib/libcrypto.so.3": {Content: "\x7fELF\x02\x01\x01" + strings.Repeat("\x00", 200) +
			"-----BEGIN RSA PRIVATE KEY-----\x00-----BEGIN %s-----\x00PRIVATE KEY\x00-----END RSA PRIVATE KEY-----\x00"},
		"etc/dropbear":    {Dir: true},
		"root/.ssh":       {Dir: true},
		"etc/ssl/private": {Dir: true},
	})
	p := func(rel string) string { return filepath.Join(dir, rel) }
	Run(t, "", nil, "openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", p("etc/ssl/private/server.key"))
	Run(t, "", nil, "openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", p("etc/ssl/private/ec.pem"))
	Run(t, "", nil, "openssl", "genpkey", "-algorithm", "ED25519", "-outform", "DER", "-out", p("etc/ssl/private/device.der"))
	Run(t, "", nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", p("root/.ssh/id_ed25519"))
	Run(t, "", nil, "ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "secretpass", "-f", p("root/.ssh/id_rsa_enc"))
	Run(t, "", nil, "dropbearkey", "-t", "rsa", "-s", "1024", "-f", p("etc/dropbear/dropbear_rsa_host_key"))
	Run(t, "", nil, "dropbearkey", "-t", "ed25519", "-f", p("etc/dropbear/dropbear_ed25519_host_key"))
	Compile(t, p("usr/bin/cgi-handler"), "-fno-stack-protector", "-no-pie", "-fno-pie", "-z", "execstack", "-Wl,-z,norelro")
	// Public halves are not findings.
	for _, pub := range []string{"root/.ssh/id_ed25519.pub", "root/.ssh/id_rsa_enc.pub"} {
		if _, err := os.Stat(p(pub)); err != nil {
			t.Fatal(err)
		}
	}
	return dir, Planted{
		Cracked:   map[string]string{"root": "xc3511", "admin": "admin", "support": "support", "web": "admin1234", "apache": "vizxv", "operator": "888888"},
		Uncracked: []string{"tech"},
		Empty:     []string{"guest"},
		Keys: map[string]string{
			"/etc/ssl/private/server.key":             "RSA",
			"/etc/ssl/private/ec.pem":                 "ECDSA",
			"/etc/ssl/private/device.der":             "Ed25519",
			"/root/.ssh/id_ed25519":                   "Ed25519",
			"/etc/dropbear/dropbear_rsa_host_key":     "RSA",
			"/etc/dropbear/dropbear_ed25519_host_key": "Ed25519",
			"/root/.ssh/id_rsa_enc":                   "ssh-rsa",
		},
		EncryptedKeys: []string{"/root/.ssh/id_rsa_enc"},
	}
}

// Compile builds a small C program that copies its argument into a stack
// buffer to out with gcc and the given flags.
func Compile(t testing.TB, out string, flags ...string) {
	t.Helper()
	daemontest.Require(t, "gcc")
	src := filepath.Join(t.TempDir(), "prog.c")
	prog := "#include <stdio.h>\n#include <string.h>\nint main(int c, char **v) { char b[64]; strcpy(b, c > 1 ? v[1] : \"x\"); puts(b); return 0; }\n"
	if err := os.WriteFile(src, []byte(prog), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	Run(t, "", nil, "gcc", append(append([]string{"-O2"}, flags...), "-o", out, src)...)
}

// CleanRootfs builds a root filesystem with none of the flaws: locked
// root, a login on the console, no keys, dropbear with key generation at
// first boot, a hardened binary, and scripts that only stop telnetd.
func CleanRootfs(t testing.TB) string {
	t.Helper()
	dir := Rootfs(t, map[string]Entry{
		"etc/passwd":           {Content: "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"},
		"etc/shadow":           {Content: "root:!:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n", Mode: 0o600},
		"etc/inittab":          {Content: "::sysinit:/etc/init.d/rcS\nttyS0::respawn:/sbin/getty -L ttyS0 115200 vt100\n"},
		"etc/init.d/rcS":       {Content: "#!/bin/sh\nkillall telnetd\n[ -f /etc/dropbear/key ] || dropbearkey -t ed25519 -f /etc/dropbear/key\ndropbear -s -g\necho tftpd disabled\n", Mode: 0o755},
		"lib/libcrypto.so.3":   {Content: "\x7fELF-----BEGIN RSA PRIVATE KEY-----\x00-----BEGIN PRIVATE KEY-----\nnot base64 at all!\n-----END PRIVATE KEY-----\n"},
		"etc/ssl/certs/ca.pem": {Content: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"},
	})
	Compile(t, filepath.Join(dir, "usr/bin/app"), "-fstack-protector-strong", "-D_FORTIFY_SOURCE=2", "-fPIE", "-pie", "-Wl,-z,relro,-z,now")
	return dir
}
