package lab

import (
	"bufio"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

const (
	maxRTSPLine    = 2048
	maxRTSPHeaders = 32
	maxRTSPBody    = 4096
	defaultRTSPSrv = "Rtsp Server/3.0"
)

// rtspRequest is one parsed RTSP request.
type rtspRequest struct {
	method, uri, proto string
	header             map[string]string // lower-case names
}

var errNotRTSP = errors.New("not an RTSP request")

// readRTSPRequest reads one request (line, headers, and any body, which is
// discarded) with every part bounded.
func readRTSPRequest(r *bufio.Reader) (*rtspRequest, error) {
	line, err := readBoundedLine(r, maxRTSPLine)
	for err == nil && line == "" {
		// Tolerate blank lines between requests.
		line, err = readBoundedLine(r, maxRTSPLine)
	}
	if err != nil {
		return nil, err
	}
	parts := strings.Fields(line)
	if len(parts) != 3 || !strings.HasPrefix(parts[2], "RTSP/") {
		return nil, fmt.Errorf("%w: %q", errNotRTSP, truncate(line, 64))
	}
	req := &rtspRequest{method: strings.ToUpper(parts[0]), uri: parts[1], proto: parts[2], header: map[string]string{}}
	for n := 0; ; n++ {
		h, err := readBoundedLine(r, maxRTSPLine)
		if err != nil {
			return nil, err
		}
		if h == "" {
			break
		}
		if n >= maxRTSPHeaders {
			return nil, errors.New("too many headers")
		}
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			return nil, fmt.Errorf("%w: bad header %q", errNotRTSP, truncate(h, 64))
		}
		req.header[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	if cl := req.header["content-length"]; cl != "" {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 || n > maxRTSPBody {
			return nil, errors.New("bad content-length")
		}
		if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil {
			return nil, err
		}
	}
	return req, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// streamPath returns the path of an rtsp:// URL (or a bare path) without
// leading or trailing slashes.
func streamPath(uri string) string {
	if u, err := url.Parse(uri); err == nil && u.Scheme != "" {
		uri = u.Path
		if u.RawQuery != "" {
			uri += "?" + u.RawQuery
		}
	}
	return strings.Trim(uri, "/")
}

// rtspHandler serves one RTSP connection: OPTIONS is open, DESCRIBE and
// SETUP need the account (unless NoAuth) and a configured stream path.
func rtspHandler(dev *device, rs RunningService) func(context.Context, net.Conn) {
	a, _ := parseAuth(rs.Auth, "rtsp")
	realm := rs.Realm
	if realm == "" {
		realm = dev.vendor + " IP Camera"
	}
	digest := newDigestAuth(realm, rs.Username, rs.Password)
	server := rs.Banner
	if server == "" {
		server = defaultRTSPSrv
	}
	authorized := func(req *rtspRequest) bool {
		if rs.NoAuth {
			return true
		}
		h := req.header["authorization"]
		if a.digest {
			return digest.verify(h, req.method)
		}
		scheme, cred, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Basic") {
			return false
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
		if err != nil {
			return false
		}
		u, p, ok := strings.Cut(string(raw), ":")
		return ok && subtle.ConstantTimeCompare([]byte(u), []byte(rs.Username)) == 1 &&
			subtle.ConstantTimeCompare([]byte(p), []byte(rs.Password)) == 1
	}
	return func(_ context.Context, conn net.Conn) {
		r := bufio.NewReaderSize(conn, 2048)
		session := randomHex(8)
		for {
			req, err := readRTSPRequest(r)
			if err != nil {
				if errors.Is(err, errNotRTSP) {
					_, _ = io.WriteString(conn, "RTSP/1.0 400 Bad Request\r\nServer: "+server+"\r\n\r\n")
				}
				return
			}
			status, headers, body := rtspRespond(dev, rs, req, authorized, digest, a.digest, session)
			var b strings.Builder
			fmt.Fprintf(&b, "RTSP/1.0 %s\r\nCSeq: %s\r\nServer: %s\r\n", status, req.header["cseq"], server)
			for _, h := range headers {
				b.WriteString(h + "\r\n")
			}
			if body != "" {
				fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
			}
			b.WriteString("\r\n" + body)
			if _, err := io.WriteString(conn, b.String()); err != nil {
				return
			}
		}
	}
}

// rtspRespond decides the answer to one request.
func rtspRespond(dev *device, rs RunningService, req *rtspRequest, authorized func(*rtspRequest) bool,
	digest *digestAuth, useDigest bool, session string) (status string, headers []string, body string) {
	needStream := func() (string, []string, bool) {
		p := streamPath(req.uri)
		if req.method == "SETUP" {
			// SETUP names a track below the stream.
			if i := strings.LastIndex(p, "/trackID="); i >= 0 {
				p = p[:i]
			}
		}
		if !slices.Contains(rs.Paths, p) {
			return "404 Not Found", nil, false
		}
		if !authorized(req) {
			challenge := `Basic realm="` + digest.realm + `"`
			if useDigest {
				challenge = digest.challenge(false)
			}
			return "401 Unauthorized", []string{"WWW-Authenticate: " + challenge}, false
		}
		return "", nil, true
	}
	switch req.method {
	case "OPTIONS":
		return "200 OK", []string{"Public: OPTIONS, DESCRIBE, SETUP, TEARDOWN, PLAY, PAUSE, GET_PARAMETER, SET_PARAMETER"}, ""
	case "DESCRIBE":
		if st, h, ok := needStream(); !ok {
			return st, h, ""
		}
		base := strings.TrimSuffix(req.uri, "/") + "/"
		return "200 OK", []string{"Content-Type: application/sdp", "Content-Base: " + base}, sdp(dev)
	case "SETUP":
		if st, h, ok := needStream(); !ok {
			return st, h, ""
		}
		transport := req.header["transport"]
		if transport == "" {
			transport = "RTP/AVP/TCP;unicast;interleaved=0-1"
		}
		return "200 OK", []string{"Transport: " + transport, "Session: " + session + ";timeout=60"}, ""
	case "PLAY", "PAUSE", "TEARDOWN", "GET_PARAMETER", "SET_PARAMETER":
		if !authorized(req) {
			return "401 Unauthorized", nil, ""
		}
		if req.method == "PLAY" {
			return "200 OK", []string{"Session: " + session, "Range: npt=0.000-"}, ""
		}
		return "200 OK", []string{"Session: " + session}, ""
	}
	return "501 Not Implemented", nil, ""
}

func sdp(dev *device) string {
	return "v=0\r\n" +
		"o=- 1 1 IN IP4 " + dev.addr + "\r\n" +
		"s=" + dev.vendor + " " + dev.model + " Live\r\n" +
		"c=IN IP4 0.0.0.0\r\n" +
		"t=0 0\r\n" +
		"a=control:*\r\n" +
		"a=range:npt=0-\r\n" +
		"m=video 0 RTP/AVP 96\r\n" +
		"a=rtpmap:96 H264/90000\r\n" +
		"a=fmtp:96 packetization-mode=1;profile-level-id=4D001F;sprop-parameter-sets=Z00AH5WoFAFuQA==,aO48gA==\r\n" +
		"a=control:trackID=1\r\n" +
		"m=audio 0 RTP/AVP 8\r\n" +
		"a=rtpmap:8 PCMA/8000\r\n" +
		"a=control:trackID=2\r\n"
}
