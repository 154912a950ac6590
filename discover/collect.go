package discover

import (
	"cmp"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/iotcop/iotcop/proto/mdns"
	"github.com/iotcop/iotcop/proto/ssdp"
)

// Bounds on what one discovery keeps.
const (
	maxHosts          = 1024
	maxServices       = 64 // per device
	maxNames          = 16 // per device
	maxTXT            = 32 // strings per service
	maxLocations      = 4  // per device
	maxTypes          = 64
	maxInstances      = 512
	maxTargets        = 256
	maxAsks           = 2 // times one follow-up question is sent
	maxText           = 256
	maxLocation       = 512
	maxIDs            = 256
	localSuffixTCP    = "._tcp.local"
	localSuffixUDP    = "._udp.local"
	servicesEnumLower = "_services._dns-sd._udp.local."
)

// collector gathers answers from the reading goroutines and decides which
// mDNS follow-up questions are still worth asking.
type collector struct {
	mu    sync.Mutex
	hosts map[netip.Addr]*host
	ids   map[uint16]bool // mDNS query ids sent

	// Follow-ups, keyed by lower-case name.
	types     map[string]*followUp // service types: ask PTR for instances
	instances map[string]*followUp // instances: ask SRV and TXT
	targets   map[string]*followUp // SRV targets: ask A
}

type followUp struct {
	name  string
	asked int
	last  time.Time
	done  bool
}

// host is what one address said.
type host struct {
	mdns, ssdp bool
	server     string
	locations  []string
	names      []string
	services   map[string]*Service // by lower-case full instance name
}

func newCollector() *collector {
	return &collector{
		hosts:     map[netip.Addr]*host{},
		ids:       map[uint16]bool{},
		types:     map[string]*followUp{},
		instances: map[string]*followUp{},
		targets:   map[string]*followUp{},
	}
}

// newID picks and remembers an mDNS query id.
func (c *collector) newID() uint16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		id := uint16(rand.N(1<<16-1)) + 1
		if !c.ids[id] || len(c.ids) >= maxIDs {
			c.ids[id] = true
			return id
		}
	}
}

// host returns the state of addr, creating it unless maxHosts are known.
func (c *collector) host(addr netip.Addr) *host {
	if h := c.hosts[addr]; h != nil {
		return h
	}
	if len(c.hosts) >= maxHosts || !addr.IsValid() {
		return nil
	}
	h := &host{services: map[string]*Service{}}
	c.hosts[addr] = h
	return h
}

// addSSDP records an M-SEARCH answer from addr.
func (c *collector) addSSDP(addr netip.Addr, r ssdp.Response) {
	if !r.IsSearchAnswer() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.host(addr)
	if h == nil {
		return
	}
	h.ssdp = true
	if s := clean(r.Headers["server"], maxText); s != "" && h.server == "" {
		h.server = s
	}
	if l := clean(r.Headers["location"], maxLocation); l != "" && len(h.locations) < maxLocations && !slices.Contains(h.locations, l) {
		h.locations = append(h.locations, l)
	}
}

// addMDNS records an mDNS response from addr. Records describe addr only:
// the services it advertises, and the names whose address record is addr
// itself. Records about other addresses create no device and no name: a
// responder may lie about them.
func (c *collector) addMDNS(addr netip.Addr, m mdns.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.ID != 0 && !c.ids[m.ID] {
		return // an answer to someone else's unicast query
	}
	var h *host
	get := func() *host {
		if h == nil {
			if h = c.host(addr); h != nil {
				h.mdns = true
			}
		}
		return h
	}
	for _, p := range m.PTRs {
		if strings.EqualFold(p.Owner, servicesEnumLower) {
			if isServiceType(p.Target) && get() != nil {
				remember(c.types, p.Target, maxTypes)
			}
			continue
		}
		if _, _, ok := splitInstance(p.Target); !ok {
			continue
		}
		if f := c.types[strings.ToLower(p.Owner)]; f != nil {
			f.done = true
		}
		if get() != nil && get().service(p.Target) != nil {
			remember(c.instances, p.Target, maxInstances)
		}
	}
	for _, s := range m.SRVs {
		if get() == nil {
			break
		}
		svc := h.service(s.Owner)
		if svc == nil {
			continue
		}
		target := clean(strings.TrimSuffix(s.Target, "."), maxText)
		svc.Host, svc.Port = target, int(s.Port)
		if f := remember(c.instances, s.Owner, maxInstances); f != nil {
			f.done = true
		}
		if target != "" {
			remember(c.targets, s.Target, maxTargets)
		}
	}
	for _, t := range m.TXTs {
		if get() == nil {
			break
		}
		svc := h.service(t.Owner)
		if svc == nil {
			continue
		}
		svc.TXT = svc.TXT[:0]
		for _, s := range t.Strings {
			if s = clean(s, maxText); s != "" && len(svc.TXT) < maxTXT {
				svc.TXT = append(svc.TXT, s)
			}
		}
	}
	for _, a := range m.Addrs {
		if f := c.targets[strings.ToLower(a.Owner)]; f != nil {
			f.done = true
		}
		if a.IP.Unmap() == addr && get() != nil {
			h.addName(clean(strings.TrimSuffix(a.Owner, "."), maxText))
		}
	}
}

// remember adds name to set unless the set is full, returning its entry.
func remember(set map[string]*followUp, name string, max int) *followUp {
	key := strings.ToLower(name)
	if f := set[key]; f != nil {
		return f
	}
	if len(set) >= max {
		return nil
	}
	f := &followUp{name: name}
	set[key] = f
	return f
}

// service returns the service for the full instance name, creating it
// unless the name is not a DNS-SD instance or maxServices are known.
func (h *host) service(full string) *Service {
	key := strings.ToLower(full)
	if s := h.services[key]; s != nil {
		return s
	}
	inst, typ, ok := splitInstance(full)
	if !ok || len(h.services) >= maxServices {
		return nil
	}
	s := &Service{Instance: clean(inst, maxText), Type: clean(typ, maxText)}
	h.services[key] = s
	return s
}

func (h *host) addName(name string) {
	if name == "" || len(h.names) >= maxNames {
		return
	}
	for _, n := range h.names {
		if strings.EqualFold(n, name) {
			return
		}
	}
	h.names = append(h.names, name)
}

// pending returns the follow-up questions due at now: PTR for service
// types, SRV and TXT for instances, A for SRV targets not yet answered.
// Each is asked at most maxAsks times, retryAfter apart.
func (c *collector) pending(now time.Time) []mdns.Question {
	c.mu.Lock()
	defer c.mu.Unlock()
	var qs []mdns.Question
	due := func(set map[string]*followUp, types ...dnsmessage.Type) {
		keys := make([]string, 0, len(set))
		for k := range set {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			f := set[k]
			if f.done || f.asked >= maxAsks || (f.asked > 0 && now.Sub(f.last) < retryAfter) {
				continue
			}
			f.asked++
			f.last = now
			for _, t := range types {
				qs = append(qs, mdns.Question{Name: f.name, Type: t})
			}
		}
	}
	due(c.types, dnsmessage.TypePTR)
	due(c.instances, dnsmessage.TypeSRV, dnsmessage.TypeTXT)
	due(c.targets, dnsmessage.TypeA)
	return qs
}

// devices returns what was collected, sorted by address, names, services
// and locations sorted too.
func (c *collector) devices() []Device {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Device, 0, len(c.hosts))
	for addr, h := range c.hosts {
		d := Device{Address: addr, Server: h.server, Names: slices.Clone(h.names), Locations: slices.Clone(h.locations)}
		if h.mdns {
			d.Sources = append(d.Sources, SourceMDNS)
		}
		if h.ssdp {
			d.Sources = append(d.Sources, SourceSSDP)
		}
		slices.SortFunc(d.Names, func(a, b string) int { return cmp.Compare(strings.ToLower(a), strings.ToLower(b)) })
		slices.Sort(d.Locations)
		for _, s := range h.services {
			svc := *s
			svc.TXT = slices.Clone(s.TXT)
			d.Services = append(d.Services, svc)
		}
		slices.SortFunc(d.Services, func(a, b Service) int {
			return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.Instance, b.Instance), cmp.Compare(a.Port, b.Port))
		})
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b Device) int { return a.Address.Compare(b.Address) })
	return out
}

// splitInstance splits a DNS-SD instance name "Living Room._http._tcp.local."
// into its instance label and service type ("Living Room", "_http._tcp").
// The instance label may itself hold dots.
func splitInstance(full string) (instance, typ string, ok bool) {
	name := strings.TrimSuffix(full, ".")
	lower := strings.ToLower(name)
	if len(name) > 255 || (!strings.HasSuffix(lower, localSuffixTCP) && !strings.HasSuffix(lower, localSuffixUDP)) {
		return "", "", false
	}
	rest := name[:len(name)-len(".local")] // "Living Room._http._tcp"
	before := rest[:len(rest)-len("._tcp")]
	i := strings.LastIndex(before, "._")
	if i <= 0 || len(before)-i < 3 {
		return "", "", false
	}
	return before[:i], before[i+1:] + rest[len(before):], true
}

// isServiceType reports whether name is a service type "_http._tcp.local.".
func isServiceType(name string) bool {
	name = strings.TrimSuffix(name, ".")
	lower := strings.ToLower(name)
	if len(name) > 255 || !strings.HasPrefix(name, "_") || (!strings.HasSuffix(lower, localSuffixTCP) && !strings.HasSuffix(lower, localSuffixUDP)) {
		return false
	}
	return strings.Count(name, ".") == 2 && len(name) > len("_x._tcp.local")-1
}

// clean makes untrusted text safe to print: invalid bytes, control and
// invisible characters escaped (\xNN, \uNNNN), surrounding space trimmed,
// at most max bytes, never cutting a character.
func clean(s string, max int) string {
	const hex = "0123456789abcdef"
	s = strings.TrimSpace(s)
	var sb strings.Builder
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		var piece string
		switch {
		case r == utf8.RuneError && size == 1:
			piece = `\x` + string(hex[s[0]>>4]) + string(hex[s[0]&15])
		case unicode.IsPrint(r):
			piece = s[:size]
		default:
			b, top := []byte(`\u`), 12
			if r > 0xffff {
				b, top = []byte(`\U`), 28
			}
			for shift := top; shift >= 0; shift -= 4 {
				b = append(b, hex[(r>>shift)&15])
			}
			piece = string(b)
		}
		if sb.Len()+len(piece) > max {
			break
		}
		sb.WriteString(piece)
		s = s[size:]
	}
	return sb.String()
}
