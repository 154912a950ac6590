package lab

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"time"
)

// Telnet protocol bytes (RFC 854, 855).
const (
	tnSE   = 240
	tnIP   = 244
	tnSB   = 250
	tnWILL = 251
	tnWONT = 252
	tnDO   = 253
	tnDONT = 254
	tnIAC  = 255

	optEcho = 1
	optSGA  = 3
	optNAWS = 31
)

// telnetGreeting is what BusyBox telnetd sends first: it asks the client
// not to echo, offers to echo and suppress go-ahead itself, and asks for the
// window size.
var telnetGreeting = []byte{
	tnIAC, tnDO, optEcho,
	tnIAC, tnDO, optNAWS,
	tnIAC, tnWILL, optEcho,
	tnIAC, tnWILL, optSGA,
}

// Negotiation flags per option.
const (
	sentDo      = 1 << iota // we asked the peer to enable the option
	sentWill                // we offered to enable it ourselves
	refusedWill             // we refused the peer's unsolicited WILL
	refusedDo               // we refused the peer's unsolicited DO
)

// maxSubneg bounds a kept subnegotiation; longer ones are cut.
const maxSubneg = 64

// telnetParser strips the telnet command stream from what a client sends
// and works out the replies. It answers each unsolicited option request at
// most once (refusing it) and never answers replies to its own requests,
// so negotiation cannot loop.
type telnetParser struct {
	state int
	cmd   byte
	sb    []byte
	opts  [256]uint8
	// width and height are the window size from NAWS (0 if unknown).
	width, height int
}

const (
	tsData = iota
	tsIAC
	tsOpt
	tsSB
	tsSBIAC
)

func newTelnetParser() *telnetParser {
	p := &telnetParser{}
	for i := 0; i+2 < len(telnetGreeting); i += 3 {
		if telnetGreeting[i+1] == tnDO {
			p.opts[telnetGreeting[i+2]] |= sentDo
		} else {
			p.opts[telnetGreeting[i+2]] |= sentWill
		}
	}
	return p
}

// feed consumes bytes from the client and returns the data bytes in them
// and any negotiation replies to send back. An interrupt (IAC IP) becomes
// a ^C data byte.
func (p *telnetParser) feed(in []byte) (data, reply []byte) {
	for _, b := range in {
		switch p.state {
		case tsData:
			if b == tnIAC {
				p.state = tsIAC
			} else {
				data = append(data, b)
			}
		case tsIAC:
			p.state = tsData
			switch b {
			case tnIAC:
				data = append(data, tnIAC)
			case tnWILL, tnWONT, tnDO, tnDONT:
				p.cmd = b
				p.state = tsOpt
			case tnSB:
				p.sb = p.sb[:0]
				p.state = tsSB
			case tnIP:
				data = append(data, 0x03)
			}
		case tsOpt:
			p.state = tsData
			reply = p.negotiate(p.cmd, b, reply)
		case tsSB:
			if b == tnIAC {
				p.state = tsSBIAC
			} else if len(p.sb) < maxSubneg {
				p.sb = append(p.sb, b)
			}
		case tsSBIAC:
			switch b {
			case tnSE:
				p.subnegotiation()
				p.state = tsData
			case tnIAC:
				if len(p.sb) < maxSubneg {
					p.sb = append(p.sb, tnIAC)
				}
				p.state = tsSB
			default:
				// Malformed: drop the subnegotiation.
				p.state = tsData
			}
		}
	}
	return data, reply
}

func (p *telnetParser) negotiate(cmd, opt byte, reply []byte) []byte {
	f := &p.opts[opt]
	switch cmd {
	case tnWILL:
		if *f&(sentDo|refusedWill) == 0 {
			*f |= refusedWill
			reply = append(reply, tnIAC, tnDONT, opt)
		}
	case tnDO:
		if *f&(sentWill|refusedDo) == 0 {
			*f |= refusedDo
			reply = append(reply, tnIAC, tnWONT, opt)
		}
	}
	// WONT and DONT need no answer: the option simply stays off.
	return reply
}

func (p *telnetParser) subnegotiation() {
	if len(p.sb) >= 5 && p.sb[0] == optNAWS {
		p.width = int(p.sb[1])<<8 | int(p.sb[2])
		p.height = int(p.sb[3])<<8 | int(p.sb[4])
	}
}

// errInterrupt is returned by readLine when the client sends ^C.
var errInterrupt = errors.New("interrupt")

// lineSession reads lines from a terminal the way a pty in canonical mode
// would: echoing typed characters (unless reading a password), handling
// backspace, ^C and ^D, and ending lines at CR, CR LF, CR NUL or LF. It
// serves telnet (with the telnet command stream stripped by parser) and SSH
// shells (parser nil; echo and CR LF only with a pty).
type lineSession struct {
	conn    io.ReadWriter
	parser  *telnetParser // nil: no telnet commands in the stream
	tty     bool          // echo input and write \r\n line ends
	pending []byte
	skipLF  bool // the last line ended with CR: swallow a following LF/NUL
	buf     []byte
}

func newTelnetSession(conn net.Conn) *lineSession {
	return &lineSession{conn: conn, parser: newTelnetParser(), tty: true, buf: make([]byte, 2048)}
}

// write sends text with \n turned into \r\n on a terminal and 0xff doubled
// on telnet.
func (s *lineSession) write(text string) error {
	if !s.tty {
		_, err := io.WriteString(s.conn, text)
		return err
	}
	var b bytes.Buffer
	b.Grow(len(text) + 16)
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case c == '\n':
			if i == 0 || text[i-1] != '\r' {
				b.WriteByte('\r')
			}
			b.WriteByte('\n')
		case c == tnIAC && s.parser != nil:
			b.WriteByte(tnIAC)
			b.WriteByte(tnIAC)
		default:
			b.WriteByte(c)
		}
	}
	_, err := s.conn.Write(b.Bytes())
	return err
}

// readLine reads one line, echoing it when echo is set on a terminal.
func (s *lineSession) readLine(echo bool) (string, error) {
	echo = echo && s.tty
	var line []byte
	for {
		if len(s.pending) == 0 {
			n, err := s.conn.Read(s.buf)
			if n > 0 {
				data := s.buf[:n]
				if s.parser != nil {
					var reply []byte
					data, reply = s.parser.feed(data)
					if len(reply) > 0 {
						if _, werr := s.conn.Write(reply); werr != nil {
							return "", werr
						}
					}
				}
				s.pending = append(s.pending, data...)
			}
			if err != nil {
				if len(s.pending) == 0 {
					return "", err
				}
			}
			continue
		}
		var out []byte
		for len(s.pending) > 0 {
			c := s.pending[0]
			s.pending = s.pending[1:]
			if s.skipLF {
				s.skipLF = false
				if c == '\n' || c == 0 {
					continue
				}
			}
			switch c {
			case '\r', '\n':
				s.skipLF = c == '\r'
				// The pty echoes the line end; login prints one after a
				// password too.
				if s.tty {
					out = append(out, '\r', '\n')
				}
				if len(out) > 0 {
					if _, err := s.conn.Write(out); err != nil {
						return "", err
					}
				}
				return string(line), nil
			case 0x7f, 0x08:
				if len(line) > 0 {
					line = line[:len(line)-1]
					if echo {
						out = append(out, '\b', ' ', '\b')
					}
				}
			case 0x03:
				if s.tty {
					out = append(out, '^', 'C', '\r', '\n')
				}
				if len(out) > 0 {
					_, _ = s.conn.Write(out)
				}
				return "", errInterrupt
			case 0x04:
				if len(line) == 0 {
					if len(out) > 0 {
						_, _ = s.conn.Write(out)
					}
					return "", io.EOF
				}
			case 0:
			default:
				if len(line) < maxLine {
					line = append(line, c)
					if echo {
						out = append(out, c)
					}
				}
			}
		}
		if len(out) > 0 {
			if _, err := s.conn.Write(out); err != nil {
				return "", err
			}
		}
	}
}

// telnetLoginTimeout is how long BusyBox login waits for a login.
const telnetLoginTimeout = 60 * time.Second

// telnetMaxTries is how many failed logins end the connection.
const telnetMaxTries = 3

// telnetHandler serves one telnet connection: login (unless NoAuth), then
// the shell.
func telnetHandler(dev *device, rs RunningService) func(context.Context, net.Conn) {
	return func(_ context.Context, conn net.Conn) {
		s := newTelnetSession(conn)
		if _, err := conn.Write(telnetGreeting); err != nil {
			return
		}
		user := "root"
		if !rs.NoAuth {
			timer := time.AfterFunc(telnetLoginTimeout, func() {
				_ = s.write("\nLogin timed out after 60 seconds\n")
				_ = conn.Close()
			})
			var ok bool
			user, ok = telnetLogin(s, dev, rs)
			timer.Stop()
			if !ok {
				return
			}
		} else if rs.Banner != "" {
			if s.write("\n"+rs.Banner+"\n") != nil {
				return
			}
		}
		telnetShell(s, dev, user)
	}
}

// telnetLogin runs the login:/Password: dialogue and returns the user on
// success.
func telnetLogin(s *lineSession, dev *device, rs RunningService) (string, bool) {
	banner := "\n\n"
	if rs.Banner != "" {
		banner = "\n" + rs.Banner + "\n\n"
	}
	if s.write(banner) != nil {
		return "", false
	}
	for tries := 0; tries < telnetMaxTries; {
		if s.write(dev.hostname+" login: ") != nil {
			return "", false
		}
		user, err := s.readLine(true)
		if errors.Is(err, errInterrupt) {
			continue
		}
		if err != nil {
			return "", false
		}
		user = strings.TrimSpace(user)
		if user == "" {
			continue
		}
		if s.write("Password: ") != nil {
			return "", false
		}
		pass, err := s.readLine(false)
		if errors.Is(err, errInterrupt) {
			continue
		}
		if err != nil {
			return "", false
		}
		if user == rs.Username && pass == rs.Password {
			return user, true
		}
		tries++
		if s.write("Login incorrect\n") != nil {
			return "", false
		}
	}
	return "", false
}

// telnetShell runs the shell until exit or disconnect.
func telnetShell(s *lineSession, dev *device, user string) {
	runShell(s, newShell(dev, user), true)
}

// runShell is the read-run-print loop of an interactive shell; on a
// terminal it prints the BusyBox greeting and prompts.
func runShell(s *lineSession, sh *shell, greet bool) {
	prompt := func() string {
		if s.tty {
			return sh.prompt()
		}
		return ""
	}
	if s.tty && greet {
		motd := "\n\n" + sh.dev.busybox + " built-in shell (ash)\nEnter 'help' for a list of built-in commands.\n\n"
		if s.write(motd) != nil {
			return
		}
	}
	if s.write(prompt()) != nil {
		return
	}
	for {
		line, err := s.readLine(true)
		if errors.Is(err, errInterrupt) {
			if s.write(prompt()) != nil {
				return
			}
			continue
		}
		if err != nil {
			return
		}
		out, exit := sh.run(line)
		if s.write(out) != nil || exit {
			return
		}
		if s.write(prompt()) != nil {
			return
		}
	}
}
