package robustness

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/proto"
)

// testBudget keeps tests short; nothing asserts on time.
var testBudget = Budget{ReplyWait: 300 * time.Millisecond, BurstConns: 8, BurstHold: 200 * time.Millisecond,
	LivenessTimeout: 2 * time.Second, RecoveryWait: 1500 * time.Millisecond, Settle: 10 * time.Millisecond}

func TestCatalogue(t *testing.T) {
	cat := Catalogue()
	seen := map[string]bool{}
	protocols := map[string]int{}
	max := Budget{}.WithDefaults().MaxBytes
	for _, p := range cat {
		if seen[p.Name] {
			t.Errorf("duplicate probe name %s", p.Name)
		}
		seen[p.Name] = true
		protocols[p.Protocol]++
		if !strings.HasPrefix(p.Name, p.Protocol+"-") {
			t.Errorf("%s: name does not start with its protocol %s", p.Name, p.Protocol)
		}
		if p.Description == "" {
			t.Errorf("%s: no description", p.Name)
		}
		if n := len(p.Payload("192.0.2.1")); n > max {
			t.Errorf("%s: %d bytes exceed the default budget %d", p.Name, n, max)
		}
	}
	want := map[string]int{"http": 9, "mqtt": 4, "coap": 5, "telnet": 2, "rtsp": 2, "tcp": 1}
	if diff := cmp.Diff(want, protocols); diff != "" {
		t.Errorf("probes per protocol (-want +got):\n%s", diff)
	}
}

// TestPayloads checks that each probe carries the malformation it names.
func TestPayloads(t *testing.T) {
	byName := map[string][]byte{}
	for _, p := range Catalogue() {
		byName[p.Name] = p.Payload("192.0.2.1")
	}
	longestLine := func(b []byte) int {
		m := 0
		for l := range bytes.SplitSeq(b, []byte("\r\n")) {
			m = max(m, len(l))
		}
		return m
	}
	tests := []struct {
		name string
		ok   func(b []byte) bool
	}{
		{HTTPOversizedHeader, func(b []byte) bool { return longestLine(b) >= 64<<10 && !bytes.HasPrefix(b, []byte("GET /A")) }},
		{HTTPLongURI, func(b []byte) bool { return bytes.HasPrefix(b, []byte("GET /AAAA")) && longestLine(b) >= 16<<10 }},
		{HTTPManyHeaders, func(b []byte) bool { return bytes.Count(b, []byte("\r\n")) > 1000 }},
		{HTTPNULBytes, func(b []byte) bool { return bytes.Count(b, []byte{0}) == 2 }},
		{HTTPNegativeLength, func(b []byte) bool { return bytes.Contains(b, []byte("Content-Length: -1\r\n")) }},
		{HTTPHugeLength, func(b []byte) bool { return bytes.Contains(b, []byte("Content-Length: 18446744073709551616\r\n")) }},
		{HTTPHeaderNoColon, func(b []byte) bool { return bytes.Contains(b, []byte("\r\nThisHeaderHasNoColon\r\n")) }},
		{HTTPBadChunkSize, func(b []byte) bool { return bytes.Contains(b, []byte("chunked\r\n\r\nZZZZZZZZ\r\n")) }},
		{HTTPInvalidRequestLine, func(b []byte) bool { return bytes.HasPrefix(b, []byte("GET  /index.html HTTP/11 junk\r\n")) }},
		{MQTTLengthOverflow, func(b []byte) bool { return bytes.HasPrefix(b, []byte{0x10, 0xff, 0xff, 0xff, 0xff}) }},
		{MQTTPublishBeforeConnect, func(b []byte) bool { return b[0] == 0x30 && int(b[1]) == len(b)-2 }},
		{MQTTBadProtocolName, func(b []byte) bool { return b[0] == 0x10 && string(b[4:8]) == "MQXX" && int(b[1]) == len(b)-2 }},
		{MQTTTruncatedConnect, func(b []byte) bool { return b[0] == 0x10 && int(b[1]) > len(b)-2 }},
		{CoAPBadVersion, func(b []byte) bool { return b[0]>>6 == 3 }},
		{CoAPTokenTooLong, func(b []byte) bool { return b[0]>>6 == 1 && b[0]&0x0f == 15 }},
		{CoAPTruncatedOption, func(b []byte) bool { return b[4] == 0xbd && 13+int(b[5]) > len(b)-6 }},
		{CoAPOptionDelta15, func(b []byte) bool { return b[4]>>4 == 15 && b[4] != 0xff }},
		{CoAPEmptyPayloadMarker, func(b []byte) bool { return b[len(b)-1] == 0xff }},
		{TelnetOptionFlood, func(b []byte) bool { return len(b) == 2*256*4*3 && b[0] == 255 }},
		{TelnetSBWithoutSE, func(b []byte) bool {
			return bytes.HasPrefix(b, []byte{255, 250}) && !bytes.Contains(b, []byte{255, 240})
		}},
		{RTSPBadCSeq, func(b []byte) bool { return bytes.Contains(b, []byte("CSeq: -1x")) }},
		{RTSPHugeLength, func(b []byte) bool { return bytes.Contains(b, []byte("Content-Length: 4294967296000\r\n")) }},
		{TCPConnectionBurst, func(b []byte) bool { return b == nil }},
	}
	for _, tt := range tests {
		b, ok := byName[tt.name]
		if !ok {
			t.Errorf("%s: not in the catalogue", tt.name)
			continue
		}
		if !tt.ok(b) {
			t.Errorf("%s: payload lacks its malformation: %q", tt.name, proto.Printable(b))
		}
		delete(byName, tt.name)
	}
	for name := range byName {
		t.Errorf("%s: no payload test", name)
	}
	// IPv6 hosts are bracketed in Host headers.
	var p Probe
	for _, q := range Catalogue() {
		if q.Name == HTTPHeaderNoColon {
			p = q
		}
	}
	if b := p.Payload("::1"); !bytes.Contains(b, []byte("Host: [::1]\r\n")) {
		t.Errorf("IPv6 Host header: %q", b)
	}
}

func TestAppliesTo(t *testing.T) {
	tcp := func(p string) Service { return Service{Protocol: p, Endpoint: proto.Endpoint{Transport: "tcp"}} }
	udp := func(p string) Service { return Service{Protocol: p, Endpoint: proto.Endpoint{Transport: "udp"}} }
	tests := []struct {
		svc  Service
		want []string // probe protocols that apply
	}{
		{tcp("http"), []string{"http", "tcp"}},
		{tcp("mqtt"), []string{"mqtt", "tcp"}},
		{tcp("ssh"), []string{"tcp"}},
		{udp("coap"), []string{"coap"}},
		{udp("snmp"), nil},
		{tcp("coap"), []string{"tcp"}},
	}
	for _, tt := range tests {
		var got []string
		for _, p := range Catalogue() {
			if p.appliesTo(tt.svc) && !slices.Contains(got, p.Protocol) {
				got = append(got, p.Protocol)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s/%s: probes for %v, want %v", tt.svc.Protocol, tt.svc.Endpoint.Transport, got, tt.want)
		}
	}
}

func TestRestarted(t *testing.T) {
	tests := []struct {
		name          string
		before, after sysInfo
		want          bool
	}{
		{"uptime grows", sysInfo{uptime: 100, hasUptime: true}, sysInfo{uptime: 130, hasUptime: true}, false},
		{"uptime equal (stale retained value)", sysInfo{uptime: 0, hasUptime: true}, sysInfo{uptime: 0, hasUptime: true}, false},
		{"uptime reset", sysInfo{uptime: 100, hasUptime: true}, sysInfo{uptime: 3, hasUptime: true}, true},
		{"started changed", sysInfo{started: "1700000000"}, sysInfo{started: "1700000100"}, true},
		{"started same", sysInfo{started: "1700000000", uptime: 5, hasUptime: true}, sysInfo{started: "1700000000", uptime: 9, hasUptime: true}, false},
		{"uptime missing after", sysInfo{uptime: 100, hasUptime: true}, sysInfo{}, false},
	}
	for _, tt := range tests {
		if got := restarted(tt.before, tt.after) != ""; got != tt.want {
			t.Errorf("%s: restarted = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestReadPacketAndPublish(t *testing.T) {
	pub := frame(0x31, append(appendString(nil, sysUptime), "1234 seconds"...)) // retained QoS 0
	pubQoS1 := frame(0x32, append(append(appendString(nil, sysStarted), 0, 7), "1700000000"...))
	tests := []struct {
		name      string
		in        []byte
		max       int
		wantErr   bool
		topic     string
		payload   string
		wantValue int64
	}{
		{name: "publish qos0", in: pub, max: 4096, topic: sysUptime, payload: "1234 seconds", wantValue: 1234},
		{name: "publish qos1", in: pubQoS1, max: 4096, topic: sysStarted, payload: "1700000000", wantValue: 1700000000},
		{name: "too large", in: frame(0x30, make([]byte, 300)), max: 100, wantErr: true},
		{name: "five length bytes", in: []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, max: 4096, wantErr: true},
		{name: "truncated", in: pub[:10], max: 4096, wantErr: true},
	}
	for _, tt := range tests {
		typ, flags, body, err := readPacket(bufio.NewReader(bytes.NewReader(tt.in)), tt.max)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v, want error %v", tt.name, err, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		topic, payload, ok := parsePublish(flags, body)
		if typ != 3 || !ok || topic != tt.topic || string(payload) != tt.payload {
			t.Errorf("%s: got type %d %q %q %v", tt.name, typ, topic, payload, ok)
		}
		if n, _ := leadingInt(payload); n != tt.wantValue {
			t.Errorf("%s: leadingInt = %d, want %d", tt.name, n, tt.wantValue)
		}
	}
}

// fakeHTTP answers every request with a small page and calls die when the
// request holds marker (the fake device's bug); once dead is set it drops
// every connection unanswered.
func fakeHTTP(t *testing.T, marker string, dead *atomic.Bool, die func()) *daemontest.TCPServer {
	t.Helper()
	return daemontest.ServeTCP(t, "", 0, func(c net.Conn) {
		if dead.Load() {
			return
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		buf, _ := io.ReadAll(io.LimitReader(&untilBlank{r: c}, 256<<10))
		if marker != "" && bytes.Contains(buf, []byte(marker)) {
			die()
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
}

// untilBlank reads until the end of a request head (or a pause).
type untilBlank struct {
	r    net.Conn
	seen []byte
	done bool
}

func (u *untilBlank) Read(p []byte) (int, error) {
	if u.done {
		return 0, io.EOF
	}
	_ = u.r.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	n, err := u.r.Read(p)
	u.seen = append(u.seen, p[:n]...)
	if bytes.Contains(u.seen, []byte("\r\n\r\n")) {
		u.done = true
	}
	if err != nil && n > 0 {
		err = nil
		u.done = true
	}
	return n, err
}

func TestRunFakeDevices(t *testing.T) {
	t.Parallel()
	probes := func(names ...string) []Probe {
		var out []Probe
		for _, p := range Catalogue() {
			if slices.Contains(names, p.Name) {
				out = append(out, p)
			}
		}
		return out
	}
	tests := []struct {
		name       string
		marker     string // the request content that kills the fake
		stopListen bool   // dying closes the listener (refused) rather than going silent
		probes     []Probe
		wantProbe  string
		wantRuns   int
	}{
		{name: "robust", probes: probes(HTTPHeaderNoColon, HTTPOversizedHeader, HTTPNULBytes), wantRuns: 6},
		{name: "dies on the oversized header", marker: "X-Oversized: AAAA", stopListen: true,
			probes: probes(HTTPHeaderNoColon, HTTPNULBytes, HTTPOversizedHeader, HTTPLongURI), wantProbe: HTTPOversizedHeader, wantRuns: 4},
		{name: "drops every connection after NUL bytes", marker: "X-Nul: a\x00b",
			probes: probes(HTTPHeaderNoColon, HTTPNULBytes, HTTPOversizedHeader), wantProbe: HTTPNULBytes, wantRuns: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var dead atomic.Bool
			var srv *daemontest.TCPServer
			srv = fakeHTTP(t, tt.marker, &dead, func() {
				dead.Store(true)
				if tt.stopListen {
					srv.Stop()
				}
			})
			// A second service of the same device, which never dies.
			other := fakeHTTP(t, "", new(atomic.Bool), func() {})
			services := []Service{
				{Endpoint: srv.Endpoint(2 * time.Second), Protocol: "http"},
				{Endpoint: other.Endpoint(2 * time.Second), Protocol: "http"},
			}
			r := &Runner{Budget: testBudget, Probes: tt.probes}
			out, err := r.Run(daemontest.Context(t), services)
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Runs) != tt.wantRuns {
				t.Errorf("ran %d probes, want %d: %+v", len(out.Runs), tt.wantRuns, out.Runs)
			}
			if tt.wantProbe == "" {
				if out.Failure != nil {
					t.Fatalf("robust fake reported %+v", out.Failure)
				}
				return
			}
			f := out.Failure
			if f == nil {
				t.Fatalf("no failure; runs %+v", out.Runs)
			}
			if f.Run.Probe != tt.wantProbe || f.CameBack || len(f.Stopped) != 1 || f.Stopped[0].Endpoint.Port != srv.Port {
				t.Errorf("failure = probe %s came back %v stopped %v; want %s, not back, port %d",
					f.Run.Probe, f.CameBack, f.Stopped, tt.wantProbe, srv.Port)
			}
			if f.Run.BytesSent == 0 || f.Restart != "" {
				t.Errorf("failure evidence: %+v", f)
			}
		})
	}
}

// TestRunOtherServiceStops: the probed service survives, another service of
// the device dies; the failure names the probe and the other service.
func TestRunOtherServiceStops(t *testing.T) {
	t.Parallel()
	victim := daemontest.ServeTCP(t, "", 0, func(c net.Conn) { _, _ = io.WriteString(c, "SSH-2.0-fake\r\n") })
	srv := fakeHTTP(t, "ThisHeaderHasNoColon", new(atomic.Bool), func() { victim.Stop() })
	// The fake HTTP server keeps answering: its handler only stops the victim.
	services := []Service{
		{Endpoint: srv.Endpoint(2 * time.Second), Protocol: "http"},
		{Endpoint: victim.Endpoint(2 * time.Second), Protocol: "ssh"},
	}
	var probes []Probe
	for _, p := range Catalogue() {
		if p.Protocol == "http" {
			probes = append(probes, p)
		}
	}
	r := &Runner{Budget: testBudget, Probes: probes}
	out, err := r.Run(daemontest.Context(t), services)
	if err != nil {
		t.Fatal(err)
	}
	f := out.Failure
	if f == nil {
		t.Fatalf("no failure: %+v", out.Runs)
	}
	var stopped []string
	for _, s := range f.Stopped {
		stopped = append(stopped, s.String())
	}
	want := []string{"ssh " + strconv.Itoa(victim.Port) + "/tcp"}
	if f.Run.Probe != HTTPHeaderNoColon || !slices.Equal(stopped, want) {
		t.Errorf("failure: probe %s stopped %v; want %s %v", f.Run.Probe, stopped, HTTPHeaderNoColon, want)
	}
}

// fakeBroker is an MQTT broker that answers CONNECT and SUBSCRIBE and
// publishes its uptime, which restarts from 1 after a PUBLISH arrives
// before CONNECT (the fake's bug: it reboots faster than anyone can see).
func fakeBroker(t *testing.T) *daemontest.TCPServer {
	t.Helper()
	var uptime atomic.Int64
	uptime.Store(5000)
	return daemontest.ServeTCP(t, "", 0, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(c)
		for {
			typ, _, _, err := readPacket(r, 1<<20)
			if err != nil {
				return
			}
			switch typ {
			case 1: // CONNECT
				_, _ = c.Write([]byte{0x20, 2, 0, 0})
			case 3: // PUBLISH first: "reboot"
				uptime.Store(1)
				return
			case 8: // SUBSCRIBE
				_, _ = c.Write([]byte{0x90, 4, 0, 1, 0, 0})
				up := uptime.Add(10)
				_, _ = c.Write(frame(0x31, append(appendString(nil, sysUptime), strconv.FormatInt(up, 10)+" seconds"...)))
			case 14:
				return
			}
		}
	})
}

func TestRunRestartSeenInUptime(t *testing.T) {
	t.Parallel()
	b := fakeBroker(t)
	var probes []Probe
	for _, p := range Catalogue() {
		if p.Protocol == "mqtt" {
			probes = append(probes, p)
		}
	}
	r := &Runner{Budget: testBudget, Probes: probes}
	out, err := r.Run(daemontest.Context(t), []Service{{Endpoint: b.Endpoint(2 * time.Second), Protocol: "mqtt"}})
	if err != nil {
		t.Fatal(err)
	}
	f := out.Failure
	if f == nil {
		t.Fatalf("no failure: %+v", out.Runs)
	}
	if f.Run.Probe != MQTTPublishBeforeConnect || len(f.Stopped) != 0 || !strings.Contains(f.Restart, sysUptime) {
		t.Errorf("failure: probe %s stopped %v restart %q; want %s, none, an uptime reset",
			f.Run.Probe, f.Stopped, f.Restart, MQTTPublishBeforeConnect)
	}
}

func TestRunUnwatched(t *testing.T) {
	t.Parallel()
	// A closed port, and SNMP (no liveness check without a community).
	host := daemontest.Addr()
	services := []Service{
		{Endpoint: proto.Endpoint{Host: host, Port: 9, Transport: "tcp", Timeout: time.Second}, Protocol: "unknown"},
		{Endpoint: proto.Endpoint{Host: host, Port: 161, Transport: "udp", Timeout: time.Second}, Protocol: "snmp"},
	}
	r := &Runner{Budget: testBudget}
	out, err := r.Run(daemontest.Context(t), services)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Unwatched) != 2 || len(out.Runs) != 0 || out.Failure != nil {
		t.Errorf("outcome %+v, want both unwatched and nothing sent", out)
	}
}

func TestRunCancelled(t *testing.T) {
	t.Parallel()
	srv := fakeHTTP(t, "", new(atomic.Bool), func() {})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := &Runner{Budget: testBudget}
	if _, err := r.Run(ctx, []Service{{Endpoint: srv.Endpoint(time.Second), Protocol: "http"}}); err == nil {
		t.Error("cancelled run returned no error")
	}
}

// TestRunDelayedFailure: the fake survives its liveness check after the
// bad input and dies just after; the next probe cannot connect. The
// failure names the input that caused it and the probe that noticed.
func TestRunDelayedFailure(t *testing.T) {
	t.Parallel()
	var armed, dead atomic.Bool
	var srv *daemontest.TCPServer
	srv = daemontest.ServeTCP(t, "", 0, func(c net.Conn) {
		if dead.Load() {
			return
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		buf, _ := io.ReadAll(io.LimitReader(&untilBlank{r: c}, 256<<10))
		if bytes.Contains(buf, []byte("Content-Length: -1")) {
			armed.Store(true) // dies after answering the next request
		} else if armed.Load() {
			dead.Store(true)
			defer srv.Stop()
		}
		_, _ = io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	var probes []Probe
	for _, p := range Catalogue() {
		if p.Name == HTTPHeaderNoColon || p.Name == HTTPNegativeLength || p.Name == HTTPHugeLength {
			probes = append(probes, p)
		}
	}
	r := &Runner{Budget: testBudget, Probes: probes}
	out, err := r.Run(daemontest.Context(t), []Service{{Endpoint: srv.Endpoint(2 * time.Second), Protocol: "http"}})
	if err != nil {
		t.Fatal(err)
	}
	f := out.Failure
	if f == nil {
		t.Fatalf("no failure: %+v", out.Runs)
	}
	if f.Run.Probe != HTTPNegativeLength || f.NoticedBy != HTTPHugeLength || f.Previous != HTTPHeaderNoColon || f.Run.BytesSent == 0 {
		t.Errorf("failure names %s noticed by %q (%d bytes); want %s noticed by %s",
			f.Run.Probe, f.NoticedBy, f.Run.BytesSent, HTTPNegativeLength, HTTPHugeLength)
	}
}
