package rtsp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"strconv"
	"strings"
)

// Limits on what is read from a peer: a hostile server can send an endless
// header block or announce a huge body, and must not cost more than this.
const (
	// MaxLine caps one status or header line.
	MaxLine = 4096
	// MaxHeaderBytes caps the status line plus all header lines.
	MaxHeaderBytes = 32 << 10
	// MaxHeaders caps the number of header lines.
	MaxHeaders = 100
	// MaxBody caps the body a response may announce (SDP is a few KB).
	MaxBody = 64 << 10
)

// Parse errors. A reply that is not RTSP at all yields ErrNotRTSP.
var (
	ErrNotRTSP      = errors.New("not an RTSP response")
	ErrLineTooLong  = errors.New("rtsp line too long")
	ErrHeaderLimit  = errors.New("rtsp header block too large")
	ErrBodyTooLarge = errors.New("rtsp body too large")
	ErrBadLength    = errors.New("rtsp invalid Content-Length")
)

// Response is one parsed RTSP response.
type Response struct {
	Proto      string // "RTSP/1.0"
	StatusCode int    // 200
	Reason     string // "OK"
	Header     textproto.MIMEHeader
	Body       []byte
}

// StatusLine renders the first line as received (normalised spacing).
func (r *Response) StatusLine() string {
	s := r.Proto + " " + strconv.Itoa(r.StatusCode)
	if r.Reason != "" {
		s += " " + r.Reason
	}
	return s
}

// IsSDP reports whether the response carries a session description: the
// Content-Type is application/sdp and the body starts with "v=0". This is
// the proof that a DESCRIBE reached a real stream.
func (r *Response) IsSDP() bool {
	ct := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Type")))
	if ct != "application/sdp" && !strings.HasPrefix(ct, "application/sdp;") {
		return false
	}
	return bytes.HasPrefix(bytes.TrimLeft(r.Body, " \t\r\n"), []byte("v=0"))
}

// ReadResponse parses one RTSP response from r: the status line, header
// lines up to the blank line, and a body of Content-Length bytes. Every part
// is bounded by the Max* limits; the caller bounds time with a deadline.
func ReadResponse(r *bufio.Reader) (*Response, error) {
	line, err := readLine(r, MaxLine)
	if err != nil {
		if errors.Is(err, ErrLineTooLong) {
			return nil, fmt.Errorf("%w: %w", ErrNotRTSP, err)
		}
		return nil, fmt.Errorf("read status line: %w", err)
	}
	resp, err := parseStatusLine(line)
	if err != nil {
		return nil, err
	}
	resp.Header = textproto.MIMEHeader{}
	total := len(line)
	for n := 0; ; n++ {
		if n >= MaxHeaders {
			return nil, ErrHeaderLimit
		}
		line, err := readLine(r, MaxLine)
		if err != nil {
			return nil, fmt.Errorf("read header: %w", err)
		}
		total += len(line)
		if total > MaxHeaderBytes {
			return nil, ErrHeaderLimit
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			// Obsolete line folding: ignore the continuation, keeping the
			// parser simple; nothing we read depends on folded values.
			continue
		}
		name, value, ok := strings.Cut(string(line), ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("%w: malformed header line %q", ErrNotRTSP, truncate(string(line), 64))
		}
		resp.Header.Add(textproto.CanonicalMIMEHeaderKey(name), strings.TrimSpace(value))
	}
	length, err := contentLength(resp.Header)
	if err != nil {
		return nil, err
	}
	if length > 0 {
		resp.Body = make([]byte, length)
		if _, err := io.ReadFull(r, resp.Body); err != nil {
			return nil, fmt.Errorf("read body of %d bytes: %w", length, err)
		}
	}
	return resp, nil
}

func parseStatusLine(line []byte) (*Response, error) {
	s := string(line)
	protoPart, rest, ok := strings.Cut(s, " ")
	if !ok || !strings.HasPrefix(protoPart, "RTSP/") {
		return nil, fmt.Errorf("%w: status line %q", ErrNotRTSP, truncate(s, 64))
	}
	major, minor, ok := strings.Cut(protoPart[len("RTSP/"):], ".")
	if !ok || !allDigits(major) || !allDigits(minor) || len(major) > 2 || len(minor) > 2 {
		return nil, fmt.Errorf("%w: version in %q", ErrNotRTSP, truncate(s, 64))
	}
	rest = strings.TrimLeft(rest, " ")
	codeStr, reason, _ := strings.Cut(rest, " ")
	if len(codeStr) != 3 || !allDigits(codeStr) || codeStr[0] == '0' {
		return nil, fmt.Errorf("%w: status code in %q", ErrNotRTSP, truncate(s, 64))
	}
	code, _ := strconv.Atoi(codeStr)
	return &Response{Proto: protoPart, StatusCode: code, Reason: strings.TrimSpace(reason)}, nil
}

func contentLength(h textproto.MIMEHeader) (int, error) {
	values := h.Values("Content-Length")
	if len(values) == 0 {
		return 0, nil
	}
	first := strings.TrimSpace(values[0])
	for _, v := range values[1:] {
		if strings.TrimSpace(v) != first {
			return 0, fmt.Errorf("%w: conflicting values", ErrBadLength)
		}
	}
	if first == "" || !allDigits(first) {
		return 0, fmt.Errorf("%w: %q", ErrBadLength, truncate(first, 32))
	}
	n, err := strconv.Atoi(first)
	if err != nil || n > MaxBody {
		return 0, fmt.Errorf("%w: %s bytes announced", ErrBodyTooLarge, truncate(first, 32))
	}
	return n, nil
}

// readLine reads one line of at most limit bytes, without the CRLF. A
// line without its newline at EOF is an error: the reply was cut short.
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > limit+2 {
			return nil, ErrLineTooLong
		}
		line = append(line, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(line) > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
		if len(line) > limit {
			return nil, ErrLineTooLong
		}
		return line, nil
	}
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// writeRequest writes one request. Header values come from this package or
// from computed credentials, never raw from the peer; a CR or LF in any
// part would split the request, so it is refused.
func writeRequest(w io.Writer, method, url string, cseq int, headers [][2]string) error {
	var b strings.Builder
	b.WriteString(method + " " + url + " RTSP/1.0\r\n")
	b.WriteString("CSeq: " + strconv.Itoa(cseq) + "\r\n")
	for _, h := range headers {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	b.WriteString("\r\n")
	msg := b.String()
	if strings.Count(msg, "\n") != 3+len(headers) || strings.Count(msg, "\r") != 3+len(headers) {
		return fmt.Errorf("rtsp %s request: CR or LF inside a field", method)
	}
	_, err := io.WriteString(w, msg)
	return err
}
