package daemontest

import (
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iotcop/iotcop/proto"
)

// TCPServer is an in-process server (a fake device) that runs a handler
// for every connection.
type TCPServer struct {
	Host string
	Port int
	// Accepted counts the connections accepted so far.
	Accepted atomic.Int32
	ln       net.Listener
}

// ServeTCP listens on host:port (a fresh loopback address when host is
// empty, a free port when port is 0) and runs handle for every connection,
// closing it when handle returns. When the test ends it stops, closes the
// open connections and waits for the handlers.
func ServeTCP(t TB, host string, port int, handle func(net.Conn)) *TCPServer {
	t.Helper()
	if host == "" {
		host = Addr()
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("fake server: %v", err)
	}
	s := &TCPServer{Host: host, Port: ln.Addr().(*net.TCPAddr).Port, ln: ln}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.Accepted.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}

// Stop stops accepting: later connections are refused.
func (s *TCPServer) Stop() { s.ln.Close() }

// Endpoint returns the proto.Endpoint that reaches the server.
func (s *TCPServer) Endpoint(timeout time.Duration) proto.Endpoint {
	return proto.Endpoint{Host: s.Host, Port: s.Port, Transport: "tcp", Timeout: timeout}
}
