package daemontest

import (
	"bufio"
	"net"
	"time"
)

// FakePromptTelnet serves, in-process, a hostile "telnet" login that
// answers every username with "Password: " and every password with a root
// shell prompt "# " that runs nothing. Tools that take a prompt for a
// successful login (hydra, medusa) report a credential that never worked;
// the returned Service carries none.
func FakePromptTelnet(t TB, l Listen) Service {
	t.Helper()
	host, port := l.at(t, "tcp", 23)
	ServeTCP(t, host, port, fakePrompt)
	return Service{Host: host, Port: port, Transport: "tcp", Timeout: 2 * time.Second}
}

func fakePrompt(c net.Conn) {
	r := bufio.NewReaderSize(c, 512)
	prompts := []string{"\r\nlogin: ", "Password: ", "\r\n# "}
	for step := 0; ; step = min(step+1, len(prompts)-1) {
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Write([]byte(prompts[step])); err != nil {
			return
		}
		if !skipLine(r) {
			return
		}
	}
}

// skipLine consumes one line ended by CR (telnet's "\r\n" or "\r\0") or
// LF, whatever its length; false when the connection ends.
func skipLine(r *bufio.Reader) bool {
	for {
		b, err := r.ReadByte()
		if err != nil {
			return false
		}
		switch b {
		case '\r':
			// Only a terminator already received: waiting for one that
			// never comes would stall a client that ends lines with CR.
			if r.Buffered() > 0 {
				if next, err := r.Peek(1); err == nil && (next[0] == '\n' || next[0] == 0) {
					_, _ = r.ReadByte()
				}
			}
			return true
		case '\n':
			return true
		}
	}
}
