package ftp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/proto"
)

// Compile-time checks that Protocol implements the proto interfaces.
var (
	_ proto.Identifier       = (*Protocol)(nil)
	_ proto.Authenticator    = (*Protocol)(nil)
	_ proto.OpenAccessProber = (*Protocol)(nil)
)

func TestParseReply(t *testing.T) {
	tests := []struct {
		in       string
		ok       bool
		code     int
		text     string
		complete bool
	}{
		{"220 (vsFTPd 3.0.3)\r\n", true, 220, "(vsFTPd 3.0.3)", true},
		{"220 (vsFTPd 3.0.3)", true, 220, "(vsFTPd 3.0.3)", false},
		{"220-Welcome\r\n220-to the box\r\n220 ready\r\n", true, 220, "Welcome to the box ready", true},
		{"220-Welcome\r\n second line\r\n220 ready\r\n", true, 220, "Welcome second line ready", true},
		{"220-Welcome\r\n220-more", true, 220, "Welcome more", false},
		{"220\r\n", true, 220, "", true},
		{"SSH-2.0-dropbear\r\n", false, 0, "", false},
		{"22 short\r\n", false, 0, "", false},
		{"920 bad class\r\n", false, 0, "", false},
		{"220x\r\n", false, 0, "", false},
		{"", false, 0, "", false},
	}
	for _, tt := range tests {
		r, ok := ParseReply([]byte(tt.in))
		if ok != tt.ok || r.Code != tt.code || r.Text() != tt.text || r.Complete != tt.complete {
			t.Errorf("ParseReply(%q) = %+v (text %q), %v; want code %d text %q complete %v ok %v",
				tt.in, r, r.Text(), ok, tt.code, tt.text, tt.complete, tt.ok)
		}
	}
}

func TestProductFromGreeting(t *testing.T) {
	tests := []struct{ in, product, version, vendor string }{
		{"(vsFTPd 3.0.3)", "vsFTPd", "3.0.3", ""},
		{"ProFTPD 1.3.5e Server (Debian) [::ffff:10.0.0.1]", "ProFTPD", "1.3.5e", ""},
		{"ProFTPD Server (ProFTPD Default Installation) [10.0.0.1]", "ProFTPD", "", ""},
		{"---------- Welcome to Pure-FTPd [privsep] [TLS] ----------", "Pure-FTPd", "", ""},
		{"FileZilla Server 1.5.1", "FileZilla Server", "1.5.1", ""},
		{"FileZilla Server version 0.9.60 beta", "FileZilla Server", "0.9.60", ""},
		{"Microsoft FTP Service", "Microsoft FTP Service", "", ""},
		{"bftpd 5.7 at 10.0.0.1 ready.", "bftpd", "5.7", ""},
		{"uftpd (2.10) ready.", "uftpd", "2.10", ""},
		{"router FTP server (GNU inetutils 1.9.4) ready.", "GNU inetutils ftpd", "1.9.4", ""},
		{"MikroTik FTP server (MikroTik 6.48.6) ready", "MikroTik FTP", "6.48.6", "mikrotik"},
		{"TP-LINK FTP version 1.0 ready at Mon", "TP-LINK FTP", "1.0", "tp-link"},
		{"Operation successful", "BusyBox ftpd", "", ""},
		{"Welcome to the NETGEAR ReadyNAS", "", "", "netgear"},
		{"DiskStation FTP server ready.", "", "", "synology"},
		{"FRITZ!Box7590 FTP server ready.", "", "", "avm"},
		{"Hello from AZTEC", "", "", ""},
	}
	for _, tt := range tests {
		p, v, vendor := productFromGreeting(tt.in)
		if p != tt.product || v != tt.version || vendor != tt.vendor {
			t.Errorf("productFromGreeting(%q) = %q %q %q; want %q %q %q", tt.in, p, v, vendor, tt.product, tt.version, tt.vendor)
		}
	}
}

// fakeFTP is an in-process FTP server for behaviours no real daemon shows:
// SMTP look-alikes, servers that let anyone in, that never list, that
// flood replies.
type fakeFTP struct {
	greeting string
	// reply answers one command line; "" means the default behaviour.
	reply func(cmd, arg string) string
	// listing is sent on the data connection for LIST/NLST; "" refuses
	// the listing with 550.
	listing string
	// afterPass is written after PASS instead of a reply when set
	// (hostile behaviours).
	afterPass func(c net.Conn)
}

func (f *fakeFTP) start(t *testing.T) proto.Endpoint {
	t.Helper()
	return daemontest.ServeTCP(t, "", 0, func(c net.Conn) {
		f.serve(c, c.LocalAddr().(*net.TCPAddr).IP.String())
	}).Endpoint(time.Second)
}

func (f *fakeFTP) serve(c net.Conn, host string) {
	if _, err := c.Write([]byte(f.greeting)); err != nil {
		return
	}
	r := bufio.NewReader(c)
	var data net.Listener
	defer func() {
		if data != nil {
			data.Close()
		}
	}()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
		cmd = strings.ToUpper(cmd)
		if f.reply != nil {
			if out := f.reply(cmd, arg); out != "" {
				if _, err := c.Write([]byte(out)); err != nil {
					return
				}
				continue
			}
		}
		var out string
		switch cmd {
		case "USER":
			out = "331 Please specify the password.\r\n"
		case "PASS":
			if f.afterPass != nil {
				f.afterPass(c)
				return
			}
			out = "230 Login successful.\r\n"
		case "FEAT":
			out = "211-Features:\r\n EPSV\r\n PASV\r\n211 End\r\n"
		case "TYPE":
			out = "200 Switching to Binary mode.\r\n"
		case "SYST":
			out = "215 UNIX Type: L8\r\n"
		case "EPSV":
			if data != nil {
				data.Close()
			}
			data, err = net.Listen("tcp", net.JoinHostPort(host, "0"))
			if err != nil {
				return
			}
			out = fmt.Sprintf("229 Entering Extended Passive Mode (|||%d|)\r\n", data.Addr().(*net.TCPAddr).Port)
		case "LIST", "NLST", "MLSD":
			if f.listing == "" || data == nil {
				out = "550 Permission denied.\r\n"
				break
			}
			_, _ = c.Write([]byte("150 Here comes the directory listing.\r\n"))
			dc, err := data.Accept()
			if err != nil {
				return
			}
			_ = dc.SetDeadline(time.Now().Add(time.Second))
			_, _ = dc.Write([]byte(f.listing))
			dc.Close()
			out = "226 Directory send OK.\r\n"
		case "QUIT":
			_, _ = c.Write([]byte("221 Goodbye.\r\n"))
			return
		default:
			out = "500 Unknown command.\r\n"
		}
		if _, err := c.Write([]byte(out)); err != nil {
			return
		}
	}
}

func TestIdentifyFakes(t *testing.T) {
	t.Parallel()
	smtpSYST := func(cmd, _ string) string { return "502 5.5.2 Error: command not recognized\r\n" }
	tests := []struct {
		name    string
		f       *fakeFTP
		want    bool
		product string
	}{
		{name: "postfix", f: &fakeFTP{greeting: "220 mail.example.com ESMTP Postfix (Debian/GNU)\r\n"}},
		{name: "exim", f: &fakeFTP{greeting: "220 mx.example.org ESMTP Exim 4.96 Mon, 1 Jan 2026\r\n"}},
		{name: "smtp without markers, SYST tells", f: &fakeFTP{greeting: "220 mx ready\r\n", reply: smtpSYST}},
		{name: "ssh", f: &fakeFTP{greeting: "SSH-2.0-dropbear_2022.83\r\n"}},
		{name: "endless greeting line", f: &fakeFTP{greeting: "220 " + strings.Repeat("A", 5000)}},
		{name: "busybox ftpd", f: &fakeFTP{greeting: "220 Operation successful\r\n"}, want: true, product: "BusyBox ftpd"},
		{name: "multi-line greeting", f: &fakeFTP{greeting: "220-Welcome to ProFTPD 1.3.8 Server\r\n220-" + strings.Repeat("x", 600) + "\r\n220 ready\r\n"}, want: true, product: "ProFTPD"},
		{name: "ftp mentioning mail", f: &fakeFTP{greeting: "220 mail archive FTP server ready\r\n"}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ep := tt.f.start(t)
			id, err := identifyConn(t, ep)
			if !tt.want {
				if !errors.Is(err, proto.ErrNotThisProtocol) {
					t.Fatalf("Identify = %+v, %v; want ErrNotThisProtocol", id, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Identify: %v", err)
			}
			if id.Protocol != "ftp" || id.Product != tt.product {
				t.Errorf("identity = %+v, want ftp %q", id, tt.product)
			}
			if id.Info["syst"] != "UNIX Type: L8" {
				t.Errorf("Info[syst] = %q, want the SYST answer", id.Info["syst"])
			}
		})
	}
}

func TestIdentifyNeedsBanner(t *testing.T) {
	_, err := New().Identify(context.Background(), nil, nil, proto.Endpoint{Host: "127.0.0.1", Port: 21})
	if !errors.Is(err, proto.ErrNotThisProtocol) {
		t.Fatalf("err = %v", err)
	}
}

func TestLoginNeverClaimsWithoutProof(t *testing.T) {
	t.Parallel()
	flood := func(c net.Conn) {
		line := []byte("230-" + strings.Repeat("w", 200) + "\r\n")
		for {
			if _, err := c.Write(line); err != nil {
				return
			}
		}
	}
	tests := []struct {
		name string
		f    *fakeFTP
	}{
		{"230 but never lists", &fakeFTP{greeting: "220 ok\r\n"}},
		{"floods after PASS", &fakeFTP{greeting: "220 ok\r\n", afterPass: flood}},
		{"silent after PASS", &fakeFTP{greeting: "220 ok\r\n", afterPass: func(c net.Conn) { _, _ = io.Copy(io.Discard, c) }}},
		{"hangs up after PASS", &fakeFTP{greeting: "220 ok\r\n", afterPass: func(net.Conn) {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ep := tt.f.start(t)
			ep.Timeout = 500 * time.Millisecond
			ctx := daemontest.Context(t)
			sess, err := New().Open(ctx, ep, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			for _, c := range []proto.Credential{{Username: "admin", Password: "admin"}, {Username: "root", Password: "root"}} {
				res, _ := sess.Try(ctx, c)
				if res.Outcome == proto.Accepted {
					t.Errorf("Try(%v) = %+v, want no acceptance", c, res)
				}
			}
		})
	}
}

// A server that lets anyone in is reported as it behaves: the caller's
// random-pair calibration turns that into "accepts any credential".
func TestLoginAnyCredential(t *testing.T) {
	t.Parallel()
	ep := (&fakeFTP{greeting: "220 ok\r\n", listing: "a\r\nb\r\n"}).start(t)
	ctx := daemontest.Context(t)
	sess, err := New().Open(ctx, ep, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	res, err := sess.Try(ctx, proto.Credential{Username: "iotcop" + randomHex(3), Password: randomHex(8)})
	if err != nil || res.Outcome != proto.Accepted {
		t.Errorf("random pair = %+v, %v; want accepted as the server behaves", res, err)
	}
	// Anonymous-style users are never a default credential.
	res, err = sess.Try(ctx, proto.Credential{Username: "ftp", Password: "ftp"})
	if err != nil || res.Outcome != proto.Unknown {
		t.Errorf("ftp:ftp = %+v, %v; want unknown", res, err)
	}
}

func TestLoginOutcomes(t *testing.T) {
	t.Parallel()
	// A server with one account whose refusals vary by user.
	f := &fakeFTP{greeting: "220 device ftpd\r\n", listing: "-rw-r--r-- 1 0 0 5 Jan 01 00:00 cfg.bin\r\n"}
	var mu sync.Mutex
	var user string
	f.reply = func(cmd, arg string) string {
		mu.Lock()
		defer mu.Unlock()
		switch cmd {
		case "USER":
			user = arg
			if arg == "locked" {
				return "421 Too many failed logins, try again later.\r\n"
			}
			if arg == "odd" {
				return "332 Need account for login.\r\n"
			}
			return "331 Password required.\r\n"
		case "PASS":
			if user == "admin" && arg == "admin" {
				return "230 Logged in.\r\n"
			}
			return "530 Login incorrect.\r\n"
		}
		return ""
	}
	ep := f.start(t)
	ctx := daemontest.Context(t)
	sess, err := New().Open(ctx, ep, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	tests := []struct {
		cred proto.Credential
		want proto.Outcome
	}{
		{proto.Credential{Username: "admin", Password: "1234"}, proto.Rejected},
		{proto.Credential{Username: "admin", Password: "admin"}, proto.Accepted},
		{proto.Credential{Username: "locked", Password: "x"}, proto.LockedOut},
		{proto.Credential{Username: "odd", Password: "x"}, proto.Unknown},
		{proto.Credential{Username: "root", Password: "admin"}, proto.Rejected},
	}
	for _, tt := range tests {
		res, err := sess.Try(ctx, tt.cred)
		if err != nil {
			t.Fatalf("Try(%v): %v", tt.cred, err)
		}
		if res.Outcome != tt.want {
			t.Errorf("Try(%v) = %+v, want %v", tt.cred, res, tt.want)
		}
		if res.Outcome == proto.Accepted && (!strings.Contains(res.Detail, "cfg.bin") || res.Proof != "230 and a directory listing (1 entries)") {
			t.Errorf("accepted without the listing as evidence: %+v", res)
		}
	}
}

func TestClassifyRefusal(t *testing.T) {
	tests := []struct {
		code int
		text string
		want proto.Outcome
	}{
		{530, "Login incorrect.", proto.Rejected},
		{530, "This FTP server is anonymous only.", proto.Rejected},
		{430, "Invalid username or password", proto.Rejected},
		{421, "Too many connections from your IP", proto.LockedOut},
		{530, "Account locked", proto.LockedOut},
		{421, "Timeout.", proto.Unknown},
		{500, "OOPS: cannot change directory", proto.Unknown},
	}
	for _, tt := range tests {
		if got := classifyRefusal(tt.code, tt.text); got.Outcome != tt.want {
			t.Errorf("classifyRefusal(%d, %q) = %v, want %v", tt.code, tt.text, got.Outcome, tt.want)
		}
	}
}

func FuzzParseReply(f *testing.F) {
	f.Add([]byte("220 (vsFTPd 3.0.3)\r\n"))
	f.Add([]byte("220-Welcome\r\n second\r\n220 ready\r\n"))
	f.Add([]byte("220-a\n220-b\n"))
	f.Add([]byte("421 Too many connections\r\n"))
	f.Add([]byte("\x00\xff220 x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, ok := ParseReply(b)
		if !ok {
			return
		}
		if r.Code < 100 || r.Code > 599 || len(r.Lines) == 0 || len(r.Lines) > 65 {
			t.Fatalf("bad reply %+v", r)
		}
		productFromGreeting(r.Text())
	})
}
