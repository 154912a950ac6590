package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/iotcop/iotcop/standard"
)

func newProvisionsCmd(e *env) *cobra.Command {
	var edition, level, kind, automation, format string
	var guideline, psti int
	var conditional, unconditional, includeVoid bool
	cmd := &cobra.Command{
		Use:   "provisions",
		Short: "List the EN 303 645 provisions, with their CoP guideline, PSTI requirement and what evidence can decide them",
		Long: `Provisions lists the embedded catalogue of ETSI EN 303 645 provisions (V2.1.1, cited by
UK PSTI, and V3.1.3), mapped to the UK Code of Practice guidelines and the PSTI
requirements. Titles are paraphrases, not the standard's text; entries whose mapping is
not confirmed against the source are flagged unverified.`,
		Example: `  iotcop provisions --psti 1
  iotcop provisions --edition V3.1.3 --kind network --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cat, err := standard.Load()
			if err != nil {
				return err
			}
			ed, err := standard.ParseEdition(edition)
			if err != nil {
				return usageError{fmt.Errorf("--edition: %w", err)}
			}
			f := standard.Filter{Edition: ed, IncludeVoid: includeVoid, Guideline: guideline, PSTI: psti,
				Level: standard.Level(level), Kind: standard.Kind(kind), Automation: standard.Automation(automation)}
			switch {
			case conditional && unconditional:
				return usageError{fmt.Errorf("--conditional and --unconditional exclude each other")}
			case conditional:
				f.Conditional = &conditional
			case unconditional:
				no := false
				f.Conditional = &no
			}
			ps := cat.Filter(f)
			switch format {
			case "json":
				return standard.WriteJSON(e.stdout, ed, ps)
			case "text":
				return standard.WriteTable(e.stdout, ed, ps)
			}
			return usageError{fmt.Errorf("unknown format %q (want text or json)", format)}
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&edition, "edition", string(standard.DefaultEdition), "EN 303 645 edition: V2.1.1 (cited by PSTI) or V3.1.3")
	fl.IntVar(&guideline, "guideline", 0, "only provisions serving this UK CoP guideline (1-13)")
	fl.IntVar(&psti, "psti", 0, "only the deemed-compliance route of this PSTI requirement (1-3)")
	fl.StringVar(&level, "level", "", "only mandatory (M) or recommended (R) provisions")
	fl.BoolVar(&conditional, "conditional", false, "only conditional provisions")
	fl.BoolVar(&unconditional, "unconditional", false, "only unconditional provisions")
	fl.BoolVar(&includeVoid, "include-void", false, "also list provisions the edition voided")
	fl.StringVar(&kind, "kind", "", "only provisions this kind of evidence can decide: network, firmware or declaration")
	fl.StringVar(&automation, "automation", "", "only provisions iotcop can decide to this degree: full, partial or none")
	fl.StringVar(&format, "format", "text", "text or json")
	return cmd
}
