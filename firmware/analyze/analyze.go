// Package analyze looks through a firmware's unpacked file tree for flaws
// that are universal by construction because every unit ships the same
// image: hard-coded credentials, embedded private keys and insecure
// services started at boot. Each analysis is an Analyzer; Default lists
// them explicitly.
package analyze

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/firmware/unpack"
)

// Analyzer is one analysis over an unpacked image.
type Analyzer interface {
	// Name identifies the analysis in errors and logs.
	Name() string
	// Required is a cheap filter: whether the file at path (inside its
	// layer) with info is worth handing to Analyze.
	Required(path string, info fs.FileInfo) bool
	// Analyze inspects the files Required accepted; tree gives access to
	// the rest of the image (resolving links, reading related files).
	Analyze(ctx context.Context, tree *unpack.Tree, files []*unpack.File) ([]finding.Finding, error)
}

// Default returns fresh instances of the built-in analyses (some gather
// state over one image, so use a new list per image).
func Default() []Analyzer {
	return []Analyzer{NewAccounts(), NewPrivateKeys(), NewCertificates(), NewSecrets(), NewBootServices(), NewHardening(), NewUpdateURLs()}
}

// PerFile is implemented by analyzers that judge each file on its own
// (keys, secrets). The firmware entry point runs them through RunFile
// while the image is unpacked, so large files need not stay in memory.
type PerFile interface {
	PerFile() bool
}

// Finisher is implemented by analyzers that gather facts file by file
// and report once at the end (binary hardening's per-image summary).
type Finisher interface {
	Finish(ctx context.Context) ([]finding.Finding, error)
}

// Finish collects the final findings of every analyzer that is a Finisher.
func Finish(ctx context.Context, analyzers []Analyzer) ([]finding.Finding, error) {
	var out []finding.Finding
	var errs []error
	for _, a := range analyzers {
		if f, ok := a.(Finisher); ok {
			fs, err := f.Finish(ctx)
			out = append(out, fs...)
			if err != nil {
				errs = append(errs, fmt.Errorf("analysis %s: %w", a.Name(), err))
			}
		}
	}
	return out, errors.Join(errs...)
}

// Split separates per-file analyzers from those that need the whole tree.
func Split(analyzers []Analyzer) (perFile, whole []Analyzer) {
	for _, a := range analyzers {
		if p, ok := a.(PerFile); ok && p.PerFile() {
			perFile = append(perFile, a)
		} else {
			whole = append(whole, a)
		}
	}
	return perFile, whole
}

// Wants reports whether any of analyzers requires f; the firmware entry
// point keeps only such files in memory for the whole-tree analyses.
func Wants(analyzers []Analyzer, f *unpack.File) bool {
	for _, a := range analyzers {
		if a.Required(f.Name, fileInfo{f}) {
			return true
		}
	}
	return false
}

// RunFile runs analyzers that require f on f alone; it is safe to call
// from several goroutines at once.
func RunFile(ctx context.Context, f *unpack.File, analyzers []Analyzer) ([]finding.Finding, error) {
	var out []finding.Finding
	var errs []error
	if f.Unpacked || !f.Mode.IsRegular() {
		return nil, nil
	}
	for _, a := range analyzers {
		if !a.Required(f.Name, fileInfo{f}) {
			continue
		}
		fs, err := a.Analyze(ctx, nil, []*unpack.File{f})
		out = append(out, fs...)
		if err != nil {
			errs = append(errs, fmt.Errorf("analysis %s of %s: %w", a.Name(), f.Path(), err))
		}
	}
	return out, errors.Join(errs...)
}

// Run runs every analyzer over the files of tree and returns their
// findings in a stable order. An analyzer's error does not stop the
// others; the errors are joined.
func Run(ctx context.Context, tree *unpack.Tree, analyzers []Analyzer) ([]finding.Finding, error) {
	files := tree.Files()
	var out []finding.Finding
	var errs []error
	for _, a := range analyzers {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		var sel []*unpack.File
		for _, f := range files {
			if f.Unpacked || f.Released() {
				continue // analysed through the layer it became, or already
			}
			if a.Required(f.Name, fileInfo{f}) {
				sel = append(sel, f)
			}
		}
		if len(sel) == 0 {
			continue
		}
		fs, err := a.Analyze(ctx, tree, sel)
		out = append(out, fs...)
		if err != nil {
			errs = append(errs, fmt.Errorf("analysis %s: %w", a.Name(), err))
		}
	}
	fin, err := Finish(ctx, analyzers)
	out = append(out, fin...)
	if err != nil {
		errs = append(errs, err)
	}
	Sort(out)
	return out, errors.Join(errs...)
}

// Sort puts findings in a stable order: by check, path, title, then
// evidence layer.
func Sort(out []finding.Finding) {
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Check != out[j].Check {
			return out[i].Check < out[j].Check
		}
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		if out[i].Title != out[j].Title {
			return out[i].Title < out[j].Title
		}
		return fmt.Sprint(out[i].Evidence["layer"]) < fmt.Sprint(out[j].Evidence["layer"])
	})
}

// layerEvidence adds where a file came from to a finding's evidence.
func layerEvidence(f *unpack.File, ev map[string]any) map[string]any {
	l := f.FS().Layer()
	ev["layer"] = fmt.Sprintf("%s@0x%x", l.Format, l.Offset)
	ev["layer_offset"] = l.Offset
	if l.Source != "" {
		ev["layer_source"] = l.Source
	}
	return ev
}
