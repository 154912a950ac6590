package baseline

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/iotcop/iotcop/finding"
)

var update = flag.Bool("update", false, "rewrite golden files")

func live(check, title string, sev finding.Severity, host string, port int) finding.Finding {
	return finding.Finding{Check: check, Title: title, Severity: sev, Host: host, Port: port, Transport: "tcp"}
}

func fw(check, title string, sev finding.Severity, path string) finding.Finding {
	return finding.Finding{Check: check, Title: title, Severity: sev, Path: path}
}

func titles(fs []finding.Finding) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, f.Title)
	}
	return out
}

func TestCompare(t *testing.T) {
	t.Parallel()
	cred := live("default-credentials", "telnet accepts a default credential", finding.Critical, "127.0.0.2", 23)
	clear := live("cleartext-protocol", "telnet in clear", finding.Medium, "127.0.0.2", 23)
	tests := []struct {
		name                  string
		old, new              []finding.Finding
		wantNew, wantFixed    []string
		wantUnchanged         int
		wantTitleWas, wantSev bool
	}{
		{name: "identical", old: []finding.Finding{cred, clear}, new: []finding.Finding{clear, cred}, wantUnchanged: 2},
		{name: "all new", new: []finding.Finding{cred}, wantNew: []string{cred.Title}},
		{name: "all fixed", old: []finding.Finding{cred, clear}, wantFixed: []string{cred.Title, clear.Title}},
		{name: "other host is another finding",
			old:     []finding.Finding{cred},
			new:     []finding.Finding{live("default-credentials", cred.Title, finding.Critical, "127.0.0.3", 23)},
			wantNew: []string{cred.Title}, wantFixed: []string{cred.Title}},
		{name: "other port is another finding",
			old:     []finding.Finding{cred},
			new:     []finding.Finding{live("default-credentials", cred.Title, finding.Critical, "127.0.0.2", 2323)},
			wantNew: []string{cred.Title}, wantFixed: []string{cred.Title}},
		{name: "count in title moved",
			old:           []finding.Finding{fw("binary-hardening", "no PIE (of 12 ELF files)", finding.Low, "/bin")},
			new:           []finding.Finding{fw("binary-hardening", "no PIE (of 13 ELF files)", finding.Low, "/bin")},
			wantUnchanged: 1, wantTitleWas: true},
		{name: "different advisory is not the same finding",
			old:       []finding.Finding{fw("known-vulnerability", "busybox affected by CVE-2021-1", finding.High, "/bin/busybox")},
			new:       []finding.Finding{fw("known-vulnerability", "busybox affected by CVE-2022-2", finding.High, "/bin/busybox")},
			wantNew:   []string{"busybox affected by CVE-2022-2"},
			wantFixed: []string{"busybox affected by CVE-2021-1"}},
		{name: "ambiguous loose match is not paired",
			old: []finding.Finding{fw("embedded-secret", "secret 1", finding.High, "/etc/a")},
			new: []finding.Finding{fw("embedded-secret", "secret 2", finding.High, "/etc/a"),
				fw("embedded-secret", "secret 3", finding.High, "/etc/a")},
			wantNew: []string{"secret 2", "secret 3"}, wantFixed: []string{"secret 1"}},
		{name: "severity change stays unchanged",
			old:           []finding.Finding{clear},
			new:           []finding.Finding{live(clear.Check, clear.Title, finding.High, clear.Host, clear.Port)},
			wantUnchanged: 1, wantSev: true},
		{name: "duplicates count once each",
			old: []finding.Finding{cred}, new: []finding.Finding{cred, cred},
			wantUnchanged: 1, wantNew: []string{cred.Title}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := Compare(&finding.Report{Findings: tc.old}, &finding.Report{Findings: tc.new})
			if got := titles(d.NewFindings); !slices.Equal(got, orEmpty(tc.wantNew)) {
				t.Errorf("new = %q, want %q", got, tc.wantNew)
			}
			if got := titles(d.Fixed); !slices.Equal(got, orEmpty(tc.wantFixed)) {
				t.Errorf("fixed = %q, want %q", got, tc.wantFixed)
			}
			if len(d.Unchanged) != tc.wantUnchanged {
				t.Fatalf("unchanged = %d, want %d", len(d.Unchanged), tc.wantUnchanged)
			}
			if tc.wantUnchanged == 1 {
				if got := d.Unchanged[0].TitleWas != ""; got != tc.wantTitleWas {
					t.Errorf("title_was set = %v, want %v", got, tc.wantTitleWas)
				}
				if got := d.Unchanged[0].SeverityWas != nil; got != tc.wantSev {
					t.Errorf("severity_was set = %v, want %v", got, tc.wantSev)
				}
			}
			if d.VerdictsCompared {
				t.Error("verdicts compared without verdicts")
			}
			if d.Summary.New != len(d.NewFindings) || d.Summary.Fixed != len(d.Fixed) || d.Summary.Unchanged != len(d.Unchanged) {
				t.Errorf("summary %+v does not match the lists", d.Summary)
			}
		})
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func TestCompareVerdicts(t *testing.T) {
	t.Parallel()
	v := func(id, verdict string) finding.Verdict {
		return finding.Verdict{Provision: id, Edition: "V2.1.1", Verdict: verdict}
	}
	old := &finding.Report{Verdicts: []finding.Verdict{v("5.1-1", "FAIL"), v("5.2-1", "PASS"), v("5.3-1", "PASS")}}
	new := &finding.Report{Verdicts: []finding.Verdict{v("5.1-1", "PASS"), v("5.2-1", "PASS"), v("5.4-1", "FAIL")}}
	d := Compare(old, new)
	want := []VerdictChange{
		{Provision: "5.1-1", Edition: "V2.1.1", Old: "FAIL", New: "PASS"},
		{Provision: "5.4-1", Edition: "V2.1.1", New: "FAIL"},
		{Provision: "5.3-1", Edition: "V2.1.1", Old: "PASS"},
	}
	if diff := cmp.Diff(want, d.Verdicts); diff != "" {
		t.Errorf("verdict changes (-want +got):\n%s", diff)
	}
	if !d.VerdictsCompared {
		t.Error("verdicts not compared")
	}
	if d := Compare(old, &finding.Report{}); d.VerdictsCompared || len(d.Verdicts) != 0 {
		t.Errorf("verdicts compared against a report without verdicts: %+v", d.Verdicts)
	}
}

func TestCountNew(t *testing.T) {
	t.Parallel()
	d := &Diff{NewFindings: []finding.Finding{{Severity: finding.Critical}, {Severity: finding.Medium}, {Severity: finding.Low}}}
	for _, tc := range []struct {
		threshold finding.Severity
		want      int
	}{{finding.Critical, 1}, {finding.High, 1}, {finding.Medium, 2}, {finding.Info, 3}} {
		if got := d.CountNew(tc.threshold); got != tc.want {
			t.Errorf("CountNew(%s) = %d, want %d", tc.threshold, got, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, doc string
		ok        bool
	}{
		{"report", `{"schema":"iotcop/report/v1","findings":[]}`, true},
		{"wrong schema", `{"schema":"iotcop/diff/v1"}`, false},
		{"sarif", `{"version":"2.1.0","runs":[]}`, false},
		{"not json", `severity: high`, false},
		{"bad severity", `{"schema":"iotcop/report/v1","findings":[{"severity":"dreadful"}]}`, false},
	} {
		_, err := Parse([]byte(tc.doc))
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("Load of a missing file did not fail")
	}
}

func TestGolden(t *testing.T) {
	t.Parallel()
	old, err := Load("testdata/old.json")
	if err != nil {
		t.Fatal(err)
	}
	new, err := Load("testdata/new.json")
	if err != nil {
		t.Fatal(err)
	}
	d := Compare(old, new)
	d.Old.File, d.New.File = "old.json", "new.json"
	if d.Summary != (Summary{New: 2, Fixed: 2, Unchanged: 2, ChangedVerdict: 3}) {
		t.Errorf("summary = %+v", d.Summary)
	}
	for _, g := range []struct {
		file  string
		write func(*bytes.Buffer) error
	}{
		{"diff.txt", func(b *bytes.Buffer) error { return WriteText(b, d) }},
		{"diff.json", func(b *bytes.Buffer) error { return WriteJSON(b, d) }},
	} {
		var b bytes.Buffer
		if err := g.write(&b); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", g.file)
		if *update {
			if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		if diff := cmp.Diff(string(want), b.String()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", g.file, diff)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"schema":"iotcop/report/v1","findings":[{"check":"x","severity":"high"}],"verdicts":[{"provision":"5.1-1","verdict":"FAIL"}]}`,
		`{}`, `[]`, `{"schema":"iotcop/report/v1","findings":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := Parse(data)
		if err != nil {
			return
		}
		d := Compare(rep, rep)
		if len(d.NewFindings) != 0 || len(d.Fixed) != 0 || len(d.Verdicts) != 0 {
			t.Fatalf("report differs from itself: %+v", d.Summary)
		}
	})
}
