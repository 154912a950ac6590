package report

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/iotcop/iotcop/assess"
	"github.com/iotcop/iotcop/finding"
)

// PDF is the --format value for a PDF of the HTML report. ParseFormat does
// not accept it because rendering needs Chromium: callers check for it
// and use WritePDF.
const PDF Format = "pdf"

// ErrNoChromium says no headless Chromium was found to render a PDF.
var ErrNoChromium = errors.New("PDF output needs Chromium (Debian: apt install chromium); install it or use --format html and print that")

// chromiumNames are the executables tried, in order.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// maxPDF caps the PDF read back from Chromium.
const maxPDF = 512 << 20

// FindChromium returns the path of a Chromium executable on PATH, or
// ErrNoChromium.
func FindChromium() (string, error) {
	for _, n := range chromiumNames {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", ErrNoChromium
}

// WritePDF renders the HTML report of rep (with assessment a, may be nil)
// to PDF with headless Chromium and writes it to w. Chromium runs with a
// throwaway profile and every background network feature off; the page is
// self-contained, so nothing is fetched. It gives up after two minutes or
// when ctx ends.
func WritePDF(ctx context.Context, w io.Writer, rep *finding.Report, a *assess.Assessment) error {
	bin, err := FindChromium()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "iotcop-pdf-")
	if err != nil {
		return fmt.Errorf("render pdf: %w", err)
	}
	defer os.RemoveAll(dir)
	page := filepath.Join(dir, "report.html")
	out := filepath.Join(dir, "report.pdf")
	profile := filepath.Join(dir, "profile")
	var html bytes.Buffer
	if err := WriteHTML(&html, rep, a); err != nil {
		return err
	}
	if err := os.WriteFile(page, html.Bytes(), 0o600); err != nil {
		return fmt.Errorf("render pdf: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--no-pdf-header-footer", "--user-data-dir="+profile, "--print-to-pdf="+out, "file://"+page)
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{buf: &stderr, max: 8 << 10}
	cmd.Stdout = io.Discard
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("render pdf with %s: %w: %s", bin, err, bytes.TrimSpace(stderr.Bytes()))
	}
	f, err := os.Open(out)
	if err != nil {
		return fmt.Errorf("render pdf with %s: no PDF written: %w: %s", bin, err, bytes.TrimSpace(stderr.Bytes()))
	}
	defer f.Close()
	head := make([]byte, 5)
	if _, err := io.ReadFull(f, head); err != nil || string(head) != "%PDF-" {
		return fmt.Errorf("render pdf with %s: output is not a PDF", bin)
	}
	if _, err := w.Write(head); err != nil {
		return fmt.Errorf("write pdf: %w", err)
	}
	if _, err := io.Copy(w, io.LimitReader(f, maxPDF)); err != nil {
		return fmt.Errorf("write pdf: %w", err)
	}
	return nil
}

// limitedBuffer keeps the first max bytes written and discards the rest.
type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
