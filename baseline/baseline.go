// Package baseline compares two iotcop JSON reports (the report contract,
// schema iotcop/report/v1): which findings are new, which were fixed, which
// are unchanged, and which provision verdicts changed. It backs `iotcop
// diff` and the --baseline CI gate, which fails only on new findings.
//
// Matching findings. A finding is first matched by finding.Finding.Key
// (check, host, port, transport, path and title). Titles sometimes carry
// counts that move between runs ("... (of 12 ELF files)"), so a finding left
// unmatched is then paired with an unmatched finding of the other report at
// the same place (check, host, port, transport, path) whose title is the
// same once every run of digits is ignored and which names the same
// advisory ids (CVE-…, GHSA-…); the pair must be the only candidate on
// each side. Such a pair counts as unchanged, with the old title kept in
// TitleWas. Anything else is new or fixed: a different host address is a
// different finding.
package baseline

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/iotcop/iotcop/finding"
)

// SchemaV1 identifies the diff document written by WriteJSON.
const SchemaV1 = "iotcop/diff/v1"

// maxReport caps how much of a report file is read (a report is a few MB
// at most; this keeps a wrong file from exhausting memory).
const maxReport = 256 << 20

// Load reads a JSON report written by iotcop --format json.
func Load(path string) (*finding.Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read report %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxReport+1))
	if err != nil {
		return nil, fmt.Errorf("read report %s: %w", path, err)
	}
	if len(data) > maxReport {
		return nil, fmt.Errorf("read report %s: larger than %d bytes", path, maxReport)
	}
	rep, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("read report %s: %w", path, err)
	}
	return rep, nil
}

// Parse decodes a JSON report and checks it is the report contract.
func Parse(data []byte) (*finding.Report, error) {
	var rep finding.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		return nil, fmt.Errorf("not a JSON report: %w", err)
	}
	if rep.Schema != finding.SchemaV1 {
		return nil, fmt.Errorf("schema %q is not %s (write reports with --format json)", rep.Schema, finding.SchemaV1)
	}
	return &rep, nil
}

// Unchanged is a finding present in both reports, as it is in the new one.
type Unchanged struct {
	finding.Finding
	// TitleWas is the old title when only numbers in it changed.
	TitleWas string `json:"title_was,omitempty"`
	// SeverityWas is the old severity when it changed.
	SeverityWas *finding.Severity `json:"severity_was,omitempty"`
}

// VerdictChange is a provision whose verdict differs between the reports.
type VerdictChange struct {
	Provision string `json:"provision"`
	Edition   string `json:"edition"`
	Title     string `json:"title"`
	// Old and New are the verdicts; empty when the provision is absent
	// from that report.
	Old string `json:"old"`
	New string `json:"new"`
}

// Summary counts a Diff.
type Summary struct {
	New            int `json:"new"`
	Fixed          int `json:"fixed"`
	Unchanged      int `json:"unchanged"`
	ChangedVerdict int `json:"changed_verdicts"`
}

// Side describes one of the compared reports.
type Side struct {
	File      string `json:"file,omitempty"`
	StartedAt string `json:"started_at"`
	Findings  int    `json:"findings"`
	Verdicts  int    `json:"verdicts"`
}

// Diff is the comparison of an old and a new report.
type Diff struct {
	Schema string `json:"schema"`
	Old    Side   `json:"old"`
	New    Side   `json:"new"`
	// NewFindings are in the new report only; Fixed in the old one only.
	NewFindings []finding.Finding `json:"new_findings"`
	Fixed       []finding.Finding `json:"fixed_findings"`
	Unchanged   []Unchanged       `json:"unchanged_findings"`
	// Verdicts lists changed verdicts, only when both reports have verdicts.
	Verdicts []VerdictChange `json:"changed_verdicts"`
	// VerdictsCompared is false when either report has no verdicts.
	VerdictsCompared bool    `json:"verdicts_compared"`
	Summary          Summary `json:"summary"`
}

var (
	digits     = regexp.MustCompile(`[0-9]+`)
	advisoryID = regexp.MustCompile(`(?i)\b(?:CVE|GHSA|OSV|PYSEC|GO)-[0-9A-Za-z-]+`)
)

// place is where a finding was seen, without its title.
func place(f finding.Finding) string {
	return fmt.Sprintf("%s|%s|%d|%s|%s", f.Check, f.Host, f.Port, f.Transport, f.Path)
}

// looseKey is the key of the second matching pass: place, title without
// digit runs, and the advisory ids the title names.
func looseKey(f finding.Finding) string {
	ids := advisoryID.FindAllString(f.Title, -1)
	for i := range ids {
		ids[i] = strings.ToUpper(ids[i])
	}
	slices.Sort(ids)
	return place(f) + "|" + strings.ToLower(digits.ReplaceAllString(f.Title, "#")) + "|" + strings.Join(ids, ",")
}

// Compare compares old with new. Neither report is modified.
func Compare(old, new *finding.Report) *Diff {
	d := &Diff{Schema: SchemaV1, NewFindings: []finding.Finding{}, Fixed: []finding.Finding{},
		Unchanged: []Unchanged{}, Verdicts: []VerdictChange{}}
	d.Old = side(old)
	d.New = side(new)

	oldLeft := map[int]bool{}
	byKey := map[string][]int{}
	for i, f := range old.Findings {
		oldLeft[i] = true
		byKey[f.Key()] = append(byKey[f.Key()], i)
	}
	var newLeft []int
	for j, f := range new.Findings {
		if is := byKey[f.Key()]; len(is) > 0 {
			i := is[0]
			byKey[f.Key()] = is[1:]
			delete(oldLeft, i)
			d.Unchanged = append(d.Unchanged, unchanged(old.Findings[i], f))
			continue
		}
		newLeft = append(newLeft, j)
	}
	// Second pass: pair unambiguous loose matches.
	oldLoose := map[string][]int{}
	for i := range oldLeft {
		k := looseKey(old.Findings[i])
		oldLoose[k] = append(oldLoose[k], i)
	}
	newLoose := map[string][]int{}
	for _, j := range newLeft {
		k := looseKey(new.Findings[j])
		newLoose[k] = append(newLoose[k], j)
	}
	for _, j := range newLeft {
		f := new.Findings[j]
		k := looseKey(f)
		if is := oldLoose[k]; len(is) == 1 && len(newLoose[k]) == 1 {
			delete(oldLeft, is[0])
			d.Unchanged = append(d.Unchanged, unchanged(old.Findings[is[0]], f))
			continue
		}
		d.NewFindings = append(d.NewFindings, f)
	}
	for i, f := range old.Findings {
		if oldLeft[i] {
			d.Fixed = append(d.Fixed, f)
		}
	}
	sortFindings(d.NewFindings)
	sortFindings(d.Fixed)
	sort.SliceStable(d.Unchanged, func(a, b int) bool { return less(d.Unchanged[a].Finding, d.Unchanged[b].Finding) })

	if len(old.Verdicts) > 0 && len(new.Verdicts) > 0 {
		d.VerdictsCompared = true
		d.Verdicts = compareVerdicts(old.Verdicts, new.Verdicts)
	}
	d.Summary = Summary{New: len(d.NewFindings), Fixed: len(d.Fixed), Unchanged: len(d.Unchanged), ChangedVerdict: len(d.Verdicts)}
	return d
}

func side(r *finding.Report) Side {
	s := Side{Findings: len(r.Findings), Verdicts: len(r.Verdicts)}
	if !r.StartedAt.IsZero() {
		s.StartedAt = r.StartedAt.UTC().Format("2006-01-02T15:04:05Z")
	}
	return s
}

func unchanged(old, new finding.Finding) Unchanged {
	u := Unchanged{Finding: new}
	if old.Title != new.Title {
		u.TitleWas = old.Title
	}
	if old.Severity != new.Severity {
		s := old.Severity
		u.SeverityWas = &s
	}
	return u
}

func compareVerdicts(old, new []finding.Verdict) []VerdictChange {
	key := func(v finding.Verdict) string { return v.Edition + "|" + v.Provision }
	oldBy := map[string]finding.Verdict{}
	for _, v := range old {
		oldBy[key(v)] = v
	}
	out := []VerdictChange{}
	seen := map[string]bool{}
	for _, v := range new {
		seen[key(v)] = true
		o, ok := oldBy[key(v)]
		if ok && o.Verdict == v.Verdict {
			continue
		}
		c := VerdictChange{Provision: v.Provision, Edition: v.Edition, Title: v.Title, New: v.Verdict}
		if ok {
			c.Old = o.Verdict
		}
		out = append(out, c)
	}
	for _, o := range old {
		if !seen[key(o)] {
			out = append(out, VerdictChange{Provision: o.Provision, Edition: o.Edition, Title: o.Title, Old: o.Verdict})
		}
	}
	return out
}

func sortFindings(fs []finding.Finding) {
	sort.SliceStable(fs, func(a, b int) bool { return less(fs[a], fs[b]) })
}

// less orders findings most severe first, then by place and title.
func less(a, b finding.Finding) bool {
	if a.Severity != b.Severity {
		return a.Severity > b.Severity
	}
	return a.Key() < b.Key()
}

// CountNew returns how many new findings are at or above threshold.
func (d *Diff) CountNew(threshold finding.Severity) int {
	n := 0
	for _, f := range d.NewFindings {
		if f.Severity >= threshold {
			n++
		}
	}
	return n
}
