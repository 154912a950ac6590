package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/report"
	"github.com/iotcop/iotcop/store"
)

// concurrentClients is the client count of the concurrent latency runs.
const concurrentClients = 8

// The filtered findings query: a quarter of the known-vulnerability
// findings are high.
const (
	filterCheck    = finding.CheckKnownVulnerability
	filterSeverity = "high"
)

var servingLine = regexp.MustCompile(`serving (http://[^ ]+/) `)

// query is one measured API request.
type query struct {
	label string
	path  string
	// check verifies a response body (once, before the measurement).
	check func(body []byte) error
}

// latency is one measurement of one query.
type latency struct {
	requests int
	p50, p99 time.Duration
	perSec   float64
}

// backendResult is what one backend measured.
type backendResult struct {
	name      string
	importDur time.Duration
	findings  int
	reports   int
	devices   int
	latencies map[string]latency // by query label and clients: "label/1", "label/8"
}

func (b *bench) importAndLatency() {
	sz := b.sz
	fmt.Printf("== 1. Import and API latency: %d reports x %d devices x %d findings = %d findings, %d devices\n",
		sz.reports, sz.devicesPerReport, sz.findingsPerDevice, sz.findings(), sz.reports*sz.devicesPerReport)
	bodies := make([][]byte, sz.reports)
	var total int
	for r := range bodies {
		bodies[r] = b.reportBody(r)
		total += len(bodies[r])
	}
	fmt.Printf("   reports are JSON (iotcop/report/v1), %.1f MB in all; each backend: `iotcop serve --workers 0 --no-tls`,\n", float64(total)/(1<<20))
	fmt.Printf("   one client POSTs them in turn to /api/v1/reports; then latency over up to %d requests per query\n", sz.requests)
	fmt.Printf("   (or %s, whichever ends first), with 1 client and with %d concurrent clients\n\n", sz.budget, concurrentClients)

	queries := []query{
		{label: "GET /api/v1/findings?limit=100", path: "api/v1/findings?limit=100", check: b.checkFindings(100, "", "")},
		{label: fmt.Sprintf("GET /api/v1/findings?severity=%s&check=%s&limit=100", filterSeverity, filterCheck),
			path:  fmt.Sprintf("api/v1/findings?severity=%s&check=%s&limit=100", filterSeverity, filterCheck),
			check: b.checkFindings(100, filterSeverity, filterCheck)},
		{label: "GET /api/v1/devices", path: "api/v1/devices", check: b.checkDevices(sz.reports * sz.devicesPerReport)},
	}
	sqlite := b.runBackend("SQLite", b.t.TempDir(), bodies, queries)
	postgres := b.runBackend("PostgreSQL", b.pg.DSN(b.tb()), bodies, queries)
	printImport(sqlite, postgres, queries)
}

// runBackend creates the API token, starts the server on loc, imports the
// reports and measures the queries.
func (b *bench) runBackend(name, loc string, bodies [][]byte, queries []query) backendResult {
	ctx := b.ctx
	st := b.openStore(loc)
	u, err := st.CreateUser(ctx, "bench", store.RoleOperator, randomSecret("pw-"))
	if err != nil {
		b.fatalf("%s: create user: %v", name, err)
	}
	token := randomSecret("iotcop_bench_")
	if _, err := st.CreateToken(ctx, u.ID, "bench", token, []string{store.ScopeRead, store.ScopeImport}); err != nil {
		b.fatalf("%s: create token: %v", name, err)
	}
	st.Close()

	p := b.start("iotcop serve ("+name+")", "serve", "--db", loc, "--listen", daemontest.Addr()+":0", "--no-tls", "--workers", "0")
	base := b.waitFor(p, servingLine, 60*time.Second)[1]
	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 2 * concurrentClients}}
	res := backendResult{name: name, latencies: map[string]latency{}}

	fmt.Printf("   %s: importing ...", name)
	start := time.Now()
	for i, body := range bodies {
		var ir store.ImportResult
		code, out, err := b.do(client, "POST", base+"api/v1/reports", token, body)
		if err == nil && code == http.StatusCreated {
			err = json.Unmarshal(out, &ir)
		}
		if err != nil || code != http.StatusCreated || ir.Duplicate {
			b.fatalf("%s: import of report %d: status %d, %v: %s\nserver log:\n%s", name, i+1, code, err, trim(out), tail(p.out.String(), 20))
		}
		res.reports++
		res.findings += ir.Findings
		res.devices += ir.Devices
	}
	res.importDur = time.Since(start)
	fmt.Printf(" %d findings in %s\n", res.findings, res.importDur.Round(time.Millisecond))

	st = b.openStore(loc)
	c, err := st.Counts(ctx)
	st.Close()
	if err != nil {
		b.fatalf("%s: count: %v", name, err)
	}
	if c.Findings != b.sz.findings() || c.Reports != b.sz.reports {
		b.fatalf("%s: stored %+v, want %d reports and %d findings", name, c, b.sz.reports, b.sz.findings())
	}

	for _, q := range queries {
		code, out, err := b.do(client, "GET", base+q.path, token, nil)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("status %d: %s", code, trim(out))
		}
		if err == nil {
			err = q.check(out)
		}
		if err != nil {
			b.fatalf("%s: %s: %v", name, q.label, err)
		}
		for _, clients := range []int{1, concurrentClients} {
			l := b.measure(client, base+q.path, token, clients)
			res.latencies[fmt.Sprintf("%s/%d", q.label, clients)] = l
			fmt.Printf("   %s: %s, %d client(s): %d requests, p50 %s ms\n", name, q.label, clients, l.requests, ms(l.p50))
		}
	}
	p.stop()
	fmt.Println()
	return res
}

// measure sends the same GET from clients goroutines, in all up to
// b.sz.requests times or until b.sz.budget has passed.
func (b *bench) measure(client *http.Client, url, token string, clients int) latency {
	var (
		next    atomic.Int64
		mu      sync.Mutex
		samples []time.Duration
		wg      sync.WaitGroup
	)
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.sz.requests) && time.Since(start) < b.sz.budget {
				t0 := time.Now()
				code, out, err := b.do(client, "GET", url, token, nil)
				d := time.Since(t0)
				if err != nil || code != http.StatusOK {
					b.fatalf("GET %s: status %d, %v: %s", url, code, err, trim(out))
				}
				mu.Lock()
				samples = append(samples, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	slices.Sort(samples)
	return latency{requests: len(samples), p50: percentile(samples, 0.50), p99: percentile(samples, 0.99),
		perSec: float64(len(samples)) / took.Seconds()}
}

// percentile is the nearest-rank percentile of sorted samples.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// do sends one request and reads the whole answer.
func (b *bench) do(client *http.Client, method, url, token string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(b.ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// checkFindings verifies a findings answer: want findings, all of the
// severity and check when given.
func (b *bench) checkFindings(want int, severity, check string) func([]byte) error {
	return func(body []byte) error {
		var r struct {
			Findings []struct {
				Check    string `json:"check"`
				Severity string `json:"severity"`
			} `json:"findings"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			return fmt.Errorf("decode findings: %w", err)
		}
		if len(r.Findings) != want {
			return fmt.Errorf("%d findings, want %d", len(r.Findings), want)
		}
		for _, f := range r.Findings {
			if (severity != "" && f.Severity != severity) || (check != "" && f.Check != check) {
				return fmt.Errorf("finding %s/%s does not match the filter %s/%s", f.Check, f.Severity, check, severity)
			}
		}
		return nil
	}
}

// checkDevices verifies a devices answer lists want devices.
func (b *bench) checkDevices(want int) func([]byte) error {
	return func(body []byte) error {
		var r struct {
			Devices []json.RawMessage `json:"devices"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			return fmt.Errorf("decode devices: %w", err)
		}
		if len(r.Devices) != want {
			return fmt.Errorf("%d devices, want %d", len(r.Devices), want)
		}
		return nil
	}
}

// reportBody is report number r: devicesPerReport devices of their own
// (10.20.0.1 onwards, never scanned: reports are only stored), each with
// findingsPerDevice findings of several checks and severities.
func (b *bench) reportBody(r int) []byte {
	sz := b.sz
	rep := &finding.Report{Tool: finding.Tool{Name: "iotcop", Version: "bench"},
		StartedAt: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r) * time.Minute)}
	sevs := []finding.Severity{finding.Critical, finding.High, finding.Medium, finding.Low}
	for d := range sz.devicesPerReport {
		g := r*sz.devicesPerReport + d
		addr := fmt.Sprintf("10.20.%d.%d", g/250, g%250+1)
		rep.Devices = append(rep.Devices, finding.Device{Address: addr, Services: []finding.Service{
			{Port: 23, Transport: "tcp", Protocol: "telnet", Banner: "BusyBox telnetd"},
			{Port: 80, Transport: "tcp", Protocol: "http", Product: "lighttpd", Version: "1.4.35", Vendor: "Vistacam"},
		}})
		for i := range sz.findingsPerDevice {
			f := finding.Finding{Host: addr, Transport: "tcp"}
			switch i {
			case 0:
				f.Check, f.Severity, f.Provisions, f.Port, f.Protocol = finding.CheckDefaultCredentials, finding.Critical, []string{"5.1-1"}, 23, "telnet"
				f.Title = "default credentials accepted"
				f.Evidence = map[string]any{"username": "root", "password": finding.Secret("xc3511")}
			case 1:
				f.Check, f.Severity, f.Provisions, f.Port, f.Protocol = finding.CheckCleartextProtocol, finding.Medium, []string{"5.5-1"}, 23, "telnet"
				f.Title = "cleartext telnet"
				f.Evidence = map[string]any{"banner": "BusyBox telnetd"}
			case 2:
				f.Check, f.Severity, f.Provisions, f.Port, f.Protocol = finding.CheckVulnDisclosure, finding.Low, []string{"5.2-1"}, 80, "http"
				f.Title = "no vulnerability disclosure policy"
				f.Evidence = map[string]any{"looked_for": "/.well-known/security.txt"}
			default:
				f.Check, f.Severity, f.Provisions, f.Port, f.Protocol = finding.CheckKnownVulnerability, sevs[(g+i)%len(sevs)], []string{"5.3-2"}, 80, "http"
				f.Title = fmt.Sprintf("lighttpd 1.4.35: CVE-2024-%05d", 1000+i)
				f.Evidence = map[string]any{"component": "lighttpd", "version": "1.4.35", "id": fmt.Sprintf("CVE-2024-%05d", 1000+i)}
			}
			rep.Findings = append(rep.Findings, f)
		}
	}
	rep.FinishedAt = rep.StartedAt.Add(30 * time.Second)
	rep.Finalize()
	var buf bytes.Buffer
	if err := report.WriteJSON(&buf, rep); err != nil {
		b.fatalf("write report %d: %v", r, err)
	}
	return buf.Bytes()
}

// printImport prints the import and latency tables with the ratios.
func printImport(sq, pg backendResult, queries []query) {
	rate := func(r backendResult) float64 { return float64(r.findings) / r.importDur.Seconds() }
	fmt.Println("Import (POST /api/v1/reports, one client, reports in turn)")
	fmt.Printf("   %-11s %8s %9s %10s %12s\n", "backend", "reports", "findings", "time", "findings/s")
	for _, r := range []backendResult{sq, pg} {
		fmt.Printf("   %-11s %8d %9d %9.2fs %12.0f\n", r.name, r.reports, r.findings, r.importDur.Seconds(), rate(r))
	}
	fmt.Printf("   PostgreSQL/SQLite import rate: %.2fx\n\n", rate(pg)/rate(sq))

	fmt.Printf("API latency with %d findings and %d devices stored (milliseconds; each client sends its next request when\n", sq.findings, sq.devices)
	fmt.Println("the last one is answered; requests = how many were measured, and p99 of fewer than 100 is the slowest one;")
	fmt.Println("ratio = PostgreSQL/SQLite: below 1 PostgreSQL answers faster, above 1 for req/s PostgreSQL serves more)")
	for _, q := range queries {
		fmt.Printf("   %s\n", q.label)
		fmt.Printf("      %-8s %-12s %8s %9s %9s %8s\n", "clients", "backend", "requests", "p50", "p99", "req/s")
		for _, clients := range []int{1, concurrentClients} {
			key := fmt.Sprintf("%s/%d", q.label, clients)
			a, c := sq.latencies[key], pg.latencies[key]
			for _, r := range []struct {
				name string
				l    latency
			}{{sq.name, a}, {pg.name, c}} {
				fmt.Printf("      %-8d %-12s %8d %9s %9s %8.1f\n", clients, r.name, r.l.requests, ms(r.l.p50), ms(r.l.p99), r.l.perSec)
			}
			fmt.Printf("      %-8d %-12s %8s %8.2fx %8.2fx %7.2fx\n", clients, "PG/SQLite", "", ratio(c.p50, a.p50), ratio(c.p99, a.p99), c.perSec/a.perSec)
		}
	}
	fmt.Println()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func trim(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
