package standard

import (
	"fmt"
	"sort"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// The raw shapes of provisions.yaml; Parse turns them into the typed model.
type rawCatalogue struct {
	SchemaVersion int               `yaml:"schema_version"`
	Generated     string            `yaml:"generated"`
	Description   string            `yaml:"description"`
	Sources       map[string]string `yaml:"sources_summary"`
	Editions      map[string]struct {
		Date               string `yaml:"date"`
		Status             string `yaml:"status"`
		Provisions         int    `yaml:"provisions"`
		ProvisionsActive   int    `yaml:"provisions_active"`
		ProvisionsVoid     int    `yaml:"provisions_void"`
		ReportingProvision string `yaml:"reporting_provision_id"`
	} `yaml:"editions"`
	ConditionsV2 []rawCondition `yaml:"conditions_v2_1_1"`
	ConditionsV3 []rawCondition `yaml:"conditions_v3_1_3"`
	FeaturesV3   []rawCondition `yaml:"features_v3_1_3"`
	Guidelines   []struct {
		Number int    `yaml:"number"`
		Name   string `yaml:"name"`
	} `yaml:"uk_cop_guidelines"`
	PSTI []struct {
		Requirement      int      `yaml:"requirement"`
		Name             string   `yaml:"name"`
		LegalRef         string   `yaml:"legal_ref"`
		Summary          string   `yaml:"summary"`
		DeemedCompliance []string `yaml:"deemed_compliance"`
		EN303645         []string `yaml:"en303645"`
		Kinds            []Kind   `yaml:"assess_kinds"`
		UnverifiedFields []string `yaml:"unverified_fields"`
	} `yaml:"psti_requirements"`
	Statement struct {
		LegalRef       string   `yaml:"legal_ref"`
		MinimumContent []string `yaml:"minimum_content"`
		Retention      string   `yaml:"retention"`
		Unverified     bool     `yaml:"unverified"`
		Note           string   `yaml:"note"`
	} `yaml:"psti_statement_of_compliance"`
	IXIT       []string       `yaml:"ts103701_ixit_v1_1_1"`
	Provisions []rawProvision `yaml:"provisions"`
}

type rawCondition struct {
	N    string `yaml:"n"`
	F    string `yaml:"f"`
	Text string `yaml:"text"`
}

type rawProvision struct {
	ID        string `yaml:"id"`
	Section   string `yaml:"section"`
	Title     string `yaml:"title"`
	Status    string `yaml:"status"`
	StatusV3  string `yaml:"status_v3"`
	Guideline *int   `yaml:"uk_cop_guideline"`
	Editions  map[string]struct {
		ID         string   `yaml:"id"`
		Code       string   `yaml:"code"`
		Level      Level    `yaml:"level"`
		Conditions []string `yaml:"conditions"`
		Features   []string `yaml:"features"`
		ReplacedBy []string `yaml:"replaced_by"`
	} `yaml:"editions"`
	DerivedFrom string    `yaml:"derived_from"`
	Change      string    `yaml:"v3_change"`
	Notes       string    `yaml:"notes"`
	PSTI        yaml.Node `yaml:"psti"`
	Mappings    *struct {
		EN18031    []string `yaml:"en18031"`
		CRAAnnex   []string `yaml:"cra_annex"`
		NISTIR8425 []string `yaml:"nistir8425"`
		Basis      string   `yaml:"basis"`
		Note       string   `yaml:"note"`
		Unverified bool     `yaml:"unverified"`
	} `yaml:"mappings"`
	TS *struct {
		Group string            `yaml:"test_group"`
		Cases map[string]string `yaml:"test_cases"`
		IXIT  []string          `yaml:"ixit"`
		Note  string            `yaml:"note"`
	} `yaml:"ts103701_v1_1_1"`
	Assess struct {
		Kinds      []Kind     `yaml:"kinds"`
		Automation Automation `yaml:"automation"`
		How        string     `yaml:"how"`
	} `yaml:"assess"`
}

// Parse reads a catalogue in the provisions.yaml format and checks that it
// is consistent: unique ids, known editions, levels and kinds, and counts
// per edition equal to the ones the file declares.
func Parse(data []byte) (*Catalogue, error) {
	var raw rawCatalogue
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("parse provision catalogue: %w", err)
	}
	c := &Catalogue{
		SchemaVersion: raw.SchemaVersion,
		Generated:     raw.Generated,
		Description:   raw.Description,
		Sources:       raw.Sources,
		IXIT:          raw.IXIT,
		conditions:    map[Edition][]Condition{},
		byID:          map[string]int{},
		aliases:       map[string]string{},
	}
	if raw.SchemaVersion != 1 {
		return nil, fmt.Errorf("provision catalogue: schema_version %d, want 1", raw.SchemaVersion)
	}
	for name, e := range raw.Editions {
		ed, err := ParseEdition(name)
		if err != nil {
			return nil, fmt.Errorf("provision catalogue: %w", err)
		}
		n := e.Provisions
		if n == 0 {
			n = e.ProvisionsActive
		}
		c.Editions = append(c.Editions, EditionInfo{Edition: ed, Date: e.Date, Status: e.Status,
			Provisions: n, Void: e.ProvisionsVoid, ReportingProvision: e.ReportingProvision})
	}
	sort.Slice(c.Editions, func(i, j int) bool { return c.Editions[i].Edition < c.Editions[j].Edition })
	for _, k := range raw.ConditionsV2 {
		c.conditions[V2_1_1] = append(c.conditions[V2_1_1], Condition{ID: k.N, Text: k.Text})
	}
	for _, k := range raw.ConditionsV3 {
		c.conditions[V3_1_3] = append(c.conditions[V3_1_3], Condition{ID: k.N, Text: k.Text})
	}
	for _, k := range raw.FeaturesV3 {
		c.features = append(c.features, Condition{ID: k.F, Text: k.Text})
	}
	for _, g := range raw.Guidelines {
		c.Guidelines = append(c.Guidelines, Guideline{Number: g.Number, Name: g.Name})
	}
	for _, r := range raw.PSTI {
		c.PSTI = append(c.PSTI, PSTIRequirement{Number: r.Requirement, Name: r.Name, LegalRef: r.LegalRef,
			Summary: r.Summary, DeemedCompliance: r.DeemedCompliance, Provisions: r.EN303645, Kinds: r.Kinds,
			UnverifiedFields: r.UnverifiedFields})
	}
	c.Statement = Statement(raw.Statement)

	for i, rp := range raw.Provisions {
		p, err := c.provision(rp)
		if err != nil {
			return nil, fmt.Errorf("provision catalogue: entry %d (%s): %w", i+1, rp.ID, err)
		}
		if _, dup := c.byID[p.ID]; dup {
			return nil, fmt.Errorf("provision catalogue: provision %s listed twice", p.ID)
		}
		c.byID[p.ID] = len(c.Provisions)
		c.Provisions = append(c.Provisions, p)
	}
	for _, p := range c.Provisions {
		for _, s := range p.Editions {
			if s.ID != p.ID {
				if _, clash := c.byID[s.ID]; clash {
					return nil, fmt.Errorf("provision catalogue: %s is numbered %s in an edition, which is another provision's id", p.ID, s.ID)
				}
				c.aliases[s.ID] = p.ID
			}
			for _, r := range s.ReplacedBy {
				if _, ok := c.byID[r]; !ok {
					return nil, fmt.Errorf("provision catalogue: %s is replaced by unknown provision %s", p.ID, r)
				}
			}
		}
	}
	for _, e := range c.Editions {
		active, void := 0, 0
		for _, p := range c.Provisions {
			if s, ok := p.Editions[e.Edition]; ok {
				if s.Void() {
					void++
				} else {
					active++
				}
			}
		}
		if active != e.Provisions || void != e.Void {
			return nil, fmt.Errorf("provision catalogue: %s declares %d active and %d void provisions, the list has %d and %d",
				e.Edition, e.Provisions, e.Void, active, void)
		}
	}
	return c, nil
}

func (c *Catalogue) provision(rp rawProvision) (Provision, error) {
	p := Provision{ID: rp.ID, Section: rp.Section, Title: rp.Title, DerivedFrom: rp.DerivedFrom,
		Change: rp.Change, Notes: rp.Notes, Editions: map[Edition]Status{},
		Assess: Assessment{Kinds: rp.Assess.Kinds, Automation: rp.Assess.Automation, How: rp.Assess.How}}
	if p.ID == "" || p.Title == "" {
		return p, fmt.Errorf("missing id or title")
	}
	if rp.Guideline != nil {
		p.Guideline = *rp.Guideline
		if _, ok := c.Guideline(p.Guideline); !ok {
			return p, fmt.Errorf("unknown UK CoP guideline %d", p.Guideline)
		}
	}
	for name, e := range rp.Editions {
		ed, err := ParseEdition(name)
		if err != nil {
			return p, err
		}
		s := Status{ID: e.ID, Code: e.Code, Level: e.Level, Conditions: e.Conditions, Features: e.Features, ReplacedBy: e.ReplacedBy}
		if s.ID == "" {
			s.ID = p.ID
		}
		if !s.Void() && s.Level != Mandatory && s.Level != Recommended {
			return p, fmt.Errorf("%s: level %q, want M or R", ed, s.Level)
		}
		for _, n := range s.Conditions {
			if _, ok := c.Condition(ed, n); !ok {
				return p, fmt.Errorf("%s: unknown condition %s", ed, n)
			}
		}
		for _, x := range s.Features {
			if _, ok := c.Feature(x); !ok || ed != V3_1_3 {
				return p, fmt.Errorf("%s: unknown feature %s", ed, x)
			}
		}
		p.Editions[ed] = s
	}
	if len(p.Editions) == 0 {
		return p, fmt.Errorf("in no edition")
	}
	switch p.Assess.Automation {
	case Full, Partial, None:
	default:
		return p, fmt.Errorf("assess.automation %q, want full, partial or none", p.Assess.Automation)
	}
	for _, k := range p.Assess.Kinds {
		switch k {
		case Network, Firmware, Declaration:
		default:
			return p, fmt.Errorf("assess.kinds: unknown kind %q", k)
		}
	}
	if rp.PSTI.Kind == yaml.MappingNode {
		var l struct {
			Requirement      int    `yaml:"requirement"`
			Name             string `yaml:"name"`
			DeemedCompliance string `yaml:"deemed_compliance"`
			Unverified       bool   `yaml:"unverified"`
			Note             string `yaml:"note"`
		}
		if err := rp.PSTI.Decode(&l); err != nil {
			return p, fmt.Errorf("psti: %w", err)
		}
		if _, ok := c.PSTIRequirement(l.Requirement); !ok {
			return p, fmt.Errorf("psti: unknown requirement %d", l.Requirement)
		}
		link := PSTILink(l)
		p.PSTI = &link
	} else if rp.PSTI.Kind != 0 && rp.PSTI.Value != "false" && rp.PSTI.Tag != "!!null" {
		return p, fmt.Errorf("psti: want false or a mapping, got %q", rp.PSTI.Value)
	}
	if m := rp.Mappings; m != nil {
		p.Mappings = &Mappings{EN18031: m.EN18031, CRAAnnex: m.CRAAnnex, NISTIR8425: m.NISTIR8425,
			Basis: m.Basis, Note: m.Note, Unverified: m.Unverified}
	}
	if t := rp.TS; t != nil {
		g := &TestGroup{Group: t.Group, IXIT: t.IXIT, Note: t.Note}
		for n, kind := range t.Cases {
			g.Cases = append(g.Cases, TestCase{Number: n, Kind: kind})
		}
		sort.Slice(g.Cases, func(i, j int) bool {
			a, _ := strconv.Atoi(g.Cases[i].Number)
			b, _ := strconv.Atoi(g.Cases[j].Number)
			return a < b
		})
		p.TS103701 = g
	}
	return p, nil
}
