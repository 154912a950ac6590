package telnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/iotcop/iotcop/proto"
)

// Bounds on what one connection may make us hold or read.
const (
	maxWindow     = 8 << 10  // recent text kept for matching
	maxPhaseRead  = 64 << 10 // bytes read while waiting for one thing
	maxKeptCmds   = 32       // first commands kept for fingerprinting
	settleDefault = 250 * time.Millisecond
)

// waitStatus says why wait returned.
type waitStatus int

const (
	waitMatched  waitStatus = iota // the condition held (and the peer then paused)
	waitTimeout                    // the time ran out first
	waitClosed                     // the peer hung up or the connection broke
	waitOverflow                   // the peer sent more than maxPhaseRead
	waitCanceled                   // ctx ended
)

func (s waitStatus) String() string {
	switch s {
	case waitMatched:
		return "matched"
	case waitTimeout:
		return "timeout"
	case waitClosed:
		return "closed"
	case waitOverflow:
		return "too much output"
	}
	return "canceled"
}

// term is a telnet connection seen as a text terminal: it answers option
// negotiation as it reads and keeps a bounded window of the text received
// since the last clear.
type term struct {
	conn   net.Conn
	p      parser
	n      negotiator
	raw    []byte    // first bytes received, capped at proto.MaxBanner
	cmds   []command // first commands received, capped at maxKeptCmds
	window []byte
	closed bool
	err    error // why the connection broke, if it did
}

func newTerm(conn net.Conn) *term { return &term{conn: conn} }

// ingest processes bytes already read from the connection (the banner) or
// just read: it answers negotiation and appends text to the window.
func (t *term) ingest(b []byte) {
	if room := proto.MaxBanner - len(t.raw); room > 0 {
		t.raw = append(t.raw, b[:min(room, len(b))]...)
	}
	var data []byte
	var cmds []command
	data, cmds = t.p.feed(b, data, cmds)
	var reply []byte
	for _, c := range cmds {
		if len(t.cmds) < maxKeptCmds {
			t.cmds = append(t.cmds, c)
		}
		reply = append(reply, t.n.respond(c)...)
	}
	if len(reply) > 0 && !t.closed {
		_ = t.conn.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := t.conn.Write(reply); err != nil {
			t.fail(err)
		}
	}
	for _, c := range data {
		if c != 0 { // NVT: CR NUL means CR; NULs carry nothing
			t.window = append(t.window, c)
		}
	}
	if over := len(t.window) - maxWindow; over > 0 {
		t.window = append(t.window[:0], t.window[over:]...)
	}
}

func (t *term) fail(err error) {
	if !t.closed {
		t.closed = true
		t.err = err
	}
}

// clear forgets the text received so far.
func (t *term) clear() { t.window = t.window[:0] }

// text returns the text received since the last clear (at most maxWindow).
func (t *term) text() []byte { return t.window }

// send writes a line (IAC escaped, CR LF terminated).
func (t *term) send(ctx context.Context, line string, timeout time.Duration) error {
	if t.closed {
		return fmt.Errorf("send: connection closed: %w", t.err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	_ = t.conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := t.conn.Write(append(escapeIAC([]byte(line)), '\r', '\n')); err != nil {
		t.fail(err)
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// wait reads until done(text) holds and the peer then stays quiet for
// settle, the time runs out, the peer hangs up, or it sent too much. done
// is checked on the text received since the last clear.
func (t *term) wait(ctx context.Context, timeout, settle time.Duration, done func(text []byte) bool) waitStatus {
	if done != nil && done(t.window) && settle <= 0 {
		return waitMatched
	}
	if t.closed {
		return waitClosed
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	stop := context.AfterFunc(ctx, func() { _ = t.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, 2048)
	read := 0
	matched := done != nil && done(t.window)
	for {
		d := deadline
		if matched {
			if s := time.Now().Add(settle); s.Before(d) {
				d = s
			}
		}
		_ = t.conn.SetReadDeadline(d)
		if ctx.Err() != nil {
			return waitCanceled
		}
		n, err := t.conn.Read(buf)
		if n > 0 {
			read += n
			t.ingest(buf[:n])
			matched = done != nil && done(t.window)
			if read >= maxPhaseRead {
				return waitOverflow
			}
		}
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return waitCanceled
			case proto.IsTimeout(err):
				if matched {
					return waitMatched
				}
				return waitTimeout
			default:
				t.fail(err)
				if matched {
					return waitMatched
				}
				return waitClosed
			}
		}
		if matched && settle <= 0 {
			return waitMatched
		}
	}
}

// closedErr describes how the connection ended.
func (t *term) closedErr() string {
	if t.err == nil || errors.Is(t.err, io.EOF) {
		return "server closed the connection"
	}
	return t.err.Error()
}

// --- reading the screen ---

// stripANSI removes ANSI CSI escape sequences (colour prompts) and other
// control bytes except line breaks.
func stripANSI(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == 0x1b {
			if i+1 < len(b) && b[i+1] == '[' {
				i += 2
				for i < len(b) && (b[i] < 0x40 || b[i] > 0x7e) {
					i++
				}
				continue
			}
			i++ // two-byte escape
			continue
		}
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' {
			continue
		}
		out = append(out, c)
	}
	return out
}

// lastLine returns the text after the last line break, lower-cased and
// right-trimmed: where a prompt waiting for input sits. It is "" when the
// text ends with a line break.
func lastLine(text []byte) string {
	t := stripANSI(text)
	if i := bytes.LastIndexAny(t, "\r\n"); i >= 0 {
		t = t[i+1:]
	}
	return strings.ToLower(strings.TrimRight(string(t), " \t"))
}

var loginPromptSuffixes = []string{"login:", "username:", "user name:", "user:", "login as:", "userid:", "user id:", "account:", "login name:"}

// isLoginPrompt reports whether the text ends with a prompt for a user name.
func isLoginPrompt(text []byte) bool {
	l := lastLine(text)
	for _, s := range loginPromptSuffixes {
		if strings.HasSuffix(l, s) {
			return true
		}
	}
	return false
}

// isPasswordPrompt reports whether the text ends with a prompt for a password.
func isPasswordPrompt(text []byte) bool {
	l := lastLine(text)
	return strings.HasSuffix(l, ":") && (strings.Contains(l, "password") || strings.Contains(l, "passwd") || strings.Contains(l, "passcode"))
}

// isShellPrompt reports whether the text ends with something that looks like
// a shell or CLI prompt. It is only a hint of when to speak: a prompt proves
// nothing, anyone can print "# ".
func isShellPrompt(text []byte) bool {
	l := lastLine(text)
	if l == "" || len(l) > 120 {
		return false
	}
	switch l[len(l)-1] {
	case '#', '$', '>', '%':
		return true
	}
	return false
}

// anyPrompt is a wait condition: the text ends with a login, password or
// shell prompt.
func anyPrompt(text []byte) bool {
	return isLoginPrompt(text) || isPasswordPrompt(text) || isShellPrompt(text)
}

// failureMarkers are words of a refused login. "bad salt" is what BusyBox
// login says (before hanging up) for an account whose hash is locked ("*").
var failureMarkers = []string{"incorrect", "invalid", "fail", "denied", "wrong", "bad password", "not allowed", "unknown user", "no such user", "authentication error", "login error", "bad salt"}

var lockoutMarkers = []string{"locked", "too many", "try again later", "temporarily", "blocked", "lockout", "banned"}

func containsAny(text []byte, markers []string) string {
	l := strings.ToLower(string(stripANSI(text)))
	for _, m := range markers {
		if strings.Contains(l, m) {
			return m
		}
	}
	return ""
}

// lineWith returns the (trimmed, printable) line of text containing marker.
func lineWith(text []byte, marker string) string {
	for _, line := range strings.FieldsFunc(string(stripANSI(text)), func(r rune) bool { return r == '\n' || r == '\r' }) {
		if strings.Contains(strings.ToLower(line), marker) {
			return proto.Printable([]byte(strings.TrimSpace(line)))
		}
	}
	return ""
}

// settle is how long a prompt must stay last before we answer it: long
// enough to see more text coming, short against loopback test servers.
func settle(io time.Duration) time.Duration { return min(settleDefault, io/4) }
