// Package coap identifies CoAP servers over UDP and checks whether their
// resources can be read without credentials. It speaks a minimal CoAP
// client of its own (confirmable GET, piggybacked and separate responses,
// Block2 for long bodies) so that it runs on the connection the scanner
// hands over and bounds every read.
package coap

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/iotcop/iotcop/proto"
)

// Protocol implements proto.Identifier and proto.OpenAccessProber for CoAP.
type Protocol struct{}

// New returns the CoAP protocol.
func New() *Protocol { return &Protocol{} }

var (
	_ proto.Identifier       = (*Protocol)(nil)
	_ proto.OpenAccessProber = (*Protocol)(nil)
)

// Name returns "coap".
func (*Protocol) Name() string { return "coap" }

// Transport returns "udp".
func (*Protocol) Transport() string { return "udp" }

// PortPriority reports the CoAP port 5683.
func (*Protocol) PortPriority(port int) bool { return port == 5683 }

// ServerFirst returns false: CoAP servers only answer requests.
func (*Protocol) ServerFirst() bool { return false }

// Bounds on one exchange and one body.
const (
	maxDatagram      = 2048 // CoAP messages must fit a datagram; larger ones use blocks
	maxDatagrams     = 64
	maxBody          = 16 << 10
	maxBlocks        = 32
	maxProbed        = 5
	maxResourcesInfo = 2000 // bytes of Info["resources"]
)

const wellKnownCore = "/.well-known/core"

// client runs request/response exchanges on one UDP connection.
type client struct {
	conn    net.Conn
	timeout time.Duration
	id      uint16
}

func newClient(conn net.Conn, timeout time.Duration) *client {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return &client{conn: conn, timeout: timeout, id: binary.BigEndian.Uint16(b[:])}
}

var errNoResponse = errors.New("no CoAP response")

// exchange sends req and returns the response: a piggybacked ACK, a
// separate response (acknowledged when confirmable) or a RST. It
// retransmits once, halfway through the timeout, while nothing came back.
func (c *client) exchange(ctx context.Context, req message) (message, error) {
	start := time.Now()
	deadline := start.Add(c.timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	retransmitAt := start.Add(c.timeout / 2)
	wire := req.encode()
	_ = c.conn.SetWriteDeadline(deadline)
	if _, err := c.conn.Write(wire); err != nil {
		return message{}, fmt.Errorf("send CoAP request: %w", err)
	}
	acked, retransmitted := false, false
	buf := make([]byte, maxDatagram)
	for range maxDatagrams {
		readUntil := deadline
		if !acked && !retransmitted && retransmitAt.Before(deadline) {
			readUntil = retransmitAt
		}
		_ = c.conn.SetReadDeadline(readUntil)
		n, err := c.conn.Read(buf)
		if err != nil {
			if proto.IsTimeout(err) && readUntil.Before(deadline) {
				retransmitted = true
				_, _ = c.conn.Write(wire)
				continue
			}
			if proto.IsTimeout(err) {
				return message{}, errNoResponse
			}
			return message{}, fmt.Errorf("read CoAP response: %w", err)
		}
		m, err := decode(append([]byte(nil), buf[:n]...))
		if err != nil {
			continue
		}
		switch {
		case m.typ == typeRST && m.id == req.id:
			return m, nil
		case m.typ == typeACK && m.id == req.id && m.code == 0:
			acked = true // separate response follows
		case m.typ == typeACK && m.id == req.id && string(m.token) == string(req.token) && m.code>>5 >= 2:
			return m, nil
		case (m.typ == typeCON || m.typ == typeNON) && string(m.token) == string(req.token) && m.code>>5 >= 2:
			if m.typ == typeCON {
				_, _ = c.conn.Write(message{typ: typeACK, id: m.id}.encode())
			}
			return m, nil
		}
	}
	return message{}, errNoResponse
}

// get fetches path, following Block2 up to maxBody bytes. It returns the
// first response (its code tells the outcome) and the assembled body.
func (c *client) get(ctx context.Context, path string) (message, []byte, error) {
	var first message
	var body []byte
	var num, szx uint32
	for i := range maxBlocks {
		c.id++
		token := make([]byte, 4)
		_, _ = rand.Read(token)
		resp, err := c.exchange(ctx, newGet(c.id, token, path, num, szx))
		if err != nil {
			if i > 0 {
				return first, body, nil // keep what arrived
			}
			return message{}, nil, err
		}
		if i == 0 {
			first = resp
		}
		if resp.typ == typeRST || resp.code != codeContent {
			return first, body, nil
		}
		body = append(body, resp.payload[:min(len(resp.payload), maxBody-len(body))]...)
		b, ok := resp.block2()
		if !ok || !b.more || len(body) >= maxBody || b.num != num {
			return first, body, nil
		}
		num = b.num + 1
		szx = uint32(0)
		for 16<<szx < b.size {
			szx++
		}
	}
	return first, body, nil
}

// localTargets returns link targets that are paths on the same server
// (never absolute URIs naming another host), without the discovery resource.
func localTargets(links []link) []string {
	var out []string
	for _, l := range links {
		t := l.target
		if !strings.HasPrefix(t, "/") || strings.HasPrefix(t, "//") || t == wellKnownCore {
			continue
		}
		out = append(out, t)
	}
	return out
}

// joinCapped joins items with "," up to max bytes.
func joinCapped(items []string, max int) string {
	var sb strings.Builder
	for _, it := range items {
		it = proto.Printable([]byte(it))
		if sb.Len()+len(it)+1 > max {
			break
		}
		if sb.Len() > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(it)
	}
	return sb.String()
}

var productHints = []struct {
	re      *regexp.Regexp
	product string
}{
	{regexp.MustCompile(`(?i)\blibcoap\b(?:[ /v]+([0-9][\w.]*))?`), "libcoap"},
	{regexp.MustCompile(`(?i)\bcalifornium\b(?:[ /v]+([0-9][\w.]*))?`), "californium"},
	{regexp.MustCompile(`(?i)\bgo-coap\b(?:[ /v]+([0-9][\w.]*))?`), "go-coap"},
	{regexp.MustCompile(`(?i)\bFreeCoAP\b(?:[ /v]+([0-9][\w.]*))?`), "freecoap"},
}

// productFrom finds a CoAP implementation named in a resource body.
func productFrom(body []byte) (product, version string) {
	s := string(body[:min(len(body), 1024)])
	for _, h := range productHints {
		if m := h.re.FindStringSubmatch(s); m != nil {
			return h.product, m[1]
		}
	}
	return "", ""
}

// Identify sends a confirmable GET /.well-known/core; any well-formed CoAP
// answer (content, an error code or a reset) proves CoAP. When "/" is
// listed it also reads it for an implementation hint (libcoap's test server
// names itself there).
//
// Info keys: "wellknown_code" ("2.05", "4.04", ... or "reset"),
// "resources" (comma-separated link targets, capped at 2000 bytes),
// "resource_count".
func (p *Protocol) Identify(ctx context.Context, conn net.Conn, banner []byte, ep proto.Endpoint) (*proto.Identity, error) {
	c := newClient(conn, ep.IOTimeout())
	resp, body, err := c.get(ctx, wellKnownCore)
	if err != nil {
		return nil, fmt.Errorf("coap identify %s: %v: %w", ep.Addr(), err, proto.ErrNotThisProtocol)
	}
	id := &proto.Identity{Protocol: "coap"}
	if resp.typ == typeRST {
		id.Set("wellknown_code", "reset")
		return id, nil
	}
	id.Set("wellknown_code", codeString(resp.code))
	if resp.code != codeContent {
		return id, nil
	}
	targets := localTargets(parseLinks(string(body)))
	id.Set("resources", joinCapped(targets, maxResourcesInfo))
	id.Set("resource_count", strconv.Itoa(len(targets)))
	for _, t := range targets {
		if t != "/" {
			continue
		}
		if r, root, err := c.get(ctx, "/"); err == nil && r.code == codeContent {
			id.Product, id.Version = productFrom(root)
			first, _, _ := strings.Cut(string(root), "\n")
			id.Banner = proto.Printable([]byte(first))
		}
		break
	}
	return id, nil
}

// ProbeOpenAccess lists /.well-known/core and GETs up to five of the local
// resources it names; any 2.05 Content without credentials is open access.
// It returns nil, nil when nothing could be read.
//
// Details keys: "resources" ([]string listed), "readable" ([]string paths
// that answered 2.05), "refused" (map path -> response code), "previews"
// (map path -> first bytes, printable).
func (p *Protocol) ProbeOpenAccess(ctx context.Context, ep proto.Endpoint, id *proto.Identity) (*proto.OpenAccess, error) {
	conn, err := ep.Connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("coap open access probe on %s: %w", ep.Addr(), err)
	}
	defer conn.Close()
	c := newClient(conn, ep.IOTimeout())
	resp, body, err := c.get(ctx, wellKnownCore)
	if err != nil {
		return nil, fmt.Errorf("coap open access probe on %s: %w", ep.Addr(), err)
	}
	if resp.typ == typeRST || resp.code != codeContent {
		return nil, nil
	}
	targets := localTargets(parseLinks(string(body)))
	readable := []string{}
	refused := map[string]string{}
	previews := map[string]string{}
	for _, t := range targets[:min(len(targets), maxProbed)] {
		r, b, err := c.get(ctx, t)
		switch {
		case err != nil:
			refused[t] = "no response"
		case r.typ == typeRST:
			refused[t] = "reset"
		case r.code == codeContent:
			readable = append(readable, t)
			previews[t] = proto.Printable(b[:min(len(b), 64)])
		default:
			refused[t] = codeString(r.code)
		}
	}
	if len(readable) == 0 {
		return nil, nil
	}
	listed := targets[:min(len(targets), maxLinks)]
	return &proto.OpenAccess{
		What: "CoAP resources readable without authentication",
		Proof: fmt.Sprintf("GET %s listed %d resources and GET returned 2.05 Content for %s",
			wellKnownCore, len(targets), strings.Join(readable, ", ")),
		Details: map[string]any{
			"resources": listed,
			"readable":  readable,
			"refused":   refused,
			"previews":  previews,
		},
	}, nil
}
