// Package netnstest builds throwaway network namespaces for tests that need
// a real link-local network (multicast discovery, daemons binding to an
// interface): two namespaces joined by a veth pair whose interfaces and
// addresses exist only inside them, so nothing a test sends can reach the
// machine's own interfaces or any real network. Needs root and iproute2;
// tests skip with a clear message otherwise. Everything is removed in
// t.Cleanup, processes first, even when the test fails.
package netnstest

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/iotcop/iotcop/internal/daemontest"
)

// TB is the part of testing.TB the helpers use.
type TB = daemontest.TB

var seq atomic.Uint32

// Namespace is one network namespace, named for ip-netns(8).
type Namespace struct {
	Name string
}

// Pair is two namespaces joined by a veth pair with multicast enabled and a
// 224.0.0.0/4 route on each end, so multicast sent in one arrives in the
// other. Its addresses (in 10.0.0.0/8) exist only inside the namespaces.
type Pair struct {
	A, B           Namespace
	IfaceA, IfaceB string     // interface names, each inside its namespace
	AddrA, AddrB   netip.Addr // addresses on IfaceA, IfaceB
	Prefix         netip.Prefix
}

// Require skips the test unless it runs as root with ip(8) available
// (installing iproute2 when missing).
func Require(t TB) {
	t.Helper()
	daemontest.RequireRoot(t)
	daemontest.Require(t, "ip=iproute2")
}

// New creates an empty namespace with its loopback up and registers its
// removal. It skips the test when namespaces cannot be created here (a
// container without CAP_SYS_ADMIN).
func New(t TB) Namespace {
	t.Helper()
	Require(t)
	n := seq.Add(1)
	ns := Namespace{Name: fmt.Sprintf("iotcop-%d-%d", os.Getpid(), n)}
	if out, err := exec.Command("ip", "netns", "add", ns.Name).CombinedOutput(); err != nil {
		t.Skipf("cannot create network namespaces here: ip netns add: %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() { ns.remove(t) })
	ns.Run(t, "ip", "link", "set", "lo", "up")
	return ns
}

// NewPair creates two namespaces joined by a veth pair (see Pair). The
// veth is created directly inside them: no interface ever appears in the
// test's own namespace.
func NewPair(t TB) *Pair {
	t.Helper()
	a, b := New(t), New(t)
	n := seq.Add(1)
	prefix := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 213, byte(n), 0}), 24)
	p := &Pair{
		A: a, B: b,
		IfaceA: "veth-a", IfaceB: "veth-b",
		AddrA:  netip.AddrFrom4([4]byte{10, 213, byte(n), 1}),
		AddrB:  netip.AddrFrom4([4]byte{10, 213, byte(n), 2}),
		Prefix: prefix,
	}
	run(t, "ip", "link", "add", p.IfaceA, "netns", a.Name, "type", "veth", "peer", "name", p.IfaceB, "netns", b.Name)
	for _, end := range []struct {
		ns    Namespace
		iface string
		addr  netip.Addr
	}{{a, p.IfaceA, p.AddrA}, {b, p.IfaceB, p.AddrB}} {
		end.ns.Run(t, "ip", "addr", "add", netip.PrefixFrom(end.addr, prefix.Bits()).String(), "dev", end.iface)
		end.ns.Run(t, "ip", "link", "set", end.iface, "multicast", "on", "up")
		end.ns.Run(t, "ip", "route", "add", "224.0.0.0/4", "dev", end.iface)
	}
	return p
}

// AddVeth creates a veth pair name–peer inside ns (both ends there, both
// up) and gives name the address prefix; daemons that insist on a second
// interface (a router's "external" side) get one that leads nowhere.
func (ns Namespace) AddVeth(t TB, name, peer string, prefix netip.Prefix) {
	t.Helper()
	ns.Run(t, "ip", "link", "add", name, "type", "veth", "peer", "name", peer)
	ns.Run(t, "ip", "addr", "add", prefix.String(), "dev", name)
	ns.Run(t, "ip", "link", "set", name, "up")
	ns.Run(t, "ip", "link", "set", peer, "up")
}

// Command returns a command that runs name inside ns (through "ip netns
// exec", which also gives it a private mount namespace).
func (ns Namespace) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// Run runs name inside ns, failing the test if it fails, and returns its
// combined output.
func (ns Namespace) Run(t TB, name string, args ...string) string {
	t.Helper()
	out, err := ns.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("in %s: %s %s: %v\n%s", ns.Name, name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func run(t TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// Process is a program started inside a namespace. Its output goes to a
// file, not a pipe: a chatty daemon never blocks on a slow reader, and
// children it leaves behind cannot hold the test up.
type Process struct {
	Cmd  *exec.Cmd
	out  string        // output file
	done chan struct{} // closed when the process has exited
}

// maxOutput caps what Output returns.
const maxOutput = 1 << 20

// Output returns what the process printed so far (at most 1 MiB).
func (p *Process) Output() string {
	f, err := os.Open(p.out)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, maxOutput))
	return string(b)
}

// WaitOutput waits up to 20s for the process to print want, failing the
// test if it does not (or exits first).
func (p *Process) WaitOutput(t TB, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(p.Output(), want) {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before printing %q:\n%s", strings.Join(p.Cmd.Args, " "), want, p.Output())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("%s did not print %q within 20s:\n%s", strings.Join(p.Cmd.Args, " "), want, p.Output())
}

// Start runs name inside ns in the background and kills it when the test
// ends, printing its output if the test failed.
func (ns Namespace) Start(t TB, name string, args ...string) *Process {
	t.Helper()
	return start(t, ns.Command(name, args...), name)
}

// StartPrivate runs name inside ns as Start does, in a private mount
// namespace where /run is an empty tmpfs (daemons put their pid files and
// sockets there without meeting the machine's) and each directory in binds
// (mount point → source directory) is bind-mounted over its mount point,
// which must exist.
func (ns Namespace) StartPrivate(t TB, binds map[string]string, name string, args ...string) *Process {
	t.Helper()
	daemontest.Require(t, "unshare=util-linux")
	script := []string{"mount -t tmpfs iotcop-run /run"}
	for target, src := range binds {
		if _, err := os.Stat(target); err != nil {
			t.Fatalf("bind-mount target: %v", err)
		}
		script = append(script, fmt.Sprintf("mount --bind '%s' '%s'", src, target))
	}
	script = append(script, `exec "$@"`)
	argv := append([]string{"--mount", "--propagation", "private", "sh", "-c", strings.Join(script, " && "), "sh", name}, args...)
	return start(t, ns.Command("unshare", argv...), name)
}

func start(t TB, cmd *exec.Cmd, name string) *Process {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "output-*")
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	defer f.Close()
	p := &Process{Cmd: cmd, out: f.Name(), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group, so that children it forks die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.Output())
		}
	})
	return p
}

// remove ends what still runs inside ns (all of it started by this test:
// the namespace is the test's own) and deletes it, which also destroys its
// interfaces.
func (ns Namespace) remove(t TB) {
	if out, err := exec.Command("ip", "netns", "pids", ns.Name).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			var pid int
			if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	if out, err := exec.Command("ip", "netns", "del", ns.Name).CombinedOutput(); err != nil {
		t.Logf("ip netns del %s: %v: %s", ns.Name, err, out)
	}
}

// WaitUDP waits up to 20s until something inside ns listens on UDP port
// (as ss(8) sees it), failing the test otherwise.
func (ns Namespace) WaitUDP(t TB, port int) {
	t.Helper()
	ns.waitListen(t, "-u", port)
}

// WaitTCP waits up to 20s until something inside ns listens on TCP port.
func (ns Namespace) WaitTCP(t TB, port int) {
	t.Helper()
	ns.waitListen(t, "-t", port)
}

func (ns Namespace) waitListen(t TB, kind string, port int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		out, err := ns.Command("ss", "-H", "-l", "-n", kind, fmt.Sprintf("sport = :%d", port)).Output()
		if err == nil && len(bytes.TrimSpace(out)) > 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on port %d (ss %s) in %s within 20s", port, kind, ns.Name)
}

// RunTest runs the current test binary inside ns with only the test named
// test selected and env added to its environment, waiting for it to end,
// and returns its combined output. The named test does the work inside the
// namespace when it sees its environment, and skips otherwise.
func (ns Namespace) RunTest(t TB, test string, env ...string) (string, error) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("find the test binary: %v", err)
	}
	cmd := ns.Command(exe, "-test.run", "^"+test+"$", "-test.count", "1", "-test.v")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
