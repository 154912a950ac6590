package tlsaudit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"
)

// certSpec describes a test certificate.
type certSpec struct {
	rsaBits   int            // RSA key size; 0 with curve set for ECDSA
	curve     elliptic.Curve // ECDSA curve
	notBefore time.Time
	notAfter  time.Time
	sigAlg    x509.SignatureAlgorithm
	ips       []string
	dns       []string
	cn        string
	issuer    *issuer // nil: self-signed
}

type issuer struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newKey(t testing.TB, s certSpec) crypto.Signer {
	t.Helper()
	if s.curve != nil {
		k, err := ecdsa.GenerateKey(s.curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	bits := s.rsaBits
	if bits == 0 {
		bits = 2048
	}
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// makeCert creates a certificate and its key.
func makeCert(t testing.TB, s certSpec) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key := newKey(t, s)
	if s.notBefore.IsZero() {
		s.notBefore = time.Now().Add(-time.Hour)
	}
	if s.notAfter.IsZero() {
		s.notAfter = time.Now().Add(365 * 24 * time.Hour)
	}
	if s.cn == "" {
		s.cn = "iotcop test device"
	}
	tpl := &x509.Certificate{
		SerialNumber:       big.NewInt(time.Now().UnixNano()),
		Subject:            pkix.Name{CommonName: s.cn, Organization: []string{"iotcop"}},
		NotBefore:          s.notBefore,
		NotAfter:           s.notAfter,
		SignatureAlgorithm: s.sigAlg,
		DNSNames:           s.dns,
		KeyUsage:           x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:        []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, ip := range s.ips {
		tpl.IPAddresses = append(tpl.IPAddresses, net.ParseIP(ip))
	}
	parent, signer := tpl, key
	if s.issuer != nil {
		parent, signer = s.issuer.cert, s.issuer.key
	} else {
		tpl.IsCA, tpl.BasicConstraintsValid = true, true
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, parent, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func tlsCert(c *x509.Certificate, k crypto.Signer) tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: k, Leaf: c}
}
