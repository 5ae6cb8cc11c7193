package policy

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agnivade/levenshtein"
	"gopkg.in/yaml.v3"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/selector"
	"github.com/fleet-rollout/fleet/internal/srcerr"
)

// Error is one problem in a policy file, located like the rollout spec's:
//
//	policy.yaml:7: blackouts[1].end: must be after start (2026-11-27T00:00:00Z)
//
// Line and Column are 1-based, 0 when unknown (a Config checked by
// Prepare). Field is the path to the value at fault, with 0-based indexes.
type Error = srcerr.Error

// ValidationErrors is every problem found in one policy, in file order.
type ValidationErrors = srcerr.List

// Load reads and parses the policy file at path. See Parse.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse parses and checks a policy file; filename only labels errors. On
// failure it returns ValidationErrors, every problem found in file order,
// each naming file:line: field: reason. Unknown fields, duplicate keys,
// values of the wrong shape, unknown roles and environments, selectors
// that do not parse, blackouts without a name, start or end, or whose end
// is not after their start, and protections that name no clusters are
// errors. An empty file is an empty policy (nothing blacked out or
// protected, access control off).
//
// The file format:
//
//	blackouts:                  # no start while one that applies is active
//	  - name: black-friday      # required, unique
//	    start: 2026-11-27T00:00:00Z   # RFC 3339 with an offset, or a date (midnight UTC)
//	    end: 2026-11-30T00:00:00Z     # exclusive
//	    reason: peak retail traffic
//	    customers: [cust-042]   # optional scope: customers, clusters (IDs),
//	    clusters: [lkc-00042]   # selector; any of them; none = every cluster
//	    selector: env=prod
//	protected:                  # never touched unless an admin forces it
//	  - {clusters: [lkc-00007], reason: "regulator audit in progress"}
//	  - {selector: "label.tier=critical-bank", reason: "never touch without an admin"}
//	access: open                # explicit: no access control (a production
//	                            # worker refuses a policy without access)
//	access:                     # omit to turn access control off; present
//	                            # (even empty) turns it on
//	  identity: signed          # signed (default): requests carry an ed25519
//	                            # proof; asserted: the typed name is trusted
//	  people:                   # keys and aliases; one person, one identity
//	    alice: {keys: ["ed25519:..."], aliases: ["slack:U024BE7LH"]}
//	  services:                 # signers that vouch for others
//	    fleet-worker: {keys: ["ed25519:..."], vouch: ["slack:"]}
//	  roles: {alice: [operator], bob: approver, carol: [admin]}
//	  approvers: {prod: [bob, carol]}   # optional, per environment
//	  default: viewer           # role of unlisted identities (default viewer)
//
// Lists of text also accept a single value (bob: approver).
func Parse(filename string, data []byte) (*Config, error) {
	d := &decoder{file: filename, pos: map[string]*yaml.Node{}, bad: map[string]bool{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &Config{}, nil
		}
		return nil, d.yamlError(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, d.yamlError(err)
	default:
		return nil, ValidationErrors{{File: filename, Line: extra.Line, Column: extra.Column,
			Msg: "a policy file holds one YAML document, found a second"}}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	root = resolve(root)
	if isNull(root) {
		return &Config{}, nil
	}
	cfg := &Config{}
	if root.Kind != yaml.MappingNode {
		d.fail(root, "", "a policy must be a mapping with blackouts, protected and access, got %s", describe(root))
		return nil, d.errs
	}
	d.fields(root, "", []string{"blackouts", "protected", "access"}, func(key string, v *yaml.Node, p string) {
		switch key {
		case "blackouts":
			d.list(v, p, func(e *yaml.Node, ep string) {
				cfg.Blackouts = append(cfg.Blackouts, d.blackout(e, ep))
			})
		case "protected":
			d.list(v, p, func(e *yaml.Node, ep string) {
				cfg.Protections = append(cfg.Protections, d.protection(e, ep))
			})
		case "access":
			if v.Kind == yaml.ScalarNode && v.Tag != "!!null" {
				// "access: open" says, explicitly, that there is no access
				// control: every identity may do everything.
				if s := d.text(v, p); s != "open" && s != "" {
					d.fail(v, p, "must be a mapping (roles, people, ...) or the word open, got %q", s)
				}
				cfg.OpenAccess = true
				return
			}
			cfg.Access = d.access(v, p)
		}
	})
	d.errs = append(d.errs, cfg.check(d)...)
	if len(d.errs) > 0 {
		return nil, sortErrors(d.errs)
	}
	return cfg, nil
}

// decoder walks the YAML tree into a Config, recording where each field
// sits and reporting structural problems.
type decoder struct {
	file string
	errs ValidationErrors
	pos  map[string]*yaml.Node // field path -> value node (key node for maps)
	bad  map[string]bool       // field paths with a structural error
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	e := &Error{File: d.file, Field: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
	d.bad[path] = true
}

// broken reports whether the field at path, or one inside it, already has
// a structural error, so a semantic check on it would only repeat the news.
func broken(d *decoder, path string) bool {
	if d == nil {
		return false
	}
	for p := range d.bad { // order does not matter: any match answers
		if p == path || strings.HasPrefix(p, path+".") || strings.HasPrefix(p, path+"[") {
			return true
		}
	}
	return false
}

// failAt reports a problem with the field at path, at its recorded place;
// d may be nil (Prepare), giving an unlocated error.
func failAt(d *decoder, errs *ValidationErrors, path, format string, args ...any) {
	e := &Error{Field: path, Msg: fmt.Sprintf(format, args...)}
	if d != nil {
		e.File = d.file
		for p := path; ; p = parentPath(p) {
			if n, ok := d.pos[p]; ok {
				e.Line, e.Column = n.Line, n.Column
				break
			}
			if p == "" {
				break
			}
		}
	}
	*errs = append(*errs, e)
}

func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// fields walks a mapping of known keys, rejecting unknown and duplicate
// ones; each is called for every known key in file order.
func (d *decoder) fields(n *yaml.Node, path string, known []string, each func(key string, v *yaml.Node, p string)) {
	d.mapping(n, path, func(k, v *yaml.Node, p string) {
		if !slices.Contains(known, k.Value) {
			msg := "unknown field"
			if s := suggest(k.Value, known); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			} else {
				msg += " (fields: " + strings.Join(known, ", ") + ")"
			}
			d.fail(k, p, "%s", msg)
			return
		}
		each(k.Value, v, p)
	})
}

// mapping walks the pairs of a mapping with text keys, rejecting duplicate
// keys; each gets the key node, the resolved value and the value's path.
func (d *decoder) mapping(n *yaml.Node, path string, each func(k, v *yaml.Node, p string)) {
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
			d.fail(k, path, "keys must be plain text (merge keys and anchors as keys are not supported), got %s", describe(k))
			continue
		}
		p := k.Value
		if path != "" {
			p = path + "." + k.Value
		}
		if prev, dup := seen[k.Value]; dup {
			d.fail(k, p, "defined twice (first at line %d)", prev.Line)
			continue
		}
		seen[k.Value] = k
		if isNull(v) {
			d.pos[p] = k
		} else {
			d.pos[p] = v
		}
		each(k, v, p)
	}
}

// list walks a sequence (null is an empty list).
func (d *decoder) list(n *yaml.Node, path string, each func(e *yaml.Node, p string)) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "must be a list, got %s", describe(n))
		return
	}
	for i, e := range n.Content {
		p := path + "[" + strconv.Itoa(i) + "]"
		e = resolve(e)
		d.pos[p] = e
		each(e, p)
	}
}

// object checks that n is a mapping of the known fields.
func (d *decoder) object(n *yaml.Node, path string, known []string, each func(key string, v *yaml.Node, p string)) {
	if isNull(n) {
		d.fail(n, path, "must be a mapping of %s, got nothing", strings.Join(known, ", "))
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "must be a mapping of %s, got %s", strings.Join(known, ", "), describe(n))
		return
	}
	d.fields(n, path, known, each)
}

// text reads a scalar as text ("" for null).
func (d *decoder) text(n *yaml.Node, path string) string {
	if isNull(n) {
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "must be text, got %s", describe(n))
		return ""
	}
	return n.Value
}

// texts reads a list of non-empty text values, or a single one.
func (d *decoder) texts(n *yaml.Node, path string) []string {
	if isNull(n) {
		return nil
	}
	if n.Kind == yaml.ScalarNode {
		if n.Value == "" {
			d.fail(n, path, "must not be empty")
			return nil
		}
		return []string{n.Value}
	}
	out := []string{}
	d.list(n, path, func(e *yaml.Node, p string) {
		s := d.text(e, p)
		if s == "" && e.Kind == yaml.ScalarNode {
			d.fail(e, p, "must not be empty")
			return
		}
		if s != "" {
			out = append(out, s)
		}
	})
	return out
}

// timestamp reads an RFC 3339 time with an offset, or a date (midnight
// UTC). A time without an offset is rejected as ambiguous.
func (d *decoder) timestamp(n *yaml.Node, path string) time.Time {
	if isNull(n) {
		return time.Time{}
	}
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "must be a time like 2026-11-27T00:00:00Z, got %s", describe(n))
		return time.Time{}
	}
	s := strings.TrimSpace(n.Value)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05Z07:00", "2006-01-02T15:04Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04"} {
		if _, err := time.Parse(layout, s); err == nil {
			d.fail(n, path, "%q has no time zone: add an offset like Z or +01:00", s)
			return time.Time{}
		}
	}
	d.fail(n, path, "must be a time like 2026-11-27T00:00:00Z (RFC 3339) or a date like 2026-11-27, got %q", s)
	return time.Time{}
}

var (
	blackoutFields   = []string{"name", "customers", "clusters", "selector", "start", "end", "reason"}
	protectionFields = []string{"clusters", "customers", "selector", "reason"}
	accessFields     = []string{"identity", "people", "services", "roles", "approvers", "default"}
	personFields     = []string{"keys", "aliases"}
	serviceFields    = []string{"keys", "vouch"}
)

func (d *decoder) blackout(n *yaml.Node, path string) Blackout {
	var b Blackout
	d.object(n, path, blackoutFields, func(key string, v *yaml.Node, p string) {
		switch key {
		case "name":
			b.Name = d.text(v, p)
		case "customers":
			b.Customers = d.texts(v, p)
		case "clusters":
			b.Clusters = d.texts(v, p)
		case "selector":
			b.Selector = d.text(v, p)
		case "start":
			b.Start = d.timestamp(v, p)
		case "end":
			b.End = d.timestamp(v, p)
		case "reason":
			b.Reason = d.text(v, p)
		}
	})
	return b
}

func (d *decoder) protection(n *yaml.Node, path string) Protection {
	var pr Protection
	d.object(n, path, protectionFields, func(key string, v *yaml.Node, p string) {
		switch key {
		case "clusters":
			pr.Clusters = d.texts(v, p)
		case "customers":
			pr.Customers = d.texts(v, p)
		case "selector":
			pr.Selector = d.text(v, p)
		case "reason":
			pr.Reason = d.text(v, p)
		}
	})
	return pr
}

func (d *decoder) access(n *yaml.Node, path string) *Access {
	a := &Access{}
	if isNull(n) {
		a.Identity = IdentitySigned
		return a // "access:" with nothing: on, everyone the default viewer
	}
	d.object(n, path, accessFields, func(key string, v *yaml.Node, p string) {
		switch key {
		case "roles":
			a.Roles = map[string][]Role{}
			d.stringMap(v, p, func(id string, v *yaml.Node, p string) {
				rs := []Role{}
				for _, s := range d.texts(v, p) {
					rs = append(rs, Role(s))
				}
				a.Roles[id] = rs
			})
		case "approvers":
			a.Approvers = map[string][]string{}
			d.stringMap(v, p, func(env string, v *yaml.Node, p string) {
				ids := d.texts(v, p)
				if ids == nil {
					ids = []string{}
				}
				a.Approvers[env] = ids
			})
		case "default":
			a.Default = Role(d.text(v, p))
		case "identity":
			a.Identity = d.text(v, p)
		case "people":
			a.People = []Person{}
			d.stringMap(v, p, func(name string, v *yaml.Node, p string) {
				per := Person{Name: name}
				if !isNull(v) {
					d.object(v, p, personFields, func(key string, v *yaml.Node, p string) {
						switch key {
						case "keys":
							per.Keys = d.texts(v, p)
						case "aliases":
							per.Aliases = d.texts(v, p)
						}
					})
				}
				a.People = append(a.People, per)
			})
			slices.SortFunc(a.People, func(x, y Person) int { return strings.Compare(x.Name, y.Name) })
		case "services":
			a.Services = map[string]Service{}
			d.stringMap(v, p, func(name string, v *yaml.Node, p string) {
				var svc Service
				d.object(v, p, serviceFields, func(key string, v *yaml.Node, p string) {
					switch key {
					case "keys":
						svc.Keys = d.texts(v, p)
					case "vouch":
						svc.Vouch = d.texts(v, p)
					}
				})
				a.Services[name] = svc
			})
		}
	})
	if a.Identity == "" {
		// Signed unless the file says otherwise: a name typed by the
		// caller proves nothing.
		a.Identity = IdentitySigned
	}
	return a
}

// stringMap walks a mapping with free text keys.
func (d *decoder) stringMap(n *yaml.Node, path string, each func(key string, v *yaml.Node, p string)) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "must be a mapping, got %s", describe(n))
		return
	}
	d.mapping(n, path, func(k, v *yaml.Node, p string) { each(k.Value, v, p) })
}

// check runs the semantic checks shared by Parse and Prepare, compiling
// selectors as it goes. d locates errors; it is nil for Prepare.
func (cfg *Config) check(d *decoder) ValidationErrors {
	var errs ValidationErrors
	names := map[string]string{}
	for i := range cfg.Blackouts {
		b := &cfg.Blackouts[i]
		p := "blackouts[" + strconv.Itoa(i) + "]"
		switch {
		case b.Name == "":
			failAt(d, &errs, p+".name", "required: name the blackout (it appears in reasons)")
		case names[b.Name] != "":
			failAt(d, &errs, p+".name", "blackout %q is already defined at %s", b.Name, names[b.Name])
		default:
			names[b.Name] = p
		}
		if b.Start.IsZero() && !broken(d, p+".start") {
			failAt(d, &errs, p+".start", "required: when the blackout begins, like 2026-11-27T00:00:00Z")
		}
		if b.End.IsZero() && !broken(d, p+".end") {
			failAt(d, &errs, p+".end", "required: when the blackout ends, like 2026-11-30T00:00:00Z")
		}
		if !b.Start.IsZero() && !b.End.IsZero() && !b.End.After(b.Start) {
			failAt(d, &errs, p+".end", "must be after start (%s), got %s", b.Start.Format(time.RFC3339), b.End.Format(time.RFC3339))
		}
		b.sel = compileSelector(d, &errs, p+".selector", b.Selector)
		checkTexts(d, &errs, p+".customers", b.Customers)
		checkTexts(d, &errs, p+".clusters", b.Clusters)
	}
	for i := range cfg.Protections {
		pr := &cfg.Protections[i]
		p := "protected[" + strconv.Itoa(i) + "]"
		if len(pr.Clusters) == 0 && len(pr.Customers) == 0 && pr.Selector == "" && !broken(d, p) {
			failAt(d, &errs, p, "names no clusters: give clusters, customers or selector")
		}
		pr.sel = compileSelector(d, &errs, p+".selector", pr.Selector)
		checkTexts(d, &errs, p+".customers", pr.Customers)
		checkTexts(d, &errs, p+".clusters", pr.Clusters)
	}
	if a := cfg.Access; a != nil {
		for _, id := range sortedKeys(a.Roles) {
			p := "access.roles." + id
			if strings.TrimSpace(id) == "" {
				failAt(d, &errs, p, "identity must not be empty")
			}
			if len(a.Roles[id]) == 0 {
				failAt(d, &errs, p, "give at least one role (%s)", roleList())
			}
			for j, r := range a.Roles[id] {
				if !r.Valid() {
					failAt(d, &errs, p+"["+strconv.Itoa(j)+"]", "unknown role %q (want %s)", r, roleList())
				}
			}
		}
		for _, env := range sortedKeys(a.Approvers) {
			p := "access.approvers." + env
			if !slices.Contains(fleet.Environments, env) {
				failAt(d, &errs, p, "unknown environment %q (want %s)", env, strings.Join(fleet.Environments, ", "))
			}
			checkTexts(d, &errs, p, a.Approvers[env])
		}
		if a.Default != "" && !a.Default.Valid() {
			failAt(d, &errs, "access.default", "unknown role %q (want %s)", a.Default, roleList())
		}
		a.checkIdentity(d, &errs)
	}
	return errs
}

func compileSelector(d *decoder, errs *ValidationErrors, path, src string) *selector.Selector {
	if src == "" {
		return nil
	}
	s, err := selector.Parse(src)
	if err != nil {
		failAt(d, errs, path, "%v", err)
		return nil
	}
	return s
}

func checkTexts(d *decoder, errs *ValidationErrors, path string, list []string) {
	for j, s := range list {
		if strings.TrimSpace(s) == "" {
			failAt(d, errs, path+"["+strconv.Itoa(j)+"]", "must not be empty")
		}
	}
}

func roleList() string {
	s := make([]string, len(Roles))
	for i, r := range Roles {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// sortErrors orders errors by position (unlocated last), stably, and drops
// exact repeats.
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

var yamlLineRe = regexp.MustCompile(`^(?:yaml: )?line (\d+): (?s:(.*))$`)

// yamlError converts a yaml.v3 syntax error into a located Error.
func (d *decoder) yamlError(err error) ValidationErrors {
	e := &Error{File: d.file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	if sub := yamlLineRe.FindStringSubmatch(err.Error()); sub != nil {
		e.Line, _ = strconv.Atoi(sub[1])
		e.Msg = sub[2]
	}
	return ValidationErrors{e}
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
	if isNull(n) {
		return "nothing"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "..."
	}
	return strconv.Quote(v)
}

// suggest returns the known name closest to name, if close enough.
func suggest(name string, known []string) string {
	best, bestD := "", 3
	for _, f := range known {
		if d := levenshtein.ComputeDistance(strings.ToLower(name), f); d < bestD {
			best, bestD = f, d
		}
	}
	if len(name) <= bestD {
		return ""
	}
	return best
}
