package rtsp

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
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

func identify(t *testing.T, ep proto.Endpoint) (*proto.Identity, error) {
	t.Helper()
	ctx := daemontest.Context(t)
	conn, err := ep.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return New().Identify(ctx, conn, nil, ep)
}

func TestIdentify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		cam         *fakeCamera
		wantProduct string
		wantVersion string
		wantVendor  string
		wantInfo    map[string]string
	}{
		{
			name:        "live555",
			cam:         &fakeCamera{server: "LIVE555 Streaming Media v2020.08.19", scheme: "digest"},
			wantProduct: "LIVE555 Streaming Media", wantVersion: "2020.08.19",
			wantInfo: map[string]string{"server": "LIVE555 Streaming Media v2020.08.19", "status": "200",
				"public": "OPTIONS, DESCRIBE, SETUP, TEARDOWN, PLAY, PAUSE"},
		},
		{
			name:        "slash version",
			cam:         &fakeCamera{server: "GStreamer/1.22.0", scheme: "basic"},
			wantProduct: "GStreamer", wantVersion: "1.22.0",
			wantInfo: map[string]string{"server": "GStreamer/1.22.0", "status": "200"},
		},
		{
			name:        "options needs digest, vendor in realm",
			cam:         &fakeCamera{server: "Rtsp Server/3.0", scheme: "digest", realm: "Hikvision Camera", optionsAuth: true},
			wantProduct: "Rtsp Server", wantVersion: "3.0",
			wantVendor: "hikvision",
			wantInfo:   map[string]string{"status": "401", "auth_scheme": "digest", "realm": "Hikvision Camera"},
		},
		{
			name:     "no server header",
			cam:      &fakeCamera{scheme: "basic", optionsAuth: true, realm: "cam"},
			wantInfo: map[string]string{"status": "401", "auth_scheme": "basic", "realm": "cam"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ep := tt.cam.start(t)
			id, err := identify(t, ep)
			if err != nil {
				t.Fatalf("Identify: %v", err)
			}
			if id.Protocol != "rtsp" {
				t.Errorf("Protocol = %q, want rtsp", id.Protocol)
			}
			if id.Product != tt.wantProduct || id.Version != tt.wantVersion {
				t.Errorf("Product, Version = %q, %q; want %q, %q", id.Product, id.Version, tt.wantProduct, tt.wantVersion)
			}
			if id.Vendor != tt.wantVendor {
				t.Errorf("Vendor = %q, want %q", id.Vendor, tt.wantVendor)
			}
			for k, v := range tt.wantInfo {
				if id.Info[k] != v {
					t.Errorf("Info[%q] = %q, want %q", k, id.Info[k], v)
				}
			}
			if !strings.HasPrefix(id.Banner, "RTSP/1.0 ") {
				t.Errorf("Banner = %q, want the status line", id.Banner)
			}
		})
	}
}

func TestParseServer(t *testing.T) {
	tests := []struct{ in, product, version string }{
		{"GStreamer/1.22.0", "GStreamer", "1.22.0"},
		{"LIVE555 Streaming Media v2013.04.08", "LIVE555 Streaming Media", "2013.04.08"},
		{"Ubnt Streaming Server v1.2", "Ubnt Streaming Server", "1.2"},
		{"Wowza Streaming Engine 4.8.0 build20200915", "Wowza Streaming Engine", "4.8.0"},
		{"H264DVR 1.0", "H264DVR", "1.0"},
		{"Rtsp Server/3.0", "Rtsp Server", "3.0"},
		{"Foo/bar", "Foo/bar", ""},
		{"", "", ""},
		{"GStreamer RTSP server", "GStreamer RTSP server", ""},
	}
	for _, tt := range tests {
		p, v := parseServer(tt.in)
		if p != tt.product || v != tt.version {
			t.Errorf("parseServer(%q) = %q, %q; want %q, %q", tt.in, p, v, tt.product, tt.version)
		}
	}
}

func TestIdentifyRejectsOthers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		handler func(net.Conn)
	}{
		{"http server", readAndThen(httpServer)},
		{"garbage", readAndThen(garbage)},
		{"silent", silent},
		{"endless headers", readAndThen(endlessHeaders)},
		{"endless line", readAndThen(endlessLine)},
		{"huge content-length", readAndThen(hugeContentLength)},
		{"slow drip", readAndThen(slowDrip)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ep := serve(t, tt.handler)
			ep.Timeout = 500 * time.Millisecond
			id, err := identify(t, ep)
			if !errors.Is(err, proto.ErrNotThisProtocol) {
				t.Fatalf("Identify = %+v, %v; want ErrNotThisProtocol", id, err)
			}
		})
	}
}

func TestIdentifyRejectsBanner(t *testing.T) {
	ep := proto.Endpoint{Host: "127.0.0.1", Port: 1}
	_, err := New().Identify(context.Background(), nil, []byte("220 ftp ready\r\n"), ep)
	if !errors.Is(err, proto.ErrNotThisProtocol) {
		t.Fatalf("err = %v, want ErrNotThisProtocol", err)
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	good := proto.Credential{Username: "admin", Password: "12345"}
	wrong := []proto.Credential{{Username: "admin", Password: "admin"}, {Username: "root", Password: "12345"}, {Username: "", Password: ""}}
	tests := []struct {
		name      string
		cam       *fakeCamera
		wantProof string
	}{
		{"digest", &fakeCamera{scheme: "digest", streams: map[string]bool{"live.sdp": true}}, "/live.sdp"},
		{"basic", &fakeCamera{scheme: "basic", streams: map[string]bool{"Streaming/Channels/101": true}}, "/Streaming/Channels/101"},
		{"both offered", &fakeCamera{scheme: "both", streams: map[string]bool{"11": true}}, "/11"},
		{"digest, hang up after 401", &fakeCamera{scheme: "digest", closeAfter401: true, streams: map[string]bool{"": true}}, "/ "},
		{"auth before path lookup", &fakeCamera{scheme: "digest", authFirst: true, streams: map[string]bool{"stream1": true}}, "/stream1"},
		{"open and protected paths", &fakeCamera{scheme: "basic", streams: map[string]bool{"live.sdp": false, "h264": true}}, "/h264"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.cam.user, tt.cam.pass = good.Username, good.Password
			ep := tt.cam.start(t)
			ctx := daemontest.Context(t)
			sess, err := New().Open(ctx, ep, &proto.Identity{Protocol: "rtsp"})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer sess.Close()
			for _, c := range wrong {
				res, err := sess.Try(ctx, c)
				if err != nil {
					t.Fatalf("Try(%v): %v", c, err)
				}
				if res.Outcome != proto.Rejected {
					t.Errorf("Try(%v) = %+v, want rejected", c, res)
				}
			}
			res, err := sess.Try(ctx, good)
			if err != nil {
				t.Fatalf("Try(good): %v", err)
			}
			if res.Outcome != proto.Accepted {
				t.Fatalf("Try(good) = %+v, want accepted", res)
			}
			want := strings.TrimSpace(tt.wantProof)
			if !strings.Contains(res.Proof, "DESCRIBE 200 with SDP on "+want+" ") {
				t.Errorf("Proof = %q, want it to name %q", res.Proof, want)
			}
			// A wrong password after the good one is still rejected.
			res, err = sess.Try(ctx, wrong[0])
			if err != nil || res.Outcome != proto.Rejected {
				t.Errorf("Try(wrong after good) = %+v, %v; want rejected", res, err)
			}
		})
	}
}

func TestLoginLockout(t *testing.T) {
	t.Parallel()
	cam := &fakeCamera{scheme: "basic", user: "admin", pass: "secret", lockAfter: 3, streams: map[string]bool{"live.sdp": true}}
	ep := cam.start(t)
	ctx := daemontest.Context(t)
	sess, err := New().Open(ctx, ep, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var outcomes []proto.Outcome
	for _, pw := range []string{"a", "b", "c", "secret"} {
		res, err := sess.Try(ctx, proto.Credential{Username: "admin", Password: pw})
		if err != nil {
			t.Fatal(err)
		}
		outcomes = append(outcomes, res.Outcome)
	}
	want := []proto.Outcome{proto.Rejected, proto.Rejected, proto.Rejected, proto.LockedOut}
	for i := range want {
		if outcomes[i] != want[i] {
			t.Fatalf("outcomes = %v, want %v", outcomes, want)
		}
	}
}

func TestLoginNeverClaimsWithoutProof(t *testing.T) {
	t.Parallel()
	creds := []proto.Credential{{Username: "admin", Password: "admin"}, {Username: "admin", Password: "12345"}}
	tests := []struct {
		name     string
		handler  func(net.Conn)
		cam      *fakeCamera
		openErr  bool
		noProtec bool
	}{
		{name: "all streams open", cam: &fakeCamera{scheme: "basic", streams: map[string]bool{"live.sdp": false}}, openErr: true, noProtec: true},
		{name: "200 without SDP", handler: readAndThen(okWithoutSDP), openErr: true, noProtec: true},
		{name: "garbage", handler: readAndThen(garbage), openErr: true},
		{name: "endless headers", handler: readAndThen(endlessHeaders), openErr: true},
		{name: "huge content-length", handler: readAndThen(hugeContentLength), openErr: true},
		{name: "silent", handler: silent, openErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var ep proto.Endpoint
			if tt.cam != nil {
				ep = tt.cam.start(t)
			} else {
				ep = serve(t, tt.handler)
			}
			ep.Timeout = 500 * time.Millisecond
			ctx := daemontest.Context(t)
			sess, err := New().Open(ctx, ep, nil)
			if tt.openErr {
				if err == nil {
					sess.Close()
					t.Fatal("Open succeeded, want an error")
				}
				if tt.noProtec && !errors.Is(err, ErrNoProtectedStream) {
					t.Errorf("Open err = %v, want ErrNoProtectedStream", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer sess.Close()
			for _, c := range creds {
				res, _ := sess.Try(ctx, c)
				if res.Outcome == proto.Accepted {
					t.Errorf("Try(%v) = %+v, want no acceptance", c, res)
				}
			}
		})
	}
}

// A server that plays for any credential is reported as it behaves: the
// caller's random-pair calibration (check.DefaultCredentials) sees the
// random pair accepted and reports "accepts any credential" instead of a
// default password.
func TestLoginAnyCredential(t *testing.T) {
	t.Parallel()
	cam := &fakeCamera{scheme: "digest", acceptAnyAuth: true, user: "x", pass: "y", streams: map[string]bool{"live.sdp": true}}
	ep := cam.start(t)
	ctx := daemontest.Context(t)
	sess, err := New().Open(ctx, ep, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	res, err := sess.Try(ctx, proto.Credential{Username: "iotcop" + testToken(), Password: testToken()})
	if err != nil || res.Outcome != proto.Accepted {
		t.Errorf("random pair = %+v, %v; want accepted as the server behaves", res, err)
	}
}

// A camera that authenticates before looking the path up answers 404 to a
// good credential on a wrong path; only after a refusal was seen does that
// 404 count as "past authentication" and start a search.
func TestLoginAuthFirstNeedsRefusalFirst(t *testing.T) {
	t.Parallel()
	cam := &fakeCamera{scheme: "basic", authFirst: true, user: "admin", pass: "1234", streams: map[string]bool{"h264": true}}
	ep := cam.start(t)
	ctx := daemontest.Context(t)
	sess, err := New().Open(ctx, ep, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	good := proto.Credential{Username: "admin", Password: "1234"}
	res, err := sess.Try(ctx, good)
	if err != nil || res.Outcome != proto.Unknown {
		t.Fatalf("first Try = %+v, %v; want unknown (404 without a refusal to compare)", res, err)
	}
	if res, _ := sess.Try(ctx, proto.Credential{Username: "admin", Password: "x"}); res.Outcome != proto.Rejected {
		t.Fatalf("wrong = %+v", res)
	}
	res, err = sess.Try(ctx, good)
	if err != nil || res.Outcome != proto.Accepted || !strings.Contains(res.Proof, "on /h264 ") {
		t.Fatalf("good after a refusal = %+v, %v; want accepted on /h264", res, err)
	}
}

func TestProbeOpenAccess(t *testing.T) {
	t.Parallel()
	ext := DefaultPaths()[30]
	tests := []struct {
		name     string
		cam      *fakeCamera
		handler  func(net.Conn)
		maxPaths int
		wantPath string // "" for no open access
	}{
		{name: "open root", cam: &fakeCamera{streams: map[string]bool{"": false}}, wantPath: "/"},
		{name: "open live.sdp among protected", cam: &fakeCamera{scheme: "digest", streams: map[string]bool{"Streaming/Channels/101": true, "live.sdp": false}}, wantPath: "/live.sdp"},
		{name: "all protected", cam: &fakeCamera{scheme: "digest", streams: map[string]bool{"live.sdp": true, "": true}}},
		{name: "auth before lookup", cam: &fakeCamera{scheme: "basic", authFirst: true, streams: map[string]bool{"live.sdp": true}}},
		{name: "beyond the path budget", cam: &fakeCamera{streams: map[string]bool{ext: false}}},
		{name: "within a raised budget", cam: &fakeCamera{streams: map[string]bool{ext: false}}, maxPaths: 40, wantPath: "/" + ext},
		{name: "200 without SDP", handler: readAndThen(okWithoutSDP)},
		{name: "huge content-length", handler: readAndThen(hugeContentLength)},
		{name: "garbage", handler: readAndThen(garbage)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var ep proto.Endpoint
			if tt.cam != nil {
				ep = tt.cam.start(t)
			} else {
				ep = serve(t, tt.handler)
			}
			ep.Timeout = 500 * time.Millisecond
			p := New()
			if tt.maxPaths > 0 {
				p.MaxPaths = tt.maxPaths
			}
			oa, err := p.ProbeOpenAccess(daemontest.Context(t), ep, nil)
			if tt.wantPath == "" {
				if oa != nil {
					t.Fatalf("ProbeOpenAccess = %+v, want nil", oa)
				}
				return
			}
			if err != nil || oa == nil {
				t.Fatalf("ProbeOpenAccess = %+v, %v; want open access", oa, err)
			}
			if oa.What != "RTSP stream without authentication" || oa.Details["path"] != tt.wantPath {
				t.Errorf("got %q at %v, want path %q", oa.What, oa.Details["path"], tt.wantPath)
			}
			if oa.Details["session_name"] != "Test Camera" {
				t.Errorf("session_name = %v", oa.Details["session_name"])
			}
		})
	}
}

func TestProbeStaysWithinBudget(t *testing.T) {
	t.Parallel()
	cam := &fakeCamera{scheme: "basic", streams: map[string]bool{}}
	ep := cam.start(t)
	p := New()
	p.MaxPaths = 5
	if oa, err := p.ProbeOpenAccess(daemontest.Context(t), ep, nil); oa != nil || err != nil {
		t.Fatalf("ProbeOpenAccess = %+v, %v", oa, err)
	}
	cam.mu.Lock()
	defer cam.mu.Unlock()
	if cam.requests != 5 {
		t.Errorf("server saw %d requests, want 5", cam.requests)
	}
}

func TestDefaultPaths(t *testing.T) {
	paths := DefaultPaths()
	if len(paths) < 190 {
		t.Fatalf("only %d paths", len(paths))
	}
	if paths[0] != "" || paths[1] != "live.sdp" {
		t.Errorf("first paths = %q, want the root then live.sdp", paths[:2])
	}
	seen := map[string]bool{}
	for _, p := range paths {
		if seen[p] {
			t.Errorf("duplicate path %q", p)
		}
		seen[p] = true
		if strings.HasPrefix(p, "/") || !validPath(p) {
			t.Errorf("bad path %q", p)
		}
	}
	for _, want := range []string{"videoMain", "cam/realmonitor?channel=1&subtype=0", "wfov"} {
		if !seen[want] {
			t.Errorf("missing %q", want)
		}
	}
	p := New()
	if got := len(p.paths()); got != DefaultMaxPaths {
		t.Errorf("paths() has %d entries, want %d", got, DefaultMaxPaths)
	}
	p.Paths = []string{"/a", "b c", "d"}
	if got := p.paths(); len(got) != 2 || got[0] != "a" || got[1] != "d" {
		t.Errorf("custom paths() = %q", got)
	}
}

func TestReadResponse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		code    int
		body    string
		sdp     bool
		wantErr error
	}{
		{name: "ok", in: "RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: OPTIONS\r\n\r\n", code: 200},
		{name: "sdp", in: "RTSP/1.0 200 OK\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n", code: 200, body: "v=0\r\n", sdp: true},
		{name: "sdp with params", in: "RTSP/1.0 200 OK\r\ncontent-type: Application/SDP; charset=utf-8\r\ncontent-length: 4\r\n\r\nv=0\n", code: 200, body: "v=0\n", sdp: true},
		{name: "sdp type, no v=0", in: "RTSP/1.0 200 OK\r\nContent-Type: application/sdp\r\nContent-Length: 2\r\n\r\nOK", code: 200, body: "OK"},
		{name: "v=0, wrong type", in: "RTSP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nv=0", code: 200, body: "v=0"},
		{name: "no reason, bare LF", in: "RTSP/1.0 401\nWWW-Authenticate: Basic realm=\"x\"\n\n", code: 401},
		{name: "http", in: "HTTP/1.1 200 OK\r\n\r\n", wantErr: ErrNotRTSP},
		{name: "bad code", in: "RTSP/1.0 2x0 OK\r\n\r\n", wantErr: ErrNotRTSP},
		{name: "huge length", in: "RTSP/1.0 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", wantErr: ErrBodyTooLarge},
		{name: "negative length", in: "RTSP/1.0 200 OK\r\nContent-Length: -1\r\n\r\n", wantErr: ErrBadLength},
		{name: "conflicting lengths", in: "RTSP/1.0 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", wantErr: ErrBadLength},
		{name: "long line", in: "RTSP/1.0 200 OK\r\nX: " + strings.Repeat("a", MaxLine) + "\r\n\r\n", wantErr: ErrLineTooLong},
		{name: "too many headers", in: "RTSP/1.0 200 OK\r\n" + strings.Repeat("X: y\r\n", MaxHeaders+1) + "\r\n", wantErr: ErrHeaderLimit},
		{name: "header block too big", in: "RTSP/1.0 200 OK\r\n" + strings.Repeat("X: "+strings.Repeat("b", 4000)+"\r\n", 9) + "\r\n", wantErr: ErrHeaderLimit},
		{name: "truncated body", in: "RTSP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nabc", wantErr: errAny},
		{name: "truncated headers", in: "RTSP/1.0 200 OK\r\nCSeq: 1", wantErr: errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := ReadResponse(bufio.NewReader(strings.NewReader(tt.in)))
			if tt.wantErr != nil {
				if err == nil || (tt.wantErr != errAny && !errors.Is(err, tt.wantErr)) {
					t.Fatalf("ReadResponse = %+v, %v; want %v", resp, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadResponse: %v", err)
			}
			if resp.StatusCode != tt.code || string(resp.Body) != tt.body || resp.IsSDP() != tt.sdp {
				t.Errorf("got code %d body %q sdp %v; want %d %q %v", resp.StatusCode, resp.Body, resp.IsSDP(), tt.code, tt.body, tt.sdp)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestPickChallenge(t *testing.T) {
	tests := []struct {
		name   string
		in     []string
		scheme string
		realm  string
	}{
		{"basic", []string{`Basic realm="IP Camera(12345)"`}, "basic", "IP Camera(12345)"},
		{"digest preferred", []string{`Basic realm="a"`, `Digest realm="b", nonce="n1"`}, "digest", "b"},
		{"digest without nonce falls back", []string{`Digest realm="b"`, `Basic realm="a"`}, "basic", "a"},
		{"unsupported digest algorithm", []string{`Digest realm="b", nonce="n", algorithm=SHA-1`}, "", ""},
		{"token realm and escapes", []string{`basic charset=UTF-8, realm=cam`}, "basic", "cam"},
		{"escaped quote", []string{`Basic realm="a\"b"`}, "basic", `a"b`},
		{"not basic", []string{`Basicfoo realm="a"`, `NTLM`}, "", ""},
		{"empty", nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := pickChallenge(tt.in)
			if tt.scheme == "" {
				if ch != nil {
					t.Fatalf("pickChallenge = %+v, want nil", ch)
				}
				return
			}
			if ch == nil || ch.scheme != tt.scheme || ch.realm != tt.realm {
				t.Fatalf("pickChallenge = %+v, want %s realm %q", ch, tt.scheme, tt.realm)
			}
		})
	}
}

func TestSummarizeSDP(t *testing.T) {
	name, media := summarizeSDP([]byte(testSDP + "m=audio 0 RTP/AVP 0\r\n"))
	if name != "Test Camera" || len(media) != 2 || media[0] != "video 0 RTP/AVP 96" || media[1] != "audio 0 RTP/AVP 0" {
		t.Errorf("summarizeSDP = %q, %q", name, media)
	}
}

func TestWriteRequestRefusesInjection(t *testing.T) {
	var b strings.Builder
	if err := writeRequest(&b, "DESCRIBE", "rtsp://h/x\r\nEvil: 1", 1, nil); err == nil {
		t.Error("CR LF in the URL was written")
	}
	if err := writeRequest(&b, "DESCRIBE", "rtsp://h/x", 1, [][2]string{{"Authorization", "Basic a\nb"}}); err == nil {
		t.Error("LF in a header was written")
	}
	b.Reset()
	if err := writeRequest(&b, "OPTIONS", "*", 7, [][2]string{{"User-Agent", "iotcop"}}); err != nil {
		t.Fatal(err)
	}
	if want := "OPTIONS * RTSP/1.0\r\nCSeq: 7\r\nUser-Agent: iotcop\r\n\r\n"; b.String() != want {
		t.Errorf("request = %q, want %q", b.String(), want)
	}
}

func FuzzReadResponse(f *testing.F) {
	f.Add([]byte("RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: OPTIONS, DESCRIBE\r\n\r\n"))
	f.Add([]byte("RTSP/1.0 200 OK\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n"))
	f.Add([]byte("RTSP/1.0 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"x\", nonce=\"y\"\r\n\r\n"))
	f.Add([]byte("RTSP/1.0 200 OK\r\n folded\r\nContent-Length: 99999999999\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
	f.Add([]byte("\x00\xff garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		resp, err := ReadResponse(bufio.NewReaderSize(strings.NewReader(string(data)), 64))
		if err != nil {
			return
		}
		if resp.StatusCode < 100 || resp.StatusCode > 999 || len(resp.Body) > MaxBody || len(resp.Header) > MaxHeaders {
			t.Fatalf("out of bounds response %+v", resp)
		}
		_ = resp.IsSDP()
		_ = resp.StatusLine()
		summarizeSDP(resp.Body)
		lockedOut(resp)
	})
}

func FuzzPickChallenge(f *testing.F) {
	f.Add(`Basic realm="IP Camera"`, `Digest realm="x", nonce="abc", qop="auth"`)
	f.Add(`basic realm=tok, charset="UTF-8"`, `Digest realm="a\"b", nonce=n, algorithm=SHA-256`)
	f.Add(`Basic realm="unterminated`, `Digest ,,,==""`)
	f.Fuzz(func(t *testing.T, a, b string) {
		ch := pickChallenge([]string{a, b})
		if ch == nil {
			return
		}
		if ch.scheme != "basic" && ch.scheme != "digest" {
			t.Fatalf("scheme %q", ch.scheme)
		}
		if _, err := ch.authorization("DESCRIBE", "rtsp://127.0.0.1:554/", proto.Credential{Username: "u", Password: "p"}); err != nil && ch.scheme == "basic" {
			t.Fatal(err)
		}
	})
}
