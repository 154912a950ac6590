package sweep

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iotcop/iotcop/internal/daemontest"
)

func TestParsePorts(t *testing.T) {
	tests := []struct {
		spec    string
		want    []string
		wantErr string
	}{
		{spec: "22,80-82", want: []string{"22/tcp", "80/tcp", "81/tcp", "82/tcp"}},
		{spec: "T:23,U:161,5683", want: []string{"23/tcp", "161/udp", "5683/udp"}},
		{spec: "5683/udp,22", want: []string{"22/tcp", "5683/udp"}},
		{spec: "22,22", want: []string{"22/tcp"}},
		{spec: "0", wantErr: "1 to 65535"},
		{spec: "70000", wantErr: "1 to 65535"},
		{spec: "90-80", wantErr: "ends before"},
		{spec: "22/sctp", wantErr: "tcp or udp"},
		{spec: ",", wantErr: "names no port"},
	}
	for _, tc := range tests {
		got, err := ParsePorts(tc.spec)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: err %v, want %q", tc.spec, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.spec, err)
			continue
		}
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		if !slices.Equal(s, tc.want) {
			t.Errorf("%q: got %v want %v", tc.spec, s, tc.want)
		}
	}
	d, err := ParsePorts("default")
	if err != nil || len(d) != len(DefaultPorts()) {
		t.Fatalf("default: %v %d", err, len(d))
	}
}

func TestHostFindsOpenTCPAndUDP(t *testing.T) {
	host := daemontest.Addr()
	ln, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	open := ln.Addr().(*net.TCPAddr).Port
	// A closed port: listen then close to get a free number.
	l2, _ := net.Listen("tcp", host+":0")
	closed := l2.Addr().(*net.TCPAddr).Port
	l2.Close()

	pc, err := net.ListenPacket("udp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			// Answer only CoAP-looking probes, like a real CoAP server.
			if n > 4 && buf[0]>>6 == 1 {
				pc.WriteTo([]byte{0x60, 0x45, buf[2], buf[3]}, from)
			}
		}
	}()
	udpOpen := pc.LocalAddr().(*net.UDPAddr).Port

	s := New(NewGate(0, 4), Options{Timeout: 500 * time.Millisecond})
	var mu sync.Mutex
	var got []string
	ports := []Port{{open, "tcp"}, {closed, "tcp"}, {udpOpen, "udp"}}
	err = s.Host(context.Background(), netip.MustParseAddr(host), ports, func(r Result) {
		mu.Lock()
		got = append(got, r.Port.String())
		mu.Unlock()
		if r.Port.Transport == "udp" && len(r.Response) != 4 {
			t.Errorf("udp response %x", r.Response)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := []string{Port{open, "tcp"}.String(), Port{udpOpen, "udp"}.String()}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("open ports %v, want %v", got, want)
	}
}

// The per-host cap must hold: count connections held open at once.
func TestGatePerHostCap(t *testing.T) {
	host := daemontest.Addr()
	ln, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	var cur, peak atomic.Int32
	g := NewGate(0, 2)
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := g.Dial(context.Background(), "tcp", ln.Addr().String())
			if err != nil {
				t.Error(err)
				return
			}
			n := cur.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(5 * time.Millisecond)
			cur.Add(-1)
			c.Close()
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > 2 || p < 1 {
		t.Fatalf("peak concurrent connections to one host = %d, want 1..2", p)
	}
	g.mu.Lock()
	left := len(g.hosts)
	g.mu.Unlock()
	if left != 0 {
		t.Fatalf("gate kept %d host slots after all connections closed", left)
	}
}
