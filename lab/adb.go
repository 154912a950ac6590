package lab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// ADB transport commands (system/core/adb/protocol.txt).
const (
	adbCNXN = 0x4e584e43
	adbAUTH = 0x48545541
	adbOPEN = 0x4e45504f
	adbOKAY = 0x59414b4f
	adbCLSE = 0x45534c43
	adbWRTE = 0x45545257

	adbVersion    = 0x01000001
	adbMaxData    = 256 * 1024
	adbHeaderSize = 24
	// adbMaxPayload bounds what the lab reads in one message.
	adbMaxPayload = 64 * 1024
	adbMaxStreams = 8
)

// adbMessage is one ADB message.
type adbMessage struct {
	command, arg0, arg1 uint32
	data                []byte
}

// parseADBHeader checks a 24-byte header and returns the message (without
// data) and the announced data length.
func parseADBHeader(h []byte) (adbMessage, uint32, error) {
	if len(h) != adbHeaderSize {
		return adbMessage{}, 0, errors.New("adb: short header")
	}
	le := binary.LittleEndian
	m := adbMessage{command: le.Uint32(h[0:]), arg0: le.Uint32(h[4:]), arg1: le.Uint32(h[8:])}
	n := le.Uint32(h[12:])
	if le.Uint32(h[20:]) != m.command^0xffffffff {
		return adbMessage{}, 0, fmt.Errorf("adb: bad magic for command %#x", m.command)
	}
	switch m.command {
	case adbCNXN, adbAUTH, adbOPEN, adbOKAY, adbCLSE, adbWRTE, 0x534c5453: // STLS
	default:
		return adbMessage{}, 0, fmt.Errorf("adb: unknown command %#x", m.command)
	}
	if n > adbMaxPayload {
		return adbMessage{}, 0, fmt.Errorf("adb: payload of %d bytes too large", n)
	}
	return m, n, nil
}

// readADBMessage reads one message with a bounded payload.
func readADBMessage(r io.Reader) (adbMessage, error) {
	var h [adbHeaderSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return adbMessage{}, err
	}
	m, n, err := parseADBHeader(h[:])
	if err != nil {
		return adbMessage{}, err
	}
	if n > 0 {
		m.data = make([]byte, n)
		if _, err := io.ReadFull(r, m.data); err != nil {
			return adbMessage{}, err
		}
	}
	return m, nil
}

// encodeADB builds a message; the checksum is the byte sum older
// clients verify.
func encodeADB(command, arg0, arg1 uint32, data []byte) []byte {
	b := make([]byte, adbHeaderSize+len(data))
	le := binary.LittleEndian
	var sum uint32
	for _, c := range data {
		sum += uint32(c)
	}
	le.PutUint32(b[0:], command)
	le.PutUint32(b[4:], arg0)
	le.PutUint32(b[8:], arg1)
	le.PutUint32(b[12:], uint32(len(data)))
	le.PutUint32(b[16:], sum)
	le.PutUint32(b[20:], command^0xffffffff)
	copy(b[adbHeaderSize:], data)
	return b
}

// adbStream is an open interactive shell stream.
type adbStream struct {
	remote uint32 // the client's id
	sh     *shell
	line   []byte
}

// adbHandler serves one ADB connection: CNXN answered without AUTH (the
// flaw: "ADB debugging over network" left on), then shell: and exec:
// streams run by the shell interpreter.
func adbHandler(dev *device) func(context.Context, net.Conn) {
	banner := "device::ro.product.name=" + strings.ToLower(firstLetters(dev.model, 16)) +
		";ro.product.model=" + dev.model + ";ro.product.device=" + strings.ToLower(firstLetters(dev.model, 16)) +
		";ro.product.manufacturer=" + dev.vendor + ";features=cmd\x00"
	return func(_ context.Context, conn net.Conn) {
		send := func(cmd, a0, a1 uint32, data []byte) error {
			_, err := conn.Write(encodeADB(cmd, a0, a1, data))
			return err
		}
		connected := false
		maxData := uint32(4096)
		streams := map[uint32]*adbStream{} // by our id
		var nextID uint32 = 1
		for {
			m, err := readADBMessage(conn)
			if err != nil {
				return
			}
			if !connected && m.command != adbCNXN {
				continue
			}
			switch m.command {
			case adbCNXN:
				connected = true
				maxData = min(max(m.arg1, 256), adbMaxData)
				if send(adbCNXN, adbVersion, adbMaxData, []byte(banner)) != nil {
					return
				}
			case adbOPEN:
				service := strings.TrimRight(string(m.data), "\x00")
				if len(streams) >= adbMaxStreams {
					_ = send(adbCLSE, 0, m.arg0, nil)
					continue
				}
				cmd, isShell := strings.CutPrefix(service, "shell:")
				if !isShell {
					cmd, isShell = strings.CutPrefix(service, "exec:")
				}
				if !isShell {
					if send(adbCLSE, 0, m.arg0, nil) != nil {
						return
					}
					continue
				}
				id := nextID
				nextID++
				if send(adbOKAY, id, m.arg0, nil) != nil {
					return
				}
				sh := newShell(dev, "root")
				if cmd != "" {
					out, _ := sh.run(cmd)
					if adbWrite(send, id, m.arg0, out, maxData) != nil || send(adbCLSE, id, m.arg0, nil) != nil {
						return
					}
					continue
				}
				streams[id] = &adbStream{remote: m.arg0, sh: sh}
				if adbWrite(send, id, m.arg0, sh.prompt(), maxData) != nil {
					return
				}
			case adbWRTE:
				st, ok := streams[m.arg1]
				if !ok {
					continue
				}
				if send(adbOKAY, m.arg1, st.remote, nil) != nil {
					return
				}
				out, exit := st.feed(m.data)
				if out != "" && adbWrite(send, m.arg1, st.remote, out, maxData) != nil {
					return
				}
				if exit {
					delete(streams, m.arg1)
					if send(adbCLSE, m.arg1, st.remote, nil) != nil {
						return
					}
				}
			case adbCLSE:
				if st, ok := streams[m.arg1]; ok {
					delete(streams, m.arg1)
					if send(adbCLSE, m.arg1, st.remote, nil) != nil {
						return
					}
				}
			}
		}
	}
}

// adbWrite sends text as WRTE messages of at most maxData bytes.
func adbWrite(send func(cmd, a0, a1 uint32, data []byte) error, local, remote uint32, text string, maxData uint32) error {
	for len(text) > 0 {
		n := min(len(text), int(maxData))
		if err := send(adbWRTE, local, remote, []byte(text[:n])); err != nil {
			return err
		}
		text = text[n:]
	}
	return nil
}

// feed takes typed bytes of an interactive shell (echoed, as a pty does)
// and returns the output and whether the shell exited.
func (st *adbStream) feed(data []byte) (string, bool) {
	var out strings.Builder
	for _, c := range data {
		switch c {
		case '\r', '\n':
			out.WriteString("\r\n")
			res, exit := st.sh.run(string(st.line))
			st.line = st.line[:0]
			out.WriteString(strings.ReplaceAll(res, "\n", "\r\n"))
			if exit {
				return out.String(), true
			}
			out.WriteString(st.sh.prompt())
		default:
			if len(st.line) < maxLine {
				st.line = append(st.line, c)
				out.WriteByte(c)
			}
		}
	}
	return out.String(), false
}
