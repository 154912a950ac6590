package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// createScan records a scan in its own transaction.
func createScan(t *testing.T, s *Store, sc Scan) int64 {
	t.Helper()
	var id int64
	err := s.InTx(context.Background(), func(tx *Tx) error {
		var err error
		id, err = s.CreateScanTx(context.Background(), tx, sc)
		return err
	})
	if err != nil {
		t.Fatalf("create scan: %v", err)
	}
	return id
}

// recordShard stores a shard in its own transaction, as a worker does.
func recordShard(s *Store, sh Shard) (stored bool, res ImportResult, err error) {
	err = s.InTx(context.Background(), func(tx *Tx) error {
		var err error
		stored, res, err = s.RecordShardTx(context.Background(), tx, sh)
		return err
	})
	return stored, res, err
}

// scanOf reads a scan, failing the test when it cannot.
func scanOf(t *testing.T, s *Store, id int64) Scan {
	t.Helper()
	sc, err := s.Scan(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// rows counts the rows of each table the import and shard paths write.
type rows struct{ Reports, Devices, DeviceReports, Findings, Verdicts, Shards int }

func countRows(t *testing.T, s *Store) rows {
	t.Helper()
	var r rows
	err := s.DB().QueryRow(`SELECT (SELECT COUNT(*) FROM reports), (SELECT COUNT(*) FROM devices),
		(SELECT COUNT(*) FROM device_reports), (SELECT COUNT(*) FROM findings), (SELECT COUNT(*) FROM verdicts),
		(SELECT COUNT(*) FROM scan_shards)`).Scan(&r.Reports, &r.Devices, &r.DeviceReports, &r.Findings, &r.Verdicts, &r.Shards)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// progress is the part of a scan that RecordShardTx advances.
type progress struct {
	Status                                   string
	ShardsDone, HostsDone, Devices, Findings int
	Finished                                 bool
}

func progressOf(sc Scan) progress {
	return progress{sc.Status, sc.ShardsDone, sc.HostsDone, sc.Devices, sc.Findings, sc.FinishedAt != nil}
}

func TestScanCreateAndList(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		s.now = func() time.Time { return t0 }
		req := json.RawMessage(`{"ports":[23,80],"checks":["default-credentials"]}`)
		first := createScan(t, s, Scan{Kind: KindScan, Targets: "127.77.1.0/30", Request: req,
			ShardsTotal: 2, HostsTotal: 4, CreatedBy: "alice", ScheduleID: 7})
		second := createScan(t, s, Scan{Kind: KindFirmware, Targets: "cam-1.0.4.bin", ShardsTotal: 1, CreatedBy: "bob"})
		if second <= first {
			t.Fatalf("ids %d then %d: want increasing", first, second)
		}

		sc := scanOf(t, s, first)
		want := Scan{ID: first, Kind: KindScan, Targets: "127.77.1.0/30", Request: req, Status: ScanQueued,
			ShardsTotal: 2, HostsTotal: 4, CreatedBy: "alice", CreatedAt: t0, ScheduleID: 7}
		if !bytes.Equal(sc.Request, want.Request) || !sc.CreatedAt.Equal(t0) {
			t.Fatalf("scan request %s at %v, want %s at %v", sc.Request, sc.CreatedAt, want.Request, t0)
		}
		sc.Request, want.Request = nil, nil
		sc.CreatedAt, want.CreatedAt = time.Time{}, time.Time{}
		if sc.FinishedAt != nil || sc.Error != "" {
			t.Fatalf("new scan = %+v: want not finished, no error", sc)
		}
		if sc.ID != want.ID || sc.Kind != want.Kind || sc.Targets != want.Targets || sc.Status != want.Status ||
			sc.ShardsTotal != want.ShardsTotal || sc.HostsTotal != want.HostsTotal || sc.CreatedBy != want.CreatedBy ||
			sc.ScheduleID != want.ScheduleID || sc.ShardsDone != 0 || sc.HostsDone != 0 || sc.Devices != 0 || sc.Findings != 0 {
			t.Fatalf("Scan(%d) = %+v, want %+v", first, sc, want)
		}
		if fw := scanOf(t, s, second); string(fw.Request) != "{}" || fw.Kind != KindFirmware {
			t.Fatalf("firmware scan = %+v: want kind firmware, request {}", fw)
		}

		list, err := s.Scans(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].ID != second || list[1].ID != first {
			t.Fatalf("Scans = %+v, want ids [%d %d] (newest first)", list, second, first)
		}
		if list, err := s.Scans(ctx, 1); err != nil || len(list) != 1 || list[0].ID != second {
			t.Fatalf("Scans(limit 1) = %+v, %v", list, err)
		}

		if _, err := s.Scan(ctx, second+100); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Scan(unknown) error = %v, want ErrNotFound", err)
		}
		// The schema refuses an unknown kind, and the transaction takes
		// nothing with it.
		err = s.InTx(ctx, func(tx *Tx) error {
			_, err := s.CreateScanTx(ctx, tx, Scan{Kind: "teleport", Targets: "x", ShardsTotal: 1, CreatedBy: "x"})
			return err
		})
		if err == nil {
			t.Fatal("scan of unknown kind stored")
		}
		if list, _ := s.Scans(ctx, 0); len(list) != 2 {
			t.Fatalf("after a refused scan, %d scans", len(list))
		}
	})
}

// TestRecordShard follows a two-shard scan from queued to done, with a
// retried shard in between that must store nothing.
func TestRecordShard(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		const a, b, c = "127.77.2.1", "127.77.2.2", "127.77.2.3"
		id := createScan(t, s, Scan{Kind: KindScan, Targets: "127.77.2.0/30", ShardsTotal: 2, HostsTotal: 4, CreatedBy: "alice"})

		if err := s.MarkScanRunning(ctx, id); err != nil {
			t.Fatal(err)
		}
		if got := scanOf(t, s, id).Status; got != ScanRunning {
			t.Fatalf("after MarkScanRunning status = %q", got)
		}
		if err := s.MarkScanRunning(ctx, id); err != nil {
			t.Fatalf("MarkScanRunning twice: %v", err)
		}

		shard0 := Shard{ScanID: id, Shard: 0, Hosts: 2, Worker: "w1", Attempt: 1, By: "alice",
			Report: body(t, t0, nil, defCreds(a), cleartext(a), cleartext(b))}
		stored, res, err := recordShard(s, shard0)
		if err != nil || !stored || res.Duplicate || res.Devices != 2 || res.Findings != 3 {
			t.Fatalf("first RecordShardTx = %v, %+v, %v; want stored, 2 devices, 3 findings", stored, res, err)
		}
		want := progress{Status: ScanRunning, ShardsDone: 1, HostsDone: 2, Devices: 2, Findings: 3}
		if got := progressOf(scanOf(t, s, id)); got != want {
			t.Fatalf("after shard 0: %+v, want %+v", got, want)
		}
		var reportID int64
		if err := s.DB().QueryRow("SELECT report_id FROM scan_shards WHERE scan_id = ? AND shard = ?", id, 0).Scan(&reportID); err != nil || reportID != res.ReportID {
			t.Fatalf("scan_shards.report_id = %d, %v; want %d", reportID, err, res.ReportID)
		}
		before := countRows(t, s)
		if (before != rows{Reports: 1, Devices: 2, DeviceReports: 2, Findings: 3, Shards: 1}) {
			t.Fatalf("rows after shard 0 = %+v", before)
		}

		// Retries of shard 0: the same report again, and a fresh run of
		// the shard (a different report) by another worker.
		retries := []struct {
			name string
			sh   Shard
		}{
			{"same report", shard0},
			{"new report", Shard{ScanID: id, Shard: 0, Hosts: 2, Worker: "w2", Attempt: 2, By: "alice",
				Report: body(t, t0.Add(time.Minute), nil, defCreds(a), defCreds(b))}},
		}
		for _, r := range retries {
			stored, res, err := recordShard(s, r.sh)
			if err != nil || stored {
				t.Fatalf("retry (%s) = %v, %+v, %v; want stored=false and no error", r.name, stored, res, err)
			}
			if got := countRows(t, s); got != before {
				t.Fatalf("retry (%s) changed rows: %+v, was %+v", r.name, got, before)
			}
			if got := progressOf(scanOf(t, s, id)); got != want {
				t.Fatalf("retry (%s) changed progress: %+v, want %+v", r.name, got, want)
			}
		}

		stored, res, err = recordShard(s, Shard{ScanID: id, Shard: 1, Hosts: 2, Worker: "w2", Attempt: 1, By: "alice",
			Report: body(t, t0, nil, cleartext(c))})
		if err != nil || !stored || res.Devices != 1 || res.Findings != 1 {
			t.Fatalf("shard 1 = %v, %+v, %v", stored, res, err)
		}
		done := scanOf(t, s, id)
		want = progress{Status: ScanDone, ShardsDone: 2, HostsDone: 4, Devices: 3, Findings: 4, Finished: true}
		if got := progressOf(done); got != want {
			t.Fatalf("after the last shard: %+v, want %+v", got, want)
		}
		if done.FinishedAt.Before(done.CreatedAt) {
			t.Fatalf("finished %v before created %v", done.FinishedAt, done.CreatedAt)
		}
		workers, err := s.ShardWorkers(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(workers) != 2 || workers[0] != "w1" || workers[1] != "w2" {
			t.Fatalf("ShardWorkers = %v, want map[0:w1 1:w2]", workers)
		}
		if w, err := s.ShardWorkers(ctx, id+100); err != nil || len(w) != 0 {
			t.Fatalf("ShardWorkers(unknown scan) = %v, %v; want empty", w, err)
		}

		// A finished scan does not fail afterwards, nor go back to running.
		if err := s.FailScan(ctx, id, "late failure"); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkScanRunning(ctx, id); err != nil {
			t.Fatal(err)
		}
		if sc := scanOf(t, s, id); sc.Status != ScanDone || sc.Error != "" {
			t.Fatalf("done scan after FailScan/MarkScanRunning = %q (%q)", sc.Status, sc.Error)
		}
	})
}

// TestRecordShardStatus checks the status a recorded shard leaves: the
// first shard moves a queued scan to running, the last one to done.
func TestRecordShardStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		shards   int // shards_total
		recorded int // shards recorded, without MarkScanRunning
		want     string
	}{
		{"none recorded", 2, 0, ScanQueued},
		{"first of two", 2, 1, ScanRunning},
		{"both of two", 2, 2, ScanDone},
		{"single shard", 1, 1, ScanDone},
	}
	eachBackend(t, func(t *testing.T, s *Store) {
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				id := createScan(t, s, Scan{Kind: KindScan, Targets: tc.name, ShardsTotal: tc.shards, CreatedBy: "x"})
				for n := range tc.recorded {
					// A distinct report per shard: host 127.77.3.<test><shard>.
					host := "127.77.3." + string(rune('1'+i)) + string(rune('0'+n))
					if stored, _, err := recordShard(s, Shard{ScanID: id, Shard: n, Hosts: 1, Worker: "w", Attempt: 1, By: "x",
						Report: body(t, t0, nil, cleartext(host))}); err != nil || !stored {
						t.Fatalf("shard %d: stored=%v, %v", n, stored, err)
					}
				}
				sc := scanOf(t, s, id)
				if sc.Status != tc.want || (sc.FinishedAt != nil) != (tc.want == ScanDone) {
					t.Fatalf("status %q, finished %v; want %q", sc.Status, sc.FinishedAt, tc.want)
				}
			})
		}
	})
}

func TestRecordShardRefused(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		id := createScan(t, s, Scan{Kind: KindScan, Targets: "127.77.4.0/31", ShardsTotal: 2, CreatedBy: "x"})
		tests := []struct {
			name    string
			sh      Shard
			invalid bool // refused as ErrInvalidReport
		}{
			{"invalid report", Shard{ScanID: id, Shard: 0, Worker: "w", Report: []byte(`{"schema":"nope"}`)}, true},
			{"unknown scan", Shard{ScanID: id + 100, Shard: 0, Worker: "w", Report: body(t, t0, nil, cleartext("127.77.4.1"))}, false},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				stored, _, err := recordShard(s, tc.sh)
				if err == nil || stored {
					t.Fatalf("RecordShardTx = %v, %v; want an error", stored, err)
				}
				if errors.Is(err, ErrInvalidReport) != tc.invalid {
					t.Fatalf("error %v: ErrInvalidReport = %v, want %v", err, !tc.invalid, tc.invalid)
				}
				if got := countRows(t, s); got != (rows{}) {
					t.Fatalf("refused shard left rows: %+v", got)
				}
			})
		}
		if got := progressOf(scanOf(t, s, id)); got != (progress{Status: ScanQueued}) {
			t.Fatalf("refused shards moved the scan: %+v", got)
		}
	})
}

func TestFailScan(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		id := createScan(t, s, Scan{Kind: KindScan, Targets: "127.77.5.0/30", ShardsTotal: 3, HostsTotal: 3, CreatedBy: "x"})
		other := createScan(t, s, Scan{Kind: KindScan, Targets: "127.77.6.0/30", ShardsTotal: 1, CreatedBy: "x"})
		if stored, _, err := recordShard(s, Shard{ScanID: id, Shard: 0, Hosts: 1, Worker: "w", Attempt: 1, By: "x",
			Report: body(t, t0, nil, cleartext("127.77.5.1"))}); err != nil || !stored {
			t.Fatalf("shard 0: %v, %v", stored, err)
		}
		const reason = "shard 1: worker lost after 3 attempts"
		if err := s.FailScan(ctx, id, reason); err != nil {
			t.Fatal(err)
		}
		sc := scanOf(t, s, id)
		if sc.Status != ScanFailed || sc.Error != reason || sc.FinishedAt == nil {
			t.Fatalf("failed scan = %q, %q, finished %v", sc.Status, sc.Error, sc.FinishedAt)
		}
		// What was stored stays stored; other scans are untouched.
		if sc.ShardsDone != 1 || sc.Findings != 1 || countRows(t, s).Shards != 1 {
			t.Fatalf("failing dropped stored work: %+v", sc)
		}
		if o := scanOf(t, s, other); o.Status != ScanQueued || o.Error != "" {
			t.Fatalf("other scan = %q, %q", o.Status, o.Error)
		}
		if err := s.MarkScanRunning(ctx, id); err != nil {
			t.Fatal(err)
		}
		if got := scanOf(t, s, id).Status; got != ScanFailed {
			t.Fatalf("MarkScanRunning revived a failed scan: %q", got)
		}
	})
}

// TestRecordShardConcurrent has eight workers store the same shard at the
// same moment (a job presumed dead and retried while its first run still
// commits). Exactly one stores it; every other one stores nothing, or
// fails on the unique key and rolls back.
func TestRecordShardConcurrent(t *testing.T) {
	t.Parallel()
	const workers = 8
	tests := []struct {
		name       string
		sameReport bool // every worker made the identical report
	}{
		{"same report", true},
		{"different reports", false},
	}
	eachBackend(t, func(t *testing.T, s *Store) {
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				id := createScan(t, s, Scan{Kind: KindScan, Targets: tc.name, ShardsTotal: 2, HostsTotal: 4, CreatedBy: "x"})
				host := "127.77.7." + string(rune('1'+i))
				before := countRows(t, s)
				reports := make([][]byte, workers)
				for w := range reports {
					start := t0
					if !tc.sameReport {
						start = t0.Add(time.Duration(w) * time.Second)
					}
					reports[w] = body(t, start, nil, defCreds(host), cleartext(host))
				}
				type outcome struct {
					stored bool
					res    ImportResult
					err    error
				}
				out := make([]outcome, workers)
				ready := make(chan struct{})
				var wg sync.WaitGroup
				for w := range workers {
					wg.Go(func() {
						<-ready
						stored, res, err := recordShard(s, Shard{ScanID: id, Shard: 0, Hosts: 2,
							Worker: "w" + string(rune('0'+w)), Attempt: 1, By: "x", Report: reports[w]})
						out[w] = outcome{stored, res, err}
					})
				}
				close(ready)
				wg.Wait()

				winner := -1
				for w, o := range out {
					switch {
					case o.stored && o.err == nil:
						if winner >= 0 {
							t.Errorf("workers %d and %d both stored shard 0", winner, w)
						}
						winner = w
					case o.err != nil:
						// Attempts of one shard wait for each other: the
						// losers see the winner's row, never a key error.
						t.Errorf("worker %d: %v (want stored=false)", w, o.err)
					}
				}
				if winner < 0 {
					t.Fatalf("no worker stored the shard: %+v", out)
				}
				skipped, refused := 0, 0
				for _, o := range out {
					switch {
					case o.err != nil:
						refused++
					case !o.stored:
						skipped++
					}
				}
				t.Logf("%d workers: 1 stored, %d found it stored, %d refused by the unique key", workers, skipped, refused)
				var n int
				var reportID int64
				var worker string
				if err := s.DB().QueryRow("SELECT COUNT(*), MIN(report_id), MIN(worker) FROM scan_shards WHERE scan_id = ? AND shard = ?", id, 0).
					Scan(&n, &reportID, &worker); err != nil {
					t.Fatal(err)
				}
				if n != 1 || reportID != out[winner].res.ReportID || worker != "w"+string(rune('0'+winner)) {
					t.Fatalf("scan_shards: %d rows, report %d by %s; want 1 row, report %d by w%d", n, reportID, worker, out[winner].res.ReportID, winner)
				}
				got := countRows(t, s)
				// One report with one device, two findings.
				want := before
				want.Reports++
				want.DeviceReports++
				want.Findings += 2
				want.Shards++
				if got.Devices != before.Devices+1 {
					t.Errorf("devices %d, want %d", got.Devices, before.Devices+1)
				}
				got.Devices = want.Devices
				if got != want {
					t.Errorf("rows = %+v, want %+v", got, want)
				}
				if p := progressOf(scanOf(t, s, id)); p != (progress{Status: ScanRunning, ShardsDone: 1, HostsDone: 2, Devices: 1, Findings: 2}) {
					t.Errorf("scan progress = %+v: counted more than once", p)
				}
			})
		}
	})
}

func TestUploadRoundTrip(t *testing.T) {
	t.Parallel()
	// Every byte value, NULs and invalid UTF-8 included, and enough of
	// them to cross any page or packet size.
	big := make([]byte, 1<<20+7)
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	copy(big, []byte{0, 0xff, 0xfe, '\'', '?', '\\', 0})
	tests := []struct {
		name string
		body []byte
	}{
		{"binary", big},
		{"empty", []byte{}},
		{"nil", nil},
	}
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		s.now = func() time.Time { return t0 }
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				var up Upload
				err := s.InTx(ctx, func(tx *Tx) error {
					var err error
					up, err = s.CreateUploadTx(ctx, tx, "cam-"+tc.name+".bin", tc.body, "alice")
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				sum := sha256.Sum256(tc.body)
				if up.ID == 0 || up.SHA256 != hex.EncodeToString(sum[:]) || up.Size != int64(len(tc.body)) {
					t.Fatalf("CreateUploadTx = %+v; want size %d, sha256 %x", up, len(tc.body), sum)
				}
				got, b, err := s.UploadBody(ctx, up.ID)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b, tc.body) {
					t.Fatalf("body read back: %d bytes, differs from the %d stored", len(b), len(tc.body))
				}
				if got.Name != up.Name || got.SHA256 != up.SHA256 || got.Size != up.Size || got.CreatedBy != "alice" ||
					got.ID != up.ID || !got.CreatedAt.Equal(t0) {
					t.Fatalf("UploadBody = %+v, want %+v", got, up)
				}
			})
		}
		if _, _, err := s.UploadBody(ctx, 1<<40); !errors.Is(err, ErrNotFound) {
			t.Fatalf("UploadBody(unknown) error = %v, want ErrNotFound", err)
		}
		// An upload rolled back with its transaction is gone.
		var id int64
		_ = s.InTx(ctx, func(tx *Tx) error {
			up, err := s.CreateUploadTx(ctx, tx, "rolled-back.bin", []byte("x"), "alice")
			id = up.ID
			if err != nil {
				return err
			}
			return errors.New("abort")
		})
		if _, _, err := s.UploadBody(ctx, id); id == 0 || !errors.Is(err, ErrNotFound) {
			t.Fatalf("rolled-back upload %d: %v, want ErrNotFound", id, err)
		}
	})
}

func TestSchedules(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		s.now = func() time.Time { return t0 }

		for _, every := range []time.Duration{0, -time.Hour, 59 * time.Second, MinScheduleInterval - time.Nanosecond} {
			if _, err := s.CreateSchedule(ctx, Schedule{Name: "too often", Targets: "127.0.0.1", Every: every, CreatedBy: "x"}); err == nil {
				t.Fatalf("schedule every %v accepted", every)
			}
		}
		if list, err := s.Schedules(ctx); err != nil || len(list) != 0 {
			t.Fatalf("refused schedules stored: %+v, %v", list, err)
		}

		mk := func(sc Schedule) Schedule {
			t.Helper()
			got, err := s.CreateSchedule(ctx, sc)
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		minute := mk(Schedule{Name: "shortest", Targets: "127.77.8.4", Every: MinScheduleInterval, NextRun: t0.Add(3 * time.Hour), CreatedBy: "x"})
		hourly := mk(Schedule{Name: "hourly", Targets: "127.77.8.0/30", Request: json.RawMessage(`{"ports":[23]}`), Every: time.Hour, CreatedBy: "alice"})
		overdue := mk(Schedule{Name: "overdue", Targets: "127.77.8.1", Every: 15 * time.Minute, NextRun: t0.Add(-10 * time.Minute), CreatedBy: "bob"})
		daily := mk(Schedule{Name: "daily", Targets: "127.77.8.2", Every: 24 * time.Hour, NextRun: t0.Add(2 * time.Hour), CreatedBy: "bob"})
		if !hourly.NextRun.Equal(t0.Add(time.Hour)) {
			t.Fatalf("first run without NextRun = %v, want one interval from now (%v)", hourly.NextRun, t0.Add(time.Hour))
		}

		list, err := s.Schedules(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 4 || list[0].ID != minute.ID || list[1].ID != hourly.ID || list[2].ID != overdue.ID || list[3].ID != daily.ID {
			t.Fatalf("Schedules = %+v, want ids in creation order", list)
		}
		if h := list[1]; h.Name != "hourly" || h.Targets != hourly.Targets || string(h.Request) != `{"ports":[23]}` ||
			h.Every != time.Hour || !h.NextRun.Equal(hourly.NextRun) || h.CreatedBy != "alice" || !h.CreatedAt.Equal(t0) || h.LastScan != 0 {
			t.Fatalf("stored schedule = %+v, want %+v", h, hourly)
		}
		if string(list[2].Request) != "{}" {
			t.Fatalf("default request = %s, want {}", list[2].Request)
		}

		due := func(now time.Time) []Schedule {
			t.Helper()
			var got []Schedule
			err := s.InTx(ctx, func(tx *Tx) error {
				var err error
				got, err = s.DueSchedulesTx(ctx, tx, now)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		nextRuns := func() map[int64]time.Time {
			t.Helper()
			list, err := s.Schedules(ctx)
			if err != nil {
				t.Fatal(err)
			}
			m := map[int64]time.Time{}
			for _, sc := range list {
				m[sc.ID] = sc.NextRun
			}
			return m
		}

		// A run whose transaction rolls back is not taken: still due.
		err = s.InTx(ctx, func(tx *Tx) error {
			got, err := s.DueSchedulesTx(ctx, tx, t0)
			if err != nil || len(got) != 1 {
				t.Errorf("due in the rolled-back transaction = %+v, %v", got, err)
			}
			return errors.New("abort")
		})
		if err == nil {
			t.Fatal("aborted transaction committed")
		}

		steps := []struct {
			name string
			now  time.Time
			want map[int64]time.Time // id -> next run after the call
		}{
			{"overdue one at t0", t0, map[int64]time.Time{overdue.ID: t0.Add(5 * time.Minute)}},
			{"same time again", t0, nil},
			{"next run is due at its exact time", t0.Add(time.Hour), map[int64]time.Time{
				hourly.ID: t0.Add(2 * time.Hour), overdue.ID: t0.Add(time.Hour + 5*time.Minute)}},
			{"missed runs are skipped, not repeated", t0.Add(10*time.Hour + 30*time.Second), map[int64]time.Time{
				minute.ID: t0.Add(10*time.Hour + time.Minute), hourly.ID: t0.Add(11 * time.Hour),
				overdue.ID: t0.Add(10*time.Hour + 5*time.Minute), daily.ID: t0.Add(26 * time.Hour)}},
			{"nothing due before the earliest", t0.Add(10*time.Hour + 59*time.Second), nil},
		}
		for _, st := range steps {
			beforeRuns := nextRuns()
			got := due(st.now)
			if len(got) != len(st.want) {
				t.Fatalf("%s: due = %+v, want %d schedules", st.name, got, len(st.want))
			}
			for _, sc := range got {
				next, ok := st.want[sc.ID]
				if !ok || !sc.NextRun.Equal(next) {
					t.Fatalf("%s: schedule %d (%s) due with next run %v; want due %v, next %v", st.name, sc.ID, sc.Name, sc.NextRun, ok, next)
				}
			}
			for id, next := range nextRuns() {
				want, ok := st.want[id]
				if !ok {
					want = beforeRuns[id]
				}
				if !next.Equal(want) {
					t.Fatalf("%s: stored next run of %d = %v, want %v", st.name, id, next, want)
				}
				if !next.After(st.now) {
					t.Fatalf("%s: schedule %d still due at %v after the call", st.name, id, next)
				}
			}
		}

		scan := createScan(t, s, Scan{Kind: KindScan, Targets: hourly.Targets, ShardsTotal: 1, CreatedBy: "scheduler", ScheduleID: hourly.ID})
		if err := s.InTx(ctx, func(tx *Tx) error { return s.SetScheduleLastScanTx(ctx, tx, hourly.ID, scan) }); err != nil {
			t.Fatal(err)
		}
		if list, _ := s.Schedules(ctx); list[1].LastScan != scan {
			t.Fatalf("last scan = %d, want %d", list[1].LastScan, scan)
		}

		if err := s.DeleteSchedule(ctx, hourly.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteSchedule(ctx, hourly.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second DeleteSchedule error = %v, want ErrNotFound", err)
		}
		list, err = s.Schedules(ctx)
		if err != nil || len(list) != 3 {
			t.Fatalf("after delete: %+v, %v", list, err)
		}
		for _, sc := range list {
			if sc.ID == hourly.ID {
				t.Fatalf("deleted schedule %d still listed", sc.ID)
			}
		}
	})
}

func TestFindingsOfScan(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		a := createScan(t, s, Scan{Kind: KindScan, Targets: "127.0.0.5-6", ShardsTotal: 1, HostsTotal: 2, CreatedBy: "x"})
		b := createScan(t, s, Scan{Kind: KindScan, Targets: "127.0.0.5", ShardsTotal: 1, HostsTotal: 1, CreatedBy: "x"})
		if _, _, err := recordShard(s, Shard{ScanID: a, Shard: 0, Hosts: 2, Worker: "w", Attempt: 1, By: "x",
			Report: body(t, t0, nil, cleartext("127.0.0.5"), cleartext("127.0.0.6"))}); err != nil {
			t.Fatal(err)
		}
		// A later scan of one of the devices, which no longer has the flaw
		// on one port but a new one on another.
		fixed := cleartext("127.0.0.5")
		fixed.Port, fixed.Protocol, fixed.Title = 21, "ftp", "ftp is cleartext"
		if _, _, err := recordShard(s, Shard{ScanID: b, Shard: 0, Hosts: 1, Worker: "w", Attempt: 1, By: "x",
			Report: body(t, t0.Add(time.Hour), nil, fixed)}); err != nil {
			t.Fatal(err)
		}
		got := func(scan int64) string {
			fs, err := s.Findings(ctx, FindingFilter{Scan: scan})
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, f := range fs {
				out = append(out, fmt.Sprintf("%s:%d", f.Device, f.Port))
			}
			sort.Strings(out)
			return strings.Join(out, " ")
		}
		// Scan a still shows what it found, though 127.0.0.5 moved on.
		if fa := got(a); fa != "127.0.0.5:23 127.0.0.6:23" {
			t.Errorf("findings of scan a = %v", fa)
		}
		if fb := got(b); fb != "127.0.0.5:21" {
			t.Errorf("findings of scan b = %v", fb)
		}
		if latest := got(0); latest != "127.0.0.5:21 127.0.0.6:23" {
			t.Errorf("current findings = %v", latest)
		}
	})
}

func TestRecordShardSeveralReports(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		id := createScan(t, s, Scan{Kind: KindScan, Targets: "127.0.0.5-6", ShardsTotal: 1, HostsTotal: 2, CreatedBy: "x"})
		sh := Shard{ScanID: id, Shard: 0, Hosts: 2, Worker: "w", Attempt: 1, By: "x",
			Report: body(t, t0, nil, cleartext("127.0.0.5")), More: [][]byte{body(t, t0, nil, cleartext("127.0.0.6"))}}
		stored, res, err := recordShard(s, sh)
		if err != nil || !stored || res.Devices != 2 || res.Findings != 2 {
			t.Fatalf("stored %v, %+v, %v", stored, res, err)
		}
		// A retry stores nothing, however many reports it brings.
		if stored, _, err := recordShard(s, sh); err != nil || stored {
			t.Fatalf("retry stored %v, %v", stored, err)
		}
		if c := countRows(t, s); c.Reports != 2 || c.Shards != 1 {
			t.Fatalf("rows = %+v, want 2 reports", c)
		}
		sc := scanOf(t, s, id)
		if sc.Status != ScanDone || sc.Devices != 2 || sc.Findings != 2 {
			t.Fatalf("scan = %+v", sc)
		}
		fs, err := s.Findings(ctx, FindingFilter{Scan: id})
		if err != nil || len(fs) != 2 {
			t.Fatalf("findings of the scan = %d, %v", len(fs), err)
		}
		for _, d := range []string{"127.0.0.5", "127.0.0.6"} {
			if h, err := s.DeviceHistory(ctx, d); err != nil || len(h) != 1 {
				t.Fatalf("history of %s = %+v, %v", d, h, err)
			}
		}
	})
}

func TestShardProgress(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		id := createScan(t, s, Scan{Kind: KindScan, Targets: "127.0.0.1-4", ShardsTotal: 2, HostsTotal: 4, CreatedBy: "x"})
		for _, p := range []struct{ shard, done int }{{0, 1}, {1, 1}, {0, 2}} {
			if err := s.SetShardProgress(ctx, id, p.shard, p.done, "w"); err != nil {
				t.Fatal(err)
			}
		}
		if sc := scanOf(t, s, id); sc.HostsDone != 3 {
			t.Fatalf("hosts done while running = %d, want 2+1", sc.HostsDone)
		}
		if _, _, err := recordShard(s, Shard{ScanID: id, Shard: 0, Hosts: 2, Worker: "w", Attempt: 1, By: "x",
			Report: body(t, t0, nil, cleartext("127.0.0.1"))}); err != nil {
			t.Fatal(err)
		}
		// Shard 0 stored (its progress row gone), shard 1 still running.
		if sc := scanOf(t, s, id); sc.HostsDone != 3 {
			t.Fatalf("hosts done = %d, want 2 stored + 1 running", sc.HostsDone)
		}
		// A late progress report for a stored shard counts nothing.
		if err := s.SetShardProgress(ctx, id, 0, 2, "late"); err != nil {
			t.Fatal(err)
		}
		if sc := scanOf(t, s, id); sc.HostsDone != 3 {
			t.Fatalf("hosts done after a late report = %d, want 3", sc.HostsDone)
		}
		if _, _, err := recordShard(s, Shard{ScanID: id, Shard: 1, Hosts: 2, Worker: "w", Attempt: 1, By: "x",
			Report: body(t, t0, nil, cleartext("127.0.0.3"))}); err != nil {
			t.Fatal(err)
		}
		if sc := scanOf(t, s, id); sc.HostsDone != 4 || sc.Status != ScanDone {
			t.Fatalf("finished scan = %+v", sc)
		}
	})
}
