package telnet

import (
	"testing"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/proto"
)

// weakPassword is the admin password of the weak device: not in any
// dictionary, so only the last credential tried matches.
const weakPassword = "Kq7-vZ2p!x"

func identifyLive(t *testing.T, ep proto.Endpoint) *proto.Identity {
	t.Helper()
	id, err := daemontest.Identify(t, New(), ep)
	if err != nil {
		t.Fatalf("Identify: %v", err)
	}
	return id
}

func TestBusyboxLogin(t *testing.T) {
	t.Parallel()
	ep := daemontest.BusyboxTelnetd(t, daemontest.TelnetdOptions{Password: weakPassword}).Endpoint()

	id := identifyLive(t, ep)
	if id.Protocol != "telnet" || id.Product != "BusyBox telnetd" || id.Info["prompt"] != "login" {
		t.Errorf("identity = %+v", id)
	}
	if oa, err := New().ProbeOpenAccess(daemontest.Context(t), ep, id); err != nil || oa != nil {
		t.Errorf("ProbeOpenAccess on a login-protected telnetd = %+v, %v; want nil, nil", oa, err)
	}

	// BusyBox login allows three tries per connection, so the last
	// credential also exercises the transparent reconnect.
	creds := []proto.Credential{
		{Username: "admin", Password: "admin"},
		{Username: "admin", Password: "1234"},
		{Username: "root", Password: "root"},
		{Username: "admin", Password: weakPassword},
	}
	want := []proto.Outcome{proto.Rejected, proto.Rejected, proto.Rejected, proto.Accepted}
	res := daemontest.TryAll(t, New(), ep, nil, creds...)
	for i, r := range res {
		if r.Outcome != want[i] {
			t.Errorf("Try(%s) = %v (%s), want %v", creds[i], r.Outcome, r.Detail, want[i])
		}
	}
	if r := res[3]; r.Proof != "echo nonce read back" {
		t.Errorf("accepted with proof %q", r.Proof)
	}
}

func TestBusyboxShellWithoutLogin(t *testing.T) {
	t.Parallel()
	ep := daemontest.BusyboxTelnetd(t, daemontest.TelnetdOptions{NoLogin: true}).Endpoint()

	id := identifyLive(t, ep)
	if id.Product != "BusyBox telnetd" || id.Info["prompt"] != "shell" {
		t.Errorf("identity = %+v", id)
	}
	oa, err := New().ProbeOpenAccess(daemontest.Context(t), ep, id)
	if err != nil {
		t.Fatal(err)
	}
	if oa == nil || oa.What != "telnet shell without login" || oa.Proof != "echo nonce read back" {
		t.Fatalf("open access = %+v, want a telnet shell without login", oa)
	}
	// No login prompt: a credential proves nothing here.
	if r := daemontest.TryAll(t, New(), ep, nil, proto.Credential{Username: "root", Password: "root"})[0]; r.Outcome == proto.Accepted {
		t.Errorf("credential accepted on a server without login: %+v", r)
	}
}

func TestBusyboxHardened(t *testing.T) {
	t.Parallel()
	ep := daemontest.BusyboxTelnetd(t, daemontest.TelnetdOptions{}).Endpoint() // strong random password
	creds := []proto.Credential{
		{Username: "root", Password: "root"},
		{Username: "admin", Password: "admin"},
		{Username: "admin", Password: weakPassword},
	}
	for i, r := range daemontest.TryAll(t, New(), ep, nil, creds...) {
		if r.Outcome != proto.Rejected {
			t.Errorf("Try(%s) = %v (%s), want rejected", creds[i], r.Outcome, r.Detail)
		}
	}
	if oa, err := New().ProbeOpenAccess(daemontest.Context(t), ep, nil); err != nil || oa != nil {
		t.Errorf("ProbeOpenAccess = %+v, %v; want nil, nil", oa, err)
	}
}
