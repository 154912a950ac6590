package lab

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// shell is the tiny command interpreter behind the telnet, SSH and ADB
// shells. It understands enough of a BusyBox ash for scanners and people:
// quoting (”, "", \), $VAR, $? and $$, $((arithmetic)), $(command) and
// `command` substitution, ; && || and | between commands, redirections
// (ignored), and a few harmless commands (echo, id, uname, cat of a small
// fake /proc and /etc, ls, ps, busybox ...). Nothing touches the real host.
type shell struct {
	dev    *device
	user   string
	uid    int
	cwd    string
	status int
	vars   map[string]string
	depth  int // command substitution nesting
}

const (
	maxShellOutput = 64 << 10
	maxSubstDepth  = 4
	maxArithDepth  = 64
)

func newShell(dev *device, user string) *shell {
	if user == "" {
		user = "root"
	}
	// Cheap firmware gives every account uid 0; only the hardened device
	// has unprivileged users.
	uid, home := 0, "/root"
	if dev.kind == "hardened" && user != "root" {
		uid, home = 1000, "/home/"+user
	}
	return &shell{dev: dev, user: user, uid: uid, cwd: "/", vars: map[string]string{
		"HOME": home, "USER": user, "LOGNAME": user, "SHELL": "/bin/sh",
		"PATH": "/bin:/sbin:/usr/bin:/usr/sbin", "PWD": "/", "HOSTNAME": dev.hostname,
	}}
}

// prompt is the shell prompt, "# " for root.
func (sh *shell) prompt() string {
	dir := sh.cwd
	if dir == sh.vars["HOME"] {
		dir = "~"
	}
	if sh.uid == 0 {
		return dir + " # "
	}
	return dir + " $ "
}

// errSyntax marks a line the shell cannot parse.
var errSyntax = errors.New("syntax error")

// run executes one command line and returns its output ("\n" line ends)
// and whether the shell should exit.
func (sh *shell) run(line string) (out string, exit bool) {
	var w limitedWriter
	exit = sh.runTo(&w, line)
	return w.String(), exit
}

func (sh *shell) runTo(w *limitedWriter, line string) (exit bool) {
	if len(line) > maxLine {
		line = line[:maxLine]
	}
	items, err := parseLine(line)
	if err != nil {
		w.WriteString("-sh: " + err.Error() + "\n")
		sh.status = 2
		return false
	}
	skip := false
	for _, it := range items {
		if !skip {
			var input string
			for i, cmd := range it.pipeline {
				var cw limitedWriter
				quit := sh.execRaw(&cw, cmd, input)
				switch {
				case cmd.discard:
					input = ""
				case i == len(it.pipeline)-1:
					w.WriteString(cw.String())
				default:
					input = cw.String()
				}
				if quit && len(it.pipeline) == 1 {
					return true
				}
			}
		}
		switch it.next {
		case "&&":
			skip = sh.status != 0
		case "||":
			skip = sh.status == 0
		default:
			skip = false
		}
	}
	return false
}

// execRaw expands a command's words (now, so that earlier commands'
// assignments and $? are seen) and runs it.
func (sh *shell) execRaw(w *limitedWriter, cmd rawCommand, stdin string) bool {
	args := make([]string, 0, len(cmd.words))
	for _, raw := range cmd.words {
		l := &lexer{sh: sh, s: raw, expand: true}
		word, err := l.word()
		if err != nil {
			w.WriteString("-sh: " + err.Error() + "\n")
			sh.status = 2
			return false
		}
		args = append(args, word)
	}
	return sh.exec(w, args, stdin)
}

// limitedWriter collects output up to maxShellOutput bytes.
type limitedWriter struct{ strings.Builder }

func (w *limitedWriter) WriteString(s string) {
	if room := maxShellOutput - w.Len(); room > 0 {
		if len(s) > room {
			s = s[:room]
		}
		w.Builder.WriteString(s)
	}
}

// rawCommand is one command's unexpanded words and whether its output is
// redirected away.
type rawCommand struct {
	words   []string
	discard bool
}

// listItem is a pipeline and the operator after it.
type listItem struct {
	pipeline []rawCommand
	next     string // ";", "&&", "||", "&" or ""
}

// parseLine splits a line into pipelines of unexpanded words, checking
// the syntax (quotes, substitutions) without running anything.
func parseLine(line string) ([]listItem, error) {
	p := &lexer{s: line}
	var items []listItem
	var pipeline []rawCommand
	var cmd rawCommand
	for {
		tok, op, err := p.next()
		if err != nil {
			return nil, err
		}
		switch op {
		case "":
			cmd.words = append(cmd.words, tok)
			continue
		case "|":
			if len(cmd.words) == 0 {
				return nil, fmt.Errorf("%w: unexpected |", errSyntax)
			}
			pipeline = append(pipeline, cmd)
			cmd = rawCommand{}
			continue
		case "redirect":
			continue
		case "redirect-out":
			cmd.discard = true
			continue
		}
		// A list operator or the end of the line.
		if len(cmd.words) > 0 {
			pipeline = append(pipeline, cmd)
		} else if len(pipeline) > 0 {
			return nil, fmt.Errorf("%w: unexpected %s", errSyntax, op)
		}
		cmd = rawCommand{}
		if op == "end" {
			if len(pipeline) > 0 {
				items = append(items, listItem{pipeline: pipeline})
			}
			return items, nil
		}
		if len(pipeline) == 0 {
			return nil, fmt.Errorf("%w: unexpected %s", errSyntax, op)
		}
		items = append(items, listItem{pipeline: pipeline, next: op})
		pipeline = nil
	}
}

// lexer reads words and operators from a command line. Without expand it
// only checks and delimits words (returning them raw); with expand it
// expands one raw word.
type lexer struct {
	sh     *shell
	s      string
	pos    int
	expand bool
}

// next returns a raw word, or an operator (";", "&&", "||", "&", "|",
// "redirect" or "redirect-out" for a redirection already consumed, "end").
func (l *lexer) next() (string, string, error) {
	for l.pos < len(l.s) && (l.s[l.pos] == ' ' || l.s[l.pos] == '\t') {
		l.pos++
	}
	if l.pos >= len(l.s) {
		return "", "end", nil
	}
	rest := l.s[l.pos:]
	switch {
	case rest[0] == '#':
		l.pos = len(l.s)
		return "", "end", nil
	case rest[0] == '\n' || rest[0] == '\r':
		l.pos++
		return "", ";", nil
	case strings.HasPrefix(rest, "&&"), strings.HasPrefix(rest, "||"):
		l.pos += 2
		return "", rest[:2], nil
	case rest[0] == ';' || rest[0] == '&':
		l.pos++
		return "", rest[:1], nil
	case rest[0] == '|':
		l.pos++
		return "", "|", nil
	}
	if m := redirectRE.FindString(rest); m != "" {
		l.pos += len(m)
		if strings.Contains(m, "&") {
			return "", "redirect", nil
		}
		// The target word follows.
		if _, op, err := l.next(); err != nil {
			return "", "", err
		} else if op != "" {
			return "", "", fmt.Errorf("%w: unexpected %s", errSyntax, op)
		}
		if m[0] == '>' || m[0] == '1' {
			return "", "redirect-out", nil
		}
		return "", "redirect", nil
	}
	word, err := l.word()
	return word, "", err
}

var redirectRE = regexp.MustCompile(`^[0-9]?(>>|>&[0-9-]|<&[0-9-]|>|<)`)

// word reads one word: expanded, or raw (checked and delimited only).
func (l *lexer) word() (string, error) {
	var b strings.Builder
	start := l.pos
	raw := func() string {
		if l.expand {
			return b.String()
		}
		return l.s[start:l.pos]
	}
	for l.pos < len(l.s) {
		c := l.s[l.pos]
		switch c {
		case ' ', '\t', '\n', '\r', ';', '&', '|', '<', '>':
			if l.pos == start {
				// next() consumes these first; taking the byte literally
				// guarantees progress whatever the input.
				b.WriteByte(c)
				l.pos++
				continue
			}
			return raw(), nil
		case '\'':
			end := strings.IndexByte(l.s[l.pos+1:], '\'')
			if end < 0 {
				return "", fmt.Errorf("%w: unterminated quoted string", errSyntax)
			}
			b.WriteString(l.s[l.pos+1 : l.pos+1+end])
			l.pos += end + 2
		case '"':
			l.pos++
			if err := l.doubleQuoted(&b); err != nil {
				return "", err
			}
		case '\\':
			if l.pos+1 < len(l.s) {
				b.WriteByte(l.s[l.pos+1])
				l.pos += 2
			} else {
				l.pos++
			}
		case '$':
			if err := l.dollar(&b); err != nil {
				return "", err
			}
		case '`':
			if err := l.backquote(&b); err != nil {
				return "", err
			}
		case '~':
			if l.expand && l.pos == start && (l.pos+1 == len(l.s) || l.s[l.pos+1] == '/' || l.s[l.pos+1] == ' ') {
				b.WriteString(l.sh.vars["HOME"])
			} else {
				b.WriteByte(c)
			}
			l.pos++
		default:
			b.WriteByte(c)
			l.pos++
		}
	}
	return raw(), nil
}

func (l *lexer) doubleQuoted(b *strings.Builder) error {
	for l.pos < len(l.s) {
		c := l.s[l.pos]
		switch c {
		case '"':
			l.pos++
			return nil
		case '\\':
			if l.pos+1 < len(l.s) && strings.IndexByte("$`\"\\\n", l.s[l.pos+1]) >= 0 {
				b.WriteByte(l.s[l.pos+1])
				l.pos += 2
			} else {
				b.WriteByte(c)
				l.pos++
			}
		case '$':
			if err := l.dollar(b); err != nil {
				return err
			}
		case '`':
			if err := l.backquote(b); err != nil {
				return err
			}
		default:
			b.WriteByte(c)
			l.pos++
		}
	}
	return fmt.Errorf("%w: unterminated quoted string", errSyntax)
}

// dollar expands $NAME, ${NAME}, $?, $$, $((expr)) and $(command) at l.pos.
func (l *lexer) dollar(b *strings.Builder) error {
	rest := l.s[l.pos:]
	switch {
	case strings.HasPrefix(rest, "$(("):
		end := matchParen(rest, 3, 2)
		if end < 0 {
			return fmt.Errorf("%w: unterminated $((", errSyntax)
		}
		l.pos += end
		if !l.expand {
			return nil
		}
		v, err := l.sh.arith(rest[3 : end-2])
		if err != nil {
			return err
		}
		b.WriteString(strconv.FormatInt(v, 10))
	case strings.HasPrefix(rest, "$("):
		end := matchParen(rest, 2, 1)
		if end < 0 {
			return fmt.Errorf("%w: unterminated $(", errSyntax)
		}
		l.pos += end
		if l.expand {
			b.WriteString(l.sh.substitute(rest[2 : end-1]))
		}
	case strings.HasPrefix(rest, "${"):
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			return fmt.Errorf("%w: missing }", errSyntax)
		}
		name := rest[2:end]
		if !validName(name) && name != "?" && name != "$" && name != "#" {
			return fmt.Errorf("%s: bad substitution", rest[:end+1])
		}
		l.pos += end + 1
		if l.expand {
			b.WriteString(l.sh.variable(name))
		}
	case len(rest) > 1 && strings.IndexByte("?$#!0123456789", rest[1]) >= 0:
		l.pos += 2
		if l.expand {
			b.WriteString(l.sh.variable(rest[1:2]))
		}
	default:
		n := 1
		for n < len(rest) && isNameByte(rest[n], n == 1) {
			n++
		}
		if n == 1 {
			b.WriteByte('$')
			l.pos++
			return nil
		}
		l.pos += n
		if l.expand {
			b.WriteString(l.sh.variable(rest[1:n]))
		}
	}
	return nil
}

func (l *lexer) backquote(b *strings.Builder) error {
	end := strings.IndexByte(l.s[l.pos+1:], '`')
	if end < 0 {
		return fmt.Errorf("%w: unterminated `", errSyntax)
	}
	if l.expand {
		b.WriteString(l.sh.substitute(l.s[l.pos+1 : l.pos+1+end]))
	}
	l.pos += end + 2
	return nil
}

// matchParen returns the index just past the closing parens matching an
// opening run that ends at from, with close parens to close (1 for $(,
// 2 for $(( ), or -1. Quotes inside are skipped.
func matchParen(s string, from, closing int) int {
	depth := 0
	for i := from; i < len(s); i++ {
		switch s[i] {
		case '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return -1
			}
			i += j + 1
		case '(':
			depth++
		case ')':
			if depth > 0 {
				depth--
				continue
			}
			if closing == 2 {
				if i+1 < len(s) && s[i+1] == ')' {
					return i + 2
				}
				return -1
			}
			return i + 1
		}
	}
	return -1
}

func isNameByte(c byte, first bool) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && c >= '0' && c <= '9'
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i], i == 0) {
			return false
		}
	}
	return true
}

func (sh *shell) variable(name string) string {
	switch name {
	case "?":
		return strconv.Itoa(sh.status)
	case "$":
		return "1337"
	case "#":
		return "0"
	case "0":
		return "-sh"
	case "!":
		return ""
	}
	return sh.vars[name]
}

// substitute runs a command substitution and returns its output without
// trailing newlines.
func (sh *shell) substitute(cmd string) string {
	if sh.depth >= maxSubstDepth {
		return ""
	}
	sub := *sh
	sub.depth++
	var w limitedWriter
	sub.runTo(&w, cmd)
	sh.status = sub.status
	return strings.TrimRight(w.String(), "\n")
}

// exec runs one command with its stdin and reports whether the shell exits.
func (sh *shell) exec(w *limitedWriter, args []string, stdin string) bool {
	// Leading NAME=value words are assignments.
	for len(args) > 0 {
		name, value, ok := strings.Cut(args[0], "=")
		if !ok || !validName(name) {
			break
		}
		if len(args) == 1 {
			sh.vars[name] = value
		}
		args = args[1:]
	}
	if len(args) == 0 {
		sh.status = 0
		return false
	}
	name := args[0]
	if strings.HasPrefix(name, "/") {
		dir, base := path.Split(name)
		if !slices.Contains([]string{"/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/", "/system/bin/"}, dir) {
			w.WriteString("-sh: " + name + ": not found\n")
			sh.status = 127
			return false
		}
		name = base
	}
	if name == "busybox" {
		if len(args) == 1 {
			w.WriteString(sh.dev.busybox + " multi-call binary.\n")
			sh.status = 0
			return false
		}
		if _, ok := applets[args[1]]; !ok {
			w.WriteString(args[1] + ": applet not found\n")
			sh.status = 127
			return false
		}
		name, args = args[1], args[1:]
	}
	fn, ok := applets[name]
	if !ok {
		w.WriteString("-sh: " + name + ": not found\n")
		sh.status = 127
		return false
	}
	status, exit := fn(sh, w, args[1:], stdin)
	sh.status = status
	return exit
}

// applet is one built-in command: it writes its output and returns its
// exit status and whether the shell should exit.
type applet func(sh *shell, w *limitedWriter, args []string, stdin string) (int, bool)

// applets are the commands the shell knows (read-only after init).
var applets = map[string]applet{
	"echo": appletEcho,
	"id":   appletID,
	"whoami": func(sh *shell, w *limitedWriter, _ []string, _ string) (int, bool) {
		w.WriteString(sh.user + "\n")
		return 0, false
	},
	"hostname": func(sh *shell, w *limitedWriter, _ []string, _ string) (int, bool) {
		w.WriteString(sh.dev.hostname + "\n")
		return 0, false
	},
	"uname": appletUname,
	"pwd": func(sh *shell, w *limitedWriter, _ []string, _ string) (int, bool) {
		w.WriteString(sh.cwd + "\n")
		return 0, false
	},
	"cd":   appletCd,
	"ls":   appletLs,
	"cat":  appletCat,
	"ps":   appletPs,
	"grep": appletGrep,
	"head": appletHead,
	"uptime": func(_ *shell, w *limitedWriter, _ []string, _ string) (int, bool) {
		w.WriteString(" 03:14:07 up 12 days,  4:02,  load average: 0.08, 0.12, 0.10\n")
		return 0, false
	},
	"free": func(_ *shell, w *limitedWriter, _ []string, _ string) (int, bool) {
		w.WriteString("              total        used        free      shared    buffers\nMem:         60432       41208       19224           0        2120\n-/+ buffers:             39088       21344\nSwap:            0           0           0\n")
		return 0, false
	},
	"date": func(_ *shell, w *limitedWriter, _ []string, _ string) (int, bool) {
		w.WriteString("Thu Jan  1 00:00:00 UTC 1970\n")
		return 0, false
	},
	"help":   appletHelp,
	"true":   func(*shell, *limitedWriter, []string, string) (int, bool) { return 0, false },
	":":      func(*shell, *limitedWriter, []string, string) (int, bool) { return 0, false },
	"false":  func(*shell, *limitedWriter, []string, string) (int, bool) { return 1, false },
	"sleep":  func(*shell, *limitedWriter, []string, string) (int, bool) { return 0, false },
	"sync":   func(*shell, *limitedWriter, []string, string) (int, bool) { return 0, false },
	"sh":     func(*shell, *limitedWriter, []string, string) (int, bool) { return 0, false },
	"shell":  func(*shell, *limitedWriter, []string, string) (int, bool) { return 0, false },
	"enable": func(*shell, *limitedWriter, []string, string) (int, bool) { return 0, false },
	"system": func(*shell, *limitedWriter, []string, string) (int, bool) { return 0, false },
	"export": appletExport,
	"unset": func(sh *shell, _ *limitedWriter, args []string, _ string) (int, bool) {
		for _, a := range args {
			delete(sh.vars, a)
		}
		return 0, false
	},
	"exit":   func(*shell, *limitedWriter, []string, string) (int, bool) { return 0, true },
	"logout": func(*shell, *limitedWriter, []string, string) (int, bool) { return 0, true },
	"quit":   func(*shell, *limitedWriter, []string, string) (int, bool) { return 0, true },
	"reboot": func(_ *shell, w *limitedWriter, _ []string, _ string) (int, bool) {
		w.WriteString("reboot: Operation not permitted\n")
		return 1, false
	},
}

func appletEcho(_ *shell, w *limitedWriter, args []string, _ string) (int, bool) {
	newline, escapes := true, false
	for len(args) > 0 && len(args[0]) > 1 && args[0][0] == '-' && strings.Trim(args[0][1:], "neE") == "" {
		for _, f := range args[0][1:] {
			switch f {
			case 'n':
				newline = false
			case 'e':
				escapes = true
			case 'E':
				escapes = false
			}
		}
		args = args[1:]
	}
	s := strings.Join(args, " ")
	if escapes {
		var stop bool
		s, stop = echoEscapes(s)
		if stop {
			newline = false
		}
	}
	if newline {
		s += "\n"
	}
	w.WriteString(s)
	return 0, false
}

// echoEscapes interprets echo -e escapes; stop is true after \c.
func echoEscapes(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 'a':
			b.WriteByte(7)
		case 'b':
			b.WriteByte(8)
		case 'c':
			return b.String(), true
		case 'e':
			b.WriteByte(27)
		case 'f':
			b.WriteByte(12)
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'v':
			b.WriteByte(11)
		case '\\':
			b.WriteByte('\\')
		case 'x':
			j := i + 1
			for j < len(s) && j < i+3 && isHex(s[j]) {
				j++
			}
			if j == i+1 {
				b.WriteString(`\x`)
				continue
			}
			v, _ := strconv.ParseUint(s[i+1:j], 16, 8)
			b.WriteByte(byte(v))
			i = j - 1
		case '0':
			j := i + 1
			for j < len(s) && j < i+4 && s[j] >= '0' && s[j] <= '7' {
				j++
			}
			v, _ := strconv.ParseUint("0"+s[i+1:j], 8, 16)
			b.WriteByte(byte(v))
			i = j - 1
		default:
			b.WriteByte('\\')
			b.WriteByte(s[i])
		}
	}
	return b.String(), false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func appletID(sh *shell, w *limitedWriter, _ []string, _ string) (int, bool) {
	if sh.uid == 0 {
		w.WriteString(fmt.Sprintf("uid=0(%s) gid=0(root) groups=0(root)\n", sh.user))
	} else {
		w.WriteString(fmt.Sprintf("uid=%d(%s) gid=%d(%s) groups=%d(%s)\n", sh.uid, sh.user, sh.uid, sh.user, sh.uid, sh.user))
	}
	return 0, false
}

func appletUname(sh *shell, w *limitedWriter, args []string, _ string) (int, bool) {
	d := sh.dev
	fields := map[byte]string{'s': "Linux", 'n': d.hostname, 'r': d.kernel,
		'v': "#1 SMP PREEMPT Thu Aug 10 11:09:39 CST 2017", 'm': d.arch, 'o': "GNU/Linux"}
	var order []byte
	for _, a := range args {
		if !strings.HasPrefix(a, "-") || len(a) < 2 {
			w.WriteString("uname: extra operand '" + a + "'\n")
			return 1, false
		}
		for i := 1; i < len(a); i++ {
			f := a[i]
			if f == 'a' {
				order = append(order, 's', 'n', 'r', 'v', 'm', 'o')
				continue
			}
			if _, ok := fields[f]; !ok {
				w.WriteString("uname: invalid option -- '" + string(f) + "'\n")
				return 1, false
			}
			order = append(order, f)
		}
	}
	if len(order) == 0 {
		order = []byte{'s'}
	}
	var parts []string
	seen := map[byte]bool{}
	for _, f := range []byte("snrvmo") {
		if slices.Contains(order, f) && !seen[f] {
			seen[f] = true
			parts = append(parts, fields[f])
		}
	}
	w.WriteString(strings.Join(parts, " ") + "\n")
	return 0, false
}

// fakeFile returns the content of a file of the fake filesystem.
func (sh *shell) fakeFile(p string) (string, bool) {
	d := sh.dev
	switch p {
	case "/proc/cpuinfo":
		return d.cpuinfo, true
	case "/proc/version":
		return "Linux version " + d.kernel + " (builder@buildhost) (gcc version 4.9.4 (Buildroot 2017.02)) #1 SMP PREEMPT Thu Aug 10 11:09:39 CST 2017\n", true
	case "/proc/meminfo":
		return "MemTotal:          60432 kB\nMemFree:           19224 kB\nBuffers:            2120 kB\nCached:            14880 kB\n", true
	case "/proc/uptime":
		return "1051327.41 1020933.82\n", true
	case "/etc/passwd":
		return "root:x:0:0:root:/root:/bin/sh\nadmin:x:0:0:admin:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", true
	case "/etc/hostname":
		return d.hostname + "\n", true
	case "/etc/issue":
		return "Welcome to " + d.vendor + " " + d.model + "\n", true
	case "/etc/version":
		return d.firmware + "\n", true
	}
	return "", false
}

var fakeDirs = map[string][]string{
	"/":     {"bin", "dev", "etc", "home", "lib", "mnt", "proc", "root", "sbin", "sys", "tmp", "usr", "var"},
	"/etc":  {"hostname", "init.d", "issue", "passwd", "version"},
	"/proc": {"cpuinfo", "meminfo", "uptime", "version"},
	"/bin":  {"busybox", "cat", "echo", "ls", "ps", "sh"},
	"/sbin": {"init", "reboot"},
	"/usr":  {"bin", "sbin"},
	"/var":  {"log", "run"},
	"/mnt":  {"mtd"},
	"/root": {}, "/tmp": {}, "/dev": {"null", "mtd0", "mtdblock0"}, "/home": {}, "/lib": {}, "/sys": {},
	"/etc/init.d": {"rcS"}, "/usr/bin": {}, "/usr/sbin": {}, "/var/log": {}, "/var/run": {}, "/mnt/mtd": {},
}

func (sh *shell) abs(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = sh.cwd + "/" + p
	}
	return path.Clean(p)
}

func appletCd(sh *shell, w *limitedWriter, args []string, _ string) (int, bool) {
	target := sh.vars["HOME"]
	if len(args) > 0 {
		target = args[0]
	}
	p := sh.abs(target)
	if _, ok := fakeDirs[p]; !ok && p != sh.vars["HOME"] {
		w.WriteString("-sh: cd: can't cd to " + target + ": No such file or directory\n")
		return 1, false
	}
	sh.cwd = p
	sh.vars["PWD"] = p
	return 0, false
}

func appletLs(sh *shell, w *limitedWriter, args []string, _ string) (int, bool) {
	long := false
	var targets []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			long = long || strings.Contains(a, "l")
			continue
		}
		targets = append(targets, a)
	}
	if len(targets) == 0 {
		targets = []string{"."}
	}
	status := 0
	for _, t := range targets {
		p := sh.abs(t)
		entries, isDir := fakeDirs[p]
		if !isDir {
			if _, isFile := sh.fakeFile(p); isFile {
				w.WriteString(t + "\n")
				continue
			}
			w.WriteString("ls: " + t + ": No such file or directory\n")
			status = 1
			continue
		}
		for _, e := range entries {
			if long {
				mode := "-rw-r--r--"
				if _, dir := fakeDirs[path.Join(p, e)]; dir {
					mode = "drwxr-xr-x"
				}
				w.WriteString(fmt.Sprintf("%s    1 root     root             0 Jan  1 00:00 %s\n", mode, e))
			} else {
				w.WriteString(e + "\n")
			}
		}
	}
	return status, false
}

func appletCat(sh *shell, w *limitedWriter, args []string, stdin string) (int, bool) {
	if len(args) == 0 {
		w.WriteString(stdin)
		return 0, false
	}
	status := 0
	for _, a := range args {
		p := sh.abs(a)
		if c, ok := sh.fakeFile(p); ok {
			w.WriteString(c)
			continue
		}
		if _, dir := fakeDirs[p]; dir {
			w.WriteString("cat: read error: Is a directory\n")
		} else {
			w.WriteString("cat: can't open '" + a + "': No such file or directory\n")
		}
		status = 1
	}
	return status, false
}

func appletPs(sh *shell, w *limitedWriter, _ []string, _ string) (int, bool) {
	w.WriteString("  PID USER       VSZ STAT COMMAND\n    1 root      1468 S    init\n    2 root         0 SW   [kthreadd]\n  412 root      1472 S    /sbin/syslogd -n\n  587 root      9820 S    /usr/bin/" + sh.dev.kind + "d\n  601 root      1468 S    telnetd\n 1337 " + fmt.Sprintf("%-8s", sh.user) + "  1476 S    -sh\n")
	return 0, false
}

func appletGrep(_ *shell, w *limitedWriter, args []string, stdin string) (int, bool) {
	if len(args) == 0 {
		w.WriteString("Usage: grep PATTERN\n")
		return 2, false
	}
	pattern := args[len(args)-1]
	status := 1
	for line := range strings.Lines(stdin) {
		if strings.Contains(line, pattern) {
			w.WriteString(line)
			status = 0
		}
	}
	return status, false
}

func appletHead(_ *shell, w *limitedWriter, args []string, stdin string) (int, bool) {
	n := 10
	for i := 0; i < len(args); i++ {
		if args[i] == "-n" && i+1 < len(args) {
			if v, err := strconv.Atoi(args[i+1]); err == nil {
				n = v
			}
			i++
		}
	}
	for line := range strings.Lines(stdin) {
		if n <= 0 {
			break
		}
		w.WriteString(line)
		n--
	}
	return 0, false
}

func appletExport(sh *shell, _ *limitedWriter, args []string, _ string) (int, bool) {
	for _, a := range args {
		if name, value, ok := strings.Cut(a, "="); ok && validName(name) {
			sh.vars[name] = value
		}
	}
	return 0, false
}

func appletHelp(_ *shell, w *limitedWriter, _ []string, _ string) (int, bool) {
	w.WriteString("Built-in commands:\n------------------\n\t. : [ [[ alias bg break cd chdir command continue echo eval exec\n\texit export false fg getopts hash help history jobs kill let local\n\tprintf pwd read readonly return set shift source test times trap true\n\ttype ulimit umask unalias unset wait\n")
	return 0, false
}

// arith evaluates a shell arithmetic expression ($((...))).
func (sh *shell) arith(expr string) (int64, error) {
	p := &arithParser{sh: sh, s: expr}
	v, err := p.parse(0)
	if err != nil {
		return 0, err
	}
	p.skipSpace()
	if p.pos != len(p.s) {
		return 0, errors.New("arithmetic syntax error")
	}
	return v, nil
}

type arithParser struct {
	sh    *shell
	s     string
	pos   int
	depth int
}

var errArith = errors.New("arithmetic syntax error")

// binary operators by precedence level (lowest first).
var arithLevels = [][]string{
	{"||"}, {"&&"}, {"|"}, {"^"}, {"&"}, {"==", "!="}, {"<=", ">=", "<", ">"},
	{"<<", ">>"}, {"+", "-"}, {"*", "/", "%"},
}

func (p *arithParser) skipSpace() {
	for p.pos < len(p.s) && strings.IndexByte(" \t\n", p.s[p.pos]) >= 0 {
		p.pos++
	}
}

func (p *arithParser) parse(level int) (int64, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxArithDepth*len(arithLevels) {
		return 0, errArith
	}
	if level == len(arithLevels) {
		return p.unary()
	}
	left, err := p.parse(level + 1)
	if err != nil {
		return 0, err
	}
	for {
		p.skipSpace()
		op := ""
		for _, o := range arithLevels[level] {
			if strings.HasPrefix(p.s[p.pos:], o) && !p.longerOp(o) {
				op = o
				break
			}
		}
		if op == "" {
			return left, nil
		}
		p.pos += len(op)
		right, err := p.parse(level + 1)
		if err != nil {
			return 0, err
		}
		left, err = applyArith(op, left, right)
		if err != nil {
			return 0, err
		}
	}
}

// longerOp reports whether the operator at pos is really a longer one
// ("|" in "||", "<" in "<<" or "<=", "&" in "&&").
func (p *arithParser) longerOp(o string) bool {
	rest := p.s[p.pos:]
	for _, long := range []string{"||", "&&", "<<", ">>", "<=", ">=", "==", "!="} {
		if len(long) > len(o) && strings.HasPrefix(rest, long) && strings.HasPrefix(long, o) {
			return true
		}
	}
	return false
}

func applyArith(op string, a, b int64) (int64, error) {
	switch op {
	case "||":
		return b2i(a != 0 || b != 0), nil
	case "&&":
		return b2i(a != 0 && b != 0), nil
	case "|":
		return a | b, nil
	case "^":
		return a ^ b, nil
	case "&":
		return a & b, nil
	case "==":
		return b2i(a == b), nil
	case "!=":
		return b2i(a != b), nil
	case "<":
		return b2i(a < b), nil
	case "<=":
		return b2i(a <= b), nil
	case ">":
		return b2i(a > b), nil
	case ">=":
		return b2i(a >= b), nil
	case "<<":
		return a << (uint64(b) & 63), nil
	case ">>":
		return a >> (uint64(b) & 63), nil
	case "+":
		return a + b, nil
	case "-":
		return a - b, nil
	case "*":
		return a * b, nil
	case "/", "%":
		if b == 0 {
			return 0, errors.New("divide by zero")
		}
		if b == -1 {
			// Avoid the MinInt64 / -1 trap.
			if op == "/" {
				return -a, nil
			}
			return 0, nil
		}
		if op == "/" {
			return a / b, nil
		}
		return a % b, nil
	}
	return 0, errArith
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func (p *arithParser) unary() (int64, error) {
	p.skipSpace()
	if p.pos >= len(p.s) {
		return 0, errArith
	}
	switch c := p.s[p.pos]; c {
	case '-', '+', '!', '~':
		p.pos++
		p.depth++
		defer func() { p.depth-- }()
		if p.depth > maxArithDepth*len(arithLevels) {
			return 0, errArith
		}
		v, err := p.unary()
		if err != nil {
			return 0, err
		}
		switch c {
		case '-':
			return -v, nil
		case '!':
			return b2i(v == 0), nil
		case '~':
			return ^v, nil
		}
		return v, nil
	case '(':
		p.pos++
		v, err := p.parse(0)
		if err != nil {
			return 0, err
		}
		p.skipSpace()
		if p.pos >= len(p.s) || p.s[p.pos] != ')' {
			return 0, errArith
		}
		p.pos++
		return v, nil
	case '$':
		p.pos++
		if p.pos < len(p.s) && p.s[p.pos] == '{' {
			p.pos++
		}
		fallthrough
	default:
		start := p.pos
		if p.pos < len(p.s) && isNameByte(p.s[p.pos], true) {
			for p.pos < len(p.s) && isNameByte(p.s[p.pos], false) {
				p.pos++
			}
			name := p.s[start:p.pos]
			if p.pos < len(p.s) && p.s[p.pos] == '}' {
				p.pos++
			}
			v, err := parseShellInt(strings.TrimSpace(p.sh.vars[name]))
			if err != nil {
				return 0, errArith
			}
			return v, nil
		}
		for p.pos < len(p.s) && (isHex(p.s[p.pos]) || p.s[p.pos] == 'x' || p.s[p.pos] == 'X') {
			p.pos++
		}
		if start == p.pos {
			return 0, errArith
		}
		return parseShellInt(p.s[start:p.pos])
	}
}

// parseShellInt parses decimal, 0x hex and leading-0 octal; empty is 0.
func parseShellInt(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		// Overflowing literals wrap in ash; anything else is an error.
		u, uerr := strconv.ParseUint(s, 0, 64)
		if uerr != nil {
			return 0, errArith
		}
		return int64(u), nil
	}
	return v, nil
}
