package analyze

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/firmware/internal/imagetest"
	"github.com/iotcop/iotcop/internal/daemontest"
)

func TestCertificates(t *testing.T) {
	t.Parallel()
	daemontest.Require(t, "openssl")
	dir := t.TempDir()
	gen := func(name string, args ...string) (string, string) {
		imagetest.Run(t, dir, nil, "openssl", append([]string{"req", "-x509", "-nodes", "-subj", "/CN=" + name, "-keyout", name + ".key", "-out", name + ".pem"}, args...)...)
		b, err := os.ReadFile(filepath.Join(dir, name+".pem"))
		if err != nil {
			t.Fatal(err)
		}
		k, err := os.ReadFile(filepath.Join(dir, name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b), string(k)
	}
	weak, weakPriv := gen("weak", "-newkey", "rsa:1024", "-days", "3650")
	good, _ := gen("good", "-newkey", "rsa:2048", "-days", "3650", "-addext", "basicConstraints=critical,CA:TRUE")
	expired, _ := gen("old", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-days", "1")
	tree := treeOf(t, map[string]string{
		"etc/lighttpd/server.pem": weak + weakPriv, // certificate and key in one file
		"etc/device.crt":          weak,
		"etc/ssl/certs/ca.pem":    weak, // CA bundle folder: ignored
		"etc/ca.pem":              good, // a CA certificate: not self-signed-leaf, strong key
		"etc/mqtt/client.crt":     expired,
		"etc/bundle.pem":          strings.Repeat(weak, 5), // a bundle: ignored
	})
	// Judged three days from now, the one-day certificate has expired.
	c := NewCertificates()
	c.Now = func() time.Time { return time.Now().Add(72 * time.Hour) }
	fs, err := Run(context.Background(), tree, []Analyzer{c})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]finding.Severity{}
	for _, f := range fs {
		got[f.Path+" "+strings.Fields(f.Title)[0]+" "+strings.Fields(f.Title)[1]] = f.Severity
	}
	want := map[string]finding.Severity{
		"/etc/lighttpd/server.pem Certificate with":   finding.Medium,
		"/etc/lighttpd/server.pem Self-signed device": finding.Info,
		"/etc/mqtt/client.crt Expired certificate":    finding.Low,
		"/etc/device.crt Certificate with":            finding.Medium,
	}
	if len(got) != len(want) {
		t.Errorf("got %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}
