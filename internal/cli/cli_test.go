package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotcop/iotcop/discover"
	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/lab"
	"github.com/iotcop/iotcop/report"
	"github.com/iotcop/iotcop/scan"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"scan"}, "no targets"},
		{[]string{"scan", "8.8.8.8"}, "--allow-public"},
		{[]string{"scan", "--format", "xml", "127.0.0.1"}, "unknown format"},
		{[]string{"scan", "--fail-on", "urgent", "127.0.0.1"}, "unknown severity"},
		{[]string{"scan", "-p", "0", "127.0.0.1"}, "1 to 65535"},
		{[]string{"scan", "--bogus"}, "unknown flag"},
		{[]string{"scan", "-iL", "/nonexistent/targets.txt"}, "read target list"},
		{[]string{"lab", "--devices", "0"}, "at least 1"},
	}
	for _, tc := range tests {
		code, _, stderr := run(t, tc.args...)
		if code != ExitError || !strings.Contains(stderr, tc.wantErr) {
			t.Errorf("%v: code %d stderr %q, want 2 and %q", tc.args, code, stderr, tc.wantErr)
		}
	}
}

func TestSchemaCommand(t *testing.T) {
	code, out, _ := run(t, "schema")
	if code != 0 || !json.Valid([]byte(out)) || !strings.Contains(out, "iotcop/report/v1") {
		t.Fatalf("schema: code %d, %q", code, out[:min(len(out), 80)])
	}
}

// The demo scans the virtual lab: the JSON matches the contract, planted
// flaws are found, secrets are redacted unless asked, and --fail-on maps
// to the exit code.
func TestDemoJSON(t *testing.T) {
	base := daemontest.Base()
	dir := t.TempDir()
	out := filepath.Join(dir, "r.json")
	code, _, stderr := run(t, "demo", "--base", base, "--format", "json", "-o", out, "-q", "--timeout", "1s")
	if code != 0 {
		t.Fatalf("demo exit %d: %s", code, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := report.Validate(b); err != nil {
		t.Fatal(err)
	}
	var rep finding.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	checks := map[string]int{}
	for _, f := range rep.Findings {
		checks[f.Check]++
		if pw, ok := f.Evidence["password"].(string); ok && f.Check == finding.CheckDefaultCredentials && strings.Trim(pw, "*") != "" && !strings.Contains(pw, "*") {
			t.Errorf("password %q not redacted", pw)
		}
	}
	for _, c := range []string{finding.CheckDefaultCredentials, finding.CheckUnauthenticatedAccess, finding.CheckCleartextProtocol} {
		if checks[c] == 0 {
			t.Errorf("demo found no %s", c)
		}
	}
	if bytes.Contains(b, []byte("xc3511")) {
		t.Fatal("Mirai password printed without --show-secrets")
	}

	// The demo also writes the assessed HTML report of the lab.
	html := filepath.Join(dir, "lab.html")
	if code, _, stderr := run(t, "demo", "--base", base, "-q", "--timeout", "1s", "--html", html, "-o", os.DevNull); code != 0 {
		t.Fatalf("demo --html: %d %s", code, stderr)
	}
	if hb, err := os.ReadFile(html); err != nil || !bytes.Contains(hb, []byte("PSTI")) || bytes.Contains(hb, []byte("xc3511")) {
		t.Fatalf("demo HTML: %v (%d bytes; must name PSTI and keep passwords redacted)", err, len(hb))
	}

	// Same lab, --show-secrets and --fail-on critical: exit 1, password shown.
	code, stdout, _ := run(t, "demo", "--base", base, "--format", "json", "-q", "--timeout", "1s", "--show-secrets", "--fail-on", "critical")
	if code != ExitFindings {
		t.Fatalf("--fail-on critical: exit %d, want 1", code)
	}
	if !strings.Contains(stdout, `"xc3511"`) {
		t.Fatal("--show-secrets did not reveal the telnet password")
	}
}

func TestScanNothingListening(t *testing.T) {
	host := daemontest.Addr()
	dir := t.TempDir()
	list := filepath.Join(dir, "targets")
	os.WriteFile(list, []byte(host+"\n"), 0o644)
	code, out, stderr := run(t, "scan", "-iL", list, "-p", "T:1,U:9", "--format", "json", "-q", "--timeout", "300ms", "--retries", "0")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if err := report.Validate([]byte(out)); err != nil {
		t.Fatal(err)
	}
	var rep finding.Report
	json.Unmarshal([]byte(out), &rep)
	if len(rep.Devices) != 0 || len(rep.Findings) != 0 {
		t.Fatalf("closed host produced %+v", rep)
	}
}

func TestProvisionsAndDeclare(t *testing.T) {
	code, out, stderr := run(t, "provisions", "--psti", "1", "--format", "json")
	if code != 0 || !strings.Contains(out, `"5.1-1"`) || !json.Valid([]byte(out)) {
		t.Fatalf("provisions: %d %q %s", code, out[:min(len(out), 120)], stderr)
	}
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "decl.yaml")
	if code, _, stderr := run(t, "declare", "init", "-o", tmpl); code != 0 {
		t.Fatalf("declare init: %d %s", code, stderr)
	}
	if code, _, _ := run(t, "declare", "init", "-o", tmpl); code != ExitError {
		t.Fatalf("declare init overwrote %s", tmpl)
	}
	// The unfilled template lacks the required identity fields.
	code, out, _ = run(t, "declare", "check", tmpl)
	if code != ExitFindings || !strings.Contains(out, "decl.yaml:") || !strings.Contains(out, "support_period.end is required") {
		t.Fatalf("declare check of the empty template: %d %q", code, out)
	}
}

// assess on the lab's first device: JSON carries a verdict per provision
// and 5.1-1 fails on the camera's default passwords; HTML is one page.
func TestAssessLabDevice(t *testing.T) {
	base := daemontest.Base()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb bytes.Buffer
	go Run(ctx, []string{"lab", "--base", base, "--devices", "1"}, strings.NewReader(""), &out, &errb)
	daemontest.WaitTCP(t, base, 23)
	code, stdout, stderr := run(t, "assess", "--target", base, "--format", "json", "-q", "--fail-on", "none", "--timeout", "1s")
	if code != 0 {
		t.Fatalf("assess: %d %s", code, stderr)
	}
	if err := report.Validate([]byte(stdout)); err != nil {
		t.Fatal(err)
	}
	var rep finding.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	verdicts := map[string]string{}
	for _, v := range rep.Verdicts {
		verdicts[v.Provision] = v.Verdict
	}
	if len(verdicts) < 60 || verdicts["5.1-1"] != "FAIL" {
		t.Fatalf("%d verdicts, 5.1-1 %q", len(verdicts), verdicts["5.1-1"])
	}
	html := filepath.Join(t.TempDir(), "a.html")
	if code, _, stderr := run(t, "assess", "--target", base, "--format", "html", "-o", html, "-q", "--fail-on", "none", "--timeout", "1s"); code != 0 {
		t.Fatalf("assess html: %d %s", code, stderr)
	}
	b, _ := os.ReadFile(html)
	if !bytes.HasPrefix(bytes.TrimSpace(b), []byte("<!DOCTYPE html>")) || !bytes.Contains(b, []byte("5.1-1")) {
		t.Fatalf("html report: %q", b[:min(len(b), 100)])
	}
}

func TestDiscoveredTargetsScope(t *testing.T) {
	devs := []discover.Device{
		{Address: netip.MustParseAddr("192.168.1.20"), Manufacturer: "D-Link Corporation"},
		{Address: netip.MustParseAddr("8.8.4.4"), Manufacturer: "Hikvision"},
		{Address: netip.MustParseAddr("10.0.0.7")},
	}
	specs, vendors, skipped := discoveredTargets(devs, false)
	if strings.Join(specs, " ") != "192.168.1.20 10.0.0.7" || strings.Join(skipped, " ") != "8.8.4.4" {
		t.Fatalf("specs %v skipped %v", specs, skipped)
	}
	if vendors["192.168.1.20"] != "dlink" || len(vendors) != 1 {
		t.Fatalf("vendors %v", vendors)
	}
	if specs, _, _ := discoveredTargets(devs, true); len(specs) != 3 {
		t.Fatalf("--allow-public: %v", specs)
	}
}

func TestFirmwareSBOM(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "fw.tar")
	writeTar(t, img, map[string]string{"etc/shadow": "root::19000:0:99999:7:::\n", "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
		"usr/lib/opkg/status": "Package: dropbear\nVersion: 2019.78-2\nArchitecture: mips\n\n"})
	sbom := filepath.Join(dir, "fw.cdx.json")
	code, out, stderr := run(t, "firmware", "--format", "json", "--fail-on", "none", "--sbom", sbom, img)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if err := report.Validate([]byte(out)); err != nil {
		t.Fatal(err)
	}
	var rep finding.Report
	json.Unmarshal([]byte(out), &rep)
	if len(rep.Firmware) != 1 || rep.Firmware[0].Size == 0 || len(rep.Findings) == 0 {
		t.Fatalf("firmware report %+v", rep.Firmware)
	}
	b, err := os.ReadFile(sbom)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		BOMFormat  string `json:"bomFormat"`
		Components []struct {
			Name string `json:"name"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || doc.BOMFormat != "CycloneDX" {
		t.Fatalf("sbom: %v %s", err, b[:min(len(b), 120)])
	}
}

// --robustness finds the lab device that reboots on one malformed input
// and names that input; without the flag nothing is sent.
func TestScanRobustness(t *testing.T) {
	base := daemontest.Base()
	cfg, err := lab.ParseConfig([]byte(`devices:
  - name: fragile-cam
    kind: camera
    vendor: Vistacam
    model: IPC-1
    services:
      - protocol: http
        port: 8080
        auth: basic
        username: admin
        random_password: true
        fragile: [http-oversized-header]
`), "fragile.yaml")
	if err != nil {
		t.Fatal(err)
	}
	running, err := lab.Start(context.Background(), cfg, lab.Options{Base: base})
	if err != nil {
		t.Fatal(err)
	}
	defer running.Close()
	args := []string{"scan", base, "-p", "8080", "--format", "json", "-q", "--fail-on", "none", "--robustness-recovery", "10s"}
	code, out, stderr := run(t, args...)
	if code != 0 || strings.Contains(out, finding.CheckDeviceUnresponsive) {
		t.Fatalf("without --robustness: exit %d, %s %s", code, out, stderr)
	}
	code, out, stderr = run(t, append(args, "--robustness")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep finding.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	var probes []any
	for _, f := range rep.Findings {
		if f.Check == finding.CheckDeviceUnresponsive {
			probes = append(probes, f.Evidence["probe"])
		}
	}
	if len(probes) != 1 || probes[0] != "http-oversized-header" {
		t.Fatalf("device-unresponsive findings name %v, want exactly [http-oversized-header]", probes)
	}
}

// Issue 5's acceptance: a lab device + a built image + a filled declaration
// give a verdict for every provision with what decided it, an HTML page and
// a PSTI statement that lists every item and flags the contradiction.
func TestAssessEndToEnd(t *testing.T) {
	base := daemontest.Base()
	running, err := lab.Start(context.Background(), lab.DefaultConfig(1), lab.Options{Base: base})
	if err != nil {
		t.Fatal(err)
	}
	defer running.Close()
	dir := t.TempDir()
	img := filepath.Join(dir, "cam-1.0.4.tar")
	writeTar(t, img, map[string]string{"etc/init.d/rcS": "#!/bin/sh\ntelnetd -l /bin/sh\n",
		"etc/shadow": "root:$1$abcdefgh$HuLe0kc/2uXQ2J0t4/1Rf.:19000:0:99999:7:::\n", "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n"})
	statement := filepath.Join(dir, "statement.md")
	html := filepath.Join(dir, "report.html")
	decl := "../../report/testdata/statement-complete.yaml"
	code, out, stderr := run(t, "assess", "--target", base, "--firmware", img, "--declarations", decl,
		"--statement", statement, "--format", "json", "-q", "--fail-on", "none", "--timeout", "1s")
	if code != 0 {
		t.Fatalf("assess: %d %s", code, stderr)
	}
	var rep finding.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Verdicts) != 68 {
		t.Fatalf("%d verdicts, want one per V2.1.1 provision (68)", len(rep.Verdicts))
	}
	for _, v := range rep.Verdicts {
		if v.Rule == "" || v.Reason == "" || v.Basis == "" {
			t.Errorf("verdict without its basis: %+v", v)
		}
		if v.Provision == "5.1-1" && (v.Verdict != "FAIL" || len(v.Findings) == 0) {
			t.Errorf("5.1-1: %+v", v)
		}
	}
	b, _ := os.ReadFile(statement)
	if !bytes.Contains(b, []byte("CONTRADICTED")) || !bytes.Contains(b, []byte("5.1-1")) {
		t.Errorf("statement does not flag the failed password requirement:\n%s", b)
	}
	if code, _, stderr := run(t, "assess", "--target", base, "--firmware", img, "--declarations", decl,
		"--format", "html", "-o", html, "-q", "--fail-on", "none", "--timeout", "1s"); code != 0 {
		t.Fatalf("assess html: %d %s", code, stderr)
	}
	if b, _ := os.ReadFile(html); !bytes.Contains(b, []byte("cam-1.0.4.tar")) || !bytes.Contains(b, []byte(base)) {
		t.Error("HTML report lacks the device or the image")
	}
}

func TestSelectChecks(t *testing.T) {
	all := scan.DefaultChecks(scan.DefaultProtocols(), scan.CheckOptions{})
	got, err := scan.SelectChecks(all, []string{"weak-ssh", " weak-tls"})
	if err != nil || len(got) != 2 || got[0].ID() != "weak-ssh" || got[1].ID() != "weak-tls" {
		t.Fatalf("got %v, %v", got, err)
	}
	if _, err := scan.SelectChecks(all, []string{"weak-telnet"}); err == nil || !strings.Contains(err.Error(), "default-credentials") {
		t.Fatalf("unknown id: %v", err)
	}
}
