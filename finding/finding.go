// Package finding holds the one result model every part of iotcop produces
// and every report consumes: devices, their services and findings, plus the
// report envelope whose JSON field names are the public contract
// (schema "iotcop/report/v1", see report/schema.json).
package finding

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Severity ranks a finding. Its JSON form is the lower-case name.
type Severity int

// Severities from least to most severe; the zero value is Info so that an
// unset severity never inflates a CI gate.
const (
	Info Severity = iota
	Low
	Medium
	High
	Critical
)

var severityNames = [...]string{"info", "low", "medium", "high", "critical"}

// String returns the contract name of s ("critical", "high", ...).
func (s Severity) String() string {
	if s < Info || s > Critical {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// ParseSeverity turns a contract name into a Severity.
func ParseSeverity(name string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(strings.TrimSpace(name), n) {
			return Severity(i), nil
		}
	}
	return Info, fmt.Errorf("unknown severity %q (want one of %s)", name, strings.Join(severityNames[:], ", "))
}

// MarshalJSON writes the severity as its name.
func (s Severity) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads a severity name.
func (s *Severity) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		return fmt.Errorf("severity: %w", err)
	}
	v, err := ParseSeverity(name)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Check ids: stable names users gate CI on. Never rename one.
const (
	CheckDefaultCredentials    = "default-credentials"
	CheckUnauthenticatedAccess = "unauthenticated-access"
	CheckCleartextProtocol     = "cleartext-protocol"
	CheckWeakTLS               = "weak-tls"
	CheckWeakSSH               = "weak-ssh"
	CheckExposedDebugService   = "exposed-debug-service"
	CheckVulnDisclosure        = "vulnerability-disclosure"
	CheckHardCodedCredentials  = "hard-coded-credentials"
	CheckEmbeddedPrivateKey    = "embedded-private-key"
	CheckEmbeddedSecret        = "embedded-secret"
	CheckInsecureBootService   = "insecure-boot-service"
	CheckBinaryHardening       = "binary-hardening"
	CheckKnownVulnerability    = "known-vulnerability"
	CheckDeviceUnresponsive    = "device-unresponsive"
	CheckSharedSecret          = "shared-secret"
)

// Finding is one thing wrong, where it was seen and the evidence for it.
// Live findings fill Host/Port/Transport/Protocol; firmware findings fill Path.
type Finding struct {
	Check      string   `json:"check"`
	Provisions []string `json:"provisions"`
	Severity   Severity `json:"severity"`
	Title      string   `json:"title"`
	Host       string   `json:"host,omitempty"`
	Port       int      `json:"port,omitempty"`
	Transport  string   `json:"transport,omitempty"`
	Protocol   string   `json:"protocol,omitempty"`
	Path       string   `json:"path,omitempty"`
	// Evidence is what was seen. Values wrapped in Secret are redacted in
	// reports unless the user asks for --show-secrets.
	Evidence map[string]any `json:"evidence"`
	// Remediation says how to fix it, in a sentence or two.
	Remediation string `json:"remediation,omitempty"`
	// Baseline is "new" or "unchanged" when the run was compared with a
	// --baseline report (extension).
	Baseline string `json:"baseline,omitempty"`
}

// Secret marks an evidence value (a password, a key) that reports redact
// unless asked not to. It marshals to its redacted form, so forgetting to call
// Redact never leaks it; Reveal turns it into plain text deliberately.
type Secret string

// Redacted returns the form shown by default: the length and at most the
// first character, enough to recognise without disclosing.
func (s Secret) Redacted() string {
	if s == "" {
		return "(empty)"
	}
	r := []rune(string(s))
	if len(r) <= 3 {
		return strings.Repeat("*", len(r))
	}
	return string(r[0]) + strings.Repeat("*", len(r)-1)
}

// MarshalJSON writes the redacted form.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.Redacted()) }

// Reveal returns a copy of evidence with every Secret replaced by its plain
// value (for --show-secrets). Nested maps are handled.
func Reveal(evidence map[string]any) map[string]any {
	if evidence == nil {
		return nil
	}
	out := make(map[string]any, len(evidence))
	for k, v := range evidence {
		switch t := v.(type) {
		case Secret:
			out[k] = string(t)
		case map[string]any:
			out[k] = Reveal(t)
		default:
			out[k] = v
		}
	}
	return out
}

// Key identifies a finding for de-duplication and baselines.
func (f Finding) Key() string {
	return fmt.Sprintf("%s|%s|%d|%s|%s|%s", f.Check, f.Host, f.Port, f.Transport, f.Path, f.Title)
}

// Service is one open port and what answers on it.
type Service struct {
	Port      int    `json:"port"`
	Transport string `json:"transport"`
	Protocol  string `json:"protocol"`
	Product   string `json:"product,omitempty"`
	Version   string `json:"version,omitempty"`
	TLS       bool   `json:"tls"`
	Banner    string `json:"banner,omitempty"`
	// Vendor is the device maker when the service names it (extension).
	Vendor string `json:"vendor,omitempty"`
	// Attempts counts credential attempts made against the service (extension).
	Attempts int `json:"attempts,omitempty"`
}

// Device is one assessed address and its services.
type Device struct {
	Address  string    `json:"address"`
	Hostname string    `json:"hostname,omitempty"`
	Services []Service `json:"services"`
	// Alive is false when the device stopped answering during the scan.
	Alive *bool `json:"alive,omitempty"`
}

// Tool names the producer.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Summary counts what a report holds.
type Summary struct {
	Devices    int            `json:"devices"`
	Services   int            `json:"services"`
	Findings   int            `json:"findings"`
	BySeverity map[string]int `json:"by_severity"`
	ByCheck    map[string]int `json:"by_check"`
}

// SchemaV1 is the report contract identifier.
const SchemaV1 = "iotcop/report/v1"

// Report is the envelope written by --format json.
type Report struct {
	Schema     string    `json:"schema"`
	Tool       Tool      `json:"tool"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	Devices    []Device  `json:"devices"`
	Findings   []Finding `json:"findings"`
	Summary    Summary   `json:"summary"`
	// Firmware lists the images analysed (extension; absent for live scans).
	Firmware []FirmwareImage `json:"firmware,omitempty"`
	// Verdicts gives a verdict per EN 303 645 provision (extension; only
	// when an assessment ran, see package assess).
	Verdicts []Verdict `json:"verdicts,omitempty"`
}

// FirmwareImage is one analysed firmware image and the layers found in it.
type FirmwareImage struct {
	Image  string          `json:"image"`
	Size   int64           `json:"size"`
	SHA256 string          `json:"sha256"`
	Files  int             `json:"files"`
	Layers []FirmwareLayer `json:"layers"`
	// AnalysisErrors lists analyses that failed part-way.
	AnalysisErrors []string `json:"analysis_errors,omitempty"`
}

// FirmwareLayer is one container or compressed region inside an image:
// unpacked, failed (Error says why) or opaque (unknown or encrypted, with
// its entropy), so nothing is silently passed over.
type FirmwareLayer struct {
	ID     int    `json:"id"`
	Parent int    `json:"parent"`
	Source string `json:"source,omitempty"`
	Offset int64  `json:"offset"`
	Size   int64  `json:"size"`
	Format string `json:"format"`
	// Entropy in bits per byte (0..8); near 8 means compressed or encrypted.
	Entropy float64 `json:"entropy"`
	// Status is "unpacked", "failed" (Error says why) or "opaque"
	// (nothing known matched: unknown, encrypted or plain data).
	Status  string            `json:"status"`
	Error   string            `json:"error,omitempty"`
	Files   int               `json:"files"`
	Bytes   int64             `json:"bytes"`
	Refused []string          `json:"refused,omitempty"`
	Info    map[string]string `json:"info,omitempty"`
}

// Finalize sorts devices and findings into a stable order and recomputes
// the summary. Call it once before writing a report.
func (r *Report) Finalize() {
	if r.Schema == "" {
		r.Schema = SchemaV1
	}
	if r.Devices == nil {
		r.Devices = []Device{}
	}
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	sort.SliceStable(r.Devices, func(i, j int) bool { return LessAddr(r.Devices[i].Address, r.Devices[j].Address) })
	for i := range r.Devices {
		s := r.Devices[i].Services
		if s == nil {
			r.Devices[i].Services = []Service{}
		}
		sort.SliceStable(s, func(a, b int) bool {
			if s[a].Port != s[b].Port {
				return s[a].Port < s[b].Port
			}
			return s[a].Transport < s[b].Transport
		})
	}
	for i := range r.Findings {
		if r.Findings[i].Provisions == nil {
			r.Findings[i].Provisions = []string{}
		}
		if r.Findings[i].Evidence == nil {
			r.Findings[i].Evidence = map[string]any{}
		}
	}
	sort.SliceStable(r.Findings, func(i, j int) bool {
		a, b := r.Findings[i], r.Findings[j]
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		if a.Host != b.Host {
			return LessAddr(a.Host, b.Host)
		}
		if a.Port != b.Port {
			return a.Port < b.Port
		}
		if a.Check != b.Check {
			return a.Check < b.Check
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Title < b.Title
	})
	sum := Summary{Devices: len(r.Devices), Findings: len(r.Findings),
		BySeverity: map[string]int{}, ByCheck: map[string]int{}}
	for _, d := range r.Devices {
		sum.Services += len(d.Services)
	}
	for _, f := range r.Findings {
		sum.BySeverity[f.Severity.String()]++
		sum.ByCheck[f.Check]++
	}
	r.Summary = sum
}

// RevealSecrets replaces every Secret in the findings' evidence with its
// plain value. Used only when the user passes --show-secrets.
func (r *Report) RevealSecrets() {
	for i := range r.Findings {
		r.Findings[i].Evidence = Reveal(r.Findings[i].Evidence)
	}
}

// MaxSeverity returns the highest severity present and whether any finding exists.
func (r *Report) MaxSeverity() (Severity, bool) {
	if len(r.Findings) == 0 {
		return Info, false
	}
	m := Info
	for _, f := range r.Findings {
		if f.Severity > m {
			m = f.Severity
		}
	}
	return m, true
}
