package plan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/spec"
)

// cl makes a cluster: "id product cloud region env customer version".
func cl(desc string) fleet.Cluster {
	f := strings.Fields(desc)
	return fleet.Cluster{ID: f[0], Product: f[1], Cloud: f[2], Region: f[3], Environment: f[4],
		Customer: f[5], Version: f[6], Tier: "basic", Brokers: 3, Generation: int64(len(f[0]))}
}

func rollout(selector string, phases ...spec.Phase) *spec.Rollout {
	r := &spec.Rollout{Name: "r1", Target: spec.Target{Version: "3.7.0"}, Selector: selector}
	if len(phases) == 0 {
		r.Strategy.Preset = spec.PresetCanaryThenWaves
	}
	r.Strategy.Phases = phases
	return r
}

// ids lists each batch's cluster IDs: "1:a,b 2:c".
func ids(p *Plan) string {
	var parts []string
	for _, ph := range p.Phases {
		for _, b := range ph.Batches {
			var cs []string
			for _, t := range b.Clusters {
				cs = append(cs, t.ClusterID)
			}
			parts = append(parts, fmt.Sprintf("%d:%s", b.Number, strings.Join(cs, ",")))
		}
	}
	return strings.Join(parts, " ")
}

func phaseNames(p *Plan) string {
	var names []string
	for _, ph := range p.Phases {
		names = append(names, ph.Name)
	}
	return strings.Join(names, ",")
}

var smallFleet = []fleet.Cluster{
	cl("p-gcp-1 kafka gcp us-central1 prod acme 3.6.0"),
	cl("p-aws-1 kafka aws us-east-1 prod acme 3.6.0"),
	cl("p-aws-2 kafka aws us-east-1 prod globex 3.6.0"),
	cl("p-aws-3 kafka aws eu-west-1 prod acme 3.6.0"),
	cl("i-1 kafka aws us-east-1 internal confluent 3.6.0"),
	cl("i-2 kafka gcp us-central1 internal confluent 3.6.0"),
	cl("n-1 kafka azure eastus non-prod acme 3.6.0"),
	cl("n-2 kafka aws us-west-2 non-prod globex v3.7"), // at target
	cl("c-1 connect aws us-east-1 prod acme 3.6.0"),    // not matched
}

func TestBuildPreset(t *testing.T) {
	p, err := Build(rollout("product=kafka"), smallFleet, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// No azure prod cluster: prod-azure is skipped and its approval moves
	// to prod-aws.
	if got := phaseNames(p); got != "internal-canary,non-prod,prod-aws,prod-gcp" {
		t.Fatalf("phases = %s", got)
	}
	if fmt.Sprint(p.Skipped) != "[prod-azure]" {
		t.Fatalf("skipped = %v", p.Skipped)
	}
	if !p.Phases[2].RequireApproval || p.Phases[3].RequireApproval || p.Phases[0].RequireApproval {
		t.Fatal("the skipped prod-azure approval must gate prod-aws only")
	}
	// internal: batch 5 -> one batch; prod-aws: 5% of 3 -> 1 per batch,
	// ordered by region (eu-west-1 first) then round-robin by customer.
	if got, want := ids(p), "1:i-1,i-2 2:n-1 3:p-aws-3 4:p-aws-1 5:p-aws-2 6:p-gcp-1"; got != want {
		t.Fatalf("batches = %s, want %s", got, want)
	}
	if p.Total != 7 || p.Batches() != 6 || p.Version != "3.7.0" {
		t.Fatalf("total %d, batches %d, version %s", p.Total, p.Batches(), p.Version)
	}
	ph := p.Phases[0]
	if ph.Concurrency != 2 || !ph.Strict || ph.Bake != time.Minute {
		t.Fatalf("internal-canary = %+v", ph)
	}
	if c := p.Phases[2].Concurrency; c != 1 {
		t.Fatalf("prod-aws concurrency = %d, want the batch size 1", c)
	}
	tg := p.Phases[0].Batches[0].Clusters[0]
	if !reflect.DeepEqual(tg, Target{ClusterID: "i-1", Product: "kafka", Generation: 4, FromVersion: "3.6.0"}) {
		t.Fatalf("target = %+v", tg)
	}
	wantCounts := map[string]int{ReasonNotMatched: 1, ReasonAtTarget: 1}
	if !reflect.DeepEqual(p.ExcludedCounts, wantCounts) {
		t.Fatalf("counts = %v", p.ExcludedCounts)
	}
	if !reflect.DeepEqual(p.Excluded, []Exclusion{{ClusterID: "n-2", Reason: ReasonAtTarget}}) {
		t.Fatalf("excluded = %+v (not matched clusters must not be listed)", p.Excluded)
	}
	b := p.Phases[2].Breakdown
	want := &Breakdown{
		Product:     map[string]int{"kafka": 3},
		Cloud:       map[string]int{"aws": 3},
		Region:      map[string]int{"eu-west-1": 1, "us-east-1": 2},
		Environment: map[string]int{"prod": 3},
	}
	if !reflect.DeepEqual(b, want) {
		t.Fatalf("breakdown = %+v", b)
	}
	if len(p.Hash) != 12 || p.Hash != p.ComputeHash() {
		t.Fatalf("hash %q", p.Hash)
	}
}

func TestBuildExclusions(t *testing.T) {
	r := rollout("product=kafka, env=prod")
	r.Include = []string{"c-1", "i-1"}    // neither matches the selector
	r.Exclude = []string{"p-aws-2", "zz"} // unknown IDs in exclude are fine
	r.Strategy.Preset = spec.PresetEmergency
	opts := Options{
		Busy:      map[string]string{"p-aws-1": "other-rollout", "p-aws-3": "r1"},
		Protected: []string{"p-gcp-1", "i-2"},
	}
	p, err := Build(r, smallFleet, opts)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range p.Excluded {
		got[e.ClusterID] = e.Reason + "|" + e.Detail
	}
	want := map[string]string{
		"p-aws-2": ReasonExcluded + "|",
		"p-aws-1": ReasonBusy + "|other-rollout",
		"p-gcp-1": ReasonProtected + "|",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("excluded = %v\nwant %v", got, want)
	}
	// c-1 (included connect) and i-1 (included internal) are planned;
	// p-aws-3 is busy with this very rollout, so it stays.
	// emergency: internal, then everything else at 25% of 2 (1 a batch),
	// eu-west-1 before us-east-1.
	if got := ids(p); got != "1:i-1 2:p-aws-3 3:c-1" {
		t.Fatalf("batches = %s", got)
	}
	// i-2 is protected but not selected: not matched wins.
	wantCounts := map[string]int{ReasonExcluded: 1, ReasonBusy: 1, ReasonProtected: 1, ReasonNotMatched: 3}
	if !reflect.DeepEqual(p.ExcludedCounts, wantCounts) {
		t.Fatalf("counts = %v", p.ExcludedCounts)
	}
	if !sortedByID(p.Excluded) {
		t.Fatal("Excluded is not sorted by ID")
	}

	// A protected cluster stays out even when included.
	r.Include = []string{"p-gcp-1"}
	p, err = Build(r, smallFleet, opts)
	if err != nil {
		t.Fatal(err)
	}
	if p.ExcludedCounts[ReasonProtected] != 1 || p.Excluded[len(p.Excluded)-1] != (Exclusion{ClusterID: "p-gcp-1", Reason: ReasonProtected}) {
		t.Fatalf("counts = %v, excluded %v", p.ExcludedCounts, p.Excluded)
	}
}

func sortedByID(es []Exclusion) bool {
	for i := 1; i < len(es); i++ {
		if es[i-1].ClusterID >= es[i].ClusterID {
			return false
		}
	}
	return true
}

func TestBuildNoPhase(t *testing.T) {
	// all-at-once-nonprod has no prod phase.
	r := rollout("product=kafka")
	r.Strategy.Preset = spec.PresetAllAtOnceNonProd
	p, err := Build(r, smallFleet, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ids(p) != "1:i-1,i-2,n-1" {
		t.Fatalf("batches = %s", ids(p))
	}
	if p.ExcludedCounts[ReasonNoPhase] != 4 || p.Phases[0].Concurrency != 3 {
		t.Fatalf("counts = %v, concurrency %d", p.ExcludedCounts, p.Phases[0].Concurrency)
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name string
		r    *spec.Rollout
		inv  []fleet.Cluster
		want string
	}{
		{
			name: "overlapping phases",
			r: rollout("product=kafka",
				spec.Phase{Name: "aws", Selector: "cloud=aws", BatchSize: "1"},
				spec.Phase{Name: "prod", Selector: "env=prod", BatchSize: "1"},
				spec.Phase{Name: "rest", Selector: "cloud!=aws, env!=prod", BatchSize: "1"}),
			inv:  smallFleet,
			want: `plan: cluster "p-aws-1" matches the selectors of phases "aws" and "prod"; phase selectors must not overlap`,
		},
		{
			name: "catch-all phase overlaps",
			r: rollout("product=kafka",
				spec.Phase{Name: "all", BatchSize: "10%"},
				spec.Phase{Name: "azure-prod", Selector: "cloud=azure, env=prod", BatchSize: "1"}),
			inv:  []fleet.Cluster{cl("a kafka azure eastus prod acme 3.6.0")},
			want: "plan: cluster \"a\" matches the selectors of phases \"all\" and \"azure-prod\"; phase selectors must not overlap",
		},
		{
			name: "explicit phases selecting nothing",
			r: rollout("product=kafka",
				spec.Phase{Name: "aws", Selector: "cloud=aws", BatchSize: "10%"},
				spec.Phase{Name: "azure", Selector: "cloud=azure", BatchSize: "1"},
				spec.Phase{Name: "gcp", Selector: "cloud=gcp", BatchSize: "1"}),
			inv:  []fleet.Cluster{cl("a kafka aws us-east-1 prod acme 3.6.0")},
			want: "plan: phase \"azure\" selects no clusters\nplan: phase \"gcp\" selects no clusters",
		},
		{
			name: "include of an unknown cluster",
			r: func() *spec.Rollout {
				r := rollout("product=kafka")
				r.Include = []string{"ghost", "p-aws-1", "phantom"}
				return r
			}(),
			inv:  smallFleet,
			want: `plan: include names clusters not in the inventory: "ghost", "phantom"`,
		},
		{
			name: "duplicate inventory ids",
			r:    rollout(""),
			inv:  []fleet.Cluster{cl("a kafka aws us-east-1 prod acme 3.6.0"), cl("a kafka aws us-east-1 prod acme 3.6.0")},
			want: `plan: the inventory lists cluster "a" twice`,
		},
		{
			name: "invalid spec",
			r:    &spec.Rollout{Name: "r1", Target: spec.Target{Version: "3.x"}, Strategy: spec.Strategy{Preset: "emergency"}},
			want: "plan: invalid spec:\ntarget.version: invalid version \"3.x\": minor \"x\" is not a number",
		},
		{
			name: "nil spec",
			want: "plan: no rollout spec",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Build(tt.r, tt.inv, Options{})
			if err == nil {
				t.Fatalf("Build succeeded: %s", ids(p))
			}
			if err.Error() != tt.want {
				t.Fatalf("error:\n%s\nwant:\n%s", err, tt.want)
			}
		})
	}
}

func TestExplicitPhaseAllExcludedIsSkipped(t *testing.T) {
	// Re-planning after phase "internal" finished: its clusters are at the
	// target, so it is skipped (not an error) and its gate moves on.
	r := rollout("product=kafka",
		spec.Phase{Name: "internal", Selector: "env=internal", BatchSize: "1", RequireApproval: true},
		spec.Phase{Name: "rest", Selector: "env!=internal", BatchSize: "100%"})
	inv := []fleet.Cluster{
		cl("i-1 kafka aws us-east-1 internal confluent 3.7.0"),
		cl("p-1 kafka aws us-east-1 prod acme 3.6.0"),
	}
	p, err := Build(r, inv, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if phaseNames(p) != "rest" || fmt.Sprint(p.Skipped) != "[internal]" || !p.Phases[0].RequireApproval {
		t.Fatalf("phases %s skipped %v approval %v", phaseNames(p), p.Skipped, p.Phases[0].RequireApproval)
	}
	// Nothing left at all: an empty plan, not an error.
	inv[1].Version = "3.7.0"
	p, err = Build(r, inv, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != 0 || len(p.Phases) != 0 || p.Phases == nil {
		t.Fatalf("empty plan = %+v", p)
	}
}

func TestBatchSizes(t *testing.T) {
	var inv []fleet.Cluster
	for i := range 23 {
		inv = append(inv, cl(fmt.Sprintf("c-%02d kafka aws us-east-1 prod cust%d 3.6.0", i, i)))
	}
	tests := []struct {
		size        string
		concurrency int
		wantBatches []int
		wantConc    int
	}{
		{"5", 0, []int{5, 5, 5, 5, 3}, 5},
		{"10%", 0, []int{3, 3, 3, 3, 3, 3, 3, 2}, 3}, // 2.3 rounded up
		{"100%", 0, []int{23}, 23},
		{"50", 4, []int{23}, 4},
		{"1%", 0, slicesOf(23, 1), 1},
		{"2.5%", 2, slicesOf(23, 1), 2},
	}
	for _, tt := range tests {
		r := rollout("", spec.Phase{Name: "all", BatchSize: tt.size, Concurrency: tt.concurrency})
		p, err := Build(r, inv, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for i, b := range p.Phases[0].Batches {
			got = append(got, len(b.Clusters))
			if b.Number != i+1 {
				t.Fatalf("batch %d numbered %d", i, b.Number)
			}
		}
		if !reflect.DeepEqual(got, tt.wantBatches) || p.Phases[0].Concurrency != tt.wantConc {
			t.Errorf("%s: batches %v concurrency %d, want %v %d", tt.size, got, p.Phases[0].Concurrency, tt.wantBatches, tt.wantConc)
		}
	}
}

func slicesOf(n, v int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = v
	}
	return s
}

func TestNumbersAcrossPhases(t *testing.T) {
	p, err := Build(rollout(""), smallFleet, Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ph := range p.Phases {
		for _, b := range ph.Batches {
			n++
			if b.Number != n {
				t.Fatalf("batch %d numbered %d", n, b.Number)
			}
			gotPh, gotB, ok := p.FindBatch(n)
			if !ok || gotPh.Name != ph.Name || gotB.Number != n {
				t.Fatalf("FindBatch(%d) = %v %v %v", n, gotPh, gotB, ok)
			}
		}
	}
	if _, _, ok := p.FindBatch(n + 1); ok {
		t.Fatal("FindBatch past the end")
	}
	if _, _, ok := p.FindBatch(0); ok {
		t.Fatal("FindBatch(0)")
	}
}

func TestCustomerSpread(t *testing.T) {
	// One region, acme has 4 clusters, globex 2, initech 1: round-robin.
	var inv []fleet.Cluster
	for _, d := range []string{
		"a1 kafka aws us-east-1 prod acme 3.6.0",
		"a2 kafka aws us-east-1 prod acme 3.6.0",
		"a3 kafka aws us-east-1 prod acme 3.6.0",
		"a4 kafka aws us-east-1 prod acme 3.6.0",
		"g1 kafka aws us-east-1 prod globex 3.6.0",
		"g2 kafka aws us-east-1 prod globex 3.6.0",
		"i1 kafka aws us-east-1 prod initech 3.6.0",
		"w1 kafka aws us-west-2 prod acme 3.6.0",
		"n1 kafka aws us-west-2 non-prod acme 3.6.0",
		"z1 kafka azure eastus prod acme 3.6.0",
	} {
		inv = append(inv, cl(d))
	}
	p, err := Build(rollout("", spec.Phase{Name: "all", BatchSize: "3"}), inv, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// non-prod first; then aws before azure; us-east-1 before us-west-2.
	if got, want := ids(p), "1:n1,a1,g1 2:i1,a2,g2 3:a3,a4,w1 4:z1"; got != want {
		t.Fatalf("order = %s, want %s", got, want)
	}
}

func TestDeterministic(t *testing.T) {
	inv := generate(2000, 7)
	r := rollout("product in (kafka, connect), version<3.7.0")
	opts := Options{Busy: map[string]string{inv[3].ID: "other"}, Protected: []string{inv[5].ID}}
	first, err := Build(r, inv, opts)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(first)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5 {
		shuffled := append([]fleet.Cluster(nil), inv...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		p, err := Build(r, shuffled, opts)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := json.Marshal(p)
		if !bytes.Equal(got, want) {
			t.Fatal("a shuffled inventory gives a different plan")
		}
	}
	// The inventory is not modified.
	if again, _ := Build(r, inv, opts); again.Hash != first.Hash {
		t.Fatal("Build modified its inputs")
	}
	// The hash changes with anything the rollout does.
	changes := map[string]func(*spec.Rollout){
		"version":  func(r *spec.Rollout) { r.Target.Version = "3.7.1" },
		"config":   func(r *spec.Rollout) { r.Target.Config = map[string]string{"a": "b"} },
		"selector": func(r *spec.Rollout) { r.Selector = "product=kafka, version<3.7.0" },
		"bake":     func(r *spec.Rollout) { r.Normalize(); r.Strategy.Phases[1].Bake = spec.Duration(time.Hour) },
	}
	for name, change := range changes {
		r2 := rollout("product in (kafka, connect), version<3.7.0")
		change(r2)
		p, err := Build(r2, inv, opts)
		if err != nil {
			t.Fatal(err)
		}
		if p.Hash == first.Hash {
			t.Errorf("changing %s keeps the hash", name)
		}
	}
	// Normalize (preset phases written out) keeps the plan and the hash.
	r3 := rollout("product in (kafka, connect), version<3.7.0")
	r3.Normalize()
	if p, _ := Build(r3, inv, opts); p.Hash != first.Hash {
		t.Error("Normalize changed the plan")
	}
}

func TestJSONCompact(t *testing.T) {
	inv := generate(5000, 3)
	p, err := Build(rollout("product=kafka, env=internal"), inv, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(p)
	var back Plan
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.ComputeHash() != p.Hash {
		t.Fatal("the hash does not survive a JSON round trip")
	}
	if strings.Contains(string(b), `"reason":"not matched"`) {
		t.Fatal("not-matched clusters are listed in the plan")
	}
	if back.ExcludedCounts[ReasonNotMatched] == 0 || len(b) > 64<<10 {
		t.Fatalf("counts %v, %d bytes", back.ExcludedCounts, len(b))
	}
}

func TestRender(t *testing.T) {
	r := rollout("product=kafka")
	r.Target.Config = map[string]string{"log.retention.hours": "72"}
	p, err := Build(r, smallFleet, Options{Busy: map[string]string{"p-gcp-1": "other"}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Render(&buf, p, RenderOptions{Clusters: true, ExcludedIDs: 5}); err != nil {
		t.Fatal(err)
	}
	want := `Plan ` + p.Hash + `: 6 clusters to version 3.7.0 in 3 phases, 5 batches
Config: log.retention.hours=72

Phase 1 internal-canary: 2 clusters, 1 batch of up to 2, concurrency 2, strict, bake 1m0s
  product      kafka 2
  cloud        aws 1, gcp 1
  region       us-central1 1, us-east-1 1
  environment  internal 2
  batch 1: i-1 i-2

Phase 2 non-prod: 1 cluster, 1 batch of up to 1, concurrency 1, bake 2m0s
  product      kafka 1
  cloud        azure 1
  region       eastus 1
  environment  non-prod 1
  batch 2: n-1

Phase 3 prod-aws: 3 clusters, 3 batches of up to 1, concurrency 1, bake 5m0s, requires approval
  product      kafka 3
  cloud        aws 3
  region       us-east-1 2, eu-west-1 1
  environment  prod 3
  batch 3: p-aws-3
  batch 4: p-aws-1
  batch 5: p-aws-2

Skipped phases (no cluster to change): prod-azure, prod-gcp

Excluded: 3 clusters
  already at the target version  1  n-2
  in another running rollout     1  p-gcp-1 (other)
  not matched                    1
`
	if buf.String() != want {
		t.Fatalf("Render:\n%s\nwant:\n%s", buf.String(), want)
	}
	// The lead's call site: Render(w, p) with no options.
	buf.Reset()
	if err := Render(&buf, p); err != nil || strings.Contains(buf.String(), "batch 1:") {
		t.Fatalf("Render without options: %v\n%s", err, buf.String())
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %s", n, got)
		}
	}
}
