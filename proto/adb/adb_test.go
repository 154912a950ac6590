package adb

import (
	"bytes"
	"context"
	"errors"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/proto"
)

const deviceBanner = "device::ro.product.name=sdk_gphone;ro.product.model=Pixel Cam;ro.product.device=emu64;features=shell_v2,cmd\x00"

var sumRE = regexp.MustCompile(`\$\(\((\d+)\+(\d+)\)\)`)

// fakePeer plays adbd according to mode.
func fakePeer(t *testing.T, mode string) proto.Endpoint {
	t.Helper()
	srv := daemontest.ServeTCP(t, "", 0, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		serve(c, mode)
	})
	return srv.Endpoint(500 * time.Millisecond)
}

func serve(c net.Conn, mode string) {
	switch mode {
	case "silent":
		_, _ = c.Read(make([]byte, 64))
		time.Sleep(2 * time.Second)
		return
	case "garbage":
		_, _ = c.Write([]byte("SSH-2.0-dropbear_2022.83\r\n" + strings.Repeat("x", 100)))
		return
	case "drip":
		for _, b := range (message{cmd: cmdCNXN, arg0: adbVersion, arg1: maxData, payload: []byte(deviceBanner)}).encode() {
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		return
	}
	if m, err := readMessage(c); err != nil || m.cmd != cmdCNXN {
		return
	}
	switch mode {
	case "auth":
		_, _ = c.Write(message{cmd: cmdAUTH, arg0: authToken, payload: bytes.Repeat([]byte{7}, 20)}.encode())
		return
	case "tls":
		_, _ = c.Write(message{cmd: cmdSTLS, arg0: 0x01000000}.encode())
		return
	}
	_, _ = c.Write(message{cmd: cmdCNXN, arg0: adbVersion, arg1: maxData, payload: []byte(deviceBanner)}.encode())
	for {
		m, err := readMessage(c)
		if err != nil || m.cmd != cmdOPEN {
			return
		}
		var out string
		switch mode {
		case "open":
			sm := sumRE.FindStringSubmatch(string(m.payload))
			if sm == nil {
				return
			}
			x, _ := strconv.Atoi(sm[1])
			y, _ := strconv.Atoi(sm[2])
			out = "iotcop-" + strconv.Itoa(x+y) + "\r\n"
		case "reflect":
			out = string(m.payload)
		}
		_, _ = c.Write(message{cmd: cmdOKAY, arg0: 99, arg1: m.arg0}.encode())
		_, _ = c.Write(message{cmd: cmdWRTE, arg0: 99, arg1: m.arg0, payload: []byte(out)}.encode())
		_, _ = c.Write(message{cmd: cmdCLSE, arg0: 99, arg1: m.arg0}.encode())
	}
}

func TestFakePeers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mode         string
		wantIdentify error
		wantAuth     string
		wantOpen     bool
		wantShell    bool
	}{
		{mode: "open", wantAuth: "none", wantOpen: true, wantShell: true},
		{mode: "reflect", wantAuth: "none", wantOpen: true, wantShell: false},
		{mode: "auth", wantAuth: "rsa-key"},
		{mode: "tls", wantAuth: "tls"},
		{mode: "silent", wantIdentify: proto.ErrNotThisProtocol},
		{mode: "garbage", wantIdentify: proto.ErrNotThisProtocol},
		{mode: "drip", wantIdentify: proto.ErrNotThisProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			ep := fakePeer(t, tt.mode)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			conn, err := ep.Connect(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			id, err := New().Identify(ctx, conn, nil, ep)
			if !errors.Is(err, tt.wantIdentify) {
				t.Fatalf("Identify err = %v, want %v", err, tt.wantIdentify)
			}
			if err != nil {
				return
			}
			if id.Protocol != "adb" || id.Info["auth"] != tt.wantAuth {
				t.Errorf("identity %q auth %q, want adb %q", id.Protocol, id.Info["auth"], tt.wantAuth)
			}
			if tt.wantAuth == "none" && (id.Info["product_model"] != "Pixel Cam" || id.Info["state"] != "device") {
				t.Errorf("banner facts %v", id.Info)
			}
			oa, err := New().ProbeOpenAccess(ctx, ep, id)
			if err != nil {
				t.Fatalf("ProbeOpenAccess: %v", err)
			}
			if (oa != nil) != tt.wantOpen {
				t.Fatalf("ProbeOpenAccess = %+v, want open %v", oa, tt.wantOpen)
			}
			if oa != nil && oa.Details["shell_proven"] != tt.wantShell {
				t.Errorf("shell_proven = %v, want %v", oa.Details["shell_proven"], tt.wantShell)
			}
		})
	}
}

func TestParseBanner(t *testing.T) {
	tests := []struct {
		in     string
		ok     bool
		state  string
		model  string
		serial string
	}{
		{deviceBanner, true, "device", "Pixel Cam", ""},
		{"recovery:ABC123:ro.product.model=X\x00", true, "recovery", "X", "ABC123"},
		{"device::", true, "device", "", ""},
		{"Device::", false, "", "", ""},
		{"hello", false, "", "", ""},
	}
	for _, tt := range tests {
		bn, ok := parseBanner([]byte(tt.in))
		if ok != tt.ok || bn.state != tt.state || bn.props["ro.product.model"] != tt.model || bn.serial != tt.serial {
			t.Errorf("parseBanner(%q) = %+v, %v", tt.in, bn, ok)
		}
	}
}

func TestReadMessageRejects(t *testing.T) {
	good := message{cmd: cmdCNXN, arg0: 1, payload: []byte("device::\x00")}.encode()
	badMagic := bytes.Clone(good)
	badMagic[20] ^= 1
	badSum := bytes.Clone(good)
	badSum[len(badSum)-1] ^= 1
	huge := bytes.Clone(good)
	huge[14] = 0x10 // 1 MiB payload
	unknown := message{cmd: 0x41414141}.encode()
	for name, b := range map[string][]byte{"magic": badMagic, "checksum": badSum, "huge": huge, "unknown": unknown, "short": good[:10]} {
		if m, err := readMessage(bytes.NewReader(b)); err == nil {
			t.Errorf("%s: read %+v, want error", name, m)
		}
	}
	if m, err := readMessage(bytes.NewReader(good)); err != nil || string(m.payload) != "device::\x00" {
		t.Errorf("good message: %+v, %v", m, err)
	}
}

// FuzzReadMessage checks the message reader and banner parser on arbitrary
// bytes.
func FuzzReadMessage(f *testing.F) {
	f.Add(message{cmd: cmdCNXN, arg0: adbVersion, arg1: maxData, payload: []byte(deviceBanner)}.encode())
	f.Add(message{cmd: cmdAUTH, arg0: authToken, payload: bytes.Repeat([]byte{1}, 20)}.encode())
	f.Add(message{cmd: cmdWRTE, arg0: 1, arg1: 2, payload: []byte("iotcop-5\r\n")}.encode())
	f.Add([]byte("CNXN\x00\x00\x00\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for range 4 {
			m, err := readMessage(r)
			if err != nil {
				return
			}
			if len(m.payload) > maxPayload {
				t.Fatalf("payload of %d bytes", len(m.payload))
			}
			if bn, ok := parseBanner(m.payload); ok && bn.state == "" {
				t.Fatal("banner without state")
			}
		}
	})
}
