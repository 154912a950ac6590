package rtsp

import (
	"bufio"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/icholy/digest"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/proto"
)

// testSDP is a minimal session description as cameras send it.
const testSDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=Test Camera\r\nt=0 0\r\n" +
	"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=1\r\n"

// fakeCamera is an in-process RTSP server speaking real RTSP/1.0 with Basic
// and Digest authentication (RFC 2617, computed here by hand so the client's
// digest library is checked against an independent implementation).
type fakeCamera struct {
	server  string
	streams map[string]bool // path (no leading slash) → needs credentials
	scheme  string          // "basic", "digest" or "both"
	realm   string
	user    string
	pass    string
	// authFirst asks for credentials before looking the path up, as many
	// cameras do (every path answers 401 without credentials).
	authFirst bool
	// optionsAuth asks for credentials on OPTIONS too.
	optionsAuth bool
	// closeAfter401 hangs up after every 401.
	closeAfter401 bool
	// lockAfter answers 403 "too many failed attempts" once this many
	// wrong credentials were seen (0: never).
	lockAfter int
	// acceptAnyAuth plays protected streams for any Authorization header
	// (a broken or hostile server).
	acceptAnyAuth bool

	mu       sync.Mutex
	nonces   map[string]bool
	failures int
	requests int
}

func (f *fakeCamera) start(t *testing.T) proto.Endpoint {
	t.Helper()
	if f.realm == "" {
		f.realm = "IP Camera"
	}
	f.nonces = map[string]bool{}
	return serve(t, f.handle)
}

// serve runs handler for every connection on a fresh loopback address.
func serve(t *testing.T, handler func(net.Conn)) proto.Endpoint {
	t.Helper()
	return daemontest.ServeTCP(t, "", 0, handler).Endpoint(2 * time.Second)
}

type request struct {
	method, url string
	header      textproto.MIMEHeader
}

func readRequest(r *textproto.Reader) (*request, error) {
	line, err := r.ReadLine()
	if err != nil {
		return nil, err
	}
	parts := strings.Fields(line)
	if len(parts) != 3 || parts[2] != "RTSP/1.0" {
		return nil, fmt.Errorf("bad request line %q", line)
	}
	h, err := r.ReadMIMEHeader()
	if err != nil {
		return nil, err
	}
	return &request{method: parts[0], url: parts[1], header: h}, nil
}

func (f *fakeCamera) handle(c net.Conn) {
	r := textproto.NewReader(bufio.NewReader(c))
	for {
		req, err := readRequest(r)
		if err != nil {
			return
		}
		f.mu.Lock()
		f.requests++
		f.mu.Unlock()
		status, headers, body, closeAfter := f.respond(req)
		var b strings.Builder
		fmt.Fprintf(&b, "RTSP/1.0 %s\r\nCSeq: %s\r\n", status, req.header.Get("CSeq"))
		if f.server != "" {
			fmt.Fprintf(&b, "Server: %s\r\n", f.server)
		}
		for _, h := range headers {
			fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
		}
		if body != "" {
			fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
		}
		b.WriteString("\r\n" + body)
		if _, err := c.Write([]byte(b.String())); err != nil || closeAfter {
			return
		}
	}
}

func (f *fakeCamera) respond(req *request) (status string, headers [][2]string, body string, closeAfter bool) {
	switch req.method {
	case "OPTIONS":
		if f.optionsAuth && !f.authorized(req) {
			return f.unauthorized()
		}
		return "200 OK", [][2]string{{"Public", "OPTIONS, DESCRIBE, SETUP, TEARDOWN, PLAY, PAUSE"}}, "", false
	case "DESCRIBE":
	default:
		return "405 Method Not Allowed", nil, "", false
	}
	path := req.url
	if i := strings.Index(path, "://"); i >= 0 {
		path = path[i+3:]
		if j := strings.IndexByte(path, '/'); j >= 0 {
			path = path[j+1:]
		} else {
			path = ""
		}
	}
	protected, exists := f.streams[path]
	if f.authFirst || (exists && protected) {
		if f.locked() {
			return "403 Forbidden", [][2]string{{"Content-Type", "text/plain"}}, "too many failed attempts", false
		}
		if !f.authorized(req) {
			return f.unauthorized()
		}
	}
	if !exists {
		return "404 Stream Not Found", nil, "", false
	}
	return "200 OK", [][2]string{{"Content-Type", "application/sdp"}, {"Content-Base", req.url + "/"}}, testSDP, false
}

func (f *fakeCamera) locked() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lockAfter > 0 && f.failures >= f.lockAfter
}

func (f *fakeCamera) unauthorized() (string, [][2]string, string, bool) {
	var headers [][2]string
	if f.scheme == "basic" || f.scheme == "both" {
		headers = append(headers, [2]string{"WWW-Authenticate", `Basic realm="` + f.realm + `"`})
	}
	if f.scheme == "digest" || f.scheme == "both" {
		nonce := testToken()
		f.mu.Lock()
		f.nonces[nonce] = true
		f.mu.Unlock()
		headers = append(headers, [2]string{"WWW-Authenticate",
			fmt.Sprintf(`Digest realm="%s", nonce="%s", qop="auth"`, f.realm, nonce)})
	}
	return "401 Unauthorized", headers, "", f.closeAfter401
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// authorized checks the Authorization header; every wrong one counts
// towards the lockout.
func (f *fakeCamera) authorized(req *request) bool {
	auth := req.header.Get("Authorization")
	if auth == "" {
		return false
	}
	ok := f.acceptAnyAuth || f.checkAuth(req, auth)
	if !ok {
		f.mu.Lock()
		f.failures++
		f.mu.Unlock()
	}
	return ok
}

func (f *fakeCamera) checkAuth(req *request, auth string) bool {
	if strings.HasPrefix(auth, "Basic ") && (f.scheme == "basic" || f.scheme == "both") {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(auth, "Basic "))
		return err == nil && string(raw) == f.user+":"+f.pass
	}
	if !digest.IsDigest(auth) || f.scheme == "basic" {
		return false
	}
	cr, err := digest.ParseCredentials(auth)
	if err != nil {
		return false
	}
	f.mu.Lock()
	known := f.nonces[cr.Nonce]
	f.mu.Unlock()
	if !known || cr.URI != req.url || cr.Username != f.user || cr.Realm != f.realm || cr.QOP != "auth" {
		return false
	}
	ha1 := md5hex(f.user + ":" + f.realm + ":" + f.pass)
	ha2 := md5hex(req.method + ":" + cr.URI)
	want := md5hex(fmt.Sprintf("%s:%s:%08x:%s:auth:%s", ha1, cr.Nonce, cr.Nc, cr.Cnonce, ha2))
	return cr.Response == want
}

// hostile servers -----------------------------------------------------------

// readAndThen reads one request and hands the connection to then.
func readAndThen(then func(c net.Conn, cseq string)) func(net.Conn) {
	return func(c net.Conn) {
		r := textproto.NewReader(bufio.NewReader(c))
		for {
			req, err := readRequest(r)
			if err != nil {
				return
			}
			then(c, req.header.Get("CSeq"))
		}
	}
}

func endlessHeaders(c net.Conn, cseq string) {
	_, _ = fmt.Fprintf(c, "RTSP/1.0 200 OK\r\nCSeq: %s\r\n", cseq)
	line := []byte("X-Padding: " + strings.Repeat("a", 100) + "\r\n")
	for {
		if _, err := c.Write(line); err != nil {
			return
		}
	}
}

func hugeContentLength(c net.Conn, cseq string) {
	_, _ = fmt.Fprintf(c, "RTSP/1.0 200 OK\r\nCSeq: %s\r\nContent-Type: application/sdp\r\nContent-Length: 99999999999\r\n\r\nv=0\r\n", cseq)
	junk := []byte(strings.Repeat("z", 4096))
	for {
		if _, err := c.Write(junk); err != nil {
			return
		}
	}
}

func garbage(c net.Conn, _ string) {
	_, _ = c.Write([]byte("\x00\xff\x13garbage\x7f\x80 not rtsp at all\r\n\r\n"))
}

func endlessLine(c net.Conn, _ string) {
	junk := []byte(strings.Repeat("R", 4096))
	for {
		if _, err := c.Write(junk); err != nil {
			return
		}
	}
}

func silent(c net.Conn) {
	buf := make([]byte, 1024)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

func slowDrip(c net.Conn, cseq string) {
	msg := "RTSP/1.0 200 OK\r\nCSeq: " + cseq + "\r\nX-Slow: " + strings.Repeat("s", 1000) + "\r\n\r\n"
	for i := 0; i < len(msg); i++ {
		if _, err := c.Write([]byte{msg[i]}); err != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// okWithoutSDP answers 200 to everything, with a body that is no SDP.
func okWithoutSDP(c net.Conn, cseq string) {
	_, _ = fmt.Fprintf(c, "RTSP/1.0 200 OK\r\nCSeq: %s\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK", cseq)
}

func httpServer(c net.Conn, _ string) {
	_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\nServer: lighttpd/1.4.69\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
}

func testToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
