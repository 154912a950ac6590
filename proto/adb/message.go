package adb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Commands (little-endian ASCII of the names).
const (
	cmdCNXN = 0x4e584e43
	cmdAUTH = 0x48545541
	cmdOPEN = 0x4e45504f
	cmdOKAY = 0x59414b4f
	cmdCLSE = 0x45534c43
	cmdWRTE = 0x45545257
	cmdSTLS = 0x534c5453
)

// Protocol constants: version 0x01000001 lets peers skip payload
// checksums; maxData is what we announce.
const (
	adbVersion = 0x01000001
	maxData    = 256 << 10
	headerLen  = 24
	// maxPayload caps what we accept from a peer in one message.
	maxPayload = 64 << 10
)

// AUTH subtypes (arg0).
const authToken = 1

var errMalformed = errors.New("malformed ADB message")

// message is one ADB message.
type message struct {
	cmd     uint32
	arg0    uint32
	arg1    uint32
	payload []byte
}

func cmdName(c uint32) string {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], c)
	for _, x := range b {
		if x < 'A' || x > 'Z' {
			return fmt.Sprintf("0x%08x", c)
		}
	}
	return string(b[:])
}

func checksum(b []byte) uint32 {
	var s uint32
	for _, c := range b {
		s += uint32(c)
	}
	return s
}

// encode serialises m with its checksum and magic.
func (m message) encode() []byte {
	b := make([]byte, headerLen, headerLen+len(m.payload))
	binary.LittleEndian.PutUint32(b[0:], m.cmd)
	binary.LittleEndian.PutUint32(b[4:], m.arg0)
	binary.LittleEndian.PutUint32(b[8:], m.arg1)
	binary.LittleEndian.PutUint32(b[12:], uint32(len(m.payload))) //nolint:gosec // our payloads are small
	binary.LittleEndian.PutUint32(b[16:], checksum(m.payload))
	binary.LittleEndian.PutUint32(b[20:], m.cmd^0xffffffff)
	return append(b, m.payload...)
}

// knownCommand reports whether c is an ADB command.
func knownCommand(c uint32) bool {
	switch c {
	case cmdCNXN, cmdAUTH, cmdOPEN, cmdOKAY, cmdCLSE, cmdWRTE, cmdSTLS:
		return true
	}
	return false
}

// parseHeader checks a 24-byte header and returns the message (without
// payload) and the payload length.
func parseHeader(h []byte) (message, int, error) {
	if len(h) < headerLen {
		return message{}, 0, fmt.Errorf("%w: short header", errMalformed)
	}
	m := message{
		cmd:  binary.LittleEndian.Uint32(h[0:]),
		arg0: binary.LittleEndian.Uint32(h[4:]),
		arg1: binary.LittleEndian.Uint32(h[8:]),
	}
	n := binary.LittleEndian.Uint32(h[12:])
	magic := binary.LittleEndian.Uint32(h[20:])
	if !knownCommand(m.cmd) {
		return message{}, 0, fmt.Errorf("%w: unknown command %s", errMalformed, cmdName(m.cmd))
	}
	if magic != m.cmd^0xffffffff {
		return message{}, 0, fmt.Errorf("%w: bad magic", errMalformed)
	}
	if n > maxPayload {
		return message{}, 0, fmt.Errorf("%w: payload of %d bytes", errMalformed, n)
	}
	return m, int(n), nil
}

// readMessage reads one message; the payload checksum is verified when the
// peer sent one (peers at version 0x01000001 may send 0).
func readMessage(r io.Reader) (message, error) {
	h := make([]byte, headerLen)
	if _, err := io.ReadFull(r, h); err != nil {
		return message{}, err
	}
	m, n, err := parseHeader(h)
	if err != nil {
		return message{}, err
	}
	m.payload = make([]byte, n)
	if _, err := io.ReadFull(r, m.payload); err != nil {
		return message{}, err
	}
	if sum := binary.LittleEndian.Uint32(h[16:]); sum != 0 && sum != checksum(m.payload) {
		return message{}, fmt.Errorf("%w: checksum mismatch", errMalformed)
	}
	return m, nil
}

// banner is a parsed CNXN payload: "device::ro.product.name=x;ro.product.model=y;features=a,b".
type banner struct {
	state  string // device, recovery, bootloader, sideload, host, ...
	serial string
	props  map[string]string
}

// parseBanner parses a connection banner; ok is false when it does not have
// the "state:serial:props" shape.
func parseBanner(b []byte) (banner, bool) {
	s := strings.TrimRight(string(b), "\x00")
	parts := strings.SplitN(s, ":", 3)
	if len(parts) < 3 || parts[0] == "" || len(parts[0]) > 32 {
		return banner{}, false
	}
	for _, c := range parts[0] {
		if c < 'a' || c > 'z' {
			return banner{}, false
		}
	}
	bn := banner{state: parts[0], serial: parts[1], props: map[string]string{}}
	for _, kv := range strings.Split(parts[2], ";") {
		k, v, ok := strings.Cut(kv, "=")
		if ok && k != "" && len(bn.props) < 32 {
			bn.props[k] = v
		}
	}
	return bn, true
}
