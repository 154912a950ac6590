package main

import (
	"fmt"
	"os"
	"regexp"
	"runtime"
	"time"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/jobs"
	"github.com/iotcop/iotcop/lab"
	"github.com/iotcop/iotcop/store"
)

const (
	shardSize      = 25
	jobsPerWorker  = 2 // `iotcop worker --workers`
	scanPort       = 8080
	scanTimeout    = 5 * time.Minute // one worker run, at most
	workerReadyMax = 60 * time.Second
)

var workerReady = regexp.MustCompile(`worker \S+ working jobs from`)

// workerRun is one timed scan.
type workerRun struct {
	workers  int
	took     time.Duration
	devices  int
	found    int // default-credentials findings stored
	retried  int // shards stored on a later attempt
	shardsBy map[string]int
}

func (b *bench) workerScaling() {
	n := b.sz.labDevices
	fmt.Printf("== 2. Worker scaling on PostgreSQL: %d virtual web cameras (basic auth on port %d, half admin/admin, half a random password)\n", n, scanPort)
	l := b.webLab(n)
	devs := l.Devices()
	req := jobs.ScanRequest{Targets: devs[0].Address + "-" + devs[n-1].Address, Ports: fmt.Sprint(scanPort),
		Checks: []string{finding.CheckDefaultCredentials}}
	fmt.Printf("   one scan (%s, checks %s) in shards of %d, submitted with package jobs;\n", req.Targets, req.Checks[0], shardSize)
	fmt.Printf("   each run: a fresh database, N `iotcop worker --workers %d` processes started and ready, then the scan\n", jobsPerWorker)
	fmt.Println("   submitted and timed until its status is done")
	var runs []workerRun
	for _, w := range b.sz.workerRuns {
		r := b.workerRun(req, w, n)
		fmt.Printf("   %d worker(s): %s\n", w, r.took.Round(time.Millisecond))
		runs = append(runs, r)
	}
	fmt.Println()
	fmt.Printf("Worker scaling (PostgreSQL, %d devices, %d jobs at once per worker process)\n", n, jobsPerWorker)
	fmt.Printf("   %-8s %10s %8s %14s %9s %10s   %s\n", "workers", "time", "devices", "default-creds", "retried", "speed-up", "shards per worker")
	for _, r := range runs {
		fmt.Printf("   %-8d %9.2fs %8d %14d %9d %9.2fx   %v\n", r.workers, r.took.Seconds(), r.devices, r.found, r.retried,
			runs[0].took.Seconds()/r.took.Seconds(), r.shardsBy)
	}
	fmt.Printf("   speed-up = time of %d worker / time of N workers. All workers share this machine's %d cores (and the lab\n", runs[0].workers, runtime.NumCPU())
	fmt.Println("   and PostgreSQL run here too), so the ratio shows the queue's overhead and the concurrency gained, not more hardware.")
	fmt.Println()
}

// webLab starts n devices with one web interface each; every even device
// keeps the universal admin/admin.
func (b *bench) webLab(n int) *lab.Lab {
	var cfg lab.Config
	for i := range n {
		svc := lab.ServiceSpec{Protocol: "http", Port: scanPort, Auth: "basic", Username: "admin", Password: "admin"}
		if i%2 == 1 {
			svc.Password, svc.RandomPassword = "", true
		}
		cfg.Devices = append(cfg.Devices, lab.DeviceSpec{Name: fmt.Sprintf("cam-%d", i), Kind: "camera",
			Vendor: "Vistacam", Model: "IPC-2130", Firmware: "4.02", Services: []lab.ServiceSpec{svc}})
	}
	// 127.250–254.1.1 onwards: away from daemontest.Addr (127.20–219) and
	// the worker test's lab (127.230–249).
	base := fmt.Sprintf("127.%d.1.1", 250+os.Getpid()%5)
	l, err := lab.Start(b.ctx, cfg, lab.Options{Base: base})
	if err != nil {
		b.fatalf("start lab: %v", err)
	}
	b.t.Cleanup(func() { l.Close() })
	return l
}

// workerRun times one scan of the lab with workers worker processes on a
// fresh database.
func (b *bench) workerRun(req jobs.ScanRequest, workers, n int) workerRun {
	ctx := b.ctx
	dsn := b.pg.DSN(b.tb())
	st := b.openStore(dsn)
	defer st.Close()
	// The submitting side only enqueues, as a server with --workers 0.
	q, err := jobs.Open(ctx, st, jobs.Config{ShardSize: shardSize})
	if err != nil {
		b.fatalf("open queue: %v", err)
	}
	defer q.Stop(ctx)

	var procs []*process
	for i := range workers {
		name := fmt.Sprintf("w%d", i+1)
		procs = append(procs, b.start("iotcop worker "+name, "worker", "--db", dsn, "--workers", fmt.Sprint(jobsPerWorker), "--name", name))
	}
	for _, p := range procs {
		b.waitFor(p, workerReady, workerReadyMax)
	}

	start := time.Now()
	sc, err := q.SubmitScan(ctx, req, "bench")
	if err != nil {
		b.fatalf("submit scan: %v", err)
	}
	for {
		cur, err := st.Scan(ctx, sc.ID)
		if err != nil {
			b.fatalf("scan status: %v", err)
		}
		if cur.Status == store.ScanDone || cur.Status == store.ScanFailed {
			sc = cur
			break
		}
		if time.Since(start) > scanTimeout {
			b.fatalf("%d worker(s): scan not done after %s: %+v", workers, scanTimeout, cur)
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(start)
	for _, p := range procs {
		p.stop()
	}
	if sc.Status != store.ScanDone || sc.ShardsDone != sc.ShardsTotal || sc.Devices != n {
		b.fatalf("%d worker(s): finished scan %+v, want done with %d devices", workers, sc, n)
	}
	r := workerRun{workers: workers, took: took, devices: sc.Devices, shardsBy: map[string]int{}}
	if err := st.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM findings WHERE check_id = ?`, finding.CheckDefaultCredentials).Scan(&r.found); err != nil {
		b.fatalf("count findings: %v", err)
	}
	if r.found != (n+1)/2 {
		b.fatalf("%d worker(s): %d default-credentials findings, want %d (the even devices)", workers, r.found, (n+1)/2)
	}
	if err := st.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM scan_shards WHERE scan_id = ? AND attempt > 1`, sc.ID).Scan(&r.retried); err != nil {
		b.fatalf("count retried shards: %v", err)
	}
	ws, err := st.ShardWorkers(ctx, sc.ID)
	if err != nil {
		b.fatalf("shard workers: %v", err)
	}
	for _, w := range ws {
		r.shardsBy[w]++
	}
	return r
}
