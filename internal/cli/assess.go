package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotcop/iotcop/assess"
	"github.com/iotcop/iotcop/declare"
	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/firmware"
	"github.com/iotcop/iotcop/report"
	"github.com/iotcop/iotcop/standard"
	"github.com/iotcop/iotcop/target"
)

func newAssessCmd(e *env) *cobra.Command {
	var s scanFlags
	var targets, images []string
	var declPath, edition string
	var allowPublic bool
	var statementPath, statementDate string
	var sig report.Signatory
	cmd := &cobra.Command{
		Use:   "assess",
		Short: "Give every EN 303 645 provision a verdict from a live device, a firmware image and the maker's declarations",
		Long: `Assess runs what applies — a live scan of --target, an analysis of --firmware, the
maker's --declarations — and gives every provision of the edition a verdict: PASS, FAIL,
INCONCLUSIVE (evidence could not decide), NOT APPLICABLE (by the declared conditions)
or NOT ASSESSED (no declaration), with the findings and declaration entries that decided
it. Evidence beats a declaration: a declared "supported" against a failing finding is
FAIL and the contradiction is named. Everything given is judged as one product.`,
		Example: `  iotcop assess --target 192.168.1.20 --firmware cam-1.0.4.bin --declarations cam.yaml --format html -o cam.html
  iotcop assess --firmware router.bin --declarations router.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(targets) == 0 && len(images) == 0 && declPath == "" {
				return usageError{fmt.Errorf("nothing to assess: give --target, --firmware and/or --declarations")}
			}
			if _, err := s.out.validate(); err != nil {
				return err
			}
			if statementDate != "" {
				t, err := time.Parse(time.DateOnly, statementDate)
				if err != nil {
					return usageError{fmt.Errorf("--statement-date: want YYYY-MM-DD: %w", err)}
				}
				sig.Date = t
			}
			ctx := cmd.Context()
			cat, err := standard.Load()
			if err != nil {
				return err
			}
			var decls *declare.Declarations
			if declPath != "" {
				d, problems, err := declare.Load(declPath)
				if err != nil {
					return err
				}
				for _, p := range problems {
					fmt.Fprintf(e.stderr, "iotcop: declarations: %s\n", p)
				}
				if d == nil {
					return usageError{fmt.Errorf("%s is not a declarations file", declPath)}
				}
				decls = d
			}
			rep := &finding.Report{Schema: finding.SchemaV1, Tool: finding.Tool{Name: "iotcop", Version: Version}, StartedAt: time.Now().UTC()}
			var checksRun []string
			if len(targets) > 0 {
				set, err := target.Parser{AllowPublic: allowPublic}.Build(ctx, targets, nil)
				if err != nil {
					return usageError{err}
				}
				live, err := s.run(ctx, e, set)
				if live == nil {
					return err
				}
				if err != nil {
					fmt.Fprintf(e.stderr, "iotcop: warning: %v\n", err)
				}
				rep.Devices, rep.Findings = live.Devices, live.Findings
				checksRun = append(checksRun, s.checksRun...)
			}
			for _, img := range images {
				res, err := firmware.Analyze(ctx, img, firmware.Options{})
				if err != nil {
					return fmt.Errorf("analyse %s: %w", img, err)
				}
				rep.Findings = append(rep.Findings, res.Findings...)
				rep.Firmware = append(rep.Firmware, res.Summary())
			}
			if len(images) > 0 {
				checksRun = append(checksRun, assess.FirmwareChecks(false)...)
			}
			rep.FinishedAt = time.Now().UTC()
			rep.Finalize()
			in := assess.FromReport(rep, checksRun, decls)
			if edition != "" {
				if in.Edition, err = standard.ParseEdition(edition); err != nil {
					return usageError{fmt.Errorf("--edition: %w", err)}
				}
			}
			in.Manifest = s.manifest != ""
			if s.vendorURL != "" {
				in.VendorSites = []string{s.vendorURL}
			}
			a, err := assess.Assess(cat, in)
			if err != nil {
				return err
			}
			rep.Verdicts = a.Verdicts
			if statementPath != "" {
				if err := writeStatement(e, statementPath, decls, a, report.StatementOptions{Signatory: sig, Catalogue: cat}); err != nil {
					return err
				}
			}
			return s.out.emitAssessed(e, rep, a)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&targets, "target", nil, "device to scan: address, range, CIDR or host name (repeatable)")
	f.StringSliceVar(&images, "firmware", nil, "firmware image to analyse (repeatable)")
	f.StringVar(&declPath, "declarations", "", "the maker's declarations file (iotcop declare init writes a template)")
	f.StringVar(&edition, "edition", "", "EN 303 645 edition (default: the declarations', else V2.1.1)")
	f.BoolVar(&allowPublic, "allow-public", false, "allow targets outside private and loopback ranges")
	f.StringVar(&statementPath, "statement", "", "also write a draft PSTI statement of compliance (Markdown) to this file; missing and contradicted items are flagged")
	f.StringVar(&sig.Name, "signatory", "", "statement of compliance: name of the person signing it")
	f.StringVar(&sig.Function, "signatory-function", "", "statement of compliance: the signatory's function (job title)")
	f.StringVar(&sig.Place, "statement-place", "", "statement of compliance: place of issue")
	f.StringVar(&statementDate, "statement-date", "", "statement of compliance: date of issue (YYYY-MM-DD)")
	s.registerScanTuning(cmd)
	return cmd
}

// writeStatement writes the PSTI statement of compliance to path and says
// on standard error how many items it flags.
func writeStatement(e *env, path string, d *declare.Declarations, a *assess.Assessment, opts report.StatementOptions) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write statement of compliance: %w", err)
	}
	if err := report.WriteStatement(f, d, a, opts); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write statement of compliance: %w", err)
	}
	issues, err := report.StatementIssues(d, a, opts)
	if err != nil {
		return err
	}
	if len(issues) > 0 {
		fmt.Fprintf(e.stderr, "iotcop: statement of compliance %s is NOT ready to sign: %d items flagged\n", path, len(issues))
	}
	return nil
}
