package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/iotcop/iotcop/baseline"
	"github.com/iotcop/iotcop/finding"
)

func newDiffCmd(e *env) *cobra.Command {
	var format, output, failOn string
	cmd := &cobra.Command{
		Use:   "diff OLD.json NEW.json",
		Short: "Compare two JSON reports: new, fixed and unchanged findings, changed verdicts",
		Long: `Diff compares two reports written with --format json: which findings are new, which
were fixed, which are unchanged, and (when both hold an assessment) which provision
verdicts changed. Findings match on check, host, port, transport, path and title; a
title whose numbers alone changed ("of 12 ELF files") still matches.

It exits 1 when a new finding is at or above --fail-on, so it works as a CI gate.`,
		Example: `  iotcop diff release-1.0.json release-1.1.json
  iotcop diff --format json --fail-on medium old.json new.json`,
		Args: cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			if format != "text" && format != "json" {
				return usageError{fmt.Errorf("--format %q: want text or json", format)}
			}
			threshold := finding.Critical + 1
			if failOn != "none" {
				s, err := finding.ParseSeverity(failOn)
				if err != nil {
					return usageError{fmt.Errorf("--fail-on: %w", err)}
				}
				threshold = s
			}
			old, err := baseline.Load(args[0])
			if err != nil {
				return usageError{err}
			}
			new, err := baseline.Load(args[1])
			if err != nil {
				return usageError{err}
			}
			d := baseline.Compare(old, new)
			d.Old.File, d.New.File = args[0], args[1]
			w := e.stdout
			if output != "" && output != "-" {
				f, err := os.Create(output)
				if err != nil {
					return fmt.Errorf("write diff: %w", err)
				}
				defer f.Close()
				w = f
			}
			if format == "json" {
				err = baseline.WriteJSON(w, d)
			} else {
				err = baseline.WriteText(w, d)
			}
			if err != nil {
				return err
			}
			if failOn != "none" && d.CountNew(threshold) > 0 {
				return errFindings
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&format, "format", "text", "output format: text or json")
	f.StringVarP(&output, "output", "o", "", "write the diff to this file instead of standard output")
	f.StringVar(&failOn, "fail-on", "high", "exit 1 when a new finding is at or above this severity (critical, high, medium, low, info, or none)")
	return cmd
}
