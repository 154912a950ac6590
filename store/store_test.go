package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/report"
)

// body builds a contract report started at start with the given findings.
func body(t *testing.T, start time.Time, verdicts []finding.Verdict, fs ...finding.Finding) []byte {
	t.Helper()
	rep := &finding.Report{Tool: finding.Tool{Name: "iotcop", Version: "test"}, StartedAt: start, FinishedAt: start.Add(time.Second),
		Verdicts: verdicts}
	hosts := map[string]bool{}
	for _, f := range fs {
		if f.Host != "" && !hosts[f.Host] {
			hosts[f.Host] = true
			rep.Devices = append(rep.Devices, finding.Device{Address: f.Host, Services: []finding.Service{
				{Port: f.Port, Transport: "tcp", Protocol: f.Protocol, Product: "BusyBox telnetd", Version: "1.36", Vendor: "Acme"}}})
		}
	}
	rep.Findings = fs
	rep.Finalize()
	var buf bytes.Buffer
	if err := report.WriteJSON(&buf, rep); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func defCreds(host string) finding.Finding {
	return finding.Finding{Check: finding.CheckDefaultCredentials, Provisions: []string{"5.1-1"}, Severity: finding.Critical,
		Title: "telnet accepts a default credential", Host: host, Port: 23, Transport: "tcp", Protocol: "telnet",
		Evidence: map[string]any{"username": "root", "password": finding.Secret("xc3511")}}
}

func cleartext(host string) finding.Finding {
	return finding.Finding{Check: finding.CheckCleartextProtocol, Provisions: []string{"5.5-1"}, Severity: finding.Medium,
		Title: "telnet is cleartext", Host: host, Port: 23, Transport: "tcp", Protocol: "telnet"}
}

var t0 = time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)

func TestImportIdempotent(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		b := body(t, t0, nil, defCreds("127.77.0.10"), cleartext("127.77.0.10"))
		first, err := s.Import(ctx, b, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if first.Duplicate || first.Findings != 2 || first.Devices != 1 {
			t.Fatalf("first import = %+v", first)
		}
		second, err := s.Import(ctx, b, "bob")
		if err != nil {
			t.Fatal(err)
		}
		if !second.Duplicate || second.ReportID != first.ReportID || second.Findings != 2 || second.Devices != 1 {
			t.Fatalf("second import = %+v, want duplicate of %+v", second, first)
		}
		c, err := s.Counts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c.Reports != 1 || c.Findings != 2 || c.Devices != 1 {
			t.Fatalf("counts after two imports = %+v", c)
		}
		stored, err := s.ReportBody(ctx, first.ReportID)
		if err != nil || !bytes.Equal(stored, b) {
			t.Fatalf("stored body differs (err %v)", err)
		}
	})
}

func TestImportRefusesInvalid(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		good := string(body(t, t0, nil, cleartext("127.0.0.9")))
		tests := []struct{ name, doc string }{
			{"not json", "hello"},
			{"empty object", "{}"},
			{"wrong schema", strings.Replace(good, finding.SchemaV1, "iotcop/report/v0", 1)},
			{"bad severity", strings.Replace(good, `"medium"`, `"apocalyptic"`, 1)},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := s.Import(context.Background(), []byte(tc.doc), "x"); !errors.Is(err, ErrInvalidReport) {
					t.Fatalf("Import(%s) error = %v, want ErrInvalidReport", tc.name, err)
				}
			})
		}
		c, _ := s.Counts(context.Background())
		if c.Reports != 0 {
			t.Fatalf("invalid reports stored: %+v", c)
		}
	})
}

func TestDevicesHistoryFindings(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		const a, b = "127.77.0.10", "127.77.0.11"
		t1 := t0.Add(24 * time.Hour)
		// Imported out of order: history must follow the scan time.
		for _, doc := range [][]byte{
			body(t, t1, nil, cleartext(a), defCreds(b)),
			body(t, t0, nil, defCreds(a), cleartext(a)),
		} {
			if _, err := s.Import(ctx, doc, "alice"); err != nil {
				t.Fatal(err)
			}
		}
		devs, err := s.Devices(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(devs) != 2 || devs[0].Address != a || devs[1].Address != b {
			t.Fatalf("devices = %+v", devs)
		}
		if d := devs[0]; !d.FirstSeen.Equal(t0) || !d.LastSeen.Equal(t1) || d.Reports != 2 || d.Findings != 1 || d.Vendor != "Acme" || d.Model != "BusyBox telnetd" || d.Firmware != "1.36" {
			t.Fatalf("device a = %+v", d)
		}
		hist, err := s.DeviceHistory(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 2 || !hist[0].StartedAt.Equal(t0) || hist[0].Findings != 2 || hist[1].Findings != 1 || hist[0].BySeverity["critical"] != 1 {
			t.Fatalf("history = %+v", hist)
		}
		if _, err := s.DeviceHistory(ctx, "127.0.0.99"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("history of unknown device: %v", err)
		}
		rep, err := s.DeviceReport(ctx, a, hist[0].ReportID)
		if err != nil || len(rep.Findings) != 2 || len(rep.Devices) != 1 {
			t.Fatalf("DeviceReport = %+v, %v", rep, err)
		}

		tests := []struct {
			name string
			flt  FindingFilter
			want []string // device|check
		}{
			{"all current", FindingFilter{}, []string{b + "|default-credentials", a + "|cleartext-protocol"}},
			{"by check", FindingFilter{Check: "cleartext-protocol"}, []string{a + "|cleartext-protocol"}},
			{"by severity", FindingFilter{Severity: "critical"}, []string{b + "|default-credentials"}},
			{"by provision", FindingFilter{Provision: "5.1-1"}, []string{b + "|default-credentials"}},
			{"provision is whole", FindingFilter{Provision: "5.1"}, nil},
			{"by device", FindingFilter{Device: a}, []string{a + "|cleartext-protocol"}},
			{"new since t1", FindingFilter{Since: t1}, []string{b + "|default-credentials"}},
			{"new since t0", FindingFilter{Since: t0}, []string{b + "|default-credentials", a + "|cleartext-protocol"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				fs, err := s.Findings(ctx, tc.flt)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, f := range fs {
					got = append(got, f.Device+"|"+f.Check)
				}
				if !slices.Equal(got, tc.want) {
					t.Fatalf("Findings(%+v) = %v, want %v", tc.flt, got, tc.want)
				}
			})
		}
		if _, err := s.Findings(ctx, FindingFilter{Severity: "bogus"}); err == nil {
			t.Fatal("bad severity filter accepted")
		}
	})
}

func TestOverviewVerdictsAndFindings(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		// Device a: assessed, verdict FAIL on 5.1-1 although no finding says so.
		// Device b: not assessed, default-credentials finding.
		// Device c: assessed PASS on 5.1-1, cleartext finding only.
		docs := [][]byte{
			body(t, t0, []finding.Verdict{{Provision: "5.1-1", Edition: "V3.1.3", Verdict: finding.VerdictFail, PSTI: 1, Basis: "evidence", Status: "M", Title: "no universal default passwords", Rule: "r", Reason: "r"}}, cleartext("127.0.0.1")),
			body(t, t0, nil, defCreds("127.0.0.2")),
			body(t, t0.Add(time.Hour), []finding.Verdict{{Provision: "5.1-1", Edition: "V3.1.3", Verdict: finding.VerdictPass, PSTI: 1, Basis: "evidence", Status: "M", Title: "no universal default passwords", Rule: "r", Reason: "r"}}, cleartext("127.0.0.3")),
		}
		for _, d := range docs {
			if _, err := s.Import(ctx, d, "x"); err != nil {
				t.Fatal(err)
			}
		}
		o, err := s.Overview(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if o.Devices != 3 || o.Reports != 3 || o.Findings != 3 || o.BySeverity["medium"] != 2 || o.BySeverity["critical"] != 1 {
			t.Fatalf("overview counts = %+v", o)
		}
		p := o.Failing("5.1-1")
		if !slices.Equal(p.Failing, []string{"127.0.0.1", "127.0.0.2"}) || p.FromVerdicts != 1 {
			t.Fatalf("5.1-1 = %+v", p)
		}
		if got := o.Failing("5.5-1").Failing; !slices.Equal(got, []string{}) && !slices.Equal(got, []string(nil)) {
			// Assessed devices a and c are judged by verdicts only, which say
			// nothing about 5.5-1.
			t.Fatalf("5.5-1 failing = %v", got)
		}
		if !slices.Equal(o.PSTI[1], []string{"127.0.0.1"}) {
			t.Fatalf("PSTI 1 = %v", o.PSTI[1])
		}
		// With the catalogue's routes, device b (judged by its findings
		// alone) fails PSTI 1 through 5.1-1 too.
		o, err = s.Overview(ctx, map[string]int{"5.1-1": 1})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(o.PSTI[1], []string{"127.0.0.1", "127.0.0.2"}) || o.Failing("5.1-1").PSTI != 1 {
			t.Fatalf("PSTI 1 with routes = %v (5.1-1 %+v)", o.PSTI[1], o.Failing("5.1-1"))
		}
	})
}

func TestUsersTokensSessions(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		const pw = "correct horse battery"
		u, err := s.CreateUser(ctx, "alice", RoleOperator, pw)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateUser(ctx, "bob", "root", pw); err == nil {
			t.Fatal("unknown role accepted")
		}
		if _, err := s.CreateUser(ctx, "bob", RoleViewer, "short"); err == nil {
			t.Fatal("short password accepted")
		}
		var hash string
		if err := s.DB().QueryRow("SELECT password_hash FROM users WHERE name = 'alice'").Scan(&hash); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(hash, pw) || !strings.HasPrefix(hash, "$2") {
			t.Fatalf("password stored as %q", hash)
		}
		for _, tc := range []struct{ name, pw string }{{"alice", "wrong password!"}, {"mallory", pw}, {"alice", ""}} {
			if _, err := s.Authenticate(ctx, tc.name, tc.pw); !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("Authenticate(%s, %q) = %v", tc.name, tc.pw, err)
			}
		}
		if got, err := s.Authenticate(ctx, "alice", pw); err != nil || got.ID != u.ID || got.Role != RoleOperator {
			t.Fatalf("Authenticate good = %+v, %v", got, err)
		}

		const secret = "iotcop_0123456789abcdef0123456789abcdef"
		if _, err := s.CreateToken(ctx, u.ID, "ci", secret, []string{ScopeRead, "admin"}); err == nil {
			t.Fatal("unknown scope accepted")
		}
		if _, err := s.CreateToken(ctx, u.ID, "ci", secret, []string{ScopeImport}); err != nil {
			t.Fatal(err)
		}
		var stored string
		if err := s.DB().QueryRow("SELECT hash FROM api_tokens").Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(stored, secret) {
			t.Fatal("token stored in clear")
		}
		tok, err := s.LookupToken(ctx, secret)
		if err != nil || !tok.Has(ScopeImport) || tok.Has(ScopeRead) || tok.User.Name != "alice" {
			t.Fatalf("LookupToken = %+v, %v", tok, err)
		}
		if _, err := s.LookupToken(ctx, secret+"x"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("wrong token: %v", err)
		}

		if err := s.CreateSession(ctx, u.ID, "sess-1", "csrf-1", time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateSession(ctx, u.ID, "sess-old", "csrf-2", -time.Second); err != nil {
			t.Fatal(err)
		}
		if ses, err := s.LookupSession(ctx, "sess-1"); err != nil || ses.CSRF != "csrf-1" || ses.User.Name != "alice" {
			t.Fatalf("LookupSession = %+v, %v", ses, err)
		}
		if _, err := s.LookupSession(ctx, "sess-old"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("expired session: %v", err)
		}
		if err := s.DeleteSession(ctx, "sess-1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.LookupSession(ctx, "sess-1"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("deleted session: %v", err)
		}
		if err := s.Audit(ctx, "alice", "login", "", "127.0.0.1"); err != nil {
			t.Fatal(err)
		}
		log, err := s.AuditLog(ctx, 10)
		if err != nil || len(log) != 1 || log[0].Action != "login" {
			t.Fatalf("audit log = %+v, %v", log, err)
		}
	})
}

func TestReopenKeepsSchema(t *testing.T) {
	t.Parallel()
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	latest := ms[len(ms)-1].version
	for _, b := range backends() {
		t.Run(string(b.dialect), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			loc := b.location(t)
			s, err := Open(ctx, loc)
			if err != nil {
				t.Fatal(err)
			}
			if s.Dialect() != b.dialect {
				t.Fatalf("Dialect() = %q, want %q", s.Dialect(), b.dialect)
			}
			if _, err := s.Import(ctx, body(t, t0, nil, cleartext("127.0.0.5")), "x"); err != nil {
				t.Fatal(err)
			}
			v1, err := s.SchemaVersion(ctx)
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			s = openAt(t, loc)
			v2, err := s.SchemaVersion(ctx)
			if err != nil {
				t.Fatal(err)
			}
			c, err := s.Counts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if v1 != latest || v2 != latest || c.Reports != 1 {
				t.Fatalf("versions %d %d (want %d), counts %+v", v1, v2, latest, c)
			}
			var applied int
			if err := s.DB().QueryRow("SELECT COUNT(*) FROM schema_migrations").Scan(&applied); err != nil || applied != len(ms) {
				t.Fatalf("schema_migrations rows = %d, %v; want %d (each migration once)", applied, err, len(ms))
			}
		})
	}
}

// TestSQLiteFile checks what only the embedded database has: WAL and a
// database file and folder closed to other users.
func TestSQLiteFile(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	s := openAt(t, dir)
	var mode string
	if err := s.DB().QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v", mode, err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, DBFile): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode = %o, want %o", path, got, want)
		}
	}
	if s.Location() != dir || s.URL() != "" {
		t.Errorf("Location() = %q, URL() = %q; want %q and no URL", s.Location(), s.URL(), dir)
	}
	// Planner statistics appear once enough findings are imported.
	stats := func() int {
		var n int
		if err := s.DB().QueryRow("SELECT COUNT(*) FROM sqlite_master WHERE name = 'sqlite_stat1'").Scan(&n); err != nil || n == 0 {
			return 0
		}
		s.DB().QueryRow("SELECT COUNT(*) FROM sqlite_stat1").Scan(&n)
		return n
	}
	if stats() != 0 {
		t.Fatal("statistics before any import")
	}
	var fs []finding.Finding
	for i := range 1200 {
		f := cleartext(fmt.Sprintf("127.0.%d.%d", i/200, i%200+1))
		fs = append(fs, f)
	}
	if _, err := s.Import(context.Background(), body(t, t0, nil, fs...), "x"); err != nil {
		t.Fatal(err)
	}
	if stats() == 0 {
		t.Fatal("no planner statistics after importing 1200 findings")
	}
}

// TestPostgresLocationHidesPassword checks the URL shown to people (logs,
// the dashboard) carries no password.
func TestPostgresLocationHidesPassword(t *testing.T) {
	t.Parallel()
	dsn := pg.Get(t).DSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	pw, ok := u.User.Password()
	if !ok || pw == "" {
		t.Fatalf("test DSN has no password: %s", redactURL(dsn))
	}
	s := openAt(t, dsn)
	if loc := s.Location(); strings.Contains(loc, pw) || !strings.Contains(loc, u.Host) || !IsPostgresURL(loc) {
		t.Fatalf("Location() = %q: want the server without its password", loc)
	}
	if s.URL() != dsn {
		t.Fatalf("URL() = %q, want the DSN it was opened with", redactURL(s.URL()))
	}
}

// TestConcurrentOpen starts several stores on one new database at once,
// as a server and its workers do: every one opens, and each migration is
// applied exactly once.
func TestConcurrentOpen(t *testing.T) {
	t.Parallel()
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range backends() {
		t.Run(string(b.dialect), func(t *testing.T) {
			t.Parallel()
			loc := b.location(t)
			const n = 4
			stores := make([]*Store, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { stores[i], errs[i] = Open(context.Background(), loc) })
			}
			wg.Wait()
			for i := range n {
				if errs[i] != nil {
					t.Errorf("Open #%d: %v", i, errs[i])
					continue
				}
				t.Cleanup(func() { stores[i].Close() })
			}
			if t.Failed() {
				return
			}
			var applied, distinct int
			if err := stores[0].DB().QueryRow("SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations").Scan(&applied, &distinct); err != nil {
				t.Fatal(err)
			}
			if applied != len(ms) || distinct != len(ms) {
				t.Fatalf("schema_migrations: %d rows, %d versions; want %d of each", applied, distinct, len(ms))
			}
		})
	}
}
