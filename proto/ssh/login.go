package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	xssh "golang.org/x/crypto/ssh"

	"github.com/iotcop/iotcop/proto"
)

// Proofs reported with Accepted.
const (
	ProofEcho      = "userauth success and echo nonce read back"
	ProofNoCommand = "userauth success (no command channel)"
)

const (
	// clientVersion is what we announce; honest, and accepted everywhere.
	clientVersion = "SSH-2.0-iotcop"
	// maxKIRounds bounds keyboard-interactive question rounds per attempt.
	maxKIRounds = 4
	// freshLimitsForLockout: this many fresh connections in a row refused
	// at their first attempt with a "too many failures" disconnect count
	// as a lockout.
	freshLimitsForLockout = 3
	// hangupsForLockout: this many attempts in a row lost to the server
	// hanging up without a verdict count as a lockout.
	hangupsForLockout = 3
	// maxOutput caps what we keep of a command's output.
	maxOutput = 8 << 10
	// maxBannerMsg caps the pre-authentication banner we keep.
	maxBannerMsg = 512
)

var errSessionClosed = errors.New("login session closed")

// lockoutMarkers are words of a server shutting us out (in disconnect
// messages and pre-authentication banners).
var lockoutMarkers = []string{"locked", "blocked", "banned", "try again later", "temporarily"}

// limitMarkers are words of the server's per-connection attempt limit
// (OpenSSH MaxAuthTries, Dropbear's "Max auth tries reached"). OpenSSH sends
// this disconnect instead of the failure for the attempt that hit the
// limit, so that attempt was refused.
var limitMarkers = []string{"too many authentication failures", "max auth tries", "too many"}

// Open starts a login session. No connection is made until the first Try.
//
// Connection reuse: SSH lets a client send several authentication requests
// on one connection, but only for one user name (OpenSSH and Dropbear drop
// the connection when it changes). x/crypto/ssh runs the whole
// authentication inside its handshake, so the session keeps that handshake
// parked in a ClientConfig.AuthCallback between Try calls: consecutive
// tries for the same user share one connection until the server's
// per-connection limit (OpenSSH MaxAuthTries, 6 by default; Dropbear 10)
// closes it, after which the session reconnects transparently. A new user
// name starts a new connection.
//
// Methods: "password" when the server offers it, otherwise
// "keyboard-interactive" answering every prompt with the password. One
// request per credential; a credential refused by password is not retried
// by keyboard-interactive (both check the same secret and each request
// counts against lockout budgets).
func (p *Protocol) Open(ctx context.Context, ep proto.Endpoint, id *proto.Identity) (proto.LoginSession, error) {
	return &session{ep: ep}, nil
}

// session is one SSH login session; see Open.
type session struct {
	ep          proto.Endpoint
	live        *liveConn
	worked      bool // some connection reached the authentication phase
	freshLimits int  // consecutive fresh connections refused at once with a limit disconnect
	hangups     int  // consecutive attempts lost without a verdict
	// firstBanner is the pre-authentication banner of the first connection
	// that got that far. Banners are static text (legal notices may say
	// "blocked"), so only a banner that changed to lockout words counts.
	firstBanner []byte
	sawBanner   bool
}

// bannerLockout returns the lockout word in lc's banner when the first
// connection's banner did not have it.
func (s *session) bannerLockout(lc *liveConn) string {
	m := marker(string(lc.banner), lockoutMarkers)
	if m == "" || !s.sawBanner || strings.Contains(strings.ToLower(string(s.firstBanner)), m) {
		return ""
	}
	return m
}

// liveConn is a connection whose handshake goroutine waits in the
// AuthCallback for the next credential.
type liveConn struct {
	user     string
	raw      *watchConn
	next     chan xssh.AuthMethod
	events   chan authEvent
	quit     chan struct{}
	stopOnce sync.Once
	allowed  []string // methods the server allows now
	attempts int      // authentication requests made on this connection
	banner   []byte   // pre-authentication banner (SSH_MSG_USERAUTH_BANNER), capped
}

type eventKind int

const (
	evReady eventKind = iota // the server wants another attempt (the previous failed)
	evDone                   // the handshake finished: authenticated, or failed
)

type authEvent struct {
	kind    eventKind
	allowed []string
	conn    xssh.Conn
	chans   <-chan xssh.NewChannel
	reqs    <-chan *xssh.Request
	err     error
}

func (lc *liveConn) stop() {
	lc.stopOnce.Do(func() {
		close(lc.quit)
		_ = lc.raw.Close()
	})
}

// wait returns the next event from the handshake goroutine, or ctx's error
// (after closing the connection).
func (lc *liveConn) wait(ctx context.Context) (authEvent, error) {
	select {
	case ev := <-lc.events:
		return ev, nil
	case <-ctx.Done():
		lc.stop()
		return authEvent{}, ctx.Err()
	}
}

// Close drops the connection.
func (s *session) Close() error {
	s.drop()
	return nil
}

func (s *session) drop() {
	if s.live != nil {
		s.live.stop()
		s.live = nil
	}
}

// Try authenticates as c. Accepted means the server sent
// SSH_MSG_USERAUTH_SUCCESS; Proof says whether an echo of a nonce also ran
// (ProofEcho) or no command could run (ProofNoCommand). Rejected is the
// server's SSH_MSG_USERAUTH_FAILURE (or its per-connection-limit
// disconnect in place of one), and also a server that offers neither
// password nor keyboard-interactive authentication. LockedOut is a
// disconnect or banner saying locked/blocked/banned, connections refused
// after earlier ones worked, or repeated hang-ups without a verdict.
func (s *session) Try(ctx context.Context, c proto.Credential) (proto.LoginResult, error) {
	if s.live != nil && s.live.user != c.Username {
		s.drop()
	}
	for try := 0; ; try++ {
		if err := ctx.Err(); err != nil {
			s.drop()
			return proto.LoginResult{}, fmt.Errorf("ssh login to %s: %w", s.ep.Addr(), err)
		}
		reused := s.live != nil
		if !reused {
			res, ok, err := s.connect(ctx, c.Username)
			if !ok {
				return res, err
			}
		}
		res, lost, err := s.attempt(ctx, c)
		if err != nil {
			s.drop()
			return proto.LoginResult{}, fmt.Errorf("ssh login to %s: %w", s.ep.Addr(), err)
		}
		if lost {
			s.drop()
			if reused && try == 0 {
				// The server dropped the idle connection or its attempt
				// limit was reached: start afresh.
				continue
			}
			s.hangups++
			if s.hangups >= hangupsForLockout {
				return proto.LoginResult{Outcome: proto.LockedOut, Detail: fmt.Sprintf("server hung up without a verdict %d times in a row (last: %s)", s.hangups, res.Detail)}, nil
			}
			return res, nil
		}
		s.hangups = 0
		return res, nil
	}
}

// connect dials, runs the key exchange and the "none" authentication, and
// parks the handshake in the AuthCallback. ok is false when the session
// cannot go on to an attempt; res and err then say why. A server that
// accepts "none" yields ok false with res Accepted.
func (s *session) connect(ctx context.Context, user string) (res proto.LoginResult, ok bool, err error) {
	conn, err := s.ep.Connect(ctx)
	if err != nil && s.worked && ctx.Err() == nil {
		conn, err = s.ep.Connect(ctx)
		if err != nil && ctx.Err() == nil {
			return proto.LoginResult{Outcome: proto.LockedOut, Detail: "connections refused after earlier ones worked: " + err.Error()}, false, nil
		}
	}
	if err != nil {
		return proto.LoginResult{}, false, fmt.Errorf("ssh login to %s: %w", s.ep.Addr(), err)
	}
	io := s.ep.IOTimeout()
	lc := &liveConn{
		user:   user,
		raw:    &watchConn{Conn: conn},
		next:   make(chan xssh.AuthMethod),
		events: make(chan authEvent, 2),
		quit:   make(chan struct{}),
	}
	cfg := clientConfig(user)
	cfg.BannerCallback = func(msg string) error {
		if room := maxBannerMsg - len(lc.banner); room > 0 {
			lc.banner = append(lc.banner, msg[:min(room, len(msg))]...)
		}
		return nil
	}
	cfg.AuthCallback = func(actx *xssh.ClientAuthContext) (xssh.AuthMethod, error) {
		lc.events <- authEvent{kind: evReady, allowed: slices.Clone(actx.AllowedMethods)}
		select {
		case m := <-lc.next:
			return m, nil
		case <-lc.quit:
			return nil, errSessionClosed
		}
	}
	_ = lc.raw.SetDeadline(time.Now().Add(3 * io)) // key exchange on slow devices
	go func() {
		c, chans, reqs, err := xssh.NewClientConn(lc.raw, s.ep.Addr(), cfg)
		lc.events <- authEvent{kind: evDone, conn: c, chans: chans, reqs: reqs, err: err}
	}()
	ev, err := lc.wait(ctx)
	if err != nil {
		return proto.LoginResult{}, false, fmt.Errorf("ssh login to %s: %w", s.ep.Addr(), err)
	}
	switch {
	case ev.kind == evReady:
		lc.allowed = ev.allowed
		_ = lc.raw.SetDeadline(time.Time{})
		s.live, s.worked = lc, true
		if !s.sawBanner {
			s.firstBanner, s.sawBanner = slices.Clone(lc.banner), true
		}
		return proto.LoginResult{}, true, nil
	case ev.err == nil:
		// The server accepted the "none" method: no password at all.
		res := s.prove(ctx, lc, ev)
		lc.stop()
		res.Detail = joinDetail("server accepted the \"none\" method: no password needed", res.Detail)
		return res, false, nil
	}
	lc.stop()
	if marker(ev.err.Error(), lockoutMarkers) != "" || s.bannerLockout(lc) != "" {
		return proto.LoginResult{Outcome: proto.LockedOut, Detail: proto.Printable([]byte(ev.err.Error() + " " + string(lc.banner)))}, false, nil
	}
	if s.worked && isDisconnectOrEOF(ev.err) {
		// Earlier connections got to authentication; this one is turned
		// away before it. Count it as a hang-up without verdict.
		s.hangups++
		if s.hangups >= hangupsForLockout {
			return proto.LoginResult{Outcome: proto.LockedOut, Detail: fmt.Sprintf("connections dropped before authentication %d times in a row: %v", s.hangups, ev.err)}, false, nil
		}
		return proto.LoginResult{Outcome: proto.Unknown, Detail: "connection dropped before authentication: " + ev.err.Error()}, false, nil
	}
	return proto.LoginResult{}, false, fmt.Errorf("ssh login to %s: %w", s.ep.Addr(), ev.err)
}

// attempt sends one authentication request on the live connection. lost
// reports that the connection broke before the server gave a verdict.
func (s *session) attempt(ctx context.Context, c proto.Credential) (res proto.LoginResult, lost bool, err error) {
	lc := s.live
	method, state, name := methodFor(lc.allowed, c.Password)
	if method == nil {
		s.drop()
		return proto.LoginResult{Outcome: proto.Rejected, Detail: "server offers no password login (methods: " + strings.Join(lc.allowed, ",") + ")"}, false, nil
	}
	io := s.ep.IOTimeout()
	// Servers delay failures (PAM: 2 s), so allow two round trips.
	_ = lc.raw.SetDeadline(time.Now().Add(2 * io))
	select {
	case lc.next <- method:
	case <-ctx.Done():
		return proto.LoginResult{}, false, ctx.Err()
	}
	lc.attempts++
	ev, err := lc.wait(ctx)
	if err != nil {
		return proto.LoginResult{}, false, err
	}
	if ev.kind == evReady {
		if werr := lc.raw.failure(); werr != nil {
			return proto.LoginResult{Outcome: proto.Unknown, Detail: "connection lost during " + name + " authentication: " + werr.Error()}, true, nil
		}
		if state.aborted {
			s.drop()
			return proto.LoginResult{Outcome: proto.Unknown, Detail: "server kept asking keyboard-interactive questions"}, false, nil
		}
		lc.allowed = ev.allowed
		_ = lc.raw.SetDeadline(time.Time{})
		s.freshLimits = 0
		if s.bannerLockout(lc) != "" {
			return proto.LoginResult{Outcome: proto.LockedOut, Detail: "banner: " + proto.Printable(lc.banner)}, false, nil
		}
		return proto.LoginResult{Outcome: proto.Rejected, Detail: name + " authentication refused"}, false, nil
	}
	if ev.err == nil {
		res := s.prove(ctx, lc, ev)
		s.drop()
		res.Detail = joinDetail("via "+name+" authentication", res.Detail)
		return res, false, nil
	}
	s.drop()
	msg := ev.err.Error()
	if marker(msg, lockoutMarkers) != "" || s.bannerLockout(lc) != "" {
		return proto.LoginResult{Outcome: proto.LockedOut, Detail: proto.Printable([]byte(msg + " " + string(lc.banner)))}, false, nil
	}
	if isDisconnect(ev.err) && marker(msg, limitMarkers) != "" {
		// The server's per-connection limit, announced in place of the
		// failure for this attempt.
		if lc.attempts == 1 {
			s.freshLimits++
			if s.freshLimits >= freshLimitsForLockout {
				return proto.LoginResult{Outcome: proto.LockedOut, Detail: fmt.Sprintf("first attempt on %d fresh connections met: %s", s.freshLimits, msg)}, false, nil
			}
		} else {
			s.freshLimits = 0
		}
		return proto.LoginResult{Outcome: proto.Rejected, Detail: name + " authentication refused; " + proto.Printable([]byte(msg))}, false, nil
	}
	return proto.LoginResult{Outcome: proto.Unknown, Detail: "connection lost during " + name + " authentication: " + msg}, true, nil
}

// kiState records what a keyboard-interactive attempt went through.
type kiState struct {
	rounds  int
	aborted bool
}

// methodFor picks the authentication method for one attempt.
func methodFor(allowed []string, password string) (xssh.AuthMethod, *kiState, string) {
	st := &kiState{}
	switch {
	case slices.Contains(allowed, "password"):
		return xssh.Password(password), st, "password"
	case slices.Contains(allowed, "keyboard-interactive"):
		return xssh.KeyboardInteractive(func(name, instruction string, questions []string, echos []bool) ([]string, error) {
			st.rounds++
			if st.rounds > maxKIRounds {
				st.aborted = true
				return nil, errors.New("too many keyboard-interactive rounds")
			}
			answers := make([]string, len(questions))
			for i := range answers {
				answers[i] = password
			}
			return answers, nil
		}), st, "keyboard-interactive"
	}
	return nil, nil, ""
}

// clientConfig allows every algorithm x/crypto implements, modern ones
// first, so that old device firmware (diffie-hellman-group1-sha1,
// ssh-rsa/ssh-dss host keys, CBC ciphers) can still be reached. Host keys
// are not verified: we assess the device, we do not trust it.
func clientConfig(user string) *xssh.ClientConfig {
	sup, ins := xssh.SupportedAlgorithms(), xssh.InsecureAlgorithms()
	return &xssh.ClientConfig{
		Config: xssh.Config{
			KeyExchanges: slices.Concat(sup.KeyExchanges, ins.KeyExchanges),
			Ciphers:      slices.Concat(sup.Ciphers, ins.Ciphers),
			MACs:         slices.Concat(sup.MACs, ins.MACs),
		},
		User:              user,
		HostKeyCallback:   xssh.InsecureIgnoreHostKey(), //nolint:gosec // assessing, not trusting, the device
		HostKeyAlgorithms: hostKeyOrder(slices.Concat(sup.HostKeys, ins.HostKeys)),
		ClientVersion:     clientVersion,
	}
}

// hostKeyOrder puts plain Ed25519, ECDSA and RSA host keys before
// certificate and newer algorithms. Dropbear 2022.83 holding only an Ed25519
// key still advertises rsa-sha2-256 and then fails an assertion if a client
// picks it; OpenSSH clients prefer Ed25519, and so do we.
func hostKeyOrder(algos []string) []string {
	rank := func(a string) int {
		switch {
		case a == xssh.KeyAlgoED25519:
			return 0
		case strings.HasPrefix(a, "ecdsa-sha2-") && !strings.Contains(a, "cert"):
			return 1
		case a == xssh.KeyAlgoRSASHA256 || a == xssh.KeyAlgoRSASHA512:
			return 2
		case a == xssh.KeyAlgoRSA:
			return 3
		}
		return 4
	}
	out := slices.Clone(algos)
	slices.SortStableFunc(out, func(a, b string) int { return rank(a) - rank(b) })
	return out
}

// prove runs an echo of a nonce on an authenticated connection: first as an
// exec request, then through a shell. Authentication success alone is
// already proof; the echo makes it stronger when a command channel exists.
func (s *session) prove(ctx context.Context, lc *liveConn, ev authEvent) proto.LoginResult {
	client := xssh.NewClient(ev.conn, ev.chans, ev.reqs)
	defer client.Close()
	_ = lc.raw.SetDeadline(time.Now().Add(2 * s.ep.IOTimeout()))
	stop := context.AfterFunc(ctx, func() { _ = lc.raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	probe := newEchoProbe()
	execErr := runProbe(client, probe, false)
	if execErr == nil {
		return proto.LoginResult{Outcome: proto.Accepted, Proof: ProofEcho}
	}
	shellErr := runProbe(client, probe, true)
	if shellErr == nil {
		return proto.LoginResult{Outcome: proto.Accepted, Proof: ProofEcho, Detail: "via a shell (exec: " + execErr.Error() + ")"}
	}
	return proto.LoginResult{Outcome: proto.Accepted, Proof: ProofNoCommand, Detail: "exec: " + execErr.Error() + "; shell: " + shellErr.Error()}
}

// runProbe runs the probe in a new session channel (as exec, or typed into
// a shell on a pseudo-terminal) and returns nil when its output came back.
func runProbe(client *xssh.Client, probe echoProbe, shell bool) error {
	sess, err := client.NewSession()
	if err != nil {
		return fmt.Errorf("open session: %w", err)
	}
	defer sess.Close()
	out := &watchWriter{want: []byte(probe.Want), found: make(chan struct{})}
	sess.Stdout = out
	sess.Stderr = out
	if shell {
		sess.Stdin = strings.NewReader(probe.Command + "\nexit\n")
		modes := xssh.TerminalModes{xssh.ECHO: 1}
		if err := sess.RequestPty("vt100", 24, 80, modes); err != nil {
			return fmt.Errorf("pty: %w", err)
		}
		if err := sess.Shell(); err != nil {
			return fmt.Errorf("shell: %w", err)
		}
	} else if err := sess.Start(probe.Command); err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case <-out.found:
		return nil
	case err := <-done:
		if out.seen() {
			return nil
		}
		if err == nil {
			err = errors.New("the nonce did not come back")
		}
		return fmt.Errorf("output without the nonce: %w", err)
	}
}

// watchWriter collects command output (bounded) and signals when the
// wanted text appears.
type watchWriter struct {
	mu    sync.Mutex
	want  []byte
	buf   []byte
	hit   bool
	found chan struct{}
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.hit {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	if bytes.Contains(w.buf, w.want) {
		w.hit = true
		close(w.found)
		return len(p), nil
	}
	if over := len(w.buf) - maxOutput; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
	}
	return len(p), nil
}

func (w *watchWriter) seen() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.hit
}

// watchConn remembers the first read or write error, so that a failure
// x/crypto reports to the AuthCallback can be told apart from a refusal.
type watchConn struct {
	net.Conn
	mu  sync.Mutex
	err error
}

func (c *watchConn) note(err error) {
	if err == nil {
		return
	}
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
}

func (c *watchConn) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *watchConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.note(err)
	return n, err
}

func (c *watchConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.note(err)
	return n, err
}

func joinDetail(a, b string) string {
	if b == "" {
		return a
	}
	return a + "; " + b
}

func marker(text string, markers []string) string {
	l := strings.ToLower(text)
	for _, m := range markers {
		if strings.Contains(l, m) {
			return m
		}
	}
	return ""
}

// isDisconnect reports whether err carries the server's SSH_MSG_DISCONNECT
// (x/crypto's message type is unexported; its text is stable).
func isDisconnect(err error) bool {
	return err != nil && strings.Contains(err.Error(), "ssh: disconnect, reason")
}

func isDisconnectOrEOF(err error) bool {
	return isDisconnect(err) || strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "connection reset")
}
