package lab

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gosnmp/gosnmp"
)

const (
	maxSNMPVarbinds   = 32
	maxSNMPRepeat     = 32
	maxSNMPBulkResult = 64
)

// snmpAgent answers SNMP v1/v2c GET, GETNEXT and GETBULK for the system
// group and a little of the interfaces group, like a device's snmpd with a
// read community. Requests with another community (and v3) are dropped
// silently, as snmpd does.
type snmpAgent struct {
	community string
	oids      []snmpOID // sorted
	values    map[string]gosnmp.SnmpPDU
	started   time.Time
}

// snmpOID is a parsed OID kept with its dotted form.
type snmpOID struct {
	text  string
	parts []uint32
}

func parseOID(s string) (snmpOID, bool) {
	s = strings.TrimPrefix(s, ".")
	if s == "" {
		return snmpOID{}, false
	}
	fields := strings.Split(s, ".")
	parts := make([]uint32, 0, len(fields))
	for _, f := range fields {
		v, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return snmpOID{}, false
		}
		parts = append(parts, uint32(v))
	}
	return snmpOID{text: s, parts: parts}, true
}

func newSNMPAgent(dev *device, community string) *snmpAgent {
	a := &snmpAgent{community: community, values: map[string]gosnmp.SnmpPDU{}, started: time.Now()}
	descr := "Linux " + dev.hostname + " " + dev.kernel + " #1 SMP PREEMPT " + dev.arch
	if dev.kind == "router" {
		descr = dev.vendor + " " + dev.model + " " + dev.firmware
	}
	mac, _ := net.ParseMAC(dev.mac)
	add := func(oid string, typ gosnmp.Asn1BER, v any) {
		o, _ := parseOID(oid)
		a.oids = append(a.oids, o)
		a.values[o.text] = gosnmp.SnmpPDU{Name: "." + o.text, Type: typ, Value: v}
	}
	add("1.3.6.1.2.1.1.1.0", gosnmp.OctetString, descr)
	add("1.3.6.1.2.1.1.2.0", gosnmp.ObjectIdentifier, ".1.3.6.1.4.1.8072.3.2.10")
	add("1.3.6.1.2.1.1.3.0", gosnmp.TimeTicks, uint32(0)) // filled per request
	add("1.3.6.1.2.1.1.4.0", gosnmp.OctetString, "support@"+strings.ToLower(firstLetters(dev.vendor, 16))+".example")
	add("1.3.6.1.2.1.1.5.0", gosnmp.OctetString, dev.hostname)
	add("1.3.6.1.2.1.1.6.0", gosnmp.OctetString, "Unknown")
	add("1.3.6.1.2.1.1.7.0", gosnmp.Integer, 72)
	add("1.3.6.1.2.1.2.1.0", gosnmp.Integer, 2)
	add("1.3.6.1.2.1.2.2.1.1.1", gosnmp.Integer, 1)
	add("1.3.6.1.2.1.2.2.1.1.2", gosnmp.Integer, 2)
	add("1.3.6.1.2.1.2.2.1.2.1", gosnmp.OctetString, "lo")
	add("1.3.6.1.2.1.2.2.1.2.2", gosnmp.OctetString, "eth0")
	add("1.3.6.1.2.1.2.2.1.6.1", gosnmp.OctetString, []byte{})
	add("1.3.6.1.2.1.2.2.1.6.2", gosnmp.OctetString, []byte(mac))
	slices.SortFunc(a.oids, func(x, y snmpOID) int { return slices.Compare(x.parts, y.parts) })
	return a
}

// value returns the varbind for an exact OID.
func (a *snmpAgent) value(o snmpOID) (gosnmp.SnmpPDU, bool) {
	v, ok := a.values[o.text]
	if ok && o.text == "1.3.6.1.2.1.1.3.0" {
		v.Value = uint32(time.Since(a.started) / (10 * time.Millisecond))
	}
	return v, ok
}

// next returns the first OID after o.
func (a *snmpAgent) next(o snmpOID) (gosnmp.SnmpPDU, bool) {
	i, _ := slices.BinarySearchFunc(a.oids, o, func(x, y snmpOID) int { return slices.Compare(x.parts, y.parts) })
	if i < len(a.oids) && slices.Equal(a.oids[i].parts, o.parts) {
		i++
	}
	if i >= len(a.oids) {
		return gosnmp.SnmpPDU{}, false
	}
	return a.value(a.oids[i])
}

// handle answers one datagram; nil means stay silent.
func (a *snmpAgent) handle(req []byte, _ net.Addr) []byte {
	pkt, err := decodeSNMP(req)
	if err != nil || pkt.Community != a.community {
		return nil
	}
	resp := a.respond(pkt)
	if resp == nil {
		return nil
	}
	out, err := resp.MarshalMsg()
	if err != nil {
		return nil
	}
	return out
}

// respond builds the response PDU for a decoded request.
func (a *snmpAgent) respond(pkt *gosnmp.SnmpPacket) *gosnmp.SnmpPacket {
	v1 := pkt.Version == gosnmp.Version1
	resp := &gosnmp.SnmpPacket{Version: pkt.Version, Community: pkt.Community, PDUType: gosnmp.GetResponse,
		RequestID: pkt.RequestID}
	if len(pkt.Variables) > maxSNMPVarbinds {
		resp.Error = gosnmp.TooBig
		return resp
	}
	// failV1 answers a v1 request with an error naming the varbind at fault
	// and the request's varbinds unchanged.
	failV1 := func(code gosnmp.SNMPError, i int) *gosnmp.SnmpPacket {
		resp.Error, resp.ErrorIndex = code, uint8(i+1)
		resp.Variables = nullVarbinds(pkt.Variables)
		return resp
	}
	switch pkt.PDUType {
	case gosnmp.GetRequest:
		for i, v := range pkt.Variables {
			o, ok := parseOID(v.Name)
			val, found := a.value(o)
			if !ok || !found {
				if v1 {
					return failV1(gosnmp.NoSuchName, i)
				}
				val = gosnmp.SnmpPDU{Name: v.Name, Type: gosnmp.NoSuchObject}
			}
			resp.Variables = append(resp.Variables, val)
		}
	case gosnmp.GetNextRequest:
		for i, v := range pkt.Variables {
			o, ok := parseOID(v.Name)
			val, found := a.next(o)
			if !ok || !found {
				if v1 {
					return failV1(gosnmp.NoSuchName, i)
				}
				val = gosnmp.SnmpPDU{Name: v.Name, Type: gosnmp.EndOfMibView}
			}
			resp.Variables = append(resp.Variables, val)
		}
	case gosnmp.GetBulkRequest:
		if v1 {
			return nil
		}
		nonRep := min(int(pkt.NonRepeaters), len(pkt.Variables))
		for _, v := range pkt.Variables[:nonRep] {
			o, _ := parseOID(v.Name)
			val, found := a.next(o)
			if !found {
				val = gosnmp.SnmpPDU{Name: v.Name, Type: gosnmp.EndOfMibView}
			}
			resp.Variables = append(resp.Variables, val)
		}
		reps := min(int(pkt.MaxRepetitions), maxSNMPRepeat)
		cursors := make([]snmpOID, 0, len(pkt.Variables)-nonRep)
		for _, v := range pkt.Variables[nonRep:] {
			o, _ := parseOID(v.Name)
			cursors = append(cursors, o)
		}
		for r := 0; r < reps && len(cursors) > 0 && len(resp.Variables) < maxSNMPBulkResult; r++ {
			allEnd := true
			for i, c := range cursors {
				val, found := a.next(c)
				if !found {
					val = gosnmp.SnmpPDU{Name: "." + c.text, Type: gosnmp.EndOfMibView}
				} else {
					allEnd = false
					cursors[i], _ = parseOID(val.Name)
				}
				resp.Variables = append(resp.Variables, val)
			}
			if allEnd {
				break
			}
		}
	case gosnmp.SetRequest:
		if v1 {
			return failV1(gosnmp.NoSuchName, 0)
		}
		resp.Error, resp.ErrorIndex = gosnmp.NoAccess, 1
		resp.Variables = nullVarbinds(pkt.Variables)
	default:
		return nil
	}
	return resp
}

func nullVarbinds(in []gosnmp.SnmpPDU) []gosnmp.SnmpPDU {
	out := make([]gosnmp.SnmpPDU, len(in))
	for i, v := range in {
		out[i] = gosnmp.SnmpPDU{Name: v.Name, Type: gosnmp.Null}
	}
	return out
}

// decodeSNMP decodes a v1/v2c message with gosnmp. The version is read
// first with a tiny BER reader so that v3 (which gosnmp would try to
// decrypt) and garbage are refused early; a panic in the decoder is turned
// into an error.
func decodeSNMP(b []byte) (pkt *gosnmp.SnmpPacket, err error) {
	v, ok := snmpVersion(b)
	if !ok {
		return nil, fmt.Errorf("not an SNMP message")
	}
	var version gosnmp.SnmpVersion
	switch v {
	case 0:
		version = gosnmp.Version1
	case 1:
		version = gosnmp.Version2c
	default:
		return nil, fmt.Errorf("unsupported SNMP version %d", v)
	}
	defer func() {
		if r := recover(); r != nil {
			pkt, err = nil, fmt.Errorf("decode snmp: %v", r)
		}
	}()
	g := &gosnmp.GoSNMP{Version: version}
	pkt, err = g.SnmpDecodePacket(b)
	if err != nil {
		return nil, fmt.Errorf("decode snmp: %w", err)
	}
	if pkt.Version != version {
		return nil, fmt.Errorf("decode snmp: version changed")
	}
	return pkt, nil
}

// snmpVersion reads the version INTEGER at the start of an SNMP message
// (SEQUENCE { INTEGER version, ... }).
func snmpVersion(b []byte) (int, bool) {
	if len(b) < 2 || b[0] != 0x30 {
		return 0, false
	}
	_, n, ok := berLength(b[1:])
	if !ok {
		return 0, false
	}
	b = b[1+n:]
	if len(b) < 3 || b[0] != 0x02 {
		return 0, false
	}
	l, n, ok := berLength(b[1:])
	if !ok || l < 1 || l > 4 || len(b) < 1+n+l {
		return 0, false
	}
	v := 0
	for _, c := range b[1+n : 1+n+l] {
		v = v<<8 | int(c)
	}
	return v, true
}

// berLength decodes a BER length; it returns the length, the bytes it
// took, and whether it was valid (definite, at most 4 bytes).
func berLength(b []byte) (int, int, bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	if b[0] < 0x80 {
		return int(b[0]), 1, true
	}
	n := int(b[0] & 0x7f)
	if n == 0 || n > 3 || len(b) < 1+n {
		return 0, 0, false
	}
	l := 0
	for _, c := range b[1 : 1+n] {
		l = l<<8 | int(c)
	}
	return l, 1 + n, true
}
