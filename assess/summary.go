package assess

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/iotcop/iotcop/finding"
)

// WriteSummary writes the assessment for a terminal: the three PSTI
// requirements, the roll-up per CoP guideline, then every provision with
// its verdict, basis and reason, and any contradiction.
func WriteSummary(w io.Writer, a *Assessment) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "EN 303 645 %s assessment\n\n", a.Edition)
	fmt.Fprintf(tw, "UK PSTI\tVERDICT\tWHY\n")
	for _, r := range a.PSTI {
		fmt.Fprintf(tw, "%d %s\t%s\t%s\n", r.Requirement, r.Name, r.Verdict, r.Reason)
	}
	fmt.Fprintf(tw, "\nUK COP GUIDELINE\tVERDICT\tCOUNTS\n")
	for _, g := range a.Guidelines {
		fmt.Fprintf(tw, "%d %s\t%s\t%s\n", g.Number, g.Name, g.Verdict, counts(g.Counts))
	}
	fmt.Fprintf(tw, "\nPROVISION\tSTATUS\tVERDICT\tBASIS\tRULE\tREASON\n")
	for _, v := range a.Verdicts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", v.Provision, v.Status, v.Verdict, v.Basis, v.Rule, oneLine(v.Reason, 140))
		if v.Contradiction != "" {
			fmt.Fprintf(tw, "\t\t\t\t\tCONTRADICTION: %s\n", oneLine(v.Contradiction, 140))
		}
	}
	fmt.Fprintf(tw, "\n%d provisions: %s\n", len(a.Verdicts), counts(a.Counts))
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write assessment summary: %w", err)
	}
	return nil
}

func counts(c map[string]int) string {
	var parts []string
	for _, s := range finding.Verdicts() {
		if n := c[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
