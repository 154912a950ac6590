// Package cli is iotcop's command line: one file per subcommand, exit codes
// mapped from errors. It only wires packages together.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/iotcop/iotcop/assess"
	"github.com/iotcop/iotcop/baseline"
	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/report"
)

// Version is set at build time with -ldflags "-X github.com/iotcop/iotcop/internal/cli.Version=…".
var Version = "dev"

// Exit codes.
const (
	ExitClean    = 0 // nothing at or above the --fail-on threshold
	ExitFindings = 1 // findings at or above the threshold
	ExitError    = 2 // usage or runtime error
)

// errFindings signals exit code 1 without printing an error.
var errFindings = errors.New("findings at or above the --fail-on threshold")

// usageError marks errors in how the command was invoked.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// env is what subcommands need from the process.
type env struct {
	ctx            context.Context
	stdin          io.Reader
	stdout, stderr io.Writer
}

// Run executes the command line args and returns the exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "iotcop",
		Short: "Check consumer IoT devices and firmware against the UK Code of Practice, ETSI EN 303 645 and PSTI",
		Long: `iotcop checks connected devices, their firmware and their makers' promises against the
UK Code of Practice for Consumer IoT Security, ETSI EN 303 645 and the UK PSTI regime:
no universal default passwords, no open doors, secure communication.

Start with "iotcop demo": it runs a virtual device lab on loopback and scans it.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	root.SetArgs(nmapStyle(args))
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newScanCmd(e), newDiscoverCmd(e), newFirmwareCmd(e), newAssessCmd(e), newProvisionsCmd(e), newDeclareCmd(e),
		newLabCmd(e), newDemoCmd(e), newSchemaCmd(e), newDiffCmd(e), newServeCmd(e), newWorkerCmd(e), newPushCmd(e))
	err := root.ExecuteContext(ctx)
	switch {
	case err == nil:
		return ExitClean
	case errors.Is(err, errFindings), errors.Is(err, errDeclarationProblems):
		return ExitFindings
	}
	fmt.Fprintf(stderr, "iotcop: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(stderr, "Run 'iotcop --help' for usage.")
	}
	return ExitError
}

// outputFlags are shared by every command that writes a report.
type outputFlags struct {
	format      string
	output      string
	showSecrets bool
	failOn      string
	quiet       bool
	// baseline is a JSON report whose findings --fail-on ignores.
	baseline string
	base     *finding.Report
}

func (o *outputFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.format, "format", "text", "report format: text, json, sarif, html or pdf (pdf needs Chromium)")
	f.StringVarP(&o.output, "output", "o", "", "write the report to this file instead of standard output")
	f.BoolVar(&o.showSecrets, "show-secrets", false, "show found passwords and keys in the report (redacted by default)")
	f.StringVar(&o.failOn, "fail-on", "high", "exit 1 when a finding is at or above this severity (critical, high, medium, low, info, or none)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no progress output")
	f.StringVar(&o.baseline, "baseline", "", "JSON report of an earlier run: --fail-on counts only findings not in it (the report still lists all)")
}

func (o *outputFlags) validate() (report.Format, error) {
	var f report.Format
	if o.format == string(report.PDF) {
		if _, err := report.FindChromium(); err != nil {
			return "", err
		}
		f = report.PDF
	} else {
		var err error
		if f, err = report.ParseFormat(o.format); err != nil {
			return "", usageError{err}
		}
	}
	if o.failOn != "none" {
		if _, err := finding.ParseSeverity(o.failOn); err != nil {
			return "", usageError{fmt.Errorf("--fail-on: %w", err)}
		}
	}
	if o.baseline != "" && o.base == nil {
		base, err := baseline.Load(o.baseline)
		if err != nil {
			return "", usageError{fmt.Errorf("--baseline: %w", err)}
		}
		o.base = base
	}
	return f, nil
}

// emit writes the report and maps its findings to the exit status.
func (o *outputFlags) emit(e *env, rep *finding.Report) error { return o.emitAssessed(e, rep, nil) }

// emitAssessed writes the report with its assessment (nil for none).
func (o *outputFlags) emitAssessed(e *env, rep *finding.Report, a *assess.Assessment) error {
	format, err := o.validate()
	if err != nil {
		return err
	}
	var diff *baseline.Diff
	if o.base != nil {
		diff = baseline.Compare(o.base, rep)
		fresh := map[string]bool{}
		for _, f := range diff.NewFindings {
			fresh[f.Key()] = true
		}
		for i := range rep.Findings {
			rep.Findings[i].Baseline = "unchanged"
			if fresh[rep.Findings[i].Key()] {
				rep.Findings[i].Baseline = "new"
			}
		}
	}
	if o.showSecrets {
		rep.RevealSecrets()
	}
	w := e.stdout
	colour := false
	if o.output != "" && o.output != "-" {
		f, err := os.Create(o.output)
		if err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		defer f.Close()
		w = f
	} else {
		colour = isTerminal(e.stdout) && os.Getenv("NO_COLOR") == ""
	}
	switch {
	case format == report.PDF:
		if w == e.stdout && isTerminal(e.stdout) {
			return usageError{fmt.Errorf("--format pdf writes binary data: give -o FILE")}
		}
		err = report.WritePDF(e.ctx, w, rep, a)
	case a != nil && format == report.HTML:
		err = report.WriteHTML(w, rep, a)
	case a != nil && format == report.Text:
		if err = assess.WriteSummary(w, a); err == nil {
			_, err = fmt.Fprintln(w)
		}
		if err == nil {
			err = report.Write(w, format, rep, report.Options{Colour: colour})
		}
	default:
		err = report.Write(w, format, rep, report.Options{Colour: colour})
	}
	if err != nil {
		return err
	}
	if o.failOn == "none" {
		return nil
	}
	threshold, _ := finding.ParseSeverity(o.failOn)
	if d := diff; d != nil {
		n := d.CountNew(threshold)
		if !o.quiet {
			fmt.Fprintf(e.stderr, "iotcop: against baseline %s: %d new (%d at or above %s), %d unchanged, %d fixed\n",
				o.baseline, d.Summary.New, n, threshold, d.Summary.Unchanged, d.Summary.Fixed)
		}
		if n > 0 {
			return errFindings
		}
		return nil
	}
	if max, any := rep.MaxSeverity(); any && max >= threshold {
		return errFindings
	}
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// nmapStyle rewrites nmap's two-letter "-iL FILE" into "--input-list FILE"
// (pflag would read it as -i with value "L").
func nmapStyle(args []string) []string {
	out := make([]string, 0, len(args))
	for _, a := range args {
		switch {
		case a == "-iL":
			out = append(out, "--input-list")
		case strings.HasPrefix(a, "-iL="):
			out = append(out, "--input-list="+a[len("-iL="):])
		default:
			out = append(out, a)
		}
	}
	return out
}

func newSchemaCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the report contract (iotcop/report/v1)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := e.stdout.Write(report.Schema())
			return err
		},
	}
}
