package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed schema.json
var schemaJSON []byte

// Schema returns the JSON Schema of the report contract (iotcop/report/v1).
func Schema() []byte { return append([]byte(nil), schemaJSON...) }

// compiledSchema compiles the embedded schema once per process: it is
// immutable, and compiling it per report was most of an import's time.
var compiledSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	schemaDoc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		return nil, fmt.Errorf("parse report schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("schema.json", schemaDoc); err != nil {
		return nil, fmt.Errorf("load report schema: %w", err)
	}
	s, err := c.Compile("schema.json")
	if err != nil {
		return nil, fmt.Errorf("compile report schema: %w", err)
	}
	return s, nil
})

// Validate checks a JSON document against the report contract's schema.
func Validate(doc []byte) error {
	s, err := compiledSchema()
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("parse report: %w", err)
	}
	if err := s.Validate(inst); err != nil {
		return fmt.Errorf("report does not match iotcop/report/v1: %w", err)
	}
	return nil
}
