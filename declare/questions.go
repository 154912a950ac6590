package declare

import (
	"fmt"
	"strings"

	"github.com/iotcop/iotcop/standard"
)

// Term is one Annex B condition or feature a question settles.
type Term struct {
	// ID is the condition number ("1") or the feature letter ("a").
	ID string
	// Feature is true for a V3.1.3 feature F(x), false for a condition C(n).
	Feature bool
	// Negated means the condition holds when the answer is "no"
	// (condition 3 "software is not updatable" from software_updatable).
	Negated bool
}

// String renders the term as the catalogue writes it.
func (t Term) String() string {
	if t.Feature {
		return "F(" + t.ID + ")"
	}
	return "C(" + t.ID + ")"
}

// Question is one yes/no fact about the product, under `conditions:` in a
// declarations file, that settles Annex B conditions and features and so
// decides which conditional provisions apply.
type Question struct {
	// Key is the YAML key.
	Key string
	// Text asks the question.
	Text string
	// Terms per edition.
	V2 []Term
	V3 []Term
}

// TermsIn returns the terms q settles in edition ed.
func (q Question) TermsIn(ed standard.Edition) []Term {
	if ed == standard.V3_1_3 {
		return q.V3
	}
	return q.V2
}

func c(id string) Term    { return Term{ID: id} }
func notC(id string) Term { return Term{ID: id, Negated: true} }
func f(id string) Term    { return Term{ID: id, Feature: true} }
func notF(id string) Term { return Term{ID: id, Feature: true, Negated: true} }

// Questions returns every question a declarations file may answer, in
// template order. Each maps to the conditions of V2.1.1 and the conditions
// and features of V3.1.3 it settles.
func Questions() []Question {
	return []Question{
		{"passwords_used", "Are passwords used for user or machine-to-machine authentication?", []Term{c("1")}, []Term{f("a")}},
		{"preinstalled_passwords", "Are (unique per-device) passwords pre-installed?", []Term{c("2")}, []Term{f("b")}},
		{"cryptographic_authentication", "Is cryptographic (including password-based) authentication used for users or machines?", nil, []Term{f("c")}},
		{"user_authentication", "Can users authenticate against the device?", []Term{c("8")}, []Term{f("d")}},
		{"network_authentication", "Can authentication be done over a network interface?", nil, []Term{f("e")}},
		{"constrained_device", "Is the device constrained (EN 303 645 3.1: limited resources restrict security measures)?", []Term{c("4"), notC("5")}, nil},
		{"constraint_prevents_brute_force_protection", "Does a resource constraint of the use case prevent a brute-force protection mechanism?", nil, []Term{notC("14")}},
		{"constraint_prevents_update_mechanism", "Does a resource constraint of the use case prevent an update mechanism?", nil, []Term{notC("15")}},
		{"software_updatable", "Can the device's software components be updated?", []Term{notC("3")}, []Term{notC("3"), f("g")}},
		{"software_immutable_for_security", "Are software components deliberately immutable for security reasons?", nil, []Term{notF("f")}},
		{"update_mechanism", "Is an update mechanism implemented?", []Term{c("12")}, []Term{c("12")}},
		{"updates_over_network", "Are updates delivered over a network interface?", []Term{c("11")}, []Term{f("j")}},
		{"automatic_updates_or_notifications", "Are automatic updates and/or update notifications supported?", []Term{c("9")}, nil},
		{"automatic_updates", "Are automatic software updates supported?", nil, []Term{f("h")}},
		{"update_notifications", "Are update notifications provided?", nil, []Term{f("i")}},
		{"hard_coded_identity", "Is a hard-coded unique per-device identity used for security?", []Term{c("10")}, []Term{f("l")}},
		{"critical_security_parameters", "Do critical security parameters relating to the device exist?", nil, []Term{c("16")}},
		{"stores_security_parameters", "Are sensitive security parameters kept in persistent storage?", nil, []Term{f("k")}},
		{"csps_protect_updates_or_services", "Are critical security parameters used for update integrity/authenticity or to protect communication with associated services?", nil, []Term{f("m")}},
		{"network_configuration_changes", "Can security-relevant configuration be changed over a network interface?", nil, []Term{f("n")}},
		{"csps_leave_device", "Are the device's critical security parameters communicated outside the device?", nil, []Term{f("o")}},
		{"unused_network_interfaces", "Do unused network or network-reachable logical interfaces exist?", nil, []Term{f("p")}},
		{"debug_interfaces", "Do debug interfaces exist?", nil, []Term{f("q")}},
		{"physical_debug_interface", "Is a debug interface physically accessible (a debug port)?", []Term{c("13")}, []Term{f("r")}},
		{"secure_boot", "Is secure boot or another unauthorised-change detection supported?", nil, []Term{f("s")}},
		{"telemetry", "Is telemetry data collected?", []Term{c("6")}, []Term{f("w")}},
		{"consent_processing", "Is personal data processed on the basis of consent?", []Term{c("7")}, []Term{f("y")}},
		{"personal_data", "Does the device process personal data?", nil, []Term{f("z")}},
		{"personal_data_to_services", "Does the device send personal data to associated services?", nil, []Term{f("t")}},
		{"sensitive_personal_data_to_services", "Does the device send sensitive personal data to associated services?", nil, []Term{f("u")}},
		{"personal_data_stored_by_services", "Can personal data be stored by an associated service?", nil, []Term{f("x")}},
		{"external_sensors", "Does the device have external sensing capabilities (camera, microphone, ...)?", nil, []Term{f("v")}},
		{"aggregate_only_processing", "Is data collected or processed solely to compute an aggregate result?", nil, []Term{f("aa")}},
	}
}

// QuestionsFor returns the questions that settle a condition or feature
// of edition ed.
func QuestionsFor(ed standard.Edition) []Question {
	var out []Question
	for _, q := range Questions() {
		if len(q.TermsIn(ed)) > 0 {
			out = append(out, q)
		}
	}
	return out
}

func question(key string) (Question, bool) {
	for _, q := range Questions() {
		if q.Key == key {
			return q, true
		}
	}
	return Question{}, false
}

// Applicability is whether a conditional provision applies, as the
// declared conditions say.
type Applicability int

// Applicability states.
const (
	// Unknown: a condition the provision depends on was not answered.
	Unknown Applicability = iota
	// Applies: the provision is unconditional or all its conditions hold.
	Applies
	// DoesNotApply: at least one condition or feature was declared absent.
	DoesNotApply
)

// Applicable says whether provision p applies in the declarations'
// edition by the declared conditions, why, and the line of the answer
// that decided it (0 when none did).
func (d *Declarations) Applicable(p standard.Provision) (Applicability, string, int) {
	s, ok := p.In(d.Edition)
	if !ok {
		return DoesNotApply, fmt.Sprintf("%s is not part of EN 303 645 %s", p.ID, d.Edition), 0
	}
	if !s.Conditional() {
		return Applies, "unconditional", 0
	}
	var terms []Term
	for _, n := range s.Conditions {
		terms = append(terms, c(n))
	}
	for _, x := range s.Features {
		terms = append(terms, f(x))
	}
	var unknown []string
	var holds []string
	for _, t := range terms {
		q, val, said, line, answered := d.answer(t)
		desc := d.termText(t)
		switch {
		case !answered:
			unknown = append(unknown, fmt.Sprintf("%s %s", t, desc))
		case !val:
			return DoesNotApply, fmt.Sprintf("%s (%s) does not hold: %s declared %s", t, desc, q, yesNo(said)), line
		default:
			holds = append(holds, fmt.Sprintf("%s holds: %s declared %s (line %d)", t, q, yesNo(said), line))
		}
	}
	if len(unknown) > 0 {
		return Unknown, "not declared: " + strings.Join(unknown, "; "), 0
	}
	return Applies, strings.Join(holds, "; "), 0
}

// answer returns whether term t holds per the declared answers, the key
// of the question that settled it, the answer given and its line.
func (d *Declarations) answer(t Term) (key string, holds, said bool, line int, answered bool) {
	for _, q := range Questions() {
		for _, qt := range q.TermsIn(d.Edition) {
			if qt.ID != t.ID || qt.Feature != t.Feature {
				continue
			}
			a, ok := d.Answers[q.Key]
			if !ok {
				continue
			}
			return q.Key, a.Value != qt.Negated, a.Value, a.Line, true
		}
	}
	return "", false, false, 0, false
}

func (d *Declarations) termText(t Term) string {
	if d.cat == nil {
		return ""
	}
	var txt string
	if t.Feature {
		txt, _ = d.cat.Feature(t.ID)
	} else {
		txt, _ = d.cat.Condition(d.Edition, t.ID)
	}
	return txt
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
