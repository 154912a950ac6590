package proto

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"time"
	"unicode"
)

// MaxBanner caps how many bytes of a banner are kept.
const MaxBanner = 512

// ReadSome reads what the peer sends within wait, up to max bytes. It returns
// early once at least one read succeeded and the peer pauses for a short
// while, so slow-drip and endless senders are both bounded. A timeout with
// some bytes read is not an error.
func ReadSome(conn net.Conn, max int, wait time.Duration) ([]byte, error) {
	buf := make([]byte, 0, 256)
	chunk := make([]byte, 1024)
	deadline := time.Now().Add(wait)
	for len(buf) < max {
		d := deadline
		if len(buf) > 0 {
			// After the first bytes, wait only briefly for more: a
			// greeting that ends a line is usually complete.
			pause := 60 * time.Millisecond
			if buf[len(buf)-1] == '\n' {
				pause = 25 * time.Millisecond
			}
			if p := time.Now().Add(pause); p.Before(d) {
				d = p
			}
		}
		_ = conn.SetReadDeadline(d)
		n, err := conn.Read(chunk[:min(len(chunk), max-len(buf))])
		buf = append(buf, chunk[:n]...)
		if err != nil {
			if IsTimeout(err) || errors.Is(err, io.EOF) {
				if len(buf) > 0 {
					return buf, nil
				}
			}
			return buf, err
		}
	}
	return buf, nil
}

// ReadUntil reads until one of the markers appears in the accumulated data,
// max bytes were read, or wait elapses. It returns what it read and whether
// a marker was seen.
func ReadUntil(conn net.Conn, max int, wait time.Duration, markers ...[]byte) ([]byte, bool, error) {
	buf := make([]byte, 0, 256)
	chunk := make([]byte, 512)
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	for len(buf) < max {
		n, err := conn.Read(chunk[:min(len(chunk), max-len(buf))])
		buf = append(buf, chunk[:n]...)
		for _, m := range markers {
			if bytes.Contains(buf, m) {
				return buf, true, nil
			}
		}
		if err != nil {
			return buf, false, err
		}
	}
	return buf, false, nil
}

// IsTimeout reports whether err is a deadline expiry.
func IsTimeout(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// Printable renders bytes for a report: printable ASCII kept, everything
// else escaped as \xNN, capped at MaxBanner input bytes.
func Printable(b []byte) string {
	if len(b) > MaxBanner {
		b = b[:MaxBanner]
	}
	var sb strings.Builder
	for _, c := range b {
		switch {
		case c == '\n':
			sb.WriteString(`\n`)
		case c == '\r':
			sb.WriteString(`\r`)
		case c == '\t':
			sb.WriteString(`\t`)
		case c < 0x80 && unicode.IsPrint(rune(c)):
			sb.WriteByte(c)
		default:
			sb.WriteString(`\x`)
			const hex = "0123456789abcdef"
			sb.WriteByte(hex[c>>4])
			sb.WriteByte(hex[c&15])
		}
	}
	return sb.String()
}
