package server

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/jobs"
	"github.com/iotcop/iotcop/lab"
	"github.com/iotcop/iotcop/store"
)

// webLab starts n devices with one web interface each: every even device
// has the universal admin/admin (a default-credentials flaw), every odd
// one its own random password. It returns the lab and the /24 around it.
func webLab(t *testing.T, n int) (*lab.Lab, netip.Prefix) {
	t.Helper()
	base := daemontest.Base()
	var cfg lab.Config
	for i := range n {
		svc := lab.ServiceSpec{Protocol: "http", Port: 8080, Auth: "basic", Username: "admin", Password: "admin"}
		if i%2 == 1 {
			svc.Password, svc.RandomPassword = "", true
		}
		cfg.Devices = append(cfg.Devices, lab.DeviceSpec{Name: fmt.Sprintf("cam-%d", i), Kind: "camera",
			Vendor: "Vistacam", Model: "IPC-2130", Firmware: "4.02", Services: []lab.ServiceSpec{svc}})
	}
	l, err := lab.Start(context.Background(), cfg, lab.Options{Base: base})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, netip.PrefixFrom(netip.MustParseAddr(base), 24).Masked()
}

// queueConfig is a working queue whose policy allows only scope.
func queueConfig(t *testing.T, workers int, scope ...string) *jobs.Config {
	t.Helper()
	sc, err := jobs.ParseScope(scope)
	if err != nil {
		t.Fatal(err)
	}
	return &jobs.Config{Workers: workers, PollInterval: 50 * time.Millisecond, Scope: sc, Name: "test-worker"}
}

// tokenWithID is token plus the new token's id.
func (f *fixture) tokenWithID(t *testing.T, user string, scopes ...string) (string, int64) {
	t.Helper()
	secret := f.token(t, user, scopes...)
	tok, err := f.st.LookupToken(context.Background(), secret)
	if err != nil {
		t.Fatal(err)
	}
	return secret, tok.ID
}

func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %T: %v: %s", v, err, body)
	}
	return v
}

// waitScan polls the API until the scan leaves queued/running. The
// deadline only stops a stuck test; nothing depends on how fast it is.
func waitScan(t *testing.T, base, token string, id int64) store.Scan {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, body := api(t, base, "GET", fmt.Sprintf("/api/v1/scans/%d", id), token, nil)
		if code != http.StatusOK {
			t.Fatalf("GET scan %d: %d %s", id, code, body)
		}
		sc := decode[store.Scan](t, body)
		if sc.Status == store.ScanDone || sc.Status == store.ScanFailed {
			return sc
		}
		if time.Now().After(deadline) {
			t.Fatalf("scan %d still %s after 2 minutes: %+v", id, sc.Status, sc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// auditHas reports whether the audit log has an entry of action by actor
// whose detail contains detail.
func auditHas(t *testing.T, st *store.Store, actor, action, detail string) bool {
	t.Helper()
	log, err := st.AuditLog(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(log, func(e store.AuditEntry) bool {
		return e.Actor == actor && e.Action == action && strings.Contains(e.Detail, detail)
	})
}

func scanCount(t *testing.T, st *store.Store) int {
	t.Helper()
	scans, err := st.Scans(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	return len(scans)
}

func TestScanAPI(t *testing.T) {
	t.Parallel()
	eachBackend(t, testScanAPI)
}

func testScanAPI(t *testing.T, location string) {
	const n = 4
	l, scope := webLab(t, n)
	f := newFixtureAt(t, location, Options{}, queueConfig(t, 2, scope.String()))
	op := f.token(t, "operator", store.ScopeRead, store.ScopeScan)
	targets := l.Devices()[0].Address + "-" + l.Devices()[n-1].Address
	req := []byte(fmt.Sprintf(`{"targets": %q, "ports": "8080", "timeout_ms": 1000}`, targets))

	// Refused before anything is queued.
	refused := []struct {
		name, token string
		body        []byte
		want        int
	}{
		{"viewer", f.token(t, "viewer", store.ScopeRead), req, http.StatusForbidden},
		{"viewer token with scope scan", f.token(t, "viewer", store.ScopeRead, store.ScopeScan), req, http.StatusForbidden},
		{"operator token without scope scan", f.token(t, "operator", store.ScopeRead, store.ScopeImport), req, http.StatusForbidden},
		{"no token", "", req, http.StatusUnauthorized},
		{"no targets", op, []byte(`{"targets": ""}`), http.StatusBadRequest},
		{"unknown field", op, []byte(`{"target": "127.0.0.1"}`), http.StatusBadRequest},
		{"bad ports", op, []byte(fmt.Sprintf(`{"targets": %q, "ports": "99999"}`, targets)), http.StatusBadRequest},
		{"unknown check", op, []byte(fmt.Sprintf(`{"targets": %q, "checks": ["no-such-check"]}`, targets)), http.StatusBadRequest},
		{"host name", op, []byte(`{"targets": "camera.example"}`), http.StatusBadRequest},
		{"outside the policy", op, []byte(`{"targets": "127.1.2.3", "ports": "8080"}`), http.StatusForbidden},
		{"public", op, []byte(`{"targets": "8.8.8.8"}`), http.StatusForbidden},
	}
	for _, tc := range refused {
		if code, body := api(t, f.ts.URL, "POST", "/api/v1/scans", tc.token, tc.body); code != tc.want {
			t.Fatalf("%s: %d, want %d: %s", tc.name, code, tc.want, body)
		}
	}
	if n := scanCount(t, f.st); n != 0 {
		t.Fatalf("refused requests recorded %d scans", n)
	}
	if !auditHas(t, f.st, "operator", "scan-refused", "127.1.2.3") || !auditHas(t, f.st, "operator", "scan-refused", "8.8.8.8") {
		t.Fatal("policy refusals not in the audit log")
	}

	code, body := api(t, f.ts.URL, "POST", "/api/v1/scans", op, req)
	if code != http.StatusAccepted {
		t.Fatalf("start scan: %d %s", code, body)
	}
	sc := decode[store.Scan](t, body)
	if sc.ID == 0 || sc.Kind != store.KindScan || sc.HostsTotal != n || sc.CreatedBy != "operator" {
		t.Fatalf("started scan = %+v", sc)
	}
	if !auditHas(t, f.st, "operator", "scan-start", fmt.Sprintf("scan %d targets %q", sc.ID, targets)) {
		t.Fatal("scan start not in the audit log")
	}
	// Anyone who may read follows it; a viewer too.
	viewer := f.token(t, "viewer", store.ScopeRead)
	sc = waitScan(t, f.ts.URL, viewer, sc.ID)
	if sc.Status != store.ScanDone || sc.ShardsDone != sc.ShardsTotal || sc.HostsDone != n || sc.Devices != n || sc.FinishedAt == nil {
		t.Fatalf("finished scan = %+v", sc)
	}
	code, body = api(t, f.ts.URL, "GET", fmt.Sprintf("/api/v1/scans/%d/findings", sc.ID), viewer, nil)
	if code != http.StatusOK {
		t.Fatalf("scan findings: %d %s", code, body)
	}
	sf := decode[ScanFindings](t, body)
	got := map[string]bool{}
	for _, fd := range sf.Findings {
		if fd.Check == finding.CheckDefaultCredentials {
			got[fd.Device] = true
		}
	}
	for i, d := range l.Devices() {
		if got[d.Address] != (i%2 == 0) {
			t.Errorf("default-credentials on %s = %t, want %t", d.Address, got[d.Address], i%2 == 0)
		}
	}
	if sf.Scan.ID != sc.ID {
		t.Fatalf("scan findings of scan %d", sf.Scan.ID)
	}
	// The fleet's findings have them too, and the list shows the scan.
	code, body = api(t, f.ts.URL, "GET", "/api/v1/findings?check=default-credentials", viewer, nil)
	if all := decode[struct{ Findings []store.StoredFinding }](t, body); code != http.StatusOK || len(all.Findings) != n/2 {
		t.Fatalf("findings: %d, %d default-credentials, want %d", code, len(all.Findings), n/2)
	}
	code, body = api(t, f.ts.URL, "GET", "/api/v1/scans", viewer, nil)
	if list := decode[struct{ Scans []store.Scan }](t, body); code != http.StatusOK || len(list.Scans) != 1 || list.Scans[0].ID != sc.ID {
		t.Fatalf("scan list: %d %s", code, body)
	}
	for _, p := range []string{"/api/v1/scans/999", "/api/v1/scans/999/findings"} {
		if code, _ := api(t, f.ts.URL, "GET", p, viewer, nil); code != http.StatusNotFound {
			t.Fatalf("GET %s: %d, want 404", p, code)
		}
	}
	if code, _ := api(t, f.ts.URL, "GET", "/api/v1/scans/x", viewer, nil); code != http.StatusBadRequest {
		t.Fatalf("GET /api/v1/scans/x: %d, want 400", code)
	}
	// The scan's page shows the result and its findings table.
	page := f.login(t, "operator").get(t, fmt.Sprintf("/scans/%d", sc.ID), http.StatusOK)
	for _, want := range []string{`id="scan-status" class="status-done">done<`, `id="scan-progress" max="` + fmt.Sprint(sc.HostsTotal) + `" value="` + fmt.Sprint(sc.HostsTotal) + `"`,
		`<table id="scan-findings">`, "default-credentials", l.Devices()[0].Address} {
		if !strings.Contains(page, want) {
			t.Fatalf("scan page lacks %q:\n%s", want, page)
		}
	}
}

func TestStartingNeedsAQueue(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	op := f.token(t, "operator", store.ScopeRead, store.ScopeScan)
	for _, tc := range []struct{ path, body string }{
		{"/api/v1/scans", `{"targets": "127.0.0.1"}`},
		{"/api/v1/firmware?name=fw.bin", "image"},
		{"/api/v1/schedules", `{"name": "n", "targets": "127.0.0.1", "every_seconds": 3600}`},
	} {
		code, body := api(t, f.ts.URL, "POST", tc.path, op, []byte(tc.body))
		if code != http.StatusServiceUnavailable || !bytes.Contains(body, []byte("no job queue configured")) {
			t.Fatalf("POST %s without a queue: %d %s", tc.path, code, body)
		}
	}
	if code, body := api(t, f.ts.URL, "GET", "/api/v1/scans", op, nil); code != http.StatusOK || !bytes.Contains(body, []byte(`"scans": []`)) {
		t.Fatalf("scan list without a queue: %d %s", code, body)
	}
	b := f.login(t, "operator")
	page := b.get(t, "/scans", http.StatusOK)
	if !strings.Contains(page, `id="queue-off"`) || strings.Contains(page, `id="scan-form"`) {
		t.Fatal("scans page without a queue shows the start form or no note")
	}
	if code, body := b.postForm(t, "/scans", url.Values{"targets": {"127.0.0.1"}, "csrf": {b.csrf}}); code != http.StatusServiceUnavailable || !strings.Contains(body, "no job queue configured") {
		t.Fatalf("scan form without a queue: %d", code)
	}
}

// tarGz builds a gzip-compressed tar image of files.
func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// firmwareImage has a universal root password ("admin", MD5 crypt).
func firmwareImage(t *testing.T) []byte {
	return tarGz(t, map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
		"etc/shadow": "root:$1$abcdefgh$l/LAqC8oJERu7Cmx6trtY/:18000:0:99999:7:::\n",
	})
}

// uploadFirmware posts the dashboard's firmware form.
func (b *browser) uploadFirmware(t *testing.T, csrf, name string, img []byte) *http.Response {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if csrf != "" {
		mw.WriteField("csrf", csrf)
	}
	fw, _ := mw.CreateFormFile("firmware", name)
	fw.Write(img)
	mw.Close()
	resp, err := b.c.Post(b.base+"/firmware", mw.FormDataContentType(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestFirmwareUpload(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	f := newFixtureAt(t, t.TempDir(), Options{MaxUploadBytes: limit}, queueConfig(t, 1))
	op := f.token(t, "operator", store.ScopeRead, store.ScopeScan)
	img := firmwareImage(t)
	refused := []struct {
		name, path, token string
		body              []byte
		want              int
	}{
		{"viewer", "/api/v1/firmware?name=fw.tar.gz", f.token(t, "viewer", store.ScopeRead, store.ScopeScan), img, http.StatusForbidden},
		{"no name", "/api/v1/firmware", op, img, http.StatusBadRequest},
		{"a path for a name", "/api/v1/firmware?name=../etc/fw.tar.gz", op, img, http.StatusBadRequest},
		{"control character", "/api/v1/firmware?name=fw%0a.bin", op, img, http.StatusBadRequest},
		{"too large", "/api/v1/firmware?name=big.bin", op, bytes.Repeat([]byte{0x5a}, limit+1), http.StatusRequestEntityTooLarge},
	}
	for _, tc := range refused {
		code, body := api(t, f.ts.URL, "POST", tc.path, tc.token, tc.body)
		if code != tc.want {
			t.Fatalf("%s: %d, want %d: %s", tc.name, code, tc.want, body)
		}
		if code == http.StatusRequestEntityTooLarge && !bytes.Contains(body, []byte("firmware image larger than the 65536 bytes")) {
			t.Fatalf("413 does not say why: %s", body)
		}
	}
	if n := scanCount(t, f.st); n != 0 {
		t.Fatalf("refused uploads recorded %d analyses", n)
	}

	code, body := api(t, f.ts.URL, "POST", "/api/v1/firmware?name=cam-fw-1.0.tar.gz", op, img)
	if code != http.StatusAccepted {
		t.Fatalf("upload: %d %s", code, body)
	}
	sc := decode[store.Scan](t, body)
	if sc.Kind != store.KindFirmware || sc.Targets != "cam-fw-1.0.tar.gz" {
		t.Fatalf("firmware scan = %+v", sc)
	}
	if !auditHas(t, f.st, "operator", "firmware-upload", fmt.Sprintf("scan %d image \"cam-fw-1.0.tar.gz\" size %d", sc.ID, len(img))) {
		t.Fatal("upload not in the audit log")
	}
	if sc = waitScan(t, f.ts.URL, op, sc.ID); sc.Status != store.ScanDone {
		t.Fatalf("firmware analysis = %+v", sc)
	}
	_, body = api(t, f.ts.URL, "GET", fmt.Sprintf("/api/v1/scans/%d/findings", sc.ID), op, nil)
	sf := decode[ScanFindings](t, body)
	if !slices.ContainsFunc(sf.Findings, func(fd store.StoredFinding) bool {
		return fd.Check == finding.CheckHardCodedCredentials && fd.Path == "/etc/shadow" && fd.Device == "firmware:cam-fw-1.0.tar.gz"
	}) {
		t.Fatalf("no hard-coded root password among %+v", sf.Findings)
	}

	// The dashboard's form: the same, then a redirect to the analysis.
	b := f.login(t, "operator")
	resp := b.uploadFirmware(t, b.csrf, "router.tar.gz", img)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/scans/") {
		t.Fatalf("firmware form: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := b.uploadFirmware(t, b.csrf, "big.bin", bytes.Repeat([]byte{1}, limit+1)); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized image in the form: %d", resp.StatusCode)
	}
	// A body past the form's limit is refused before it is read.
	if resp := b.uploadFirmware(t, b.csrf, "huge.bin", bytes.Repeat([]byte{1}, limit+2<<20)); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("form past its limit: %d", resp.StatusCode)
	}
	if n := scanCount(t, f.st); n != 2 {
		t.Fatalf("%d analyses recorded, want 2", n)
	}
}

func TestSchedules(t *testing.T) {
	t.Parallel()
	f := newFixtureAt(t, t.TempDir(), Options{}, queueConfig(t, 0, "127.88.0.0/16"))
	op := f.token(t, "operator", store.ScopeRead, store.ScopeScan)
	viewer := f.token(t, "viewer", store.ScopeRead)
	tests := []struct {
		name, token, body string
		want              int
	}{
		{"viewer", viewer, `{"name": "v", "targets": "127.88.0.1", "every_seconds": 3600}`, http.StatusForbidden},
		{"no name", op, `{"targets": "127.88.0.1", "every_seconds": 3600}`, http.StatusBadRequest},
		{"too often", op, `{"name": "x", "targets": "127.88.0.1", "every_seconds": 30}`, http.StatusBadRequest},
		{"too rarely", op, `{"name": "x", "targets": "127.88.0.1", "every_seconds": 99999999999}`, http.StatusBadRequest},
		{"bad ports", op, `{"name": "x", "targets": "127.88.0.1", "ports": "0-99999", "every_seconds": 3600}`, http.StatusBadRequest},
		{"outside the policy", op, `{"name": "wide", "targets": "10.0.0.0/8", "every_seconds": 3600}`, http.StatusForbidden},
		{"created", op, `{"name": "nightly", "targets": "127.88.0.1-127.88.0.9", "ports": "80,8080", "every_seconds": 86400}`, http.StatusCreated},
	}
	var created store.Schedule
	for _, tc := range tests {
		code, body := api(t, f.ts.URL, "POST", "/api/v1/schedules", tc.token, []byte(tc.body))
		if code != tc.want {
			t.Fatalf("%s: %d, want %d: %s", tc.name, code, tc.want, body)
		}
		if code == http.StatusCreated {
			created = decode[store.Schedule](t, body)
		}
	}
	if !auditHas(t, f.st, "operator", "schedule-refused", "10.0.0.0/8") {
		t.Fatal("policy refusal of a schedule not in the audit log")
	}
	if !auditHas(t, f.st, "operator", "schedule-create", fmt.Sprintf("schedule %d \"nightly\" every 1d", created.ID)) {
		t.Fatal("schedule creation not in the audit log")
	}
	code, body := api(t, f.ts.URL, "GET", "/api/v1/schedules", viewer, nil)
	type listed struct {
		ID           int64            `json:"id"`
		Name         string           `json:"name"`
		EverySeconds int64            `json:"every_seconds"`
		Request      jobs.ScanRequest `json:"request"`
	}
	list := decode[struct{ Schedules []listed }](t, body)
	want := listed{ID: created.ID, Name: "nightly", EverySeconds: 86400, Request: jobs.ScanRequest{Targets: "127.88.0.1-127.88.0.9", Ports: "80,8080"}}
	if code != http.StatusOK || len(list.Schedules) != 1 || fmt.Sprint(list.Schedules[0]) != fmt.Sprint(want) {
		t.Fatalf("schedule list: %d %s", code, body)
	}
	// What a schedule stored is what its runs submit.
	started, err := f.q.RunDueSchedules(context.Background(), created.NextRun)
	if err != nil || len(started) != 1 {
		t.Fatalf("due run started %v, %v", started, err)
	}
	if sc, _ := f.st.Scan(context.Background(), started[0]); sc.HostsTotal != 9 || sc.ScheduleID != created.ID {
		t.Fatalf("scheduled scan = %+v", sc)
	}
	del := fmt.Sprintf("/api/v1/schedules/%d", created.ID)
	if code, _ := api(t, f.ts.URL, "DELETE", del, viewer, nil); code != http.StatusForbidden {
		t.Fatalf("viewer deletes: %d", code)
	}
	if code, body := api(t, f.ts.URL, "DELETE", del, op, nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", code, body)
	}
	if code, _ := api(t, f.ts.URL, "DELETE", del, op, nil); code != http.StatusNotFound {
		t.Fatalf("delete again: %d", code)
	}
	if !auditHas(t, f.st, "operator", "schedule-delete", fmt.Sprintf("schedule %d", created.ID)) {
		t.Fatal("schedule deletion not in the audit log")
	}

	// The dashboard's form and delete button.
	b := f.login(t, "operator")
	code, page := b.postForm(t, "/schedules", url.Values{"name": {"weekly"}, "targets": {"127.88.1.0/24"}, "every": {"7d"}, "csrf": {b.csrf}})
	if code != http.StatusCreated || !strings.Contains(page, `id="schedule-created"`) || !strings.Contains(page, `<td class="schedule-every">7d</td>`) {
		t.Fatalf("schedule form: %d\n%s", code, page)
	}
	for _, bad := range []url.Values{
		{"name": {"x"}, "targets": {"127.88.1.1"}, "every": {"soon"}},
		{"name": {"x"}, "targets": {"127.88.1.1"}, "every": {"10s"}},
	} {
		bad.Set("csrf", b.csrf)
		if code, page := b.postForm(t, "/schedules", bad); code != http.StatusBadRequest || !strings.Contains(page, `id="schedule-error"`) {
			t.Fatalf("schedule form %v: %d", bad, code)
		}
	}
	scs, _ := f.st.Schedules(context.Background())
	if len(scs) != 1 || scs[0].Name != "weekly" || scs[0].Every != 7*24*time.Hour {
		t.Fatalf("schedules = %+v", scs)
	}
	if code, _ := b.postForm(t, fmt.Sprintf("/schedules/%d/delete", scs[0].ID), url.Values{"csrf": {b.csrf}}); code != http.StatusSeeOther {
		t.Fatalf("delete button: %d", code)
	}
	if scs, _ := f.st.Schedules(context.Background()); len(scs) != 0 {
		t.Fatalf("schedule left after delete: %+v", scs)
	}
}

func TestScanDashboard(t *testing.T) {
	t.Parallel()
	// A queue without workers: scans stay queued, which is what a page
	// that follows a running scan shows.
	f := newFixtureAt(t, t.TempDir(), Options{}, queueConfig(t, 0, "127.88.0.0/16"))
	op := f.login(t, "operator")
	resp, err := op.c.PostForm(op.base+"/scans", url.Values{"targets": {"127.88.0.1-127.88.0.3"}, "ports": {"8080"},
		"checks": {"default-credentials"}, "aggressive": {"1"}, "csrf": {op.csrf}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/scans/") {
		t.Fatalf("scan form: %d to %q", resp.StatusCode, loc)
	}
	scans, _ := f.st.Scans(context.Background(), 10)
	if len(scans) != 1 || !bytes.Contains(scans[0].Request, []byte(`"checks":["default-credentials"]`)) || !bytes.Contains(scans[0].Request, []byte(`"aggressive":true`)) {
		t.Fatalf("scan from the form = %+v (%s)", scans, scans[0].Request)
	}
	if !auditHas(t, f.st, "operator", "scan-start", `targets "127.88.0.1-127.88.0.3" ports "8080" checks default-credentials aggressive`) {
		t.Fatal("dashboard scan start not audited")
	}
	// Out of policy: refused, audited, the form comes back filled in.
	code, page := op.postForm(t, "/scans", url.Values{"targets": {"192.168.77.1"}, "ports": {"23"}, "csrf": {op.csrf}})
	if code != http.StatusForbidden || !strings.Contains(page, `id="scan-form-error"`) || !strings.Contains(page, `value="192.168.77.1"`) {
		t.Fatalf("out-of-policy form: %d\n%s", code, page)
	}
	if !auditHas(t, f.st, "operator", "scan-refused", "192.168.77.1") || scanCount(t, f.st) != 1 {
		t.Fatal("dashboard policy refusal not audited, or recorded")
	}

	sched, err := f.st.CreateSchedule(context.Background(), store.Schedule{Name: "nightly", Targets: "127.88.0.1", Every: time.Hour, CreatedBy: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	scanPage := loc
	startForms := []string{`id="scan-form"`, `id="firmware-form"`}
	for _, role := range []string{"viewer", "operator", "admin"} {
		b := f.login(t, role)
		list := b.get(t, "/scans", http.StatusOK)
		for _, want := range []string{`<table id="scans">`, fmt.Sprintf(`id="scan-row-%d"`, scans[0].ID), `class="scan-bar" max="1" value="0"`, `data-status="queued"`, `<script src="/static/iotcop.js"`} {
			if !strings.Contains(list, want) {
				t.Fatalf("%s: scans page lacks %q", role, want)
			}
		}
		for _, form := range startForms {
			if strings.Contains(list, form) != (role != "viewer") {
				t.Fatalf("%s: scans page shows %s: %t", role, form, role == "viewer")
			}
		}
		one := b.get(t, scanPage, http.StatusOK)
		for _, want := range []string{`id="scan" data-scan-id="`, `id="scan-status" class="status-queued">queued<`, `<progress id="scan-progress" max="3" value="0">`,
			`id="scan-shards-done">0<`, `id="scan-hosts-total">3<`, `<table id="scan-findings">`, `id="scan-live-note"`} {
			if !strings.Contains(one, want) {
				t.Fatalf("%s: scan page lacks %q:\n%s", role, want, one)
			}
		}
		sp := b.get(t, "/schedules", http.StatusOK)
		hasForm := strings.Contains(sp, `id="schedule-form"`) && strings.Contains(sp, fmt.Sprintf(`action="/schedules/%d/delete"`, sched.ID))
		if !strings.Contains(sp, `<td class="schedule-name">nightly</td>`) || hasForm != (role != "viewer") {
			t.Fatalf("%s: schedules page (forms %t)", role, hasForm)
		}
		if acct := b.get(t, "/account", http.StatusOK); !strings.Contains(acct, `id="password-form"`) {
			t.Fatalf("%s: account page lacks the password form", role)
		}
		if tok := b.get(t, "/tokens", http.StatusOK); strings.Contains(tok, `id="token-scope-scan"`) != (role != "viewer") {
			t.Fatalf("%s: token page offers scope scan: %t", role, role == "viewer")
		}
		b.get(t, "/scans/999", http.StatusNotFound)
		b.get(t, "/scans/abc", http.StatusBadRequest)
		if role == "viewer" {
			if code, _ := b.postForm(t, "/scans", url.Values{"targets": {"127.88.0.1"}, "csrf": {b.csrf}}); code != http.StatusForbidden {
				t.Fatalf("viewer scan form: %d", code)
			}
			if code, _ := b.postForm(t, "/schedules", url.Values{"name": {"v"}, "targets": {"127.88.0.1"}, "every": {"1h"}, "csrf": {b.csrf}}); code != http.StatusForbidden {
				t.Fatalf("viewer schedule form: %d", code)
			}
			if resp := b.uploadFirmware(t, b.csrf, "fw.bin", []byte("x")); resp.StatusCode != http.StatusForbidden {
				t.Fatalf("viewer firmware form: %d", resp.StatusCode)
			}
		}
	}
	if scanCount(t, f.st) != 1 {
		t.Fatal("a viewer's forms recorded a scan")
	}
}

func TestScriptAndContentSecurityPolicy(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	resp, err := http.Get(f.ts.URL + "/static/iotcop.js")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") ||
		!bytes.Contains(js, []byte(`"/api/v1/scans/"`)) {
		t.Fatalf("script: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self';", "connect-src 'self';"} {
		if !strings.Contains(csp, want) {
			t.Fatalf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-eval") || strings.Contains(csp, "script-src 'self' 'unsafe-inline'") {
		t.Fatalf("CSP allows inline or eval'd script: %q", csp)
	}
	for _, p := range []string{"/static/nope.js", "/static/..%2fopenapi.json"} {
		if code, _ := api(t, f.ts.URL, "GET", p, "", nil); code != http.StatusNotFound {
			t.Fatalf("GET %s: %d, want 404", p, code)
		}
	}
	// No page carries inline script.
	b := f.login(t, "admin")
	for _, p := range []string{"/", "/scans", "/schedules", "/account", "/tokens", "/users"} {
		page := b.get(t, p, http.StatusOK)
		if strings.Count(page, "<script") != 1 || !strings.Contains(page, `<script src="/static/iotcop.js" defer></script>`) {
			t.Fatalf("%s has script other than the embedded file", p)
		}
	}
}
