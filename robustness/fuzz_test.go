package robustness

import (
	"bufio"
	"bytes"
	"testing"
)

func FuzzReadPacket(f *testing.F) {
	f.Add(frame(0x31, append(appendString(nil, sysUptime), "1234 seconds"...)))
	f.Add(frame(0x32, append(append(appendString(nil, sysStarted), 0, 7), "1700000000"...)))
	f.Add([]byte{0x20, 2, 0, 0})
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Add([]byte{0x30, 0x80})
	f.Add([]byte{0x34, 3, 0, 9, 'a'})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReader(bytes.NewReader(in))
		for range 8 {
			typ, flags, body, err := readPacket(r, 256)
			if err != nil {
				return
			}
			if typ > 15 || flags > 15 || len(body) > 256 {
				t.Fatalf("packet out of range: type %d flags %d body %d", typ, flags, len(body))
			}
			topic, payload, ok := parsePublish(flags, body)
			if ok && len(topic)+len(payload) > len(body) {
				t.Fatalf("publish parts larger than the body")
			}
			if n, ok := leadingInt(payload); ok && n < 0 {
				t.Fatalf("negative uptime %d", n)
			}
		}
	})
}

func FuzzCoAPAnswers(f *testing.F) {
	f.Add([]byte{0x70, 0x00, 0x13, 0x37}, []byte{0x13, 0x37})
	f.Add([]byte{0x60, 0x45, 0x13, 0x37, 0xff}, []byte{0x13, 0x37})
	f.Add([]byte{0x70}, []byte{0x13})
	f.Fuzz(func(t *testing.T, msg, id []byte) {
		if coapAnswers(msg, id) && (len(msg) < 4 || !bytes.Equal(msg[2:4], id)) {
			t.Fatalf("answer accepted with a different message id")
		}
	})
}
