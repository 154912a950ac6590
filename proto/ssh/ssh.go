// Package ssh identifies SSH servers from their identification string
// (Dropbear, OpenSSH, device stacks; SSH-1 too) and tries credentials with
// password and keyboard-interactive authentication through
// golang.org/x/crypto/ssh, with the legacy algorithms old device firmware
// needs enabled.
//
// A login counts as Accepted only on the server's SSH_MSG_USERAUTH_SUCCESS,
// a protocol-level proof; the session then also tries to run an echo of a
// nonce and says which proof it saw.
package ssh

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"

	"github.com/iotcop/iotcop/proto"
)

// Protocol is the SSH protocol module. Its zero value is ready to use.
type Protocol struct{}

// New returns the SSH protocol module.
func New() *Protocol { return &Protocol{} }

// Compile-time checks that Protocol implements the interfaces it claims.
var (
	_ proto.Identifier    = (*Protocol)(nil)
	_ proto.Authenticator = (*Protocol)(nil)
)

// Name returns "ssh".
func (*Protocol) Name() string { return "ssh" }

// Transport returns "tcp".
func (*Protocol) Transport() string { return "tcp" }

// PortPriority reports whether port is a usual SSH port (22, 2222, 22222).
func (*Protocol) PortPriority(port int) bool { return port == 22 || port == 2222 || port == 22222 }

// ServerFirst returns true: SSH servers send their identification first.
func (*Protocol) ServerFirst() bool { return true }

// Identify parses the server's identification string. Product and Version
// come from the software version ("Dropbear sshd" "2022.83", "OpenSSH"
// "9.2p1"), Vendor where the software implies the maker (RouterOS, Cisco,
// Huawei, ...).
//
// Info keys set: "software" (raw software version, "dropbear_2022.83"),
// "proto_version" ("2.0", "1.99", "1.5"), "comments" (when present,
// "Debian-2+deb12u3") and "ssh1" ("true" when protocol 1 is offered).
func (p *Protocol) Identify(ctx context.Context, conn net.Conn, banner []byte, ep proto.Endpoint) (*proto.Identity, error) {
	if len(banner) == 0 {
		return nil, proto.ErrNotThisProtocol
	}
	start := idLineStart(banner)
	switch {
	case start < 0 && bytes.HasPrefix([]byte("SSH-"), banner):
		start = 0 // a read cut "SSH-" short
	case start < 0:
		return nil, proto.ErrNotThisProtocol
	}
	if !bytes.Contains(banner[start:], []byte("\n")) && len(banner)-start < maxIDLineLen {
		// The identification line was cut short: read up to its end.
		more, _, err := proto.ReadUntil(conn, maxIDLineLen-(len(banner)-start), ep.IOTimeout(), []byte("\n"))
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ssh identify %s: %w", ep.Addr(), ctx.Err())
		}
		if err != nil && !proto.IsTimeout(err) && len(more) == 0 {
			return nil, fmt.Errorf("ssh identify %s: reading identification: %w", ep.Addr(), err)
		}
		banner = append(append([]byte(nil), banner...), more...)
	}
	sid, err := ParseIdentification(banner[start:])
	if err != nil {
		return nil, proto.ErrNotThisProtocol
	}
	id := &proto.Identity{Protocol: "ssh", Banner: proto.Printable([]byte(sid.Line))}
	id.Product, id.Version, id.Vendor = sid.Describe()
	id.Set("software", sid.Software)
	id.Set("proto_version", sid.ProtoVersion)
	if sid.Comments != "" {
		id.Set("comments", sid.Comments)
	}
	if sid.SSH1() {
		id.Set("ssh1", "true")
	}
	return id, nil
}

// idLineStart returns where the first line starting "SSH-" begins, or -1.
func idLineStart(b []byte) int {
	for off, lines := 0, 0; off < len(b) && lines < maxIDLines; lines++ {
		if bytes.HasPrefix(b[off:], []byte("SSH-")) {
			return off
		}
		nl := bytes.IndexByte(b[off:], '\n')
		if nl < 0 {
			return -1
		}
		off += nl + 1
	}
	return -1
}

// echoProbe is a shell command whose output differs from its own text:
//
//	echo 1a2b''3c4d
//
// prints 1a2b3c4d, which never appears in an echo of the typed command.
type echoProbe struct {
	Command string
	Want    string
}

func newEchoProbe() echoProbe {
	var b [8]byte
	_, _ = rand.Read(b[:])
	a, z := hex.EncodeToString(b[:4]), hex.EncodeToString(b[4:])
	return echoProbe{Command: "echo " + a + "''" + z, Want: a + z}
}
