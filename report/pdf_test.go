package report

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/internal/daemontest"
)

func TestWritePDF(t *testing.T) {
	daemontest.Require(t, "chromium")
	t.Parallel()
	rep := &finding.Report{Tool: finding.Tool{Name: "iotcop", Version: "test"},
		StartedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), FinishedAt: time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC),
		Findings: []finding.Finding{{Check: finding.CheckDefaultCredentials, Severity: finding.Critical,
			Title: "telnet accepts a default credential", Host: "127.0.0.2", Port: 23, Transport: "tcp"}}}
	rep.Finalize()
	var buf bytes.Buffer
	if err := WritePDF(context.Background(), &buf, rep, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("%PDF-")) || !bytes.Contains(buf.Bytes(), []byte("%%EOF")) {
		t.Fatalf("not a PDF: %q", buf.Bytes()[:min(buf.Len(), 40)])
	}
}

func TestWritePDFWithoutChromium(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := WritePDF(context.Background(), &bytes.Buffer{}, &finding.Report{}, nil)
	if !errors.Is(err, ErrNoChromium) {
		t.Fatalf("err = %v, want ErrNoChromium", err)
	}
}

func TestLimitedBuffer(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	l := &limitedBuffer{buf: &b, max: 4}
	for _, s := range []string{"ab", "cdef", "gh"} {
		if n, err := l.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if b.String() != "abcd" {
		t.Errorf("kept %q, want abcd", b.String())
	}
}
