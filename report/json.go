// Package report writes a finding.Report in each output format: JSON (the
// public contract, schema.json), a terminal summary, and SARIF 2.1.0.
package report

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/iotcop/iotcop/finding"
)

// Format names an output format.
type Format string

// Output formats.
const (
	Text  Format = "text"
	JSON  Format = "json"
	SARIF Format = "sarif"
	HTML  Format = "html"
)

// ParseFormat validates a --format value.
func ParseFormat(s string) (Format, error) {
	switch Format(s) {
	case Text, JSON, SARIF, HTML:
		return Format(s), nil
	}
	return "", fmt.Errorf("unknown format %q (want text, json, sarif or html)", s)
}

// Options tunes rendering.
type Options struct {
	// Colour enables ANSI colours in text output (on a terminal).
	Colour bool
}

// Write renders rep in format f. Secrets stay redacted unless the caller
// revealed them (finding.Report.RevealSecrets) beforehand.
func Write(w io.Writer, f Format, rep *finding.Report, opts Options) error {
	switch f {
	case JSON:
		return WriteJSON(w, rep)
	case SARIF:
		return WriteSARIF(w, rep)
	case HTML:
		return WriteHTML(w, rep, nil)
	default:
		return WriteText(w, rep, opts)
	}
}

// WriteJSON writes the report contract (schema iotcop/report/v1).
func WriteJSON(w io.Writer, rep *finding.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return fmt.Errorf("write json report: %w", err)
	}
	return nil
}
