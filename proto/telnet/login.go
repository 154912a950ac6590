package telnet

import (
	"bytes"
	"context"
	"fmt"

	"github.com/iotcop/iotcop/proto"
)

// Thresholds for lockout signs.
const (
	// hangupsForLockout is how many attempts in a row may end with the
	// server hanging up, without any verdict, before we call it a lockout.
	hangupsForLockout = 3
	// maxSeen caps the text kept across the phases of one attempt.
	maxSeen = 16 << 10
)

// Open starts a login session. No connection is made until the first Try.
// The session keeps one connection while the server re-prompts for a login
// after a failure (BusyBox login does, three times) and reconnects
// transparently when the server hangs up.
func (p *Protocol) Open(ctx context.Context, ep proto.Endpoint, id *proto.Identity) (proto.LoginSession, error) {
	return &session{ep: ep}, nil
}

// session is one telnet login session; see Open.
type session struct {
	ep proto.Endpoint
	t  *term
	// What the live connection waits for: a user name, or (on devices that
	// ask for a password only) a password.
	atLogin, atPassword bool
	worked              bool // some connection reached a login prompt
	hangups             int  // consecutive attempts ended by a hang-up without verdict
}

// Close drops the connection.
func (s *session) Close() error {
	s.drop()
	return nil
}

func (s *session) drop() {
	if s.t != nil {
		_ = s.t.conn.Close()
	}
	s.t, s.atLogin, s.atPassword = nil, false, false
}

// Try logs in with c. It claims Accepted only when a shell echo of a nonce
// comes back computed (see echoProbe); "Login incorrect" or the login prompt
// returning is Rejected; lockout words or repeated hang-ups are LockedOut;
// anything else is Unknown.
func (s *session) Try(ctx context.Context, c proto.Credential) (proto.LoginResult, error) {
	for try := 0; ; try++ {
		if err := ctx.Err(); err != nil {
			return proto.LoginResult{}, fmt.Errorf("telnet login to %s: %w", s.ep.Addr(), err)
		}
		reused := s.t != nil
		if !reused {
			res, ok, err := s.connect(ctx)
			if !ok {
				return res, err
			}
		}
		res, connLost := s.attempt(ctx, c)
		if connLost {
			s.drop()
			if reused && try == 0 {
				// The server hung up on the idle connection (login
				// timeout, attempts per connection used up): start afresh.
				continue
			}
			s.hangups++
			if s.hangups >= hangupsForLockout {
				return proto.LoginResult{Outcome: proto.LockedOut, Detail: fmt.Sprintf("server hung up without a verdict %d times in a row", s.hangups)}, nil
			}
			res.Outcome = proto.Unknown
			res.Detail = "connection lost during the login: " + res.Detail
		}
		if ctx.Err() != nil {
			s.drop()
			return proto.LoginResult{}, fmt.Errorf("telnet login to %s: %w", s.ep.Addr(), ctx.Err())
		}
		return res, nil
	}
}

// connect dials and waits for a login or password prompt. ok is false when
// no prompt came; res and err then say why.
func (s *session) connect(ctx context.Context) (res proto.LoginResult, ok bool, err error) {
	conn, err := s.ep.Connect(ctx)
	if err != nil && s.worked {
		// Refused after earlier connections worked: one more try, then
		// treat it as the device shutting us out.
		conn, err = s.ep.Connect(ctx)
		if err != nil {
			return proto.LoginResult{Outcome: proto.LockedOut, Detail: "connections refused after earlier ones worked: " + err.Error()}, false, nil
		}
	}
	if err != nil {
		return proto.LoginResult{}, false, fmt.Errorf("telnet login to %s: %w", s.ep.Addr(), err)
	}
	t := newTerm(conn)
	io := s.ep.IOTimeout()
	st := t.wait(ctx, io, settle(io), anyPrompt)
	if st == waitTimeout && !anyPrompt(t.text()) {
		// Some devices print their prompt only after a key press. A slow
		// device may answer it with a second prompt: settle longer so
		// that it is read here, not taken for the next answer.
		if t.send(ctx, "", io) == nil {
			st = t.wait(ctx, io, 3*settle(io), anyPrompt)
		}
	}
	text := t.text()
	switch {
	case isLoginPrompt(text):
		s.t, s.atLogin, s.worked = t, true, true
		return proto.LoginResult{}, true, nil
	case isPasswordPrompt(text):
		s.t, s.atPassword, s.worked = t, true, true
		return proto.LoginResult{}, true, nil
	}
	_ = conn.Close()
	if st == waitCanceled {
		return proto.LoginResult{}, false, fmt.Errorf("telnet login to %s: %w", s.ep.Addr(), ctx.Err())
	}
	if m := containsAny(text, lockoutMarkers); m != "" {
		return proto.LoginResult{Outcome: proto.LockedOut, Detail: lineWith(text, m)}, false, nil
	}
	detail := "no login prompt (" + st.String() + ")"
	if isShellPrompt(text) {
		detail = "shell prompt without login (an open-access finding, not a credential)"
	}
	if tail := lastLine(text); tail != "" {
		detail += ": " + proto.Printable([]byte(tail))
	}
	return proto.LoginResult{Outcome: proto.Unknown, Detail: detail}, false, nil
}

// attempt runs one login on the live connection. connLost reports that the
// connection broke before the password could be judged.
func (s *session) attempt(ctx context.Context, c proto.Credential) (res proto.LoginResult, connLost bool) {
	t := s.t
	io := s.ep.IOTimeout()
	var seen []byte
	note := func() {
		if room := maxSeen - len(seen); room > 0 {
			seen = append(seen, t.text()[:min(room, len(t.text()))]...)
		}
	}
	askedPassword := true
	passwordOnly := s.atPassword && !s.atLogin
	if s.atLogin {
		t.clear()
		if err := t.send(ctx, c.Username, io); err != nil {
			return proto.LoginResult{Detail: err.Error()}, true
		}
		st := t.wait(ctx, io, settle(io), anyPrompt)
		text := t.text()
		switch {
		case isPasswordPrompt(text):
		case isLoginPrompt(text):
			// Asked for the user name again: this user cannot log in here.
			return s.verdict(text, st, "login prompt returned after the user name"), false
		case st == waitClosed && len(bytes.TrimSpace(text)) == 0:
			return proto.LoginResult{Detail: t.closedErr()}, true
		default:
			// No password prompt: perhaps a user without a password got
			// straight in. Only the echo can tell.
			askedPassword = false
		}
		note()
	}
	if askedPassword {
		t.clear()
		if err := t.send(ctx, c.Password, io); err != nil {
			return proto.LoginResult{Detail: err.Error()}, true
		}
		// Logins delay failures (BusyBox: 3 s), so allow more than one
		// round trip for the verdict.
		st := t.wait(ctx, 2*io, settle(io), anyPrompt)
		text := t.text()
		note()
		if isLoginPrompt(text) || isPasswordPrompt(text) || st == waitClosed || st == waitOverflow || st == waitCanceled {
			return s.verdict(seen, st, ""), false
		}
	}
	// Something that may be a shell: prove it.
	before := len(seen)
	probe := newEchoProbe()
	t.clear()
	if err := t.send(ctx, probe.Command, io); err != nil {
		return s.verdict(seen, waitClosed, ""), false
	}
	st := t.wait(ctx, io, 0, func(text []byte) bool {
		return bytes.Contains(text, []byte(probe.Want)) || isLoginPrompt(text) || isPasswordPrompt(text)
	})
	proof := t.text()
	note()
	if bytes.Contains(proof, []byte(probe.Want)) {
		s.hangups = 0
		s.drop()
		r := proto.LoginResult{Outcome: proto.Accepted, Proof: "echo nonce read back"}
		switch {
		case !askedPassword:
			r.Detail = "no password was asked for this user"
		case passwordOnly:
			r.Detail = "the device asks for a password only; the user name was not used"
		}
		return r, false
	}
	if !isLoginPrompt(proof) && !isPasswordPrompt(proof) {
		// Still in whatever took the echo: a CLI saying "invalid command"
		// to it has not refused the login. Judge by what came before.
		seen = seen[:before]
	}
	res = s.verdict(seen, st, "")
	if res.Outcome == proto.Unknown && res.Detail == "" {
		res.Detail = "no proof: the shell echo of the nonce never came back (" + st.String() + ")"
	}
	return res, false
}

// verdict judges an attempt that produced no proof, from the text seen in
// all its phases, the text of the last phase and how its wait ended, and
// decides whether the connection can be kept.
func (s *session) verdict(text []byte, st waitStatus, why string) proto.LoginResult {
	t := s.t
	last := t.text()
	// Keep the connection only where it waits for exactly what the next
	// attempt will send.
	switch {
	case !t.closed && isLoginPrompt(last):
		s.atLogin, s.atPassword = true, false
	case !t.closed && s.atPassword && isPasswordPrompt(last):
	default:
		s.drop()
	}
	if m := containsAny(text, lockoutMarkers); m != "" {
		s.hangups = 0
		return proto.LoginResult{Outcome: proto.LockedOut, Detail: lineWith(text, m)}
	}
	if m := containsAny(text, failureMarkers); m != "" {
		s.hangups = 0
		return proto.LoginResult{Outcome: proto.Rejected, Detail: lineWith(text, m)}
	}
	if why != "" || isLoginPrompt(last) || isPasswordPrompt(last) {
		s.hangups = 0
		if why == "" {
			why = "prompted again after the password"
		}
		return proto.LoginResult{Outcome: proto.Rejected, Detail: why}
	}
	if st == waitClosed {
		s.hangups++
		if s.hangups >= hangupsForLockout {
			return proto.LoginResult{Outcome: proto.LockedOut, Detail: fmt.Sprintf("server hung up without a verdict %d times in a row", s.hangups)}
		}
		return proto.LoginResult{Outcome: proto.Unknown, Detail: "server closed the connection after the password without a verdict"}
	}
	s.hangups = 0
	if st == waitOverflow {
		return proto.LoginResult{Outcome: proto.Unknown, Detail: "server sent too much output"}
	}
	return proto.LoginResult{Outcome: proto.Unknown}
}

// ProbeOpenAccess connects and, unless the server asks for a login or a
// password, types an echo of a nonce; the computed output coming back proves
// a shell open to anyone. It returns nil, nil when a login is required or
// nothing is proved.
func (p *Protocol) ProbeOpenAccess(ctx context.Context, ep proto.Endpoint, id *proto.Identity) (*proto.OpenAccess, error) {
	conn, err := ep.Connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("telnet open-access probe of %s: %w", ep.Addr(), err)
	}
	defer conn.Close()
	t := newTerm(conn)
	io := ep.IOTimeout()
	st := t.wait(ctx, io, settle(io), anyPrompt)
	if st == waitCanceled {
		return nil, fmt.Errorf("telnet open-access probe of %s: %w", ep.Addr(), ctx.Err())
	}
	greeting := t.text()
	if isLoginPrompt(greeting) || isPasswordPrompt(greeting) || st == waitClosed || st == waitOverflow {
		return nil, nil
	}
	prompt := lastLine(greeting)
	probe := newEchoProbe()
	t.clear()
	if err := t.send(ctx, probe.Command, io); err != nil {
		return nil, nil
	}
	st = t.wait(ctx, io, 0, func(text []byte) bool {
		return bytes.Contains(text, []byte(probe.Want)) || isLoginPrompt(text) || isPasswordPrompt(text)
	})
	if st == waitCanceled {
		return nil, fmt.Errorf("telnet open-access probe of %s: %w", ep.Addr(), ctx.Err())
	}
	if !bytes.Contains(t.text(), []byte(probe.Want)) {
		return nil, nil
	}
	_ = t.send(ctx, "exit", io)
	details := map[string]any{}
	if prompt != "" {
		details["prompt"] = proto.Printable([]byte(prompt))
	}
	return &proto.OpenAccess{What: "telnet shell without login", Proof: "echo nonce read back", Details: details}, nil
}
