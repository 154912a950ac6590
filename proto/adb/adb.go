// Package adb identifies the Android Debug Bridge daemon on TCP (5555 by
// default) and checks whether it grants a shell without key authentication.
// It writes the small ADB message layer itself (24-byte header, checksum,
// magic) with bounded reads.
package adb

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/iotcop/iotcop/proto"
)

// Protocol implements proto.Identifier and proto.OpenAccessProber for ADB.
type Protocol struct{}

// New returns the ADB protocol.
func New() *Protocol { return &Protocol{} }

var (
	_ proto.Identifier       = (*Protocol)(nil)
	_ proto.OpenAccessProber = (*Protocol)(nil)
)

// Name returns "adb".
func (*Protocol) Name() string { return "adb" }

// Transport returns "tcp".
func (*Protocol) Transport() string { return "tcp" }

// PortPriority reports the usual ADB-over-network port 5555.
func (*Protocol) PortPriority(port int) bool { return port == 5555 }

// ServerFirst returns false: the host sends CNXN first.
func (*Protocol) ServerFirst() bool { return false }

// Bounds on the shell proof.
const (
	maxShellMessages = 32
	maxShellOutput   = 4096
)

func deadline(ctx context.Context, d time.Duration) time.Time {
	t := time.Now().Add(d)
	if dl, ok := ctx.Deadline(); ok && dl.Before(t) {
		return dl
	}
	return t
}

// hello sends CNXN and reads the daemon's first answer.
func hello(ctx context.Context, conn net.Conn, timeout time.Duration) (message, error) {
	_ = conn.SetDeadline(deadline(ctx, timeout))
	cnxn := message{cmd: cmdCNXN, arg0: adbVersion, arg1: maxData, payload: []byte("host::\x00")}
	if _, err := conn.Write(cnxn.encode()); err != nil {
		return message{}, fmt.Errorf("send CNXN: %w", err)
	}
	m, err := readMessage(conn)
	if err != nil {
		return message{}, fmt.Errorf("read reply to CNXN: %w", err)
	}
	switch m.cmd {
	case cmdCNXN, cmdAUTH, cmdSTLS:
		return m, nil
	}
	return message{}, fmt.Errorf("%w: %s in reply to CNXN", errMalformed, cmdName(m.cmd))
}

// Identify sends an ADB CNXN. A CNXN reply means ADB without
// authentication, AUTH (TOKEN) means ADB requiring an authorised RSA key,
// STLS means ADB over TLS (Android 11+ wireless debugging, paired hosts
// only).
//
// Info keys: "auth" ("none", "rsa-key", "tls"), "adb_version" (hex),
// "max_data", and from a CNXN banner "state" ("device", "recovery", ...),
// "product_name", "product_model", "product_device", "features".
func (p *Protocol) Identify(ctx context.Context, conn net.Conn, banner []byte, ep proto.Endpoint) (*proto.Identity, error) {
	if len(banner) > 0 {
		return nil, fmt.Errorf("adb identify %s: server spoke first: %w", ep.Addr(), proto.ErrNotThisProtocol)
	}
	m, err := hello(ctx, conn, ep.IOTimeout())
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("adb identify %s: %w", ep.Addr(), ctx.Err())
		}
		return nil, fmt.Errorf("adb identify %s: %v: %w", ep.Addr(), err, proto.ErrNotThisProtocol)
	}
	id := &proto.Identity{Protocol: "adb", Product: "adbd", TLS: ep.TLS}
	switch m.cmd {
	case cmdCNXN:
		bn, ok := parseBanner(m.payload)
		if !ok {
			return nil, fmt.Errorf("adb identify %s: CNXN banner %q: %w", ep.Addr(), proto.Printable(m.payload), proto.ErrNotThisProtocol)
		}
		id.Set("auth", "none")
		id.Set("adb_version", fmt.Sprintf("0x%08x", m.arg0))
		id.Set("max_data", strconv.FormatUint(uint64(m.arg1), 10))
		id.Banner = proto.Printable(m.payload)
		setBanner(id, bn)
	case cmdAUTH:
		if m.arg0 != authToken || len(m.payload) == 0 {
			return nil, fmt.Errorf("adb identify %s: AUTH type %d: %w", ep.Addr(), m.arg0, proto.ErrNotThisProtocol)
		}
		id.Set("auth", "rsa-key")
	case cmdSTLS:
		id.Set("auth", "tls")
		id.Set("adb_version", fmt.Sprintf("0x%08x", m.arg0))
	}
	return id, nil
}

// setBanner copies banner facts into the identity.
func setBanner(id *proto.Identity, bn banner) {
	id.Set("state", proto.Printable([]byte(bn.state)))
	for prop, key := range map[string]string{
		"ro.product.name":   "product_name",
		"ro.product.model":  "product_model",
		"ro.product.device": "product_device",
		"features":          "features",
	} {
		if v := bn.props[prop]; v != "" {
			id.Set(key, proto.Printable([]byte(v)))
		}
	}
	for _, prop := range []string{"ro.product.manufacturer", "ro.product.brand"} {
		if v := bn.props[prop]; v != "" {
			id.Vendor = strings.ToLower(proto.Printable([]byte(v)))
			break
		}
	}
}

// shellProof opens "shell:echo iotcop-$((a+b))" and reports whether the
// output holds the sum: only a shell that evaluated the expression can
// produce it, a peer that reflects our request cannot.
func shellProof(ctx context.Context, conn net.Conn, timeout time.Duration) (bool, error) {
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	a, b := int(binary.BigEndian.Uint16(rb[:2])), int(binary.BigEndian.Uint16(rb[2:]))
	want := fmt.Sprintf("iotcop-%d", a+b)
	const localID = 1
	_ = conn.SetDeadline(deadline(ctx, timeout))
	open := message{cmd: cmdOPEN, arg0: localID, payload: fmt.Appendf(nil, "shell:echo iotcop-$((%d+%d))\x00", a, b)}
	if _, err := conn.Write(open.encode()); err != nil {
		return false, fmt.Errorf("send OPEN shell: %w", err)
	}
	var out []byte
	for range maxShellMessages {
		m, err := readMessage(conn)
		if err != nil {
			return false, fmt.Errorf("read shell stream: %w", err)
		}
		if m.arg1 != localID {
			continue
		}
		switch m.cmd {
		case cmdWRTE:
			out = append(out, m.payload[:min(len(m.payload), maxShellOutput-len(out))]...)
			okay := message{cmd: cmdOKAY, arg0: localID, arg1: m.arg0}
			if _, err := conn.Write(okay.encode()); err != nil {
				return false, fmt.Errorf("send OKAY: %w", err)
			}
			if strings.Contains(string(out), want) {
				clse := message{cmd: cmdCLSE, arg0: localID, arg1: m.arg0}
				_, _ = conn.Write(clse.encode())
				return true, nil
			}
		case cmdCLSE:
			return false, nil
		}
	}
	return false, nil
}

// ProbeOpenAccess connects with CNXN; a CNXN answer without an AUTH
// challenge is open access. It then runs a harmless shell echo of a sum
// for the strongest proof, falling back to the CNXN proof when the shell
// service does not answer. It returns nil, nil when the daemon asks for
// key authentication or TLS.
//
// Details keys: "banner", "shell_proven" (bool), "state", "product_model".
func (p *Protocol) ProbeOpenAccess(ctx context.Context, ep proto.Endpoint, id *proto.Identity) (*proto.OpenAccess, error) {
	conn, err := ep.Connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("adb open access probe on %s: %w", ep.Addr(), err)
	}
	defer conn.Close()
	m, err := hello(ctx, conn, ep.IOTimeout())
	if err != nil {
		return nil, fmt.Errorf("adb open access probe on %s: %w", ep.Addr(), err)
	}
	if m.cmd != cmdCNXN {
		return nil, nil
	}
	bn, ok := parseBanner(m.payload)
	if !ok {
		return nil, nil
	}
	shell, _ := shellProof(ctx, conn, ep.IOTimeout())
	oa := &proto.OpenAccess{
		What:  "ADB shell access without authentication",
		Proof: "CNXN accepted without AUTH (banner " + strconv.Quote(proto.Printable(m.payload)) + ")",
		Details: map[string]any{
			"banner":        proto.Printable(m.payload),
			"shell_proven":  shell,
			"state":         bn.state,
			"product_model": bn.props["ro.product.model"],
		},
	}
	if shell {
		oa.Proof += " and a shell evaluated echo $((a+b))"
	}
	return oa, nil
}
