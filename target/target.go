// Package target parses what the user asks to scan (addresses, CIDRs,
// ranges, host names, files of them) into address ranges, enforces the scan
// scope (private and loopback only unless explicitly allowed) and streams the
// addresses without materialising them, so a /16 costs a few bytes.
package target

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// Range is an inclusive span of addresses of one family.
type Range struct {
	From, To netip.Addr
	// Spec is what the user wrote, for error messages.
	Spec string
}

// Contains reports whether a lies within r.
func (r Range) Contains(a netip.Addr) bool {
	return a.BitLen() == r.From.BitLen() && r.From.Compare(a) <= 0 && a.Compare(r.To) <= 0
}

// ErrOutOfScope is returned when a target lies outside private and loopback
// ranges and public targets were not allowed.
var ErrOutOfScope = errors.New("target outside private and loopback ranges (pass --allow-public to scan it deliberately)")

// Resolver looks up host names; net.DefaultResolver satisfies it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Parser turns target specifications into ranges.
type Parser struct {
	// Resolver resolves host names; nil uses net.DefaultResolver.
	Resolver Resolver
	// AllowPublic lifts the private/loopback scope rule.
	AllowPublic bool
}

// Parse parses one specification: an address ("192.168.1.10", "::1"), a
// CIDR ("10.0.0.0/24"), a range ("127.0.0.1-20", "10.0.0.5-10.0.1.7") or a
// host name. Every resulting address is checked against the scope.
func (p Parser) Parse(ctx context.Context, spec string) ([]Range, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, errors.New("empty target")
	}
	rs, err := p.parse(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("target %q: %w", spec, err)
	}
	if !p.AllowPublic {
		for _, r := range rs {
			if err := checkScope(r); err != nil {
				return nil, fmt.Errorf("target %q: %w", spec, err)
			}
		}
	}
	return rs, nil
}

func (p Parser) parse(ctx context.Context, spec string) ([]Range, error) {
	if a, err := netip.ParseAddr(strings.Trim(spec, "[]")); err == nil {
		a = a.Unmap()
		return []Range{{From: a, To: a, Spec: spec}}, nil
	}
	if strings.Contains(spec, "/") {
		pfx, err := netip.ParsePrefix(spec)
		if err != nil {
			return nil, fmt.Errorf("bad CIDR: %w", err)
		}
		pfx = pfx.Masked()
		return []Range{{From: pfx.Addr(), To: lastAddr(pfx), Spec: spec}}, nil
	}
	if lo, hi, ok := strings.Cut(spec, "-"); ok {
		// A host name may contain '-', a range starts with an address.
		if _, err := netip.ParseAddr(lo); err == nil {
			return parseRange(spec, lo, hi)
		}
	}
	if !validHostname(spec) {
		return nil, errors.New("not an address, CIDR, range or host name")
	}
	res := p.Resolver
	if res == nil {
		res = net.DefaultResolver
	}
	addrs, err := res.LookupNetIP(ctx, "ip", spec)
	if err != nil {
		return nil, fmt.Errorf("resolve host name: %w", err)
	}
	if len(addrs) == 0 {
		return nil, errors.New("host name resolved to no address")
	}
	out := make([]Range, 0, len(addrs))
	for _, a := range addrs {
		a = a.Unmap()
		out = append(out, Range{From: a, To: a, Spec: spec})
	}
	return out, nil
}

func parseRange(spec, lo, hi string) ([]Range, error) {
	from, err := netip.ParseAddr(lo)
	if err != nil {
		return nil, fmt.Errorf("bad range start: %w", err)
	}
	from = from.Unmap()
	var to netip.Addr
	if n, err := strconv.Atoi(hi); err == nil && from.Is4() {
		// "127.0.0.1-20": the end replaces the last octet.
		if n < 0 || n > 255 {
			return nil, fmt.Errorf("range end %d is not an octet", n)
		}
		b := from.As4()
		b[3] = byte(n)
		to = netip.AddrFrom4(b)
	} else {
		to, err = netip.ParseAddr(hi)
		if err != nil {
			return nil, fmt.Errorf("bad range end: %w", err)
		}
		to = to.Unmap()
	}
	if from.BitLen() != to.BitLen() {
		return nil, errors.New("range mixes IPv4 and IPv6")
	}
	if to.Less(from) {
		return nil, errors.New("range end is before its start")
	}
	return []Range{{From: from, To: to, Spec: spec}}, nil
}

func validHostname(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, c := range label {
			if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				return false
			}
		}
	}
	return true
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr()
	b := a.AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	out, _ := netip.AddrFromSlice(b)
	return out
}

// scopes lists what is in scope by default: loopback, RFC 1918, RFC 4193
// unique local, link-local, and the shared CGNAT space (where ISP customer
// gateways live).
var defaultScope = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
}

// InScope reports whether a is loopback or private.
func InScope(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range defaultScope {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// InScope reports whether the whole range lies in one private or loopback
// block (the rule Parse applies unless AllowPublic is set).
func (r Range) InScope() bool { return checkScope(r) == nil }

// checkScope requires both ends of r to sit in the same in-scope prefix,
// which for contiguous prefixes means the whole range is in scope.
func checkScope(r Range) error {
	for _, p := range defaultScope {
		if p.Contains(r.From) && p.Contains(r.To) {
			return nil
		}
	}
	bad := r.From
	if InScope(r.From) {
		bad = r.To
	}
	return fmt.Errorf("%s: %w", bad, ErrOutOfScope)
}

// Set is a list of ranges to scan minus ranges to exclude.
type Set struct {
	Include []Range
	Exclude []Range
}

// Size returns the number of addresses in the include ranges before
// exclusions, cheaply (for progress bars), saturating at 1<<62.
func (s Set) Size() uint64 {
	var n uint64
	for _, r := range s.Include {
		n += rangeSize(r)
		if n >= 1<<62 {
			return 1 << 62
		}
	}
	return n
}

func rangeSize(r Range) uint64 {
	f, t := r.From.As16(), r.To.As16()
	var hiDiff bool
	for i := 0; i < 8; i++ {
		if f[i] != t[i] {
			hiDiff = true
		}
	}
	if hiDiff {
		return 1 << 62
	}
	var fv, tv uint64
	for i := 8; i < 16; i++ {
		fv = fv<<8 | uint64(f[i])
		tv = tv<<8 | uint64(t[i])
	}
	d := tv - fv
	if d >= 1<<62 {
		return 1 << 62
	}
	return d + 1
}

// All streams every included, non-excluded address once per range, in
// order, without allocating per address.
func (s Set) All() iter.Seq[netip.Addr] {
	return func(yield func(netip.Addr) bool) {
		for _, r := range s.Include {
			for a := r.From; a.IsValid() && a.Compare(r.To) <= 0; a = a.Next() {
				if s.excluded(a) {
					continue
				}
				if !yield(a) {
					return
				}
			}
		}
	}
}

func (s Set) excluded(a netip.Addr) bool {
	for _, r := range s.Exclude {
		if r.Contains(a) {
			return true
		}
	}
	return false
}

// ReadFile reads target specifications from a file (one or more per line,
// separated by spaces or commas; '#' starts a comment), as nmap's -iL does.
// "-" reads standard input.
func ReadFile(path string, stdin io.Reader) ([]string, error) {
	var r io.Reader
	if path == "-" {
		r = stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("read target list: %w", err)
		}
		defer f.Close()
		r = f
	}
	var specs []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 64*1024)
	line := 0
	for sc.Scan() {
		line++
		text, _, _ := strings.Cut(sc.Text(), "#")
		specs = append(specs, strings.FieldsFunc(text, func(c rune) bool { return c == ' ' || c == '\t' || c == ',' })...)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read target list %s line %d: %w", path, line+1, err)
	}
	return specs, nil
}

// Build parses include and exclude specifications into a Set. Exclusions
// are not scope-checked (excluding a public range is harmless).
func (p Parser) Build(ctx context.Context, include, exclude []string) (Set, error) {
	var s Set
	for _, spec := range include {
		rs, err := p.Parse(ctx, spec)
		if err != nil {
			return Set{}, err
		}
		s.Include = append(s.Include, rs...)
	}
	ex := Parser{Resolver: p.Resolver, AllowPublic: true}
	for _, spec := range exclude {
		for _, one := range strings.Split(spec, ",") {
			if strings.TrimSpace(one) == "" {
				continue
			}
			rs, err := ex.Parse(ctx, one)
			if err != nil {
				return Set{}, fmt.Errorf("exclude: %w", err)
			}
			s.Exclude = append(s.Exclude, rs...)
		}
	}
	if len(s.Include) == 0 {
		return Set{}, errors.New("no targets given")
	}
	return s, nil
}
