package sweep

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Port is a port number and its transport ("tcp" or "udp").
type Port struct {
	Number    int
	Transport string
}

// String renders the port as "23/tcp".
func (p Port) String() string { return fmt.Sprintf("%d/%s", p.Number, p.Transport) }

// DefaultTCP is the IoT TCP port set: remote logins, web admin, RTSP,
// MQTT, TR-069, ADB, vendor DVR/NVR ports and UPnP.
var defaultTCP = []int{21, 22, 23, 80, 81, 443, 554, 1883, 2323, 5000, 5555, 7547, 8000, 8080, 8081, 8443, 8883, 9000, 37777, 49152}

// defaultUDP are probed with a protocol payload, since UDP has no handshake.
var defaultUDP = []int{161, 1900, 5353, 5683}

// DefaultPorts returns the IoT port set, TCP then UDP.
func DefaultPorts() []Port {
	out := make([]Port, 0, len(defaultTCP)+len(defaultUDP))
	for _, p := range defaultTCP {
		out = append(out, Port{p, "tcp"})
	}
	for _, p := range defaultUDP {
		out = append(out, Port{p, "udp"})
	}
	return out
}

// ParsePorts parses an nmap-style list: "22,80-90,T:8080,U:161,5683/udp".
// Bare numbers are TCP; "T:" and "U:" switch the transport for the items
// that follow, as in nmap. "default" expands to DefaultPorts.
func ParsePorts(spec string) ([]Port, error) {
	seen := map[Port]bool{}
	var out []Port
	add := func(p Port) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	transport := "tcp"
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		switch {
		case strings.HasPrefix(item, "T:"), strings.HasPrefix(item, "t:"):
			transport, item = "tcp", item[2:]
		case strings.HasPrefix(item, "U:"), strings.HasPrefix(item, "u:"):
			transport, item = "udp", item[2:]
		}
		if item == "default" {
			for _, p := range DefaultPorts() {
				add(p)
			}
			continue
		}
		tr := transport
		if n, suffix, ok := strings.Cut(item, "/"); ok {
			if suffix != "tcp" && suffix != "udp" {
				return nil, fmt.Errorf("port %q: transport must be tcp or udp", item)
			}
			item, tr = n, suffix
		}
		lo, hi, isRange := strings.Cut(item, "-")
		a, err := parsePortNumber(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = parsePortNumber(hi); err != nil {
				return nil, err
			}
			if b < a {
				return nil, fmt.Errorf("port range %q ends before it starts", item)
			}
		}
		for p := a; p <= b; p++ {
			add(Port{p, tr})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("port list %q names no port", spec)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Transport != out[j].Transport {
			return out[i].Transport == "tcp"
		}
		return out[i].Number < out[j].Number
	})
	return out, nil
}

func parsePortNumber(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return n, nil
}
