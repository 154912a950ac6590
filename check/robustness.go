package check

import (
	"context"
	"fmt"
	"math"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/proto"
	"github.com/iotcop/iotcop/robustness"
)

// Robustness sends the robustness catalogue of malformed inputs (bad HTTP
// request lines and headers, invalid MQTT and CoAP packets, telnet and RTSP
// abuse, an idle-connection burst) to every identified service, checks the
// device's liveness between probes, and reports the probe after which the
// device stopped answering or restarted (EN 303 645 5.13-1, 5.9-1). It is
// intrusive and runs only when the user asks (--robustness); it stops
// probing a device at its first failure.
type Robustness struct {
	// Budget bounds bytes, time and connections per probe (zero = defaults).
	Budget robustness.Budget
	// Probes replaces the catalogue (nil = robustness.Catalogue()).
	Probes []robustness.Probe
}

// ID implements Check.
func (c *Robustness) ID() string { return finding.CheckDeviceUnresponsive }

// Provisions implements Check.
func (c *Robustness) Provisions() []string { return []string{"5.13-1", "5.9-1"} }

// Intrusive implements Check: it sends malformed input that may crash the device.
func (c *Robustness) Intrusive() bool { return true }

// serverFirstProtocols greet before the client speaks.
var serverFirstProtocols = map[string]bool{"ssh": true, "telnet": true, "ftp": true}

// Run implements Check.
func (c *Robustness) Run(ctx context.Context, dev *Device) ([]finding.Finding, error) {
	var services []robustness.Service
	idx := map[string]int{}
	for i, s := range dev.Services {
		id := s.Identity
		if id == nil {
			id = &proto.Identity{Protocol: "unknown"}
		}
		ep := s.Endpoint
		if id.TLS {
			ep.TLS = true
		}
		services = append(services, robustness.Service{Endpoint: ep, Protocol: id.Protocol,
			ServerFirst: serverFirstProtocols[id.Protocol] ||
				(ep.Transport != "udp" && id.Banner != "" && (id.Protocol == "unknown" || id.Protocol == ""))})
		idx[ep.Transport+"/"+ep.Addr()] = i
	}
	r := &robustness.Runner{Budget: c.Budget, Probes: c.Probes}
	out, err := r.Run(ctx, services)
	if err != nil {
		err = fmt.Errorf("robustness of %s: %w", dev.Address, err)
	}
	if out.Failure == nil {
		return nil, err
	}
	fl := out.Failure
	s := dev.Services[idx[fl.Run.Service.Endpoint.Transport+"/"+fl.Run.Service.Endpoint.Addr()]]
	if s.Identity == nil {
		s.Identity = &proto.Identity{Protocol: fl.Run.Service.Protocol}
	}
	f := base(c, finding.High, s, robustnessTitle(fl))
	stopped := make([]string, len(fl.Stopped))
	asked := map[string]any{}
	for i, st := range fl.Stopped {
		stopped[i] = st.String()
		asked[st.String()] = fl.Checks[i]
	}
	f.Evidence = map[string]any{
		"probe":             fl.Run.Probe,
		"probe_protocol":    fl.ProbeProtocol,
		"probe_description": fl.Description,
		"bytes_sent":        fl.Run.BytesSent,
		"reply":             fl.Run.Reply,
		"stopped_answering": stopped,
		"liveness_checks":   asked,
		"came_back":         fl.CameBack,
		"probes_sent":       len(out.Runs),
	}
	if fl.Run.Connections > 0 {
		f.Evidence["connections"] = fl.Run.Connections
	}
	if fl.Restart != "" {
		f.Evidence["restart"] = fl.Restart
	}
	if fl.Previous != "" {
		f.Evidence["previous_probe"] = fl.Previous
	}
	if fl.NoticedBy != "" {
		f.Evidence["noticed_by"] = fl.NoticedBy + " (could not connect; the failure came after the previous probe's check)"
	}
	if len(fl.Stopped) > 0 {
		if fl.CameBack {
			f.Evidence["came_back_after_seconds"] = roundSeconds(fl.Downtime.Seconds())
		} else {
			f.Evidence["watched_seconds"] = roundSeconds(fl.Watched.Seconds())
		}
	}
	f.Remediation = "Validate every input before parsing it (lengths, counts, reserved values) and bound what one peer may hold; a malformed request must be refused, never crash, hang or reboot the device (EN 303 645 5.13-1, 5.9-1)."
	return []finding.Finding{f}, err
}

func robustnessTitle(fl *robustness.Failure) string {
	if len(fl.Stopped) == 0 {
		return "device restarted after the malformed input " + fl.Run.Probe
	}
	return "device stopped answering after the malformed input " + fl.Run.Probe
}

func roundSeconds(s float64) float64 { return math.Round(s*10) / 10 }
