package lab

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Limits every server applies. A cheap device accepts a handful of
// sessions; a flood of connections beyond that is closed at once, which
// keeps a 500-device lab's memory bounded whatever a scanner does.
const (
	maxConnsPerService = 32
	idleTimeout        = 2 * time.Minute
	writeTimeout       = 30 * time.Second
	maxSession         = 15 * time.Minute
	maxLine            = 4096
)

// tcpServer accepts connections on one listener and runs handle for each
// in a goroutine started only when a connection arrives.
type tcpServer struct {
	ln     net.Listener
	handle func(ctx context.Context, c net.Conn)
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// serveTCP starts accepting on ln (wrapped in the connection limit).
func serveTCP(ln net.Listener, log *slog.Logger, handle func(ctx context.Context, c net.Conn)) *tcpServer {
	ctx, cancel := context.WithCancel(context.Background())
	s := &tcpServer{ln: newLimitListener(ln, maxConnsPerService), handle: handle, log: log, ctx: ctx, cancel: cancel}
	s.wg.Go(s.acceptLoop)
	return s
}

func (s *tcpServer) acceptLoop() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.ctx.Err() != nil {
				return
			}
			// Out of file descriptors and the like: back off, keep serving.
			s.log.Warn("accept", "addr", s.ln.Addr().String(), "err", err)
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		s.wg.Go(func() {
			dc := newDeadlineConn(c)
			// Close on lab shutdown or after the longest session allowed.
			stop := context.AfterFunc(s.ctx, func() { _ = c.Close() })
			t := time.AfterFunc(maxSession, func() { _ = c.Close() })
			defer func() {
				t.Stop()
				stop()
				_ = c.Close()
				if r := recover(); r != nil {
					s.log.Error("handler panic", "addr", s.ln.Addr().String(), "panic", r)
				}
			}()
			s.handle(s.ctx, dc)
		})
	}
}

// close stops accepting, closes every open connection and waits.
func (s *tcpServer) close() {
	s.cancel()
	_ = s.ln.Close()
	s.wg.Wait()
}

// deadlineConn refreshes a read deadline before every read and a write
// deadline before every write, so a silent or stalled peer is dropped after
// idleTimeout.
type deadlineConn struct {
	net.Conn
	idle time.Duration
}

func newDeadlineConn(c net.Conn) *deadlineConn { return &deadlineConn{Conn: c, idle: idleTimeout} }

func (c *deadlineConn) Read(p []byte) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	return c.Conn.Read(p)
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.Conn.Write(p)
}

// limitListener closes connections beyond max open ones at once, as a small
// device with few session slots does.
type limitListener struct {
	net.Listener
	max    int64
	active atomic.Int64
}

func newLimitListener(ln net.Listener, max int) *limitListener {
	return &limitListener{Listener: ln, max: int64(max)}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.active.Add(1) > l.max {
			l.active.Add(-1)
			_ = c.Close()
			continue
		}
		return &countedConn{Conn: c, release: func() { l.active.Add(-1) }}, nil
	}
}

type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// firstDeadlineListener gives each accepted connection an initial deadline,
// for servers (the MQTT broker) that only set one after the peer's first
// packet: a silent peer is dropped instead of holding a slot forever.
type firstDeadlineListener struct {
	net.Listener
	wait time.Duration
}

func (l firstDeadlineListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(l.wait))
	return c, nil
}

// udpServer reads datagrams on one socket and answers each with handle's
// reply (nil = stay silent). One goroutine per socket.
type udpServer struct {
	pc  net.PacketConn
	wg  sync.WaitGroup
	log *slog.Logger
}

// maxDatagram bounds what a UDP server reads (larger datagrams are cut and
// then fail to parse).
const maxDatagram = 4096

func serveUDP(pc net.PacketConn, log *slog.Logger, handle func(req []byte, from net.Addr) []byte) *udpServer {
	s := &udpServer{pc: pc, log: log}
	s.wg.Go(func() {
		buf := make([]byte, maxDatagram)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				s.log.Debug("udp read", "addr", pc.LocalAddr().String(), "err", err)
				time.Sleep(10 * time.Millisecond) // never spin on a persistent error
				continue
			}
			reply := safeHandle(s.log, handle, buf[:n], from)
			if len(reply) > 0 {
				_ = pc.SetWriteDeadline(time.Now().Add(time.Second))
				_, _ = pc.WriteTo(reply, from)
			}
		}
	})
	return s
}

func safeHandle(log *slog.Logger, handle func([]byte, net.Addr) []byte, req []byte, from net.Addr) (reply []byte) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("udp handler panic", "panic", r)
			reply = nil
		}
	}()
	return handle(req, from)
}

func (s *udpServer) close() {
	_ = s.pc.Close()
	s.wg.Wait()
}
