// Package declare reads and checks the manufacturer's declarations: a YAML
// file, in the spirit of the ETSI TS 103 701 Implementation Conformance
// Statement (ICS) and IXIT tables, giving the product's identity, its
// defined support period, where its vulnerability disclosure policy is
// published, yes/no answers that decide which conditional provisions
// apply, and per EN 303 645 provision whether it is supported (Y, N or
// N/A), why, how, and where the evidence is.
//
// Template writes a commented file to fill in; Load validates one and
// names every problem with its line.
package declare

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/iotcop/iotcop/standard"
)

// SchemaV1 identifies the declarations format.
const SchemaV1 = "iotcop/declarations/v1"

// Support is the ICS answer for one provision.
type Support string

// ICS answers.
const (
	// Supported: the product implements the provision.
	Supported Support = "Y"
	// NotSupported: it does not (for a recommendation, with a justification).
	NotSupported Support = "N"
	// NotApplicable: a condition of the provision does not hold (with a
	// justification); never permitted for an unconditional mandatory one.
	NotApplicable Support = "N/A"
)

// Product identifies what is declared.
type Product struct {
	Manufacturer string
	// Address is the manufacturer's postal address (PSTI statement).
	Address         string
	Model           string
	HardwareVersion string
	FirmwareVersion string
	// ProductType ("smart camera") and Batch are for the PSTI statement.
	ProductType string
	Batch       string
	Line        int
}

// SupportPeriod is the defined support period (PSTI requirement 3, EN 303
// 645 5.3-13).
type SupportPeriod struct {
	// End is the last day security updates are provided; zero when not declared.
	End time.Time
	// PublishedAt is where the manufacturer publishes it.
	PublishedAt string
	Line        int
}

// Disclosure is the vulnerability disclosure policy (PSTI requirement 2,
// EN 303 645 5.2-1).
type Disclosure struct {
	URL  string
	Line int
}

// Answer is the answer to one Question.
type Answer struct {
	Value bool
	Line  int
}

// Entry is the declaration for one provision.
type Entry struct {
	// Provision is the catalogue id; Key is the id as written ("4-1").
	Provision string
	Key       string
	// Support is empty when the provision was left undeclared.
	Support        Support
	Justification  string
	Implementation string
	Evidence       []string
	Line           int
}

// Declarations is a loaded declarations file.
type Declarations struct {
	File          string
	Edition       standard.Edition
	Product       Product
	SupportPeriod SupportPeriod
	Disclosure    Disclosure
	// Answers holds the answered questions by key.
	Answers map[string]Answer
	// Provisions holds the entries by catalogue id, including undeclared
	// ones the file lists with an empty support.
	Provisions map[string]Entry

	cat *standard.Catalogue
}

// Entry returns the declared entry for provision id (catalogue or
// edition-specific id); ok is false when the file does not declare it.
func (d *Declarations) Entry(id string) (Entry, bool) {
	if d == nil {
		return Entry{}, false
	}
	if d.cat != nil {
		if p, ok := d.cat.Provision(id); ok {
			id = p.ID
		}
	}
	e, ok := d.Provisions[id]
	if !ok || e.Support == "" {
		return Entry{}, false
	}
	return e, true
}

// Declared counts the provisions of the edition with a support answer and
// the total in the edition.
func (d *Declarations) Declared() (declared, total int) {
	for _, p := range d.cat.InEdition(d.Edition) {
		total++
		if _, ok := d.Entry(p.ID); ok {
			declared++
		}
	}
	return declared, total
}

// Problem is one thing wrong in a declarations file.
type Problem struct {
	File   string
	Line   int
	Column int
	// Path is the YAML path ("provisions.5.1-1.support").
	Path    string
	Message string
}

// String formats the problem as file:line: message.
func (p Problem) String() string {
	return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Message)
}

// Load reads and validates the declarations file at path, judging dates
// against today. The problems name each error with its line. The
// Declarations are nil only when the file is not YAML at all (the problems
// say where); the error is for a file that cannot be read or a broken
// catalogue.
func Load(path string) (*Declarations, []Problem, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read declarations: %w", err)
	}
	cat, err := standard.Load()
	if err != nil {
		return nil, nil, err
	}
	d, probs := Parse(cat, path, data, time.Now())
	return d, probs, nil
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// Parse validates declarations in data (name is used in problems) against
// catalogue cat, judging dates against now.
func Parse(cat *standard.Catalogue, name string, data []byte, now time.Time) (*Declarations, []Problem) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line := 1
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		return nil, []Problem{{File: name, Line: line, Message: "not valid YAML: " + err.Error()}}
	}
	v := &validator{cat: cat, name: name, now: now}
	d := &Declarations{File: name, Edition: standard.DefaultEdition, Answers: map[string]Answer{},
		Provisions: map[string]Entry{}, cat: cat}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		v.add(&doc, "", "the file is empty: start from `iotcop declare init`")
		doc.Line = 1
		return d, v.problems
	}
	v.document(d, doc.Content[0])
	sort.SliceStable(v.problems, func(i, j int) bool { return v.problems[i].Line < v.problems[j].Line })
	return d, v.problems
}
