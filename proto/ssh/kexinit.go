package ssh

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
	xssh "golang.org/x/crypto/ssh"

	"github.com/iotcop/iotcop/proto"
)

// SSH message numbers this file reads (RFC 4253 section 12).
const (
	msgDisconnect = 1
	msgIgnore     = 2
	msgDebug      = 4
	msgKexInit    = 20
)

// Bounds for reading a server's hello. RFC 4253 section 6.1 requires
// implementations to handle packets of 35000 bytes; a KEXINIT is a few
// hundred bytes to two kilobytes in practice.
const (
	maxPacket      = 35000
	maxNameList    = 8 << 10 // one name-list's bytes
	maxSkipPackets = 4       // IGNORE/DEBUG packets tolerated before KEXINIT
)

// ErrNotKexInit is returned when a server's first binary packet cannot be
// read as an SSH_MSG_KEXINIT.
var ErrNotKexInit = errors.New("no SSH_MSG_KEXINIT")

// KexInit is an SSH_MSG_KEXINIT (RFC 4253 section 7.1): the algorithms a
// peer offers, each list in its order of preference.
type KexInit struct {
	Cookie          [16]byte
	KexAlgos        []string
	HostKeyAlgos    []string
	CiphersC2S      []string // client to server
	CiphersS2C      []string
	MACsC2S         []string
	MACsS2C         []string
	CompressionC2S  []string
	CompressionS2C  []string
	LanguagesC2S    []string
	LanguagesS2C    []string
	FirstKexFollows bool
}

// Ciphers returns the ciphers offered in either direction, client to server
// order first, without duplicates.
func (k *KexInit) Ciphers() []string { return union(k.CiphersC2S, k.CiphersS2C) }

// MACs returns the MACs offered in either direction, without duplicates.
func (k *KexInit) MACs() []string { return union(k.MACsC2S, k.MACsS2C) }

// Compressions returns the compression methods offered in either direction.
func (k *KexInit) Compressions() []string { return union(k.CompressionC2S, k.CompressionS2C) }

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// lists returns pointers to the ten name-lists in wire order.
func (k *KexInit) lists() []*[]string {
	return []*[]string{
		&k.KexAlgos, &k.HostKeyAlgos, &k.CiphersC2S, &k.CiphersS2C,
		&k.MACsC2S, &k.MACsS2C, &k.CompressionC2S, &k.CompressionS2C,
		&k.LanguagesC2S, &k.LanguagesS2C,
	}
}

// ParseKexInit parses the payload of an SSH_MSG_KEXINIT packet, starting
// with the message number. Every name must be printable ASCII without
// commas or spaces (RFC 4251 section 5); trailing bytes are an error.
func ParseKexInit(payload []byte) (*KexInit, error) {
	s := cryptobyte.String(payload)
	var msg uint8
	if !s.ReadUint8(&msg) {
		return nil, fmt.Errorf("%w: empty payload", ErrNotKexInit)
	}
	if msg != msgKexInit {
		return nil, fmt.Errorf("%w: message %d", ErrNotKexInit, msg)
	}
	k := &KexInit{}
	if !s.CopyBytes(k.Cookie[:]) {
		return nil, fmt.Errorf("%w: truncated cookie", ErrNotKexInit)
	}
	for i, list := range k.lists() {
		var raw []byte
		if !readString(&s, &raw) {
			return nil, fmt.Errorf("%w: name-list %d truncated", ErrNotKexInit, i+1)
		}
		if len(raw) > maxNameList {
			return nil, fmt.Errorf("%w: name-list %d is %d bytes (limit %d)", ErrNotKexInit, i+1, len(raw), maxNameList)
		}
		names, err := parseNameList(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: name-list %d: %v", ErrNotKexInit, i+1, err)
		}
		*list = names
	}
	var follows uint8
	var reserved uint32
	if !s.ReadUint8(&follows) || !s.ReadUint32(&reserved) {
		return nil, fmt.Errorf("%w: truncated after the name-lists", ErrNotKexInit)
	}
	if !s.Empty() {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrNotKexInit, len(s))
	}
	k.FirstKexFollows = follows != 0
	return k, nil
}

// readString reads an SSH string: a uint32 length and that many bytes.
func readString(s *cryptobyte.String, out *[]byte) bool {
	var n uint32
	return s.ReadUint32(&n) && s.ReadBytes(out, int(n))
}

// parseNameList splits a comma-separated name-list. An empty list is
// allowed (languages usually are); an empty name is not.
func parseNameList(b []byte) ([]string, error) {
	if len(b) == 0 {
		return []string{}, nil
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return nil, fmt.Errorf("byte 0x%02x in a name", c)
		}
	}
	names := strings.Split(string(b), ",")
	if slices.Contains(names, "") {
		return nil, errors.New("empty name")
	}
	return names, nil
}

// marshal encodes k as a KEXINIT payload.
func (k *KexInit) marshal() []byte {
	var b cryptobyte.Builder
	b.AddUint8(msgKexInit)
	b.AddBytes(k.Cookie[:])
	for _, list := range k.lists() {
		b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddBytes([]byte(strings.Join(*list, ",")))
		})
	}
	var follows uint8
	if k.FirstKexFollows {
		follows = 1
	}
	b.AddUint8(follows)
	b.AddUint32(0)
	return b.BytesOrPanic()
}

// readPacket reads one unencrypted binary packet (RFC 4253 section 6):
// uint32 packet_length, byte padding_length, payload, padding. Before the
// first key exchange there is no MAC.
func readPacket(r io.Reader) ([]byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("reading packet header: %w", err)
	}
	length := uint32(hdr[0])<<24 | uint32(hdr[1])<<16 | uint32(hdr[2])<<8 | uint32(hdr[3])
	padding := uint32(hdr[4])
	if length > maxPacket {
		return nil, fmt.Errorf("packet length %d exceeds %d (not an SSH-2 binary packet?)", length, maxPacket)
	}
	if length < 2 || padding >= length {
		return nil, fmt.Errorf("packet length %d with padding length %d is malformed", length, padding)
	}
	body := make([]byte, length-1)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("reading %d-byte packet: %w", length, err)
	}
	return body[:length-1-padding], nil
}

// packet frames payload as an unencrypted binary packet with random padding
// to a multiple of 8 bytes (at least 4 bytes of it).
func packet(payload []byte) []byte {
	pad := 8 - (5+len(payload))%8
	if pad < 4 {
		pad += 8
	}
	out := make([]byte, 5, 5+len(payload)+pad)
	n := uint32(1 + len(payload) + pad)
	out[0], out[1], out[2], out[3], out[4] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n), byte(pad)
	out = append(out, payload...)
	padding := make([]byte, pad)
	_, _ = rand.Read(padding)
	return append(out, padding...)
}

// clientKexInit is the KEXINIT we send so that servers that wait for the
// client's before sending their own still answer. It offers everything
// x/crypto implements; we never continue the key exchange.
func clientKexInit() *KexInit {
	sup, ins := xssh.SupportedAlgorithms(), xssh.InsecureAlgorithms()
	k := &KexInit{
		KexAlgos:       slices.Concat(sup.KeyExchanges, ins.KeyExchanges),
		HostKeyAlgos:   slices.Concat(sup.HostKeys, ins.HostKeys),
		CiphersC2S:     slices.Concat(sup.Ciphers, ins.Ciphers),
		MACsC2S:        slices.Concat(sup.MACs, ins.MACs),
		CompressionC2S: []string{"none"},
		LanguagesC2S:   []string{},
	}
	k.CiphersS2C, k.MACsS2C, k.CompressionS2C, k.LanguagesS2C = k.CiphersC2S, k.MACsC2S, k.CompressionC2S, k.LanguagesC2S
	_, _ = rand.Read(k.Cookie[:])
	return k
}

// ServerOffer is what an SSH server says before any key is agreed: its
// identification string and its KEXINIT, the algorithms it offers.
type ServerOffer struct {
	ID Identification
	// KexInit is nil when the server speaks only SSH-1 (identification
	// "SSH-1.x" other than "SSH-1.99"), which has no KEXINIT.
	KexInit *KexInit
}

// SSH1Only reports whether the server speaks protocol 1 and not 2.
func (o *ServerOffer) SSH1Only() bool { return o.ID.SSH1() && o.ID.ProtoVersion != "1.99" }

// ReadServerOffer connects to ep, exchanges identification strings, sends a
// KEXINIT and reads the server's SSH_MSG_KEXINIT, then hangs up. No key
// exchange happens, so the server never logs an authentication attempt.
//
// The whole exchange is bounded by twice the endpoint's I/O timeout and by
// byte caps (32 pre-identification lines of at most 1024 bytes, packets of
// at most 35000 bytes), so endless, slow or garbage senders end in an error.
func ReadServerOffer(ctx context.Context, ep proto.Endpoint) (*ServerOffer, error) {
	conn, err := ep.Connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading SSH KEXINIT from %s: %w", ep.Addr(), err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(2 * ep.IOTimeout()))
	offer, err := exchangeHello(conn)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("reading SSH KEXINIT from %s: %w", ep.Addr(), err)
	}
	return offer, nil
}

// exchangeHello runs the client side of the hello on conn.
func exchangeHello(conn net.Conn) (*ServerOffer, error) {
	if _, err := conn.Write([]byte(clientVersion + "\r\n")); err != nil {
		return nil, fmt.Errorf("sending identification: %w", err)
	}
	r := bufio.NewReaderSize(conn, 4096)
	id, err := readIdentification(r)
	if err != nil {
		return nil, err
	}
	offer := &ServerOffer{ID: id}
	if offer.SSH1Only() {
		return offer, nil
	}
	if _, err := conn.Write(packet(clientKexInit().marshal())); err != nil {
		return nil, fmt.Errorf("sending KEXINIT: %w", err)
	}
	offer.KexInit, err = readKexInit(r)
	if err != nil {
		return nil, err
	}
	return offer, nil
}

// readIdentification reads lines until the "SSH-" identification (RFC 4253
// section 4.2), at most maxIDLines of at most maxIDLineLen bytes.
func readIdentification(r *bufio.Reader) (Identification, error) {
	for range maxIDLines {
		line, err := readLine(r)
		if err != nil {
			return Identification{}, err
		}
		if !bytes.HasPrefix(line, []byte("SSH-")) {
			continue
		}
		id, err := parseIDLine(string(line))
		if err != nil {
			return Identification{}, fmt.Errorf("malformed identification %q: %w", proto.Printable(line), err)
		}
		return id, nil
	}
	return Identification{}, fmt.Errorf("%w in the first %d lines", ErrNoIdentification, maxIDLines)
}

// readLine reads one line of at most maxIDLineLen bytes, without CR LF.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxIDLineLen+2 {
			return nil, fmt.Errorf("identification line longer than %d bytes", maxIDLineLen)
		}
		switch {
		case err == nil:
			return bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r")), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return nil, fmt.Errorf("connection closed inside identification line %q", proto.Printable(line))
		default:
			return nil, fmt.Errorf("reading identification: %w", err)
		}
	}
}

// readKexInit reads packets until the KEXINIT, skipping a few IGNORE and
// DEBUG messages; a DISCONNECT becomes an error carrying its reason.
func readKexInit(r io.Reader) (*KexInit, error) {
	for range maxSkipPackets + 1 {
		payload, err := readPacket(r)
		if err != nil {
			return nil, err
		}
		if len(payload) == 0 {
			return nil, fmt.Errorf("%w: empty packet", ErrNotKexInit)
		}
		switch payload[0] {
		case msgKexInit:
			return ParseKexInit(payload)
		case msgIgnore, msgDebug:
			continue
		case msgDisconnect:
			return nil, fmt.Errorf("server disconnected: %s", disconnectReason(payload))
		default:
			return nil, fmt.Errorf("%w: got message %d first", ErrNotKexInit, payload[0])
		}
	}
	return nil, fmt.Errorf("%w within %d packets", ErrNotKexInit, maxSkipPackets+1)
}

// disconnectReason renders an SSH_MSG_DISCONNECT's reason code and text.
func disconnectReason(payload []byte) string {
	s := cryptobyte.String(payload[1:])
	var code uint32
	var text []byte
	if !s.ReadUint32(&code) || !readString(&s, &text) {
		return "malformed DISCONNECT"
	}
	return fmt.Sprintf("reason %d %q", code, proto.Printable(text))
}
