package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
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

// cfg loads the fleet and, for a user who may not bind privileged ports,
// moves those ports up by 10000 (saying so on stderr).
func (l *labFlags) cfg(e *env) (lab.Config, error) {
	var cfg lab.Config
	if l.config != "" {
		var err error
		if cfg, err = lab.LoadConfig(l.config); err != nil {
			return lab.Config{}, err
		}
	} else {
		if l.devices < 1 {
			return lab.Config{}, usageError{fmt.Errorf("--devices must be at least 1")}
		}
		cfg = lab.DefaultConfig(l.devices)
	}
	if lowest := cfg.LowestPort(); lowest < unprivilegedPortStart() {
		fmt.Fprintf(e.stderr, "iotcop: not allowed to bind ports below %d here: lab ports below 1024 are moved up by %d (23 → %d)\n",
			unprivilegedPortStart(), privilegedShift, 23+privilegedShift)
		cfg = cfg.ShiftPrivilegedPorts(privilegedShift)
	}
	return cfg, nil
}

// start loads the fleet and starts it.
func (l *labFlags) start(ctx context.Context, e *env) (*lab.Lab, error) {
	cfg, err := l.cfg(e)
	if err != nil {
		return nil, err
	}
	running, err := lab.Start(ctx, cfg, lab.Options{Base: l.base})
	if err != nil {
		return nil, fmt.Errorf("start lab: %w", err)
	}
	return running, nil
}

// privilegedShift is added to privileged lab ports for unprivileged users.
const privilegedShift = 10000

// unprivilegedPortStart is the lowest port this process may bind: 0 for
// root, else the kernel's net.ipv4.ip_unprivileged_port_start (1024 when
// it cannot be read).
func unprivilegedPortStart() int {
	if os.Geteuid() == 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		return 1024
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 1024
	}
	return n
}

// labPorts lists every port the running lab's services listen on, as a
// -p specification.
func labPorts(devs []lab.RunningDevice) string {
	seen := map[string]bool{}
	var parts []string
	add := func(transport string, port int) {
		p := fmt.Sprintf("%d/%s", port, transport)
		if !seen[p] {
			seen[p] = true
			parts = append(parts, p)
		}
	}
	for _, d := range devs {
		for _, s := range d.Services {
			add(s.Transport, s.Port)
			if s.DescriptionPort != 0 {
				add("tcp", s.DescriptionPort)
			}
		}
	}
	return strings.Join(parts, ",")
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
			ctx := cmd.Context()
			running, err := l.start(ctx, e)
			if err != nil {
				return err
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
