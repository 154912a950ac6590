package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotcop/iotcop/lab"
	"github.com/iotcop/iotcop/target"
)

func newDemoCmd(e *env) *cobra.Command {
	var l labFlags
	var s scanFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start the virtual device lab in-process, scan it and print what iotcop finds",
		Long: `Demo needs no hardware and sends nothing beyond loopback: it starts the built-in virtual
device lab on 127.x.y.z addresses, scans every device with the default checks, prints the
report, and says how many of the lab's planted flaws the scan found.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := l.cfg(e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			running, err := lab.Start(ctx, cfg, lab.Options{Base: l.base})
			if err != nil {
				return fmt.Errorf("start lab: %w", err)
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
	cmd.Flags().Lookup("fail-on").DefValue = "none"
	_ = cmd.Flags().Set("fail-on", "none")
	return cmd
}
