package scan

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/iotcop/iotcop/creds"
	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/lab"
	"github.com/iotcop/iotcop/sweep"
	"github.com/iotcop/iotcop/target"
)

// Two units of one model: the lab's hubs share an SSH host key (and a
// Mirai password), and two web servers share one TLS key pair. One scan of
// both must name each shared secret once, with every unit.
func TestSharedSecretsAcrossUnits(t *testing.T) {
	base := daemontest.Base()
	cfg := lab.Config{Devices: []lab.DeviceSpec{
		{Name: "hub-a", Kind: "hub", Vendor: "Hearthly", Model: "H1", Services: []lab.ServiceSpec{{Protocol: "ssh", Port: 22, Username: "root", Password: "admin", SharedHostKey: true}}},
		{Name: "hub-b", Kind: "hub", Vendor: "Hearthly", Model: "H1", Services: []lab.ServiceSpec{{Protocol: "ssh", Port: 22, Username: "root", Password: "admin", SharedHostKey: true}}},
	}}
	running, err := lab.Start(context.Background(), cfg, lab.Options{Base: base})
	if err != nil {
		t.Fatal(err)
	}
	defer running.Close()
	hubs := running.Targets()

	// One certificate, two web servers on their own addresses.
	var cert tls.Certificate
	var webs []string
	for i := 0; i < 2; i++ {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
		ln, err := net.Listen("tcp", daemontest.Addr()+":8443")
		if err != nil {
			t.Fatal(err)
		}
		srv.Listener = ln
		if i == 0 {
			srv.StartTLS()
			cert = srv.TLS.Certificates[0]
		} else {
			srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
			srv.StartTLS()
		}
		defer srv.Close()
		webs = append(webs, ln.Addr().(*net.TCPAddr).IP.String())
	}

	var set target.Set
	for _, a := range append(append([]string{}, hubs...), webs...) {
		ad := netip.MustParseAddr(a)
		set.Include = append(set.Include, target.Range{From: ad, To: ad})
	}
	dict, _ := creds.Builtin()
	protocols := DefaultProtocols()
	sc := New(Options{Ports: []sweep.Port{{Number: 22, Transport: "tcp"}, {Number: 8443, Transport: "tcp"}}, Timeout: 2 * time.Second},
		protocols, DefaultChecks(protocols, CheckOptions{Dict: dict, Budget: creds.DefaultBudget()}))
	rep, err := sc.Run(context.Background(), set)
	if err != nil {
		t.Logf("scan errors: %v", err)
	}
	kinds := map[string][]string{}
	for _, f := range rep.Findings {
		if f.Check != finding.CheckSharedSecret {
			continue
		}
		units, _ := f.Evidence["units"].([]string)
		kinds[f.Evidence["kind"].(string)] = units
	}
	want := map[string][]string{
		"ssh-host-key":        {hubs[0] + ":22", hubs[1] + ":22"},
		"accepted-credential": {hubs[0] + ":22", hubs[1] + ":22"},
		"tls-public-key":      {webs[0] + ":8443", webs[1] + ":8443"},
	}
	for kind, units := range want {
		got := kinds[kind]
		if len(got) != 2 || got[0] != units[0] || got[1] != units[1] {
			t.Errorf("shared %s: units %v, want %v (all: %v)", kind, got, units, kinds)
		}
	}
}
