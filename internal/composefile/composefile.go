// Package composefile reads docker-compose.yml the way the checks need it:
// services with their environment (interpolated like compose does), ports,
// bind mounts, and the topics and search attributes the one-shot init
// services create. internal/composecheck checks the file's shape with it;
// internal/prodwire runs the production binaries wired exactly as it says.
package composefile

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// File is the part of a compose file the checks read.
type File struct {
	Services map[string]Service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
	Configs  map[string]any     `yaml:"configs"`
}

// Service is one compose service.
type Service struct {
	Image       string         `yaml:"image"`
	Build       *Build         `yaml:"build"`
	Profiles    []string       `yaml:"profiles"`
	DependsOn   DependsOn      `yaml:"depends_on"`
	Environment map[string]any `yaml:"environment"`
	Entrypoint  any            `yaml:"entrypoint"`
	Ports       []string       `yaml:"ports"`
	Volumes     []string       `yaml:"volumes"`
	Configs     []struct {
		Source string `yaml:"source"`
	} `yaml:"configs"`
	Command     any `yaml:"command"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

// Build is a service's build section.
type Build struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

// Dependency is one depends_on entry.
type Dependency struct {
	Condition string `yaml:"condition"`
	// Required is false for `required: false` (compose only warns when the
	// dependency is not running).
	Required bool
}

// DependsOn accepts both compose forms: a list of names, or a map of name to
// {condition, required}.
type DependsOn map[string]Dependency

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *DependsOn) UnmarshalYAML(n *yaml.Node) error {
	*d = DependsOn{}
	switch n.Kind {
	case yaml.SequenceNode:
		var names []string
		if err := n.Decode(&names); err != nil {
			return err
		}
		for _, name := range names {
			(*d)[name] = Dependency{Condition: "service_started", Required: true}
		}
	default:
		var m map[string]struct {
			Condition string `yaml:"condition"`
			Required  *bool  `yaml:"required"`
		}
		if err := n.Decode(&m); err != nil {
			return err
		}
		for name, v := range m {
			dep := Dependency{Condition: v.Condition, Required: v.Required == nil || *v.Required}
			if dep.Condition == "" {
				dep.Condition = "service_started"
			}
			(*d)[name] = dep
		}
	}
	return nil
}

// Load reads and parses a compose file.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f File
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &f, nil
}

// Lookup finds a variable of the environment compose interpolates from (the
// shell, .env); ok is false when it is unset.
type Lookup func(name string) (value string, ok bool)

// NoEnv is the environment with nothing set: every default applies.
func NoEnv(string) (string, bool) { return "", false }

var varRef = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:[^}])*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// Interpolate expands a value the way compose does: $$ is a literal $;
// ${VAR} and $VAR; ${VAR:-default} (unset or empty) and ${VAR-default}
// (unset); ${VAR:?message} and ${VAR?message} (required: an error names the
// variable and the message).
func Interpolate(s string, lookup Lookup) (string, error) {
	var firstErr error
	out := varRef.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sub := varRef.FindStringSubmatch(m)
		name, op, arg := sub[1], sub[2], sub[3]
		if name == "" {
			name = sub[4]
		}
		v, ok := lookup(name)
		switch op {
		case ":-":
			if !ok || v == "" {
				return arg
			}
		case "-":
			if !ok {
				return arg
			}
		case ":?", "?":
			if !ok || (op == ":?" && v == "") {
				if firstErr == nil {
					firstErr = &RequiredError{Var: name, Message: arg}
				}
				return ""
			}
		}
		return v
	})
	return out, firstErr
}

// RequiredError is a ${VAR:?message} whose variable is not set.
type RequiredError struct{ Var, Message string }

func (e *RequiredError) Error() string {
	return fmt.Sprintf("required variable %s is not set: %s", e.Var, e.Message)
}

// Env returns the service's environment, interpolated with lookup.
func (s Service) Env(lookup Lookup) (map[string]string, error) {
	out := make(map[string]string, len(s.Environment))
	for k, v := range s.Environment {
		raw := ""
		switch x := v.(type) {
		case nil:
			// "KEY:" with no value: passed through from the environment.
			if val, ok := lookup(k); ok {
				raw = val
			}
			out[k] = raw
			continue
		case string:
			raw = x
		default:
			raw = fmt.Sprint(x)
		}
		val, err := Interpolate(raw, lookup)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = val
	}
	return out, nil
}

// Mount is a bind mount: a path of the project seen at Target in the
// container.
type Mount struct {
	Source   string // absolute, on this machine
	Target   string
	ReadOnly bool
}

// BindMounts returns the service's bind mounts (sources starting with . or
// /), relative sources resolved against dir (the compose file's directory).
func (s Service) BindMounts(dir string) []Mount {
	var out []Mount
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || !(strings.HasPrefix(parts[0], ".") || strings.HasPrefix(parts[0], "/")) {
			continue
		}
		src := parts[0]
		if !filepath.IsAbs(src) {
			src = filepath.Join(dir, src)
		}
		out = append(out, Mount{Source: src, Target: parts[1], ReadOnly: len(parts) > 2 && strings.Contains(parts[2], "ro")})
	}
	return out
}

// ContainerPorts returns the container side of the service's published
// ports ("127.0.0.1:8088:8088" gives 8088).
func (s Service) ContainerPorts() ([]int, error) {
	var out []int
	for _, p := range s.Ports {
		i := strings.LastIndex(p, ":")
		n, err := strconv.Atoi(strings.TrimSuffix(p[i+1:], "/tcp"))
		if err != nil {
			return nil, fmt.Errorf("port %q: %w", p, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// Script joins a service's command into one shell script.
func (s Service) Script() string {
	switch v := s.Command.(type) {
	case string:
		return v
	case []any:
		var out []string
		for _, e := range v {
			if str, ok := e.(string); ok {
				out = append(out, str)
			}
		}
		return strings.Join(out, "\n")
	}
	return ""
}

var (
	forTopics  = regexp.MustCompile(`(?m)^\s*for\s+topic\s+in\s+([^;\n]+);`)
	partitions = regexp.MustCompile(`--partitions\s+(\d+)`)
	attrPair   = regexp.MustCompile(`--name\s+(\S+)\s+--type\s+(\S+)`)
	namespace  = regexp.MustCompile(`--namespace\s+(\S+)`)
)

// Topics returns the topics a kafka-init script creates (the words of its
// `for topic in ...;` loop), sorted, and the partitions it gives them.
func Topics(script string) (topics []string, parts int, err error) {
	m := forTopics.FindStringSubmatch(script)
	if m == nil {
		return nil, 0, fmt.Errorf("no `for topic in ...;` loop in the script")
	}
	topics = strings.Fields(m[1])
	sort.Strings(topics)
	pm := partitions.FindStringSubmatch(script)
	if pm == nil {
		return nil, 0, fmt.Errorf("no --partitions in the script")
	}
	parts, err = strconv.Atoi(pm[1])
	return topics, parts, err
}

// SearchAttributes returns the search attributes a temporal-init script
// registers (name -> type as the temporal CLI spells it: Keyword, Bool,
// KeywordList...) and the namespace it names.
func SearchAttributes(script string) (attrs map[string]string, ns string) {
	attrs = map[string]string{}
	for _, m := range attrPair.FindAllStringSubmatch(script, -1) {
		attrs[m[1]] = m[2]
	}
	if m := namespace.FindStringSubmatch(script); m != nil {
		ns = m[1]
	}
	return attrs, ns
}
