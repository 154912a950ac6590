package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// FuzzRedactReport: any JSON document either fails to decode or comes out
// as JSON with no evidence value under a secret-looking key left in clear.
func FuzzRedactReport(f *testing.F) {
	f.Add([]byte(`{"findings":[{"evidence":{"password":"xc3511","nested":{"key":"hunter22"},"n":3}}]}`))
	f.Add([]byte(`{"findings":"x"}`))
	f.Add([]byte(`[1,2]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := redactReport(b)
		if err != nil {
			return
		}
		var doc map[string]any
		if err := json.Unmarshal(out, &doc); err != nil {
			t.Fatalf("redacted report is not JSON: %v", err)
		}
		fs, _ := doc["findings"].([]any)
		for _, f := range fs {
			fm, _ := f.(map[string]any)
			ev, _ := fm["evidence"].(map[string]any)
			checkRedacted(t, ev)
		}
	})
}

func checkRedacted(t *testing.T, ev map[string]any) {
	for k, v := range ev {
		if m, ok := v.(map[string]any); ok {
			checkRedacted(t, m)
			continue
		}
		if !secretKey.MatchString(k) {
			continue
		}
		// Redacted forms: "(empty)", or stars after at most one character.
		s, ok := v.(string)
		r := []rune(s)
		if !ok || (s != "(empty)" && strings.Trim(string(r[min(1, len(r)):]), "*") != "") {
			t.Fatalf("evidence %q = %#v not redacted", k, v)
		}
	}
}

// FuzzUploadInputs: the firmware name and schedule interval readers take
// any text; what they accept is a plain, bounded file name and an
// interval inside the documented range, and they never panic.
func FuzzUploadInputs(f *testing.F) {
	for _, s := range []string{"cam-fw-1.0.tar.gz", "../etc/passwd", "a\x00b", "..", "", "7d", "90m", "0d", "367d", "-1h", "1e9h", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if name, err := firmwareName(s); err == nil {
			if name == "" || len(name) > 200 || strings.ContainsAny(name, "/\\") || name == "." || name == ".." || !utf8.ValidString(name) ||
				strings.IndexFunc(name, unicode.IsControl) >= 0 {
				t.Fatalf("firmwareName(%q) accepted %q", s, name)
			}
		}
		if d, err := parseEvery(s); err == nil && strings.HasSuffix(strings.TrimSpace(s), "d") && (d < 24*time.Hour || d > maxScheduleInterval) {
			t.Fatalf("parseEvery(%q) = %s, outside 1d–366d", s, d)
		}
	})
}
