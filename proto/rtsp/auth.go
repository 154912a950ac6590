package rtsp

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/icholy/digest"

	"github.com/iotcop/iotcop/proto"
	"github.com/iotcop/iotcop/proto/authparam"
)

// ErrNoProtectedStream is returned by Open when none of the tried stream
// paths asks for credentials, so no credential could be proven.
var ErrNoProtectedStream = fmt.Errorf("no stream path asks for credentials: %w", proto.ErrNoLogin)

// maxFailures is how many consecutive connection or parse failures end a
// path search: the server is hostile, gone or not RTSP after all.
const maxFailures = 3

// challenge is the authentication a server asked for.
type challenge struct {
	scheme string // "basic" or "digest"
	realm  string
	digest *digest.Challenge
	nc     int // uses of this digest nonce so far
	gen    int // connection generation it was received on
}

// pickChallenge chooses among WWW-Authenticate values: Digest when offered
// in a form we can answer (servers that list both often accept only
// Digest), else Basic. nil when neither is usable.
func pickChallenge(values []string) *challenge {
	var basic *challenge
	for _, v := range values {
		v = strings.TrimSpace(v)
		if digest.IsDigest(v) {
			if dc, err := digest.ParseChallenge(v); err == nil && digest.CanDigest(dc) && dc.Nonce != "" {
				return &challenge{scheme: "digest", realm: dc.Realm, digest: dc}
			}
			continue
		}
		if realm, ok := authparam.Basic(v); ok && basic == nil {
			basic = &challenge{scheme: "basic", realm: realm}
		}
	}
	return basic
}

// authorization computes the Authorization header value for one request.
func (ch *challenge) authorization(method, url string, c proto.Credential) (string, error) {
	if ch.scheme == "basic" {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.Username+":"+c.Password)), nil
	}
	ch.nc++
	cred, err := digest.Digest(ch.digest, digest.Options{
		Method: method, URI: url, Username: c.Username, Password: c.Password, Count: ch.nc,
	})
	if err != nil {
		return "", fmt.Errorf("compute digest response: %w", err)
	}
	return cred.String(), nil
}

// session is one RTSP login session: a connection (re-dialled when the
// server hangs up), the protected stream path and its challenge.
type session struct {
	p    *Protocol
	ep   proto.Endpoint
	c    *client
	gen  int // connection generation, bumped on each dial
	path string
	ch   *challenge

	// refusal is the status of the last credential refused (401/403):
	// once seen, a 404 for another credential means it got past the
	// authentication (servers that authenticate before looking the path
	// up), which is worth a search for the stream.
	refusal int
}

// Open finds a stream path that answers 401 without credentials (trying at
// most MaxPaths paths) and returns a session trying credentials there. It
// returns ErrNoProtectedStream when no path asks for credentials.
func (p *Protocol) Open(ctx context.Context, ep proto.Endpoint, id *proto.Identity) (proto.LoginSession, error) {
	s := &session{p: p, ep: ep}
	failures := 0
	for _, path := range p.paths() {
		resp, err := s.describe(ctx, path, "")
		if err != nil {
			if ctx.Err() != nil {
				s.Close()
				return nil, fmt.Errorf("rtsp login to %s: %w", ep.Addr(), ctx.Err())
			}
			if failures++; failures >= maxFailures {
				s.Close()
				return nil, fmt.Errorf("rtsp login to %s: DESCRIBE /%s: %w", ep.Addr(), path, err)
			}
			continue
		}
		failures = 0
		if resp.StatusCode != 401 {
			continue
		}
		if ch := pickChallenge(resp.Header.Values("Www-Authenticate")); ch != nil {
			ch.gen = s.gen
			s.path, s.ch = path, ch
			return s, nil
		}
	}
	s.Close()
	return nil, fmt.Errorf("rtsp login to %s: %w (tried %d paths)", ep.Addr(), ErrNoProtectedStream, len(p.paths()))
}

// Try claims Accepted only on DESCRIBE 200 with an SDP body for a path that
// answered 401 without credentials. A server that plays the stream for any
// credential is reported as it behaves (Accepted for a random pair too):
// callers try a random pair first to tell such servers apart, as
// check.DefaultCredentials does.
func (s *session) Try(ctx context.Context, c proto.Credential) (proto.LoginResult, error) {
	unknown := proto.LoginResult{Outcome: proto.Unknown}
	for retry := 0; ; retry++ {
		if s.ch.scheme == "digest" && s.ch.gen != s.gen {
			// The nonce came on an earlier connection; some servers tie
			// nonces to connections, so fetch a fresh one rather than risk
			// calling a good password rejected.
			if err := s.refreshChallenge(ctx); err != nil {
				return unknown, err
			}
		}
		auth, err := s.ch.authorization("DESCRIBE", streamURL(s.ep, s.path), c)
		if err != nil {
			return unknown, err
		}
		resp, err := s.describe(ctx, s.path, auth)
		if err != nil {
			return unknown, fmt.Errorf("rtsp login to %s: %w", s.ep.Addr(), err)
		}
		detail := resp.StatusLine()
		switch {
		case resp.StatusCode == 200 && resp.IsSDP():
			return proto.LoginResult{Outcome: proto.Accepted,
				Proof: "DESCRIBE 200 with SDP on /" + s.path + " (401 without credentials)", Detail: detail}, nil
		case lockedOut(resp):
			return proto.LoginResult{Outcome: proto.LockedOut, Detail: detail}, nil
		case resp.StatusCode == 401:
			if ch := pickChallenge(resp.Header.Values("Www-Authenticate")); ch != nil {
				ch.gen = s.gen
				stale := ch.digest != nil && ch.digest.Stale
				s.ch = ch
				if stale && retry == 0 {
					continue // the nonce expired; the password was not judged
				}
			}
			s.refusal = resp.StatusCode
			return proto.LoginResult{Outcome: proto.Rejected, Detail: detail}, nil
		case resp.StatusCode == 403:
			s.refusal = resp.StatusCode
			return proto.LoginResult{Outcome: proto.Rejected, Detail: detail}, nil
		case (resp.StatusCode == 404 || resp.StatusCode == 454) && s.refusal != 0:
			// Past authentication, but this path has no stream (servers
			// that ask for credentials before looking the path up).
			return s.searchWith(ctx, c, detail)
		}
		return proto.LoginResult{Outcome: proto.Unknown, Detail: detail}, nil
	}
}

// searchWith looks for a stream path that plays with c and asks for
// credentials without it.
func (s *session) searchWith(ctx context.Context, c proto.Credential, firstDetail string) (proto.LoginResult, error) {
	unknown := proto.LoginResult{Outcome: proto.Unknown,
		Detail: "credential passed authentication (" + firstDetail + " on /" + s.path + ") but no stream answered with SDP"}
	for _, path := range s.p.paths() {
		if path == s.path {
			continue
		}
		auth, err := s.ch.authorization("DESCRIBE", streamURL(s.ep, path), c)
		if err != nil {
			return unknown, err
		}
		resp, err := s.describe(ctx, path, auth)
		if err != nil {
			return unknown, fmt.Errorf("rtsp login to %s: %w", s.ep.Addr(), err)
		}
		if lockedOut(resp) {
			return proto.LoginResult{Outcome: proto.LockedOut, Detail: resp.StatusLine()}, nil
		}
		if resp.StatusCode == 401 {
			if ch := pickChallenge(resp.Header.Values("Www-Authenticate")); ch != nil {
				ch.gen = s.gen
				s.ch = ch
			}
			return unknown, nil
		}
		if resp.StatusCode != 200 || !resp.IsSDP() {
			continue
		}
		bare, err := s.describe(ctx, path, "")
		if err != nil {
			return unknown, fmt.Errorf("rtsp login to %s: %w", s.ep.Addr(), err)
		}
		if bare.StatusCode != 401 {
			return unknown, nil // plays without credentials: proves nothing
		}
		if ch := pickChallenge(bare.Header.Values("Www-Authenticate")); ch != nil {
			ch.gen = s.gen
			s.ch = ch
		}
		return proto.LoginResult{Outcome: proto.Accepted,
			Proof:  "DESCRIBE 200 with SDP on /" + path + " (401 without credentials)",
			Detail: firstDetail + " on /" + s.path}, nil
	}
	return unknown, nil
}

// refreshChallenge asks again without credentials for a new challenge.
func (s *session) refreshChallenge(ctx context.Context) error {
	resp, err := s.describe(ctx, s.path, "")
	if err != nil {
		return fmt.Errorf("rtsp login to %s: fresh challenge: %w", s.ep.Addr(), err)
	}
	ch := pickChallenge(resp.Header.Values("Www-Authenticate"))
	if resp.StatusCode != 401 || ch == nil {
		return fmt.Errorf("rtsp login to %s: /%s no longer asks for credentials (%s)", s.ep.Addr(), s.path, resp.StatusLine())
	}
	ch.gen = s.gen
	s.ch = ch
	return nil
}

// describe sends DESCRIBE for path, dialling (once more after a failure on
// a reused connection) as needed.
func (s *session) describe(ctx context.Context, path, auth string) (*Response, error) {
	headers := [][2]string{{"Accept", "application/sdp"}}
	if auth != "" {
		headers = append(headers, [2]string{"Authorization", auth})
	}
	url := streamURL(s.ep, path)
	for attempt := 0; ; attempt++ {
		reused := s.c != nil
		if s.c == nil {
			c, err := dial(ctx, s.ep)
			if err != nil {
				return nil, err
			}
			s.c = c
			s.gen++
		}
		resp, err := s.c.do(ctx, "DESCRIBE", url, headers)
		if err != nil {
			s.c.Close()
			s.c = nil
			if reused && attempt == 0 && ctx.Err() == nil && !errors.Is(err, ErrNotRTSP) {
				continue // the server closed an idle connection
			}
			return nil, fmt.Errorf("DESCRIBE /%s: %w", path, err)
		}
		if strings.EqualFold(resp.Header.Get("Connection"), "close") {
			s.c.Close()
			s.c = nil
		}
		return resp, nil
	}
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

// ProbeOpenAccess sends DESCRIBE without credentials to at most MaxPaths
// stream paths and reports the first that answers 200 with an SDP body.
// Details: "path", "url", "session_name" (SDP s=), "media" (SDP m= lines).
func (p *Protocol) ProbeOpenAccess(ctx context.Context, ep proto.Endpoint, id *proto.Identity) (*proto.OpenAccess, error) {
	s := &session{p: p, ep: ep}
	defer s.Close()
	failures := 0
	for _, path := range p.paths() {
		resp, err := s.describe(ctx, path, "")
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("rtsp open-access probe of %s: %w", ep.Addr(), ctx.Err())
			}
			if failures++; failures >= maxFailures {
				return nil, fmt.Errorf("rtsp open-access probe of %s: %w", ep.Addr(), err)
			}
			continue
		}
		failures = 0
		if resp.StatusCode != 200 || !resp.IsSDP() {
			continue
		}
		name, media := summarizeSDP(resp.Body)
		details := map[string]any{"path": "/" + path, "url": streamURL(ep, path)}
		if name != "" {
			details["session_name"] = name
		}
		if len(media) > 0 {
			details["media"] = media
		}
		return &proto.OpenAccess{
			What:    "RTSP stream without authentication",
			Proof:   "DESCRIBE 200 with SDP on /" + path + " without credentials",
			Details: details,
		}, nil
	}
	return nil, nil
}

// summarizeSDP returns the session name (s=) and up to four media
// descriptions (m=) of an SDP body, each capped for the report.
func summarizeSDP(body []byte) (name string, media []string) {
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, "s=") && name == "":
			name = proto.Printable([]byte(truncate(strings.TrimSpace(line[2:]), 80)))
		case strings.HasPrefix(line, "m=") && len(media) < 4:
			media = append(media, proto.Printable([]byte(truncate(strings.TrimSpace(line[2:]), 80))))
		}
	}
	return name, media
}

// lockedOut reports signs that the server stopped accepting attempts.
func lockedOut(resp *Response) bool {
	if resp.StatusCode == 429 || resp.StatusCode == 423 {
		return true
	}
	text := strings.ToLower(resp.Reason + " " + string(resp.Body))
	for _, w := range []string{"locked", "too many", "try again later", "blocked", "banned"} {
		if strings.Contains(text, w) {
			return true
		}
	}
	return false
}
