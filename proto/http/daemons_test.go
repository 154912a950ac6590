package httpproto

import (
	"strings"
	"testing"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/proto"
)

// adminPage is a device configuration page: what ProbeOpenAccess must find
// when it is served without a login.
const adminPage = `<!DOCTYPE html><html><head><title>Router Settings</title></head><body>
<h1>Wireless Settings</h1>
<form action="/cgi-bin/apply.cgi" method="post">
SSID <input type="text" name="ssid" value="HomeNet">
Channel <select name="channel"><option>1</option><option>6</option></select>
WPA key <input type="password" name="wpakey">
DHCP <input type="checkbox" name="dhcp" checked>
<input type="hidden" name="token" value="x">
<input type="submit" value="Apply">
</form>
<a href="/reboot.html">Reboot</a> <a href="/firmware.html">Firmware upgrade</a>
</body></html>`

// itWorks is a plain static page: never an admin page.
const itWorks = `<html><head><title>It works!</title></head><body><h1>It works!</h1>
<p>This is the default web page for this server.</p></body></html>`

func identify(t *testing.T, ep proto.Endpoint) (*proto.Identity, error) {
	t.Helper()
	return daemontest.Identify(t, New(), ep)
}

// tryAll opens a session and tries each credential, returning outcomes.
func tryAll(t *testing.T, ep proto.Endpoint, id *proto.Identity, creds ...proto.Credential) []proto.LoginResult {
	t.Helper()
	return daemontest.TryAll(t, New(), ep, id, creds...)
}

func wantInfo(t *testing.T, id *proto.Identity, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if id.Info[k] != v {
			t.Errorf("Info[%q] = %q, want %q (Info %v)", k, id.Info[k], v, id.Info)
		}
	}
}

func TestBusyboxBasicAuthOnRoot(t *testing.T) {
	t.Parallel()
	ep := daemontest.BusyboxHttpd(t, daemontest.BusyboxHttpdOptions{Auth: daemontest.HTTPAuth{User: "admin", Password: "s3cret"},
		Files: map[string]string{"index.html": adminPage}}).Endpoint()
	id, err := identify(t, ep)
	if err != nil {
		t.Fatalf("Identify: %v", err)
	}
	if id.Product != "BusyBox httpd" || id.Protocol != "http" {
		t.Errorf("identity = %+v, want BusyBox httpd", id)
	}
	wantInfo(t, id, map[string]string{InfoAuthPath: "/", InfoAuthScheme: "basic", InfoRealm: "Web Server Authentication", InfoStatus: "401"})

	res := tryAll(t, ep, id,
		proto.Credential{Username: "admin", Password: "admin"},
		proto.Credential{Username: "root", Password: "s3cret"},
		proto.Credential{Username: "admin", Password: "s3cret"},
		proto.Credential{Username: "admin", Password: "wrong"})
	want := []proto.Outcome{proto.Rejected, proto.Rejected, proto.Accepted, proto.Rejected}
	for i := range want {
		if res[i].Outcome != want[i] {
			t.Errorf("try %d = %+v, want %v", i, res[i], want[i])
		}
	}
	if res[2].Proof != "2xx on / (401 without credentials)" {
		t.Errorf("proof = %q", res[2].Proof)
	}
	// Everything is behind the login: no open admin page.
	if oa, err := New().ProbeOpenAccess(daemontest.Context(t), ep, id); oa != nil || err != nil {
		t.Errorf("ProbeOpenAccess = %+v, %v; want nil, nil", oa, err)
	}
}

func TestBusyboxProtectedAdminDir(t *testing.T) {
	t.Parallel()
	ep := daemontest.BusyboxHttpd(t, daemontest.BusyboxHttpdOptions{Auth: daemontest.HTTPAuth{Path: "/admin", User: "user", Password: "pass"},
		Files: map[string]string{"index.html": itWorks, "admin/index.html": adminPage}}).Endpoint()
	id, err := identify(t, ep)
	if err != nil {
		t.Fatalf("Identify: %v", err)
	}
	if id.Product != "BusyBox httpd" {
		t.Errorf("Product = %q, want BusyBox httpd (Info %v)", id.Product, id.Info)
	}
	// Identification stays cheap; the login behind a probe path is found
	// when credentials are checked, and recorded on the identity.
	if id.Info[InfoAuthPath] != "" {
		t.Errorf("Identify searched the probe paths: %v", id.Info)
	}
	openSession(t, ep, id)
	wantInfo(t, id, map[string]string{InfoAuthPath: "/admin/", InfoAuthScheme: "basic", InfoTitle: "It works!", InfoStatus: "200"})
	res := tryAll(t, ep, id, proto.Credential{Username: "user", Password: "pass"})
	if res[0].Outcome != proto.Accepted || res[0].Proof != "2xx on /admin/ (401 without credentials)" {
		t.Errorf("Try(user:pass) = %+v", res[0])
	}
	if oa, err := New().ProbeOpenAccess(daemontest.Context(t), ep, id); oa != nil || err != nil {
		t.Errorf("ProbeOpenAccess = %+v, %v; want nil (It works is no admin page)", oa, err)
	}
}

func TestBusyboxOpenAdminPage(t *testing.T) {
	t.Parallel()
	ep := daemontest.BusyboxHttpd(t, daemontest.BusyboxHttpdOptions{Auth: daemontest.HTTPAuth{None: true},
		Files: map[string]string{"index.html": adminPage}}).Endpoint()
	id, err := identify(t, ep)
	if err != nil {
		t.Fatalf("Identify: %v", err)
	}
	oa, err := New().ProbeOpenAccess(daemontest.Context(t), ep, id)
	if err != nil || oa == nil {
		t.Fatalf("ProbeOpenAccess = %+v, %v; want the open admin page", oa, err)
	}
	if oa.Details["path"] != "/" || oa.Details["title"] != "Router Settings" {
		t.Errorf("open access = %+v", oa)
	}
	// No login anywhere: Open says so.
	if _, err := New().Open(daemontest.Context(t), ep, id); err == nil || !strings.Contains(err.Error(), ErrNoLogin.Error()) {
		t.Errorf("Open err = %v, want ErrNoLogin", err)
	}
}

func TestBusyboxHardened(t *testing.T) {
	t.Parallel()
	ep := daemontest.BusyboxHttpd(t, daemontest.BusyboxHttpdOptions{Auth: daemontest.HTTPAuth{User: "admin"}, // a strong random password
		Files: map[string]string{"index.html": adminPage}}).Endpoint()
	res := tryAll(t, ep, nil, // no identity: Open discovers the login itself
		proto.Credential{Username: "admin", Password: "admin"},
		proto.Credential{Username: "root", Password: "root"},
		proto.Credential{Username: "admin", Password: ""})
	for i, r := range res {
		if r.Outcome != proto.Rejected {
			t.Errorf("try %d = %+v, want rejected", i, r)
		}
	}
}

func TestLighttpdBasicAndDigest(t *testing.T) {
	t.Parallel()
	for _, method := range []string{"basic", "digest"} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			ep := daemontest.Lighttpd(t, daemontest.LighttpdOptions{
				Auth:   daemontest.HTTPAuth{Path: "/admin/", User: "admin", Password: "password"},
				Digest: method == "digest", Realm: "NETGEAR R7000",
				Files: map[string]string{"index.html": itWorks, "admin/index.html": adminPage}}).Endpoint()
			id, err := identify(t, ep)
			if err != nil {
				t.Fatalf("Identify: %v", err)
			}
			openSession(t, ep, id)
			if id.Product != "lighttpd" || !strings.HasPrefix(id.Version, "1.") || id.Vendor != "netgear" {
				t.Errorf("identity = %+v, want lighttpd 1.x by netgear", id)
			}
			wantInfo(t, id, map[string]string{InfoAuthPath: "/admin/", InfoAuthScheme: method, InfoRealm: "NETGEAR R7000", InfoServer: "lighttpd/" + id.Version})
			res := tryAll(t, ep, id,
				proto.Credential{Username: "admin", Password: "admin"},
				proto.Credential{Username: "admin", Password: "password"},
				proto.Credential{Username: "admin", Password: "1234"})
			want := []proto.Outcome{proto.Rejected, proto.Accepted, proto.Rejected}
			for i := range want {
				if res[i].Outcome != want[i] {
					t.Errorf("try %d = %+v, want %v", i, res[i], want[i])
				}
			}
			if oa, err := New().ProbeOpenAccess(daemontest.Context(t), ep, id); oa != nil || err != nil {
				t.Errorf("ProbeOpenAccess = %+v, %v; want nil", oa, err)
			}
		})
	}
}

func TestLighttpdTLS(t *testing.T) {
	t.Parallel()
	ep := daemontest.Lighttpd(t, daemontest.LighttpdOptions{Auth: daemontest.HTTPAuth{User: "admin", Password: "12345"},
		Digest: true, Realm: "Camera", TLS: true, Files: map[string]string{"index.html": itWorks}}).Endpoint()
	id, err := identify(t, ep)
	if err != nil {
		t.Fatalf("Identify: %v", err)
	}
	if id.Product != "lighttpd" || !id.TLS {
		t.Errorf("identity = %+v, want lighttpd over TLS", id)
	}
	wantInfo(t, id, map[string]string{InfoAuthPath: "/", InfoAuthScheme: "digest", InfoRealm: "Camera"})
	res := tryAll(t, ep, id, proto.Credential{Username: "admin", Password: "admin"}, proto.Credential{Username: "admin", Password: "12345"})
	if res[0].Outcome != proto.Rejected || res[1].Outcome != proto.Accepted {
		t.Errorf("outcomes = %+v, want rejected then accepted", res)
	}
}

// openSession runs Open (which completes the login search) and closes it.
func openSession(t *testing.T, ep proto.Endpoint, id *proto.Identity) {
	t.Helper()
	sess, err := New().Open(daemontest.Context(t), ep, id)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	sess.Close()
}
