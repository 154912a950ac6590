package scan

import (
	"context"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/iotcop/iotcop/creds"
	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/sweep"
	"github.com/iotcop/iotcop/target"
)

// realDevice is one real Debian daemon on its own loopback address, as a
// weak or a hardened device, and what the scan must say about it.
type realDevice struct {
	name  string
	start func(daemontest.TB) daemontest.Service
	// protocol is the service iotcop must name.
	protocol string
	// claims are the access findings the device must get, exactly:
	// default-credentials and/or unauthenticated-access. None for a
	// hardened device.
	claims []string
	// cleartext expects a cleartext-protocol finding.
	cleartext bool
	// hardened devices must have been tried with the whole budget: the
	// random calibration pair and every default within it.
	hardened bool
}

// The weak credentials are among the first pairs of the built-in
// dictionaries (creds.Dictionary.For), so the default budget reaches them.
var realDevices = []realDevice{
	// weak
	{name: "busybox telnetd, Mirai default", protocol: "telnet", claims: []string{finding.CheckDefaultCredentials}, cleartext: true,
		start: func(t daemontest.TB) daemontest.Service {
			return daemontest.BusyboxTelnetd(t, daemontest.TelnetdOptions{User: "root", Password: "xc3511"})
		}},
	{name: "busybox telnetd, shell without login", protocol: "telnet", claims: []string{finding.CheckUnauthenticatedAccess}, cleartext: true,
		start: func(t daemontest.TB) daemontest.Service {
			return daemontest.BusyboxTelnetd(t, daemontest.TelnetdOptions{NoLogin: true})
		}},
	{name: "dropbear, root:admin", protocol: "ssh", claims: []string{finding.CheckDefaultCredentials},
		start: func(t daemontest.TB) daemontest.Service {
			return daemontest.Dropbear(t, daemontest.DropbearOptions{User: "root", Password: "admin"})
		}},
	{name: "vsftpd anonymous", protocol: "ftp", claims: []string{finding.CheckUnauthenticatedAccess}, cleartext: true,
		start: func(t daemontest.TB) daemontest.Service {
			return daemontest.Vsftpd(t, daemontest.VsftpdOptions{Anonymous: true, Files: map[string]string{"backup.cfg": "x"}})
		}},
	{name: "vsftpd local account admin:1234", protocol: "ftp", claims: []string{finding.CheckDefaultCredentials}, cleartext: true,
		start: func(t daemontest.TB) daemontest.Service {
			return daemontest.Vsftpd(t, daemontest.VsftpdOptions{User: "admin", Password: "1234", Files: map[string]string{"config.xml": "<x/>"}})
		}},
	{name: "busybox httpd basic admin:admin", protocol: "http", claims: []string{finding.CheckDefaultCredentials}, cleartext: true,
		start: func(t daemontest.TB) daemontest.Service {
			return daemontest.BusyboxHttpd(t, daemontest.BusyboxHttpdOptions{Auth: daemontest.HTTPAuth{User: "admin", Password: "admin"},
				Files: map[string]string{"index.html": "<html><title>Camera</title></html>"}})
		}},
	{name: "lighttpd digest admin:password", protocol: "http", claims: []string{finding.CheckDefaultCredentials}, cleartext: true,
		start: func(t daemontest.TB) daemontest.Service {
			return daemontest.Lighttpd(t, daemontest.LighttpdOptions{Auth: daemontest.HTTPAuth{User: "admin", Password: "password"}, Digest: true,
				Files: map[string]string{"index.html": "<html><title>Router</title></html>"}})
		}},
	{name: "mosquitto anonymous", protocol: "mqtt", claims: []string{finding.CheckUnauthenticatedAccess}, cleartext: true,
		start: func(t daemontest.TB) daemontest.Service {
			return daemontest.Mosquitto(t, daemontest.MosquittoOptions{Anonymous: true})
		}},
	{name: "mosquitto password file admin:password", protocol: "mqtt", claims: []string{finding.CheckDefaultCredentials}, cleartext: true,
		start: func(t daemontest.TB) daemontest.Service {
			return daemontest.Mosquitto(t, daemontest.MosquittoOptions{User: "admin", Password: "password"})
		}},
	{name: "snmpd community public", protocol: "snmp", claims: []string{finding.CheckDefaultCredentials, finding.CheckUnauthenticatedAccess}, cleartext: true,
		start: func(t daemontest.TB) daemontest.Service {
			return daemontest.Snmpd(t, daemontest.SnmpdOptions{ReadOnly: []string{"public"}})
		}},
	{name: "libcoap coap-server", protocol: "coap", claims: []string{finding.CheckUnauthenticatedAccess},
		start: func(t daemontest.TB) daemontest.Service {
			return daemontest.CoapServer(t, daemontest.CoapServerOptions{})
		}},
	// hardened
	{name: "dropbear key-only", hardened: true, protocol: "ssh",
		start: func(t daemontest.TB) daemontest.Service {
			return daemontest.Dropbear(t, daemontest.DropbearOptions{User: "root", Password: "admin", KeyOnly: true})
		}},
	{name: "openssh strong password", hardened: true, protocol: "ssh",
		start: func(t daemontest.TB) daemontest.Service {
			return daemontest.OpenSSH(t, daemontest.OpenSSHOptions{User: "admin"})
		}},
	{name: "vsftpd without anonymous, strong password", hardened: true, protocol: "ftp", cleartext: true,
		start: func(t daemontest.TB) daemontest.Service {
			return daemontest.Vsftpd(t, daemontest.VsftpdOptions{User: "admin"})
		}},
	{name: "lighttpd TLS, strong password", hardened: true, protocol: "http",
		start: func(t daemontest.TB) daemontest.Service {
			return daemontest.Lighttpd(t, daemontest.LighttpdOptions{Auth: daemontest.HTTPAuth{User: "admin"}, Digest: true, TLS: true})
		}},
	{name: "mosquitto strong password", hardened: true, protocol: "mqtt", cleartext: true,
		start: func(t daemontest.TB) daemontest.Service {
			return daemontest.Mosquitto(t, daemontest.MosquittoOptions{User: "admin"})
		}},
	{name: "mosquitto TLS listener, strong password", hardened: true, protocol: "mqtt",
		start: func(t daemontest.TB) daemontest.Service {
			return daemontest.Mosquitto(t, daemontest.MosquittoOptions{User: "admin", TLS: true})
		}},
	{name: "snmpd random community", hardened: true, protocol: "snmp", cleartext: true,
		start: func(t daemontest.TB) daemontest.Service {
			return daemontest.Snmpd(t, daemontest.SnmpdOptions{})
		}},
}

// TestRealDaemons is the acceptance test of live assessment: one scan of
// real weak and hardened daemons, each on its own loopback address, with
// the built-in dictionaries and the default budget.
func TestRealDaemons(t *testing.T) {
	t.Parallel()
	daemontest.RequireRoot(t)
	services := make([]daemontest.Service, len(realDevices))
	starts := make([]func(daemontest.TB), len(realDevices))
	for i, d := range realDevices {
		starts[i] = func(tb daemontest.TB) { services[i] = d.start(tb) }
	}
	daemontest.StartAll(t, starts...)

	byHost := map[string]int{}
	var set target.Set
	var ports []sweep.Port
	for i, s := range services {
		if _, dup := byHost[s.Host]; dup {
			t.Fatalf("%s shares %s with another device", realDevices[i].name, s.Host)
		}
		byHost[s.Host] = i
		a := netip.MustParseAddr(s.Host)
		set.Include = append(set.Include, target.Range{From: a, To: a})
		p := sweep.Port{Number: s.Port, Transport: s.Transport}
		if !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	dict, err := creds.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	protocols := DefaultProtocols()
	// 2s per round trip: BusyBox login answers a failure only after ~3s
	// of sleep split over two reads.
	sc := New(Options{Ports: ports, Timeout: 2 * time.Second}, protocols, DefaultChecks(protocols, CheckOptions{Dict: dict, Budget: creds.DefaultBudget()}))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute) // a hang guard only
	defer cancel()
	rep, err := sc.Run(ctx, set)
	if ctx.Err() != nil {
		t.Fatalf("scan did not finish: %v", err)
	}
	if err != nil {
		t.Logf("scan errors (not failures by themselves):\n%v", err)
	}
	rep.RevealSecrets()

	found := map[string][]finding.Finding{}
	for _, f := range rep.Findings {
		found[f.Host] = append(found[f.Host], f)
	}
	seen := map[string]finding.Device{}
	for _, dev := range rep.Devices {
		seen[dev.Address] = dev
	}
	for i, d := range realDevices {
		s := services[i]
		t.Run(d.name, func(t *testing.T) {
			dev, ok := seen[s.Host]
			if !ok {
				t.Fatalf("%s not in the report", s.Addr())
			}
			if j := slices.IndexFunc(dev.Services, func(sv finding.Service) bool { return sv.Port == s.Port && sv.Transport == s.Transport }); j < 0 || dev.Services[j].Protocol != d.protocol {
				t.Errorf("services %+v, want %s on %d/%s", dev.Services, d.protocol, s.Port, s.Transport)
			} else if d.hardened && dev.Services[j].Attempts != 1+creds.DefaultBudget().PerService {
				t.Errorf("%d credential attempts on a hardened device, want the whole budget", dev.Services[j].Attempts)
			}
			var claims []string
			for _, f := range found[s.Host] {
				t.Logf("%s %v %s %q %v", f.Check, f.Provisions, f.Severity, f.Title, f.Evidence)
				if f.Port != s.Port || f.Transport != s.Transport || f.Protocol != d.protocol {
					t.Errorf("%s finding at %d/%s %s, want %d/%s %s", f.Check, f.Port, f.Transport, f.Protocol, s.Port, s.Transport, d.protocol)
				}
				switch f.Check {
				case finding.CheckDefaultCredentials:
					claims = append(claims, f.Check)
					wantProvisions(t, f, "5.1-1")
					wantCredential(t, f, s)
				case finding.CheckUnauthenticatedAccess:
					claims = append(claims, f.Check)
					wantProvisions(t, f, "5.1-1")
					if f.Evidence["proof"] == "" || f.Evidence["proof"] == nil {
						t.Errorf("unauthenticated access without proof: %v", f.Evidence)
					}
				case finding.CheckCleartextProtocol:
					wantProvisions(t, f, "5.5-1")
					if !d.cleartext {
						t.Errorf("unexpected cleartext finding: %q", f.Title)
					}
				case finding.CheckDeviceUnresponsive:
					t.Errorf("device stopped answering: %v", f.Evidence)
				}
			}
			if d.cleartext && !slices.ContainsFunc(found[s.Host], func(f finding.Finding) bool { return f.Check == finding.CheckCleartextProtocol }) {
				t.Errorf("no cleartext-protocol finding")
			}
			sort.Strings(claims)
			want := slices.Clone(d.claims)
			sort.Strings(want)
			if !slices.Equal(claims, want) {
				t.Errorf("access findings %v, want %v", claims, want)
			}
		})
	}
}

func wantProvisions(t *testing.T, f finding.Finding, want string) {
	t.Helper()
	if !slices.Contains(f.Provisions, want) {
		t.Errorf("%s provisions %v lack %s", f.Check, f.Provisions, want)
	}
}

// wantCredential checks a default-credentials finding names the daemon's
// one valid credential, in plain text after RevealSecrets.
func wantCredential(t *testing.T, f finding.Finding, s daemontest.Service) {
	t.Helper()
	secret := "password"
	if f.Protocol == "snmp" {
		secret = "community"
	} else if u := f.Evidence["username"]; u != s.Username {
		t.Errorf("username %v, want %q", u, s.Username)
	}
	if p := f.Evidence[secret]; p != s.Password {
		t.Errorf("%s %v (%T), want %q", secret, p, p, s.Password)
	}
	if proof, _ := f.Evidence["proof"].(string); strings.TrimSpace(proof) == "" {
		t.Errorf("credential claimed without proof: %v", f.Evidence)
	}
}
