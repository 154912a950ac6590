package netnstest

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const (
	helperEnv   = "IOTCOP_NETNSTEST_HELPER" // "send" or "receive"
	helperIface = "IOTCOP_NETNSTEST_IFACE"
	group       = "239.255.42.42:4242"
)

// TestMulticastHelper sends or receives one multicast datagram on the
// interface named in its environment; TestPairCarriesMulticast runs it in
// the namespaces.
func TestMulticastHelper(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper for TestPairCarriesMulticast; runs only when it starts it")
	}
	ifi, err := net.InterfaceByName(os.Getenv(helperIface))
	if err != nil {
		t.Fatal(err)
	}
	gaddr, err := net.ResolveUDPAddr("udp4", group)
	if err != nil {
		t.Fatal(err)
	}
	switch mode {
	case "receive":
		c, err := net.ListenMulticastUDP("udp4", ifi, gaddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		t.Log("listening") // seen by the parent through -test.v
		buf := make([]byte, 100)
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("got %q from %s", buf[:n], from.IP)
	case "send":
		c, err := net.DialUDP("udp4", nil, gaddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("hello across the veth")); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPairCarriesMulticast(t *testing.T) {
	p := NewPair(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	recv := p.B.Command(exe, "-test.run", "^TestMulticastHelper$", "-test.v")
	recv.Env = append(os.Environ(), helperEnv+"=receive", helperIface+"="+p.IfaceB)
	proc := start(t, recv, "receiver")
	proc.WaitOutput(t, "listening")
	// The receiver may have been scheduled out between joining and
	// logging, never the other way round: send until it reports, within
	// its own 20s deadline.
	for i := 0; i < 40 && !strings.Contains(proc.Output(), "got "); i++ {
		if out, err := p.A.RunTest(t, "TestMulticastHelper", helperEnv+"=send", helperIface+"="+p.IfaceA); err != nil {
			t.Fatalf("sender: %v\n%s", err, out)
		}
		select {
		case <-proc.done:
		case <-time.After(250 * time.Millisecond):
		}
	}
	<-proc.done
	want := `got "hello across the veth" from ` + p.AddrA.String()
	if !strings.Contains(proc.Output(), want) {
		t.Fatalf("receiver output lacks %q:\n%s", want, proc.Output())
	}
}

func TestPairStaysInsideAndIsRemoved(t *testing.T) {
	var p *Pair
	var stray *exec.Cmd
	t.Run("pair", func(t *testing.T) {
		p = NewPair(t)
		p.A.AddVeth(t, "wan0", "wan0-peer", netip.MustParsePrefix("10.214.0.1/24"))
		if out := p.A.Run(t, "ip", "-o", "addr", "show", "dev", p.IfaceA); !strings.Contains(out, p.AddrA.String()+"/24") {
			t.Errorf("%s lacks %s: %s", p.IfaceA, p.AddrA, out)
		}
		if out := p.B.Run(t, "ip", "route", "get", "224.0.0.251"); !strings.Contains(out, "dev "+p.IfaceB) {
			t.Errorf("multicast does not route through %s: %s", p.IfaceB, out)
		}
		if out := p.A.Run(t, "ip", "-o", "link", "show", "wan0"); !strings.Contains(out, "UP") {
			t.Errorf("wan0 not up: %s", out)
		}
		host, err := exec.Command("ip", "-o", "addr").Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, leak := range []string{p.AddrA.String(), p.AddrB.String(), p.IfaceA, p.IfaceB, "wan0"} {
			if strings.Contains(string(host), leak) {
				t.Errorf("%s visible outside the namespaces:\n%s", leak, host)
			}
		}
		// Left running on purpose: removing the namespace must end it.
		stray = p.A.Command("sleep", "600")
		if err := stray.Start(); err != nil {
			t.Fatal(err)
		}
	})
	if p == nil || stray == nil {
		return
	}
	exited := make(chan error, 1)
	go func() { exited <- stray.Wait() }()
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		_ = stray.Process.Kill()
		t.Error("a process left in the namespace survived its removal")
	}
	list, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{p.A.Name, p.B.Name} {
		if strings.Contains(string(list), ns+" ") || strings.Contains(string(list), ns+"\n") {
			t.Errorf("namespace %s still exists after its test:\n%s", ns, list)
		}
	}
}
