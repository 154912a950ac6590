package report

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/iotcop/iotcop/finding"
)

const (
	ansiReset = "\x1b[0m"
	ansiBold  = "\x1b[1m"
	ansiDim   = "\x1b[2m"
)

func sevColour(s finding.Severity) string {
	switch s {
	case finding.Critical:
		return "\x1b[1;31m"
	case finding.High:
		return "\x1b[31m"
	case finding.Medium:
		return "\x1b[33m"
	case finding.Low:
		return "\x1b[36m"
	}
	return "\x1b[2m"
}

// WriteText writes a terminal summary grouped by device.
func WriteText(w io.Writer, rep *finding.Report, opts Options) error {
	p := &printer{w: w, colour: opts.Colour}
	byHost := map[string][]finding.Finding{}
	var pathFindings []finding.Finding
	for _, f := range rep.Findings {
		if f.Host == "" {
			pathFindings = append(pathFindings, f)
			continue
		}
		byHost[f.Host] = append(byHost[f.Host], f)
	}
	for _, d := range rep.Devices {
		p.line("%s%s%s", p.c(ansiBold), d.Address, p.c(ansiReset))
		for _, s := range d.Services {
			desc := s.Protocol
			if s.TLS && !strings.HasSuffix(desc, "s") && s.Protocol != "tls" {
				desc += "+tls"
			}
			prod := strings.TrimSpace(s.Product + " " + s.Version)
			if prod == "" && s.Protocol == "unknown" && s.Banner != "" {
				prod = "first bytes \"" + truncate(s.Banner, 40) + "\""
			}
			extra := ""
			if s.Attempts > 0 {
				plural := "s"
				if s.Attempts == 1 {
					plural = ""
				}
				extra = fmt.Sprintf("  %s(%d login attempt%s)%s", p.c(ansiDim), s.Attempts, plural, p.c(ansiReset))
			}
			p.line("  %5d/%s  %-8s %s%s", s.Port, s.Transport, desc, prod, extra)
		}
		fs := byHost[d.Address]
		if len(fs) == 0 {
			p.line("  %sno findings%s", p.c(ansiDim), p.c(ansiReset))
		}
		for _, f := range fs {
			p.finding(f)
		}
		p.line("")
	}
	for _, img := range rep.Firmware {
		p.line("%s%s%s  %d bytes, sha256 %s, %d files unpacked", p.c(ansiBold), img.Image, p.c(ansiReset), img.Size, shortHash(img.SHA256), img.Files)
		for _, l := range img.Layers {
			status := l.Status
			if l.Error != "" {
				status += ": " + truncate(l.Error, 70)
			}
			p.line("  layer %-3d @0x%08x %10d bytes  %-12s entropy %.2f  %s", l.ID, l.Offset, l.Size, l.Format, l.Entropy, status)
		}
		for _, e := range img.AnalysisErrors {
			p.line("  analysis error: %s", e)
		}
	}
	if len(pathFindings) > 0 {
		if len(rep.Firmware) == 0 {
			p.line("%sfirmware%s", p.c(ansiBold), p.c(ansiReset))
		}
		for _, f := range pathFindings {
			p.finding(f)
		}
		p.line("")
	}
	sum := rep.Summary
	var parts []string
	for _, s := range []finding.Severity{finding.Critical, finding.High, finding.Medium, finding.Low, finding.Info} {
		if n := sum.BySeverity[s.String()]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	sev := "none"
	if len(parts) > 0 {
		sev = strings.Join(parts, ", ")
	}
	if len(rep.Firmware) > 0 && sum.Devices == 0 {
		p.line("%d images, %d findings (%s)", len(rep.Firmware), sum.Findings, sev)
	} else {
		p.line("%d devices, %d services, %d findings (%s)", sum.Devices, sum.Services, sum.Findings, sev)
	}
	return p.err
}

type printer struct {
	w      io.Writer
	colour bool
	err    error
}

func (p *printer) c(code string) string {
	if p.colour {
		return code
	}
	return ""
}

func (p *printer) line(format string, args ...any) {
	if p.err != nil {
		return
	}
	_, p.err = fmt.Fprintf(p.w, format+"\n", args...)
}

func (p *printer) finding(f finding.Finding) {
	where := ""
	if f.Port != 0 {
		where = fmt.Sprintf("%d/%s ", f.Port, f.Transport)
	}
	if f.Path != "" {
		where = f.Path + " "
	}
	if f.Baseline == "new" {
		where = "NEW " + where
	}
	p.line("  %s%-8s%s %s%s  [%s %s]", p.c(sevColour(f.Severity)), strings.ToUpper(f.Severity.String()), p.c(ansiReset),
		where, f.Title, f.Check, strings.Join(f.Provisions, ","))
	if ev := evidenceLine(f.Evidence); ev != "" {
		p.line("           %s%s%s", p.c(ansiDim), ev, p.c(ansiReset))
	}
}

// evidenceLine renders evidence as sorted key=value pairs; Secret values
// print redacted (their String form is never the plain value).
func evidenceLine(ev map[string]any) string {
	keys := make([]string, 0, len(ev))
	for k := range ev {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		v := ev[k]
		var text string
		if sec, ok := v.(finding.Secret); ok {
			text = sec.Redacted()
		} else {
			// Long lists (topics, resources) stay in the JSON report.
			text = truncate(fmt.Sprint(v), 80)
		}
		parts = append(parts, k+"="+text)
	}
	// One line on a terminal; the JSON report has everything.
	return truncate(strings.Join(parts, " "), 150)
}

func shortHash(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
