// Package mdns identifies multicast DNS responders (UDP 5353) with a
// unicast DNS-SD service enumeration query sent straight to the target, and
// lists the services they advertise. mDNS has no authentication, so the
// package implements only proto.Identifier.
package mdns

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/iotcop/iotcop/proto"
)

// Protocol implements proto.Identifier for mDNS.
type Protocol struct{}

// New returns the mDNS protocol.
func New() *Protocol { return &Protocol{} }

var _ proto.Identifier = (*Protocol)(nil)

// Name returns "mdns".
func (*Protocol) Name() string { return "mdns" }

// Transport returns "udp".
func (*Protocol) Transport() string { return "udp" }

// PortPriority reports the mDNS port 5353.
func (*Protocol) PortPriority(port int) bool { return port == 5353 }

// ServerFirst returns false: responders answer queries.
func (*Protocol) ServerFirst() bool { return false }

// Bounds on one identification.
const (
	maxDatagram  = 9000 // RFC 6762 section 17
	maxDatagrams = 32
	maxNames     = 32
	maxInfoBytes = 2000
	maxGrace     = 300 * time.Millisecond
)

// servicesName is the DNS-SD service type enumeration name (RFC 6763 9).
const servicesName = "_services._dns-sd._udp.local."

// classUnicastResponse is the QU bit: ask for a unicast answer.
const classUnicastResponse = 0x8000

// buildQuery builds a PTR query for names.
func buildQuery(id uint16, names []string) ([]byte, error) {
	qs := make([]Question, 0, len(names))
	for _, n := range names {
		qs = append(qs, Question{Name: n, Type: dnsmessage.TypePTR})
	}
	return BuildQuery(id, qs...)
}

// reply is what one DNS response told.
type reply struct {
	ptrs  map[string][]string // owner name -> PTR targets
	hosts []string            // SRV targets and A/AAAA owner names
}

var errNotResponse = errors.New("not a DNS response to our query")

// parseReply parses a DNS message and checks it answers query id (legacy
// unicast responders echo the id; some small stacks send 0).
func parseReply(b []byte, id uint16) (reply, error) {
	m, err := ParseMessage(b)
	if err != nil {
		return reply{}, err
	}
	if m.ID != id && m.ID != 0 {
		return reply{}, errNotResponse
	}
	r := reply{ptrs: map[string][]string{}}
	for _, p := range m.PTRs {
		owner := strings.ToLower(p.Owner)
		if len(r.ptrs[owner]) < maxNames && !slices.Contains(r.ptrs[owner], p.Target) {
			r.ptrs[owner] = append(r.ptrs[owner], p.Target)
		}
	}
	for _, s := range m.SRVs {
		r.addHost(s.Target)
	}
	for _, a := range m.Addrs {
		r.addHost(a.Owner)
	}
	return r, nil
}

func (r *reply) addHost(h string) {
	if h != "" && h != "." && len(r.hosts) < maxNames && !slices.Contains(r.hosts, h) {
		r.hosts = append(r.hosts, h)
	}
}

// ask sends one query and gathers the replies that arrive until the wait
// ends or a short grace passed after the first one.
func ask(ctx context.Context, conn net.Conn, timeout time.Duration, names []string) ([]reply, error) {
	var rb [2]byte
	_, _ = rand.Read(rb[:])
	id := binary.BigEndian.Uint16(rb[:]) | 1
	q, err := buildQuery(id, names)
	if err != nil {
		return nil, fmt.Errorf("build DNS-SD query: %w", err)
	}
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetWriteDeadline(deadline)
	if _, err := conn.Write(q); err != nil {
		return nil, fmt.Errorf("send DNS-SD query: %w", err)
	}
	var out []reply
	var readErr error
	buf := make([]byte, maxDatagram)
	for range maxDatagrams {
		_ = conn.SetReadDeadline(deadline)
		n, err := conn.Read(buf)
		if err != nil {
			readErr = err
			break
		}
		r, err := parseReply(buf[:n], id)
		if err != nil {
			continue
		}
		if len(out) == 0 {
			if g := time.Now().Add(min(maxGrace, timeout)); g.Before(deadline) {
				deadline = g
			}
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		if readErr != nil && !proto.IsTimeout(readErr) {
			return nil, fmt.Errorf("no mDNS answer: %w", readErr)
		}
		return nil, errors.New("no mDNS answer")
	}
	return out, nil
}

// Identify asks the target's port 5353 directly for the DNS-SD service
// types (PTR _services._dns-sd._udp.local); any NOERROR DNS response to
// it proves mDNS (a unicast DNS server refuses .local names). It then asks, in one message, for the instances of up to eight of
// the types found.
//
// Info keys: "services" (comma-separated service types such as
// "_http._tcp.local"), "service_count", "instances" (comma-separated
// instance names), "hostnames" (SRV targets and A/AAAA owners).
func (p *Protocol) Identify(ctx context.Context, conn net.Conn, banner []byte, ep proto.Endpoint) (*proto.Identity, error) {
	replies, err := ask(ctx, conn, ep.IOTimeout(), []string{servicesName})
	if err != nil {
		return nil, fmt.Errorf("mdns identify %s: %v: %w", ep.Addr(), err, proto.ErrNotThisProtocol)
	}
	id := &proto.Identity{Protocol: "mdns"}
	var services, hosts []string
	merge := func(list []string, items ...string) []string {
		for _, it := range items {
			it = strings.TrimSuffix(it, ".")
			if it != "" && len(list) < maxNames && !slices.Contains(list, it) {
				list = append(list, it)
			}
		}
		return list
	}
	for _, r := range replies {
		services = merge(services, r.ptrs[servicesName]...)
		hosts = merge(hosts, r.hosts...)
	}
	id.Set("service_count", strconv.Itoa(len(services)))
	if len(services) == 0 {
		return id, nil
	}
	id.Set("services", joinCapped(services))
	var instances []string
	queries := make([]string, 0, 8)
	for _, s := range services[:min(len(services), 8)] {
		queries = append(queries, s+".")
	}
	if more, err := ask(ctx, conn, ep.IOTimeout(), queries); err == nil {
		for _, r := range more {
			for _, q := range queries {
				instances = merge(instances, r.ptrs[strings.ToLower(q)]...)
			}
			hosts = merge(hosts, r.hosts...)
		}
	}
	if len(instances) > 0 {
		id.Set("instances", joinCapped(instances))
	}
	if len(hosts) > 0 {
		id.Set("hostnames", joinCapped(hosts))
	}
	return id, nil
}

func joinCapped(items []string) string {
	var sb strings.Builder
	for _, it := range items {
		it = proto.Printable([]byte(it))
		if sb.Len()+len(it)+1 > maxInfoBytes {
			break
		}
		if sb.Len() > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(it)
	}
	return sb.String()
}
