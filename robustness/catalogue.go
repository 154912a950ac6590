package robustness

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/iotcop/iotcop/proto"
)

// Probe is one malformed input of the catalogue.
type Probe struct {
	// Name is the stable name reported in findings ("http-oversized-header").
	Name string
	// Protocol is the service protocol the probe is for ("http", "mqtt",
	// "coap", "telnet", "rtsp"), or "tcp" for every TCP service.
	Protocol string
	// Description says what is malformed.
	Description string

	// payload builds the bytes sent; nil for the connection burst.
	payload func(host string) []byte
	// linger waits the whole reply wait after sending even when the peer
	// answers (a truncated packet: the peer should time out, not crash).
	linger bool
}

// Probe names (stable: findings and the lab's fragile devices use them).
const (
	HTTPInvalidRequestLine   = "http-invalid-request-line"
	HTTPOversizedHeader      = "http-oversized-header"
	HTTPHeaderNoColon        = "http-header-no-colon"
	HTTPNegativeLength       = "http-negative-content-length"
	HTTPHugeLength           = "http-huge-content-length"
	HTTPBadChunkSize         = "http-bad-chunk-size"
	HTTPManyHeaders          = "http-many-headers"
	HTTPNULBytes             = "http-nul-bytes"
	HTTPLongURI              = "http-long-uri"
	MQTTBadProtocolName      = "mqtt-bad-protocol-name"
	MQTTLengthOverflow       = "mqtt-remaining-length-overflow"
	MQTTTruncatedConnect     = "mqtt-truncated-connect"
	MQTTPublishBeforeConnect = "mqtt-publish-before-connect"
	CoAPBadVersion           = "coap-bad-version"
	CoAPTokenTooLong         = "coap-tkl-over-8"
	CoAPTruncatedOption      = "coap-truncated-option"
	CoAPOptionDelta15        = "coap-option-delta-15"
	CoAPEmptyPayloadMarker   = "coap-empty-payload-marker"
	TelnetOptionFlood        = "telnet-option-flood"
	TelnetSBWithoutSE        = "telnet-sb-without-se"
	RTSPBadCSeq              = "rtsp-bad-cseq"
	RTSPHugeLength           = "rtsp-huge-content-length"
	TCPConnectionBurst       = "tcp-half-open-burst"
)

// Sizes of the large probes.
const (
	oversizedHeader = 64 << 10
	manyHeaders     = 1000
	longURI         = 16 << 10
	telnetSBData    = 4 << 10
)

// Catalogue returns every probe, in the order they are sent to a service:
// per protocol the gentler inputs first, the connection burst last.
func Catalogue() []Probe {
	return []Probe{
		{Name: HTTPInvalidRequestLine, Protocol: "http", Description: "request line with five fields and version HTTP/11",
			payload: func(h string) []byte { return fmt.Appendf(nil, "GET  /index.html HTTP/11 junk\r\nHost: %s\r\n\r\n", h) }},
		{Name: HTTPHeaderNoColon, Protocol: "http", Description: "header line without a colon",
			payload: func(h string) []byte {
				return fmt.Appendf(nil, "GET / HTTP/1.1\r\nHost: %s\r\nThisHeaderHasNoColon\r\n\r\n", h)
			}},
		{Name: HTTPNegativeLength, Protocol: "http", Description: "POST with Content-Length: -1",
			payload: func(h string) []byte {
				return fmt.Appendf(nil, "POST / HTTP/1.1\r\nHost: %s\r\nContent-Length: -1\r\n\r\nx", h)
			}},
		{Name: HTTPHugeLength, Protocol: "http", Description: "POST with Content-Length 2^64 (overflows 64-bit lengths), no body",
			payload: func(h string) []byte {
				return fmt.Appendf(nil, "POST / HTTP/1.1\r\nHost: %s\r\nContent-Length: 18446744073709551616\r\n\r\n", h)
			}},
		{Name: HTTPBadChunkSize, Protocol: "http", Description: "chunked POST whose chunk size is not hexadecimal",
			payload: func(h string) []byte {
				return fmt.Appendf(nil, "POST / HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n\r\nZZZZZZZZ\r\nabc\r\n0\r\n\r\n", h)
			}},
		{Name: HTTPNULBytes, Protocol: "http", Description: "NUL bytes in the path and in a header value",
			payload: func(h string) []byte {
				return fmt.Appendf(nil, "GET /\x00index.html HTTP/1.1\r\nHost: %s\r\nX-Nul: a\x00b\r\n\r\n", h)
			}},
		{Name: HTTPManyHeaders, Protocol: "http", Description: strconv.Itoa(manyHeaders) + " header lines",
			payload: func(h string) []byte {
				b := fmt.Appendf(nil, "GET / HTTP/1.1\r\nHost: %s\r\n", h)
				for i := range manyHeaders {
					b = fmt.Appendf(b, "X-H%d: a\r\n", i)
				}
				return append(b, "\r\n"...)
			}},
		{Name: HTTPLongURI, Protocol: "http", Description: "request URI of 16 KiB",
			payload: func(h string) []byte {
				return fmt.Appendf(nil, "GET /%s HTTP/1.1\r\nHost: %s\r\n\r\n", strings.Repeat("A", longURI), h)
			}},
		{Name: HTTPOversizedHeader, Protocol: "http", Description: "one header line of 64 KiB",
			payload: func(h string) []byte {
				return fmt.Appendf(nil, "GET / HTTP/1.1\r\nHost: %s\r\nX-Oversized: %s\r\n\r\n", h, strings.Repeat("A", oversizedHeader))
			}},

		{Name: MQTTBadProtocolName, Protocol: "mqtt", Description: `CONNECT with protocol name "MQXX"`,
			payload: func(string) []byte { return connectPacket("MQXX", 4) }},
		{Name: MQTTPublishBeforeConnect, Protocol: "mqtt", Description: "PUBLISH as the first packet, before any CONNECT",
			payload: func(string) []byte {
				body := appendString(nil, "iotcop/robustness")
				body = append(body, "payload"...)
				return frame(0x30, body)
			}},
		{Name: MQTTTruncatedConnect, Protocol: "mqtt", Description: "CONNECT announcing 60 bytes, 12 sent, then silence",
			linger: true,
			payload: func(string) []byte {
				full := connectPacket("MQTT", 4)
				return append([]byte{0x10, 60}, full[2:14]...)
			}},
		{Name: MQTTLengthOverflow, Protocol: "mqtt", Description: "CONNECT whose remaining length is FF FF FF FF 7F (five length bytes)",
			payload: func(string) []byte {
				return append([]byte{0x10, 0xff, 0xff, 0xff, 0xff, 0x7f}, make([]byte, 64)...)
			}},

		{Name: CoAPBadVersion, Protocol: "coap", Description: "GET /.well-known/core with version 3",
			payload: func(string) []byte { return append(coapHeader(0xc0, 0x01), coapWellKnownCore...) }},
		{Name: CoAPTokenTooLong, Protocol: "coap", Description: "token length 15 (more than 8 is reserved)",
			payload: func(string) []byte {
				return append(append(coapHeader(0x4f, 0x01), bytes.Repeat([]byte{0xaa}, 15)...), coapWellKnownCore...)
			}},
		{Name: CoAPTruncatedOption, Protocol: "coap", Description: "Uri-Path option announcing 253 bytes, 3 present",
			payload: func(string) []byte { return append(coapHeader(0x40, 0x01), 0xbd, 0xf0, 'a', 'b', 'c') }},
		{Name: CoAPOptionDelta15, Protocol: "coap", Description: "option with the reserved delta 15 (not the 0xFF payload marker)",
			payload: func(string) []byte { return append(coapHeader(0x40, 0x01), 0xf3, 'a', 'b', 'c') }},
		{Name: CoAPEmptyPayloadMarker, Protocol: "coap", Description: "payload marker 0xFF followed by no payload",
			payload: func(string) []byte { return append(append(coapHeader(0x40, 0x01), coapWellKnownCore...), 0xff) }},

		{Name: TelnetOptionFlood, Protocol: "telnet", Description: "2048 option commands (WILL/WONT/DO/DONT for every option, twice)",
			payload: func(string) []byte {
				var b []byte
				for range 2 {
					for opt := range 256 {
						for _, cmd := range []byte{251, 252, 253, 254} {
							b = append(b, 255, cmd, byte(opt))
						}
					}
				}
				return b
			}},
		{Name: TelnetSBWithoutSE, Protocol: "telnet", Description: "terminal-type subnegotiation of 4 KiB never ended by IAC SE",
			payload: func(string) []byte {
				return append([]byte{255, 250, 24, 0}, bytes.Repeat([]byte{'A'}, telnetSBData)...)
			}},

		{Name: RTSPBadCSeq, Protocol: "rtsp", Description: "OPTIONS with CSeq: -1x99999999999999999999",
			payload: func(h string) []byte {
				return fmt.Appendf(nil, "OPTIONS rtsp://%s/ RTSP/1.0\r\nCSeq: -1x99999999999999999999\r\nUser-Agent: iotcop\r\n\r\n", h)
			}},
		{Name: RTSPHugeLength, Protocol: "rtsp", Description: "ANNOUNCE with Content-Length 4294967296000 and a 5-byte body",
			payload: func(h string) []byte {
				return fmt.Appendf(nil, "ANNOUNCE rtsp://%s/ RTSP/1.0\r\nCSeq: 2\r\nContent-Type: application/sdp\r\nContent-Length: 4294967296000\r\n\r\nv=0\r\n", h)
			}},

		{Name: TCPConnectionBurst, Protocol: "tcp", Description: "idle TCP connections opened at once and held without sending (connection-slot exhaustion, not a SYN flood)"},
	}
}

// Payload returns the bytes the probe sends to host (nil for the
// connection burst).
func (p Probe) Payload(host string) []byte {
	if p.payload == nil {
		return nil
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return p.payload(host)
}

// appliesTo reports whether the probe is for service s.
func (p Probe) appliesTo(s Service) bool {
	if p.Protocol == "tcp" {
		return transport(s.Endpoint) == "tcp"
	}
	return p.Protocol == s.Protocol && (p.Protocol == "coap") == (transport(s.Endpoint) == "udp")
}

// send delivers the probe to s within the budget.
func (p Probe) send(ctx context.Context, s Service, b Budget) ProbeRun {
	run := ProbeRun{Probe: p.Name, Service: s}
	if p.payload == nil {
		return p.burst(ctx, s, b, run)
	}
	payload := p.Payload(s.Endpoint.Host)
	ep := s.Endpoint
	ep.Timeout = b.ProbeTimeout
	conn, err := ep.Connect(ctx)
	if err != nil {
		run.Err = err
		run.Reply = "(connect failed)"
		return run
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	// Write in chunks so a peer that stops reading costs at most one
	// timeout, and the count of bytes delivered stays exact.
	const chunk = 16 << 10
	for off := 0; off < len(payload); off += chunk {
		end := min(off+chunk, len(payload))
		_ = conn.SetWriteDeadline(time.Now().Add(b.ProbeTimeout))
		n, err := conn.Write(payload[off:end])
		run.BytesSent += n
		if err != nil {
			run.Reply = "(" + ending(err) + " after " + strconv.Itoa(run.BytesSent) + " bytes)"
			return run
		}
	}
	run.Reply = readReply(conn, b.ReplyWait, p.linger)
	return run
}

// readReply reads the peer's reaction: the printable start of its answer,
// or how the connection ended.
func readReply(conn net.Conn, wait time.Duration, linger bool) string {
	deadline := time.Now().Add(wait)
	_ = conn.SetReadDeadline(deadline)
	var got []byte
	buf := make([]byte, 512)
	for len(got) < 512 {
		n, err := conn.Read(buf[:512-len(got)])
		got = append(got, buf[:n]...)
		if err != nil {
			switch {
			case len(got) > 0:
			case proto.IsTimeout(err):
				return "(no reply)"
			default:
				return "(" + ending(err) + ")"
			}
			break
		}
		if !linger && len(got) > 0 {
			break
		}
	}
	line := got
	if i := bytes.IndexAny(line, "\r\n"); i > 0 {
		line = line[:i]
	}
	if len(line) > 80 {
		line = line[:80]
	}
	return proto.Printable(line)
}

// ending names how a connection ended.
func ending(err error) string {
	switch {
	case errors.Is(err, io.EOF):
		return "closed by the service"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset by the service"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case proto.IsTimeout(err):
		return "timed out"
	}
	return "connection error"
}

// burst opens up to BurstConns idle TCP connections one after the other,
// holds them BurstHold, then closes them. It bypasses the scanner's
// per-host connection cap (that cap is what the burst tests); the count is
// the budget.
func (p Probe) burst(ctx context.Context, s Service, b Budget, run ProbeRun) ProbeRun {
	if b.BurstConns < 0 {
		run.Reply = "(burst disabled)"
		return run
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	var d net.Dialer
	var lastErr error
	for range b.BurstConns {
		dctx, cancel := context.WithTimeout(ctx, b.ProbeTimeout)
		c, err := d.DialContext(dctx, "tcp", s.Endpoint.Addr())
		cancel()
		if err != nil {
			lastErr = err
			break // the device holds no more; that is its right
		}
		conns = append(conns, c)
	}
	run.Connections = len(conns)
	if len(conns) == 0 && lastErr != nil {
		run.Err = fmt.Errorf("connection burst to %s: %w", s.Endpoint.Addr(), lastErr)
	}
	sleep(ctx, b.BurstHold)
	run.Reply = strconv.Itoa(len(conns)) + " connections held"
	if lastErr != nil {
		run.Reply += " (the next one failed: " + ending(lastErr) + ")"
	}
	return run
}

// MQTT encoding helpers (3.1.1).

func appendString(b []byte, s string) []byte {
	return append(append(b, byte(len(s)>>8), byte(len(s))), s...)
}

func appendVarint(b []byte, n int) []byte {
	for {
		c := byte(n % 128)
		n /= 128
		if n > 0 {
			c |= 0x80
		}
		b = append(b, c)
		if n == 0 {
			return b
		}
	}
}

func frame(first byte, body []byte) []byte {
	return append(appendVarint([]byte{first}, len(body)), body...)
}

// connectPacket is a clean-session CONNECT without credentials.
func connectPacket(protocolName string, level byte) []byte {
	body := appendString(nil, protocolName)
	body = append(body, level, 0x02, 0, 10) // clean session, keep-alive 10s
	body = appendString(body, "iotcop-"+randomHex(4))
	return frame(0x10, body)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// CoAP helpers.

// coapWellKnownCore is the Uri-Path options .well-known and core.
var coapWellKnownCore = []byte{0xbb, '.', 'w', 'e', 'l', 'l', '-', 'k', 'n', 'o', 'w', 'n', 0x04, 'c', 'o', 'r', 'e'}

// coapHeader is a 4-byte header with a random message id.
func coapHeader(first, code byte) []byte {
	id := make([]byte, 2)
	_, _ = rand.Read(id)
	return []byte{first, code, id[0], id[1]}
}
