package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/firmware"
)

func newFirmwareCmd(e *env) *cobra.Command {
	var out outputFlags
	var opts firmware.Options
	var sbomPath string
	cmd := &cobra.Command{
		Use:   "firmware [flags] IMAGE...",
		Short: "Unpack firmware images and find universal passwords, keys and insecure boot services",
		Long: `Firmware identifies the formats glued together in an image at any offset (headers,
compressed kernels, root filesystems), unpacks them recursively within size, file-count,
depth and ratio budgets, and analyses the tree: hard-coded credentials (5.1-1), embedded
private keys and secrets (5.4-1), services started at boot that should not be (5.6-1).
Layers that cannot be opened are reported with their offset, size and entropy.
Nothing is written to disk unless --extract is given.`,
		Example: `  iotcop firmware router.bin
  iotcop firmware --extract ./rootfs --format json -o fw.json camera-fw.img`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, images []string) error {
			if _, err := out.validate(); err != nil {
				return err
			}
			rep := &finding.Report{
				Schema:    finding.SchemaV1,
				Tool:      finding.Tool{Name: "iotcop", Version: Version},
				StartedAt: time.Now().UTC(),
			}
			for _, img := range images {
				res, err := firmware.Analyze(cmd.Context(), img, opts)
				if err != nil {
					return fmt.Errorf("analyse %s: %w", img, err)
				}
				rep.Findings = append(rep.Findings, res.Findings...)
				rep.Firmware = append(rep.Firmware, res.Summary())
				if sbomPath != "" {
					if err := writeSBOM(sbomPath, res, len(images) > 1); err != nil {
						return err
					}
				}
			}
			rep.FinishedAt = time.Now().UTC()
			rep.Finalize()
			return out.emit(e, rep)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.ExtractDir, "extract", "", "keep the unpacked tree in this folder (nothing is written to disk otherwise)")
	f.IntVar(&opts.MaxDepth, "max-depth", 0, "deepest layer nesting to unpack (default 8)")
	f.Int64Var(&opts.MaxTotalBytes, "max-bytes", 0, "most bytes to unpack in all (default 1 GiB)")
	f.Int64Var(&opts.MaxFiles, "max-files", 0, "most files to unpack in all (default 200000)")
	f.StringVar(&sbomPath, "sbom", "", "write the software components found as a CycloneDX 1.5 JSON SBOM to this file (IMAGE.cdx.json beside it for several images)")
	f.StringVar(&opts.OSV, "osv", "", "folder or zip of OSV records to match components against (known-vulnerability findings)")
	out.register(cmd)
	return cmd
}

// writeSBOM writes the CycloneDX SBOM of one image: to path, or with
// several images to path's folder as <image name>.cdx.json.
func writeSBOM(path string, res *firmware.Result, several bool) error {
	if several {
		path = filepath.Join(filepath.Dir(path), filepath.Base(res.Image)+".cdx.json")
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write SBOM: %w", err)
	}
	if err := firmware.WriteCycloneDX(f, res, Version, time.Now().UTC()); err != nil {
		f.Close()
		return fmt.Errorf("write SBOM %s: %w", path, err)
	}
	return f.Close()
}
