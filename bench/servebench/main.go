// Command servebench measures the fleet service, `iotcop serve` and
// `iotcop worker`, in one run:
//
//  1. Import and API latency, SQLite vs PostgreSQL: for each backend it
//     starts `iotcop serve --workers 0` as a child process, POSTs distinct
//     JSON reports to /api/v1/reports with an API token (findings per
//     second), then, with all of them stored, measures p50/p99 latency of
//     GET /api/v1/findings?limit=100, a filtered findings query and
//     GET /api/v1/devices, with one client and with 8 concurrent clients,
//     and prints the PostgreSQL/SQLite ratios.
//  2. Worker scaling on PostgreSQL: a virtual lab of web cameras (package
//     lab, half with admin/admin), one sharded default-credentials scan
//     submitted through package jobs, worked by 1, 2 and then 3
//     `iotcop worker` processes (a fresh database each run); it prints each
//     run's time and the speed-up over one worker.
//
// PostgreSQL is a throw-away server (package pgtest, installed with apt-get
// when missing), so run it as root, through bench/serve.sh. Every address
// is on 127.0.0.0/8; every process and server it starts is stopped on exit,
// Ctrl-C included.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/internal/pgtest"
	"github.com/iotcop/iotcop/store"
)

// sizes are what one run measures.
type sizes struct {
	reports, devicesPerReport, findingsPerDevice int
	requests                                     int           // per latency measurement, at most
	budget                                       time.Duration // per latency measurement, at most
	labDevices                                   int
	workerRuns                                   []int // worker process counts
}

func (s sizes) findings() int { return s.reports * s.devicesPerReport * s.findingsPerDevice }

var (
	fullSizes  = sizes{reports: 100, devicesPerReport: 50, findingsPerDevice: 20, requests: 300, budget: 12 * time.Second, labDevices: 1000, workerRuns: []int{1, 2, 3}}
	quickSizes = sizes{reports: 10, devicesPerReport: 50, findingsPerDevice: 20, requests: 40, budget: 3 * time.Second, labDevices: 200, workerRuns: []int{1, 2, 3}}
)

func main() {
	iotcopBin := flag.String("iotcop", "", "iotcop binary (required)")
	quick := flag.Bool("quick", false, "smaller sizes for a smoke run")
	only := flag.String("only", "", `run one part only: "import" (import and API latency) or "workers" (worker scaling)`)
	keep := flag.Bool("keep", false, "keep the work directory (server and worker logs)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("servebench: ")
	if *iotcopBin == "" || flag.NArg() > 0 || (*only != "" && *only != "import" && *only != "workers") {
		flag.Usage()
		os.Exit(2)
	}
	sz := fullSizes
	if *quick {
		sz = quickSizes
	}
	t := daemontest.StartProgram("servebench", *keep)
	daemontest.RequireRoot(t) // PostgreSQL drops to the postgres user; 1000 listeners
	// Cancelled on the signals StartProgram's handler stops the program on.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	b := &bench{t: t, iotcop: *iotcopBin, sz: sz, ctx: ctx}

	fmt.Printf("machine: %d cores, %s, load %s; %s\n", runtime.NumCPU(), kernel(), loadavg(), b.version())
	start := time.Now()
	b.pg = pgtest.Start(b.tb())
	fmt.Printf("PostgreSQL: %s, a throw-away server (pgtest: fsync=off, synchronous_commit=off, shared_buffers=16MB)\n", pgVersion())
	fmt.Println("SQLite: the embedded default (modernc.org/sqlite, WAL, synchronous=NORMAL) in a temp data folder")
	if *quick {
		fmt.Println("-quick: smoke-run sizes, not the figures to quote")
	}
	fmt.Println()
	if *only != "workers" {
		b.importAndLatency()
	}
	if *only != "import" {
		b.workerScaling()
	}
	fmt.Printf("total run time %s; load average at the end %s (other work on this machine slows every figure alike)\n", time.Since(start).Round(time.Second), loadavg())
	t.Close()
}

type bench struct {
	t      *daemontest.ProgramTB
	ctx    context.Context
	iotcop string
	sz     sizes
	pg     *pgtest.Server
}

// fatalf stops the run: it stops everything started and exits 1. After
// Ctrl-C (or SIGTERM, SIGHUP) it waits instead: the error is then the
// interruption's, and StartProgram's signal handler is stopping everything
// and exits 130; exiting here would cut its cleanups short. Ctrl-C reaches
// PostgreSQL and the iotcop processes too (one process group), and their
// failing can be seen here just before this process gets its own signal:
// hence the second of grace.
func (b *bench) fatalf(format string, args ...any) {
	select {
	case <-b.ctx.Done():
		for {
			time.Sleep(time.Hour)
		}
	case <-time.After(time.Second):
	}
	b.t.Fatalf(format, args...)
}

// benchTB is the TB handed to helpers (pgtest): its Fatalf is fatalf.
type benchTB struct {
	*daemontest.ProgramTB
	b *bench
}

// Fatalf implements daemontest.TB.
func (t benchTB) Fatalf(format string, args ...any) { t.b.fatalf(format, args...) }

func (b *bench) tb() daemontest.TB { return benchTB{ProgramTB: b.t, b: b} }

// process is an iotcop command running as a child process.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, set before done closes
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 4<<20 { // bounded: keep the start, where the errors are
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs `iotcop args…` until stop is called or the program ends.
func (b *bench) start(name string, args ...string) *process {
	// Tied to b.ctx: a process started as the run is interrupted, too late
	// for the cleanups, still gets its SIGTERM.
	cmd := exec.CommandContext(b.ctx, b.iotcop, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	p := &process{name: name, cmd: cmd, out: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		b.fatalf("start iotcop %s: %v", args[0], err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	b.t.Cleanup(func() { p.stop() })
	return p
}

// stop ends the process (SIGTERM, then SIGKILL after 10 s) and waits for it.
func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitFor waits until the process's output matches re and returns the
// match; it fails the run when the process exits first or after timeout.
func (b *bench) waitFor(p *process, re *regexp.Regexp, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	for {
		if m := re.FindStringSubmatch(p.out.String()); m != nil {
			return m
		}
		select {
		case <-p.done:
			b.fatalf("%s exited (%v) before it was ready:\n%s", p.name, p.err, tail(p.out.String(), 30))
		default:
		}
		if time.Now().After(deadline) {
			b.fatalf("%s not ready after %s:\n%s", p.name, timeout, tail(p.out.String(), 30))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openStore opens the database at loc, failing the run on error.
func (b *bench) openStore(loc string) *store.Store {
	st, err := store.Open(b.ctx, loc)
	if err != nil {
		b.fatalf("open store: %v", err)
	}
	return st
}

// randomSecret returns a fresh secret with prefix.
func randomSecret(prefix string) string {
	return prefix + rand.Text()
}

func (b *bench) version() string {
	out, err := exec.Command(b.iotcop, "--version").CombinedOutput()
	if err != nil {
		return "(version unknown)"
	}
	return strings.TrimSpace(string(out))
}

func pgVersion() string {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "postgresql").Output()
	if err != nil {
		return "(version unknown)"
	}
	return "Debian postgresql " + string(out)
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return runtime.GOOS
	}
	return "Linux " + strings.TrimSpace(string(b))
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

func tail(s string, lines int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}
