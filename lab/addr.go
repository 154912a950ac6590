package lab

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// allocateAddresses returns one address per device: its own when set,
// otherwise the next free one counting up from base. Allocated addresses
// skip x.y.z.0 and x.y.z.255, never reuse an address another device names,
// and never leave 127.0.0.0/8.
func allocateAddresses(cfg Config, base string) ([]string, error) {
	if base == "" {
		base = DefaultBase
	}
	b, err := loopbackAddr(base)
	if err != nil {
		return nil, fmt.Errorf("lab base address: %w", err)
	}
	taken := map[netip.Addr]bool{}
	for _, d := range cfg.Devices {
		if d.Address != "" {
			a, err := loopbackAddr(d.Address)
			if err != nil {
				return nil, fmt.Errorf("device %s: %w", d.Name, err)
			}
			taken[a] = true
		}
	}
	next := b.As4()
	n := binary.BigEndian.Uint32(next[:])
	const last = 127<<24 | 255<<16 | 255<<8 | 254 // 127.255.255.254
	out := make([]string, len(cfg.Devices))
	allocated := 0
	for i, d := range cfg.Devices {
		if d.Address != "" {
			a, _ := loopbackAddr(d.Address)
			out[i] = a.String()
			continue
		}
		for {
			if n > last {
				return nil, fmt.Errorf("lab: out of loopback addresses after %d devices from base %s (127.0.0.0/8 ends at 127.255.255.254)", allocated, b)
			}
			var ab [4]byte
			binary.BigEndian.PutUint32(ab[:], n)
			n++
			a := netip.AddrFrom4(ab)
			if ab[3] == 0 || ab[3] == 255 || taken[a] {
				continue
			}
			out[i] = a.String()
			allocated++
			break
		}
	}
	return out, nil
}
