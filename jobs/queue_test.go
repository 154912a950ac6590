package jobs

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/internal/pgtest"
	"github.com/iotcop/iotcop/lab"
	"github.com/iotcop/iotcop/store"
)

var pg = pgtest.NewShared()

func TestMain(m *testing.M) { os.Exit(pg.RunTests(m)) }

// backends opens an empty store on each database the service supports.
func backends(t *testing.T) map[string]func(t *testing.T) *store.Store {
	open := func(loc func(t *testing.T) string) func(t *testing.T) *store.Store {
		return func(t *testing.T) *store.Store {
			st, err := store.Open(context.Background(), loc(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
	}
	return map[string]func(t *testing.T) *store.Store{
		"sqlite":   open(func(t *testing.T) string { return t.TempDir() }),
		"postgres": open(func(t *testing.T) string { return pg.Get(t).DSN(t) }),
	}
}

// webLab starts lab.WebFleet(n): every even device keeps the universal
// admin/admin.
func webLab(t testing.TB, n int, base string) *lab.Lab {
	l, err := lab.Start(context.Background(), lab.WebFleet(n), lab.Options{Base: base})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func openQueue(t *testing.T, st *store.Store, cfg Config) *Queue {
	t.Helper()
	q, err := Open(context.Background(), st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := q.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return q
}

// waitScan polls until the scan leaves queued/running (or the deadline of
// a stuck test passes; the deadline is a safety net, not a measurement).
func waitScan(t *testing.T, st *store.Store, id int64) store.Scan {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		sc, err := st.Scan(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if sc.Status == store.ScanDone || sc.Status == store.ScanFailed {
			return sc
		}
		if time.Now().After(deadline) {
			t.Fatalf("scan %d still %s after 3 minutes: %+v", id, sc.Status, sc)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestShardedScanStoresEveryDeviceOnce(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			const n = 10
			l := webLab(t, n, daemontest.Base())
			q := openQueue(t, st, Config{Workers: 3, ShardSize: 3, PollInterval: 50 * time.Millisecond, Name: "w1"})
			targets := l.Devices()[0].Address + "-" + l.Devices()[n-1].Address
			sc, err := q.SubmitScan(context.Background(), ScanRequest{Targets: targets, Ports: "8080", TimeoutMS: 1000}, "alice")
			if err != nil {
				t.Fatal(err)
			}
			// (A worker told by a notification may already have begun.)
			if sc.ShardsTotal != 4 || sc.HostsTotal != n || (sc.Status != store.ScanQueued && sc.Status != store.ScanRunning) {
				t.Fatalf("submitted scan = %+v, want 4 shards of %d hosts, queued or running", sc, n)
			}
			sc = waitScan(t, st, sc.ID)
			if sc.Status != store.ScanDone || sc.ShardsDone != 4 || sc.HostsDone != n || sc.Devices != n {
				t.Fatalf("finished scan = %+v", sc)
			}
			// Every device stored exactly once, with its flaw found and only it.
			devs, err := st.Devices(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(devs) != n {
				t.Fatalf("%d devices stored, want %d", len(devs), n)
			}
			for _, d := range devs {
				if d.Reports != 1 {
					t.Errorf("device %s is in %d reports, want 1", d.Address, d.Reports)
				}
			}
			fs, err := st.Findings(context.Background(), store.FindingFilter{Check: finding.CheckDefaultCredentials})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]bool{}
			for i, d := range l.Devices() {
				if i%2 == 0 {
					want[d.Address] = true
				}
			}
			got := map[string]bool{}
			for _, f := range fs {
				got[f.Device] = true
			}
			if len(got) != len(want) {
				t.Fatalf("default-credentials on %v, want %v", got, want)
			}
			for a := range want {
				if !got[a] {
					t.Errorf("default-credentials not found on %s", a)
				}
			}
			// Each device was assessed on its own: its one history entry
			// carries verdicts, and the fleet fails PSTI requirement 1 (no
			// universal default passwords) on exactly the even devices.
			for _, d := range l.Devices() {
				h, err := st.DeviceHistory(context.Background(), d.Address)
				if err != nil || len(h) != 1 || len(h[0].Verdicts) == 0 {
					t.Fatalf("history of %s = %+v, %v; want one assessed report", d.Address, h, err)
				}
			}
			o, err := st.Overview(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := o.PSTI[1]; len(got) != len(want) {
				t.Fatalf("PSTI 1 failed by %v, want the %d even devices", got, len(want))
			}
			for _, a := range o.PSTI[1] {
				if !want[a] {
					t.Errorf("%s fails PSTI 1 but has no default password", a)
				}
			}
			workers, err := st.ShardWorkers(context.Background(), sc.ID)
			if err != nil || len(workers) != 4 || workers[0] != "w1" {
				t.Fatalf("shard workers = %v, %v", workers, err)
			}
		})
	}
}

func TestScopePolicy(t *testing.T) {
	st, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	scope, err := ParseScope([]string{"127.77.0.0/16", "10.1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	q, err := Open(context.Background(), st, Config{Scope: scope})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Stop(context.Background())
	cases := []struct {
		targets string
		ports   string
		checks  []string
		policy  bool // refused by the policy (not a malformed request)
	}{
		{targets: "8.8.8.8", policy: true},
		{targets: "127.1.0.1", policy: true},
		{targets: "127.77.0.1,192.168.1.1", policy: true},
		{targets: "10.1.2.3-10.1.2.4", policy: true},
		{targets: "127.77.0.250-127.78.0.2", policy: true},
		{targets: "camera.example", policy: false},
		{targets: "", policy: false},
		{targets: "127.77.0.1", ports: "99999", policy: false},
		{targets: "127.77.0.1", checks: []string{"no-such-check"}, policy: false},
	}
	for _, c := range cases {
		_, err := q.SubmitScan(context.Background(), ScanRequest{Targets: c.targets, Ports: c.ports, Checks: c.checks}, "op")
		var re RequestError
		if !errors.As(err, &re) {
			t.Errorf("%q: err = %v, want a RequestError", c.targets, err)
			continue
		}
		if got := errors.Is(err, ErrOutOfPolicy); got != c.policy {
			t.Errorf("%q: out of policy = %v (%v), want %v", c.targets, got, err, c.policy)
		}
	}
	// Nothing was recorded for refused requests.
	if scans, _ := st.Scans(context.Background(), 10); len(scans) != 0 {
		t.Fatalf("refused requests left scans: %+v", scans)
	}
	// Inside the policy: accepted (and queued, nobody works it here).
	sc, err := q.SubmitScan(context.Background(), ScanRequest{Targets: "127.77.0.1-127.77.0.200 10.1.2.3", Exclude: []string{"127.77.0.100"}}, "op")
	if err != nil {
		t.Fatal(err)
	}
	if sc.HostsTotal != 200 || sc.ShardsTotal != 4 {
		t.Fatalf("accepted scan = %+v, want 200 hosts in 4 shards", sc)
	}
	// Without a policy the command line's rule applies.
	q2, err := Open(context.Background(), st, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Stop(context.Background())
	if _, err := q2.SubmitScan(context.Background(), ScanRequest{Targets: "192.168.7.0/30"}, "op"); err != nil {
		t.Fatalf("private target refused without a policy: %v", err)
	}
	if _, err := q2.SubmitScan(context.Background(), ScanRequest{Targets: "1.1.1.1"}, "op"); !errors.Is(err, ErrOutOfPolicy) {
		t.Fatalf("public target without a policy: %v", err)
	}
}

func TestShards(t *testing.T) {
	cases := []struct {
		in      []string
		exclude []string
		size    int
		want    [][]string
	}{
		{in: []string{"10.0.0.1-10.0.0.5"}, size: 2, want: [][]string{{"10.0.0.1-10.0.0.2"}, {"10.0.0.3-10.0.0.4"}, {"10.0.0.5"}}},
		{in: []string{"10.0.0.1-10.0.0.5"}, exclude: []string{"10.0.0.2"}, size: 3, want: [][]string{{"10.0.0.1", "10.0.0.3-10.0.0.4"}, {"10.0.0.5"}}},
		{in: []string{"10.0.0.254-10.0.1.1"}, size: 10, want: [][]string{{"10.0.0.254-10.0.1.1"}}},
		{in: []string{"10.0.0.1", "10.0.0.9"}, size: 10, want: [][]string{{"10.0.0.1", "10.0.0.9"}}},
	}
	for _, c := range cases {
		set, err := Scope{}.build(context.Background(), ScanRequest{Targets: strings.Join(c.in, ","), Exclude: c.exclude})
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := shards(set, c.size, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("shards(%v - %v, %d) = %v, want %v", c.in, c.exclude, c.size, got, c.want)
		}
	}
	set, _ := Scope{}.build(context.Background(), ScanRequest{Targets: "10.0.0.0/16"})
	if _, _, err := shards(set, 64, 1000); err == nil {
		t.Fatal("a scan larger than the cap was accepted")
	}
	set, _ = Scope{}.build(context.Background(), ScanRequest{Targets: "10.0.0.1", Exclude: []string{"10.0.0.0/24"}})
	if _, _, err := shards(set, 64, 1000); err == nil {
		t.Fatal("a scan with every target excluded was accepted")
	}
}

// tarGz builds a gzip-compressed tar image of files.
func tarGz(t *testing.T, files map[string]string) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func TestFirmwareJob(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			q := openQueue(t, st, Config{Workers: 1, PollInterval: 50 * time.Millisecond})
			img := tarGz(t, map[string]string{
				"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
				// "admin", in MD5 crypt: a universal root password.
				"etc/shadow": "root:$1$abcdefgh$l/LAqC8oJERu7Cmx6trtY/:18000:0:99999:7:::\n",
			})
			sc, err := q.SubmitFirmware(context.Background(), "cam-fw-1.0.tar.gz", img, "alice")
			if err != nil {
				t.Fatal(err)
			}
			if sc.Kind != store.KindFirmware {
				t.Fatalf("kind = %s", sc.Kind)
			}
			sc = waitScan(t, st, sc.ID)
			if sc.Status != store.ScanDone {
				t.Fatalf("firmware job = %+v", sc)
			}
			fs, err := st.Findings(context.Background(), store.FindingFilter{Device: "firmware:cam-fw-1.0.tar.gz"})
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, f := range fs {
				if f.Check == finding.CheckHardCodedCredentials && f.Path == "/etc/shadow" {
					found = true
				}
			}
			if !found {
				t.Fatalf("hard-coded root password not found: %+v", fs)
			}
		})
	}
}

func TestSchedules(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			q, err := Open(context.Background(), st, Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer q.Stop(context.Background())
			const pw = "a long enough password 1"
			if _, err := st.CreateUser(context.Background(), "op", store.RoleOperator, pw); err != nil {
				t.Fatal(err)
			}
			gone, err := st.CreateUser(context.Background(), "gone", store.RoleOperator, pw)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
			// A due schedule whose creator is disabled does not run.
			if _, err := st.CreateSchedule(context.Background(), store.Schedule{Name: "orphan", Targets: "127.77.0.1",
				Every: time.Hour, NextRun: now.Add(-time.Minute), CreatedBy: "gone"}); err != nil {
				t.Fatal(err)
			}
			if err := st.SetUserDisabled(context.Background(), gone.ID, true); err != nil {
				t.Fatal(err)
			}
			due, err := st.CreateSchedule(context.Background(), store.Schedule{Name: "nightly", Targets: "127.77.0.1-127.77.0.9",
				Request: []byte(`{"ports":"80"}`), Every: time.Hour, NextRun: now.Add(-time.Minute), CreatedBy: "op"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.CreateSchedule(context.Background(), store.Schedule{Name: "later", Targets: "127.77.0.1",
				Every: time.Hour, NextRun: now.Add(time.Minute), CreatedBy: "op"}); err != nil {
				t.Fatal(err)
			}
			started, err := q.RunDueSchedules(context.Background(), now)
			if err != nil || len(started) != 1 {
				t.Fatalf("started %v, %v; want one scan", started, err)
			}
			sc, err := st.Scan(context.Background(), started[0])
			if err != nil || sc.ScheduleID != due.ID || sc.HostsTotal != 9 || sc.CreatedBy != "op" {
				t.Fatalf("scheduled scan = %+v, %v", sc, err)
			}
			log, err := st.AuditLog(context.Background(), 10)
			var startedEntry, skipped bool
			for _, e := range log {
				startedEntry = startedEntry || (e.Actor == "scheduler" && e.Action == "scan-start" && strings.Contains(e.Detail, "nightly"))
				skipped = skipped || (e.Actor == "scheduler" && e.Action == "schedule-skipped" && strings.Contains(e.Detail, "orphan"))
			}
			if err != nil || !startedEntry || !skipped {
				t.Fatalf("audit log after a scheduled run = %+v, %v; want the run and the skipped orphan", log, err)
			}
			if again, err := q.RunDueSchedules(context.Background(), now); err != nil || len(again) != 0 {
				t.Fatalf("second run at the same time started %v, %v", again, err)
			}
			if next, err := q.RunDueSchedules(context.Background(), now.Add(time.Hour)); err != nil || len(next) != 2 {
				t.Fatalf("an hour later started %v, %v; want both schedules", next, err)
			}
		})
	}
}

// TestLiveProgressInsideAShard: a one-shard scan reports hosts as they
// finish, before the shard's results are stored, and counts each host
// once when they are.
func TestLiveProgressInsideAShard(t *testing.T) {
	st, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Half the devices are open (done at once), half have their own
	// passwords (an aggressive dictionary run each takes a while): the
	// shard stays half done for as long as the slow ones run.
	var cfg lab.Config
	for i := range 12 {
		svc := lab.ServiceSpec{Protocol: "http", Port: 8080, Auth: "basic", Username: "admin", RandomPassword: true}
		if i%2 == 0 {
			svc = lab.ServiceSpec{Protocol: "http", Port: 8080, NoAuth: true}
		}
		cfg.Devices = append(cfg.Devices, lab.DeviceSpec{Name: fmt.Sprintf("plug-%d", i), Kind: "plug", Vendor: "Plugly", Model: "P1",
			Firmware: "1.0", Services: []lab.ServiceSpec{svc}})
	}
	l, err := lab.Start(context.Background(), cfg, lab.Options{Base: daemontest.Base()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	devs := l.Devices()
	q := openQueue(t, st, Config{Workers: 1, PollInterval: 50 * time.Millisecond, ProgressInterval: 20 * time.Millisecond})
	sc, err := q.SubmitScan(context.Background(), ScanRequest{Targets: devs[0].Address + "-" + devs[len(devs)-1].Address,
		Ports: "8080", Checks: []string{finding.CheckDefaultCredentials}, Aggressive: true}, "ops")
	if err != nil {
		t.Fatal(err)
	}
	sawPartial := false
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
		cur, err := st.Scan(context.Background(), sc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if cur.ShardsDone == 0 && cur.HostsDone > 0 && cur.HostsDone < cur.HostsTotal {
			sawPartial = true
		}
		if cur.Status == store.ScanDone || cur.Status == store.ScanFailed {
			sc = cur
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("scan not finished: %+v", cur)
		}
	}
	if !sawPartial {
		t.Fatal("no progress was visible while the only shard ran")
	}
	if sc.Status != store.ScanDone || sc.HostsDone != len(devs) {
		t.Fatalf("finished scan = %+v, want %d hosts done once", sc, len(devs))
	}
}

// TestWorkerRefusesPublicTargets: a server policy may allow public
// networks, but a worker without --allow-public refuses to scan them: the
// shard is cancelled before any packet is sent and the scan fails, saying
// why.
func TestWorkerRefusesPublicTargets(t *testing.T) {
	st, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	scope, err := ParseScope([]string{"192.0.2.0/24"}) // TEST-NET-1: public, never routed
	if err != nil {
		t.Fatal(err)
	}
	q := openQueue(t, st, Config{Workers: 1, PollInterval: 50 * time.Millisecond, Scope: scope})
	sc, err := q.SubmitScan(context.Background(), ScanRequest{Targets: "192.0.2.1-192.0.2.3", Ports: "80"}, "ops")
	if err != nil {
		t.Fatalf("the server's policy allows the range: %v", err)
	}
	sc = waitScan(t, st, sc.ID)
	if sc.Status != store.ScanFailed || !strings.Contains(sc.Error, "outside private and loopback") || sc.ShardsDone != 0 {
		t.Fatalf("scan = %+v, want failed by the worker's scope rule", sc)
	}
}
