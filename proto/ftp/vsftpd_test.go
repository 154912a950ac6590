package ftp

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/proto"
)

func identifyConn(t *testing.T, ep proto.Endpoint) (*proto.Identity, error) {
	t.Helper()
	return daemontest.Identify(t, New(), ep)
}

func TestVsftpdAnonymous(t *testing.T) {
	t.Parallel()
	srv := daemontest.Vsftpd(t, daemontest.VsftpdOptions{Anonymous: true, Files: map[string]string{"readme.txt": "hello\n", "firmware.bin": "x"}})
	ep, root := srv.Endpoint(), srv.Root

	id, err := identifyConn(t, ep)
	if err != nil {
		t.Fatalf("Identify: %v", err)
	}
	if id.Protocol != "ftp" || id.Product != "vsFTPd" || id.Version == "" {
		t.Errorf("identity = %+v, want vsFTPd with a version", id)
	}
	if id.Info["greeting"] != "(vsFTPd "+id.Version+")" {
		t.Errorf("Info[greeting] = %q", id.Info["greeting"])
	}

	ctx := daemontest.Context(t)
	p := New()
	p.ProbeWrite = true
	oa, err := p.ProbeOpenAccess(ctx, ep, id)
	if err != nil || oa == nil {
		t.Fatalf("ProbeOpenAccess = %+v, %v; want anonymous FTP", oa, err)
	}
	if oa.What != "anonymous FTP" || oa.Details["user"] != "anonymous" {
		t.Errorf("open access = %+v", oa)
	}
	names, _ := oa.Details["entries"].([]string)
	if strings.Join(names, ",") != "firmware.bin,readme.txt" && strings.Join(names, ",") != "readme.txt,firmware.bin" {
		t.Errorf("entries = %q, want the two files", names)
	}
	if oa.Details["entry_count"] != 2 {
		t.Errorf("entry_count = %v", oa.Details["entry_count"])
	}
	// Anonymous writes are off: MKD is refused and nothing is left behind.
	if oa.Details["writable"] != false {
		t.Errorf("writable = %v (%v), want false", oa.Details["writable"], oa.Details["write_test"])
	}
	if left, _ := filepath.Glob(filepath.Join(root, "iotcop-*")); len(left) != 0 {
		t.Errorf("write probe left %v", left)
	}

	// The anonymous account takes any password: never a default credential.
	sess, err := p.Open(ctx, ep, id)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	for _, c := range []proto.Credential{{Username: "anonymous", Password: "anonymous"}, {Username: "ftp", Password: "ftp"}, {Username: "admin", Password: "admin"}} {
		res, err := sess.Try(ctx, c)
		if err != nil {
			t.Fatalf("Try(%v): %v", c, err)
		}
		if res.Outcome == proto.Accepted {
			t.Errorf("Try(%v) = %+v, want no acceptance", c, res)
		}
	}
}

func TestVsftpdLocalUser(t *testing.T) {
	t.Parallel()
	srv := daemontest.Vsftpd(t, daemontest.VsftpdOptions{User: "iotcopftp", Password: "s3cret-Pass",
		Files: map[string]string{"config.xml": "<x/>"}, Extra: "max_login_fails=2"})
	ep, user := srv.Endpoint(), srv.Username
	ctx := daemontest.Context(t)
	p := New()

	sess, err := p.Open(ctx, ep, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	// More refusals than max_login_fails: the session reconnects.
	for _, pw := range []string{"admin", "12345", ""} {
		res, err := sess.Try(ctx, proto.Credential{Username: user, Password: pw})
		if err != nil {
			t.Fatalf("Try(%q): %v", pw, err)
		}
		if res.Outcome != proto.Rejected {
			t.Errorf("Try(%q) = %+v, want rejected", pw, res)
		}
	}
	res, err := sess.Try(ctx, proto.Credential{Username: user, Password: "s3cret-Pass"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != proto.Accepted || !strings.HasPrefix(res.Proof, "230 and a directory listing") || !strings.Contains(res.Detail, "config.xml") {
		t.Fatalf("Try(good) = %+v, want accepted with the listing", res)
	}
	res, err = sess.Try(ctx, proto.Credential{Username: user, Password: "wrong"})
	if err != nil || res.Outcome != proto.Rejected {
		t.Errorf("Try(wrong after good) = %+v, %v; want rejected", res, err)
	}
	if oa, err := p.ProbeOpenAccess(ctx, ep, nil); oa != nil || err != nil {
		t.Errorf("ProbeOpenAccess = %+v, %v; want nil, nil", oa, err)
	}
}

func TestVsftpdHardened(t *testing.T) {
	t.Parallel()
	ep := daemontest.Vsftpd(t, daemontest.VsftpdOptions{}).Endpoint() // a local account with a strong password
	ctx := daemontest.Context(t)
	p := New()
	if oa, err := p.ProbeOpenAccess(ctx, ep, nil); oa != nil || err != nil {
		t.Fatalf("ProbeOpenAccess = %+v, %v; want nil, nil", oa, err)
	}
	sess, err := p.Open(ctx, ep, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	for _, c := range []proto.Credential{{Username: "root", Password: "root"}, {Username: "admin", Password: "admin"}, {Username: "anonymous", Password: "x@y"}} {
		res, err := sess.Try(ctx, c)
		if err != nil {
			t.Fatalf("Try(%v): %v", c, err)
		}
		if res.Outcome != proto.Rejected {
			t.Errorf("Try(%v) = %+v, want rejected", c, res)
		}
	}
}

// Implicit FTPS (port 990 style): the control and data connections are TLS.
func TestVsftpdImplicitTLS(t *testing.T) {
	t.Parallel()
	cert, key := daemontest.SelfSigned(t, t.TempDir(), "")
	ep := daemontest.Vsftpd(t, daemontest.VsftpdOptions{Anonymous: true, Files: map[string]string{"share.txt": "x"},
		Extra: fmt.Sprintf(`ssl_enable=YES
implicit_ssl=YES
allow_anon_ssl=YES
require_ssl_reuse=NO
rsa_cert_file=%s
rsa_private_key_file=%s`, cert, key)}).Endpoint()
	ep.TLS = true
	id, err := identifyConn(t, ep)
	if err != nil {
		t.Fatalf("Identify over TLS: %v", err)
	}
	if id.Product != "vsFTPd" || !id.TLS {
		t.Errorf("identity = %+v, want vsFTPd over TLS", id)
	}
	oa, err := New().ProbeOpenAccess(daemontest.Context(t), ep, id)
	if err != nil || oa == nil {
		t.Fatalf("ProbeOpenAccess = %+v, %v; want anonymous FTPS", oa, err)
	}
	if names, _ := oa.Details["entries"].([]string); len(names) != 1 || names[0] != "share.txt" {
		t.Errorf("entries = %v", oa.Details["entries"])
	}
}
