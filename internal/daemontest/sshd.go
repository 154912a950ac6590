package daemontest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	xssh "golang.org/x/crypto/ssh"
)

// DropbearOptions configures Dropbear.
type DropbearOptions struct {
	Listen
	// User and Password are the account added in the daemon's private
	// namespace (User defaults to "iotcoptest"; "root" gives root the
	// password). An empty Password makes a strong random one.
	User, Password string
	// KeyOnly disables password logins (dropbear -s): the hardened device.
	// The returned Service then carries no credential.
	KeyOnly bool
}

// Dropbear runs the real dropbear sshd with a password account that exists
// only in its private mount namespace. Needs root.
func Dropbear(t TB, o DropbearOptions) Service {
	t.Helper()
	Require(t, "dropbear=dropbear-bin", "dropbearkey=dropbear-bin")
	RequireRoot(t)
	o.User, o.Password = orDefault(o.User, "iotcoptest"), orDefault(o.Password, StrongPassword())
	key := filepath.Join(t.TempDir(), "host_ed25519")
	if out, err := exec.Command("dropbearkey", "-t", "ed25519", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("dropbearkey: %v\n%s", err, out)
	}
	host, port := o.Listen.at(t, "tcp", 22)
	args := []string{"-F", "-E", "-p", fmt.Sprintf("%s:%d", host, port), "-r", key}
	if o.KeyOnly {
		args = append(args, "-s")
	}
	StartPrivate(t, AccountFiles(t, Account{Name: o.User, Password: o.Password}), "dropbear", args...)
	WaitTCP(t, host, port)
	s := Service{Host: host, Port: port, Transport: "tcp", Timeout: 2 * time.Second}
	if !o.KeyOnly {
		s.Username, s.Password = o.User, o.Password
	}
	return s
}

// OpenSSHOptions configures OpenSSH.
type OpenSSHOptions struct {
	Listen
	// User and Password are the account added in the daemon's private
	// namespace (User defaults to "iotcoptest"; root logins are refused).
	// An empty Password makes a strong random one.
	User, Password string
	// KeyboardInteractive offers PAM keyboard-interactive authentication
	// instead of the password method.
	KeyboardInteractive bool
}

// OpenSSH runs the real OpenSSH sshd (MaxAuthTries 3) with one
// authentication method and an account that exists only in its private
// mount namespace. Needs root.
func OpenSSH(t TB, o OpenSSHOptions) Service {
	t.Helper()
	Require(t, "/usr/sbin/sshd=openssh-server")
	RequireRoot(t)
	o.User, o.Password = orDefault(o.User, "iotcoptest"), orDefault(o.Password, StrongPassword())
	// sshd's privilege-separation directory; Debian creates it at boot.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("sshd: %v", err)
	}
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("host key: %v", err)
	}
	block, err := xssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatalf("host key: %v", err)
	}
	key := WriteFile(t, dir, "host_ed25519", string(pem.EncodeToMemory(block)), 0o600)
	files := AccountFiles(t, Account{Name: o.User, Password: o.Password})
	usePAM, password, keyboard := "no", "yes", "no"
	if o.KeyboardInteractive {
		usePAM, password, keyboard = "yes", "no", "yes"
		// A minimal PAM stack: the distribution's pulls in session
		// modules (loginuid, systemd) that fail in containers.
		files["/etc/pam.d/sshd"] = minimalPAM
	}
	host, port := o.Listen.at(t, "tcp", 22)
	cfg := WriteFile(t, dir, "sshd_config", fmt.Sprintf(`ListenAddress %s:%d
HostKey %s
PidFile none
UsePAM %s
PasswordAuthentication %s
KbdInteractiveAuthentication %s
PubkeyAuthentication yes
AuthorizedKeysFile none
PermitRootLogin no
StrictModes no
PrintMotd no
PrintLastLog no
MaxAuthTries 3
LogLevel VERBOSE
`, host, port, key, usePAM, password, keyboard), 0o600)
	StartPrivate(t, files, "/usr/sbin/sshd", "-D", "-e", "-f", cfg)
	WaitTCP(t, host, port)
	return Service{Host: host, Port: port, Transport: "tcp", Timeout: 3 * time.Second, Username: o.User, Password: o.Password}
}

// minimalPAM checks passwords against /etc/shadow and nothing else.
const minimalPAM = "auth required pam_unix.so\naccount required pam_unix.so\nsession required pam_permit.so\npassword required pam_deny.so\n"

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
