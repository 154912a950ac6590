package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/iotcop/iotcop/assess"
	"github.com/iotcop/iotcop/check"
	"github.com/iotcop/iotcop/creds"
	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/robustness"
	"github.com/iotcop/iotcop/scan"
	"github.com/iotcop/iotcop/sweep"
	"github.com/iotcop/iotcop/target"
)

// scanFlags are the flags of "iotcop scan" (and of "iotcop demo").
type scanFlags struct {
	inputList   string
	exclude     []string
	allowPublic bool
	ports       string
	rate        float64
	perHost     int
	hosts       int
	timeout     time.Duration
	retries     int
	noChecks    bool
	credsFile   string
	aggressive  bool
	budget      int
	manifest    string
	vendorURL   string
	// checksRun is filled by run: the ids of the checks that ran.
	checksRun   []string
	only        []string
	robust      bool
	recovery    time.Duration
	discover    bool
	disc        discoverFlags
	vendorHints map[string]string
	out         outputFlags
}

func (s *scanFlags) registerScanTuning(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&s.ports, "ports", "p", "default", `ports: "22,80-90,T:8080,U:161,5683/udp"; "default" is the IoT set`)
	f.Float64Var(&s.rate, "rate", 0, "at most this many new connections per second overall (0 = no limit)")
	f.IntVar(&s.perHost, "per-host", 4, "at most this many connections to one device at a time (cheap devices crash under floods)")
	f.IntVar(&s.hosts, "hosts", 64, "devices assessed at once")
	f.DurationVar(&s.timeout, "timeout", 2*time.Second, "timeout for each connect and each protocol round trip")
	f.IntVar(&s.retries, "retries", 1, "re-probe a port that timed out this many times")
	f.BoolVar(&s.noChecks, "no-checks", false, "stop after finding and identifying services")
	f.StringVar(&s.credsFile, "creds", "", "try the user:pass pairs in this file instead of the built-in dictionaries")
	f.BoolVar(&s.aggressive, "aggressive", false, "raise the login attempt budget (1000), login sessions per service (4) and connections per device (16); may lock accounts")
	f.IntVar(&s.budget, "budget", 0, "credential attempts per service (default 8, or 1000 with --aggressive)")
	f.StringSliceVar(&s.only, "checks", nil, "run only these checks (ids as in the report, comma-separated), e.g. weak-tls,weak-ssh")
	f.BoolVar(&s.robust, "robustness", false, "send malformed input and connection bursts to every service and report devices that stop answering (may crash or reboot devices: only with the owner's permission)")
	f.DurationVar(&s.recovery, "robustness-recovery", 30*time.Second, "with --robustness, how long to wait for a device that stopped answering to come back")
	f.StringVar(&s.manifest, "expected", "", "YAML or RFC 8520 MUD file of the services devices should expose; every other listener is a finding")
	f.StringVar(&s.vendorURL, "vendor-url", "", "manufacturer site to check for a security.txt vulnerability disclosure policy (may be public: contacted only when given)")
	s.out.register(cmd)
}

func newScanCmd(e *env) *cobra.Command {
	var s scanFlags
	cmd := &cobra.Command{
		Use:   "scan [flags] TARGET...",
		Short: "Find services on devices and check them for default passwords, open access and clear text",
		Long: `Scan sweeps the targets over the IoT port set, names each service by its behaviour,
and checks it: universal default credentials (5.1-1), access without any credential,
credentials sent in clear text (5.5-1).

TARGET is an address (192.168.1.10, ::1), a CIDR (10.0.0.0/24), a range (127.0.0.1-20,
10.0.0.5-10.0.1.7) or a host name. Only loopback and private ranges are scanned unless
--allow-public is given.`,
		Example: `  iotcop scan 192.168.1.0/24
  iotcop scan --no-checks -p T:1-1024,U:161 10.0.0.5-40
  iotcop scan -iL cameras.txt --format json -o report.json --fail-on critical`,
		RunE: func(cmd *cobra.Command, args []string) error {
			specs := args
			if s.inputList != "" {
				more, err := target.ReadFile(s.inputList, e.stdin)
				if err != nil {
					return err
				}
				specs = append(specs, more...)
			}
			if s.discover {
				devs, err := s.disc.run(cmd.Context())
				if err != nil {
					return err
				}
				found, vendors, skipped := discoveredTargets(devs, s.allowPublic)
				for _, a := range skipped {
					fmt.Fprintf(e.stderr, "iotcop: discovered %s is outside private and loopback ranges: not scanned (--allow-public)\n", a)
				}
				specs = append(specs, found...)
				s.vendorHints = vendors
			}
			if len(specs) == 0 {
				return usageError{fmt.Errorf("no targets: give addresses, ranges, CIDRs or host names, -iL FILE, or --discover")}
			}
			set, err := target.Parser{AllowPublic: s.allowPublic}.Build(cmd.Context(), specs, s.exclude)
			if err != nil {
				return usageError{err}
			}
			rep, err := s.run(cmd.Context(), e, set)
			if rep == nil {
				return err
			}
			if err != nil {
				fmt.Fprintf(e.stderr, "iotcop: warning: %v\n", err)
			}
			return s.out.emit(e, rep)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&s.inputList, "input-list", "i", "", "read targets from this file (one or more per line, # comments; - for stdin)")
	f.StringSliceVar(&s.exclude, "exclude", nil, "addresses, ranges or CIDRs to skip (comma-separated or repeated)")
	f.BoolVar(&s.discover, "discover", false, "also scan the devices that answer mDNS/DNS-SD and SSDP on the local network, trying their makers' credentials first")
	s.disc.register(cmd, "discover-")
	f.BoolVar(&s.allowPublic, "allow-public", false, "allow targets outside private and loopback ranges (only scan what you are authorised to)")
	s.registerScanTuning(cmd)
	return cmd
}

// run builds the scanner from the flags and scans set.
func (s *scanFlags) run(ctx context.Context, e *env, set target.Set) (*finding.Report, error) {
	if _, err := s.out.validate(); err != nil {
		return nil, err
	}
	ports, err := sweep.ParsePorts(s.ports)
	if err != nil {
		return nil, usageError{err}
	}
	var dict *creds.Dictionary
	if s.credsFile != "" {
		dict, err = creds.LoadFile(s.credsFile)
	} else {
		dict, err = creds.Builtin()
	}
	if err != nil {
		return nil, err
	}
	budget := creds.DefaultBudget()
	perHost := s.perHost
	sessions := 1
	if s.aggressive {
		budget = creds.AggressiveBudget()
		sessions = 4
		if perHost < 16 {
			perHost = 16
		}
	}
	if s.budget > 0 {
		budget.PerService = s.budget
	}
	var manifest *check.Manifest
	if s.manifest != "" {
		if manifest, err = check.LoadManifest(s.manifest); err != nil {
			return nil, usageError{err}
		}
	}
	disc, err := check.NewDisclosure(s.vendorURL)
	if err != nil {
		return nil, usageError{err}
	}
	opts := scan.Options{
		Ports: ports, Rate: s.rate, PerHost: perHost, Hosts: s.hosts, Timeout: s.timeout,
		Retries: s.retries, NoChecks: s.noChecks, Version: Version, VendorHints: s.vendorHints,
	}
	var progress *mpb.Progress
	if !s.out.quiet && isTerminal(e.stderr) {
		progress = mpb.NewWithContext(ctx, mpb.WithOutput(e.stderr), mpb.WithWidth(48))
		bar := progress.AddBar(int64(set.Size()),
			mpb.PrependDecorators(decor.Name("hosts "), decor.CountersNoUnit("%d/%d")),
			mpb.AppendDecorators(decor.Percentage(), decor.Name(" "), decor.AverageETA(decor.ET_STYLE_GO)))
		opts.Progress = func(done, _ uint64) { bar.SetCurrent(int64(done)) }
		defer func() { bar.SetTotal(-1, true); progress.Wait() }()
	}
	protocols := scan.DefaultProtocols()
	copts := scan.CheckOptions{Dict: dict, Budget: budget, Parallel: sessions, Manifest: manifest, Disclosure: disc}
	if s.robust {
		copts.Robustness = &robustness.Budget{RecoveryWait: s.recovery}
	}
	checks := scan.DefaultChecks(protocols, copts)
	if len(s.only) > 0 {
		if checks, err = scan.SelectChecks(checks, s.only); err != nil {
			return nil, usageError{err}
		}
	}
	if s.noChecks {
		checks = nil
	}
	s.checksRun = assess.CheckIDs(checks)
	sc := scan.New(opts, protocols, checks)
	return sc.Run(ctx, set)
}
