package spec

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const orderBySpec = `name: r1
target: {version: 3.7.1}
orderBy: {metric: cpu}
strategy:
  phases:
    - {name: canary, selector: env=internal, batchSize: 5}
    - name: prod
      selector: env=prod
      batchSize: 10%
      orderBy:
        metric: storage
        direction: asc
`

func TestParseOrderBy(t *testing.T) {
	r, err := Parse("rollout.yaml", []byte(orderBySpec))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.OrderBy, &OrderBy{Metric: "cpu"}) {
		t.Fatalf("orderBy = %+v", r.OrderBy)
	}
	canary, prod := r.Strategy.Phases[0], r.Strategy.Phases[1]
	if canary.OrderBy != nil || !reflect.DeepEqual(prod.OrderBy, &OrderBy{Metric: "storage", Direction: "asc"}) {
		t.Fatalf("phase orderBy = %+v, %+v", canary.OrderBy, prod.OrderBy)
	}
	// The phase's own orderBy replaces the rollout's; the default is desc.
	if got := r.PhaseOrderBy(canary); got.String() != "cpu desc" || !got.Descending() {
		t.Fatalf("canary orders by %v", got)
	}
	if got := r.PhaseOrderBy(prod); got.String() != "storage asc" || got.Descending() {
		t.Fatalf("prod orders by %v", got)
	}
	if got := strings.Join(r.OrderMetrics(), ","); got != "cpu,storage" {
		t.Fatalf("OrderMetrics = %s", got)
	}
	// Brokers come from the inventory: nothing to read from Datadog.
	byBrokers := *r
	byBrokers.OrderBy = &OrderBy{Metric: OrderBrokers}
	byBrokers.Strategy.Phases = []Phase{canary}
	if got := byBrokers.OrderMetrics(); len(got) != 0 {
		t.Fatalf("OrderMetrics with brokers = %v", got)
	}
	if err := byBrokers.Validate(); err != nil {
		t.Fatalf("orderBy brokers: %v", err)
	}

	// JSON (workflow input) and YAML (revalidation) round trips keep it.
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"orderBy":{"metric":"cpu"}`) {
		t.Fatalf("json: %s", b)
	}
	var back Rollout
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(&back, r) {
		t.Fatalf("JSON round trip: %v\n got %+v\nwant %+v", err, &back, r)
	}
	y, err := yaml.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse("input", y)
	if err != nil || !reflect.DeepEqual(again, r) {
		t.Fatalf("YAML round trip: %v\n%s", err, y)
	}

	// A spec without orderBy keeps its JSON shape and orders nothing.
	plain, err := Parse("r.yaml", []byte("name: r1\ntarget: {version: 1.0.0}\nstrategy: {preset: emergency}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(plain); strings.Contains(string(b), "orderBy") {
		t.Fatalf("json without orderBy: %s", b)
	}
	if plain.OrderMetrics() != nil || plain.PhaseOrderBy(Phase{}) != nil {
		t.Fatal("a spec without orderBy orders by a metric")
	}
}

func TestOrderByWithPreset(t *testing.T) {
	r, err := Parse("r.yaml", []byte("name: r1\ntarget: {version: 1.0.0}\nstrategy: {preset: canary-then-waves}\norderBy: {metric: throughput, direction: asc}\n"))
	if err != nil {
		t.Fatal(err)
	}
	r.Normalize()
	phases, fromPreset := r.Strategy.EffectivePhases()
	if !fromPreset {
		t.Fatal("a rollout-level orderBy must not make the preset's phases explicit")
	}
	for _, p := range phases {
		if got := r.PhaseOrderBy(p).String(); got != "throughput asc" {
			t.Fatalf("phase %s orders by %s", p.Name, got)
		}
	}
	if got := strings.Join(r.OrderMetrics(), ","); got != "throughput" {
		t.Fatalf("OrderMetrics = %s", got)
	}
}

func TestOrderByErrors(t *testing.T) {
	const head = "name: r1\ntarget: {version: 1.0.0}\n"
	const phases = "strategy:\n  phases:\n    - name: a\n      batchSize: 5\n"
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "unknown metric at the rollout level",
			src:  head + "strategy: {preset: emergency}\norderBy: {metric: latency}\n",
			want: []string{`r.yaml:4: orderBy.metric: unknown metric "latency" (known: brokers, cpu, partitions, storage, throughput)`},
		},
		{
			name: "unknown metric in a phase",
			src:  head + phases + "      orderBy:\n        metric: CPU\n",
			want: []string{`r.yaml:8: strategy.phases[0].orderBy.metric: unknown metric "CPU" (known: brokers, cpu, partitions, storage, throughput)`},
		},
		{
			name: "bad direction",
			src:  head + phases + "      orderBy: {metric: cpu, direction: up}\n",
			want: []string{`r.yaml:7: strategy.phases[0].orderBy.direction: must be asc or desc, got "up"`},
		},
		{
			name: "metric missing",
			src:  head + "strategy: {preset: emergency}\norderBy:\n  direction: asc\n",
			want: []string{`r.yaml:4: orderBy.metric: required: the metric to order by (brokers, cpu, partitions, storage, throughput)`},
		},
		{
			name: "not a mapping",
			src:  head + "strategy: {preset: emergency}\norderBy: cpu\n",
			want: []string{`r.yaml:4: orderBy: must be a mapping of fields, got "cpu"`},
		},
		{
			name: "unknown field",
			src:  head + "strategy: {preset: emergency}\norderBy: {metric: cpu, dir: asc}\n",
			want: []string{`r.yaml:4: orderBy.dir: unknown field`},
		},
		{
			name: "with other errors, in file order",
			src:  head + phases + "      orderBy: {metric: disk}\n    - name: b\n      batchSize: ten\norderBy: {metric: cpu, direction: down}\n",
			want: []string{
				`r.yaml:7: strategy.phases[0].orderBy.metric: unknown metric "disk" (known: brokers, cpu, partitions, storage, throughput)`,
				`r.yaml:9: strategy.phases[1].batchSize: must be a count like 25 or a percentage like 10%`,
				`r.yaml:10: orderBy.direction: must be asc or desc, got "down"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("r.yaml", []byte(tt.src))
			if err == nil {
				t.Fatal("no error")
			}
			if got := err.Error(); got != strings.Join(tt.want, "\n") {
				t.Fatalf("errors:\n%s\nwant:\n%s", got, strings.Join(tt.want, "\n"))
			}
		})
	}

	// Validate (a spec built in code or received as JSON) names the field.
	r := &Rollout{Name: "r1", Target: Target{Version: "1.0.0"}, Strategy: Strategy{Preset: PresetEmergency},
		OrderBy: &OrderBy{Metric: "nope"}}
	if err := r.Validate(); err == nil || !strings.HasPrefix(err.Error(), `orderBy.metric: unknown metric "nope"`) {
		t.Fatalf("Validate = %v", err)
	}
}
