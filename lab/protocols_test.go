package lab

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gosnmp/gosnmp"
	"github.com/icholy/digest"
	"github.com/jlaffaye/ftp"
	coapudp "github.com/plgd-dev/go-coap/v3/udp"
	"golang.org/x/crypto/ssh"

	"github.com/iotcop/iotcop/proto"
)

// sharedLab is one default fleet (two of each template) for the protocol
// tests, started once.
var sharedLab struct {
	once sync.Once
	lab  *Lab
	err  error
}

func defaultLab(t *testing.T) *Lab {
	t.Helper()
	sharedLab.once.Do(func() {
		sharedLab.lab, sharedLab.err = Start(context.Background(), DefaultConfig(14), Options{Base: testBase(t)})
	})
	if sharedLab.err != nil {
		t.Fatalf("start default lab: %v", sharedLab.err)
	}
	return sharedLab.lab
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedLab.lab != nil {
		_ = sharedLab.lab.Close()
	}
	os.Exit(code)
}

// telnetClient is a minimal telnet dialogue driver for tests: it refuses
// every option and reads until markers appear.
type telnetClient struct {
	t    *testing.T
	conn net.Conn
	seen []byte
}

func dialTelnet(t *testing.T, addr string) *telnetClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &telnetClient{t: t, conn: c}
}

// expect reads until marker appears in the (IAC-stripped) output.
func (c *telnetClient) expect(marker string) string {
	c.t.Helper()
	buf := make([]byte, 4096)
	deadline := time.Now().Add(5 * time.Second)
	for !bytes.Contains(c.seen, []byte(marker)) {
		_ = c.conn.SetReadDeadline(deadline)
		n, err := c.conn.Read(buf)
		for i := 0; i < n; i++ {
			b := buf[i]
			if b == tnIAC && i+2 < n && buf[i+1] >= tnWILL {
				// Answer DO with WONT and WILL with DONT, except that we
				// accept the server's echo and go-ahead suppression.
				opt := buf[i+2]
				switch buf[i+1] {
				case tnDO:
					_, _ = c.conn.Write([]byte{tnIAC, tnWONT, opt})
				case tnWILL:
					if opt == optEcho || opt == optSGA {
						_, _ = c.conn.Write([]byte{tnIAC, tnDO, opt})
					} else {
						_, _ = c.conn.Write([]byte{tnIAC, tnDONT, opt})
					}
				}
				i += 2
				continue
			}
			c.seen = append(c.seen, b)
		}
		if err != nil {
			c.t.Fatalf("waiting for %q: %v; got %q", marker, err, c.seen)
		}
	}
	i := bytes.Index(c.seen, []byte(marker)) + len(marker)
	out := string(c.seen[:i])
	c.seen = c.seen[i:]
	return out
}

func (c *telnetClient) send(line string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(line + "\r\n")); err != nil {
		c.t.Fatal(err)
	}
}

// closed reports whether the server hung up.
func (c *telnetClient) closed() bool {
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	for {
		if _, err := c.conn.Read(buf); err != nil {
			return !proto.IsTimeout(err)
		}
	}
}

func TestTelnet(t *testing.T) {
	l := defaultLab(t)
	tests := []struct {
		kind       string
		port       int
		user, pass string
	}{
		{"camera", 23, "root", "xc3511"},
		{"plug", 2323, "admin", "admin"},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			t.Parallel()
			d, s := service(t, l, tt.kind, "telnet", tt.port)
			c := dialTelnet(t, hostPort(d, s))
			// The greeting negotiates like BusyBox telnetd.
			buf := make([]byte, len(telnetGreeting))
			_ = c.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
			if _, err := io.ReadFull(c.conn, buf); err != nil || !bytes.Equal(buf, telnetGreeting) {
				t.Fatalf("greeting %x, %v; want %x", buf, err, telnetGreeting)
			}
			// Refuse the option requests as a minimal client would.
			_, _ = c.conn.Write([]byte{tnIAC, tnWONT, optEcho, tnIAC, tnWONT, optNAWS, tnIAC, tnDO, optEcho, tnIAC, tnDO, optSGA})
			c.expect("login: ")
			c.send(tt.user)
			c.expect("Password: ")
			c.send(tt.pass)
			c.expect("# ")
			c.send("echo ab$((1+1))cd")
			if out := c.expect("# "); !strings.Contains(out, "\r\nab2cd\r\n") {
				t.Errorf("arithmetic echo: %q", out)
			}
			c.send("echo ab''cd")
			if out := c.expect("# "); !strings.Contains(out, "\r\nabcd\r\n") {
				t.Errorf("quote echo: %q", out)
			}
			c.send("id")
			if out := c.expect("# "); !strings.Contains(out, "uid=0("+tt.user+")") {
				t.Errorf("id: %q", out)
			}
			c.send("exit")
			if !c.closed() {
				t.Error("exit did not close the session")
			}
		})
		t.Run(tt.kind+"/wrong password", func(t *testing.T) {
			t.Parallel()
			d, s := service(t, l, tt.kind, "telnet", tt.port)
			c := dialTelnet(t, hostPort(d, s))
			for i := 0; i < telnetMaxTries; i++ {
				c.expect("login: ")
				c.send(tt.user)
				c.expect("Password: ")
				c.send(tt.pass + "x")
				if out := c.expect("Login incorrect"); strings.Contains(out, "# ") {
					t.Fatalf("shell prompt after a wrong password: %q", out)
				}
			}
			if !c.closed() {
				t.Error("not disconnected after three failures")
			}
		})
	}
	t.Run("nvr without login", func(t *testing.T) {
		t.Parallel()
		d, s := service(t, l, "nvr", "telnet", 23)
		c := dialTelnet(t, hostPort(d, s))
		if out := c.expect("# "); strings.Contains(out, "login:") {
			t.Errorf("asked for a login: %q", out)
		}
		c.send("echo $((6*7))")
		if out := c.expect("# "); !strings.Contains(out, "\r\n42\r\n") {
			t.Errorf("echo: %q", out)
		}
	})
}

func sshDial(addr, user string, auth ...ssh.AuthMethod) (*ssh.Client, ssh.PublicKey, error) {
	var key ssh.PublicKey
	cfg := &ssh.ClientConfig{
		User: user, Auth: auth, Timeout: 5 * time.Second,
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error { key = k; return nil },
	}
	c, err := ssh.Dial("tcp", addr, cfg)
	return c, key, err
}

func TestSSH(t *testing.T) {
	l := defaultLab(t)
	d, s := service(t, l, "hub", "ssh", 22)
	addr := hostPort(d, s)
	t.Run("password and exec", func(t *testing.T) {
		t.Parallel()
		c, _, err := sshDial(addr, "root", ssh.Password("admin"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if v := string(c.ServerVersion()); v != "SSH-2.0-dropbear_2019.78" {
			t.Errorf("server version %q", v)
		}
		sess, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		out, err := sess.Output("echo ab$((1+1))cd; uname -m")
		if err != nil || string(out) != "ab2cd\narmv7l\n" {
			t.Errorf("exec output %q, %v", out, err)
		}
	})
	t.Run("keyboard-interactive and shell", func(t *testing.T) {
		t.Parallel()
		ki := ssh.KeyboardInteractive(func(_, _ string, qs []string, _ []bool) ([]string, error) {
			ans := make([]string, len(qs))
			for i := range qs {
				ans[i] = "admin"
			}
			return ans, nil
		})
		c, _, err := sshDial(addr, "root", ki)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		sess, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		stdin, _ := sess.StdinPipe()
		var stdout bytes.Buffer
		sess.Stdout = &stdout
		if err := sess.Shell(); err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(stdin, "echo ab''cd\nexit\n")
		if err := sess.Wait(); err != nil {
			t.Fatal(err)
		}
		if stdout.String() != "abcd\n" {
			t.Errorf("shell output %q", stdout.String())
		}
	})
	t.Run("pty shell echoes and prompts", func(t *testing.T) {
		t.Parallel()
		c, _, err := sshDial(addr, "root", ssh.Password("admin"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		sess, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		if err := sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
			t.Fatal(err)
		}
		stdin, _ := sess.StdinPipe()
		stdout, _ := sess.StdoutPipe()
		if err := sess.Shell(); err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(stdin, "echo ab$((1+1))cd\rexit\r")
		out, _ := io.ReadAll(io.LimitReader(stdout, 1<<16))
		for _, want := range []string{"built-in shell (ash)", "/ # echo ab$((1+1))cd\r\nab2cd\r\n/ # exit"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("pty session lacks %q: %q", want, out)
			}
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		if c, _, err := sshDial(addr, "root", ssh.Password("admin1")); err == nil {
			c.Close()
			t.Fatal("wrong password accepted")
		}
	})
	t.Run("shared host key per model", func(t *testing.T) {
		t.Parallel()
		var hubKeys, hardKeys []string
		for _, dev := range l.Devices() {
			for _, svc := range dev.Services {
				if svc.Protocol != "ssh" {
					continue
				}
				_, key, _ := sshDial(hostPort(dev, svc), "nobody", ssh.Password("x"))
				if key == nil {
					t.Fatalf("%s: no host key", dev.Name)
				}
				fp := ssh.FingerprintSHA256(key)
				if dev.Kind == "hub" {
					hubKeys = append(hubKeys, fp)
				} else {
					hardKeys = append(hardKeys, fp)
				}
			}
		}
		if len(hubKeys) != 2 || hubKeys[0] != hubKeys[1] {
			t.Errorf("hubs (shared_host_key) keys %v, want two equal", hubKeys)
		}
		if len(hardKeys) != 2 || hardKeys[0] == hardKeys[1] {
			t.Errorf("hardened keys %v, want two different", hardKeys)
		}
	})
}

func TestFTP(t *testing.T) {
	l := defaultLab(t)
	d, s := service(t, l, "hub", "ftp", 21)
	t.Run("anonymous", func(t *testing.T) {
		t.Parallel()
		c, err := ftp.Dial(hostPort(d, s), ftp.DialWithTimeout(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Quit()
		if err := c.Login("anonymous", "anonymous"); err != nil {
			t.Fatal(err)
		}
		entries, err := c.List("/")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name)
		}
		if !strings.Contains(strings.Join(names, " "), "pub") {
			t.Errorf("listing %v has no pub", names)
		}
		if err := c.ChangeDir("/pub"); err != nil {
			t.Fatal(err)
		}
		r, err := c.Retr("README.txt")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r)
		r.Close()
		if !strings.Contains(string(body), "Hearthly") {
			t.Errorf("README.txt = %q", body)
		}
		if _, err := c.Retr("/etc/shadow"); err == nil {
			t.Error("RETR of a missing file succeeded")
		}
	})
	t.Run("unknown account refused", func(t *testing.T) {
		t.Parallel()
		c, err := ftp.Dial(hostPort(d, s), ftp.DialWithTimeout(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Quit()
		if err := c.Login("admin", "admin"); err == nil {
			t.Fatal("admin/admin accepted")
		}
	})
	t.Run("overlong line closes", func(t *testing.T) {
		t.Parallel()
		c, err := net.Dial("tcp", hostPort(d, s))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write(append(bytes.Repeat([]byte("A"), 10000), '\r', '\n'))
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		out, _ := io.ReadAll(c)
		if !bytes.Contains(out, []byte("500 Input line too long.")) {
			t.Errorf("got %q", out)
		}
	})
}

func httpGet(t *testing.T, client *http.Client, u string, user, pass string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, string(body)
}

func TestHTTP(t *testing.T) {
	l := defaultLab(t)
	plain := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Run("camera basic", func(t *testing.T) {
		t.Parallel()
		d, s := service(t, l, "camera", "http", 80)
		u := "http://" + hostPort(d, s) + "/"
		resp, _ := httpGet(t, plain, u, "", "")
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("no auth: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		if srv := resp.Header.Get("Server"); srv != "uc-httpd 1.0.0" {
			t.Errorf("Server %q", srv)
		}
		if resp, _ := httpGet(t, plain, u, "admin", "wrong"); resp.StatusCode != 401 {
			t.Errorf("wrong password: %d", resp.StatusCode)
		}
		if resp, body := httpGet(t, plain, u, "admin", "admin"); resp.StatusCode != 200 || !strings.Contains(body, "Live View") {
			t.Errorf("admin/admin: %d %q", resp.StatusCode, body)
		}
	})
	t.Run("router digest", func(t *testing.T) {
		t.Parallel()
		d, s := service(t, l, "router", "http", 80)
		u := "http://" + hostPort(d, s) + "/"
		resp, _ := httpGet(t, plain, u, "", "")
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Digest ") {
			t.Errorf("no auth: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		for _, tc := range []struct {
			pass string
			want int
		}{{"password", 200}, {"admin", 401}} {
			c := &http.Client{Timeout: 5 * time.Second, Transport: &digest.Transport{Username: "admin", Password: tc.pass}}
			if resp, _ := httpGet(t, c, u+"status.html", "", ""); resp.StatusCode != tc.want {
				t.Errorf("digest admin/%s: %d, want %d", tc.pass, resp.StatusCode, tc.want)
			}
		}
		// Basic is not accepted where digest is configured.
		if resp, _ := httpGet(t, plain, u, "admin", "password"); resp.StatusCode != 401 {
			t.Errorf("basic on a digest site: %d", resp.StatusCode)
		}
	})
	t.Run("router form login", func(t *testing.T) {
		t.Parallel()
		d, s := service(t, l, "router", "http", 80)
		base := "http://" + hostPort(d, s)
		if resp, body := httpGet(t, plain, base+"/login.html", "", ""); resp.StatusCode != 200 || !strings.Contains(body, `type="password"`) {
			t.Fatalf("login page: %d %q", resp.StatusCode, body)
		}
		post := func(user, pass string) (*http.Response, string) {
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Timeout: 5 * time.Second, Jar: jar}
			resp, err := c.PostForm(base+"/login.cgi", url.Values{"username": {user}, "password": {pass}})
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp, string(body)
		}
		if resp, body := post("admin", "password"); resp.StatusCode != 200 || !strings.Contains(body, "Firmware version") {
			t.Errorf("good form login: %d %q", resp.StatusCode, body)
		}
		if _, body := post("admin", "admin"); !strings.Contains(body, "Invalid username or password") || strings.Contains(body, "Firmware version") {
			t.Errorf("bad form login: %q", body)
		}
	})
	t.Run("nvr without auth", func(t *testing.T) {
		t.Parallel()
		d, s := service(t, l, "nvr", "http", 80)
		if resp, body := httpGet(t, plain, "http://"+hostPort(d, s)+"/", "", ""); resp.StatusCode != 200 || !strings.Contains(body, "User Management") {
			t.Errorf("nvr: %d %q", resp.StatusCode, body)
		}
	})
	t.Run("tr069 random digest", func(t *testing.T) {
		t.Parallel()
		d, s := service(t, l, "router", "http", 7547)
		for _, pass := range []string{"admin", "password", ""} {
			c := &http.Client{Timeout: 5 * time.Second, Transport: &digest.Transport{Username: "cwmp", Password: pass}}
			if resp, _ := httpGet(t, c, "http://"+hostPort(d, s)+"/", "", ""); resp.StatusCode != 401 {
				t.Errorf("cwmp/%q accepted: %d", pass, resp.StatusCode)
			}
		}
		c := &http.Client{Timeout: 5 * time.Second, Transport: &digest.Transport{Username: "cwmp", Password: s.Password}}
		if resp, _ := httpGet(t, c, "http://"+hostPort(d, s)+"/", "", ""); resp.StatusCode != 200 {
			t.Errorf("the device's own password: %d", resp.StatusCode)
		}
	})
	t.Run("hardened https", func(t *testing.T) {
		t.Parallel()
		d, s := service(t, l, "hardened", "https", 443)
		// TLS 1.1 is refused.
		old := &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11} //nolint:gosec // testing the server
		if c, err := tls.Dial("tcp", hostPort(d, s), old); err == nil {
			c.Close()
			t.Error("TLS 1.1 accepted")
		}
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed
		u := "https://" + hostPort(d, s) + "/"
		for _, cred := range [][2]string{{"admin", "admin"}, {"admin", "password"}, {"admin", ""}} {
			if resp, _ := httpGet(t, c, u, cred[0], cred[1]); resp.StatusCode != 401 {
				t.Errorf("%s/%s: %d", cred[0], cred[1], resp.StatusCode)
			}
		}
		if resp, _ := httpGet(t, c, u, "admin", s.Password); resp.StatusCode != 200 {
			t.Errorf("own password: %d", resp.StatusCode)
		}
	})
}

// rtspRequest sends one RTSP request and returns the status code, headers
// and body.
func rtspDo(t *testing.T, conn net.Conn, r *bufio.Reader, method, uri string, cseq int, extra ...string) (int, map[string]string, string) {
	t.Helper()
	req := fmt.Sprintf("%s %s RTSP/1.0\r\nCSeq: %d\r\nUser-Agent: test\r\n", method, uri, cseq)
	for _, h := range extra {
		req += h + "\r\n"
	}
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	status, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Fields(status)
	if len(parts) < 2 || parts[0] != "RTSP/1.0" {
		t.Fatalf("status line %q", status)
	}
	code, _ := strconv.Atoi(parts[1])
	hdr := map[string]string{}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		k, v, _ := strings.Cut(line, ":")
		hdr[strings.ToLower(k)] = strings.TrimSpace(v)
	}
	var body []byte
	if n, _ := strconv.Atoi(hdr["content-length"]); n > 0 {
		body = make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			t.Fatal(err)
		}
	}
	if hdr["cseq"] != strconv.Itoa(cseq) {
		t.Errorf("CSeq %q, want %d", hdr["cseq"], cseq)
	}
	return code, hdr, string(body)
}

func TestRTSP(t *testing.T) {
	l := defaultLab(t)
	d, s := service(t, l, "camera", "rtsp", 554)
	conn, err := net.Dial("tcp", hostPort(d, s))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	base := "rtsp://" + hostPort(d, s) + "/"
	if code, hdr, _ := rtspDo(t, conn, r, "OPTIONS", base, 1); code != 200 || !strings.Contains(hdr["public"], "DESCRIBE") {
		t.Errorf("OPTIONS: %d %v", code, hdr)
	}
	if code, _, _ := rtspDo(t, conn, r, "DESCRIBE", base+"no/such/stream", 2); code != 404 {
		t.Errorf("unknown path: %d", code)
	}
	code, hdr, _ := rtspDo(t, conn, r, "DESCRIBE", base+"live.sdp", 3)
	if code != 401 {
		t.Fatalf("no credentials: %d", code)
	}
	chal, err := digest.ParseChallenge(hdr["www-authenticate"])
	if err != nil {
		t.Fatalf("challenge %q: %v", hdr["www-authenticate"], err)
	}
	authz := func(user, pass, uri string) string {
		cred, err := digest.Digest(chal, digest.Options{Method: "DESCRIBE", URI: uri, Username: user, Password: pass, Count: 1})
		if err != nil {
			t.Fatal(err)
		}
		return "Authorization: " + cred.String()
	}
	if code, _, _ := rtspDo(t, conn, r, "DESCRIBE", base+"live.sdp", 4, authz("admin", "12345", base+"live.sdp")); code != 401 {
		t.Errorf("wrong password: %d", code)
	}
	for i, path := range []string{"live.sdp", "live/ch01_0"} {
		code, hdr, body := rtspDo(t, conn, r, "DESCRIBE", base+path, 5+i, authz("admin", "admin", base+path))
		if code != 200 || hdr["content-type"] != "application/sdp" || !strings.Contains(body, "m=video") {
			t.Errorf("DESCRIBE %s: %d %v %q", path, code, hdr, body)
		}
	}
	// A non-RTSP request is answered with 400 and the connection closed.
	_, _ = io.WriteString(conn, "GET / HTTP/1.0\r\n\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	out, _ := io.ReadAll(r)
	if !strings.HasPrefix(string(out), "RTSP/1.0 400") {
		t.Errorf("HTTP request: %q", out)
	}
}

func mqttClient(addr, user, pass string, tlsCfg *tls.Config) paho.Client {
	scheme := "tcp://"
	if tlsCfg != nil {
		scheme = "ssl://"
	}
	o := paho.NewClientOptions().AddBroker(scheme + addr).SetClientID("lab-test").
		SetConnectTimeout(5 * time.Second).SetAutoReconnect(false).SetConnectRetry(false)
	if user != "" {
		o.SetUsername(user).SetPassword(pass)
	}
	if tlsCfg != nil {
		o.SetTLSConfig(tlsCfg)
	}
	return paho.NewClient(o)
}

func TestMQTT(t *testing.T) {
	l := defaultLab(t)
	t.Run("hub anonymous", func(t *testing.T) {
		t.Parallel()
		d, s := service(t, l, "hub", "mqtt", 1883)
		c := mqttClient(hostPort(d, s), "", "", nil)
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("anonymous connect: %v", tok.Error())
		}
		defer c.Disconnect(100)
		got := make(chan [2]string, 64)
		for _, topic := range []string{"home/#", "$SYS/broker/version"} {
			tok := c.Subscribe(topic, 0, func(_ paho.Client, m paho.Message) {
				select {
				case got <- [2]string{m.Topic(), string(m.Payload())}:
				default:
				}
			})
			if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("subscribe %s: %v", topic, tok.Error())
			}
		}
		want := map[string]string{"home/livingroom/temp": "21.5", "$SYS/broker/version": "mosquitto version 1.6.9"}
		timeout := time.After(5 * time.Second)
		for len(want) > 0 {
			select {
			case m := <-got:
				if v, ok := want[m[0]]; ok {
					if v != m[1] {
						t.Errorf("%s = %q, want %q", m[0], m[1], v)
					}
					delete(want, m[0])
				}
			case <-timeout:
				t.Fatalf("retained messages not received: %v", want)
			}
		}
	})
	t.Run("hardened over TLS", func(t *testing.T) {
		t.Parallel()
		d, s := service(t, l, "hardened", "mqtts", 8883)
		tlsCfg := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // self-signed
		for _, cred := range [][2]string{{"", ""}, {"device", "device"}, {"admin", "admin"}} {
			c := mqttClient(hostPort(d, s), cred[0], cred[1], tlsCfg)
			tok := c.Connect()
			if !tok.WaitTimeout(5 * time.Second) {
				t.Fatalf("%q/%q: connect timed out", cred[0], cred[1])
			}
			if tok.Error() == nil {
				c.Disconnect(100)
				t.Errorf("%q/%q accepted", cred[0], cred[1])
			}
		}
		c := mqttClient(hostPort(d, s), "device", s.Password, tlsCfg)
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("own password refused: %v", tok.Error())
		}
		c.Disconnect(100)
		// Plain MQTT on the TLS port is not spoken.
		plain := mqttClient(hostPort(d, s), "device", s.Password, nil)
		if tok := plain.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
			plain.Disconnect(100)
			t.Error("plain MQTT accepted on the TLS port")
		}
	})
}

func TestCoAP(t *testing.T) {
	l := defaultLab(t)
	d, s := service(t, l, "plug", "coap", 5683)
	cc, err := coapudp.Dial(hostPort(d, s))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	get := func(path string) (string, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := cc.Get(ctx, path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, _ := resp.ReadBody()
		return resp.Code().String(), string(body)
	}
	if code, body := get("/.well-known/core"); code != "Content" || !strings.Contains(body, "</sensors/temp>") || !strings.Contains(body, "</switch>") {
		t.Errorf("core: %s %q", code, body)
	}
	if code, body := get("/sensors/temp"); code != "Content" || body != "22.4" {
		t.Errorf("temp: %s %q", code, body)
	}
	if code, body := get("/device/info"); code != "Content" || !strings.Contains(body, `"vendor":"Voltra"`) {
		t.Errorf("info: %s %q", code, body)
	}
	if code, _ := get("/nope"); code != "NotFound" {
		t.Errorf("missing resource: %s", code)
	}
}

func TestSNMP(t *testing.T) {
	l := defaultLab(t)
	d, s := service(t, l, "router", "snmp", 161)
	client := func(version gosnmp.SnmpVersion, community string) *gosnmp.GoSNMP {
		g := &gosnmp.GoSNMP{Target: d.Address, Port: uint16(s.Port), Community: community, Version: version,
			Timeout: 700 * time.Millisecond, Retries: 0}
		if err := g.Connect(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Conn.Close() })
		return g
	}
	for _, v := range []gosnmp.SnmpVersion{gosnmp.Version1, gosnmp.Version2c} {
		t.Run(v.String(), func(t *testing.T) {
			g := client(v, "public")
			res, err := g.Get([]string{".1.3.6.1.2.1.1.1.0", ".1.3.6.1.2.1.1.5.0"})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Variables) != 2 || !strings.Contains(string(res.Variables[0].Value.([]byte)), "Netlyn WR-840") ||
				string(res.Variables[1].Value.([]byte)) != "netlyn-router" {
				t.Errorf("get: %+v", res.Variables)
			}
			var walked []string
			walk := g.Walk
			if v == gosnmp.Version2c {
				walk = g.BulkWalk
			}
			if err := walk(".1.3.6.1.2.1.1", func(p gosnmp.SnmpPDU) error { walked = append(walked, p.Name); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(walked) != 7 || walked[0] != ".1.3.6.1.2.1.1.1.0" || walked[6] != ".1.3.6.1.2.1.1.7.0" {
				t.Errorf("walk: %v", walked)
			}
		})
	}
	t.Run("missing OID", func(t *testing.T) {
		res, err := client(gosnmp.Version2c, "public").Get([]string{".1.3.6.1.2.1.1.99.0"})
		if err != nil || len(res.Variables) != 1 || res.Variables[0].Type != gosnmp.NoSuchObject {
			t.Errorf("v2c missing OID: %+v %v", res, err)
		}
		res, err = client(gosnmp.Version1, "public").Get([]string{".1.3.6.1.2.1.1.99.0"})
		if err != nil || res.Error != gosnmp.NoSuchName {
			t.Errorf("v1 missing OID: %+v %v", res, err)
		}
	})
	t.Run("wrong community is silent", func(t *testing.T) {
		if _, err := client(gosnmp.Version2c, "private").Get([]string{".1.3.6.1.2.1.1.1.0"}); err == nil {
			t.Error("answered community private")
		}
	})
}

func TestSSDP(t *testing.T) {
	l := defaultLab(t)
	d, s := service(t, l, "router", "upnp", 1900)
	conn, err := net.Dial("udp", hostPort(d, s))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ask := func(st string) (string, error) {
		msg := "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: " + st + "\r\n\r\n"
		if _, err := conn.Write([]byte(msg)); err != nil {
			return "", err
		}
		_ = conn.SetReadDeadline(time.Now().Add(700 * time.Millisecond))
		buf := make([]byte, 2048)
		n, err := conn.Read(buf)
		return string(buf[:n]), err
	}
	if _, err := ask("urn:schemas-upnp-org:device:Nothing:1"); err == nil {
		t.Error("answered a search target it is not")
	}
	resp, err := ask("ssdp:all")
	if err != nil {
		t.Fatal(err)
	}
	var location string
	for line := range strings.SplitSeq(resp, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "LOCATION") {
			location = strings.TrimSpace(v)
		}
	}
	if !strings.HasPrefix(resp, "HTTP/1.1 200 OK") || location == "" {
		t.Fatalf("response %q", resp)
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	r, body := httpGet(t, hc, location, "", "")
	for _, want := range []string{"<manufacturer>Netlyn</manufacturer>", "<modelName>WR-840</modelName>", "<serialNumber>NE", "<manufacturerURL>"} {
		if r.StatusCode != 200 || !strings.Contains(body, want) {
			t.Errorf("description lacks %q: %d %q", want, r.StatusCode, body)
		}
	}
}

func TestADB(t *testing.T) {
	l := defaultLab(t)
	d, s := service(t, l, "tv", "adb", 5555)
	conn, err := net.Dial("tcp", hostPort(d, s))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	read := func() adbMessage {
		m, err := readADBMessage(conn)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	_, _ = conn.Write(encodeADB(adbCNXN, adbVersion, adbMaxData, []byte("host::\x00")))
	if m := read(); m.command != adbCNXN || !strings.HasPrefix(string(m.data), "device::") || !strings.Contains(string(m.data), "SB-4K") {
		t.Fatalf("CNXN reply %#x %q", m.command, m.data)
	}
	_, _ = conn.Write(encodeADB(adbOPEN, 7, 0, []byte("shell:echo ab$((1+1))cd\x00")))
	okay := read()
	if okay.command != adbOKAY || okay.arg1 != 7 {
		t.Fatalf("OPEN reply %#x %d", okay.command, okay.arg1)
	}
	var out []byte
	for {
		m := read()
		if m.command == adbCLSE {
			break
		}
		if m.command != adbWRTE {
			t.Fatalf("unexpected %#x", m.command)
		}
		out = append(out, m.data...)
		_, _ = conn.Write(encodeADB(adbOKAY, 7, okay.arg0, nil))
	}
	if string(out) != "ab2cd\n" {
		t.Errorf("shell output %q", out)
	}
	// An unknown service is refused with CLSE.
	_, _ = conn.Write(encodeADB(adbOPEN, 8, 0, []byte("jdwp:1\x00")))
	if m := read(); m.command != adbCLSE || m.arg1 != 8 {
		t.Errorf("jdwp: %#x", m.command)
	}
	// A message with a bad magic ends the connection.
	bad := encodeADB(adbOPEN, 9, 0, nil)
	bad[20] ^= 0xff
	_, _ = conn.Write(bad)
	if _, err := readADBMessage(conn); err == nil || proto.IsTimeout(err) {
		t.Errorf("after bad magic: %v, want the connection closed", err)
	}
}

// A peer that connects and says nothing, or drips an endless line, does
// not take a service down for others.
func TestHostilePeers(t *testing.T) {
	l := defaultLab(t)
	d, s := service(t, l, "camera", "telnet", 23)
	var silent []net.Conn
	for range maxConnsPerService + 5 {
		c, err := net.Dial("tcp", hostPort(d, s))
		if err != nil {
			t.Fatal(err)
		}
		silent = append(silent, c)
	}
	defer func() {
		for _, c := range silent {
			c.Close()
		}
	}()
	// The slots are full: new connections are closed at once rather than
	// piling up.
	c, err := net.Dial("tcp", hostPort(d, s))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(c)
	c.Close()
	if proto.IsTimeout(err) {
		t.Fatal("connection beyond the limit was held open")
	}
	for _, c := range silent {
		c.Close()
	}
	silent = nil
	// Once they are gone, a normal client is served again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		tc := dialTelnet(t, hostPort(d, s))
		_ = tc.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 64)
		if n, err := tc.conn.Read(buf); err == nil && n > 0 {
			break
		} else if !errors.Is(err, io.EOF) && !proto.IsTimeout(err) && !strings.Contains(fmt.Sprint(err), "reset") {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("service did not recover after the silent peers left")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
