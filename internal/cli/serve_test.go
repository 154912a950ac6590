package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/report"
	"github.com/iotcop/iotcop/server"
)

// syncBuffer is written by the serving goroutine and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var servingLine = regexp.MustCompile(`serving (https://[^ ]+/) `)

// startServe runs `iotcop serve` until the test ends and returns its URL
// and standard output so far.
func startServe(t *testing.T, dataDir string) (string, *syncBuffer, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errb := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"serve", "--data", dataDir, "--listen", daemontest.Addr() + ":0"}, strings.NewReader(""), out, errb)
	}()
	var once sync.Once
	code := 0
	stop := func() int {
		once.Do(func() {
			cancel()
			code = <-done
		})
		return code
	}
	// Wait for the serving line (or an early exit); no timing is asserted.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := servingLine.FindStringSubmatch(out.String()); m != nil {
			t.Cleanup(func() { stop() })
			return m[1], out, stop
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d: %s %s", code, out.String(), errb.String())
		default:
		}
	}
	cancel()
	t.Fatalf("serve did not start: %s %s", out.String(), errb.String())
	return "", nil, nil
}

func TestServeAndPushEndToEnd(t *testing.T) {
	dataDir := t.TempDir()
	base, out, stop := startServe(t, dataDir)
	m := regexp.MustCompile(`one-time secret .*:\n\n    (\S+)\n`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no one-time secret printed:\n%s", out.String())
	}
	secret := m[1]
	certPath := filepath.Join(dataDir, server.SelfSignedCert)
	pem, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	csrfField := regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	get := func(path string) string {
		resp, err := c.Get(base + strings.TrimPrefix(path, "/"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	loginCSRF := csrfField.FindStringSubmatch(get("/login"))[1]
	resp, err := c.PostForm(base+"login", url.Values{"name": {server.AdminName}, "password": {secret}, "csrf": {loginCSRF}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login with the printed secret: %d", resp.StatusCode)
	}
	csrf := csrfField.FindStringSubmatch(get("/tokens"))[1]
	req, _ := http.NewRequest("POST", base+"api/v1/tokens", strings.NewReader(`{"name":"ci","scopes":["read","import"]}`))
	req.Header.Set("X-CSRF-Token", csrf)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok server.TokenResponse
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || tok.Token == "" {
		t.Fatalf("create token: %d", resp.StatusCode)
	}

	rep := &finding.Report{Tool: finding.Tool{Name: "iotcop", Version: "test"}, StartedAt: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC),
		Devices: []finding.Device{{Address: "127.0.0.42", Services: []finding.Service{{Port: 23, Transport: "tcp", Protocol: "telnet"}}}},
		Findings: []finding.Finding{{Check: finding.CheckDefaultCredentials, Provisions: []string{"5.1-1"}, Severity: finding.Critical,
			Title: "telnet accepts a default credential", Host: "127.0.0.42", Port: 23, Transport: "tcp", Protocol: "telnet"}}}
	rep.FinishedAt = rep.StartedAt.Add(time.Second)
	rep.Finalize()
	var buf bytes.Buffer
	report.WriteJSON(&buf, rep)
	reportPath := filepath.Join(t.TempDir(), "scan.json")
	os.WriteFile(reportPath, buf.Bytes(), 0o600)

	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"pinned certificate", []string{"--ca", certPath, "--token", tok.Token}, ExitClean, "stored as report 1: 1 devices, 1 findings"},
		{"again is a duplicate", []string{"--insecure", "--token", tok.Token}, ExitClean, "already stored as report 1"},
		{"unverified certificate refused", []string{"--token", tok.Token}, ExitError, "certificate"},
		{"wrong token refused", []string{"--insecure", "--token", "iotcop_wrong"}, ExitError, "401"},
		{"no token", []string{"--insecure"}, ExitError, "no token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := run(t, append([]string{"push", reportPath, "--server", base}, tc.args...)...)
			if code != tc.wantCode || !strings.Contains(stdout+stderr, tc.want) {
				t.Fatalf("push %v: exit %d, want %d with %q:\n%s%s", tc.args, code, tc.wantCode, tc.want, stdout, stderr)
			}
		})
	}
	if code, _, stderr := run(t, "push", reportPath, "--server", "https://192.0.2.1:8443", "--insecure", "--token", "x"); code != ExitError || !strings.Contains(stderr, "loopback") {
		t.Fatalf("--insecure to a non-loopback server: %d %s", code, stderr)
	}
	req, _ = http.NewRequest("GET", base+"api/v1/devices/127.0.0.42", nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err = (&http.Client{Transport: c.Transport}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var detail server.DeviceDetail
	json.NewDecoder(resp.Body).Decode(&detail)
	resp.Body.Close()
	if detail.Device.Address != "127.0.0.42" || len(detail.History) != 1 || detail.History[0].Findings != 1 {
		t.Fatalf("pushed device: %+v", detail)
	}

	if code := stop(); code != ExitClean {
		t.Fatalf("serve exit %d", code)
	}
	// The secret is stored nowhere in clear.
	files, _ := filepath.Glob(filepath.Join(dataDir, "*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte(secret)) || bytes.Contains(b, []byte(tok.Token)) {
			t.Fatalf("%s holds the admin secret or the token in clear", f)
		}
	}
	// A restart prints no secret and keeps the data.
	_, out2, _ := startServe(t, dataDir)
	if strings.Contains(out2.String(), "one-time") || strings.Contains(out2.String(), secret) {
		t.Fatalf("second start printed a secret:\n%s", out2.String())
	}
}

func TestServeUsageErrors(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"serve", "--no-tls", "--listen", "0.0.0.0:8443", "--data", t.TempDir()}, "loopback"},
		{[]string{"serve", "--tls-cert", "x.pem", "--data", t.TempDir()}, "go together"},
		{[]string{"serve", "--tls-self-signed", "--no-tls", "--data", t.TempDir()}, "choose one"},
		{[]string{"push", "r.json", "--server", "ftp://x", "--token", "t"}, "want https"},
		{[]string{"push", "r.json", "--server", "http://192.0.2.1", "--token", "t"}, "plain HTTP"},
		{[]string{"push", "/nonexistent.json", "--server", "https://127.0.0.1:1", "--token", "t"}, "read report"},
	}
	for _, tc := range tests {
		code, _, stderr := run(t, tc.args...)
		if code != ExitError || !strings.Contains(stderr, tc.wantErr) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, stderr, tc.wantErr)
		}
	}
}
