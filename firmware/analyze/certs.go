package analyze

import (
	"bytes"
	"context"
	//lint:ignore SA1019 recognising legacy DSA keys is the point
	"crypto/dsa"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/firmware/unpack"
)

// Certificates reports device certificates (not CA bundles) with weak
// keys, past their validity, or self-signed leaf certificates, under the
// embedded-private-key check.
type Certificates struct {
	// Now is the time validity is judged at (default time.Now).
	Now func() time.Time
}

// NewCertificates returns the analysis.
func NewCertificates() *Certificates { return &Certificates{Now: time.Now} }

// Name implements Analyzer.
func (*Certificates) Name() string { return "certificates" }

// PerFile implements PerFile.
func (*Certificates) PerFile() bool { return true }

// Required implements Analyzer: small files outside the CA bundle folders.
func (*Certificates) Required(p string, info fs.FileInfo) bool {
	if !info.Mode().IsRegular() || info.Size() > 1<<20 || info.Size() < 100 {
		return false
	}
	for _, ca := range []string{"/etc/ssl/certs/", "/usr/share/ca-certificates/", "/etc/pki/ca-trust/", "/usr/lib/ssl/certs/", "/etc/ca-certificates/"} {
		if strings.HasPrefix(p, ca) {
			return false
		}
	}
	return true
}

// maxCertsPerFile: files with more certificates are CA bundles.
const maxCertsPerFile = 3

// weakKey describes a key too weak for a device certificate, or "".
func weakKey(pub any) (string, int) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 {
			return fmt.Sprintf("RSA %d-bit", n), n
		}
	case *dsa.PublicKey:
		return fmt.Sprintf("DSA %d-bit", k.P.BitLen()), k.P.BitLen()
	case *ecdsa.PublicKey:
		if n := k.Curve.Params().BitSize; n < 224 {
			return fmt.Sprintf("ECDSA %d-bit", n), n
		}
	case ed25519.PublicKey:
	}
	return "", 0
}

func hasTLSUsage(c *x509.Certificate) bool {
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageServerAuth || u == x509.ExtKeyUsageClientAuth {
			return true
		}
	}
	return false
}

// Analyze implements Analyzer.
func (c *Certificates) Analyze(ctx context.Context, _ *unpack.Tree, files []*unpack.File) ([]finding.Finding, error) {
	var out []finding.Finding
	now := c.Now()
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		data := f.Data()
		if !bytes.Contains(data, []byte("-----BEGIN CERTIFICATE-----")) {
			continue
		}
		var certs []*x509.Certificate
		for rest := data; len(certs) <= maxCertsPerFile; {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if b.Type != "CERTIFICATE" {
				continue
			}
			if cert, err := x509.ParseCertificate(b.Bytes); err == nil {
				certs = append(certs, cert)
			}
		}
		if len(certs) == 0 || len(certs) > maxCertsPerFile {
			continue
		}
		hasKey := bytes.Contains(data, []byte("PRIVATE KEY-----"))
		for _, cert := range certs {
			if cert.IsCA && len(certs) > 1 {
				continue // a chain's CA is not the device's certificate
			}
			fp := sha256.Sum256(cert.Raw)
			base := func() map[string]any {
				return layerEvidence(f, map[string]any{"subject": cert.Subject.String(), "issuer": cert.Issuer.String(),
					"not_after": cert.NotAfter.UTC().Format(time.RFC3339), "sha256": hex.EncodeToString(fp[:])})
			}
			add := func(sev finding.Severity, title, remediation string, ev map[string]any) {
				out = append(out, finding.Finding{Check: finding.CheckEmbeddedPrivateKey, Provisions: []string{"5.5-1"},
					Severity: sev, Title: title, Path: f.Path(), Evidence: ev, Remediation: remediation})
			}
			if what, bits := weakKey(cert.PublicKey); what != "" {
				ev := base()
				ev["key"], ev["key_bits"] = what, bits
				add(finding.Medium, "Certificate with a weak "+what+" key", "Use RSA of at least 2048 bits or ECDSA P-256 or better.", ev)
			}
			if now.After(cert.NotAfter) {
				add(finding.Low, "Expired certificate ("+cert.Subject.CommonName+")", "Replace the certificate, and provision per-device certificates.", base())
			}
			// A self-signed CA alone is a trust anchor; it is the device's own
			// certificate when it is a leaf, is marked for TLS use, or sits
			// with its private key (lighttpd's server.pem).
			own := !cert.IsCA || hasKey || hasTLSUsage(cert)
			if own && cert.Subject.String() == cert.Issuer.String() && cert.CheckSignatureFrom(cert) == nil {
				add(finding.Info, "Self-signed device certificate ("+cert.Subject.CommonName+")",
					"Clients cannot verify a self-signed certificate shared by every unit; provision per-device certificates.", base())
			}
		}
	}
	return out, nil
}
