// Package ftp identifies FTP servers by their greeting, tries credentials
// (claiming success only on "230" followed by a directory listing) and
// checks for anonymous access. Logins use github.com/jlaffaye/ftp over a
// connection this package dials and bounds; the greeting is parsed here.
package ftp

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/iotcop/iotcop/proto"
)

// Protocol implements proto.Identifier, proto.Authenticator and
// proto.OpenAccessProber for FTP (and implicit FTPS when the endpoint says
// TLS).
type Protocol struct {
	// ProbeWrite makes ProbeOpenAccess also test whether the anonymous
	// account may write, by creating a uniquely named empty directory and
	// removing it again at once (MKD, RMD). Off by default: it changes the
	// device, however briefly.
	ProbeWrite bool
}

// New returns an FTP protocol with write probing off.
func New() *Protocol { return &Protocol{} }

// Name returns "ftp".
func (p *Protocol) Name() string { return "ftp" }

// Transport returns "tcp".
func (p *Protocol) Transport() string { return "tcp" }

// PortPriority reports the usual FTP ports (21, 2121, and 990 for implicit
// FTPS).
func (p *Protocol) PortPriority(port int) bool {
	return port == 21 || port == 2121 || port == 990
}

// ServerFirst returns true: FTP servers greet first.
func (p *Protocol) ServerFirst() bool { return true }

// Reply is one FTP reply: its code and text lines (code prefixes removed).
type Reply struct {
	Code  int
	Lines []string
	// Complete is false when a multi-line reply was cut short.
	Complete bool
}

// Text joins the reply's lines with spaces.
func (r Reply) Text() string { return strings.Join(r.Lines, " ") }

// ParseReply reads the first reply in b: "NNN text" or a multi-line
// "NNN-text ... NNN text". ok is false when b does not start with an FTP
// reply line.
func ParseReply(b []byte) (r Reply, ok bool) {
	lines := strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
	if len(lines) == 0 {
		return Reply{}, false
	}
	code, sep, text, ok := splitReplyLine(lines[0])
	if !ok {
		return Reply{}, false
	}
	r.Code = code
	r.Lines = []string{text}
	// A final line needs its newline; a bare "220 " at the end of the
	// buffer may be cut.
	if sep == ' ' {
		r.Complete = len(lines) > 1
		return r, true
	}
	prefix := lines[0][:3] + " "
	for i, line := range lines[1:] {
		if len(r.Lines) >= 64 {
			break
		}
		if strings.HasPrefix(line, prefix) || line == strings.TrimSpace(prefix) {
			r.Lines = append(r.Lines, strings.TrimSpace(strings.TrimPrefix(line, strings.TrimSpace(prefix))))
			r.Complete = i+2 < len(lines)
			return r, true
		}
		line = strings.TrimSpace(line)
		if c, _, text, ok := splitReplyLine(line); ok && c == code {
			line = text
		}
		if line != "" {
			r.Lines = append(r.Lines, line)
		}
	}
	return r, true
}

func splitReplyLine(line string) (code int, sep byte, text string, ok bool) {
	if len(line) < 3 {
		return 0, 0, "", false
	}
	for i := 0; i < 3; i++ {
		if line[i] < '0' || line[i] > '9' {
			return 0, 0, "", false
		}
	}
	if line[0] < '1' || line[0] > '5' {
		return 0, 0, "", false
	}
	code, _ = strconv.Atoi(line[:3])
	switch {
	case len(line) == 3:
		return code, ' ', "", true
	case line[3] == ' ' || line[3] == '-':
		return code, line[3], strings.TrimSpace(line[4:]), true
	}
	return 0, 0, "", false
}

// smtpMarkers appear in mail server greetings, which also start with 220.
var smtpMarkers = regexp.MustCompile(`(?i)\b(e?smtp|postfix|sendmail|exim|mail service|mail server|lmtp)\b`)

// smtpEnhanced is an RFC 3463 enhanced status code ("502 5.5.2 ...") that
// only mail servers send.
var smtpEnhanced = regexp.MustCompile(`^[245]\.\d{1,3}\.\d{1,3}\b`)

// Identify parses the greeting and, unless it names FTP plainly, confirms
// with SYST (mail servers greet with 220 too). Info keys set: "greeting"
// (the greeting text) and "syst" (the SYST answer, when given).
func (p *Protocol) Identify(ctx context.Context, conn net.Conn, banner []byte, ep proto.Endpoint) (*proto.Identity, error) {
	if len(banner) == 0 {
		return nil, fmt.Errorf("%w: ftp servers greet first", proto.ErrNotThisProtocol)
	}
	reply, ok := ParseReply(banner)
	if ok && !reply.Complete && len(banner) < 4096 {
		// The greeting was cut by the banner read: read the rest, bounded.
		more, _, _ := proto.ReadUntil(conn, 4096-len(banner), ep.IOTimeout(), []byte("\n"+strconv.Itoa(reply.Code)+" "))
		banner = append(append([]byte{}, banner...), more...)
		reply, ok = ParseReply(banner)
	}
	if !ok || !reply.Complete {
		return nil, fmt.Errorf("%w: greeting %q is no complete FTP reply", proto.ErrNotThisProtocol, proto.Printable(firstLine(banner)))
	}
	text := reply.Text()
	mentionsFTP := strings.Contains(strings.ToLower(text), "ftp")
	switch {
	case reply.Code == 220 || reply.Code == 120:
	case reply.Code == 421 && mentionsFTP:
	default:
		return nil, fmt.Errorf("%w: greeting code %d", proto.ErrNotThisProtocol, reply.Code)
	}
	if !mentionsFTP && smtpMarkers.MatchString(text) {
		return nil, fmt.Errorf("%w: mail server greeting %q", proto.ErrNotThisProtocol, truncate(text, 80))
	}
	id := &proto.Identity{Protocol: "ftp", TLS: ep.TLS, Banner: proto.Printable(banner)}
	id.Set("greeting", truncate(text, 200))
	if reply.Code == 220 {
		syst, err := askSYST(ctx, conn, ep)
		if err == nil {
			if syst.Code >= 500 && len(syst.Lines) > 0 && smtpEnhanced.MatchString(syst.Lines[0]) {
				return nil, fmt.Errorf("%w: SYST answered like a mail server: %q", proto.ErrNotThisProtocol, truncate(syst.Text(), 80))
			}
			if syst.Code == 215 {
				id.Set("syst", truncate(syst.Text(), 100))
			}
		}
	}
	id.Product, id.Version, id.Vendor = productFromGreeting(text)
	return id, nil
}

// askSYST sends SYST and reads one reply, bounded in size and time.
func askSYST(ctx context.Context, conn net.Conn, ep proto.Endpoint) (Reply, error) {
	if err := ctx.Err(); err != nil {
		return Reply{}, err
	}
	_ = conn.SetWriteDeadline(time.Now().Add(ep.IOTimeout()))
	if _, err := conn.Write([]byte("SYST\r\n")); err != nil {
		return Reply{}, err
	}
	var buf []byte
	deadline := time.Now().Add(ep.IOTimeout())
	for len(buf) < 2048 && time.Now().Before(deadline) {
		more, _, err := proto.ReadUntil(conn, 2048-len(buf), time.Until(deadline), []byte("\n"))
		buf = append(buf, more...)
		if r, ok := ParseReply(buf); ok && r.Complete {
			return r, nil
		}
		if err != nil {
			return Reply{}, err
		}
	}
	return Reply{}, fmt.Errorf("no complete SYST reply")
}

// greetingProducts maps greetings to products; the first submatch, when
// present, is the version.
var greetingProducts = []struct {
	re      *regexp.Regexp
	product string
	vendor  string
}{
	{regexp.MustCompile(`\(vsFTPd (\d[\w.]*)\)`), "vsFTPd", ""},
	{regexp.MustCompile(`(?i)vsftpd(?:\s+(\d[\w.]*))?`), "vsFTPd", ""},
	{regexp.MustCompile(`ProFTPD(?:\s+(\d[\w.]*))?`), "ProFTPD", ""},
	{regexp.MustCompile(`Pure-FTPd`), "Pure-FTPd", ""},
	{regexp.MustCompile(`FileZilla Server(?:\s+(?:version\s+)?v?(\d[\w.]*))?`), "FileZilla Server", ""},
	{regexp.MustCompile(`Microsoft FTP Service`), "Microsoft FTP Service", ""},
	{regexp.MustCompile(`Serv-U FTP Server v?(\d[\w.]*)?`), "Serv-U", ""},
	{regexp.MustCompile(`bftpd (\d[\w.]*)`), "bftpd", ""},
	{regexp.MustCompile(`uftpd \((\d[\w.]*)\)`), "uftpd", ""},
	{regexp.MustCompile(`GNU inetutils (\d[\w.]*)`), "GNU inetutils ftpd", ""},
	{regexp.MustCompile(`Version wu-(\d[\w.()\-]*)`), "wu-ftpd", ""},
	{regexp.MustCompile(`MikroTik FTP server \(MikroTik (\d[\w.]*)\)`), "MikroTik FTP", "mikrotik"},
	{regexp.MustCompile(`(?i)TP-LINK FTP version (\d[\w.]*)`), "TP-LINK FTP", "tp-link"},
	// BusyBox ftpd greets with its generic success text and nothing else.
	{regexp.MustCompile(`^Operation successful$`), "BusyBox ftpd", ""},
}

// vendorWords are vendor names seen in device greetings.
var vendorWords = []struct {
	re     *regexp.Regexp
	vendor string
}{
	{regexp.MustCompile(`(?i)\bmikrotik\b`), "mikrotik"},
	{regexp.MustCompile(`(?i)\btp-?link\b`), "tp-link"},
	{regexp.MustCompile(`(?i)\bd-?link\b`), "d-link"},
	{regexp.MustCompile(`(?i)\bnetgear\b`), "netgear"},
	{regexp.MustCompile(`(?i)\bzyxel\b`), "zyxel"},
	{regexp.MustCompile(`(?i)\bsynology\b|\bdiskstation\b`), "synology"},
	{regexp.MustCompile(`(?i)\bqnap\b`), "qnap"},
	{regexp.MustCompile(`(?i)\bfritz!?box`), "avm"},
	{regexp.MustCompile(`(?i)\bhikvision\b`), "hikvision"},
	{regexp.MustCompile(`(?i)\bdahua\b`), "dahua"},
	{regexp.MustCompile(`(?i)\basus\b`), "asus"},
	{regexp.MustCompile(`(?i)\bhuawei\b`), "huawei"},
	{regexp.MustCompile(`\bZTE\b`), "zte"},
	{regexp.MustCompile(`(?i)\bdraytek\b`), "draytek"},
	{regexp.MustCompile(`(?i)\bwestern digital\b|\bwdmycloud\b`), "western digital"},
}

// productFromGreeting names the server and the device maker where the
// greeting tells.
func productFromGreeting(text string) (product, version, vendor string) {
	for _, g := range greetingProducts {
		if m := g.re.FindStringSubmatch(text); m != nil {
			product, vendor = g.product, g.vendor
			if len(m) > 1 {
				version = m[1]
			}
			break
		}
	}
	if vendor == "" {
		for _, v := range vendorWords {
			if v.re.MatchString(text) {
				vendor = v.vendor
				break
			}
		}
	}
	return product, version, vendor
}

func firstLine(b []byte) []byte {
	if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
		return b[:i]
	}
	return b
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
