package firmware

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"time"
)

// CycloneDX 1.5 document, the subset iotcop fills.
type cdxBOM struct {
	BOMFormat    string         `json:"bomFormat"`
	SpecVersion  string         `json:"specVersion"`
	SerialNumber string         `json:"serialNumber"`
	Version      int            `json:"version"`
	Metadata     cdxMetadata    `json:"metadata"`
	Components   []cdxComponent `json:"components"`
}

type cdxMetadata struct {
	Timestamp string `json:"timestamp"`
	Tools     struct {
		Components []cdxComponent `json:"components"`
	} `json:"tools"`
	Component cdxComponent `json:"component"`
}

type cdxComponent struct {
	Type       string        `json:"type"`
	BOMRef     string        `json:"bom-ref,omitempty"`
	Name       string        `json:"name"`
	Version    string        `json:"version,omitempty"`
	PURL       string        `json:"purl,omitempty"`
	CPE        string        `json:"cpe,omitempty"`
	Hashes     []cdxHash     `json:"hashes,omitempty"`
	Properties []cdxProperty `json:"properties,omitempty"`
}

type cdxHash struct {
	Alg     string `json:"alg"`
	Content string `json:"content"`
}

type cdxProperty struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// WriteCycloneDX writes the components of res as a CycloneDX 1.5 JSON
// SBOM; the image itself is the metadata component (type firmware, with
// its SHA-256). toolVersion names the iotcop version.
func WriteCycloneDX(w io.Writer, res *Result, toolVersion string, now time.Time) error {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return fmt.Errorf("serial number: %w", err)
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	bom := cdxBOM{BOMFormat: "CycloneDX", SpecVersion: "1.5", Version: 1,
		SerialNumber: fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]),
		Components:   []cdxComponent{}}
	bom.Metadata.Timestamp = now.UTC().Format(time.RFC3339)
	bom.Metadata.Tools.Components = []cdxComponent{{Type: "application", Name: "iotcop", Version: toolVersion}}
	bom.Metadata.Component = cdxComponent{Type: "firmware", BOMRef: "image", Name: filepath.Base(res.Image),
		Hashes: []cdxHash{{Alg: "SHA-256", Content: res.SHA256}}}
	for i, c := range res.Components {
		bom.Components = append(bom.Components, cdxComponent{
			Type: c.Type, BOMRef: fmt.Sprintf("component-%d", i), Name: c.Name, Version: c.Version, PURL: c.PURL, CPE: c.CPE,
			Properties: []cdxProperty{{Name: "iotcop:source", Value: c.Source}, {Name: "iotcop:path", Value: c.Path}},
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(bom); err != nil {
		return fmt.Errorf("writing CycloneDX: %w", err)
	}
	return nil
}
