package tlsaudit

import (
	"crypto/rand"

	"golang.org/x/crypto/cryptobyte"
)

// TLS wire constants used by the hello builder and the flight parser.
const (
	recordChangeCipherSpec = 20
	recordAlert            = 21
	recordHandshake        = 22
	recordApplicationData  = 23

	hsClientHello       = 1
	hsServerHello       = 2
	hsCertificate       = 11
	hsServerKeyExchange = 12
	hsCertificateReq    = 13
	hsServerHelloDone   = 14

	extServerName          = 0
	extSupportedGroups     = 10
	extECPointFormats      = 11
	extSignatureAlgorithms = 13
	extPadding             = 21
	extSupportedVersions   = 43
	extPSKModes            = 45
	extKeyShare            = 51

	scsvRenegotiation = 0x00FF

	groupX25519 = 0x001D
)

// helloGroups are the named groups offered: the common curves, then
// RFC 7919 finite-field groups so DHE suites stay possible.
var helloGroups = [...]uint16{groupX25519, 0x0017, 0x0018, 0x0019, 0x001E, 0x0100, 0x0101}

// helloSignatures are the signature schemes offered, SHA-1 and PKCS#1
// included: the probe must reach servers whose only key signs with them.
var helloSignatures = [...]uint16{
	0x0403, 0x0503, 0x0603, // ecdsa_secp256r1_sha256 ... secp521r1_sha512
	0x0807, 0x0808, // ed25519, ed448
	0x0804, 0x0805, 0x0806, // rsa_pss_rsae_sha256/384/512
	0x0809, 0x080a, 0x080b, // rsa_pss_pss_*
	0x0401, 0x0501, 0x0601, // rsa_pkcs1_sha256/384/512
	0x0201, 0x0203, 0x0202, // rsa_pkcs1_sha1, ecdsa_sha1, dsa_sha1
	0x0402, 0x0301, 0x0303, // dsa_sha256, sha224 variants
}

// clientHello describes the hello a probe sends.
type clientHello struct {
	version    Version  // highest version offered
	suites     []uint16 // cipher suites, in preference order
	serverName string   // SNI host name; empty for none (never an IP)
}

// marshal builds the complete TLS record carrying the ClientHello. For
// TLS 1.3 the legacy version is TLS 1.2 and the real one goes in
// supported_versions with an x25519 key share (random bytes are a valid
// x25519 public key; the handshake is never completed).
func (h clientHello) marshal() []byte {
	var random [32]byte
	_, _ = rand.Read(random[:])
	legacy := h.version
	if legacy > TLS12 {
		legacy = TLS12
	}
	recordVersion := TLS10
	if h.version == SSL30 {
		recordVersion = SSL30
	}
	body := cryptobyte.NewBuilder(nil)
	body.AddUint16(uint16(legacy))
	body.AddBytes(random[:])
	body.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) {
		if h.version == TLS13 {
			// A legacy session id lets middlebox-compatible servers answer.
			var sid [32]byte
			_, _ = rand.Read(sid[:])
			b.AddBytes(sid[:])
		}
	})
	body.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, s := range h.suites {
			b.AddUint16(s)
		}
		if h.version != TLS13 {
			b.AddUint16(scsvRenegotiation)
		}
	})
	body.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint8(0) }) // null compression
	if h.version != SSL30 {
		exts := h.extensions()
		// RFC 7685: some TLS stacks hang on hellos of 256 to 511 bytes.
		if n := len(body.BytesOrPanic()) + 4 + 2 + len(exts); n >= 256 && n < 512 {
			pad := 512 - n - 4
			if pad < 0 {
				pad = 0
			}
			e := cryptobyte.NewBuilder(exts)
			e.AddUint16(extPadding)
			e.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(make([]byte, pad)) })
			exts = e.BytesOrPanic()
		}
		body.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(exts) })
	}
	msg := body.BytesOrPanic()

	rec := cryptobyte.NewBuilder(make([]byte, 0, len(msg)+9))
	rec.AddUint8(recordHandshake)
	rec.AddUint16(uint16(recordVersion))
	rec.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint8(hsClientHello)
		b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(msg) })
	})
	return rec.BytesOrPanic()
}

func (h clientHello) extensions() []byte {
	b := cryptobyte.NewBuilder(nil)
	if h.serverName != "" {
		b.AddUint16(extServerName)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				b.AddUint8(0) // host_name
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(h.serverName)) })
			})
		})
	}
	b.AddUint16(extSupportedGroups)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, g := range helloGroups {
				b.AddUint16(g)
			}
		})
	})
	b.AddUint16(extECPointFormats)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint8(0) }) // uncompressed
	})
	b.AddUint16(extSignatureAlgorithms)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, s := range helloSignatures {
				b.AddUint16(s)
			}
		})
	})
	if h.version == TLS13 {
		b.AddUint16(extSupportedVersions)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint16(uint16(TLS13)) })
		})
		b.AddUint16(extPSKModes)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint8(1) }) // psk_dhe_ke
		})
		var share [32]byte
		_, _ = rand.Read(share[:])
		b.AddUint16(extKeyShare)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				b.AddUint16(groupX25519)
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(share[:]) })
			})
		})
	}
	return b.BytesOrPanic()
}
