package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotcop/iotcop/discover"
	"github.com/iotcop/iotcop/target"
)

type discoverFlags struct {
	iface string
	wait  time.Duration
}

func (d *discoverFlags) register(cmd *cobra.Command, prefix string) {
	f := cmd.Flags()
	f.StringVar(&d.iface, prefix+"interface", "", "network interface to send the multicast queries on (default: the kernel's choice)")
	f.DurationVar(&d.wait, prefix+"wait", discover.DefaultWait, "how long to collect answers")
}

func (d *discoverFlags) run(ctx context.Context) ([]discover.Device, error) {
	devs, err := discover.Run(ctx, discover.Options{Interface: d.iface, Wait: d.wait})
	if err != nil {
		return nil, fmt.Errorf("discover: %w", err)
	}
	return devs, nil
}

func newDiscoverCmd(e *env) *cobra.Command {
	var d discoverFlags
	var format string
	cmd := &cobra.Command{
		Use:   "discover",
		Short: "Find devices on the local network with mDNS/DNS-SD and SSDP, and name them from their UPnP descriptions",
		Long: `Discover sends an SSDP M-SEARCH and an mDNS/DNS-SD browse on the local network, collects the
answers, reads each UPnP description (only from private and loopback addresses) and
prints every device: address, host names, advertised services, manufacturer, model,
serial number, firmware version and manufacturer URL, plus the vendor key iotcop uses to
try that maker's default credentials first. "iotcop scan --discover" scans what it finds.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			devs, err := d.run(cmd.Context())
			if err != nil {
				return err
			}
			switch format {
			case "json":
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				if devs == nil {
					devs = []discover.Device{}
				}
				return enc.Encode(devs)
			case "text":
				for _, dv := range devs {
					what := strings.TrimSpace(strings.Join([]string{dv.Manufacturer, dv.Model, dv.ModelNumber}, " "))
					fmt.Fprintf(e.stdout, "%-15s %-10s %s\n", dv.Address, strings.Join(dv.Sources, ","), what)
					if dv.FriendlyName != "" || dv.Serial != "" || dv.FirmwareVersion != "" {
						fmt.Fprintf(e.stdout, "                name %q serial %q firmware %q\n", dv.FriendlyName, dv.Serial, dv.FirmwareVersion)
					}
					for _, n := range dv.Names {
						fmt.Fprintf(e.stdout, "                host %s\n", n)
					}
					for _, s := range dv.Services {
						fmt.Fprintf(e.stdout, "                service %s %s port %d\n", s.Instance, s.Type, s.Port)
					}
					if v := dv.Vendor(); v != "" {
						fmt.Fprintf(e.stdout, "                vendor key %s\n", v)
					}
				}
				fmt.Fprintf(e.stdout, "%d devices answered\n", len(devs))
				return nil
			}
			return usageError{fmt.Errorf("unknown format %q (want text or json)", format)}
		},
	}
	d.register(cmd, "")
	cmd.Flags().StringVar(&format, "format", "text", "text or json")
	return cmd
}

// discoveredTargets turns discovered devices into scan targets (in scope
// only, unless public targets are allowed) and vendor hints per address.
func discoveredTargets(devs []discover.Device, allowPublic bool) (specs []string, vendors map[string]string, skipped []string) {
	vendors = map[string]string{}
	for _, dv := range devs {
		if !allowPublic && !target.InScope(dv.Address) {
			skipped = append(skipped, dv.Address.String())
			continue
		}
		specs = append(specs, dv.Address.String())
		if v := dv.Vendor(); v != "" {
			vendors[dv.Address.String()] = v
		}
	}
	return specs, vendors, skipped
}
