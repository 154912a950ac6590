package jobs

import (
	"fmt"

	"github.com/iotcop/iotcop/assess"
	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/standard"
)

// perDevice splits a shard's report into one report per device, each with
// the device's own EN 303 645 verdicts (evidence only: the service has no
// maker's declarations). One assessment judges one product, so a fleet
// scan is assessed device by device; the store keeps each as that
// device's history entry with its verdict trend. A shard in which no
// device answered keeps its one empty report, so the shard is recorded.
func perDevice(cat *standard.Catalogue, rep *finding.Report, checksRun []string) ([]*finding.Report, error) {
	if len(rep.Devices) == 0 && len(rep.Findings) == 0 {
		return []*finding.Report{rep}, nil
	}
	byHost := map[string]*finding.Report{}
	var order []string
	reportOf := func(addr string) *finding.Report {
		r, ok := byHost[addr]
		if !ok {
			r = &finding.Report{Schema: rep.Schema, Tool: rep.Tool, StartedAt: rep.StartedAt, FinishedAt: rep.FinishedAt,
				Devices: []finding.Device{}, Findings: []finding.Finding{}}
			byHost[addr] = r
			order = append(order, addr)
		}
		return r
	}
	for _, d := range rep.Devices {
		r := reportOf(d.Address)
		r.Devices = append(r.Devices, d)
	}
	for _, f := range rep.Findings {
		r := reportOf(f.Host)
		r.Findings = append(r.Findings, f)
	}
	out := make([]*finding.Report, 0, len(order))
	for _, addr := range order {
		r := byHost[addr]
		a, err := assess.Assess(cat, assess.FromReport(r, checksRun, nil))
		if err != nil {
			return nil, fmt.Errorf("assess %s: %w", addr, err)
		}
		r.Verdicts = a.Verdicts
		r.Finalize()
		out = append(out, r)
	}
	return out, nil
}
