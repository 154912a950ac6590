package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/iotcop/iotcop/lab"
)

type labFlags struct {
	devices  int
	config   string
	base     string
	manifest string
}

func (l *labFlags) register(cmd *cobra.Command, defaultDevices int) {
	f := cmd.Flags()
	f.IntVar(&l.devices, "devices", defaultDevices, "number of virtual devices (the default fleet's templates repeated)")
	f.StringVar(&l.config, "config", "", "YAML file describing the devices and their flaws instead of the default fleet")
	f.StringVar(&l.base, "base", lab.DefaultBase, "first loopback address handed to devices")
}

func (l *labFlags) cfg() (lab.Config, error) {
	if l.config != "" {
		return lab.LoadConfig(l.config)
	}
	if l.devices < 1 {
		return lab.Config{}, usageError{fmt.Errorf("--devices must be at least 1")}
	}
	return lab.DefaultConfig(l.devices), nil
}

func newLabCmd(e *env) *cobra.Command {
	var l labFlags
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Run a fleet of virtual IoT devices on loopback addresses until interrupted",
		Long: `Lab starts virtual consumer devices (cameras, hubs, plugs, routers, a hardened device …)
on their own 127.x.y.z addresses. They speak the real protocols (telnet, SSH, HTTP, RTSP,
FTP, MQTT, CoAP, SNMP, SSDP, ADB) with the flaws set by the config, so you can try iotcop,
or any other scanner, without hardware. Stop it with Ctrl-C.`,
		Example: `  iotcop lab
  iotcop lab --devices 500 --manifest lab.json
  iotcop lab --config my-fleet.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := l.cfg()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			running, err := lab.Start(ctx, cfg, lab.Options{Base: l.base})
			if err != nil {
				return fmt.Errorf("start lab: %w", err)
			}
			defer running.Close()
			devs := running.Devices()
			if l.manifest != "" {
				b, err := json.MarshalIndent(devs, "", "  ")
				if err != nil {
					return err
				}
				if err := os.WriteFile(l.manifest, b, 0o644); err != nil {
					return fmt.Errorf("write manifest: %w", err)
				}
			}
			if len(devs) <= 50 {
				for _, d := range devs {
					var svc []string
					for _, s := range d.Services {
						svc = append(svc, fmt.Sprintf("%s/%d", s.Protocol, s.Port))
					}
					fmt.Fprintf(e.stdout, "%-15s %-10s %-9s %s\n", d.Address, d.Name, d.Kind, strings.Join(svc, " "))
				}
			}
			fmt.Fprintf(e.stdout, "%d virtual devices running from %s; scan them with: iotcop scan %s\nPress Ctrl-C to stop.\n",
				len(devs), devs[0].Address, labRange(devs))
			<-ctx.Done()
			return nil
		},
	}
	l.register(cmd, 8)
	cmd.Flags().StringVar(&l.manifest, "manifest", "", "write the devices, their services and expected flaws to this JSON file")
	return cmd
}

// labRange renders the lab's addresses as one target argument.
func labRange(devs []lab.RunningDevice) string {
	if len(devs) == 1 {
		return devs[0].Address
	}
	return devs[0].Address + "-" + devs[len(devs)-1].Address
}
