package analyze

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"math"
	"regexp"
	"strings"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/firmware/unpack"
)

// Secrets finds API keys and tokens shipped in the image: well-known
// cloud and service key formats anywhere (binaries included), and
// high-entropy values assigned to credential-looking names in text files.
// Each finding names the rule that matched.
type Secrets struct {
	// MaxFileSize bounds the files searched (default 16 MiB).
	MaxFileSize int64
}

// NewSecrets returns the analysis.
func NewSecrets() *Secrets { return &Secrets{MaxFileSize: 16 << 20} }

// PerFile implements PerFile: each file is judged on its own.
func (*Secrets) PerFile() bool { return true }

// Name implements Analyzer.
func (*Secrets) Name() string { return "secrets" }

// Required implements Analyzer.
func (s *Secrets) Required(_ string, info fs.FileInfo) bool {
	return info.Mode().IsRegular() && info.Size() >= 16 && info.Size() <= s.MaxFileSize
}

// secretRule is one detector. A rule with prefixes is only tried on
// files containing one of them, which keeps scanning binaries cheap.
type secretRule struct {
	id       string
	what     string
	prefixes []string
	re       *regexp.Regexp
	severity finding.Severity
	textOnly bool
	// anchored says every match starts with one of prefixes and is
	// shorter than anchoredWindow, so only the bytes after each prefix
	// need the regexp (which without a literal prefix crawls).
	anchored bool
	// lineLocal says no match spans a newline: only lines holding a
	// prefix need the regexp.
	lineLocal bool
}

// anchoredWindow is longer than any match of an anchored rule plus the
// byte after it (which a trailing \b looks at).
const anchoredWindow = 256

var secretRules = []secretRule{
	{id: "aws-access-key-id", what: "AWS access key ID", prefixes: []string{"AKIA"}, anchored: true, re: regexp.MustCompile(`\bAKIA[0-9A-Z]{16}\b`), severity: finding.High},
	{id: "aws-secret-access-key", what: "AWS secret access key", prefixes: []string{"ws_secret_access_key"},
		re: regexp.MustCompile(`(?i)aws_secret_access_key["']?\s*[:=]\s*["']?([A-Za-z0-9/+]{40})\b`), severity: finding.Critical},
	{id: "google-api-key", what: "Google API key", prefixes: []string{"AIza"}, anchored: true, re: regexp.MustCompile(`\bAIza[0-9A-Za-z_\-]{35}\b`), severity: finding.High},
	{id: "github-token", what: "GitHub token", prefixes: []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_"}, anchored: true, re: regexp.MustCompile(`\bgh[pousr]_[A-Za-z0-9]{36}\b`), severity: finding.High},
	{id: "slack-token", what: "Slack token", prefixes: []string{"xox"}, anchored: true, re: regexp.MustCompile(`\bxox[abprs]-[0-9A-Za-z\-]{10,72}\b`), severity: finding.High},
	{id: "stripe-secret-key", what: "Stripe secret key", prefixes: []string{"sk_live_"}, anchored: true, re: regexp.MustCompile(`\bsk_live_[0-9A-Za-z]{24,99}\b`), severity: finding.High},
	{id: "sendgrid-api-key", what: "SendGrid API key", prefixes: []string{"SG."}, anchored: true, re: regexp.MustCompile(`\bSG\.[0-9A-Za-z_\-]{22}\.[0-9A-Za-z_\-]{43}\b`), severity: finding.High},
	{id: "azure-storage-key", what: "Azure storage account key", prefixes: []string{"AccountKey="}, anchored: true, re: regexp.MustCompile(`AccountKey=([A-Za-z0-9+/]{86}==)`), severity: finding.High},
	{id: "private-url-credentials", what: "credentials in a URL", prefixes: []string{"://"},
		re: regexp.MustCompile(`\b(?:https?|ftp|mqtts?|rtsp)://([A-Za-z0-9._~\-]{1,64}):([^@\s/"']{4,64})@[A-Za-z0-9.\-]+`), severity: finding.High, textOnly: true, lineLocal: true},
	{id: "generic-credential-assignment", what: "secret assigned to a credential-looking name",
		re:       regexp.MustCompile(`(?i)\b[a-z0-9_.\-]*(?:api[_\-]?key|secret[_\-]?key|client[_\-]?secret|access[_\-]?token|auth[_\-]?token|shared[_\-]?secret|private[_\-]?key|secret)["']?\s*[:=]\s*["']([A-Za-z0-9+/=_\-.]{16,128})["']`),
		severity: finding.Medium, textOnly: true},
}

func containsAny(data []byte, prefixes []string) bool {
	if len(prefixes) == 0 {
		return true
	}
	for _, p := range prefixes {
		if bytes.Contains(data, []byte(p)) {
			return true
		}
	}
	return false
}

// genericHints are the words a line must contain before the (slow)
// generic assignment pattern is tried on it.
var genericHints = [][]byte{[]byte("key"), []byte("secret"), []byte("token")}

// ruleMatches returns up to 20 submatch index sets of r in data. The
// generic rule only looks at lines that mention a hint word.
func ruleMatches(r secretRule, data []byte) [][]int {
	switch {
	case r.anchored:
		return anchoredMatches(r, data, 20)
	case r.lineLocal:
		return lineMatches(r, data, 20)
	case r.id != "generic-credential-assignment":
		return r.re.FindAllSubmatchIndex(data, 20)
	}
	var out [][]int
	off := 0
	for len(out) < 20 && off < len(data) {
		end := bytes.IndexByte(data[off:], '\n')
		if end < 0 {
			end = len(data) - off
		}
		line := data[off : off+end]
		lower := bytes.ToLower(line)
		for _, h := range genericHints {
			if bytes.Contains(lower, h) {
				for _, m := range r.re.FindAllSubmatchIndex(line, 20-len(out)) {
					for i := range m {
						if m[i] >= 0 {
							m[i] += off
						}
					}
					out = append(out, m)
				}
				break
			}
		}
		off += end + 1
	}
	return out
}

// anchoredMatches returns what r.re.FindAllSubmatchIndex(data, limit)
// would for a rule whose matches all start with one of its prefixes: it
// runs the regexp only on the window after each prefix occurrence.
func anchoredMatches(r secretRule, data []byte, limit int) [][]int {
	leadingBoundary := strings.HasPrefix(r.re.String(), `\b`)
	next := make([]int, len(r.prefixes)) // next occurrence of each prefix at or after from
	for i := range next {
		next[i] = -2
	}
	var out [][]int
	for from := 0; len(out) < limit; {
		at := -1
		for k, p := range r.prefixes {
			if next[k] == -1 {
				continue
			}
			if next[k] < from {
				j := bytes.Index(data[from:], []byte(p))
				if j < 0 {
					next[k] = -1
					continue
				}
				next[k] = from + j
			}
			if at < 0 || next[k] < at {
				at = next[k]
			}
		}
		if at < 0 {
			break
		}
		from = at + 1
		if leadingBoundary && at > 0 && isWordByte(data[at-1]) {
			continue
		}
		m := r.re.FindSubmatchIndex(data[at:min(len(data), at+anchoredWindow)])
		if m == nil || m[0] != 0 {
			continue
		}
		for i := range m {
			if m[i] >= 0 {
				m[i] += at
			}
		}
		out = append(out, m)
		from = max(from, m[1])
	}
	return out
}

// lineMatches returns what r.re.FindAllSubmatchIndex(data, limit) would
// for a rule whose matches never span a newline, trying only the lines
// that hold one of its prefixes.
func lineMatches(r secretRule, data []byte, limit int) [][]int {
	var out [][]int
	for off := 0; len(out) < limit && off < len(data); {
		end := bytes.IndexByte(data[off:], '\n')
		if end < 0 {
			end = len(data) - off
		}
		if line := data[off : off+end]; containsAny(line, r.prefixes) {
			for _, m := range r.re.FindAllSubmatchIndex(line, limit-len(out)) {
				for i := range m {
					if m[i] >= 0 {
						m[i] += off
					}
				}
				out = append(out, m)
			}
		}
		off += end + 1
	}
	return out
}

// isText reports whether b looks like text (no NUL in its first 8 KiB).
func isText(b []byte) bool { return bytes.IndexByte(b[:min(len(b), 8192)], 0) < 0 }

// shannon returns the entropy of s in bits per character.
func shannon(s string) float64 {
	var counts [256]int
	for i := range len(s) {
		counts[s[i]]++
	}
	var h float64
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / float64(len(s))
			h -= p * math.Log2(p)
		}
	}
	return h
}

// placeholder reports values that are examples, not secrets.
func placeholder(v string) bool {
	l := strings.ToLower(v)
	for _, w := range []string{"example", "xxxx", "your_", "your-", "changeme", "placeholder", "dummy", "sample", "<", "${", "0000000000"} {
		if strings.Contains(l, w) {
			return true
		}
	}
	return false
}

// Analyze implements Analyzer.
func (s *Secrets) Analyze(ctx context.Context, _ *unpack.Tree, files []*unpack.File) ([]finding.Finding, error) {
	var out []finding.Finding
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		data := f.Data()
		text := isText(data)
		seen := map[string]bool{}
		for _, r := range secretRules {
			// Anchored rules find their prefixes themselves.
			if r.textOnly && !text || !r.anchored && !containsAny(data, r.prefixes) {
				continue
			}
			for _, m := range ruleMatches(r, data) {
				val := string(data[m[0]:m[1]])
				if len(m) >= 4 && m[2] >= 0 {
					val = string(data[m[len(m)-2]:m[len(m)-1]])
				}
				if placeholder(val) || seen[val] {
					continue
				}
				if r.id == "generic-credential-assignment" && shannon(val) < 3.5 {
					continue
				}
				seen[val] = true
				line := bytes.Count(data[:m[0]], []byte("\n")) + 1
				ev := layerEvidence(f, map[string]any{"rule": r.id, "secret": finding.Secret(val)})
				if text {
					ev["line"] = line
				} else {
					ev["offset"] = m[0]
				}
				out = append(out, finding.Finding{Check: finding.CheckEmbeddedSecret, Provisions: provisionsKeys,
					Severity: r.severity, Title: fmt.Sprintf("Embedded %s", r.what), Path: f.Path(), Evidence: ev,
					Remediation: "Remove the secret from the image; provision per-unit credentials or fetch short-lived tokens after device authentication."})
			}
		}
	}
	return out, nil
}
