package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/iotcop/iotcop/finding"
)

var update = flag.Bool("update", false, "rewrite golden files")

func sample() *finding.Report {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	rep := &finding.Report{
		Tool:       finding.Tool{Name: "iotcop", Version: "test"},
		StartedAt:  t0,
		FinishedAt: t0.Add(3 * time.Second),
		Devices: []finding.Device{
			{Address: "127.77.0.10", Services: []finding.Service{
				{Port: 23, Transport: "tcp", Protocol: "telnet", Product: "BusyBox telnetd", Attempts: 2},
				{Port: 9999, Transport: "tcp", Protocol: "unknown", Banner: `\x00\x01hello`},
			}},
			{Address: "127.77.0.2", Services: []finding.Service{
				{Port: 22, Transport: "tcp", Protocol: "ssh", Product: "Dropbear sshd", Version: "2022.83", Banner: "SSH-2.0-dropbear_2022.83"},
				{Port: 443, Transport: "tcp", Protocol: "http", Product: "lighttpd", Version: "1.4.69", TLS: true},
			}},
		},
		Findings: []finding.Finding{
			{Check: finding.CheckCleartextProtocol, Provisions: []string{"5.5-1"}, Severity: finding.High, Title: "telnet takes credentials in clear text",
				Host: "127.77.0.10", Port: 23, Transport: "tcp", Protocol: "telnet", Evidence: map[string]any{"credential_accepted": true}},
			{Check: finding.CheckDefaultCredentials, Provisions: []string{"5.1-1"}, Severity: finding.Critical, Title: "telnet accepts a default credential",
				Host: "127.77.0.10", Port: 23, Transport: "tcp", Protocol: "telnet",
				Evidence:    map[string]any{"username": "root", "password": finding.Secret("xc3511"), "proof": "echo nonce read back", "attempts": 2},
				Remediation: "Ship without a universal default password."},
			{Check: finding.CheckHardCodedCredentials, Provisions: []string{"5.1-1"}, Severity: finding.Critical, Title: "root has a preset password",
				Path: "/etc/shadow", Evidence: map[string]any{"account": "root", "password": finding.Secret("admin")}},
		},
	}
	rep.Finalize()
	return rep
}

func firmwareSample() *finding.Report {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	rep := &finding.Report{
		Tool: finding.Tool{Name: "iotcop", Version: "test"}, StartedAt: t0, FinishedAt: t0.Add(time.Second),
		Firmware: []finding.FirmwareImage{{Image: "router.bin", Size: 8192, SHA256: strings.Repeat("ab", 32), Files: 6,
			Layers: []finding.FirmwareLayer{
				{ID: 0, Parent: -1, Offset: 0, Size: 8192, Format: "image", Entropy: 6.02, Status: "unpacked", Files: 6, Bytes: 8192},
				{ID: 1, Parent: 0, Offset: 4096, Size: 1396, Format: "squashfs", Entropy: 7.06, Status: "unpacked", Files: 6, Bytes: 900},
				{ID: 2, Parent: 0, Offset: 0, Size: 4096, Format: "unknown", Entropy: 7.95, Status: "opaque"},
			}}},
		Findings: []finding.Finding{{Check: finding.CheckInsecureBootService, Provisions: []string{"5.5-1", "5.6-1"}, Severity: finding.Critical,
			Title: "Telnet server started at boot gives a shell without login", Path: "/etc/init.d/rcS",
			Evidence: map[string]any{"command": "telnetd -l /bin/sh &", "line": 2}}},
	}
	rep.Finalize()
	return rep
}

func TestFirmwareGolden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format Format
	}{{"firmware.json", JSON}, {"firmware.txt", Text}, {"firmware.sarif", SARIF}} {
		var buf bytes.Buffer
		rep := firmwareSample()
		rep.Verdicts = []finding.Verdict{
			{Provision: "5.1-1", Edition: "V2.1.1", Status: "M C(1)", Title: "No universal default passwords", Verdict: finding.VerdictFail, Basis: "evidence", Rule: "passwords", Reason: "1 finding fails it"},
			{Provision: "5.5-1", Edition: "V2.1.1", Status: "M", Title: "Communicate securely", Verdict: finding.VerdictPass, Basis: "evidence", Rule: "crypto", Reason: "no weakness"},
		}
		if err := Write(&buf, tc.format, rep, Options{}); err != nil {
			t.Fatal(err)
		}
		if tc.format == JSON {
			if err := Validate(buf.Bytes()); err != nil {
				t.Fatal(err)
			}
		}
		golden(t, tc.name, buf.Bytes())
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./report -update to create)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file (go test ./report -update after checking):\n--- got\n%s", name, got)
	}
}

func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format Format
		reveal bool
		colour bool
	}{
		{"report.json", JSON, false, false},
		{"report-secrets.json", JSON, true, false},
		{"report.txt", Text, false, false},
		{"report-colour.txt", Text, false, true},
		{"report.sarif", SARIF, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := sample()
			if tc.reveal {
				rep.RevealSecrets()
			}
			var buf bytes.Buffer
			if err := Write(&buf, tc.format, rep, Options{Colour: tc.colour}); err != nil {
				t.Fatal(err)
			}
			out := buf.Bytes()
			if !tc.reveal && bytes.Contains(out, []byte("xc3511")) {
				t.Fatal("secret leaked without --show-secrets")
			}
			if tc.reveal && !bytes.Contains(out, []byte(`"xc3511"`)) {
				t.Fatal("secret not revealed")
			}
			golden(t, tc.name, out)
		})
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestJSONMatchesSchema(t *testing.T) {
	s := compileSchema(t)
	var buf bytes.Buffer
	if err := WriteJSON(&buf, sample()); err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(inst); err != nil {
		t.Fatalf("report does not match its schema: %v", err)
	}
	// The schema must be able to fail: a renamed field is rejected.
	var m map[string]any
	b, _ := json.Marshal(sample())
	_ = json.Unmarshal(b, &m)
	m["finding"] = m["findings"]
	delete(m, "findings")
	if err := s.Validate(m); err == nil {
		t.Fatal("schema accepted a report without findings[]")
	}
	f := m["finding"].([]any)[0].(map[string]any)
	f["severity"] = "urgent"
	m["findings"] = m["finding"]
	if err := s.Validate(m); err == nil || !strings.Contains(err.Error(), "severity") {
		t.Fatalf("schema accepted severity urgent: %v", err)
	}
}

func TestValidate(t *testing.T) {
	var buf bytes.Buffer
	_ = WriteJSON(&buf, sample())
	if err := Validate(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := Validate([]byte(`{"schema":"iotcop/report/v1"}`)); err == nil {
		t.Fatal("incomplete report validated")
	}
}
