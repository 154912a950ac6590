package baseline

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/iotcop/iotcop/finding"
)

// WriteJSON writes the diff as JSON (schema iotcop/diff/v1).
func WriteJSON(w io.Writer, d *Diff) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return fmt.Errorf("write json diff: %w", err)
	}
	return nil
}

// WriteText writes the diff for a terminal: a summary line, then the new,
// fixed and changed findings and the changed verdicts. Unchanged findings
// are counted, and listed only when their title or severity moved.
func WriteText(w io.Writer, d *Diff) error {
	var b strings.Builder
	name := func(s Side, def string) string {
		if s.File != "" {
			return s.File
		}
		return def
	}
	fmt.Fprintf(&b, "Comparing %s (%d findings) with %s (%d findings)\n", name(d.Old, "old"), d.Old.Findings, name(d.New, "new"), d.New.Findings)
	fmt.Fprintf(&b, "%d new, %d fixed, %d unchanged", d.Summary.New, d.Summary.Fixed, d.Summary.Unchanged)
	if d.VerdictsCompared {
		fmt.Fprintf(&b, ", %d verdicts changed", d.Summary.ChangedVerdict)
	} else {
		b.WriteString("; verdicts not compared (a report has none)")
	}
	b.WriteString("\n")
	section := func(title string, fs []finding.Finding, mark string) {
		if len(fs) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n%s:\n", title)
		for _, f := range fs {
			fmt.Fprintf(&b, "  %s %-8s %s  %s [%s]\n", mark, strings.ToUpper(f.Severity.String()), where(f), f.Title, f.Check)
		}
	}
	section("New findings", d.NewFindings, "+")
	section("Fixed findings", d.Fixed, "-")
	var moved []Unchanged
	for _, u := range d.Unchanged {
		if u.TitleWas != "" || u.SeverityWas != nil {
			moved = append(moved, u)
		}
	}
	if len(moved) > 0 {
		b.WriteString("\nUnchanged findings that moved:\n")
		for _, u := range moved {
			fmt.Fprintf(&b, "  = %-8s %s  %s [%s]\n", strings.ToUpper(u.Severity.String()), where(u.Finding), u.Title, u.Check)
			if u.SeverityWas != nil {
				fmt.Fprintf(&b, "      severity was %s\n", u.SeverityWas)
			}
			if u.TitleWas != "" {
				fmt.Fprintf(&b, "      title was %q\n", u.TitleWas)
			}
		}
	}
	if len(d.Verdicts) > 0 {
		b.WriteString("\nChanged verdicts:\n")
		for _, v := range d.Verdicts {
			fmt.Fprintf(&b, "  %-8s %-14s -> %-14s %s\n", v.Provision, orAbsent(v.Old), orAbsent(v.New), v.Title)
		}
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("write diff: %w", err)
	}
	return nil
}

func orAbsent(s string) string {
	if s == "" {
		return "(absent)"
	}
	return s
}

func where(f finding.Finding) string {
	switch {
	case f.Host != "" && f.Port != 0:
		return fmt.Sprintf("%s:%d/%s", f.Host, f.Port, f.Transport)
	case f.Host != "":
		return f.Host
	case f.Path != "":
		return f.Path
	}
	return "-"
}
