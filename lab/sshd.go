package lab

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

const (
	sshHandshakeTimeout = 30 * time.Second
	sshMaxSessions      = 4
	defaultSSHVersion   = "SSH-2.0-dropbear_2019.78"
)

var errDenied = errors.New("permission denied")

// sshServerConfig accepts the service's account by password and by
// keyboard-interactive, as dropbear and OpenSSH do.
func sshServerConfig(dev *device, rs RunningService, keys *keyStore) (*ssh.ServerConfig, error) {
	check := func(user, pass string) bool {
		return subtle.ConstantTimeCompare([]byte(user), []byte(rs.Username)) == 1 &&
			subtle.ConstantTimeCompare([]byte(pass), []byte(rs.Password)) == 1
	}
	version := rs.Banner
	if version == "" {
		version = defaultSSHVersion
	}
	cfg := &ssh.ServerConfig{
		MaxAuthTries:  6,
		ServerVersion: version,
		PasswordCallback: func(c ssh.ConnMetadata, pass []byte) (*ssh.Permissions, error) {
			if check(c.User(), string(pass)) {
				return &ssh.Permissions{}, nil
			}
			return nil, errDenied
		},
		KeyboardInteractiveCallback: func(c ssh.ConnMetadata, challenge ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			answers, err := challenge("", "", []string{"Password: "}, []bool{false})
			if err != nil {
				return nil, err
			}
			if len(answers) == 1 && check(c.User(), answers[0]) {
				return &ssh.Permissions{}, nil
			}
			return nil, errDenied
		},
	}
	if dev.kind == "hardened" {
		// Modern key exchange only (no SHA-1 groups), as a well-configured
		// device would offer; the others keep x/crypto's defaults, which
		// include diffie-hellman-group14-sha1 like much real firmware.
		cfg.KeyExchanges = []string{"curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256", "ecdh-sha2-nistp384"}
		cfg.MACs = []string{"hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "hmac-sha2-256", "hmac-sha2-512"}
	}
	signer, err := keys.hostKey(dev, rs.SharedHostKey)
	if err != nil {
		return nil, err
	}
	cfg.AddHostKey(signer)
	return cfg, nil
}

// sshHandler serves one SSH connection: handshake, then session channels
// with shell and exec requests run by the shell interpreter.
func sshHandler(dev *device, cfg *ssh.ServerConfig, log *slog.Logger) func(context.Context, net.Conn) {
	return func(_ context.Context, conn net.Conn) {
		timer := time.AfterFunc(sshHandshakeTimeout, func() { _ = conn.Close() })
		sc, chans, reqs, err := ssh.NewServerConn(conn, cfg)
		timer.Stop()
		if err != nil {
			log.Debug("ssh handshake", "err", err)
			return
		}
		defer sc.Close()
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() { ssh.DiscardRequests(reqs) })
		sessions := make(chan struct{}, sshMaxSessions)
		for nc := range chans {
			if nc.ChannelType() != "session" {
				_ = nc.Reject(ssh.UnknownChannelType, "unsupported channel type")
				continue
			}
			select {
			case sessions <- struct{}{}:
			default:
				_ = nc.Reject(ssh.ResourceShortage, "too many sessions")
				continue
			}
			ch, creqs, err := nc.Accept()
			if err != nil {
				<-sessions
				continue
			}
			wg.Go(func() {
				defer func() { <-sessions }()
				sshSession(dev, sc.User(), ch, creqs)
			})
		}
	}
}

// sshSession handles one session channel's requests.
func sshSession(dev *device, user string, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	pty := false
	started := false
	done := make(chan struct{})
	for {
		select {
		case req, ok := <-reqs:
			if !ok {
				if started {
					<-done
				}
				return
			}
			switch req.Type {
			case "pty-req", "env", "window-change":
				if req.Type == "pty-req" {
					pty = true
				}
				if req.WantReply {
					_ = req.Reply(true, nil)
				}
			case "shell", "exec":
				if started {
					_ = req.Reply(false, nil)
					continue
				}
				var cmd string
				if req.Type == "exec" {
					var payload struct{ Command string }
					if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
						_ = req.Reply(false, nil)
						continue
					}
					cmd = payload.Command
				}
				_ = req.Reply(true, nil)
				started = true
				exec := req.Type == "exec"
				go func() {
					defer close(done)
					sh := newShell(dev, user)
					if exec {
						out, _ := sh.run(cmd)
						s := &lineSession{conn: ch, tty: pty}
						_ = s.write(out)
					} else {
						s := &lineSession{conn: ch, tty: pty, buf: make([]byte, 2048)}
						runShell(s, sh, true)
					}
					status := struct{ Status uint32 }{uint32(sh.status)}
					_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(&status))
					_ = ch.CloseWrite()
					_ = ch.Close()
				}()
			default:
				if req.WantReply {
					_ = req.Reply(false, nil)
				}
			}
		case <-done:
			// The command or shell ended; drain until the channel closes.
			for range reqs {
			}
			return
		}
	}
}
