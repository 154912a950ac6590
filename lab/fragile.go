package lab

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A fragile service fails on one specific malformed input, for testing
// iotcop's robustness check: ServiceSpec.Fragile names the inputs (by the
// names of iotcop's robustness catalogue) and FragileMode says what the
// failure looks like. In "reboot" mode (the default) the whole device
// stops — every listener and socket closed, so connections are refused —
// and comes back fragileDowntime later with fresh processes (a new MQTT
// $SYS/broker/started, new SSH host keys unless shared). In "hang" mode the
// service that got the input keeps accepting connections but never answers
// again, while the device's other services carry on.
//
// The lab sees a service's input as raw bytes before the protocol server
// parses them, so only plain-text TCP services can be fragile.

// Fragile modes.
const (
	FragileReboot = "reboot"
	FragileHang   = "hang"
)

const (
	// fragileDowntime is how long a rebooting device stays down.
	fragileDowntime = 3 * time.Second
	// fragileInspect caps the bytes of one connection the recognisers see.
	fragileInspect = 32 << 10
	// fragileBurst is how many silent connections at once break a service
	// fragile to the connection burst.
	fragileBurst = 16
	// Limits the recognisers use: a line or URI longer than this, more
	// header lines than this.
	fragileLongLine    = 4096
	fragileManyHeaders = 256
)

// fragileRecogniser spots one malformed input in the bytes a connection
// sent so far.
type fragileRecogniser struct {
	// family is the protocol the input is for; "tcp" fits every plain TCP
	// service.
	family string
	// match is nil for the connection burst (counted at accept).
	match func(in []byte) bool
}

// fragileBurstProbe is the catalogue name of the idle-connection burst.
const fragileBurstProbe = "tcp-half-open-burst"

// fragileRecognisers maps robustness probe names to what the lab spots.
var fragileRecognisers = map[string]fragileRecogniser{
	"http-invalid-request-line": {"http", func(in []byte) bool {
		h := parseHead(in)
		if !h.firstDone {
			return false
		}
		f := bytes.Split(h.lines[0], []byte(" "))
		return len(f) != 3 || !validHTTPVersion(f[2])
	}},
	"http-long-uri": {"http", func(in []byte) bool {
		h := parseHead(in)
		return len(h.lines) > 0 && len(h.lines[0]) > fragileLongLine
	}},
	"http-oversized-header": {"http", func(in []byte) bool {
		h := parseHead(in)
		for _, l := range h.headerLines(true) {
			if len(l) > fragileLongLine {
				return true
			}
		}
		return false
	}},
	"http-header-no-colon": {"http", func(in []byte) bool {
		for _, l := range parseHead(in).headerLines(false) {
			if len(l) > 0 && !bytes.Contains(l, []byte(":")) {
				return true
			}
		}
		return false
	}},
	"http-negative-content-length": {"http", func(in []byte) bool {
		v, ok := parseHead(in).header("content-length")
		return ok && strings.HasPrefix(v, "-")
	}},
	"http-huge-content-length": {"http", func(in []byte) bool {
		v, ok := parseHead(in).header("content-length")
		return ok && hugeNumber(v, 1<<62)
	}},
	"http-bad-chunk-size": {"http", func(in []byte) bool {
		h := parseHead(in)
		te, _ := h.header("transfer-encoding")
		if !h.complete || !strings.EqualFold(te, "chunked") {
			return false
		}
		line, _, ok := bytes.Cut(h.body, []byte("\n"))
		if !ok {
			return false
		}
		size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r"), []byte(";"))
		size = bytes.TrimSpace(size)
		if len(size) == 0 {
			return true
		}
		for _, c := range size {
			if !strings.ContainsRune("0123456789abcdefABCDEF", rune(c)) {
				return true
			}
		}
		return false
	}},
	"http-many-headers": {"http", func(in []byte) bool {
		return len(parseHead(in).lines) > fragileManyHeaders
	}},
	"http-nul-bytes": {"http", func(in []byte) bool {
		return bytes.IndexByte(parseHead(in).raw, 0) >= 0
	}},

	"rtsp-bad-cseq": {"rtsp", func(in []byte) bool {
		v, ok := parseHead(in).header("cseq")
		if !ok {
			return false
		}
		if len(v) == 0 || len(v) > 9 {
			return true
		}
		_, err := strconv.Atoi(v)
		return err != nil || strings.HasPrefix(v, "-") || strings.HasPrefix(v, "+")
	}},
	"rtsp-huge-content-length": {"rtsp", func(in []byte) bool {
		v, ok := parseHead(in).header("content-length")
		return ok && hugeNumber(v, 1<<31)
	}},

	"mqtt-publish-before-connect": {"mqtt", func(in []byte) bool {
		return len(in) > 0 && in[0]>>4 == 3
	}},
	"mqtt-bad-protocol-name": {"mqtt", func(in []byte) bool {
		if len(in) < 2 || in[0] != 0x10 {
			return false
		}
		i := 1
		for ; i < len(in) && i <= 4 && in[i]&0x80 != 0; i++ {
		}
		i++ // the last length byte
		if i > 5 || len(in) < i+2 {
			return false
		}
		n := int(in[i])<<8 | int(in[i+1])
		if len(in) < i+2+n {
			return false
		}
		name := string(in[i+2 : i+2+n])
		return name != "MQTT" && name != "MQIsdp"
	}},
	"mqtt-remaining-length-overflow": {"mqtt", func(in []byte) bool {
		return len(in) >= 5 && in[1]&in[2]&in[3]&in[4]&0x80 != 0
	}},

	"telnet-option-flood": {"telnet", func(in []byte) bool {
		n := 0
		for i := 0; i+1 < len(in); i++ {
			if in[i] == tnIAC && in[i+1] >= tnWILL && in[i+1] <= tnDONT {
				n++
				i++
			}
		}
		return n >= 512
	}},
	"telnet-sb-without-se": {"telnet", func(in []byte) bool {
		i := bytes.Index(in, []byte{tnIAC, tnSB})
		return i >= 0 && len(in)-i >= 1024 && !bytes.Contains(in[i:], []byte{tnIAC, tnSE})
	}},

	fragileBurstProbe: {"tcp", nil},
}

// validHTTPVersion accepts HTTP/d.d.
func validHTTPVersion(v []byte) bool {
	return len(v) == 8 && bytes.HasPrefix(v, []byte("HTTP/")) && v[5] >= '0' && v[5] <= '9' && v[6] == '.' && v[7] >= '0' && v[7] <= '9'
}

// hugeNumber reports whether v is a decimal number of at least limit (or
// too long to parse).
func hugeNumber(v string, limit uint64) bool {
	if v == "" || strings.Trim(v, "0123456789") != "" {
		return false
	}
	n, err := strconv.ParseUint(v, 10, 64)
	return err != nil || n >= limit
}

// head is the start of an HTTP or RTSP request as far as it was read.
type head struct {
	raw   []byte   // the head (without the blank line)
	lines [][]byte // its lines without line ends; the last may be partial
	// complete is true once the blank line was seen; body is what follows.
	complete  bool
	body      []byte
	firstDone bool // the request line is complete
	lastDone  bool // the last line is complete
}

func parseHead(in []byte) head {
	var h head
	end, sep := bytes.Index(in, []byte("\r\n\r\n")), 4
	if e2 := bytes.Index(in, []byte("\n\n")); e2 >= 0 && (end < 0 || e2 < end) {
		end, sep = e2, 2
	}
	h.raw = in
	if end >= 0 {
		h.raw, h.body, h.complete = in[:end], in[end+sep:], true
	}
	h.lastDone = h.complete
	if !h.complete && bytes.HasSuffix(h.raw, []byte("\n")) {
		h.lastDone = true
	}
	rest := h.raw
	for len(rest) > 0 {
		line, after, found := bytes.Cut(rest, []byte("\n"))
		h.lines = append(h.lines, bytes.TrimSuffix(line, []byte("\r")))
		rest = after
		if !found {
			break
		}
	}
	h.firstDone = len(h.lines) > 1 || len(h.lines) == 1 && h.lastDone
	return h
}

// headerLines returns the lines after the request line; partial includes
// a last line not yet ended.
func (h head) headerLines(partial bool) [][]byte {
	if len(h.lines) < 2 {
		return nil
	}
	l := h.lines[1:]
	if !partial && !h.lastDone {
		l = l[:len(l)-1]
	}
	return l
}

// header returns the value of the first complete header called name.
func (h head) header(name string) (string, bool) {
	for _, l := range h.headerLines(false) {
		k, v, ok := bytes.Cut(l, []byte(":"))
		if ok && strings.EqualFold(string(bytes.TrimSpace(k)), name) {
			return string(bytes.TrimSpace(v)), true
		}
	}
	return "", false
}

// fragileNames lists the names a service may be fragile to.
func fragileNames() string {
	names := make([]string, 0, len(fragileRecognisers))
	for n := range fragileRecognisers {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// validateFragile checks the fragile settings of one service.
func (s ServiceSpec) validateFragile() error {
	if len(s.Fragile) == 0 {
		if s.FragileMode != "" {
			return fieldErr("fragile_mode without fragile", "fragile_mode")
		}
		return nil
	}
	if info := protocols[s.Protocol]; info.transport != "tcp" || info.tls || s.Protocol == "upnp" {
		return fieldErr("only plain-text TCP services can be fragile (the lab must see the raw input)", "fragile")
	}
	for k, name := range s.Fragile {
		r, ok := fragileRecognisers[name]
		if !ok {
			return fieldErr(fmt.Sprintf("unknown fragile input %q (want one of %s)", name, fragileNames()), "fragile", k)
		}
		if r.family != "tcp" && r.family != s.Protocol {
			return fieldErr(fmt.Sprintf("%s is a %s input; this service speaks %s", name, r.family, s.Protocol), "fragile", k)
		}
	}
	switch s.FragileMode {
	case "", FragileReboot, FragileHang:
	default:
		return fieldErr(fmt.Sprintf("unknown fragile_mode %q (want %s or %s)", s.FragileMode, FragileReboot, FragileHang), "fragile_mode")
	}
	return nil
}

// fragile reports whether any service of the device is fragile.
func (d DeviceSpec) fragile() bool {
	for _, s := range d.Services {
		if len(s.Fragile) > 0 {
			return true
		}
	}
	return false
}

// fragileDevice runs a device that can fail: its services live in a
// sub-lab that a reboot closes and starts again.
type fragileDevice struct {
	dev   *device
	keys  *keyStore
	log   *slog.Logger
	specs []RunningService // resolved, random passwords fixed, for restarts
	svcs  map[int]*fragileService

	// dead is set the moment the device fails: its TCP listeners are
	// closed at once and its open connections stop working, before the
	// sub-lab is torn down in the background.
	dead atomic.Bool

	mu     sync.Mutex
	sub    *Lab
	down   bool
	closed bool
	timer  *time.Timer
	wg     sync.WaitGroup

	// lnMu guards svcs and listeners (the sub-lab's TCP listeners); taken
	// after mu when both are needed.
	lnMu      sync.Mutex
	listeners []net.Listener
}

// fragileService is the failure state of one TCP service (kept across
// reboots); services without fragile inputs get one too, so that they go
// down with the device.
type fragileService struct {
	fd     *fragileDevice
	port   int
	names  []string
	hang   bool
	hung   atomic.Bool
	silent atomic.Int32 // open connections that sent nothing yet
}

// startFragileDevice starts spec like startDevice, inside a sub-lab that
// can be stopped and restarted.
func (l *Lab) startFragileDevice(spec DeviceSpec, addr string, keys *keyStore) (RunningDevice, error) {
	dev := newDevice(spec, addr)
	rd := RunningDevice{Name: spec.Name, Kind: spec.Kind, Vendor: dev.vendor, Model: dev.model,
		Firmware: dev.firmware, Address: addr}
	fd := &fragileDevice{dev: dev, keys: keys, log: l.log.With("device", spec.Name), svcs: map[int]*fragileService{}}
	sub := &Lab{log: l.log, wrap: fd.wrap}
	fd.sub = sub
	for _, svc := range spec.Services {
		rs := resolveService(svc)
		if len(rs.Fragile) > 0 {
			fd.svcs[rs.Port] = &fragileService{fd: fd, port: rs.Port, names: slices.Clone(rs.Fragile),
				hang: rs.FragileMode == FragileHang}
		}
		started, err := sub.startService(dev, rs, keys)
		if err != nil {
			_ = sub.Close()
			return rd, fmt.Errorf("device %s: start %s on %s: %w", spec.Name, rs.Protocol,
				net.JoinHostPort(addr, strconv.Itoa(rs.Port)), explainBindError(err, rs.Port))
		}
		for _, s := range started {
			rd.Services = append(rd.Services, s)
			rd.Flaws = append(rd.Flaws, flawsOf(s)...)
		}
		again := started[0]
		again.RandomPassword = false
		fd.specs = append(fd.specs, again)
	}
	l.addCloser(fd.close)
	return rd, nil
}

// wrap watches the input of the device's TCP services.
func (fd *fragileDevice) wrap(ln net.Listener, rs RunningService) net.Listener {
	fd.lnMu.Lock()
	defer fd.lnMu.Unlock()
	fs := fd.svcs[rs.Port]
	if fs == nil {
		fs = &fragileService{fd: fd, port: rs.Port}
		fd.svcs[rs.Port] = fs
	}
	fd.listeners = append(fd.listeners, ln)
	return &fragileListener{Listener: ln, fs: fs}
}

// fail makes the device fail after input it is fragile to.
func (fs *fragileService) fail(name string) {
	fs.fd.log.Info("fragile service failed", "port", fs.port, "input", name, "hang", fs.hang)
	if fs.hang {
		fs.hung.Store(true)
		return
	}
	fs.fd.reboot()
}

// reboot stops every service of the device now and starts them again
// after fragileDowntime.
func (fd *fragileDevice) reboot() {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	if fd.closed || fd.down || fd.sub == nil {
		return
	}
	fd.down = true
	fd.dead.Store(true)
	fd.lnMu.Lock()
	for _, ln := range fd.listeners {
		_ = ln.Close() // refused from now on; the servers notice and stop
	}
	fd.listeners = nil
	fd.lnMu.Unlock()
	sub := fd.sub
	fd.sub = nil
	fd.wg.Add(1)
	// Not inline: the failing connection's handler belongs to sub, whose
	// Close waits for it.
	go func() {
		defer fd.wg.Done()
		_ = sub.Close()
		fd.mu.Lock()
		defer fd.mu.Unlock()
		if fd.closed {
			return
		}
		fd.wg.Add(1)
		fd.timer = time.AfterFunc(fragileDowntime, fd.restart)
	}()
}

// restart starts the device's services again.
func (fd *fragileDevice) restart() {
	defer fd.wg.Done()
	fd.mu.Lock()
	defer fd.mu.Unlock()
	fd.timer = nil
	if fd.closed {
		return
	}
	fd.dead.Store(false)
	sub := &Lab{log: fd.log, wrap: fd.wrap}
	for _, rs := range fd.specs {
		if _, err := sub.startService(fd.dev, rs, fd.keys); err != nil {
			fd.log.Error("fragile device restart", "protocol", rs.Protocol, "port", rs.Port, "err", err)
		}
	}
	fd.sub, fd.down = sub, false
	fd.log.Info("fragile device back")
}

// close stops the device for good and waits for reboots in flight.
func (fd *fragileDevice) close() {
	fd.mu.Lock()
	fd.closed = true
	if fd.timer != nil && fd.timer.Stop() {
		fd.wg.Done()
	}
	sub := fd.sub
	fd.sub = nil
	fd.mu.Unlock()
	if sub != nil {
		_ = sub.Close()
	}
	fd.wg.Wait()
}

// fragileListener wraps the accepted connections of a fragile service.
type fragileListener struct {
	net.Listener
	fs *fragileService
}

func (l *fragileListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if l.fs.fd.dead.Load() {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	fc := &fragileConn{Conn: c, fs: l.fs}
	fc.silent.Store(true)
	if l.fs.silent.Add(1) >= fragileBurst && slices.Contains(l.fs.names, fragileBurstProbe) && !l.fs.hung.Load() {
		l.fs.fail(fragileBurstProbe)
		if !l.fs.hang {
			_ = fc.Close()
			return nil, net.ErrClosed
		}
	}
	return fc, nil
}

// errFragileFailed ends the connection that broke a rebooting device.
var errFragileFailed = errors.New("lab: fragile device failed")

// fragileConn shows the recognisers what the peer sends, and plays dead
// once its service hung.
type fragileConn struct {
	net.Conn
	fs     *fragileService
	silent atomic.Bool
	seen   []byte
}

func (c *fragileConn) spoke() {
	if c.silent.CompareAndSwap(true, false) {
		c.fs.silent.Add(-1)
	}
}

func (c *fragileConn) Read(p []byte) (int, error) {
	if c.fs.fd.dead.Load() {
		return 0, errFragileFailed
	}
	if c.fs.hung.Load() {
		return c.playDead()
	}
	n, err := c.Conn.Read(p)
	if n == 0 {
		return n, err
	}
	c.spoke()
	if len(c.seen) < fragileInspect {
		c.seen = append(c.seen, p[:min(n, fragileInspect-len(c.seen))]...)
		for _, name := range c.fs.names {
			if r := fragileRecognisers[name]; r.match != nil && r.match(c.seen) {
				c.fs.fail(name)
				if c.fs.hang {
					return c.playDead()
				}
				return 0, errFragileFailed
			}
		}
	}
	return n, err
}

// playDead reads and drops whatever the peer sends until the connection
// ends (the server's own deadlines still apply).
func (c *fragileConn) playDead() (int, error) {
	buf := make([]byte, 1024)
	for {
		if _, err := c.Conn.Read(buf); err != nil {
			return 0, err
		}
	}
}

func (c *fragileConn) Write(p []byte) (int, error) {
	if c.fs.fd.dead.Load() {
		return 0, errFragileFailed
	}
	if c.fs.hung.Load() {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *fragileConn) Close() error {
	c.spoke()
	return c.Conn.Close()
}
