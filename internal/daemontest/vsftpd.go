package daemontest

import (
	"fmt"
	"strings"
	"time"
)

// VsftpdOptions configures Vsftpd.
type VsftpdOptions struct {
	Listen
	// Anonymous allows anonymous logins (read-only) to a directory holding
	// Files.
	Anonymous bool
	// User and Password are a local account that exists only in the
	// daemon's private mount namespace, its home holding Files. Without
	// User an anonymous server has no local logins; any other gets an
	// "iotcoptest" account. An empty Password makes a strong random one.
	User, Password string
	// Files are served (name → content).
	Files map[string]string
	// Extra holds more vsftpd.conf lines (max_login_fails=2, TLS, ...).
	Extra string
	// FailDelay keeps PAM's 2s pause after a failed local login, as a
	// Debian install has; by default failures are answered at once.
	FailDelay bool
}

// Vsftpd runs the real vsftpd. Needs root.
func Vsftpd(t TB, o VsftpdOptions) Service {
	t.Helper()
	Require(t, "vsftpd")
	RequireRoot(t)
	host, port := o.Listen.at(t, "tcp", 21)
	root := PublicDir(t, o.Files)
	s := Service{Host: host, Port: port, Transport: "tcp", Timeout: 3 * time.Second, Root: root}
	access := "anonymous_enable=NO\n"
	if o.Anonymous {
		access = "anonymous_enable=YES\nanon_root=" + root + "\n"
	}
	local := !o.Anonymous || o.User != ""
	if local {
		access += "local_enable=YES\n"
		s.Username, s.Password = orDefault(o.User, "iotcoptest"), orDefault(o.Password, StrongPassword())
	} else {
		access += "local_enable=NO\n"
	}
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
%s%s
`, host, port, PublicDir(t, nil), access, o.Extra)
	cfg := WriteFile(t, t.TempDir(), "vsftpd.conf", conf, 0o600)
	if local {
		files := AccountFiles(t, Account{Name: s.Username, Password: s.Password, Home: root})
		// Debian's stack adds ftpusers, shells and session modules that
		// fail in containers; the account is all the test needs.
		files["/etc/pam.d/vsftpd"] = minimalPAM
		if !o.FailDelay {
			files["/etc/pam.d/vsftpd"] = strings.Replace(minimalPAM, "auth required pam_unix.so", "auth required pam_unix.so nodelay", 1)
		}
		StartPrivate(t, files, "vsftpd", cfg)
	} else {
		Start(t, "vsftpd", cfg)
	}
	WaitTCP(t, host, port)
	return s
}
