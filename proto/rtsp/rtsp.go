// Package rtsp identifies RTSP servers (IP cameras, NVRs), tries stream
// credentials with DESCRIBE over Basic and Digest authentication, and finds
// streams that play without any credential. It carries its own small RTSP
// client: a bounded response parser and a request writer.
package rtsp

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/iotcop/iotcop/proto"
)

// DefaultMaxPaths is how many stream paths are tried by default.
const DefaultMaxPaths = 20

// userAgent is sent with every request; it names the tool so device owners
// can tell the scan apart in their logs.
const userAgent = "iotcop"

// Protocol implements proto.Identifier, proto.Authenticator and
// proto.OpenAccessProber for RTSP over TCP.
type Protocol struct {
	// MaxPaths bounds how many stream paths are tried (DESCRIBE without
	// credentials) when looking for a stream; 0 means DefaultMaxPaths.
	MaxPaths int
	// Paths replaces the built-in path list (DefaultPaths) when non-nil.
	Paths []string
}

// New returns an RTSP protocol with the default path budget.
func New() *Protocol { return &Protocol{MaxPaths: DefaultMaxPaths} }

// Name returns "rtsp".
func (p *Protocol) Name() string { return "rtsp" }

// Transport returns "tcp".
func (p *Protocol) Transport() string { return "tcp" }

// PortPriority reports the usual RTSP ports (554, 8554, 10554, and 322 for
// RTSP over TLS).
func (p *Protocol) PortPriority(port int) bool {
	switch port {
	case 554, 8554, 10554, 5554, 322:
		return true
	}
	return false
}

// ServerFirst returns false: the client speaks first in RTSP.
func (p *Protocol) ServerFirst() bool { return false }

// paths returns the paths to try, bounded by MaxPaths.
func (p *Protocol) paths() []string {
	all := p.Paths
	if all == nil {
		all = DefaultPaths()
	}
	var out []string
	for _, s := range all {
		s = strings.TrimPrefix(s, "/")
		if validPath(s) {
			out = append(out, s)
		}
	}
	n := p.MaxPaths
	if n <= 0 {
		n = DefaultMaxPaths
	}
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// Identify sends OPTIONS and accepts any well-formed RTSP status line.
// Info keys set: "server" (Server header), "public" (Public header: the
// methods offered), "status" (OPTIONS status code), and when OPTIONS itself
// asks for credentials "auth_scheme" ("basic" or "digest") and "realm".
func (p *Protocol) Identify(ctx context.Context, conn net.Conn, banner []byte, ep proto.Endpoint) (*proto.Identity, error) {
	if len(banner) > 0 {
		return nil, fmt.Errorf("%w: rtsp servers do not speak first", proto.ErrNotThisProtocol)
	}
	c := &client{conn: conn, br: bufio.NewReaderSize(conn, 4096), ep: ep}
	resp, err := c.do(ctx, "OPTIONS", "*", nil)
	if err != nil {
		return nil, fmt.Errorf("%w: rtsp OPTIONS to %s: %v", proto.ErrNotThisProtocol, ep.Addr(), err)
	}
	id := &proto.Identity{Protocol: "rtsp", TLS: ep.TLS}
	server := resp.Header.Get("Server")
	banner = []byte(resp.StatusLine())
	if server != "" {
		banner = append(banner, "\r\nServer: "+server...)
		id.Set("server", server)
	}
	id.Banner = proto.Printable(banner)
	id.Product, id.Version = parseServer(server)
	if pub := resp.Header.Get("Public"); pub != "" {
		id.Set("public", pub)
	}
	id.Set("status", strconv.Itoa(resp.StatusCode))
	realm := ""
	if resp.StatusCode == 401 {
		if ch := pickChallenge(resp.Header.Values("Www-Authenticate")); ch != nil {
			id.Set("auth_scheme", ch.scheme)
			realm = ch.realm
			if realm != "" {
				id.Set("realm", realm)
			}
		}
	}
	id.Vendor = vendorHint(server + " " + realm)
	return id, nil
}

var (
	// "GStreamer/1.22.0", "Rtsp Server/3.0"
	reSlashVersion = regexp.MustCompile(`^([A-Za-z][\w .\-]{0,40}?)/v?(\d[\w.\-]*)`)
	// "LIVE555 Streaming Media v2013.04.08", "Ubnt Streaming Server v1.2"
	reVersionV = regexp.MustCompile(`^(.*?)\s+v(\d[\w.\-]*)$`)
	// "Wowza Streaming Engine 4.8.0 build20200915"
	reVersionTrailing = regexp.MustCompile(`^(.*?)\s+(\d+(?:\.\d+)+[\w\-]*)(?:\s.*)?$`)
)

// parseServer splits a Server header into product and version:
// "GStreamer/1.22.0" → ("GStreamer", "1.22.0"); "LIVE555 Streaming Media
// v2013.04.08" → ("LIVE555 Streaming Media", "2013.04.08").
func parseServer(server string) (product, version string) {
	server = strings.TrimSpace(server)
	if server == "" {
		return "", ""
	}
	if len(server) > 128 {
		server = server[:128]
	}
	if m := reSlashVersion.FindStringSubmatch(server); m != nil {
		return strings.TrimSpace(m[1]), m[2]
	}
	if m := reVersionV.FindStringSubmatch(server); m != nil {
		return m[1], m[2]
	}
	if m := reVersionTrailing.FindStringSubmatch(server); m != nil {
		return m[1], m[2]
	}
	return server, ""
}

// vendorKeywords maps text seen in a Server header or realm to a vendor.
var vendorKeywords = []struct{ keyword, vendor string }{
	{"hikvision", "hikvision"},
	{"dahua", "dahua"},
	{"hipcam", "hipcam"},
	{"reolink", "reolink"},
	{"amcrest", "amcrest"},
	{"foscam", "foscam"},
	{"axis", "axis"},
	{"vivotek", "vivotek"},
	{"uniview", "uniview"},
	{"ubnt", "ubiquiti"},
	{"ubiquiti", "ubiquiti"},
	{"h264dvr", "xiongmai"},
	{"xiongmai", "xiongmai"},
	{"hanwha", "hanwha"},
	{"tp-link", "tp-link"},
	{"tplink", "tp-link"},
	{"d-link", "d-link"},
	{"dlink", "d-link"},
	{"wyze", "wyze"},
	{"bosch", "bosch"},
	{"panasonic", "panasonic"},
	{"sony", "sony"},
}

func vendorHint(text string) string {
	text = strings.ToLower(text)
	for _, k := range vendorKeywords {
		if strings.Contains(text, k.keyword) {
			return k.vendor
		}
	}
	return ""
}

// client speaks RTSP over one connection.
type client struct {
	conn net.Conn
	br   *bufio.Reader
	ep   proto.Endpoint
	cseq int
}

// do sends one request and reads its response, within IOTimeout.
func (c *client) do(ctx context.Context, method, url string, headers [][2]string) (*Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(c.ep.IOTimeout())
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.conn.SetDeadline(deadline)
	// Closing the connection is the only way to interrupt a blocked read
	// when the context ends early.
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Now()) })
	defer stop()
	c.cseq++
	hdr := append([][2]string{{"User-Agent", userAgent}}, headers...)
	if err := writeRequest(c.conn, method, url, c.cseq, hdr); err != nil {
		return nil, err
	}
	resp, err := ReadResponse(c.br)
	if err != nil {
		return nil, err
	}
	if got := resp.Header.Get("Cseq"); got != "" && strings.TrimSpace(got) != strconv.Itoa(c.cseq) {
		return nil, fmt.Errorf("%w: CSeq %q answers request %d", ErrNotRTSP, truncate(got, 16), c.cseq)
	}
	return resp, nil
}

func (c *client) Close() error { return c.conn.Close() }

// dial opens a client connection to ep.
func dial(ctx context.Context, ep proto.Endpoint) (*client, error) {
	conn, err := ep.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &client{conn: conn, br: bufio.NewReaderSize(conn, 4096), ep: ep}, nil
}

// streamURL builds rtsp://host:port/path (rtsps:// over TLS).
func streamURL(ep proto.Endpoint, path string) string {
	scheme := "rtsp://"
	if ep.TLS {
		scheme = "rtsps://"
	}
	return scheme + net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port)) + "/" + path
}
