package declare

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/iotcop/iotcop/standard"
)

type validator struct {
	cat      *standard.Catalogue
	name     string
	now      time.Time
	problems []Problem
}

func (v *validator) add(n *yaml.Node, path, format string, args ...any) {
	p := Problem{File: v.name, Path: path, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	if p.Line == 0 {
		p.Line = 1
	}
	v.problems = append(v.problems, p)
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

type pair struct {
	key   string
	kn, v *yaml.Node
}

// pairs returns a mapping's key/value pairs, reporting duplicate keys and
// keys that are not plain scalars.
func (v *validator) pairs(n *yaml.Node, path string) []pair {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		v.add(n, path, "%s must be a mapping of keys to values", orTop(path))
		return nil
	}
	seen := map[string]int{}
	var out []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			v.add(k, path, "keys of %s must be plain text", orTop(path))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			v.add(k, join(path, k.Value), "%s is given twice (first on line %d)", join(path, k.Value), first)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, pair{k.Value, k, val})
	}
	return out
}

func orTop(path string) string {
	if path == "" {
		return "the file"
	}
	return path
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// str reads a scalar string; null reads as empty.
func (v *validator) str(n *yaml.Node, path string) string {
	n = deref(n)
	if isNull(n) {
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		v.add(n, path, "%s must be text", path)
		return ""
	}
	return strings.TrimSpace(n.Value)
}

func (v *validator) document(d *Declarations, root *yaml.Node) {
	ps := v.pairs(root, "")
	if ps == nil {
		return
	}
	byKey := map[string]pair{}
	for _, p := range ps {
		switch p.key {
		case "schema", "edition", "product", "support_period", "vulnerability_disclosure", "conditions", "provisions":
			byKey[p.key] = p
		default:
			v.add(p.kn, p.key, "unknown key %q (want schema, edition, product, support_period, vulnerability_disclosure, conditions, provisions)", p.key)
		}
	}
	if p, ok := byKey["schema"]; !ok {
		v.add(root, "schema", "schema is missing (want %q)", SchemaV1)
	} else if s := v.str(p.v, "schema"); s != SchemaV1 {
		v.add(p.v, "schema", "schema %q is not supported (want %q)", s, SchemaV1)
	}
	if p, ok := byKey["edition"]; !ok {
		v.add(root, "edition", "edition is missing (want %s or %s); checking against %s", standard.V2_1_1, standard.V3_1_3, d.Edition)
	} else if ed, err := standard.ParseEdition(v.str(p.v, "edition")); err != nil {
		v.add(p.v, "edition", "%v; checking against %s", err, d.Edition)
	} else {
		d.Edition = ed
	}
	if p, ok := byKey["product"]; ok {
		v.product(d, p)
	} else {
		v.add(root, "product", "product is missing: manufacturer, model, hardware_version and firmware_version are required")
	}
	if p, ok := byKey["support_period"]; ok {
		v.supportPeriod(d, p)
	} else {
		v.add(root, "support_period", "support_period is missing: its end date is required (PSTI requirement 3, EN 303 645 5.3-13)")
	}
	if p, ok := byKey["vulnerability_disclosure"]; ok {
		v.disclosure(d, p)
	} else {
		v.add(root, "vulnerability_disclosure", "vulnerability_disclosure is missing: its url is required (PSTI requirement 2, EN 303 645 5.2-1)")
	}
	if p, ok := byKey["conditions"]; ok && !isNull(p.v) {
		v.conditions(d, p.v)
	}
	if p, ok := byKey["provisions"]; ok && !isNull(p.v) {
		v.provisions(d, p.v)
	}
}

func (v *validator) product(d *Declarations, p pair) {
	d.Product.Line = p.kn.Line
	fields := map[string]*string{
		"manufacturer": &d.Product.Manufacturer, "address": &d.Product.Address, "model": &d.Product.Model,
		"hardware_version": &d.Product.HardwareVersion, "firmware_version": &d.Product.FirmwareVersion,
		"product_type": &d.Product.ProductType, "batch": &d.Product.Batch,
	}
	lines := map[string]*yaml.Node{}
	for _, f := range v.pairs(p.v, "product") {
		dst, ok := fields[f.key]
		if !ok {
			v.add(f.kn, "product."+f.key, "unknown key product.%s (want manufacturer, address, model, hardware_version, firmware_version, product_type, batch)", f.key)
			continue
		}
		*dst = v.str(f.v, "product."+f.key)
		lines[f.key] = f.v
	}
	for _, req := range []string{"manufacturer", "model", "hardware_version", "firmware_version"} {
		if *fields[req] != "" {
			continue
		}
		at := lines[req]
		if at == nil || at.Line == 0 {
			at = p.kn
		}
		v.add(at, "product."+req, "product.%s is required", req)
	}
}

func (v *validator) supportPeriod(d *Declarations, p pair) {
	d.SupportPeriod.Line = p.kn.Line
	var end *yaml.Node
	for _, f := range v.pairs(p.v, "support_period") {
		switch f.key {
		case "end":
			end = f.v
			d.SupportPeriod.Line = f.kn.Line
		case "published_at":
			d.SupportPeriod.PublishedAt = v.url(f.v, "support_period.published_at")
		default:
			v.add(f.kn, "support_period."+f.key, "unknown key support_period.%s (want end, published_at)", f.key)
		}
	}
	if end == nil || isNull(end) || v.str(end, "support_period.end") == "" {
		at := end
		if at == nil || at.Line == 0 {
			at = p.kn
		}
		v.add(at, "support_period.end", "support_period.end is required: the last day security updates are provided, as YYYY-MM-DD (PSTI requirement 3, EN 303 645 5.3-13)")
		return
	}
	s := v.str(end, "support_period.end")
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		v.add(end, "support_period.end", "support_period.end %q is not a date (want YYYY-MM-DD, e.g. 2030-12-31)", s)
		return
	}
	d.SupportPeriod.End = t
	today := time.Date(v.now.Year(), v.now.Month(), v.now.Day(), 0, 0, 0, 0, time.UTC)
	if t.Before(today) {
		v.add(end, "support_period.end", "support_period.end %s is in the past: the defined support period has ended", s)
	}
}

// url reads an optional http(s) URL.
func (v *validator) url(n *yaml.Node, path string) string {
	s := v.str(n, path)
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		v.add(n, path, "%s %q is not an http(s) URL", path, s)
	}
	return s
}

func (v *validator) disclosure(d *Declarations, p pair) {
	d.Disclosure.Line = p.kn.Line
	var urlNode *yaml.Node
	for _, f := range v.pairs(p.v, "vulnerability_disclosure") {
		switch f.key {
		case "url":
			urlNode = f.v
			d.Disclosure.Line = f.kn.Line
			d.Disclosure.URL = v.url(f.v, "vulnerability_disclosure.url")
		default:
			v.add(f.kn, "vulnerability_disclosure."+f.key, "unknown key vulnerability_disclosure.%s (want url)", f.key)
		}
	}
	if d.Disclosure.URL == "" {
		at := urlNode
		if at == nil || at.Line == 0 {
			at = p.kn
		}
		v.add(at, "vulnerability_disclosure.url", "vulnerability_disclosure.url is required: where the vulnerability disclosure policy is published (PSTI requirement 2, EN 303 645 5.2-1)")
	}
}

func (v *validator) conditions(d *Declarations, n *yaml.Node) {
	for _, f := range v.pairs(n, "conditions") {
		path := "conditions." + f.key
		q, ok := question(f.key)
		if !ok {
			var keys []string
			for _, q := range QuestionsFor(d.Edition) {
				keys = append(keys, q.Key)
			}
			v.add(f.kn, path, "unknown condition %q (known for %s: %s)", f.key, d.Edition, strings.Join(keys, ", "))
			continue
		}
		if len(q.TermsIn(d.Edition)) == 0 {
			v.add(f.kn, path, "%s settles no condition or feature of EN 303 645 %s: remove it", f.key, d.Edition)
			continue
		}
		if isNull(f.v) {
			continue // left unanswered
		}
		val := deref(f.v)
		b, ok := parseBool(val)
		if !ok {
			v.add(val, path, "%s must be yes or no, not %q", path, val.Value)
			continue
		}
		d.Answers[f.key] = Answer{Value: b, Line: val.Line}
	}
}

func parseBool(n *yaml.Node) (bool, bool) {
	if n.Kind != yaml.ScalarNode {
		return false, false
	}
	switch strings.ToLower(strings.TrimSpace(n.Value)) {
	case "yes", "y", "true":
		return true, true
	case "no", "n", "false":
		return false, true
	}
	return false, false
}

func (v *validator) provisions(d *Declarations, n *yaml.Node) {
	for _, f := range v.pairs(n, "provisions") {
		path := "provisions." + f.key
		p, ok := v.cat.Provision(f.key)
		if !ok {
			v.add(f.kn, path, "unknown provision %q: not in EN 303 645 (see `iotcop provisions --edition %s`)", f.key, d.Edition)
			continue
		}
		s, inEd := p.Editions[d.Edition]
		switch {
		case !inEd:
			v.add(f.kn, path, "provision %s is not part of EN 303 645 %s", f.key, d.Edition)
			continue
		case s.Void():
			v.add(f.kn, path, "provision %s is void in EN 303 645 %s: declare %s instead", f.key, d.Edition, strings.Join(s.ReplacedBy, " and "))
			continue
		case s.ID != f.key:
			v.add(f.kn, path, "provision %s is numbered %s in EN 303 645 %s: use that id", f.key, s.ID, d.Edition)
			continue
		}
		if prev, dup := d.Provisions[p.ID]; dup {
			v.add(f.kn, path, "provision %s is declared twice (first on line %d)", f.key, prev.Line)
			continue
		}
		e := v.entry(f, p.ID, path)
		d.Provisions[p.ID] = e
		if e.Support != "" {
			v.judge(d, p, s, e, f)
		}
	}
}

func (v *validator) entry(f pair, id, path string) Entry {
	e := Entry{Provision: id, Key: f.key, Line: f.kn.Line}
	val := deref(f.v)
	var support *yaml.Node
	switch {
	case isNull(val):
		return e
	case val.Kind == yaml.ScalarNode: // shorthand: "5.1-1: Y"
		support = val
	default:
		for _, g := range v.pairs(val, path) {
			switch g.key {
			case "support":
				support = g.v
			case "justification":
				e.Justification = v.str(g.v, path+".justification")
			case "implementation":
				e.Implementation = v.str(g.v, path+".implementation")
			case "evidence":
				e.Evidence = v.list(g.v, path+".evidence")
			default:
				v.add(g.kn, path+"."+g.key, "unknown key %s.%s (want support, justification, implementation, evidence)", path, g.key)
			}
		}
	}
	if support == nil || isNull(support) {
		return e
	}
	s := deref(support)
	e.Line = s.Line
	if s.ShortTag() == "!!bool" {
		// true/false are not ICS answers; say so rather than guess.
		v.add(s, path+".support", "%s.support must be Y, N or N/A, not %q", path, s.Value)
		return e
	}
	switch strings.ToUpper(strings.TrimSpace(s.Value)) {
	case "Y", "YES":
		e.Support = Supported
	case "N", "NO":
		e.Support = NotSupported
	case "N/A", "NA", "N-A":
		e.Support = NotApplicable
	case "":
	default:
		v.add(s, path+".support", "%s.support must be Y, N or N/A, not %q", path, s.Value)
	}
	return e
}

// list reads a string or a sequence of strings.
func (v *validator) list(n *yaml.Node, path string) []string {
	n = deref(n)
	switch {
	case isNull(n):
		return nil
	case n.Kind == yaml.ScalarNode:
		return []string{strings.TrimSpace(n.Value)}
	case n.Kind == yaml.SequenceNode:
		var out []string
		for _, it := range n.Content {
			if s := v.str(it, path); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	v.add(n, path, "%s must be a list of references", path)
	return nil
}

// judge checks an answered entry against the standard's rules for the
// provision's status in the edition.
func (v *validator) judge(d *Declarations, p standard.Provision, s standard.Status, e Entry, f pair) {
	at := &yaml.Node{Line: e.Line}
	path := "provisions." + f.key + ".support"
	switch e.Support {
	case NotApplicable:
		if s.Level == standard.Mandatory && !s.Conditional() {
			v.add(at, path, "%s is mandatory without conditions in EN 303 645 %s (%s): N/A is not permitted", f.key, d.Edition, s.Code)
			return
		}
		if e.Justification == "" {
			v.add(at, path, "%s is declared N/A without a justification (EN 303 645 %s requires one)", f.key, reporting(d.Edition))
		}
		if s.Conditional() {
			if app, why, _ := d.Applicable(p); app == Applies {
				v.add(at, path, "%s is declared N/A, but the declared conditions make it apply (%s)", f.key, why)
			}
		}
	case NotSupported:
		if s.Level == standard.Recommended && e.Justification == "" {
			v.add(at, path, "recommendation %s is declared not supported without a justification (EN 303 645 %s requires one)", f.key, reporting(d.Edition))
		}
	}
}

func reporting(ed standard.Edition) string {
	if ed == standard.V2_1_1 {
		return "4-1"
	}
	return "5.0-1"
}
