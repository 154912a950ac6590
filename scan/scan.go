// Package scan runs a live assessment: it streams targets host by host
// through the sweep, identifies every open port, runs the checks, and
// assembles the report. Memory is bounded by the number of hosts in flight,
// not by the size of the target set.
package scan

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime/debug"
	"sync"
	"time"

	"github.com/iotcop/iotcop/check"
	"github.com/iotcop/iotcop/discover"
	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/fingerprint"
	"github.com/iotcop/iotcop/proto"
	"github.com/iotcop/iotcop/sweep"
	"github.com/iotcop/iotcop/target"
)

// Options tunes a scan.
type Options struct {
	Ports []sweep.Port
	// Rate caps new connections per second overall (0 = unlimited).
	Rate float64
	// PerHost caps concurrent connections to one device (default 4).
	PerHost int
	// Hosts is how many devices are assessed at once (default 64).
	Hosts int
	// Timeout bounds each connect and each protocol round trip.
	Timeout time.Duration
	// Retries re-probes ports that timed out.
	Retries int
	// BannerWait is how long identification waits for a greeting.
	BannerWait time.Duration
	// NoChecks stops after identification.
	NoChecks bool
	// Progress, when set, is called after each host with hosts done and
	// the total (which may be an estimate before exclusions). It may be
	// called from several goroutines at once.
	Progress func(done, total uint64)
	// Version is recorded in the report.
	Version string
	// VendorHints maps an address to the vendor key discovery found for
	// it (used when no service names its maker).
	VendorHints map[string]string
}

// Scanner is a configured live assessment.
type Scanner struct {
	opts   Options
	ids    []proto.Identifier
	checks []check.Check
	now    func() time.Time
}

// New returns a Scanner. identifiers name services; checks run in the
// order given on every device with at least one open port.
func New(opts Options, identifiers []proto.Identifier, checks []check.Check) *Scanner {
	if opts.Hosts <= 0 {
		opts.Hosts = 64
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if len(opts.Ports) == 0 {
		opts.Ports = sweep.DefaultPorts()
	}
	return &Scanner{opts: opts, ids: identifiers, checks: checks, now: time.Now}
}

// Run scans every address of set and returns the report. A cancelled
// context returns the partial report with the context's error.
func (s *Scanner) Run(ctx context.Context, set target.Set) (*finding.Report, error) {
	rep := &finding.Report{
		Schema:    finding.SchemaV1,
		Tool:      finding.Tool{Name: "iotcop", Version: s.opts.Version},
		StartedAt: s.now().UTC(),
	}
	gate := sweep.NewGate(s.opts.Rate, s.opts.PerHost)
	sw := sweep.New(gate, sweep.Options{Rate: s.opts.Rate, PerHost: s.opts.PerHost, Timeout: s.opts.Timeout, Retries: s.opts.Retries})
	eng := fingerprint.New(s.ids, fingerprint.Options{BannerWait: s.opts.BannerWait})

	var mu sync.Mutex
	var errs []error
	var shared check.SharedSecrets
	total := set.Size()
	var done uint64
	hosts := make(chan netip.Addr)
	var wg sync.WaitGroup
	for w := 0; w < s.opts.Hosts; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for addr := range hosts {
				dev, fs, obs, err := s.host(ctx, gate, sw, eng, addr)
				mu.Lock()
				shared.Add(addr.String(), obs)
				if dev != nil {
					rep.Devices = append(rep.Devices, *dev)
					rep.Findings = append(rep.Findings, fs...)
				}
				if err != nil {
					errs = append(errs, err)
				}
				done++
				d := done
				mu.Unlock()
				if s.opts.Progress != nil {
					s.opts.Progress(d, total)
				}
			}
		}()
	}
feed:
	for a := range set.All() {
		select {
		case hosts <- a:
		case <-ctx.Done():
			break feed
		}
	}
	close(hosts)
	wg.Wait()
	rep.Findings = append(rep.Findings, shared.Findings()...)
	rep.FinishedAt = s.now().UTC()
	rep.Finalize()
	if ctx.Err() != nil {
		return rep, fmt.Errorf("scan interrupted: %w", ctx.Err())
	}
	return rep, errors.Join(errs...)
}

// host assesses one address. It returns nil when no port answered. A
// panic in a protocol package is turned into an error for that host, so
// one hostile device cannot take the scan down.
func (s *Scanner) host(ctx context.Context, gate *sweep.Gate, sw *sweep.Sweeper, eng *fingerprint.Engine, addr netip.Addr) (dev *finding.Device, fs []finding.Finding, obs []check.Observation, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("assessing %s: internal error: %v\n%s", addr, r, debug.Stack())
		}
	}()
	var mu sync.Mutex
	var cd check.Device
	cd.Address = addr.String()
	_ = sw.Host(ctx, addr, s.opts.Ports, func(r sweep.Result) {
		ep := r.Endpoint(gate, s.opts.Timeout)
		id := eng.Identify(ctx, &ep, r.Response)
		mu.Lock()
		cd.Services = append(cd.Services, check.Service{Endpoint: ep, Identity: id})
		mu.Unlock()
	})
	if len(cd.Services) == 0 {
		return nil, nil, nil, nil
	}
	sortServices(cd.Services)
	for _, sv := range cd.Services {
		if sv.Identity.Vendor != "" {
			// Services name makers their own way ("D-Link Corporation");
			// the dictionaries use keys ("dlink").
			cd.Vendor = sv.Identity.Vendor
			if k := discover.VendorKey(sv.Identity.Vendor); k != "" {
				cd.Vendor = k
			}
			break
		}
	}
	if cd.Vendor == "" {
		cd.Vendor = s.opts.VendorHints[cd.Address]
	}
	var errs []error
	if !s.opts.NoChecks {
		for _, c := range s.checks {
			if ctx.Err() != nil {
				break
			}
			got, err := c.Run(ctx, &cd)
			fs = append(fs, got...)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			}
		}
	}
	d := &finding.Device{Address: cd.Address}
	if !s.opts.NoChecks {
		// The robustness probes may already have reported the device down.
		down := false
		for _, f := range fs {
			down = down || f.Check == finding.CheckDeviceUnresponsive && f.Evidence["came_back"] != true
		}
		if !down {
			if f := s.liveness(ctx, &cd); f != nil {
				fs = append(fs, *f)
				down = true
			}
		}
		if down {
			alive := false
			d.Alive = &alive
		}
	}
	for i, sv := range cd.Services {
		d.Services = append(d.Services, finding.Service{
			Port:      sv.Endpoint.Port,
			Transport: sv.Endpoint.Transport,
			Protocol:  sv.Identity.Protocol,
			Product:   sv.Identity.Product,
			Version:   sv.Identity.Version,
			Vendor:    sv.Identity.Vendor,
			TLS:       sv.Identity.TLS || sv.Endpoint.TLS,
			Banner:    sv.Identity.Banner,
			Attempts:  cd.Attempts(i),
		})
	}
	return d, fs, cd.Observations(), errors.Join(errs...)
}

// liveness re-connects to the device's first TCP service after the checks:
// a device that stopped answering is reported, never silently dropped.
func (s *Scanner) liveness(ctx context.Context, cd *check.Device) *finding.Finding {
	for _, sv := range cd.Services {
		if sv.Endpoint.Transport != "tcp" {
			continue
		}
		for attempt := 0; attempt < 3; attempt++ {
			ep := sv.Endpoint
			ep.TLS = false
			c, err := ep.Connect(ctx)
			if err == nil {
				c.Close()
				return nil
			}
			if ctx.Err() != nil {
				return nil
			}
			time.Sleep(300 * time.Millisecond)
		}
		return &finding.Finding{
			Check:       finding.CheckDeviceUnresponsive,
			Provisions:  []string{"5.13-1", "5.9-1"},
			Severity:    finding.Medium,
			Title:       "device stopped answering during the scan",
			Host:        sv.Endpoint.Host,
			Port:        sv.Endpoint.Port,
			Transport:   "tcp",
			Protocol:    sv.Identity.Protocol,
			Evidence:    map[string]any{"detail": "the port answered at the start of the scan and refused or timed out three reconnects after the checks"},
			Remediation: "Make the device survive login attempts and malformed input without crashing or rebooting (EN 303 645 5.13-1, 5.9-1).",
		}
	}
	return nil
}

func sortServices(s []check.Service) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && less(s[j], s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func less(a, b check.Service) bool {
	if a.Endpoint.Transport != b.Endpoint.Transport {
		return a.Endpoint.Transport == "tcp"
	}
	return a.Endpoint.Port < b.Endpoint.Port
}
