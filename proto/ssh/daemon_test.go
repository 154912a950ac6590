package ssh

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	xssh "golang.org/x/crypto/ssh"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/proto"
)

// The test account exists only inside the daemons' private mount
// namespaces, where /etc/passwd and /etc/shadow are bind-mounted copies;
// the real account database is never touched.
const (
	testUser     = "iotcoptest"
	testPassword = "Kq7-vZ2p!x"
	// sha512-crypt of testPassword ("busybox mkpasswd -m sha512").
	testHash = "$6$iotcoptestsalt1$ws8RVf2pw507KzNLtpnw07CS4RL6.1S/9GPs86NraApOBUHaqnzCEs/I.7XQ0ZrUCOc6jUHdt7JeZTlXtvjAb."
)

// accountFiles returns the replacement account files: the real /etc/passwd
// (not secret; daemons need their privilege-separation users) plus the test
// user, and a shadow file holding only a locked root and the test user.
func accountFiles(t *testing.T) map[string]string {
	t.Helper()
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"/etc/passwd": strings.TrimRight(string(passwd), "\n") + "\n" + testUser + ":x:4242:4242:iotcop test:/tmp:/bin/sh\n",
		"/etc/shadow": "root:*:19000:0:99999:7:::\n" + testUser + ":" + testHash + ":19000:0:99999:7:::\n",
	}
}

// startPrivate runs name with args in a private mount namespace where each
// file of files (target path → content) is bind-mounted over its target.
func startPrivate(t *testing.T, files map[string]string, name string, args ...string) {
	t.Helper()
	dir := t.TempDir()
	targets := make([]string, 0, len(files))
	for target := range files {
		targets = append(targets, target)
	}
	slices.Sort(targets)
	var script []string
	for i, target := range targets {
		src := filepath.Join(dir, fmt.Sprintf("bind%d", i))
		if err := os.WriteFile(src, []byte(files[target]), 0o600); err != nil {
			t.Fatal(err)
		}
		script = append(script, fmt.Sprintf("mount --bind '%s' '%s'", src, target))
	}
	script = append(script, `exec "$@"`)
	argv := append([]string{"--mount", "--propagation", "private", "sh", "-c", strings.Join(script, " && "), "sh", name}, args...)
	daemontest.Start(t, "unshare", argv...)
}

func startDropbear(t *testing.T, extra ...string) proto.Endpoint {
	t.Helper()
	daemontest.Require(t, "dropbear=dropbear-bin", "dropbearkey=dropbear-bin", "unshare=util-linux")
	daemontest.RequireRoot(t)
	key := filepath.Join(t.TempDir(), "host_ed25519")
	if out, err := exec.Command("dropbearkey", "-t", "ed25519", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("dropbearkey: %v\n%s", err, out)
	}
	host, port := daemontest.Addr(), 2222
	args := append([]string{"-F", "-E", "-p", fmt.Sprintf("%s:%d", host, port), "-r", key}, extra...)
	startPrivate(t, accountFiles(t), "dropbear", args...)
	daemontest.WaitTCP(t, host, port)
	return proto.Endpoint{Host: host, Port: port, Transport: "tcp", Timeout: 2 * time.Second}
}

// startOpenSSH runs sshd with password ("password") or PAM
// keyboard-interactive ("keyboard-interactive") authentication only.
func startOpenSSH(t *testing.T, mode string) proto.Endpoint {
	t.Helper()
	daemontest.Require(t, "/usr/sbin/sshd=openssh-server", "unshare=util-linux")
	daemontest.RequireRoot(t)
	// sshd's privilege-separation directory; Debian creates it at boot.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := xssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "host_ed25519")
	if err := os.WriteFile(key, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	files := accountFiles(t)
	usePAM, password, keyboard := "no", "yes", "no"
	if mode == "keyboard-interactive" {
		usePAM, password, keyboard = "yes", "no", "yes"
		// A minimal PAM stack: the distribution's pulls in session
		// modules (loginuid, systemd) that fail in containers.
		files["/etc/pam.d/sshd"] = "auth required pam_unix.so\naccount required pam_unix.so\nsession required pam_permit.so\npassword required pam_deny.so\n"
	}
	host, port := daemontest.Addr(), 2222
	cfg := fmt.Sprintf(`ListenAddress %s:%d
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
`, host, port, key, usePAM, password, keyboard)
	cfgPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	startPrivate(t, files, "/usr/sbin/sshd", "-D", "-e", "-f", cfgPath)
	daemontest.WaitTCP(t, host, port)
	return proto.Endpoint{Host: host, Port: port, Transport: "tcp", Timeout: 3 * time.Second}
}

func identifyLive(t *testing.T, ep proto.Endpoint) *proto.Identity {
	t.Helper()
	ctx := daemontest.Context(t)
	conn, err := ep.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	banner, err := proto.ReadSome(conn, proto.MaxBanner, ep.IOTimeout())
	if err != nil {
		t.Fatal(err)
	}
	id, err := New().Identify(ctx, conn, banner, ep)
	if err != nil {
		t.Fatalf("Identify: %v (banner %q)", err, banner)
	}
	return id
}

func checkOutcomes(t *testing.T, creds []proto.Credential, res []proto.LoginResult, want []proto.Outcome) {
	t.Helper()
	for i, r := range res {
		if r.Outcome != want[i] {
			t.Errorf("Try(%s) = %v (%s), want %v", creds[i], r.Outcome, r.Detail, want[i])
		}
		if r.Outcome == proto.Accepted && r.Proof != ProofEcho {
			t.Errorf("Try(%s) accepted with proof %q (%s), want %q", creds[i], r.Proof, r.Detail, ProofEcho)
		}
	}
}

func TestDropbearPassword(t *testing.T) {
	t.Parallel()
	ep := startDropbear(t)
	id := identifyLive(t, ep)
	if id.Product != "Dropbear sshd" || id.Version == "" || id.Info["software"] != "dropbear_"+id.Version {
		t.Errorf("identity = %+v", id)
	}
	creds := []proto.Credential{
		{Username: "root", Password: "root"},
		{Username: testUser, Password: "admin"},
		{Username: testUser, Password: "12345"},
		{Username: testUser, Password: testPassword},
	}
	checkOutcomes(t, creds, tryAll(t, ep, creds...),
		[]proto.Outcome{proto.Rejected, proto.Rejected, proto.Rejected, proto.Accepted})
}

func TestDropbearKeyOnly(t *testing.T) {
	t.Parallel()
	ep := startDropbear(t, "-s") // password logins disabled
	if id := identifyLive(t, ep); id.Product != "Dropbear sshd" {
		t.Errorf("identity = %+v", id)
	}
	creds := []proto.Credential{
		{Username: testUser, Password: testPassword},
		{Username: "root", Password: "root"},
	}
	for i, r := range tryAll(t, ep, creds...) {
		if r.Outcome != proto.Rejected {
			t.Errorf("Try(%s) = %v (%s), want rejected", creds[i], r.Outcome, r.Detail)
		}
	}
}

func TestOpenSSH(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mode  string
		creds []proto.Credential
		want  []proto.Outcome
	}{
		{
			// MaxAuthTries 3: the third failure is a disconnect, the
			// fourth try needs a new connection.
			mode: "password",
			creds: []proto.Credential{
				{Username: testUser, Password: "admin"},
				{Username: testUser, Password: "1234"},
				{Username: testUser, Password: "password"},
				{Username: testUser, Password: testPassword},
			},
			want: []proto.Outcome{proto.Rejected, proto.Rejected, proto.Rejected, proto.Accepted},
		},
		{
			mode: "keyboard-interactive",
			creds: []proto.Credential{
				{Username: testUser, Password: "admin"},
				{Username: testUser, Password: testPassword},
			},
			want: []proto.Outcome{proto.Rejected, proto.Accepted},
		},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			ep := startOpenSSH(t, tt.mode)
			id := identifyLive(t, ep)
			if id.Product != "OpenSSH" || id.Version == "" || !strings.HasPrefix(id.Info["software"], "OpenSSH_") {
				t.Errorf("identity = %+v", id)
			}
			res := tryAll(t, ep, tt.creds...)
			checkOutcomes(t, tt.creds, res, tt.want)
			if last := res[len(res)-1]; !strings.Contains(last.Detail, tt.mode) {
				t.Errorf("accepted via %q, want %s", last.Detail, tt.mode)
			}
		})
	}
}
