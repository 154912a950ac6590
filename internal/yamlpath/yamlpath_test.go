package yamlpath

import (
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestLine(t *testing.T) {
	doc := "devices:\n  - name: cam\n    services:\n      - protocol: telnet\n        port: 23\n"
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &root); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path []any
		want int
	}{
		{[]any{"devices", 0, "services", 0, "port"}, 5},
		{[]any{"devices", 0, "services"}, 3},
		{[]any{"devices", 0, "name"}, 2},
		{[]any{"devices", 3, "name"}, 1},               // no such item: its parent's line
		{[]any{"devices", 0, "services", 0, "tls"}, 4}, // no such key: the item's line
	}
	for _, tc := range tests {
		if got := Line(&root, tc.path); got != tc.want {
			t.Errorf("Line(%v) = %d, want %d", tc.path, got, tc.want)
		}
	}
}
