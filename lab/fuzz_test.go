package lab

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
)

func FuzzTelnetParser(f *testing.F) {
	f.Add([]byte("root\r\n"))
	f.Add([]byte{tnIAC, tnWILL, optNAWS, tnIAC, tnSB, optNAWS, 0, 80, 0, 24, tnIAC, tnSE})
	f.Add([]byte{tnIAC, tnDO, 24, tnIAC, tnWILL, 1, tnIAC, tnIAC, 'x', tnIAC})
	f.Add([]byte{tnIAC, tnSB, 1, tnIAC, tnIAC, tnIAC, 7})
	f.Fuzz(func(t *testing.T, in []byte) {
		p := newTelnetParser()
		// Feeding in two halves must give what feeding at once gives.
		data, reply := p.feed(in)
		q := newTelnetParser()
		mid := len(in) / 2
		d1, r1 := q.feed(in[:mid])
		d2, r2 := q.feed(in[mid:])
		if !bytes.Equal(data, append(d1, d2...)) || !bytes.Equal(reply, append(r1, r2...)) {
			t.Fatalf("split feed differs: %q/%v vs %q%q/%v%v", data, reply, d1, d2, r1, r2)
		}
		if len(data) > len(in) || len(reply) > 2*len(in) {
			t.Fatalf("output larger than input")
		}
		if len(p.sb) > maxSubneg {
			t.Fatalf("subnegotiation buffer %d bytes", len(p.sb))
		}
		// Each option is refused at most once per direction.
		if p2, r := newTelnetParser(), []byte(nil); true {
			_, r = p2.feed(append(append([]byte{}, in...), in...))
			if len(r) > 2*256*3 {
				t.Fatalf("reply grows without bound: %d bytes", len(r))
			}
		}
	})
}

// FuzzTelnetSession drives a whole telnet login and shell over a pipe.
func FuzzTelnetSession(f *testing.F) {
	f.Add([]byte("root\r\nxc3511\r\necho ab$((1+1))cd\r\nexit\r\n"))
	f.Add([]byte("root\r\x00bad\r\nroot\nxc3511\n\x7f\x03echo 'x\r\n"))
	f.Add([]byte{tnIAC, tnDO, optEcho, 'r', 'o', 'o', 't', '\r', '\n', tnIAC, tnIP})
	dev := testDevice("camera")
	rs := resolveService(ServiceSpec{Protocol: "telnet", Username: "root", Password: "xc3511"})
	handler := telnetHandler(dev, rs)
	f.Fuzz(func(t *testing.T, in []byte) {
		server, client := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer server.Close()
			handler(t.Context(), server)
		}()
		go func() { _, _ = io.Copy(io.Discard, client) }()
		_ = client.SetWriteDeadline(time.Now().Add(2 * time.Second))
		_, _ = client.Write(in)
		client.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("handler did not end after the client closed")
		}
	})
}

func FuzzShell(f *testing.F) {
	for _, s := range []string{
		"echo ab$((1+1))cd", "echo ab''cd", `echo "$(echo $((2*(3+4))))"`, "echo `id`",
		"false || echo x && echo y; echo $?", "cat /proc/cpuinfo | grep x > /dev/null 2>&1",
		"echo $((1<<63)) $((-9223372036854775807-1)) $((5%-1))", `echo -e '\x41\0101\c'`,
		"X=1; echo ${X} $X$X", "echo $(($(($((1))))))", "cd /etc; ls -l; cd ..",
	} {
		f.Add(s)
	}
	dev := testDevice("router")
	f.Fuzz(func(t *testing.T, line string) {
		sh := newShell(dev, "root")
		out, _ := sh.run(line)
		if len(out) > maxShellOutput {
			t.Fatalf("output %d bytes", len(out))
		}
	})
}

// discardConn is a net.Conn that swallows writes, for driving the FTP
// command handler without a network.
type discardConn struct {
	net.Conn
	out bytes.Buffer
}

func (c *discardConn) Write(p []byte) (int, error) {
	if c.out.Len() < 1<<16 {
		c.out.Write(p)
	}
	return len(p), nil
}
func (c *discardConn) LocalAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 21} }
func (c *discardConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}

func FuzzFTPCommands(f *testing.F) {
	f.Add("USER anonymous\r\nPASS x\r\nCWD /pub\r\nSIZE README.txt\r\nLIST -la\r\nRETR ../../../etc/passwd\r\nQUIT\r\n")
	f.Add("user ftp\npass\nCDUP\nPWD\nTYPE I\nMDTM /backup/config.bak\nSTOR x\n")
	f.Add("PASS before user\r\n\r\n \r\nUSER\r\nFEAT\r\nOPTS utf8 on\r\n")
	dev := testDevice("hub")
	fs := newFTPFS(dev)
	rs := resolveService(ServiceSpec{Protocol: "ftp", NoAuth: true, Username: "admin", Password: "admin"})
	f.Fuzz(func(t *testing.T, script string) {
		conn := &discardConn{}
		s := &ftpSession{conn: conn, rs: rs, fs: fs, cwd: "/"}
		r := bufio.NewReader(strings.NewReader(script))
		for i := 0; i < 64; i++ {
			line, err := readBoundedLine(r, maxFTPLine)
			if err != nil {
				break
			}
			if len(line) > maxFTPLine {
				t.Fatalf("line of %d bytes", len(line))
			}
			cmd, arg := parseFTPCommand(line)
			if cmd == "PASV" || cmd == "EPSV" {
				continue // would open a real listener and wait for a peer
			}
			if s.command(cmd, arg) {
				break
			}
			if !strings.HasPrefix(s.cwd, "/") || s.fs.resolve(s.cwd, arg)[0] != '/' {
				t.Fatalf("path escaped the root: cwd %q", s.cwd)
			}
		}
		s.closePassive()
	})
}

func FuzzADBMessage(f *testing.F) {
	f.Add(encodeADB(adbCNXN, adbVersion, adbMaxData, []byte("host::\x00")))
	f.Add(encodeADB(adbOPEN, 1, 0, []byte("shell:id\x00")))
	f.Add(append(encodeADB(adbWRTE, 1, 2, []byte("x")), 0, 1, 2))
	f.Add([]byte("CNXN\x00\x00\x00\x01"))
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := readADBMessage(bytes.NewReader(in))
		if err != nil {
			return
		}
		if len(m.data) > adbMaxPayload {
			t.Fatalf("payload of %d bytes accepted", len(m.data))
		}
		again, err := readADBMessage(bytes.NewReader(encodeADB(m.command, m.arg0, m.arg1, m.data)))
		if err != nil || again.command != m.command || again.arg0 != m.arg0 || again.arg1 != m.arg1 || !bytes.Equal(again.data, m.data) {
			t.Fatalf("round trip: %+v vs %+v (%v)", m, again, err)
		}
	})
}

// FuzzADBSession drives the ADB handler with arbitrary client bytes.
func FuzzADBSession(f *testing.F) {
	f.Add(append(encodeADB(adbCNXN, adbVersion, 4096, []byte("host::\x00")), encodeADB(adbOPEN, 1, 0, []byte("shell:\x00"))...))
	f.Add(append(encodeADB(adbCNXN, adbVersion, 0, nil), encodeADB(adbWRTE, 1, 1, []byte("echo hi\n"))...))
	handler := adbHandler(testDevice("tv"))
	f.Fuzz(func(t *testing.T, in []byte) {
		server, client := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer server.Close()
			handler(t.Context(), server)
		}()
		go func() { _, _ = io.Copy(io.Discard, client) }()
		_ = client.SetWriteDeadline(time.Now().Add(2 * time.Second))
		_, _ = client.Write(in)
		client.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("handler did not end after the client closed")
		}
	})
}

func snmpSeed(f *testing.F, version gosnmp.SnmpVersion, community string, pdu gosnmp.PDUType, oids ...string) {
	p := &gosnmp.SnmpPacket{Version: version, Community: community, PDUType: pdu, RequestID: 42, MaxRepetitions: 5}
	for _, o := range oids {
		p.Variables = append(p.Variables, gosnmp.SnmpPDU{Name: o, Type: gosnmp.Null})
	}
	b, err := p.MarshalMsg()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
}

func FuzzSNMPAgent(f *testing.F) {
	snmpSeed(f, gosnmp.Version2c, "public", gosnmp.GetRequest, ".1.3.6.1.2.1.1.1.0")
	snmpSeed(f, gosnmp.Version1, "public", gosnmp.GetNextRequest, ".1.3.6.1.2.1.1")
	snmpSeed(f, gosnmp.Version2c, "public", gosnmp.GetBulkRequest, ".1.3", ".1.3.6.1.2.1.2")
	snmpSeed(f, gosnmp.Version2c, "public", gosnmp.SetRequest, ".1.3.6.1.2.1.1.5.0")
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x03})
	f.Add([]byte{0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x02, 0x01, 0x01})
	agent := newSNMPAgent(testDevice("router"), "public")
	f.Fuzz(func(t *testing.T, in []byte) {
		reply := agent.handle(in, nil)
		if reply == nil {
			return
		}
		// Whatever we answer must decode as a response with our community.
		pkt, err := decodeSNMP(reply)
		if err != nil || pkt.PDUType != gosnmp.GetResponse || pkt.Community != "public" {
			t.Fatalf("reply does not decode as a GetResponse: %v %+v", err, pkt)
		}
	})
}

func FuzzRTSPRequest(f *testing.F) {
	f.Add("DESCRIBE rtsp://h/live.sdp RTSP/1.0\r\nCSeq: 2\r\nAuthorization: Digest username=\"admin\"\r\n\r\n")
	f.Add("OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 3\r\n\r\nabc")
	f.Add("GET / HTTP/1.1\r\n\r\n")
	dev := testDevice("camera")
	rs := resolveService(ServiceSpec{Protocol: "rtsp", Auth: "digest", Username: "admin", Password: "12345"})
	digest := newDigestAuth("r", rs.Username, rs.Password)
	f.Fuzz(func(t *testing.T, in string) {
		r := bufio.NewReader(strings.NewReader(in))
		for i := 0; i < 8; i++ {
			req, err := readRTSPRequest(r)
			if err != nil {
				return
			}
			if len(req.header) > maxRTSPHeaders {
				t.Fatalf("%d headers", len(req.header))
			}
			status, _, _ := rtspRespond(dev, rs, req, func(q *rtspRequest) bool {
				return digest.verify(q.header["authorization"], q.method)
			}, digest, true, "s")
			if strings.HasPrefix(status, "200") && (req.method == "DESCRIBE" || req.method == "SETUP") {
				t.Fatalf("fuzzed request got %s for %s", status, req.method)
			}
		}
	})
}

func FuzzDigestParams(f *testing.F) {
	f.Add(`username="admin", realm="r", nonce="n", uri="/", response="x", qop=auth, nc=00000001, cnonce="c"`)
	f.Add(`a="\"", b=, c`)
	f.Add(`k="unterminated \`)
	f.Fuzz(func(t *testing.T, s string) {
		p := parseDigestParams(s)
		if len(p) > maxDigestParams {
			t.Fatalf("%d params", len(p))
		}
		d := newDigestAuth("r", "admin", "pw")
		if d.verify("Digest "+s, "GET") {
			t.Fatalf("random header verified: %q", s)
		}
	})
}

func FuzzMSearch(f *testing.F) {
	f.Add([]byte("M-SEARCH * HTTP/1.1\r\nMAN: \"ssdp:discover\"\r\nST: ssdp:all\r\n\r\n"))
	f.Add([]byte("M-SEARCH * HTTP/1.1\nST:\nMAN:ssdp:discover\n"))
	respond := ssdpResponder(testDevice("router"), 49152)
	f.Fuzz(func(t *testing.T, in []byte) {
		out := respond(in, nil)
		if out != nil && !bytes.HasPrefix(out, []byte("HTTP/1.1 200 OK\r\n")) {
			t.Fatalf("odd reply %q", out)
		}
		if len(out) > 1024 {
			t.Fatalf("reply of %d bytes to a %d-byte request", len(out), len(in))
		}
	})
}
