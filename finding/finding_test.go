package finding

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestSeverityJSON(t *testing.T) {
	for _, s := range []Severity{Info, Low, Medium, High, Critical} {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back Severity
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Fatalf("%s: round trip gave %v, %v", b, back, err)
		}
	}
	var s Severity
	if err := json.Unmarshal([]byte(`"urgent"`), &s); err == nil {
		t.Fatal("urgent accepted")
	}
	if _, err := ParseSeverity(" HIGH "); err != nil {
		t.Fatal(err)
	}
}

func TestSecretRedaction(t *testing.T) {
	tests := map[Secret]string{"": "(empty)", "abc": "***", "xc3511": "x*****", "pässwörd": "p*******"}
	for in, want := range tests {
		if got := in.Redacted(); got != want {
			t.Errorf("%q redacted to %q, want %q", in, got, want)
		}
	}
	f := Finding{Check: "c", Title: "t", Evidence: map[string]any{
		"password": Secret("xc3511"),
		"nested":   map[string]any{"key": Secret("-----BEGIN")},
		"user":     "root",
	}}
	b, _ := json.Marshal(f)
	if strings.Contains(string(b), "xc3511") || strings.Contains(string(b), "BEGIN") {
		t.Fatalf("secret leaked: %s", b)
	}
	rev := Reveal(f.Evidence)
	if rev["password"] != "xc3511" || rev["nested"].(map[string]any)["key"] != "-----BEGIN" || rev["user"] != "root" {
		t.Fatalf("reveal: %v", rev)
	}
	if _, ok := f.Evidence["password"].(Secret); !ok {
		t.Fatal("Reveal modified its input")
	}
}

func TestFinalize(t *testing.T) {
	r := Report{
		Devices: []Device{{Address: "127.0.0.10"}, {Address: "127.0.0.9"}, {Address: "::1"}},
		Findings: []Finding{
			{Check: "b", Severity: Low, Host: "127.0.0.9", Port: 23},
			{Check: "a", Severity: Critical, Host: "127.0.0.10", Port: 80},
			{Check: "a", Severity: Critical, Host: "127.0.0.9", Port: 80},
		},
	}
	r.Finalize()
	var addrs []string
	for _, d := range r.Devices {
		addrs = append(addrs, d.Address)
	}
	if strings.Join(addrs, " ") != "127.0.0.9 127.0.0.10 ::1" {
		t.Fatalf("device order %v", addrs)
	}
	if r.Findings[0].Host != "127.0.0.9" || r.Findings[1].Host != "127.0.0.10" || r.Findings[2].Severity != Low {
		t.Fatalf("finding order %+v", r.Findings)
	}
	if r.Schema != SchemaV1 || r.Summary.Findings != 3 || r.Summary.BySeverity["critical"] != 2 || r.Summary.ByCheck["a"] != 2 {
		t.Fatalf("summary %+v", r.Summary)
	}
	if m, ok := r.MaxSeverity(); !ok || m != Critical {
		t.Fatalf("max severity %v %v", m, ok)
	}
	if r.Findings[0].Evidence == nil || r.Findings[0].Provisions == nil || r.Devices[0].Services == nil {
		t.Fatal("nil slices/maps would marshal as null")
	}
}
