package daemontest

import (
	"strconv"
	"time"
)

// CoapServerOptions configures CoapServer.
type CoapServerOptions struct {
	Listen
}

// coapPing is an empty confirmable CoAP message: servers answer it with a
// reset.
var coapPing = []byte{0x40, 0x00, 0x13, 0x37}

// CoapServer runs libcoap's example server (coap-server-notls), which
// serves "/" and "/time" to anyone: CoAP has no login to give.
func CoapServer(t TB, o CoapServerOptions) Service {
	t.Helper()
	Require(t, "coap-server-notls=libcoap3-bin")
	host, port := o.Listen.at(t, "udp", 5683)
	Start(t, "coap-server-notls", "-A", host, "-p", strconv.Itoa(port))
	WaitUDP(t, host, port, coapPing)
	return Service{Host: host, Port: port, Transport: "udp", Timeout: 2 * time.Second}
}
