package analyze

import (
	"bytes"
	"context"
	"io/fs"
	"net/url"
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

var updateWords = []string{"firmware", "upgrade", "update", "/fw", "ota", ".bin", ".img", ".trx", "fwupdate", "download"}

// cleartextURLs returns up to limit non-overlapping plain http, ftp and
// tftp URLs with a path in data, leftmost first: what the pattern
//
//	\b(?:http|ftp|tftp)://[A-Za-z0-9.\-]+(?::\d+)?/[A-Za-z0-9._~%!$&'()*+,;=:@/\-]*
//
// finds with FindAll (the tests hold the two equal). Written out because
// the regexp, which has no literal prefix, scans binaries at a few MB/s;
// this jumps from one "tp://" to the next.
func cleartextURLs(data []byte, limit int) [][]byte {
	var out [][]byte
	for pos := 0; len(out) < limit; {
		j := bytes.Index(data[pos:], []byte("tp://"))
		if j < 0 {
			break
		}
		i := pos + j
		next := i + 1
		start := -1
		switch {
		case i-2 >= pos && (data[i-2] == 'h' && data[i-1] == 't' || data[i-2] == 't' && data[i-1] == 'f'):
			start = i - 2
		case i-1 >= pos && data[i-1] == 'f':
			start = i - 1
		}
		if start >= 0 && (start == 0 || !isWordByte(data[start-1])) {
			k := i + 5
			for k < len(data) && isHostByte(data[k]) {
				k++
			}
			if k > i+5 {
				if k < len(data) && data[k] == ':' {
					d := k + 1
					for d < len(data) && data[d] >= '0' && data[d] <= '9' {
						d++
					}
					if d > k+1 && d < len(data) && data[d] == '/' {
						k = d
					}
				}
				if k < len(data) && data[k] == '/' {
					k++
					for k < len(data) && isURLPathByte(data[k]) {
						k++
					}
					out = append(out, data[start:k])
					next = k
				}
			}
		}
		pos = next
	}
	return out
}

func isWordByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '_'
}

func isHostByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '.' || c == '-'
}

func isURLPathByte(c byte) bool {
	return isHostByte(c) || strings.IndexByte("_~%!$&'()*+,;=:@/", c) >= 0
}

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
		for _, m := range cleartextURLs(data, 200) {
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
