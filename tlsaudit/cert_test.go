package tlsaudit

import (
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"slices"
	"testing"
	"time"
)

func kinds(ps []CertProblem) []ProblemKind {
	var out []ProblemKind
	for _, p := range ps {
		out = append(out, p.Kind)
	}
	return out
}

func TestCheckCertificate(t *testing.T) {
	t.Parallel()
	now := time.Now()
	caCert, caKey := makeCert(t, certSpec{cn: "iotcop test CA"})
	ca := &issuer{caCert, caKey}
	tests := []struct {
		name  string
		spec  certSpec
		names []string
		want  []ProblemKind
	}{
		{"CA-issued, 2048, covers the IP", certSpec{issuer: ca, ips: []string{"192.168.1.10"}}, []string{"192.168.1.10"}, nil},
		{"CA-issued, covers the host name", certSpec{issuer: ca, dns: []string{"cam.example"}}, []string{"192.168.1.10", "cam.example"}, nil},
		{"self-signed", certSpec{ips: []string{"192.168.1.10"}}, []string{"192.168.1.10"}, []ProblemKind{ProblemSelfSigned}},
		{"expired", certSpec{issuer: ca, ips: []string{"10.0.0.1"}, notBefore: now.Add(-48 * time.Hour), notAfter: now.Add(-24 * time.Hour)}, []string{"10.0.0.1"}, []ProblemKind{ProblemExpired}},
		{"not yet valid", certSpec{issuer: ca, ips: []string{"10.0.0.1"}, notBefore: now.Add(24 * time.Hour)}, []string{"10.0.0.1"}, []ProblemKind{ProblemNotYetValid}},
		{"RSA 1024", certSpec{issuer: ca, rsaBits: 1024, ips: []string{"10.0.0.1"}}, []string{"10.0.0.1"}, []ProblemKind{ProblemWeakKey}},
		{"EC P-224", certSpec{issuer: ca, curve: elliptic.P224(), ips: []string{"10.0.0.1"}}, []string{"10.0.0.1"}, []ProblemKind{ProblemWeakKey}},
		{"EC P-256 is fine", certSpec{issuer: ca, curve: elliptic.P256(), ips: []string{"10.0.0.1"}}, []string{"10.0.0.1"}, nil},
		{"SHA-1 signature", certSpec{issuer: ca, sigAlg: x509.SHA1WithRSA, ips: []string{"10.0.0.1"}}, []string{"10.0.0.1"}, []ProblemKind{ProblemWeakSignature}},
		{"CN only, addressed by IP", certSpec{issuer: ca, cn: "192.168.1.10"}, []string{"192.168.1.10"}, []ProblemKind{ProblemNameMismatch}},
		{"other IP", certSpec{issuer: ca, ips: []string{"10.0.0.2"}}, []string{"10.0.0.1"}, []ProblemKind{ProblemNameMismatch}},
		{"no names given: no mismatch", certSpec{issuer: ca}, nil, nil},
		{"everything wrong", certSpec{rsaBits: 1024, sigAlg: x509.SHA1WithRSA, notBefore: now.Add(-48 * time.Hour), notAfter: now.Add(-time.Hour)}, []string{"10.0.0.1"},
			[]ProblemKind{ProblemExpired, ProblemSelfSigned, ProblemWeakKey, ProblemWeakSignature, ProblemNameMismatch}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _ := makeCert(t, tc.spec)
			got := CheckCertificate(c, now, tc.names)
			if !slices.Equal(kinds(got), tc.want) {
				t.Errorf("problems = %v, want %v", got, tc.want)
			}
			for _, p := range got {
				if p.Detail == "" {
					t.Errorf("problem %s without detail", p.Kind)
				}
			}
		})
	}
}

func TestCertFacts(t *testing.T) {
	t.Parallel()
	c1, key := makeCert(t, certSpec{rsaBits: 1024, sigAlg: x509.SHA1WithRSA, ips: []string{"10.1.2.3"}, dns: []string{"cam.local"}})
	f := CertFacts(c1)
	if f.KeyType != "RSA" || f.KeyBits != 1024 || f.SignatureAlgorithm != "SHA1-RSA" || !f.SelfSigned {
		t.Errorf("facts = %+v", f)
	}
	if len(f.SHA256) != 64 || len(f.PublicKeySHA256) != 64 || f.SHA256 == f.PublicKeySHA256 {
		t.Errorf("fingerprints %q / %q", f.SHA256, f.PublicKeySHA256)
	}
	if !slices.Equal(f.IPAddresses, []string{"10.1.2.3"}) || !slices.Equal(f.DNSNames, []string{"cam.local"}) {
		t.Errorf("names = %v %v", f.IPAddresses, f.DNSNames)
	}
	// A second certificate for the same key: same key fingerprint, other
	// certificate fingerprint (what the shared-secret check relies on).
	tpl := *c1
	tpl.SerialNumber = tpl.SerialNumber.Add(tpl.SerialNumber, tpl.SerialNumber)
	tpl.SignatureAlgorithm = x509.SHA256WithRSA
	der, err := x509.CreateCertificate(rand.Reader, &tpl, &tpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if PublicKeySHA256(c2) != f.PublicKeySHA256 || CertSHA256(c2.Raw) == f.SHA256 {
		t.Error("same key must share the key fingerprint and differ in the certificate fingerprint")
	}
	ec, _ := makeCert(t, certSpec{curve: elliptic.P384()})
	if typ, bits := KeyInfo(ec); typ != "ECDSA" || bits != 384 {
		t.Errorf("KeyInfo = %s %d, want ECDSA 384", typ, bits)
	}
	caCert, caKey := makeCert(t, certSpec{cn: "CA"})
	leaf, _ := makeCert(t, certSpec{issuer: &issuer{caCert, caKey}, cn: "CA"}) // same name, other key
	if SelfSigned(leaf) {
		t.Error("a leaf named like its issuer but signed by it is not self-signed")
	}
}
