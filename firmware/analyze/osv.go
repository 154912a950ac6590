package analyze

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode"

	"github.com/iotcop/iotcop/finding"
)

// OSVDatabase holds OSV vulnerability records (https://ossf.github.io/osv-schema/)
// loaded from a folder of JSON files or a zip of them, indexed by
// affected package name.
type OSVDatabase struct {
	byName  map[string][]*osvRecord
	Records int
}

type osvRecord struct {
	ID       string   `json:"id"`
	Summary  string   `json:"summary"`
	Aliases  []string `json:"aliases"`
	Affected []struct {
		Package struct {
			Ecosystem string `json:"ecosystem"`
			Name      string `json:"name"`
			PURL      string `json:"purl"`
		} `json:"package"`
		Ranges []struct {
			Type   string              `json:"type"`
			Events []map[string]string `json:"events"`
		} `json:"ranges"`
		Versions []string `json:"versions"`
	} `json:"affected"`
	DatabaseSpecific struct {
		Severity string `json:"severity"`
	} `json:"database_specific"`
	Withdrawn string `json:"withdrawn"`
}

// Bounds on an OSV database, so a hostile archive cannot exhaust memory.
const (
	maxOSVRecordBytes = 4 << 20
	maxOSVRecords     = 2_000_000
)

// LoadOSV reads every *.json record under dir, or in a .zip file.
func LoadOSV(path string) (*OSVDatabase, error) {
	db := &OSVDatabase{byName: map[string][]*osvRecord{}}
	add := func(name string, r io.Reader) error {
		if db.Records >= maxOSVRecords {
			return fmt.Errorf("more than %d OSV records", maxOSVRecords)
		}
		b, err := io.ReadAll(io.LimitReader(r, maxOSVRecordBytes+1))
		if err != nil {
			return fmt.Errorf("reading OSV record %s: %w", name, err)
		}
		if len(b) > maxOSVRecordBytes {
			return fmt.Errorf("OSV record %s is over %d bytes", name, maxOSVRecordBytes)
		}
		var rec osvRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return fmt.Errorf("OSV record %s: %w", name, err)
		}
		if rec.ID == "" || rec.Withdrawn != "" {
			return nil
		}
		db.Records++
		seen := map[string]bool{}
		for _, a := range rec.Affected {
			n := strings.ToLower(a.Package.Name)
			if n != "" && !seen[n] {
				seen[n] = true
				db.byName[n] = append(db.byName[n], &rec)
			}
		}
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("opening OSV database: %w", err)
	}
	if !fi.IsDir() {
		zr, err := zip.OpenReader(path)
		if err != nil {
			return nil, fmt.Errorf("opening OSV zip %s: %w", path, err)
		}
		defer zr.Close()
		for _, f := range zr.File {
			if !strings.HasSuffix(f.Name, ".json") {
				continue
			}
			rc, err := f.Open()
			if err != nil {
				return nil, fmt.Errorf("OSV zip member %s: %w", f.Name, err)
			}
			err = add(f.Name, rc)
			rc.Close()
			if err != nil {
				return nil, err
			}
		}
		return db, nil
	}
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return add(p, f)
	})
	if err != nil {
		return nil, fmt.Errorf("loading OSV database %s: %w", path, err)
	}
	return db, nil
}

// osvAliases maps component names to the package names OSV uses.
var osvAliases = map[string][]string{"hostapd": {"wpa"}, "wpa_supplicant": {"wpa"}, "linux": {"linux", "linux-kernel"}}

// Match reports components whose version falls in an affected range or
// list of a record. Findings say "potentially affected": a version string
// does not prove the vulnerable code is built in or reachable.
func (db *OSVDatabase) Match(components []Component) []finding.Finding {
	var out []finding.Finding
	for _, c := range components {
		if c.Version == "" {
			continue
		}
		names := append([]string{strings.ToLower(c.Name)}, osvAliases[strings.ToLower(c.Name)]...)
		done := map[string]bool{}
		for _, n := range names {
			for _, rec := range db.byName[n] {
				if done[rec.ID] {
					continue
				}
				why, ok := rec.affects(n, c.Version)
				if !ok {
					continue
				}
				done[rec.ID] = true
				out = append(out, osvFinding(c, rec, why))
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Title < out[j].Title })
	return out
}

// affects reports whether version lies in one of the record's ranges for
// package name, and how.
func (r *osvRecord) affects(name, version string) (string, bool) {
	for _, a := range r.Affected {
		if strings.ToLower(a.Package.Name) != name {
			continue
		}
		for _, v := range a.Versions {
			if v == version {
				return "version listed as affected", true
			}
		}
		for _, rg := range a.Ranges {
			if rg.Type != "SEMVER" && rg.Type != "ECOSYSTEM" {
				continue
			}
			if why, ok := inRange(version, rg.Events); ok {
				return why, true
			}
		}
	}
	return "", false
}

// inRange walks OSV range events (sorted introduced/fixed pairs).
func inRange(v string, events []map[string]string) (string, bool) {
	intro := ""
	open := false
	for _, e := range events {
		switch {
		case e["introduced"] != "":
			intro = e["introduced"]
			open = intro == "0" || compareVersions(v, intro) >= 0
		case e["fixed"] != "":
			if open && compareVersions(v, e["fixed"]) < 0 {
				return fmt.Sprintf("introduced %s, fixed %s", intro, e["fixed"]), true
			}
			open = false
		case e["last_affected"] != "":
			if open && compareVersions(v, e["last_affected"]) <= 0 {
				return fmt.Sprintf("introduced %s, last affected %s", intro, e["last_affected"]), true
			}
			open = false
		case e["limit"] != "":
			if open && compareVersions(v, e["limit"]) < 0 {
				return fmt.Sprintf("introduced %s, limit %s", intro, e["limit"]), true
			}
			open = false
		}
	}
	if open {
		return fmt.Sprintf("introduced %s, no fix listed", intro), true
	}
	return "", false
}

// compareVersions orders version strings segment by segment: runs of
// digits numerically, other runs as text, "~" before anything (Debian),
// an "N:" epoch first. It is deliberately lenient: the result only ever
// supports a "potentially affected" finding.
func compareVersions(a, b string) int {
	ea, ra := splitEpoch(a)
	eb, rb := splitEpoch(b)
	if ea != eb {
		return compareNum(ea, eb)
	}
	for ra != "" || rb != "" {
		sa, restA := nextSegment(ra)
		sb, restB := nextSegment(rb)
		if c := compareSegment(sa, sb); c != 0 {
			return c
		}
		ra, rb = restA, restB
	}
	return 0
}

func splitEpoch(v string) (string, string) {
	if i := strings.IndexByte(v, ':'); i > 0 && strings.Trim(v[:i], "0123456789") == "" {
		return v[:i], v[i+1:]
	}
	return "0", v
}

func nextSegment(s string) (string, string) {
	s = strings.TrimLeft(s, ".-+_")
	if s == "" {
		return "", ""
	}
	digit := unicode.IsDigit(rune(s[0]))
	i := 0
	for i < len(s) && unicode.IsDigit(rune(s[i])) == digit && !strings.ContainsRune(".-+_", rune(s[i])) {
		i++
	}
	if i == 0 {
		i = 1
	}
	return s[:i], s[i:]
}

func compareSegment(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == "":
		// A shorter version is older (1.0 < 1.0.1, 1.1.1 < 1.1.1w), except
		// against a "~" pre-release (1.0 > 1.0~rc1).
		if strings.HasPrefix(b, "~") {
			return 1
		}
		return -1
	case b == "":
		return -compareSegment(b, a)
	case strings.HasPrefix(a, "~") != strings.HasPrefix(b, "~"):
		if strings.HasPrefix(a, "~") {
			return -1
		}
		return 1
	}
	da, db := unicode.IsDigit(rune(a[0])), unicode.IsDigit(rune(b[0]))
	switch {
	case da && db:
		return compareNum(a, b)
	case da:
		return 1 // numbers sort after letters
	case db:
		return -1
	}
	return strings.Compare(a, b)
}

func compareNum(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

func osvFinding(c Component, rec *osvRecord, why string) finding.Finding {
	sev := finding.Medium
	switch strings.ToUpper(rec.DatabaseSpecific.Severity) {
	case "CRITICAL":
		sev = finding.Critical
	case "HIGH":
		sev = finding.High
	case "LOW":
		sev = finding.Low
	}
	name := rec.ID
	for _, a := range rec.Aliases {
		if strings.HasPrefix(a, "CVE-") {
			name = a
			break
		}
	}
	title := fmt.Sprintf("%s %s potentially affected by %s", c.Name, c.Version, name)
	if rec.Summary != "" {
		title += ": " + rec.Summary
	}
	return finding.Finding{Check: finding.CheckKnownVulnerability, Provisions: []string{"5.2-3", "5.3-8"}, Severity: sev,
		Title: title, Path: c.Path,
		Evidence: map[string]any{"component": c.Name, "version": c.Version, "version_source": c.Source, "osv_id": rec.ID,
			"aliases": rec.Aliases, "match": why, "confidence": "potentially affected (version match only)"},
		Remediation: "Update the component to a fixed version, or document why the vulnerable code is absent or unreachable."}
}
