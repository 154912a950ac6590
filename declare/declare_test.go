package declare

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iotcop/iotcop/standard"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func catalogue(t *testing.T) *standard.Catalogue {
	t.Helper()
	c, err := standard.Load()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func parseFile(t *testing.T, name string) (*Declarations, []Problem) {
	t.Helper()
	path := filepath.Join("testdata", name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return Parse(catalogue(t), path, data, now)
}

// want is one expected problem: its line and a part of its message.
type want struct {
	line int
	msg  string
}

func TestBrokenFiles(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []want
	}{
		{"broken-identity.yaml", []want{
			{1, `schema "iotcop/declarations/v2" is not supported`},
			{3, "product.firmware_version is required"},
			{4, "product.manufacturer is required"},
			{7, "unknown key product.colour"},
		}},
		{"broken-dates.yaml", []want{
			{9, `support_period.end "31/12/2030" is not a date (want YYYY-MM-DD`},
			{10, `support_period.published_at "example.com/support" is not an http(s) URL`},
			{12, `vulnerability_disclosure.url "mailto:security@example.com" is not an http(s) URL`},
		}},
		{"broken-past.yaml", []want{
			{1, "vulnerability_disclosure is missing: its url is required (PSTI requirement 2"},
			{9, "support_period.end 2024-06-30 is in the past"},
		}},
		{"broken-provisions.yaml", []want{
			{15, `unknown provision "5.99-1"`},
			{17, "5.1-1 is declared N/A, but the declared conditions make it apply (C(1) holds: passwords_used declared yes (line 13))"},
			{20, "5.5-1 is mandatory without conditions in EN 303 645 V2.1.1 (M): N/A is not permitted"},
			{23, "5.1-2 is declared N/A without a justification (EN 303 645 4-1 requires one)"},
			{24, "provision 5.1-2A is not part of EN 303 645 V2.1.1"},
			{25, "provision 5.0-1 is numbered 4-1 in EN 303 645 V2.1.1: use that id"},
			{27, "recommendation 5.2-2 is declared not supported without a justification"},
			{29, `provisions.5.3-1.support must be Y, N or N/A, not "maybe"`},
			{32, "unknown key provisions.5.5-2.owner"},
			{33, "provisions.5.5-2 is given twice (first on line 30)"},
			{35, `provisions.5.6-5.support must be Y, N or N/A, not "true"`},
		}},
		{"broken-void-v3.yaml", []want{
			{9, "provision 5.13-1 is void in EN 303 645 V3.1.3: declare 5.13-1A and 5.13-1B instead"},
			{10, "provision 4-1 is numbered 5.0-1 in EN 303 645 V3.1.3: use that id"},
			{15, "5.6-4B is declared N/A without a justification (EN 303 645 5.0-1 requires one)"},
		}},
		{"broken-conditions.yaml", []want{
			{13, `conditions.passwords_used must be yes or no, not "sometimes"`},
			{14, `unknown condition "has_wings" (known for V2.1.1: passwords_used,`},
			{15, "debug_interfaces settles no condition or feature of EN 303 645 V2.1.1"},
			{16, "conditions.passwords_used is given twice (first on line 13)"},
			{17, `unknown key "extra"`},
		}},
		{"broken-syntax.yaml", []want{{4, "not valid YAML"}}},
		{"broken-shape.yaml", []want{{1, "the file must be a mapping"}}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			_, probs := parseFile(t, tc.file)
			path := filepath.Join("testdata", tc.file)
			if len(probs) != len(tc.want) {
				t.Errorf("%d problems, want %d:\n%s", len(probs), len(tc.want), list(probs))
			}
			for i, w := range tc.want {
				if i >= len(probs) {
					break
				}
				got := probs[i].String()
				prefix := fmt.Sprintf("%s:%d: ", path, w.line)
				if !strings.HasPrefix(got, prefix) || !strings.Contains(got, w.msg) {
					t.Errorf("problem %d:\n got  %s\n want %s…%s", i, got, prefix, w.msg)
				}
			}
		})
	}
}

func list(probs []Problem) string {
	var b strings.Builder
	for _, p := range probs {
		b.WriteString("  " + p.String() + "\n")
	}
	return b.String()
}

func TestValidFile(t *testing.T) {
	d, probs, err := Load(filepath.Join("testdata", "valid-v2.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(probs) != 0 {
		t.Fatalf("problems in a valid file:\n%s", list(probs))
	}
	if d.Edition != standard.V2_1_1 || d.Product.Manufacturer != "Example Devices Ltd" || d.Product.FirmwareVersion != "1.4.2" ||
		d.Product.ProductType != "smart camera" {
		t.Errorf("product %+v", d.Product)
	}
	if d.SupportPeriod.End != time.Date(2099, 12, 31, 0, 0, 0, 0, time.UTC) || d.SupportPeriod.Line != 11 ||
		d.SupportPeriod.PublishedAt != "https://example.com/support" {
		t.Errorf("support period %+v", d.SupportPeriod)
	}
	if d.Disclosure.URL != "https://example.com/.well-known/security.txt" || d.Disclosure.Line != 14 {
		t.Errorf("disclosure %+v", d.Disclosure)
	}
	if a := d.Answers["passwords_used"]; !a.Value || a.Line != 16 {
		t.Errorf("passwords_used %+v", a)
	}
	if a, ok := d.Answers["constrained_device"]; !ok || a.Value {
		t.Errorf("constrained_device %+v", a)
	}
	e, ok := d.Entry("5.1-1")
	if !ok || e.Support != Supported || e.Line != 25 || len(e.Evidence) != 2 || e.Evidence[1] != "https://example.com/psti" ||
		!strings.Contains(e.Implementation, "label") {
		t.Errorf("5.1-1 entry %+v", e)
	}
	if e, ok := d.Entry("5.0-1"); !ok || e.Key != "4-1" || e.Support != Supported {
		t.Errorf("4-1 by catalogue id: %+v %v", e, ok)
	}
	if e, ok := d.Entry("4-1"); !ok || e.Provision != "5.0-1" {
		t.Errorf("4-1 by edition id: %+v %v", e, ok)
	}
	if e, ok := d.Entry("5.5-1"); !ok || e.Support != Supported {
		t.Errorf("shorthand 5.5-1: Y: %+v", e)
	}
	if _, ok := d.Entry("5.6-1"); ok {
		t.Error("5.6-1 has no answer but counts as declared")
	}
	if e, _ := d.Entry("5.2-2"); e.Support != NotSupported || e.Justification == "" {
		t.Errorf("5.2-2: %+v", e)
	}
	declared, total := d.Declared()
	if declared != 6 || total != 68 {
		t.Errorf("declared %d of %d, want 6 of 68", declared, total)
	}
}

func TestApplicable(t *testing.T) {
	cat := catalogue(t)
	parse := func(ed, conds string) *Declarations {
		t.Helper()
		doc := fmt.Sprintf("schema: %s\nedition: %s\nconditions:\n%s", SchemaV1, ed, conds)
		d, _ := Parse(cat, "t.yaml", []byte(doc), now)
		return d
	}
	for _, tc := range []struct {
		name, ed, conds, provision string
		want                       Applicability
		why                        string
	}{
		{"unconditional", "V2.1.1", "", "5.5-1", Applies, "unconditional"},
		{"C(1) unanswered", "V2.1.1", "", "5.1-1", Unknown, "not declared: C(1) passwords are used"},
		{"C(1) yes", "V2.1.1", "  passwords_used: yes\n", "5.1-1", Applies, "C(1) holds"},
		{"C(1) no", "V2.1.1", "  passwords_used: no\n", "5.1-1", DoesNotApply, "C(1) (passwords are used) does not hold: passwords_used declared no"},
		{"negated C(5) not constrained", "V2.1.1", "  constrained_device: yes\n", "5.1-5", DoesNotApply, "C(5)"},
		{"negated C(5) holds", "V2.1.1", "  constrained_device: no\n", "5.1-5", Applies, "C(5) holds: constrained_device declared no"},
		{"negated C(3) updatable", "V2.1.1", "  software_updatable: yes\n  constrained_device: yes\n", "5.3-15", DoesNotApply, "C(3)"},
		{"AND of C(3,4)", "V2.1.1", "  software_updatable: no\n  constrained_device: yes\n", "5.3-15", Applies, "C(4) holds"},
		{"AND partly unknown", "V2.1.1", "  software_updatable: no\n", "5.3-15", Unknown, "C(4)"},
		{"V3 feature a", "V3.1.3", "  passwords_used: no\n", "5.1-1", DoesNotApply, "F(a)"},
		{"V3 C(14) F(e)", "V3.1.3", "  constraint_prevents_brute_force_protection: no\n  network_authentication: yes\n", "5.1-5", Applies, "F(e) holds"},
		{"V3 C(14) prevented", "V3.1.3", "  constraint_prevents_brute_force_protection: yes\n  network_authentication: yes\n", "5.1-5", DoesNotApply, "C(14)"},
		{"not in edition", "V2.1.1", "", "5.1-2A", DoesNotApply, "not part of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := parse(tc.ed, tc.conds)
			p, ok := cat.Provision(tc.provision)
			if !ok {
				t.Fatalf("no provision %s", tc.provision)
			}
			got, why, _ := d.Applicable(p)
			if got != tc.want || !strings.Contains(why, tc.why) {
				t.Errorf("got %v %q, want %v containing %q", got, why, tc.want, tc.why)
			}
		})
	}
}

// Every question settles at least one real condition or feature, and every
// condition and feature of both editions is settled by some question.
func TestQuestionsCoverAnnexB(t *testing.T) {
	cat := catalogue(t)
	for _, ed := range []standard.Edition{standard.V2_1_1, standard.V3_1_3} {
		settled := map[string]bool{}
		for _, q := range QuestionsFor(ed) {
			for _, term := range q.TermsIn(ed) {
				var ok bool
				if term.Feature {
					_, ok = cat.Feature(term.ID)
				} else {
					_, ok = cat.Condition(ed, term.ID)
				}
				if !ok {
					t.Errorf("%s: %s settles unknown %s", ed, q.Key, term)
				}
				settled[term.String()] = true
			}
		}
		for _, k := range cat.Conditions(ed) {
			if !settled["C("+k.ID+")"] {
				t.Errorf("%s: no question settles condition %s (%s)", ed, k.ID, k.Text)
			}
		}
		for _, k := range cat.Features(ed) {
			if !settled["F("+k.ID+")"] {
				t.Errorf("%s: no question settles feature %s (%s)", ed, k.ID, k.Text)
			}
		}
	}
}

// An untouched template lists every provision of its edition and has no
// problem except the identity fields left for the maker to fill in.
func TestTemplate(t *testing.T) {
	cat := catalogue(t)
	for _, ed := range []standard.Edition{standard.V2_1_1, standard.V3_1_3} {
		t.Run(string(ed), func(t *testing.T) {
			tpl, err := Template(ed)
			if err != nil {
				t.Fatal(err)
			}
			d, probs := Parse(cat, "tpl.yaml", tpl, now)
			if d == nil {
				t.Fatalf("template does not parse: %v", probs)
			}
			var msgs []string
			for _, p := range probs {
				msgs = append(msgs, p.Message)
			}
			joined := strings.Join(msgs, "\n")
			if len(probs) != 6 || strings.Count(joined, " is required") != 6 {
				t.Errorf("template problems, want only the 6 required fields:\n%s", list(probs))
			}
			if d.Edition != ed {
				t.Errorf("edition %s", d.Edition)
			}
			active := cat.InEdition(ed)
			if len(d.Provisions) != len(active) {
				t.Errorf("template lists %d provisions, edition has %d", len(d.Provisions), len(active))
			}
			for _, p := range active {
				if _, ok := d.Provisions[p.ID]; !ok {
					t.Errorf("template lacks %s", p.ID)
				}
				if !strings.Contains(string(tpl), p.Title) {
					t.Errorf("template lacks the title of %s", p.ID)
				}
			}
			if declared, _ := d.Declared(); declared != 0 {
				t.Errorf("template declares %d provisions", declared)
			}
			for _, q := range QuestionsFor(ed) {
				if !strings.Contains(string(tpl), "\n  "+q.Key+":\n") {
					t.Errorf("template lacks condition %s", q.Key)
				}
			}
		})
	}
	if _, err := TemplateFrom(cat, "V9"); err == nil {
		t.Error("unknown edition accepted")
	}
}

// A filled-in template validates cleanly.
func TestTemplateFilledIn(t *testing.T) {
	tpl, err := Template(standard.V3_1_3)
	if err != nil {
		t.Fatal(err)
	}
	s := string(tpl)
	for old, new := range map[string]string{
		`manufacturer: ""`:     `manufacturer: "Example Devices Ltd"`,
		`model: ""`:            `model: "CamOne"`,
		`hardware_version: ""`: `hardware_version: "B"`,
		`firmware_version: ""`: `firmware_version: "2.0"`,
		`end: ""`:              `end: "2031-01-31"`,
		`url: ""`:              `url: "https://example.com/.well-known/security.txt"`,
		"  passwords_used:\n":  "  passwords_used: yes\n",
	} {
		if !strings.Contains(s, old) {
			t.Fatalf("template lacks %q", old)
		}
		s = strings.Replace(s, old, new, 1)
	}
	s = strings.Replace(s, "  5.1-1:\n    support:\n", "  5.1-1:\n    support: Y\n", 1)
	d, probs := Parse(catalogue(t), "filled.yaml", []byte(s), now)
	if len(probs) != 0 {
		t.Fatalf("problems:\n%s", list(probs))
	}
	if e, ok := d.Entry("5.1-1"); !ok || e.Support != Supported {
		t.Errorf("5.1-1: %+v", e)
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, _, err := Load(filepath.Join(t.TempDir(), "none.yaml")); err == nil {
		t.Fatal("missing file gave no error")
	}
}

// FuzzParse: any bytes give problems or declarations, never a panic, and
// every problem has a line.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"valid-v2.yaml", "broken-provisions.yaml", "broken-conditions.yaml", "broken-void-v3.yaml", "broken-syntax.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("provisions: &a\n  5.1-1: *a\n"))
	f.Add([]byte("edition: [V2.1.1]\nproduct: 3\n"))
	cat, err := standard.Load()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, probs := Parse(cat, "f.yaml", data, now)
		if d == nil && len(probs) == 0 {
			t.Fatal("no declarations and no problem")
		}
		for _, p := range probs {
			if p.Line < 1 {
				t.Fatalf("problem without a line: %+v", p)
			}
		}
	})
}
