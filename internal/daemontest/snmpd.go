package daemontest

import (
	"strconv"
	"strings"
	"time"
)

// SnmpdOptions configures Snmpd.
type SnmpdOptions struct {
	Listen
	// ReadOnly and ReadWrite are the v1/v2c communities the agent answers.
	// Without either it has one strong random read-only community: the
	// hardened device.
	ReadOnly, ReadWrite []string
}

// snmpDiscovery is an SNMPv3 engine discovery request (GetRequest, no
// user, reportable): every agent answers it with a Report, whatever its
// communities.
var snmpDiscovery = []byte{
	0x30, 0x3e, 0x02, 0x01, 0x03, 0x30, 0x11, 0x02, 0x04, 0x2c, 0x09, 0xcc, 0x1b, 0x02, 0x03, 0x00,
	0xff, 0xff, 0x04, 0x01, 0x04, 0x02, 0x01, 0x03, 0x04, 0x10, 0x30, 0x0e, 0x04, 0x00, 0x02, 0x01,
	0x00, 0x02, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00, 0x04, 0x00, 0x30, 0x14, 0x04, 0x00, 0x04, 0x00,
	0xa0, 0x0e, 0x02, 0x04, 0x45, 0xa7, 0xaf, 0x8b, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x00,
}

// Snmpd runs net-snmp's agent. The returned Service's Password is the
// first community (read-only ones first).
func Snmpd(t TB, o SnmpdOptions) Service {
	t.Helper()
	Require(t, "snmpd=snmpd")
	if len(o.ReadOnly)+len(o.ReadWrite) == 0 {
		o.ReadOnly = []string{StrongPassword()}
	}
	var conf strings.Builder
	for _, c := range o.ReadOnly {
		conf.WriteString("rocommunity " + c + " default\n")
	}
	for _, c := range o.ReadWrite {
		conf.WriteString("rwcommunity " + c + " default\n")
	}
	dir := t.TempDir()
	confPath := WriteFile(t, dir, "snmpd.conf", conf.String(), 0o600)
	host, port := o.Listen.at(t, "udp", 161)
	// env keeps the agent's persistent state in the test's directory and
	// stops it loading MIB files it does not need.
	Start(t, "env", "SNMP_PERSISTENT_DIR="+dir, "MIBS=", "MIBDIRS="+dir,
		"snmpd", "-f", "-Lo", "-C", "-c", confPath, "udp:"+host+":"+strconv.Itoa(port))
	WaitUDP(t, host, port, snmpDiscovery)
	s := Service{Host: host, Port: port, Transport: "udp", Timeout: 2 * time.Second}
	if len(o.ReadOnly) > 0 {
		s.Password = o.ReadOnly[0]
	} else {
		s.Password = o.ReadWrite[0]
	}
	return s
}
