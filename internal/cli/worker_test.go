package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/internal/pgtest"
	"github.com/iotcop/iotcop/jobs"
	"github.com/iotcop/iotcop/lab"
	"github.com/iotcop/iotcop/store"
)

// mainEnv, when set in a child process's environment, makes the test
// binary behave as the iotcop command (tests start real `iotcop worker`
// and `iotcop serve` processes this way, without building a binary).
const mainEnv = "IOTCOP_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		code := Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// process is an iotcop command running as a child process.
type process struct {
	cmd *exec.Cmd
	out *syncBuffer
}

// startIotcop runs `iotcop args…` in a child process until the test ends.
func startIotcop(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), mainEnv+"=1"), env...)
	p := &process{cmd: cmd, out: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		}
		if t.Failed() {
			t.Logf("iotcop %s:\n%s", strings.Join(args, " "), tail(p.out.String(), 40))
		}
	})
	return p
}

func tail(s string, lines int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// bigWebLab starts lab.WebFleet(n) in a block of addresses of its own.
func bigWebLab(t *testing.T, n int) *lab.Lab {
	// 127.23x.1.1 onwards: far from daemontest's per-test addresses.
	base := fmt.Sprintf("127.%d.1.1", 230+os.Getpid()%20)
	l, err := lab.Start(context.Background(), lab.WebFleet(n), lab.Options{Base: base})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestWorkersExactlyOnce is the scale test: three `iotcop worker`
// processes on one PostgreSQL share a sharded scan of 1000 virtual
// devices; one is killed (SIGKILL) while it holds running jobs. Every
// device must be assessed — stored — exactly once, none lost.
func TestWorkersExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("scale test: 1000 devices, three worker processes")
	}
	daemontest.RequireRoot(t) // 1000 listeners and a PostgreSQL server
	srv := pgtest.Start(t)
	dsn := srv.DSN(t)
	const n = 1000
	l := bigWebLab(t, n)
	devs := l.Devices()

	ctx := context.Background()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// The submitting side only enqueues, as a server with --workers 0.
	q, err := jobs.Open(ctx, st, jobs.Config{ShardSize: 25})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Stop(ctx)
	sc, err := q.SubmitScan(ctx, jobs.ScanRequest{Targets: devs[0].Address + "-" + devs[n-1].Address, Ports: "8080",
		Checks: []string{finding.CheckDefaultCredentials}, TimeoutMS: 3000}, "ops")
	if err != nil {
		t.Fatal(err)
	}
	// The lab skips .0 and .255, so the range holds a few empty addresses.
	hosts, shards := sc.HostsTotal, sc.ShardsTotal
	if hosts < n || hosts > n+10 || shards != (hosts+24)/25 {
		t.Fatalf("scan of %d hosts in %d shards, want %d+ hosts in shards of 25", hosts, shards, n)
	}

	workerArgs := func(name string) []string {
		return []string{"worker", "--db", dsn, "--workers", "2", "--name", name,
			"--job-timeout", "40s", "--rescue-after", "45s", "--shutdown-grace", "5s"}
	}
	victim := startIotcop(t, nil, workerArgs("w1")...)
	startIotcop(t, nil, workerArgs("w2")...)
	startIotcop(t, nil, workerArgs("w3")...)

	// Kill w1 once it has finished a shard and holds a running one.
	deadline := time.Now().Add(2 * time.Minute)
	var held int
	for {
		ws, err := st.ShardWorkers(ctx, sc.ID)
		if err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, w := range ws {
			if w == "w1" {
				done++
			}
		}
		if err := st.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM river_job WHERE state = 'running'
			AND attempted_by[array_length(attempted_by, 1)] = 'w1'`).Scan(&held); err != nil {
			t.Fatal(err)
		}
		if done >= 1 && held > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker w1 never held a job (stored %d shards)", done)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	victim.cmd.Wait()
	t.Logf("killed w1 holding %d running job(s)", held)

	// Wait for the rest, including the killed worker's jobs after River's
	// rescuer hands them on.
	deadline = time.Now().Add(4 * time.Minute)
	for {
		cur, err := st.Scan(ctx, sc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if cur.Status == store.ScanDone || cur.Status == store.ScanFailed {
			sc = cur
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("scan not finished: %+v", cur)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if sc.Status != store.ScanDone || sc.ShardsDone != shards || sc.HostsDone != hosts || sc.Devices != n {
		t.Fatalf("finished scan = %+v", sc)
	}

	// Exactly once: every device in exactly one stored report, every
	// shard stored once, and the killed worker's held shards done by others.
	var devices, links, distinct, shardRows int
	row := st.DB().QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM devices), (SELECT COUNT(*) FROM device_reports),
		(SELECT COUNT(DISTINCT device) FROM device_reports), (SELECT COUNT(*) FROM scan_shards WHERE scan_id = ?)`, sc.ID)
	if err := row.Scan(&devices, &links, &distinct, &shardRows); err != nil {
		t.Fatal(err)
	}
	if devices != n || links != n || distinct != n || shardRows != shards {
		t.Fatalf("devices %d, device reports %d (%d distinct), shard rows %d; want %d, %d, %d, %d",
			devices, links, distinct, shardRows, n, n, n, shards)
	}
	ws, err := st.ShardWorkers(ctx, sc.ID)
	if err != nil {
		t.Fatal(err)
	}
	var retried int
	if err := st.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM scan_shards WHERE scan_id = ? AND attempt > 1`, sc.ID).Scan(&retried); err != nil {
		t.Fatal(err)
	}
	if retried < held {
		t.Fatalf("%d shards stored on a second attempt, want at least the %d the killed worker held (workers: %v)", retried, held, ws)
	}
	// The universal password found on exactly the even devices.
	fs, err := st.Findings(ctx, store.FindingFilter{Check: finding.CheckDefaultCredentials, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for i, d := range devs {
		if i%2 == 0 {
			want[d.Address] = true
		}
	}
	got := map[string]int{}
	for _, f := range fs {
		got[f.Device]++
	}
	for a := range want {
		if got[a] != 1 {
			t.Errorf("device %s: %d default-credentials findings, want 1", a, got[a])
		}
	}
	if len(got) != len(want) {
		t.Errorf("default-credentials on %d devices, want %d", len(got), len(want))
	}
}

// TestWorkerShutdownRequeues stops a worker (SIGTERM) in the middle of a
// long job with a short grace period: the job must go back to the queue,
// nothing of it stored, and another worker must finish it, once.
func TestWorkerShutdownRequeues(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	dir := t.TempDir()
	ctx := context.Background()
	st, err := store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Devices with their own passwords: an aggressive dictionary run on
	// each keeps the one job busy for a while.
	var cfg lab.Config
	for i := range 16 {
		cfg.Devices = append(cfg.Devices, lab.DeviceSpec{Name: fmt.Sprintf("plug-%d", i), Kind: "plug", Vendor: "Plugly",
			Model: "P1", Firmware: "1.0", Services: []lab.ServiceSpec{{Protocol: "http", Port: 8080, Auth: "basic", Username: "admin", RandomPassword: true}}})
	}
	l, err := lab.Start(ctx, cfg, lab.Options{Base: daemontest.Base()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	devs := l.Devices()
	q, err := jobs.Open(ctx, st, jobs.Config{ShardSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Stop(ctx)
	sc, err := q.SubmitScan(ctx, jobs.ScanRequest{Targets: devs[0].Address + "-" + devs[len(devs)-1].Address, Ports: "8080",
		Checks: []string{finding.CheckDefaultCredentials}, Aggressive: true}, "ops")
	if err != nil {
		t.Fatal(err)
	}
	args := func(name string) []string {
		return []string{"worker", "--db", dir, "--workers", "1", "--name", name, "--shutdown-grace", "500ms"}
	}
	w1 := startIotcop(t, nil, args("w1")...)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		cur, err := st.Scan(ctx, sc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if cur.Status == store.ScanRunning {
			break
		}
		if cur.Status != store.ScanQueued || time.Now().After(deadline) {
			t.Fatalf("scan never started running: %+v", cur)
		}
	}
	w1.cmd.Process.Signal(syscall.SIGTERM)
	if err := w1.cmd.Wait(); err != nil {
		t.Fatalf("worker did not stop cleanly: %v\n%s", err, w1.out.String())
	}
	if !strings.Contains(w1.out.String(), "worker stopped") {
		t.Fatalf("no clean stop:\n%s", w1.out.String())
	}
	var state string
	var attempt int
	if err := st.DB().QueryRowContext(ctx, "SELECT state, attempt FROM river_job WHERE kind = 'iotcop_scan_shard'").Scan(&state, &attempt); err != nil {
		t.Fatal(err)
	}
	if state != "retryable" && state != "available" {
		t.Fatalf("the interrupted job is %s, want it back in the queue", state)
	}
	if cur, _ := st.Scan(ctx, sc.ID); cur.ShardsDone != 0 || cur.Status == store.ScanFailed {
		t.Fatalf("interrupted scan = %+v", cur)
	}

	startIotcop(t, nil, args("w2")...)
	sc = waitScanDone(t, st, sc.ID, 4*time.Minute)
	ws, err := st.ShardWorkers(ctx, sc.ID)
	if err != nil || sc.Status != store.ScanDone || len(ws) != 1 || ws[0] != "w2" || sc.Devices != len(devs) {
		t.Fatalf("scan = %+v, shards by %v (%v)", sc, ws, err)
	}
}

// waitScanDone polls until the scan finishes; the deadline only stops a
// stuck test.
func waitScanDone(t *testing.T, st *store.Store, id int64, within time.Duration) store.Scan {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		cur, err := st.Scan(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if cur.Status == store.ScanDone || cur.Status == store.ScanFailed {
			return cur
		}
		if time.Now().After(deadline) {
			t.Fatalf("scan not finished: %+v", cur)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
