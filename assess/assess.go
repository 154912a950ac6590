// Package assess turns evidence into a verdict per EN 303 645 provision:
// the findings of a live scan and a firmware analysis, which checks ran
// over which targets, and the manufacturer's declarations. Each verdict
// (PASS, FAIL, INCONCLUSIVE, NOT APPLICABLE, NOT ASSESSED) names the
// findings and declaration entry that decided it and the rule used; the
// rules are a table (Rules). Evidence always beats a declaration: a
// provision declared supported that a finding fails is FAIL, and the
// contradiction is named. Verdicts roll up per UK Code of Practice
// guideline and per UK PSTI requirement.
package assess

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/iotcop/iotcop/declare"
	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/standard"
)

// Targets are what was assessed.
type Targets struct {
	// Devices are the live devices scanned, with their services (Attempts
	// counts the credentials tried on each).
	Devices []finding.Device
	// Images are the firmware images analysed, with their layers.
	Images []finding.FirmwareImage
}

// Input is everything an assessment judges.
type Input struct {
	// Edition to assess against; empty takes the declarations' edition,
	// else standard.DefaultEdition.
	Edition standard.Edition
	// Findings of the live scan and the firmware analysis.
	Findings []finding.Finding
	// ChecksRun lists the check ids that ran (live checks and firmware
	// analyses, by the check ids of their findings); a check that did not
	// run is no evidence of absence.
	ChecksRun []string
	Targets   Targets
	// Declarations may be nil.
	Declarations *declare.Declarations
	// Manifest is true when the exposure check compared every listener
	// with the maker's manifest of expected services (--expected).
	Manifest bool
	// VendorSites are the manufacturer sites whose security.txt the
	// disclosure check read (--vendor-url).
	VendorSites []string
	// Now is the assessment time (default time.Now).
	Now time.Time
}

// FromReport builds an Input from a report (its findings, devices and
// images), the check ids that ran and the declarations (may be nil).
func FromReport(rep *finding.Report, checksRun []string, d *declare.Declarations) Input {
	return Input{Findings: rep.Findings, ChecksRun: checksRun, Declarations: d,
		Targets: Targets{Devices: rep.Devices, Images: rep.Firmware}}
}

// CheckIDs returns the ids of checks (anything with an ID method, such as
// check.Check), for Input.ChecksRun.
func CheckIDs[C interface{ ID() string }](checks []C) []string {
	out := make([]string, 0, len(checks))
	for _, c := range checks {
		out = append(out, c.ID())
	}
	return out
}

// FirmwareChecks returns the check ids the default firmware analyses
// (firmware/analyze.Default) report under; withOSV adds known-vulnerability
// for a run that matched components against an OSV database.
func FirmwareChecks(withOSV bool) []string {
	ids := []string{checkHardCoded, checkPrivateKey, checkSecret, checkBoot, checkHardening}
	if withOSV {
		ids = append(ids, checkKnownVuln)
	}
	return ids
}

// GuidelineRollup sums the verdicts of one UK Code of Practice guideline.
type GuidelineRollup struct {
	Number int
	Name   string
	// Verdict is the worst verdict among its provisions (FAIL, then
	// INCONCLUSIVE, NOT ASSESSED, PASS; NOT APPLICABLE only when all are).
	Verdict string
	// Counts per verdict state.
	Counts     map[string]int
	Provisions []string
}

// PSTIRollup is the verdict for one UK PSTI security requirement from the
// provisions of its deemed-compliance route.
type PSTIRollup struct {
	Requirement int
	Name        string
	LegalRef    string
	Verdict     string
	// Basis is "evidence", "declaration", "evidence+declaration",
	// "conditions" or "none": what decided the provisions behind it.
	Basis string
	// Reason explains the verdict in plain words.
	Reason     string
	Provisions []string
	// Unverified names catalogue fields not confirmed against the law.
	Unverified []string
}

// Assessment is the outcome: a verdict per provision of the edition and
// the roll-ups.
type Assessment struct {
	Edition    standard.Edition
	AssessedAt time.Time
	// Verdicts in catalogue order, one per provision active in the edition.
	Verdicts []finding.Verdict
	// Guidelines in CoP order; provisions without a guideline (the
	// reporting provision) count in no guideline.
	Guidelines []GuidelineRollup
	// PSTI holds the three PSTI requirements, in order.
	PSTI []PSTIRollup
	// Counts per verdict state over all provisions.
	Counts       map[string]int
	Targets      Targets
	ChecksRun    []string
	Declarations *declare.Declarations
}

// Verdict returns the verdict of provision id (edition or catalogue id).
func (a *Assessment) Verdict(id string) (finding.Verdict, bool) {
	for _, v := range a.Verdicts {
		if v.Provision == id {
			return v, true
		}
	}
	return finding.Verdict{}, false
}

// Conformant reports whether nothing failed and nothing was left
// undecided: every provision PASS or NOT APPLICABLE.
func (a *Assessment) Conformant() bool {
	return a.Counts[finding.VerdictFail] == 0 && a.Counts[finding.VerdictInconclusive] == 0 &&
		a.Counts[finding.VerdictNotAssessed] == 0
}

// Assess gives every provision of the edition a verdict.
func Assess(cat *standard.Catalogue, in Input) (*Assessment, error) {
	if in.Now.IsZero() {
		in.Now = time.Now()
	}
	if in.Declarations != nil {
		switch {
		case in.Edition == "":
			in.Edition = in.Declarations.Edition
		case in.Edition != in.Declarations.Edition:
			return nil, fmt.Errorf("assess: the declarations are for EN 303 645 %s, the assessment for %s", in.Declarations.Edition, in.Edition)
		}
	}
	if in.Edition == "" {
		in.Edition = standard.DefaultEdition
	}
	if _, ok := cat.Edition(in.Edition); !ok {
		return nil, fmt.Errorf("assess: edition %q is not in the catalogue", in.Edition)
	}
	a := &Assessment{Edition: in.Edition, AssessedAt: in.Now.UTC(), Counts: map[string]int{},
		Targets: in.Targets, ChecksRun: slices.Clone(in.ChecksRun), Declarations: in.Declarations}
	slices.Sort(a.ChecksRun)
	a.ChecksRun = slices.Compact(a.ChecksRun)
	ctx := &judge{cat: cat, in: &in}
	reportingAt := -1
	for i, p := range cat.InEdition(in.Edition) {
		if p.ID == "5.0-1" {
			reportingAt = i
		}
		a.Verdicts = append(a.Verdicts, ctx.verdict(p))
	}
	// The reporting provision judges the other verdicts, so it comes last.
	if reportingAt >= 0 {
		a.Verdicts[reportingAt] = ctx.reporting(a.Verdicts[reportingAt], a.Verdicts)
	}
	for _, v := range a.Verdicts {
		a.Counts[v.Verdict]++
	}
	a.rollup(cat)
	return a, nil
}

type judge struct {
	cat *standard.Catalogue
	in  *Input
}

func (j *judge) ran(check string) bool { return slices.Contains(j.in.ChecksRun, check) }

// evidence is what the findings and check runs say about one provision.
type evidence struct {
	fails, indicators []finding.Finding
	checks            []string // checks that ran and bear on it
	covered           bool     // some source completely covered it
	decisive          bool     // coverage alone decides a PASS
	gaps              []string // why coverage is incomplete
	said              []string // sources that covered it
}

func (j *judge) gather(p standard.Provision, r *Rule) evidence {
	var ev evidence
	if r == nil {
		for _, f := range j.in.Findings {
			generic(&ev, f, cited(p))
		}
		return ev
	}
	known := map[string]bool{}
	for _, c := range r.Ignores {
		known[c] = true
	}
	for _, m := range append(slices.Clone(r.Fails), r.Indicators...) {
		known[m.Check] = true
	}
	for _, f := range j.in.Findings {
		switch {
		case slices.ContainsFunc(r.Fails, func(m Match) bool { return m.matches(f) }):
			ev.fails = append(ev.fails, f)
		case slices.ContainsFunc(r.Indicators, func(m Match) bool { return m.matches(f) }):
			ev.indicators = append(ev.indicators, f)
		case !known[f.Check]:
			// A check the rule does not know (a new one) slots in through
			// the provisions it cites, as under the generic rule.
			generic(&ev, f, cited(p))
		}
	}
	anyDecisive, allComplete := false, true
	for _, s := range r.Sources {
		for _, c := range s.Checks {
			if j.ran(c) && j.hasTargets(s.Kind) && !slices.Contains(ev.checks, c) {
				ev.checks = append(ev.checks, c)
			}
		}
		complete, gap := j.sourceComplete(s)
		if !complete {
			if gap != "" {
				ev.gaps = append(ev.gaps, gap)
			}
			if j.hasTargets(s.Kind) {
				allComplete = false
			}
			continue
		}
		ev.covered = true
		ev.said = append(ev.said, s.Says)
		if s.Decisive != nil && s.Decisive(j.in) {
			anyDecisive = true
		}
	}
	ev.decisive = anyDecisive && allComplete
	return ev
}

// cited returns the ids a finding may cite to bear on p: its own and the
// one it was split from in V3.1.3.
func cited(p standard.Provision) []string {
	ids := []string{p.ID}
	if p.DerivedFrom != "" {
		ids = append(ids, p.DerivedFrom)
	}
	return ids
}

// generic is the rule for findings no table rule knows: one citing the
// provision fails it when high or critical, else indicates; info never
// counts.
func generic(ev *evidence, f finding.Finding, ids []string) {
	if f.Severity < finding.Low || !slices.ContainsFunc(f.Provisions, func(c string) bool { return slices.Contains(ids, c) }) {
		return
	}
	if f.Severity >= finding.High {
		ev.fails = append(ev.fails, f)
	} else {
		ev.indicators = append(ev.indicators, f)
	}
}

func (j *judge) hasTargets(k standard.Kind) bool {
	switch k {
	case standard.Network:
		for _, d := range j.in.Targets.Devices {
			if len(d.Services) > 0 {
				return true
			}
		}
	case standard.Firmware:
		return len(j.in.Targets.Images) > 0
	}
	return false
}

func (j *judge) sourceComplete(s Source) (bool, string) {
	what := "device"
	if s.Kind == standard.Firmware {
		what = "firmware image"
	}
	if !j.hasTargets(s.Kind) {
		return false, ""
	}
	var missing []string
	for _, c := range s.Checks {
		if !j.ran(c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return false, fmt.Sprintf("%s did not run on the %s", strings.Join(missing, ", "), what)
	}
	if s.Complete != nil {
		return s.Complete(j.in)
	}
	return true, ""
}

// verdict decides one provision. The order of the steps is the policy:
// failing evidence first (it beats every declaration), then what the
// declarations say about applicability, then declared non-implementation,
// then clean evidence with or without a declaration.
func (j *judge) verdict(p standard.Provision) finding.Verdict {
	ed := j.in.Edition
	s := p.Editions[ed]
	v := finding.Verdict{Provision: p.IDIn(ed), Edition: string(ed), Status: s.Code, Title: p.Title,
		Guideline: p.Guideline, Basis: "none"}
	if p.PSTI != nil {
		v.PSTI = p.PSTI.Requirement
	}
	switch p.ID {
	case "5.0-1":
		return v // decided by reporting once the others are known
	case "5.3-13":
		return j.supportPeriod(v, p)
	}

	var rule *Rule
	if r, ok := RuleFor(p.ID); ok {
		rule = &r
		v.Rule = r.ID
	} else {
		v.Rule = RuleGeneric
	}
	ev := j.gather(p, rule)
	v.Checks = ev.checks
	for _, f := range ev.fails {
		v.Findings = append(v.Findings, finding.RefTo(f, finding.RoleFails))
	}
	for _, f := range ev.indicators {
		v.Findings = append(v.Findings, finding.RefTo(f, finding.RoleIndicates))
	}

	d := j.in.Declarations
	entry, declared := d.Entry(p.ID)
	app, appWhy, appLine := declare.Unknown, "", 0
	if d != nil {
		app, appWhy, appLine = d.Applicable(p)
	}
	if declared {
		v.Declaration = &finding.DeclarationRef{File: d.File, Line: entry.Line, Support: string(entry.Support),
			Justification: entry.Justification, Implementation: entry.Implementation, Evidence: entry.Evidence}
	}
	if s.Conditional() && d != nil {
		if v.Declaration == nil {
			v.Declaration = &finding.DeclarationRef{File: d.File, Line: appLine}
		}
		v.Declaration.Conditions = appWhy
	}
	// A rule may accept declarations beyond the entry (5.2-1: the URL).
	var extraImpl string
	if rule != nil && rule.Declared != nil {
		if impl, line, ok := rule.Declared(j.in); ok {
			extraImpl = impl
			if !declared {
				declared, entry = true, declare.Entry{Provision: p.ID, Support: declare.Supported, Implementation: impl, Line: line}
				v.Declaration = &finding.DeclarationRef{File: d.File, Line: line, Support: "Y", Implementation: impl}
			}
		}
	}

	// 1. Failing evidence beats everything.
	if len(ev.fails) > 0 {
		v.Verdict, v.Basis = finding.VerdictFail, "evidence"
		v.Reason = findingsReason("fails it", "fail it", ev.fails)
		switch {
		case declared && entry.Support == declare.Supported:
			v.Basis = "evidence+declaration"
			v.Contradiction = fmt.Sprintf("declared supported (%s) but %s", at(d, entry.Line), firstTitle(ev.fails))
		case declared && entry.Support == declare.NotApplicable:
			v.Basis = "evidence+declaration"
			v.Contradiction = fmt.Sprintf("declared not applicable (%s) but %s", at(d, entry.Line), firstTitle(ev.fails))
		case app == declare.DoesNotApply:
			v.Contradiction = fmt.Sprintf("the declared conditions make it not apply (%s) but %s", appWhy, firstTitle(ev.fails))
		}
		return v
	}

	// 2. Declared not applicable.
	var notes []string
	if declared && entry.Support == declare.NotApplicable {
		switch {
		case s.Level == standard.Mandatory && !s.Conditional():
			notes = append(notes, fmt.Sprintf("the declared N/A (%s) is ignored: the provision is mandatory without conditions", at(d, entry.Line)))
			declared = false
		case entry.Justification == "":
			notes = append(notes, fmt.Sprintf("the declared N/A (%s) is ignored: it has no justification", at(d, entry.Line)))
			declared = false
		case app == declare.Applies:
			v.Verdict, v.Basis, v.Rule = finding.VerdictInconclusive, "declaration", RuleDeclaration
			v.Reason = "declared not applicable, but the declared conditions make it apply"
			v.Contradiction = fmt.Sprintf("declared N/A (%s) but %s", at(d, entry.Line), appWhy)
			return v
		default:
			v.Verdict, v.Basis, v.Rule = finding.VerdictNotApplicable, "declaration", RuleDeclaration
			v.Reason = "declared not applicable: " + entry.Justification
			return withIndicators(v, ev)
		}
	}

	// 3. Not applicable by the declared conditions.
	if app == declare.DoesNotApply {
		v.Verdict, v.Basis, v.Rule = finding.VerdictNotApplicable, "conditions", RuleConditions
		v.Reason = "not applicable: " + appWhy
		return withIndicators(v, ev)
	}

	// 4. Declared not implemented.
	if declared && entry.Support == declare.NotSupported {
		v.Rule, v.Basis = RuleNotImplemented, "declaration"
		switch {
		case s.Level == standard.Mandatory:
			v.Verdict = finding.VerdictFail
			v.Reason = "the manufacturer declares this mandatory provision not implemented"
			if entry.Justification != "" {
				v.Reason += ": " + entry.Justification
			}
		case entry.Justification == "":
			v.Verdict = finding.VerdictFail
			v.Reason = fmt.Sprintf("recommendation declared not implemented without the justification %s requires", reportingID(ed))
		default:
			v.Verdict = finding.VerdictNotApplicable
			v.Reason = fmt.Sprintf("recommendation not implemented; the justification %s asks for is recorded: %s", reportingID(ed), entry.Justification)
		}
		return v
	}

	supported := declared && entry.Support == declare.Supported
	described := supported && (entry.Implementation != "" || len(entry.Evidence) > 0 || extraImpl != "")
	gaps := ""
	if len(ev.gaps) > 0 {
		gaps = " (not covered: " + strings.Join(ev.gaps, "; ") + ")"
	}
	noteText := ""
	if len(notes) > 0 {
		noteText = "; " + strings.Join(notes, "; ")
	}

	// 5. Indicators leave it open whatever else is known.
	if len(ev.indicators) > 0 {
		v.Verdict, v.Basis = finding.VerdictInconclusive, "evidence"
		if supported {
			v.Basis = "evidence+declaration"
			v.Contradiction = fmt.Sprintf("declared supported (%s) but %s", at(d, entry.Line), firstTitle(ev.indicators))
		}
		v.Reason = findingsReason("counts against it", "count against it", ev.indicators) + "; they cannot decide alone: review them" + noteText
		return v
	}

	// 6. Clean, complete, decisive evidence.
	if ev.decisive {
		v.Verdict, v.Basis = finding.VerdictPass, "evidence"
		if supported {
			v.Basis = "evidence+declaration"
		}
		v.Reason = "no finding from " + strings.Join(ev.said, " and ") + noteText
		return v
	}

	// 7. Clean evidence that needs the declaration to complete it.
	if ev.covered {
		if supported {
			v.Verdict, v.Basis = finding.VerdictPass, "evidence+declaration"
			v.Reason = "declared supported and no finding from " + strings.Join(ev.said, " and ") + implText(entry, extraImpl) + gaps + noteText
			return v
		}
		v.Verdict, v.Basis = finding.VerdictInconclusive, "evidence"
		v.Reason = "no finding from " + strings.Join(ev.said, " and ") + ", but these checks cannot decide alone: declare how it is met" + gaps + noteText
		return v
	}

	// 8. Declarations alone.
	switch {
	case described:
		v.Verdict, v.Basis, v.Rule = finding.VerdictPass, "declaration", ruleOr(v.Rule, rule)
		v.Reason = "declared supported" + implText(entry, extraImpl) + "; not verified by a check" + gaps + noteText
	case supported:
		v.Verdict, v.Basis, v.Rule = finding.VerdictInconclusive, "declaration", ruleOr(v.Rule, rule)
		v.Reason = "declared supported without saying how (give implementation or evidence)" + gaps + noteText
	case rule != nil && len(ev.checks) > 0:
		v.Verdict, v.Basis = finding.VerdictInconclusive, "evidence"
		v.Reason = "the checks ran but could not cover it" + gaps + "; no declaration" + noteText
	default:
		v.Verdict = finding.VerdictNotAssessed
		v.Rule = ruleOr(v.Rule, rule)
		v.Reason = "no declaration"
		if d == nil {
			v.Reason = "no declarations file"
		}
		if rule != nil {
			v.Reason += " and no evidence" + gaps
		}
		v.Reason += noteText
	}
	return v
}

// ruleOr keeps the table rule's id when there is one, else names the
// declaration rule.
func ruleOr(current string, r *Rule) string {
	if r != nil {
		return current
	}
	return RuleDeclaration
}

func withIndicators(v finding.Verdict, ev evidence) finding.Verdict {
	if len(ev.indicators) > 0 {
		v.Reason += "; note: " + findingsReason("was seen", "were seen", ev.indicators)
	}
	return v
}

func implText(e declare.Entry, extra string) string {
	switch {
	case e.Implementation != "":
		return ": " + e.Implementation
	case extra != "":
		return ": " + extra
	case len(e.Evidence) > 0:
		return "; evidence: " + strings.Join(e.Evidence, ", ")
	}
	return ""
}

func at(d *declare.Declarations, line int) string {
	if d == nil {
		return "declaration"
	}
	return fmt.Sprintf("%s:%d", d.File, line)
}

func firstTitle(fs []finding.Finding) string {
	f := fs[0]
	where := f.Path
	if f.Host != "" {
		where = fmt.Sprintf("%s:%d", f.Host, f.Port)
	}
	s := fmt.Sprintf("%s found %q at %s", f.Check, f.Title, where)
	if len(fs) > 1 {
		s += fmt.Sprintf(" (and %d more)", len(fs)-1)
	}
	return s
}

// findingsReason says "1 finding fails it: …" or "2 findings fail it: …";
// verb is given in its singular and plural forms.
func findingsReason(one, many string, fs []finding.Finding) string {
	n := "1 finding " + one
	if len(fs) > 1 {
		n = fmt.Sprintf("%d findings %s", len(fs), many)
	}
	return n + ": " + joinMax(titles(fs), 3)
}

func titles(fs []finding.Finding) []string {
	var out []string
	for _, f := range fs {
		if !slices.Contains(out, f.Title) {
			out = append(out, f.Title)
		}
	}
	return out
}

func joinMax(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, "; ")
	}
	return strings.Join(items[:n], "; ") + fmt.Sprintf("; and %d more", len(items)-n)
}

func reportingID(ed standard.Edition) string {
	if ed == standard.V2_1_1 {
		return "4-1"
	}
	return "5.0-1"
}

// reporting decides 5.0-1 (V2.1.1: 4-1): every recommendation declared
// not implemented or not applicable, or that the evidence fails, carries a
// justification; recommendations neither decided nor declared leave it open.
func (j *judge) reporting(v finding.Verdict, all []finding.Verdict) finding.Verdict {
	v.Rule = RuleReporting
	d := j.in.Declarations
	if d == nil {
		v.Verdict, v.Reason = finding.VerdictNotAssessed, "no declarations file"
		return v
	}
	v.Basis = "declaration"
	if e, ok := d.Entry("5.0-1"); ok {
		v.Declaration = &finding.DeclarationRef{File: d.File, Line: e.Line, Support: string(e.Support),
			Justification: e.Justification, Implementation: e.Implementation, Evidence: e.Evidence}
	}
	byID := map[string]finding.Verdict{}
	for _, o := range all {
		byID[o.Provision] = o
	}
	var missing, open []string
	for _, p := range j.cat.InEdition(j.in.Edition) {
		s := p.Editions[j.in.Edition]
		if s.Level != standard.Recommended {
			continue
		}
		id := p.IDIn(j.in.Edition)
		other := byID[id]
		e, declared := d.Entry(p.ID)
		switch {
		case declared && e.Support != declare.Supported && e.Justification == "":
			missing = append(missing, fmt.Sprintf("%s (declared %s, line %d)", id, e.Support, e.Line))
		case other.Verdict == finding.VerdictFail && e.Justification == "":
			missing = append(missing, id+" (failed by evidence)")
		case !declared && (other.Verdict == finding.VerdictNotAssessed || other.Verdict == finding.VerdictInconclusive):
			open = append(open, id)
		}
	}
	switch {
	case len(missing) > 0:
		v.Verdict = finding.VerdictFail
		v.Reason = "recommendations not met or not applicable without a recorded justification: " + joinMax(missing, 6)
	case len(open) > 0:
		v.Verdict = finding.VerdictInconclusive
		v.Reason = fmt.Sprintf("%d recommendations are neither decided nor declared: %s", len(open), joinMax(open, 6))
	default:
		v.Verdict = finding.VerdictPass
		v.Reason = "every recommendation not implemented, not applicable or failed carries a justification"
	}
	return v
}

// supportPeriod decides 5.3-13 (PSTI requirement 3) from the declared
// support period: an end date that has not passed, and where it is published.
func (j *judge) supportPeriod(v finding.Verdict, p standard.Provision) finding.Verdict {
	v.Rule = RuleSupportPeriod
	d := j.in.Declarations
	if d == nil {
		v.Verdict, v.Reason = finding.VerdictNotAssessed, "no declarations file: the defined support period is unknown"
		return v
	}
	v.Basis = "declaration"
	sp := d.SupportPeriod
	entry, declared := d.Entry(p.ID)
	v.Declaration = &finding.DeclarationRef{File: d.File, Line: sp.Line}
	if declared {
		v.Declaration.Support, v.Declaration.Justification = string(entry.Support), entry.Justification
		v.Declaration.Implementation, v.Declaration.Evidence = entry.Implementation, entry.Evidence
	}
	today := time.Date(j.in.Now.Year(), j.in.Now.Month(), j.in.Now.Day(), 0, 0, 0, 0, time.UTC)
	switch {
	case declared && entry.Support == declare.NotSupported:
		v.Verdict = finding.VerdictFail
		v.Reason = "the manufacturer declares no defined support period is published"
	case sp.End.IsZero():
		v.Verdict = finding.VerdictNotAssessed
		v.Reason = "no support period end date declared (support_period.end)"
	case sp.End.Before(today):
		v.Verdict = finding.VerdictFail
		v.Reason = "the declared support period ended on " + sp.End.Format("2006-01-02") + ": no security updates are promised any more"
	case sp.PublishedAt == "" && !(declared && entry.Support == declare.Supported):
		v.Verdict = finding.VerdictInconclusive
		v.Reason = "support period declared until " + sp.End.Format("2006-01-02") + ", but not where it is published (support_period.published_at)"
	default:
		v.Verdict = finding.VerdictPass
		v.Reason = "security updates declared until " + sp.End.Format("2006-01-02")
		if sp.PublishedAt != "" {
			v.Reason += ", published at " + sp.PublishedAt
		}
		v.Reason += "; not verified by a check"
	}
	return v
}
