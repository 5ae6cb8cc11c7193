package plan

import (
	"fmt"
	"testing"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/spec"
)

// generate makes n clusters deterministically from seed: every product,
// cloud and region, 3% internal / 27% non-prod / 70% prod, 3,000 customers,
// four versions (a quarter at 3.7.0), IDs in scrambled order.
func generate(n int, seed uint64) []fleet.Cluster {
	state := seed
	next := func() uint64 { // splitmix64
		state += 0x9e3779b97f4a7c15
		z := state
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		return z ^ (z >> 31)
	}
	prefix := map[string]string{fleet.ProductKafka: "lkc", fleet.ProductKsqlDB: "lksqlc", fleet.ProductConnect: "lcc", fleet.ProductSchemaRegistry: "lsrc"}
	versions := []string{"3.5.2", "3.6.0", "3.6.1", "3.7.0"}
	teams := []string{"payments", "search", "ads", "core"}
	out := make([]fleet.Cluster, n)
	for i := range out {
		product := fleet.Products[next()%uint64(len(fleet.Products))]
		cloud := fleet.Clouds[next()%uint64(len(fleet.Clouds))]
		regions := fleet.Regions[cloud]
		env := fleet.EnvProd
		switch r := next() % 100; {
		case r < 3:
			env = fleet.EnvInternal
		case r < 30:
			env = fleet.EnvNonProd
		}
		c := fleet.Cluster{
			// Scramble the ID so the inventory is not already in ID order.
			ID:          fmt.Sprintf("%s-%06d", prefix[product], (uint64(i)*7919)%uint64(n)),
			Product:     product,
			Cloud:       cloud,
			Region:      regions[next()%uint64(len(regions))],
			Environment: env,
			Customer:    fmt.Sprintf("cust-%04d", next()%3000),
			Tier:        "dedicated",
			Version:     versions[next()%uint64(len(versions))],
			Brokers:     3 + int(next()%6),
			Generation:  int64(next() % 50),
		}
		if next()%2 == 0 {
			c.Labels = map[string]string{"team": teams[next()%uint64(len(teams))]}
		}
		out[i] = c
	}
	return out
}

func TestGenerate(t *testing.T) {
	inv := generate(1000, 1)
	seen := map[string]bool{}
	for i, c := range inv {
		if err := c.Validate(); err != nil {
			t.Fatalf("cluster %d: %v", i, err)
		}
		if seen[c.ID] {
			t.Fatalf("duplicate id %s", c.ID)
		}
		seen[c.ID] = true
	}
	if fmt.Sprint(generate(50, 9)) != fmt.Sprint(generate(50, 9)) {
		t.Fatal("generate is not deterministic")
	}
}

// BenchmarkBuild100k plans 100,000 clusters with the canary-then-waves
// preset (5 phases) and a selector taking every product below 3.7.0 (about
// 74,000 clusters planned in about 520 batches), with 1,000 busy and 100
// protected clusters. Such a plan does not fit in Temporal's limits
// (checkLimits): the loop times build and checkLimits, which is Build.
func BenchmarkBuild100k(b *testing.B) {
	inv := generate(100_000, 42)
	r := &spec.Rollout{
		Name:     "bench",
		Target:   spec.Target{Version: "3.7.0"},
		Selector: "version<3.7.0, product in (kafka, connect, ksqldb, schema-registry)",
		Strategy: spec.Strategy{Preset: spec.PresetCanaryThenWaves},
	}
	opts := Options{Busy: map[string]string{}}
	for i := 0; i < 1000; i++ {
		opts.Busy[inv[i*97].ID] = "other"
	}
	for i := 0; i < 100; i++ {
		opts.Protected = append(opts.Protected, inv[i*991+1].ID)
	}
	p := benchBuild(b, r, inv, opts)
	b.ReportAllocs()
	for b.Loop() {
		benchBuild(b, r, inv, opts)
	}
	b.ReportMetric(float64(p.Total), "clusters")
	b.ReportMetric(float64(p.Batches()), "batches")
}

// BenchmarkBuild100kOrderBy is BenchmarkBuild100k with every phase ordered
// by cpu, a value for all but every tenth cluster.
func BenchmarkBuild100kOrderBy(b *testing.B) {
	inv := generate(100_000, 42)
	r := &spec.Rollout{
		Name:     "bench",
		Target:   spec.Target{Version: "3.7.0"},
		Selector: "version<3.7.0, product in (kafka, connect, ksqldb, schema-registry)",
		Strategy: spec.Strategy{Preset: spec.PresetCanaryThenWaves},
		OrderBy:  &spec.OrderBy{Metric: "cpu"},
	}
	opts := Options{Metrics: make(map[string]float64, len(inv))}
	for i, c := range inv {
		if i%10 != 0 {
			opts.Metrics[c.ID] = float64((i * 7919) % 9000 / 100)
		}
	}
	p := benchBuild(b, r, inv, opts)
	b.ReportAllocs()
	for b.Loop() {
		benchBuild(b, r, inv, opts)
	}
	b.ReportMetric(float64(p.Total), "clusters")
	b.ReportMetric(float64(p.Batches()), "batches")
}

// benchBuild does what Build does and returns the plan even when it does
// not fit in Temporal's limits (a 100,000-cluster plan does not).
func benchBuild(b *testing.B, r *spec.Rollout, inv []fleet.Cluster, opts Options) *Plan {
	p, asked, err := build(r, inv, opts)
	if err != nil {
		b.Fatal(err)
	}
	if err := checkLimits(p, asked, false); err == nil {
		b.Fatal("a 100,000-cluster plan fits in Temporal's limits: time Build itself")
	}
	return p
}
