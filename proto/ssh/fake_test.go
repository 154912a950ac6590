package ssh

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	xssh "golang.org/x/crypto/ssh"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/proto"
)

// listen runs handle for every connection to a fresh loopback address.
func listen(t *testing.T, handle func(c net.Conn)) (proto.Endpoint, *atomic.Int32) {
	ep, count, _ := listenStoppable(t, handle)
	return ep, count
}

// listenStoppable is listen plus a function that stops accepting (later
// connections are refused).
func listenStoppable(t *testing.T, handle func(c net.Conn)) (proto.Endpoint, *atomic.Int32, func()) {
	t.Helper()
	srv := daemontest.ServeTCP(t, "", 0, handle)
	return srv.Endpoint(time.Second), &srv.Accepted, srv.Stop
}

// fakeSSH is an in-process x/crypto/ssh server with one account.
type fakeSSH struct {
	user, pass   string
	password     bool // offer password authentication
	keyboard     bool // offer keyboard-interactive
	acceptAll    bool // any password works
	exec, shell  bool // which command channels work
	maxAuthTries int
}

func (f *fakeSSH) config(t *testing.T) *xssh.ServerConfig {
	cfg := &xssh.ServerConfig{MaxAuthTries: f.maxAuthTries}
	check := func(user, pass string) bool { return f.acceptAll || (user == f.user && pass == f.pass) }
	if f.password {
		cfg.PasswordCallback = func(m xssh.ConnMetadata, pw []byte) (*xssh.Permissions, error) {
			if check(m.User(), string(pw)) {
				return nil, nil
			}
			return nil, errors.New("denied")
		}
	}
	if f.keyboard {
		cfg.KeyboardInteractiveCallback = func(m xssh.ConnMetadata, ask xssh.KeyboardInteractiveChallenge) (*xssh.Permissions, error) {
			ans, err := ask("", "", []string{"Password: "}, []bool{false})
			if err != nil || len(ans) != 1 || !check(m.User(), ans[0]) {
				return nil, errors.New("denied")
			}
			return nil, nil
		}
	}
	if !f.password && !f.keyboard {
		cfg.PublicKeyCallback = func(xssh.ConnMetadata, xssh.PublicKey) (*xssh.Permissions, error) {
			return nil, errors.New("no keys accepted")
		}
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := xssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AddHostKey(signer)
	return cfg
}

// echoOutput computes what a shell prints for "echo ARG".
func echoOutput(cmd string) (string, bool) {
	arg, ok := strings.CutPrefix(strings.TrimSpace(cmd), "echo ")
	return strings.ReplaceAll(arg, "''", "") + "\r\n", ok
}

func (f *fakeSSH) serve(cfg *xssh.ServerConfig) func(net.Conn) {
	return func(c net.Conn) {
		_, chans, reqs, err := xssh.NewServerConn(c, cfg)
		if err != nil {
			return
		}
		go xssh.DiscardRequests(reqs)
		for nc := range chans {
			if nc.ChannelType() != "session" {
				_ = nc.Reject(xssh.UnknownChannelType, "no")
				continue
			}
			ch, creqs, err := nc.Accept()
			if err != nil {
				return
			}
			go f.session(ch, creqs)
		}
	}
}

func (f *fakeSSH) session(ch xssh.Channel, reqs <-chan *xssh.Request) {
	defer ch.Close()
	exit := func() { _, _ = ch.SendRequest("exit-status", false, xssh.Marshal(struct{ Status uint32 }{0})) }
	for req := range reqs {
		switch req.Type {
		case "pty-req":
			_ = req.Reply(true, nil)
		case "exec":
			var cmd struct{ Command string }
			if !f.exec || xssh.Unmarshal(req.Payload, &cmd) != nil {
				_ = req.Reply(false, nil)
				continue
			}
			_ = req.Reply(true, nil)
			if out, ok := echoOutput(cmd.Command); ok {
				_, _ = ch.Write([]byte(out))
			}
			exit()
			return
		case "shell":
			if !f.shell {
				_ = req.Reply(false, nil)
				continue
			}
			_ = req.Reply(true, nil)
			r := bufio.NewReader(ch)
			for {
				_, _ = ch.Write([]byte("# "))
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				_, _ = ch.Write([]byte(line)) // terminal echo
				if strings.TrimSpace(line) == "exit" {
					exit()
					return
				}
				if out, ok := echoOutput(line); ok {
					_, _ = ch.Write([]byte(out))
				}
			}
		default:
			_ = req.Reply(false, nil)
		}
	}
}

func TestLoginFakeServers(t *testing.T) {
	t.Parallel()
	good := proto.Credential{Username: "admin", Password: "s3cret"}
	bad := proto.Credential{Username: "admin", Password: "admin"}
	badRoot := proto.Credential{Username: "root", Password: "root"}
	tests := []struct {
		name      string
		srv       *fakeSSH
		creds     []proto.Credential
		want      []proto.Outcome
		wantProof string // of the last result
		wantConns int32  // 0: don't check
	}{
		{
			name:      "password, wrong then right on one connection",
			srv:       &fakeSSH{user: "admin", pass: "s3cret", password: true, exec: true},
			creds:     []proto.Credential{bad, bad, good},
			want:      []proto.Outcome{proto.Rejected, proto.Rejected, proto.Accepted},
			wantProof: ProofEcho,
			wantConns: 1,
		},
		{
			name:      "keyboard-interactive only",
			srv:       &fakeSSH{user: "admin", pass: "s3cret", keyboard: true, exec: true},
			creds:     []proto.Credential{bad, good},
			want:      []proto.Outcome{proto.Rejected, proto.Accepted},
			wantProof: ProofEcho,
			wantConns: 1,
		},
		{
			name:      "per-connection limit reached, session reconnects",
			srv:       &fakeSSH{user: "admin", pass: "s3cret", password: true, exec: true, maxAuthTries: 2},
			creds:     []proto.Credential{bad, bad, bad, good},
			want:      []proto.Outcome{proto.Rejected, proto.Rejected, proto.Rejected, proto.Accepted},
			wantProof: ProofEcho,
			wantConns: 2,
		},
		{
			name:      "new user name, new connection",
			srv:       &fakeSSH{user: "admin", pass: "s3cret", password: true, exec: true},
			creds:     []proto.Credential{bad, badRoot, good},
			want:      []proto.Outcome{proto.Rejected, proto.Rejected, proto.Accepted},
			wantProof: ProofEcho,
			wantConns: 3,
		},
		{
			name:      "exec refused, shell works",
			srv:       &fakeSSH{user: "admin", pass: "s3cret", password: true, shell: true},
			creds:     []proto.Credential{good},
			want:      []proto.Outcome{proto.Accepted},
			wantProof: ProofEcho,
		},
		{
			name:      "auth accepted but no command channel",
			srv:       &fakeSSH{password: true, acceptAll: true},
			creds:     []proto.Credential{bad},
			want:      []proto.Outcome{proto.Accepted},
			wantProof: ProofNoCommand,
		},
		{
			name:  "publickey only",
			srv:   &fakeSSH{user: "admin", pass: "s3cret"},
			creds: []proto.Credential{good, bad},
			want:  []proto.Outcome{proto.Rejected, proto.Rejected},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ep, conns := listen(t, tt.srv.serve(tt.srv.config(t)))
			res := daemontest.TryAll(t, New(), ep, nil, tt.creds...)
			for i, r := range res {
				if r.Outcome != tt.want[i] {
					t.Errorf("try %d (%s): %v (%s), want %v", i, tt.creds[i], r.Outcome, r.Detail, tt.want[i])
				}
			}
			if last := res[len(res)-1]; tt.wantProof != "" && last.Proof != tt.wantProof {
				t.Errorf("proof %q (%s), want %q", last.Proof, last.Detail, tt.wantProof)
			}
			if tt.wantConns != 0 && conns.Load() != tt.wantConns {
				t.Errorf("%d connections, want %d", conns.Load(), tt.wantConns)
			}
		})
	}
}

func TestHostilePeers(t *testing.T) {
	t.Parallel()
	drain := func(c net.Conn) {
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}
	tests := []struct {
		name   string
		handle func(c net.Conn)
	}{
		{"endless banner", func(c net.Conn) {
			go drain(c)
			line := []byte(strings.Repeat("A", 200) + "\r\n")
			for {
				if _, err := c.Write(line); err != nil {
					return
				}
			}
		}},
		{"silent accept", drain},
		{"slow drip", func(c net.Conn) {
			go drain(c)
			msg := "SSH-2.0-OpenSSH_9.2p1 slowly\r\n"
			for i := 0; ; i++ {
				if _, err := c.Write([]byte{msg[i%len(msg)]}); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}},
		{"identification then garbage", func(c net.Conn) {
			go drain(c)
			_, _ = c.Write([]byte("SSH-2.0-dropbear_2022.83\r\n"))
			junk := []byte(strings.Repeat("\x00\x00\x01\x00junk", 100))
			for {
				if _, err := c.Write(junk); err != nil {
					return
				}
			}
		}},
		{"identification then silence", func(c net.Conn) {
			_, _ = c.Write([]byte("SSH-2.0-dropbear_2022.83\r\n"))
			drain(c)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ep, _ := listen(t, tt.handle)
			ep.Timeout = 500 * time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			sess, _ := New().Open(ctx, ep, nil)
			defer sess.Close()
			for _, c := range []proto.Credential{{Username: "root", Password: "root"}, {Username: "root", Password: "admin"}} {
				res, err := sess.Try(ctx, c)
				if errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Try(%s) ran into the test deadline", c)
				}
				if res.Outcome == proto.Accepted {
					t.Errorf("Try(%s) accepted: %+v", c, res)
				}
			}
		})
	}
}

func TestIdentify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                   string
		send                   []string // written with a pause between parts
		wantErr                bool
		product, version, ssh1 string
	}{
		{name: "dropbear", send: []string{"SSH-2.0-dropbear_2022.83\r\n"}, product: "Dropbear sshd", version: "2022.83"},
		{name: "openssh debian", send: []string{"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"}, product: "OpenSSH", version: "9.2p1"},
		{name: "ssh1", send: []string{"SSH-1.5-1.2.27\n"}, product: "1.2.27", ssh1: "true"},
		{name: "split identification", send: []string{"SSH-2.0-drop", "bear_2020.81\r\n"}, product: "Dropbear sshd", version: "2020.81"},
		{name: "telnet", send: []string{"\xff\xfd\x01\xff\xfd\x1f"}, wantErr: true},
		{name: "ftp", send: []string{"220 (vsFTPd 3.0.3)\r\n"}, wantErr: true},
		{name: "login prompt", send: []string{"login: "}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ep, _ := listen(t, func(c net.Conn) {
				for i, part := range tt.send {
					if i > 0 {
						time.Sleep(300 * time.Millisecond) // longer than ReadSome's pause
					}
					if _, err := c.Write([]byte(part)); err != nil {
						return
					}
				}
				_, _ = c.Read(make([]byte, 1))
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
			if id.Protocol != "ssh" || id.Product != tt.product || id.Version != tt.version || id.Info["ssh1"] != tt.ssh1 {
				t.Errorf("identity %+v; want %q %q ssh1=%q", id, tt.product, tt.version, tt.ssh1)
			}
			if !strings.HasPrefix(id.Banner, "SSH-") || id.Info["software"] == "" {
				t.Errorf("banner %q, software %q", id.Banner, id.Info["software"])
			}
		})
	}
}

func TestEchoProbe(t *testing.T) {
	t.Parallel()
	p := newEchoProbe()
	if strings.Contains(p.Command, p.Want) {
		t.Fatalf("command %q contains its output %q", p.Command, p.Want)
	}
	if out, _ := echoOutput(p.Command); strings.TrimSpace(out) != p.Want {
		t.Fatalf("a shell would print %q, want %q", out, p.Want)
	}
}

func ExampleIdentification_Describe() {
	id, _ := ParseIdentification([]byte("SSH-2.0-dropbear_2022.83\r\n"))
	fmt.Println(id.Describe())
	// Output: Dropbear sshd 2022.83
}

func TestLockoutAndOddServers(t *testing.T) {
	t.Parallel()
	cred := proto.Credential{Username: "admin", Password: "admin"}
	newServer := func(t *testing.T, mod func(cfg *xssh.ServerConfig, c net.Conn)) func(net.Conn) {
		f := &fakeSSH{password: true, exec: true}
		base := f.config(t)
		return func(c net.Conn) {
			cfg := *base
			mod(&cfg, c)
			f.serve(&cfg)(c)
		}
	}
	tests := []struct {
		name   string
		handle func(t *testing.T) func(net.Conn)
		users  []string // user name per try; default "admin"
		want   []proto.Outcome
		detail string // substring of the last result's Detail
	}{
		{
			name: "banner turns to locked",
			handle: func(t *testing.T) func(net.Conn) {
				var conns atomic.Int32
				return newServer(t, func(cfg *xssh.ServerConfig, _ net.Conn) {
					banner := "Authorised users only\n"
					if conns.Add(1) > 1 {
						banner = "Your account is locked for 10 minutes\n"
					}
					cfg.BannerCallback = func(xssh.ConnMetadata) string { return banner }
				})
			},
			users:  []string{"admin", "root"}, // a new user name means a new connection
			want:   []proto.Outcome{proto.Rejected, proto.LockedOut},
			detail: "locked",
		},
		{
			name: "static legal banner mentioning blocked",
			handle: func(t *testing.T) func(net.Conn) {
				return newServer(t, func(cfg *xssh.ServerConfig, _ net.Conn) {
					cfg.BannerCallback = func(xssh.ConnMetadata) string { return "Unauthorised access is blocked and logged\n" }
				})
			},
			users:  []string{"admin", "root"},
			want:   []proto.Outcome{proto.Rejected, proto.Rejected},
			detail: "refused",
		},
		{
			name: "hangs up at every password",
			handle: func(t *testing.T) func(net.Conn) {
				return newServer(t, func(cfg *xssh.ServerConfig, c net.Conn) {
					cfg.PasswordCallback = func(xssh.ConnMetadata, []byte) (*xssh.Permissions, error) {
						c.Close()
						return nil, errors.New("gone")
					}
				})
			},
			want:   []proto.Outcome{proto.Unknown, proto.Unknown, proto.LockedOut},
			detail: "hung up",
		},
		{
			name: "no authentication at all",
			handle: func(t *testing.T) func(net.Conn) {
				return newServer(t, func(cfg *xssh.ServerConfig, _ net.Conn) { cfg.NoClientAuth = true })
			},
			want:   []proto.Outcome{proto.Accepted},
			detail: `"none"`,
		},
		{
			name: "endless keyboard-interactive questions",
			handle: func(t *testing.T) func(net.Conn) {
				return newServer(t, func(cfg *xssh.ServerConfig, _ net.Conn) {
					cfg.PasswordCallback = nil
					cfg.KeyboardInteractiveCallback = func(_ xssh.ConnMetadata, ask xssh.KeyboardInteractiveChallenge) (*xssh.Permissions, error) {
						for {
							if _, err := ask("", "", []string{"Password: "}, []bool{false}); err != nil {
								return nil, err
							}
						}
					}
				})
			},
			want:   []proto.Outcome{proto.Unknown},
			detail: "keyboard-interactive",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ep, _ := listen(t, tt.handle(t))
			creds := make([]proto.Credential, len(tt.want))
			for i := range creds {
				creds[i] = cred
				if tt.users != nil {
					creds[i].Username = tt.users[i]
				}
			}
			res := daemontest.TryAll(t, New(), ep, nil, creds...)
			for i, r := range res {
				if r.Outcome != tt.want[i] {
					t.Errorf("try %d: %v (%s), want %v", i, r.Outcome, r.Detail, tt.want[i])
				}
			}
			if last := res[len(res)-1]; !strings.Contains(last.Detail, tt.detail) {
				t.Errorf("detail %q, want it to mention %q", last.Detail, tt.detail)
			}
		})
	}
}

func TestRefusedAfterWorking(t *testing.T) {
	t.Parallel()
	f := &fakeSSH{user: "admin", pass: "s3cret", password: true, maxAuthTries: 1}
	ep, _, stop := listenStoppable(t, f.serve(f.config(t)))
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
