package tlsaudit

import (
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/crypto/cryptobyte"

	"github.com/iotcop/iotcop/internal/daemontest"
)

// parsedHello is a ClientHello as a server sees it.
type parsedHello struct {
	recordVersion uint16
	legacyVersion uint16
	suites        []uint16
	versions      []uint16 // supported_versions, if sent
	serverName    string
	extTypes      []uint16
	length        int // handshake message length
}

// maxOffered is the highest version the client offered.
func (h parsedHello) maxOffered() Version {
	if len(h.versions) > 0 {
		return Version(slices.Max(h.versions))
	}
	return Version(h.legacyVersion)
}

// parseClientHello parses one record holding a ClientHello (test side).
func parseClientHello(rec []byte) (parsedHello, error) {
	var h parsedHello
	s := cryptobyte.String(rec)
	var typ uint8
	var body, msg cryptobyte.String
	var mtype uint8
	if !s.ReadUint8(&typ) || typ != recordHandshake || !s.ReadUint16(&h.recordVersion) ||
		!s.ReadUint16LengthPrefixed(&body) || !s.Empty() {
		return h, errors.New("bad record")
	}
	h.length = len(body)
	if !body.ReadUint8(&mtype) || mtype != hsClientHello || !body.ReadUint24LengthPrefixed(&msg) || !body.Empty() {
		return h, errors.New("bad handshake header")
	}
	var random, sid, comp []byte
	var suites cryptobyte.String
	if !msg.ReadUint16(&h.legacyVersion) || !msg.ReadBytes(&random, 32) ||
		!msg.ReadUint8LengthPrefixed((*cryptobyte.String)(&sid)) || !msg.ReadUint16LengthPrefixed(&suites) ||
		!msg.ReadUint8LengthPrefixed((*cryptobyte.String)(&comp)) {
		return h, errors.New("bad hello body")
	}
	for !suites.Empty() {
		var id uint16
		if !suites.ReadUint16(&id) {
			return h, errors.New("odd suite list")
		}
		h.suites = append(h.suites, id)
	}
	if msg.Empty() {
		return h, nil
	}
	var exts cryptobyte.String
	if !msg.ReadUint16LengthPrefixed(&exts) || !msg.Empty() {
		return h, errors.New("bad extensions")
	}
	for !exts.Empty() {
		var et uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&et) || !exts.ReadUint16LengthPrefixed(&data) {
			return h, errors.New("bad extension")
		}
		h.extTypes = append(h.extTypes, et)
		switch et {
		case extSupportedVersions:
			var list cryptobyte.String
			if !data.ReadUint8LengthPrefixed(&list) {
				return h, errors.New("bad supported_versions")
			}
			for !list.Empty() {
				var v uint16
				if !list.ReadUint16(&v) {
					return h, errors.New("odd supported_versions")
				}
				h.versions = append(h.versions, v)
			}
		case extServerName:
			var list, name cryptobyte.String
			var nt uint8
			if !data.ReadUint16LengthPrefixed(&list) || !list.ReadUint8(&nt) || !list.ReadUint16LengthPrefixed(&name) {
				return h, errors.New("bad server_name")
			}
			h.serverName = string(name)
		}
	}
	return h, nil
}

// fakeServer is a scripted TLS server: it reads one ClientHello and
// answers as a server with the configured versions and suites would,
// without ever finishing a handshake.
type fakeServer struct {
	versions      []Version // accepted versions
	suites        []uint16  // server preference order
	cert          []byte    // DER leaf sent in Certificate (TLS <= 1.2)
	closeOnRefuse bool      // refuse by closing instead of an alert

	mu     sync.Mutex
	hellos []parsedHello
}

func (f *fakeServer) start(t *testing.T) string {
	t.Helper()
	srv := daemontest.ServeTCP(t, "", 0, f.serve)
	return net.JoinHostPort(srv.Host, strconv.Itoa(srv.Port))
}

func (f *fakeServer) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.hellos)
}

func (f *fakeServer) serve(c net.Conn) {
	defer c.Close()
	var hdr [5]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(c, body); err != nil {
		return
	}
	h, err := parseClientHello(append(hdr[:], body...))
	if err != nil {
		return
	}
	f.mu.Lock()
	f.hellos = append(f.hellos, h)
	f.mu.Unlock()
	_, _ = c.Write(f.answer(h))
}

// answer picks a version and suite as real servers do: the highest common
// version, then the first suite of the server's list the client offered.
func (f *fakeServer) answer(h parsedHello) []byte {
	var chosen Version
	for _, v := range f.versions {
		ok := v <= h.maxOffered()
		if v == TLS13 {
			ok = slices.Contains(h.versions, uint16(TLS13))
		} else if len(h.versions) > 0 {
			ok = slices.Contains(h.versions, uint16(v))
		}
		if ok && v > chosen {
			chosen = v
		}
	}
	if chosen == 0 {
		return f.refuse(70)
	}
	suite := -1
	for _, s := range f.suites {
		if slices.Contains(h.suites, s) && (s>>8 == 0x13) == (chosen == TLS13) {
			suite = int(s)
			break
		}
	}
	if suite < 0 {
		return f.refuse(40)
	}
	return serverFlight(chosen, uint16(suite), f.cert, false)
}

func (f *fakeServer) refuse(desc byte) []byte {
	if f.closeOnRefuse {
		return nil
	}
	return []byte{recordAlert, 3, 1, 0, 2, 2, desc}
}

// serverFlight builds ServerHello (+ Certificate + ServerHelloDone for
// TLS <= 1.2) records.
func serverFlight(v Version, suite uint16, cert []byte, hrr bool) []byte {
	sh := cryptobyte.NewBuilder(nil)
	legacy := v
	if v == TLS13 {
		legacy = TLS12
	}
	sh.AddUint8(hsServerHello)
	sh.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint16(uint16(legacy))
		if hrr {
			b.AddBytes(helloRetryRandom)
		} else {
			b.AddBytes(bytes.Repeat([]byte{7}, 32))
		}
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) {})
		b.AddUint16(suite)
		b.AddUint8(0)
		if v == TLS13 {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				b.AddUint16(extSupportedVersions)
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint16(uint16(TLS13)) })
			})
		}
	})
	hs := sh.BytesOrPanic()
	if v < TLS13 && cert != nil {
		c := cryptobyte.NewBuilder(nil)
		c.AddUint8(hsCertificate)
		c.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
				b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(cert) })
			})
		})
		hs = append(hs, c.BytesOrPanic()...)
	}
	if v < TLS13 {
		hs = append(hs, hsServerHelloDone, 0, 0, 0)
	}
	recVersion := uint16(v)
	if v == TLS13 {
		recVersion = uint16(TLS12)
	}
	return record(recordHandshake, recVersion, hs)
}

// record wraps payload in records of at most 16384 bytes.
func record(typ uint8, version uint16, payload []byte) []byte {
	var out []byte
	for len(payload) > 0 || out == nil {
		n := min(len(payload), 16384)
		out = append(out, typ, byte(version>>8), byte(version), byte(n>>8), byte(n))
		out = append(out, payload[:n]...)
		payload = payload[n:]
		if len(payload) == 0 {
			break
		}
	}
	return out
}
