package ftp

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	ftpclient "github.com/jlaffaye/ftp"

	"github.com/iotcop/iotcop/proto"
)

// Bounds on what one connection may read.
const (
	// maxControlBytes caps the control connection (greeting, replies,
	// FEAT list): an endless reply must not grow memory.
	maxControlBytes = 64 << 10
	// maxListingBytes caps one directory listing's data connection.
	maxListingBytes = 256 << 10
	// keepNames is how many listed names are kept as evidence.
	keepNames = 10
)

// anonymousPassword is the e-mail style password anonymous FTP expects.
const anonymousPassword = "iotcop@example.com"

// errControlLimit ends a control connection that sent too much.
var errControlLimit = errors.New("ftp control connection sent too much")

// tapConn wraps the control connection: it caps the bytes read and keeps
// the reply codes seen, because jlaffaye/ftp reports some refusals as a
// bare message without their code.
type tapConn struct {
	net.Conn
	remote net.Addr

	mu    sync.Mutex
	read  int
	line  []byte // current partial line
	codes []int  // codes of reply lines seen since reset
	last  string // last complete reply line
}

func (t *tapConn) Read(b []byte) (int, error) {
	t.mu.Lock()
	left := maxControlBytes - t.read
	t.mu.Unlock()
	if left <= 0 {
		return 0, errControlLimit
	}
	if len(b) > left {
		b = b[:left]
	}
	n, err := t.Conn.Read(b)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.read += n
	for _, c := range b[:n] {
		if c != '\n' {
			if len(t.line) < 512 {
				t.line = append(t.line, c)
			}
			continue
		}
		line := strings.TrimRight(string(t.line), "\r")
		t.line = t.line[:0]
		if code, sep, _, ok := splitReplyLine(line); ok && sep == ' ' {
			if len(t.codes) < 64 {
				t.codes = append(t.codes, code)
			}
			t.last = line
		}
	}
	return n, err
}

// RemoteAddr is always a *net.TCPAddr, which jlaffaye/ftp relies on.
func (t *tapConn) RemoteAddr() net.Addr { return t.remote }

// reset forgets the replies seen so far.
func (t *tapConn) reset() {
	t.mu.Lock()
	t.codes, t.last = nil, ""
	t.mu.Unlock()
}

// lastReply returns the code and text of the last complete reply line.
func (t *tapConn) lastReply() (int, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	code, _, text, ok := splitReplyLine(t.last)
	if !ok {
		return 0, ""
	}
	return code, text
}

// saw reports whether a reply with code arrived since the last reset.
func (t *tapConn) saw(code int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.codes {
		if c == code {
			return true
		}
	}
	return false
}

// cappedConn ends a data connection after max bytes.
type cappedConn struct {
	net.Conn
	left int
}

func (c *cappedConn) Read(b []byte) (int, error) {
	if c.left <= 0 {
		return 0, io.EOF
	}
	if len(b) > c.left {
		b = b[:c.left]
	}
	n, err := c.Conn.Read(b)
	c.left -= n
	return n, err
}

// client is one FTP control connection.
type client struct {
	ep   proto.Endpoint
	tap  *tapConn
	sc   *ftpclient.ServerConn
	stop func() bool
}

// dialClient connects, reads the greeting through jlaffaye/ftp and returns
// the client. Data connections always go to the endpoint's own host,
// whatever a PASV reply says.
func dialClient(ctx context.Context, ep proto.Endpoint) (*client, error) {
	raw, err := ep.Connect(ctx)
	if err != nil {
		return nil, err
	}
	remote, ok := raw.RemoteAddr().(*net.TCPAddr)
	if !ok {
		remote = &net.TCPAddr{IP: net.ParseIP(ep.Host), Port: ep.Port}
	}
	tap := &tapConn{Conn: raw, remote: remote}
	_ = tap.SetDeadline(time.Now().Add(ep.IOTimeout()))
	first := true
	dialFn := func(network, address string) (net.Conn, error) {
		if first {
			first = false
			return tap, nil
		}
		_, portStr, err := net.SplitHostPort(address)
		if err != nil {
			return nil, err
		}
		port, err := strconv.Atoi(portStr)
		if err != nil || port <= 0 || port > 65535 {
			return nil, fmt.Errorf("bad data port %q", portStr)
		}
		dep := ep
		dep.Port = port
		// Over implicit FTPS the data connection is TLS too, but servers
		// start the handshake only once the transfer command arrived on
		// the control connection: handshake lazily, on the first read.
		dep.TLS = false
		conn, err := dep.Connect(ctx)
		if err != nil {
			return nil, err
		}
		if ep.TLS {
			conn = tls.Client(conn, &tls.Config{InsecureSkipVerify: true, ServerName: ep.Host, MinVersion: tls.VersionTLS10}) //nolint:gosec // devices use self-signed certificates
		}
		_ = conn.SetDeadline(time.Now().Add(2 * ep.IOTimeout()))
		return &cappedConn{Conn: conn, left: maxListingBytes}, nil
	}
	opts := []ftpclient.DialOption{
		ftpclient.DialWithDialFunc(dialFn),
		ftpclient.DialWithShutTimeout(ep.IOTimeout()),
		ftpclient.DialWithDisabledUTF8(true),
	}
	if ep.TLS {
		// Implicit FTPS: the endpoint already wrapped the control
		// connection; this makes the library ask for protected data
		// connections (PBSZ/PROT), which ep.Connect wraps too.
		opts = append(opts, ftpclient.DialWithTLS(&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10})) //nolint:gosec // devices use self-signed certificates
	}
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Now()) })
	sc, err := ftpclient.Dial(ep.Addr(), opts...)
	if err != nil {
		stop()
		raw.Close()
		return nil, fmt.Errorf("ftp greeting: %w", err)
	}
	return &client{ep: ep, tap: tap, sc: sc, stop: stop}, nil
}

func (c *client) Close() error {
	c.stop()
	_ = c.tap.SetDeadline(time.Now().Add(500 * time.Millisecond))
	return c.sc.Quit()
}

// loginResult is what one USER/PASS exchange and listing showed.
type loginResult struct {
	proto.LoginResult
	names    []string
	count    int
	loggedIn bool // 230 seen: the connection is no longer usable for logins
}

// login sends USER/PASS; after a 230 it lists the working directory, the
// proof that the login gives access. err is set for I/O failures only.
func (c *client) login(ctx context.Context, cred proto.Credential) (loginResult, error) {
	if err := ctx.Err(); err != nil {
		return loginResult{}, err
	}
	c.tap.reset()
	// Login, FEAT, TYPE and the listing are several round trips, and
	// servers delay failed logins by a second or more.
	_ = c.tap.SetDeadline(time.Now().Add(3 * c.ep.IOTimeout()))
	err := c.sc.Login(cred.Username, cred.Password)
	if err != nil && !c.tap.saw(230) {
		code, text := c.tap.lastReply()
		var tpe interface{ Timeout() bool }
		if code == 0 || errors.As(err, &tpe) || errors.Is(err, io.EOF) || errors.Is(err, errControlLimit) {
			return loginResult{LoginResult: proto.LoginResult{Outcome: proto.Unknown}}, fmt.Errorf("ftp login: %w", err)
		}
		return loginResult{LoginResult: classifyRefusal(code, text)}, nil
	}
	r := loginResult{loggedIn: true}
	names, count, lerr := c.list()
	if lerr != nil {
		r.LoginResult = proto.LoginResult{Outcome: proto.Unknown, Detail: "230 but no directory listing: " + truncate(lerr.Error(), 120)}
		return r, nil
	}
	r.names, r.count = names, count
	r.LoginResult = proto.LoginResult{Outcome: proto.Accepted,
		Proof:  fmt.Sprintf("230 and a directory listing (%d entries)", count),
		Detail: truncate(strings.Join(names, ", "), 200)}
	return r, nil
}

// list lists the working directory (MLSD or LIST, else NLST). A listing
// counts when the transfer completed or delivered entries.
func (c *client) list() (names []string, count int, err error) {
	_ = c.tap.SetDeadline(time.Now().Add(3 * c.ep.IOTimeout()))
	entries, err := c.sc.List("")
	if err == nil || len(entries) > 0 {
		for _, e := range entries {
			if len(names) < keepNames && e.Name != "." && e.Name != ".." {
				names = append(names, proto.Printable([]byte(truncate(e.Name, 80))))
			}
		}
		return names, len(entries), nil
	}
	if isIOError(err) {
		return nil, 0, err
	}
	plain, nerr := c.sc.NameList("")
	if nerr != nil && len(plain) == 0 {
		return nil, 0, fmt.Errorf("LIST: %v; NLST: %w", err, nerr)
	}
	for _, n := range plain {
		if len(names) < keepNames {
			names = append(names, proto.Printable([]byte(truncate(n, 80))))
		}
	}
	return names, len(plain), nil
}

func isIOError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, errControlLimit) || errors.Is(err, net.ErrClosed)
}

// lockoutWords are signs that the server stopped taking attempts.
var lockoutWords = []string{"too many", "locked", "try again later", "blocked", "banned", "temporarily disabled"}

// classifyRefusal turns the reply that ended a failed login into an outcome.
func classifyRefusal(code int, text string) proto.LoginResult {
	detail := strconv.Itoa(code) + " " + truncate(text, 120)
	lower := strings.ToLower(text)
	for _, w := range lockoutWords {
		if strings.Contains(lower, w) {
			return proto.LoginResult{Outcome: proto.LockedOut, Detail: detail}
		}
	}
	switch code {
	case 530, 430:
		return proto.LoginResult{Outcome: proto.Rejected, Detail: detail}
	}
	return proto.LoginResult{Outcome: proto.Unknown, Detail: detail}
}

// session tries credentials, reusing the control connection after a
// refusal (servers allow a few USER/PASS rounds) and reconnecting when the
// server hangs up or after a successful login.
type session struct {
	ep proto.Endpoint
	c  *client

	anonAny map[string]bool // anonymous-style user → accepts any password
}

// Open connects and reads the greeting; credentials are tried by Try.
func (p *Protocol) Open(ctx context.Context, ep proto.Endpoint, id *proto.Identity) (proto.LoginSession, error) {
	c, err := dialClient(ctx, ep)
	if err != nil {
		return nil, fmt.Errorf("ftp login to %s: %w", ep.Addr(), err)
	}
	return &session{ep: ep, c: c, anonAny: map[string]bool{}}, nil
}

// Try claims Accepted only on 230 followed by a directory listing. A server
// that lets any user in is reported as it behaves (Accepted for a random
// pair too): callers try a random pair first to tell such servers apart, as
// check.DefaultCredentials does. Anonymous-style users (anonymous, ftp)
// are first tried with a random password, since they take any password by
// design: that is open access (ProbeOpenAccess), not a default credential,
// and Try says Unknown.
func (s *session) Try(ctx context.Context, cred proto.Credential) (proto.LoginResult, error) {
	user := strings.ToLower(cred.Username)
	if user == "anonymous" || user == "ftp" {
		anyPass, seen := s.anonAny[user]
		if !seen {
			r, err := s.attempt(ctx, proto.Credential{Username: cred.Username, Password: randomHex(12)})
			if err != nil {
				return r.LoginResult, err
			}
			anyPass = r.Outcome == proto.Accepted
			s.anonAny[user] = anyPass
		}
		if anyPass {
			return proto.LoginResult{Outcome: proto.Unknown, Detail: cred.Username + " logs in with any password: anonymous FTP (open access), not a default credential"}, nil
		}
	}
	r, err := s.attempt(ctx, cred)
	return r.LoginResult, err
}

// attempt runs one login, reconnecting once when a reused connection was
// closed by the server.
func (s *session) attempt(ctx context.Context, cred proto.Credential) (loginResult, error) {
	for try := 0; ; try++ {
		reused := s.c != nil
		if s.c == nil {
			c, err := dialClient(ctx, s.ep)
			if err != nil {
				if lr, ok := greetingRefusal(err); ok {
					return loginResult{LoginResult: lr}, nil
				}
				return loginResult{LoginResult: proto.LoginResult{Outcome: proto.Unknown}}, fmt.Errorf("ftp login to %s: %w", s.ep.Addr(), err)
			}
			s.c = c
		}
		r, err := s.c.login(ctx, cred)
		if err != nil || r.loggedIn || r.Outcome != proto.Rejected {
			s.c.Close()
			s.c = nil
		}
		if err != nil && reused && try == 0 && ctx.Err() == nil {
			continue
		}
		if err != nil {
			return r, fmt.Errorf("ftp login to %s: %w", s.ep.Addr(), err)
		}
		return r, nil
	}
}

// greetingRefusal reads a refusal in place of the greeting ("421 Too many
// connections from your IP").
func greetingRefusal(err error) (proto.LoginResult, bool) {
	var te *textproto.Error
	if !errors.As(err, &te) {
		return proto.LoginResult{}, false
	}
	lr := classifyRefusal(te.Code, te.Msg)
	return lr, lr.Outcome == proto.LockedOut
}

// Close ends the session's connection.
func (s *session) Close() error {
	if s.c == nil {
		return nil
	}
	err := s.c.Close()
	s.c = nil
	return err
}

// ProbeOpenAccess logs in as "anonymous" and then "ftp" with an e-mail
// password and reports the first that lists a directory. Details:
// "user", "entries" (first names listed), "entry_count", and with
// ProbeWrite "writable" (bool) and "write_test" (what was done).
func (p *Protocol) ProbeOpenAccess(ctx context.Context, ep proto.Endpoint, id *proto.Identity) (*proto.OpenAccess, error) {
	var lastErr error
	for _, user := range []string{"anonymous", "ftp"} {
		c, err := dialClient(ctx, ep)
		if err != nil {
			return nil, fmt.Errorf("ftp anonymous probe of %s: %w", ep.Addr(), err)
		}
		r, err := c.login(ctx, proto.Credential{Username: user, Password: anonymousPassword})
		if err != nil {
			c.Close()
			lastErr = err
			continue
		}
		if r.Outcome != proto.Accepted {
			c.Close()
			continue
		}
		details := map[string]any{"user": user, "entries": r.names, "entry_count": r.count}
		if p.ProbeWrite {
			writable, what := c.probeWrite()
			details["writable"] = writable
			details["write_test"] = what
		}
		c.Close()
		return &proto.OpenAccess{
			What:    "anonymous FTP",
			Proof:   "230 and a directory listing as " + user,
			Details: details,
		}, nil
	}
	if lastErr != nil {
		return nil, fmt.Errorf("ftp anonymous probe of %s: %w", ep.Addr(), lastErr)
	}
	return nil, nil
}

// probeWrite creates a uniquely named empty directory and removes it.
func (c *client) probeWrite() (bool, string) {
	name := "iotcop-write-test-" + randomHex(6)
	_ = c.tap.SetDeadline(time.Now().Add(2 * c.ep.IOTimeout()))
	if err := c.sc.MakeDir(name); err != nil {
		return false, "MKD " + name + " refused: " + truncate(err.Error(), 100)
	}
	if err := c.sc.RemoveDir(name); err != nil {
		return true, "MKD " + name + " succeeded; RMD failed, the empty directory remains: " + truncate(err.Error(), 100)
	}
	return true, "MKD and RMD of " + name + " succeeded"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
