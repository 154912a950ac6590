package coap

import (
	"bytes"
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/proto"
)

func identify(t *testing.T, ep proto.Endpoint) (*proto.Identity, error) {
	t.Helper()
	return daemontest.Identify(t, New(), ep)
}

func TestLibcoapServer(t *testing.T) {
	t.Parallel()
	ep := daemontest.CoapServer(t, daemontest.CoapServerOptions{}).Endpoint()

	id, err := identify(t, ep)
	if err != nil {
		t.Fatalf("Identify: %v", err)
	}
	if id.Protocol != "coap" || id.Product != "libcoap" || id.Info["wellknown_code"] != "2.05" {
		t.Errorf("identity %+v", id)
	}
	resources := strings.Split(id.Info["resources"], ",")
	for _, want := range []string{"/", "/time"} {
		if !slices.Contains(resources, want) {
			t.Errorf("resources %v lack %s", resources, want)
		}
	}

	oa, err := New().ProbeOpenAccess(daemontest.Context(t), ep, id)
	if err != nil {
		t.Fatalf("ProbeOpenAccess: %v", err)
	}
	if oa == nil {
		t.Fatal("ProbeOpenAccess = nil on libcoap's open test server")
	}
	readable := oa.Details["readable"].([]string)
	if !slices.Contains(readable, "/time") || !slices.Contains(readable, "/") {
		t.Errorf("readable = %v, want / and /time", readable)
	}
	if !strings.Contains(oa.Details["previews"].(map[string]string)["/"], "libcoap") {
		t.Errorf("preview of / = %q", oa.Details["previews"].(map[string]string)["/"])
	}
}

// fakeServer runs handle for every datagram; handle returns the datagrams
// to send back. It records every request path.
type fakeServer struct {
	mu    sync.Mutex
	paths []string
	ep    proto.Endpoint
}

func startFake(t *testing.T, handle func(req message) []message) *fakeServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(daemontest.Addr(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	fs := &fakeServer{}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			req, err := decode(append([]byte(nil), buf[:n]...))
			if err != nil {
				continue
			}
			if req.code == codeGET {
				var segs []string
				for _, o := range req.options {
					if o.num == optURIPath {
						segs = append(segs, string(o.value))
					}
				}
				fs.mu.Lock()
				fs.paths = append(fs.paths, "/"+strings.Join(segs, "/"))
				fs.mu.Unlock()
			}
			for _, out := range handle(req) {
				_, _ = pc.WriteTo(out.encode(), from)
			}
		}
	}()
	a := pc.LocalAddr().(*net.UDPAddr)
	fs.ep = proto.Endpoint{Host: a.IP.String(), Port: a.Port, Transport: "udp", Timeout: 600 * time.Millisecond}
	return fs
}

func pathOf(m message) string {
	var segs []string
	for _, o := range m.options {
		if o.num == optURIPath {
			segs = append(segs, string(o.value))
		}
	}
	return "/" + strings.Join(segs, "/")
}

func piggyback(req message, code byte, payload string) []message {
	return []message{{typ: typeACK, code: code, id: req.id, token: req.token, payload: []byte(payload)}}
}

func TestFakeServers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		handle       func(req message) []message
		wantIdentify error
		wantCode     string
		wantReadable []string // nil: no open access
		neverAsked   string   // a path that must not be requested
	}{
		{
			name:         "silent",
			handle:       func(message) []message { return nil },
			wantIdentify: proto.ErrNotThisProtocol,
		},
		{
			name: "reset",
			handle: func(req message) []message {
				return []message{{typ: typeRST, id: req.id}}
			},
			wantCode: "reset",
		},
		{
			name: "separate response and absolute link",
			handle: func(req message) []message {
				if req.typ == typeACK {
					return nil
				}
				body := "ok"
				if pathOf(req) == wellKnownCore {
					body = `<coap://198.51.100.7/steal>,</sensors/temp>;rt="temperature"`
				}
				return []message{
					{typ: typeACK, id: req.id},
					{typ: typeCON, code: codeContent, id: req.id + 100, token: req.token, payload: []byte(body)},
				}
			},
			wantCode:     "2.05",
			wantReadable: []string{"/sensors/temp"},
			neverAsked:   "/steal",
		},
		{
			name: "resources need authorization",
			handle: func(req message) []message {
				if pathOf(req) == wellKnownCore {
					return piggyback(req, codeContent, `</lock>,</config>`)
				}
				return piggyback(req, 0x81, "") // 4.01 Unauthorized
			},
			wantCode: "2.05",
		},
		{
			name: "block-wise discovery",
			handle: func(req message) []message {
				if pathOf(req) != wellKnownCore {
					return piggyback(req, codeContent, "v")
				}
				full := []byte(`</a>,</b>,</c>,</d>,</e>,</f>,</g>,</h>,</i>,</j>,</k>,</l>,</m>,</n>`)
				b, _ := req.block2()
				start := int(b.num) * 16
				end := min(start+16, len(full))
				more := uint32(0)
				if end < len(full) {
					more = 8
				}
				resp := piggyback(req, codeContent, string(full[start:end]))
				resp[0].options = []option{{num: optBlock2, value: encodeUint(b.num<<4 | more)}} // szx 0: 16-byte blocks
				return resp
			},
			wantCode:     "2.05",
			wantReadable: []string{"/a", "/b", "/c", "/d", "/e"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := startFake(t, tt.handle)
			id, err := identify(t, fs.ep)
			if !errors.Is(err, tt.wantIdentify) {
				t.Fatalf("Identify err = %v, want %v", err, tt.wantIdentify)
			}
			if err != nil {
				return
			}
			if got := id.Info["wellknown_code"]; got != tt.wantCode {
				t.Errorf("wellknown_code = %q, want %q", got, tt.wantCode)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			oa, err := New().ProbeOpenAccess(ctx, fs.ep, id)
			if err != nil {
				t.Fatalf("ProbeOpenAccess: %v", err)
			}
			if tt.wantReadable == nil {
				if oa != nil {
					t.Errorf("ProbeOpenAccess = %+v, want nil", oa)
				}
			} else if oa == nil {
				t.Errorf("ProbeOpenAccess = nil, want %v readable", tt.wantReadable)
			} else if diff := cmp.Diff(tt.wantReadable, oa.Details["readable"]); diff != "" {
				t.Errorf("readable (-want +got):\n%s", diff)
			}
			fs.mu.Lock()
			defer fs.mu.Unlock()
			if tt.neverAsked != "" && slices.Contains(fs.paths, tt.neverAsked) {
				t.Errorf("requested %s from an absolute link", tt.neverAsked)
			}
		})
	}
}

func TestMessageRoundTrip(t *testing.T) {
	tests := []message{
		newGet(7, []byte{1, 2, 3, 4}, "/.well-known/core", 0, 0),
		newGet(8, []byte{9}, "/a/very-long-segment-name-over-thirteen-bytes/x", 3, 2),
		{typ: typeACK, code: codeContent, id: 9, token: []byte{5}, options: []option{{num: optContentFormat, value: []byte{40}}, {num: 300, value: bytes.Repeat([]byte{'x'}, 300)}}, payload: []byte("body")},
		{typ: typeRST, id: 10},
	}
	for _, want := range tests {
		got, err := decode(want.encode())
		if err != nil {
			t.Fatalf("decode(%+v): %v", want, err)
		}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(message{}, option{}), cmp.Comparer(func(a, b []byte) bool { return bytes.Equal(a, b) })); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := map[string][]byte{
		"short":                  {0x40, 0x01},
		"version 2":              {0x80, 0x45, 0, 1},
		"token too long":         {0x49, 0x45, 0, 1, 1, 2, 3},
		"empty with token":       {0x61, 0x00, 0, 1, 7},
		"marker without payload": {0x60, 0x45, 0, 1, 0xff},
		"reserved nibble":        {0x60, 0x45, 0, 1, 0xf1, 0},
		"option past end":        {0x60, 0x45, 0, 1, 0xb5, 'a'},
	}
	for name, b := range tests {
		if m, err := decode(b); err == nil {
			t.Errorf("%s: decoded %+v, want error", name, m)
		}
	}
}

func TestParseLinks(t *testing.T) {
	in := `</>;title="General Info";ct=0,</time>;if="clock";rt="ticks";title="Internal, Clock";ct=0;obs,junk,</async>;ct=0,<coap://x/y>`
	got := parseLinks(in)
	var targets []string
	for _, l := range got {
		targets = append(targets, l.target)
	}
	if diff := cmp.Diff([]string{"/", "/time", "/async", "coap://x/y"}, targets); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
	if got[1].attrs["title"] != "Internal, Clock" || got[1].attrs["rt"] != "ticks" {
		t.Errorf("attrs of /time = %v", got[1].attrs)
	}
	if _, ok := got[1].attrs["obs"]; !ok {
		t.Errorf("obs flag missing: %v", got[1].attrs)
	}
	if diff := cmp.Diff([]string{"/", "/time", "/async"}, localTargets(got)); diff != "" {
		t.Errorf("localTargets (-want +got):\n%s", diff)
	}
}

// FuzzDecode checks the message decoder, its block option reading and the
// link-format parser on arbitrary input.
func FuzzDecode(f *testing.F) {
	f.Add(newGet(7, []byte{1, 2, 3, 4}, "/.well-known/core", 2, 6).encode())
	f.Add(message{typ: typeACK, code: codeContent, id: 9, token: []byte{5}, payload: []byte(`</a>;rt="x",</b>`)}.encode())
	f.Add([]byte{0x60, 0x45, 0, 1, 0xd1, 0x0a, 0x0e, 0xff, '<', '/', '>'})
	f.Add([]byte{0x60, 0x45, 0, 1, 0xe1, 0x00, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decode(data)
		if err == nil {
			if len(m.token) > 8 {
				t.Fatalf("token of %d bytes", len(m.token))
			}
			if b, ok := m.block2(); ok && (b.size < 16 || b.size > 1024) {
				t.Fatalf("block size %d", b.size)
			}
			if _, err := decode(m.encode()); err != nil {
				t.Fatalf("re-encoded message does not decode: %v", err)
			}
		}
		if links := parseLinks(string(data)); len(links) > maxLinks {
			t.Fatalf("%d links", len(links))
		}
	})
}
