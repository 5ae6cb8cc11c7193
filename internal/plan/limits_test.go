package plan

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/spec"
)

// uniform makes n kafka clusters on 3.6.0 with 7-character IDs, spread over
// 50 customers.
func uniform(n int) []fleet.Cluster {
	out := make([]fleet.Cluster, n)
	for i := range out {
		out[i] = fleet.Cluster{ID: fmt.Sprintf("lkc-%06d", i), Product: fleet.ProductKafka, Cloud: fleet.CloudAWS,
			Region: "us-east-1", Environment: fleet.EnvProd, Customer: fmt.Sprintf("cust-%02d", i%50), Tier: "basic",
			Version: "3.6.0", Brokers: 3, Generation: 1}
	}
	return out
}

func TestLimits(t *testing.T) {
	phase := func(batchSize string, concurrency int, strict bool) spec.Phase {
		return spec.Phase{Name: "all", BatchSize: batchSize, Concurrency: concurrency, Strict: strict}
	}
	tests := []struct {
		name  string
		n     int
		phase spec.Phase
		want  string // "" for a plan that fits
	}{
		{name: "10% of 100,000", n: 100_000, phase: phase("10%", 0, false),
			want: `plan: phase "all": batchSize 10% of the phase's 100,000 clusters is 10,000 clusters a batch, more than the 2,000 a batch may hold: a batch's input and the state it carries must stay well under Temporal's 2 MB payload limit; use a batchSize of at most 2000 (or 2% for this phase)`},
		{name: "count above the limit", n: 6000, phase: phase("2500", 0, false),
			want: `plan: phase "all": batchSize 2500 is 2,500 clusters a batch, more than the 2,000 a batch may hold: a batch's input and the state it carries must stay well under Temporal's 2 MB payload limit; use a batchSize of at most 2000 (or 33.33% for this phase)`},
		{name: "count larger than the phase", n: 3000, phase: phase("5000", 0, false),
			want: `plan: phase "all": batchSize 5000 is 3,000 clusters a batch (the whole phase), more than the 2,000 a batch may hold: a batch's input and the state it carries must stay well under Temporal's 2 MB payload limit; use a batchSize of at most 2000 (or 66.66% for this phase)`},
		{name: "a batch at the limit", n: 4000, phase: phase("2000", 0, false)},
		{name: "a percentage at the limit", n: 100_000, phase: phase("2%", 2000, false),
			want: "plan: the plan is 5.82 MB as JSON (100,000 clusters to change), more than the 1.5 MB"}, // the batches fit; the plan does not
		{name: "too many lanes", n: 2000, phase: phase("1", 600, false),
			want: `plan: phase "all": concurrency 600 with batches of 1 cluster would run 1,800 batch workflows at once (600 lanes of up to 3 batches), more than the 1,500 a rollout may run (Temporal fails a workflow with more than 2,000 child workflows pending); use larger batches or a lower concurrency`},
		{name: "lanes at the limit", n: 2000, phase: phase("1", 500, false)},
		{name: "too wide waves", n: 2000, phase: phase("1", 1501, true),
			want: `plan: phase "all": concurrency 1,501 with batches of 1 cluster would run 1,501 batch workflows at once (strict: waves of 1,501 batches), more than the 1,500 a rollout may run (Temporal fails a workflow with more than 2,000 child workflows pending); use larger batches or a lower concurrency`},
		{name: "waves at the limit", n: 2000, phase: phase("2", 3000, true)},
		{name: "plan too large", n: 30_000, phase: phase("1000", 0, false),
			want: `plan: the plan is 1.75 MB as JSON (30,000 clusters to change), more than the 1.5 MB a plan may take: Temporal keeps it in workflow history (the Plan activity's result, the rollout's state when it continues as new), where one payload may not exceed 2 MB; about 25,000 clusters fit in one plan (~61 bytes each); narrow the selector or split the rollout`},
		{name: "a plan that fits", n: 25_000, phase: phase("1000", 0, false)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rollout("product=kafka", tt.phase)
			p, err := Build(r, uniform(tt.n), Options{})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if p.Total != tt.n {
					t.Fatalf("planned %d clusters, want %d", p.Total, tt.n)
				}
				return
			}
			if err == nil {
				t.Fatalf("Build succeeded: %d clusters in %d batches", p.Total, p.Batches())
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error:\n%s\nwant:\n%s", err, tt.want)
			}
		})
	}
}

// TestLimitsExclusionsCount: the clusters listed as excluded take room in
// the plan too, and a phase of each kind is checked.
func TestLimitsExclusionsCount(t *testing.T) {
	inv := uniform(30_000)
	r := rollout("product=kafka", spec.Phase{Name: "all", BatchSize: "1000"})
	for i := 0; i < 20_000; i++ {
		r.Exclude = append(r.Exclude, inv[i].ID)
	}
	_, err := Build(r, inv, Options{})
	if err == nil || !strings.Contains(err.Error(), "(10,000 clusters to change, 20,000 clusters listed as excluded)") {
		t.Fatalf("error: %v", err)
	}

	inv = uniform(9000)
	r = rollout("product=kafka",
		spec.Phase{Name: "one", Selector: "customer in (cust-00, cust-01)", BatchSize: "100%"},
		spec.Phase{Name: "two", Selector: "customer notin (cust-00, cust-01)", BatchSize: "100%"})
	_, err = Build(r, inv, Options{})
	want := `plan: phase "two": batchSize 100% of the phase's 8,640 clusters is 8,640 clusters a batch`
	if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), `"one"`) {
		t.Fatalf("error:\n%v\nwant one error, starting:\n%s", err, want)
	}
}

// TestJSONSize: jsonSize counts exactly what encoding/json writes.
func TestJSONSize(t *testing.T) {
	inv := generate(3000, 5)
	inv = append(inv, cl(`odd"<id>&\ kafka aws us-east-1 prod acme 3.6.0`), cl("ünï kafka aws us-east-1 prod acme 3.6.0"))
	inv[len(inv)-1].Generation = -7
	for i := 0; i < 50; i++ {
		inv[i].Version = ""
	}
	busy := map[string]string{}
	for i := 100; i < 200; i++ {
		busy[inv[i].ID] = fmt.Sprintf("other-\"%d\"\n", i)
	}
	for _, r := range []*spec.Rollout{
		rollout("product in (kafka, connect), version<3.7.0"),
		rollout("", spec.Phase{Name: "all", BatchSize: "7%"}),
		func() *spec.Rollout {
			r := rollout("product=kafka")
			r.Exclude = []string{inv[0].ID, inv[1].ID, `odd"<id>&\`}
			r.Target.Config = map[string]string{"a<b": "c&d"}
			return r
		}(),
	} {
		p, _, err := build(r, inv, Options{Busy: busy, Protected: []string{inv[300].ID}, ProtectedWhy: map[string]string{inv[300].ID: "ünïcode \u2028"}})
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if got, _, _ := jsonSize(p); got != len(b) {
			t.Errorf("jsonSize = %d, json.Marshal writes %d bytes", got, len(b))
		}
	}
}
