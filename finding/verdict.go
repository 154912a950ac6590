package finding

import "fmt"

// Verdict states of a provision (report contract, "verdicts[].verdict").
const (
	// VerdictPass: the evidence, or a declaration it does not contradict,
	// shows the provision is met.
	VerdictPass = "PASS"
	// VerdictFail: evidence shows it is not met, or the manufacturer
	// declares it not implemented.
	VerdictFail = "FAIL"
	// VerdictInconclusive: the evidence could not decide.
	VerdictInconclusive = "INCONCLUSIVE"
	// VerdictNotApplicable: a declared condition does not hold, or a
	// justified N/A or not-implemented recommendation.
	VerdictNotApplicable = "NOT APPLICABLE"
	// VerdictNotAssessed: no evidence and no declaration.
	VerdictNotAssessed = "NOT ASSESSED"
)

// Verdicts lists the states from worst to best, the order roll-ups use.
func Verdicts() []string {
	return []string{VerdictFail, VerdictInconclusive, VerdictNotAssessed, VerdictPass, VerdictNotApplicable}
}

// Verdict is the assessment of one EN 303 645 provision: the verdict, what
// decided it (findings, declaration entry, rule) and any contradiction
// between the evidence and the declaration.
type Verdict struct {
	// Provision is the id in the assessed edition ("4-1" in V2.1.1).
	Provision string `json:"provision"`
	Edition   string `json:"edition"`
	// Status is the Annex B notation in that edition ("M C(1)").
	Status string `json:"status"`
	// Title is a paraphrase, not the standard's text.
	Title string `json:"title"`
	// Guideline is the UK Code of Practice guideline (0: none).
	Guideline int `json:"guideline,omitempty"`
	// PSTI is the UK PSTI requirement the provision is a route to (0: none).
	PSTI    int    `json:"psti,omitempty"`
	Verdict string `json:"verdict"`
	// Basis says what decided: "evidence", "declaration",
	// "evidence+declaration", "conditions" or "none".
	Basis string `json:"basis"`
	// Rule names the rule applied; Reason explains the verdict.
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
	// Checks lists the checks whose runs bear on the provision.
	Checks []string `json:"checks,omitempty"`
	// Findings are the findings that failed it or left it inconclusive.
	Findings []FindingRef `json:"findings,omitempty"`
	// Declaration is the maker's entry, when there is one.
	Declaration *DeclarationRef `json:"declaration,omitempty"`
	// Contradiction names a declaration the evidence contradicts.
	Contradiction string `json:"contradiction,omitempty"`
}

// Roles of a finding in a verdict.
const (
	// RoleFails: the finding fails the provision.
	RoleFails = "fails"
	// RoleIndicates: the finding is a sign against it that cannot decide alone.
	RoleIndicates = "indicates"
)

// FindingRef points at a finding of the same report.
type FindingRef struct {
	Check     string   `json:"check"`
	Severity  Severity `json:"severity"`
	Title     string   `json:"title"`
	Host      string   `json:"host,omitempty"`
	Port      int      `json:"port,omitempty"`
	Transport string   `json:"transport,omitempty"`
	Path      string   `json:"path,omitempty"`
	// Role is RoleFails or RoleIndicates.
	Role string `json:"role"`
}

// RefTo returns a reference to f in the given role.
func RefTo(f Finding, role string) FindingRef {
	return FindingRef{Check: f.Check, Severity: f.Severity, Title: f.Title, Host: f.Host, Port: f.Port,
		Transport: f.Transport, Path: f.Path, Role: role}
}

// Key equals the Key of the finding referred to.
func (r FindingRef) Key() string {
	return fmt.Sprintf("%s|%s|%d|%s|%s|%s", r.Check, r.Host, r.Port, r.Transport, r.Path, r.Title)
}

// DeclarationRef is the manufacturer's declaration entry for a provision.
type DeclarationRef struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	// Support is "Y", "N", "N/A", or empty when only conditions decided.
	Support        string   `json:"support,omitempty"`
	Justification  string   `json:"justification,omitempty"`
	Implementation string   `json:"implementation,omitempty"`
	Evidence       []string `json:"evidence,omitempty"`
	// Conditions says how the declared conditions bear on applicability.
	Conditions string `json:"conditions,omitempty"`
}
