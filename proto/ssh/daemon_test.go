package ssh

import (
	"strings"
	"testing"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/proto"
)

// The test account exists only inside the daemons' private mount
// namespaces (see daemontest.AccountFiles).
const (
	testUser     = "iotcoptest"
	testPassword = "Kq7-vZ2p!x"
)

func identifyLive(t *testing.T, ep proto.Endpoint) *proto.Identity {
	t.Helper()
	id, err := daemontest.Identify(t, New(), ep)
	if err != nil {
		t.Fatalf("Identify: %v", err)
	}
	return id
}

func checkOutcomes(t *testing.T, creds []proto.Credential, res []proto.LoginResult, want []proto.Outcome) {
	t.Helper()
	for i, r := range res {
		if r.Outcome != want[i] {
			t.Errorf("Try(%s) = %v (%s), want %v", creds[i], r.Outcome, r.Detail, want[i])
		}
		if r.Outcome == proto.Accepted && r.Proof != ProofEcho {
			t.Errorf("Try(%s) accepted with proof %q (%s), want %q", creds[i], r.Proof, r.Detail, ProofEcho)
		}
	}
}

func TestDropbearPassword(t *testing.T) {
	t.Parallel()
	ep := daemontest.Dropbear(t, daemontest.DropbearOptions{User: testUser, Password: testPassword}).Endpoint()
	id := identifyLive(t, ep)
	if id.Product != "Dropbear sshd" || id.Version == "" || id.Info["software"] != "dropbear_"+id.Version {
		t.Errorf("identity = %+v", id)
	}
	creds := []proto.Credential{
		{Username: "root", Password: "root"},
		{Username: testUser, Password: "admin"},
		{Username: testUser, Password: "12345"},
		{Username: testUser, Password: testPassword},
	}
	checkOutcomes(t, creds, daemontest.TryAll(t, New(), ep, nil, creds...),
		[]proto.Outcome{proto.Rejected, proto.Rejected, proto.Rejected, proto.Accepted})
}

func TestDropbearKeyOnly(t *testing.T) {
	t.Parallel()
	ep := daemontest.Dropbear(t, daemontest.DropbearOptions{User: testUser, Password: testPassword, KeyOnly: true}).Endpoint()
	if id := identifyLive(t, ep); id.Product != "Dropbear sshd" {
		t.Errorf("identity = %+v", id)
	}
	creds := []proto.Credential{
		{Username: testUser, Password: testPassword},
		{Username: "root", Password: "root"},
	}
	for i, r := range daemontest.TryAll(t, New(), ep, nil, creds...) {
		if r.Outcome != proto.Rejected {
			t.Errorf("Try(%s) = %v (%s), want rejected", creds[i], r.Outcome, r.Detail)
		}
	}
}

func TestOpenSSH(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mode  string
		creds []proto.Credential
		want  []proto.Outcome
	}{
		{
			// MaxAuthTries 3: the third failure is a disconnect, the
			// fourth try needs a new connection.
			mode: "password",
			creds: []proto.Credential{
				{Username: testUser, Password: "admin"},
				{Username: testUser, Password: "1234"},
				{Username: testUser, Password: "password"},
				{Username: testUser, Password: testPassword},
			},
			want: []proto.Outcome{proto.Rejected, proto.Rejected, proto.Rejected, proto.Accepted},
		},
		{
			mode: "keyboard-interactive",
			creds: []proto.Credential{
				{Username: testUser, Password: "admin"},
				{Username: testUser, Password: testPassword},
			},
			want: []proto.Outcome{proto.Rejected, proto.Accepted},
		},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			ep := daemontest.OpenSSH(t, daemontest.OpenSSHOptions{User: testUser, Password: testPassword, KeyboardInteractive: tt.mode == "keyboard-interactive"}).Endpoint()
			id := identifyLive(t, ep)
			if id.Product != "OpenSSH" || id.Version == "" || !strings.HasPrefix(id.Info["software"], "OpenSSH_") {
				t.Errorf("identity = %+v", id)
			}
			res := daemontest.TryAll(t, New(), ep, nil, tt.creds...)
			checkOutcomes(t, tt.creds, res, tt.want)
			if last := res[len(res)-1]; !strings.Contains(last.Detail, tt.mode) {
				t.Errorf("accepted via %q, want %s", last.Detail, tt.mode)
			}
		})
	}
}
