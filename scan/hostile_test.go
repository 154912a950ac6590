package scan

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/iotcop/iotcop/creds"
	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/internal/daemontest"
	"github.com/iotcop/iotcop/sweep"
	"github.com/iotcop/iotcop/target"
)

// hostile peers that no real server produces, served in-process (with
// daemontest.FakePromptTelnet).
var hostile = map[string]func(net.Conn){
	// Never stops sending.
	"endless-banner": func(c net.Conn) {
		chunk := []byte(strings.Repeat("220-welcome to the endless banner\r\n", 64))
		for {
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	},
	// Accepts and says nothing.
	"silent": func(c net.Conn) {
		buf := make([]byte, 512)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	},
	// One byte of an SSH banner every 400ms.
	"slow-drip": func(c net.Conn) {
		for _, b := range []byte("SSH-2.0-OpenSSH_9.2p1 drip drip drip\r\n") {
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(400 * time.Millisecond)
		}
	},
}

func TestHostilePeers(t *testing.T) {
	host := daemontest.Addr()
	var ports []sweep.Port
	byPort := map[int]string{}
	for name, serve := range hostile {
		srv := daemontest.ServeTCP(t, host, 0, serve)
		ports = append(ports, sweep.Port{Number: srv.Port, Transport: "tcp"})
		byPort[srv.Port] = name
	}
	// Says "login:", then answers everything with a root prompt: hydra and
	// medusa count that as a successful login.
	fake := daemontest.FakePromptTelnet(t, daemontest.Listen{Host: host, Port: 0})
	ports = append(ports, sweep.Port{Number: fake.Port, Transport: "tcp"})
	byPort[fake.Port] = "fake-prompt"
	dict, err := creds.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	protocols := DefaultProtocols()
	sc := New(Options{Ports: ports, Timeout: 500 * time.Millisecond, BannerWait: 300 * time.Millisecond}, protocols,
		DefaultChecks(protocols, CheckOptions{Dict: dict, Budget: creds.Budget{PerService: 4}}))
	set := target.Set{Include: []target.Range{{From: netip.MustParseAddr(host), To: netip.MustParseAddr(host)}}}

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// A hang guard only: the scan must end by itself long before this.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, _ := sc.Run(ctx, set)
	if ctx.Err() != nil {
		t.Fatal("scan of hostile peers did not finish on its own timeouts")
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 64<<20 {
		t.Fatalf("heap grew by %d MiB scanning hostile peers", grown>>20)
	}
	if len(rep.Devices) != 1 || len(rep.Devices[0].Services) != len(hostile)+1 {
		t.Fatalf("want every hostile port reported as a service, got %+v", rep.Devices)
	}
	for _, s := range rep.Devices[0].Services {
		t.Logf("%s: %s %q attempts=%d", byPort[s.Port], s.Protocol, s.Banner[:min(len(s.Banner), 40)], s.Attempts)
		if len(s.Banner) > 4*512 {
			t.Errorf("%s: banner of %d bytes kept", byPort[s.Port], len(s.Banner))
		}
	}
	for _, f := range rep.Findings {
		if f.Check == finding.CheckDefaultCredentials || f.Check == finding.CheckUnauthenticatedAccess {
			t.Errorf("false claim on %s: %+v", byPort[f.Port], f)
		}
	}
}
