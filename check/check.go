// Package check holds the live-device checks. Each is a small type with a
// stable ID (the report contract's check id), the EN 303 645 provisions it
// evidences, whether it is intrusive, and Run over one device whose
// services were already identified.
package check

import (
	"context"
	"sync"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/proto"
)

// Service is one identified service of a device.
type Service struct {
	Endpoint proto.Endpoint
	Identity *proto.Identity
}

// Device is what checks run over: an address, its services, and what
// earlier checks learnt (checks run in order, so a later one can use it).
type Device struct {
	Address  string
	Vendor   string // from the fingerprints, lower case, may be empty
	Services []Service

	mu       sync.Mutex
	accepted map[int]bool // service index → a credential was accepted
	attempts map[int]int  // service index → credential attempts made
	open     map[int]bool // service index → access without credentials

	observations []Observation
}

func (d *Device) note(i int, accepted, open bool, attempts int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.accepted == nil {
		d.accepted, d.attempts, d.open = map[int]bool{}, map[int]int{}, map[int]bool{}
	}
	if accepted {
		d.accepted[i] = true
	}
	if open {
		d.open[i] = true
	}
	d.attempts[i] += attempts
}

// Attempts returns how many credential attempts service i took.
func (d *Device) Attempts(i int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.attempts[i]
}

func (d *Device) wasAccepted(i int) (accepted, open bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.accepted[i], d.open[i]
}

// Check is one live-device check.
type Check interface {
	// ID is the stable check id used in reports.
	ID() string
	// Provisions lists the EN 303 645 provisions the check evidences.
	Provisions() []string
	// Intrusive reports whether the check may lock accounts or send many requests.
	Intrusive() bool
	// Run checks one device. It returns the findings it made even when it
	// also returns an error.
	Run(ctx context.Context, dev *Device) ([]finding.Finding, error)
}

func base(c Check, sev finding.Severity, s Service, title string) finding.Finding {
	return finding.Finding{
		Check:      c.ID(),
		Provisions: c.Provisions(),
		Severity:   sev,
		Title:      title,
		Host:       s.Endpoint.Host,
		Port:       s.Endpoint.Port,
		Transport:  s.Endpoint.Transport,
		Protocol:   s.Identity.Protocol,
		Evidence:   map[string]any{},
	}
}
