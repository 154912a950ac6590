package tlsaudit

import (
	"bytes"
	"crypto"
	//lint:ignore SA1019 devices still present DSA keys; they are only measured
	"crypto/dsa"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/md5" //nolint:gosec // verifying legacy self-signatures, not for security
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // verifying legacy self-signatures, not for security
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// CertSHA256 returns the hex SHA-256 fingerprint of a DER certificate, as
// shown by browsers and `openssl x509 -fingerprint -sha256` (lower case,
// no colons).
func CertSHA256(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// PublicKeySHA256 returns the hex SHA-256 of the certificate's
// SubjectPublicKeyInfo: the same key in a re-issued certificate has the
// same value, so units sharing a key are found even with different certs.
func PublicKeySHA256(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

// KeyInfo returns the public key type ("RSA", "ECDSA", "Ed25519", "DSA")
// and its size in bits (curve size for ECDSA).
func KeyInfo(c *x509.Certificate) (string, int) {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		return "ECDSA", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		return "Ed25519", 256
	case *dsa.PublicKey:
		return "DSA", k.P.BitLen()
	}
	return c.PublicKeyAlgorithm.String(), 0
}

// SelfSigned reports whether the certificate is its own issuer: issuer and
// subject match and, where it can be checked, its signature verifies with
// its own key (SHA-1 and MD5 signatures included).
func SelfSigned(c *x509.Certificate) bool {
	if !bytes.Equal(c.RawIssuer, c.RawSubject) {
		return false
	}
	if len(c.AuthorityKeyId) > 0 && len(c.SubjectKeyId) > 0 && !bytes.Equal(c.AuthorityKeyId, c.SubjectKeyId) {
		return false
	}
	err := verifySelf(c)
	return err == nil || errors.Is(err, errCannotVerify)
}

var errCannotVerify = errors.New("signature algorithm not verifiable here")

// verifySelf checks c's signature with its own key. x509 refuses SHA-1 and
// MD5, which are exactly the signatures old devices carry, so those are
// verified by hand.
func verifySelf(c *x509.Certificate) error {
	var h crypto.Hash
	var digest []byte
	switch c.SignatureAlgorithm {
	case x509.SHA1WithRSA, x509.ECDSAWithSHA1, x509.DSAWithSHA1:
		s := sha1.Sum(c.RawTBSCertificate) //nolint:gosec // legacy verification
		h, digest = crypto.SHA1, s[:]
	case x509.MD5WithRSA:
		s := md5.Sum(c.RawTBSCertificate) //nolint:gosec // legacy verification
		h, digest = crypto.MD5, s[:]
	default:
		err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature)
		var insecure x509.InsecureAlgorithmError
		if errors.As(err, &insecure) || errors.Is(err, x509.ErrUnsupportedAlgorithm) {
			return errCannotVerify
		}
		if k, ok := c.PublicKey.(*rsa.PublicKey); ok && err != nil && k.N.BitLen() < 1024 {
			return errCannotVerify // Go refuses keys this small
		}
		return err
	}
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		if err := rsa.VerifyPKCS1v15(k, h, digest, c.Signature); err != nil {
			if k.N.BitLen() < 1024 {
				return errCannotVerify // Go refuses keys this small
			}
			return err
		}
		return nil
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, digest, c.Signature) {
			return errors.New("ecdsa signature does not verify")
		}
		return nil
	}
	return errCannotVerify
}

// Facts is what reports show of a certificate.
type Facts struct {
	Subject            string
	Issuer             string
	NotBefore          time.Time
	NotAfter           time.Time
	KeyType            string
	KeyBits            int
	SignatureAlgorithm string
	SHA256             string // of the DER certificate
	PublicKeySHA256    string // of the SubjectPublicKeyInfo
	SelfSigned         bool
	DNSNames           []string
	IPAddresses        []string
}

// CertFacts extracts the facts of c.
func CertFacts(c *x509.Certificate) Facts {
	f := Facts{
		Subject:            c.Subject.String(),
		Issuer:             c.Issuer.String(),
		NotBefore:          c.NotBefore.UTC(),
		NotAfter:           c.NotAfter.UTC(),
		SignatureAlgorithm: c.SignatureAlgorithm.String(),
		SHA256:             CertSHA256(c.Raw),
		PublicKeySHA256:    PublicKeySHA256(c),
		SelfSigned:         SelfSigned(c),
		DNSNames:           c.DNSNames,
	}
	f.KeyType, f.KeyBits = KeyInfo(c)
	for _, ip := range c.IPAddresses {
		f.IPAddresses = append(f.IPAddresses, ip.String())
	}
	return f
}

// ProblemKind names a certificate problem.
type ProblemKind string

// Certificate problem kinds.
const (
	ProblemExpired       ProblemKind = "expired"
	ProblemNotYetValid   ProblemKind = "not-yet-valid"
	ProblemSelfSigned    ProblemKind = "self-signed"
	ProblemWeakKey       ProblemKind = "weak-key"
	ProblemWeakSignature ProblemKind = "weak-signature"
	ProblemNameMismatch  ProblemKind = "name-mismatch"
)

// CertProblem is one thing wrong with a certificate.
type CertProblem struct {
	Kind   ProblemKind
	Detail string
}

// Minimum key sizes: below them a key is weak (NIST SP 800-57, BSI TR-02102).
const (
	MinRSABits = 2048
	MinECBits  = 256
)

// WeakSignature reports whether a signature algorithm relies on a broken
// hash, and whether that hash is MD5/MD2 (collisions are practical) rather
// than SHA-1 (collisions demonstrated, costly).
func WeakSignature(alg x509.SignatureAlgorithm) (weak, broken bool) {
	switch alg {
	case x509.MD2WithRSA, x509.MD5WithRSA:
		return true, true
	case x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1:
		return true, false
	}
	return false, false
}

// CheckCertificate lists the problems of a leaf certificate at time now,
// names being what the device was addressed by (IP addresses and/or host
// names; the certificate must cover one of them).
func CheckCertificate(c *x509.Certificate, now time.Time, names []string) []CertProblem {
	var out []CertProblem
	if now.After(c.NotAfter) {
		out = append(out, CertProblem{ProblemExpired, fmt.Sprintf("expired on %s", c.NotAfter.UTC().Format(time.DateOnly))})
	}
	if now.Before(c.NotBefore) {
		out = append(out, CertProblem{ProblemNotYetValid, fmt.Sprintf("not valid before %s", c.NotBefore.UTC().Format(time.DateOnly))})
	}
	if SelfSigned(c) {
		out = append(out, CertProblem{ProblemSelfSigned, "self-signed: clients cannot authenticate the device"})
	}
	typ, bits := KeyInfo(c)
	switch {
	case typ == "RSA" && bits < MinRSABits:
		out = append(out, CertProblem{ProblemWeakKey, fmt.Sprintf("RSA key of %d bits (< %d)", bits, MinRSABits)})
	case typ == "ECDSA" && bits < MinECBits:
		out = append(out, CertProblem{ProblemWeakKey, fmt.Sprintf("EC key of %d bits (< %d)", bits, MinECBits)})
	case typ == "DSA":
		out = append(out, CertProblem{ProblemWeakKey, fmt.Sprintf("DSA key of %d bits (DSA is deprecated)", bits)})
	}
	if weak, _ := WeakSignature(c.SignatureAlgorithm); weak {
		out = append(out, CertProblem{ProblemWeakSignature, "signed with " + c.SignatureAlgorithm.String()})
	}
	if len(names) > 0 && !coversAny(c, names) {
		out = append(out, CertProblem{ProblemNameMismatch, fmt.Sprintf("certificate for %s does not cover %s", certNames(c), strings.Join(names, ", "))})
	}
	return out
}

func coversAny(c *x509.Certificate, names []string) bool {
	for _, n := range names {
		if c.VerifyHostname(n) == nil {
			return true
		}
	}
	return false
}

// certNames describes the names a certificate is for.
func certNames(c *x509.Certificate) string {
	var n []string
	n = append(n, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		n = append(n, ip.String())
	}
	if len(n) == 0 {
		if c.Subject.CommonName != "" {
			return fmt.Sprintf("CN=%s only (no subjectAltName; modern clients ignore the CN)", c.Subject.CommonName)
		}
		return "no name"
	}
	return strings.Join(n, ", ")
}

// IsIP reports whether name is an IP literal (devices addressed by IP
// rarely have certificates naming it).
func IsIP(name string) bool { return net.ParseIP(strings.Trim(name, "[]")) != nil }
