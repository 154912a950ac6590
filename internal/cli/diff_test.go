package cli

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iotcop/iotcop/baseline"
	"github.com/iotcop/iotcop/internal/daemontest"
)

// writeTar writes a tar image holding files (path → content).
func writeTar(t *testing.T, path string, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, dir := range []string{"etc/", "etc/init.d/"} {
		if err := tw.WriteHeader(&tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime}); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(content)), ModTime: mtime}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// diff and --baseline as a CI gate: release 1 has a shell on telnet at
// boot; release 2 keeps it and adds a root account without a password.
// Gating against release 1 passes release 1 and fails release 2; diff
// names the new finding and nothing as fixed.
func TestDiffAndBaselineGate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rcS := "#!/bin/sh\ntelnetd -l /bin/sh\n"
	img1, img2 := filepath.Join(dir, "r1.tar"), filepath.Join(dir, "r2.tar")
	writeTar(t, img1, map[string]string{"etc/init.d/rcS": rcS})
	writeTar(t, img2, map[string]string{"etc/init.d/rcS": rcS,
		"etc/shadow": "root::19000:0:99999:7:::\n", "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n"})
	old, new := filepath.Join(dir, "old.json"), filepath.Join(dir, "new.json")

	if code, _, stderr := run(t, "firmware", "--format", "json", "-o", old, "--fail-on", "none", img1); code != ExitClean {
		t.Fatalf("firmware r1: %d %s", code, stderr)
	}
	if code, _, stderr := run(t, "firmware", "-q", "-o", os.DevNull, img1); code != ExitFindings {
		t.Fatalf("firmware r1 without baseline: exit %d, want %d (it has a critical finding) %s", code, ExitFindings, stderr)
	}
	code, _, stderr := run(t, "firmware", "-o", os.DevNull, "--baseline", old, img1)
	if code != ExitClean || !strings.Contains(stderr, "0 new") {
		t.Fatalf("firmware r1 against its own baseline: exit %d, want 0: %s", code, stderr)
	}
	if code, _, stderr := run(t, "firmware", "--format", "json", "-o", new, "--baseline", old, img2); code != ExitFindings {
		t.Fatalf("firmware r2 against baseline r1: exit %d, want %d: %s", code, ExitFindings, stderr)
	}
	// The report still lists every finding, old ones included.
	rep, err := baseline.Load(new)
	if err != nil {
		t.Fatal(err)
	}
	base, err := baseline.Load(old)
	if err != nil {
		t.Fatal(err)
	}
	if len(base.Findings) == 0 || len(rep.Findings) <= len(base.Findings) {
		t.Fatalf("r1 has %d findings, r2 %d: want r2 to hold r1's and more", len(base.Findings), len(rep.Findings))
	}
	// Each finding says whether it is new against the baseline.
	marks := map[string]int{}
	for _, f := range rep.Findings {
		marks[f.Baseline]++
	}
	if marks["unchanged"] != len(base.Findings) || marks["new"] != len(rep.Findings)-len(base.Findings) {
		t.Fatalf("baseline marks %v, want %d unchanged and %d new", marks, len(base.Findings), len(rep.Findings)-len(base.Findings))
	}

	code, out, stderr := run(t, "diff", "--format", "json", old, new)
	if code != ExitFindings {
		t.Fatalf("diff: exit %d, want %d: %s", code, ExitFindings, stderr)
	}
	var d baseline.Diff
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("diff json: %v\n%s", err, out)
	}
	if d.Summary.New == 0 || d.Summary.Fixed != 0 || d.Summary.Unchanged != len(base.Findings) {
		t.Fatalf("diff summary %+v, want new > 0, 0 fixed, %d unchanged", d.Summary, len(base.Findings))
	}
	for _, f := range d.NewFindings {
		if f.Path != "/etc/shadow" && f.Path != "/etc/passwd" {
			t.Errorf("new finding outside the added files: %s %s", f.Path, f.Title)
		}
	}
	if code, out, _ := run(t, "diff", new, old); code != ExitClean || !strings.Contains(out, "Fixed findings:") {
		t.Fatalf("diff backwards: exit %d, want 0 with fixed findings:\n%s", code, out)
	}
	if code, _, _ := run(t, "diff", "--fail-on", "none", old, new); code != ExitClean {
		t.Fatalf("diff --fail-on none: exit %d", code)
	}
	for _, args := range [][]string{{"diff", old}, {"diff", old, filepath.Join(dir, "missing.json")}, {"diff", "--format", "sarif", old, new},
		{"firmware", "--baseline", img1, img1}} {
		if code, _, _ := run(t, args...); code != ExitError {
			t.Errorf("%q: exit %d, want %d", args, code, ExitError)
		}
	}
}

// assess --statement writes the PSTI statement and flags what is missing.
func TestAssessStatement(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st := filepath.Join(dir, "statement.md")
	code, _, stderr := run(t, "assess", "--declarations", "../../report/testdata/statement-complete.yaml", "--statement", st,
		"--signatory", "Jane Example", "--signatory-function", "Head of Product Security", "--statement-place", "Exampleton",
		"--statement-date", "2026-03-02", "-o", os.DevNull, "--fail-on", "none")
	if code != ExitClean {
		t.Fatalf("assess --statement: %d %s", code, stderr)
	}
	b, err := os.ReadFile(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Jane Example", "Head of Product Security", "2 March 2026", "smart camera", "Example Devices Ltd"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("statement lacks %q", want)
		}
	}
	code, _, stderr = run(t, "assess", "--declarations", "../../report/testdata/statement-missing.yaml", "--statement", st, "-o", os.DevNull, "--fail-on", "none")
	if code != ExitClean || !strings.Contains(stderr, "NOT ready to sign") {
		t.Fatalf("assess --statement with missing items: %d %s", code, stderr)
	}
	if b, _ := os.ReadFile(st); !bytes.Contains(b, []byte("**MISSING** — not given; to be completed by the signatory")) {
		t.Errorf("missing signatory not flagged:\n%s", b)
	}
	if code, _, _ := run(t, "assess", "--declarations", "../../report/testdata/statement-missing.yaml", "--statement", st, "--statement-date", "2 March"); code != ExitError {
		t.Errorf("bad --statement-date: exit %d", code)
	}
}

// --format pdf renders the assessment report with headless Chromium.
func TestAssessPDF(t *testing.T) {
	daemontest.Require(t, "chromium")
	t.Parallel()
	pdf := filepath.Join(t.TempDir(), "a.pdf")
	code, _, stderr := run(t, "assess", "--declarations", "../../report/testdata/statement-complete.yaml", "--format", "pdf", "-o", pdf, "--fail-on", "none")
	if code != ExitClean {
		t.Fatalf("assess --format pdf: %d %s", code, stderr)
	}
	b, err := os.ReadFile(pdf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("%PDF-")) {
		t.Fatalf("not a PDF: %q", b[:min(len(b), 20)])
	}
}
