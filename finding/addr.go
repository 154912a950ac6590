package finding

import "net/netip"

// LessAddr orders IP addresses numerically (127.0.0.2 before 127.0.0.10)
// and anything that is not an address after them, as text.
func LessAddr(a, b string) bool {
	pa, ea := netip.ParseAddr(a)
	pb, eb := netip.ParseAddr(b)
	switch {
	case ea == nil && eb == nil:
		return pa.Less(pb)
	case ea == nil:
		return true
	case eb == nil:
		return false
	}
	return a < b
}
