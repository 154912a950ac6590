package sweep

import "encoding/hex"

// UDP has no handshake: a port counts as open only when a protocol probe
// gets an answer. These payloads are the smallest requests each protocol
// answers even without valid credentials.
func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// udpProbes returns the probe payloads for a UDP port, most telling first.
// Ports without a known protocol get all of them.
func udpProbes(port int) [][]byte {
	// SNMPv3 engine discovery: every v3-capable agent answers with a
	// report, whatever communities it has; then v2c GET sysDescr "public".
	snmpV3 := mustHex("303c0201033011020400001234020300ffe30401040201030410300e0400020100020100040004000400301204000400a00c020256780201000201003000")
	snmpV2 := mustHex("302902010104067075626c6963a01c02041234abcd020100020100300e300c06082b060102010101000500")
	ssdp := []byte("M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n")
	// DNS-SD service enumeration, PTR _services._dns-sd._udp.local, unicast.
	mdns := mustHex("000000000001000000000000095f7365727669636573075f646e732d7364045f756470056c6f63616c00000c0001")
	// CoAP CON GET /.well-known/core, message id 0x1234.
	coap := mustHex("40011234bb2e77656c6c2d6b6e6f776e04636f7265")
	switch port {
	case 161, 162:
		return [][]byte{snmpV3, snmpV2}
	case 1900:
		return [][]byte{ssdp}
	case 5353:
		return [][]byte{mdns}
	case 5683, 5684:
		return [][]byte{coap}
	}
	return [][]byte{coap, snmpV3, snmpV2, ssdp, mdns}
}
