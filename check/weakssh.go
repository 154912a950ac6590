package check

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/proto/ssh"
)

// WeakSSH judges every SSH service by what the server offers, read from
// its SSH_MSG_KEXINIT (not just what a client happens to negotiate), and by
// the host keys it proves it holds: one finding per service naming every
// weak algorithm by category with the reason. The policy is sshPolicy.
//
// Per service it makes one connection for the offer and one handshake per
// host key format; none authenticates, so it is not intrusive.
type WeakSSH struct{}

// ID implements Check.
func (WeakSSH) ID() string { return finding.CheckWeakSSH }

// Provisions implements Check.
func (WeakSSH) Provisions() []string { return []string{"5.5-1"} }

// Intrusive implements Check.
func (WeakSSH) Intrusive() bool { return false }

// Categories of SSHWeakness, in the order findings list them. They are the
// keys of the finding's "weak" evidence.
const (
	SSHProtocol    = "protocol"
	SSHKex         = "kex"
	SSHHostKey     = "host_key"
	SSHHostKeySize = "host_key_size"
	SSHCipher      = "cipher"
	SSHMAC         = "mac"
)

// SSHWeakness is one weak thing an SSH server offers.
type SSHWeakness struct {
	// Category is one of the SSH* category constants (the evidence groups
	// weaknesses under it, so it is not repeated in JSON).
	Category string `json:"-"`
	// Algorithm is the algorithm name as offered ("diffie-hellman-group1-sha1"),
	// the key type for host key sizes ("ssh-rsa"), or the protocol issue.
	Algorithm string           `json:"algorithm"`
	Severity  finding.Severity `json:"severity"`
	Reason    string           `json:"reason"`
}

// sshRule is one entry of the policy: an algorithm name or family and why
// it is weak.
type sshRule struct {
	category string
	// pattern is an exact name, "prefix*" or "*suffix".
	pattern  string
	severity finding.Severity
	reason   string
	// when, if set, limits the rule to offers it returns true for.
	when func(k *ssh.KexInit) bool
}

func (r sshRule) matches(name string, k *ssh.KexInit) bool {
	var ok bool
	switch {
	case strings.HasSuffix(r.pattern, "*"):
		ok = strings.HasPrefix(name, strings.TrimSuffix(r.pattern, "*"))
	case strings.HasPrefix(r.pattern, "*"):
		ok = strings.HasSuffix(name, strings.TrimPrefix(r.pattern, "*"))
	default:
		ok = name == r.pattern
	}
	return ok && (r.when == nil || r.when(k))
}

// offersNoHostKey returns a condition true when none of names is among the
// offered host key algorithms.
func offersNoHostKey(names ...string) func(k *ssh.KexInit) bool {
	return func(k *ssh.KexInit) bool {
		return !slices.ContainsFunc(k.HostKeyAlgos, func(a string) bool { return slices.Contains(names, a) })
	}
}

// Reasons shared by several rules.
const (
	reasonSSH1 = "SSH protocol 1 protects integrity with CRC-32 (forged insertions: Futoransky and Kargieman, 1998), " +
		"has a weak session-key exchange and is obsolete since SSH-2 (RFC 4251, 2006); OpenSSH removed it in 7.6 (2017)."
	reasonCBC = "CBC mode: SSH's CBC construction allows plaintext recovery (Albrecht, Paterson and Watson 2009, " +
		"CVE-2008-5161) and, with an encrypt-then-MAC MAC, Terrapin prefix truncation (CVE-2023-48795); " +
		"OpenSSH stopped offering CBC by default in 6.7 (2014)."
	reason64bit = "64-bit block cipher: birthday-bound collisions leak plaintext after a few tens of gigabytes " +
		"under one key (Sweet32, CVE-2016-2183)."
	reasonSHA1Sig = "RSA signatures with SHA-1 (RFC 4253); SHA-1 has practical chosen-prefix collisions " +
		"(Leurent and Peyrin 2020), NIST SP 800-131A Rev. 2 disallows SHA-1 for signature generation, " +
		"RFC 8332 defines rsa-sha2-256/512, and OpenSSH 8.8 disabled ssh-rsa by default."
	reasonTerrapin = "offers chacha20-poly1305@openssh.com, or a CBC cipher with an encrypt-then-MAC MAC, without " +
		"strict key exchange (kex-strict-s-v00@openssh.com): the Terrapin attack (CVE-2023-48795) lets a " +
		"man in the middle silently drop messages at the start of the session, e.g. the extension negotiation."
)

// sshPolicy is the weak-ssh policy: what is weak, how badly, and why. The
// first rule matching an offered algorithm applies.
//
// Severity follows what an attacker needs:
//   - high: broken outright or within reach of well-resourced attackers
//     today, so offering it at all lets a downgrade or a passive
//     recording defeat the channel (SSH-1, 1024-bit Diffie-Hellman, RC4,
//     single DES, no cipher or MAC, DSA host keys, RSA keys under 1024 bits);
//   - medium: weakened with published attacks that need conditions (SHA-1
//     in the key exchange or as the only host key signature, CBC modes,
//     64-bit block ciphers, MD5-based MACs, RSA keys of 1024 to 2047 bits,
//     Terrapin);
//   - low: defence in depth, no practical attack known (SHA-1 signatures
//     kept only for legacy clients, truncated and 64-bit MAC tags).
//
// Deliberately not flagged, where ssh-audit differs: the NIST curves
// (ecdh-sha2-nistp*, ecdsa-sha2-nistp*), which NIST SP 800-186 approves and
// RFC 9142 recommends; hmac-sha1, whose security rests on SHA-1 as a PRF,
// not on collision resistance (NIST SP 800-131A Rev. 2 still allows
// HMAC-SHA-1); the encrypt-and-MAC (non -etm) MACs, RFC 4253's own
// construction, whose concrete attacks are the CBC ones flagged above; RSA
// keys of 2048 bits, acceptable until 2030 under NIST SP 800-57 Part 1
// Rev. 5 (3072 bits are recommended beyond).
func sshPolicy() []sshRule {
	return []sshRule{
		// Key exchange (RFC 9142 gives the IETF's current guidance).
		{SSHKex, "diffie-hellman-group1-sha1", finding.High,
			"1024-bit Oakley group 2, shared by countless hosts and within reach of nation-state precomputation " +
				"(Logjam, 2015), with a SHA-1 exchange hash; RFC 9142: SHOULD NOT; NIST SP 800-131A Rev. 2 " +
				"disallows finite-field Diffie-Hellman under 2048 bits.", nil},
		{SSHKex, "gss-group1-sha1-*", finding.High,
			"GSS-API key exchange over the 1024-bit Oakley group 2 with SHA-1; deprecated by RFC 8732.", nil},
		{SSHKex, "rsa1024-sha1", finding.High,
			"RSA key transport with a 1024-bit key and SHA-1; RFC 9142: MUST NOT.", nil},
		{SSHKex, "diffie-hellman-group-exchange-sha1", finding.Medium,
			"SHA-1 exchange hash, and the group is whatever the server picks (old firmware serves 1024-bit " +
				"moduli); RFC 9142: SHOULD NOT.", nil},
		{SSHKex, "diffie-hellman-group14-sha1", finding.Medium,
			"2048-bit group but a SHA-1 exchange hash, and SHA-1 has practical collisions (SHAttered 2017, " +
				"chosen-prefix 2020); RFC 9142 withdraws its former MUST in favour of diffie-hellman-group14-sha256.", nil},
		{SSHKex, "gss-group14-sha1-*", finding.Medium,
			"GSS-API key exchange with a SHA-1 exchange hash; RFC 8732 replaces the SHA-1 GSS-API exchanges with SHA-2 ones.", nil},
		{SSHKex, "gss-gex-sha1-*", finding.Medium,
			"GSS-API group exchange with a SHA-1 exchange hash; RFC 8732 replaces the SHA-1 GSS-API exchanges with SHA-2 ones.", nil},

		// Host key algorithms.
		{SSHHostKey, "*-dss", finding.High,
			"DSA host keys are at most 1024-bit in SSH (RFC 4253 uses FIPS 186-2 DSA) and sign with SHA-1; " +
				"OpenSSH disabled them by default in 7.0 (2015) and FIPS 186-5 no longer approves DSA signatures.", nil},
		{SSHHostKey, "ssh-dss-cert-v01@openssh.com", finding.High,
			"certificate on a DSA host key: 1024-bit, SHA-1 signatures, no longer approved by FIPS 186-5.", nil},
		{SSHHostKey, "ssh-rsa", finding.Medium,
			"the only RSA host key signature offered: every client verifying the RSA key gets SHA-1. " + reasonSHA1Sig,
			offersNoHostKey("rsa-sha2-256", "rsa-sha2-512")},
		{SSHHostKey, "ssh-rsa", finding.Low,
			"still signs with SHA-1 for clients that ask, beside rsa-sha2-256/512. " + reasonSHA1Sig, nil},
		{SSHHostKey, "ssh-rsa-cert-v01@openssh.com", finding.Medium,
			"the only RSA certificate signature offered is SHA-1. " + reasonSHA1Sig,
			offersNoHostKey("rsa-sha2-256-cert-v01@openssh.com", "rsa-sha2-512-cert-v01@openssh.com")},
		{SSHHostKey, "ssh-rsa-cert-v01@openssh.com", finding.Low,
			"still signs RSA certificates with SHA-1 for clients that ask. " + reasonSHA1Sig, nil},
		{SSHHostKey, "x509v3-sign-rsa", finding.Medium, "X.509 RSA host key signing with SHA-1 (RFC 6187). " + reasonSHA1Sig, nil},
		{SSHHostKey, "x509v3-ssh-rsa", finding.Medium, "X.509 RSA host key signing with SHA-1. " + reasonSHA1Sig, nil},

		// Ciphers.
		{SSHCipher, "none", finding.High, "no encryption at all: everything, passwords included, travels in clear.", nil},
		{SSHCipher, "arcfour*", finding.High,
			"RC4: biased keystream with practical plaintext recovery; RFC 8758 forbids it in SSH (MUST NOT).", nil},
		{SSHCipher, "des", finding.High, "single DES: a 56-bit key is found by exhaustive search in hours.", nil},
		{SSHCipher, "des-cbc*", finding.High, "single DES: a 56-bit key is found by exhaustive search in hours.", nil},
		{SSHCipher, "3des-cbc", finding.Medium,
			"Triple DES; NIST SP 800-131A Rev. 2 disallows it for encryption after 2023. " + reason64bit + " " + reasonCBC, nil},
		{SSHCipher, "3des-*", finding.Medium,
			"Triple DES; NIST SP 800-131A Rev. 2 disallows it for encryption after 2023. " + reason64bit, nil},
		{SSHCipher, "blowfish-cbc", finding.Medium, "Blowfish. " + reason64bit + " " + reasonCBC, nil},
		{SSHCipher, "cast128-cbc", finding.Medium, "CAST-128. " + reason64bit + " " + reasonCBC, nil},
		{SSHCipher, "idea-cbc", finding.Medium, "IDEA. " + reason64bit + " " + reasonCBC, nil},
		{SSHCipher, "blowfish-*", finding.Medium, "Blowfish. " + reason64bit, nil},
		{SSHCipher, "cast128-*", finding.Medium, "CAST-128. " + reason64bit, nil},
		{SSHCipher, "*-cbc", finding.Medium, reasonCBC, nil},
		{SSHCipher, "rijndael-cbc@lysator.liu.se", finding.Medium, reasonCBC, nil},

		// MACs.
		{SSHMAC, "none", finding.High, "no integrity protection: an attacker can alter traffic undetected.", nil},
		{SSHMAC, "hmac-md5*", finding.Medium,
			"MD5-based: MD5 is broken for collisions (RFC 6151) and is not an approved hash for any NIST MAC; " +
				"no practical HMAC-MD5 forgery is known, but there is no reason left to offer it.", nil},
		{SSHMAC, "hmac-sha1-96*", finding.Low,
			"HMAC-SHA1 truncated to 96 bits: no known attack, but a shorter tag on SHA-1 where RFC 6668's " +
				"hmac-sha2-256/512 are available.", nil},
		{SSHMAC, "hmac-sha2-256-96*", finding.Low, "HMAC-SHA2 truncated to 96 bits: a shorter tag than needed.", nil},
		{SSHMAC, "hmac-sha2-512-96*", finding.Low, "HMAC-SHA2 truncated to 96 bits: a shorter tag than needed.", nil},
		{SSHMAC, "umac-64*", finding.Low,
			"64-bit tag (UMAC-64, RFC 4418): each forgery attempt succeeds with probability about 2^-64, " +
				"against 2^-128 for the other MACs.", nil},
	}
}

// RSA host key sizes (bits) below which a key is weak.
const (
	rsaBroken = 1024 // below: high
	rsaWeak   = 2048 // below: medium
)

// JudgeSSH applies the weak-ssh policy to what a server offers and the
// host keys it proved it holds, returning every weakness in category order
// (protocol, kex, host_key, host_key_size, cipher, mac), algorithms in the
// server's order.
func JudgeSSH(offer *ssh.ServerOffer, keys []ssh.HostKey) []SSHWeakness {
	var out []SSHWeakness
	if offer.ID.SSH1() {
		what := "SSH-" + offer.ID.ProtoVersion
		reason := "speaks only SSH protocol 1. " + reasonSSH1
		if !offer.SSH1Only() {
			reason = "accepts SSH protocol 1 clients beside SSH-2 (identification 1.99). " + reasonSSH1
		}
		out = append(out, SSHWeakness{SSHProtocol, what, finding.High, reason})
	}
	k := offer.KexInit
	if k == nil {
		return out
	}
	if terrapin(k) {
		out = append(out, SSHWeakness{SSHProtocol, "Terrapin (no strict key exchange)", finding.Medium, reasonTerrapin})
	}
	policy := sshPolicy()
	judge := func(category string, names []string) {
		for _, name := range names {
			for _, r := range policy {
				if r.category == category && r.matches(name, k) {
					out = append(out, SSHWeakness{category, name, r.severity, r.reason})
					break
				}
			}
		}
	}
	judge(SSHKex, k.KexAlgos)
	judge(SSHHostKey, k.HostKeyAlgos)
	for _, key := range keys {
		if key.Type != "ssh-rsa" || key.Bits == 0 || key.Bits >= rsaWeak {
			continue
		}
		w := SSHWeakness{Category: SSHHostKeySize, Algorithm: key.Type, Severity: finding.Medium,
			Reason: fmt.Sprintf("%d-bit RSA host key: under 112-bit security (80 bits at 1024); NIST SP 800-131A Rev. 2 "+
				"disallows RSA keys under 2048 bits for signatures since 2014.", key.Bits)}
		if key.Bits < rsaBroken {
			w.Severity = finding.High
			w.Reason = fmt.Sprintf("%d-bit RSA host key: factorable with academic resources (RSA-768 was "+
				"factored in 2009); whoever factors it can impersonate the device.", key.Bits)
		}
		out = append(out, w)
	}
	judge(SSHCipher, k.Ciphers())
	judge(SSHMAC, k.MACs())
	return out
}

// terrapin reports whether the offer allows the Terrapin prefix truncation:
// a vulnerable mode offered and strict key exchange not.
func terrapin(k *ssh.KexInit) bool {
	if slices.Contains(k.KexAlgos, "kex-strict-s-v00@openssh.com") {
		return false
	}
	ciphers, macs := k.Ciphers(), k.MACs()
	if slices.Contains(ciphers, "chacha20-poly1305@openssh.com") {
		return true
	}
	cbc := slices.ContainsFunc(ciphers, func(c string) bool { return strings.HasSuffix(c, "-cbc") || strings.Contains(c, "-cbc@") })
	etm := slices.ContainsFunc(macs, func(m string) bool { return strings.Contains(m, "-etm@") })
	return cbc && etm
}

// Run implements Check.
func (c WeakSSH) Run(ctx context.Context, dev *Device) ([]finding.Finding, error) {
	var out []finding.Finding
	var errs []error
	for i, s := range dev.Services {
		if s.Identity == nil || s.Identity.Protocol != "ssh" {
			continue
		}
		f, err := c.service(ctx, dev, i, s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s on %s: %w", c.ID(), s.Endpoint.Addr(), err))
		}
		if f != nil {
			out = append(out, *f)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return out, errors.Join(errs...)
}

func (c WeakSSH) service(ctx context.Context, dev *Device, i int, s Service) (*finding.Finding, error) {
	offer, err := ssh.ReadServerOffer(ctx, s.Endpoint)
	if err != nil {
		return nil, err
	}
	var keys []ssh.HostKey
	var keyErr error
	if offer.KexInit != nil {
		keys, keyErr = ssh.FetchHostKeys(ctx, s.Endpoint, offer.KexInit.HostKeyAlgos)
	}
	// Host keys are compared across the fleet by the shared-secret check.
	for _, k := range keys {
		if k.Fingerprint != "" {
			dev.Observe(i, ObservedSSHHostKey, k.Fingerprint, k.Type+" "+k.Fingerprint)
		}
	}
	weak := JudgeSSH(offer, keys)
	if len(weak) == 0 {
		return nil, nil
	}
	sev := finding.Info
	grouped := map[string][]SSHWeakness{}
	for _, w := range weak {
		sev = max(sev, w.Severity)
		grouped[w.Category] = append(grouped[w.Category], w)
	}
	title := "SSH server offers weak cryptography"
	if offer.SSH1Only() {
		title = "SSH server speaks only the obsolete SSH-1 protocol"
	}
	f := base(c, sev, s, title)
	f.Evidence["identification"] = offer.ID.Line
	f.Evidence["weak"] = grouped
	if k := offer.KexInit; k != nil {
		f.Evidence["offered"] = map[string][]string{
			SSHKex: k.KexAlgos, SSHHostKey: k.HostKeyAlgos, SSHCipher: k.Ciphers(), SSHMAC: k.MACs(),
			"compression": k.Compressions(),
		}
	}
	if len(keys) > 0 {
		f.Evidence["host_keys"] = keys
	}
	if keyErr != nil {
		f.Evidence["host_key_errors"] = strings.Split(keyErr.Error(), "\n")
	}
	f.Remediation = "Stop offering the listed algorithms (OpenSSH: KexAlgorithms, HostKeyAlgorithms, Ciphers, MACs; " +
		"Dropbear: its build options), replace DSA and short RSA host keys with Ed25519 or RSA of 3072 bits, " +
		"and drop SSH-1, so that the device uses best-practice cryptography (EN 303 645 5.5-1)."
	return &f, nil
}
