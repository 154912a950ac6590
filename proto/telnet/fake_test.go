package telnet

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/proto"
)

// fakeServer runs handle for every connection to a fresh loopback address
// and returns the endpoint plus a counter of accepted connections.
func fakeServer(t *testing.T, handle func(c net.Conn)) (proto.Endpoint, *atomic.Int32) {
	ep, count, _ := fakeServerStoppable(t, handle)
	return ep, count
}

// fakeServerStoppable is fakeServer plus a function that stops accepting
// (later connections are refused).
func fakeServerStoppable(t *testing.T, handle func(c net.Conn)) (proto.Endpoint, *atomic.Int32, func()) {
	t.Helper()
	srv := daemontest.ServeTCP(t, "", 0, handle)
	return srv.Endpoint(800 * time.Millisecond), &srv.Accepted, srv.Stop
}

// readLine reads one line typed by the client, skipping telnet commands.
func readLine(r *bufio.Reader) (string, error) {
	var sb strings.Builder
	for {
		b, err := r.ReadByte()
		if err != nil {
			return sb.String(), err
		}
		switch {
		case b == 255:
			v, err := r.ReadByte()
			if err != nil {
				return "", err
			}
			switch {
			case v == 250:
				for { // skip to IAC SE
					x, err := r.ReadByte()
					if err != nil {
						return "", err
					}
					if x == 255 {
						if y, _ := r.ReadByte(); y == 240 {
							break
						}
					}
				}
			case v >= 251 && v <= 254:
				_, _ = r.ReadByte()
			case v == 255:
				sb.WriteByte(255)
			}
		case b == '\r':
			if n, err := r.Peek(1); err == nil && (n[0] == '\n' || n[0] == 0) {
				_, _ = r.ReadByte()
			}
			return sb.String(), nil
		case b == '\n':
			return sb.String(), nil
		default:
			sb.WriteByte(b)
		}
	}
}

// fakeDevice is a scripted telnet login for in-process tests.
type fakeDevice struct {
	negotiate   bool   // send busybox's opening first
	noLogin     bool   // straight into the shell
	user, pass  string // the one valid account
	failMsg     string // printed after a wrong password
	triesPerCon int    // hang up after this many failures (0: never)
	lockAfter   int    // after this many failures (over all connections) say "locked"
	fakeShell   bool   // the "shell" prints "# " to everything and echoes input
	passOnly    bool   // ask for a password only
	cli         bool   // after login, a CLI that knows no echo
	failures    atomic.Int32
}

func (d *fakeDevice) serve(c net.Conn) {
	w := func(s string) bool { _, err := c.Write([]byte(s)); return err == nil }
	r := bufio.NewReader(c)
	if d.negotiate {
		w("\xff\xfd\x01\xff\xfd\x1f\xff\xfb\x01\xff\xfb\x03")
	}
	if !d.noLogin {
		tries := 0
		for {
			if d.lockAfter > 0 && int(d.failures.Load()) >= d.lockAfter {
				w("\r\nAccount locked: too many failed logins\r\n")
				return
			}
			user := d.user
			if d.passOnly {
				w("\r\nPassword: ")
			} else {
				if !w("\r\ncam login: ") {
					return
				}
				var err error
				if user, err = readLine(r); err != nil {
					return
				}
				if user == "" { // like login(1): an empty name asks again
					continue
				}
				w(user + "\r\nPassword: ")
			}
			pass, err := readLine(r)
			if err != nil {
				return
			}
			w("\r\n")
			if d.fakeShell || (user == d.user && pass == d.pass) {
				break
			}
			d.failures.Add(1)
			w(d.failMsg)
			tries++
			if d.triesPerCon > 0 && tries >= d.triesPerCon {
				return
			}
		}
	}
	for {
		if !w("~ # ") {
			return
		}
		line, err := readLine(r)
		if err != nil {
			return
		}
		w(line + "\r\n") // terminal echo of what was typed
		if d.fakeShell {
			continue
		}
		if d.cli {
			w("% Invalid command\r\n")
			continue
		}
		if arg, ok := strings.CutPrefix(line, "echo "); ok {
			w(strings.ReplaceAll(arg, "''", "") + "\r\n")
		}
	}
}

func TestLoginFakeDevices(t *testing.T) {
	t.Parallel()
	good := proto.Credential{Username: "admin", Password: "s3cret"}
	bad := proto.Credential{Username: "admin", Password: "admin"}
	tests := []struct {
		name      string
		dev       *fakeDevice
		creds     []proto.Credential
		want      []proto.Outcome
		wantConns int32 // 0: don't check
	}{
		{
			name:      "wrong then right on one connection",
			dev:       &fakeDevice{negotiate: true, user: "admin", pass: "s3cret", failMsg: "Login incorrect\r\n"},
			creds:     []proto.Credential{bad, bad, good},
			want:      []proto.Outcome{proto.Rejected, proto.Rejected, proto.Accepted},
			wantConns: 1,
		},
		{
			name:      "server hangs up after each failure, session reconnects",
			dev:       &fakeDevice{user: "admin", pass: "s3cret", failMsg: "Login incorrect\r\n", triesPerCon: 1},
			creds:     []proto.Credential{bad, bad, good},
			want:      []proto.Outcome{proto.Rejected, proto.Rejected, proto.Accepted},
			wantConns: 3,
		},
		{
			name:  "fake prompt to every password is never accepted",
			dev:   &fakeDevice{negotiate: true, fakeShell: true},
			creds: []proto.Credential{bad, good},
			want:  []proto.Outcome{proto.Unknown, proto.Unknown},
		},
		{
			name:      "password-only device",
			dev:       &fakeDevice{user: "admin", pass: "s3cret", failMsg: "Bad password\r\n", passOnly: true},
			creds:     []proto.Credential{bad, good},
			want:      []proto.Outcome{proto.Rejected, proto.Accepted},
			wantConns: 1,
		},
		{
			name:  "CLI without echo: neither accepted nor rejected",
			dev:   &fakeDevice{user: "admin", pass: "s3cret", failMsg: "Login incorrect\r\n", cli: true},
			creds: []proto.Credential{good},
			want:  []proto.Outcome{proto.Unknown},
		},
		{
			name:  "lockout message",
			dev:   &fakeDevice{user: "admin", pass: "s3cret", failMsg: "Login incorrect\r\n", lockAfter: 2},
			creds: []proto.Credential{bad, bad, good},
			want:  []proto.Outcome{proto.Rejected, proto.LockedOut, proto.LockedOut},
		},
		{
			name:  "silent hang-ups become a lockout",
			dev:   &fakeDevice{user: "admin", pass: "s3cret", triesPerCon: 1},
			creds: []proto.Credential{bad, bad, bad},
			want:  []proto.Outcome{proto.Unknown, proto.Unknown, proto.LockedOut},
		},
		{
			name:  "shell without login is not a credential",
			dev:   &fakeDevice{noLogin: true},
			creds: []proto.Credential{good},
			want:  []proto.Outcome{proto.Unknown},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ep, conns := fakeServer(t, tt.dev.serve)
			res := daemontest.TryAll(t, New(), ep, nil, tt.creds...)
			for i, r := range res {
				if r.Outcome != tt.want[i] {
					t.Errorf("try %d (%s): %v (%s), want %v", i, tt.creds[i], r.Outcome, r.Detail, tt.want[i])
				}
				if r.Outcome == proto.Accepted && r.Proof == "" {
					t.Errorf("try %d accepted without proof", i)
				}
			}
			if tt.wantConns != 0 && conns.Load() != tt.wantConns {
				t.Errorf("%d connections, want %d", conns.Load(), tt.wantConns)
			}
		})
	}
}

// hostile peers: none may hang the session or produce Accepted.
var hostile = []struct {
	name   string
	handle func(c net.Conn)
}{
	{"endless banner", func(c net.Conn) {
		line := []byte(strings.Repeat("A", 1000) + "\r\n")
		for {
			if _, err := c.Write(line); err != nil {
				return
			}
		}
	}},
	{"silent accept", func(c net.Conn) {
		_, _ = c.Read(make([]byte, 1)) // until the client leaves
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}},
	{"slow drip", func(c net.Conn) {
		msg := "Welcome to the slow device, login: "
		for i := 0; ; i++ {
			if _, err := c.Write([]byte{msg[i%len(msg)]}); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}},
	{"negotiation storm", func(c net.Conn) {
		go func() { _, _ = c.Read(make([]byte, 1<<20)) }()
		for {
			if _, err := c.Write([]byte{255, 253, 39, 255, 251, 5, 255, 250, 24, 1, 255, 240}); err != nil {
				return
			}
		}
	}},
	{"prompt to everything", func(c net.Conn) {
		r := bufio.NewReader(c)
		_, _ = c.Write([]byte("login: "))
		for {
			line, err := readLine(r)
			if err != nil {
				return
			}
			if _, err := c.Write([]byte(line + "\r\n# ")); err != nil {
				return
			}
		}
	}},
}

func TestHostilePeers(t *testing.T) {
	t.Parallel()
	for _, h := range hostile {
		t.Run(h.name, func(t *testing.T) {
			t.Parallel()
			ep, _ := fakeServer(t, h.handle)
			ep.Timeout = 300 * time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			sess, _ := New().Open(ctx, ep, nil)
			defer sess.Close()
			for _, c := range []proto.Credential{{Username: "root", Password: "root"}, {Username: "admin", Password: "admin"}} {
				res, err := sess.Try(ctx, c)
				if errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Try(%s) ran into the test deadline", c)
				}
				if res.Outcome == proto.Accepted {
					t.Errorf("Try(%s) accepted: %+v", c, res)
				}
			}
			oa, err := New().ProbeOpenAccess(ctx, ep, nil)
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("ProbeOpenAccess ran into the test deadline")
			}
			if oa != nil {
				t.Errorf("open access claimed: %+v", oa)
			}
		})
	}
}

func TestProbeOpenAccessFakes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		dev  *fakeDevice
		want bool
	}{
		{"shell without login", &fakeDevice{noLogin: true, negotiate: true}, true},
		{"login required", &fakeDevice{negotiate: true, user: "a", pass: "b"}, false},
		{"fake shell that only echoes", &fakeDevice{noLogin: true, fakeShell: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ep, _ := fakeServer(t, tt.dev.serve)
			oa, err := New().ProbeOpenAccess(daemontest.Context(t), ep, nil)
			if err != nil {
				t.Fatal(err)
			}
			if (oa != nil) != tt.want {
				t.Fatalf("open access = %+v, want found=%v", oa, tt.want)
			}
			if oa != nil && (oa.What != "telnet shell without login" || oa.Proof == "") {
				t.Errorf("open access = %+v", oa)
			}
		})
	}
}

func TestIdentify(t *testing.T) {
	t.Parallel()
	busybox := "\xff\xfd\x01\xff\xfd\x1f\xff\xfb\x01\xff\xfb\x03"
	tests := []struct {
		name        string
		send        string
		port        int
		wantErr     bool
		wantProduct string
		wantVendor  string
		wantInfo    map[string]string
	}{
		{name: "busybox login", send: busybox + "\r\nvm login: ", port: 23, wantProduct: "BusyBox telnetd",
			wantInfo: map[string]string{"prompt": "login", "hostname": "vm", "negotiation": "DO ECHO, DO NAWS, WILL ECHO, WILL SGA"}},
		{name: "busybox shell banner", send: "\r\n\r\nBusyBox v1.35.0 (Debian) built-in shell (ash)\r\n\r\n~ # ", port: 23, wantProduct: "BusyBox telnetd",
			wantInfo: map[string]string{"prompt": "shell"}},
		{name: "vendor from prompt", send: "\xff\xfb\x01\xff\xfb\x03ZTE-F660 login: ", port: 9999, wantVendor: "zte",
			wantInfo: map[string]string{"hostname": "ZTE-F660"}},
		{name: "plain login prompt on any port", send: "\r\nUser Name: ", port: 8081, wantInfo: map[string]string{"prompt": "login"}},
		{name: "plain password prompt", send: "Password: ", port: 9000, wantInfo: map[string]string{"prompt": "password"}},
		{name: "plain text on telnet port", send: "Welcome to the device\r\n", port: 2323, wantInfo: map[string]string{"prompt": "none"}},
		{name: "plain text elsewhere", send: "Welcome to the device\r\n", port: 8080, wantErr: true},
		{name: "ssh banner", send: "SSH-2.0-dropbear_2022.83\r\n", port: 23, wantErr: true},
		{name: "ftp banner with login word", send: "220 FTP server ready, login: ", port: 23, wantErr: true},
		{name: "http", send: "HTTP/1.0 400 Bad Request\r\n\r\n", port: 23, wantErr: true},
		{name: "binary", send: "\x00\x01\x02\x03\x80\x81\xfe\x10\x11\x12", port: 23, wantErr: true},
		{name: "iac then garbage verb", send: "\xff\x10\x20", port: 23, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ep, _ := fakeServer(t, func(c net.Conn) {
				_, _ = c.Write([]byte(tt.send))
				buf := make([]byte, 256)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			})
			ctx := daemontest.Context(t)
			conn, err := ep.Connect(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			banner, err := proto.ReadSome(conn, proto.MaxBanner, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			ep.Port = tt.port
			id, err := New().Identify(ctx, conn, banner, ep)
			if tt.wantErr {
				if !errors.Is(err, proto.ErrNotThisProtocol) {
					t.Fatalf("Identify = %+v, %v; want ErrNotThisProtocol", id, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id.Protocol != "telnet" || id.Product != tt.wantProduct || id.Vendor != tt.wantVendor {
				t.Errorf("identity %+v; want product %q vendor %q", id, tt.wantProduct, tt.wantVendor)
			}
			for k, v := range tt.wantInfo {
				if id.Info[k] != v {
					t.Errorf("Info[%q] = %q, want %q", k, id.Info[k], v)
				}
			}
			if id.Banner == "" {
				t.Error("empty banner")
			}
		})
	}
}

func TestVendorHint(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"welcome to hikvision dvr":  "hikvision",
		"dlink-dir600 login:":       "d-link",
		"zte-f660 login:":           "zte",
		"the zterm device":          "",
		"plain busybox":             "",
		"tp-link wireless router":   "tp-link",
		"ubnt login:":               "ubiquiti",
		"axis camera (axisnet) ok:": "axis",
	}
	for in, want := range tests {
		if got := vendorHint(in); got != want {
			t.Errorf("vendorHint(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEchoProbe(t *testing.T) {
	t.Parallel()
	p := newEchoProbe()
	if strings.Contains(p.Command, p.Want) {
		t.Fatalf("command %q contains its own output %q: a terminal echo would pass as proof", p.Command, p.Want)
	}
	if q := newEchoProbe(); q.Want == p.Want {
		t.Fatal("nonce repeated")
	}
}

func TestPromptDetection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text                   string
		login, password, shell bool
	}{
		{"\r\nvm login: ", true, false, false},
		{"Last login: Mon Nov 3 on pts/0\r\n~ $ ", false, false, true},
		{"\x1b[1;32mroot@cam\x1b[0m:~# ", false, false, true},
		{"Password: ", false, true, false},
		{"Enter password for admin:", false, true, false},
		{"vm login: admin\r\n", false, false, false},
		{"Username:", true, false, false},
	}
	for _, tt := range tests {
		b := []byte(tt.text)
		if isLoginPrompt(b) != tt.login || isPasswordPrompt(b) != tt.password || isShellPrompt(b) != tt.shell {
			t.Errorf("%q: login=%v password=%v shell=%v; want %v %v %v", tt.text,
				isLoginPrompt(b), isPasswordPrompt(b), isShellPrompt(b), tt.login, tt.password, tt.shell)
		}
	}
}

func TestRefusedAfterWorking(t *testing.T) {
	t.Parallel()
	dev := &fakeDevice{user: "admin", pass: "s3cret", failMsg: "Login incorrect\r\n", triesPerCon: 1}
	ep, _, stop := fakeServerStoppable(t, dev.serve)
	ctx := daemontest.Context(t)
	sess, _ := New().Open(ctx, ep, nil)
	defer sess.Close()
	bad := proto.Credential{Username: "admin", Password: "x"}
	if res, err := sess.Try(ctx, bad); err != nil || res.Outcome != proto.Rejected {
		t.Fatalf("first try: %+v, %v; want rejected", res, err)
	}
	stop()
	res, err := sess.Try(ctx, bad)
	if err != nil || res.Outcome != proto.LockedOut {
		t.Fatalf("after the server stopped accepting: %+v, %v; want locked-out", res, err)
	}
}
