// Package jobs runs the fleet service's work — live scans split into
// shards, firmware analyses, scheduled rescans — as jobs in a durable queue
// kept in the service's own database: River, on PostgreSQL (through
// database/sql with a pgx listener) or on the embedded SQLite database.
//
// Exactly once: a shard's report, the scan's progress and the job's
// completion commit in one transaction (river.JobCompleteTx), and the
// store refuses a second result for the same shard (its primary key).
// A worker that dies mid-job leaves its job "running"; River's rescuer
// gives it to another worker after RescueAfter, and since nothing of the
// dead attempt was committed, nothing is lost and nothing doubled.
package jobs

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/iotcop/iotcop/assess"
	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/firmware"
	"github.com/iotcop/iotcop/report"
	"github.com/iotcop/iotcop/standard"
	"github.com/iotcop/iotcop/store"
)

// Config tunes a Queue.
type Config struct {
	// Workers is how many jobs this process runs at once; 0 makes a queue
	// that only enqueues (a server whose work is done by `iotcop worker`
	// processes).
	Workers int
	// ShardSize is the most addresses one scan job covers (default 64).
	ShardSize int
	// MaxHosts refuses larger scans (default 1<<20 addresses).
	MaxHosts int
	// JobTimeout cancels a job that runs longer (default 30 minutes).
	JobTimeout time.Duration
	// RescueAfter is how long a job may stay running before it is presumed
	// abandoned (its worker died) and run again elsewhere; it must exceed
	// JobTimeout (default JobTimeout + 1 minute).
	RescueAfter time.Duration
	// PollInterval is how often idle workers look for jobs when they are
	// not told by a notification (default 1s).
	PollInterval time.Duration
	// ProgressInterval is how often a running shard reports the hosts it
	// has finished (default 1s).
	ProgressInterval time.Duration
	// Name identifies this process in results (default host-pid).
	Name string
	// Scope is the server-side scan-scope policy applied when scans are
	// submitted.
	Scope Scope
	// AllowPublic lets this worker scan targets outside private and
	// loopback ranges (the command line's --allow-public). Without it a
	// shard with a public address fails, whatever the server allowed.
	AllowPublic bool
	// ShowSecrets stores found passwords and keys in the clear (reports
	// redact them by default).
	ShowSecrets bool
	// Version is recorded in reports.
	Version string
	// Logger receives the queue's logs; nil discards them.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	c.ShardSize = cmp.Or(c.ShardSize, 64)
	c.MaxHosts = cmp.Or(c.MaxHosts, 1<<20)
	c.JobTimeout = cmp.Or(c.JobTimeout, 30*time.Minute)
	c.RescueAfter = cmp.Or(c.RescueAfter, c.JobTimeout+time.Minute)
	c.PollInterval = cmp.Or(c.PollInterval, time.Second)
	c.ProgressInterval = cmp.Or(c.ProgressInterval, time.Second)
	if c.Name == "" {
		host, _ := os.Hostname()
		c.Name = fmt.Sprintf("%s-%d", cmp.Or(host, "worker"), os.Getpid())
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Queue submits and (with Workers > 0) works jobs.
type Queue struct {
	st  *store.Store
	cfg Config
	// cat is the EN 303 645 catalogue every result is assessed against.
	cat    *standard.Catalogue
	client *river.Client[*sql.Tx]
	// riverDB is River's own pool on SQLite (one connection, as its
	// driver asks); nil on PostgreSQL, where River shares the store's.
	riverDB *sql.DB
	// listener is the pgx pool LISTEN/NOTIFY runs on (PostgreSQL only).
	listener *pgxpool.Pool
	// complete commits a job's completion in the caller's transaction;
	// it depends on the driver type, hence a function chosen at Open.
	complete func(ctx context.Context, tx *sql.Tx, job *rivertype.JobRow) error
}

// Open prepares the queue on the store's database: River's tables are
// created or migrated (under the store's migration lock) and a client is
// built. Call Start to work jobs.
func Open(ctx context.Context, st *store.Store, cfg Config) (*Queue, error) {
	cfg = cfg.withDefaults()
	if cfg.RescueAfter < cfg.JobTimeout {
		return nil, fmt.Errorf("job queue: rescue-after %s is shorter than the job timeout %s", cfg.RescueAfter, cfg.JobTimeout)
	}
	cat, err := standard.Load()
	if err != nil {
		return nil, fmt.Errorf("job queue: load the provision catalogue: %w", err)
	}
	q := &Queue{st: st, cfg: cfg, cat: cat}
	var driver riverdriver.Driver[*sql.Tx]
	switch st.Dialect() {
	case store.Postgres:
		pcfg, err := pgxpool.ParseConfig(st.URL())
		if err != nil {
			return nil, fmt.Errorf("job queue: listener: %w", err)
		}
		// LISTEN holds one connection; the pool needs no more.
		pcfg.MaxConns, pcfg.MinConns = 2, 0
		pool, err := pgxpool.NewWithConfig(ctx, pcfg)
		if err != nil {
			return nil, fmt.Errorf("job queue: connect listener: %w", err)
		}
		q.listener = pool
		driver = riverdatabasesql.NewWithPgxListener(st.DB().DB, pool)
		q.complete = completeWith[*riverdatabasesql.Driver]
	default:
		path := filepath.Join(st.Location(), store.DBFile)
		db, err := sql.Open("sqlite", store.SQLiteDSN(path))
		if err != nil {
			return nil, fmt.Errorf("job queue: open %s: %w", path, err)
		}
		// River's SQLite driver runs its internal operations in parallel;
		// one connection keeps them from tripping over each other.
		db.SetMaxOpenConns(1)
		q.riverDB = db
		driver = riversqlite.New(db)
		q.complete = completeWith[*riversqlite.Driver]
	}
	err = st.WithMigrationLock(ctx, func() error {
		m, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: cfg.Logger})
		if err != nil {
			return err
		}
		_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
		return err
	})
	if err != nil {
		q.closePools()
		return nil, fmt.Errorf("job queue: migrate: %w", err)
	}
	rc := &river.Config{
		ID:                   cfg.Name,
		Logger:               cfg.Logger,
		JobTimeout:           cfg.JobTimeout,
		RescueStuckJobsAfter: cfg.RescueAfter,
		FetchPollInterval:    cfg.PollInterval,
		FetchCooldown:        min(cfg.PollInterval, 100*time.Millisecond),
		MaxAttempts:          3,
		ErrorHandler:         errorHandler{q},
	}
	if cfg.Workers > 0 {
		workers := river.NewWorkers()
		river.AddWorker(workers, &shardWorker{q: q})
		river.AddWorker(workers, &firmwareWorker{q: q})
		river.AddWorker(workers, &tickWorker{q: q})
		rc.Workers = workers
		rc.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.Workers}}
		rc.PeriodicJobs = []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(time.Minute),
			func() (river.JobArgs, *river.InsertOpts) { return TickArgs{}, nil },
			&river.PeriodicJobOpts{RunOnStart: true})}
	}
	client, err := river.NewClient(driver, rc)
	if err != nil {
		q.closePools()
		return nil, fmt.Errorf("job queue: %w", err)
	}
	q.client = client
	return q, nil
}

func completeWith[D riverdriver.Driver[*sql.Tx]](ctx context.Context, tx *sql.Tx, row *rivertype.JobRow) error {
	_, err := river.JobCompleteTx[D](ctx, tx, &river.Job[rawArgs]{JobRow: row})
	return err
}

// rawArgs lets completeWith hand River a job row of any kind.
type rawArgs struct{}

func (rawArgs) Kind() string { return "" }

// Start begins working jobs (a no-op for an enqueue-only queue).
func (q *Queue) Start(ctx context.Context) error {
	if q.cfg.Workers == 0 {
		return nil
	}
	if err := q.client.Start(ctx); err != nil {
		return fmt.Errorf("job queue: start: %w", err)
	}
	return nil
}

// Stop stops taking jobs and waits for running ones until ctx ends; jobs
// still running then are cancelled and go back to the queue for another
// attempt (their partial results were never committed).
func (q *Queue) Stop(ctx context.Context) error {
	defer q.closePools()
	if q.cfg.Workers == 0 {
		return nil
	}
	err := q.client.Stop(ctx)
	if err == nil {
		return nil
	}
	hard, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := q.client.StopAndCancel(hard); err != nil {
		return fmt.Errorf("job queue: stop: %w", err)
	}
	return nil
}

func (q *Queue) closePools() {
	if q.riverDB != nil {
		q.riverDB.Close()
		q.riverDB = nil
	}
	if q.listener != nil {
		q.listener.Close()
		q.listener = nil
	}
}

// ShardArgs is one shard of a live scan.
type ShardArgs struct {
	ScanID int64 `json:"scan_id"`
	Shard  int   `json:"shard"`
	// Targets are the shard's addresses as compact ranges.
	Targets []string    `json:"targets"`
	Hosts   int         `json:"hosts"`
	Request ScanRequest `json:"request"`
	By      string      `json:"by"`
}

// Kind implements river.JobArgs.
func (ShardArgs) Kind() string { return "iotcop_scan_shard" }

// FirmwareArgs is one firmware analysis of an uploaded image.
type FirmwareArgs struct {
	ScanID   int64  `json:"scan_id"`
	UploadID int64  `json:"upload_id"`
	By       string `json:"by"`
}

// Kind implements river.JobArgs.
func (FirmwareArgs) Kind() string { return "iotcop_firmware" }

// TickArgs is the periodic job that starts due scheduled rescans.
type TickArgs struct{}

// Kind implements river.JobArgs.
func (TickArgs) Kind() string { return "iotcop_schedule_tick" }

// InsertOpts implements river.JobArgsWithInsertOpts: one tick per period
// however many servers enqueue it.
func (TickArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: time.Minute}}
}

// SubmitScan validates a scan request against the policy, records the scan
// and enqueues its shards, all in one transaction.
func (q *Queue) SubmitScan(ctx context.Context, req ScanRequest, by string) (store.Scan, error) {
	var id int64
	err := q.st.InTx(ctx, func(tx *store.Tx) error {
		var err error
		id, err = q.submitScanTx(ctx, tx, req, by, 0)
		return err
	})
	if err != nil {
		return store.Scan{}, err
	}
	return q.st.Scan(ctx, id)
}

// RequestError is a scan request refused before anything was queued (bad
// targets, ports, checks, or outside the scope policy).
type RequestError struct{ Err error }

func (e RequestError) Error() string { return "scan request: " + e.Err.Error() }
func (e RequestError) Unwrap() error { return e.Err }

func (q *Queue) submitScanTx(ctx context.Context, tx *store.Tx, req ScanRequest, by string, scheduleID int64) (int64, error) {
	if err := req.validate(); err != nil {
		return 0, RequestError{err}
	}
	set, err := q.cfg.Scope.build(ctx, req)
	if err != nil {
		return 0, RequestError{err}
	}
	parts, hosts, err := shards(set, q.cfg.ShardSize, q.cfg.MaxHosts)
	if err != nil {
		return 0, RequestError{err}
	}
	raw, err := json.Marshal(req)
	if err != nil {
		return 0, err
	}
	id, err := q.st.CreateScanTx(ctx, tx, store.Scan{Kind: store.KindScan, Targets: req.Targets, Request: raw,
		ShardsTotal: len(parts), HostsTotal: hosts, CreatedBy: by, ScheduleID: scheduleID})
	if err != nil {
		return 0, err
	}
	params := make([]river.InsertManyParams, len(parts))
	for i, p := range parts {
		// shards fills every shard but the last with ShardSize addresses.
		n := q.cfg.ShardSize
		if i == len(parts)-1 {
			n = hosts - q.cfg.ShardSize*(len(parts)-1)
		}
		params[i] = river.InsertManyParams{Args: ShardArgs{ScanID: id, Shard: i, Targets: p, Hosts: n, Request: req, By: by}}
	}
	if _, err := q.client.InsertManyTx(ctx, tx.Tx, params); err != nil {
		return 0, fmt.Errorf("queue scan %d: %w", id, err)
	}
	return id, nil
}

// SubmitFirmware stores an image and enqueues its analysis.
func (q *Queue) SubmitFirmware(ctx context.Context, name string, body []byte, by string) (store.Scan, error) {
	var id int64
	err := q.st.InTx(ctx, func(tx *store.Tx) error {
		up, err := q.st.CreateUploadTx(ctx, tx, name, body, by)
		if err != nil {
			return err
		}
		req, _ := json.Marshal(map[string]any{"upload_id": up.ID, "sha256": up.SHA256, "size": up.Size})
		id, err = q.st.CreateScanTx(ctx, tx, store.Scan{Kind: store.KindFirmware, Targets: name, Request: req,
			ShardsTotal: 1, CreatedBy: by})
		if err != nil {
			return err
		}
		_, err = q.client.InsertTx(ctx, tx.Tx, FirmwareArgs{ScanID: id, UploadID: up.ID, By: by}, nil)
		return err
	})
	if err != nil {
		return store.Scan{}, fmt.Errorf("submit firmware %s: %w", name, err)
	}
	return q.st.Scan(ctx, id)
}

// RunDueSchedules starts the scans of every schedule due at now; each
// schedule's next run moves in the same transaction, so concurrent callers
// never start one twice. It returns the scans started.
func (q *Queue) RunDueSchedules(ctx context.Context, now time.Time) ([]int64, error) {
	var started []int64
	type entry struct{ action, detail string }
	var audit []entry
	err := q.st.InTx(ctx, func(tx *store.Tx) error {
		started, audit = nil, nil
		due, err := q.st.DueSchedulesTx(ctx, tx, now)
		if err != nil {
			return err
		}
		for _, sc := range due {
			// A schedule runs with its creator's authority: not once
			// that account is disabled, deleted or no longer an operator.
			ok, err := q.st.MayStartScans(ctx, sc.CreatedBy)
			if err != nil {
				return err
			}
			if !ok {
				audit = append(audit, entry{"schedule-skipped", fmt.Sprintf("skipped schedule %d %q: its creator %s may no longer start scans", sc.ID, sc.Name, sc.CreatedBy)})
				continue
			}
			var req ScanRequest
			if err := json.Unmarshal(sc.Request, &req); err != nil {
				return fmt.Errorf("schedule %d: %w", sc.ID, err)
			}
			req.Targets = sc.Targets
			id, err := q.submitScanTx(ctx, tx, req, sc.CreatedBy, sc.ID)
			if err != nil {
				// A schedule that can no longer run (the policy changed)
				// must not block the others.
				q.cfg.Logger.Warn("scheduled scan refused", "schedule", sc.ID, "err", err)
				continue
			}
			if err := q.st.SetScheduleLastScanTx(ctx, tx, sc.ID, id); err != nil {
				return err
			}
			started = append(started, id)
			audit = append(audit, entry{"scan-start", fmt.Sprintf("scan %d of %s by schedule %d %q of %s", id, sc.Targets, sc.ID, sc.Name, sc.CreatedBy)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, e := range audit {
		if err := q.st.Audit(ctx, "scheduler", e.action, e.detail, ""); err != nil {
			q.cfg.Logger.Error("audit scheduled scan", "err", err)
		}
	}
	return started, nil
}

// CheckSchedule validates a schedule's request under the policy without
// queueing anything.
func (q *Queue) CheckSchedule(ctx context.Context, req ScanRequest) error {
	if err := req.validate(); err != nil {
		return RequestError{err}
	}
	if _, err := q.cfg.Scope.build(ctx, req); err != nil {
		return RequestError{err}
	}
	return nil
}

// record stores a job's reports and completes the job in one transaction.
func (q *Queue) record(ctx context.Context, row *rivertype.JobRow, sh store.Shard, reps []*finding.Report) error {
	bodies := make([][]byte, 0, len(reps))
	for _, rep := range reps {
		if q.cfg.ShowSecrets {
			rep.RevealSecrets()
		}
		var buf bytes.Buffer
		if err := report.WriteJSON(&buf, rep); err != nil {
			return err
		}
		bodies = append(bodies, buf.Bytes())
	}
	sh.Report, sh.More, sh.Worker, sh.Attempt = bodies[0], bodies[1:], q.cfg.Name, row.Attempt
	return q.st.InTx(ctx, func(tx *store.Tx) error {
		stored, _, err := q.st.RecordShardTx(ctx, tx, sh)
		if err != nil {
			return err
		}
		if !stored {
			q.cfg.Logger.Info("shard already stored by an earlier attempt", "scan", sh.ScanID, "shard", sh.Shard)
		}
		return q.complete(ctx, tx.Tx, row)
	})
}

type shardWorker struct {
	river.WorkerDefaults[ShardArgs]
	q *Queue
}

func (w *shardWorker) Work(ctx context.Context, job *river.Job[ShardArgs]) error {
	q, a := w.q, job.Args
	if err := q.st.MarkScanRunning(ctx, a.ScanID); err != nil {
		return err
	}
	// This worker applies the command line's scope rule itself: the
	// server's policy decided what may be asked, this decides what this
	// machine will send packets to.
	set, err := parseShard(ctx, a.Targets, q.cfg.AllowPublic)
	if err != nil {
		return q.giveUp(ctx, a.ScanID, fmt.Errorf("shard %d of scan %d: %w", a.Shard, a.ScanID, err))
	}
	// Live progress: the scanner counts hosts as they finish; a ticker
	// writes the count now and then (not per host: shards run in parallel
	// on many workers and the database is shared).
	var done atomic.Uint64
	sc, checksRun, err := a.Request.scanner(q.cfg.Version, func(d, _ uint64) { done.Store(d) })
	if err != nil {
		return q.giveUp(ctx, a.ScanID, fmt.Errorf("shard %d of scan %d: %w", a.Shard, a.ScanID, err))
	}
	q.cfg.Logger.Info("scanning shard", "scan", a.ScanID, "shard", a.Shard, "hosts", a.Hosts, "attempt", job.Attempt)
	stopProgress := q.reportProgress(ctx, a.ScanID, a.Shard, &done)
	rep, err := sc.Run(ctx, set)
	stopProgress()
	if err != nil {
		return fmt.Errorf("shard %d of scan %d: %w", a.Shard, a.ScanID, err)
	}
	reps, err := perDevice(q.cat, rep, checksRun)
	if err != nil {
		return fmt.Errorf("shard %d of scan %d: %w", a.Shard, a.ScanID, err)
	}
	return q.record(ctx, job.JobRow, store.Shard{ScanID: a.ScanID, Shard: a.Shard, Hosts: a.Hosts, By: a.By}, reps)
}

// reportProgress writes a running shard's finished hosts every
// ProgressInterval until the returned stop is called.
func (q *Queue) reportProgress(ctx context.Context, scanID int64, shard int, done *atomic.Uint64) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(q.cfg.ProgressInterval)
		defer t.Stop()
		last := uint64(0)
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if d := done.Load(); d != last {
					last = d
					if err := q.st.SetShardProgress(ctx, scanID, shard, int(d), q.cfg.Name); err != nil && ctx.Err() == nil {
						q.cfg.Logger.Warn("record progress", "scan", scanID, "shard", shard, "err", err)
					}
				}
			}
		}
	}()
	return func() { cancel(); <-finished }
}

type firmwareWorker struct {
	river.WorkerDefaults[FirmwareArgs]
	q *Queue
}

func (w *firmwareWorker) Work(ctx context.Context, job *river.Job[FirmwareArgs]) error {
	q, a := w.q, job.Args
	if err := q.st.MarkScanRunning(ctx, a.ScanID); err != nil {
		return err
	}
	up, body, err := q.st.UploadBody(ctx, a.UploadID)
	if err != nil {
		return q.giveUp(ctx, a.ScanID, err)
	}
	// The analysis reads a file; it lives only as long as the job.
	dir, err := os.MkdirTemp("", "iotcop-fw-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, filepath.Base(filepath.Clean("/"+up.Name)))
	if err := os.WriteFile(path, body, 0o600); err != nil {
		return err
	}
	started := time.Now().UTC()
	res, err := firmware.Analyze(ctx, path, firmware.Options{})
	if err != nil {
		return q.giveUp(ctx, a.ScanID, fmt.Errorf("analyse %s: %w", up.Name, err))
	}
	rep := &finding.Report{Schema: finding.SchemaV1, Tool: finding.Tool{Name: "iotcop", Version: q.cfg.Version},
		StartedAt: started, FinishedAt: time.Now().UTC()}
	rep.Findings = res.Findings
	summary := res.Summary()
	summary.Image = up.Name
	rep.Firmware = []finding.FirmwareImage{summary}
	// One image is one product: assessed as a whole.
	as, err := assess.Assess(q.cat, assess.FromReport(rep, assess.FirmwareChecks(false), nil))
	if err != nil {
		return fmt.Errorf("assess %s: %w", up.Name, err)
	}
	rep.Verdicts = as.Verdicts
	rep.Finalize()
	return q.record(ctx, job.JobRow, store.Shard{ScanID: a.ScanID, Shard: 0, By: a.By}, []*finding.Report{rep})
}

type tickWorker struct {
	river.WorkerDefaults[TickArgs]
	q *Queue
}

func (w *tickWorker) Work(ctx context.Context, _ *river.Job[TickArgs]) error {
	_, err := w.q.RunDueSchedules(ctx, time.Now().UTC())
	return err
}

// giveUp ends a job that no retry can help (a target this worker refuses,
// an image that cannot be read): its scan is marked failed with the reason
// and the job cancelled. River does not call the error handler for a
// cancelled job, so the scan is marked here.
func (q *Queue) giveUp(ctx context.Context, scanID int64, err error) error {
	if ferr := q.st.FailScan(context.WithoutCancel(ctx), scanID, err.Error()); ferr != nil {
		q.cfg.Logger.Error("record failed scan", "scan", scanID, "err", ferr)
	}
	return river.JobCancel(err)
}

// errorHandler marks a scan failed when one of its jobs gives up for good.
type errorHandler struct{ q *Queue }

func (h errorHandler) HandleError(ctx context.Context, job *rivertype.JobRow, err error) *river.ErrorHandlerResult {
	h.q.cfg.Logger.Warn("job failed", "kind", job.Kind, "id", job.ID, "attempt", job.Attempt, "err", err)
	if job.Attempt >= job.MaxAttempts {
		h.fail(ctx, job, err)
	}
	return nil
}

func (h errorHandler) HandlePanic(ctx context.Context, job *rivertype.JobRow, v any, trace string) *river.ErrorHandlerResult {
	h.q.cfg.Logger.Error("job panicked", "kind", job.Kind, "id", job.ID, "panic", v, "trace", trace)
	if job.Attempt >= job.MaxAttempts {
		h.fail(ctx, job, fmt.Errorf("panic: %v", v))
	}
	return nil
}

func (h errorHandler) fail(ctx context.Context, job *rivertype.JobRow, err error) {
	var a struct {
		ScanID int64 `json:"scan_id"`
	}
	if json.Unmarshal(job.EncodedArgs, &a) != nil || a.ScanID == 0 {
		return
	}
	if ferr := h.q.st.FailScan(context.WithoutCancel(ctx), a.ScanID, err.Error()); ferr != nil {
		h.q.cfg.Logger.Error("record failed scan", "scan", a.ScanID, "err", ferr)
	}
}
