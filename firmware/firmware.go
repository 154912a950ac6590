// Package firmware is the entry point of firmware analysis: it unpacks an
// image (firmware/unpack) and runs the analyses (firmware/analyze) over
// what came out, returning the layers found and the findings.
package firmware

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"sync"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/firmware/analyze"
	"github.com/iotcop/iotcop/firmware/unpack"
)

// Options configure one analysis. Zero fields take the defaults of
// unpack.Options.
type Options struct {
	// ExtractDir, when set, keeps the unpacked tree there (one folder per
	// layer); by default nothing is written to disk.
	ExtractDir string
	// MaxDepth limits nesting of layers (default 8).
	MaxDepth int
	// MaxTotalBytes limits the bytes unpacked (default 1 GiB); MaxFiles the
	// entries (default 200000).
	MaxTotalBytes, MaxFiles int64
	// MaxRatio limits a layer's decompression ratio once past 32 MiB
	// (default 200).
	MaxRatio float64
	// Workers bounds parallel decompression (default: the CPUs).
	Workers int
	// OSV is a folder or zip of OSV JSON records; when set (or OSVDatabase
	// is), components are matched against it (known-vulnerability).
	OSV string
	// OSVDatabase is an already loaded database (takes precedence over
	// OSV; load once with analyze.LoadOSV when analysing many images).
	OSVDatabase *analyze.OSVDatabase
	// Analyzers replaces analyze.Default(). Some analyzers keep state for
	// one image: pass fresh instances for each call.
	Analyzers []analyze.Analyzer
}

// Layer is one region of the image and what became of it: the report
// contract's firmware layer, so results go into reports unconverted.
type Layer = finding.FirmwareLayer

// Result is what one image holds.
type Result struct {
	Image  string  `json:"image"`
	Size   int64   `json:"size"`
	SHA256 string  `json:"sha256"`
	Layers []Layer `json:"layers"`
	// Files counts the entries unpacked from all layers.
	Files    int               `json:"files"`
	Findings []finding.Finding `json:"findings"`
	// AnalysisErrors lists analyses that failed part-way (their findings
	// up to then are kept).
	AnalysisErrors []string `json:"analysis_errors,omitempty"`
	// Components is the software inventory (package databases, version
	// strings of well-known binaries, kernel names in image headers).
	Components []analyze.Component `json:"components"`
}

// Failed returns the layers that were recognised but could not be opened
// completely.
func (r *Result) Failed() []Layer {
	var out []Layer
	for _, l := range r.Layers {
		if l.Status == string(unpack.StatusFailed) {
			out = append(out, l)
		}
	}
	return out
}

// Analyze unpacks the image at imagePath and analyses it. Layers that fail
// are reported in Result.Layers and the rest of the image is still
// analysed; an error is returned only when the image cannot be read or
// ctx ends.
func Analyze(ctx context.Context, imagePath string, opts Options) (*Result, error) {
	data, err := os.ReadFile(imagePath)
	if err != nil {
		return nil, fmt.Errorf("reading firmware image: %w", err)
	}
	uo := unpack.Options{ExtractDir: opts.ExtractDir, MaxDepth: opts.MaxDepth, MaxTotalBytes: opts.MaxTotalBytes,
		MaxFiles: opts.MaxFiles, MaxRatio: opts.MaxRatio, Workers: opts.Workers}
	if uo.MaxTotalBytes > 0 && int64(len(data)) > uo.MaxTotalBytes {
		return nil, fmt.Errorf("firmware image %s is %d bytes, over the %d byte budget", imagePath, len(data), uo.MaxTotalBytes)
	}
	osv := opts.OSVDatabase
	if osv == nil && opts.OSV != "" {
		if osv, err = analyze.LoadOSV(opts.OSV); err != nil {
			return nil, err
		}
	}
	// The image's hash is computed while it is unpacked.
	sum := make(chan [sha256.Size]byte, 1)
	go func(data []byte) { sum <- sha256.Sum256(data) }(data)
	analyzers := opts.Analyzers
	if analyzers == nil {
		analyzers = analyze.Default()
	}
	// Per-file analyses run while files are unpacked (in parallel, and so
	// that big files can be released at once); the rest run on the tree.
	perFile, whole := analyze.Split(analyzers)
	inventory := analyze.NewComponents()
	perFile = append(perFile, inventory)
	var mu sync.Mutex
	var findings []finding.Finding
	var errs []error
	uo.Visit = func(ctx context.Context, f *unpack.File) {
		fs, err := analyze.RunFile(ctx, f, perFile)
		mu.Lock()
		defer mu.Unlock()
		findings = append(findings, fs...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	uo.Retain = func(f *unpack.File) bool { return analyze.Wants(whole, f) }
	tree, err := unpack.Data(ctx, data, uo)
	digest := <-sum
	if err != nil {
		return nil, fmt.Errorf("unpacking %s: %w", imagePath, err)
	}
	res := &Result{Image: imagePath, Size: int64(len(data)), SHA256: hex.EncodeToString(digest[:])}
	data = nil // the tree keeps what it needs
	for _, l := range tree.Layers() {
		res.Files += l.Files
		res.Layers = append(res.Layers, Layer{ID: l.ID, Parent: l.Parent, Source: l.Source, Offset: l.Offset,
			Size: l.Size, Format: l.Format, Entropy: round2(l.Entropy), Status: string(l.Status), Error: l.Error,
			Files: l.Files, Bytes: l.Bytes, Refused: l.Refused, Info: l.Info})
	}
	fin, err := analyze.Finish(ctx, perFile)
	findings = append(findings, fin...)
	if err != nil {
		errs = append(errs, err)
	}
	res.Components = inventory.List()
	have := map[string]bool{}
	for _, c := range res.Components {
		have[c.Name+"@"+c.Version] = true
	}
	for _, c := range headerComponents(res.Layers) {
		if !have[c.Name+"@"+c.Version] {
			res.Components = append(res.Components, c)
		}
	}
	if osv != nil {
		findings = append(findings, osv.Match(res.Components)...)
	}
	wholeFindings, err := analyze.Run(ctx, tree, whole)
	if ctx.Err() != nil {
		return res, fmt.Errorf("analysing %s: %w", imagePath, ctx.Err())
	}
	if err != nil {
		errs = append(errs, err)
	}
	res.Findings = append(findings, wholeFindings...)
	analyze.Sort(res.Findings)
	for _, e := range errs {
		res.AnalysisErrors = append(res.AnalysisErrors, e.Error())
	}
	if res.Findings == nil {
		res.Findings = []finding.Finding{}
	}
	return res, nil
}

var reKernelName = regexp.MustCompile(`(?i)linux[- ]?(\d+\.\d+(?:\.\d+)?)`)

// headerComponents names the kernel from uImage/FIT header names
// ("Linux-5.10.176") when its banner was not found in the payload.
func headerComponents(layers []Layer) []analyze.Component {
	var out []analyze.Component
	for _, l := range layers {
		if l.Format != "uimage" {
			continue
		}
		if m := reKernelName.FindStringSubmatch(l.Info["name"]); m != nil {
			out = append(out, analyze.Component{Name: "linux", Version: m[1], Type: "operating-system",
				PURL: "pkg:generic/linux@" + m[1], CPE: "cpe:2.3:o:linux:linux_kernel:" + m[1] + ":*:*:*:*:*:*:*",
				Source: "uimage-header", Path: fmt.Sprintf("uimage@0x%x", l.Offset)})
		}
	}
	return out
}

func round2(f float64) float64 { return float64(int(f*100+0.5)) / 100 }

// Summary is the report contract's firmware entry for the analysed image.
func (r *Result) Summary() finding.FirmwareImage {
	img := finding.FirmwareImage{Image: r.Image, Size: r.Size, SHA256: r.SHA256, Files: r.Files,
		AnalysisErrors: r.AnalysisErrors, Layers: []finding.FirmwareLayer{}}
	img.Layers = append(img.Layers, r.Layers...)
	return img
}
