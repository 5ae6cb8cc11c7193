package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Other SDKs send the spec as JSON (docs/rollout-input.schema.json), and
// JSON tells numbers from strings where YAML does not: counts are accepted
// as numbers or strings (batchSize 25 or "25" or "10%", errorBudget.max 3
// or "3" or "2%", concurrency 100 or "100"), durations as strings or
// numbers of seconds (Duration). The Go types, and what the fleet writes,
// are unchanged: batchSize and max are strings, concurrency a number.

// CountText is a count or percentage given as a JSON number or string; it
// keeps the text ("25", "10%", "2.5").
type CountText string

// UnmarshalJSON reads a JSON string or number.
func (c *CountText) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*c = ""
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*c = CountText(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want a count like 25 or a percentage like \"10%%\", got %s", b)
	}
	*c = CountText(n.String())
	return nil
}

// Count is a whole number given as a JSON number or a string of digits.
type Count int

// UnmarshalJSON reads a JSON number or a string holding one.
func (c *Count) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*c = 0
		return nil
	}
	text := string(b)
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		text = strings.TrimSpace(s)
	}
	n, err := strconv.Atoi(text)
	if err != nil {
		return fmt.Errorf("want a whole number like 100 (or \"100\"), got %s", b)
	}
	*c = Count(n)
	return nil
}

// UnmarshalJSON reads a phase, its batchSize and concurrency as numbers or
// strings.
func (p *Phase) UnmarshalJSON(b []byte) error {
	type plain Phase
	var raw struct {
		*plain
		BatchSize   CountText `json:"batchSize"`
		Concurrency Count     `json:"concurrency"`
	}
	raw.plain = (*plain)(p)
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("phase: %w", err)
	}
	p.BatchSize, p.Concurrency = string(raw.BatchSize), int(raw.Concurrency)
	return nil
}

// UnmarshalJSON reads an error budget, its max as a number or a string.
func (e *ErrorBudget) UnmarshalJSON(b []byte) error {
	type plain ErrorBudget
	var raw struct {
		*plain
		Max CountText `json:"max"`
	}
	raw.plain = (*plain)(e)
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("errorBudget: %w", err)
	}
	e.Max = string(raw.Max)
	return nil
}

// UnmarshalYAML reads a phase; its concurrency may be quoted ("100").
func (p *Phase) UnmarshalYAML(n *yaml.Node) error {
	type plain Phase
	return quotedInts(n, "concurrency").Decode((*plain)(p))
}

// quotedInts returns mapping n with the named fields' quoted whole numbers
// ("100") retagged as integers; n itself is not changed.
func quotedInts(n *yaml.Node, fields ...string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return n
	}
	c := *n
	c.Content = append([]*yaml.Node(nil), n.Content...)
	for i := 0; i+1 < len(c.Content); i += 2 {
		k, v := c.Content[i], c.Content[i+1]
		for _, f := range fields {
			if k.Value != f || v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" {
				continue
			}
			if _, err := strconv.Atoi(strings.TrimSpace(v.Value)); err == nil {
				nv := *v
				nv.Tag, nv.Style, nv.Value = "!!int", 0, strings.TrimSpace(v.Value)
				c.Content[i+1] = &nv
			}
		}
	}
	return &c
}
