// Package daemontest starts real Debian daemons (busybox telnetd, dropbear,
// vsftpd, mosquitto, ...) on their own loopback addresses for tests. It
// installs missing packages with apt-get when running as root and skips the
// test with a clear message otherwise. Traffic never leaves 127.0.0.0/8.
package daemontest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// TB is the part of testing.TB the helpers use. *testing.T and *testing.B
// satisfy it; so can a benchmark's main program, which starts the same
// daemons outside "go test".
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
	TempDir() string
	Failed() bool
}

var (
	aptMu   sync.Mutex
	addrSeq atomic.Uint32
)

// Require makes sure each binary exists, installing the named Debian
// package (binary=package pairs as "busybox=busybox-static") when root. It
// skips the test when a binary is missing and cannot be installed.
func Require(t TB, binPkgs ...string) {
	t.Helper()
	var missing []string
	for _, bp := range binPkgs {
		bin, pkg, ok := strings.Cut(bp, "=")
		if !ok {
			pkg = bin
		}
		if _, err := exec.LookPath(bin); err == nil {
			continue
		}
		if _, err := os.Stat(bin); err == nil {
			continue
		}
		missing = append(missing, pkg)
	}
	if len(missing) == 0 {
		return
	}
	if os.Geteuid() != 0 {
		t.Skipf("needs Debian packages %v (run the README test command as root to install them)", missing)
	}
	aptMu.Lock()
	defer aptMu.Unlock()
	args := append([]string{"install", "-y", "-qq", "--no-install-recommends"}, missing...)
	cmd := exec.Command("apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if _, err := cmd.CombinedOutput(); err != nil {
		// The package index may be stale on a fresh machine.
		if out2, err2 := exec.Command("apt-get", "update", "-qq").CombinedOutput(); err2 != nil {
			t.Fatalf("apt-get update: %v\n%s", err2, out2)
		}
		cmd = exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("apt-get install %v: %v\n%s", missing, err, out)
		}
	}
}

// RequireRoot skips the test unless it runs as root (chroot, binding
// privileged ports, dropping privileges).
func RequireRoot(t TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root (run the README test command as root)")
	}
}

// Addr returns a loopback address no other test in any package is using:
// 127.X.Y.Z derived from the process id and a counter. Linux routes all of
// 127.0.0.0/8 to lo, so no setup is needed.
func Addr() string {
	n := addrSeq.Add(1)
	pid := os.Getpid()
	return fmt.Sprintf("127.%d.%d.%d", 20+pid%200, (pid/200)%250+1, n%250+2)
}

// Daemon is a started process.
type Daemon struct {
	Cmd *exec.Cmd
	Out *bytes.Buffer
}

type lockedBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Len() > 1<<20 {
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

// Start runs a daemon in the foreground mode its flags select and kills it
// when the test ends. Its output is printed if the test fails.
func Start(t TB, name string, args ...string) *Daemon {
	t.Helper()
	cmd := exec.Command(name, args...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			out.mu.Lock()
			t.Logf("%s output:\n%s", name, out.String())
			out.mu.Unlock()
		}
	})
	return &Daemon{Cmd: cmd, Out: &out.Buffer}
}

// WaitTCP waits until host:port accepts connections (up to 10s).
func WaitTCP(t TB, host string, port int) {
	t.Helper()
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not start listening within 10s", addr)
}

// WaitUDP waits until probe gets any answer from host:port (up to 10s).
func WaitUDP(t TB, host string, port int, probe []byte) {
	t.Helper()
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 2048)
	for time.Now().Before(deadline) {
		c, err := net.Dial("udp", addr)
		if err == nil {
			_, _ = c.Write(probe)
			_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			_, err = c.Read(buf)
			c.Close()
			if err == nil {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s/udp did not answer within 10s", addr)
}

// WriteFile writes a file under dir, creating parents, failing the test on error.
func WriteFile(t TB, dir, rel, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatalf("write %s: %v", p, err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatalf("write %s: %v", p, err)
	}
	return p
}

// Context returns a context cancelled when the test ends.
func Context(t TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

var subnetSeq atomic.Uint32

// Base returns the first address of a loopback block of about 250
// addresses no other test uses, for a virtual lab ("127.X.25Y.1"). Each
// process gets five such blocks.
func Base() string {
	n := subnetSeq.Add(1)
	return fmt.Sprintf("127.%d.%d.1", 20+os.Getpid()%200, 250+n%6)
}
