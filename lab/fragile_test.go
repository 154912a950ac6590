package lab

import (
	"bufio"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iotcop/iotcop/proto"
	"github.com/iotcop/iotcop/robustness"
)

// TestFragileRecognisersMatchCatalogue: every name the lab recognises is a
// probe of iotcop's catalogue, its recogniser spots that probe's payload
// and no other probe of its protocol's, and ordinary traffic trips none.
func TestFragileRecognisersMatchCatalogue(t *testing.T) {
	catalogue := map[string]robustness.Probe{}
	for _, p := range robustness.Catalogue() {
		catalogue[p.Name] = p
	}
	for name, r := range fragileRecognisers {
		p, ok := catalogue[name]
		if !ok {
			t.Errorf("%s: not a probe of the robustness catalogue", name)
			continue
		}
		if p.Protocol != r.family {
			t.Errorf("%s: lab family %s, catalogue protocol %s", name, r.family, p.Protocol)
		}
		if r.match == nil {
			continue
		}
		// A service only ever gets the probes of its protocol.
		for other, q := range catalogue {
			if q.Protocol != r.family {
				continue
			}
			payload := q.Payload("127.0.0.1")
			if len(payload) > fragileInspect {
				payload = payload[:fragileInspect] // all the lab looks at
			}
			if got := r.match(payload); got != (other == name) {
				t.Errorf("recogniser %s on payload of %s = %v", name, other, got)
			}
		}
	}
	ordinary := []struct {
		what, family string
		in           []byte
	}{
		{"get", "http", []byte("GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: iotcop\r\nAuthorization: Basic YWRtaW46YWRtaW4=\r\nConnection: close\r\n\r\n")},
		{"post", "http", []byte("POST /login.cgi HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 29\r\n\r\nusername=admin&password=admin")},
		{"chunked", "http", []byte("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1a; ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n")},
		{"partial", "http", []byte("GET / HTTP/1.1\r\nHo")},
		{"http/1.0", "http", []byte("GET / HTTP/1.0\r\n\r\n")},
		{"options", "rtsp", []byte("OPTIONS rtsp://127.0.0.1:554/ RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: iotcop\r\n\r\n")},
		{"announce", "rtsp", []byte("ANNOUNCE rtsp://h/ RTSP/1.0\r\nCSeq: 2\r\nContent-Length: 120\r\n\r\n")},
		{"connect", "mqtt", []byte{0x10, 0x12, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 6, 'i', 'o', 't', 'c', 'o', 'p'}},
		{"3.1 connect", "mqtt", []byte{0x10, 0x14, 0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 3, 2, 0, 60, 0, 6, 'i', 'o', 't', 'c', 'o', 'p'}},
		{"login", "telnet", append([]byte{tnIAC, tnWILL, optNAWS, tnIAC, tnSB, optNAWS, 0, 80, 0, 24, tnIAC, tnSE}, "admin\r\n"...)},
	}
	for _, o := range ordinary {
		for name, r := range fragileRecognisers {
			if r.match != nil && r.family == o.family && r.match(o.in) {
				t.Errorf("%s %s trips %s", o.family, o.what, name)
			}
		}
	}
}

func TestFragileConfig(t *testing.T) {
	tests := []struct {
		name    string
		svc     ServiceSpec
		wantErr string
	}{
		{"ok", ServiceSpec{Protocol: "http", NoAuth: true, Fragile: []string{"http-nul-bytes"}}, ""},
		{"ok burst hang", ServiceSpec{Protocol: "ssh", NoAuth: true, Fragile: []string{"tcp-half-open-burst"}, FragileMode: "hang"}, ""},
		{"unknown probe", ServiceSpec{Protocol: "http", NoAuth: true, Fragile: []string{"http-bogus"}}, "unknown fragile input"},
		{"wrong protocol", ServiceSpec{Protocol: "telnet", NoAuth: true, Fragile: []string{"http-nul-bytes"}}, "is a http input"},
		{"tls", ServiceSpec{Protocol: "https", NoAuth: true, Fragile: []string{"http-nul-bytes"}}, "plain-text TCP"},
		{"udp", ServiceSpec{Protocol: "coap", Fragile: []string{"tcp-half-open-burst"}}, "plain-text TCP"},
		{"bad mode", ServiceSpec{Protocol: "http", NoAuth: true, Fragile: []string{"http-nul-bytes"}, FragileMode: "explode"}, "unknown fragile_mode"},
		{"mode alone", ServiceSpec{Protocol: "http", NoAuth: true, FragileMode: "hang"}, "fragile_mode without fragile"},
	}
	for _, tt := range tests {
		cfg := Config{Devices: []DeviceSpec{{Name: "d", Kind: "camera", Services: []ServiceSpec{tt.svc}}}}
		err := cfg.Validate()
		if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.wantErr)
		}
	}
	// The YAML form, with the field path in the error.
	_, err := ParseConfig([]byte("devices:\n- name: d\n  kind: camera\n  services:\n  - protocol: http\n    no_auth: true\n    fragile: [http-nope]\n"), "f.yaml")
	if err == nil || !strings.Contains(err.Error(), "f.yaml:7: devices[0].services[0].fragile[0]") {
		t.Errorf("yaml error = %v", err)
	}
}

// httpAnswers reports whether a GET on addr gets a status line.
func httpAnswers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	_, _ = io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "HTTP/")
}

// telnetAnswers reports whether addr sends a greeting.
func telnetAnswers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	b, _ := proto.ReadSome(c, 16, time.Second)
	return len(b) > 0
}

func send(t *testing.T, addr string, payload []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write(payload); err != nil && !errors.Is(err, io.EOF) {
		t.Logf("write: %v", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(c, 4096))
}

func TestFragileDevice(t *testing.T) {
	t.Parallel()
	var nul []byte
	for _, p := range robustness.Catalogue() {
		if p.Name == robustness.HTTPNULBytes {
			nul = p.Payload("x")
		}
	}
	for _, mode := range []string{FragileReboot, FragileHang} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			cfg := Config{Devices: []DeviceSpec{{Name: "fragile", Kind: "camera", Services: []ServiceSpec{
				{Protocol: "http", Port: 8080, NoAuth: true, Fragile: []string{robustness.HTTPNULBytes}, FragileMode: mode},
				{Protocol: "telnet", Port: 2323, NoAuth: true},
				{Protocol: "ssh", Port: 2222, Username: "admin", RandomPassword: true},
			}}}}
			l := startLab(t, cfg)
			d := l.Devices()[0]
			web := net.JoinHostPort(d.Address, "8080")
			tel := net.JoinHostPort(d.Address, "2323")
			if !httpAnswers(web) || !telnetAnswers(tel) {
				t.Fatal("device not answering before the input")
			}
			send(t, web, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")) // harmless
			if !httpAnswers(web) {
				t.Fatal("a harmless request broke the device")
			}
			send(t, web, nul)
			switch mode {
			case FragileHang:
				if httpAnswers(web) {
					t.Error("hung service still answers")
				}
				c, err := net.DialTimeout("tcp", web, time.Second)
				if err != nil {
					t.Errorf("hung service refuses connections (it should accept and stay silent): %v", err)
				} else {
					c.Close()
				}
				if !telnetAnswers(tel) {
					t.Error("the device's other service stopped with the hung one")
				}
			case FragileReboot:
				if httpAnswers(web) || telnetAnswers(tel) {
					t.Error("rebooting device still answers")
				}
				// It comes back with the same account; poll, never time it.
				back := false
				for range 60 {
					if httpAnswers(web) && telnetAnswers(tel) {
						back = true
						break
					}
					time.Sleep(250 * time.Millisecond)
				}
				if !back {
					t.Fatal("device did not come back after its reboot")
				}
				if got := l.Devices()[0].Services; !slices.EqualFunc(got, d.Services, func(a, b RunningService) bool {
					return a.Port == b.Port && a.Password == b.Password
				}) {
					t.Errorf("services after reboot %v, want %v", got, d.Services)
				}
				// And fails again on the same input.
				send(t, web, nul)
				if httpAnswers(web) {
					t.Error("rebooted device no longer fragile")
				}
			}
		})
	}
}

func TestFragileBurst(t *testing.T) {
	t.Parallel()
	cfg := Config{Devices: []DeviceSpec{{Name: "burst", Kind: "plug", Services: []ServiceSpec{
		{Protocol: "telnet", Port: 2323, NoAuth: true, Fragile: []string{robustness.TCPConnectionBurst}, FragileMode: FragileHang},
	}}}}
	l := startLab(t, cfg)
	addr := net.JoinHostPort(l.Devices()[0].Address, strconv.Itoa(2323))
	var conns []net.Conn
	for range fragileBurst - 2 {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// Fewer than the burst (with the check's own connection), sent nothing: still fine.
	if !telnetAnswers(addr) {
		t.Fatal("fragile service failed below the burst size")
	}
	for range 2 {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Close()
	}
	if telnetAnswers(addr) {
		t.Error("service still answers after the connection burst")
	}
}

func FuzzFragileRecognisers(f *testing.F) {
	for _, p := range robustness.Catalogue() {
		if b := p.Payload("h"); len(b) < 8<<10 {
			f.Add(b)
		}
	}
	f.Add([]byte("GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"))
	f.Add([]byte{0x10, 0x80, 0x80, 0x80, 0x01, 0, 4})
	f.Add([]byte("\n\n\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, r := range fragileRecognisers {
			if r.match != nil {
				_ = r.match(in)
			}
		}
		h := parseHead(in)
		if len(h.raw)+len(h.body) > len(in) {
			t.Fatalf("head and body larger than the input")
		}
	})
}
