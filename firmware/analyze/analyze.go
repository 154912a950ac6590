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

// Default returns the built-in analyses.
func Default() []Analyzer {
	return []Analyzer{NewAccounts(), NewPrivateKeys(), NewBootServices()}
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
			if f.Unpacked {
				continue // analysed through the layer it became
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
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Check != out[j].Check {
			return out[i].Check < out[j].Check
		}
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Title < out[j].Title
	})
	return out, errors.Join(errs...)
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
