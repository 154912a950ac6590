// Package proto defines the small interfaces every protocol package
// (proto/telnet, proto/ssh, ...) implements, and the Endpoint the scanner
// hands them. The scanner dials, times out and rate-limits in one place; a
// protocol package only speaks its protocol over the connection it is given.
//
// A protocol package implements Identifier (what is this service?) and, where
// the protocol has logins, Authenticator (does this credential work?) and/or
// OpenAccessProber (does it let anyone in with no credential at all?).
// Registration is an explicit list of constructors in package scan; there are
// no init() side effects or global registries.
package proto

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// ErrNotThisProtocol is returned by Identify when the peer does not speak the
// protocol. Identifiers never return nil, nil.
var ErrNotThisProtocol = errors.New("not this protocol")

// ErrNoLogin is wrapped by Authenticator.Open when the service has nothing
// to log into (an HTTP server with no protected page, an RTSP server whose
// streams are all open). Callers skip such services silently.
var ErrNoLogin = errors.New("no login to try")

// Endpoint is one service on one host, with how to reach it.
type Endpoint struct {
	Host      string // IP literal (v4 or v6)
	Port      int
	Transport string // "tcp" or "udp"
	// TLS wraps TCP connections in TLS (certificate not verified: devices
	// use self-signed certificates; weak-tls judges them separately).
	TLS bool
	// Timeout bounds each dial and each read/write round trip.
	Timeout time.Duration
	// Dial, when set, replaces the default dialer (used by the scanner to
	// apply its global rate limit and per-host cap).
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// Addr returns host:port.
func (e Endpoint) Addr() string { return net.JoinHostPort(e.Host, strconv.Itoa(e.Port)) }

// IOTimeout returns the per-operation timeout, defaulting to 3s.
func (e Endpoint) IOTimeout() time.Duration {
	if e.Timeout <= 0 {
		return 3 * time.Second
	}
	return e.Timeout
}

// Connect dials the endpoint (TLS-wrapped when e.TLS) and sets an initial
// deadline of IOTimeout on the connection.
func (e Endpoint) Connect(ctx context.Context) (net.Conn, error) {
	network := e.Transport
	if network == "" {
		network = "tcp"
	}
	ctx, cancel := context.WithTimeout(ctx, e.IOTimeout())
	defer cancel()
	var conn net.Conn
	var err error
	if e.Dial != nil {
		conn, err = e.Dial(ctx, network, e.Addr())
	} else {
		var d net.Dialer
		conn, err = d.DialContext(ctx, network, e.Addr())
	}
	if err != nil {
		return nil, fmt.Errorf("connect %s/%s: %w", e.Addr(), network, err)
	}
	if e.TLS && network == "tcp" {
		tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, ServerName: e.Host, MinVersion: tls.VersionTLS10}) //nolint:gosec // devices use self-signed certs; weak-tls judges them
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("tls handshake with %s: %w", e.Addr(), err)
		}
		conn = tc
	}
	_ = conn.SetDeadline(time.Now().Add(e.IOTimeout()))
	return conn, nil
}

// Identity is what a service told us about itself.
type Identity struct {
	Protocol string // "ssh", "telnet", "http", "mqtt", ... ("unknown" if nothing matched)
	Product  string // "Dropbear sshd", "BusyBox telnetd", "lighttpd", "mosquitto"
	Version  string // "2022.83"
	Vendor   string // device maker when the service names it ("hikvision"), lower case
	TLS      bool
	Banner   string // printable form of the first bytes the service sent (capped)
	// Info carries protocol facts later steps need, e.g. for http:
	// "auth_path" (resource that answered 401), "auth_scheme" ("basic",
	// "digest", "form"), "realm", "server".
	Info map[string]string
}

// Set stores a protocol fact, allocating Info on first use.
func (id *Identity) Set(key, value string) {
	if id.Info == nil {
		id.Info = map[string]string{}
	}
	id.Info[key] = value
}

// Identifier recognises one protocol by its behaviour.
type Identifier interface {
	// Name is the protocol name reported ("ssh").
	Name() string
	// Transport is "tcp" or "udp".
	Transport() string
	// PortPriority reports whether port is one this protocol usually uses;
	// such identifiers are tried first, but every identifier may match on
	// any port.
	PortPriority(port int) bool
	// ServerFirst reports whether the server speaks first (ssh, ftp,
	// telnet). Server-first identifiers are only offered connections whose
	// banner is non-empty; client-first ones only those that were silent.
	ServerFirst() bool
	// Identify decides whether the peer speaks the protocol. conn is fresh,
	// except that banner holds the bytes the server already sent unprompted
	// (already consumed from conn). Return ErrNotThisProtocol when it does not.
	Identify(ctx context.Context, conn net.Conn, banner []byte, ep Endpoint) (*Identity, error)
}

// Credential is one username/password pair. For SNMP the community is the
// Password and Username is empty.
type Credential struct {
	Username string
	Password string
}

// String renders user:pass (for logs in tests; reports redact passwords).
func (c Credential) String() string { return c.Username + ":" + c.Password }

// Outcome is the result of one login attempt.
type Outcome int

// Outcomes. Unknown means the attempt proved nothing either way (connection
// dropped, unexpected reply); it is never counted as success.
const (
	Unknown Outcome = iota
	Rejected
	Accepted
	LockedOut
)

// String names the outcome ("accepted", "rejected", ...).
func (o Outcome) String() string {
	switch o {
	case Rejected:
		return "rejected"
	case Accepted:
		return "accepted"
	case LockedOut:
		return "locked-out"
	}
	return "unknown"
}

// LoginResult is what one attempt showed.
type LoginResult struct {
	Outcome Outcome
	// Proof names the positive proof seen when Accepted, e.g.
	// "echo nonce read back", "CONNACK accepted and SUBACK granted",
	// "230 and a directory listing", "2xx on /cgi-bin/admin".
	Proof string
	// Detail is extra context (the server's refusal text, the lockout sign).
	Detail string
}

// Authenticator tries credentials against a service.
type Authenticator interface {
	// Name is the protocol name.
	Name() string
	// Open starts a login session. Implementations may keep one connection
	// for several Try calls where the server allows it (telnet re-prompts,
	// SSH allows several auth requests) and reconnect transparently when the
	// server hangs up.
	Open(ctx context.Context, ep Endpoint, id *Identity) (LoginSession, error)
}

// LoginSession tries one credential at a time. Try must claim Accepted only
// on positive proof (a nonce echoed by a shell, a listing, a 2xx on the
// protected resource ...), never on the absence of a refusal.
type LoginSession interface {
	Try(ctx context.Context, c Credential) (LoginResult, error)
	Close() error
}

// OpenAccess describes access granted with no credential at all.
type OpenAccess struct {
	// What is a short description: "telnet shell without login",
	// "anonymous MQTT subscribe to #", "anonymous FTP", ...
	What string
	// Proof is what was observed (as LoginResult.Proof).
	Proof string
	// Details is extra evidence (topics seen, resources listed, ...).
	Details map[string]any
}

// OpenAccessProber checks whether a service lets anyone in without credentials.
type OpenAccessProber interface {
	Name() string
	// ProbeOpenAccess returns nil, nil when access is refused.
	ProbeOpenAccess(ctx context.Context, ep Endpoint, id *Identity) (*OpenAccess, error)
}
