package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// ParseYAML reads a policy written in YAML: the same document as Parse
// reads, in YAML's syntax, with YAML comments in place of "comment"
// members. It accepts only plain data (mappings with string keys,
// sequences, strings, integers, booleans): anchors, aliases, tags other than
// YAML's own and several documents are errors. Hex strings made only of
// digits must be quoted (YAML would read them as numbers). The document is
// converted to JSON and read by Parse, so errors name members by the same
// JSON paths.
func ParseYAML(data []byte) (*Policy, error) {
	if len(data) > MaxSize {
		return nil, &Error{Path: "$", Err: fmt.Errorf("larger than %d bytes", MaxSize)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return nil, &Error{Path: "$", Err: fmt.Errorf("malformed YAML: %w", err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		return nil, &Error{Path: "$", Err: errors.New("more than one YAML document")}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &Error{Path: "$", Err: errors.New("not one YAML document")}
	}
	v, err := yamlValue(doc.Content[0], "$", 0)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, &Error{Path: "$", Err: err}
	}
	return Parse(b)
}

// yamlValue converts n to the JSON value it denotes.
func yamlValue(n *yaml.Node, path string, depth int) (any, error) {
	if depth > maxDepth {
		return nil, &Error{Path: path, Err: errors.New("nested too deeply")}
	}
	if n.Anchor != "" || n.Kind == yaml.AliasNode {
		return nil, &Error{Path: path, Err: errors.New("YAML anchors and aliases are not allowed")}
	}
	switch n.Kind {
	case yaml.MappingNode:
		if n.Tag != "!!map" {
			return nil, &Error{Path: path, Err: fmt.Errorf("tag %s not allowed", n.Tag)}
		}
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.Tag != "!!str" && k.Tag != "!!int" {
				return nil, &Error{Path: path, Err: errors.New("a mapping key must be a plain string")}
			}
			p := path + "." + k.Value
			if _, dup := m[k.Value]; dup {
				return nil, &Error{Path: p, Err: errors.New("member given twice")}
			}
			v, err := yamlValue(n.Content[i+1], p, depth+1)
			if err != nil {
				return nil, err
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		if n.Tag != "!!seq" {
			return nil, &Error{Path: path, Err: fmt.Errorf("tag %s not allowed", n.Tag)}
		}
		s := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			v, err := yamlValue(c, fmt.Sprintf("%s[%d]", path, i), depth+1)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str":
			return n.Value, nil
		case "!!bool":
			return n.Value == "true", checkBool(path, n.Value)
		case "!!int":
			i, err := strconv.ParseInt(n.Value, 10, 64)
			if err != nil {
				return nil, &Error{Path: path, Err: fmt.Errorf("want a decimal integer, got %q (quote hex strings)", n.Value)}
			}
			return i, nil
		case "!!null":
			return nil, nil // Parse rejects it with the member's path
		}
		return nil, &Error{Path: path, Err: fmt.Errorf("YAML value of type %s not allowed", n.Tag)}
	}
	return nil, &Error{Path: path, Err: errors.New("unsupported YAML node")}
}

func checkBool(path, v string) error {
	if v != "true" && v != "false" {
		return &Error{Path: path, Err: fmt.Errorf("want true or false, got %q", v)}
	}
	return nil
}
