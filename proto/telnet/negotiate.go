package telnet

import (
	"fmt"
	"strings"
)

// Telnet command bytes (RFC 854) and the options we care about (RFC 857,
// 858, 1073, 1091).
const (
	cmdSE   = 240
	cmdNOP  = 241
	cmdSB   = 250
	cmdWILL = 251
	cmdWONT = 252
	cmdDO   = 253
	cmdDONT = 254
	cmdIAC  = 255

	optBinary = 0
	optEcho   = 1
	optSGA    = 3
	optTType  = 24
	optNAWS   = 31

	ttypeIS   = 0
	ttypeSEND = 1
)

// maxSubneg caps how many payload bytes of one subnegotiation are kept; the
// rest is dropped (the parser still waits for IAC SE).
const maxSubneg = 256

// command is one telnet command found in the stream: an option negotiation
// (WILL/WONT/DO/DONT + option), a subnegotiation (SB option payload IAC SE)
// or a one-byte command (NOP, GA, ...) with Option unused.
type command struct {
	Verb   byte
	Option byte
	Data   []byte // subnegotiation payload, IAC IAC unescaped, capped at maxSubneg
}

func (c command) String() string {
	switch c.Verb {
	case cmdWILL, cmdWONT, cmdDO, cmdDONT:
		return verbName(c.Verb) + " " + optionName(c.Option)
	case cmdSB:
		return fmt.Sprintf("SB %s %x", optionName(c.Option), c.Data)
	}
	return verbName(c.Verb)
}

func verbName(v byte) string {
	switch v {
	case cmdWILL:
		return "WILL"
	case cmdWONT:
		return "WONT"
	case cmdDO:
		return "DO"
	case cmdDONT:
		return "DONT"
	case cmdSB:
		return "SB"
	case cmdSE:
		return "SE"
	case cmdNOP:
		return "NOP"
	case 249:
		return "GA"
	}
	return fmt.Sprintf("CMD%d", v)
}

func optionName(o byte) string {
	switch o {
	case optBinary:
		return "BINARY"
	case optEcho:
		return "ECHO"
	case optSGA:
		return "SGA"
	case 5:
		return "STATUS"
	case 6:
		return "TIMING-MARK"
	case optTType:
		return "TTYPE"
	case optNAWS:
		return "NAWS"
	case 32:
		return "TSPEED"
	case 33:
		return "LFLOW"
	case 34:
		return "LINEMODE"
	case 35:
		return "XDISPLOC"
	case 36:
		return "ENVIRON"
	case 39:
		return "NEW-ENVIRON"
	}
	return fmt.Sprintf("OPT%d", o)
}

// describe renders commands compactly ("DO ECHO, WILL SGA") for Identity.Info.
func describe(cmds []command) string {
	parts := make([]string, 0, len(cmds))
	for _, c := range cmds {
		if c.Verb == cmdSB {
			parts = append(parts, "SB "+optionName(c.Option))
			continue
		}
		parts = append(parts, c.String())
	}
	return strings.Join(parts, ", ")
}

type parseState uint8

const (
	stData   parseState = iota
	stIAC               // saw IAC
	stOption            // saw IAC WILL/WONT/DO/DONT, want the option byte
	stSBOpt             // saw IAC SB, want the option byte
	stSB                // inside a subnegotiation payload
	stSBIAC             // saw IAC inside a subnegotiation
)

// parser separates telnet data bytes from commands. It is incremental: feed
// it the stream in any chunking and it yields the same result. Its memory is
// bounded (only the current subnegotiation, capped at maxSubneg).
type parser struct {
	state parseState
	verb  byte
	sbOpt byte
	sb    []byte
}

// feed parses in, appending data bytes to data and commands to cmds, and
// returns both. IAC IAC in data and in subnegotiations becomes one 0xFF.
// NUL and CR handling is left to the caller, so data is the exact byte
// stream the peer meant.
func (p *parser) feed(in, data []byte, cmds []command) ([]byte, []command) {
	for _, b := range in {
		switch p.state {
		case stData:
			if b == cmdIAC {
				p.state = stIAC
				continue
			}
			data = append(data, b)
		case stIAC:
			switch b {
			case cmdIAC:
				data = append(data, cmdIAC)
				p.state = stData
			case cmdWILL, cmdWONT, cmdDO, cmdDONT:
				p.verb = b
				p.state = stOption
			case cmdSB:
				p.state = stSBOpt
			default:
				// One-byte command (NOP, GA, AYT, a stray SE, ...).
				cmds = append(cmds, command{Verb: b})
				p.state = stData
			}
		case stOption:
			cmds = append(cmds, command{Verb: p.verb, Option: b})
			p.state = stData
		case stSBOpt:
			p.sbOpt = b
			p.sb = p.sb[:0]
			p.state = stSB
		case stSB:
			if b == cmdIAC {
				p.state = stSBIAC
				continue
			}
			p.addSB(b)
		case stSBIAC:
			switch b {
			case cmdIAC:
				p.addSB(cmdIAC)
				p.state = stSB
			case cmdSE:
				cmds = append(cmds, p.endSB())
				p.state = stData
			default:
				// IAC <verb> inside a subnegotiation is a protocol error;
				// end the subnegotiation and treat this as a new command,
				// as most implementations do.
				cmds = append(cmds, p.endSB())
				p.state = stIAC
				data, cmds = p.feed([]byte{b}, data, cmds)
			}
		}
	}
	return data, cmds
}

func (p *parser) addSB(b byte) {
	if len(p.sb) < maxSubneg {
		p.sb = append(p.sb, b)
	}
}

func (p *parser) endSB() command {
	c := command{Verb: cmdSB, Option: p.sbOpt, Data: append([]byte(nil), p.sb...)}
	p.sb = p.sb[:0]
	return c
}

// escapeIAC doubles every 0xFF so that b travels as data.
func escapeIAC(b []byte) []byte {
	out := make([]byte, 0, len(b)+4)
	for _, c := range b {
		out = append(out, c)
		if c == cmdIAC {
			out = append(out, cmdIAC)
		}
	}
	return out
}

type optState uint8

const (
	optOff      optState = iota // never negotiated
	optOn                       // agreed to
	optRefused                  // we said no; don't say it again (loop guard)
	optDisabled                 // was on, turned off
)

// Terminal we claim when asked (TTYPE) and the window size we report (NAWS).
const (
	termType   = "VT100"
	termWidth  = 80
	termHeight = 24
)

// negotiator answers the server's option negotiation the way a minimal
// client should: it agrees to the server echoing and suppressing go-ahead,
// offers a terminal type and window size when asked, and refuses the rest.
// It answers each request at most once per state change (RFC 1143 spirit),
// so a peer repeating requests cannot make it loop.
type negotiator struct {
	us   [256]optState // options on our side (server sent DO/DONT)
	them [256]optState // options on the server's side (server sent WILL/WONT)
}

// we support these on our side when asked with DO.
func weSupport(opt byte) bool {
	return opt == optSGA || opt == optTType || opt == optNAWS
}

// we let the server enable these on its side when it offers WILL.
func theyMay(opt byte) bool {
	return opt == optEcho || opt == optSGA
}

// respond returns the bytes to send in answer to c (nil for none).
func (n *negotiator) respond(c command) []byte {
	o := c.Option
	switch c.Verb {
	case cmdDO:
		switch {
		case weSupport(o) && n.us[o] != optOn:
			n.us[o] = optOn
			out := []byte{cmdIAC, cmdWILL, o}
			if o == optNAWS {
				out = append(out, nawsSubneg()...)
			}
			return out
		case !weSupport(o) && n.us[o] != optRefused:
			n.us[o] = optRefused
			return []byte{cmdIAC, cmdWONT, o}
		}
	case cmdDONT:
		if n.us[o] == optOn {
			n.us[o] = optDisabled
			return []byte{cmdIAC, cmdWONT, o}
		}
	case cmdWILL:
		switch {
		case theyMay(o) && n.them[o] != optOn:
			n.them[o] = optOn
			return []byte{cmdIAC, cmdDO, o}
		case !theyMay(o) && n.them[o] != optRefused:
			n.them[o] = optRefused
			return []byte{cmdIAC, cmdDONT, o}
		}
	case cmdWONT:
		if n.them[o] == optOn {
			n.them[o] = optDisabled
			return []byte{cmdIAC, cmdDONT, o}
		}
	case cmdSB:
		if o == optTType && n.us[optTType] == optOn && len(c.Data) > 0 && c.Data[0] == ttypeSEND {
			out := []byte{cmdIAC, cmdSB, optTType, ttypeIS}
			out = append(out, termType...)
			return append(out, cmdIAC, cmdSE)
		}
	}
	return nil
}

func nawsSubneg() []byte {
	sub := []byte{0, termWidth, 0, termHeight}
	out := []byte{cmdIAC, cmdSB, optNAWS}
	out = append(out, escapeIAC(sub)...)
	return append(out, cmdIAC, cmdSE)
}

// busyboxOpening is what busybox telnetd sends first on every connection
// (networking/telnetd.c iacs_to_send): DO ECHO, DO NAWS, WILL ECHO, WILL SGA.
var busyboxOpening = []command{
	{Verb: cmdDO, Option: optEcho},
	{Verb: cmdDO, Option: optNAWS},
	{Verb: cmdWILL, Option: optEcho},
	{Verb: cmdWILL, Option: optSGA},
}

// isBusyboxOpening reports whether cmds start with busybox telnetd's opening.
func isBusyboxOpening(cmds []command) bool {
	if len(cmds) < len(busyboxOpening) {
		return false
	}
	for i, want := range busyboxOpening {
		if cmds[i].Verb != want.Verb || cmds[i].Option != want.Option {
			return false
		}
	}
	return true
}
