package robustness

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/iotcop/iotcop/proto"
)

// livenessKind is how a service's liveness is judged.
type livenessKind int

const (
	liveConnect  livenessKind = iota // a TCP connection completes
	liveGreeting                     // a server-first service sends a byte
	liveHTTP                         // "HTTP/" answers a GET
	liveRTSP                         // "RTSP/" answers an OPTIONS
	liveMQTT                         // a CONNACK answers a CONNECT
	liveCoAP                         // a reset or ack answers an empty confirmable message
)

func (k livenessKind) String() string {
	return [...]string{"tcp connect", "greeting", "http reply", "rtsp reply", "mqtt connack", "coap ping"}[k]
}

// watchedService is a service that answered before probing.
type watchedService struct {
	svc  Service
	kind livenessKind
	// sys is the broker's uptime before probing, when readable.
	sys *sysInfo
}

// watcher checks the liveness of a device's services.
type watcher struct {
	budget  Budget
	watched []*watchedService
}

// add checks s once before probing. It returns false when s cannot be
// watched: it does not answer, or nothing tells whether it is alive.
func (w *watcher) add(ctx context.Context, s Service) bool {
	var kinds []livenessKind
	switch {
	case transport(s.Endpoint) == "udp":
		if s.Protocol != "coap" {
			return false
		}
		kinds = []livenessKind{liveCoAP}
	case s.Protocol == "http":
		kinds = []livenessKind{liveHTTP, liveConnect}
	case s.Protocol == "rtsp":
		kinds = []livenessKind{liveRTSP, liveConnect}
	case s.Protocol == "mqtt":
		kinds = []livenessKind{liveMQTT, liveConnect}
	case s.ServerFirst || s.Protocol == "ssh" || s.Protocol == "telnet" || s.Protocol == "ftp":
		kinds = []livenessKind{liveGreeting, liveConnect}
	default:
		kinds = []livenessKind{liveConnect}
	}
	// The strictest check the service passes is the one used; a quirky
	// service that fails its protocol's check is still watched by connect.
	for _, k := range kinds {
		if w.alive(ctx, s, k) == nil {
			ws := &watchedService{svc: s, kind: k}
			if k == liveMQTT {
				if si, err := readSys(ctx, w.endpoint(s)); err == nil {
					ws.sys = &si
				}
			}
			w.watched = append(w.watched, ws)
			return true
		}
	}
	return false
}

// kind returns how watched service s is checked.
func (w *watcher) kind(s Service) livenessKind {
	for _, ws := range w.watched {
		if ws.svc.key() == s.key() {
			return ws.kind
		}
	}
	return liveConnect
}

// endpoint returns s's endpoint with the liveness timeout.
func (w *watcher) endpoint(s Service) proto.Endpoint {
	ep := s.Endpoint
	ep.Timeout = w.budget.LivenessTimeout
	return ep
}

// check verifies every watched service after a probe sent to probed (that
// one first). It returns those that no longer answer and, when a broker's
// uptime shows a restart, a description of it.
func (w *watcher) check(ctx context.Context, probed Service) (stopped []Service, restart string) {
	order := make([]*watchedService, 0, len(w.watched))
	for _, ws := range w.watched {
		if ws.svc.key() == probed.key() {
			order = append([]*watchedService{ws}, order...)
		} else {
			order = append(order, ws)
		}
	}
	// Round by round, so that every service is tried within the first
	// moments after the probe: a reboot takes all of them down at once, and
	// retrying one service at length must not hide it from the rest.
	pending := order
	for attempt := range w.budget.LivenessRetries {
		if attempt > 0 {
			sleep(ctx, 500*time.Millisecond)
		}
		var next []*watchedService
		for _, ws := range pending {
			if ctx.Err() != nil {
				return nil, ""
			}
			if w.alive(ctx, ws.svc, ws.kind) != nil {
				next = append(next, ws)
				continue
			}
			if ws.sys != nil && restart == "" {
				if now, err := readSys(ctx, w.endpoint(ws.svc)); err == nil {
					if why := restarted(*ws.sys, now); why != "" {
						restart = ws.svc.String() + ": " + why
					}
					ws.sys = &now
				}
			}
		}
		pending = next
		if len(pending) == 0 {
			break
		}
	}
	if ctx.Err() != nil || len(pending) == 0 {
		return nil, restart
	}
	// Something is down: look once more at the services that answered
	// earlier, for the picture at the end of the check (a device may go
	// down a moment after the probe, while the first were being checked).
	down := map[string]bool{}
	for _, ws := range pending {
		down[ws.svc.key()] = true
	}
	for _, ws := range order {
		if !down[ws.svc.key()] && w.alive(ctx, ws.svc, ws.kind) != nil {
			down[ws.svc.key()] = true
		}
	}
	if ctx.Err() != nil {
		return nil, ""
	}
	for _, ws := range order {
		if down[ws.svc.key()] {
			stopped = append(stopped, ws.svc)
		}
	}
	return stopped, restart
}

// recover polls the stopped services once a second until all answer or
// RecoveryWait passes since the liveness check. Times are counted from
// sent, the end of the probe.
func (w *watcher) recover(ctx context.Context, stopped []Service, sent time.Time, now func() time.Time) (cameBack bool, downtime, watched time.Duration) {
	start := now()
	pending := append([]Service(nil), stopped...)
	for {
		var still []Service
		for _, s := range pending {
			if w.alive(ctx, s, w.kind(s)) != nil {
				still = append(still, s)
			}
		}
		pending = still
		if len(pending) == 0 {
			return true, now().Sub(sent), now().Sub(sent)
		}
		if ctx.Err() != nil || now().Sub(start) >= w.budget.RecoveryWait {
			return false, 0, now().Sub(sent)
		}
		sleep(ctx, time.Second)
	}
}

// alive makes one liveness attempt of the given kind.
func (w *watcher) alive(ctx context.Context, s Service, k livenessKind) error {
	ep := w.endpoint(s)
	if k == liveConnect {
		ep.TLS = false
	}
	conn, err := ep.Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(ep.IOTimeout()))
	switch k {
	case liveConnect:
		return nil
	case liveGreeting:
		b, err := proto.ReadSome(conn, 64, ep.IOTimeout())
		if len(b) > 0 {
			return nil
		}
		return fmt.Errorf("no greeting from %s: %w", ep.Addr(), orEOF(err))
	case liveHTTP:
		return expectPrefix(conn, fmt.Appendf(nil, "GET / HTTP/1.0\r\nHost: %s\r\nUser-Agent: iotcop\r\nConnection: close\r\n\r\n", hostHeader(ep.Host)), "HTTP/")
	case liveRTSP:
		return expectPrefix(conn, fmt.Appendf(nil, "OPTIONS rtsp://%s/ RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: iotcop\r\n\r\n", hostHeader(ep.Host)), "RTSP/")
	case liveMQTT:
		if _, err := conn.Write(connectPacket("MQTT", 4)); err != nil {
			return fmt.Errorf("mqtt connect to %s: %w", ep.Addr(), err)
		}
		typ, _, _, err := readPacket(conn, 64)
		if err != nil {
			return fmt.Errorf("mqtt connack from %s: %w", ep.Addr(), err)
		}
		if typ != 2 {
			return fmt.Errorf("mqtt %s answered packet type %d, not CONNACK", ep.Addr(), typ)
		}
		_, _ = conn.Write([]byte{0xe0, 0})
		return nil
	case liveCoAP:
		return coapPing(conn, ep)
	}
	return fmt.Errorf("unknown liveness kind %d", k)
}

func orEOF(err error) error {
	if err == nil {
		return io.EOF
	}
	return err
}

func hostHeader(h string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

// expectPrefix sends req and wants the answer to start with prefix.
func expectPrefix(conn net.Conn, req []byte, prefix string) error {
	if _, err := conn.Write(req); err != nil {
		return fmt.Errorf("send to %s: %w", conn.RemoteAddr(), err)
	}
	got := make([]byte, len(prefix))
	if _, err := io.ReadFull(conn, got); err != nil {
		return fmt.Errorf("reply from %s: %w", conn.RemoteAddr(), err)
	}
	if string(got) != prefix {
		return fmt.Errorf("%s answered %q, not %q", conn.RemoteAddr(), proto.Printable(got), prefix)
	}
	return nil
}

// coapPing sends an empty confirmable message (a CoAP ping) twice at most
// and wants a reset or acknowledgement with the same message id.
func coapPing(conn net.Conn, ep proto.Endpoint) error {
	id := make([]byte, 2)
	_, _ = rand.Read(id)
	ping := []byte{0x40, 0x00, id[0], id[1]}
	buf := make([]byte, 1500)
	deadline := time.Now().Add(ep.IOTimeout())
	for attempt := 0; attempt < 2; attempt++ {
		if _, err := conn.Write(ping); err != nil {
			return fmt.Errorf("coap ping %s: %w", ep.Addr(), err)
		}
		wait := time.Now().Add(ep.IOTimeout() / 2)
		if wait.After(deadline) {
			wait = deadline
		}
		_ = conn.SetReadDeadline(wait)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				if proto.IsTimeout(err) {
					break
				}
				return fmt.Errorf("coap ping %s: %w", ep.Addr(), err)
			}
			if coapAnswers(buf[:n], id) {
				return nil
			}
		}
	}
	return fmt.Errorf("coap ping %s: no answer", ep.Addr())
}

// coapAnswers reports whether msg is a CoAP reset or acknowledgement of
// the message id.
func coapAnswers(msg, id []byte) bool {
	if len(msg) < 4 || len(id) != 2 || msg[0]>>6 != 1 {
		return false
	}
	typ := msg[0] >> 4 & 3
	return (typ == 2 || typ == 3) && bytes.Equal(msg[2:4], id)
}

// errPacketTooLarge is returned for MQTT packets beyond the reader's cap.
var errPacketTooLarge = errors.New("mqtt packet larger than the cap")
