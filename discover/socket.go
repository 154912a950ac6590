package discover

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/iotcop/iotcop/proto"
)

// socket is a UDP socket with its multicast options set.
type socket struct {
	conn net.PacketConn
	pc   *ipv4.PacketConn
}

// openSender opens a UDP socket on an ephemeral port whose multicast
// packets leave through ifi (the kernel's choice when nil) with the given
// TTL. Queries from a port other than 5353 make mDNS responders answer by
// unicast to it (RFC 6762 section 6.7), and SSDP answers are unicast to the
// searcher (UDA 1.1 section 1.3.3), so no group membership is needed here.
func openSender(ifi *net.Interface, ttl int) (*socket, error) {
	conn, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		return nil, err
	}
	s := &socket{conn: conn, pc: ipv4.NewPacketConn(conn)}
	if err := s.setup(ifi, ttl); err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

// openListener binds group's port (shared with any local responder through
// SO_REUSEADDR/SO_REUSEPORT) and joins group on ifi.
func openListener(ctx context.Context, ifi *net.Interface, group netip.AddrPort) (*socket, error) {
	lc := net.ListenConfig{Control: reusePort}
	conn, err := lc.ListenPacket(ctx, "udp4", fmt.Sprintf("0.0.0.0:%d", group.Port()))
	if err != nil {
		return nil, err
	}
	s := &socket{conn: conn, pc: ipv4.NewPacketConn(conn)}
	if err := s.setup(ifi, 255); err != nil {
		conn.Close()
		return nil, err
	}
	if err := s.pc.JoinGroup(ifi, &net.UDPAddr{IP: group.Addr().AsSlice()}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("join %s: %w", group.Addr(), err)
	}
	return s, nil
}

func (s *socket) setup(ifi *net.Interface, ttl int) error {
	if ifi != nil {
		if err := s.pc.SetMulticastInterface(ifi); err != nil {
			return fmt.Errorf("use interface %s: %w", ifi.Name, err)
		}
		// Learn each datagram's arrival interface to drop those from
		// other interfaces.
		if err := s.pc.SetControlMessage(ipv4.FlagInterface, true); err != nil {
			return fmt.Errorf("ask for arrival interfaces: %w", err)
		}
	}
	if err := s.pc.SetMulticastTTL(ttl); err != nil {
		return fmt.Errorf("set multicast TTL: %w", err)
	}
	// Responders on this host answer too.
	if err := s.pc.SetMulticastLoopback(true); err != nil {
		return fmt.Errorf("enable multicast loopback: %w", err)
	}
	return nil
}

func (s *socket) send(b []byte, to netip.AddrPort) error {
	_ = s.pc.SetWriteDeadline(time.Now().Add(time.Second))
	_, err := s.pc.WriteTo(b, nil, net.UDPAddrFromAddrPort(to))
	return err
}

func (s *socket) close() { _ = s.conn.Close() }

// read hands each datagram that arrived on ifi (any interface when nil) to
// handle until the read deadline, an error, or maxDatagrams. Datagrams longer
// than maxDatagram are truncated, and so fail to parse.
func (s *socket) read(ifi *net.Interface, handle func(src netip.AddrPort, b []byte)) {
	buf := make([]byte, maxDatagram)
	for range maxDatagrams {
		n, cm, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || proto.IsTimeout(err) {
				return
			}
			continue // a transient error; the loop stays bounded
		}
		if ifi != nil && cm != nil && cm.IfIndex != 0 && cm.IfIndex != ifi.Index {
			continue
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		src := ua.AddrPort()
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		handle(src, buf[:n])
	}
}
