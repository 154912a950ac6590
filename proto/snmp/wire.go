package snmp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/iotcop/iotcop/proto"
)

// oidSysDescr is SNMPv2-MIB::sysDescr.0.
const oidSysDescr = ".1.3.6.1.2.1.1.1.0"

// maxDatagram caps one received datagram (the UDP maximum).
const maxDatagram = 65535

// maxDatagrams bounds how many datagrams one exchange reads, so a flood
// cannot keep it busy until the deadline.
const maxDatagrams = 64

// request is one SNMP message sent in an exchange.
type request struct {
	version   gosnmp.SnmpVersion
	community string // v1/v2c only
	id        uint32 // request-id (v1/v2c) or msgID (v3)
	wire      []byte
}

// reply is a decoded answer matched to its request.
type reply struct {
	req *request
	pkt *gosnmp.SnmpPacket
	rtt time.Duration
}

func randomID() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])&0x7fffffff | 1
}

// newGet builds a GET of sysDescr.0 for v1 or v2c.
func newGet(v gosnmp.SnmpVersion, community string) (*request, error) {
	r := &request{version: v, community: community, id: randomID()}
	pkt := &gosnmp.SnmpPacket{
		Version:   v,
		Community: community,
		PDUType:   gosnmp.GetRequest,
		RequestID: r.id,
		Variables: []gosnmp.SnmpPDU{{Name: oidSysDescr, Type: gosnmp.Null}},
	}
	var err error
	if r.wire, err = pkt.MarshalMsg(); err != nil {
		return nil, fmt.Errorf("encode SNMP %s GET: %w", v, err)
	}
	return r, nil
}

// newDiscovery builds an SNMPv3 engine discovery probe: a reportable
// noAuthNoPriv GET with an empty USM user, which every v3 agent answers with
// a Report carrying its engine id (RFC 3414 section 4).
func newDiscovery() (*request, error) {
	r := &request{version: gosnmp.Version3, id: randomID()}
	pkt := &gosnmp.SnmpPacket{
		Version:            gosnmp.Version3,
		MsgFlags:           gosnmp.Reportable | gosnmp.NoAuthNoPriv,
		SecurityModel:      gosnmp.UserSecurityModel,
		SecurityParameters: &gosnmp.UsmSecurityParameters{},
		PDUType:            gosnmp.GetRequest,
		MsgID:              r.id,
		RequestID:          randomID(),
		MsgMaxSize:         maxDatagram,
	}
	var err error
	if r.wire, err = pkt.MarshalMsg(); err != nil {
		return nil, fmt.Errorf("encode SNMPv3 discovery: %w", err)
	}
	return r, nil
}

// decode parses one datagram with gosnmp's decoder, turning any panic on
// hostile input into an error.
func decode(b []byte) (pkt *gosnmp.SnmpPacket, err error) {
	defer func() {
		if r := recover(); r != nil {
			pkt, err = nil, fmt.Errorf("malformed SNMP message: %v", r)
		}
	}()
	x := &gosnmp.GoSNMP{
		Version:            gosnmp.Version2c,
		SecurityParameters: &gosnmp.UsmSecurityParameters{},
		MaxOids:            gosnmp.MaxOids,
	}
	pkt, err = x.SnmpDecodePacket(b)
	if err != nil {
		return nil, err
	}
	return pkt, nil
}

// matches reports whether pkt answers req.
func matches(req *request, pkt *gosnmp.SnmpPacket) bool {
	if pkt.Version != req.version {
		return false
	}
	if req.version == gosnmp.Version3 {
		return pkt.MsgID == req.id && (pkt.PDUType == gosnmp.Report || pkt.PDUType == gosnmp.GetResponse)
	}
	return pkt.PDUType == gosnmp.GetResponse && pkt.RequestID == req.id && pkt.Community == req.community
}

// exchange sends every request on conn and collects matching replies until
// all are answered, wait elapses, or grace has passed since the first reply
// (an agent answers what it will answer at once; unknown communities are
// silently dropped, so waiting longer only wastes time).
func exchange(ctx context.Context, conn net.Conn, reqs []*request, wait, grace time.Duration) ([]reply, error) {
	start := time.Now()
	deadline := start.Add(wait)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetWriteDeadline(deadline)
	for _, r := range reqs {
		if _, err := conn.Write(r.wire); err != nil {
			return nil, fmt.Errorf("send SNMP request: %w", err)
		}
	}
	var replies []reply
	answered := make(map[*request]bool, len(reqs))
	buf := make([]byte, maxDatagram)
	var lastErr error
	for range maxDatagrams {
		if len(answered) == len(reqs) || ctx.Err() != nil {
			break
		}
		_ = conn.SetReadDeadline(deadline)
		n, err := conn.Read(buf)
		if err != nil {
			if !proto.IsTimeout(err) && len(replies) == 0 {
				lastErr = err // e.g. ICMP port unreachable
			}
			break
		}
		// Clone: gosnmp returns values that alias its input.
		pkt, err := decode(bytes.Clone(buf[:n]))
		if err != nil {
			continue
		}
		for _, r := range reqs {
			if !answered[r] && matches(r, pkt) {
				answered[r] = true
				replies = append(replies, reply{req: r, pkt: pkt, rtt: time.Since(start)})
				if len(replies) == 1 {
					if g := time.Now().Add(grace); g.Before(deadline) {
						deadline = g
					}
				}
				break
			}
		}
	}
	if len(replies) == 0 && lastErr != nil {
		return nil, fmt.Errorf("read SNMP reply: %w", lastErr)
	}
	return replies, nil
}

// engine is what an SNMPv3 discovery Report told.
type engine struct {
	id         []byte
	boots      uint32
	enterprise uint32 // 0 when the id does not carry one
}

// engineFrom extracts the engine from a v3 reply.
func engineFrom(pkt *gosnmp.SnmpPacket) (engine, bool) {
	usm, ok := pkt.SecurityParameters.(*gosnmp.UsmSecurityParameters)
	if !ok || usm == nil || usm.AuthoritativeEngineID == "" {
		return engine{}, false
	}
	id := []byte(usm.AuthoritativeEngineID)
	return engine{id: id, boots: usm.AuthoritativeEngineBoots, enterprise: enterpriseOf(id)}, true
}

// enterpriseOf reads the IANA private enterprise number at the start of an
// SnmpEngineID (RFC 3411): four bytes, the top bit set in the RFC 3411
// format and clear in the older RFC 1910 one. It returns 0 when the id is
// too short to carry one.
func enterpriseOf(id []byte) uint32 {
	if len(id) < 5 {
		return 0
	}
	return binary.BigEndian.Uint32(id[:4]) &^ 0x80000000
}

func (e engine) hex() string { return hex.EncodeToString(e.id) }

// readable reports whether a GET reply carries a real value for sysDescr.0,
// and returns it (printable, capped).
func readable(pkt *gosnmp.SnmpPacket) (string, bool) {
	if pkt.Error != gosnmp.NoError || len(pkt.Variables) == 0 {
		return "", false
	}
	v := pkt.Variables[0]
	switch v.Type {
	case gosnmp.NoSuchObject, gosnmp.NoSuchInstance, gosnmp.EndOfMibView, gosnmp.Null, gosnmp.UnknownType:
		return "", false
	}
	if b, ok := v.Value.([]byte); ok {
		return proto.Printable(b), true
	}
	return proto.Printable(fmt.Append(nil, v.Value)), true
}

// versionName is the short name used in Info and proofs.
func versionName(v gosnmp.SnmpVersion) string {
	switch v {
	case gosnmp.Version1:
		return "v1"
	case gosnmp.Version2c:
		return "v2c"
	case gosnmp.Version3:
		return "v3"
	}
	return v.String()
}

var errNoAnswer = errors.New("no SNMP answer")
