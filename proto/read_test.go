package proto

import (
	"net"
	"strings"
	"testing"
	"time"
)

func pipeServe(t *testing.T, serve func(net.Conn)) net.Conn {
	t.Helper()
	a, b := net.Pipe()
	go func() { defer b.Close(); serve(b) }()
	t.Cleanup(func() { a.Close() })
	return a
}

func TestReadSomeBounded(t *testing.T) {
	tests := []struct {
		name    string
		serve   func(net.Conn)
		max     int
		want    string
		wantLen int
		wantErr bool
	}{
		{name: "greeting", serve: func(c net.Conn) { c.Write([]byte("SSH-2.0-x\r\n")); time.Sleep(time.Second) }, max: 512, want: "SSH-2.0-x\r\n"},
		{name: "endless sender capped", serve: func(c net.Conn) {
			for {
				if _, err := c.Write([]byte(strings.Repeat("A", 100))); err != nil {
					return
				}
			}
		}, max: 512, wantLen: 512},
		{name: "slow drip stops at the pause", serve: func(c net.Conn) {
			for i := 0; i < 100; i++ {
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
				time.Sleep(300 * time.Millisecond)
			}
		}, max: 512, want: "x"},
		{name: "silent", serve: func(c net.Conn) { time.Sleep(time.Second) }, max: 512, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := pipeServe(t, tc.serve)
			got, err := ReadSome(c, tc.max, 200*time.Millisecond)
			if tc.wantErr {
				if err == nil || !IsTimeout(err) {
					t.Fatalf("err = %v, want timeout", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want != "" && string(got) != tc.want {
				t.Fatalf("got %q want %q", got, tc.want)
			}
			if tc.wantLen != 0 && len(got) != tc.wantLen {
				t.Fatalf("len %d want %d", len(got), tc.wantLen)
			}
		})
	}
}

func TestReadUntil(t *testing.T) {
	c := pipeServe(t, func(c net.Conn) { c.Write([]byte("Welcome\r\nlogin: ")); time.Sleep(time.Second) })
	got, ok, err := ReadUntil(c, 1024, time.Second, []byte("login:"))
	if err != nil || !ok || !strings.HasSuffix(string(got), "login: ") {
		t.Fatalf("got %q ok=%v err=%v", got, ok, err)
	}
	c = pipeServe(t, func(c net.Conn) {
		for {
			if _, err := c.Write([]byte("zzzz")); err != nil {
				return
			}
		}
	})
	got, ok, _ = ReadUntil(c, 64, time.Second, []byte("login:"))
	if ok || len(got) != 64 {
		t.Fatalf("endless peer: ok=%v len=%d", ok, len(got))
	}
}

func TestPrintable(t *testing.T) {
	if got := Printable([]byte("a\r\n\xff\x00b")); got != `a\r\n\xff\x00b` {
		t.Fatalf("got %q", got)
	}
	if got := Printable(make([]byte, 5000)); len(got) != MaxBanner*4 {
		t.Fatalf("not capped: %d", len(got))
	}
}
