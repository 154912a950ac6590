package tlsaudit

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/cryptobyte"
)

// Limits on what a server may send in answer to one ClientHello.
const (
	// maxRecordLen is the largest TLSCiphertext fragment (RFC 8446 5.2).
	maxRecordLen = 16384 + 256
	// maxFlightBytes bounds everything read for one probe: a server hello,
	// a certificate chain and a key exchange fit easily.
	maxFlightBytes = 256 << 10
	// maxChainCerts bounds the certificates kept from one chain.
	maxChainCerts = 10
)

// Sentinel errors of a probe. A refusal (an alert or a closed connection)
// is an answer; the others mean the probe proved nothing.
var (
	// ErrNotTLS: the peer answered with bytes that are not TLS records.
	ErrNotTLS = errors.New("peer does not speak TLS")
	// ErrClosed: the peer closed the connection without a ServerHello or an
	// alert. Many TLS stacks refuse a hello that way.
	ErrClosed = errors.New("connection closed before a ServerHello")
	// ErrFlightTooLarge: the peer sent more than the probe reads.
	ErrFlightTooLarge = errors.New("server flight exceeds the read limit")
)

// AlertError is a TLS alert the server sent instead of a ServerHello.
type AlertError struct {
	Level       uint8
	Description uint8
}

var alertNames = map[uint8]string{
	0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 22: "record_overflow",
	40: "handshake_failure", 42: "bad_certificate", 47: "illegal_parameter", 50: "decode_error",
	51: "decrypt_error", 70: "protocol_version", 71: "insufficient_security", 80: "internal_error",
	86: "inappropriate_fallback", 90: "user_canceled", 109: "missing_extension",
	110: "unsupported_extension", 112: "unrecognized_name", 120: "no_application_protocol",
}

// Error describes the alert the server sent.
func (e *AlertError) Error() string {
	name := alertNames[e.Description]
	if name == "" {
		name = fmt.Sprintf("alert %d", e.Description)
	}
	return "server sent TLS alert " + name
}

// Refused reports whether err is the server declining the hello (an alert
// or a plain close), as opposed to a failure that proves nothing.
func Refused(err error) bool {
	var a *AlertError
	return errors.As(err, &a) || errors.Is(err, ErrClosed)
}

// ServerHello is what a server chose in answer to a probe.
type ServerHello struct {
	// Version is the negotiated version (from supported_versions when
	// present, else the legacy field).
	Version Version
	// Suite is the chosen cipher suite.
	Suite uint16
	// HelloRetry is set for a TLS 1.3 HelloRetryRequest: the server
	// speaks TLS 1.3 and wants another key share.
	HelloRetry bool
	// Certificates is the DER chain from the Certificate message (TLS 1.2
	// and older only; TLS 1.3 encrypts it). Leaf first.
	Certificates [][]byte
}

// helloRetryRandom is the ServerHello.random of a HelloRetryRequest.
var helloRetryRandom = []byte{
	0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
	0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
}

// readServerFlight reads the server's answer to a ClientHello: records up
// to the ServerHello and, for TLS 1.2 and older, the Certificate message
// after it. It never reads more than maxFlightBytes. A handshake alert
// before the ServerHello is an *AlertError; EOF before anything is
// ErrClosed.
func readServerFlight(r io.Reader) (*ServerHello, error) {
	lr := &io.LimitedReader{R: r, N: maxFlightBytes}
	var hs []byte // handshake bytes not yet parsed into messages
	var sh *ServerHello
	sawRecord := false
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(lr, hdr[:]); err != nil {
			return flightEnd(sh, sawRecord, lr, err, "record header")
		}
		typ, major, n := hdr[0], hdr[1], int(hdr[3])<<8|int(hdr[4])
		if typ < recordChangeCipherSpec || typ > recordApplicationData || major != 3 {
			if sh != nil {
				return sh, nil
			}
			return nil, fmt.Errorf("%w: first bytes % x", ErrNotTLS, hdr[:])
		}
		if n > maxRecordLen {
			if sh != nil {
				return sh, nil
			}
			return nil, fmt.Errorf("%w: record length %d exceeds the TLS maximum %d", ErrNotTLS, n, maxRecordLen)
		}
		sawRecord = true
		payload := make([]byte, n)
		if _, err := io.ReadFull(lr, payload); err != nil {
			return flightEnd(sh, true, lr, err, "record body")
		}
		switch typ {
		case recordAlert:
			if sh != nil {
				return sh, nil // e.g. an alert after the hello: we have what we came for
			}
			if len(payload) < 2 {
				return nil, fmt.Errorf("%w: short alert record", ErrNotTLS)
			}
			return nil, &AlertError{Level: payload[0], Description: payload[1]}
		case recordChangeCipherSpec:
			continue // TLS 1.3 middlebox compatibility
		case recordApplicationData:
			if sh != nil {
				return sh, nil
			}
			return nil, fmt.Errorf("%w: application data before a ServerHello", ErrNotTLS)
		}
		hs = append(hs, payload...)
		for len(hs) >= 4 {
			mlen := int(hs[1])<<16 | int(hs[2])<<8 | int(hs[3])
			if mlen > maxFlightBytes {
				if sh != nil {
					return sh, nil
				}
				return nil, fmt.Errorf("%w: handshake message of %d bytes", ErrFlightTooLarge, mlen)
			}
			if len(hs) < 4+mlen {
				break
			}
			mtype, body := hs[0], hs[4:4+mlen]
			hs = hs[4+mlen:]
			if sh == nil {
				if mtype != hsServerHello {
					return nil, fmt.Errorf("%w: handshake message %d before a ServerHello", ErrNotTLS, mtype)
				}
				var err error
				if sh, err = parseServerHello(body); err != nil {
					return nil, err
				}
				if sh.Version >= TLS13 || sh.HelloRetry {
					return sh, nil // everything after is encrypted
				}
				continue
			}
			switch mtype {
			case hsCertificate:
				// A malformed list leaves the hello standing without a chain.
				sh.Certificates, _ = parseCertificateList(body)
				return sh, nil
			case hsServerKeyExchange, hsCertificateReq, hsServerHelloDone:
				return sh, nil // anonymous suites send no certificate
			default:
				return sh, nil
			}
		}
	}
}

// flightEnd turns a read error into the probe's result: a ServerHello
// already read stands; a clean close before anything is a refusal.
func flightEnd(sh *ServerHello, sawRecord bool, lr *io.LimitedReader, err error, what string) (*ServerHello, error) {
	if sh != nil {
		return sh, nil
	}
	if lr.N <= 0 {
		return nil, ErrFlightTooLarge
	}
	if !sawRecord && errors.Is(err, io.EOF) {
		return nil, ErrClosed
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("%w: truncated %s", ErrClosed, what)
	}
	return nil, fmt.Errorf("read %s: %w", what, err)
}

// parseServerHello parses a ServerHello body.
func parseServerHello(body []byte) (*ServerHello, error) {
	s := cryptobyte.String(body)
	var legacy uint16
	var random, sid []byte
	var suite uint16
	var comp uint8
	if !s.ReadUint16(&legacy) || !s.ReadBytes(&random, 32) || !s.ReadUint8LengthPrefixed((*cryptobyte.String)(&sid)) ||
		len(sid) > 32 || !s.ReadUint16(&suite) || !s.ReadUint8(&comp) {
		return nil, fmt.Errorf("%w: malformed ServerHello", ErrNotTLS)
	}
	sh := &ServerHello{Version: Version(legacy), Suite: suite, HelloRetry: bytes.Equal(random, helloRetryRandom)}
	if !s.Empty() {
		var exts cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
			return nil, fmt.Errorf("%w: malformed ServerHello extensions", ErrNotTLS)
		}
		for !exts.Empty() {
			var typ uint16
			var data cryptobyte.String
			if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
				return nil, fmt.Errorf("%w: malformed ServerHello extension", ErrNotTLS)
			}
			if typ == extSupportedVersions {
				var v uint16
				if !data.ReadUint16(&v) || !data.Empty() {
					return nil, fmt.Errorf("%w: malformed supported_versions", ErrNotTLS)
				}
				sh.Version = Version(v)
			}
		}
	}
	if !sh.Version.known() {
		return nil, fmt.Errorf("%w: ServerHello with unknown version 0x%04x", ErrNotTLS, uint16(sh.Version))
	}
	return sh, nil
}

// parseCertificateList parses a TLS 1.2 Certificate message body into DER
// certificates (at most maxChainCerts).
func parseCertificateList(body []byte) ([][]byte, error) {
	s := cryptobyte.String(body)
	var list cryptobyte.String
	if !s.ReadUint24LengthPrefixed(&list) || !s.Empty() {
		return nil, fmt.Errorf("%w: malformed Certificate message", ErrNotTLS)
	}
	var out [][]byte
	for !list.Empty() {
		var der cryptobyte.String
		if !list.ReadUint24LengthPrefixed(&der) || len(der) == 0 {
			return nil, fmt.Errorf("%w: malformed certificate entry", ErrNotTLS)
		}
		if len(out) < maxChainCerts {
			out = append(out, bytes.Clone(der))
		}
	}
	return out, nil
}
