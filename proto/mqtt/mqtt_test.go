package mqtt

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/proto"
)

// broker is a running mosquitto.
type broker struct {
	ep proto.Endpoint
}

type brokerConfig struct {
	anonymous bool
	user      string // with password pass when non-empty
	pass      string
	tls       bool
}

// startMosquitto runs mosquitto with one listener on a unique loopback
// address and the given access rules.
func startMosquitto(t *testing.T, cfg brokerConfig) broker {
	t.Helper()
	daemontest.Require(t, "mosquitto=mosquitto", "mosquitto_passwd=mosquitto")
	dir := t.TempDir()
	host, port := daemontest.Addr(), 1883
	var conf strings.Builder
	conf.WriteString("listener " + strconv.Itoa(port) + " " + host + "\n")
	conf.WriteString("persistence false\nlog_dest stdout\n")
	if os.Geteuid() == 0 {
		// mosquitto 2 drops root to the "mosquitto" user, which could not
		// read the test's temp files; keep root for the test only.
		conf.WriteString("user root\n")
	}
	conf.WriteString("allow_anonymous " + strconv.FormatBool(cfg.anonymous) + "\n")
	if cfg.user != "" {
		pw := filepath.Join(dir, "passwd")
		if out, err := exec.Command("mosquitto_passwd", "-b", "-c", pw, cfg.user, cfg.pass).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
		}
		conf.WriteString("password_file " + pw + "\n")
	}
	if cfg.tls {
		cert, key := writeSelfSigned(t, dir)
		conf.WriteString("certfile " + cert + "\nkeyfile " + key + "\n")
	}
	confPath := daemontest.WriteFile(t, dir, "mosquitto.conf", conf.String(), 0o644)
	daemontest.Start(t, "mosquitto", "-c", confPath)
	daemontest.WaitTCP(t, host, port)
	return broker{ep: proto.Endpoint{Host: host, Port: port, Transport: "tcp", TLS: cfg.tls, Timeout: 2 * time.Second}}
}

// writeSelfSigned writes a throwaway self-signed certificate and key.
func writeSelfSigned(t *testing.T, dir string) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "iotcop-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath = daemontest.WriteFile(t, dir, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), 0o644)
	keyPath = daemontest.WriteFile(t, dir, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})), 0o600)
	return certPath, keyPath
}

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
	ctx := daemontest.Context(t)
	conn, err := ep.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return New().Identify(ctx, conn, nil, ep)
}

func TestMosquitto(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		cfg           brokerConfig
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
			cfg:           brokerConfig{anonymous: true},
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
			cfg:           brokerConfig{user: "hub", pass: "s3cret-Pass"},
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
			cfg:           brokerConfig{user: "cam", pass: "tls-Pass1", tls: true},
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
			b := startMosquitto(t, tt.cfg)
			ctx := daemontest.Context(t)
			id, err := identify(t, b.ep)
			if err != nil {
				t.Fatalf("Identify: %v", err)
			}
			if id.Protocol != "mqtt" || id.TLS != tt.cfg.tls {
				t.Errorf("Identify = protocol %q tls %v, want mqtt tls %v", id.Protocol, id.TLS, tt.cfg.tls)
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

			sess, err := New().Open(ctx, b.ep, id)
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

			oa, err := New().ProbeOpenAccess(ctx, b.ep, id)
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
	ln, err := net.Listen("tcp", net.JoinHostPort(daemontest.Addr(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				handle(c)
			}()
		}
	}()
	addr := ln.Addr().(*net.TCPAddr)
	return proto.Endpoint{Host: addr.IP.String(), Port: addr.Port, Transport: "tcp", Timeout: 500 * time.Millisecond}
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
