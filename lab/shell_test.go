package lab

import (
	"bytes"
	"strings"
	"testing"
)

func testDevice(kind string) *device {
	return newDevice(DeviceSpec{Name: kind + "-1", Kind: kind}, "127.0.0.9")
}

func TestShell(t *testing.T) {
	tests := []struct {
		line string
		want string // exact output; prefix "~" means "contains"
		exit bool
	}{
		{"echo ab$((1+1))cd", "ab2cd\n", false},
		{"echo ab''cd", "abcd\n", false},
		{`echo ab""cd`, "abcd\n", false},
		{`echo "a  b"   c`, "a  b c\n", false},
		{`echo 'it''s' "$((3 * (2 + 1)))"`, "its 9\n", false},
		{`echo $((7 / 2)) $((7 % 3)) $((-2 ** 1))`, "", false}, // ** unsupported: error
		{`echo $((1 << 4 | 1)) $((5 > 3 && 2 < 1)) $((!0)) $((~0))`, "17 0 1 -1\n", false},
		{`echo $((0x10 + 010))`, "24\n", false},
		{`echo $((10 / 0))`, "-sh: divide by zero\n", false},
		{`echo a\ b`, "a b\n", false},
		{`echo -n x`, "x", false},
		{`echo -e 'a\tb\x41\0101'`, "a\tbAA\n", false},
		{`echo -e 'stop\cnot'`, "stop", false},
		{`echo $HOME $USER`, "/root root\n", false},
		{`X=5; echo $((X * 2)) ${X}`, "10 5\n", false},
		{`echo $(echo in)side`, "inside\n", false},
		{"echo `echo back`quote", "backquote\n", false},
		{`false || echo ok`, "ok\n", false},
		{`false && echo no; echo yes`, "yes\n", false},
		{`true && echo both`, "both\n", false},
		{`echo one | cat`, "one\n", false},
		{`cat /proc/cpuinfo | grep BogoMIPS`, "BogoMIPS\t: 1196.03\n", false},
		{`echo hidden > /dev/null`, "", false},
		{`echo x 2>&1`, "x\n", false},
		{`echo 'unterminated`, "-sh: syntax error: unterminated quoted string\n", false},
		{`echo ok # a comment`, "ok\n", false},
		{"id", "uid=0(root) gid=0(root) groups=0(root)\n", false},
		{"uname -a", "Linux vistacam-camera 3.10.0 #1 SMP PREEMPT Thu Aug 10 11:09:39 CST 2017 armv7l GNU/Linux\n", false},
		{"uname -m", "armv7l\n", false},
		{"cat /proc/cpuinfo", "~ARMv7 Processor", false},
		{"cat /etc/shadow", "cat: can't open '/etc/shadow': No such file or directory\n", false},
		{"/bin/busybox MIRAI", "MIRAI: applet not found\n", false},
		{"busybox echo hi", "hi\n", false},
		{"enable; system; shell; sh", "", false},
		{"wget http://example.invalid/x", "-sh: wget: not found\n", false},
		{"/tmp/x", "-sh: /tmp/x: not found\n", false},
		{"cd /etc; pwd; ls", "/etc\nhostname\ninit.d\nissue\npasswd\nversion\n", false},
		{"echo $?; false; echo $?", "0\n1\n", false},
		{"exit", "", true},
		{"echo bye; exit", "bye\n", true},
		{"", "", false},
		{";", "-sh: syntax error: unexpected ;\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			sh := newShell(testDevice("camera"), "root")
			out, exit := sh.run(tt.line)
			if tt.line == `echo $((7 / 2)) $((7 % 3)) $((-2 ** 1))` {
				if !strings.Contains(out, "arithmetic syntax error") {
					t.Errorf("out %q, want an arithmetic syntax error", out)
				}
				return
			}
			if want, ok := strings.CutPrefix(tt.want, "~"); ok {
				if !strings.Contains(out, want) {
					t.Errorf("out %q, want it to contain %q", out, want)
				}
			} else if out != tt.want {
				t.Errorf("out %q, want %q", out, tt.want)
			}
			if exit != tt.exit {
				t.Errorf("exit %v, want %v", exit, tt.exit)
			}
		})
	}
}

func TestShellPerUser(t *testing.T) {
	sh := newShell(testDevice("hardened"), "admin")
	if out, _ := sh.run("id"); out != "uid=1000(admin) gid=1000(admin) groups=1000(admin)\n" {
		t.Errorf("hardened id: %q", out)
	}
	if p := sh.prompt(); p != "/ $ " {
		t.Errorf("hardened prompt %q", p)
	}
	plug := newShell(testDevice("plug"), "admin")
	if out, _ := plug.run("id; uname -m"); out != "uid=0(admin) gid=0(root) groups=0(root)\nmips\n" {
		t.Errorf("plug: %q", out)
	}
}

func TestShellOutputBounded(t *testing.T) {
	sh := newShell(testDevice("camera"), "root")
	line := strings.Repeat("cat /proc/cpuinfo;", maxLine/18)
	out, _ := sh.run(line)
	if len(out) > maxShellOutput {
		t.Errorf("output %d bytes, cap %d", len(out), maxShellOutput)
	}
	// Command substitution nesting is bounded.
	deep := strings.Repeat("$(echo ", 50) + "x" + strings.Repeat(")", 50)
	if out, _ := sh.run("echo " + deep); len(out) > 100 {
		t.Errorf("deep substitution output %q", out)
	}
}

func TestTelnetParser(t *testing.T) {
	tests := []struct {
		name      string
		in        []byte
		wantData  []byte
		wantReply []byte
	}{
		{"plain data", []byte("root\r\n"), []byte("root\r\n"), nil},
		{"escaped IAC", []byte{'a', tnIAC, tnIAC, 'b'}, []byte{'a', tnIAC, 'b'}, nil},
		{"answers to our requests need no reply",
			[]byte{tnIAC, tnWONT, optEcho, tnIAC, tnWILL, optNAWS, tnIAC, tnDO, optEcho, tnIAC, tnDO, optSGA}, nil, nil},
		{"unsolicited requests are refused once",
			[]byte{tnIAC, tnWILL, 24, tnIAC, tnDO, 5, tnIAC, tnWILL, 24, tnIAC, tnDO, 5},
			nil, []byte{tnIAC, tnDONT, 24, tnIAC, tnWONT, 5}},
		{"subnegotiation is stripped", []byte{'x', tnIAC, tnSB, optNAWS, 0, 80, 0, 24, tnIAC, tnSE, 'y'}, []byte("xy"), nil},
		{"interrupt becomes ^C", []byte{tnIAC, tnIP}, []byte{0x03}, nil},
		{"other commands are dropped", []byte{tnIAC, 241, 'z'}, []byte("z"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTelnetParser()
			data, reply := p.feed(tt.in)
			if !bytes.Equal(data, tt.wantData) || !bytes.Equal(reply, tt.wantReply) {
				t.Errorf("data %q reply %v, want %q %v", data, reply, tt.wantData, tt.wantReply)
			}
		})
	}
	// Split across reads, NAWS is still understood.
	p := newTelnetParser()
	for _, b := range []byte{tnIAC, tnSB, optNAWS, 0, 132, 0, 43, tnIAC, tnSE} {
		p.feed([]byte{b})
	}
	if p.width != 132 || p.height != 43 {
		t.Errorf("NAWS %dx%d", p.width, p.height)
	}
}

func TestDigestParams(t *testing.T) {
	got := parseDigestParams(`username="admin", realm="Cam \"1\"", nonce=abc, uri="/live.sdp", response="0123",qop=auth, nc=00000001`)
	want := map[string]string{"username": "admin", "realm": `Cam "1"`, "nonce": "abc", "uri": "/live.sdp",
		"response": "0123", "qop": "auth", "nc": "00000001"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for _, bad := range []string{`username="open`, `=x`, `novalue`, strings.Repeat("a=b,", 40)} {
		if p := parseDigestParams(bad); p != nil {
			t.Errorf("parseDigestParams(%q) = %v, want nil", bad, p)
		}
	}
}

func TestDigestVerify(t *testing.T) {
	d := newDigestAuth("realm", "admin", "12345")
	ha1 := md5hex("admin:realm:12345")
	ha2 := md5hex("DESCRIBE:rtsp://h/live.sdp")
	good := `Digest username="admin", realm="realm", nonce="` + d.nonce + `", uri="rtsp://h/live.sdp", response="` +
		md5hex(ha1+":"+d.nonce+":"+ha2) + `"`
	if !d.verify(good, "DESCRIBE") {
		t.Error("correct digest refused")
	}
	if d.verify(good, "SETUP") {
		t.Error("digest for another method accepted")
	}
	if d.verify(strings.Replace(good, `username="admin"`, `username="root"`, 1), "DESCRIBE") {
		t.Error("another user accepted")
	}
	if d.verify(strings.Replace(good, d.nonce, "00", 1), "DESCRIBE") {
		t.Error("foreign nonce accepted")
	}
}

func TestMSearchParse(t *testing.T) {
	r, ok := parseMSearch([]byte("M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nST: upnp:rootdevice\r\n\r\n"))
	if !ok || r.st != "upnp:rootdevice" {
		t.Errorf("parse: %+v %v", r, ok)
	}
	for _, bad := range []string{"NOTIFY * HTTP/1.1\r\nNT: x\r\n\r\n", "M-SEARCH * HTTP/1.1\r\nST: x\r\n\r\n", ""} {
		if _, ok := parseMSearch([]byte(bad)); ok {
			t.Errorf("accepted %q", bad)
		}
	}
}
