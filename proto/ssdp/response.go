package ssdp

import (
	"errors"
	"fmt"
	"strings"
)

// Bounds on one SSDP response.
const (
	maxHeaders    = 64
	maxHeaderLine = 1024
)

var errMalformed = errors.New("malformed SSDP response")

// Response is a parsed HTTP-over-UDP SSDP answer.
type Response struct {
	Status int // HTTP status code
	// Headers maps lower-case header names to their trimmed values; the
	// first occurrence of a header wins.
	Headers map[string]string
}

// ParseResponse parses "HTTP/1.1 200 OK\r\nST: ...\r\n...\r\n\r\n" (at
// most 64 header lines of 1 KiB each). Bare LF line ends are accepted, as
// many devices send them.
func ParseResponse(b []byte) (Response, error) {
	s := string(b)
	line, rest, _ := strings.Cut(s, "\n")
	line = strings.TrimRight(line, "\r")
	proto, statusText, ok := strings.Cut(line, " ")
	if !ok || !strings.HasPrefix(proto, "HTTP/1.") || len(proto) != len("HTTP/1.1") {
		return Response{}, fmt.Errorf("%w: status line %q", errMalformed, trim(line))
	}
	code, _, _ := strings.Cut(strings.TrimLeft(statusText, " "), " ")
	if len(code) != 3 || code[0] < '1' || code[0] > '5' || code[1] < '0' || code[1] > '9' || code[2] < '0' || code[2] > '9' {
		return Response{}, fmt.Errorf("%w: status code %q", errMalformed, trim(code))
	}
	r := Response{Status: int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0'), Headers: map[string]string{}}
	for n := 0; rest != ""; n++ {
		if n == maxHeaders {
			return Response{}, fmt.Errorf("%w: more than %d headers", errMalformed, maxHeaders)
		}
		line, rest, _ = strings.Cut(rest, "\n")
		line = strings.TrimRight(line, "\r")
		if line == "" {
			break // end of headers
		}
		if len(line) > maxHeaderLine {
			return Response{}, fmt.Errorf("%w: header line of %d bytes", errMalformed, len(line))
		}
		name, value, ok := strings.Cut(line, ":")
		name = strings.ToLower(strings.TrimSpace(name))
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return Response{}, fmt.Errorf("%w: header line %q", errMalformed, trim(line))
		}
		if _, dup := r.Headers[name]; !dup {
			r.Headers[name] = strings.TrimSpace(value)
		}
	}
	return r, nil
}

func trim(s string) string { return s[:min(len(s), 64)] }

// IsSearchAnswer reports whether r looks like an answer to M-SEARCH: a
// 200 with at least one of the SSDP headers.
func (r Response) IsSearchAnswer() bool {
	if r.Status != 200 {
		return false
	}
	for _, h := range []string{"st", "usn", "location"} {
		if r.Headers[h] != "" {
			return true
		}
	}
	return false
}

// productFromServer picks the product token from a SERVER header in the
// UPnP form "OS/version UPnP/1.1 product/version" ("Linux/5.x UPnP/1.1
// MiniUPnPd/2.3.3" gives MiniUPnPd 2.3.3). Comma-separated forms ("Linux,
// UPnP/1.0, Portable SDK for UPnP devices/1.6.19") work too.
func productFromServer(server string) (product, version string) {
	var tokens []string
	if strings.Contains(server, ",") {
		tokens = strings.Split(server, ",")
	} else {
		tokens = strings.Fields(server)
	}
	type tok struct{ name, ver string }
	var kept []tok
	for _, t := range tokens {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		name, ver, _ := strings.Cut(t, "/")
		name = strings.TrimSpace(name)
		if strings.EqualFold(name, "UPnP") || strings.EqualFold(name, "DLNADOC") {
			continue
		}
		kept = append(kept, tok{name, strings.TrimSpace(ver)})
	}
	switch len(kept) {
	case 0:
		return "", ""
	case 1:
		// Only an OS or only a product: a lone token with a version is
		// most often the product (e.g. "MiniUPnPd/1.9").
		if kept[0].ver == "" {
			return "", ""
		}
		return kept[0].name, kept[0].ver
	}
	// The first token is the operating system.
	return kept[1].name, kept[1].ver
}
