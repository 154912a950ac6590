// Package yamlpath finds where a field sits in a YAML document, so that
// configuration errors (lab fleets, service manifests) can name the line.
package yamlpath

import "go.yaml.in/yaml/v3"

// Line returns the line of the node at path — map keys as strings, list
// indexes as ints — or of its nearest ancestor that exists; 0 when
// unknown. A mapping or list is pointed at by its key's line.
func Line(root *yaml.Node, path []any) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, p := range path {
		var next *yaml.Node
		switch v := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == v {
						next = n.Content[i+1]
						line = n.Content[i].Line
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && v >= 0 && v < len(n.Content) {
				next = n.Content[v]
				line = next.Line
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}
