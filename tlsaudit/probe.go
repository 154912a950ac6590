package tlsaudit

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"
)

// Defaults of a Prober.
const (
	DefaultTimeout        = 3 * time.Second
	DefaultMaxConnections = 40
	// maxProbeFailures ends an audit after this many probes in a row that
	// proved nothing (timeouts, resets mid-record): a device in distress
	// or one rate-limiting us.
	maxProbeFailures = 3
)

// ErrBudget is returned by Hello when the audit's connection budget is spent.
var ErrBudget = errors.New("connection budget spent")

// Prober sends raw ClientHellos to one TLS service and reads what the
// server chose, without ever completing a handshake. The zero value works.
type Prober struct {
	// Dial opens TCP connections (the scanner passes its rate-limited
	// dialer); nil uses a net.Dialer.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Timeout bounds each connection: dial plus the whole exchange.
	Timeout time.Duration
	// ServerName is sent as SNI. Only host names are sent, never addresses.
	ServerName string
	// MaxConnections caps the connections one Audit makes.
	MaxConnections int
}

func (p Prober) timeout() time.Duration {
	if p.Timeout <= 0 {
		return DefaultTimeout
	}
	return p.Timeout
}

func (p Prober) budget() int {
	if p.MaxConnections <= 0 {
		return DefaultMaxConnections
	}
	return p.MaxConnections
}

func (p Prober) sni() string {
	if net.ParseIP(p.ServerName) != nil {
		return ""
	}
	return p.ServerName
}

// dial opens a connection bounded by the timeout and the context: the
// connection is closed when ctx ends, so no read outlives it.
func (p Prober) dial(ctx context.Context, addr string) (net.Conn, func(), error) {
	dctx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	var conn net.Conn
	var err error
	if p.Dial != nil {
		conn, err = p.Dial(dctx, "tcp", addr)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(dctx, "tcp", addr)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("connect %s: %w", addr, err)
	}
	_ = conn.SetDeadline(time.Now().Add(p.timeout()))
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	return conn, func() { stop(); conn.Close() }, nil
}

// Hello sends one ClientHello offering version v and suites, and returns
// the server's choice. A refusal is an *AlertError or ErrClosed (see
// Refused); bytes that are not TLS give ErrNotTLS.
func (p Prober) Hello(ctx context.Context, addr string, v Version, suites []uint16) (*ServerHello, error) {
	conn, done, err := p.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer done()
	hello := clientHello{version: v, suites: suites, serverName: p.sni()}
	if _, err := conn.Write(hello.marshal()); err != nil {
		return nil, fmt.Errorf("send %s ClientHello to %s: %w", v, addr, err)
	}
	sh, err := readServerFlight(conn)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s hello to %s: %w", v, addr, ctx.Err())
		}
		return nil, fmt.Errorf("%s hello to %s: %w", v, addr, err)
	}
	return sh, nil
}

// Certificates completes a real handshake with crypto/tls (TLS 1.0 to 1.3,
// any certificate accepted) and returns the server's chain, leaf first.
// Shared-secret checks use it to compare certificates across devices.
func (p Prober) Certificates(ctx context.Context, addr string) ([]*x509.Certificate, error) {
	conn, done, err := p.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer done()
	var suites []uint16
	for _, s := range tls.CipherSuites() {
		suites = append(suites, s.ID)
	}
	for _, s := range tls.InsecureCipherSuites() {
		suites = append(suites, s.ID)
	}
	tc := tls.Client(conn, &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // the chain is judged, not trusted
		ServerName:         p.sni(),
		MinVersion:         tls.VersionTLS10,
		CipherSuites:       suites,
	})
	hctx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return nil, fmt.Errorf("tls handshake with %s: %w", addr, err)
	}
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, fmt.Errorf("tls handshake with %s: no certificate sent", addr)
	}
	return certs, nil
}

// VersionResult is what one version probe showed.
type VersionResult struct {
	Version  Version
	Accepted bool
	// Suite is the suite the server chose when it accepted (for TLS 1.3 a
	// HelloRetryRequest also counts as accepted).
	Suite uint16
	// Err is set when the probe proved nothing either way.
	Err error
}

// WeakSuite is a weak suite the server accepted, and at which versions.
type WeakSuite struct {
	Suite
	Versions []Version
}

// Result is an audit of one TLS service.
type Result struct {
	Address  string
	Versions []VersionResult // in the order of Versions()
	// WeakSuites are weak suites the server chose when offered, each
	// proven by a ServerHello selecting it.
	WeakSuites []WeakSuite
	// ChainDER is the certificate chain as sent, leaf first; Chain holds
	// those that parse.
	ChainDER [][]byte
	Chain    []*x509.Certificate
	// CertErr says why no (parseable) certificate is available.
	CertErr error
	// Connections counts the connections made.
	Connections int
	// Complete is false when the budget ran out or probes failed before
	// every version and every weak suite was established, so the lists
	// may miss something (never the other way round).
	Complete bool
	// SuiteVersionsPartial is set when every weak suite was found but the
	// budget ran out confirming each at every accepted version: a suite's
	// Versions may then lack some where it is also accepted.
	SuiteVersionsPartial bool
	// Notes records anomalies: budget spent, protocol violations.
	Notes []string
}

// Accepted returns the versions the server accepted, oldest first.
func (r *Result) Accepted() []Version {
	var out []Version
	for _, v := range r.Versions {
		if v.Accepted {
			out = append(out, v.Version)
		}
	}
	return out
}

// Leaf returns the parsed leaf certificate, or nil.
func (r *Result) Leaf() *x509.Certificate {
	if len(r.Chain) == 0 {
		return nil
	}
	return r.Chain[0]
}

// audit is the state of one Audit run.
type audit struct {
	p        Prober
	addr     string
	res      *Result
	failures int  // consecutive probes that proved nothing
	spent    bool // a probe was skipped for want of budget
}

func (a *audit) hello(ctx context.Context, v Version, suites []uint16) (*ServerHello, error) {
	if a.res.Connections >= a.p.budget() {
		a.spent = true
		return nil, ErrBudget
	}
	a.res.Connections++
	sh, err := a.p.Hello(ctx, a.addr, v, suites)
	if err == nil || Refused(err) {
		a.failures = 0
	} else {
		a.failures++
	}
	return sh, err
}

func (a *audit) note(format string, args ...any) {
	a.res.Notes = append(a.res.Notes, fmt.Sprintf(format, args...))
}

// Audit probes addr (host:port): which versions from SSLv3 to TLS 1.3 the
// server accepts, which weak suites it accepts at each, and its
// certificate. It stays within MaxConnections. An error means the service
// could not be audited at all (not TLS, unreachable); partial results are
// returned with Complete false.
func (p Prober) Audit(ctx context.Context, addr string) (*Result, error) {
	a := &audit{p: p, addr: addr, res: &Result{Address: addr, Complete: true}}
	res := a.res
	weak := map[uint16]*WeakSuite{}
	addWeak := func(id uint16, v Version) {
		s := SuiteByID(id)
		if s.Weakness == 0 {
			return
		}
		w := weak[id]
		if w == nil {
			w = &WeakSuite{Suite: s}
			weak[id] = w
		}
		if !slices.Contains(w.Versions, v) {
			w.Versions = append(w.Versions, v)
		}
	}

	// 1. Versions, commonest first so a dead or foreign service is known early.
	order := []Version{TLS12, TLS13, TLS11, TLS10, SSL30}
	got := map[Version]VersionResult{}
	anyAnswer := false
	// fill lists every version, those not probed with an error, so even an
	// audit cut short reports what it proved.
	fill := func() {
		res.Versions = res.Versions[:0]
		for _, v := range Versions() {
			vr, ok := got[v]
			if !ok {
				vr = VersionResult{Version: v, Err: errors.New("not probed")}
				res.Complete = false
			}
			res.Versions = append(res.Versions, vr)
		}
	}
	for _, v := range order {
		offered := broadSuites(v)
		sh, err := a.hello(ctx, v, offered)
		vr := VersionResult{Version: v}
		switch {
		case err == nil:
			anyAnswer = true
			switch {
			case sh.Version == v:
				vr.Accepted, vr.Suite = true, sh.Suite
				if !slices.Contains(offered, sh.Suite) {
					a.note("%s: server chose suite 0x%04x that was not offered", v, sh.Suite)
				} else {
					addWeak(sh.Suite, v)
				}
				if len(res.ChainDER) == 0 && len(sh.Certificates) > 0 {
					res.ChainDER = sh.Certificates
				}
			case sh.Version > v:
				a.note("%s: server answered with %s, above what was offered", v, sh.Version)
			}
		case Refused(err):
			anyAnswer = true
		case errors.Is(err, ErrNotTLS) && !anyAnswer:
			got[v] = VersionResult{Version: v, Err: err}
			fill()
			return res, err
		case errors.Is(err, ErrBudget):
			vr.Err = err
			res.Complete = false
		default:
			vr.Err = err
			res.Complete = false
			if !anyAnswer && isDialError(err) {
				got[v] = vr
				fill()
				return res, err
			}
		}
		got[v] = vr
		if a.failures >= maxProbeFailures {
			a.note("stopped after %d probes in a row failed: %v", a.failures, err)
			break
		}
		if ctx.Err() != nil {
			fill()
			return res, ctx.Err()
		}
	}
	fill()
	if !anyAnswer {
		return res, fmt.Errorf("audit %s: no probe was answered: %w", addr, firstErr(res.Versions))
	}

	// 2. Discovery: at each accepted version up to TLS 1.2, highest first,
	// offer every weak suite not yet found at any version; the server
	// picks one; drop it and ask again until it refuses. This finds every
	// weak suite in (distinct suites + versions) connections.
	lower := []Version{TLS12, TLS11, TLS10, SSL30}
	for _, v := range lower {
		if !got[v].Accepted || a.failures >= maxProbeFailures {
			continue
		}
		offer := slices.DeleteFunc(weakIDs(v), func(id uint16) bool { return weak[id] != nil })
		if !a.enumerate(ctx, v, offer, addWeak) {
			break
		}
	}

	// 3. The certificate: from a cleartext hello when there was one, else
	// (TLS 1.3 only, or anonymous suites only) from a real handshake.
	if len(res.ChainDER) == 0 {
		if res.Connections >= p.budget() {
			res.CertErr = ErrBudget
			a.spent = true
		} else {
			res.Connections++
			certs, err := p.Certificates(ctx, addr)
			if err != nil {
				res.CertErr = err
			}
			for _, c := range certs {
				res.ChainDER = append(res.ChainDER, c.Raw)
			}
		}
	}

	// 4. Per-version confirmation with what budget is left: a suite found
	// at one version is offered again at the others that accept it. Each
	// ServerHello proves one (suite, version) pair; there is no shortcut.
	spentBefore := a.spent
	for _, v := range lower {
		if !got[v].Accepted || a.failures >= maxProbeFailures {
			continue
		}
		var offer []uint16
		for _, id := range weakIDs(v) {
			if w := weak[id]; w != nil && !slices.Contains(w.Versions, v) {
				offer = append(offer, id)
			}
		}
		if !a.enumerate(ctx, v, offer, addWeak) {
			break
		}
	}
	if a.spent && !spentBefore {
		res.SuiteVersionsPartial = true
		a.spent = false // the suite list itself is complete
		a.note("connection budget of %d spent confirming suites per version: some suites may be accepted at more versions than listed", p.budget())
	}
	for _, w := range weak {
		slices.Sort(w.Versions)
		res.WeakSuites = append(res.WeakSuites, *w)
	}
	slices.SortFunc(res.WeakSuites, func(x, y WeakSuite) int { return int(x.ID) - int(y.ID) })

	for i, der := range res.ChainDER {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			if i == 0 {
				res.CertErr = fmt.Errorf("parse leaf certificate: %w", err)
				break
			}
			continue
		}
		res.Chain = append(res.Chain, c)
	}
	if a.spent {
		res.Complete = false
		a.note("connection budget of %d spent before the audit finished", p.budget())
	}
	if err := ctx.Err(); err != nil {
		res.Complete = false
		return res, fmt.Errorf("audit %s: %w", addr, err)
	}
	return res, nil
}

// enumerate offers suites at version v until the server refuses, the
// list is empty or the budget is spent, recording each suite the server
// picks (a refusal proves none of the rest is accepted at v). It returns
// false when the audit should stop (budget spent, repeated failures,
// context ended).
func (a *audit) enumerate(ctx context.Context, v Version, offer []uint16, found func(uint16, Version)) bool {
	for len(offer) > 0 {
		sh, err := a.hello(ctx, v, offer)
		if err != nil {
			if Refused(err) {
				return true
			}
			if errors.Is(err, ErrBudget) {
				return false
			}
			a.res.Complete = false
			a.note("%s weak-suite enumeration stopped: %v", v, err)
			return a.failures < maxProbeFailures && ctx.Err() == nil
		}
		if sh.Version != v || !slices.Contains(offer, sh.Suite) {
			a.res.Complete = false
			a.note("%s weak-suite enumeration stopped: server answered %s with suite 0x%04x not offered", v, sh.Version, sh.Suite)
			return true
		}
		found(sh.Suite, v)
		if len(a.res.ChainDER) == 0 && len(sh.Certificates) > 0 {
			a.res.ChainDER = sh.Certificates
		}
		offer = slices.DeleteFunc(offer, func(id uint16) bool { return id == sh.Suite })
	}
	return true
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func firstErr(vs []VersionResult) error {
	for _, v := range vs {
		if v.Err != nil {
			return v.Err
		}
	}
	return errors.New("no answer")
}
