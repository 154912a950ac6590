package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/iotcop/iotcop/declare"
	"github.com/iotcop/iotcop/standard"
)

// errDeclarationProblems makes "declare check" exit 1 after listing problems.
var errDeclarationProblems = errors.New("the declarations have problems")

func newDeclareCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "declare",
		Short: "Write and validate the maker's declarations (product, support period, per-provision answers)",
		Long: `The declarations file is the maker's side of an assessment, in the spirit of the ICS and
IXIT of ETSI TS 103 701: product identity, the defined support period, the vulnerability
disclosure URL, the device's conditions and features, and per provision whether it is
supported, with justification, implementation and evidence references.`,
	}
	var edition, output string
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Write a commented declarations template listing every provision of the edition",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ed, err := standard.ParseEdition(edition)
			if err != nil {
				return usageError{fmt.Errorf("--edition: %w", err)}
			}
			b, err := declare.Template(ed)
			if err != nil {
				return err
			}
			if output == "" || output == "-" {
				_, err = e.stdout.Write(b)
				return err
			}
			if _, err := os.Stat(output); err == nil {
				return usageError{fmt.Errorf("%s exists: not overwriting it", output)}
			}
			return os.WriteFile(output, b, 0o644)
		},
	}
	initCmd.Flags().StringVar(&edition, "edition", string(standard.DefaultEdition), "EN 303 645 edition: V2.1.1 or V3.1.3")
	initCmd.Flags().StringVarP(&output, "output", "o", "", "write the template to this file (refuses to overwrite)")
	checkCmd := &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a declarations file, naming every problem with its line",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			d, problems, err := declare.Load(args[0])
			if err != nil {
				return err
			}
			for _, p := range problems {
				fmt.Fprintln(e.stdout, p.String())
			}
			if d != nil {
				n, total := d.Declared()
				fmt.Fprintf(e.stdout, "%d of %d provisions declared; %d problems\n", n, total, len(problems))
			}
			if len(problems) > 0 {
				return errDeclarationProblems
			}
			return nil
		},
	}
	cmd.AddCommand(initCmd, checkCmd)
	return cmd
}
