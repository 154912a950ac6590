package ssh

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/iotcop/iotcop/internal/daemontest"
)

// sampleKexInit is a Dropbear-like offer with a few legacy algorithms.
func sampleKexInit() *KexInit {
	return &KexInit{
		Cookie:         [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		KexAlgos:       []string{"curve25519-sha256", "diffie-hellman-group14-sha1", "diffie-hellman-group1-sha1", "kex-strict-s-v00@openssh.com"},
		HostKeyAlgos:   []string{"ssh-ed25519", "rsa-sha2-256", "ssh-rsa"},
		CiphersC2S:     []string{"aes128-ctr", "aes128-cbc"},
		CiphersS2C:     []string{"aes128-ctr", "3des-cbc"},
		MACsC2S:        []string{"hmac-sha2-256", "hmac-md5"},
		MACsS2C:        []string{"hmac-sha2-256"},
		CompressionC2S: []string{"none", "zlib@openssh.com"},
		CompressionS2C: []string{"none"},
		LanguagesC2S:   []string{},
		LanguagesS2C:   []string{},
	}
}

func TestParseKexInit(t *testing.T) {
	t.Parallel()
	good := sampleKexInit().marshal()
	withFollows := sampleKexInit()
	withFollows.FirstKexFollows = true

	// replaceList rebuilds the sample with its first name-list replaced.
	replaceList := func(list string) []byte {
		k := sampleKexInit()
		k.KexAlgos = []string{list}
		return k.marshal()
	}
	tests := []struct {
		name    string
		payload []byte
		want    *KexInit
		wantErr string
	}{
		{name: "round trip", payload: good, want: sampleKexInit()},
		{name: "first kex follows", payload: withFollows.marshal(), want: withFollows},
		{name: "empty", payload: nil, wantErr: "empty payload"},
		{name: "other message", payload: []byte{21}, wantErr: "message 21"},
		{name: "short cookie", payload: good[:10], wantErr: "truncated cookie"},
		{name: "list cut", payload: good[:40], wantErr: "name-list"},
		{name: "no reserved field", payload: good[:len(good)-4], wantErr: "truncated after"},
		{name: "trailing bytes", payload: append(slices.Clone(good), 0), wantErr: "1 trailing bytes"},
		{name: "control byte in name", payload: replaceList("curve\x01"), wantErr: "byte 0x01"},
		{name: "space in name", payload: replaceList("a b"), wantErr: "byte 0x20"},
		{name: "empty name", payload: replaceList("a,,b"), wantErr: "empty name"},
		{name: "huge list length", payload: append(append([]byte{20}, make([]byte, 16)...), 0xff, 0xff, 0xff, 0xff, 'a'), wantErr: "name-list 1 truncated"},
		{name: "oversized list", payload: replaceList(strings.Repeat("a", maxNameList+1)), wantErr: "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKexInit(tt.payload)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrNotKexInit) {
					t.Fatalf("err = %v, want ErrNotKexInit containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("KexInit (-want +got):\n%s", diff)
			}
		})
	}
}

func TestKexInitUnions(t *testing.T) {
	t.Parallel()
	k := sampleKexInit()
	if got, want := k.Ciphers(), []string{"aes128-ctr", "aes128-cbc", "3des-cbc"}; !slices.Equal(got, want) {
		t.Errorf("Ciphers() = %v, want %v", got, want)
	}
	if got, want := k.MACs(), []string{"hmac-sha2-256", "hmac-md5"}; !slices.Equal(got, want) {
		t.Errorf("MACs() = %v, want %v", got, want)
	}
	if got, want := k.Compressions(), []string{"none", "zlib@openssh.com"}; !slices.Equal(got, want) {
		t.Errorf("Compressions() = %v, want %v", got, want)
	}
}

func TestPacketRoundTrip(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 3, 7, 8, 100, 1000} {
		payload := bytes.Repeat([]byte{0xab}, n)
		p := packet(payload)
		if len(p)%8 != 0 || p[4] < 4 {
			t.Errorf("packet(%d bytes): length %d, padding %d; want a multiple of 8 and padding >= 4", n, len(p), p[4])
		}
		got, err := readPacket(bytes.NewReader(p))
		if err != nil || !bytes.Equal(got, payload) {
			t.Errorf("readPacket(packet(%d bytes)) = %d bytes, %v", n, len(got), err)
		}
	}
}

// serverHello is what a well-behaved SSH-2 server sends first.
func serverHello(id string, k *KexInit) []byte {
	return append([]byte(id+"\r\n"), packet(k.marshal())...)
}

func TestReadServerOffer(t *testing.T) {
	t.Parallel()
	disconnect := []byte{msgDisconnect, 0, 0, 0, 2, 0, 0, 0, 5, 'g', 'o', ' ', 'a', 'y', 0, 0, 0, 0}
	tests := []struct {
		name     string
		send     func(c net.Conn)
		wantID   string // software
		wantKex  bool
		ssh1Only bool
		hangUp   bool // close right after sending
		wantErr  string
	}{
		{
			name:    "dropbear-like",
			send:    func(c net.Conn) { _, _ = c.Write(serverHello("SSH-2.0-dropbear_2022.83", sampleKexInit())) },
			wantID:  "dropbear_2022.83",
			wantKex: true,
		},
		{
			name: "banner lines and IGNORE first",
			send: func(c net.Conn) {
				_, _ = c.Write([]byte("Welcome\r\nto the device\r\n"))
				_, _ = c.Write([]byte("SSH-2.0-OpenSSH_9.2 Debian\r\n"))
				_, _ = c.Write(packet([]byte{msgIgnore, 0, 0, 0, 0}))
				_, _ = c.Write(packet(sampleKexInit().marshal()))
			},
			wantID:  "OpenSSH_9.2",
			wantKex: true,
		},
		{
			name:     "SSH-1 only",
			send:     func(c net.Conn) { _, _ = c.Write([]byte("SSH-1.5-1.2.27\n")) },
			wantID:   "1.2.27",
			ssh1Only: true,
		},
		{
			name:    "SSH-1.99 offers SSH-2 too",
			send:    func(c net.Conn) { _, _ = c.Write(serverHello("SSH-1.99-Cisco-1.25", sampleKexInit())) },
			wantID:  "Cisco-1.25",
			wantKex: true,
		},
		{
			name: "endless banner lines",
			send: func(c net.Conn) {
				for {
					if _, err := c.Write([]byte("hello hello hello\r\n")); err != nil {
						return
					}
				}
			},
			wantErr: "no SSH identification string in the first 32 lines",
		},
		{
			name: "endless line",
			send: func(c net.Conn) {
				line := bytes.Repeat([]byte("A"), 4096)
				for {
					if _, err := c.Write(line); err != nil {
						return
					}
				}
			},
			wantErr: "longer than 1024 bytes",
		},
		{
			name:    "absurd packet length",
			send:    func(c net.Conn) { _, _ = c.Write([]byte("SSH-2.0-x\r\n\xff\xff\xff\xf0\x04")) },
			wantErr: "packet length 4294967280 exceeds 35000",
		},
		{
			name:    "padding longer than packet",
			send:    func(c net.Conn) { _, _ = c.Write([]byte("SSH-2.0-x\r\n\x00\x00\x00\x10\x20")) },
			wantErr: "malformed",
		},
		{
			name: "garbage after identification",
			send: func(c net.Conn) {
				_, _ = c.Write([]byte("SSH-2.0-x\r\n\x00\x00\x00\x0c\x04garbage!!!!"))
			},
			wantErr: "got message 103 first",
		},
		{
			name:    "packet cut short then silence",
			send:    func(c net.Conn) { _, _ = c.Write([]byte("SSH-2.0-x\r\n\x00\x00\x01\x00\x04\x14")) },
			wantErr: "reading 256-byte packet",
		},
		{
			name:    "silent after identification",
			send:    func(c net.Conn) { _, _ = c.Write([]byte("SSH-2.0-x\r\n")) },
			wantErr: "timeout",
		},
		{
			name: "slow drip",
			send: func(c net.Conn) {
				for _, b := range []byte("SSH-2.0-dripping-forever-and-ever-and-ever") {
					if _, err := c.Write([]byte{b}); err != nil {
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			},
			wantErr: "timeout",
		},
		{
			name:    "disconnect",
			send:    func(c net.Conn) { _, _ = c.Write(append([]byte("SSH-2.0-x\r\n"), packet(disconnect)...)) },
			wantErr: `server disconnected: reason 2 "go ay"`,
		},
		{
			name: "IGNORE flood",
			send: func(c net.Conn) {
				_, _ = c.Write([]byte("SSH-2.0-x\r\n"))
				for {
					if _, err := c.Write(packet([]byte{msgIgnore})); err != nil {
						return
					}
				}
			},
			wantErr: "within 5 packets",
		},
		{
			name:    "malformed identification",
			send:    func(c net.Conn) { _, _ = c.Write([]byte("SSH-two-x\r\n")) },
			wantErr: "malformed identification",
		},
		{
			name: "hang-up mid line",
			send: func(c net.Conn) {
				// Read the client's identification first, so that closing
				// sends FIN, not a reset for unread data.
				_, _ = bufio.NewReader(c).ReadString('\n')
				_, _ = c.Write([]byte("SSH-2.0-cut"))
			},
			hangUp:  true,
			wantErr: "connection closed inside identification line",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ep, _ := listen(t, func(c net.Conn) {
				tt.send(c)
				if !tt.hangUp {
					// Stay connected and silent until the client hangs up.
					_, _ = io.Copy(io.Discard, c)
				}
			})
			ep.Timeout = 500 * time.Millisecond
			offer, err := ReadServerOffer(daemontest.Context(t), ep)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), ep.Addr()) {
					t.Errorf("error %q does not name the endpoint", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if offer.ID.Software != tt.wantID || offer.SSH1Only() != tt.ssh1Only || (offer.KexInit != nil) != tt.wantKex {
				t.Fatalf("offer = %+v (SSH1Only %v)", offer, offer.SSH1Only())
			}
			if tt.wantKex {
				if diff := cmp.Diff(sampleKexInit(), offer.KexInit); diff != "" {
					t.Errorf("KexInit (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestReadServerOfferSendsKexInit checks the client's own hello: an
// identification line, then a KEXINIT the server can parse.
func TestReadServerOfferSendsKexInit(t *testing.T) {
	t.Parallel()
	got := make(chan *KexInit, 1)
	ep, _ := listen(t, func(c net.Conn) {
		_, _ = c.Write(serverHello("SSH-2.0-x", sampleKexInit()))
		r := bufio.NewReader(c)
		line, err := r.ReadString('\n')
		if err != nil || line != clientVersion+"\r\n" {
			t.Errorf("client identification %q, %v", line, err)
		}
		payload, err := readPacket(r)
		if err != nil {
			t.Errorf("client packet: %v", err)
			got <- nil
			return
		}
		k, err := ParseKexInit(payload)
		if err != nil {
			t.Errorf("client KEXINIT: %v", err)
		}
		got <- k
	})
	if _, err := ReadServerOffer(daemontest.Context(t), ep); err != nil {
		t.Fatal(err)
	}
	k := <-got
	if k == nil || !slices.Contains(k.KexAlgos, "curve25519-sha256") || !slices.Contains(k.HostKeyAlgos, "ssh-ed25519") {
		t.Errorf("client KEXINIT = %+v", k)
	}
}

// FuzzReadServerHello feeds arbitrary server output to the identification
// and KEXINIT readers: they must never panic, and what they accept must be
// well-formed.
func FuzzReadServerHello(f *testing.F) {
	f.Add(serverHello("SSH-2.0-dropbear_2022.83", sampleKexInit()))
	f.Add(append([]byte("banner\r\n"), serverHello("SSH-1.99-Cisco-1.25", sampleKexInit())...))
	f.Add([]byte("SSH-1.5-1.2.27\n"))
	f.Add([]byte("SSH-2.0-x\r\n\xff\xff\xff\xf0\x04"))
	f.Add([]byte("SSH-2.0-x\r\n\x00\x00\x00\x0c\x04garbage!!!!"))
	f.Add(append([]byte("SSH-2.0-x\r\n"), packet([]byte{msgIgnore})...))
	f.Add(append([]byte("SSH-2.0-x\r\n"), packet([]byte{msgDisconnect, 0, 0, 0, 2, 0, 0, 0, 1, 'x'})...))
	f.Add(append([]byte("SSH-2.0-x\r\n"), packet([]byte{msgKexInit, 1, 2})...))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(b), 4096)
		id, err := readIdentification(r)
		if err != nil {
			return
		}
		if !validProtoVersion(id.ProtoVersion) || id.Software == "" {
			t.Fatalf("malformed identification %+v accepted", id)
		}
		k, err := readKexInit(r)
		if err != nil {
			return
		}
		for _, list := range k.lists() {
			for _, name := range *list {
				if name == "" || strings.ContainsAny(name, ", \x00") {
					t.Fatalf("bad name %q accepted", name)
				}
			}
		}
		// What was accepted re-encodes to something that parses the same.
		again, err := ParseKexInit(k.marshal())
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if diff := cmp.Diff(k, again); diff != "" {
			t.Fatalf("re-parse differs:\n%s", diff)
		}
	})
}
