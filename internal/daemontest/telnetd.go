package daemontest

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// TelnetdOptions configures BusyboxTelnetd.
type TelnetdOptions struct {
	Listen
	// User and Password are the one account of the chroot's /etc/shadow
	// (User defaults to "admin"; "root" gives root the password). An empty
	// Password makes a strong random one: the hardened device.
	User, Password string
	// NoLogin runs a shell for every connection instead of login
	// (telnetd -l /bin/sh), as many cheap cameras do.
	NoLogin bool
}

// BusyboxTelnetd runs the real busybox-static telnetd in a chroot of its own
// (own /etc/passwd and /etc/shadow, own devpts instance in a private mount
// namespace). Needs root.
func BusyboxTelnetd(t TB, o TelnetdOptions) Service {
	t.Helper()
	Require(t, "busybox=busybox-static", "unshare=util-linux", "chroot=coreutils")
	RequireRoot(t)
	bin, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("find busybox: %v", err)
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
	o.User, o.Password = orDefault(o.User, "admin"), orDefault(o.Password, StrongPassword())
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil { // the chroot's "/" must be readable by the user
		t.Fatalf("chroot: %v", err)
	}
	exe, err := os.ReadFile(bin)
	if err != nil {
		t.Fatalf("copy busybox: %v", err)
	}
	WriteFile(t, root, "bin/busybox", string(exe), 0o755)
	for _, applet := range []string{"sh", "ash", "login"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
			t.Fatalf("chroot: %v", err)
		}
	}
	hash := CryptSHA512(t, o.Password)
	passwd, shadow := "root:x:0:0:root:/root:/bin/sh\n", "root:"+hash+":19000:0:99999:7:::\n"
	if o.User != "root" {
		// root keeps a password of its own, as on a device: a locked
		// entry ("*") makes BusyBox login answer "bad salt" at once.
		passwd += o.User + ":x:1000:1000:" + o.User + ":/home/user:/bin/sh\n"
		shadow = "root:" + CryptSHA512(t, StrongPassword()) + ":19000:0:99999:7:::\n" + o.User + ":" + hash + ":19000:0:99999:7:::\n"
	}
	WriteFile(t, root, "etc/passwd", passwd, 0o644)
	WriteFile(t, root, "etc/shadow", shadow, 0o600)
	WriteFile(t, root, "etc/group", "root:x:0:\nusers:x:1000:\n", 0o644)
	for _, d := range []string{"dev/pts", "root", "tmp", "home/user"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatalf("chroot: %v", err)
		}
	}
	if err := os.Chown(filepath.Join(root, "home/user"), 1000, 1000); err != nil {
		t.Fatalf("chroot: %v", err)
	}
	if err := os.Symlink("pts/ptmx", filepath.Join(root, "dev/ptmx")); err != nil {
		t.Fatalf("chroot: %v", err)
	}
	host, port := o.Listen.at(t, "tcp", 23)
	shell := "/bin/login"
	if o.NoLogin {
		shell = "/bin/sh"
	}
	// The devpts mount lives in the daemon's private mount namespace and
	// vanishes with it.
	script := fmt.Sprintf("mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts %[1]s/dev/pts && exec chroot %[1]s /bin/busybox telnetd -F -b %[2]s:%[3]d -l %[4]s",
		root, host, port, shell)
	Start(t, "unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	WaitTCP(t, host, port)
	s := Service{Host: host, Port: port, Transport: "tcp", Timeout: 2 * time.Second, Root: root}
	if !o.NoLogin {
		s.Username, s.Password = o.User, o.Password
	}
	return s
}
