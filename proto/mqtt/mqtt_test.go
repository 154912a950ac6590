package mqtt

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/proto"
)

// mosquittoVersion reads the installed broker's version from its help text.
func mosquittoVersion(t *testing.T) string {
	t.Helper()
	out, _ := exec.Command("mosquitto", "-h").CombinedOutput()
	m := regexp.MustCompile(`mosquitto version (\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("cannot read mosquitto version from:\n%s", out)
	}
	return string(m[1])
}

func identify(t *testing.T, ep proto.Endpoint) (*proto.Identity, error) {
	t.Helper()
	return daemontest.Identify(t, New(), ep)
}

func TestMosquitto(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		cfg           daemontest.MosquittoOptions
		wantAnonymous string
		wantProduct   bool
		logins        []struct {
			cred proto.Credential
			want proto.Outcome
		}
		wantOpen []string // filters granted anonymously; nil: no open access
	}{
		{
			name:          "anonymous",
			cfg:           daemontest.MosquittoOptions{Anonymous: true},
			wantAnonymous: "true",
			wantProduct:   true,
			logins: []struct {
				cred proto.Credential
				want proto.Outcome
			}{
				// Any pair gets in (the caller's random-pair calibration
				// turns that into open access, not a default credential).
				{proto.Credential{Username: "admin", Password: "admin"}, proto.Accepted},
				{proto.Credential{Username: "x9q", Password: "random-7f3a"}, proto.Accepted},
			},
			wantOpen: []string{"#", "$SYS/#"},
		},
		{
			name:          "password file",
			cfg:           daemontest.MosquittoOptions{User: "hub", Password: "s3cret-Pass"},
			wantAnonymous: "false",
			logins: []struct {
				cred proto.Credential
				want proto.Outcome
			}{
				{proto.Credential{Username: "hub", Password: "s3cret-Pass"}, proto.Accepted},
				{proto.Credential{Username: "hub", Password: "admin"}, proto.Rejected},
				{proto.Credential{Username: "admin", Password: "s3cret-Pass"}, proto.Rejected},
				{proto.Credential{Username: "", Password: ""}, proto.Rejected},
			},
		},
		{
			name:          "tls with password file",
			cfg:           daemontest.MosquittoOptions{User: "cam", Password: "tls-Pass1", TLS: true},
			wantAnonymous: "false",
			logins: []struct {
				cred proto.Credential
				want proto.Outcome
			}{
				{proto.Credential{Username: "cam", Password: "tls-Pass1"}, proto.Accepted},
				{proto.Credential{Username: "cam", Password: "cam"}, proto.Rejected},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ep := daemontest.Mosquitto(t, tt.cfg).Endpoint()
			ctx := daemontest.Context(t)
			id, err := identify(t, ep)
			if err != nil {
				t.Fatalf("Identify: %v", err)
			}
			if id.Protocol != "mqtt" || id.TLS != tt.cfg.TLS {
				t.Errorf("Identify = protocol %q tls %v, want mqtt tls %v", id.Protocol, id.TLS, tt.cfg.TLS)
			}
			if got := id.Info["anonymous"]; got != tt.wantAnonymous {
				t.Errorf("anonymous = %q, want %q", got, tt.wantAnonymous)
			}
			if got := id.Info["mqtt_version"]; got != "3.1.1" {
				t.Errorf("mqtt_version = %q, want 3.1.1", got)
			}
			if tt.wantProduct {
				wantVersion := mosquittoVersion(t)
				if id.Product != "mosquitto" || id.Version != wantVersion {
					t.Errorf("product %q version %q, want mosquitto %s", id.Product, id.Version, wantVersion)
				}
			} else if id.Product != "" {
				t.Errorf("product %q learned without access", id.Product)
			}

			sess, err := New().Open(ctx, ep, id)
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			for _, l := range tt.logins {
				res, err := sess.Try(ctx, l.cred)
				if err != nil {
					t.Fatalf("Try(%s): %v", l.cred, err)
				}
				if res.Outcome != l.want {
					t.Errorf("Try(%s) = %v (%s%s), want %v", l.cred, res.Outcome, res.Proof, res.Detail, l.want)
				}
				if res.Outcome == proto.Accepted && !strings.Contains(res.Proof, "SUBACK granted") {
					t.Errorf("Accepted without SUBACK proof: %q", res.Proof)
				}
			}

			oa, err := New().ProbeOpenAccess(ctx, ep, id)
			if err != nil {
				t.Fatalf("ProbeOpenAccess: %v", err)
			}
			if tt.wantOpen == nil {
				if oa != nil {
					t.Fatalf("ProbeOpenAccess = %+v on a broker that refuses anonymous clients", oa)
				}
				return
			}
			if oa == nil {
				t.Fatal("ProbeOpenAccess = nil on an anonymous broker")
			}
			if got := oa.Details["granted"].([]string); !slices.Equal(got, tt.wantOpen) {
				t.Errorf("granted = %v, want %v", got, tt.wantOpen)
			}
			if topics := oa.Details["topics"].([]string); !slices.Contains(topics, "$SYS/broker/version") {
				t.Errorf("topics %v lack $SYS/broker/version", topics)
			}
			if !strings.Contains(oa.What, "subscribe to #") {
				t.Errorf("What = %q", oa.What)
			}
		})
	}
}

// fakeBroker accepts connections on loopback and runs handle on each.
func fakeBroker(t *testing.T, handle func(net.Conn)) proto.Endpoint {
	t.Helper()
	return daemontest.ServeTCP(t, "", 0, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		handle(c)
	}).Endpoint(500 * time.Millisecond)
}

// readConnect reads a CONNECT and returns its protocol level and whether it
// carried a username.
func readConnect(r *bufio.Reader) (level byte, withUser bool, err error) {
	p, err := readPacket(r)
	if err != nil {
		return 0, false, err
	}
	if p.typ != typeConnect {
		return 0, false, errors.New("not CONNECT")
	}
	c := &cursor{b: p.body}
	c.string("name")
	level = c.byte("level")
	flags := c.byte("flags")
	return level, flags&0x80 != 0, c.err
}

func TestFakeBrokers(t *testing.T) {
	t.Parallel()
	v5Connack := func(code byte) []byte { return []byte{0x20, 0x03, 0x00, code, 0x00} }
	tests := []struct {
		name string
		// handle plays the broker.
		handle       func(net.Conn)
		wantIdentify error // nil: identified as mqtt
		wantVersion  string
		wantLogin    proto.Outcome
		wantOpen     bool
	}{
		{
			name: "v5 only broker",
			handle: func(c net.Conn) {
				r := bufio.NewReader(c)
				level, withUser, err := readConnect(r)
				if err != nil {
					return
				}
				if level != 5 {
					_, _ = c.Write(v5Connack(rc5UnsupportedVer))
					return
				}
				if withUser {
					_, _ = c.Write(v5Connack(rc5BadCredentials))
					return
				}
				_, _ = c.Write(v5Connack(rc5NotAuthorized))
			},
			wantVersion: "5",
			wantLogin:   proto.Rejected,
		},
		{
			name: "accepts everything but refuses every subscription",
			handle: func(c net.Conn) {
				r := bufio.NewReader(c)
				if _, _, err := readConnect(r); err != nil {
					return
				}
				_, _ = c.Write([]byte{0x20, 0x02, 0x00, 0x00})
				for {
					p, err := readPacket(r)
					if err != nil || p.typ != typeSubscribe {
						return
					}
					_, _ = c.Write([]byte{0x90, 0x04, p.body[0], p.body[1], 0x80, 0x80})
				}
			},
			wantVersion: "3.1.1",
			wantLogin:   proto.Unknown,
			wantOpen:    true,
		},
		{
			name:         "silent accept",
			handle:       func(c net.Conn) { _, _ = c.Read(make([]byte, 512)); time.Sleep(2 * time.Second) },
			wantIdentify: proto.ErrNotThisProtocol,
			wantLogin:    proto.Unknown,
		},
		{
			name: "endless garbage",
			handle: func(c net.Conn) {
				junk := []byte(strings.Repeat("login: ", 1000))
				for {
					if _, err := c.Write(junk); err != nil {
						return
					}
				}
			},
			wantIdentify: proto.ErrNotThisProtocol,
			wantLogin:    proto.Unknown,
		},
		{
			name: "connack then huge packet",
			handle: func(c net.Conn) {
				_, _ = c.Write([]byte{0x20, 0x02, 0x00, 0x00, 0x90, 0xff, 0xff, 0xff, 0x7f})
			},
			wantVersion: "3.1.1",
			wantLogin:   proto.Unknown,
			wantOpen:    true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ep := fakeBroker(t, tt.handle)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			id, err := identify(t, ep)
			if tt.wantIdentify != nil {
				if !errors.Is(err, tt.wantIdentify) {
					t.Errorf("Identify err = %v, want %v", err, tt.wantIdentify)
				}
			} else if err != nil {
				t.Fatalf("Identify: %v", err)
			} else if got := id.Info["mqtt_version"]; got != tt.wantVersion {
				t.Errorf("mqtt_version = %q, want %q", got, tt.wantVersion)
			}
			sess, err := New().Open(ctx, ep, id)
			if err != nil {
				t.Fatal(err)
			}
			res, _ := sess.Try(ctx, proto.Credential{Username: "admin", Password: "admin"})
			if res.Outcome != tt.wantLogin {
				t.Errorf("Try = %v (%s), want %v", res.Outcome, res.Detail, tt.wantLogin)
			}
			oa, _ := New().ProbeOpenAccess(ctx, ep, id)
			if (oa != nil) != tt.wantOpen {
				t.Errorf("ProbeOpenAccess = %+v, want open %v", oa, tt.wantOpen)
			}
			if oa != nil && len(oa.Details["granted"].([]string)) != 0 {
				t.Errorf("granted %v though every subscription was refused", oa.Details["granted"])
			}
		})
	}
}
