// Package mqtt identifies MQTT brokers (3.1, 3.1.1 and 5, plain or TLS),
// tries credentials against them and checks whether they accept anonymous
// clients. It speaks the few control packets it needs (CONNECT, CONNACK,
// SUBSCRIBE, SUBACK, PUBLISH, DISCONNECT) with a small bounded codec of its
// own so that every raw return code is visible and no read is unbounded.
package mqtt

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/iotcop/iotcop/proto"
)

// Protocol implements proto.Identifier, proto.Authenticator and
// proto.OpenAccessProber for MQTT.
type Protocol struct{}

// New returns the MQTT protocol.
func New() *Protocol { return &Protocol{} }

var (
	_ proto.Identifier       = (*Protocol)(nil)
	_ proto.Authenticator    = (*Protocol)(nil)
	_ proto.OpenAccessProber = (*Protocol)(nil)
)

// Name returns "mqtt" (TLS is reported in Identity.TLS, not in the name).
func (*Protocol) Name() string { return "mqtt" }

// Transport returns "tcp".
func (*Protocol) Transport() string { return "tcp" }

// PortPriority reports the usual MQTT ports: 1883 plain, 8883 TLS.
func (*Protocol) PortPriority(port int) bool { return port == 1883 || port == 8883 }

// ServerFirst returns false: the client sends CONNECT first.
func (*Protocol) ServerFirst() bool { return false }

// Return codes that matter (3.1.1 CONNACK return codes and v5 reason codes).
const (
	rcAccepted           = 0x00
	rcBadVersion         = 0x01 // 3.1.1: unacceptable protocol version
	rcBadCredentials     = 0x04 // 3.1.1: bad user name or password
	rcNotAuthorized      = 0x05 // 3.1.1: not authorized
	rc5UnsupportedVer    = 0x84
	rc5BadCredentials    = 0x86
	rc5NotAuthorized     = 0x87
	rc5Banned            = 0x8A
	rc5ConnRateExceeded  = 0x9F
	subackRefusedMinimum = 0x80
)

// collectWindow bounds how long a probe listens for PUBLISH packets.
const collectWindow = 2 * time.Second

// Bounds on what ProbeOpenAccess gathers after subscribing.
const (
	maxTopics          = 20
	maxCollectPackets  = 500
	maxPacketsToSuback = 200
)

// client is one MQTT connection with a bounded reader.
type client struct {
	conn    net.Conn
	r       *bufio.Reader
	v       version
	timeout time.Duration
}

func newClient(conn net.Conn, v version, timeout time.Duration) *client {
	return &client{conn: conn, r: bufio.NewReaderSize(conn, 4096), v: v, timeout: timeout}
}

// errNoConnack means the peer answered CONNECT with something that is not a
// CONNACK: not MQTT.
var errNoConnack = errors.New("reply to CONNECT is not a CONNACK")

// deadline returns the earlier of now+d and the context deadline.
func deadline(ctx context.Context, d time.Duration) time.Time {
	t := time.Now().Add(d)
	if dl, ok := ctx.Deadline(); ok && dl.Before(t) {
		return dl
	}
	return t
}

func randomToken(n int) string {
	s := strings.ToLower(rand.Text())
	return s[:min(n, len(s))]
}

// connect sends CONNECT and reads the CONNACK.
func (c *client) connect(ctx context.Context, cred *credentials) (connack, error) {
	_ = c.conn.SetDeadline(deadline(ctx, c.timeout))
	if _, err := c.conn.Write(encodeConnect(c.v, "iotcop"+randomToken(10), cred)); err != nil {
		return connack{}, fmt.Errorf("send CONNECT: %w", err)
	}
	p, err := readPacket(c.r)
	if err != nil {
		return connack{}, fmt.Errorf("read CONNACK: %w", err)
	}
	if p.typ == typeAuth && c.v == v5 {
		return connack{}, errors.New("broker started MQTT 5 enhanced authentication (AUTH packet)")
	}
	if p.typ != typeConnack || p.flags != 0 {
		return connack{}, fmt.Errorf("%w (packet type %d)", errNoConnack, p.typ)
	}
	ack, err := decodeConnack(p.body)
	if err != nil {
		return connack{}, fmt.Errorf("%w: %w", errNoConnack, err)
	}
	return ack, nil
}

// subscribe sends SUBSCRIBE for filters and waits for the matching SUBACK,
// returning its codes and the topics of PUBLISH packets that came first.
func (c *client) subscribe(ctx context.Context, filters []string) ([]byte, []string, error) {
	_ = c.conn.SetDeadline(deadline(ctx, c.timeout))
	var rb [2]byte
	_, _ = rand.Read(rb[:])
	id := 1 + binary.BigEndian.Uint16(rb[:])%0xfff0
	if _, err := c.conn.Write(encodeSubscribe(c.v, id, filters)); err != nil {
		return nil, nil, fmt.Errorf("send SUBSCRIBE: %w", err)
	}
	var topics []string
	for range maxPacketsToSuback {
		p, err := readPacket(c.r)
		if err != nil {
			return nil, topics, fmt.Errorf("read SUBACK: %w", err)
		}
		switch p.typ {
		case typeSuback:
			gotID, codes, err := decodeSuback(c.v, p.body)
			if err != nil {
				return nil, topics, fmt.Errorf("read SUBACK: %w", err)
			}
			if gotID != id {
				continue
			}
			if len(codes) != len(filters) {
				return nil, topics, fmt.Errorf("SUBACK has %d codes for %d filters", len(codes), len(filters))
			}
			return codes, topics, nil
		case typePublish:
			if pub, err := c.handlePublish(p); err == nil {
				topics = append(topics, pub.topic)
			}
		}
	}
	return nil, topics, fmt.Errorf("no SUBACK within %d packets", maxPacketsToSuback)
}

// handlePublish decodes a PUBLISH and acknowledges it when QoS 1.
func (c *client) handlePublish(p packet) (publish, error) {
	pub, err := decodePublish(c.v, p.flags, p.body)
	if err != nil {
		return pub, err
	}
	if pub.qos == 1 {
		_, _ = c.conn.Write(encodePuback(pub.packetID))
	}
	return pub, nil
}

// collect reads PUBLISH packets until the window ends, stopping early once
// keep returns true for a message or the packet budget is spent.
func (c *client) collect(ctx context.Context, window time.Duration, keep func(publish) bool) {
	_ = c.conn.SetDeadline(deadline(ctx, window))
	for range maxCollectPackets {
		p, err := readPacket(c.r)
		if err != nil {
			return
		}
		if p.typ != typePublish {
			continue
		}
		if pub, err := c.handlePublish(p); err == nil && keep(pub) {
			return
		}
	}
}

func (c *client) disconnect() {
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	_, _ = c.conn.Write(encodeDisconnect())
}

// versionRefused reports whether a CONNACK refuses the protocol level.
func versionRefused(ack connack) bool {
	return ack.code == rcBadVersion || ack.code == rc5UnsupportedVer
}

// fallback is the order in which protocol levels are tried.
var fallback = [...]version{v311, v5, v31}

// handshake connects with each protocol level in turn (3.1.1, 5, 3.1)
// while the broker refuses the level (only, when not 0, fixes the level).
// first, if not nil, carries the first attempt; later attempts dial ep. It
// fails only when the first attempt gets no CONNACK: once the broker has
// refused a level it is proven MQTT, and a later failure returns that
// refusal (with its connection closed). The caller closes the returned
// client's connection unless it is first.
func handshake(ctx context.Context, first net.Conn, ep proto.Endpoint, only version, cred *credentials) (*client, connack, error) {
	levels := fallback[:]
	if only != 0 {
		levels = []version{only}
	}
	var prev *client
	var prevAck connack
	for i, v := range levels {
		conn := first
		if i > 0 || conn == nil {
			var err error
			if conn, err = ep.Connect(ctx); err != nil {
				if prev != nil {
					return prev, prevAck, nil
				}
				return nil, connack{}, err
			}
		}
		c := newClient(conn, v, ep.IOTimeout())
		ack, err := c.connect(ctx, cred)
		if err != nil {
			if conn != first {
				conn.Close()
			}
			if prev != nil {
				return prev, prevAck, nil
			}
			return nil, connack{}, err
		}
		if !versionRefused(ack) || i == len(levels)-1 {
			return c, ack, nil
		}
		if conn != first {
			conn.Close()
		}
		prev, prevAck = c, ack
	}
	return prev, prevAck, nil
}

// closeUnlessFirst closes c's connection unless it is the one the caller owns.
func closeUnlessFirst(c *client, first net.Conn) {
	if c != nil && c.conn != first {
		c.conn.Close()
	}
}

var versionRE = regexp.MustCompile(`^([A-Za-z][\w.-]*) version v?([0-9][\w.+-]*)`)

// productFromSys turns a $SYS version message into product and version:
// "mosquitto version 2.0.11" from $SYS/broker/version, or EMQX's bare
// version from $SYS/brokers/<node>/version.
func productFromSys(topic string, payload []byte) (product, ver string) {
	s := strings.TrimSpace(string(payload[:min(len(payload), 200)]))
	if m := versionRE.FindStringSubmatch(s); m != nil {
		return strings.ToLower(m[1]), m[2]
	}
	if strings.HasPrefix(topic, "$SYS/brokers/") && s != "" && s[0] >= '0' && s[0] <= '9' && !strings.ContainsAny(s, " \t\r\n") {
		return "emqx", s
	}
	return "", ""
}

// Identify sends CONNECT with a random client id and no credentials; a
// well-formed CONNACK with any return code proves MQTT. When the broker
// accepts anonymous clients it subscribes to $SYS/broker/version (and
// EMQX's equivalent) to learn the product and version.
//
// Info keys: "mqtt_version" ("3.1.1", "5" or "3.1": the level the broker
// accepted or answered), "anonymous" ("true", "false" when refused for
// lack of credentials, "unknown" for other refusals), "connack_code"
// ("0x05"), "reason" (MQTT 5 reason string, when sent).
func (p *Protocol) Identify(ctx context.Context, conn net.Conn, banner []byte, ep proto.Endpoint) (*proto.Identity, error) {
	if len(banner) > 0 {
		return nil, fmt.Errorf("mqtt identify %s: server spoke first: %w", ep.Addr(), proto.ErrNotThisProtocol)
	}
	c, ack, err := handshake(ctx, conn, ep, 0, nil)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("mqtt identify %s: %w", ep.Addr(), ctx.Err())
		}
		// No CONNACK on the first connection: whatever went wrong (a
		// timeout, a hang-up, another protocol's reply), it is not MQTT.
		return nil, fmt.Errorf("mqtt identify %s: %v: %w", ep.Addr(), err, proto.ErrNotThisProtocol)
	}
	defer closeUnlessFirst(c, conn)
	id := &proto.Identity{Protocol: "mqtt", TLS: ep.TLS}
	id.Set("mqtt_version", c.v.String())
	id.Set("connack_code", fmt.Sprintf("0x%02x", ack.code))
	if ack.reason != "" {
		id.Set("reason", proto.Printable([]byte(ack.reason)))
	}
	switch ack.code {
	case rcAccepted:
		id.Set("anonymous", "true")
	case rcBadCredentials, rcNotAuthorized, rc5BadCredentials, rc5NotAuthorized:
		id.Set("anonymous", "false")
		return id, nil
	default:
		id.Set("anonymous", "unknown")
		return id, nil
	}
	defer c.disconnect()
	filters := []string{"$SYS/broker/version", "$SYS/brokers/+/version"}
	codes, _, err := c.subscribe(ctx, filters)
	if err != nil || !slices.ContainsFunc(codes, func(b byte) bool { return b < subackRefusedMinimum }) {
		return id, nil
	}
	c.collect(ctx, min(collectWindow, ep.IOTimeout()), func(pub publish) bool {
		product, ver := productFromSys(pub.topic, pub.payload)
		if product == "" {
			return false
		}
		id.Product, id.Version = product, ver
		id.Banner = proto.Printable(pub.payload)
		return true
	})
	return id, nil
}

// knownVersion returns the protocol level Identify found, or 0.
func knownVersion(id *proto.Identity) version {
	if id == nil {
		return 0
	}
	v, _ := parseVersion(id.Info["mqtt_version"])
	return v
}

// Open returns a login session; every Try uses a fresh connection because
// MQTT allows one CONNECT per connection.
func (p *Protocol) Open(ctx context.Context, ep proto.Endpoint, id *proto.Identity) (proto.LoginSession, error) {
	return &session{ep: ep, v: knownVersion(id)}, nil
}

type session struct {
	ep proto.Endpoint
	v  version // 0 until a broker answer fixes it
}

// Close releases nothing: connections live only inside Try.
func (s *session) Close() error { return nil }

// Try connects with the credential. It claims Accepted only when the CONNACK
// accepts it (code 0) and a SUBACK then grants a subscription; 3.1.1 codes
// 4/5 and v5 codes 0x86/0x87 are Rejected, v5 "banned" and "connection rate
// exceeded" are LockedOut, everything else is Unknown. A broker that takes
// any credential (mosquitto with allow_anonymous and no password file, or
// one that checks only that a username is present) accepts a random pair
// too: callers must try one first, as check.DefaultCredentials does.
func (s *session) Try(ctx context.Context, cr proto.Credential) (proto.LoginResult, error) {
	c, ack, err := handshake(ctx, nil, s.ep, s.v, &credentials{username: cr.Username, password: cr.Password})
	if err != nil {
		return proto.LoginResult{Outcome: proto.Unknown}, fmt.Errorf("mqtt login to %s: %w", s.ep.Addr(), err)
	}
	defer c.conn.Close()
	s.v = c.v
	detail := fmt.Sprintf("MQTT %s CONNACK code 0x%02x", c.v, ack.code)
	if ack.reason != "" {
		detail += " (" + proto.Printable([]byte(ack.reason)) + ")"
	}
	switch ack.code {
	case rcAccepted:
	case rcBadCredentials, rcNotAuthorized, rc5BadCredentials, rc5NotAuthorized:
		return proto.LoginResult{Outcome: proto.Rejected, Detail: detail}, nil
	case rc5Banned, rc5ConnRateExceeded:
		if ack.v5 {
			return proto.LoginResult{Outcome: proto.LockedOut, Detail: detail}, nil
		}
		return proto.LoginResult{Outcome: proto.Unknown, Detail: detail}, nil
	default:
		return proto.LoginResult{Outcome: proto.Unknown, Detail: detail}, nil
	}
	defer c.disconnect()
	filters := []string{"iotcop/" + randomToken(12), "$SYS/broker/version"}
	codes, _, err := c.subscribe(ctx, filters)
	if err != nil {
		return proto.LoginResult{Outcome: proto.Unknown, Detail: detail + "; no SUBACK: " + err.Error()}, nil
	}
	for i, code := range codes {
		if code < subackRefusedMinimum {
			return proto.LoginResult{
				Outcome: proto.Accepted,
				Proof:   fmt.Sprintf("CONNACK accepted and SUBACK granted %s (MQTT %s)", filters[i], c.v),
			}, nil
		}
	}
	return proto.LoginResult{Outcome: proto.Unknown, Detail: detail + "; CONNACK accepted but every subscription was refused"}, nil
}

// ProbeOpenAccess connects without credentials; when the broker accepts, it
// subscribes to "#" and "$SYS/#" and records which were granted and the
// names of up to 20 topics received within a short window. It returns nil,
// nil when the anonymous CONNECT is refused.
//
// Details keys: "mqtt_version", "granted" and "refused" ([]string of topic
// filters), "topics" ([]string, topic names seen).
func (p *Protocol) ProbeOpenAccess(ctx context.Context, ep proto.Endpoint, id *proto.Identity) (*proto.OpenAccess, error) {
	c, ack, err := handshake(ctx, nil, ep, knownVersion(id), nil)
	if err != nil {
		return nil, fmt.Errorf("mqtt anonymous connect to %s: %w", ep.Addr(), err)
	}
	defer c.conn.Close()
	if ack.code != rcAccepted {
		return nil, nil
	}
	defer c.disconnect()
	filters := []string{"#", "$SYS/#"}
	granted, refused := []string{}, []string{}
	seen := map[string]bool{}
	topics := []string{}
	addTopic := func(t string) bool {
		if !seen[t] && len(topics) < maxTopics {
			seen[t] = true
			topics = append(topics, proto.Printable([]byte(t)))
		}
		return len(topics) >= maxTopics
	}
	codes, early, err := c.subscribe(ctx, filters)
	for _, t := range early {
		addTopic(t)
	}
	if err == nil {
		for i, code := range codes {
			if code < subackRefusedMinimum {
				granted = append(granted, filters[i])
			} else {
				refused = append(refused, filters[i])
			}
		}
		if len(granted) > 0 {
			c.collect(ctx, min(collectWindow, ep.IOTimeout()), func(pub publish) bool { return addTopic(pub.topic) })
		}
	}
	oa := &proto.OpenAccess{
		What:  "anonymous MQTT connect",
		Proof: fmt.Sprintf("CONNACK accepted a CONNECT without credentials (MQTT %s)", c.v),
		Details: map[string]any{
			"mqtt_version": c.v.String(),
			"granted":      granted,
			"refused":      refused,
			"topics":       topics,
		},
	}
	if len(granted) > 0 {
		oa.What = "anonymous MQTT subscribe to " + strings.Join(granted, " and ")
		oa.Proof += " and SUBACK granted " + strings.Join(granted, ", ")
	}
	return oa, nil
}
