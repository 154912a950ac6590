// Package sweep finds which ports answer: TCP connect and UDP protocol
// probes, under a global rate limit and a small per-host concurrency cap
// (cheap devices crash under floods). It works one host at a time so memory
// stays bounded however many hosts the target set holds.
package sweep

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/iotcop/iotcop/proto"
)

// Options tunes the sweep.
type Options struct {
	// Rate caps new connections and UDP probes per second across all hosts
	// (0 = unlimited).
	Rate float64
	// PerHost caps concurrent connections to one host (default 4).
	PerHost int
	// Timeout bounds a connect or a UDP answer wait (default 1.5s).
	Timeout time.Duration
	// Retries re-probes a port that timed out (not one that refused).
	Retries int
}

// Gate applies the global rate limit and the per-host concurrency cap to
// every connection iotcop makes, sweep and checks alike, so "gentle" holds
// for the whole scan, not only the port sweep.
type Gate struct {
	limiter *rate.Limiter
	perHost int
	mu      sync.Mutex
	hosts   map[string]*hostSlot
}

type hostSlot struct {
	sem  chan struct{}
	refs int
}

// NewGate builds a gate: rps new connections per second overall (0 means
// unlimited) and at most perHost at once to one host.
func NewGate(rps float64, perHost int) *Gate {
	if perHost <= 0 {
		perHost = 4
	}
	lim := rate.NewLimiter(rate.Inf, 0)
	if rps > 0 {
		burst := int(rps / 10)
		if burst < 1 {
			burst = 1
		}
		lim = rate.NewLimiter(rate.Limit(rps), burst)
	}
	return &Gate{limiter: lim, perHost: perHost, hosts: map[string]*hostSlot{}}
}

// acquire waits for the rate limiter and a per-host slot; release frees it.
func (g *Gate) acquire(ctx context.Context, host string) (release func(), err error) {
	g.mu.Lock()
	s := g.hosts[host]
	if s == nil {
		s = &hostSlot{sem: make(chan struct{}, g.perHost)}
		g.hosts[host] = s
	}
	s.refs++
	g.mu.Unlock()
	done := func() {
		g.mu.Lock()
		s.refs--
		if s.refs == 0 {
			delete(g.hosts, host)
		}
		g.mu.Unlock()
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		done()
		return nil, ctx.Err()
	}
	if err := g.limiter.Wait(ctx); err != nil {
		<-s.sem
		done()
		return nil, err
	}
	return func() { <-s.sem; done() }, nil
}

// Dial connects through the gate; the per-host slot is held until the
// connection is closed. It has the signature of proto.Endpoint.Dial.
func (g *Gate) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	release, err := g.acquire(ctx, host)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, address)
	if err != nil {
		release()
		return nil, err
	}
	return &gatedConn{Conn: c, release: release}, nil
}

type gatedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *gatedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// State is what a probe learned about a port.
type State int

// Port states, as nmap names them.
const (
	Closed State = iota
	Open
	Filtered // no answer (TCP timeout; UDP silence)
)

// Result is one open port. For UDP, Response holds the first answer to the
// probe (the "banner" the fingerprinter starts from).
type Result struct {
	Addr     netip.Addr
	Port     Port
	Response []byte
}

// Sweeper probes ports through a Gate.
type Sweeper struct {
	gate *Gate
	opts Options
}

// New returns a Sweeper using gate for every connection.
func New(gate *Gate, opts Options) *Sweeper {
	if opts.Timeout <= 0 {
		opts.Timeout = 1500 * time.Millisecond
	}
	return &Sweeper{gate: gate, opts: opts}
}

// Host probes the ports of one host, at most the gate's per-host cap at a
// time, and calls found for each open port as soon as it is known (found
// may be called concurrently). It returns the context error if cancelled.
func (s *Sweeper) Host(ctx context.Context, addr netip.Addr, ports []Port, found func(Result)) error {
	var wg sync.WaitGroup
	// The gate already caps concurrency per host; this bounds goroutines.
	sem := make(chan struct{}, max(s.gate.perHost, 1))
	for _, p := range ports {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Add(1)
		go func(p Port) {
			defer func() { <-sem; wg.Done() }()
			if r, ok := s.probe(ctx, addr, p); ok {
				found(r)
			}
		}(p)
	}
	wg.Wait()
	return ctx.Err()
}

func (s *Sweeper) probe(ctx context.Context, addr netip.Addr, p Port) (Result, bool) {
	for attempt := 0; attempt <= s.opts.Retries; attempt++ {
		var st State
		var resp []byte
		if p.Transport == "udp" {
			st, resp = s.probeUDP(ctx, addr, p.Number)
		} else {
			st = s.probeTCP(ctx, addr, p.Number)
		}
		switch st {
		case Open:
			return Result{Addr: addr, Port: p, Response: resp}, true
		case Closed:
			return Result{}, false
		}
		if ctx.Err() != nil {
			break
		}
	}
	return Result{}, false
}

func (s *Sweeper) probeTCP(ctx context.Context, addr netip.Addr, port int) State {
	dctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	c, err := s.gate.Dial(dctx, "tcp", net.JoinHostPort(addr.String(), strconv.Itoa(port)))
	if err == nil {
		c.Close()
		return Open
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return Closed
	}
	return Filtered
}

func (s *Sweeper) probeUDP(ctx context.Context, addr netip.Addr, port int) (State, []byte) {
	address := net.JoinHostPort(addr.String(), strconv.Itoa(port))
	for _, payload := range udpProbes(port) {
		st, resp := s.udpOnce(ctx, address, payload)
		if st != Filtered {
			return st, resp
		}
		if ctx.Err() != nil {
			break
		}
	}
	return Filtered, nil
}

func (s *Sweeper) udpOnce(ctx context.Context, address string, payload []byte) (State, []byte) {
	dctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	c, err := s.gate.Dial(dctx, "udp", address)
	if err != nil {
		return Filtered, nil
	}
	defer c.Close()
	deadline, _ := dctx.Deadline()
	_ = c.SetDeadline(deadline)
	if _, err := c.Write(payload); err != nil {
		return Filtered, nil
	}
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		// An ICMP port unreachable surfaces as ECONNREFUSED on a
		// connected UDP socket: the port is closed.
		if errors.Is(err, syscall.ECONNREFUSED) {
			return Closed, nil
		}
		return Filtered, nil
	}
	return Open, buf[:n]
}

// Endpoint builds the proto.Endpoint for a result, dialling through gate.
func (r Result) Endpoint(gate *Gate, timeout time.Duration) proto.Endpoint {
	return proto.Endpoint{Host: r.Addr.String(), Port: r.Port.Number, Transport: r.Port.Transport, Timeout: timeout, Dial: gate.Dial}
}
