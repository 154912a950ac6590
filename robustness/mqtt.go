package robustness

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/iotcop/iotcop/proto"
)

// $SYS topics that tell a broker's age. mosquitto publishes uptime as
// "1234 seconds"; mochi as "1234" and also the start time.
const (
	sysUptime  = "$SYS/broker/uptime"
	sysStarted = "$SYS/broker/started"
)

// maxSysPacket caps one packet read from a broker while collecting $SYS.
const maxSysPacket = 4 << 10

// sysInfo is what a broker said about its age.
type sysInfo struct {
	uptime    int64
	hasUptime bool
	started   string
}

// restarted compares two readings and describes a restart, or returns "".
// Uptime never goes backwards and the start time never changes unless the
// broker restarted.
func restarted(before, after sysInfo) string {
	switch {
	case before.started != "" && after.started != "" && before.started != after.started:
		return fmt.Sprintf("%s changed from %s to %s", sysStarted, before.started, after.started)
	case before.hasUptime && after.hasUptime && after.uptime < before.uptime:
		return fmt.Sprintf("%s went from %d to %d", sysUptime, before.uptime, after.uptime)
	}
	return ""
}

// readSys connects anonymously, subscribes to the broker's uptime and start
// time and collects the retained values for a short while. An error means
// the broker gave nothing usable (login required, no $SYS tree).
func readSys(ctx context.Context, ep proto.Endpoint) (sysInfo, error) {
	conn, err := ep.Connect(ctx)
	if err != nil {
		return sysInfo{}, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	deadline := time.Now().Add(ep.IOTimeout())
	_ = conn.SetDeadline(deadline)
	r := bufio.NewReaderSize(conn, 512)
	if _, err := conn.Write(connectPacket("MQTT", 4)); err != nil {
		return sysInfo{}, fmt.Errorf("mqtt connect to %s: %w", ep.Addr(), err)
	}
	typ, _, body, err := readPacket(r, maxSysPacket)
	if err != nil {
		return sysInfo{}, fmt.Errorf("mqtt connack from %s: %w", ep.Addr(), err)
	}
	if typ != 2 || len(body) < 2 || body[1] != 0 {
		return sysInfo{}, fmt.Errorf("mqtt %s refused an anonymous session", ep.Addr())
	}
	sub := []byte{0, 1}
	for _, t := range []string{sysUptime, sysStarted} {
		sub = append(appendString(sub, t), 0)
	}
	if _, err := conn.Write(frame(0x82, sub)); err != nil {
		return sysInfo{}, fmt.Errorf("mqtt subscribe on %s: %w", ep.Addr(), err)
	}
	defer func() { _, _ = conn.Write([]byte{0xe0, 0}) }()
	var si sysInfo
	// Retained values arrive right after the SUBACK: wait a little for the
	// first, then only briefly for the other (mosquitto has no "started").
	wait := time.Now().Add(min(ep.IOTimeout(), 1500*time.Millisecond))
	for si.started == "" || !si.hasUptime {
		if brief := time.Now().Add(200 * time.Millisecond); (si.started != "" || si.hasUptime) && brief.Before(wait) {
			wait = brief
		}
		_ = conn.SetReadDeadline(wait)
		typ, flags, body, err := readPacket(r, maxSysPacket)
		if err != nil {
			break
		}
		if typ != 3 {
			continue
		}
		topic, payload, ok := parsePublish(flags, body)
		if !ok {
			continue
		}
		switch topic {
		case sysUptime:
			if n, ok := leadingInt(payload); ok {
				si.uptime, si.hasUptime = n, true
			}
		case sysStarted:
			si.started = proto.Printable(payload)
		}
	}
	if !si.hasUptime && si.started == "" {
		return si, fmt.Errorf("mqtt %s published no %s", ep.Addr(), sysUptime)
	}
	return si, nil
}

// readPacket reads one MQTT packet: its type, flags and body. Bodies over
// max bytes are refused without being read.
func readPacket(r io.Reader, max int) (typ, flags byte, body []byte, err error) {
	var one [1]byte
	if _, err := io.ReadFull(r, one[:]); err != nil {
		return 0, 0, nil, err
	}
	typ, flags = one[0]>>4, one[0]&0x0f
	n, mult := 0, 1
	for i := 0; ; i++ {
		if i == 4 {
			return typ, flags, nil, fmt.Errorf("mqtt remaining length longer than 4 bytes")
		}
		if _, err := io.ReadFull(r, one[:]); err != nil {
			return typ, flags, nil, err
		}
		n += int(one[0]&0x7f) * mult
		mult *= 128
		if one[0]&0x80 == 0 {
			break
		}
	}
	if n > max {
		return typ, flags, nil, fmt.Errorf("%w (%d bytes)", errPacketTooLarge, n)
	}
	body = make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return typ, flags, nil, err
	}
	return typ, flags, body, nil
}

// parsePublish splits a PUBLISH body (MQTT 3.1.1) into topic and payload.
func parsePublish(flags byte, body []byte) (topic string, payload []byte, ok bool) {
	if len(body) < 2 {
		return "", nil, false
	}
	n := int(body[0])<<8 | int(body[1])
	if len(body) < 2+n {
		return "", nil, false
	}
	topic, rest := string(body[2:2+n]), body[2+n:]
	if flags>>1&3 > 0 { // QoS 1 or 2 carries a packet id
		if len(rest) < 2 {
			return "", nil, false
		}
		rest = rest[2:]
	}
	return topic, rest, true
}

// leadingInt parses the decimal number a payload starts with ("1234
// seconds" gives 1234).
func leadingInt(b []byte) (int64, bool) {
	s := strings.TrimSpace(string(b))
	end := 0
	for end < len(s) && end < 18 && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	if end == 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(s[:end], 10, 64)
	return n, err == nil
}
