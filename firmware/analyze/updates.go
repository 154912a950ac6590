package analyze

import (
	"bytes"
	"context"
	"io/fs"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/firmware/unpack"
)

// UpdateURLs reports firmware update and download URLs that use plain
// HTTP or FTP, in scripts, configurations and binaries: an update fetched
// without TLS can be tampered with unless the image itself is signed and
// checked. Reported under cleartext-protocol, informational, once per URL.
type UpdateURLs struct {
	mu   sync.Mutex
	seen map[string]*urlSighting
}

// urlSighting is where a URL was first seen (smallest path, so the report
// does not depend on the order files were unpacked in) and how often.
type urlSighting struct {
	f     finding.Finding
	count int
}

// NewUpdateURLs returns the analysis.
func NewUpdateURLs() *UpdateURLs { return &UpdateURLs{seen: map[string]*urlSighting{}} }

// Name implements Analyzer.
func (*UpdateURLs) Name() string { return "update-urls" }

// PerFile implements PerFile.
func (*UpdateURLs) PerFile() bool { return true }

// Required implements Analyzer.
func (*UpdateURLs) Required(_ string, info fs.FileInfo) bool {
	return info.Mode().IsRegular() && info.Size() >= 16 && info.Size() <= 16<<20
}

var (
	reCleartextURL = regexp.MustCompile(`\b(?:http|ftp|tftp)://[A-Za-z0-9.\-]+(?::\d+)?/[A-Za-z0-9._~%!$&'()*+,;=:@/\-]*`)
	updateWords    = []string{"firmware", "upgrade", "update", "/fw", "ota", ".bin", ".img", ".trx", "fwupdate", "download"}
)

// privateHost reports hosts that are not on the internet.
func privateHost(h string) bool {
	return h == "localhost" || strings.HasPrefix(h, "127.") || strings.HasPrefix(h, "10.") || strings.HasPrefix(h, "192.168.") ||
		strings.HasPrefix(h, "169.254.") || strings.HasSuffix(h, ".local") || strings.HasSuffix(h, ".lan") ||
		!strings.Contains(h, ".") || strings.HasPrefix(h, "172.") && len(h) > 6 && h[4] >= '1' && h[4] <= '3'
}

// Analyze implements Analyzer.
func (u *UpdateURLs) Analyze(ctx context.Context, _ *unpack.Tree, files []*unpack.File) ([]finding.Finding, error) {
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		data := f.Data()
		if !bytes.Contains(data, []byte("tp://")) {
			continue
		}
		for _, m := range reCleartextURL.FindAll(data, 200) {
			raw := string(m)
			lower := strings.ToLower(raw)
			match := false
			for _, w := range updateWords {
				if strings.Contains(lower, w) {
					match = true
					break
				}
			}
			pu, err := url.Parse(raw)
			if !match || err != nil || privateHost(pu.Hostname()) || strings.Contains(pu.Hostname(), "example") {
				continue
			}
			fd := finding.Finding{Check: finding.CheckCleartextProtocol, Provisions: []string{"5.3-7", "5.3-10"},
				Severity: finding.Info, Title: "Update URL over " + strings.ToUpper(pu.Scheme) + " without TLS: " + pu.Host,
				Path: f.Path(), Evidence: layerEvidence(f, map[string]any{"url": raw, "scheme": pu.Scheme}),
				Remediation: "Fetch updates over HTTPS with certificate validation and verify a signature on the image before installing it."}
			u.mu.Lock()
			if s := u.seen[raw]; s == nil {
				u.seen[raw] = &urlSighting{f: fd, count: 1}
			} else {
				s.count++
				if fd.Path < s.f.Path {
					s.f = fd
				}
			}
			u.mu.Unlock()
		}
	}
	return nil, nil
}

// Finish implements Finisher: one finding per URL.
func (u *UpdateURLs) Finish(context.Context) ([]finding.Finding, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []finding.Finding
	for _, s := range u.seen {
		s.f.Evidence["files"] = s.count
		out = append(out, s.f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Evidence["url"].(string) < out[j].Evidence["url"].(string) })
	return out, nil
}
