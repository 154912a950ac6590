package check

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/iotcop/iotcop/creds"
	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/proto"
)

// fakeAuth accepts one credential (or anything), locks out after a count.
type fakeAuth struct {
	mu        sync.Mutex
	unknown   bool
	valid     proto.Credential
	acceptAll bool
	lockAfter int
	errAlways bool
	tries     []proto.Credential
}

func (f *fakeAuth) Name() string { return "telnet" }
func (f *fakeAuth) Open(context.Context, proto.Endpoint, *proto.Identity) (proto.LoginSession, error) {
	return f, nil
}
func (f *fakeAuth) Close() error { return nil }
func (f *fakeAuth) Try(_ context.Context, c proto.Credential) (proto.LoginResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tries = append(f.tries, c)
	if f.unknown {
		return proto.LoginResult{Outcome: proto.Unknown, Detail: "prompt after every password"}, nil
	}
	if f.errAlways {
		return proto.LoginResult{}, errors.New("connection reset")
	}
	if f.lockAfter > 0 && len(f.tries) > f.lockAfter {
		return proto.LoginResult{Outcome: proto.LockedOut, Detail: "account locked"}, nil
	}
	if f.acceptAll || c == f.valid {
		return proto.LoginResult{Outcome: proto.Accepted, Proof: "echo nonce read back"}, nil
	}
	return proto.LoginResult{Outcome: proto.Rejected}, nil
}

func device() *Device {
	return &Device{Address: "127.0.0.9", Services: []Service{{
		Endpoint: proto.Endpoint{Host: "127.0.0.9", Port: 23, Transport: "tcp"},
		Identity: &proto.Identity{Protocol: "telnet"},
	}}}
}

func TestDefaultCredentials(t *testing.T) {
	dict, err := creds.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		auth         *fakeAuth
		budget       int
		wantCheck    string
		wantPassword string
		wantTries    int
		wantErr      string
	}{
		{name: "mirai pair found", auth: &fakeAuth{valid: proto.Credential{Username: "root", Password: "admin"}}, budget: 8,
			wantCheck: finding.CheckDefaultCredentials, wantPassword: "admin", wantTries: 4},
		{name: "beyond budget not tried", auth: &fakeAuth{valid: proto.Credential{Username: "root", Password: "admin"}}, budget: 2,
			wantTries: 3},
		{name: "accepts anything is not a default password", auth: &fakeAuth{acceptAll: true}, budget: 8,
			wantCheck: finding.CheckUnauthenticatedAccess, wantTries: 1},
		{name: "lockout stops", auth: &fakeAuth{valid: proto.Credential{Username: "admin", Password: "admin"}, lockAfter: 2}, budget: 8,
			wantTries: 3, wantErr: "lockout"},
		{name: "repeated disconnects stop", auth: &fakeAuth{errAlways: true}, budget: 8,
			wantTries: 1 + maxConsecutiveErrors, wantErr: "consecutive errors"},
		{name: "no verdict stops early", auth: &fakeAuth{unknown: true}, budget: 40,
			wantTries: 1 + maxConsecutiveUnknown, wantErr: "proved nothing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &DefaultCredentials{Auth: map[string]proto.Authenticator{"telnet": tc.auth}, Dict: dict, Budget: creds.Budget{PerService: tc.budget}}
			dev := device()
			fs, err := c.Run(context.Background(), dev)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if len(tc.auth.tries) != tc.wantTries {
				t.Fatalf("tries = %d %v, want %d", len(tc.auth.tries), tc.auth.tries, tc.wantTries)
			}
			if dev.Attempts(0) != tc.wantTries {
				t.Fatalf("recorded attempts %d, want %d", dev.Attempts(0), tc.wantTries)
			}
			// The first try is always a random wrong credential.
			if !strings.HasPrefix(tc.auth.tries[0].Username, "iotcop") {
				t.Fatalf("first try %v is not the random probe", tc.auth.tries[0])
			}
			if tc.wantCheck == "" {
				if len(fs) != 0 {
					t.Fatalf("unexpected findings %+v", fs)
				}
				return
			}
			if len(fs) != 1 || fs[0].Check != tc.wantCheck || fs[0].Severity != finding.Critical {
				t.Fatalf("findings %+v", fs)
			}
			if tc.wantPassword != "" {
				if got := fs[0].Evidence["password"]; got != finding.Secret(tc.wantPassword) {
					t.Fatalf("password evidence %v", got)
				}
				if fs[0].Evidence["proof"] != "echo nonce read back" {
					t.Fatalf("proof %v", fs[0].Evidence["proof"])
				}
			}
		})
	}
}

func TestCleartextSeverity(t *testing.T) {
	dev := device()
	dev.Services = append(dev.Services, Service{
		Endpoint: proto.Endpoint{Host: "127.0.0.9", Port: 443, Transport: "tcp", TLS: true},
		Identity: &proto.Identity{Protocol: "http", TLS: true, Info: map[string]string{"auth_scheme": "basic"}},
	}, Service{
		Endpoint: proto.Endpoint{Host: "127.0.0.9", Port: 80, Transport: "tcp"},
		Identity: &proto.Identity{Protocol: "http"},
	})
	fs, _ := Cleartext{}.Run(context.Background(), dev)
	if len(fs) != 1 || fs[0].Port != 23 || fs[0].Severity != finding.Medium {
		t.Fatalf("before acceptance: %+v", fs)
	}
	dev.note(0, true, false, 1)
	fs, _ = Cleartext{}.Run(context.Background(), dev)
	if len(fs) != 1 || fs[0].Severity != finding.High || fs[0].Evidence["credential_accepted"] != true {
		t.Fatalf("after acceptance: %+v", fs)
	}
}

func TestOpenServiceNotGuessed(t *testing.T) {
	dict, _ := creds.Builtin()
	auth := &fakeAuth{valid: proto.Credential{Username: "root", Password: "admin"}}
	dev := device()
	dev.note(0, false, true, 0) // unauthenticated-access already found it open
	fs, err := (&DefaultCredentials{Auth: map[string]proto.Authenticator{"telnet": auth}, Dict: dict}).Run(context.Background(), dev)
	if err != nil || len(fs) != 0 || len(auth.tries) != 0 {
		t.Fatalf("open service was guessed at: %d tries, findings %+v, err %v", len(auth.tries), fs, err)
	}
}

func TestSharedSecrets(t *testing.T) {
	dict, _ := creds.Builtin()
	var shared SharedSecrets
	for _, host := range []string{"127.0.0.9", "127.0.0.10", "127.0.0.11"} {
		dev := device()
		dev.Address = host
		dev.Services[0].Endpoint.Host = host
		valid := proto.Credential{Username: "root", Password: "xc3511"}
		if host == "127.0.0.11" {
			valid = proto.Credential{Username: "admin", Password: "admin"}
		}
		c := &DefaultCredentials{Auth: map[string]proto.Authenticator{"telnet": &fakeAuth{valid: valid}}, Dict: dict}
		if _, err := c.Run(context.Background(), dev); err != nil {
			t.Fatal(err)
		}
		dev.Observe(0, ObservedSSHHostKey, "SHA256:unique-"+host, "ssh-ed25519")
		shared.Add(host, dev.Observations())
	}
	fs := shared.Findings()
	if len(fs) != 1 {
		t.Fatalf("want one shared credential finding, got %+v", fs)
	}
	f := fs[0]
	units, _ := f.Evidence["units"].([]string)
	if f.Check != finding.CheckSharedSecret || f.Severity != finding.Critical || len(units) != 2 ||
		units[0] != "127.0.0.9:23" || units[1] != "127.0.0.10:23" || f.Host != "127.0.0.9" {
		t.Fatalf("finding %+v", f)
	}
	if strings.Contains(f.Evidence["value"].(string), "xc3511") {
		t.Fatal("shared-secret evidence holds the password in clear")
	}
}

// Parallel sessions share the list and the budget, and the valid pair is
// still found with its proof.
func TestDefaultCredentialsParallel(t *testing.T) {
	dict, _ := creds.Builtin()
	list := dict.For("telnet", "")
	valid := list[29]
	auth := &fakeAuth{valid: valid}
	c := &DefaultCredentials{Auth: map[string]proto.Authenticator{"telnet": auth}, Dict: dict, Budget: creds.Budget{PerService: 30}, Parallel: 4}
	dev := device()
	fs, err := c.Run(context.Background(), dev)
	if err != nil || len(fs) != 1 || fs[0].Evidence["password"] != finding.Secret(valid.Password) {
		t.Fatalf("findings %+v err %v", fs, err)
	}
	if n := len(auth.tries); n > 31 || n < 2 {
		t.Fatalf("%d tries for a budget of 30 (+1 probe)", n)
	}
	seen := map[proto.Credential]bool{}
	for _, c := range auth.tries[1:] {
		if seen[c] {
			t.Fatalf("%s tried twice across sessions", c)
		}
		seen[c] = true
	}
}

// With parallel sessions the list starts while the random pair is tried;
// a service that accepts the random pair is still reported as accepting
// anything, never as having a default password.
func TestParallelAcceptsAnything(t *testing.T) {
	dict, _ := creds.Builtin()
	auth := &fakeAuth{acceptAll: true}
	c := &DefaultCredentials{Auth: map[string]proto.Authenticator{"telnet": auth}, Dict: dict, Budget: creds.Budget{PerService: 30}, Parallel: 4}
	fs, err := c.Run(context.Background(), device())
	if err != nil || len(fs) != 1 || fs[0].Check != finding.CheckUnauthenticatedAccess {
		t.Fatalf("findings %+v err %v", fs, err)
	}
}
