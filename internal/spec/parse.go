package spec

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/agnivade/levenshtein"
	"gopkg.in/yaml.v3"
)

// Load reads and parses the spec file at path. See Parse.
func Load(path string) (*Rollout, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse parses and validates one rollout spec. filename only labels
// errors. Unknown fields are errors. On failure it returns every problem
// found, as ValidationErrors in file order, each naming the line and the
// field at fault: YAML syntax, unknown fields, values of the wrong type,
// and the semantic checks of Validate.
//
// The result is not normalised: call Normalize for the defaults.
func Parse(filename string, data []byte) (*Rollout, error) {
	w := &walker{
		file:    filename,
		keys:    map[string]*yaml.Node{},
		vals:    map[string]*yaml.Node{},
		bad:     map[string]bool{},
		lines:   bytes.Split(data, []byte("\n")),
		merging: map[*yaml.Node]bool{},
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, ValidationErrors{{File: filename, Line: 1, Msg: "empty spec: want a mapping with name, target and strategy"}}
		}
		return nil, w.yamlError(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, w.yamlError(err)
	default:
		return nil, ValidationErrors{{File: filename, Line: extra.Line, Column: extra.Column,
			Msg: "a spec file holds one rollout, found a second YAML document"}}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, ValidationErrors{{File: filename, Line: root.Line, Column: root.Column,
			Msg: "a spec must be a mapping with name, target and strategy, got " + describe(root)}}
	}

	w.budget = maxNodes
	w.walk(root, reflect.TypeOf(Rollout{}), "")
	if w.budget < 0 {
		return nil, ValidationErrors{{File: filename, Line: 1, Msg: "spec too large or too many aliases"}}
	}

	var r Rollout
	if len(w.errs) == 0 {
		// The walker has checked every field; the strict decoder is a
		// backstop that should never complain.
		strict := yaml.NewDecoder(bytes.NewReader(data))
		strict.KnownFields(true)
		if err := strict.Decode(&r); err != nil {
			return nil, w.yamlError(err)
		}
	} else if err := root.Decode(&r); err != nil {
		// The walker replaced every value of the wrong shape with null, so
		// the lenient decode fills in what it can for the semantic checks.
		w.errs = append(w.errs, w.yamlError(err)...)
	}
	errs := append(w.errs, validate(&r, w)...)
	if len(errs) > 0 {
		return nil, sortErrors(errs)
	}
	return &r, nil
}

// sortErrors orders errors by position (unlocated ones last), keeping the
// check order for ties, and drops exact repeats (a mapping merged twice).
func sortErrors(errs ValidationErrors) ValidationErrors {
	key := func(e *Error) int {
		if e.Line <= 0 {
			return math.MaxInt
		}
		return e.Line
	}
	slices.SortStableFunc(errs, func(a, b *Error) int {
		if c := cmp.Compare(key(a), key(b)); c != 0 {
			return c
		}
		return cmp.Compare(a.Column, b.Column)
	})
	return slices.CompactFunc(errs, func(a, b *Error) bool { return *a == *b })
}

const maxNodes = 1 << 20

// walker checks a YAML node tree against the spec's Go types, reporting
// unknown fields and values of the wrong shape with their position, and
// records where each field sits for the semantic checks.
type walker struct {
	file   string
	errs   ValidationErrors
	keys   map[string]*yaml.Node // field path -> key node
	vals   map[string]*yaml.Node // field path -> value node
	bad    map[string]bool       // field paths with a structural error
	lines  [][]byte
	budget int
	// merging holds the mappings being walked, to stop a merge key (<<)
	// that refers back to one of them.
	merging map[*yaml.Node]bool
}

var durationType = reflect.TypeOf(Duration(0))

func (w *walker) fail(n *yaml.Node, path, format string, args ...any) {
	w.errs = append(w.errs, &Error{File: w.file, Line: n.Line, Column: n.Column, Field: path, Msg: fmt.Sprintf(format, args...)})
	w.bad[path] = true
}

// walk checks n against t. It returns false when n has the wrong shape for
// t; the caller then replaces it with null so decoding can go on.
func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) bool {
	if w.budget--; w.budget < 0 {
		return true
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if _, seen := w.vals[path]; !seen {
		w.vals[path] = n
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return true
	}
	if t == durationType {
		if n.Kind != yaml.ScalarNode {
			w.fail(n, path, "must be a duration like 90s or 5m, got %s", describe(n))
			return false
		}
		if _, err := ParseDuration(n.Value); err != nil || strings.TrimSpace(n.Value) == "" {
			if strings.HasPrefix(strings.TrimSpace(n.Value), "-") {
				w.fail(n, path, "must not be negative, got %q", n.Value)
			} else {
				w.fail(n, path, "must be a duration like 90s or 5m (or a number of seconds), got %q", n.Value)
			}
			return false
		}
		return true
	}
	switch t.Kind() {
	case reflect.Pointer:
		return w.walk(n, t.Elem(), path)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.fail(n, path, "must be a mapping of fields, got %s", describe(n))
			return false
		}
		w.mapping(n, path, func(k, v *yaml.Node, p string) bool {
			f, ok := structFields(t)[k.Value]
			if !ok {
				msg := "unknown field"
				if s := suggestField(k.Value, t); s != "" {
					msg += fmt.Sprintf("; did you mean %q?", s)
				}
				w.fail(k, p, "%s", msg)
				return true
			}
			return w.walk(v, f, p)
		}, t)
		return true
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.fail(n, path, "must be a mapping, got %s", describe(n))
			return false
		}
		w.mapping(n, path, func(k, v *yaml.Node, p string) bool { return w.walk(v, t.Elem(), p) }, nil)
		return true
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.fail(n, path, "must be a list, got %s", describe(n))
			return false
		}
		for i, e := range n.Content {
			if !w.walk(e, t.Elem(), path+"["+strconv.Itoa(i)+"]") {
				n.Content[i] = nullNode(e)
			}
		}
		return true
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			w.fail(n, path, "must be text, got %s", describe(n))
			return false
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			w.fail(n, path, "must be true or false, got %s", describe(n))
			return false
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var x int64
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
			// A count may be quoted ("100"), as in JSON input.
			v, err := strconv.ParseInt(strings.TrimSpace(n.Value), 10, 64)
			if err != nil {
				w.fail(n, path, "must be a whole number, got %s", describe(n))
				return false
			}
			x = v
		} else if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&x) != nil {
			w.fail(n, path, "must be a whole number, got %s", describe(n))
			return false
		}
		if reflect.Zero(t).OverflowInt(x) {
			w.fail(n, path, "number %s is too large", n.Value)
			return false
		}
	case reflect.Float32, reflect.Float64:
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!float" && n.ShortTag() != "!!int") {
			w.fail(n, path, "must be a number, got %s", describe(n))
			return false
		}
	}
	return true
}

// mapping walks the pairs of a mapping node, following merge keys ("<<")
// and rejecting duplicate keys. each returns false to null out a value.
// For a struct (t != nil) keys name fields; for a map they are free.
func (w *walker) mapping(n *yaml.Node, path string, each func(k, v *yaml.Node, p string) bool, t reflect.Type) {
	seen := map[string]*yaml.Node{}
	var drop []int // duplicate pairs, removed so decoding can go on
	defer func() {
		for j := len(drop) - 1; j >= 0; j-- {
			n.Content = slices.Delete(n.Content, drop[j], drop[j]+2)
		}
	}()
	w.merging[n] = true // a merged mapping may not merge its includer
	defer delete(w.merging, n)
	for i := 0; i+1 < len(n.Content); i += 2 {
		if w.budget--; w.budget < 0 {
			return
		}
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged := v
			if merged.Kind == yaml.AliasNode && merged.Alias != nil {
				merged = merged.Alias
			}
			var srcs []*yaml.Node
			if merged.Kind == yaml.SequenceNode {
				srcs = merged.Content
			} else {
				srcs = []*yaml.Node{merged}
			}
			for _, m := range srcs {
				if m.Kind == yaml.AliasNode && m.Alias != nil {
					m = m.Alias
				}
				if m.Kind != yaml.MappingNode {
					w.fail(k, path, "a merge key (<<) must name a mapping")
					continue
				}
				if w.merging[m] {
					w.fail(k, path, "a merge key (<<) must not refer to a mapping that contains it")
					drop = append(drop, i)
					break
				}
				w.mapping(m, path, each, t)
			}
			continue
		}
		if k.Kind != yaml.ScalarNode {
			w.fail(k, path, "keys must be plain text, got %s", describe(k))
			continue
		}
		p := k.Value
		if path != "" {
			p = path + "." + k.Value
		}
		if prev, dup := seen[k.Value]; dup {
			w.fail(k, p, "defined twice (first at line %d)", prev.Line)
			drop = append(drop, i)
			continue
		}
		seen[k.Value] = k
		if _, ok := w.keys[p]; !ok {
			w.keys[p] = k
		}
		if !each(k, v, p) {
			n.Content[i+1] = nullNode(v)
		}
	}
}

func nullNode(at *yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: at.Line, Column: at.Column}
}

// describe names a node's shape for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	if n.ShortTag() == "!!null" {
		return "nothing"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "..."
	}
	return strconv.Quote(v)
}

// structFields maps each YAML field name of struct type t to its type,
// following inline structs.
func structFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") && f.Type.Kind() == reflect.Struct {
			for k, v := range structFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// suggestField returns the field of t closest to name, if close enough.
func suggestField(name string, t reflect.Type) string {
	best, bestD := "", 3
	for f := range structFields(t) {
		d := levenshtein.ComputeDistance(strings.ToLower(name), strings.ToLower(f))
		if d < bestD || d == bestD && f < best {
			best, bestD = f, d
		}
	}
	if bestD > 2 || len(name) <= bestD {
		return ""
	}
	return best
}

var (
	yamlLineRe = regexp.MustCompile(`^(?:yaml: )?line (\d+): (?s:(.*))$`)
	fieldRe    = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
)

// yamlError converts an error from yaml.v3 into located Errors.
func (w *walker) yamlError(err error) ValidationErrors {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var out ValidationErrors
	for _, m := range msgs {
		e := &Error{File: w.file, Msg: strings.TrimPrefix(m, "yaml: ")}
		if sub := yamlLineRe.FindStringSubmatch(m); sub != nil {
			e.Line, _ = strconv.Atoi(sub[1])
			e.Msg = sub[2]
			e.Field = w.fieldAtLine(e.Line)
		}
		if sub := fieldRe.FindStringSubmatch(e.Msg); sub != nil {
			e.Msg = "unknown field " + strconv.Quote(sub[1])
		}
		out = append(out, e)
	}
	return out
}

// fieldAtLine returns the deepest field path whose key sits on line.
func (w *walker) fieldAtLine(line int) string {
	best := ""
	for p, k := range w.keys {
		if k.Line == line && (len(p) > len(best) || len(p) == len(best) && p < best) {
			best = p
		}
	}
	return best
}

// at returns the position of the field at path: its value when it is a
// scalar, else its key; for a missing field, the nearest enclosing one.
func (w *walker) at(path string) (line, col int) {
	if w == nil {
		return 0, 0
	}
	for {
		if v, ok := w.vals[path]; ok && v.Kind == yaml.ScalarNode && v.ShortTag() != "!!null" {
			return v.Line, v.Column
		}
		if k, ok := w.keys[path]; ok {
			return k.Line, k.Column
		}
		if v, ok := w.vals[path]; ok {
			return v.Line, v.Column
		}
		if path == "" {
			return 1, 1
		}
		path = parentPath(path)
	}
}

// column maps a 1-based column inside the string value at path to the
// column in the file. It is exact for a value written on one line (plain
// or quoted, without escapes); otherwise it returns the value's start.
func (w *walker) column(path string, inValue int) (line, col int) {
	line, col = w.at(path)
	if w == nil {
		return line, col
	}
	n, ok := w.vals[path]
	if !ok || n.Kind != yaml.ScalarNode || n.Line < 1 || n.Line > len(w.lines) {
		return line, col
	}
	raw := []rune(string(w.lines[n.Line-1]))
	start := n.Column - 1
	switch n.Style {
	case 0:
	case yaml.SingleQuotedStyle, yaml.DoubleQuotedStyle:
		start++
	default:
		return line, col
	}
	if start < 0 || start > len(raw) || !strings.HasPrefix(string(raw[start:]), n.Value) {
		return line, col
	}
	return n.Line, start + inValue
}

// parentPath strips the last ".field" or "[i]" from path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// broken reports whether path or an enclosing field had a structural
// error, so semantic checks on it would only repeat the news.
func (w *walker) broken(path string) bool {
	if w == nil {
		return false
	}
	for {
		if w.bad[path] {
			return true
		}
		if path == "" {
			return false
		}
		path = parentPath(path)
	}
}
