package snmp

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/proto"
)

func identify(t *testing.T, ep proto.Endpoint) (*proto.Identity, error) {
	t.Helper()
	return daemontest.Identify(t, New(), ep)
}

func TestSnmpd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		agent        daemontest.SnmpdOptions
		wantPublic   bool
		wantVersions string
		logins       map[string]proto.Outcome // community -> outcome
		wantOpen     []string
	}{
		{
			name:         "public and private",
			agent:        daemontest.SnmpdOptions{ReadOnly: []string{"public"}, ReadWrite: []string{"private"}},
			wantPublic:   true,
			wantVersions: "v1,v2c,v3",
			logins: map[string]proto.Outcome{
				"public":  proto.Accepted,
				"private": proto.Accepted,
				"admin":   proto.Rejected,
			},
			wantOpen: []string{"public", "private"},
		},
		{
			name:         "hardened custom community",
			agent:        daemontest.SnmpdOptions{ReadOnly: []string{"Zq7-hardened-c0mm"}},
			wantVersions: "v3",
			logins: map[string]proto.Outcome{
				"Zq7-hardened-c0mm": proto.Accepted,
				"public":            proto.Rejected,
				"private":           proto.Rejected,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ep := daemontest.Snmpd(t, tt.agent).Endpoint()
			ctx := daemontest.Context(t)
			id, err := identify(t, ep)
			if err != nil {
				t.Fatalf("Identify: %v", err)
			}
			if id.Protocol != "snmp" || id.Product != "net-snmp" {
				t.Errorf("identity %q product %q, want snmp net-snmp", id.Protocol, id.Product)
			}
			if id.Info["engine_enterprise"] != "8072" || len(id.Info["engine_id"]) < 10 {
				t.Errorf("engine %q enterprise %q", id.Info["engine_id"], id.Info["engine_enterprise"])
			}
			if got := id.Info["snmp_versions"]; got != tt.wantVersions {
				t.Errorf("snmp_versions = %q, want %q", got, tt.wantVersions)
			}
			if tt.wantPublic {
				if !strings.HasPrefix(id.Info["sysdescr"], "Linux ") || id.Info["os"] != "Linux" || id.Info["community_public"] != "readable" {
					t.Errorf("sysdescr %q os %q public %q", id.Info["sysdescr"], id.Info["os"], id.Info["community_public"])
				}
			} else if id.Info["sysdescr"] != "" || id.Info["community_public"] != "" {
				t.Errorf("read sysDescr %q without the community", id.Info["sysdescr"])
			}
			if id.Info["any_community"] != "" {
				t.Errorf("any_community = %q on snmpd", id.Info["any_community"])
			}

			sess, err := New().Open(ctx, ep, id)
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			for community, want := range tt.logins {
				res, err := sess.Try(ctx, proto.Credential{Password: community})
				if err != nil {
					t.Fatalf("Try(%s): %v", community, err)
				}
				if res.Outcome != want {
					t.Errorf("Try(%s) = %v (%s), want %v", community, res.Outcome, res.Detail, want)
				}
				if res.Outcome == proto.Accepted && !strings.Contains(res.Proof, "answered GET sysDescr.0") {
					t.Errorf("proof %q", res.Proof)
				}
			}

			oa, err := New().ProbeOpenAccess(ctx, ep, id)
			if err != nil {
				t.Fatalf("ProbeOpenAccess: %v", err)
			}
			if tt.wantOpen == nil {
				if oa != nil {
					t.Fatalf("ProbeOpenAccess = %+v on a hardened agent", oa)
				}
				return
			}
			if oa == nil {
				t.Fatal("ProbeOpenAccess = nil, want public and private readable")
			}
			if got := oa.Details["communities"].([]string); !slices.Equal(got, tt.wantOpen) {
				t.Errorf("communities = %v, want %v", got, tt.wantOpen)
			}
			if _, ok := oa.Details["note"]; !ok {
				t.Error("no note about private being likely writable")
			}
		})
	}
}

// fakeAgent answers every datagram with reply(request) when not nil.
func fakeAgent(t *testing.T, reply func(req []byte) [][]byte) proto.Endpoint {
	t.Helper()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(daemontest.Addr(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			for _, out := range reply(buf[:n]) {
				_, _ = pc.WriteTo(out, from)
			}
		}
	}()
	a := pc.LocalAddr().(*net.UDPAddr)
	return proto.Endpoint{Host: a.IP.String(), Port: a.Port, Transport: "udp", Timeout: 600 * time.Millisecond}
}

// respond builds a GetResponse to a v1/v2c request.
func respond(t *testing.T, req []byte, status gosnmp.SNMPError, value any) [][]byte {
	pkt, err := decode(req)
	if err != nil || pkt.Version == gosnmp.Version3 {
		return nil
	}
	out := &gosnmp.SnmpPacket{Version: pkt.Version, Community: pkt.Community, PDUType: gosnmp.GetResponse,
		RequestID: pkt.RequestID, Error: status,
		Variables: []gosnmp.SnmpPDU{{Name: oidSysDescr, Type: gosnmp.OctetString, Value: value}}}
	if value == nil {
		out.Variables[0].Type = gosnmp.Null
	}
	b, err := out.MarshalMsg()
	if err != nil {
		t.Error(err)
		return nil
	}
	return [][]byte{b}
}

func TestFakeAgents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		reply        func(t *testing.T, req []byte) [][]byte
		wantIdentify error
		wantLogin    proto.Outcome
	}{
		{
			name:         "silent",
			reply:        func(*testing.T, []byte) [][]byte { return nil },
			wantIdentify: proto.ErrNotThisProtocol,
			wantLogin:    proto.Unknown, // silence without proof of life proves nothing
		},
		{
			name: "garbage",
			reply: func(_ *testing.T, req []byte) [][]byte {
				return [][]byte{[]byte("HTTP/1.1 400 Bad Request\r\n\r\n"), {0x30, 0x82, 0xff}}
			},
			wantIdentify: proto.ErrNotThisProtocol,
			wantLogin:    proto.Unknown,
		},
		{
			name: "authorization error for everything",
			reply: func(t *testing.T, req []byte) [][]byte {
				return respond(t, req, gosnmp.AuthorizationError, nil)
			},
			wantLogin: proto.Rejected,
		},
		{
			name: "wrong request id",
			reply: func(t *testing.T, req []byte) [][]byte {
				out := respond(t, req, gosnmp.NoError, []byte("Linux"))
				for _, b := range out {
					b[len(b)-30] ^= 0xff // corrupt
				}
				return out
			},
			wantIdentify: proto.ErrNotThisProtocol,
			wantLogin:    proto.Unknown,
		},
		{
			name: "answers any community",
			reply: func(t *testing.T, req []byte) [][]byte {
				return respond(t, req, gosnmp.NoError, []byte("Linux cam 4.9.0 #1 armv7l"))
			},
			wantLogin: proto.Accepted, // any_community tells the caller why
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ep := fakeAgent(t, func(req []byte) [][]byte { return tt.reply(t, req) })
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			id, err := identify(t, ep)
			if !errors.Is(err, tt.wantIdentify) {
				t.Fatalf("Identify err = %v, want %v", err, tt.wantIdentify)
			}
			sess, err := New().Open(ctx, ep, id)
			if err != nil {
				t.Fatal(err)
			}
			res, _ := sess.Try(ctx, proto.Credential{Password: "admin"})
			if res.Outcome != tt.wantLogin {
				t.Errorf("Try = %v (%s), want %v", res.Outcome, res.Detail, tt.wantLogin)
			}
			if tt.name == "answers any community" && id.Info["any_community"] != "true" {
				t.Errorf("any_community = %q", id.Info["any_community"])
			}
		})
	}
}

func TestEnterpriseOf(t *testing.T) {
	tests := []struct {
		id   []byte
		want uint32
	}{
		{[]byte{0x80, 0x00, 0x1f, 0x88, 0x80, 1, 2, 3}, 8072},
		{[]byte{0x00, 0x00, 0x00, 0x09, 0x01}, 9},
		{[]byte{0x80, 0x00}, 0},
	}
	for _, tt := range tests {
		if got := enterpriseOf(tt.id); got != tt.want {
			t.Errorf("enterpriseOf(% x) = %d, want %d", tt.id, got, tt.want)
		}
	}
}

// FuzzDecode checks that hostile datagrams never panic the decoder and the
// engine-id reading built on it.
func FuzzDecode(f *testing.F) {
	for _, mk := range []func() (*request, error){
		newDiscovery,
		func() (*request, error) { return newGet(gosnmp.Version2c, "public") },
		func() (*request, error) { return newGet(gosnmp.Version1, "x") },
	} {
		r, err := mk()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(r.wire)
	}
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x03})
	f.Fuzz(func(t *testing.T, data []byte) {
		pkt, err := decode(data)
		if err != nil {
			return
		}
		if e, ok := engineFrom(pkt); ok && len(e.id) == 0 {
			t.Fatal("empty engine id reported")
		}
		_, _ = readable(pkt)
	})
}
