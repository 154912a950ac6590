package standard

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteTable lists provisions as an aligned text table for `iotcop
// provisions`: id and status in edition ed, CoP guideline, PSTI
// requirement, what evidence can decide it and the paraphrased title. A
// closing note says titles are paraphrases and which columns are
// unverified.
func WriteTable(w io.Writer, ed Edition, ps []Provision) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ID\tSTATUS (%s)\tCOP\tPSTI\tEVIDENCE\tAUTOMATION\tTITLE\n", ed)
	for _, p := range ps {
		s := p.Editions[ed]
		code := s.Code
		if code == "" {
			code = "-"
		}
		psti := "-"
		if p.PSTI != nil {
			psti = strconv.Itoa(p.PSTI.Requirement)
			if p.PSTI.Unverified {
				psti += "?"
			}
		}
		cop := "-"
		if p.Guideline != 0 {
			cop = strconv.Itoa(p.Guideline)
		}
		kinds := make([]string, len(p.Assess.Kinds))
		for i, k := range p.Assess.Kinds {
			kinds[i] = string(k)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.IDIn(ed), code, cop, psti,
			strings.Join(kinds, ","), p.Assess.Automation, p.Title)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write provision table: %w", err)
	}
	_, err := fmt.Fprintf(w, "\n%d provisions. Titles are paraphrases, not the text of EN 303 645; "+
		"\"?\" marks a PSTI route the catalogue flags unverified (see standard/data/SOURCES.md).\n", len(ps))
	return err
}

// ListEntry is the JSON form of a provision in one edition.
type ListEntry struct {
	ID          string   `json:"id"`
	CatalogueID string   `json:"catalogue_id"`
	Edition     Edition  `json:"edition"`
	Status      string   `json:"status"`
	Level       Level    `json:"level,omitempty"`
	Conditions  []string `json:"conditions,omitempty"`
	Features    []string `json:"features,omitempty"`
	ReplacedBy  []string `json:"replaced_by,omitempty"`
	Title       string   `json:"title"`
	Section     string   `json:"section"`
	Guideline   int      `json:"uk_cop_guideline,omitempty"`
	PSTI        int      `json:"psti_requirement,omitempty"`
	Kinds       []Kind   `json:"evidence"`
	Automation  string   `json:"automation"`
	How         string   `json:"how"`
	TestGroup   string   `json:"ts103701_test_group,omitempty"`
	IXIT        []string `json:"ixit,omitempty"`
	Unverified  []string `json:"unverified,omitempty"`
}

// Entry returns the JSON form of p in edition ed.
func (p Provision) Entry(ed Edition) ListEntry {
	s := p.Editions[ed]
	e := ListEntry{ID: p.IDIn(ed), CatalogueID: p.ID, Edition: ed, Status: s.Code, Level: s.Level,
		Conditions: s.Conditions, Features: s.Features, ReplacedBy: s.ReplacedBy, Title: p.Title,
		Section: p.Section, Guideline: p.Guideline, Kinds: p.Assess.Kinds,
		Automation: string(p.Assess.Automation), How: p.Assess.How, Unverified: p.Unverified()}
	if p.PSTI != nil {
		e.PSTI = p.PSTI.Requirement
	}
	if p.TS103701 != nil {
		e.TestGroup, e.IXIT = p.TS103701.Group, p.TS103701.IXIT
	}
	return e
}

// WriteJSON lists provisions as a JSON array of ListEntry.
func WriteJSON(w io.Writer, ed Edition, ps []Provision) error {
	out := make([]ListEntry, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Entry(ed))
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write provision list: %w", err)
	}
	return nil
}
