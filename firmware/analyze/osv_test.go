package analyze

import (
	"archive/zip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotcop/iotcop/finding"
)

func TestCompareVersions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1.36.1", "1.36.1", 0}, {"1.35.0", "1.36.1", -1}, {"1.10", "1.9", 1}, {"1.1.1w", "1.1.1", 1},
		{"1.1.1w", "1.1.1x", -1}, {"2022.83", "2024.84", -1}, {"1:1.35.0-4", "1.36", 1}, {"1.0~rc1", "1.0", -1},
		{"9.2p1", "9.3", -1}, {"3.0.22", "3.0.9", 1}, {"0", "0.0.1", -1},
	} {
		if got := compareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := compareVersions(tc.b, tc.a); got != -tc.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

const osvBusybox = `{"id":"OSV-2022-1","aliases":["CVE-2022-48174"],"summary":"ash stack overflow",
"affected":[{"package":{"ecosystem":"Debian:12","name":"busybox"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.36.0"}]}]}],
"database_specific":{"severity":"CRITICAL"}}`

const osvDropbear = `{"id":"OSV-2016-2","aliases":["CVE-2016-7406"],"summary":"format string",
"affected":[{"package":{"name":"dropbear"},"ranges":[{"type":"SEMVER","events":[{"introduced":"2013.1"},{"fixed":"2016.74"}]}]}]}`

const osvOpenSSL = `{"id":"OSV-X","affected":[{"package":{"name":"openssl"},"versions":["1.1.1k"]}]}`

const osvWithdrawn = `{"id":"OSV-W","withdrawn":"2024-01-01T00:00:00Z","affected":[{"package":{"name":"busybox"},"versions":["1.35.0"]}]}`

func TestOSVMatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, rec := range map[string]string{"a/busybox.json": osvBusybox, "dropbear.json": osvDropbear, "openssl.json": osvOpenSSL, "w.json": osvWithdrawn} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(rec), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	zipPath := filepath.Join(t.TempDir(), "osv.zip")
	zf, _ := os.Create(zipPath)
	zw := zip.NewWriter(zf)
	for name, rec := range map[string]string{"busybox.json": osvBusybox, "dropbear.json": osvDropbear, "openssl.json": osvOpenSSL} {
		w, _ := zw.Create(name)
		w.Write([]byte(rec))
	}
	zw.Close()
	zf.Close()
	comps := []Component{
		{Name: "busybox", Version: "1.35.0", Path: "/bin/busybox", Source: "version-string"},
		{Name: "dropbear", Version: "2016.74", Path: "/usr/sbin/dropbear"}, // fixed version: not affected
		{Name: "openssl", Version: "1.1.1k", Path: "/usr/lib/libcrypto.so.1.1"},
		{Name: "lighttpd", Version: "1.4.69"},
	}
	for _, src := range []string{dir, zipPath} {
		db, err := LoadOSV(src)
		if err != nil {
			t.Fatal(err)
		}
		if db.Records != 3 {
			t.Errorf("%s: %d records, want 3 (withdrawn skipped)", src, db.Records)
		}
		fs := db.Match(comps)
		if len(fs) != 2 {
			t.Fatalf("%s: %d findings: %v", src, len(fs), fs)
		}
		bb := fs[0]
		if bb.Check != finding.CheckKnownVulnerability || bb.Severity != finding.Critical || !strings.Contains(bb.Title, "busybox 1.35.0 potentially affected by CVE-2022-48174") || bb.Path != "/bin/busybox" {
			t.Errorf("busybox finding %+v", bb)
		}
		if fs[1].Evidence["match"] != "version listed as affected" {
			t.Errorf("openssl finding %+v", fs[1])
		}
	}
	if _, err := LoadOSV(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing database: no error")
	}
}
