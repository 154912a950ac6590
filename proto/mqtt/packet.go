package mqtt

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// version is the MQTT protocol level sent in CONNECT.
type version byte

// Protocol levels: 3 is MQTT 3.1 ("MQIsdp"), 4 is 3.1.1, 5 is MQTT 5.
const (
	v31  version = 3
	v311 version = 4
	v5   version = 5
)

// String returns the version as reported in Identity.Info["mqtt_version"].
func (v version) String() string {
	switch v {
	case v31:
		return "3.1"
	case v311:
		return "3.1.1"
	case v5:
		return "5"
	}
	return fmt.Sprintf("level-%d", byte(v))
}

// parseVersion reverses String; ok is false for anything else.
func parseVersion(s string) (version, bool) {
	switch s {
	case "3.1":
		return v31, true
	case "3.1.1":
		return v311, true
	case "5":
		return v5, true
	}
	return 0, false
}

// Control packet types (high nibble of the first byte).
const (
	typeConnect    = 1
	typeConnack    = 2
	typePublish    = 3
	typePuback     = 4
	typeSubscribe  = 8
	typeSuback     = 9
	typeDisconnect = 14
	typeAuth       = 15
)

// Byte caps for what we keep from and skip on the wire. A packet larger
// than maxSkip is treated as hostile and ends the exchange.
const (
	maxKeep = 64 << 10
	maxSkip = 1 << 20
)

var errMalformed = errors.New("malformed MQTT packet")

// packet is one control packet read from the wire. body holds at most
// maxKeep bytes of the variable header and payload; truncated says more was
// sent (and skipped).
type packet struct {
	typ       byte
	flags     byte
	body      []byte
	truncated bool
}

// credentials for CONNECT; nil means an anonymous CONNECT.
type credentials struct {
	username string
	password string
}

// appendString appends an MQTT UTF-8 string (2-byte length prefix).
func appendString(b []byte, s string) []byte {
	if len(s) > 0xffff {
		s = s[:0xffff]
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s))) //nolint:gosec // capped above
	return append(b, s...)
}

// appendVarint appends an MQTT variable byte integer (at most 4 bytes).
func appendVarint(b []byte, n int) []byte {
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

// frame prefixes body with the fixed header.
func frame(first byte, body []byte) []byte {
	out := appendVarint([]byte{first}, len(body))
	return append(out, body...)
}

// encodeConnect builds a CONNECT with a clean session and keep-alive 30s.
func encodeConnect(v version, clientID string, cred *credentials) []byte {
	name := "MQTT"
	if v == v31 {
		name = "MQIsdp"
	}
	b := appendString(nil, name)
	b = append(b, byte(v))
	flags := byte(0x02) // clean session / clean start
	if cred != nil {
		flags |= 0x80 | 0x40 // username and password present
	}
	b = append(b, flags, 0, 30)
	if v == v5 {
		b = appendVarint(b, 0) // no properties
	}
	b = appendString(b, clientID)
	if cred != nil {
		b = appendString(b, cred.username)
		b = appendString(b, cred.password)
	}
	return frame(typeConnect<<4, b)
}

// encodeSubscribe builds a SUBSCRIBE for filters at QoS 0.
func encodeSubscribe(v version, id uint16, filters []string) []byte {
	b := binary.BigEndian.AppendUint16(nil, id)
	if v == v5 {
		b = appendVarint(b, 0)
	}
	for _, f := range filters {
		b = appendString(b, f)
		b = append(b, 0) // QoS 0 (v5: subscription options with QoS 0)
	}
	return frame(typeSubscribe<<4|0x02, b)
}

// encodeDisconnect builds a normal DISCONNECT.
func encodeDisconnect() []byte { return []byte{typeDisconnect << 4, 0} }

// encodePuback acknowledges a QoS 1 PUBLISH (v3 form; valid in v5 too).
func encodePuback(id uint16) []byte {
	return frame(typePuback<<4, binary.BigEndian.AppendUint16(nil, id))
}

// readPacket reads one control packet, keeping at most maxKeep bytes of it.
func readPacket(r *bufio.Reader) (packet, error) {
	first, err := r.ReadByte()
	if err != nil {
		return packet{}, err
	}
	n := 0
	for i := 0; ; i++ {
		if i == 4 {
			return packet{}, fmt.Errorf("%w: remaining length longer than 4 bytes", errMalformed)
		}
		d, err := r.ReadByte()
		if err != nil {
			return packet{}, err
		}
		n |= int(d&0x7f) << (7 * i)
		if d&0x80 == 0 {
			break
		}
	}
	if n > maxSkip {
		return packet{}, fmt.Errorf("%w: packet of %d bytes exceeds the %d byte cap", errMalformed, n, maxSkip)
	}
	p := packet{typ: first >> 4, flags: first & 0x0f}
	keep := min(n, maxKeep)
	p.body = make([]byte, keep)
	if _, err := io.ReadFull(r, p.body); err != nil {
		return packet{}, err
	}
	if n > keep {
		p.truncated = true
		if _, err := r.Discard(n - keep); err != nil {
			return packet{}, err
		}
	}
	return p, nil
}

// cursor walks a packet body.
type cursor struct {
	b   []byte
	err error
}

func (c *cursor) fail(what string) {
	if c.err == nil {
		c.err = fmt.Errorf("%w: %s", errMalformed, what)
	}
}

func (c *cursor) take(n int, what string) []byte {
	if c.err != nil {
		return nil
	}
	if n < 0 || n > len(c.b) {
		c.fail("short " + what)
		return nil
	}
	out := c.b[:n]
	c.b = c.b[n:]
	return out
}

func (c *cursor) byte(what string) byte {
	b := c.take(1, what)
	if b == nil {
		return 0
	}
	return b[0]
}

func (c *cursor) uint16(what string) uint16 {
	b := c.take(2, what)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

func (c *cursor) varint(what string) int {
	n := 0
	for i := range 4 {
		d := c.byte(what)
		if c.err != nil {
			return 0
		}
		n |= int(d&0x7f) << (7 * i)
		if d&0x80 == 0 {
			return n
		}
	}
	c.fail(what + " longer than 4 bytes")
	return 0
}

func (c *cursor) string(what string) string {
	n := int(c.uint16(what + " length"))
	b := c.take(n, what)
	if c.err != nil {
		return ""
	}
	if !utf8.Valid(b) {
		c.fail(what + " is not UTF-8")
		return ""
	}
	return string(b)
}

// properties reads an MQTT 5 property list, checking each property's type,
// and returns the reason string (0x1F) if present.
func (c *cursor) properties() (reason string) {
	n := c.varint("properties length")
	raw := c.take(n, "properties")
	if c.err != nil {
		return ""
	}
	pc := &cursor{b: raw}
	for len(pc.b) > 0 && pc.err == nil {
		id := pc.varint("property id")
		switch id {
		case 0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A: // byte
			pc.take(1, "byte property")
		case 0x13, 0x21, 0x22, 0x23: // two byte integer
			pc.take(2, "two byte property")
		case 0x02, 0x11, 0x18, 0x27: // four byte integer
			pc.take(4, "four byte property")
		case 0x0B: // variable byte integer
			pc.varint("varint property")
		case 0x03, 0x08, 0x12, 0x15, 0x1A, 0x1C, 0x1F: // UTF-8 string
			s := pc.string("string property")
			if id == 0x1F {
				reason = s
			}
		case 0x09, 0x16: // binary data
			pc.take(int(pc.uint16("binary property length")), "binary property")
		case 0x26: // user property: string pair
			pc.string("user property key")
			pc.string("user property value")
		default:
			pc.fail(fmt.Sprintf("unknown property 0x%02x", id))
		}
	}
	if pc.err != nil {
		c.err = pc.err
	}
	return reason
}

// connack is a decoded CONNACK.
type connack struct {
	sessionPresent bool
	code           byte
	// v5 is set when the CONNACK had the MQTT 5 layout (properties).
	v5     bool
	reason string
}

// decodeConnack decodes a CONNACK body. A 3.1/3.1.1 CONNACK has exactly two
// bytes; anything longer is read with the MQTT 5 layout, which is what a
// v5-only broker answers an older CONNECT with (reason 0x84).
func decodeConnack(body []byte) (connack, error) {
	c := &cursor{b: body}
	flags := c.byte("connack flags")
	code := c.byte("connack code")
	if c.err != nil {
		return connack{}, c.err
	}
	if flags&0xfe != 0 {
		return connack{}, fmt.Errorf("%w: reserved connack flags 0x%02x", errMalformed, flags)
	}
	ack := connack{sessionPresent: flags&1 == 1, code: code}
	if len(c.b) > 0 {
		ack.v5 = true
		ack.reason = c.properties()
		if c.err == nil && len(c.b) != 0 {
			c.fail("trailing bytes after connack properties")
		}
	} else if code > 5 && code < 0x80 {
		return connack{}, fmt.Errorf("%w: connack code 0x%02x", errMalformed, code)
	}
	if c.err != nil {
		return connack{}, c.err
	}
	return ack, nil
}

// decodeSuback decodes a SUBACK body: the packet id and one return code per
// filter (0-2 granted QoS, 0x80 and above refused).
func decodeSuback(v version, body []byte) (uint16, []byte, error) {
	c := &cursor{b: body}
	id := c.uint16("suback packet id")
	if v == v5 {
		c.properties()
	}
	if c.err != nil {
		return 0, nil, c.err
	}
	if len(c.b) == 0 {
		return 0, nil, fmt.Errorf("%w: suback without return codes", errMalformed)
	}
	return id, c.b, nil
}

// publish is a decoded PUBLISH; payload is capped by maxKeep.
type publish struct {
	topic    string
	qos      byte
	packetID uint16
	payload  []byte
}

// decodePublish decodes a PUBLISH body given the fixed-header flags.
func decodePublish(v version, flags byte, body []byte) (publish, error) {
	qos := (flags >> 1) & 3
	if qos == 3 {
		return publish{}, fmt.Errorf("%w: publish with QoS 3", errMalformed)
	}
	c := &cursor{b: body}
	p := publish{qos: qos}
	p.topic = c.string("topic")
	if qos > 0 {
		p.packetID = c.uint16("publish packet id")
	}
	if v == v5 {
		c.properties()
	}
	if c.err != nil {
		return publish{}, c.err
	}
	p.payload = c.b
	return p, nil
}
