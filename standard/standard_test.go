package standard

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func load(t *testing.T) *Catalogue {
	t.Helper()
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The embedded copy must stay identical to the shared catalogue when that
// is present (it is on developer machines and in CI).
func TestEmbeddedCopyMatchesShared(t *testing.T) {
	shared, err := os.ReadFile("../../shared/standards/provisions.yaml")
	if err != nil {
		t.Skipf("shared catalogue not present: %v", err)
	}
	if !bytes.Equal(shared, provisionsYAML) {
		t.Fatal("standard/data/provisions.yaml differs from shared/standards/provisions.yaml: copy it again and update data/SOURCES.md")
	}
}

// TestCountsMatchDeclared reads the counts the YAML declares for itself
// with a plain generic decode, independent of Parse.
func TestCountsMatchDeclared(t *testing.T) {
	var doc struct {
		Editions map[string]map[string]any `yaml:"editions"`
	}
	if err := yaml.Unmarshal(provisionsYAML, &doc); err != nil {
		t.Fatal(err)
	}
	c := load(t)
	for _, tc := range []struct {
		ed          Edition
		activeKey   string
		void        string
		wantNonZero bool
	}{
		{V2_1_1, "provisions", "", true},
		{V3_1_3, "provisions_active", "provisions_void", true},
	} {
		declared := doc.Editions[string(tc.ed)]
		want, _ := declared[tc.activeKey].(int)
		if want == 0 {
			t.Fatalf("%s: no declared count under %q", tc.ed, tc.activeKey)
		}
		if got := len(c.InEdition(tc.ed)); got != want {
			t.Errorf("%s: %d active provisions, the YAML declares %d", tc.ed, got, want)
		}
		if tc.void != "" {
			wantVoid, _ := declared[tc.void].(int)
			all := len(c.Filter(Filter{Edition: tc.ed, IncludeVoid: true}))
			if all-want != wantVoid {
				t.Errorf("%s: %d void provisions, the YAML declares %d", tc.ed, all-want, wantVoid)
			}
		}
		info, ok := c.Edition(tc.ed)
		if !ok || info.Provisions != want {
			t.Errorf("%s: EditionInfo %+v", tc.ed, info)
		}
	}
	if len(c.Provisions) != 84 {
		t.Errorf("%d provisions in the catalogue, want 84", len(c.Provisions))
	}
}

// Every provision id a check or analysis cites must exist.
func TestProvisionsUsedByChecksExist(t *testing.T) {
	c := load(t)
	for _, id := range []string{"5.1-1", "5.5-1", "5.4-1", "5.6-1", "5.6-2", "5.2-1", "5.13-1", "5.9-1", "5.5-4",
		"5.4-3", "5.6-4", "5.6-9", "5.2-3", "5.3-8"} {
		p, ok := c.Provision(id)
		if !ok {
			t.Errorf("provision %s is missing", id)
			continue
		}
		if _, ok := p.In(V2_1_1); !ok {
			t.Errorf("provision %s is not active in V2.1.1", id)
		}
	}
}

func TestLookups(t *testing.T) {
	c := load(t)
	p, ok := c.Provision("4-1")
	if !ok || p.ID != "5.0-1" || p.IDIn(V2_1_1) != "4-1" || p.IDIn(V3_1_3) != "5.0-1" {
		t.Fatalf("alias 4-1: %v %+v", ok, p.ID)
	}
	p, _ = c.Provision("5.1-1")
	s2, _ := p.In(V2_1_1)
	s3, _ := p.In(V3_1_3)
	if s2.Code != "M C(1)" || s2.Level != Mandatory || len(s2.Conditions) != 1 || s2.Conditions[0] != "1" || !s2.Conditional() {
		t.Errorf("5.1-1 V2.1.1 status %+v", s2)
	}
	if s3.Code != "M F(a)" || len(s3.Features) != 1 || s3.Features[0] != "a" {
		t.Errorf("5.1-1 V3.1.3 status %+v", s3)
	}
	if p.Guideline != 1 || p.PSTI == nil || p.PSTI.Requirement != 1 {
		t.Errorf("5.1-1 guideline/PSTI: %d %+v", p.Guideline, p.PSTI)
	}
	if p.TS103701 == nil || p.TS103701.Group != "5.1-1" || len(p.TS103701.Cases) != 2 || p.TS103701.Cases[1].Kind != "functional" {
		t.Errorf("5.1-1 TS 103 701: %+v", p.TS103701)
	}
	if !p.HasKind(Network) || !p.HasKind(Firmware) || p.Assess.Automation != Partial {
		t.Errorf("5.1-1 assess: %+v", p.Assess)
	}
	if u := p.Unverified(); len(u) != 1 || u[0] != "mappings" {
		t.Errorf("5.1-1 unverified parts %v", u)
	}
	p, _ = c.Provision("5.13-1")
	if _, ok := p.In(V3_1_3); ok {
		t.Error("5.13-1 should be void in V3.1.3")
	}
	if s := p.Editions[V3_1_3]; !s.Void() || strings.Join(s.ReplacedBy, ",") != "5.13-1A,5.13-1B" {
		t.Errorf("5.13-1 V3.1.3: %+v", s)
	}
	p, _ = c.Provision("5.3-13")
	if p.PSTI == nil || p.PSTI.Requirement != 3 || !p.PSTI.Unverified || !strings.Contains(strings.Join(p.Unverified(), ","), "psti") {
		t.Errorf("5.3-13 PSTI link should be flagged unverified: %+v", p.PSTI)
	}
	if txt, ok := c.Condition(V2_1_1, "13"); !ok || !strings.Contains(txt, "debug") {
		t.Errorf("condition 13: %q", txt)
	}
	if txt, ok := c.Feature("aa"); !ok || !strings.Contains(txt, "aggregate") {
		t.Errorf("feature aa: %q", txt)
	}
	if len(c.Features(V2_1_1)) != 0 || len(c.Features(V3_1_3)) != 27 {
		t.Errorf("features: %d / %d", len(c.Features(V2_1_1)), len(c.Features(V3_1_3)))
	}
	if g, ok := c.Guideline(2); !ok || !strings.Contains(g.Name, "disclosure") {
		t.Errorf("guideline 2: %+v", g)
	}
	r, ok := c.PSTIRequirement(3)
	if !ok || strings.Join(r.Provisions, ",") != "5.3-13" || len(r.UnverifiedFields) == 0 {
		t.Errorf("PSTI 3: %+v", r)
	}
	if !c.Statement.Unverified || len(c.Statement.MinimumContent) < 5 {
		t.Errorf("statement of compliance: %+v", c.Statement)
	}
	if _, ok := c.Provision("9.9-9"); ok {
		t.Error("unknown id found")
	}
}

func TestFilter(t *testing.T) {
	c := load(t)
	yes, no := true, false
	ids := func(ps []Provision) string {
		var s []string
		for _, p := range ps {
			s = append(s, p.ID)
		}
		return strings.Join(s, " ")
	}
	for _, tc := range []struct {
		name string
		f    Filter
		want string // exact ids, or "" to check count only
		n    int
	}{
		{"guideline 1 V2", Filter{Edition: V2_1_1, Guideline: 1}, "5.1-1 5.1-2 5.1-3 5.1-4 5.1-5", 0},
		{"guideline 1 V3", Filter{Edition: V3_1_3, Guideline: 1}, "5.1-1 5.1-2 5.1-2A 5.1-3 5.1-4 5.1-5", 0},
		{"psti 1", Filter{PSTI: 1}, "5.1-1 5.1-2", 0},
		{"psti 3", Filter{Edition: V2_1_1, PSTI: 3}, "5.3-13", 0},
		{"void in V3", Filter{Edition: V3_1_3, IncludeVoid: true, Guideline: 13}, "5.13-1 5.13-1A 5.13-1B", 0},
		{"not void in V3", Filter{Edition: V3_1_3, Guideline: 13}, "5.13-1A 5.13-1B", 0},
		{"full automation network V2", Filter{Edition: V2_1_1, Automation: Full, Kind: Network}, "5.1-5 5.3-10 5.5-1 5.5-4 5.5-5 5.5-7 5.6-1 5.6-2", 0},
		{"firmware only kinds", Filter{Kind: Firmware, Automation: Full}, "5.1-5 5.3-10 5.4-3 5.5-1 5.6-1", 0},
		{"mandatory unconditional V2", Filter{Edition: V2_1_1, Level: Mandatory, Conditional: &no}, "", 20},
		{"conditional V2", Filter{Edition: V2_1_1, Conditional: &yes}, "", 23},
		{"recommended V2", Filter{Edition: V2_1_1, Level: Recommended}, "", 35},
		{"declaration V2", Filter{Edition: V2_1_1, Kind: Declaration}, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := c.Filter(tc.f)
			if tc.want != "" && ids(got) != tc.want {
				t.Errorf("got %s\nwant %s", ids(got), tc.want)
			}
			if tc.n != 0 && len(got) != tc.n {
				t.Errorf("got %d provisions, want %d: %s", len(got), tc.n, ids(got))
			}
			if tc.want == "" && tc.n == 0 && len(got) == 0 {
				t.Error("no provision matched")
			}
			for _, p := range got {
				if !tc.f.matches(p) {
					t.Errorf("%s returned but does not match", p.ID)
				}
			}
		})
	}
	// M + R per edition add up to the active count.
	for _, ed := range []Edition{V2_1_1, V3_1_3} {
		m := len(c.Filter(Filter{Edition: ed, Level: Mandatory}))
		r := len(c.Filter(Filter{Edition: ed, Level: Recommended}))
		if m+r != len(c.InEdition(ed)) {
			t.Errorf("%s: %d M + %d R != %d", ed, m, r, len(c.InEdition(ed)))
		}
	}
}

func TestParseEdition(t *testing.T) {
	for in, want := range map[string]Edition{"V2.1.1": V2_1_1, "2.1.1": V2_1_1, " v3.1.3 ": V3_1_3} {
		if got, err := ParseEdition(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "V2", "3.1.2", "V2.1.1x"} {
		if _, err := ParseEdition(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// Parse rejects inconsistent catalogues rather than mis-assess.
func TestParseRejects(t *testing.T) {
	orig := string(provisionsYAML)
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"count", "provisions: 68", "provisions: 67", "declares 67 active"},
		{"duplicate", "- id: 5.1-2\n", "- id: 5.1-1\n", "listed twice"},
		{"level", "      code: M C(1)\n      level: M\n", "      code: M C(1)\n      level: X\n", "level \"X\""},
		{"automation", "    automation: full\n", "    automation: always\n", "assess.automation"},
		{"condition", "      conditions:\n      - '1'\n", "      conditions:\n      - '99'\n", "unknown condition 99"},
		{"schema", "schema_version: 1", "schema_version: 2", "schema_version 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(orig, tc.old) {
				t.Fatalf("fixture text %q not in catalogue", tc.old)
			}
			_, err := Parse([]byte(strings.Replace(orig, tc.old, tc.new, 1)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestWriteTableAndJSON(t *testing.T) {
	c := load(t)
	ps := c.Filter(Filter{Edition: V2_1_1, Guideline: 2})
	var buf bytes.Buffer
	if err := WriteTable(&buf, V2_1_1, ps); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"STATUS (V2.1.1)", "5.2-1", "5.2-3", "declaration", "3 provisions", "paraphrases"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	buf.Reset()
	p, _ := c.Provision("5.0-1")
	if err := WriteJSON(&buf, V2_1_1, []Provision{p}); err != nil {
		t.Fatal(err)
	}
	var got []ListEntry
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != "4-1" || got[0].CatalogueID != "5.0-1" || got[0].Status != "M" {
		t.Errorf("json entry %+v", got)
	}
}
