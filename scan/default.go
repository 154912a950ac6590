package scan

import (
	"fmt"
	"strings"

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
	"github.com/iotcop/iotcop/robustness"
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

// CheckOptions configures the default checks.
type CheckOptions struct {
	// Dict is the credential source; Budget the attempts per service.
	Dict   *creds.Dictionary
	Budget creds.Budget
	// Parallel is the number of login sessions per service.
	Parallel int
	// Manifest, when set, lists the services devices are expected to
	// expose; every other listener is a finding.
	Manifest *check.Manifest
	// Disclosure checks security.txt; nil builds one that checks device web
	// interfaces and only private manufacturer URLs.
	Disclosure *check.Disclosure
	// Robustness, when set, adds the malformed-input probes (intrusive:
	// they may crash devices), last so they cannot spoil the other checks.
	Robustness *robustness.Budget
}

// DefaultChecks builds the live checks in the order they must run:
// unauthenticated access before credentials (a service open to anyone
// needs no password guessing), credentials, then what uses their results
// (clear text, exposure), then the crypto and disclosure audits.
func DefaultChecks(protocols []proto.Identifier, opts CheckOptions) []check.Check {
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
	disc := opts.Disclosure
	if disc == nil {
		disc, _ = check.NewDisclosure("") // an empty URL cannot fail
	}
	checks := []check.Check{
		&check.UnauthenticatedAccess{Probers: probers},
		&check.DefaultCredentials{Auth: auth, Dict: opts.Dict, Budget: opts.Budget, Parallel: opts.Parallel},
		check.Cleartext{},
		&check.ExposedServices{SNMP: probers["snmp"], Manifest: opts.Manifest},
		check.WeakSSH{},
		&check.WeakTLS{},
		disc,
	}
	if opts.Robustness != nil {
		checks = append(checks, &check.Robustness{Budget: *opts.Robustness})
	}
	return checks
}

// SelectChecks keeps the checks named by id, in their run order; an
// unknown id is an error listing the known ones.
func SelectChecks(all []check.Check, ids []string) ([]check.Check, error) {
	want := map[string]bool{}
	for _, id := range ids {
		want[strings.TrimSpace(id)] = true
	}
	var out []check.Check
	var known []string
	for _, c := range all {
		known = append(known, c.ID())
		if want[c.ID()] {
			out = append(out, c)
			delete(want, c.ID())
		}
	}
	for id := range want {
		return nil, fmt.Errorf("--checks: unknown check %q (known: %s)", id, strings.Join(known, ", "))
	}
	return out, nil
}
