package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Scan kinds.
const (
	KindScan     = "scan"
	KindFirmware = "firmware"
)

// Scan states.
const (
	ScanQueued  = "queued"
	ScanRunning = "running"
	ScanDone    = "done"
	ScanFailed  = "failed"
)

// Scan is one assessment started from the service: a live scan split into
// shards, or one firmware analysis (a single shard). Its counters are the
// live progress the dashboard and the API show.
type Scan struct {
	ID      int64  `json:"id"`
	Kind    string `json:"kind"`
	Targets string `json:"targets"`
	// Request is the request as submitted (ports, checks, …).
	Request     json.RawMessage `json:"request"`
	Status      string          `json:"status"`
	ShardsTotal int             `json:"shards_total"`
	ShardsDone  int             `json:"shards_done"`
	HostsTotal  int             `json:"hosts_total"`
	HostsDone   int             `json:"hosts_done"`
	Devices     int             `json:"devices"`
	Findings    int             `json:"findings"`
	Error       string          `json:"error,omitempty"`
	CreatedBy   string          `json:"created_by"`
	CreatedAt   time.Time       `json:"created_at"`
	FinishedAt  *time.Time      `json:"finished_at,omitempty"`
	ScheduleID  int64           `json:"schedule_id,omitempty"`
}

// scanColumns reads a scan; hosts_done adds the hosts that running shards
// have finished so far (shard_progress) to those of stored shards.
const scanColumns = `id, kind, targets, request, status, shards_total, shards_done, hosts_total,
	hosts_done + COALESCE((SELECT SUM(p.hosts_done) FROM shard_progress p WHERE p.scan_id = scans.id), 0),
	devices, findings, error, created_by, created_at, finished_at, schedule_id`

func scanScan(row interface{ Scan(...any) error }) (Scan, error) {
	var sc Scan
	var req, created, finished string
	err := row.Scan(&sc.ID, &sc.Kind, &sc.Targets, &req, &sc.Status, &sc.ShardsTotal, &sc.ShardsDone,
		&sc.HostsTotal, &sc.HostsDone, &sc.Devices, &sc.Findings, &sc.Error, &sc.CreatedBy, &created, &finished, &sc.ScheduleID)
	if err != nil {
		return Scan{}, err
	}
	sc.Request = json.RawMessage(req)
	sc.CreatedAt = parseTime(created)
	if finished != "" {
		t := parseTime(finished)
		sc.FinishedAt = &t
	}
	return sc, nil
}

// CreateScanTx records a new scan in tx (the transaction that also
// enqueues its jobs, so a scan never exists without its work or the
// reverse) and returns its id.
func (s *Store) CreateScanTx(ctx context.Context, tx *Tx, sc Scan) (int64, error) {
	if len(sc.Request) == 0 {
		sc.Request = json.RawMessage("{}")
	}
	var id int64
	err := tx.QueryRowContext(ctx, `INSERT INTO scans (kind, targets, request, status, shards_total, hosts_total,
		created_by, created_at, schedule_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		sc.Kind, sc.Targets, string(sc.Request), ScanQueued, sc.ShardsTotal, sc.HostsTotal,
		sc.CreatedBy, s.stamp(), sc.ScheduleID).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("record scan of %s: %w", sc.Targets, err)
	}
	return id, nil
}

// Scan returns one scan.
func (s *Store) Scan(ctx context.Context, id int64) (Scan, error) {
	sc, err := scanScan(s.db.QueryRowContext(ctx, "SELECT "+scanColumns+" FROM scans WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Scan{}, fmt.Errorf("scan %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Scan{}, fmt.Errorf("read scan %d: %w", id, err)
	}
	return sc, nil
}

// Scans lists the newest scans first (at most limit, default 100).
func (s *Store) Scans(ctx context.Context, limit int) ([]Scan, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+scanColumns+" FROM scans ORDER BY id DESC LIMIT ?", limit)
	if err != nil {
		return nil, fmt.Errorf("list scans: %w", err)
	}
	defer rows.Close()
	out := []Scan{}
	for rows.Next() {
		sc, err := scanScan(rows)
		if err != nil {
			return nil, fmt.Errorf("list scans: %w", err)
		}
		out = append(out, sc)
	}
	return out, rows.Err()
}

// MarkScanRunning moves a queued scan to running (its first shard began).
func (s *Store) MarkScanRunning(ctx context.Context, id int64) error {
	if _, err := s.db.ExecContext(ctx, "UPDATE scans SET status = ? WHERE id = ? AND status = ?", ScanRunning, id, ScanQueued); err != nil {
		return fmt.Errorf("mark scan %d running: %w", id, err)
	}
	return nil
}

// FailScan marks a scan failed with the reason (a shard that exhausted its
// attempts). Shards already stored stay stored.
func (s *Store) FailScan(ctx context.Context, id int64, reason string) error {
	if _, err := s.db.ExecContext(ctx, "UPDATE scans SET status = ?, error = ?, finished_at = ? WHERE id = ? AND status <> ?",
		ScanFailed, reason, s.stamp(), id, ScanDone); err != nil {
		return fmt.Errorf("mark scan %d failed: %w", id, err)
	}
	return nil
}

// Shard is the result of one finished shard of a scan.
type Shard struct {
	ScanID  int64
	Shard   int
	Hosts   int
	Worker  string
	Attempt int
	// Report is the shard's report (the JSON report contract).
	Report []byte
	// More are further reports of the same shard (one per device, say),
	// stored in the same transaction and counted with Report.
	More [][]byte
	// By is who the import is attributed to (the scan's creator).
	By string
}

// RecordShardTx stores a finished shard inside tx: its report is imported
// and the scan's progress advanced, exactly once. When the shard is
// already recorded (a retry of a shard whose first run committed) it
// stores nothing and returns stored=false.
func (s *Store) RecordShardTx(ctx context.Context, tx *Tx, sh Shard) (stored bool, res ImportResult, err error) {
	if tx.Dialect == Postgres {
		// Attempts of one shard queue up here until the first commits, so
		// the check below sees its row (on SQLite the write lock taken at
		// BEGIN does the same). A key collision only makes two unrelated
		// shards wait for each other.
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?)", sh.ScanID<<24^int64(sh.Shard)); err != nil {
			return false, res, fmt.Errorf("record shard %d of scan %d: lock: %w", sh.Shard, sh.ScanID, err)
		}
	}
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM scan_shards WHERE scan_id = ? AND shard = ?", sh.ScanID, sh.Shard).Scan(&n); err != nil {
		return false, res, fmt.Errorf("record shard %d of scan %d: %w", sh.Shard, sh.ScanID, err)
	}
	if n > 0 {
		return false, res, nil
	}
	var reportIDs []int64
	for _, body := range append([][]byte{sh.Report}, sh.More...) {
		one, err := s.importTx(ctx, tx, body, sh.By)
		if err != nil {
			return false, res, fmt.Errorf("record shard %d of scan %d: %w", sh.Shard, sh.ScanID, err)
		}
		if len(reportIDs) == 0 {
			res = one
		} else {
			res.Devices += one.Devices
			res.Findings += one.Findings
		}
		reportIDs = append(reportIDs, one.ReportID)
	}
	for _, id := range reportIDs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO scan_reports (scan_id, shard, report_id) VALUES (?, ?, ?)
			ON CONFLICT (scan_id, report_id) DO NOTHING`, sh.ScanID, sh.Shard, id); err != nil {
			return false, res, fmt.Errorf("record shard %d of scan %d: %w", sh.Shard, sh.ScanID, err)
		}
	}
	// The primary key refuses a second row even if two commits race.
	if _, err := tx.ExecContext(ctx, `INSERT INTO scan_shards (scan_id, shard, report_id, hosts, worker, attempt, finished_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, sh.ScanID, sh.Shard, res.ReportID, sh.Hosts, sh.Worker, sh.Attempt, s.stamp()); err != nil {
		return false, res, fmt.Errorf("record shard %d of scan %d: %w", sh.Shard, sh.ScanID, err)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM shard_progress WHERE scan_id = ? AND shard = ?", sh.ScanID, sh.Shard); err != nil {
		return false, res, fmt.Errorf("record shard %d of scan %d: %w", sh.Shard, sh.ScanID, err)
	}
	_, err = tx.ExecContext(ctx, `UPDATE scans SET
		shards_done = shards_done + 1, hosts_done = hosts_done + ?, devices = devices + ?, findings = findings + ?,
		status = CASE WHEN shards_done + 1 >= shards_total THEN ? WHEN status = ? THEN ? ELSE status END,
		finished_at = CASE WHEN shards_done + 1 >= shards_total THEN ? ELSE finished_at END
		WHERE id = ?`, sh.Hosts, res.Devices, res.Findings, ScanDone, ScanQueued, ScanRunning, s.stamp(), sh.ScanID)
	if err != nil {
		return false, res, fmt.Errorf("advance scan %d: %w", sh.ScanID, err)
	}
	return true, res, nil
}

// SetShardProgress records how many hosts a running shard has finished,
// for live progress. A shard already stored is left alone (a late report
// from an attempt presumed dead must not count its hosts twice).
func (s *Store) SetShardProgress(ctx context.Context, scanID int64, shard, hostsDone int, worker string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO shard_progress (scan_id, shard, hosts_done, worker, updated_at)
		SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM scan_shards WHERE scan_id = ? AND shard = ?)
		ON CONFLICT (scan_id, shard) DO UPDATE SET hosts_done = excluded.hosts_done, worker = excluded.worker, updated_at = excluded.updated_at`,
		scanID, shard, hostsDone, worker, s.stamp(), scanID, shard)
	if err != nil {
		return fmt.Errorf("record progress of shard %d of scan %d: %w", shard, scanID, err)
	}
	return nil
}

// ShardWorkers lists, for a scan, which worker stored each shard (for
// operations and the exactly-once tests).
func (s *Store) ShardWorkers(ctx context.Context, scanID int64) (map[int]string, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT shard, worker FROM scan_shards WHERE scan_id = ?", scanID)
	if err != nil {
		return nil, fmt.Errorf("list shards of scan %d: %w", scanID, err)
	}
	defer rows.Close()
	out := map[int]string{}
	for rows.Next() {
		var n int
		var w string
		if err := rows.Scan(&n, &w); err != nil {
			return nil, fmt.Errorf("list shards of scan %d: %w", scanID, err)
		}
		out[n] = w
	}
	return out, rows.Err()
}

// MaxUploadBytes bounds a firmware image uploaded to the service.
const MaxUploadBytes = 256 << 20

// Upload is a stored firmware image.
type Upload struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	SHA256    string    `json:"sha256"`
	Size      int64     `json:"size"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// CreateUploadTx stores a firmware image in tx, so that workers on other
// machines can read it.
func (s *Store) CreateUploadTx(ctx context.Context, tx *Tx, name string, body []byte, by string) (Upload, error) {
	if len(body) > MaxUploadBytes {
		return Upload{}, fmt.Errorf("store firmware %s: larger than %d bytes", name, MaxUploadBytes)
	}
	if body == nil {
		body = []byte{} // an empty image, not a NULL the schema refuses
	}
	sum := sha256.Sum256(body)
	u := Upload{Name: name, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(body)), CreatedBy: by, CreatedAt: s.now()}
	err := tx.QueryRowContext(ctx, `INSERT INTO uploads (name, sha256, size, body, created_by, created_at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`, u.Name, u.SHA256, u.Size, body, by, formatTime(u.CreatedAt)).Scan(&u.ID)
	if err != nil {
		return Upload{}, fmt.Errorf("store firmware %s: %w", name, err)
	}
	return u, nil
}

// UploadBody returns a stored firmware image.
func (s *Store) UploadBody(ctx context.Context, id int64) (Upload, []byte, error) {
	var u Upload
	var body []byte
	var at string
	err := s.db.QueryRowContext(ctx, "SELECT id, name, sha256, size, body, created_by, created_at FROM uploads WHERE id = ?", id).
		Scan(&u.ID, &u.Name, &u.SHA256, &u.Size, &body, &u.CreatedBy, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return Upload{}, nil, fmt.Errorf("firmware upload %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Upload{}, nil, fmt.Errorf("read firmware upload %d: %w", id, err)
	}
	u.CreatedAt = parseTime(at)
	return u, body, nil
}

// Schedule repeats a scan request every Every.
type Schedule struct {
	ID        int64           `json:"id"`
	Name      string          `json:"name"`
	Targets   string          `json:"targets"`
	Request   json.RawMessage `json:"request"`
	Every     time.Duration   `json:"every_seconds"`
	NextRun   time.Time       `json:"next_run"`
	LastScan  int64           `json:"last_scan,omitempty"`
	CreatedBy string          `json:"created_by"`
	CreatedAt time.Time       `json:"created_at"`
}

// MarshalJSON writes Every as whole seconds.
func (sc Schedule) MarshalJSON() ([]byte, error) {
	type plain Schedule
	return json.Marshal(struct {
		plain
		Every int64 `json:"every_seconds"`
	}{plain(sc), int64(sc.Every / time.Second)})
}

// MinScheduleInterval is the shortest rescan interval a schedule may have.
const MinScheduleInterval = time.Minute

// CreateSchedule stores a schedule; its first run is one interval from now
// unless NextRun is set.
func (s *Store) CreateSchedule(ctx context.Context, sc Schedule) (Schedule, error) {
	if sc.Every < MinScheduleInterval {
		return Schedule{}, fmt.Errorf("schedule %q: interval %s is shorter than %s", sc.Name, sc.Every, MinScheduleInterval)
	}
	if len(sc.Request) == 0 {
		sc.Request = json.RawMessage("{}")
	}
	sc.CreatedAt = s.now()
	if sc.NextRun.IsZero() {
		sc.NextRun = sc.CreatedAt.Add(sc.Every)
	}
	err := s.db.QueryRowContext(ctx, `INSERT INTO schedules (name, targets, request, every_seconds, next_run, created_by, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, sc.Name, sc.Targets, string(sc.Request), int64(sc.Every/time.Second),
		formatTime(sc.NextRun), sc.CreatedBy, formatTime(sc.CreatedAt)).Scan(&sc.ID)
	if err != nil {
		return Schedule{}, fmt.Errorf("create schedule %q: %w", sc.Name, err)
	}
	return sc, nil
}

// Schedules lists the schedules by id.
func (s *Store) Schedules(ctx context.Context) ([]Schedule, error) {
	return s.schedules(ctx, s.db.QueryContext, "")
}

func (s *Store) schedules(ctx context.Context, query func(context.Context, string, ...any) (*sql.Rows, error), where string, args ...any) ([]Schedule, error) {
	rows, err := query(ctx, `SELECT id, name, targets, request, every_seconds, next_run, last_scan, created_by, created_at
		FROM schedules `+where+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	defer rows.Close()
	out := []Schedule{}
	for rows.Next() {
		var sc Schedule
		var req, next, created string
		var every int64
		if err := rows.Scan(&sc.ID, &sc.Name, &sc.Targets, &req, &every, &next, &sc.LastScan, &sc.CreatedBy, &created); err != nil {
			return nil, fmt.Errorf("list schedules: %w", err)
		}
		sc.Request, sc.Every = json.RawMessage(req), time.Duration(every)*time.Second
		sc.NextRun, sc.CreatedAt = parseTime(next), parseTime(created)
		out = append(out, sc)
	}
	return out, rows.Err()
}

// DeleteSchedule removes a schedule.
func (s *Store) DeleteSchedule(ctx context.Context, id int64) error {
	r, err := s.db.ExecContext(ctx, "DELETE FROM schedules WHERE id = ?", id)
	if err != nil {
		return fmt.Errorf("delete schedule %d: %w", id, err)
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return fmt.Errorf("schedule %d: %w", id, ErrNotFound)
	}
	return nil
}

// DueSchedulesTx returns the schedules due at now and moves each one's
// next run past now, in tx: whoever commits the transaction that starts
// their scans owns this run, so two servers never start it twice.
func (s *Store) DueSchedulesTx(ctx context.Context, tx *Tx, now time.Time) ([]Schedule, error) {
	due, err := s.schedules(ctx, tx.QueryContext, "WHERE next_run <= ?", formatTime(now))
	if err != nil {
		return nil, err
	}
	for i := range due {
		next := due[i].NextRun
		for !next.After(now) {
			next = next.Add(due[i].Every)
		}
		due[i].NextRun = next
		if _, err := tx.ExecContext(ctx, "UPDATE schedules SET next_run = ? WHERE id = ?", formatTime(next), due[i].ID); err != nil {
			return nil, fmt.Errorf("advance schedule %d: %w", due[i].ID, err)
		}
	}
	return due, nil
}

// SetScheduleLastScan records the scan a schedule's run started.
func (s *Store) SetScheduleLastScanTx(ctx context.Context, tx *Tx, scheduleID, scanID int64) error {
	if _, err := tx.ExecContext(ctx, "UPDATE schedules SET last_scan = ? WHERE id = ?", scanID, scheduleID); err != nil {
		return fmt.Errorf("record scan of schedule %d: %w", scheduleID, err)
	}
	return nil
}
