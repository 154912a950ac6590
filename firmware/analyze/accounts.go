package analyze

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/firmware/unpack"
)

// Provision for hard-coded credentials.
var provisionsCredentials = []string{"5.1-1"}

// Accounts finds login accounts the image ships with a password already
// set (cracked or not), with an empty password, logins written into boot
// scripts (telnetd -u user:pass, chpasswd), and preset secrets in
// .htpasswd, mosquitto password files, PPP secrets, wpa_supplicant and
// hostapd configurations and OpenWrt UCI configs.
type Accounts struct {
	dict []Word
	// CrackBudget bounds the time spent cracking all hashes of one image
	// (default 30s); hashes not finished in time are reported as preset
	// hashes, uncracked, with a note.
	CrackBudget time.Duration
}

// NewAccounts returns the analysis with the built-in dictionary.
func NewAccounts() *Accounts { return &Accounts{dict: Dictionary(), CrackBudget: 30 * time.Second} }

// Name implements Analyzer.
func (*Accounts) Name() string { return "accounts" }

var accountFiles = map[string]bool{"passwd": true, "shadow": true, "passwd-": true, "shadow-": true,
	"passwd.default": true, "shadow.default": true, "passwd.orig": true, "shadow.orig": true}

// Required implements Analyzer: passwd/shadow files anywhere (vendors keep
// defaults in /etc_ro, /etc/default ... when /etc/passwd is a runtime
// link) and boot scripts.
func (*Accounts) Required(p string, info fs.FileInfo) bool {
	if !info.Mode().IsRegular() || info.Size() > 4<<20 {
		return false
	}
	return accountFiles[path.Base(p)] || isBootScript(p) || credFileKindOf(p) != credNone
}

// account is one line of a passwd or shadow file.
type account struct {
	user, hash, shell string
	uid               string
	file              *unpack.File
	line              int
	fromShadow        bool
}

// parseAccounts reads a passwd or shadow file. Lines must have the
// shape of the format (seven fields with a numeric uid for passwd, a
// numeric or empty "last change" for shadow), so that a binary or a help
// text named "passwd" yields nothing.
func parseAccounts(f *unpack.File) []account {
	shadow := strings.HasPrefix(path.Base(f.Name), "shadow")
	var out []account
	if bytes.IndexByte(f.Data(), 0) >= 0 {
		return nil
	}
	for i, line := range strings.Split(string(f.Data()), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, ":")
		if len(fields) < 2 || fields[0] == "" || strings.ContainsAny(fields[0], " \t") {
			continue
		}
		a := account{user: fields[0], hash: fields[1], file: f, line: i + 1, fromShadow: shadow}
		if shadow {
			if len(fields) < 3 || !numericOrEmpty(fields[2]) {
				continue
			}
		} else {
			if len(fields) != 7 || fields[2] == "" || !numericOrEmpty(fields[2]) {
				continue
			}
			a.uid, a.shell = fields[2], fields[6]
		}
		out = append(out, a)
	}
	return out
}

func numericOrEmpty(s string) bool { return strings.Trim(s, "0123456789") == "" }

// noLoginShell reports shells that refuse interactive logins.
func noLoginShell(sh string) bool {
	switch path.Base(sh) {
	case "nologin", "false", "sync", "shutdown", "halt", "true":
		return true
	}
	return false
}

// Analyze implements Analyzer.
func (a *Accounts) Analyze(ctx context.Context, tree *unpack.Tree, files []*unpack.File) ([]finding.Finding, error) {
	var out []finding.Finding
	byFS := map[*unpack.FS][]*unpack.File{}
	var order []*unpack.FS
	for _, f := range files {
		if k := credFileKindOf(f.Name); k != credNone {
			out = append(out, a.credFileFindings(f, k)...)
			continue
		}
		if accountFiles[path.Base(f.Name)] {
			if byFS[f.FS()] == nil {
				order = append(order, f.FS())
			}
			byFS[f.FS()] = append(byFS[f.FS()], f)
		} else {
			out = append(out, scriptCredentials(f)...)
		}
	}
	type job struct {
		acc   account
		shell string
		note  string
		res   finding.Finding
	}
	var jobs []*job
	for _, s := range order {
		fsFiles := byFS[s]
		// /etc/ files first, so a default copy elsewhere is only reported
		// when /etc/ has no entry for the same account and hash.
		sort.SliceStable(fsFiles, func(i, j int) bool { return rankAccountFile(fsFiles[i].Name) < rankAccountFile(fsFiles[j].Name) })
		shells := map[string]string{}
		var accs []account
		for _, f := range fsFiles {
			for _, acc := range parseAccounts(f) {
				if acc.shell != "" {
					if _, ok := shells[acc.user]; !ok {
						shells[acc.user] = acc.shell
					}
				}
				accs = append(accs, acc)
			}
		}
		note := runtimeLinkNote(s)
		seen := map[string]bool{}
		for _, acc := range accs {
			if locked(acc.hash) || (acc.hash != "" && hashScheme(acc.hash) == "") {
				continue
			}
			key := acc.user + "\x00" + acc.hash
			if seen[key] {
				continue
			}
			seen[key] = true
			shell, known := shells[acc.user]
			if known && noLoginShell(shell) {
				continue
			}
			jobs = append(jobs, &job{acc: acc, shell: shell, note: note})
		}
	}
	budget := a.CrackBudget
	if budget <= 0 {
		budget = 30 * time.Second
	}
	crackCtx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	g, gctx := errgroup.WithContext(crackCtx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	var mu sync.Mutex
	for _, j := range jobs {
		g.Go(func() error {
			f, err := a.judge(gctx, j.acc, j.shell)
			if err != nil {
				return err
			}
			if j.note != "" {
				f.Evidence["note"] = j.note
			}
			mu.Lock()
			j.res = f
			mu.Unlock()
			return nil
		})
	}
	err := g.Wait()
	for _, j := range jobs {
		if j.res.Check != "" {
			out = append(out, j.res)
		}
	}
	return out, err
}

func rankAccountFile(p string) int {
	switch {
	case p == "/etc/shadow":
		return 0
	case p == "/etc/passwd":
		return 1
	case strings.HasPrefix(p, "/etc/"):
		return 2
	}
	return 3
}

// runtimeLinkNote explains when /etc/passwd or /etc/shadow is a link to a
// file created at runtime, so the defaults found elsewhere are what a
// fresh unit starts with.
func runtimeLinkNote(s *unpack.FS) string {
	var notes []string
	for _, p := range []string{"/etc/passwd", "/etc/shadow"} {
		l, err := s.Lstat(p)
		if err != nil || l.Mode&fs.ModeSymlink == 0 {
			continue
		}
		if _, err := s.Resolve(p); err != nil {
			notes = append(notes, fmt.Sprintf("%s links to %s, which is created at runtime; the defaults shipped in the image are reported", p, l.Link))
		}
	}
	return strings.Join(notes, "; ")
}

// judge turns one account with a password field into a finding.
func (a *Accounts) judge(ctx context.Context, acc account, shell string) (finding.Finding, error) {
	f := acc.file
	ev := layerEvidence(f, map[string]any{"user": acc.user, "line": acc.line})
	if shell != "" {
		ev["shell"] = shell
	}
	src := "passwd"
	if acc.fromShadow {
		src = "shadow"
	}
	ev["source"] = src
	res := finding.Finding{Check: finding.CheckHardCodedCredentials, Provisions: provisionsCredentials,
		Path: f.Path(), Evidence: ev,
		Remediation: "Ship no preset password: have each unit generate or require a unique password at first setup (EN 303 645 5.1-1)."}
	if acc.hash == "" {
		res.Severity = finding.Critical
		res.Title = fmt.Sprintf("Account %q has an empty password", acc.user)
		ev["password"] = finding.Secret("")
		return res, nil
	}
	scheme := hashScheme(acc.hash)
	ev["hash_scheme"] = scheme
	ev["hash"] = finding.Secret(acc.hash)
	w, err := crack(ctx, acc.user, acc.hash, a.dict)
	switch {
	case err == errNoCrack:
		ev["cracked"] = false
		ev["note_cracking"] = "hash scheme " + scheme + " with these parameters could not be cracked offline (not supported or too costly); the preset hash is a finding all the same"
	case errors.Is(err, context.DeadlineExceeded):
		ev["cracked"] = false
		ev["note_cracking"] = "cracking time budget used up before this hash was finished"
	case err != nil:
		return res, err
	case w.List != "":
		res.Severity = finding.Critical
		res.Title = fmt.Sprintf("Hard-coded password for %q cracked (%s)", acc.user, scheme)
		ev["cracked"] = true
		ev["password"] = finding.Secret(w.Password)
		ev["dictionary"] = w.List
		return res, nil
	default:
		ev["cracked"] = false
	}
	res.Severity = finding.High
	res.Title = fmt.Sprintf("Account %q ships with a preset password hash (%s)", acc.user, scheme)
	return res, nil
}

// Boot-script credential patterns.
var (
	reTelnetdUser = regexp.MustCompile(`\b(?:u?telnetd)\b[^\n#]*?\s-u\s*["']?([^\s:"']+):([^\s"']+)`)
	reChpasswd    = regexp.MustCompile(`["']?([A-Za-z0-9_.-]+):([^\s"':|]+)["']?\s*\|\s*(?:/usr/sbin/|/sbin/)?chpasswd`)
)

// scriptCredentials finds logins written into boot scripts.
func scriptCredentials(f *unpack.File) []finding.Finding {
	var out []finding.Finding
	for i, line := range strings.Split(string(f.Data()), "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "#") {
			continue
		}
		for _, m := range []struct {
			re   *regexp.Regexp
			what string
		}{{reTelnetdUser, "telnetd -u"}, {reChpasswd, "chpasswd"}} {
			g := m.re.FindStringSubmatch(t)
			if g == nil || strings.HasPrefix(g[2], "$") {
				continue
			}
			out = append(out, finding.Finding{
				Check: finding.CheckHardCodedCredentials, Provisions: provisionsCredentials, Severity: finding.Critical,
				Title: fmt.Sprintf("Boot script sets a hard-coded login for %q (%s)", g[1], m.what),
				Path:  f.Path(),
				Evidence: layerEvidence(f, map[string]any{"user": g[1], "password": finding.Secret(g[2]),
					"line": i + 1, "pattern": m.what}),
				Remediation: "Remove fixed logins from boot scripts; derive per-unit credentials at first setup.",
			})
		}
	}
	return out
}
