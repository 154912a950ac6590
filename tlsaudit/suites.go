package tlsaudit

import (
	"crypto/tls"
	"fmt"
	"strings"
)

// Version is a TLS protocol version as sent on the wire.
type Version uint16

// Protocol versions iotcop probes. SSLv2 is not probed: its hello has a
// different format and no server built in the last 15 years speaks it.
const (
	SSL30 Version = 0x0300
	TLS10 Version = 0x0301
	TLS11 Version = 0x0302
	TLS12 Version = 0x0303
	TLS13 Version = 0x0304
)

// Versions returns every version Audit probes, oldest first.
func Versions() []Version { return []Version{SSL30, TLS10, TLS11, TLS12, TLS13} }

// String names the version as sslscan and OpenSSL do ("SSLv3", "TLSv1.2").
func (v Version) String() string {
	switch v {
	case SSL30:
		return "SSLv3"
	case TLS10:
		return "TLSv1.0"
	case TLS11:
		return "TLSv1.1"
	case TLS12:
		return "TLSv1.2"
	case TLS13:
		return "TLSv1.3"
	}
	return fmt.Sprintf("0x%04x", uint16(v))
}

// known reports whether v is one of the versions this package understands.
func (v Version) known() bool { return v >= SSL30 && v <= TLS13 }

// Weakness is a set of reasons a cipher suite is weak.
type Weakness uint8

// Weaknesses. A suite can have several (TLS_DH_anon_WITH_RC4_128_MD5 is
// both anonymous and RC4).
const (
	// WeakNull: no encryption at all.
	WeakNull Weakness = 1 << iota
	// WeakExport: 40/56-bit export-grade keys (FREAK, Logjam).
	WeakExport
	// WeakAnon: no server authentication (anonymous DH/ECDH): anyone in
	// the path can impersonate the device.
	WeakAnon
	// WeakRC4: RC4 stream cipher, biased keystream (RFC 7465 forbids it).
	WeakRC4
	// WeakDES: single DES, 56-bit key.
	WeakDES
	// Weak3DES: 64-bit block cipher, Sweet32 (112-bit effective key).
	Weak3DES
	// WeakIDEA: 64-bit block cipher, removed from TLS 1.2 (RFC 5469).
	WeakIDEA
)

var weaknessNames = []struct {
	w    Weakness
	name string
}{
	{WeakNull, "NULL"}, {WeakExport, "EXPORT"}, {WeakAnon, "anonymous"}, {WeakRC4, "RC4"},
	{WeakDES, "DES"}, {Weak3DES, "3DES"}, {WeakIDEA, "IDEA"},
}

// Names lists the weaknesses in w ("NULL", "EXPORT", "anonymous", "RC4",
// "DES", "3DES", "IDEA").
func (w Weakness) Names() []string {
	var out []string
	for _, n := range weaknessNames {
		if w&n.w != 0 {
			out = append(out, n.name)
		}
	}
	return out
}

// String joins Names with "+".
func (w Weakness) String() string {
	if w == 0 {
		return "none"
	}
	return strings.Join(w.Names(), "+")
}

// Suite is one cipher suite.
type Suite struct {
	ID       uint16
	Name     string // IANA name
	Weakness Weakness
}

// weakSuites is the catalogue of weak TLS 1.0–1.2 suites, by IANA id. It is
// returned as a copy by WeakSuites so nothing can change it.
var weakSuites = [...]Suite{
	// NULL encryption
	{0x0001, "TLS_RSA_WITH_NULL_MD5", WeakNull},
	{0x0002, "TLS_RSA_WITH_NULL_SHA", WeakNull},
	{0x002C, "TLS_PSK_WITH_NULL_SHA", WeakNull},
	{0x002D, "TLS_DHE_PSK_WITH_NULL_SHA", WeakNull},
	{0x002E, "TLS_RSA_PSK_WITH_NULL_SHA", WeakNull},
	{0x003B, "TLS_RSA_WITH_NULL_SHA256", WeakNull},
	{0x00B0, "TLS_PSK_WITH_NULL_SHA256", WeakNull},
	{0x00B1, "TLS_PSK_WITH_NULL_SHA384", WeakNull},
	{0x00B4, "TLS_DHE_PSK_WITH_NULL_SHA256", WeakNull},
	{0x00B5, "TLS_DHE_PSK_WITH_NULL_SHA384", WeakNull},
	{0x00B8, "TLS_RSA_PSK_WITH_NULL_SHA256", WeakNull},
	{0x00B9, "TLS_RSA_PSK_WITH_NULL_SHA384", WeakNull},
	{0xC001, "TLS_ECDH_ECDSA_WITH_NULL_SHA", WeakNull},
	{0xC006, "TLS_ECDHE_ECDSA_WITH_NULL_SHA", WeakNull},
	{0xC00B, "TLS_ECDH_RSA_WITH_NULL_SHA", WeakNull},
	{0xC010, "TLS_ECDHE_RSA_WITH_NULL_SHA", WeakNull},
	{0xC015, "TLS_ECDH_anon_WITH_NULL_SHA", WeakNull | WeakAnon},
	{0xC039, "TLS_ECDHE_PSK_WITH_NULL_SHA", WeakNull},
	{0xC03A, "TLS_ECDHE_PSK_WITH_NULL_SHA256", WeakNull},
	{0xC03B, "TLS_ECDHE_PSK_WITH_NULL_SHA384", WeakNull},
	// Export grade
	{0x0003, "TLS_RSA_EXPORT_WITH_RC4_40_MD5", WeakExport | WeakRC4},
	{0x0006, "TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5", WeakExport},
	{0x0008, "TLS_RSA_EXPORT_WITH_DES40_CBC_SHA", WeakExport | WeakDES},
	{0x000B, "TLS_DH_DSS_EXPORT_WITH_DES40_CBC_SHA", WeakExport | WeakDES},
	{0x000E, "TLS_DH_RSA_EXPORT_WITH_DES40_CBC_SHA", WeakExport | WeakDES},
	{0x0011, "TLS_DHE_DSS_EXPORT_WITH_DES40_CBC_SHA", WeakExport | WeakDES},
	{0x0014, "TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA", WeakExport | WeakDES},
	{0x0017, "TLS_DH_anon_EXPORT_WITH_RC4_40_MD5", WeakExport | WeakAnon | WeakRC4},
	{0x0019, "TLS_DH_anon_EXPORT_WITH_DES40_CBC_SHA", WeakExport | WeakAnon | WeakDES},
	{0x0026, "TLS_KRB5_EXPORT_WITH_DES_CBC_40_SHA", WeakExport | WeakDES},
	{0x0027, "TLS_KRB5_EXPORT_WITH_RC2_CBC_40_SHA", WeakExport},
	{0x0028, "TLS_KRB5_EXPORT_WITH_RC4_40_SHA", WeakExport | WeakRC4},
	{0x0029, "TLS_KRB5_EXPORT_WITH_DES_CBC_40_MD5", WeakExport | WeakDES},
	{0x002A, "TLS_KRB5_EXPORT_WITH_RC2_CBC_40_MD5", WeakExport},
	{0x002B, "TLS_KRB5_EXPORT_WITH_RC4_40_MD5", WeakExport | WeakRC4},
	{0x0060, "TLS_RSA_EXPORT1024_WITH_RC4_56_MD5", WeakExport | WeakRC4},
	{0x0061, "TLS_RSA_EXPORT1024_WITH_RC2_CBC_56_MD5", WeakExport},
	{0x0062, "TLS_RSA_EXPORT1024_WITH_DES_CBC_SHA", WeakExport | WeakDES},
	{0x0063, "TLS_DHE_DSS_EXPORT1024_WITH_DES_CBC_SHA", WeakExport | WeakDES},
	{0x0064, "TLS_RSA_EXPORT1024_WITH_RC4_56_SHA", WeakExport | WeakRC4},
	{0x0065, "TLS_DHE_DSS_EXPORT1024_WITH_RC4_56_SHA", WeakExport | WeakRC4},
	// Single DES
	{0x0009, "TLS_RSA_WITH_DES_CBC_SHA", WeakDES},
	{0x000C, "TLS_DH_DSS_WITH_DES_CBC_SHA", WeakDES},
	{0x000F, "TLS_DH_RSA_WITH_DES_CBC_SHA", WeakDES},
	{0x0012, "TLS_DHE_DSS_WITH_DES_CBC_SHA", WeakDES},
	{0x0015, "TLS_DHE_RSA_WITH_DES_CBC_SHA", WeakDES},
	{0x001A, "TLS_DH_anon_WITH_DES_CBC_SHA", WeakDES | WeakAnon},
	{0x001E, "TLS_KRB5_WITH_DES_CBC_SHA", WeakDES},
	{0x0022, "TLS_KRB5_WITH_DES_CBC_MD5", WeakDES},
	// IDEA
	{0x0007, "TLS_RSA_WITH_IDEA_CBC_SHA", WeakIDEA},
	{0x0021, "TLS_KRB5_WITH_IDEA_CBC_SHA", WeakIDEA},
	{0x0025, "TLS_KRB5_WITH_IDEA_CBC_MD5", WeakIDEA},
	// RC4
	{0x0004, "TLS_RSA_WITH_RC4_128_MD5", WeakRC4},
	{0x0005, "TLS_RSA_WITH_RC4_128_SHA", WeakRC4},
	{0x0018, "TLS_DH_anon_WITH_RC4_128_MD5", WeakRC4 | WeakAnon},
	{0x0020, "TLS_KRB5_WITH_RC4_128_SHA", WeakRC4},
	{0x0024, "TLS_KRB5_WITH_RC4_128_MD5", WeakRC4},
	{0x008A, "TLS_PSK_WITH_RC4_128_SHA", WeakRC4},
	{0x008E, "TLS_DHE_PSK_WITH_RC4_128_SHA", WeakRC4},
	{0x0092, "TLS_RSA_PSK_WITH_RC4_128_SHA", WeakRC4},
	{0xC002, "TLS_ECDH_ECDSA_WITH_RC4_128_SHA", WeakRC4},
	{0xC007, "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", WeakRC4},
	{0xC00C, "TLS_ECDH_RSA_WITH_RC4_128_SHA", WeakRC4},
	{0xC011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA", WeakRC4},
	{0xC016, "TLS_ECDH_anon_WITH_RC4_128_SHA", WeakRC4 | WeakAnon},
	{0xC033, "TLS_ECDHE_PSK_WITH_RC4_128_SHA", WeakRC4},
	// 3DES
	{0x000A, "TLS_RSA_WITH_3DES_EDE_CBC_SHA", Weak3DES},
	{0x000D, "TLS_DH_DSS_WITH_3DES_EDE_CBC_SHA", Weak3DES},
	{0x0010, "TLS_DH_RSA_WITH_3DES_EDE_CBC_SHA", Weak3DES},
	{0x0013, "TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA", Weak3DES},
	{0x0016, "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA", Weak3DES},
	{0x001B, "TLS_DH_anon_WITH_3DES_EDE_CBC_SHA", Weak3DES | WeakAnon},
	{0x001F, "TLS_KRB5_WITH_3DES_EDE_CBC_SHA", Weak3DES},
	{0x0023, "TLS_KRB5_WITH_3DES_EDE_CBC_MD5", Weak3DES},
	{0x008B, "TLS_PSK_WITH_3DES_EDE_CBC_SHA", Weak3DES},
	{0x008F, "TLS_DHE_PSK_WITH_3DES_EDE_CBC_SHA", Weak3DES},
	{0x0093, "TLS_RSA_PSK_WITH_3DES_EDE_CBC_SHA", Weak3DES},
	{0xC003, "TLS_ECDH_ECDSA_WITH_3DES_EDE_CBC_SHA", Weak3DES},
	{0xC008, "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA", Weak3DES},
	{0xC00D, "TLS_ECDH_RSA_WITH_3DES_EDE_CBC_SHA", Weak3DES},
	{0xC012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", Weak3DES},
	{0xC017, "TLS_ECDH_anon_WITH_3DES_EDE_CBC_SHA", Weak3DES | WeakAnon},
	{0xC01A, "TLS_SRP_SHA_WITH_3DES_EDE_CBC_SHA", Weak3DES},
	{0xC01B, "TLS_SRP_SHA_RSA_WITH_3DES_EDE_CBC_SHA", Weak3DES},
	{0xC01C, "TLS_SRP_SHA_DSS_WITH_3DES_EDE_CBC_SHA", Weak3DES},
	{0xC034, "TLS_ECDHE_PSK_WITH_3DES_EDE_CBC_SHA", Weak3DES},
	// Anonymous key exchange with otherwise strong ciphers
	{0x0034, "TLS_DH_anon_WITH_AES_128_CBC_SHA", WeakAnon},
	{0x003A, "TLS_DH_anon_WITH_AES_256_CBC_SHA", WeakAnon},
	{0x0046, "TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA", WeakAnon},
	{0x006C, "TLS_DH_anon_WITH_AES_128_CBC_SHA256", WeakAnon},
	{0x006D, "TLS_DH_anon_WITH_AES_256_CBC_SHA256", WeakAnon},
	{0x0089, "TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA", WeakAnon},
	{0x009B, "TLS_DH_anon_WITH_SEED_CBC_SHA", WeakAnon},
	{0x00A6, "TLS_DH_anon_WITH_AES_128_GCM_SHA256", WeakAnon},
	{0x00A7, "TLS_DH_anon_WITH_AES_256_GCM_SHA384", WeakAnon},
	{0x00BF, "TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA256", WeakAnon},
	{0x00C5, "TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA256", WeakAnon},
	{0xC018, "TLS_ECDH_anon_WITH_AES_128_CBC_SHA", WeakAnon},
	{0xC019, "TLS_ECDH_anon_WITH_AES_256_CBC_SHA", WeakAnon},
	{0xC046, "TLS_DH_anon_WITH_ARIA_128_CBC_SHA256", WeakAnon},
	{0xC047, "TLS_DH_anon_WITH_ARIA_256_CBC_SHA384", WeakAnon},
	{0xC05A, "TLS_DH_anon_WITH_ARIA_128_GCM_SHA256", WeakAnon},
	{0xC05B, "TLS_DH_anon_WITH_ARIA_256_GCM_SHA384", WeakAnon},
	{0xC084, "TLS_DH_anon_WITH_CAMELLIA_128_GCM_SHA256", WeakAnon},
	{0xC085, "TLS_DH_anon_WITH_CAMELLIA_256_GCM_SHA384", WeakAnon},
}

// otherSuites names strong suites Go does not implement but servers often
// choose (DHE, CCM, CAMELLIA, ARIA), so a version probe that offers them
// can be answered by servers configured with those only.
var otherSuites = [...]Suite{
	{0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA", 0},
	{0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA", 0},
	{0x0032, "TLS_DHE_DSS_WITH_AES_128_CBC_SHA", 0},
	{0x0038, "TLS_DHE_DSS_WITH_AES_256_CBC_SHA", 0},
	{0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256", 0},
	{0x006B, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256", 0},
	{0x009E, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", 0},
	{0x009F, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", 0},
	{0xCCAA, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256", 0},
	{0x0041, "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA", 0},
	{0x0084, "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA", 0},
	{0x0045, "TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA", 0},
	{0x0088, "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA", 0},
	{0x0096, "TLS_RSA_WITH_SEED_CBC_SHA", 0},
	{0xC09C, "TLS_RSA_WITH_AES_128_CCM", 0},
	{0xC09D, "TLS_RSA_WITH_AES_256_CCM", 0},
	{0xC0AC, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM", 0},
	{0xC0AD, "TLS_ECDHE_ECDSA_WITH_AES_256_CCM", 0},
	{0xC03C, "TLS_RSA_WITH_ARIA_128_CBC_SHA256", 0},
	{0xC050, "TLS_RSA_WITH_ARIA_128_GCM_SHA256", 0},
	{0xC061, "TLS_ECDHE_RSA_WITH_ARIA_256_GCM_SHA384", 0},
	{0x003D, "TLS_RSA_WITH_AES_256_CBC_SHA256", 0},
	{0xC024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", 0},
	{0xC028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", 0},
}

// tls13Suites are the TLS 1.3 suites (none weak).
var tls13Suites = [...]uint16{0x1301, 0x1302, 0x1303, 0x1304, 0x1305}

// WeakSuites returns the catalogue of weak suites iotcop enumerates.
func WeakSuites() []Suite {
	out := make([]Suite, len(weakSuites))
	copy(out, weakSuites[:])
	return out
}

// SuiteByID returns what the catalogue knows of a suite: its IANA name and
// weaknesses. Suites unknown to the catalogue get Go's name or "0xNNNN".
func SuiteByID(id uint16) Suite {
	for _, s := range weakSuites {
		if s.ID == id {
			return s
		}
	}
	for _, s := range otherSuites {
		if s.ID == id {
			return s
		}
	}
	return Suite{ID: id, Name: tls.CipherSuiteName(id)}
}

// weakIDs returns the ids of the weak suites usable at version v.
func weakIDs(v Version) []uint16 {
	out := make([]uint16, 0, len(weakSuites))
	for _, s := range weakSuites {
		if v < TLS12 && tls12Only(s.Name) {
			continue
		}
		out = append(out, s.ID)
	}
	return out
}

// tls12Only reports whether a suite needs TLS 1.2 (SHA-2 MAC or AEAD).
func tls12Only(name string) bool {
	return strings.HasSuffix(name, "_SHA256") || strings.HasSuffix(name, "_SHA384") ||
		strings.Contains(name, "_GCM_") || strings.Contains(name, "_CCM") || strings.Contains(name, "CHACHA20")
}

// broadSuites is what a version probe offers: every suite we can name,
// strong first, so the server answers whenever it speaks version v at all.
func broadSuites(v Version) []uint16 {
	if v == TLS13 {
		return tls13Suites[:]
	}
	seen := map[uint16]bool{}
	var out []uint16
	add := func(id uint16, name string) {
		if seen[id] || id>>8 == 0x13 || v < TLS12 && tls12Only(name) {
			return
		}
		seen[id] = true
		out = append(out, id)
	}
	// Modern AEAD suites first: servers honouring the client's order then
	// show their best choice.
	for _, id := range []uint16{0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8} {
		add(id, tls.CipherSuiteName(id))
	}
	for _, s := range tls.CipherSuites() {
		add(s.ID, s.Name)
	}
	for _, s := range otherSuites {
		add(s.ID, s.Name)
	}
	for _, s := range tls.InsecureCipherSuites() {
		add(s.ID, s.Name)
	}
	for _, s := range weakSuites {
		add(s.ID, s.Name)
	}
	return out
}
