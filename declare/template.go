package declare

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/iotcop/iotcop/standard"
)

// Template returns a commented declarations file for edition ed listing
// every provision of that edition with its status, conditions, UK CoP
// guideline, PSTI requirement and what evidence iotcop can bring, each
// with an empty answer to fill in.
func Template(ed standard.Edition) ([]byte, error) {
	cat, err := standard.Load()
	if err != nil {
		return nil, err
	}
	return TemplateFrom(cat, ed)
}

// TemplateFrom is Template with a given catalogue.
func TemplateFrom(cat *standard.Catalogue, ed standard.Edition) ([]byte, error) {
	info, ok := cat.Edition(ed)
	if !ok {
		return nil, fmt.Errorf("declarations template: edition %q is not in the catalogue", ed)
	}
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# iotcop declarations: the manufacturer's answers for ETSI EN 303 645 %s (%s),", ed, info.Date)
	w("# in the spirit of the ETSI TS 103 701 Implementation Conformance Statement (ICS) and IXIT.")
	w("# Fill in every field, then run `iotcop declare check FILE`: it names each problem with its line.")
	w("# `iotcop assess --declarations FILE` combines these answers with what it measures;")
	w("# measured evidence always wins over a declaration.")
	w("# Provision titles below are paraphrases, not the text of the standard.")
	w("schema: %s", SchemaV1)
	w("edition: %s", ed)
	w("")
	w("product:")
	w("  manufacturer: \"\"      # legal name of the manufacturer (required)")
	w("  address: \"\"           # manufacturer's postal address (for the PSTI statement of compliance)")
	w("  model: \"\"             # model designation as on the label (required)")
	w("  hardware_version: \"\"  # (required)")
	w("  firmware_version: \"\"  # the firmware version assessed (required)")
	w("  product_type: \"\"      # e.g. \"smart camera\" (PSTI statement)")
	w("  batch: \"\"             # batch or serial range, if any (PSTI statement)")
	w("")
	w("# PSTI requirement 3 / EN 303 645 5.3-13: the defined support period.")
	w("support_period:")
	w("  end: \"\"               # last day security updates are provided, YYYY-MM-DD (required)")
	w("  published_at: \"\"      # URL where the support period is published")
	w("")
	w("# PSTI requirement 2 / EN 303 645 5.2-1: how to report security issues.")
	w("vulnerability_disclosure:")
	w("  url: \"\"               # where the disclosure policy is published, e.g. https://example.com/.well-known/security.txt (required)")
	w("")
	w("# Answer yes or no; they decide which conditional provisions apply (Annex B of EN 303 645 %s).", ed)
	w("conditions:")
	for _, q := range QuestionsFor(ed) {
		var terms []string
		for _, t := range q.TermsIn(ed) {
			txt := ""
			if t.Feature {
				txt, _ = cat.Feature(t.ID)
			} else {
				txt, _ = cat.Condition(ed, t.ID)
			}
			s := t.String() + " " + txt
			if t.Negated {
				s += " (when no)"
			}
			terms = append(terms, s)
		}
		w("  # %s", q.Text)
		w("  #   settles %s", strings.Join(terms, "; "))
		w("  %s:", q.Key)
	}
	w("")
	w("# One entry per provision. support: Y (implemented), N (not implemented) or N/A (a condition")
	w("# does not hold). N/A needs a justification and is not permitted for unconditional mandatory")
	w("# provisions; a recommendation not implemented needs a justification too (%s).", reporting(ed))
	w("# implementation: how it is met (the IXIT); evidence: documents, URLs or test reports.")
	w("# Leave support empty for what you have not decided yet: it is reported as NOT ASSESSED.")
	w("provisions:")
	for _, p := range cat.InEdition(ed) {
		s := p.Editions[ed]
		id := p.IDIn(ed)
		w("")
		w("  # %s  %s  %s", id, s.Code, p.Title)
		var meta []string
		if p.Guideline != 0 {
			g, _ := cat.Guideline(p.Guideline)
			meta = append(meta, "UK CoP "+strconv.Itoa(g.Number)+" ("+g.Name+")")
		}
		if p.PSTI != nil {
			meta = append(meta, "PSTI requirement "+strconv.Itoa(p.PSTI.Requirement))
		}
		var kinds []string
		for _, k := range p.Assess.Kinds {
			kinds = append(kinds, string(k))
		}
		meta = append(meta, "evidence: "+strings.Join(kinds, ", ")+" (iotcop: "+string(p.Assess.Automation)+")")
		w("  #   %s", strings.Join(meta, "; "))
		if s.Conditional() {
			var conds []string
			for _, n := range s.Conditions {
				txt, _ := cat.Condition(ed, n)
				conds = append(conds, "C("+n+") "+txt)
			}
			for _, x := range s.Features {
				txt, _ := cat.Feature(x)
				conds = append(conds, "F("+x+") "+txt)
			}
			w("  #   applies when: %s", strings.Join(conds, "; "))
		}
		w("  %s:", yamlKey(id))
		w("    support:")
		w("    justification: \"\"")
		w("    implementation: \"\"")
		w("    evidence: []")
	}
	return b.Bytes(), nil
}

// yamlKey quotes ids YAML would read as something other than text.
func yamlKey(id string) string {
	if _, err := strconv.ParseFloat(id, 64); err == nil {
		return strconv.Quote(id)
	}
	return id
}
