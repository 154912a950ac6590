package main

import (
	"github.com/iotcop/iotcop/internal/daemontest"

	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"
)

// Categories the weaknesses are compared in.
var (
	tlsCategories = []string{"protocol", "suites", "cert"}
	sshCategories = []string{"kex", "host_key", "cipher", "mac", "other"}
)

// weaknesses are what one tool names on one server: normalised items by
// category, plus what cannot be compared (named only in the tool's own
// terms, outside the other tool's scope) and, for the other tools,
// verdicts iotcop's policy deliberately does not share.
type weaknesses struct {
	items       map[string]map[string]bool
	notCompared map[string]bool
	deliberate  map[string]string // item → why iotcop passes it
}

func newWeaknesses() weaknesses {
	return weaknesses{items: map[string]map[string]bool{}, notCompared: map[string]bool{}, deliberate: map[string]string{}}
}

func (w weaknesses) add(category, item string) {
	if w.items[category] == nil {
		w.items[category] = map[string]bool{}
	}
	w.items[category][item] = true
}

func (w weaknesses) has(category, item string) bool { return w.items[category][item] }

func (w weaknesses) count() int {
	n := 0
	for _, m := range w.items {
		n += len(m)
	}
	return n
}

type report struct {
	Findings []struct {
		Check    string         `json:"check"`
		Evidence map[string]any `json:"evidence"`
	} `json:"findings"`
}

// parseIotcop reads iotcop's JSON report: the weak-tls or weak-ssh
// finding's evidence.
func parseIotcop(t *daemontest.ProgramTB, path, kind string) weaknesses {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read iotcop report: %v", err)
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("parse iotcop report %s: %v", path, err)
	}
	w := newWeaknesses()
	for _, f := range r.Findings {
		switch {
		case kind == "tls" && f.Check == "weak-tls":
			for _, v := range strs(f.Evidence["versions_accepted"]) {
				if v == "SSLv2" || v == "SSLv3" || v == "TLSv1.0" || v == "TLSv1.1" {
					w.add("protocol", v)
				}
			}
			for _, s := range list(f.Evidence["weak_suites"]) {
				for _, name := range strs(s.(map[string]any)["weakness"]) {
					w.add("suites", name)
				}
			}
			for _, p := range list(f.Evidence["problems"]) {
				kind := p.(map[string]any)["kind"].(string)
				switch kind {
				case "sslv3", "tls1.0", "tls1.1", "weak-suite":
				case "no-modern-tls":
					w.add("protocol", "no TLS 1.2+")
				default:
					w.add("cert", kind)
				}
			}
		case kind == "ssh" && f.Check == "weak-ssh":
			weak, _ := f.Evidence["weak"].(map[string]any)
			for cat, ws := range weak {
				for _, x := range list(ws) {
					alg := x.(map[string]any)["algorithm"].(string)
					switch cat {
					case "host_key_size":
						w.add("host_key", "key size: "+alg)
					case "protocol":
						w.add("other", alg)
					default:
						w.add(cat, alg)
					}
				}
			}
		}
	}
	return w
}

func list(v any) []any { l, _ := v.([]any); return l }

func strs(v any) []string {
	var out []string
	for _, x := range list(v) {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// testsslSuites maps testssl.sh's cipher list ids to iotcop's weakness
// names; an id is agreed on when iotcop names any of them.
var testsslSuites = map[string][]string{
	"cipherlist_NULL":      {"NULL"},
	"cipherlist_aNULL":     {"anonymous"},
	"cipherlist_EXPORT":    {"EXPORT"},
	"cipherlist_LOW":       {"DES", "RC4", "EXPORT"}, // "64 Bit + DES, RC[2,4], MD5"
	"cipherlist_3DES_IDEA": {"3DES", "IDEA"},
	"RC4":                  {"RC4"},
	"SWEET32":              {"3DES", "IDEA"},
}

// testsslEntry is one item of testssl.sh's flat JSON file.
type testsslEntry struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Finding  string `json:"finding"`
}

var certSuffix = regexp.MustCompile(` <[^>]*>$`)

// parseTestssl reads testssl.sh's --jsonfile: items of severity LOW and
// above, mapped to iotcop's categories where they mean the same thing.
func parseTestssl(t *daemontest.ProgramTB, path string) weaknesses {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read testssl report: %v", err)
	}
	var es []testsslEntry
	if err := json.Unmarshal(b, &es); err != nil {
		t.Fatalf("parse testssl report %s: %v", path, err)
	}
	w := newWeaknesses()
	for _, e := range es {
		switch e.Severity {
		case "LOW", "MEDIUM", "HIGH", "CRITICAL":
		default:
			continue
		}
		id := certSuffix.ReplaceAllString(e.ID, "")
		switch {
		case id == "SSLv2" || id == "SSLv3":
			w.add("protocol", id)
		case id == "TLS1":
			w.add("protocol", "TLSv1.0")
		case id == "TLS1_1":
			w.add("protocol", "TLSv1.1")
		case testsslSuites[id] != nil:
			w.add("suites", id)
		case id == "cert_expirationStatus" && strings.Contains(e.Finding, "expired"):
			w.add("cert", "expired")
		case id == "cert_chain_of_trust" && strings.Contains(e.Finding, "self signed"):
			w.add("cert", "self-signed")
		case id == "cert_keySize":
			w.add("cert", "weak-key")
		case id == "cert_signatureAlgorithm":
			w.add("cert", "weak-signature")
		case id == "cert_trust" && strings.Contains(e.Finding, "not match"):
			w.add("cert", "name-mismatch")
		default:
			w.notCompared[fmt.Sprintf("%s (%s)", id, e.Severity)] = true
		}
	}
	return w
}

var (
	auditLine = regexp.MustCompile(`^\((kex|key|enc|mac)\) (\S+)(?: \(\d+-bit\))?\s+-- \[(fail|warn|info)\] (.*)$`)
	auditMore = regexp.MustCompile("^\\s+`- \\[(fail|warn|info)\\] (.*)$")
)

// sshAuditDifferences are what ssh-audit 2.5 warns about or fails that
// iotcop's weak-ssh policy deliberately passes (see check.sshPolicy).
var sshAuditDifferences = map[string]string{
	"kex ecdh-sha2-nistp256": "NIST curve (SP 800-186, RFC 9142)", "kex ecdh-sha2-nistp384": "NIST curve (SP 800-186, RFC 9142)",
	"kex ecdh-sha2-nistp521": "NIST curve (SP 800-186, RFC 9142)", "key ecdsa-sha2-nistp256": "NIST curve (SP 800-186)",
	"key ecdsa-sha2-nistp384": "NIST curve (SP 800-186)", "key ecdsa-sha2-nistp521": "NIST curve (SP 800-186)",
	"kex sntrup761x25519-sha512@openssh.com": "post-quantum hybrid, OpenSSH's default",
	"kex sntrup761x25519-sha512":             "post-quantum hybrid, OpenSSH's default",
	"mac hmac-sha1":                          "HMAC-SHA1 (SP 800-131A still allows it)",
	"mac hmac-sha1-etm@openssh.com":          "HMAC-SHA1 (SP 800-131A still allows it)",
	"mac hmac-sha2-256":                      "encrypt-and-MAC, RFC 4253's own construction",
	"mac hmac-sha2-512":                      "encrypt-and-MAC, RFC 4253's own construction",
	"mac umac-128@openssh.com":               "encrypt-and-MAC, RFC 4253's own construction",
}

var auditCategory = map[string]string{"kex": "kex", "key": "host_key", "enc": "cipher", "mac": "mac"}

// parseSSHAudit reads ssh-audit's text report: every algorithm it marks
// warn or fail. A key failed only for its modulus is the key size, once.
func parseSSHAudit(t *daemontest.ProgramTB, path string) weaknesses {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read ssh-audit report: %v", err)
	}
	type verdict struct {
		cat, alg string
		notes    map[string]string // note → level
	}
	var vs []*verdict
	var last *verdict
	for _, line := range strings.Split(string(b), "\n") {
		if m := auditLine.FindStringSubmatch(line); m != nil {
			last = &verdict{cat: m[1], alg: m[2], notes: map[string]string{m[4]: m[3]}}
			vs = append(vs, last)
			continue
		}
		if m := auditMore.FindStringSubmatch(line); m != nil && last != nil {
			last.notes[m[2]] = m[1]
			continue
		}
		last = nil
	}
	if len(vs) == 0 {
		t.Fatalf("no algorithms in ssh-audit's report %s", path)
	}
	w := newWeaknesses()
	for _, v := range vs {
		var bad []string
		modulus := false
		for note, level := range v.notes {
			if level == "info" {
				continue
			}
			if strings.Contains(note, "modulus") && v.cat == "key" {
				modulus = true
				continue
			}
			bad = append(bad, note)
		}
		if modulus {
			w.add("host_key", "key size: ssh-rsa")
		}
		if len(bad) == 0 {
			continue
		}
		name := v.cat + " " + v.alg
		switch {
		case sshAuditDifferences[name] != "":
			w.deliberate[name] = sshAuditDifferences[name]
		case len(bad) == 1 && bad[0] == "unknown algorithm" && pseudoAlgorithm(v.alg):
			w.deliberate[name] = "protocol marker, not an algorithm (ssh-audit 2.5 predates it)"
		default:
			w.add(auditCategory[v.cat], v.alg)
		}
	}
	return w
}

func pseudoAlgorithm(name string) bool {
	return strings.HasPrefix(name, "kex-strict-") || strings.HasPrefix(name, "ext-info-") || strings.HasPrefix(name, "kexguess2@")
}

// totals accumulates the comparison and prints it.
type totals struct {
	iotcopTime, otherTime   map[string]time.Duration
	iotcopN, otherN, agreed map[string]int
	onlyOther               map[string]int
}

// add prints one server's rows and counts them.
func (tt *totals) add(s server, ours, theirs weaknesses, ourTime, theirTime time.Duration, tool string) {
	if tt.iotcopTime == nil {
		tt.iotcopTime, tt.otherTime = map[string]time.Duration{}, map[string]time.Duration{}
		tt.iotcopN, tt.otherN, tt.agreed, tt.onlyOther = map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	}
	cats := tlsCategories
	if s.kind == "ssh" {
		cats = sshCategories
	}
	fmt.Printf("== %s (%s)\n", s.label, s.svc.Addr())
	for _, row := range []struct {
		tool string
		w    weaknesses
		took time.Duration
	}{{"iotcop", ours, ourTime}, {tool, theirs, theirTime}} {
		fmt.Printf("  %-10s %7.2fs  %d named\n", row.tool, row.took.Seconds(), row.w.count())
		for _, c := range cats {
			if items := sorted(row.w.items[c]); len(items) > 0 {
				fmt.Printf("      %-9s %s\n", c+":", strings.Join(items, ", "))
			}
		}
	}
	// Agreement: each of theirs named by iotcop, and the reverse.
	var onlyTheirs, onlyOurs []string
	agreed := 0
	for _, c := range cats {
		for item := range theirs.items[c] {
			if covered(ours, c, item) {
				agreed++
			} else {
				onlyTheirs = append(onlyTheirs, c+" "+item)
			}
		}
		for item := range ours.items[c] {
			if !coveredBy(theirs, c, item) {
				onlyOurs = append(onlyOurs, c+" "+item)
			}
		}
	}
	fmt.Printf("  agreement: %d of %s's %d named by iotcop\n", agreed, tool, theirs.count())
	fmt.Printf("    only %s: %s\n", tool, orNone(onlyTheirs))
	fmt.Printf("    only iotcop: %s\n", orNone(onlyOurs))
	if len(theirs.deliberate) > 0 {
		var ds []string
		for _, k := range sorted(keys(theirs.deliberate)) {
			ds = append(ds, k+" ("+theirs.deliberate[k]+")")
		}
		fmt.Printf("    %s verdicts iotcop's policy deliberately does not share: %s\n", tool, strings.Join(ds, "; "))
	}
	if len(theirs.notCompared) > 0 {
		fmt.Printf("    %s items outside weak-tls's scope (not compared): %s\n", tool, strings.Join(sorted(theirs.notCompared), ", "))
	}
	fmt.Println()
	tt.iotcopTime[s.kind] += ourTime
	tt.otherTime[s.kind] += theirTime
	tt.iotcopN[s.kind] += ours.count()
	tt.otherN[s.kind] += theirs.count()
	tt.agreed[s.kind] += agreed
	tt.onlyOther[s.kind] += len(onlyTheirs)
}

// covered says whether iotcop's weaknesses include testssl.sh's or
// ssh-audit's item.
func covered(ours weaknesses, cat, item string) bool {
	if alts, ok := testsslSuites[item]; ok && cat == "suites" {
		for _, a := range alts {
			if ours.has(cat, a) {
				return true
			}
		}
		return false
	}
	return ours.has(cat, item)
}

// coveredBy says whether the other tool names iotcop's item.
func coveredBy(theirs weaknesses, cat, item string) bool {
	if cat == "suites" {
		for id, alts := range testsslSuites {
			if theirs.has(cat, id) && contains(alts, item) {
				return true
			}
		}
		return false
	}
	return theirs.has(cat, item)
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func keys(m map[string]string) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

func orNone(l []string) string {
	if len(l) == 0 {
		return "-"
	}
	return strings.Join(sortedList(l), ", ")
}

func sortedList(l []string) []string {
	m := map[string]bool{}
	for _, x := range l {
		m[x] = true
	}
	return sorted(m)
}

func (tt *totals) print(iotcopAll, testsslAll, auditAll time.Duration) {
	fmt.Println("== totals (per-server times summed)")
	for _, k := range []struct{ kind, tool string }{{"tls", "testssl.sh"}, {"ssh", "ssh-audit"}} {
		ratio := tt.otherTime[k.kind].Seconds() / tt.iotcopTime[k.kind].Seconds()
		fmt.Printf("  %s: iotcop %.2fs, %s %.2fs (%s/iotcop time ratio %.2f); named: iotcop %d, %s %d; %s items iotcop also names: %d, missed: %d\n",
			k.kind, tt.iotcopTime[k.kind].Seconds(), k.tool, tt.otherTime[k.kind].Seconds(), k.tool, ratio,
			tt.iotcopN[k.kind], k.tool, tt.otherN[k.kind], k.tool, tt.agreed[k.kind], tt.onlyOther[k.kind])
	}
	fmt.Printf("  wall (each tool on all its servers at once): iotcop on 6 servers %.2fs; testssl.sh on 3 TLS servers %.2fs; ssh-audit on 3 SSH servers %.2fs\n",
		iotcopAll.Seconds(), testsslAll.Seconds(), auditAll.Seconds())
}
