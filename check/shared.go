package check

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/iotcop/iotcop/finding"
)

// SharedSecrets collects observations from every device of a scan and
// reports each key, certificate or accepted credential seen on more than
// one unit: one finding naming every unit that shares it. It keeps one
// small record per observed service, so memory grows with services found,
// not with addresses scanned.
type SharedSecrets struct {
	groups map[string][]sharedUnit
}

type sharedUnit struct {
	host string
	obs  Observation
}

// Add records a device's observations.
func (s *SharedSecrets) Add(host string, obs []Observation) {
	if s.groups == nil {
		s.groups = map[string][]sharedUnit{}
	}
	for _, o := range obs {
		k := o.Kind + "\x00" + o.Value
		s.groups[k] = append(s.groups[k], sharedUnit{host, o})
	}
}

// Findings returns one shared-secret finding per value seen on at least
// two different hosts.
func (s *SharedSecrets) Findings() []finding.Finding {
	var out []finding.Finding
	for _, units := range s.groups {
		hosts := map[string]bool{}
		for _, u := range units {
			hosts[u.host] = true
		}
		if len(hosts) < 2 {
			continue
		}
		sort.Slice(units, func(i, j int) bool {
			if units[i].host != units[j].host {
				return finding.LessAddr(units[i].host, units[j].host)
			}
			return units[i].obs.Port < units[j].obs.Port
		})
		first := units[0].obs
		var list []string
		for _, u := range units {
			list = append(list, u.host+":"+strconv.Itoa(u.obs.Port))
		}
		f := finding.Finding{
			Check:     finding.CheckSharedSecret,
			Host:      units[0].host,
			Port:      first.Port,
			Transport: first.Transport,
			Protocol:  first.Protocol,
			Evidence: map[string]any{
				"kind":  first.Kind,
				"value": first.Label,
				"units": list,
				"count": len(hosts),
			},
		}
		switch first.Kind {
		case ObservedCredential:
			f.Severity = finding.Critical
			f.Provisions = []string{"5.1-1"}
			f.Title = fmt.Sprintf("the same %s credential is accepted by %d devices", first.Protocol, len(hosts))
			f.Remediation = "Give every unit its own password (EN 303 645 5.1-1, PSTI requirement 1)."
		case ObservedSSHHostKey:
			f.Severity = finding.High
			f.Provisions = []string{"5.4-1", "5.5-1"}
			f.Title = fmt.Sprintf("%d devices share one SSH host key", len(hosts))
			f.Remediation = "Generate the SSH host key on each unit at first boot; a shared private key lets anyone who extracts it impersonate or decrypt every unit (EN 303 645 5.4-1)."
		default:
			f.Severity = finding.High
			f.Provisions = []string{"5.4-1", "5.5-1"}
			f.Title = fmt.Sprintf("%d devices share one TLS key or certificate", len(hosts))
			f.Remediation = "Give each unit its own TLS key pair; a key shared across units is a universal secret (EN 303 645 5.4-1)."
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Title+out[i].Host < out[j].Title+out[j].Host })
	return out
}
