package check

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"encoding/xml"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/proto"
	"github.com/iotcop/iotcop/tlsaudit"
)

// tlsServer is a real Debian TLS server started for a test.
type tlsServer struct {
	host string
	port int
}

// started adapts a daemontest TLS server.
func started(s daemontest.Service) tlsServer { return tlsServer{s.Host, s.Port} }

// sslscanResult is what sslscan --xml reports.
type sslscanResult struct {
	Tests []struct {
		Protocols []struct {
			Type    string `xml:"type,attr"`
			Version string `xml:"version,attr"`
			Enabled string `xml:"enabled,attr"`
		} `xml:"protocol"`
		Ciphers []struct {
			Status   string `xml:"status,attr"`
			Version  string `xml:"sslversion,attr"`
			Name     string `xml:"cipher,attr"`
			ID       string `xml:"id,attr"`
			Strength string `xml:"strength,attr"`
		} `xml:"cipher"`
	} `xml:"ssltest"`
}

// runSSLScan runs Debian's sslscan on the server and returns the versions
// it found enabled and the suites it lists as weak, by id.
func runSSLScan(t *testing.T, s tlsServer) (versions []string, weak map[uint16]string) {
	t.Helper()
	daemontest.Require(t, "sslscan")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sslscan", "--no-colour", "--xml=-", net.JoinHostPort(s.host, strconv.Itoa(s.port))).Output()
	if err != nil {
		t.Fatalf("sslscan: %v\n%s", err, out)
	}
	start := strings.Index(string(out), "<?xml")
	if start < 0 {
		t.Fatalf("sslscan printed no XML:\n%s", out)
	}
	var r sslscanResult
	if err := xml.Unmarshal(out[start:], &r); err != nil || len(r.Tests) != 1 {
		t.Fatalf("parse sslscan XML (%v):\n%s", err, out)
	}
	names := map[string]string{"ssl2": "SSLv2", "ssl3": "SSLv3", "tls1.0": "TLSv1.0", "tls1.1": "TLSv1.1", "tls1.2": "TLSv1.2", "tls1.3": "TLSv1.3"}
	for _, p := range r.Tests[0].Protocols {
		if p.Enabled == "1" {
			versions = append(versions, names[p.Type+p.Version])
		}
	}
	weak = map[uint16]string{}
	for _, c := range r.Tests[0].Ciphers {
		id, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(c.ID), "0x"), 16, 16)
		if err != nil {
			t.Fatalf("sslscan cipher id %q: %v", c.ID, err)
		}
		switch {
		case tlsaudit.SuiteByID(uint16(id)).Weakness != 0,
			c.Strength == "null", c.Strength == "anonymous", c.Strength == "weak", c.Strength == "medium":
			weak[uint16(id)] = c.Name + " (" + c.Strength + ")"
		}
	}
	return versions, weak
}

func problemKinds(f finding.Finding) []string {
	var out []string
	for _, p := range f.Evidence["problems"].([]map[string]string) {
		out = append(out, p["kind"])
	}
	return out
}

// TestWeakTLSRealServers runs the check against real Debian TLS servers,
// weak and hardened, and compares its verdicts with sslscan's.
//
// What Debian 12 lets a test server enable: OpenSSL 3.0 at @SECLEVEL=0
// still speaks TLS 1.0/1.1 and NULL and anonymous (ADH/AECDH) suites, but
// Debian builds it without RC4, 3DES, single DES, export suites and SSLv3
// (no-weak-ssl-ciphers, no-ssl3). GnuTLS 3.7 (lighttpd's mod_gnutls with
// a raw priority string) still serves RC4 and 3DES with TLS 1.0/1.1.
// SSLv3, export and single-DES suites exist in no Debian server, so
// tlsaudit's scripted in-process servers cover them.
func TestWeakTLSRealServers(t *testing.T) {
	t.Parallel()
	expired := daemontest.CertSpec{Bits: 2048, NotBefore: time.Now().Add(-60 * 24 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour), CoverHost: true}
	weakKey := daemontest.CertSpec{Bits: 1024, SigAlg: x509.SHA1WithRSA, CoverHost: true}
	good := daemontest.CertSpec{Bits: 2048, CoverHost: true}
	tests := []struct {
		name         string
		start        func(t *testing.T) tlsServer
		protocol     string
		wantSeverity finding.Severity
		wantVersions []string
		wantWeakness []string // each must be among the accepted suites' weaknesses
		wantKinds    []string // each must be among the problems
		notKinds     []string // none may be among the problems
	}{
		{
			name: "openssl s_server at SECLEVEL=0: TLS 1.0, NULL and anonymous suites, expired certificate",
			start: func(t *testing.T) tlsServer {
				return started(daemontest.OpenSSLServer(t, expired, "-min_protocol", "TLSv1", "-cipher", "ALL:eNULL:@SECLEVEL=0"))
			},
			protocol:     "http",
			wantSeverity: finding.High,
			wantVersions: []string{"TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"},
			wantWeakness: []string{"NULL", "anonymous"},
			wantKinds:    []string{"tls1.0", "tls1.1", "weak-suite", "expired", "self-signed"},
			notKinds:     []string{"name-mismatch", "weak-key", "weak-signature"},
		},
		{
			// lighttpd's mod_openssl drops NULL and anonymous suites
			// whatever CipherString says; TLS 1.0 stays.
			name: "lighttpd+OpenSSL at SECLEVEL=0: TLS 1.0 and 1.1",
			start: func(t *testing.T) tlsServer {
				return started(daemontest.LighttpdTLS(t, "mod_openssl", `ssl.openssl.ssl-conf-cmd = ("MinProtocol" => "TLSv1", "CipherString" => "ALL:eNULL:@SECLEVEL=0")`, good))
			},
			protocol:     "http",
			wantSeverity: finding.Medium,
			wantVersions: []string{"TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"},
			wantKinds:    []string{"tls1.0", "tls1.1", "self-signed"},
			notKinds:     []string{"weak-suite", "expired", "name-mismatch", "weak-key", "weak-signature"},
		},
		{
			name: "lighttpd+GnuTLS: TLS 1.0, RC4 and 3DES, 1024-bit RSA signed with SHA-1",
			start: func(t *testing.T) tlsServer {
				return started(daemontest.LighttpdTLS(t, "mod_gnutls", `ssl.openssl.ssl-conf-cmd = ("gnutls-override" => "NORMAL:+3DES-CBC:+ARCFOUR-128:+RSA:+VERS-TLS1.0:+VERS-TLS1.1:+SHA1:+MD5:%NO_TICKETS")`, weakKey))
			},
			protocol:     "http",
			wantSeverity: finding.High,
			wantVersions: []string{"TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"},
			wantWeakness: []string{"RC4", "3DES"},
			wantKinds:    []string{"tls1.0", "weak-suite", "weak-key", "weak-signature", "self-signed"},
			notKinds:     []string{"expired"},
		},
		{
			name: "openssl s_server hardened: TLS 1.2+, strong suites, valid 2048-bit self-signed",
			start: func(t *testing.T) tlsServer {
				return started(daemontest.OpenSSLServer(t, good, "-min_protocol", "TLSv1.2", "-cipher", "ECDHE+AESGCM:ECDHE+CHACHA20"))
			},
			protocol:     "http",
			wantSeverity: finding.Low,
			wantVersions: []string{"TLSv1.2", "TLSv1.3"},
			wantKinds:    []string{"self-signed"},
			notKinds:     []string{"tls1.0", "tls1.1", "weak-suite", "expired", "weak-key", "weak-signature", "name-mismatch"},
		},
		{
			name: "lighttpd+OpenSSL defaults, certificate without the device's address",
			start: func(t *testing.T) tlsServer {
				return started(daemontest.LighttpdTLS(t, "mod_openssl", "", daemontest.CertSpec{Bits: 2048}))
			},
			protocol:     "http",
			wantSeverity: finding.Low,
			wantVersions: []string{"TLSv1.2", "TLSv1.3"},
			wantKinds:    []string{"self-signed", "name-mismatch"},
			notKinds:     []string{"tls1.0", "tls1.1", "weak-suite", "expired", "weak-key", "weak-signature"},
		},
		{
			name: "mosquitto mqtts",
			start: func(t *testing.T) tlsServer {
				s := daemontest.Mosquitto(t, daemontest.MosquittoOptions{TLS: true, Anonymous: true})
				return tlsServer{s.Host, s.Port}
			},
			protocol:     "mqtt",
			wantSeverity: finding.Low,
			wantKinds:    []string{"self-signed"},
			notKinds:     []string{"tls1.0", "tls1.1", "weak-suite", "expired", "weak-key", "weak-signature", "name-mismatch"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := tc.start(t)
			dev := &Device{Address: srv.host, Services: []Service{{
				Endpoint: proto.Endpoint{Host: srv.host, Port: srv.port, Transport: "tcp", TLS: true, Timeout: 2 * time.Second},
				Identity: &proto.Identity{Protocol: tc.protocol, TLS: true},
			}}}
			fs, err := (&WeakTLS{}).Run(daemontest.Context(t), dev)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if len(fs) != 1 {
				t.Fatalf("findings = %+v, want one", fs)
			}
			f := fs[0]
			t.Logf("%s: %s\n  problems: %v\n  connections: %v", f.Severity, f.Title, f.Evidence["problems"], f.Evidence["connections"])
			if f.Check != finding.CheckWeakTLS || !slices.Equal(f.Provisions, []string{"5.5-1"}) || f.Port != srv.port || f.Protocol != tc.protocol {
				t.Errorf("finding header = %+v", f)
			}
			if f.Severity != tc.wantSeverity {
				t.Errorf("severity = %s, want %s", f.Severity, tc.wantSeverity)
			}
			kinds := problemKinds(f)
			for _, k := range tc.wantKinds {
				if !slices.Contains(kinds, k) {
					t.Errorf("problem %q missing from %v", k, kinds)
				}
			}
			for _, k := range tc.notKinds {
				if slices.Contains(kinds, k) {
					t.Errorf("problem %q reported on a server without it: %v", k, f.Evidence["problems"])
				}
			}
			ours := f.Evidence["versions_accepted"].([]string)
			if tc.wantVersions != nil && !slices.Equal(ours, tc.wantVersions) {
				t.Errorf("versions = %v, want %v", ours, tc.wantVersions)
			}
			flagged := map[uint16]bool{}
			var weaknesses []string
			for _, w := range f.Evidence["weak_suites"].([]map[string]any) {
				id, _ := strconv.ParseUint(strings.TrimPrefix(w["id"].(string), "0x"), 16, 16)
				flagged[uint16(id)] = true
				weaknesses = append(weaknesses, w["weakness"].([]string)...)
			}
			for _, w := range tc.wantWeakness {
				if !slices.Contains(weaknesses, w) {
					t.Errorf("no %s suite among the accepted weak suites %v", w, f.Evidence["weak_suites"])
				}
			}
			cert := f.Evidence["certificate"].(map[string]any)
			for _, k := range []string{"subject", "issuer", "not_after", "key_type", "key_bits", "signature_algorithm", "sha256", "public_key_sha256"} {
				if cert[k] == nil || cert[k] == "" {
					t.Errorf("certificate evidence lacks %s: %v", k, cert)
				}
			}
			obs := dev.Observations()
			if len(obs) != 1 || obs[0].Kind != ObservedTLSPublicKey || obs[0].Value != cert["public_key_sha256"] || obs[0].Port != srv.port {
				t.Errorf("observations = %+v, want the public key fingerprint %v", obs, cert["public_key_sha256"])
			}
			if f.Evidence["complete"] != true {
				t.Errorf("audit incomplete: %v", f.Evidence["notes"])
			}

			// Agreement with sslscan on the same server.
			scanVersions, scanWeak := runSSLScan(t, srv)
			if !slices.Equal(scanVersions, ours) {
				t.Errorf("versions: sslscan %v, iotcop %v", scanVersions, ours)
			}
			for id, name := range scanWeak {
				if !flagged[id] {
					t.Errorf("sslscan lists weak suite 0x%04X %s that iotcop does not flag", id, name)
				}
			}
			var extra []string
			for id := range flagged {
				if _, ok := scanWeak[id]; !ok {
					extra = append(extra, tlsaudit.SuiteByID(id).Name)
				}
			}
			if len(extra) > 0 {
				t.Logf("weak suites iotcop found that sslscan does not list: %v", extra)
			}
		})
	}
}

// TestJudgeTLS checks the severity policy on audits built by hand.
func TestJudgeTLS(t *testing.T) {
	t.Parallel()
	now := time.Now()
	dir := t.TempDir()
	certOf := func(c daemontest.CertSpec) *x509.Certificate {
		sub := filepath.Join(dir, strconv.Itoa(int(time.Now().UnixNano())))
		path, _ := daemontest.WriteCert(t, sub, c)
		return readCert(t, path)
	}
	good := certOf(daemontest.CertSpec{Bits: 2048, IP: "192.168.1.20"})
	sha1 := certOf(daemontest.CertSpec{Bits: 2048, SigAlg: x509.SHA1WithRSA, IP: "192.168.1.20"})
	expired := certOf(daemontest.CertSpec{Bits: 2048, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour), IP: "192.168.1.20"})
	accepted := func(vs ...tlsaudit.Version) []tlsaudit.VersionResult {
		var out []tlsaudit.VersionResult
		for _, v := range tlsaudit.Versions() {
			out = append(out, tlsaudit.VersionResult{Version: v, Accepted: slices.Contains(vs, v)})
		}
		return out
	}
	weak := func(id uint16, vs ...tlsaudit.Version) tlsaudit.WeakSuite {
		return tlsaudit.WeakSuite{Suite: tlsaudit.SuiteByID(id), Versions: vs}
	}
	tests := []struct {
		name    string
		res     *tlsaudit.Result
		names   []string
		want    finding.Severity
		wantN   int
		wantTop string
	}{
		{"hardened, certificate covers the IP: only self-signed", &tlsaudit.Result{Versions: accepted(tlsaudit.TLS12, tlsaudit.TLS13), Chain: []*x509.Certificate{good}}, []string{"192.168.1.20"}, finding.Low, 1, "self-signed"},
		{"SSLv3 is high", &tlsaudit.Result{Versions: accepted(tlsaudit.SSL30, tlsaudit.TLS12)}, nil, finding.High, 1, "sslv3"},
		{"RC4 is high", &tlsaudit.Result{Versions: accepted(tlsaudit.TLS12), WeakSuites: []tlsaudit.WeakSuite{weak(0x0005, tlsaudit.TLS12)}}, nil, finding.High, 1, "weak-suite"},
		{"export is high", &tlsaudit.Result{Versions: accepted(tlsaudit.TLS10), WeakSuites: []tlsaudit.WeakSuite{weak(0x0008, tlsaudit.TLS10)}}, nil, finding.High, 4, "weak-suite"},
		{"one problem per class of weak suite", &tlsaudit.Result{Versions: accepted(tlsaudit.TLS12), WeakSuites: []tlsaudit.WeakSuite{
			weak(0x0004, tlsaudit.TLS12), weak(0x0005, tlsaudit.TLS12), weak(0xC011, tlsaudit.TLS12), weak(0x000A, tlsaudit.TLS12)}}, nil, finding.High, 2, "weak-suite"},
		{"3DES alone is medium", &tlsaudit.Result{Versions: accepted(tlsaudit.TLS12), WeakSuites: []tlsaudit.WeakSuite{weak(0x000A, tlsaudit.TLS12)}}, nil, finding.Medium, 1, "weak-suite"},
		{"anonymous 3DES is high", &tlsaudit.Result{Versions: accepted(tlsaudit.TLS12), WeakSuites: []tlsaudit.WeakSuite{weak(0x001B, tlsaudit.TLS12)}}, nil, finding.High, 2, "weak-suite"},
		{"TLS 1.1 is medium", &tlsaudit.Result{Versions: accepted(tlsaudit.TLS11, tlsaudit.TLS12)}, nil, finding.Medium, 1, "tls1.1"},
		{"TLS 1.0 only: also no modern TLS", &tlsaudit.Result{Versions: accepted(tlsaudit.TLS10)}, nil, finding.Medium, 2, "tls1.0"},
		{"SHA-1 signature is medium", &tlsaudit.Result{Versions: accepted(tlsaudit.TLS12), Chain: []*x509.Certificate{sha1}}, []string{"192.168.1.20"}, finding.Medium, 2, "weak-signature"},
		{"expired is medium", &tlsaudit.Result{Versions: accepted(tlsaudit.TLS12), Chain: []*x509.Certificate{expired}}, []string{"192.168.1.20"}, finding.Medium, 2, "expired"},
		{"IP mismatch is low", &tlsaudit.Result{Versions: accepted(tlsaudit.TLS13), Chain: []*x509.Certificate{good}}, []string{"192.168.1.99"}, finding.Low, 2, "self-signed"},
		{"host name mismatch is medium", &tlsaudit.Result{Versions: accepted(tlsaudit.TLS13), Chain: []*x509.Certificate{good}}, []string{"192.168.1.99", "cam.example"}, finding.Medium, 2, "name-mismatch"},
		{"nothing accepted, nothing judged", &tlsaudit.Result{Versions: accepted()}, nil, finding.Info, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps := JudgeTLS(tc.res, now, tc.names)
			if len(ps) != tc.wantN {
				t.Fatalf("problems = %+v, want %d", ps, tc.wantN)
			}
			if tc.wantN == 0 {
				return
			}
			if ps[0].Severity != tc.want || ps[0].Kind != tc.wantTop {
				t.Errorf("worst = %s %s, want %s %s (all %+v)", ps[0].Severity, ps[0].Kind, tc.want, tc.wantTop, ps)
			}
			for i := 1; i < len(ps); i++ {
				if ps[i].Severity > ps[i-1].Severity {
					t.Errorf("problems not sorted worst first: %+v", ps)
				}
			}
		})
	}

	// Keys Go refuses to make: a 512-bit RSA key signed with MD5, from openssl.
	daemontest.Require(t, "openssl")
	out, err := exec.Command("openssl", "req", "-x509", "-newkey", "rsa:512", "-md5", "-nodes",
		"-keyout", filepath.Join(dir, "k512.pem"), "-out", filepath.Join(dir, "c512.pem"), "-days", "30", "-subj", "/CN=old camera").CombinedOutput()
	if err != nil {
		t.Skipf("openssl cannot make a 512-bit MD5 certificate here: %v\n%s", err, out)
	}
	old := readCert(t, filepath.Join(dir, "c512.pem"))
	ps := JudgeTLS(&tlsaudit.Result{Versions: accepted(tlsaudit.TLS12), Chain: []*x509.Certificate{old}}, now, []string{"10.0.0.1"})
	var high []string
	for _, p := range ps {
		if p.Severity == finding.High {
			high = append(high, p.Kind)
		}
	}
	if !slices.Equal(high, []string{"weak-key", "weak-signature"}) {
		t.Errorf("512-bit MD5 certificate: high problems = %v, want weak-key and weak-signature (all %+v)", high, ps)
	}
	if !slices.ContainsFunc(ps, func(p TLSProblem) bool { return p.Kind == "self-signed" }) {
		t.Errorf("512-bit self-signed certificate not seen as self-signed: %+v", ps)
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s holds no PEM block", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return c
}

func TestWeakTLSSkipsPlainServices(t *testing.T) {
	t.Parallel()
	dev := &Device{Address: "127.0.0.9", Services: []Service{
		{Endpoint: proto.Endpoint{Host: "127.0.0.9", Port: 80, Transport: "tcp"}, Identity: &proto.Identity{Protocol: "http"}},
		{Endpoint: proto.Endpoint{Host: "127.0.0.9", Port: 161, Transport: "udp"}, Identity: &proto.Identity{Protocol: "snmp"}},
	}}
	fs, err := (&WeakTLS{}).Run(context.Background(), dev)
	if err != nil || len(fs) != 0 {
		t.Errorf("plain services: findings %v, err %v; want none", fs, err)
	}
}

func TestWeakTLSHostileService(t *testing.T) {
	t.Parallel()
	srv := daemontest.ServeTCP(t, "", 0, func(c net.Conn) {
		_, _ = c.Read(make([]byte, 2048))
		// Claims a handshake record of 64 KiB, then drips garbage.
		_, _ = c.Write([]byte{22, 3, 3, 0xFF, 0xFF, 'x', 'x'})
	})
	ep := srv.Endpoint(500 * time.Millisecond)
	ep.TLS = true
	dev := &Device{Address: srv.Host, Services: []Service{{
		Endpoint: ep,
		Identity: &proto.Identity{Protocol: "http", TLS: true},
	}}}
	fs, err := (&WeakTLS{}).Run(context.Background(), dev)
	if err == nil || !strings.Contains(err.Error(), "weak-tls on "+ep.Addr()) {
		t.Errorf("err = %v, want a weak-tls error naming the service", err)
	}
	if len(fs) != 0 {
		t.Errorf("hostile service produced findings %+v", fs)
	}
	if obs := dev.Observations(); len(obs) != 0 {
		t.Errorf("hostile service produced observations %+v", obs)
	}
}
