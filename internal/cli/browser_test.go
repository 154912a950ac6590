package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/lab"
)

// artifactDir is where browser tests keep their screenshots:
// $IOTCOP_TEST_ARTIFACTS, or artifacts/ at the top of the repository
// (ignored by git; CI can keep it).
func artifactDir(t *testing.T, name string) string {
	dir := os.Getenv("IOTCOP_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "artifacts")
	}
	dir = filepath.Join(dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser is a headless Chromium driven over the DevTools protocol, with
// every console error, uncaught exception and failed load recorded.
type browser struct {
	ctx  context.Context
	mu   sync.Mutex
	errs []string
	shot int
	dir  string
	t    *testing.T
}

func newBrowser(t *testing.T, shots string) *browser {
	daemontest.Require(t, "chromium")
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000), chromedp.Flag("disable-gpu", true),
		// No traffic beyond loopback: the machine's network is closed and
		// these would only be refused.
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true), chromedp.Flag("no-pings", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first action starts the browser, which lives as long as bctx.
	messages := chromedp.Console(bctx)
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(bctx, 4*time.Minute)
	t.Cleanup(cancelTimeout)
	b := &browser{ctx: ctx, dir: artifactDir(t, shots), t: t}
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.mu.Lock()
				b.errs = append(b.errs, fmt.Sprintf("%s:%d %s", m.URL, m.Line+1, m))
				b.mu.Unlock()
			}
		}
	}()
	return b
}

func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.screenshot("failure")
		b.t.Fatalf("browser: %v", err)
	}
}

// screenshot saves the whole page as NN-name.png among the artefacts.
func (b *browser) screenshot(name string) {
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	b.shot++
	path := filepath.Join(b.dir, fmt.Sprintf("%02d-%s.png", b.shot, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Error(err)
	}
}

func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}

func (b *browser) text(id string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.ID(id)))
	if err != nil {
		b.t.Fatalf("text of #%s: %v", id, err)
	}
	return strings.TrimSpace(s)
}

func (b *browser) attr(id, name string) string {
	b.t.Helper()
	a, err := chromedp.Run(b.ctx, chromedp.AttributeValue(chromedp.ID(id), name))
	if err != nil || !a.Exists {
		b.t.Fatalf("attribute %s of #%s: %v (exists %v)", name, id, err, a.Exists)
	}
	return a.Value
}

// count counts the elements a CSS selector matches (zero included).
func (b *browser) count(sel string) int {
	b.t.Helper()
	n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
	if err != nil {
		b.t.Fatalf("count %s: %v", sel, err)
	}
	return n
}

// TestDashboardInBrowser drives the dashboard of a real `iotcop serve`
// in headless Chromium the way a person would: log in, start a scan of
// the virtual lab, watch its findings appear live, scan again with every
// check, open a device and read its history and the diff between the two
// scans. Screenshots are kept as artefacts; no console error is allowed.
func TestDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	const password = "browser test password 1"
	t.Setenv("IOTCOP_ADMIN_PASSWORD", password)
	l, err := lab.Start(context.Background(), lab.WebFleet(6), lab.Options{Base: daemontest.Base()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	devs := l.Devices()
	targets := devs[0].Address + "-" + devs[len(devs)-1].Address

	// `iotcop serve` in-process, plain HTTP on loopback, working no jobs
	// itself: an `iotcop worker` on the same database starts once the first
	// scan's page is open, so the page is seen queued and then filling in.
	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	out, errb := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"serve", "--db", data, "--listen", daemontest.Addr() + ":0", "--no-tls",
			"--shard-size", "2", "--workers", "0"}, strings.NewReader(""), out, errb)
	}()
	defer func() { cancel(); <-done }()
	workerDone := make(chan int, 1)
	startWorker := func() {
		go func() {
			workerDone <- Run(ctx, []string{"worker", "--db", data, "--workers", "2"}, strings.NewReader(""), &syncBuffer{}, &syncBuffer{})
		}()
	}
	workerStarted := false
	defer func() {
		cancel()
		if workerStarted {
			<-workerDone
		}
	}()
	var base string
	for deadline := time.Now().Add(30 * time.Second); base == ""; time.Sleep(20 * time.Millisecond) {
		if m := plainServingLine.FindStringSubmatch(out.String()); m != nil {
			base = strings.TrimSuffix(m[1], "/")
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %s %s", out.String(), errb.String())
		}
	}

	b := newBrowser(t, "browser")
	b.do(chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("login-form")))
	b.screenshot("login")
	b.do(chromedp.SendKeys(chromedp.ID("login-name"), "admin"),
		chromedp.SendKeys(chromedp.ID("login-password"), password),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("nav-scans")))
	b.screenshot("overview-empty")

	// First scan: only the default-credentials check.
	scan := func(shot string, only ...string) (id int) {
		b.do(chromedp.Click(chromedp.ID("nav-scans")), chromedp.WaitVisible(chromedp.ID("scan-form")),
			chromedp.SendKeys(chromedp.ID("scan-targets"), targets),
			chromedp.SendKeys(chromedp.ID("scan-ports"), "8080"))
		for _, c := range only {
			b.do(chromedp.Click(chromedp.ID("scan-check-" + c)))
		}
		b.screenshot(shot + "-form")
		b.do(chromedp.Click(chromedp.ID("scan-submit")), chromedp.WaitVisible(chromedp.ID("scan")))
		idAttr := b.attr("scan", "data-scan-id")
		id, err := strconv.Atoi(idAttr)
		if err != nil {
			t.Fatalf("scan page without data-scan-id (%q)", idAttr)
		}
		if !workerStarted {
			// Nobody works the queue yet: the page opens on a queued scan
			// with no findings, and everything after comes live.
			if st := b.attr("scan", "data-status"); st != "queued" || b.count("table#scan-findings tr.finding") != 0 {
				t.Fatalf("before any worker the scan page shows %q with %d findings", st, b.count("table#scan-findings tr.finding"))
			}
			b.screenshot(shot + "-queued")
			workerStarted = true
			startWorker()
		}
		// The page refreshes itself until the scan finishes; no reload here.
		b.do(chromedp.WaitVisible(chromedp.CSS(`#scan[data-live="finished"]`)))
		b.screenshot(shot + "-finished")
		return id
	}
	first := scan("scan1", "default-credentials")
	if st := b.text("scan-status"); st != "done" {
		t.Fatalf("first scan status %q", st)
	}
	// Findings appeared on the page without a reload (it opened empty):
	// the default password on exactly the even devices.
	rows := b.count("table#scan-findings tr.finding")
	if rows != 3 {
		t.Fatalf("first scan shows %d findings, want 3 (the even devices' admin/admin)", rows)
	}
	second := scan("scan2")
	if second == first {
		t.Fatal("second scan has the first one's id")
	}
	if n := b.count("table#scan-findings tr.finding"); n <= rows {
		t.Fatalf("a scan with every check shows %d findings, the credentials-only one %d", n, rows)
	}

	// A device: two scans in its history and the diff between them.
	b.do(chromedp.Navigate(base+"/devices/"+devs[0].Address), chromedp.WaitVisible(chromedp.ID("history")))
	if n := b.count("#history tr.history-row"); n != 2 {
		t.Fatalf("device history has %d entries, want 2", n)
	}
	b.do(chromedp.WaitVisible(chromedp.ID("diff-summary")))
	newCount := b.attr("diff-summary", "data-new")
	if n, _ := strconv.Atoi(newCount); n < 1 || b.count("#diff-changes tr.diff-new") != n {
		t.Fatalf("diff summary says %q new, table has %d", newCount, b.count("#diff-changes tr.diff-new"))
	}
	b.screenshot("device-history-diff")
	b.do(chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("nav-scans")))
	b.screenshot("overview")

	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Fatalf("console errors:\n%s", strings.Join(errs, "\n"))
	}
	t.Logf("screenshots in %s", b.dir)
}
