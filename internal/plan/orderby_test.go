package plan

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/spec"
)

// orderFleet is one (environment, cloud, region) group whose usual order,
// round-robin by customer, is a-1 a-2 a-3 a-4 a-5; plus two non-prod ones.
var orderFleet = []fleet.Cluster{
	cl("a-5 kafka aws us-east-1 prod globex 3.6.0"),
	cl("a-4 kafka aws us-east-1 prod acme 3.6.0"),
	cl("a-3 kafka aws us-east-1 prod initech 3.6.0"),
	cl("a-2 kafka aws us-east-1 prod globex 3.6.0"),
	cl("a-1 kafka aws us-east-1 prod acme 3.6.0"),
	cl("n-1 kafka aws us-east-1 non-prod acme 3.6.0"),
	cl("n-2 kafka aws us-east-1 non-prod globex 3.6.0"),
}

func TestOrderBy(t *testing.T) {
	desc := &spec.OrderBy{Metric: "cpu"}
	asc := &spec.OrderBy{Metric: "cpu", Direction: spec.OrderAsc}
	prod := func(o *spec.OrderBy) spec.Phase {
		return spec.Phase{Name: "prod", Selector: "env=prod", BatchSize: "2", OrderBy: o}
	}
	nonProd := func(o *spec.OrderBy) spec.Phase {
		return spec.Phase{Name: "non-prod", Selector: "env=non-prod", BatchSize: "1", OrderBy: o}
	}
	spread := map[string]float64{"a-1": 10, "a-2": 50, "a-3": 30, "a-4": 90, "a-5": 70, "n-1": 1, "n-2": 2}
	tests := []struct {
		name      string
		rollout   *spec.OrderBy // the rollout-level orderBy
		phases    []spec.Phase
		opts      Options
		want      string // ids(p)
		orderBy   string // the last phase's Phase.OrderBy
		unordered int    // and Unordered
	}{
		{name: "no orderBy: metrics are ignored", phases: []spec.Phase{prod(nil)},
			opts: Options{Metrics: spread}, want: "1:a-1,a-2 2:a-3,a-4 3:a-5"},
		{name: "desc is the default", phases: []spec.Phase{prod(desc)},
			opts: Options{Metrics: spread}, want: "1:a-4,a-5 2:a-2,a-3 3:a-1", orderBy: "cpu desc"},
		{name: "asc", phases: []spec.Phase{prod(asc)},
			opts: Options{Metrics: spread}, want: "1:a-1,a-3 2:a-2,a-5 3:a-4", orderBy: "cpu asc"},
		{name: "ties keep the usual order", phases: []spec.Phase{prod(desc)},
			opts: Options{Metrics: map[string]float64{"a-1": 5, "a-2": 5, "a-3": 9, "a-4": 5, "a-5": 9}},
			want: "1:a-3,a-5 2:a-1,a-2 3:a-4", orderBy: "cpu desc"},
		{name: "missing values last, in the usual order (desc)", phases: []spec.Phase{prod(desc)},
			opts: Options{Metrics: map[string]float64{"a-5": 1, "a-3": 2}},
			want: "1:a-3,a-5 2:a-1,a-2 3:a-4", orderBy: "cpu desc", unordered: 3},
		{name: "missing values last, in the usual order (asc)", phases: []spec.Phase{prod(asc)},
			opts: Options{Metrics: map[string]float64{"a-5": 1, "a-3": 2}},
			want: "1:a-5,a-3 2:a-1,a-2 3:a-4", orderBy: "cpu asc", unordered: 3},
		{name: "NaN counts as missing", phases: []spec.Phase{prod(asc)},
			opts: Options{Metrics: map[string]float64{"a-1": math.NaN(), "a-2": 3, "a-3": 1, "a-4": 2, "a-5": 0}},
			want: "1:a-5,a-3 2:a-4,a-2 3:a-1", orderBy: "cpu asc", unordered: 1},
		{name: "infinities and negatives are values", phases: []spec.Phase{prod(desc)},
			opts: Options{Metrics: map[string]float64{"a-1": math.Inf(-1), "a-2": -3, "a-3": math.Inf(1), "a-4": 0, "a-5": 1e9}},
			want: "1:a-3,a-5 2:a-4,a-2 3:a-1", orderBy: "cpu desc"},
		{name: "no metrics at all: the usual order", phases: []spec.Phase{prod(desc)},
			want: "1:a-1,a-2 2:a-3,a-4 3:a-5", orderBy: "cpu desc", unordered: 5},
		{name: "values of unplanned clusters are ignored", phases: []spec.Phase{prod(desc)},
			opts: Options{Metrics: map[string]float64{"zzz": 100, "n-1": 100, "a-2": 1}},
			want: "1:a-2,a-1 2:a-3,a-4 3:a-5", orderBy: "cpu desc", unordered: 4},
		{name: "the rollout's orderBy applies to every phase", rollout: asc,
			phases: []spec.Phase{nonProd(nil), prod(nil)}, opts: Options{Metrics: spread},
			want: "1:n-1 2:n-2 3:a-1,a-3 4:a-2,a-5 5:a-4", orderBy: "cpu asc"},
		{name: "a phase's orderBy replaces the rollout's", rollout: asc,
			phases: []spec.Phase{nonProd(nil), prod(desc)}, opts: Options{Metrics: spread},
			want: "1:n-1 2:n-2 3:a-4,a-5 4:a-2,a-3 5:a-1", orderBy: "cpu desc"},
		{name: "only the phases with an orderBy are ordered",
			phases: []spec.Phase{nonProd(desc), prod(nil)}, opts: Options{Metrics: spread},
			want: "1:n-2 2:n-1 3:a-1,a-2 4:a-3,a-4 5:a-5"},
		{name: "two metrics read from MetricsByName", rollout: &spec.OrderBy{Metric: "storage"},
			phases: []spec.Phase{nonProd(nil), prod(desc)},
			opts: Options{
				Metrics: map[string]float64{"a-1": 1000}, // shadowed for both metrics
				MetricsByName: map[string]map[string]float64{
					"cpu":     spread,
					"storage": {"n-1": 80, "n-2": 20},
				}},
			want: "1:n-1 2:n-2 3:a-4,a-5 4:a-2,a-3 5:a-1", orderBy: "cpu desc"},
		{name: "MetricsByName without the metric falls back to Metrics",
			phases: []spec.Phase{prod(desc)},
			opts:   Options{Metrics: spread, MetricsByName: map[string]map[string]float64{"storage": {"a-1": 1}}},
			want:   "1:a-4,a-5 2:a-2,a-3 3:a-1", orderBy: "cpu desc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rollout("product=kafka", tt.phases...)
			r.OrderBy = tt.rollout
			inv := append([]fleet.Cluster(nil), orderFleet...)
			p, err := Build(r, inv, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(p); got != tt.want {
				t.Fatalf("batches = %s, want %s", got, tt.want)
			}
			last := p.Phases[len(p.Phases)-1]
			if last.OrderBy != tt.orderBy || last.Unordered != tt.unordered {
				t.Fatalf("phase %s: orderBy %q unordered %d, want %q %d", last.Name, last.OrderBy, last.Unordered, tt.orderBy, tt.unordered)
			}
			if p.Hash != p.ComputeHash() {
				t.Fatal("hash")
			}
			// Deterministic: the same inputs in another inventory order give
			// the same plan.
			for i, j := 0, len(inv)-1; i < j; i, j = i+1, j-1 {
				inv[i], inv[j] = inv[j], inv[i]
			}
			again, err := Build(r, inv, tt.opts)
			if err != nil || again.Hash != p.Hash || ids(again) != tt.want {
				t.Fatalf("not deterministic: %v %s %s", err, again.Hash, p.Hash)
			}
		})
	}
}

// TestOrderByHash checks the hash depends on the batches only: an orderBy
// that leaves the batches as they were keeps the hash, one that changes them
// changes it.
func TestOrderByHash(t *testing.T) {
	plain := rollout("product=kafka", spec.Phase{Name: "prod", Selector: "env=prod", BatchSize: "2"})
	base, err := Build(plain, orderFleet, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ordered := rollout("product=kafka", spec.Phase{Name: "prod", Selector: "env=prod", BatchSize: "2",
		OrderBy: &spec.OrderBy{Metric: "throughput"}})
	same, err := Build(ordered, orderFleet, Options{Metrics: map[string]float64{"a-1": 5, "a-2": 4, "a-3": 3, "a-4": 2, "a-5": 1}})
	if err != nil {
		t.Fatal(err)
	}
	if ids(same) != ids(base) || same.Hash != base.Hash {
		t.Fatalf("same batches, different hash: %s %s vs %s %s", ids(same), same.Hash, ids(base), base.Hash)
	}
	unvalued, err := Build(ordered, orderFleet, Options{})
	if err != nil || unvalued.Hash != base.Hash {
		t.Fatalf("no values: %v, hash %s vs %s", err, unvalued.Hash, base.Hash)
	}
	changed, err := Build(ordered, orderFleet, Options{Metrics: map[string]float64{"a-5": 9}})
	if err != nil {
		t.Fatal(err)
	}
	if changed.Hash == base.Hash {
		t.Fatalf("different batches (%s), same hash", ids(changed))
	}
}

func TestRenderOrderBy(t *testing.T) {
	r := rollout("product=kafka", spec.Phase{Name: "prod", Selector: "env=prod", BatchSize: "5",
		OrderBy: &spec.OrderBy{Metric: "storage", Direction: "asc"}})
	p, err := Build(r, orderFleet, Options{Metrics: map[string]float64{"a-1": 50, "a-2": 40}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Render(&buf, p, RenderOptions{Clusters: true}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Phase 1 prod: 5 clusters, 1 batch of up to 5, concurrency 5, ordered by storage asc (3 without a value, last)\n",
		"  batch 1: a-2 a-1 a-3 a-4 a-5\n",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Fatalf("Render:\n%s\nwant a line %q", buf.String(), want)
		}
	}
}

// TestOrderByMetricIsStable compares orderByMetric with a stable sort on
// random values full of ties, missing values and NaNs.
func TestOrderByMetricIsStable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		n := rng.IntN(60)
		cs := make([]*fleet.Cluster, n)
		values := map[string]float64{}
		for i := range cs {
			cs[i] = &fleet.Cluster{ID: fmt.Sprintf("c-%03d", i)}
			switch r := rng.IntN(10); {
			case r == 0: // missing
			case r == 1:
				values[cs[i].ID] = math.NaN()
			case r == 2:
				values[cs[i].ID] = math.Inf(rng.IntN(2)*2 - 1)
			default:
				values[cs[i].ID] = float64(rng.IntN(5)) - 2 // many ties
			}
		}
		rng.Shuffle(n, func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
		for _, desc := range []bool{false, true} {
			want := slices.Clone(cs)
			slices.SortStableFunc(want, func(a, b *fleet.Cluster) int {
				va, oka := values[a.ID]
				vb, okb := values[b.ID]
				oka, okb = oka && !math.IsNaN(va), okb && !math.IsNaN(vb)
				switch {
				case oka != okb:
					if oka {
						return -1
					}
					return 1
				case !oka:
					return 0
				case desc:
					return cmp.Compare(vb, va)
				}
				return cmp.Compare(va, vb)
			})
			got := slices.Clone(cs)
			orderByMetric(got, values, desc)
			if !slices.Equal(got, want) {
				t.Fatalf("round %d desc=%v: orderByMetric differs from a stable sort", round, desc)
			}
		}
	}
}

func TestOrderByBrokersReadsTheInventory(t *testing.T) {
	inv := append([]fleet.Cluster(nil), orderFleet...)
	brokers := map[string]int{"a-1": 3, "a-2": 12, "a-3": 6, "a-4": 6, "a-5": 9}
	for i := range inv {
		if n, ok := brokers[inv[i].ID]; ok {
			inv[i].Brokers = n
		}
	}
	for _, tt := range []struct {
		dir, want string
	}{
		// Largest first; the tie (a-3, a-4) keeps the usual order.
		{"", "1:a-2,a-5 2:a-3,a-4 3:a-1"},
		{spec.OrderAsc, "1:a-1,a-3 2:a-4,a-5 3:a-2"},
	} {
		r := rollout("product=kafka", spec.Phase{Name: "prod", Selector: "env=prod", BatchSize: "2",
			OrderBy: &spec.OrderBy{Metric: spec.OrderBrokers, Direction: tt.dir}})
		// Datadog values are not consulted for brokers.
		p, err := Build(r, inv, Options{Metrics: map[string]float64{"a-1": 100}})
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(p); got != tt.want {
			t.Fatalf("%s: batches = %s, want %s", tt.dir, got, tt.want)
		}
		if p.Phases[0].Unordered != 0 {
			t.Fatalf("every cluster has a broker count; unordered %d", p.Phases[0].Unordered)
		}
	}
}
