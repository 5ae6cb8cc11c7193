package spec

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fleet-rollout/fleet/internal/selector"
	"github.com/fleet-rollout/fleet/internal/semver"
)

const fullSpec = `# Kafka 3.7.1 to every Kafka cluster still below it.
name: kafka-3-7-1
description: Kafka 3.7.1 with the KIP-XYZ fix
requester: jane@example.com
target:
  version: 3.7.1
  config:
    log.retention.hours: "72"
selector: product=kafka, version<3.7.1
include: [lkc-special]
exclude:
  - lkc-fragile
strategy:
  phases:
    - name: canary
      selector: env=internal
      batchSize: 5
      strict: true
      bake: 1m
    - name: non-prod
      selector: env=non-prod
      batchSize: 10%
      concurrency: 20
      bake: 2m
    - name: prod
      selector: env=prod
      batchSize: 2.5%
      bake: 10m
      requireApproval: true
requirePlanApproval: true
monitoring:
  interval: 15s
applyTimeout: 45m
`

func TestParseFullSpec(t *testing.T) {
	r, err := Parse("rollout.yaml", []byte(fullSpec))
	if err != nil {
		t.Fatal(err)
	}
	want := &Rollout{
		Name:        "kafka-3-7-1",
		Description: "Kafka 3.7.1 with the KIP-XYZ fix",
		Requester:   "jane@example.com",
		Target:      Target{Version: "3.7.1", Config: map[string]string{"log.retention.hours": "72"}},
		Selector:    "product=kafka, version<3.7.1",
		Include:     []string{"lkc-special"},
		Exclude:     []string{"lkc-fragile"},
		Strategy: Strategy{Phases: []Phase{
			{Name: "canary", Selector: "env=internal", BatchSize: "5", Strict: true, Bake: Duration(time.Minute)},
			{Name: "non-prod", Selector: "env=non-prod", BatchSize: "10%", Concurrency: 20, Bake: Duration(2 * time.Minute)},
			{Name: "prod", Selector: "env=prod", BatchSize: "2.5%", Bake: Duration(10 * time.Minute), RequireApproval: true},
		}},
		RequirePlanApproval: true,
		Monitoring:          Monitoring{Interval: Duration(15 * time.Second)},
		ApplyTimeout:        Duration(45 * time.Minute),
	}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("Parse:\n got %+v\nwant %+v", r, want)
	}
	if err := r.Validate(); err != nil {
		t.Fatalf("Validate after Parse: %v", err)
	}
	// JSON round trip keeps everything (the workflow receives the spec as JSON).
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Rollout
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, want) {
		t.Fatalf("JSON round trip:\n got %+v\nwant %+v", &back, want)
	}
}

func TestParsePresetAndNormalize(t *testing.T) {
	src := `name: ksql-0-29
target: {version: 0.29.0}
selector: product=ksqldb
strategy:
  preset: canary-then-waves
`
	r, err := Parse("r.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Strategy.Phases) != 0 || r.Monitoring.Interval != 0 || r.ApplyTimeout != 0 {
		t.Fatalf("Parse applied defaults: %+v", r)
	}
	phases, fromPreset := r.Strategy.EffectivePhases()
	if !fromPreset || len(phases) != 5 {
		t.Fatalf("EffectivePhases = %d phases, fromPreset %v", len(phases), fromPreset)
	}
	r.Normalize()
	if r.Monitoring.Interval.D() != 10*time.Second || r.ApplyTimeout.D() != 30*time.Minute {
		t.Fatalf("Normalize defaults: interval %v, applyTimeout %v", r.Monitoring.Interval, r.ApplyTimeout)
	}
	if len(r.Strategy.Phases) != 5 || r.Strategy.Phases[0].Name != "internal-canary" {
		t.Fatalf("Normalize phases: %+v", r.Strategy.Phases)
	}
	if _, fromPreset := r.Strategy.EffectivePhases(); !fromPreset {
		t.Fatal("after Normalize the phases no longer count as the preset's")
	}
	before := *r
	r.Normalize()
	if !reflect.DeepEqual(*r, before) {
		t.Fatal("Normalize is not idempotent")
	}
	// Explicit values survive Normalize.
	r2 := &Rollout{Monitoring: Monitoring{Interval: Duration(time.Second)}, ApplyTimeout: Duration(time.Hour)}
	r2.Normalize()
	if r2.Monitoring.Interval.D() != time.Second || r2.ApplyTimeout.D() != time.Hour {
		t.Fatal("Normalize overwrote explicit values")
	}
	// Explicit phases that differ from the preset are not the preset's.
	s := Strategy{Preset: PresetEmergency, Phases: []Phase{{Name: "x", BatchSize: "1"}}}
	if _, fromPreset := s.EffectivePhases(); fromPreset {
		t.Fatal("explicit phases reported as the preset's")
	}
}

// TestYAMLRoundTrip covers how a spec received as a workflow input is
// re-checked: marshalled back to YAML and parsed again.
func TestYAMLRoundTrip(t *testing.T) {
	for _, src := range []string{fullSpec, "name: r1\ntarget: {version: 1.0.0}\nstrategy: {preset: canary-then-waves}\n"} {
		r, err := Parse("r.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		r.Normalize()
		_, wasPreset := r.Strategy.EffectivePhases()
		b, err := yaml.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse("input", b)
		if err != nil {
			t.Fatalf("re-parse:\n%s\n%v", b, err)
		}
		if !reflect.DeepEqual(back, r) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", back, r)
		}
		if _, isPreset := back.Strategy.EffectivePhases(); isPreset != wasPreset {
			t.Fatal("round trip changed whether the phases are the preset's")
		}
	}
}

func TestPresets(t *testing.T) {
	names := PresetNames()
	if strings.Join(names, ",") != "all-at-once-nonprod,canary-then-waves,emergency" {
		t.Fatalf("PresetNames = %v", names)
	}
	for name, phases := range Presets() {
		r := &Rollout{Name: "x", Target: Target{Version: "1.0.0"}, Strategy: Strategy{Phases: phases}}
		if err := r.Validate(); err != nil {
			t.Errorf("preset %s does not validate: %v", name, err)
		}
		for _, p := range phases {
			if selector.MustParse(p.Selector).Empty() {
				t.Errorf("preset %s phase %s does not narrow", name, p.Name)
			}
		}
	}
	cw, _ := Preset(PresetCanaryThenWaves)
	if !cw[2].RequireApproval || cw[2].Name != "prod-azure" || cw[3].RequireApproval {
		t.Error("canary-then-waves: approval must gate the first prod phase only")
	}
	// Callers get copies.
	cw[0].Name = "mutated"
	if again, _ := Preset(PresetCanaryThenWaves); again[0].Name != "internal-canary" {
		t.Error("Preset returned shared state")
	}
}

func TestParseErrors(t *testing.T) {
	const head = "name: ok\ntarget: {version: 1.0.0}\nstrategy: {preset: emergency}\n"
	tests := []struct {
		name string
		src  string
		want []string // the full error lines, in order
	}{
		{
			name: "batch size",
			src: `name: r1
target:
  version: 3.7.1
strategy:
  phases:
    - name: canary
      selector: env=internal
      batchSize: 5
    - name: prod
      selector: env=prod
      batchSize: ten
`,
			want: []string{`rollout.yaml:11: strategy.phases[1].batchSize: must be a count like 25 or a percentage like 10%`},
		},
		{
			name: "bad percentages and counts",
			src: `name: r1
target: {version: 3.7.1}
strategy:
  phases:
    - {name: a, batchSize: 0%}
    - {name: b, batchSize: 101%}
    - {name: c, batchSize: "0"}
    - {name: d, batchSize: 1.234%}
    - {name: e}
`,
			want: []string{
				`rollout.yaml:5: strategy.phases[0].batchSize: percentage must be more than 0% and at most 100%, got "0%"`,
				`rollout.yaml:6: strategy.phases[1].batchSize: percentage must be more than 0% and at most 100%, got "101%"`,
				`rollout.yaml:7: strategy.phases[2].batchSize: count must be at least 1, got "0"`,
				`rollout.yaml:8: strategy.phases[3].batchSize: must be a count like 25 or a percentage like 10%`,
				`rollout.yaml:9: strategy.phases[4].batchSize: required: must be a count like 25 or a percentage like 10%`,
			},
		},
		{
			name: "unknown fields anywhere",
			src: `name: r1
target:
  version: 3.7.1
  image: foo
selectr: product=kafka
strategy:
  preset: emergency
  phases:
    - name: a
      batchsize: 5
      batchSize: 5
`,
			want: []string{
				`rollout.yaml:4: target.image: unknown field`,
				`rollout.yaml:5: selectr: unknown field; did you mean "selector"?`,
				`rollout.yaml:10: strategy.phases[0].batchsize: unknown field; did you mean "batchSize"?`,
			},
		},
		{
			name: "required fields",
			src:  "description: nothing else\n",
			want: []string{
				`rollout.yaml:1: name: required: the rollout's name, like kafka-3-7-1`,
				`rollout.yaml:1: target.version: required: the version to roll out, like 3.7.1`,
				`rollout.yaml:1: strategy: must name a preset (all-at-once-nonprod, canary-then-waves, emergency) or list phases`,
			},
		},
		{
			name: "target without version points at target",
			src:  "name: r1\nstrategy: {preset: emergency}\ntarget:\n  config: {a: b}\n",
			want: []string{`rollout.yaml:3: target.version: required: the version to roll out, like 3.7.1`},
		},
		{
			name: "name and version",
			src:  "name: Kafka_3.7\ntarget: {version: 3.x}\nstrategy: {preset: emergency}\n",
			want: []string{
				`rollout.yaml:1: name: must be lowercase letters, digits and dashes, starting and ending with a letter or digit, at most 63 characters; got "Kafka_3.7"`,
				`rollout.yaml:2: target.version: invalid version "3.x": minor "x" is not a number`,
			},
		},
		{
			name: "name too long",
			src:  "name: " + strings.Repeat("a", 64) + "\ntarget: {version: 1.0.0}\nstrategy: {preset: emergency}\n",
			want: []string{`rollout.yaml:1: name: must be lowercase letters, digits and dashes, starting and ending with a letter or digit, at most 63 characters; got "` + strings.Repeat("a", 64) + `"`},
		},
		{
			name: "selectors",
			src: `name: r1
target: {version: 3.7.1}
selector: product=kafak, env=prod
strategy:
  phases:
    - name: a
      selector: "env in (prod"
      batchSize: 1
    - name: b
      selector: >-
        env=prod,
        colour=red
      batchSize: 1
`,
			want: []string{
				`rollout.yaml:3: selector: column 9: unknown product "kafak" (want one of connect, kafka, ksqldb, schema-registry)`,
				`rollout.yaml:7: strategy.phases[0].selector: column 8: unterminated list: missing ')'`,
				`rollout.yaml:10: strategy.phases[1].selector: column 11: unknown field "colour" (did you mean "cloud"?)`,
			},
		},
		{
			name: "include and exclude",
			src: head + `include: [a, b, a, ""]
exclude:
  - c
  - b
`,
			want: []string{
				`rollout.yaml:4: include[2]: cluster "a" is listed twice (also include[0])`,
				`rollout.yaml:4: include[3]: must be a cluster id, got an empty string`,
				`rollout.yaml:7: exclude[1]: cluster "b" is also in include[1]`,
			},
		},
		{
			name: "phases",
			src: `name: r1
target: {version: 3.7.1}
strategy:
  phases:
    - name: a
      batchSize: 1
      concurrency: -2
    - name: a
      batchSize: 1
    - batchSize: 1
`,
			want: []string{
				`rollout.yaml:7: strategy.phases[0].concurrency: must not be negative, got -2`,
				`rollout.yaml:8: strategy.phases[1].name: duplicate phase name "a" (also strategy.phases[0])`,
				`rollout.yaml:10: strategy.phases[2].name: required: a name for the phase, like prod-aws`,
			},
		},
		{
			name: "unknown preset",
			src:  "name: r1\ntarget: {version: 1.0.0}\nstrategy:\n  preset: yolo\n",
			want: []string{`rollout.yaml:4: strategy.preset: unknown preset "yolo" (known: all-at-once-nonprod, canary-then-waves, emergency)`},
		},
		{
			name: "types and durations",
			src: head + `monitoring:
  interval: -5s
  disabled: maybe
applyTimeout: 30 minutes
requirePlanApproval: [yes]
exclude: lkc-1
`,
			want: []string{
				`rollout.yaml:5: monitoring.interval: must not be negative, got "-5s"`,
				`rollout.yaml:6: monitoring.disabled: must be true or false, got "maybe"`,
				`rollout.yaml:7: applyTimeout: must be a duration like 90s or 5m (or a number of seconds), got "30 minutes"`,
				`rollout.yaml:8: requirePlanApproval: must be true or false, got a list`,
				`rollout.yaml:9: exclude: must be a list, got "lkc-1"`,
			},
		},
		{
			name: "wrong shapes",
			src: `name: [r1]
target: 3.7.1
strategy:
  phases:
    - just-a-name
    - name: b
      batchSize: {n: 1}
      concurrency: lots
`,
			want: []string{
				`rollout.yaml:1: name: must be text, got a list`,
				`rollout.yaml:2: target: must be a mapping of fields, got "3.7.1"`,
				`rollout.yaml:5: strategy.phases[0]: must be a mapping of fields, got "just-a-name"`,
				`rollout.yaml:7: strategy.phases[1].batchSize: must be text, got a mapping`,
				`rollout.yaml:8: strategy.phases[1].concurrency: must be a whole number, got "lots"`,
			},
		},
		{
			name: "duplicate keys",
			src:  head + "name: again\n",
			want: []string{`rollout.yaml:4: name: defined twice (first at line 1)`},
		},
		{
			// yaml.v3 reports the line where the enclosing mapping starts.
			name: "yaml syntax",
			src:  "name: r1\ntarget:\n  version: 1.0.0\n strategy: x\n",
			want: []string{`rollout.yaml:3: did not find expected key`},
		},
		{
			name: "yaml syntax: tab",
			src:  "name: r1\n\tstrategy: x\n",
			want: []string{`rollout.yaml:2: found a tab character that violates indentation`},
		},
		{
			name: "empty",
			src:  "# nothing\n",
			want: []string{`rollout.yaml:1: empty spec: want a mapping with name, target and strategy`},
		},
		{
			name: "not a mapping",
			src:  "- a\n- b\n",
			want: []string{`rollout.yaml:1: a spec must be a mapping with name, target and strategy, got a list`},
		},
		{
			name: "two documents",
			src:  head + "---\nname: other\n",
			want: []string{`rollout.yaml:4: a spec file holds one rollout, found a second YAML document`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse("rollout.yaml", []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", r)
			}
			var ve ValidationErrors
			if !errors.As(err, &ve) {
				t.Fatalf("error %T is not ValidationErrors", err)
			}
			var first *Error
			if !errors.As(err, &first) || first != ve[0] {
				t.Fatal("errors.As does not find the first *Error")
			}
			got := strings.Split(err.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestSelectorErrorColumn(t *testing.T) {
	src := "name: r1\ntarget: {version: 1.0.0}\nstrategy: {preset: emergency}\nselector: product=kafka, colour=red\n"
	_, err := Parse("r.yaml", []byte(src))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatal(err)
	}
	// "colour" starts at file column 26: 11 for the value start + 16 - 1.
	if e.Line != 4 || e.Column != 26 || e.Field != "selector" {
		t.Fatalf("error at %d:%d %s, want 4:26 selector", e.Line, e.Column, e.Field)
	}
	if line := strings.Split(src, "\n")[3]; !strings.HasPrefix(line[e.Column-1:], "colour") {
		t.Fatalf("column %d does not point at colour in %q", e.Column, line)
	}
	// Quoted values shift by the quote.
	src = "name: r1\ntarget: {version: 1.0.0}\nstrategy: {preset: emergency}\nselector: 'env=prod, colour=red'\n"
	_, err = Parse("r.yaml", []byte(src))
	errors.As(err, &e)
	if line := strings.Split(src, "\n")[3]; !strings.HasPrefix(line[e.Column-1:], "colour") {
		t.Fatalf("column %d does not point at colour in %q", e.Column, line)
	}
}

func TestUnknownFieldPosition(t *testing.T) {
	_, err := Parse("r.yaml", []byte("name: r1\ntarget: {version: 1.0.0, verison: 2}\nstrategy: {preset: emergency}\n"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatal(err)
	}
	if e.Line != 2 || e.Column != 26 || e.Field != "target.verison" {
		t.Fatalf("got %d:%d %s (%s)", e.Line, e.Column, e.Field, e.Msg)
	}
}

func TestAnchorsAndMerge(t *testing.T) {
	src := `name: r1
target: {version: 1.0.0}
strategy:
  phases:
    - &base
      name: a
      selector: env=internal
      batchSize: 10%
      bake: 1m
    - <<: *base
      name: b
      selector: env!=internal
`
	r, err := Parse("r.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if p := r.Strategy.Phases[1]; p.Name != "b" || p.BatchSize != "10%" || p.Bake.D() != time.Minute {
		t.Fatalf("merged phase = %+v", p)
	}
	// A typo inside a merged mapping is still reported.
	_, err = Parse("r.yaml", []byte(strings.Replace(src, "bake: 1m", "bak: 1m", 1)))
	if err == nil || !strings.Contains(err.Error(), `r.yaml:9: strategy.phases[0].bak: unknown field; did you mean "bake"?`) {
		t.Fatalf("err = %v", err)
	}
}

func TestRecursiveMerge(t *testing.T) {
	src := "name: r1\nstrategy: {preset: emergency}\ntarget: &t\n  version: 1.0.0\n  <<: *t\n"
	_, err := Parse("r.yaml", []byte(src))
	want := "r.yaml:5: target: a merge key (<<) must not refer to a mapping that contains it"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
}

func TestValidateInCode(t *testing.T) {
	r := &Rollout{
		Name:       "r1",
		Target:     Target{Version: "1.0.0"},
		Strategy:   Strategy{Phases: []Phase{{Name: "a", BatchSize: "5", Bake: Duration(-time.Second)}}},
		Monitoring: Monitoring{Interval: Duration(-1)},
	}
	err := r.Validate()
	want := "monitoring.interval: must not be negative\nstrategy.phases[0].bake: must not be negative"
	if err == nil || err.Error() != want {
		t.Fatalf("Validate = %v, want\n%s", err, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rollout.yaml")
	if err := os.WriteFile(path, []byte(fullSpec), 0o600); err != nil {
		t.Fatal(err)
	}
	if r, err := Load(path); err != nil || r.Name != "kafka-3-7-1" {
		t.Fatalf("Load = %v, %v", r, err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("name: r1\n"), 0o600)
	_, err := Load(bad)
	if err == nil || !strings.HasPrefix(err.Error(), bad+":1: ") {
		t.Fatalf("Load(bad) = %v, want errors naming %s", err, bad)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load(missing) = %v", err)
	}
}

func TestBatchSize(t *testing.T) {
	tests := []struct {
		in      string
		n, want int
		str     string
	}{
		{"5", 12, 5, "5"},
		{"5", 3, 3, "5"},
		{" 25 ", 100, 25, "25"},
		{"10%", 30, 3, "10%"}, // no float rounding up to 4
		{"10%", 31, 4, "10%"},
		{"10%", 1, 1, "10%"},
		{"5%", 7, 1, "5%"},
		{"2.5%", 1000, 25, "2.5%"},
		{"2.5%", 1001, 26, "2.5%"},
		{"0.01%", 100000, 10, "0.01%"},
		{"33.3%", 3, 1, "33.3%"},
		{"100%", 17, 17, "100%"},
		{"100.0%", 17, 17, "100%"},
		{"50 %", 3, 2, "50%"},
		{"10%", 0, 0, "10%"},
	}
	for _, tt := range tests {
		b, err := ParseBatchSize(tt.in)
		if err != nil {
			t.Fatalf("ParseBatchSize(%q): %v", tt.in, err)
		}
		if got := b.Of(tt.n); got != tt.want {
			t.Errorf("%q.Of(%d) = %d, want %d", tt.in, tt.n, got, tt.want)
		}
		if b.String() != tt.str {
			t.Errorf("%q.String() = %q, want %q", tt.in, b.String(), tt.str)
		}
	}
	for _, bad := range []string{"", "0", "-1", "1.5", "ten", "%", "0%", "0.00%", "100.01%", "1e2%", "-5%", "5%%", "99999999999999999999"} {
		if _, err := ParseBatchSize(bad); err == nil {
			t.Errorf("ParseBatchSize(%q) succeeded", bad)
		}
	}
}

// FuzzParseSpec checks that Parse never panics on any input, that every
// error is located, and that what it accepts validates and normalises.
func FuzzParseSpec(f *testing.F) {
	f.Add([]byte(fullSpec))
	f.Add([]byte("name: r1\ntarget: {version: 1.0.0}\nstrategy: {preset: emergency}\n"))
	f.Add([]byte("name: r1\ntarget: {version: 3.x}\nstrategy:\n  phases:\n    - &a {name: a, batchSize: 5}\n    - <<: *a\n      name: b\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("name: [r1\n"))
	f.Add([]byte("- x\n---\n- y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse("f.yaml", data)
		if err != nil {
			var ve ValidationErrors
			if !errors.As(err, &ve) || len(ve) == 0 {
				t.Fatalf("error %T %v is not a non-empty ValidationErrors", err, err)
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("Parse accepted a spec Validate rejects: %v", err)
		}
		if _, err := semver.Parse(r.Target.Version); err != nil {
			t.Fatalf("accepted bad version %q", r.Target.Version)
		}
		r.Normalize()
		if phases, _ := r.Strategy.EffectivePhases(); len(phases) == 0 {
			t.Fatal("accepted a spec with no phases")
		}
	})
}
