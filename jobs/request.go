package jobs

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/iotcop/iotcop/assess"
	"github.com/iotcop/iotcop/check"
	"github.com/iotcop/iotcop/creds"
	"github.com/iotcop/iotcop/scan"
	"github.com/iotcop/iotcop/sweep"
	"github.com/iotcop/iotcop/target"
)

// ScanRequest is a live scan asked of the service: the same choices as
// `iotcop scan` flags, as JSON.
type ScanRequest struct {
	// Targets are addresses, CIDRs and ranges ("10.0.0.0/24",
	// "127.0.0.1-20"), comma or space separated.
	Targets string `json:"targets"`
	// Exclude lists addresses, ranges or CIDRs to skip.
	Exclude []string `json:"exclude,omitempty"`
	// Ports is a port list as for --ports (empty: the default IoT ports).
	Ports string `json:"ports,omitempty"`
	// Checks selects checks by id (empty: all live checks).
	Checks []string `json:"checks,omitempty"`
	// NoChecks stops after identification.
	NoChecks bool `json:"no_checks,omitempty"`
	// Aggressive tries the whole dictionary with parallel sessions.
	Aggressive bool `json:"aggressive,omitempty"`
	// TimeoutMS bounds each connect and round trip (default 2000).
	TimeoutMS int `json:"timeout_ms,omitempty"`
}

// specs splits Targets into target specifications.
func (r ScanRequest) specs() []string {
	return strings.FieldsFunc(r.Targets, func(c rune) bool { return c == ',' || c == ' ' || c == '\n' || c == '\t' || c == '\r' })
}

// validate checks everything that can be checked before any job runs, so
// a bad request is refused when it is made and not by a worker later.
func (r ScanRequest) validate() error {
	if len(r.specs()) == 0 {
		return errors.New("no targets given")
	}
	if _, err := sweep.ParsePorts(r.Ports); r.Ports != "" && err != nil {
		return err
	}
	if len(r.Checks) > 0 {
		if _, err := scan.SelectChecks(scan.DefaultChecks(scan.DefaultProtocols(), scan.CheckOptions{}), r.Checks); err != nil {
			return err
		}
	}
	if r.TimeoutMS < 0 || r.TimeoutMS > 60000 {
		return fmt.Errorf("timeout_ms %d out of range 0–60000", r.TimeoutMS)
	}
	return nil
}

// Scope is the server-side scan-scope policy: the networks operators may
// scan through the service. An empty Scope allows what the command line
// allows by default, private and loopback addresses only.
type Scope struct {
	Allow []netip.Prefix
}

// ParseScope parses CIDRs ("10.20.0.0/16") and single addresses.
func ParseScope(specs []string) (Scope, error) {
	var s Scope
	for _, spec := range specs {
		spec = strings.TrimSpace(spec)
		if spec == "" {
			continue
		}
		if !strings.Contains(spec, "/") {
			a, err := netip.ParseAddr(spec)
			if err != nil {
				return Scope{}, fmt.Errorf("scan scope %q: not an address or CIDR", spec)
			}
			spec = netip.PrefixFrom(a, a.BitLen()).String()
		}
		p, err := netip.ParsePrefix(spec)
		if err != nil {
			return Scope{}, fmt.Errorf("scan scope %q: %w", spec, err)
		}
		s.Allow = append(s.Allow, p.Masked())
	}
	return s, nil
}

// ErrOutOfPolicy is returned when a request names targets outside the
// server's scan scope.
var ErrOutOfPolicy = errors.New("outside the scan scope this server allows")

// permits reports whether the whole range lies inside the policy.
func (s Scope) permits(r target.Range) bool {
	if len(s.Allow) == 0 {
		return r.InScope()
	}
	for _, p := range s.Allow {
		if p.Contains(r.From.Unmap()) && p.Contains(r.To.Unmap()) {
			return true
		}
	}
	return false
}

// build parses the request's targets under the policy.
func (s Scope) build(ctx context.Context, r ScanRequest) (target.Set, error) {
	// Names are not resolved on the server: what is checked against the
	// policy must be what is scanned.
	p := target.Parser{AllowPublic: true, Resolver: noResolver{}}
	set, err := p.Build(ctx, r.specs(), r.Exclude)
	if err != nil {
		return target.Set{}, err
	}
	for _, rg := range set.Include {
		if !s.permits(rg) {
			return target.Set{}, fmt.Errorf("target %s: %w", rg.Spec, ErrOutOfPolicy)
		}
	}
	return set, nil
}

type noResolver struct{}

func (noResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	return nil, fmt.Errorf("host name %q: give addresses, the service does not resolve names", host)
}

// scanner builds the scan the request describes (the same defaults as
// `iotcop scan`) and says which checks it runs (for the assessment).
func (r ScanRequest) scanner(version string, progress func(done, total uint64)) (*scan.Scanner, []string, error) {
	ports, err := sweep.ParsePorts(r.Ports)
	if err != nil {
		return nil, nil, err
	}
	dict, err := creds.Builtin()
	if err != nil {
		return nil, nil, err
	}
	budget, sessions, perHost := creds.DefaultBudget(), 1, 4
	if r.Aggressive {
		budget, sessions, perHost = creds.AggressiveBudget(), 4, 16
	}
	disc, err := check.NewDisclosure("")
	if err != nil {
		return nil, nil, err
	}
	protocols := scan.DefaultProtocols()
	checks := scan.DefaultChecks(protocols, scan.CheckOptions{Dict: dict, Budget: budget, Parallel: sessions, Disclosure: disc})
	if len(r.Checks) > 0 {
		if checks, err = scan.SelectChecks(checks, r.Checks); err != nil {
			return nil, nil, err
		}
	}
	if r.NoChecks {
		checks = nil
	}
	timeout := 2 * time.Second
	if r.TimeoutMS > 0 {
		timeout = time.Duration(r.TimeoutMS) * time.Millisecond
	}
	opts := scan.Options{Ports: ports, PerHost: perHost, Timeout: timeout, NoChecks: r.NoChecks, Version: version, Progress: progress}
	return scan.New(opts, protocols, checks), assess.CheckIDs(checks), nil
}

// shards cuts a target set into lists of at most size addresses, each
// written as compact ranges, so a job's arguments stay small however large
// the scan.
func shards(set target.Set, size, max int) ([][]string, int, error) {
	var out [][]string
	var cur []string
	var from, prev netip.Addr
	n, inShard := 0, 0
	flush := func() {
		if from.IsValid() {
			if from == prev {
				cur = append(cur, from.String())
			} else {
				cur = append(cur, from.String()+"-"+prev.String())
			}
		}
		from = netip.Addr{}
	}
	for a := range set.All() {
		n++
		if n > max {
			return nil, 0, fmt.Errorf("more than %d addresses: split the scan", max)
		}
		if inShard == size {
			flush()
			out = append(out, cur)
			cur, inShard = nil, 0
		}
		if from.IsValid() && prev.Next() != a {
			flush()
		}
		if !from.IsValid() {
			from = a
		}
		prev = a
		inShard++
	}
	flush()
	if len(cur) > 0 {
		out = append(out, cur)
	}
	if n == 0 {
		return nil, 0, errors.New("every target is excluded")
	}
	return out, n, nil
}

// parseShard turns a shard's ranges back into a target set, under this
// process's own scope rule.
func parseShard(ctx context.Context, ranges []string, allowPublic bool) (target.Set, error) {
	return target.Parser{AllowPublic: allowPublic, Resolver: noResolver{}}.Build(ctx, ranges, nil)
}
