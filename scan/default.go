package scan

import (
	"github.com/iotcop/iotcop/check"
	"github.com/iotcop/iotcop/creds"
	"github.com/iotcop/iotcop/proto"
	"github.com/iotcop/iotcop/proto/adb"
	"github.com/iotcop/iotcop/proto/coap"
	"github.com/iotcop/iotcop/proto/ftp"
	httpproto "github.com/iotcop/iotcop/proto/http"
	"github.com/iotcop/iotcop/proto/mdns"
	"github.com/iotcop/iotcop/proto/mqtt"
	"github.com/iotcop/iotcop/proto/rtsp"
	"github.com/iotcop/iotcop/proto/snmp"
	"github.com/iotcop/iotcop/proto/ssdp"
	"github.com/iotcop/iotcop/proto/ssh"
	"github.com/iotcop/iotcop/proto/telnet"
)

// DefaultProtocols returns every protocol iotcop speaks, as an explicit
// list (no init-time registration). Order matters only among identifiers
// with no port preference: commoner protocols first.
func DefaultProtocols() []proto.Identifier {
	return []proto.Identifier{
		// TCP, server-first
		ssh.New(), telnet.New(), ftp.New(),
		// TCP, client-first
		httpproto.New(), rtsp.New(), mqtt.New(), adb.New(),
		// UDP
		snmp.New(), coap.New(), ssdp.New(), mdns.New(),
	}
}

// DefaultChecks builds the live checks in the order they must run:
// unauthenticated access before credentials (a service open to anyone
// needs no password guessing), credentials, then clear text, which uses
// what the first two learnt.
func DefaultChecks(protocols []proto.Identifier, dict *creds.Dictionary, budget creds.Budget) []check.Check {
	auth := map[string]proto.Authenticator{}
	probers := map[string]proto.OpenAccessProber{}
	for _, p := range protocols {
		if a, ok := p.(proto.Authenticator); ok {
			auth[a.Name()] = a
		}
		if o, ok := p.(proto.OpenAccessProber); ok {
			probers[o.Name()] = o
		}
	}
	return []check.Check{
		&check.UnauthenticatedAccess{Probers: probers},
		&check.DefaultCredentials{Auth: auth, Dict: dict, Budget: budget},
		check.Cleartext{},
		check.WeakSSH{},
		&check.WeakTLS{},
	}
}
