package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotcop/iotcop/assess"
	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/report"
	"github.com/iotcop/iotcop/standard"
	"github.com/iotcop/iotcop/target"
)

func newDemoCmd(e *env) *cobra.Command {
	var l labFlags
	var s scanFlags
	var htmlPath string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start the virtual device lab in-process, scan it and print what iotcop finds",
		Long: `Demo needs no hardware and sends nothing beyond loopback: it starts the built-in virtual
device lab on 127.x.y.z addresses, scans every device with the default checks, prints the
report, and says how many of the lab's planted flaws the scan found.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			running, err := l.start(ctx, e)
			if err != nil {
				return err
			}
			defer running.Close()
			set, err := target.Parser{}.Build(ctx, running.Targets(), nil)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("ports") {
				// Scan every port the lab uses (they may have been moved
				// above 1024 for an unprivileged user).
				s.ports = "default," + labPorts(running.Devices())
			}
			start := time.Now()
			rep, err := s.run(ctx, e, set)
			if rep == nil {
				return err
			}
			if err != nil {
				fmt.Fprintf(e.stderr, "iotcop: warning: %v\n", err)
			}
			if htmlPath != "" {
				if err := writeAssessedHTML(htmlPath, rep, s.checksRun); err != nil {
					return err
				}
				fmt.Fprintf(e.stderr, "iotcop: HTML report of the virtual lab written to %s\n", htmlPath)
			}
			if s.out.format == "text" && s.out.output == "" {
				defer func() {
					found, total := 0, 0
					for _, d := range running.Devices() {
						for _, fl := range d.Flaws {
							total++
							for _, f := range rep.Findings {
								if f.Check == fl.Check && f.Host == d.Address && f.Port == fl.Port {
									found++
									break
								}
							}
						}
					}
					fmt.Fprintf(e.stdout, "virtual lab: %d devices scanned in %s; %d of %d planted flaws found\n",
						len(running.Devices()), time.Since(start).Round(100*time.Millisecond), found, total)
				}()
			}
			return s.out.emit(e, rep)
		},
	}
	l.register(cmd, 8)
	s.registerScanTuning(cmd)
	cmd.Flags().StringVar(&htmlPath, "html", "", "also write the assessed HTML report of the virtual lab to this file")
	cmd.Flags().Lookup("fail-on").DefValue = "none"
	_ = cmd.Flags().Set("fail-on", "none")
	return cmd
}

// writeAssessedHTML assesses rep (no declarations: the lab has no maker)
// and writes the self-contained HTML report to path. The report is
// copied so the caller's rendering is unaffected.
func writeAssessedHTML(path string, rep *finding.Report, checksRun []string) error {
	cat, err := standard.Load()
	if err != nil {
		return err
	}
	cp := *rep
	a, err := assess.Assess(cat, assess.FromReport(&cp, checksRun, nil))
	if err != nil {
		return err
	}
	cp.Verdicts = a.Verdicts
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write HTML report: %w", err)
	}
	if err := report.WriteHTML(f, &cp, a); err != nil {
		f.Close()
		return fmt.Errorf("write HTML report %s: %w", path, err)
	}
	return f.Close()
}
