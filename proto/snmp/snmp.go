// Package snmp identifies SNMP agents (v1, v2c, v3) and tests community
// strings against them, reading only: it sends GETs of sysDescr.0 and SNMPv3
// engine discovery probes, never a SET. Messages are encoded and decoded by
// gosnmp; the exchange (timing, matching, bounds) is ours so that it runs on
// the connection the scanner hands over.
//
// Agents silently drop a message whose community they do not know (RFC 3584
// section 4.2, net-snmp does so), so silence is how a wrong community looks.
// Silence counts as Rejected only when the agent is proven alive in the same
// exchange (it answered the SNMPv3 discovery probe sent alongside) or the
// community form was proven to work before (a v1/v2c community answered
// during identification); otherwise it is Unknown.
package snmp

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/iotcop/iotcop/proto"
)

// Protocol implements proto.Identifier, proto.Authenticator and
// proto.OpenAccessProber for SNMP.
type Protocol struct{}

// New returns the SNMP protocol.
func New() *Protocol { return &Protocol{} }

var (
	_ proto.Identifier       = (*Protocol)(nil)
	_ proto.Authenticator    = (*Protocol)(nil)
	_ proto.OpenAccessProber = (*Protocol)(nil)
)

// Name returns "snmp".
func (*Protocol) Name() string { return "snmp" }

// Transport returns "udp".
func (*Protocol) Transport() string { return "udp" }

// PortPriority reports the SNMP agent port 161.
func (*Protocol) PortPriority(port int) bool { return port == 161 }

// ServerFirst returns false: agents only answer requests.
func (*Protocol) ServerFirst() bool { return false }

// maxGrace bounds how long an exchange waits for the remaining replies once
// the agent has answered one request.
const maxGrace = 500 * time.Millisecond

func grace(ep proto.Endpoint) time.Duration { return min(maxGrace, ep.IOTimeout()) }

// enterprises names device makers by IANA private enterprise number, as
// found at the start of SNMPv3 engine ids.
var enterprises = map[uint32]string{
	9:     "cisco",
	11:    "hp",
	171:   "d-link",
	311:   "microsoft",
	2011:  "huawei",
	2636:  "juniper",
	4526:  "netgear",
	6574:  "synology",
	11863: "tp-link",
	14988: "mikrotik",
	24681: "qnap",
	41112: "ubiquiti",
}

// enterpriseNetSNMP is the net-snmp project's enterprise number; its agent
// puts it in engine ids it generates.
const enterpriseNetSNMP = 8072

// Identify sends, at once, v2c GETs of sysDescr.0 with "public" and with a
// random community, a v1 GET with "public" and an SNMPv3 discovery probe.
// Any well-formed matching answer (a value, an error status or a v3 Report)
// proves SNMP; silence on every one is ErrNotThisProtocol.
//
// Info keys: "snmp_versions" ("v1,v2c,v3": versions that answered),
// "sysdescr" (when "public" could read it), "community_public"
// ("readable"), "any_community" ("true" when a random community read
// sysDescr: the agent ignores communities), "engine_id" (hex),
// "engine_boots", "engine_enterprise" (IANA number from the engine id),
// "os" and "os_version" (from a Linux sysDescr).
func (p *Protocol) Identify(ctx context.Context, conn net.Conn, banner []byte, ep proto.Endpoint) (*proto.Identity, error) {
	public2, err := newGet(gosnmp.Version2c, "public")
	if err != nil {
		return nil, err
	}
	random2, err := newGet(gosnmp.Version2c, "iotcop-"+strings.ToLower(randomToken()))
	if err != nil {
		return nil, err
	}
	public1, err := newGet(gosnmp.Version1, "public")
	if err != nil {
		return nil, err
	}
	disco, err := newDiscovery()
	if err != nil {
		return nil, err
	}
	replies, err := exchange(ctx, conn, []*request{public2, random2, public1, disco}, ep.IOTimeout(), grace(ep))
	if err != nil {
		return nil, fmt.Errorf("snmp identify %s: %v: %w", ep.Addr(), err, proto.ErrNotThisProtocol)
	}
	if len(replies) == 0 {
		return nil, fmt.Errorf("snmp identify %s: %w: %w", ep.Addr(), errNoAnswer, proto.ErrNotThisProtocol)
	}
	id := &proto.Identity{Protocol: "snmp"}
	var versions []string
	for _, r := range replies {
		if v := versionName(r.req.version); !slices.Contains(versions, v) {
			versions = append(versions, v)
		}
		switch r.req {
		case disco:
			if e, ok := engineFrom(r.pkt); ok {
				id.Set("engine_id", e.hex())
				id.Set("engine_boots", strconv.FormatUint(uint64(e.boots), 10))
				if e.enterprise != 0 {
					id.Set("engine_enterprise", strconv.FormatUint(uint64(e.enterprise), 10))
				}
				if e.enterprise == enterpriseNetSNMP {
					id.Product = "net-snmp"
				}
				id.Vendor = enterprises[e.enterprise]
			}
		case random2:
			if _, ok := readable(r.pkt); ok {
				id.Set("any_community", "true")
			}
		default:
			if descr, ok := readable(r.pkt); ok {
				id.Set("community_public", "readable")
				if id.Info["sysdescr"] == "" {
					id.Set("sysdescr", descr)
					id.Banner = descr
					setOS(id, descr)
				}
			}
		}
	}
	slices.Sort(versions)
	id.Set("snmp_versions", strings.Join(versions, ","))
	return id, nil
}

// setOS records the operating system a sysDescr names, as net-snmp's
// default ("Linux host 6.1.0-13-amd64 #1 SMP ... x86_64") does.
func setOS(id *proto.Identity, descr string) {
	f := strings.Fields(descr)
	if len(f) >= 3 && f[0] == "Linux" {
		id.Set("os", "Linux")
		id.Set("os_version", f[2])
	}
}

func randomToken() string { return fmt.Sprintf("%08x", randomID()) }

// communityResult is what one community got.
type communityResult struct {
	community string
	outcome   proto.Outcome
	proof     string
	detail    string
	value     string // sysDescr.0 when read
}

// tryCommunities asks for sysDescr.0 with each community in v2c and v1,
// plus an SNMPv3 discovery probe that proves the agent is alive. aliveBefore
// says a community of the same form already got an answer from this agent.
func tryCommunities(ctx context.Context, ep proto.Endpoint, communities []string, aliveBefore bool) ([]communityResult, error) {
	var reqs []*request
	for _, c := range communities {
		for _, v := range []gosnmp.SnmpVersion{gosnmp.Version2c, gosnmp.Version1} {
			r, err := newGet(v, c)
			if err != nil {
				return nil, err
			}
			reqs = append(reqs, r)
		}
	}
	disco, err := newDiscovery()
	if err != nil {
		return nil, err
	}
	reqs = append(reqs, disco)
	conn, err := ep.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	replies, err := exchange(ctx, conn, reqs, ep.IOTimeout(), grace(ep))
	if err != nil {
		return nil, err
	}
	alive := aliveBefore
	for _, r := range replies {
		if r.req == disco {
			alive = true
		}
	}
	var out []communityResult
	for _, c := range communities {
		res := communityResult{community: c, outcome: proto.Unknown}
		for _, r := range replies {
			if r.req.community != c || r.req == disco {
				continue
			}
			v := versionName(r.req.version)
			if value, ok := readable(r.pkt); ok {
				res = communityResult{community: c, outcome: proto.Accepted, value: value,
					proof: "answered GET sysDescr.0 (" + v + ")"}
				break
			}
			if r.pkt.Error == gosnmp.AuthorizationError {
				res.outcome, res.detail = proto.Rejected, "authorizationError ("+v+")"
				continue
			}
			if res.outcome == proto.Unknown {
				res.detail = fmt.Sprintf("answered without a value: error-status %s (%s)", r.pkt.Error, v)
			}
		}
		if res.outcome == proto.Unknown && res.detail == "" {
			if alive {
				res.outcome = proto.Rejected
				res.detail = "no answer to the community while the agent is proven alive (agents drop unknown communities)"
			} else {
				res.detail = "no answer and the agent's liveness is not proven"
			}
		}
		out = append(out, res)
	}
	return out, nil
}

// Open returns a login session. Credential.Password is the community.
func (p *Protocol) Open(ctx context.Context, ep proto.Endpoint, id *proto.Identity) (proto.LoginSession, error) {
	return &session{ep: ep, aliveBefore: communityFormWorked(id)}, nil
}

// communityFormWorked reports whether identification saw a v1/v2c answer.
func communityFormWorked(id *proto.Identity) bool {
	if id == nil {
		return false
	}
	v := id.Info["snmp_versions"]
	return strings.Contains(v, "v1") || strings.Contains(v, "v2c")
}

type session struct {
	ep          proto.Endpoint
	aliveBefore bool
}

// Close releases nothing: each Try uses its own socket.
func (s *session) Close() error { return nil }

// Try reads sysDescr.0 with the community in c.Password (v2c and v1). It is
// Accepted when a GET is answered with a value, Rejected on
// authorizationError or on silence from an agent proven alive, Unknown
// otherwise. An agent that answers any community (Identify sets
// Info["any_community"]) accepts a random one too: callers must try one
// first, as check.DefaultCredentials does.
func (s *session) Try(ctx context.Context, c proto.Credential) (proto.LoginResult, error) {
	res, err := tryCommunities(ctx, s.ep, []string{c.Password}, s.aliveBefore)
	if err != nil {
		return proto.LoginResult{Outcome: proto.Unknown}, fmt.Errorf("snmp community try on %s: %w", s.ep.Addr(), err)
	}
	r := res[0]
	if r.outcome == proto.Accepted {
		s.aliveBefore = true
		return proto.LoginResult{Outcome: proto.Accepted, Proof: r.proof, Detail: "sysDescr: " + r.value}, nil
	}
	return proto.LoginResult{Outcome: r.outcome, Detail: r.detail}, nil
}

// ProbeOpenAccess reads sysDescr.0 with the communities "public" and
// "private". It never writes: a readable "private" is only noted as likely
// writable. It returns nil, nil when neither reads.
//
// Details keys: "communities" ([]string readable), "sysdescr",
// "any_community" (bool, from identification), "note".
func (p *Protocol) ProbeOpenAccess(ctx context.Context, ep proto.Endpoint, id *proto.Identity) (*proto.OpenAccess, error) {
	res, err := tryCommunities(ctx, ep, []string{"public", "private"}, communityFormWorked(id))
	if err != nil {
		return nil, fmt.Errorf("snmp open access probe on %s: %w", ep.Addr(), err)
	}
	var readableBy, proofs []string
	descr := ""
	for _, r := range res {
		if r.outcome == proto.Accepted {
			readableBy = append(readableBy, r.community)
			proofs = append(proofs, fmt.Sprintf("community %q %s", r.community, r.proof))
			descr = r.value
		}
	}
	if len(readableBy) == 0 {
		return nil, nil
	}
	oa := &proto.OpenAccess{
		What:  "SNMP readable with community " + strings.Join(readableBy, " and "),
		Proof: strings.Join(proofs, "; "),
		Details: map[string]any{
			"communities": readableBy,
			"sysdescr":    descr,
		},
	}
	if id != nil && id.Info["any_community"] == "true" {
		oa.What = "SNMP readable with any community string"
		oa.Details["any_community"] = true
	}
	if slices.Contains(readableBy, "private") {
		oa.Details["note"] = `"private" is conventionally the read-write community; write access was not tested (iotcop never sends SET)`
	}
	return oa, nil
}
