package telnet

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/proto"
)

// Test accounts of the chroot's own /etc/shadow (sha512-crypt, made with
// "busybox mkpasswd -m sha512"). Real accounts are never touched.
const (
	weakPassword = "Kq7-vZ2p!x" // admin on the weak device
	weakHash     = "$6$iotcoptestsalt1$ws8RVf2pw507KzNLtpnw07CS4RL6.1S/9GPs86NraApOBUHaqnzCEs/I.7XQ0ZrUCOc6jUHdt7JeZTlXtvjAb."
	hardHash     = "$6$iotcoptestsalt2$HgMRmzUQE/ORqMh7DbSAiucbwLHZDr8CjYdaKczcArN7J6DQ82CSp6S9hsXvKkxJggc3ADCa6zpTijXSsUfJs0" // "Tr1cky#Pass"
)

// startBusybox runs the real busybox-static telnetd in a chroot of its own
// (own /etc/passwd and /etc/shadow, own devpts instance in a private mount
// namespace) on a fresh loopback address. shell is what telnetd runs for a
// connection: "/bin/login" or "/bin/sh" (no login at all).
func startBusybox(t *testing.T, shell, adminHash string) proto.Endpoint {
	t.Helper()
	daemontest.Require(t, "busybox=busybox-static", "unshare=util-linux", "chroot=coreutils")
	daemontest.RequireRoot(t)
	bin, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal(err)
	}
	if f, err := elf.Open(bin); err == nil {
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				f.Close()
				t.Skipf("%s is dynamically linked; the chroot needs busybox-static", bin)
			}
		}
		f.Close()
	}
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil { // the chroot's "/" must be readable by the user
		t.Fatal(err)
	}
	exe, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	daemontest.WriteFile(t, root, "bin/busybox", string(exe), 0o755)
	for _, applet := range []string{"sh", "ash", "login"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	daemontest.WriteFile(t, root, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nadmin:x:1000:1000:admin:/home/admin:/bin/sh\n", 0o644)
	daemontest.WriteFile(t, root, "etc/shadow", "root:*:19000:0:99999:7:::\nadmin:"+adminHash+":19000:0:99999:7:::\n", 0o600)
	daemontest.WriteFile(t, root, "etc/group", "root:x:0:\nadmin:x:1000:\n", 0o644)
	for _, d := range []string{"dev/pts", "root", "tmp", "home/admin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(filepath.Join(root, "home/admin"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("pts/ptmx", filepath.Join(root, "dev/ptmx")); err != nil {
		t.Fatal(err)
	}
	host, port := daemontest.Addr(), 2323
	// The devpts mount lives in the daemon's private mount namespace and
	// vanishes with it.
	script := fmt.Sprintf("mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts %[1]s/dev/pts && exec chroot %[1]s /bin/busybox telnetd -F -b %[2]s:%[3]d -l %[4]s",
		root, host, port, shell)
	daemontest.Start(t, "unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	daemontest.WaitTCP(t, host, port)
	return proto.Endpoint{Host: host, Port: port, Transport: "tcp", Timeout: 2 * time.Second}
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

func TestBusyboxLogin(t *testing.T) {
	t.Parallel()
	ep := startBusybox(t, "/bin/login", weakHash)

	id := identifyLive(t, ep)
	if id.Protocol != "telnet" || id.Product != "BusyBox telnetd" || id.Info["prompt"] != "login" {
		t.Errorf("identity = %+v", id)
	}
	if oa, err := New().ProbeOpenAccess(daemontest.Context(t), ep, id); err != nil || oa != nil {
		t.Errorf("ProbeOpenAccess on a login-protected telnetd = %+v, %v; want nil, nil", oa, err)
	}

	// BusyBox login allows three tries per connection, so the last
	// credential also exercises the transparent reconnect.
	creds := []proto.Credential{
		{Username: "admin", Password: "admin"},
		{Username: "admin", Password: "1234"},
		{Username: "root", Password: "root"},
		{Username: "admin", Password: weakPassword},
	}
	want := []proto.Outcome{proto.Rejected, proto.Rejected, proto.Rejected, proto.Accepted}
	res := tryAll(t, ep, creds...)
	for i, r := range res {
		if r.Outcome != want[i] {
			t.Errorf("Try(%s) = %v (%s), want %v", creds[i], r.Outcome, r.Detail, want[i])
		}
	}
	if r := res[3]; r.Proof != "echo nonce read back" {
		t.Errorf("accepted with proof %q", r.Proof)
	}
}

func TestBusyboxShellWithoutLogin(t *testing.T) {
	t.Parallel()
	ep := startBusybox(t, "/bin/sh", weakHash)

	id := identifyLive(t, ep)
	if id.Product != "BusyBox telnetd" || id.Info["prompt"] != "shell" {
		t.Errorf("identity = %+v", id)
	}
	oa, err := New().ProbeOpenAccess(daemontest.Context(t), ep, id)
	if err != nil {
		t.Fatal(err)
	}
	if oa == nil || oa.What != "telnet shell without login" || oa.Proof != "echo nonce read back" {
		t.Fatalf("open access = %+v, want a telnet shell without login", oa)
	}
	// No login prompt: a credential proves nothing here.
	if r := tryAll(t, ep, proto.Credential{Username: "root", Password: "root"})[0]; r.Outcome == proto.Accepted {
		t.Errorf("credential accepted on a server without login: %+v", r)
	}
}

func TestBusyboxHardened(t *testing.T) {
	t.Parallel()
	ep := startBusybox(t, "/bin/login", hardHash)
	creds := []proto.Credential{
		{Username: "root", Password: "root"},
		{Username: "admin", Password: "admin"},
		{Username: "admin", Password: weakPassword},
	}
	for i, r := range tryAll(t, ep, creds...) {
		if r.Outcome != proto.Rejected {
			t.Errorf("Try(%s) = %v (%s), want rejected", creds[i], r.Outcome, r.Detail)
		}
	}
	if oa, err := New().ProbeOpenAccess(daemontest.Context(t), ep, nil); err != nil || oa != nil {
		t.Errorf("ProbeOpenAccess = %+v, %v; want nil, nil", oa, err)
	}
}
