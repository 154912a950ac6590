package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/internal/pgtest"
	"github.com/iotcop/iotcop/report"
	"github.com/iotcop/iotcop/store"
)

// bigReport is a scan of devices × perDevice findings.
func bigReport(t *testing.T, devices, perDevice int) []byte {
	rep := &finding.Report{Schema: finding.SchemaV1, Tool: finding.Tool{Name: "iotcop", Version: "test"},
		StartedAt: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)}
	for d := range devices {
		addr := fmt.Sprintf("10.9.%d.%d", d/250, d%250+1)
		rep.Devices = append(rep.Devices, finding.Device{Address: addr,
			Services: []finding.Service{{Port: 23, Transport: "tcp", Protocol: "telnet"}}})
		for i := range perDevice {
			rep.Findings = append(rep.Findings, finding.Finding{Check: finding.CheckExposedDebugService, Provisions: []string{"5.6-1"},
				Severity: finding.Medium, Title: fmt.Sprintf("debug service %d", i), Host: addr, Port: 10000 + i, Transport: "tcp", Protocol: "telnet",
				Evidence: map[string]any{"banner": fmt.Sprintf("debug shell %d on %s", i, addr)}})
		}
	}
	rep.FinishedAt = rep.StartedAt.Add(time.Minute)
	rep.Finalize()
	var buf bytes.Buffer
	if err := report.WriteJSON(&buf, rep); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var plainServingLine = regexp.MustCompile(`serving (http://[^ ]+/) `)

// TestServerKilledDuringImport kills `iotcop serve` (SIGKILL) while it is
// writing an import, restarts it and imports the same report again:
// nothing may be half stored, lost or doubled.
func TestServerKilledDuringImport(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	const devices, per = 200, 60
	body := bigReport(t, devices, per)
	backends := map[string]func(t *testing.T) (loc string, writing func() bool){
		"sqlite": func(t *testing.T) (string, func() bool) {
			dir := t.TempDir()
			wal := filepath.Join(dir, store.DBFile+"-wal")
			var before int64 = -1
			return dir, func() bool {
				fi, err := os.Stat(wal)
				if err != nil {
					return false
				}
				if before < 0 {
					before = fi.Size()
				}
				// The import's transaction is writing pages.
				return fi.Size() > before+256<<10
			}
		},
		"postgres": func(t *testing.T) (string, func() bool) {
			dsn := pgtest.Start(t).DSN(t)
			var st *store.Store
			return dsn, func() bool {
				if st == nil {
					var err error
					if st, err = store.Open(context.Background(), dsn); err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { st.Close() })
				}
				var n int
				// A transaction of the server that has written rows and is
				// still open.
				st.DB().QueryRowContext(context.Background(), `SELECT COUNT(*) FROM pg_stat_activity
					WHERE pid <> pg_backend_pid() AND backend_xid IS NOT NULL AND datname = current_database()`).Scan(&n)
				return n > 0
			}
		},
	}
	for name, setup := range backends {
		t.Run(name, func(t *testing.T) {
			loc, writing := setup(t)
			ctx := context.Background()
			st, err := store.Open(ctx, loc)
			if err != nil {
				t.Fatal(err)
			}
			u, err := st.CreateUser(ctx, "ci", "operator", "a long enough password 1")
			if err != nil {
				t.Fatal(err)
			}
			const secret = "iotcop_test_token_crash_0123456789abcdef"
			if _, err := st.CreateToken(ctx, u.ID, "ci", secret, []string{"read", "import"}); err != nil {
				t.Fatal(err)
			}
			st.Close()

			listen := daemontest.Addr() + ":18080"
			serve := func() (*process, string) {
				p := startIotcop(t, nil, "serve", "--db", loc, "--listen", listen, "--no-tls", "--workers", "0")
				for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
					if m := plainServingLine.FindStringSubmatch(p.out.String()); m != nil {
						return p, m[1]
					}
				}
				t.Fatalf("serve did not start:\n%s", p.out.String())
				return nil, ""
			}
			push := func(base string) (int, error) {
				req, _ := http.NewRequest("POST", base+"api/v1/reports", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+secret)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return 0, err
				}
				resp.Body.Close()
				return resp.StatusCode, nil
			}

			p, base := serve()
			pushed := make(chan error, 1)
			go func() { _, err := push(base); pushed <- err }()
			killed := false
			for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline) && !killed; time.Sleep(2 * time.Millisecond) {
				select {
				case err := <-pushed:
					t.Fatalf("the import finished before the server could be killed mid-write (%v); make the report larger", err)
				default:
				}
				if writing() {
					p.cmd.Process.Signal(syscall.SIGKILL)
					p.cmd.Wait()
					killed = true
				}
			}
			if !killed {
				t.Fatal("never saw the import writing")
			}
			if err := <-pushed; err == nil {
				t.Fatal("the killed server answered the import")
			}

			// Nothing half stored: the import is all there or not at all.
			st, err = store.Open(ctx, loc)
			if err != nil {
				t.Fatal(err)
			}
			c, err := st.Counts(ctx)
			st.Close()
			if err != nil {
				t.Fatal(err)
			}
			if (c.Reports == 0 && (c.Findings != 0 || c.Devices != 0)) || (c.Reports == 1 && c.Findings != devices*per) || c.Reports > 1 {
				t.Fatalf("after the crash: %+v — a partial import survived", c)
			}
			t.Logf("after the crash: %d report(s) stored", c.Reports)

			// Restarted, the client retries: stored exactly once.
			_, base = serve()
			for i := range 2 {
				code, err := push(base)
				if err != nil || (code != http.StatusCreated && code != http.StatusOK) {
					t.Fatalf("push %d after restart: %d %v", i+1, code, err)
				}
			}
			st, err = store.Open(ctx, loc)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			c, err = st.Counts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if c.Reports != 1 || c.Findings != devices*per || c.Devices != devices {
				t.Fatalf("after restart and retries: %+v, want 1 report, %d findings, %d devices", c, devices*per, devices)
			}
		})
	}
}
