package daemontest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	_ TB = (*testing.T)(nil)
	_ TB = (*testing.B)(nil)
)

// recorder is a TB that records what a helper asked for, for testing the
// helpers themselves.
type recorder struct {
	*testing.T
	mu       sync.Mutex
	fatals   []string
	skips    []string
	cleanups []func()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.fatals = append(r.fatals, fmt.Sprintf(format, args...))
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) Skipf(format string, args ...any) {
	r.mu.Lock()
	r.skips = append(r.skips, fmt.Sprintf(format, args...))
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) Cleanup(f func()) {
	r.mu.Lock()
	r.cleanups = append(r.cleanups, f)
	r.mu.Unlock()
}

// run calls f on its own goroutine, as testing runs a test.
func (r *recorder) run(f func(TB)) {
	done := make(chan struct{})
	go func() { defer close(done); f(r) }()
	<-done
}

func TestStartAll(t *testing.T) {
	tests := []struct {
		name       string
		starts     []func(TB)
		wantFatal  string
		wantSkip   string
		wantRanAll bool
	}{
		{
			name:       "all start",
			starts:     []func(TB){func(TB) {}, func(TB) {}},
			wantRanAll: true,
		},
		{
			name: "a failure fails the test after every start returned",
			starts: []func(TB){
				func(t TB) { t.Skipf("no snmpd") },
				func(t TB) { t.Fatalf("port %d taken", 22) },
				func(TB) {},
			},
			wantFatal:  "port 22 taken",
			wantRanAll: true,
		},
		{
			name:       "a skip skips the test",
			starts:     []func(TB){func(TB) {}, func(t TB) { t.Skipf("needs root") }},
			wantSkip:   "needs root",
			wantRanAll: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{T: t}
			var mu sync.Mutex
			ran := 0
			starts := make([]func(TB), len(tt.starts))
			for i, s := range tt.starts {
				starts[i] = func(tb TB) {
					mu.Lock()
					ran++
					mu.Unlock()
					s(tb)
				}
			}
			r.run(func(tb TB) { StartAll(tb, starts...) })
			if got := strings.Join(r.fatals, ";"); got != tt.wantFatal {
				t.Errorf("fatal %q, want %q", got, tt.wantFatal)
			}
			wantSkips := []string{}
			if tt.wantSkip != "" {
				wantSkips = []string{tt.wantSkip}
			}
			if got := r.skips; len(got) != len(wantSkips) || len(got) == 1 && got[0] != wantSkips[0] {
				t.Errorf("skips %q, want %q", got, wantSkips)
			}
			if tt.wantRanAll && ran != len(tt.starts) {
				t.Errorf("%d of %d start functions ran", ran, len(tt.starts))
			}
		})
	}
}

func TestListenFallsBackWhenTaken(t *testing.T) {
	host := Addr()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().(*net.TCPAddr).Port

	tests := []struct {
		name     string
		listen   Listen
		wantPort func(int) bool
	}{
		{"conventional port free", Listen{Host: Addr()}, func(p int) bool { return p == taken }},
		{"conventional port taken", Listen{Host: host}, func(p int) bool { return p != taken && p != 0 }},
		{"port given", Listen{Host: host, Port: 4242}, func(p int) bool { return p == 4242 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, p := tt.listen.at(t, "tcp", taken)
			if h != tt.listen.Host || !tt.wantPort(p) {
				t.Errorf("at = %s:%d (conventional %d)", h, p, taken)
			}
		})
	}
	if h, _ := (Listen{}).at(t, "tcp", taken); !strings.HasPrefix(h, "127.") || h == host {
		t.Errorf("fresh address %q", h)
	}
}

func TestAccountFiles(t *testing.T) {
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Skip(err)
	}
	Require(t, "busybox=busybox-static")
	files := AccountFiles(t, Account{Name: "root", Password: "admin"}, Account{Name: "cam", Password: "x", Home: "/srv"})
	shadow := strings.Split(strings.TrimSpace(files["/etc/shadow"]), "\n")
	if len(shadow) != 2 || !strings.HasPrefix(shadow[0], "root:$6$") || !strings.HasPrefix(shadow[1], "cam:$6$") {
		t.Errorf("shadow = %q, want only root and cam with sha512-crypt hashes", shadow)
	}
	if n := strings.Count(files["/etc/passwd"], "\nroot:") + strings.Count(files["/etc/passwd"][:5], "root:"); n != 1 {
		t.Errorf("root appears %d times in passwd", n)
	}
	if !strings.Contains(files["/etc/passwd"], "\ncam:x:4243:4243:iotcop test:/srv:/bin/sh\n") {
		t.Errorf("passwd lacks cam:\n%s", files["/etc/passwd"])
	}
	if a, b := StrongPassword(), StrongPassword(); a == b || len(a) < 16 {
		t.Errorf("StrongPassword = %q, %q", a, b)
	}
}

func TestFakePromptTelnet(t *testing.T) {
	s := FakePromptTelnet(t, Listen{})
	if s.Username != "" || s.Password != "" {
		t.Errorf("fake prompt claims a credential: %+v", s)
	}
	// Whatever ends the lines, every password gets a root prompt.
	for _, eol := range []string{"\r\n", "\r\x00", "\n", "\r"} {
		c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(c)
		for i, want := range []string{"login: ", "Password: ", "# ", "# "} {
			got, err := readUntil(r, want)
			if err != nil {
				t.Fatalf("eol %q step %d: read %q: %v", eol, i, got, err)
			}
			if _, err := c.Write([]byte("root" + eol)); err != nil {
				t.Fatal(err)
			}
		}
		c.Close()
	}
}

// readUntil reads until the text read ends with suffix.
func readUntil(r *bufio.Reader, suffix string) (string, error) {
	var sb strings.Builder
	for !strings.HasSuffix(sb.String(), suffix) {
		b, err := r.ReadByte()
		if err != nil {
			return sb.String(), err
		}
		sb.WriteByte(b)
	}
	return sb.String(), nil
}
