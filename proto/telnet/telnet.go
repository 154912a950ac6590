// Package telnet identifies telnet services (option negotiation, login
// prompts, BusyBox telnetd), tries credentials through the login prompts
// with a shell echo as the only proof of success, and finds telnet services
// that open a shell without any login.
//
// The wire parser for option negotiation is hand-written (negotiate.go):
// no telnet library is available, and the protocol is small.
package telnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/iotcop/iotcop/proto"
)

// Protocol is the telnet protocol module. Its zero value is ready to use.
type Protocol struct{}

// New returns the telnet protocol module.
func New() *Protocol { return &Protocol{} }

// Compile-time checks that Protocol implements the interfaces it claims.
var (
	_ proto.Identifier       = (*Protocol)(nil)
	_ proto.Authenticator    = (*Protocol)(nil)
	_ proto.OpenAccessProber = (*Protocol)(nil)
)

// Name returns "telnet".
func (*Protocol) Name() string { return "telnet" }

// Transport returns "tcp".
func (*Protocol) Transport() string { return "tcp" }

// PortPriority reports whether port is a usual telnet port (23, 2323).
func (*Protocol) PortPriority(port int) bool { return port == 23 || port == 2323 }

// ServerFirst returns true: telnet servers negotiate options or prompt first.
func (*Protocol) ServerFirst() bool { return true }

// identifySettle is how long Identify reads on after a prompt appeared.
const identifySettle = 40 * time.Millisecond

// Identify recognises telnet by its option negotiation (IAC WILL/WONT/DO/
// DONT/SB at the start of the stream) or, without negotiation, by a login
// prompt (any port) or plain text on ports 23/2323 that is not another
// protocol's greeting. It answers the negotiation and reads on briefly to see
// the prompt.
//
// Info keys set: "negotiation" (commands the server sent first, e.g. "DO
// ECHO, DO NAWS, WILL ECHO, WILL SGA"), "prompt" ("login", "password",
// "shell" or "none": what the server waits for), "login_prompt" (the login
// prompt line as sent) and "hostname" (from a "<host> login:" prompt).
func (p *Protocol) Identify(ctx context.Context, conn net.Conn, banner []byte, ep proto.Endpoint) (*proto.Identity, error) {
	if len(banner) == 0 {
		return nil, proto.ErrNotThisProtocol
	}
	negotiates := startsWithNegotiation(banner)
	if !negotiates && (otherProtocol(banner) || !mostlyText(banner)) {
		return nil, proto.ErrNotThisProtocol
	}
	t := newTerm(conn)
	t.ingest(banner)
	// Read on until a prompt shows (answering negotiation meanwhile), but
	// not for long: identification must stay cheap.
	if !anyPrompt(t.text()) || negotiates {
		// Once a prompt shows, identification needs nothing more: settle
		// only briefly (logins settle longer, to catch late refusals).
		t.wait(ctx, min(ep.IOTimeout(), 2*time.Second), min(settle(ep.IOTimeout()), identifySettle), anyPrompt)
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("telnet identify %s: %w", ep.Addr(), ctx.Err())
	}
	text := t.text()
	prompt := promptKind(text)
	if !negotiates {
		if !mostlyText(text) || otherProtocol(text) {
			return nil, proto.ErrNotThisProtocol
		}
		if prompt != "login" && prompt != "password" && !p.PortPriority(ep.Port) {
			return nil, proto.ErrNotThisProtocol
		}
	}

	id := &proto.Identity{Protocol: "telnet"}
	if clean := bytes.TrimSpace(stripANSI(text)); len(clean) > 0 {
		id.Banner = proto.Printable(clean)
	} else {
		id.Banner = proto.Printable(t.raw)
	}
	if len(t.cmds) > 0 {
		id.Set("negotiation", describe(t.cmds))
	}
	id.Set("prompt", prompt)
	if prompt == "login" {
		line := originalLastLine(text)
		id.Set("login_prompt", line)
		if m := hostPrompt.FindStringSubmatch(line); m != nil {
			id.Set("hostname", m[1])
		}
	}
	lower := strings.ToLower(string(stripANSI(text)))
	if isBusyboxOpening(t.cmds) || strings.Contains(lower, "busybox") {
		id.Product = "BusyBox telnetd"
		if m := busyboxVersion.FindStringSubmatch(string(text)); m != nil {
			id.Version = m[1]
		}
	}
	id.Vendor = vendorHint(lower)
	return id, nil
}

var (
	hostPrompt     = regexp.MustCompile(`^(\S+) login:\s*$`)
	busyboxVersion = regexp.MustCompile(`BusyBox v(\d+\.\d+(?:\.\d+)?)`)
)

// promptKind names what the text ends waiting for.
func promptKind(text []byte) string {
	switch {
	case isLoginPrompt(text):
		return "login"
	case isPasswordPrompt(text):
		return "password"
	case isShellPrompt(text):
		return "shell"
	}
	return "none"
}

// originalLastLine is lastLine without lower-casing, printable.
func originalLastLine(text []byte) string {
	t := stripANSI(text)
	if i := bytes.LastIndexAny(t, "\r\n"); i >= 0 {
		t = t[i+1:]
	}
	return proto.Printable(bytes.TrimSpace(t))
}

// startsWithNegotiation reports whether b opens with a telnet command that
// only telnet sends: IAC followed by WILL/WONT/DO/DONT/SB.
func startsWithNegotiation(b []byte) bool {
	return len(b) >= 2 && b[0] == cmdIAC && (b[1] >= cmdSB && b[1] <= cmdDONT)
}

var otherGreeting = regexp.MustCompile(`^(?:SSH-|\d{3}[ -]|HTTP/|RTSP/|\+OK|-ERR|\* OK|\* PREAUTH|<\?xml|AMQP|\x16\x03)`)

// otherProtocol reports whether b is another server-first protocol's
// greeting (SSH, FTP/SMTP reply codes, POP3, IMAP, HTTP, TLS ...).
func otherProtocol(b []byte) bool {
	return otherGreeting.Match(bytes.TrimLeft(b, "\r\n"))
}

// mostlyText reports whether at least 90% of b is printable ASCII or
// whitespace (ANSI escapes allowed).
func mostlyText(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	good := 0
	for _, c := range b {
		if (c >= 0x20 && c < 0x7f) || c == '\r' || c == '\n' || c == '\t' || c == 0x1b || c == 0 {
			good++
		}
	}
	return good*10 >= len(b)*9
}

// vendorHints maps words seen in banners to the device maker.
var vendorHints = []struct{ word, vendor string }{
	{"hikvision", "hikvision"},
	{"dahua", "dahua"},
	{"xiongmai", "xiongmai"},
	{"xmeye", "xiongmai"},
	{"tp-link", "tp-link"},
	{"tplink", "tp-link"},
	{"d-link", "d-link"},
	{"dlink", "d-link"},
	{"zyxel", "zyxel"},
	{"huawei", "huawei"},
	{"zte", "zte"},
	{"netgear", "netgear"},
	{"mikrotik", "mikrotik"},
	{"ubiquiti", "ubiquiti"},
	{"ubnt", "ubiquiti"},
	{"cisco", "cisco"},
	{"juniper", "juniper"},
	{"foscam", "foscam"},
	{"avtech", "avtech"},
	{"tenda", "tenda"},
	{"totolink", "totolink"},
	{"linksys", "linksys"},
	{"draytek", "draytek"},
	{"axis", "axis"},
}

var word = regexp.MustCompile(`[a-z0-9-]+`)

// vendorHint returns the maker named in lower-cased banner text, if any.
func vendorHint(lower string) string {
	words := map[string]bool{}
	for _, w := range word.FindAllString(lower, 200) {
		words[w] = true
	}
	for _, h := range vendorHints {
		if words[h.word] {
			return h.vendor
		}
		// Model names glue the maker to a number ("zte-f660", "dlink123").
		for w := range words {
			if strings.HasPrefix(w, h.word) && len(w) > len(h.word) && (w[len(h.word)] == '-' || (w[len(h.word)] >= '0' && w[len(h.word)] <= '9')) {
				return h.vendor
			}
		}
	}
	return ""
}

// echoProbe is a shell command whose output differs from its own text:
//
//	echo 1a2b''3c4d
//
// prints 1a2b3c4d, which never appears in the echo of the typed command. A
// peer that only repeats what it is sent, or prints a fake prompt, can
// therefore never produce Want.
type echoProbe struct {
	Command string
	Want    string
}

func newEchoProbe() echoProbe {
	var b [8]byte
	_, _ = rand.Read(b[:])
	a, z := hex.EncodeToString(b[:4]), hex.EncodeToString(b[4:])
	return echoProbe{Command: "echo " + a + "''" + z, Want: a + z}
}
