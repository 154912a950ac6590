package report

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/iotcop/iotcop/assess"
	"github.com/iotcop/iotcop/declare"
	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/standard"
)

var statementNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func loadDecls(t *testing.T, cat *standard.Catalogue, path string) *declare.Declarations {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := declare.Parse(cat, path, data, statementNow)
	if d == nil {
		t.Fatalf("%s did not parse", path)
	}
	return d
}

func kinds(is []StatementIssue) map[string][]string {
	out := map[string][]string{}
	for _, i := range is {
		out[i.Kind] = append(out[i.Kind], i.Item)
	}
	return out
}

func TestWriteStatement(t *testing.T) {
	t.Parallel()
	cat, err := standard.Load()
	if err != nil {
		t.Fatal(err)
	}
	signed := Signatory{Name: "Jane Example", Function: "Head of Product Security", Place: "Exampleton",
		Date: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)}
	defaultCred := finding.Finding{Check: finding.CheckDefaultCredentials, Provisions: []string{"5.1-1"}, Severity: finding.Critical,
		Title: "telnet accepts a default credential", Host: "127.0.0.2", Port: 23, Transport: "tcp", Protocol: "telnet"}
	tests := []struct {
		name     string
		decls    string
		findings []finding.Finding
		sig      Signatory
		expire   bool
		noAssess bool
		golden   string
		want     map[string][]string
		contains []string
	}{
		{name: "complete", decls: "testdata/statement-complete.yaml", sig: signed, golden: "statement-complete.md",
			want:     map[string][]string{},
			contains: []string{"**Status: complete.**", "smart camera", "CAM1-2026-04", "1 High Street", "31 December 2031", "Jane Example", "EN 303 645 V2.1.1 (2020-06)", "prepared by or on behalf of the manufacturer"}},
		{name: "missing items", decls: "testdata/statement-missing.yaml", golden: "statement-missing.md",
			want: map[string][]string{
				IssueMissing: {"Product type", "Batch", "Manufacturer address", "Defined support period",
					"Name of signatory", "Function of signatory", "Place of issue", "Date of issue"},
				IssueNotEstablished: {"Compliance with PSTI requirement 1 (Passwords)",
					"Compliance with PSTI requirement 2 (Information on how to report security issues)",
					"Compliance with PSTI requirement 3 (Information on minimum security update periods)"},
			},
			contains: []string{"NOT READY TO SIGN"}},
		{name: "contradiction", decls: "testdata/statement-complete.yaml", sig: signed, golden: "statement-contradiction.md",
			findings: []finding.Finding{defaultCred}, expire: true,
			want: map[string][]string{IssueContradicted: {"Compliance with PSTI requirement 1 (Passwords)",
				"Compliance with PSTI requirement 3 (Information on minimum security update periods)", "Defined support period"}},
			contains: []string{"5.1-1 FAIL", "5.3-13 FAIL", "NOT READY TO SIGN"}},
		{name: "support period over, assessment not failing it", decls: "testdata/statement-complete.yaml", sig: signed, expire: true, noAssess: true,
			want:     map[string][]string{IssueContradicted: {"Defined support period"}, IssueNotEstablished: {"Compliance with the security requirements"}},
			contains: []string{"already past on 2026-03-02"}},
		{name: "no assessment", decls: "testdata/statement-complete.yaml", sig: signed, noAssess: true,
			want: map[string][]string{IssueNotEstablished: {"Compliance with the security requirements"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := loadDecls(t, cat, tc.decls)
			if tc.expire {
				d.SupportPeriod.End = time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)
			}
			var a *assess.Assessment
			if !tc.noAssess {
				in := assess.Input{Declarations: d, Now: statementNow, Findings: tc.findings}
				if len(tc.findings) > 0 {
					in.ChecksRun = []string{finding.CheckDefaultCredentials}
					in.Targets.Devices = []finding.Device{{Address: "127.0.0.2", Services: []finding.Service{{Port: 23, Transport: "tcp", Protocol: "telnet"}}}}
				}
				if a, err = assess.Assess(cat, in); err != nil {
					t.Fatal(err)
				}
			}
			opts := StatementOptions{Signatory: tc.sig, Catalogue: cat}
			issues, err := StatementIssues(d, a, opts)
			if err != nil {
				t.Fatal(err)
			}
			got := kinds(issues)
			for _, k := range []string{IssueMissing, IssueContradicted, IssueNotEstablished} {
				if strings.Join(got[k], "\n") != strings.Join(tc.want[k], "\n") {
					t.Errorf("%s items:\n got %q\nwant %q", k, got[k], tc.want[k])
				}
			}
			var buf bytes.Buffer
			if err := WriteStatement(&buf, d, a, opts); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			for _, s := range tc.contains {
				if !strings.Contains(out, s) {
					t.Errorf("statement lacks %q", s)
				}
			}
			for _, is := range issues {
				if !strings.Contains(out, "**"+is.Kind+"** — "+is.Detail) {
					t.Errorf("issue %s not flagged in place", is)
				}
			}
			if tc.golden != "" {
				golden(t, tc.golden, buf.Bytes())
			}
		})
	}
}

func TestWriteStatementNothing(t *testing.T) {
	t.Parallel()
	issues, err := StatementIssues(nil, nil, StatementOptions{})
	if err != nil {
		t.Fatal(err)
	}
	k := kinds(issues)
	if len(k[IssueMissing]) != 10 || len(k[IssueNotEstablished]) != 1 {
		t.Errorf("issues without declarations or assessment: %v", issues)
	}
}
