package assess

import (
	"fmt"
	"slices"
	"strings"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/standard"
)

// worst returns the roll-up of verdicts: FAIL if any failed, then
// INCONCLUSIVE, then NOT ASSESSED, then PASS; NOT APPLICABLE only when
// every one is (or there are none).
func worst(vs []string) string {
	for _, s := range finding.Verdicts() {
		if slices.Contains(vs, s) {
			return s
		}
	}
	return finding.VerdictNotApplicable
}

func (a *Assessment) rollup(cat *standard.Catalogue) {
	for _, g := range cat.Guidelines {
		r := GuidelineRollup{Number: g.Number, Name: g.Name, Counts: map[string]int{}}
		var states []string
		for _, v := range a.Verdicts {
			if v.Guideline != g.Number {
				continue
			}
			r.Provisions = append(r.Provisions, v.Provision)
			r.Counts[v.Verdict]++
			states = append(states, v.Verdict)
		}
		r.Verdict = worst(states)
		a.Guidelines = append(a.Guidelines, r)
	}
	for _, req := range cat.PSTI {
		r := PSTIRollup{Requirement: req.Number, Name: req.Name, LegalRef: req.LegalRef, Unverified: req.UnverifiedFields}
		var states, parts []string
		bases := map[string]bool{}
		for _, id := range req.Provisions {
			p, ok := cat.Provision(id)
			if !ok {
				continue
			}
			v, ok := a.Verdict(p.IDIn(a.Edition))
			if !ok {
				continue
			}
			r.Provisions = append(r.Provisions, v.Provision)
			states = append(states, v.Verdict)
			parts = append(parts, fmt.Sprintf("%s %s", v.Provision, v.Verdict))
			if v.Verdict != finding.VerdictNotApplicable || len(req.Provisions) == 1 {
				bases[v.Basis] = true
			}
		}
		r.Verdict = worst(states)
		r.Basis = combineBases(bases)
		r.Reason = pstiReason(req.Number, r.Verdict, a) + " (" + strings.Join(parts, ", ") + ")"
		if r.Verdict == finding.VerdictPass && r.Basis == "declaration" {
			r.Reason += "; as the manufacturer declares it, not verified by a check"
		}
		if a.Edition != standard.V2_1_1 {
			r.Reason += "; PSTI deemed compliance is defined against EN 303 645 V2.1.1"
		}
		a.PSTI = append(a.PSTI, r)
	}
}

// pstiReason says in plain words what a PSTI verdict means.
func pstiReason(n int, verdict string, a *Assessment) string {
	what := map[int]string{
		1: "no universal default passwords",
		2: "a published way to report security issues",
		3: "a published minimum period of security updates",
	}[n]
	switch verdict {
	case finding.VerdictPass:
		return "met: " + what
	case finding.VerdictFail:
		return "not met: " + what + " is missing or contradicted"
	case finding.VerdictNotApplicable:
		return "does not apply to this product"
	case finding.VerdictInconclusive:
		return "undecided: " + what + " could not be confirmed"
	}
	if a.Declarations == nil {
		return "not assessed: needs the manufacturer's declarations"
	}
	return "not assessed: " + what + " was neither declared nor checked"
}

// combineBases merges the bases of several verdicts into one.
func combineBases(bases map[string]bool) string {
	ev := bases["evidence"] || bases["evidence+declaration"]
	decl := bases["declaration"] || bases["evidence+declaration"]
	switch {
	case ev && decl:
		return "evidence+declaration"
	case ev:
		return "evidence"
	case decl:
		return "declaration"
	case bases["conditions"]:
		return "conditions"
	}
	return "none"
}
