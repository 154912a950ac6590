package tlsaudit

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
)

func TestClientHelloRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		hello      clientHello
		wantRecord uint16
		wantLegacy uint16
		wantVers   []uint16
		wantSNI    string
		wantExts   bool
	}{
		{"sslv3 has no extensions", clientHello{version: SSL30, suites: []uint16{5, 10}}, 0x0300, 0x0300, nil, "", false},
		{"tls1.0", clientHello{version: TLS10, suites: weakIDs(TLS10)}, 0x0301, 0x0301, nil, "", true},
		{"tls1.2 with sni", clientHello{version: TLS12, suites: broadSuites(TLS12), serverName: "cam.local"}, 0x0301, 0x0303, nil, "cam.local", true},
		{"tls1.3 via supported_versions", clientHello{version: TLS13, suites: broadSuites(TLS13)}, 0x0301, 0x0303, []uint16{0x0304}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := parseClientHello(tc.hello.marshal())
			if err != nil {
				t.Fatal(err)
			}
			if h.recordVersion != tc.wantRecord || h.legacyVersion != tc.wantLegacy {
				t.Errorf("record/legacy version = %04x/%04x, want %04x/%04x", h.recordVersion, h.legacyVersion, tc.wantRecord, tc.wantLegacy)
			}
			if !slices.Equal(h.versions, tc.wantVers) {
				t.Errorf("supported_versions = %x, want %x", h.versions, tc.wantVers)
			}
			if h.serverName != tc.wantSNI {
				t.Errorf("SNI = %q, want %q", h.serverName, tc.wantSNI)
			}
			if (len(h.extTypes) > 0) != tc.wantExts {
				t.Errorf("extensions = %v, want present=%v", h.extTypes, tc.wantExts)
			}
			for _, s := range tc.hello.suites {
				if !slices.Contains(h.suites, s) {
					t.Errorf("suite %04x missing from the hello", s)
				}
			}
			if h.length >= 256 && h.length < 512 {
				t.Errorf("hello of %d bytes is in the 256..511 range some stacks hang on", h.length)
			}
		})
	}
}

func TestBroadSuitesPerVersion(t *testing.T) {
	t.Parallel()
	for _, v := range []Version{SSL30, TLS10, TLS11} {
		for _, id := range broadSuites(v) {
			if s := SuiteByID(id); tls12Only(s.Name) || id>>8 == 0x13 {
				t.Errorf("%s probe offers TLS 1.2+ suite %s", v, s.Name)
			}
		}
	}
	if !slices.Contains(broadSuites(TLS12), 0x0004) || !slices.Contains(broadSuites(TLS12), 0xC02F) {
		t.Error("TLS 1.2 probe must offer weak and strong suites")
	}
	for _, id := range broadSuites(TLS13) {
		if id>>8 != 0x13 {
			t.Errorf("TLS 1.3 probe offers non-1.3 suite %04x", id)
		}
	}
}

func alert(desc byte) []byte { return []byte{recordAlert, 3, 3, 0, 2, 2, desc} }

// endless yields valid-looking handshake records forever.
type endless struct{ rec []byte }

func (e *endless) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		n += copy(p[n:], e.rec)
	}
	return n, nil
}

func TestReadServerFlight(t *testing.T) {
	t.Parallel()
	cert := []byte{0x30, 0x03, 1, 2, 3}
	tls12 := serverFlight(TLS12, 0xC02F, cert, false)
	tests := []struct {
		name      string
		in        io.Reader
		wantVer   Version
		wantSuite uint16
		wantHRR   bool
		wantCerts int
		wantErr   error
		alert     uint8
	}{
		{name: "tls1.2 hello and certificate", in: bytes.NewReader(tls12), wantVer: TLS12, wantSuite: 0xC02F, wantCerts: 1},
		{name: "sslv3", in: bytes.NewReader(serverFlight(SSL30, 0x0005, cert, false)), wantVer: SSL30, wantSuite: 5, wantCerts: 1},
		{name: "tls1.3 from supported_versions", in: bytes.NewReader(serverFlight(TLS13, 0x1301, nil, false)), wantVer: TLS13, wantSuite: 0x1301},
		{name: "hello retry request", in: bytes.NewReader(serverFlight(TLS13, 0x1302, nil, true)), wantVer: TLS13, wantSuite: 0x1302, wantHRR: true},
		{name: "one byte per record", in: bytes.NewReader(splitRecords(tls12, 1)), wantVer: TLS12, wantSuite: 0xC02F, wantCerts: 1},
		{name: "anonymous: no certificate", in: bytes.NewReader(serverFlight(TLS12, 0x0034, nil, false)), wantVer: TLS12, wantSuite: 0x0034},
		{name: "hello then close", in: bytes.NewReader(serverFlight(TLS13, 0x1301, nil, false)[:50]), wantErr: ErrClosed},
		{name: "handshake failure alert", in: bytes.NewReader(alert(40)), wantErr: &AlertError{}, alert: 40},
		{name: "protocol version alert", in: bytes.NewReader(alert(70)), wantErr: &AlertError{}, alert: 70},
		{name: "silent close", in: bytes.NewReader(nil), wantErr: ErrClosed},
		{name: "http answer", in: bytes.NewReader([]byte("HTTP/1.1 400 Bad Request\r\n\r\n")), wantErr: ErrNotTLS},
		{name: "ssh banner", in: bytes.NewReader([]byte("SSH-2.0-dropbear\r\n")), wantErr: ErrNotTLS},
		{name: "huge record length", in: bytes.NewReader([]byte{recordHandshake, 3, 3, 0xFF, 0xFF, 2}), wantErr: ErrNotTLS},
		{name: "huge handshake length", in: bytes.NewReader(record(recordHandshake, 0x0303, []byte{2, 0xFF, 0xFF, 0xFF})), wantErr: ErrFlightTooLarge},
		{name: "endless handshake fragments", in: &endless{rec: record(recordHandshake, 0x0303, []byte{2, 0, 0x40, 0})[:9]}, wantErr: ErrFlightTooLarge},
		{name: "endless change cipher spec", in: &endless{rec: []byte{recordChangeCipherSpec, 3, 3, 0, 1, 1}}, wantErr: ErrFlightTooLarge},
		{name: "certificate before hello", in: bytes.NewReader(record(recordHandshake, 0x0303, []byte{11, 0, 0, 3, 0, 0, 0})), wantErr: ErrNotTLS},
		{name: "application data first", in: bytes.NewReader(record(recordApplicationData, 0x0303, []byte{1, 2})), wantErr: ErrNotTLS},
		{name: "short alert", in: bytes.NewReader([]byte{recordAlert, 3, 3, 0, 1, 2}), wantErr: ErrNotTLS},
		{name: "unknown version in hello", in: bytes.NewReader(patch(tls12, 9, 0x7F)), wantErr: ErrNotTLS},
		{name: "truncated hello body", in: bytes.NewReader(record(recordHandshake, 0x0303, []byte{2, 0, 0, 38, 3, 3})), wantErr: ErrClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sh, err := readServerFlight(tc.in)
			if tc.wantErr != nil {
				var ae *AlertError
				if _, isAlert := tc.wantErr.(*AlertError); isAlert {
					if !errors.As(err, &ae) || ae.Description != tc.alert {
						t.Fatalf("err = %v, want alert %d", err, tc.alert)
					}
					if !Refused(err) {
						t.Error("an alert must count as a refusal")
					}
				} else if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if sh != nil {
					t.Errorf("got a ServerHello %+v with an error", sh)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sh.Version != tc.wantVer || sh.Suite != tc.wantSuite || sh.HelloRetry != tc.wantHRR || len(sh.Certificates) != tc.wantCerts {
				t.Errorf("got %s suite %04x hrr=%v certs=%d, want %s %04x %v %d", sh.Version, sh.Suite, sh.HelloRetry, len(sh.Certificates), tc.wantVer, tc.wantSuite, tc.wantHRR, tc.wantCerts)
			}
			if tc.wantCerts > 0 && !bytes.Equal(sh.Certificates[0], cert) {
				t.Errorf("certificate = %x, want %x", sh.Certificates[0], cert)
			}
		})
	}
}

func patch(b []byte, i int, v byte) []byte {
	out := bytes.Clone(b)
	out[i] = v
	return out
}

// splitRecords re-frames the handshake payload of a flight into records of
// n bytes (servers may fragment arbitrarily).
func splitRecords(flight []byte, n int) []byte {
	var payload []byte
	for len(flight) >= 5 {
		l := int(flight[3])<<8 | int(flight[4])
		payload = append(payload, flight[5:5+l]...)
		flight = flight[5+l:]
	}
	var out []byte
	for len(payload) > 0 {
		k := min(n, len(payload))
		out = append(out, record(recordHandshake, 0x0303, payload[:k])...)
		payload = payload[k:]
	}
	return out
}

func FuzzReadServerFlight(f *testing.F) {
	cert := []byte{0x30, 0x03, 1, 2, 3}
	f.Add(serverFlight(TLS12, 0xC02F, cert, false))
	f.Add(serverFlight(SSL30, 0x0005, cert, false))
	f.Add(serverFlight(TLS13, 0x1301, nil, false))
	f.Add(serverFlight(TLS13, 0x1301, nil, true))
	f.Add(splitRecords(serverFlight(TLS12, 0x000A, cert, false), 3))
	f.Add(alert(40))
	f.Add([]byte("HTTP/1.1 200 OK\r\n"))
	f.Add([]byte{recordHandshake, 3, 3, 0xFF, 0xFF})
	f.Add(record(recordHandshake, 0x0303, []byte{2, 0xFF, 0xFF, 0xFF}))
	f.Fuzz(func(t *testing.T, data []byte) {
		sh, err := readServerFlight(bytes.NewReader(data))
		if err == nil && sh == nil {
			t.Fatal("nil ServerHello without an error")
		}
		if err != nil && sh != nil {
			t.Fatal("ServerHello with an error")
		}
		if sh != nil && !sh.Version.known() {
			t.Fatalf("accepted unknown version %04x", uint16(sh.Version))
		}
		if sh != nil && len(sh.Certificates) > maxChainCerts {
			t.Fatalf("kept %d certificates", len(sh.Certificates))
		}
	})
}
