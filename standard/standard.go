// Package standard holds the catalogue of consumer-IoT security provisions
// iotcop assesses against: ETSI EN 303 645 (editions V2.1.1 and V3.1.3),
// the UK Code of Practice guideline each provision serves, the UK PSTI
// security requirements they are the deemed-compliance route for, and the
// ETSI TS 103 701 test groups that assess them.
//
// The catalogue is data/provisions.yaml, embedded; data/SOURCES.md says
// where each part came from. Titles are paraphrases, not the standards'
// text, and the parts the catalogue marks unverified stay marked here.
package standard

import (
	_ "embed"
	"fmt"
	"slices"
	"strings"
)

//go:embed data/provisions.yaml
var provisionsYAML []byte

// Edition names an edition of EN 303 645.
type Edition string

// The editions the catalogue covers.
const (
	// V2_1_1 (2020-06) is the edition UK PSTI deemed compliance cites.
	V2_1_1 Edition = "V2.1.1"
	// V3_1_3 (2024-09) is the latest edition in the catalogue.
	V3_1_3 Edition = "V3.1.3"
)

// DefaultEdition is the edition used when none is chosen: the one UK PSTI
// cites for deemed compliance.
const DefaultEdition = V2_1_1

// ParseEdition accepts "V2.1.1", "2.1.1", "v3.1.3" and the like.
func ParseEdition(s string) (Edition, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimPrefix(strings.TrimPrefix(t, "v"), "V")
	for _, e := range []Edition{V2_1_1, V3_1_3} {
		if t == string(e)[1:] {
			return e, nil
		}
	}
	return "", fmt.Errorf("unknown EN 303 645 edition %q (want %s or %s)", s, V2_1_1, V3_1_3)
}

// Level is the strength of a provision: mandatory or recommended.
type Level string

// Levels.
const (
	Mandatory   Level = "M"
	Recommended Level = "R"
)

// Kind is a kind of evidence that can establish a provision.
type Kind string

// Evidence kinds, as the catalogue's assess.kinds names them.
const (
	// Network is black-box probing of a live device.
	Network Kind = "network"
	// Firmware is static analysis of an extracted firmware image.
	Firmware Kind = "firmware"
	// Declaration is the manufacturer's statements and documentation.
	Declaration Kind = "declaration"
)

// Automation says how far a tool can decide a provision.
type Automation string

// Automation levels, as the catalogue's assess.automation names them.
const (
	// Full: a tool can decide PASS or FAIL alone.
	Full Automation = "full"
	// Partial: a tool gives evidence; a person or a declaration completes it.
	Partial Automation = "partial"
	// None: only a declaration or a manual review can establish it.
	None Automation = "none"
)

// Status is how one edition treats a provision (Annex B, Table B.1).
type Status struct {
	// ID is the provision's number in this edition ("4-1" for 5.0-1 in V2.1.1).
	ID string
	// Code is the Annex B notation: "M", "R C(12)", "M C(14) F(e)", or "void".
	Code string
	// Level is M or R; empty when void.
	Level Level
	// Conditions are the condition numbers the provision depends on (all
	// must hold for it to apply); see Catalogue.Condition.
	Conditions []string
	// Features are the V3.1.3 feature letters the provision depends on
	// (all must be present for it to apply); see Catalogue.Feature.
	Features []string
	// ReplacedBy lists the provisions that replace a void one.
	ReplacedBy []string
}

// Void reports whether the edition voided the provision.
func (s Status) Void() bool { return s.Code == "void" }

// Conditional reports whether the provision applies only under declared
// conditions or features (so "not applicable" is a permitted answer).
func (s Status) Conditional() bool { return len(s.Conditions)+len(s.Features) > 0 }

// PSTILink ties a provision to a UK PSTI requirement.
type PSTILink struct {
	Requirement      int
	Name             string
	DeemedCompliance string
	Unverified       bool
	Note             string
}

// Mappings are editorial subject matches to other frameworks; the
// catalogue marks them unverified.
type Mappings struct {
	EN18031    []string
	CRAAnnex   []string
	NISTIR8425 []string
	Basis      string
	Note       string
	Unverified bool
}

// TestCase is one TS 103 701 test case of a test group.
type TestCase struct {
	// Number within the group ("1", "2").
	Number string
	// Kind is "conceptual", "functional" or "conceptual/functional".
	Kind string
}

// TestGroup is the TS 103 701 V1.1.1 test group assessing a provision.
type TestGroup struct {
	// Group is the test group id ("5.1-1"); for provisions split in V3.1.3
	// it is the parent's group.
	Group string
	Cases []TestCase
	// IXIT lists the implementation extra information tables it uses.
	IXIT []string
	Note string
}

// Assessment says what evidence can establish a provision and how.
type Assessment struct {
	Kinds      []Kind
	Automation Automation
	How        string
}

// Provision is one EN 303 645 provision.
type Provision struct {
	// ID is the V3.1.3 number (the catalogue's key).
	ID      string
	Section string
	// Title is a paraphrase, not the standard's text.
	Title    string
	Editions map[Edition]Status
	// DerivedFrom names the V2.1.1 provision a V3.1.3 one was split from.
	DerivedFrom string
	// Change describes what V3.1.3 changed.
	Change string
	// Notes records transcription doubts.
	Notes string
	// Guideline is the UK Code of Practice guideline (1-13); 0 for none.
	Guideline int
	// PSTI is set when the provision is a deemed-compliance route for a
	// UK PSTI requirement.
	PSTI     *PSTILink
	Mappings *Mappings
	TS103701 *TestGroup
	Assess   Assessment
}

// In returns the provision's status in edition ed and whether it is part
// of that edition and not void.
func (p Provision) In(ed Edition) (Status, bool) {
	s, ok := p.Editions[ed]
	return s, ok && !s.Void()
}

// IDIn returns the provision's number in edition ed (the catalogue id when
// the edition does not list it).
func (p Provision) IDIn(ed Edition) string {
	if s, ok := p.Editions[ed]; ok && s.ID != "" {
		return s.ID
	}
	return p.ID
}

// HasKind reports whether evidence of kind k can contribute to the provision.
func (p Provision) HasKind(k Kind) bool { return slices.Contains(p.Assess.Kinds, k) }

// Unverified lists the parts of the provision's entry the catalogue flags
// as unverified ("mappings", "psti", "status").
func (p Provision) Unverified() []string {
	var out []string
	if p.Mappings != nil && p.Mappings.Unverified {
		out = append(out, "mappings")
	}
	if p.PSTI != nil && p.PSTI.Unverified {
		out = append(out, "psti")
	}
	if p.Notes != "" {
		out = append(out, "status")
	}
	return out
}

// EditionInfo describes one edition as the catalogue records it.
type EditionInfo struct {
	Edition Edition
	Date    string
	Status  string
	// Provisions is the count of active provisions the catalogue declares.
	Provisions int
	// Void is the count of voided provisions it declares.
	Void int
	// ReportingProvision is the id of the "record justifications" provision.
	ReportingProvision string
}

// Condition is one numbered condition (or lettered feature) of Annex B.
type Condition struct {
	// ID is the number ("1") or, for features, the letter ("a").
	ID   string
	Text string
}

// Guideline is one of the 13 UK Code of Practice guidelines.
type Guideline struct {
	Number int
	Name   string
}

// PSTIRequirement is one UK PSTI security requirement (SI 2023/1007 Sch 1).
type PSTIRequirement struct {
	Number           int
	Name             string
	LegalRef         string
	Summary          string
	DeemedCompliance []string
	// Provisions are the EN 303 645 provisions of the deemed-compliance route.
	Provisions []string
	Kinds      []Kind
	// UnverifiedFields names the fields the catalogue could not confirm
	// against the legislation.
	UnverifiedFields []string
}

// Statement is what a PSTI statement of compliance must contain.
type Statement struct {
	LegalRef       string
	MinimumContent []string
	Retention      string
	Unverified     bool
	Note           string
}

// Catalogue is the whole provision catalogue.
type Catalogue struct {
	SchemaVersion int
	Generated     string
	Description   string
	// Sources says where each part came from (the YAML's sources_summary).
	Sources    map[string]string
	Editions   []EditionInfo
	Guidelines []Guideline
	PSTI       []PSTIRequirement
	Statement  Statement
	// IXIT lists the TS 103 701 V1.1.1 IXIT tables.
	IXIT       []string
	Provisions []Provision

	conditions map[Edition][]Condition
	features   []Condition
	byID       map[string]int
	// aliases maps an edition-specific id ("4-1") to the catalogue id.
	aliases map[string]string
}

// Load parses the embedded catalogue. Each call returns a fresh value the
// caller may keep; parsing takes a few milliseconds.
func Load() (*Catalogue, error) { return Parse(provisionsYAML) }

// Raw returns the embedded catalogue file.
func Raw() []byte { return slices.Clone(provisionsYAML) }

// Provision returns the provision with catalogue id or edition-specific id
// ("4-1" finds 5.0-1).
func (c *Catalogue) Provision(id string) (Provision, bool) {
	id = strings.TrimSpace(id)
	if i, ok := c.byID[id]; ok {
		return c.Provisions[i], true
	}
	if real, ok := c.aliases[id]; ok {
		return c.Provisions[c.byID[real]], true
	}
	return Provision{}, false
}

// Edition returns what the catalogue records about edition ed.
func (c *Catalogue) Edition(ed Edition) (EditionInfo, bool) {
	for _, e := range c.Editions {
		if e.Edition == ed {
			return e, true
		}
	}
	return EditionInfo{}, false
}

// Conditions returns the numbered conditions edition ed uses.
func (c *Catalogue) Conditions(ed Edition) []Condition { return c.conditions[ed] }

// Features returns the V3.1.3 features (none for V2.1.1).
func (c *Catalogue) Features(ed Edition) []Condition {
	if ed == V3_1_3 {
		return c.features
	}
	return nil
}

// Condition returns the text of condition n in edition ed.
func (c *Catalogue) Condition(ed Edition, n string) (string, bool) {
	for _, k := range c.conditions[ed] {
		if k.ID == n {
			return k.Text, true
		}
	}
	return "", false
}

// Feature returns the text of V3.1.3 feature x.
func (c *Catalogue) Feature(x string) (string, bool) {
	for _, k := range c.features {
		if k.ID == x {
			return k.Text, true
		}
	}
	return "", false
}

// Guideline returns UK CoP guideline n.
func (c *Catalogue) Guideline(n int) (Guideline, bool) {
	for _, g := range c.Guidelines {
		if g.Number == n {
			return g, true
		}
	}
	return Guideline{}, false
}

// PSTIRequirement returns UK PSTI requirement n (1-3).
func (c *Catalogue) PSTIRequirement(n int) (PSTIRequirement, bool) {
	for _, r := range c.PSTI {
		if r.Number == n {
			return r, true
		}
	}
	return PSTIRequirement{}, false
}

// Filter selects provisions; zero fields match everything.
type Filter struct {
	// Edition keeps provisions active (present, not void) in that edition.
	Edition Edition
	// IncludeVoid also keeps provisions the edition voided.
	IncludeVoid bool
	// Guideline keeps those serving UK CoP guideline n.
	Guideline int
	// Level keeps mandatory or recommended ones (needs Edition, else the
	// level in any edition matches).
	Level Level
	// Conditional keeps conditional (true) or unconditional (false) ones.
	Conditional *bool
	// Kind keeps those that evidence of this kind can contribute to.
	Kind Kind
	// Automation keeps those a tool can decide to this degree.
	Automation Automation
	// PSTI keeps the deemed-compliance route of PSTI requirement n.
	PSTI int
}

// Filter returns the provisions matching f, in catalogue order.
func (c *Catalogue) Filter(f Filter) []Provision {
	var out []Provision
	for _, p := range c.Provisions {
		if f.matches(p) {
			out = append(out, p)
		}
	}
	return out
}

func (f Filter) matches(p Provision) bool {
	var statuses []Status
	if f.Edition != "" {
		s, ok := p.Editions[f.Edition]
		if !ok || (s.Void() && !f.IncludeVoid) {
			return false
		}
		statuses = []Status{s}
	} else {
		for _, e := range []Edition{V2_1_1, V3_1_3} {
			if s, ok := p.Editions[e]; ok {
				statuses = append(statuses, s)
			}
		}
	}
	if f.Guideline != 0 && p.Guideline != f.Guideline {
		return false
	}
	if f.Kind != "" && !p.HasKind(f.Kind) {
		return false
	}
	if f.Automation != "" && p.Assess.Automation != f.Automation {
		return false
	}
	if f.PSTI != 0 && (p.PSTI == nil || p.PSTI.Requirement != f.PSTI) {
		return false
	}
	if f.Level != "" && !slices.ContainsFunc(statuses, func(s Status) bool { return s.Level == f.Level }) {
		return false
	}
	if f.Conditional != nil && !slices.ContainsFunc(statuses, func(s Status) bool { return s.Conditional() == *f.Conditional }) {
		return false
	}
	return true
}

// InEdition returns the provisions active in edition ed, in catalogue order.
func (c *Catalogue) InEdition(ed Edition) []Provision { return c.Filter(Filter{Edition: ed}) }
