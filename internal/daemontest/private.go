package daemontest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Account is a login that exists only inside a daemon's private mount
// namespace (see StartPrivate); the machine's account database is never
// touched.
type Account struct {
	Name     string
	Password string
	// Home is the account's home directory (default /tmp).
	Home string
}

// AccountFiles returns replacement account files for StartPrivate: the
// real /etc/passwd (not secret; daemons need their privilege-separation
// users) with the accounts added, and an /etc/shadow holding only a locked
// root and the accounts. Naming "root" gives root the password.
func AccountFiles(t TB, accounts ...Account) map[string]string {
	t.Helper()
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatalf("read /etc/passwd: %v", err)
	}
	var pw strings.Builder
	pw.WriteString(strings.TrimRight(string(passwd), "\n") + "\n")
	shadow := map[string]string{"root": "*"}
	names := []string{"root"}
	for i, a := range accounts {
		if !slices.Contains(names, a.Name) {
			names = append(names, a.Name)
		}
		shadow[a.Name] = CryptSHA512(t, a.Password)
		if a.Name == "root" || hasUser(string(passwd), a.Name) {
			continue
		}
		home := a.Home
		if home == "" {
			home = "/tmp"
		}
		uid := strconv.Itoa(4242 + i)
		fmt.Fprintf(&pw, "%s:x:%s:%s:iotcop test:%s:/bin/sh\n", a.Name, uid, uid, home)
	}
	var sh strings.Builder
	for _, n := range names {
		fmt.Fprintf(&sh, "%s:%s:19000:0:99999:7:::\n", n, shadow[n])
	}
	return map[string]string{"/etc/passwd": pw.String(), "/etc/shadow": sh.String()}
}

func hasUser(passwd, name string) bool {
	for _, l := range strings.Split(passwd, "\n") {
		if strings.HasPrefix(l, name+":") {
			return true
		}
	}
	return false
}

// StartPrivate runs name with args (as Start) in a private mount namespace
// where each file of files (target path → content) is bind-mounted over its
// target, which must exist. The mounts vanish with the daemon.
func StartPrivate(t TB, files map[string]string, name string, args ...string) *Daemon {
	t.Helper()
	Require(t, "unshare=util-linux")
	RequireRoot(t)
	dir := t.TempDir()
	targets := make([]string, 0, len(files))
	for target := range files {
		targets = append(targets, target)
	}
	slices.Sort(targets)
	script := make([]string, 0, len(targets)+1)
	for i, target := range targets {
		if _, err := os.Stat(target); err != nil {
			t.Fatalf("bind-mount target: %v", err)
		}
		src := filepath.Join(dir, fmt.Sprintf("bind%d", i))
		mode := os.FileMode(0o644)
		if strings.Contains(target, "shadow") {
			mode = 0o600
		}
		if err := os.WriteFile(src, []byte(files[target]), mode); err != nil {
			t.Fatalf("write %s: %v", src, err)
		}
		script = append(script, fmt.Sprintf("mount --bind '%s' '%s'", src, target))
	}
	script = append(script, `exec "$@"`)
	argv := append([]string{"--mount", "--propagation", "private", "sh", "-c", strings.Join(script, " && "), "sh", name}, args...)
	return Start(t, "unshare", argv...)
}
