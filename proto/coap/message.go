package coap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Message types (RFC 7252 section 3).
const (
	typeCON = 0
	typeNON = 1
	typeACK = 2
	typeRST = 3
)

// Option numbers used here.
const (
	optURIPath       = 11
	optContentFormat = 12
	optBlock2        = 23
)

// codeGET is request code 0.01; codeContent is response 2.05.
const (
	codeGET     = 0x01
	codeContent = 0x45
)

var errMalformed = errors.New("malformed CoAP message")

// option is one CoAP option.
type option struct {
	num   int
	value []byte
}

// message is a CoAP message over UDP.
type message struct {
	typ     byte
	code    byte
	id      uint16
	token   []byte
	options []option
	payload []byte
}

// codeString renders a code as "c.dd" ("2.05").
func codeString(code byte) string { return fmt.Sprintf("%d.%02d", code>>5, code&0x1f) }

// encode serialises m; options must be sorted by number.
func (m message) encode() []byte {
	b := []byte{1<<6 | m.typ<<4 | byte(len(m.token)), m.code}
	b = binary.BigEndian.AppendUint16(b, m.id)
	b = append(b, m.token...)
	prev := 0
	for _, o := range m.options {
		delta := o.num - prev
		prev = o.num
		dn, dext := nibble(delta)
		ln, lext := nibble(len(o.value))
		b = append(b, dn<<4|ln)
		b = append(b, dext...)
		b = append(b, lext...)
		b = append(b, o.value...)
	}
	if len(m.payload) > 0 {
		b = append(b, 0xff)
		b = append(b, m.payload...)
	}
	return b
}

// nibble encodes an option delta or length as its 4-bit form and extension.
func nibble(n int) (byte, []byte) {
	switch {
	case n < 13:
		return byte(n), nil
	case n < 269:
		return 13, []byte{byte(n - 13)}
	default:
		return 14, binary.BigEndian.AppendUint16(nil, uint16(n-269)) //nolint:gosec // option values here are short
	}
}

// decode parses one datagram as a CoAP message.
func decode(b []byte) (message, error) {
	if len(b) < 4 {
		return message{}, fmt.Errorf("%w: %d bytes", errMalformed, len(b))
	}
	if b[0]>>6 != 1 {
		return message{}, fmt.Errorf("%w: version %d", errMalformed, b[0]>>6)
	}
	m := message{typ: b[0] >> 4 & 3, code: b[1], id: binary.BigEndian.Uint16(b[2:4])}
	tkl := int(b[0] & 0x0f)
	if tkl > 8 || len(b) < 4+tkl {
		return message{}, fmt.Errorf("%w: token length %d", errMalformed, tkl)
	}
	m.token = b[4 : 4+tkl]
	rest := b[4+tkl:]
	if m.code == 0 {
		// Empty message: nothing may follow the header (RFC 7252 4.1).
		if tkl != 0 || len(rest) != 0 {
			return message{}, fmt.Errorf("%w: empty message with content", errMalformed)
		}
		return m, nil
	}
	num := 0
	for len(rest) > 0 {
		if rest[0] == 0xff {
			if len(rest) == 1 {
				return message{}, fmt.Errorf("%w: payload marker without payload", errMalformed)
			}
			m.payload = rest[1:]
			return m, nil
		}
		d, l := int(rest[0]>>4), int(rest[0]&0x0f)
		rest = rest[1:]
		var err error
		if d, rest, err = extend(d, rest); err != nil {
			return message{}, err
		}
		if l, rest, err = extend(l, rest); err != nil {
			return message{}, err
		}
		if l > len(rest) {
			return message{}, fmt.Errorf("%w: option length %d beyond message", errMalformed, l)
		}
		num += d
		m.options = append(m.options, option{num: num, value: rest[:l]})
		rest = rest[l:]
	}
	return m, nil
}

// extend reads an extended option delta or length.
func extend(n int, b []byte) (int, []byte, error) {
	switch n {
	case 13:
		if len(b) < 1 {
			return 0, nil, fmt.Errorf("%w: short option extension", errMalformed)
		}
		return int(b[0]) + 13, b[1:], nil
	case 14:
		if len(b) < 2 {
			return 0, nil, fmt.Errorf("%w: short option extension", errMalformed)
		}
		return int(binary.BigEndian.Uint16(b)) + 269, b[2:], nil
	case 15:
		return 0, nil, fmt.Errorf("%w: reserved option nibble 15", errMalformed)
	}
	return n, b, nil
}

// uintOption returns an option's value as an unsigned integer.
func (m message) uintOption(num int) (uint32, bool) {
	for _, o := range m.options {
		if o.num == num && len(o.value) <= 4 {
			var v uint32
			for _, c := range o.value {
				v = v<<8 | uint32(c)
			}
			return v, true
		}
	}
	return 0, false
}

// block2 is a decoded Block2 option: block number, more flag, size.
type block2 struct {
	num  uint32
	more bool
	size int
}

func (m message) block2() (block2, bool) {
	v, ok := m.uintOption(optBlock2)
	if !ok {
		return block2{}, false
	}
	szx := v & 7
	if szx == 7 {
		return block2{}, false
	}
	return block2{num: v >> 4, more: v&8 != 0, size: 16 << szx}, true
}

// encodeUint encodes a uint option value in the fewest bytes.
func encodeUint(v uint32) []byte {
	var b []byte
	for v > 0 {
		b = append([]byte{byte(v)}, b...)
		v >>= 8
	}
	return b
}

// newGet builds a confirmable GET for path ("/a/b"), asking for block num
// of size 16<<szx when num > 0.
func newGet(id uint16, token []byte, path string, blockNum uint32, szx uint32) message {
	m := message{typ: typeCON, code: codeGET, id: id, token: token}
	for _, seg := range strings.Split(strings.Trim(path, "/"), "/") {
		if seg != "" {
			m.options = append(m.options, option{num: optURIPath, value: []byte(seg)})
		}
	}
	if blockNum > 0 {
		m.options = append(m.options, option{num: optBlock2, value: encodeUint(blockNum<<4 | szx)})
	}
	return m
}

// link is one entry of a CoRE link-format document (RFC 6690).
type link struct {
	target string
	attrs  map[string]string
}

// Bounds on what parseLinks keeps.
const (
	maxLinks     = 64
	maxTargetLen = 256
)

// parseLinks parses link-format text such as
// `</time>;rt="ticks";title="Clock";obs,</>;ct=0`, keeping at most maxLinks
// entries. Malformed entries are skipped.
func parseLinks(s string) []link {
	var out []link
	for len(s) > 0 && len(out) < maxLinks {
		s = strings.TrimLeft(s, " \t\r\n,")
		if !strings.HasPrefix(s, "<") {
			// Skip to the next entry.
			i := strings.IndexByte(s, ',')
			if i < 0 {
				break
			}
			s = s[i+1:]
			continue
		}
		end := strings.IndexByte(s, '>')
		if end < 0 {
			break
		}
		l := link{target: s[1:end], attrs: map[string]string{}}
		s = s[end+1:]
		// Attributes until an unquoted comma.
		for strings.HasPrefix(s, ";") {
			s = s[1:]
			i := 0
			for i < len(s) && s[i] != '=' && s[i] != ';' && s[i] != ',' {
				i++
			}
			name := strings.TrimSpace(s[:i])
			s = s[i:]
			value := ""
			if strings.HasPrefix(s, "=") {
				s = s[1:]
				if strings.HasPrefix(s, `"`) {
					q := strings.IndexByte(s[1:], '"')
					if q < 0 {
						value, s = s[1:], ""
					} else {
						value, s = s[1:1+q], s[2+q:]
					}
				} else {
					j := 0
					for j < len(s) && s[j] != ';' && s[j] != ',' {
						j++
					}
					value, s = s[:j], s[j:]
				}
			}
			if name != "" && len(l.attrs) < 16 {
				l.attrs[name] = value
			}
		}
		if l.target != "" && len(l.target) <= maxTargetLen {
			out = append(out, l)
		}
		if i := strings.IndexByte(s, ','); i >= 0 {
			s = s[i+1:]
		} else {
			break
		}
	}
	return out
}
