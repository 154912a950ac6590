package telnet

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func parseAll(in []byte) ([]byte, []command) {
	var p parser
	return p.feed(in, nil, nil)
}

func TestParser(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       []byte
		wantData string
		wantCmds []command
	}{
		{
			name:     "busybox opening then prompt",
			in:       append([]byte{255, 253, 1, 255, 253, 31, 255, 251, 1, 255, 251, 3}, "vm login: "...),
			wantData: "vm login: ",
			wantCmds: busyboxOpening,
		},
		{
			name:     "escaped 0xff in data",
			in:       []byte{'a', 255, 255, 'b'},
			wantData: "a\xffb",
		},
		{
			name:     "subnegotiation with escaped IAC",
			in:       []byte{'x', 255, 250, 24, 1, 255, 255, 2, 255, 240, 'y'},
			wantData: "xy",
			wantCmds: []command{{Verb: cmdSB, Option: optTType, Data: []byte{1, 255, 2}}},
		},
		{
			name:     "one-byte commands",
			in:       []byte{255, 241, 'o', 'k', 255, 249},
			wantData: "ok",
			wantCmds: []command{{Verb: cmdNOP}, {Verb: 249}},
		},
		{
			name:     "command inside subnegotiation ends it",
			in:       []byte{255, 250, 31, 0, 80, 255, 253, 3, 'z'},
			wantData: "z",
			wantCmds: []command{{Verb: cmdSB, Option: optNAWS, Data: []byte{0, 80}}, {Verb: cmdDO, Option: optSGA}},
		},
		{
			name:     "incomplete command waits for more",
			in:       []byte{'a', 255, 253},
			wantData: "a",
		},
		{
			name:     "CR NUL kept as data for the caller",
			in:       []byte{'a', '\r', 0, 'b'},
			wantData: "a\r\x00b",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, cmds := parseAll(tt.in)
			if string(data) != tt.wantData {
				t.Errorf("data = %q, want %q", data, tt.wantData)
			}
			if diff := cmp.Diff(tt.wantCmds, cmds); diff != "" {
				t.Errorf("commands differ (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParserSubnegotiationCapped(t *testing.T) {
	t.Parallel()
	in := []byte{255, 250, 24}
	in = append(in, bytes.Repeat([]byte{'A'}, 10*maxSubneg)...)
	in = append(in, 255, 240, 'k')
	data, cmds := parseAll(in)
	if string(data) != "k" || len(cmds) != 1 || len(cmds[0].Data) != maxSubneg {
		t.Fatalf("data %q, %d commands, first payload %d bytes; want \"k\", 1, %d", data, len(cmds), len(cmds[0].Data), maxSubneg)
	}
}

func TestNegotiator(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []command
		want []byte
	}{
		{"refuse server asking us to echo", []command{{Verb: cmdDO, Option: optEcho}}, []byte{255, 252, 1}},
		{"agree to server echo", []command{{Verb: cmdWILL, Option: optEcho}}, []byte{255, 253, 1}},
		{"agree to SGA both ways", []command{{Verb: cmdWILL, Option: optSGA}, {Verb: cmdDO, Option: optSGA}}, []byte{255, 253, 3, 255, 251, 3}},
		{"NAWS answered with window size", []command{{Verb: cmdDO, Option: optNAWS}}, []byte{255, 251, 31, 255, 250, 31, 0, 80, 0, 24, 255, 240}},
		{"terminal type on request", []command{{Verb: cmdDO, Option: optTType}, {Verb: cmdSB, Option: optTType, Data: []byte{ttypeSEND}}},
			append([]byte{255, 251, 24, 255, 250, 24, 0}, append([]byte(termType), 255, 240)...)},
		{"terminal type not sent unless agreed", []command{{Verb: cmdSB, Option: optTType, Data: []byte{ttypeSEND}}}, nil},
		{"refuse unknown server option", []command{{Verb: cmdWILL, Option: 39}}, []byte{255, 254, 39}},
		{"repeated request answered once", []command{{Verb: cmdDO, Option: 39}, {Verb: cmdDO, Option: 39}, {Verb: cmdDO, Option: 39}}, []byte{255, 252, 39}},
		{"DONT after WILL turns it off", []command{{Verb: cmdDO, Option: optSGA}, {Verb: cmdDONT, Option: optSGA}}, []byte{255, 251, 3, 255, 252, 3}},
		{"DONT on an option never on is ignored", []command{{Verb: cmdDONT, Option: optEcho}}, nil},
		{"WONT after DO turns it off", []command{{Verb: cmdWILL, Option: optEcho}, {Verb: cmdWONT, Option: optEcho}}, []byte{255, 253, 1, 255, 254, 1}},
		{"busybox opening", busyboxOpening, []byte{255, 252, 1, 255, 251, 31, 255, 250, 31, 0, 80, 0, 24, 255, 240, 255, 253, 1, 255, 253, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n negotiator
			var got []byte
			for _, c := range tt.in {
				got = append(got, n.respond(c)...)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("reply = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEscapeIAC(t *testing.T) {
	t.Parallel()
	if got := escapeIAC([]byte{1, 255, 2, 255}); !bytes.Equal(got, []byte{1, 255, 255, 2, 255, 255}) {
		t.Fatalf("escapeIAC = %v", got)
	}
}

func TestBusyboxOpening(t *testing.T) {
	t.Parallel()
	_, cmds := parseAll([]byte{255, 253, 1, 255, 253, 31, 255, 251, 1, 255, 251, 3})
	if !isBusyboxOpening(cmds) {
		t.Error("busybox opening not recognised")
	}
	_, cmds = parseAll([]byte{255, 251, 1, 255, 251, 3, 255, 253, 24})
	if isBusyboxOpening(cmds) {
		t.Error("another server's opening taken for busybox")
	}
}

// FuzzParser checks that the parser never panics, gives the same result
// whatever the chunking, keeps subnegotiations bounded, and that escaped
// data survives a round trip.
func FuzzParser(f *testing.F) {
	f.Add([]byte{255, 253, 1, 255, 253, 31, 255, 251, 1, 255, 251, 3, 'l', 'o', 'g', 'i', 'n', ':', ' '}, uint8(3))
	f.Add([]byte{255, 250, 24, 1, 255, 255, 255, 240}, uint8(1))
	f.Add([]byte{255, 255, 255, 255, 255}, uint8(2))
	f.Add([]byte{255, 250, 255, 250, 255, 253}, uint8(1))
	f.Add([]byte("plain text\r\n\x00"), uint8(5))
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		whole, wholeCmds := parseAll(in)

		var p parser
		var data []byte
		var cmds []command
		n := int(step%16) + 1
		for i := 0; i < len(in); i += n {
			data, cmds = p.feed(in[i:min(i+n, len(in))], data, cmds)
		}
		if !bytes.Equal(data, whole) {
			t.Fatalf("chunked data %q != whole %q", data, whole)
		}
		if diff := cmp.Diff(wholeCmds, cmds); diff != "" {
			t.Fatalf("chunked commands differ:\n%s", diff)
		}
		if len(data) > len(in) {
			t.Fatalf("more data (%d) than input (%d)", len(data), len(in))
		}
		var neg negotiator
		for _, c := range cmds {
			if len(c.Data) > maxSubneg {
				t.Fatalf("subnegotiation payload %d > cap", len(c.Data))
			}
			if r := neg.respond(c); len(r) > 32 {
				t.Fatalf("reply of %d bytes to %v", len(r), c)
			}
		}

		back, backCmds := parseAll(escapeIAC(in))
		if !bytes.Equal(back, in) || len(backCmds) != 0 {
			t.Fatalf("escaped data did not round-trip: %q -> %q (%d commands)", in, back, len(backCmds))
		}
	})
}

// FuzzScreen checks that the functions reading the server's text (prompt
// detection, ANSI stripping, banner classification) never panic and that
// stripping only ever removes bytes.
func FuzzScreen(f *testing.F) {
	f.Add([]byte("\x1b[1;32mroot@cam\x1b[0m:~# "))
	f.Add([]byte("\r\nvm login: "))
	f.Add([]byte("\x1b[")) // escape cut short
	f.Add([]byte("Password for ZTE-F660:"))
	f.Add([]byte("\x1b"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := stripANSI(b)
		if len(s) > len(b) {
			t.Fatalf("stripANSI grew %d -> %d bytes", len(b), len(s))
		}
		_ = lastLine(b)
		_ = promptKind(b)
		_ = anyPrompt(b)
		_ = containsAny(b, failureMarkers)
		_ = lineWith(b, "in")
		_ = originalLastLine(b)
		_ = otherProtocol(b)
		_ = mostlyText(b)
		_ = vendorHint(string(b))
		_ = startsWithNegotiation(b)
	})
}
