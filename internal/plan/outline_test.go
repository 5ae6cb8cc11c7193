package plan

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
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
