// Package fingerprint names the service on an open port by how it behaves,
// not by its number: it reads what the server says unprompted, detects TLS
// on any port, and offers the connection to each protocol's Identifier,
// those that usually live on the port first.
package fingerprint

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"time"

	"github.com/iotcop/iotcop/proto"
)

// tlsPorts are ports where TLS is the norm (https, mqtts, rtsps, ftps, ...).
var tlsPorts = map[int]bool{443: true, 465: true, 636: true, 853: true, 990: true, 992: true, 993: true, 995: true,
	322: true, 4433: true, 5061: true, 5684: true, 8443: true, 8883: true, 9443: true, 10443: true}

// Options tunes identification.
type Options struct {
	// BannerWait is how long to wait for a server-first greeting (default 700ms).
	BannerWait time.Duration
}

// Engine identifies services with an explicit list of identifiers.
type Engine struct {
	ids  []proto.Identifier
	opts Options
}

// New returns an Engine trying identifiers in the given order (after the
// port-priority ones).
func New(ids []proto.Identifier, opts Options) *Engine {
	if opts.BannerWait <= 0 {
		opts.BannerWait = 700 * time.Millisecond
	}
	return &Engine{ids: ids, opts: opts}
}

// Identify names the service at ep. udpResponse is the sweep's answer for a
// UDP port (nil for TCP). It always returns an Identity: Protocol "unknown"
// with the first bytes seen when nothing matched. ep.TLS is set on return
// when the service spoke TLS.
func (e *Engine) Identify(ctx context.Context, ep *proto.Endpoint, udpResponse []byte) *proto.Identity {
	if ep.Transport == "udp" {
		return e.identifyUDP(ctx, *ep, udpResponse)
	}
	if ep.TLS {
		return e.identifyOverTLS(ctx, ep)
	}
	// TLS is checked before any client-first protocol is tried in clear:
	// many TLS servers answer a plain request with an error page that would
	// otherwise pass for plain HTTP.
	var tlsFound bool
	id, banner := e.identifyTCP(ctx, *ep, func() bool {
		tlsFound = e.speaksTLS(ctx, *ep)
		return tlsFound
	})
	if tlsFound {
		return e.identifyOverTLS(ctx, ep)
	}
	if id != nil {
		return id
	}
	return &proto.Identity{Protocol: "unknown", Banner: proto.Printable(banner)}
}

func (e *Engine) identifyOverTLS(ctx context.Context, ep *proto.Endpoint) *proto.Identity {
	ep.TLS = true
	id, banner := e.identifyTCP(ctx, *ep, nil)
	if id != nil {
		id.TLS = true
		return id
	}
	return &proto.Identity{Protocol: "tls", TLS: true, Banner: proto.Printable(banner)}
}

func (e *Engine) ordered(transport string, port int) []proto.Identifier {
	var first, rest []proto.Identifier
	for _, id := range e.ids {
		if id.Transport() != transport {
			continue
		}
		if id.PortPriority(port) {
			first = append(first, id)
		} else {
			rest = append(rest, id)
		}
	}
	return append(first, rest...)
}

// identifyTCP returns the identity, or nil and the greeting it saw. When
// the service is silent (or a client-first protocol is expected on the
// port) it calls stop before speaking first; stop returning true abandons
// identification (the caller found TLS).
func (e *Engine) identifyTCP(ctx context.Context, ep proto.Endpoint, stop func() bool) (*proto.Identity, []byte) {
	ids := e.ordered("tcp", ep.Port)
	stopped := false
	shouldStop := func() bool {
		if stop == nil || stopped {
			return false
		}
		stopped = true
		return stop()
	}
	// A client-first protocol expected on this port is tried straight away,
	// saving the greeting wait on the commonest case (HTTP on 80, ...).
	tried := map[proto.Identifier]bool{}
	for _, id := range ids {
		if !id.PortPriority(ep.Port) || id.ServerFirst() {
			break
		}
		// TLS first only where TLS is customary; on ports where plain is
		// the norm, a TLS server is still found after the plain probe and
		// the greeting wait fail.
		if tlsPorts[ep.Port] && shouldStop() {
			return nil, nil
		}
		tried[id] = true
		if got := e.try(ctx, ep, id, nil, nil); got != nil {
			return got, nil
		}
	}
	conn, err := ep.Connect(ctx)
	if err != nil {
		return nil, nil
	}
	banner, _ := proto.ReadSome(conn, proto.MaxBanner, e.opts.BannerWait)
	serverFirst := len(banner) > 0
	if !serverFirst {
		conn.Close()
		conn = nil
		if shouldStop() {
			return nil, nil
		}
	}
	fresh := conn // the first identifier gets the connection the greeting came on
	for _, id := range ids {
		if tried[id] || id.ServerFirst() != serverFirst {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		var got *proto.Identity
		if fresh != nil {
			got = e.try(ctx, ep, id, fresh, banner)
			fresh = nil
		} else {
			got = e.try(ctx, ep, id, nil, nil)
		}
		if got != nil {
			if got.Banner == "" && serverFirst {
				got.Banner = proto.Printable(banner)
			}
			return got, banner
		}
	}
	if fresh != nil {
		fresh.Close()
	}
	return nil, banner
}

// try offers one identifier a connection: conn with the greeting already
// read from it, or, when conn is nil, a new one whose greeting is read first
// for server-first identifiers.
func (e *Engine) try(ctx context.Context, ep proto.Endpoint, id proto.Identifier, conn net.Conn, banner []byte) *proto.Identity {
	if conn == nil {
		c, err := ep.Connect(ctx)
		if err != nil {
			return nil
		}
		conn = c
		if id.ServerFirst() {
			banner, _ = proto.ReadSome(conn, proto.MaxBanner, e.opts.BannerWait)
		}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(ep.IOTimeout()))
	got, err := id.Identify(ctx, conn, banner, ep)
	if err != nil || got == nil {
		return nil
	}
	if got.Protocol == "" {
		got.Protocol = id.Name()
	}
	got.TLS = got.TLS || ep.TLS
	return got
}

// speaksTLS tries a TLS handshake, accepting any certificate and any
// version this Go speaks.
func (e *Engine) speaksTLS(ctx context.Context, ep proto.Endpoint) bool {
	plain := ep
	plain.TLS = false
	conn, err := plain.Connect(ctx)
	if err != nil {
		return false
	}
	defer conn.Close()
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10}) //nolint:gosec // detection only
	hctx, cancel := context.WithTimeout(ctx, ep.IOTimeout())
	defer cancel()
	err = tc.HandshakeContext(hctx)
	if err == nil {
		return true
	}
	// A server that answered with a TLS alert speaks TLS too.
	var alert tls.AlertError
	return errors.As(err, &alert)
}

func (e *Engine) identifyUDP(ctx context.Context, ep proto.Endpoint, resp []byte) *proto.Identity {
	for _, id := range e.ordered("udp", ep.Port) {
		if ctx.Err() != nil {
			break
		}
		if got := e.try(ctx, ep, id, nil, nil); got != nil {
			if got.Banner == "" {
				got.Banner = proto.Printable(firstLine(resp))
			}
			return got
		}
	}
	return &proto.Identity{Protocol: "unknown", Banner: proto.Printable(resp)}
}

func firstLine(b []byte) []byte {
	if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
		return b[:i]
	}
	return b
}
