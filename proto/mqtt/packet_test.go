package mqtt

import (
	"bufio"
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEncodeConnect(t *testing.T) {
	tests := []struct {
		name string
		v    version
		cred *credentials
		want []byte
	}{
		{"3.1.1 anonymous", v311, nil, []byte{0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 30, 0, 2, 'i', 'd'}},
		{"5 anonymous", v5, nil, []byte{0x10, 15, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 30, 0, 0, 2, 'i', 'd'}},
		{"3.1 with credentials", v31, &credentials{"u", "p"}, []byte{0x10, 22, 0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 3, 0xc2, 0, 30, 0, 2, 'i', 'd', 0, 1, 'u', 0, 1, 'p'}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, encodeConnect(tt.v, "id", tt.cred)); diff != "" {
				t.Errorf("encodeConnect (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		wire    []byte // one full packet
		v       version
		want    any
		wantErr bool
	}{
		{name: "3.1.1 connack accepted", wire: []byte{0x20, 2, 0, 0}, want: connack{}},
		{name: "3.1.1 connack not authorized", wire: []byte{0x20, 2, 1, 5}, want: connack{sessionPresent: true, code: 5}},
		{name: "3.1.1 connack bad code", wire: []byte{0x20, 2, 0, 9}, wantErr: true},
		{name: "connack reserved flags", wire: []byte{0x20, 2, 2, 0}, wantErr: true},
		{name: "v5 connack with reason string", wire: []byte{0x20, 9, 0, 0x87, 6, 0x1f, 0, 3, 'n', 'o', '!'}, want: connack{code: 0x87, v5: true, reason: "no!"}},
		{name: "v5 connack with properties", wire: []byte{0x20, 13, 0, 0, 10, 0x21, 0, 10, 0x24, 1, 0x27, 0, 0, 1, 0}, want: connack{v5: true}},
		{name: "v5 connack unknown property", wire: []byte{0x20, 5, 0, 0, 2, 0x7f, 0}, wantErr: true},
		{name: "v5 connack short properties", wire: []byte{0x20, 4, 0, 0, 5, 0x21}, wantErr: true},
		{name: "suback", wire: []byte{0x90, 4, 0, 7, 0, 0x80}, v: v311, want: []byte{0, 0x80}},
		{name: "v5 suback", wire: []byte{0x90, 5, 0, 7, 0, 0x00, 0x87}, v: v5, want: []byte{0, 0x87}},
		{name: "suback without codes", wire: []byte{0x90, 2, 0, 7}, v: v311, wantErr: true},
		{name: "publish qos0", wire: []byte{0x30, 7, 0, 3, 'a', '/', 'b', 'h', 'i'}, v: v311, want: publish{topic: "a/b", payload: []byte("hi")}},
		{name: "publish qos1", wire: []byte{0x32, 6, 0, 1, 'a', 0, 9, 'x'}, v: v311, want: publish{topic: "a", qos: 1, packetID: 9, payload: []byte("x")}},
		{name: "v5 publish", wire: []byte{0x30, 5, 0, 1, 't', 0, 'p'}, v: v5, want: publish{topic: "t", payload: []byte("p")}},
		{name: "publish qos3", wire: []byte{0x36, 3, 0, 1, 'a'}, v: v311, wantErr: true},
		{name: "publish bad utf8", wire: []byte{0x30, 3, 0, 1, 0xff}, v: v311, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := readPacket(bufio.NewReader(bytes.NewReader(tt.wire)))
			if err != nil {
				t.Fatalf("readPacket: %v", err)
			}
			var got any
			switch p.typ {
			case typeConnack:
				got, err = decodeConnack(p.body)
			case typeSuback:
				_, got, err = decodeSuback(tt.v, p.body)
			case typePublish:
				got, err = decodePublish(tt.v, p.flags, p.body)
			}
			if tt.wantErr {
				if err == nil {
					t.Fatalf("decoded %+v, want error", got)
				}
				if !errors.Is(err, errMalformed) {
					t.Errorf("error %v is not errMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(connack{}, publish{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadPacketBounds(t *testing.T) {
	tests := []struct {
		name      string
		wire      []byte
		wantErr   bool
		truncated bool
	}{
		{name: "five byte length", wire: []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, wantErr: true},
		{name: "over skip cap", wire: []byte{0x30, 0xff, 0xff, 0xff, 0x7f}, wantErr: true},
		{name: "short body", wire: []byte{0x30, 10, 1, 2}, wantErr: true},
		{name: "truncated keep", wire: append([]byte{0x30, 0x81, 0x80, 0x04}, make([]byte, 65537)...), truncated: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := readPacket(bufio.NewReader(bytes.NewReader(tt.wire)))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && (p.truncated != tt.truncated || len(p.body) > maxKeep) {
				t.Errorf("truncated %v len %d", p.truncated, len(p.body))
			}
		})
	}
}

// FuzzDecode feeds arbitrary bytes through the packet reader and the
// CONNACK, SUBACK and PUBLISH decoders for both protocol generations.
func FuzzDecode(f *testing.F) {
	seeds := [][]byte{
		{0x20, 2, 0, 0},
		{0x20, 9, 0, 0x87, 6, 0x1f, 0, 3, 'n', 'o', '!'},
		{0x20, 13, 0, 0, 10, 0x21, 0, 10, 0x24, 1, 0x27, 0, 0, 1, 0},
		{0x20, 13, 0, 0, 10, 0x26, 0, 1, 'k', 0, 1, 'v', 0x16, 0, 0},
		{0x90, 4, 0, 7, 0, 0x80},
		{0x90, 5, 0, 7, 0, 0x00, 0x87},
		{0x30, 7, 0, 3, 'a', '/', 'b', 'h', 'i'},
		{0x32, 6, 0, 1, 'a', 0, 9, 'x'},
		{0x30, 0xff, 0xff, 0xff, 0x7f},
		{0x20, 5, 0, 0, 2, 0x0b, 0x80},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for range 4 {
			p, err := readPacket(r)
			if err != nil {
				return
			}
			if len(p.body) > maxKeep {
				t.Fatalf("kept %d bytes", len(p.body))
			}
			_, _ = decodeConnack(p.body)
			for _, v := range []version{v311, v5} {
				if _, codes, err := decodeSuback(v, p.body); err == nil && len(codes) == 0 {
					t.Fatal("suback decoded without codes")
				}
				if pub, err := decodePublish(v, p.flags, p.body); err == nil && pub.qos > 2 {
					t.Fatalf("qos %d", pub.qos)
				}
			}
		}
	})
}
