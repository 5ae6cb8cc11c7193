package plan

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/fleet-rollout/fleet/internal/spec"
)

// An outline keeps the plan's settings, numbers and sizes, and no cluster;
// Expand from the full plan gives the plan back.
func TestOutlineExpand(t *testing.T) {
	p, err := Build(rollout("product=kafka"), smallFleet, Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := p.Outline("k1")
	if o.Hash != p.Hash || o.Total != p.Total || o.Stored != "k1" || len(o.Phases) != len(p.Phases) {
		t.Fatalf("outline %+v", o)
	}
	if o.Excluded != nil || !reflect.DeepEqual(o.ExcludedCounts, p.ExcludedCounts) {
		t.Fatalf("outline lists exclusions %v / counts %v", o.Excluded, o.ExcludedCounts)
	}
	if !reflect.DeepEqual(o.Products, []string{"kafka"}) || !reflect.DeepEqual(o.FromVersions, map[string]int{"3.6.0": 7}) {
		t.Fatalf("products %v, from %v", o.Products, o.FromVersions)
	}
	data, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, ph := range p.Phases {
		for _, b := range ph.Batches {
			for _, c := range b.Clusters {
				if strings.Contains(string(data), `"`+c.ClusterID+`"`) {
					t.Fatalf("the outline names cluster %s: %s", c.ClusterID, data)
				}
			}
		}
	}
	for i, ph := range o.Phases {
		if ph.Name != p.Phases[i].Name || ph.Concurrency != p.Phases[i].Concurrency || ph.RequireApproval != p.Phases[i].RequireApproval {
			t.Fatalf("phase %d: %+v", i, ph)
		}
		for j, b := range ph.Batches {
			full := p.Phases[i].Batches[j]
			if !b.Outlined() || b.Len() != len(full.Clusters) || b.Number != full.Number || b.Clusters != nil {
				t.Fatalf("batch %d: %+v", full.Number, b)
			}
		}
	}
	// A phase added to the outline in full (a retry) stays as it is.
	extra := Phase{Name: "retry-1", Batches: []Batch{{Number: 99, Clusters: []Target{{ClusterID: "x"}}}}}
	o.Phases = append(o.Phases, extra)
	back, err := o.Expand(p)
	if err != nil {
		t.Fatal(err)
	}
	if back.Stored != "" || back.Products != nil || back.FromVersions != nil {
		t.Fatalf("expanded plan keeps outline fields: %+v", back)
	}
	want := *p
	want.Phases = append(append([]Phase(nil), p.Phases...), extra)
	if !reflect.DeepEqual(back, &want) {
		t.Fatalf("expanded plan differs:\n%+v\nwant\n%+v", back, &want)
	}
	// Not its plan, or a plan lacking a batch: an error.
	other := *p
	other.Hash = "000000000000"
	if _, err := o.Expand(&other); err == nil || !strings.Contains(err.Error(), p.Hash) {
		t.Fatalf("expand from another plan: %v", err)
	}
	short := *p
	short.Phases = p.Phases[:1]
	if _, err := o.Expand(&short); err == nil || !strings.Contains(err.Error(), "no batch") {
		t.Fatalf("expand from a plan lacking batches: %v", err)
	}
}

// A 100,000-cluster fleet plans when the plan goes to the plan store
// (Options.Outline): what history keeps, the outline, and what one batch
// loads, its clusters, stay far below Temporal's 2 MB payload cap, while the
// plan itself does not fit in one payload.
func TestOutlineOf100kClusters(t *testing.T) {
	if testing.Short() {
		t.Skip("plans 100,000 clusters")
	}
	inv := generate(100_000, 42)
	r := &spec.Rollout{
		Name:     "big",
		Target:   spec.Target{Version: "3.7.0"},
		Selector: "product in (kafka, connect, ksqldb, schema-registry)",
		Strategy: spec.Strategy{Phases: []spec.Phase{
			{Name: "internal", Selector: "environment=internal", BatchSize: "100", Concurrency: 100},
			{Name: "non-prod", Selector: "environment=non-prod", BatchSize: "1000", Concurrency: 2000},
			{Name: "prod", Selector: "environment=prod", BatchSize: "2000", Concurrency: 4000},
		}},
	}
	if _, err := Build(r, inv, Options{}); err == nil || !strings.Contains(err.Error(), "more than the") {
		t.Fatalf("a 100,000-cluster plan in history: %v", err)
	}
	p, err := Build(r, inv, Options{Outline: true})
	if err != nil {
		t.Fatal(err)
	}
	full, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	outline, err := json.Marshal(p.Outline(strings.Repeat("0", 64)))
	if err != nil {
		t.Fatal(err)
	}
	largest := 0
	for _, ph := range p.Phases {
		for _, b := range ph.Batches {
			bs, err := json.Marshal(b.Clusters)
			if err != nil {
				t.Fatal(err)
			}
			largest = max(largest, len(bs))
		}
	}
	t.Logf("%d clusters in %d batches: plan %d bytes, outline %d bytes, largest batch's clusters %d bytes",
		p.Total, p.Batches(), len(full), len(outline), largest)
	const cap = 2 << 20
	if len(full) <= cap {
		t.Fatalf("the plan (%d bytes) fits in one payload: the test shows nothing", len(full))
	}
	if len(outline) > cap/8 || largest > cap/2 {
		t.Fatalf("outline %d bytes, largest batch %d bytes", len(outline), largest)
	}
}
