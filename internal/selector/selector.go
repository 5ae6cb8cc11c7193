// Package selector implements the expression language that picks clusters
// from the fleet inventory by their attributes and labels:
//
//	product=kafka, env in (internal, non-prod), cloud!=azure, version<3.7.0, label.team=payments
//
// A selector is a comma-separated list of requirements; a cluster matches
// when it meets every one of them (commas mean AND). The empty selector
// matches every cluster.
//
// Fields: id, product, cloud, region, env (alias environment), customer,
// tier, version, brokers, and label.<key> for the cluster's labels. Label
// keys are letters, digits and "._-/".
//
// Operators:
//
//	field=value  field==value    equal
//	field!=value                 not equal
//	field in (v1, v2, ...)       equal to one of the values
//	field notin (v1, v2, ...)    equal to none of the values
//	field<value  <=  >  >=       ordered: only version and brokers
//	label.key                    the cluster has the label
//	!label.key                   the cluster lacks the label
//
// version values are semantic versions and compare as such (3.10.0 >
// 3.9.2, 7.6.0-rc1 < 7.6.0, v3.7 = 3.7.0); a cluster whose version does not
// parse matches no ordered comparison and is unequal to every value. brokers
// values are integers. product, cloud and env values must be ones the fleet
// model knows (fleet.Products, fleet.Clouds, fleet.Environments), so a typo
// is an error instead of a selector that silently matches nothing.
//
// A label that is absent is unequal to every value: "label.team!=payments"
// and "label.team notin (payments)" match a cluster without a team label.
//
// Values are bare words (letters, digits and "._-/:+@") or double-quoted
// strings with Go escapes ("a b", "x,y"). Spaces around tokens are ignored.
package selector

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/agnivade/levenshtein"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/semver"
)

// Op is a requirement's operator.
type Op string

// Operators.
const (
	OpEq        Op = "="
	OpNe        Op = "!="
	OpIn        Op = "in"
	OpNotIn     Op = "notin"
	OpLt        Op = "<"
	OpLe        Op = "<="
	OpGt        Op = ">"
	OpGe        Op = ">="
	OpExists    Op = "exists"
	OpNotExists Op = "!exists"
)

// Field names, as they appear in Requirement.Field (canonical spelling).
const (
	FieldID       = "id"
	FieldProduct  = "product"
	FieldCloud    = "cloud"
	FieldRegion   = "region"
	FieldEnv      = "env"
	FieldCustomer = "customer"
	FieldTier     = "tier"
	FieldVersion  = "version"
	FieldBrokers  = "brokers"
	FieldLabel    = "label"
)

// fields maps every accepted spelling to its canonical name.
var fields = map[string]string{
	"id":          FieldID,
	"product":     FieldProduct,
	"cloud":       FieldCloud,
	"region":      FieldRegion,
	"env":         FieldEnv,
	"environment": FieldEnv,
	"customer":    FieldCustomer,
	"tier":        FieldTier,
	"version":     FieldVersion,
	"brokers":     FieldBrokers,
}

// FieldNames lists the accepted field names, label.<key> last.
var FieldNames = []string{"id", "product", "cloud", "region", "env", "environment", "customer", "tier", "version", "brokers", "label.<key>"}

// SyntaxError is a selector that does not parse. Column is 1-based and
// counts characters (runes) from the start of the selector.
type SyntaxError struct {
	Column int
	Msg    string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("column %d: %s", e.Column, e.Msg) }

// Excerpt returns src and, on the next line, a caret under the error's
// column, for display under a command-line error:
//
//	product=kafak, env=prod
//	        ^
func (e *SyntaxError) Excerpt(src string) string {
	src = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		return r
	}, src)
	col := max(e.Column, 1)
	return src + "\n" + strings.Repeat(" ", col-1) + "^"
}

// Requirement is one comma-separated term of a selector.
type Requirement struct {
	// Field is the canonical field name (FieldID ... FieldLabel).
	Field string
	// Label is the label key when Field is FieldLabel.
	Label string
	Op    Op
	// Values holds one value for =, != and the ordered operators, one or
	// more for in and notin, none for the existence tests. Versions and
	// numbers are in canonical form ("v3.7" is kept as "3.7.0").
	Values []string

	vers []semver.Version // parsed Values for FieldVersion
	nums []int            // parsed Values for FieldBrokers
}

// Selector is a parsed selector. The zero value and nil match everything.
type Selector struct {
	reqs []Requirement
}

// Parse parses src. Errors are *SyntaxError.
func Parse(src string) (*Selector, error) {
	p := &parser{src: []rune(src)}
	s := &Selector{}
	p.space()
	if p.eof() {
		return s, nil
	}
	for {
		r, err := p.requirement()
		if err != nil {
			return nil, err
		}
		s.reqs = append(s.reqs, r)
		p.space()
		if p.eof() {
			return s, nil
		}
		if p.peek() != ',' {
			return nil, p.errf(p.pos, "expected ',' between requirements, found %s", p.describe(p.pos))
		}
		p.pos++
		p.space()
		if p.eof() {
			return nil, p.errf(p.pos, "expected a requirement after ','")
		}
	}
}

// MustParse is Parse that panics on error, for selectors written in code.
func MustParse(src string) *Selector {
	s, err := Parse(src)
	if err != nil {
		panic(fmt.Sprintf("selector %q: %v", src, err))
	}
	return s
}

// Empty reports whether the selector has no requirements (matches all).
func (s *Selector) Empty() bool { return s == nil || len(s.reqs) == 0 }

// Requirements returns a copy of the selector's requirements.
func (s *Selector) Requirements() []Requirement {
	if s == nil {
		return nil
	}
	out := make([]Requirement, len(s.reqs))
	for i, r := range s.reqs {
		r.Values = slices.Clone(r.Values)
		out[i] = r
	}
	return out
}

// Match reports whether c meets every requirement.
func (s *Selector) Match(c fleet.Cluster) bool { return s.MatchPtr(&c) }

// MatchPtr is Match without copying the cluster, for hot loops over a large
// inventory.
func (s *Selector) MatchPtr(c *fleet.Cluster) bool {
	if s == nil {
		return true
	}
	for i := range s.reqs {
		if !s.reqs[i].match(c) {
			return false
		}
	}
	return true
}

// String returns the canonical form: requirements in the order written,
// joined by ", ", no spaces around comparison operators, "env" for the
// environment, versions and numbers normalised, values quoted only when
// they must be. Parse(s.String()) selects exactly what s selects.
func (s *Selector) String() string {
	if s == nil {
		return ""
	}
	var b strings.Builder
	for i, r := range s.reqs {
		if i > 0 {
			b.WriteString(", ")
		}
		r.write(&b)
	}
	return b.String()
}

// String formats one requirement canonically.
func (r Requirement) String() string {
	var b strings.Builder
	r.write(&b)
	return b.String()
}

func (r Requirement) name() string {
	if r.Field == FieldLabel {
		return "label." + r.Label
	}
	return r.Field
}

func (r Requirement) write(b *strings.Builder) {
	switch r.Op {
	case OpExists:
		b.WriteString(r.name())
	case OpNotExists:
		b.WriteString("!")
		b.WriteString(r.name())
	case OpIn, OpNotIn:
		b.WriteString(r.name())
		b.WriteString(" ")
		b.WriteString(string(r.Op))
		b.WriteString(" (")
		for i, v := range r.Values {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quote(v))
		}
		b.WriteString(")")
	default:
		b.WriteString(r.name())
		b.WriteString(string(r.Op))
		if len(r.Values) > 0 {
			b.WriteString(quote(r.Values[0]))
		}
	}
}

// quote returns v bare when it lexes back as one word, else Go-quoted.
func quote(v string) string {
	if v == "" {
		return `""`
	}
	for _, c := range v {
		if !isWordRune(c) {
			return strconv.Quote(v)
		}
	}
	return v
}

func isWordRune(c rune) bool {
	return unicode.IsLetter(c) || unicode.IsDigit(c) || strings.ContainsRune("._-/:+@", c)
}

func isKeyRune(c rune) bool {
	return c < unicode.MaxASCII && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-/", c))
}

// ---- matching ----

func (r *Requirement) match(c *fleet.Cluster) bool {
	switch r.Field {
	case FieldVersion:
		return r.matchVersion(c.Version)
	case FieldBrokers:
		return r.matchNumber(c.Brokers)
	case FieldLabel:
		v, ok := c.Labels[r.Label]
		switch r.Op {
		case OpExists:
			return ok
		case OpNotExists:
			return !ok
		case OpEq, OpIn:
			return ok && slices.Contains(r.Values, v)
		case OpNe, OpNotIn:
			return !ok || !slices.Contains(r.Values, v)
		}
		return false
	}
	var v string
	switch r.Field {
	case FieldID:
		v = c.ID
	case FieldProduct:
		v = c.Product
	case FieldCloud:
		v = c.Cloud
	case FieldRegion:
		v = c.Region
	case FieldEnv:
		v = c.Environment
	case FieldCustomer:
		v = c.Customer
	case FieldTier:
		v = c.Tier
	}
	switch r.Op {
	case OpEq, OpIn:
		return slices.Contains(r.Values, v)
	case OpNe, OpNotIn:
		return !slices.Contains(r.Values, v)
	}
	return false
}

func (r *Requirement) matchVersion(s string) bool {
	v, err := semver.Parse(s)
	if err != nil {
		// Unparseable: unequal to everything, unordered.
		return r.Op == OpNe || r.Op == OpNotIn
	}
	switch r.Op {
	case OpEq, OpIn:
		for _, w := range r.vers {
			if v.Compare(w) == 0 {
				return true
			}
		}
		return false
	case OpNe, OpNotIn:
		for _, w := range r.vers {
			if v.Compare(w) == 0 {
				return false
			}
		}
		return true
	}
	return ordered(r.Op, v.Compare(r.vers[0]))
}

func (r *Requirement) matchNumber(n int) bool {
	switch r.Op {
	case OpEq, OpIn:
		return slices.Contains(r.nums, n)
	case OpNe, OpNotIn:
		return !slices.Contains(r.nums, n)
	}
	c := 0
	switch {
	case n < r.nums[0]:
		c = -1
	case n > r.nums[0]:
		c = 1
	}
	return ordered(r.Op, c)
}

func ordered(op Op, c int) bool {
	switch op {
	case OpLt:
		return c < 0
	case OpLe:
		return c <= 0
	case OpGt:
		return c > 0
	case OpGe:
		return c >= 0
	}
	return false
}

// ---- parsing ----

type parser struct {
	src []rune
	pos int // index into src; column = pos+1
}

func (p *parser) eof() bool  { return p.pos >= len(p.src) }
func (p *parser) peek() rune { return p.src[p.pos] }

func (p *parser) space() {
	for !p.eof() && unicode.IsSpace(p.peek()) {
		p.pos++
	}
}

func (p *parser) errf(pos int, format string, args ...any) *SyntaxError {
	return &SyntaxError{Column: pos + 1, Msg: fmt.Sprintf(format, args...)}
}

// describe names what sits at pos, for "found ..." messages.
func (p *parser) describe(pos int) string {
	if pos >= len(p.src) {
		return "end of selector"
	}
	end := pos
	for end < len(p.src) && isWordRune(p.src[end]) {
		end++
	}
	if end > pos {
		return strconv.Quote(string(p.src[pos:end]))
	}
	return strconv.QuoteRune(p.src[pos])
}

func (p *parser) requirement() (Requirement, error) {
	var r Requirement
	negPos := -1
	if p.peek() == '!' {
		negPos = p.pos
		p.pos++
		p.space()
	}
	fieldPos := p.pos
	for !p.eof() && isKeyRune(p.peek()) {
		p.pos++
	}
	name := string(p.src[fieldPos:p.pos])
	if name == "" {
		if !p.eof() && isWordRune(p.peek()) {
			return r, p.errf(p.pos, "unknown field %s (fields: %s)", p.describe(p.pos), strings.Join(FieldNames, ", "))
		}
		return r, p.errf(p.pos, "expected a field name, found %s", p.describe(p.pos))
	}
	if !p.eof() && isWordRune(p.peek()) {
		return r, p.errf(p.pos, "unexpected character %q in field name", p.peek())
	}
	if key, ok := strings.CutPrefix(name, "label."); ok {
		if key == "" {
			return r, p.errf(p.pos, "expected a label key after \"label.\"")
		}
		r.Field, r.Label = FieldLabel, key
	} else if f, ok := fields[name]; ok {
		r.Field = f
	} else {
		msg := fmt.Sprintf("unknown field %q", name)
		if name == "label" || name == "labels" {
			msg += ` (write label.<key>, e.g. label.team=payments)`
		} else if key, ok := strings.CutPrefix(name, "labels."); ok && key != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", "label."+key)
		} else if s := suggest(name); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		} else {
			msg += " (fields: " + strings.Join(FieldNames, ", ") + ")"
		}
		return r, p.errf(fieldPos, "%s", msg)
	}
	p.space()

	atEnd := p.eof() || p.peek() == ','
	if negPos >= 0 {
		if r.Field != FieldLabel {
			return r, p.errf(negPos, "'!' applies only to a label existence test like !label.%s", name)
		}
		if !atEnd {
			return r, p.errf(p.pos, "expected ',' or end after !%s, found %s", name, p.describe(p.pos))
		}
		r.Op = OpNotExists
		return r, nil
	}
	if atEnd {
		if r.Field == FieldLabel {
			r.Op = OpExists
			return r, nil
		}
		return r, p.errf(p.pos, "expected an operator after %q (=, !=, in, notin, <, <=, >, >=)", name)
	}

	opPos := p.pos
	switch c := p.peek(); {
	case strings.ContainsRune("=!<>", c):
		for !p.eof() && strings.ContainsRune("=!<>", p.peek()) {
			p.pos++
		}
		op := string(p.src[opPos:p.pos])
		switch op {
		case "=", "==":
			r.Op = OpEq
		case "!=":
			r.Op = OpNe
		case "<":
			r.Op = OpLt
		case "<=":
			r.Op = OpLe
		case ">":
			r.Op = OpGt
		case ">=":
			r.Op = OpGe
		default:
			return r, p.errf(opPos, "unknown operator %q", op)
		}
	case isWordRune(c):
		for !p.eof() && isWordRune(p.peek()) {
			p.pos++
		}
		switch op := string(p.src[opPos:p.pos]); op {
		case "in":
			r.Op = OpIn
		case "notin":
			r.Op = OpNotIn
		case "not":
			return r, p.errf(opPos, `unknown operator "not" (write notin)`)
		default:
			return r, p.errf(opPos, "unknown operator %q", op)
		}
	default:
		return r, p.errf(opPos, "unknown operator %q", c)
	}

	switch r.Op {
	case OpLt, OpLe, OpGt, OpGe:
		if r.Field != FieldVersion && r.Field != FieldBrokers {
			return r, p.errf(opPos, "operator %s needs an ordered field (version or brokers), not %s", r.Op, r.name())
		}
	}
	var valuePos []int
	if r.Op == OpIn || r.Op == OpNotIn {
		p.space()
		if p.eof() || p.peek() != '(' {
			return r, p.errf(p.pos, "expected '(' after %s, found %s", r.Op, p.describe(p.pos))
		}
		open := p.pos
		p.pos++
		for {
			p.space()
			if p.eof() {
				return r, p.errf(open, "unterminated list: missing ')'")
			}
			if p.peek() == ')' && len(r.Values) == 0 {
				return r, p.errf(p.pos, "empty list")
			}
			pos := p.pos
			v, err := p.value()
			if err != nil {
				return r, err
			}
			r.Values = append(r.Values, v)
			valuePos = append(valuePos, pos)
			p.space()
			if p.eof() {
				return r, p.errf(open, "unterminated list: missing ')'")
			}
			if p.peek() == ')' {
				p.pos++
				break
			}
			if p.peek() != ',' {
				return r, p.errf(p.pos, "expected ',' or ')' in list, found %s", p.describe(p.pos))
			}
			p.pos++
		}
	} else {
		p.space()
		pos := p.pos
		v, err := p.value()
		if err != nil {
			return r, err
		}
		r.Values = []string{v}
		valuePos = []int{pos}
	}
	return r, p.check(&r, valuePos)
}

// value reads a bare word or a double-quoted string.
func (p *parser) value() (string, error) {
	if p.eof() {
		return "", p.errf(p.pos, "expected a value, found end of selector")
	}
	start := p.pos
	if p.peek() == '"' {
		p.pos++
		for !p.eof() && p.peek() != '"' {
			if p.peek() == '\\' {
				p.pos++
			}
			p.pos++
		}
		if p.eof() {
			return "", p.errf(start, "unterminated string")
		}
		p.pos++
		v, err := strconv.Unquote(string(p.src[start:p.pos]))
		if err != nil {
			return "", p.errf(start, "bad quoted string: %v", err)
		}
		return v, nil
	}
	for !p.eof() && isWordRune(p.peek()) {
		p.pos++
	}
	if p.pos == start {
		return "", p.errf(p.pos, "expected a value, found %s", p.describe(p.pos))
	}
	return string(p.src[start:p.pos]), nil
}

// check validates and canonicalises r's values for its field.
func (p *parser) check(r *Requirement, pos []int) error {
	var known []string
	switch r.Field {
	case FieldProduct:
		known = fleet.Products
	case FieldCloud:
		known = fleet.Clouds
	case FieldEnv:
		known = fleet.Environments
	}
	for i, v := range r.Values {
		switch {
		case r.Field == FieldVersion:
			sv, err := semver.Parse(v)
			if err != nil {
				return p.errf(pos[i], "bad version %q: %s", v, err.(*semver.Error).Msg)
			}
			r.vers = append(r.vers, sv)
			r.Values[i] = sv.String()
		case r.Field == FieldBrokers:
			n, err := strconv.Atoi(v)
			if err != nil {
				return p.errf(pos[i], "bad number %q for brokers", v)
			}
			r.nums = append(r.nums, n)
			r.Values[i] = strconv.Itoa(n)
		case known != nil && !slices.Contains(known, v):
			return p.errf(pos[i], "unknown %s %q (want one of %s)", r.Field, v, strings.Join(known, ", "))
		}
	}
	return nil
}

// suggest returns the known field closest to name, if close enough.
func suggest(name string) string {
	best, bestD := "", 3
	for _, f := range FieldNames {
		if d := levenshtein.ComputeDistance(strings.ToLower(name), f); d < bestD || d == bestD && f < best {
			best, bestD = f, d
		}
	}
	if bestD > 2 {
		return ""
	}
	return best
}
