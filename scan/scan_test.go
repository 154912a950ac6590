package scan

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/iotcop/iotcop/creds"
	"github.com/iotcop/iotcop/sweep"
	"github.com/iotcop/iotcop/target"
)

// IPv6 targets are swept and identified like IPv4 ones.
func TestIPv6Loopback(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "lighttpd/1.4.69")
		w.Write([]byte("<html><title>hello</title></html>"))
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	set, err := target.Parser{}.Build(context.Background(), []string{"::1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dict, _ := creds.Builtin()
	protocols := DefaultProtocols()
	sc := New(Options{Ports: []sweep.Port{{Number: port, Transport: "tcp"}}, Timeout: time.Second}, protocols, DefaultChecks(protocols, CheckOptions{Dict: dict, Budget: creds.DefaultBudget()}))
	rep, err := sc.Run(context.Background(), set)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Devices) != 1 || rep.Devices[0].Address != "::1" || len(rep.Devices[0].Services) != 1 {
		t.Fatalf("devices %+v", rep.Devices)
	}
	s := rep.Devices[0].Services[0]
	if s.Protocol != "http" || s.Product != "lighttpd" || s.Version != "1.4.69" {
		t.Fatalf("service %+v", s)
	}
}

// Scanning a block of 4096 silent addresses keeps memory flat: hosts are
// streamed, never materialised with their ports.
func TestLargeRangeBoundedMemory(t *testing.T) {
	from := netip.MustParseAddr("127.250.0.0")
	to := netip.MustParseAddr("127.250.15.255")
	set := target.Set{Include: []target.Range{{From: from, To: to}}}
	sc := New(Options{Ports: []sweep.Port{{Number: 9, Transport: "tcp"}}, Hosts: 256, PerHost: 1, Timeout: time.Second, Retries: 0, NoChecks: true}, nil, nil)
	var mu sync.Mutex
	var peak, done uint64
	sc.opts.Progress = func(d, _ uint64) {
		mu.Lock()
		defer mu.Unlock()
		done = max(done, d)
		if d%512 == 0 {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak {
				peak = m.HeapAlloc
			}
		}
	}
	rep, err := sc.Run(context.Background(), set)
	if err != nil {
		t.Fatal(err)
	}
	if done != 4096 {
		t.Fatalf("progress reached %d of 4096 hosts", done)
	}
	if len(rep.Devices) != 0 {
		t.Fatalf("closed port reported open: %+v", rep.Devices[:1])
	}
	if peak > 64<<20 {
		t.Fatalf("heap peaked at %d MiB for 4096 hosts", peak>>20)
	}
}
