package report

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/iotcop/iotcop/finding"
)

// SARIF 2.1.0 is written from these few structs rather than with
// owenrumney/go-sarif: that library serialises empty arrays it declares
// without omitempty as null, which the SARIF schema rejects, and we need
// only rules, results and locations.

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID               string         `json:"id"`
	ShortDescription sarifText      `json:"shortDescription"`
	Properties       map[string]any `json:"properties,omitempty"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             sarifText         `json:"message"`
	Locations           []sarifLocation   `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	Properties          map[string]any    `json:"properties"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical `json:"physicalLocation"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

var ruleText = map[string]string{
	finding.CheckDefaultCredentials:    "A service accepts a universal default credential",
	finding.CheckUnauthenticatedAccess: "A service grants access without any credential",
	finding.CheckCleartextProtocol:     "A service takes credentials over an unencrypted channel",
	finding.CheckWeakTLS:               "TLS configuration is weak",
	finding.CheckWeakSSH:               "SSH configuration is weak",
	finding.CheckExposedDebugService:   "A debug or management service is exposed",
	finding.CheckVulnDisclosure:        "No usable vulnerability disclosure policy",
	finding.CheckHardCodedCredentials:  "Firmware contains hard-coded credentials",
	finding.CheckEmbeddedPrivateKey:    "Firmware contains a private key",
	finding.CheckEmbeddedSecret:        "Firmware contains an embedded secret",
	finding.CheckInsecureBootService:   "Firmware starts an insecure service at boot",
	finding.CheckBinaryHardening:       "Binaries lack hardening",
	finding.CheckKnownVulnerability:    "A component has a known vulnerability",
	finding.CheckDeviceUnresponsive:    "The device stopped answering during assessment",
	finding.CheckSharedSecret:          "Several devices share one key, certificate or credential",
}

func sarifLevel(s finding.Severity) string {
	switch s {
	case finding.Critical, finding.High:
		return "error"
	case finding.Medium:
		return "warning"
	}
	return "note"
}

// locationURI names where a finding was seen: the firmware path, or a
// URI for the live service ("telnet://127.0.0.5:23").
func locationURI(f finding.Finding) string {
	if f.Path != "" {
		return strings.TrimPrefix(f.Path, "/")
	}
	scheme := f.Protocol
	if scheme == "" || scheme == "unknown" {
		scheme = f.Transport
	}
	host := f.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return scheme + "://" + host + ":" + strconv.Itoa(f.Port)
}

// WriteSARIF writes SARIF 2.1.0, one rule per check id.
func WriteSARIF(w io.Writer, rep *finding.Report) error {
	var ids []string
	seen := map[string]bool{}
	for _, f := range rep.Findings {
		if !seen[f.Check] {
			seen[f.Check] = true
			ids = append(ids, f.Check)
		}
	}
	sort.Strings(ids)
	index := map[string]int{}
	rules := make([]sarifRule, 0, len(ids))
	for i, id := range ids {
		index[id] = i
		text := ruleText[id]
		if text == "" {
			text = id
		}
		rules = append(rules, sarifRule{ID: id, ShortDescription: sarifText{text}})
	}
	results := make([]sarifResult, 0, len(rep.Findings))
	for _, f := range rep.Findings {
		ev, err := json.Marshal(f.Evidence) // Secrets marshal redacted unless revealed
		if err != nil {
			return fmt.Errorf("sarif evidence: %w", err)
		}
		var evidence any
		_ = json.Unmarshal(ev, &evidence)
		msg := f.Title
		if f.Remediation != "" {
			msg += ". Fix: " + f.Remediation
		}
		results = append(results, sarifResult{
			RuleID:              f.Check,
			RuleIndex:           index[f.Check],
			Level:               sarifLevel(f.Severity),
			Message:             sarifText{msg},
			Locations:           []sarifLocation{{sarifPhysical{sarifArtifact{locationURI(f)}}}},
			PartialFingerprints: map[string]string{"iotcopFinding/v1": f.Key()},
			Properties: map[string]any{
				"severity":   f.Severity.String(),
				"provisions": f.Provisions,
				"evidence":   evidence,
			},
		})
	}
	// Provisions that failed or could not be decided are results too, so
	// a code-scanning view shows the conformance gaps beside the findings.
	for _, v := range rep.Verdicts {
		level := ""
		switch v.Verdict {
		case finding.VerdictFail:
			level = "error"
		case finding.VerdictInconclusive:
			level = "warning"
		default:
			continue
		}
		id := "en303645/" + v.Provision
		if _, ok := index[id]; !ok {
			index[id] = len(rules)
			rules = append(rules, sarifRule{ID: id, ShortDescription: sarifText{v.Title},
				Properties: map[string]any{"edition": v.Edition, "status": v.Status}})
		}
		results = append(results, sarifResult{
			RuleID:              id,
			RuleIndex:           index[id],
			Level:               level,
			Message:             sarifText{fmt.Sprintf("EN 303 645 %s: %s (%s)", v.Provision, v.Verdict, v.Reason)},
			Locations:           []sarifLocation{},
			PartialFingerprints: map[string]string{"iotcopVerdict/v1": v.Edition + "|" + v.Provision},
			Properties:          map[string]any{"verdict": v.Verdict, "basis": v.Basis, "rule": v.Rule},
		})
	}
	log := sarifLog{
		Schema:  "https://json.schemastore.org/sarif-2.1.0.json",
		Version: "2.1.0",
		Runs: []sarifRun{{
			Tool:    sarifTool{Driver: sarifDriver{Name: "iotcop", Version: rep.Tool.Version, InformationURI: "https://github.com/iotcop/iotcop", Rules: rules}},
			Results: results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(log); err != nil {
		return fmt.Errorf("write sarif report: %w", err)
	}
	return nil
}
