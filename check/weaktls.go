package check

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/tlsaudit"
)

// WeakTLS audits every service that speaks TLS (https on any port, mqtts,
// ftps, rtsps, anything the fingerprints marked TLS): protocol versions
// from SSLv3 to TLS 1.3, weak cipher suites and the certificate. It makes
// one finding per service with at least one problem, whose severity is
// that of the worst problem:
//
//   - high: SSLv3 accepted; a NULL, export, anonymous, RC4 or single-DES
//     suite accepted; an RSA key under 1024 bits; an MD5 or MD2 signature.
//     Traffic can be read or the device impersonated with modest effort.
//   - medium: TLS 1.0 or 1.1 accepted, or no TLS 1.2/1.3 at all; a 3DES or
//     IDEA suite (64-bit blocks, Sweet32); an RSA key of 1024 to 2047 bits,
//     an EC key under 256 bits or a DSA key; a SHA-1 signature; a
//     certificate expired or not yet valid (clients that check refuse it,
//     so users learn to click through warnings); a certificate that does
//     not cover the host name the device was scanned by.
//   - low: a self-signed certificate (the usual state of a device: clients
//     cannot authenticate it but nothing else is wrong); a certificate that
//     does not cover the IP address the device was reached at (devices
//     addressed by IP almost never match).
//
// Claims need positive proof: a version or suite is reported only when a
// ServerHello selected it; refusals, resets and timeouts never count.
type WeakTLS struct {
	// Names maps a device address to the host names it was scanned by;
	// the certificate must cover the address or one of them.
	Names map[string][]string
	// MaxConnections caps the handshakes per service (default
	// tlsaudit.DefaultMaxConnections).
	MaxConnections int
	// Now returns the time certificates are judged at; nil is time.Now.
	Now func() time.Time
}

// ID implements Check.
func (c *WeakTLS) ID() string { return finding.CheckWeakTLS }

// Provisions implements Check.
func (c *WeakTLS) Provisions() []string { return []string{"5.5-1"} }

// Intrusive implements Check: a few dozen handshakes that are never
// completed, no logins.
func (c *WeakTLS) Intrusive() bool { return false }

// Run implements Check.
func (c *WeakTLS) Run(ctx context.Context, dev *Device) ([]finding.Finding, error) {
	var out []finding.Finding
	var errs []error
	for i, s := range dev.Services {
		if !(s.Endpoint.TLS || s.Identity != nil && s.Identity.TLS) || s.Endpoint.Transport == "udp" {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		names := []string{s.Endpoint.Host}
		for _, n := range append([]string{dev.Address}, c.Names[dev.Address]...) {
			if n != "" && !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
		p := tlsaudit.Prober{
			Dial:           s.Endpoint.Dial,
			Timeout:        s.Endpoint.IOTimeout(),
			ServerName:     firstHostName(names),
			MaxConnections: c.MaxConnections,
		}
		res, err := p.Audit(ctx, s.Endpoint.Addr())
		if err != nil {
			errs = append(errs, fmt.Errorf("%s on %s: %w", c.ID(), s.Endpoint.Addr(), err))
			if res == nil || len(res.Accepted()) == 0 {
				continue
			}
		}
		if leaf := res.Leaf(); leaf != nil {
			// The key, not the certificate: units sharing a private key
			// share the secret even when each has its own certificate.
			typ, bits := tlsaudit.KeyInfo(leaf)
			dev.Observe(i, ObservedTLSPublicKey, tlsaudit.PublicKeySHA256(leaf),
				fmt.Sprintf("%s %d-bit key SHA256:%s (certificate %s)", typ, bits, tlsaudit.PublicKeySHA256(leaf)[:16], leaf.Subject))
		}
		now := time.Now()
		if c.Now != nil {
			now = c.Now()
		}
		problems := JudgeTLS(res, now, names)
		if len(problems) == 0 {
			continue
		}
		out = append(out, c.finding(s, res, problems))
	}
	return out, errors.Join(errs...)
}

func firstHostName(names []string) string {
	for _, n := range names {
		if !tlsaudit.IsIP(n) {
			return n
		}
	}
	return ""
}

// TLSProblem is one weakness of a TLS service with its severity.
type TLSProblem struct {
	Severity finding.Severity
	// Kind is a stable short name: "sslv3", "tls1.0", "tls1.1",
	// "no-modern-tls", "weak-suite", or a tlsaudit.ProblemKind.
	Kind   string
	Detail string
}

// JudgeTLS applies the WeakTLS severity policy to an audit. names are what
// the device was addressed by. Problems are sorted worst first.
func JudgeTLS(res *tlsaudit.Result, now time.Time, names []string) []TLSProblem {
	var ps []TLSProblem
	add := func(sev finding.Severity, kind, detail string) {
		ps = append(ps, TLSProblem{Severity: sev, Kind: kind, Detail: detail})
	}
	accepted := res.Accepted()
	for _, v := range accepted {
		switch v {
		case tlsaudit.SSL30:
			add(finding.High, "sslv3", "SSLv3 accepted (POODLE; no secure cipher exists for it)")
		case tlsaudit.TLS10:
			add(finding.Medium, "tls1.0", "TLSv1.0 accepted (deprecated by RFC 8996)")
		case tlsaudit.TLS11:
			add(finding.Medium, "tls1.1", "TLSv1.1 accepted (deprecated by RFC 8996)")
		}
	}
	if len(accepted) > 0 && !slices.Contains(accepted, tlsaudit.TLS12) && !slices.Contains(accepted, tlsaudit.TLS13) {
		add(finding.Medium, "no-modern-tls", "neither TLSv1.2 nor TLSv1.3 is offered")
	}
	for _, class := range suiteClasses {
		var names []string
		for _, w := range res.WeakSuites {
			if w.Weakness&class.weakness != 0 {
				names = append(names, fmt.Sprintf("%s (%s)", w.Name, joinVersions(w.Versions)))
			}
		}
		if len(names) > 0 {
			add(class.severity, "weak-suite", fmt.Sprintf("%s suites accepted, %s: %s", class.weakness, class.why, strings.Join(names, ", ")))
		}
	}
	if leaf := res.Leaf(); leaf != nil {
		for _, cp := range tlsaudit.CheckCertificate(leaf, now, names) {
			add(certSeverity(leaf, cp, names), string(cp.Kind), "certificate "+cp.Detail)
		}
	}
	slices.SortStableFunc(ps, func(a, b TLSProblem) int { return int(b.Severity) - int(a.Severity) })
	return ps
}

// suiteClasses says how bad each kind of weak suite is, and why.
var suiteClasses = [...]struct {
	weakness tlsaudit.Weakness
	severity finding.Severity
	why      string
}{
	{tlsaudit.WeakNull, finding.High, "no encryption at all"},
	{tlsaudit.WeakExport, finding.High, "export-grade keys broken in minutes (FREAK, Logjam)"},
	{tlsaudit.WeakAnon, finding.High, "no server authentication, so anyone on the path can impersonate the device"},
	{tlsaudit.WeakRC4, finding.High, "RC4 keystream biases (prohibited by RFC 7465)"},
	{tlsaudit.WeakDES, finding.High, "56-bit single DES"},
	{tlsaudit.Weak3DES, finding.Medium, "64-bit block cipher (Sweet32)"},
	{tlsaudit.WeakIDEA, finding.Medium, "64-bit block cipher (Sweet32)"},
}

func certSeverity(c *x509.Certificate, p tlsaudit.CertProblem, names []string) finding.Severity {
	switch p.Kind {
	case tlsaudit.ProblemWeakKey:
		if typ, bits := tlsaudit.KeyInfo(c); typ == "RSA" && bits < 1024 {
			return finding.High
		}
		return finding.Medium
	case tlsaudit.ProblemWeakSignature:
		if _, broken := tlsaudit.WeakSignature(c.SignatureAlgorithm); broken {
			return finding.High
		}
		return finding.Medium
	case tlsaudit.ProblemExpired, tlsaudit.ProblemNotYetValid:
		return finding.Medium
	case tlsaudit.ProblemNameMismatch:
		if firstHostName(names) != "" {
			return finding.Medium
		}
		return finding.Low
	}
	return finding.Low
}

func joinVersions(vs []tlsaudit.Version) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = v.String()
	}
	return strings.Join(s, ", ")
}

func versionNames(vs []tlsaudit.Version) []string {
	out := []string{}
	for _, v := range vs {
		out = append(out, v.String())
	}
	return out
}

func (c *WeakTLS) finding(s Service, res *tlsaudit.Result, ps []TLSProblem) finding.Finding {
	f := base(c, ps[0].Severity, s, tlsTitle(s, ps))
	var refused, unknown []tlsaudit.Version
	chosen := map[string]string{}
	for _, v := range res.Versions {
		switch {
		case v.Accepted:
			chosen[v.Version.String()] = tlsaudit.SuiteByID(v.Suite).Name
		case v.Err != nil:
			unknown = append(unknown, v.Version)
		default:
			refused = append(refused, v.Version)
		}
	}
	f.Evidence["versions_accepted"] = versionNames(res.Accepted())
	f.Evidence["versions_refused"] = versionNames(refused)
	if len(unknown) > 0 {
		f.Evidence["versions_unknown"] = versionNames(unknown)
	}
	f.Evidence["suite_chosen"] = chosen
	weak := []map[string]any{}
	for _, w := range res.WeakSuites {
		weak = append(weak, map[string]any{
			"name":     w.Name,
			"id":       fmt.Sprintf("0x%04X", w.ID),
			"weakness": w.Weakness.Names(),
			"versions": versionNames(w.Versions),
		})
	}
	f.Evidence["weak_suites"] = weak
	if leaf := res.Leaf(); leaf != nil {
		f.Evidence["certificate"] = CertificateEvidence(leaf)
	}
	if res.CertErr != nil {
		f.Evidence["certificate_error"] = res.CertErr.Error()
	}
	probs := make([]map[string]string, len(ps))
	for i, p := range ps {
		probs[i] = map[string]string{"severity": p.Severity.String(), "kind": p.Kind, "detail": p.Detail}
	}
	f.Evidence["problems"] = probs
	f.Evidence["connections"] = res.Connections
	f.Evidence["complete"] = res.Complete
	if res.SuiteVersionsPartial {
		f.Evidence["suite_versions_partial"] = true
	}
	if len(res.Notes) > 0 {
		f.Evidence["notes"] = res.Notes
	}
	f.Remediation = tlsRemediation(ps)
	return f
}

// CertificateEvidence renders a certificate's facts for a finding's
// evidence (the same keys wherever a certificate is shown).
func CertificateEvidence(c *x509.Certificate) map[string]any {
	facts := tlsaudit.CertFacts(c)
	m := map[string]any{
		"subject":             facts.Subject,
		"issuer":              facts.Issuer,
		"not_before":          facts.NotBefore.Format(time.RFC3339),
		"not_after":           facts.NotAfter.Format(time.RFC3339),
		"key_type":            facts.KeyType,
		"key_bits":            facts.KeyBits,
		"signature_algorithm": facts.SignatureAlgorithm,
		"sha256":              facts.SHA256,
		"public_key_sha256":   facts.PublicKeySHA256,
		"self_signed":         facts.SelfSigned,
	}
	if len(facts.DNSNames) > 0 {
		m["dns_names"] = facts.DNSNames
	}
	if len(facts.IPAddresses) > 0 {
		m["ip_addresses"] = facts.IPAddresses
	}
	return m
}

// tlsTitle names the worst problems in a line.
func tlsTitle(s Service, ps []TLSProblem) string {
	var parts []string
	seen := map[string]bool{}
	for _, p := range ps {
		label := map[string]string{
			"sslv3":                               "SSLv3",
			"tls1.0":                              "TLS 1.0",
			"tls1.1":                              "TLS 1.1",
			"no-modern-tls":                       "no TLS 1.2+",
			"weak-suite":                          "weak cipher suites",
			string(tlsaudit.ProblemExpired):       "expired certificate",
			string(tlsaudit.ProblemNotYetValid):   "certificate not yet valid",
			string(tlsaudit.ProblemSelfSigned):    "self-signed certificate",
			string(tlsaudit.ProblemWeakKey):       "weak certificate key",
			string(tlsaudit.ProblemWeakSignature): "weak certificate signature",
			string(tlsaudit.ProblemNameMismatch):  "certificate name mismatch",
		}[p.Kind]
		if label == "" {
			label = p.Kind
		}
		if seen[label] {
			continue
		}
		seen[label] = true
		parts = append(parts, label)
	}
	if len(parts) > 4 {
		parts = append(parts[:4], fmt.Sprintf("%d more", len(parts)-4))
	}
	proto := "TLS"
	if s.Identity != nil && s.Identity.Protocol != "" && s.Identity.Protocol != "tls" && s.Identity.Protocol != "unknown" {
		proto = s.Identity.Protocol + " over TLS"
	}
	return fmt.Sprintf("%s on port %d: %s", proto, s.Endpoint.Port, strings.Join(parts, ", "))
}

func tlsRemediation(ps []TLSProblem) string {
	var steps []string
	has := func(kinds ...string) bool {
		return slices.ContainsFunc(ps, func(p TLSProblem) bool { return slices.Contains(kinds, p.Kind) })
	}
	if has("sslv3", "tls1.0", "tls1.1", "no-modern-tls") {
		steps = append(steps, "accept TLS 1.2 and 1.3 only")
	}
	if has("weak-suite") {
		steps = append(steps, "disable NULL, export, anonymous, RC4, DES, 3DES and IDEA suites (offer ECDHE with AES-GCM or ChaCha20-Poly1305)")
	}
	if has(string(tlsaudit.ProblemWeakKey), string(tlsaudit.ProblemWeakSignature)) {
		steps = append(steps, "use an RSA key of at least 2048 bits or an EC P-256 key, signed with SHA-256 or better")
	}
	if has(string(tlsaudit.ProblemExpired), string(tlsaudit.ProblemNotYetValid)) {
		steps = append(steps, "renew the certificate and keep its validity current")
	}
	if has(string(tlsaudit.ProblemSelfSigned), string(tlsaudit.ProblemNameMismatch)) {
		steps = append(steps, "give each device its own certificate naming how it is reached, ideally one clients can verify")
	}
	if len(steps) == 0 {
		return "Follow best-practice TLS configuration (EN 303 645 5.5-1)."
	}
	s := strings.Join(steps, "; ")
	return strings.ToUpper(s[:1]) + s[1:] + " (EN 303 645 5.5-1: communicate securely, with best-practice cryptography)."
}
