package report

import (
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"

	"github.com/iotcop/iotcop/assess"
	"github.com/iotcop/iotcop/finding"
)

// WriteHTML writes one self-contained HTML page: an overview a
// non-specialist can read (the three UK PSTI requirements, an SVG chart of
// verdicts per Code of Practice guideline), a card per device and image,
// every finding with its evidence and how to fix it, and the provision
// table with what decided each verdict. It has inline CSS and SVG, no
// script and no external resource. a may be nil for a report of findings
// only. Secrets stay redacted unless the caller revealed them beforehand.
func WriteHTML(w io.Writer, rep *finding.Report, a *assess.Assessment) error {
	page := buildPage(rep, a)
	if err := pageTemplate.Execute(w, page); err != nil {
		return fmt.Errorf("write html report: %w", err)
	}
	return nil
}

// Bounds on what one evidence value shows; the JSON report has it all.
const maxEvidenceRunes = 2000

type htmlPage struct {
	Title       string
	Subtitle    []string
	Rep         *finding.Report
	A           *assess.Assessment
	Product     []kv
	Headline    string
	HeadlineBad bool
	PSTI        []pstiCard
	Chart       *chart
	Severities  []sevCount
	Devices     []deviceCard
	Images      []imageCard
	Findings    []findingView
	Verdicts    []verdictView
	Rules       []assess.Rule
	Notes       []string
}

type kv struct{ K, V string }

type sevCount struct {
	Name  string
	Count int
}

type pstiCard struct {
	assess.PSTIRollup
	Plain   string
	Outcome string
	Symbol  string
	Class   string
}

type deviceCard struct {
	Title    string
	Dead     bool
	Services []finding.Service
	Findings []findingLink
}

type imageCard struct {
	finding.FirmwareImage
	Opaque int
}

type findingLink struct {
	Anchor, Title, Severity string
}

type findingView struct {
	finding.Finding
	Anchor     string
	Where      string
	Evidence   []kv
	Provisions string
}

type verdictView struct {
	finding.Verdict
	Class    string
	Findings []findingLink
	CoP      string
}

type chart struct {
	Width, Height int
	Rows          []chartRow
	Legend        []legendItem
	AxisX         int
}

type chartRow struct {
	Y, TextY  int
	Label     string
	Short     string
	Segments  []chartSegment
	Total     int
	TotalX    int
	TotalText string
}

type chartSegment struct {
	X, Y, W, NumY    int
	Fill, Title, Num string
	NumX             int
}

type legendItem struct {
	X            int
	Fill, Label  string
	TextX, TextY int
}

var verdictColours = map[string]string{
	finding.VerdictPass:          "#1a7f37",
	finding.VerdictFail:          "#cf222e",
	finding.VerdictInconclusive:  "#bf8700",
	finding.VerdictNotAssessed:   "#8c959f",
	finding.VerdictNotApplicable: "#d0d7de",
}

func verdictClass(v string) string {
	return "v-" + strings.ReplaceAll(strings.ToLower(v), " ", "-")
}

func buildPage(rep *finding.Report, a *assess.Assessment) *htmlPage {
	p := &htmlPage{Rep: rep, A: a, Title: "iotcop security report"}
	if a != nil && a.Declarations != nil {
		pr := a.Declarations.Product
		if name := strings.TrimSpace(pr.Manufacturer + " " + pr.Model); name != "" {
			p.Title = "Security assessment of " + name
		}
		for _, f := range []kv{{"Manufacturer", pr.Manufacturer}, {"Address", pr.Address}, {"Model", pr.Model},
			{"Product type", pr.ProductType}, {"Hardware version", pr.HardwareVersion}, {"Firmware version", pr.FirmwareVersion},
			{"Batch", pr.Batch}} {
			if f.V != "" {
				p.Product = append(p.Product, f)
			}
		}
		if sp := a.Declarations.SupportPeriod; !sp.End.IsZero() {
			p.Product = append(p.Product, kv{"Security updates until", sp.End.Format("2 January 2006")})
		}
		if u := a.Declarations.Disclosure.URL; u != "" {
			p.Product = append(p.Product, kv{"Report security issues at", u})
		}
	}
	if a != nil {
		p.Subtitle = append(p.Subtitle, "Assessed against ETSI EN 303 645 "+string(a.Edition)+", the UK Code of Practice and UK PSTI")
	}
	p.Subtitle = append(p.Subtitle, fmt.Sprintf("%s %s, %s", rep.Tool.Name, rep.Tool.Version, rep.StartedAt.UTC().Format("2 January 2006 15:04 UTC")))

	anchors := map[string]string{}
	for i, f := range rep.Findings {
		anchor := fmt.Sprintf("f-%d", i+1)
		if _, dup := anchors[f.Key()]; !dup {
			anchors[f.Key()] = anchor
		}
		if f.Remediation == "" {
			f.Remediation = defaultFixes[f.Check]
		}
		p.Findings = append(p.Findings, findingView{Finding: f, Anchor: anchor, Where: where(f),
			Evidence: evidenceRows(f.Evidence), Provisions: strings.Join(f.Provisions, ", ")})
	}
	for _, s := range []finding.Severity{finding.Critical, finding.High, finding.Medium, finding.Low, finding.Info} {
		p.Severities = append(p.Severities, sevCount{s.String(), rep.Summary.BySeverity[s.String()]})
	}
	p.devices(rep)
	if a != nil {
		p.assessment(a, anchors)
	}
	return p
}

func (p *htmlPage) devices(rep *finding.Report) {
	byHost := map[string][]findingLink{}
	var firmware []findingLink
	for _, f := range p.Findings {
		l := findingLink{f.Anchor, f.Title, f.Severity.String()}
		if f.Host == "" {
			firmware = append(firmware, l)
			continue
		}
		byHost[f.Host] = append(byHost[f.Host], l)
	}
	for _, d := range rep.Devices {
		title := d.Address
		if d.Hostname != "" {
			title += " (" + d.Hostname + ")"
		}
		p.Devices = append(p.Devices, deviceCard{Title: title, Dead: d.Alive != nil && !*d.Alive,
			Services: d.Services, Findings: byHost[d.Address]})
	}
	for _, img := range rep.Firmware {
		c := imageCard{FirmwareImage: img}
		for _, l := range img.Layers {
			if l.Status == "opaque" {
				c.Opaque++
			}
		}
		p.Images = append(p.Images, c)
	}
	if len(firmware) > 0 {
		p.Devices = append(p.Devices, deviceCard{Title: "Firmware", Findings: firmware})
	}
}

// defaultFixes says how to fix a finding whose check gave no remediation,
// so every finding in the page comes with one.
var defaultFixes = map[string]string{
	finding.CheckDefaultCredentials:    "Ship without a universal default password: a unique per-device password or one the user must set at first use (EN 303 645 5.1-1, PSTI requirement 1).",
	finding.CheckUnauthenticatedAccess: "Require authentication on every interface that gives access to the device or its data (EN 303 645 5.1-1, 5.5-4).",
	finding.CheckCleartextProtocol:     "Carry logins only over encrypted channels (SSH, TLS); disable the clear-text service (EN 303 645 5.5-1).",
	finding.CheckWeakTLS:               "Offer only TLS 1.2 and 1.3 with modern cipher suites, and a certificate unique to the unit (EN 303 645 5.5-1).",
	finding.CheckWeakSSH:               "Offer only current SSH key exchange, host key and cipher algorithms (EN 303 645 5.5-1).",
	finding.CheckExposedDebugService:   "Disable debug and legacy services in production firmware; expose only what the product needs (EN 303 645 5.6-1, 5.6-2).",
	finding.CheckVulnDisclosure:        "Publish a vulnerability disclosure policy (RFC 9116 security.txt) with a contact and response times (EN 303 645 5.2-1, PSTI requirement 2).",
	finding.CheckHardCodedCredentials:  "Remove preset passwords from the image: generate a unique password per unit at manufacture or have the user set one (EN 303 645 5.1-1).",
	finding.CheckEmbeddedPrivateKey:    "Do not ship private keys in the image: generate keys on each unit or provision them per unit in secure storage (EN 303 645 5.4-1, 5.4-3).",
	finding.CheckEmbeddedSecret:        "Remove hard-coded secrets from the image: provision per-unit credentials in secure storage (EN 303 645 5.4-1, 5.4-3).",
	finding.CheckInsecureBootService:   "Do not start debug or clear-text services at boot in production firmware (EN 303 645 5.6-1, 5.6-4).",
	finding.CheckBinaryHardening:       "Build binaries with stack protector, PIE, full RELRO and NX (EN 303 645 5.6-9).",
	finding.CheckKnownVulnerability:    "Update the component to a version that fixes the vulnerability and ship a security update (EN 303 645 5.2-3, 5.3-8).",
	finding.CheckDeviceUnresponsive:    "Make the device withstand malformed input and load without crashing or rebooting (EN 303 645 5.13-1, 5.9-1).",
	finding.CheckSharedSecret:          "Give every unit its own keys and credentials; nothing secret may be shared across units (EN 303 645 5.1-1, 5.4-1).",
}

var pstiPlain = map[int]string{
	1: "No universal default passwords: every unit needs its own password, or the user sets one.",
	2: "The maker must publish how to report a security problem, and what happens next.",
	3: "The maker must say, with an end date, how long the product gets security updates.",
}

var outcomes = map[string][2]string{
	finding.VerdictPass:          {"Meets the requirement", "✔"},
	finding.VerdictFail:          {"Does not meet the requirement", "✘"},
	finding.VerdictInconclusive:  {"Could not be confirmed", "?"},
	finding.VerdictNotAssessed:   {"Not assessed", "–"},
	finding.VerdictNotApplicable: {"Does not apply", "○"},
}

func (p *htmlPage) assessment(a *assess.Assessment, anchors map[string]string) {
	var failed []string
	for _, r := range a.PSTI {
		o := outcomes[r.Verdict]
		p.PSTI = append(p.PSTI, pstiCard{PSTIRollup: r, Plain: pstiPlain[r.Requirement], Outcome: o[0], Symbol: o[1],
			Class: verdictClass(r.Verdict)})
		if r.Verdict == finding.VerdictFail {
			failed = append(failed, fmt.Sprintf("%d (%s)", r.Requirement, strings.ToLower(r.Name)))
		}
	}
	total := len(a.Verdicts)
	switch {
	case len(failed) > 0:
		p.Headline = "This product does not meet UK PSTI requirement " + strings.Join(failed, " and ") + "."
		p.HeadlineBad = true
	case a.Counts[finding.VerdictFail] > 0:
		p.Headline = fmt.Sprintf("The UK PSTI requirements are not failed, but %d EN 303 645 provisions are.", a.Counts[finding.VerdictFail])
		p.HeadlineBad = true
	case a.Conformant():
		p.Headline = fmt.Sprintf("Every one of the %d EN 303 645 provisions passed or does not apply.", total)
	default:
		p.Headline = fmt.Sprintf("Nothing failed, but %d of the %d provisions could not be decided yet.",
			a.Counts[finding.VerdictInconclusive]+a.Counts[finding.VerdictNotAssessed], total)
	}
	for _, v := range a.Verdicts {
		vv := verdictView{Verdict: v, Class: verdictClass(v.Verdict)}
		if v.Guideline != 0 {
			vv.CoP = fmt.Sprint(v.Guideline)
		}
		for _, r := range v.Findings {
			vv.Findings = append(vv.Findings, findingLink{Anchor: anchors[r.Key()], Title: r.Title, Severity: r.Role})
		}
		p.Verdicts = append(p.Verdicts, vv)
	}
	used := map[string]bool{}
	for _, v := range a.Verdicts {
		used[v.Rule] = true
	}
	for _, r := range assess.Rules() {
		if used[r.ID] {
			p.Rules = append(p.Rules, r)
		}
	}
	p.Chart = buildChart(a)
	p.Notes = append(p.Notes, "Provision titles are paraphrases, not the text of ETSI EN 303 645.")
	for _, r := range a.PSTI {
		if len(r.Unverified) > 0 {
			p.Notes = append(p.Notes, fmt.Sprintf("PSTI requirement %d: the catalogue could not confirm %s against the legislation.",
				r.Requirement, strings.Join(r.Unverified, "; ")))
		}
	}
}

func buildChart(a *assess.Assessment) *chart {
	const labelW, barW, rowH, top = 330, 420, 26, 34
	const maxLabel = 46 // runes that fit in labelW at 12px
	c := &chart{Width: labelW + barW + 60, AxisX: labelW}
	maxTotal := 1
	for _, g := range a.Guidelines {
		if n := len(g.Provisions); n > maxTotal {
			maxTotal = n
		}
	}
	x := 0
	for _, s := range finding.Verdicts() {
		c.Legend = append(c.Legend, legendItem{X: x, Fill: verdictColours[s], Label: s, TextX: x + 16, TextY: 12})
		x += 16 + 8*len(s) + 18
	}
	for i, g := range a.Guidelines {
		y := top + i*rowH
		full := fmt.Sprintf("%d. %s", g.Number, g.Name)
		row := chartRow{Y: y, TextY: y + 15, Label: full, Short: full, Total: len(g.Provisions)}
		if r := []rune(full); len(r) > maxLabel {
			row.Short = string(r[:maxLabel-1]) + "…"
		}
		sx := labelW
		for _, s := range finding.Verdicts() {
			n := g.Counts[s]
			if n == 0 {
				continue
			}
			w := n * barW / maxTotal
			seg := chartSegment{X: sx, Y: y + 2, W: w, NumY: y + 15, Fill: verdictColours[s], Title: fmt.Sprintf("%s: %d %s", row.Label, n, s)}
			if w >= 14 {
				seg.Num, seg.NumX = fmt.Sprint(n), sx+w/2
			}
			row.Segments = append(row.Segments, seg)
			sx += w
		}
		row.TotalX = sx + 6
		row.TotalText = fmt.Sprint(row.Total)
		c.Rows = append(c.Rows, row)
	}
	c.Height = top + len(a.Guidelines)*rowH + 4
	return c
}

func where(f finding.Finding) string {
	switch {
	case f.Host != "" && f.Port != 0:
		return fmt.Sprintf("%s port %d/%s (%s)", f.Host, f.Port, f.Transport, f.Protocol)
	case f.Host != "":
		return f.Host
	case f.Path != "":
		return "firmware file " + f.Path
	}
	return ""
}

// evidenceRows renders evidence as sorted rows; secrets show redacted.
func evidenceRows(ev map[string]any) []kv {
	keys := make([]string, 0, len(ev))
	for k := range ev {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	rows := make([]kv, 0, len(keys))
	for _, k := range keys {
		rows = append(rows, kv{k, clip(evidenceText(ev[k]))})
	}
	return rows
}

func evidenceText(v any) string {
	switch t := v.(type) {
	case finding.Secret:
		return t.Redacted()
	case string:
		return t
	case []string:
		return strings.Join(t, "\n")
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = evidenceText(e)
		}
		return strings.Join(parts, "\n")
	case map[string]any:
		var parts []string
		for _, r := range evidenceRows(t) {
			parts = append(parts, r.K+": "+r.V)
		}
		return strings.Join(parts, "\n")
	case map[string]string:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ": " + t[k]
		}
		return strings.Join(parts, "\n")
	}
	return fmt.Sprint(v)
}

func clip(s string) string {
	r := []rune(s)
	if len(r) <= maxEvidenceRunes {
		return s
	}
	return string(r[:maxEvidenceRunes]) + "… (truncated; the JSON report has it all)"
}

var pageTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"sevclass":     func(s string) string { return "sev-" + s },
	"verdictclass": verdictClass,
	"upper":        strings.ToUpper,
	"join":         strings.Join,
	"kib":          func(n int64) string { return fmt.Sprintf("%.1f KiB", float64(n)/1024) },
}).Parse(htmlTemplate))

const htmlTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa;--pass:#1a7f37;--fail:#cf222e;--inc:#9a6700;--na:#59636e}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);margin:0;line-height:1.45}
header,main,footer{max-width:1100px;margin:0 auto;padding:0 20px}
header{padding-top:24px}
h1{font-size:1.7em;margin:0 0 4px}
h2{font-size:1.3em;border-bottom:1px solid var(--line);padding-bottom:4px;margin-top:36px}
h3{font-size:1.05em;margin:0 0 6px}
.sub{color:var(--muted);margin:0}
.product{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:12px 0 0}
.product dt{color:var(--muted)}
.product dd{margin:0}
.headline{font-size:1.15em;font-weight:600;padding:10px 14px;border-radius:6px;background:#dafbe1;border:1px solid #aceebb}
.headline.bad{background:#ffebe9;border-color:#ffcecb}
.psti{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:14px;margin:14px 0}
.card{border:1px solid var(--line);border-radius:8px;padding:14px;background:#fff}
.psti .card{border-width:2px}
.psti .outcome{font-size:1.35em;font-weight:700;margin:6px 0}
.psti .v-pass{border-color:var(--pass)} .psti .v-pass .outcome{color:var(--pass)}
.psti .v-fail{border-color:var(--fail)} .psti .v-fail .outcome{color:var(--fail)}
.psti .v-inconclusive{border-color:#d4a72c} .psti .v-inconclusive .outcome{color:var(--inc)}
.psti .v-not-assessed .outcome,.psti .v-not-applicable .outcome{color:var(--na)}
.small{font-size:.88em;color:var(--muted)}
.badge{display:inline-block;padding:1px 7px;border-radius:10px;font-size:.8em;font-weight:600;white-space:nowrap;border:1px solid transparent}
.v-pass.badge{background:#dafbe1;color:#116329;border-color:#aceebb}
.v-fail.badge{background:#ffebe9;color:#a40e26;border-color:#ffcecb}
.v-inconclusive.badge{background:#fff8c5;color:#7d4e00;border-color:#f5e0a0}
.v-not-assessed.badge{background:#eff2f5;color:#424a53;border-color:#d1d9e0}
.v-not-applicable.badge{background:#fff;color:#59636e;border-color:#d1d9e0}
.sev-critical.badge{background:#a40e26;color:#fff}
.sev-high.badge{background:#cf222e;color:#fff}
.sev-medium.badge{background:#d4a72c;color:#1f2328}
.sev-low.badge{background:#54aeff;color:#1f2328}
.sev-info.badge,.sev-indicates.badge{background:#eff2f5;color:#424a53;border-color:#d1d9e0}
.sev-fails.badge{background:#ffebe9;color:#a40e26;border-color:#ffcecb}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(330px,1fr));gap:14px}
table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{text-align:left;vertical-align:top;padding:5px 7px;border-bottom:1px solid var(--line)}
th{background:var(--bg);font-weight:600}
td.num{text-align:right}
ul.flist{padding-left:18px;margin:6px 0}
article.finding{border:1px solid var(--line);border-left:5px solid var(--line);border-radius:6px;padding:12px 14px;margin:12px 0}
article.sev-critical{border-left-color:#a40e26} article.sev-high{border-left-color:#cf222e}
article.sev-medium{border-left-color:#d4a72c} article.sev-low{border-left-color:#54aeff}
.meta{margin:4px 0 8px}
.evidence td:first-child{width:22%;color:var(--muted);font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.evidence td:last-child{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;white-space:pre-wrap;word-break:break-all}
.fix{background:#ddf4ff;border-radius:6px;padding:8px 10px;margin-top:8px}
.contra{color:#a40e26;font-weight:600}
.provisions td:first-child{white-space:nowrap;font-weight:600}
figure{margin:14px 0;overflow-x:auto}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;font-size:12px;fill:#1f2328}
svg text.num{fill:#fff;font-weight:600;text-anchor:middle}
footer{color:var(--muted);font-size:.88em;margin-top:40px;padding-bottom:30px;border-top:1px solid var(--line)}
details summary{cursor:pointer;font-weight:600}
@media print{h2{break-after:avoid} article.finding,.card{break-inside:avoid}}
</style>
</head>
<body>
<header>
<h1>{{.Title}}</h1>
{{range .Subtitle}}<p class="sub">{{.}}</p>
{{end}}{{if .Product}}<dl class="product">
{{range .Product}}<dt>{{.K}}</dt><dd>{{.V}}</dd>
{{end}}</dl>
{{end}}</header>
<main>
<section id="overview">
<h2>At a glance</h2>
{{if .A}}<p class="headline{{if .HeadlineBad}} bad{{end}}">{{.Headline}}</p>
<h3>The three UK PSTI security requirements</h3>
<div class="psti">
{{range .PSTI}}<div class="card {{.Class}}" id="psti-{{.Requirement}}">
<div class="small">PSTI requirement {{.Requirement}} · {{.LegalRef}}</div>
<h3>{{.Name}}</h3>
<div class="outcome">{{.Symbol}} {{.Outcome}}</div>
<p>{{.Plain}}</p>
<p class="small">{{.Reason}}</p>
</div>
{{end}}</div>
<p>Of the {{len .A.Verdicts}} provisions of EN 303 645 {{.A.Edition}}:
{{range $i, $s := .Chart.Legend}}{{if $i}}, {{end}}<span class="badge {{verdictclass .Label}}">{{index $.A.Counts .Label}} {{.Label}}</span>{{end}}.</p>
<figure>
<svg width="{{.Chart.Width}}" height="{{.Chart.Height}}" viewBox="0 0 {{.Chart.Width}} {{.Chart.Height}}" role="img" aria-labelledby="chart-title">
<title id="chart-title">Verdicts per UK Code of Practice guideline</title>
{{range .Chart.Legend}}<rect x="{{.X}}" y="2" width="12" height="12" fill="{{.Fill}}" stroke="#8c959f" stroke-width="0.5"/><text x="{{.TextX}}" y="{{.TextY}}">{{.Label}}</text>
{{end}}{{range .Chart.Rows}}<g><text x="0" y="{{.TextY}}"><title>{{.Label}}</title>{{.Short}}</text>
{{range .Segments}}<rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="18" fill="{{.Fill}}"><title>{{.Title}}</title></rect>{{if .Num}}<text class="num" x="{{.NumX}}" y="{{.NumY}}">{{.Num}}</text>{{end}}
{{end}}<text x="{{.TotalX}}" y="{{.TextY}}">{{.TotalText}}</text></g>
{{end}}</svg>
<figcaption class="small">Verdicts per UK Code of Practice guideline; the number after each bar is how many EN 303 645 provisions serve it.</figcaption>
</figure>
{{else}}<p>This report lists findings only: no conformance assessment was made (run <code>iotcop assess</code> for a verdict per provision).</p>
{{end}}<p>Findings by severity:
{{range $i, $s := .Severities}}{{if $i}}, {{end}}<span class="badge {{sevclass .Name}}">{{.Count}} {{.Name}}</span>{{end}}.</p>
</section>

<section id="devices">
<h2>Devices and firmware</h2>
<div class="cards">
{{range .Devices}}<div class="card">
<h3>{{.Title}}</h3>
{{if .Dead}}<p class="contra">Stopped answering during the assessment.</p>
{{end}}{{if .Services}}<table>
<tr><th>Port</th><th>Service</th><th>Product</th></tr>
{{range .Services}}<tr><td>{{.Port}}/{{.Transport}}</td><td>{{.Protocol}}{{if .TLS}} (TLS){{end}}</td><td>{{.Product}} {{.Version}}{{if .Attempts}} <span class="small">({{.Attempts}} login attempts)</span>{{end}}</td></tr>
{{end}}</table>
{{end}}{{if .Findings}}<ul class="flist">
{{range .Findings}}<li><span class="badge {{sevclass .Severity}}">{{.Severity}}</span> <a href="#{{.Anchor}}">{{.Title}}</a></li>
{{end}}</ul>
{{else}}<p class="small">No findings.</p>
{{end}}</div>
{{end}}{{range .Images}}<div class="card">
<h3>Firmware image {{.Image}}</h3>
<p class="small">{{kib .Size}}, {{.Files}} files unpacked, SHA-256 <code>{{.SHA256}}</code></p>
<table>
<tr><th>Layer</th><th>Format</th><th>Status</th><th class="num">Size</th></tr>
{{range .Layers}}<tr><td>{{.ID}}</td><td>{{.Format}}</td><td>{{.Status}}{{if .Error}}: {{.Error}}{{end}}</td><td class="num">{{.Size}}</td></tr>
{{end}}</table>
{{if .Opaque}}<p class="small">{{.Opaque}} opaque layer(s) (encrypted or unknown) could not be inspected.</p>
{{end}}{{range .AnalysisErrors}}<p class="small">Analysis error: {{.}}</p>
{{end}}</div>
{{end}}</div>
</section>

<section id="findings">
<h2>Findings ({{len .Findings}})</h2>
{{range .Findings}}<article class="finding {{sevclass .Severity.String}}" id="{{.Anchor}}">
<h3>{{.Title}}</h3>
<p class="meta"><span class="badge {{sevclass .Severity.String}}">{{.Severity}}</span> {{.Where}} · check <code>{{.Check}}</code>{{if .Provisions}} · EN 303 645 {{.Provisions}}{{end}}</p>
{{if .Evidence}}<table class="evidence">
{{range .Evidence}}<tr><td>{{.K}}</td><td>{{.V}}</td></tr>
{{end}}</table>
{{end}}{{if .Remediation}}<p class="fix"><strong>How to fix:</strong> {{.Remediation}}</p>
{{end}}</article>
{{else}}<p>No findings.</p>
{{end}}</section>
{{if .A}}
<section id="provisions">
<h2>Provisions of EN 303 645 {{.A.Edition}}</h2>
<p class="small">Basis says what decided each verdict: evidence (checks and analyses), the manufacturer's declaration, both, or the declared conditions. Evidence always beats a declaration.</p>
<table class="provisions">
<tr><th>Provision</th><th>Status</th><th>CoP</th><th>Verdict</th><th>Why</th><th>Declaration</th></tr>
{{range .Verdicts}}<tr id="p-{{.Provision}}">
<td>{{.Provision}}</td><td>{{.Status}}</td><td>{{.CoP}}</td>
<td><span class="badge {{.Class}}">{{.Verdict.Verdict}}</span><div class="small">{{.Basis}}</div></td>
<td><strong>{{.Title}}</strong><br>{{.Reason}}{{if .Contradiction}}<br><span class="contra">Contradiction: {{.Contradiction}}</span>{{end}}
{{if .Findings}}<ul class="flist">
{{range .Findings}}<li><span class="badge {{sevclass .Severity}}">{{.Severity}}</span> {{if .Anchor}}<a href="#{{.Anchor}}">{{.Title}}</a>{{else}}{{.Title}}{{end}}</li>
{{end}}</ul>{{end}}<div class="small">rule {{.Rule}}{{if .Checks}}; checks {{join .Checks ", "}}{{end}}</div></td>
<td>{{with .Declaration}}{{if .Support}}<strong>{{.Support}}</strong>{{end}}{{if .Line}} <span class="small">line {{.Line}}</span>{{end}}{{if .Justification}}<br>Justification: {{.Justification}}{{end}}{{if .Implementation}}<br>Implementation: {{.Implementation}}{{end}}{{if .Evidence}}<br>Evidence: {{join .Evidence ", "}}{{end}}{{if .Conditions}}<br><span class="small">{{.Conditions}}</span>{{end}}{{else}}<span class="small">none</span>{{end}}</td>
</tr>
{{end}}</table>
<details>
<summary>Rules used</summary>
<table>
<tr><th>Rule</th><th>Provisions</th><th>What it does</th></tr>
{{range .Rules}}<tr><td>{{.ID}}</td><td>{{join .Provisions ", "}}</td><td>{{.Text}}</td></tr>
{{end}}<tr><td>generic</td><td>any other</td><td>A finding citing the provision fails it when high or critical; lower ones leave it inconclusive.</td></tr>
<tr><td>declaration</td><td>any other</td><td>Declared Y with an implementation or evidence passes (not verified by a check); N fails a mandatory provision; N/A needs a justification and a condition that can be absent.</td></tr>
<tr><td>conditions</td><td>conditional</td><td>A condition or feature declared absent makes the provision not applicable.</td></tr>
<tr><td>reporting</td><td>4-1 / 5.0-1</td><td>Every recommendation not implemented or not applicable carries a justification.</td></tr>
<tr><td>support-period</td><td>5.3-13</td><td>A declared support period end date that has not passed, and where it is published.</td></tr>
</table>
</details>
</section>
{{end}}</main>
<footer>
<p>Generated by {{.Rep.Tool.Name}} {{.Rep.Tool.Version}}; scan started {{.Rep.StartedAt.UTC.Format "2006-01-02 15:04:05 UTC"}}, finished {{.Rep.FinishedAt.UTC.Format "2006-01-02 15:04:05 UTC"}}{{if .A}}; assessed {{.A.AssessedAt.UTC.Format "2006-01-02 15:04:05 UTC"}}{{end}}.
Secrets in evidence are shown redacted unless the report was made with --show-secrets.</p>
{{range .Notes}}<p>{{.}}</p>
{{end}}</footer>
</body>
</html>
`
