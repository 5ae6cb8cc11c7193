package plan

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/spec"
)

// kc makes a kafka cluster in aws us-east-1 whose customer is its own ID,
// so a phase orders its clusters by ID.
func kc(id, env, version string, gen int64, config map[string]string) fleet.Cluster {
	return fleet.Cluster{ID: id, Product: fleet.ProductKafka, Cloud: fleet.CloudAWS, Region: "us-east-1",
		Environment: env, Customer: id, Tier: "basic", Version: version, Brokers: 3, Generation: gen, Config: config}
}

// recoveryRollout: 3.7.0 with config a=1; canary (internal, one cluster a
// batch, strict, concurrency 1, bake 1m) then prod (three a batch,
// concurrency 6, bake 5m).
func recoveryRollout() *spec.Rollout {
	r := rollout("product=kafka",
		spec.Phase{Name: "canary", Selector: "env=internal", BatchSize: "1", Concurrency: 1, Strict: true, Bake: spec.Duration(time.Minute)},
		spec.Phase{Name: "prod", Selector: "env=prod", BatchSize: "3", Concurrency: 6, Bake: spec.Duration(5 * time.Minute)})
	r.Target.Config = map[string]string{"a": "1"}
	return r
}

// recoverySource is a rollout that ran batches 1 to 5 of 6, and the
// inventory now:
//
//	canary  1:i1 (done, applied)  2:i2 (failed at broker 2)  3:i3 (done, gone from the inventory)
//	prod    4:p1 (aborted at broker 1), p2 (aborted before a broker), p3 (skipped)
//	        5:p4 (done), p5 (done, but the data plane never applied it), p6 (done, changed since)
//	        6:p7 (did not run; applied during the handover), p8 (did not run)
//
// Every cluster came from 3.6.0 at generation 10, except p7 (3.5.2) and i1
// (config a=0).
func recoverySource(t *testing.T) (Source, []fleet.Cluster) {
	t.Helper()
	before := []fleet.Cluster{
		kc("i1", fleet.EnvInternal, "3.6.0", 10, map[string]string{"a": "0", "b": "x"}),
		kc("i2", fleet.EnvInternal, "3.6.0", 10, nil),
		kc("i3", fleet.EnvInternal, "3.6.0", 10, nil),
		kc("p1", fleet.EnvProd, "3.6.0", 10, nil),
		kc("p2", fleet.EnvProd, "3.6.0", 10, nil),
		kc("p3", fleet.EnvProd, "3.6.0", 10, nil),
		kc("p4", fleet.EnvProd, "3.6.0", 10, nil),
		kc("p5", fleet.EnvProd, "3.6.0", 10, nil),
		kc("p6", fleet.EnvProd, "3.6.0", 10, nil),
		kc("p7", fleet.EnvProd, "3.5.2", 10, nil),
		kc("p8", fleet.EnvProd, "3.6.0", 10, nil),
	}
	p, err := Build(recoveryRollout(), before, Options{})
	require.NoError(t, err)
	require.Equal(t, "1:i1 2:i2 3:i3 4:p1,p2,p3 5:p4,p5,p6 6:p7,p8", ids(p), "fixture")
	src := Source{
		ID:   "rollout/r1",
		Plan: p,
		Ran:  []int{1, 2, 3, 4, 5},
		Outcomes: map[string]Outcome{
			"i2": {State: OutcomeFailed, Broker: 2},
			"p1": {State: OutcomeAborted, Broker: 1},
			"p2": {State: OutcomeAborted},
			"p3": {State: OutcomeSkipped},
			"p4": {State: OutcomeDone, Broker: 3},
		},
	}
	now := []fleet.Cluster{
		kc("i1", fleet.EnvInternal, "3.7.0", 11, map[string]string{"a": "1", "b": "x"}),
		kc("i2", fleet.EnvInternal, "3.6.0", 10, nil),
		kc("p1", fleet.EnvProd, "3.7.0", 10, nil),
		kc("p2", fleet.EnvProd, "3.6.0", 10, nil),
		kc("p3", fleet.EnvProd, "3.6.0", 10, nil),
		kc("p4", fleet.EnvProd, "3.7.0", 11, map[string]string{"a": "1"}),
		kc("p5", fleet.EnvProd, "3.6.0", 10, nil),
		kc("p6", fleet.EnvProd, "3.8.0", 12, nil),
		kc("p7", fleet.EnvProd, "3.7.0", 11, map[string]string{"a": "1"}),
		kc("p8", fleet.EnvProd, "3.6.0", 10, nil),
	}
	return src, now
}

// sourceTarget returns src's target for cluster id, to change it in place.
func sourceTarget(t *testing.T, src Source, id string) *Target {
	t.Helper()
	for i := range src.Plan.Phases {
		for j := range src.Plan.Phases[i].Batches {
			for k := range src.Plan.Phases[i].Batches[j].Clusters {
				if tg := &src.Plan.Phases[i].Batches[j].Clusters[k]; tg.ClusterID == id {
					return tg
				}
			}
		}
	}
	t.Fatalf("no target %s in the source plan", id)
	return nil
}

func TestChanges(t *testing.T) {
	src, now := recoverySource(t)
	chs, excl, counts := Changes(src, now)

	var got []string
	for _, ch := range chs {
		got = append(got, ch.Target.ClusterID+":"+ch.Phase+":"+ch.State)
	}
	require.Equal(t, []string{
		"i1:canary:done",   // unlisted in a ran batch, generation applied
		"i2:canary:failed", // failed
		"p1:prod:aborted",  // aborted after a broker
		"p4:prod:done",     // listed as done
		"p7:prod:done",     // batch did not run, but the data plane applied its generation
	}, got)
	// A change carries the source's target as planned.
	require.Equal(t, Target{ClusterID: "i1", Product: "kafka", Generation: 11, FromVersion: "3.6.0",
		FromConfig: map[string]string{"a": "0"}}, chs[0].Target)
	require.Equal(t, Target{ClusterID: "p7", Product: "kafka", Generation: 11, FromVersion: "3.5.2",
		FromConfig: map[string]string{"a": ""}}, chs[4].Target)

	require.Equal(t, []Exclusion{
		{ClusterID: "i3", Reason: ReasonGone},
		{ClusterID: "p6", Reason: ReasonChangedSince, Detail: "applied generation 12, the rollout's was 11"},
	}, excl)
	// p2 (aborted before a broker), p3 (skipped), p5 (never applied), p8
	// (batch did not run) were not changed.
	require.Equal(t, map[string]int{ReasonNotChanged: 4, ReasonGone: 1, ReasonChangedSince: 1}, counts)

	require.Equal(t, src.Plan.Hash, src.Plan.ComputeHash(), "Changes modified the source plan")
}

// TestChangesCases: one cluster of a ran (or not ran) batch at a time.
func TestChangesCases(t *testing.T) {
	target := Target{ClusterID: "c", Product: "kafka", Generation: 5, FromVersion: "3.6.0"}
	src := func(ran bool, o *Outcome) Source {
		s := Source{ID: "rollout/x", Plan: &Plan{Version: "3.7.0", Phases: []Phase{
			{Name: "all", Concurrency: 1, Batches: []Batch{{Number: 1, Clusters: []Target{target}}}},
		}}}
		if ran {
			s.Ran = []int{1}
		}
		if o != nil {
			s.Outcomes = map[string]Outcome{"c": *o}
		}
		return s
	}
	inv := func(gen int64) []fleet.Cluster { return []fleet.Cluster{kc("c", fleet.EnvProd, "3.7.0", gen, nil)} }
	tests := []struct {
		name    string
		src     Source
		inv     []fleet.Cluster
		state   string // "" for not listed in the changes
		reason  string // the exclusion or count
		details string
	}{
		{"ran, unlisted, applied", src(true, nil), inv(5), OutcomeDone, "", ""},
		{"ran, unlisted, not applied", src(true, nil), inv(4), "", ReasonNotChanged, ""},
		{"ran, unlisted, changed since", src(true, nil), inv(6), "", ReasonChangedSince, "applied generation 6, the rollout's was 5"},
		{"ran, unlisted, gone", src(true, nil), nil, "", ReasonGone, ""},
		{"ran, listed done, not applied", src(true, &Outcome{State: OutcomeDone, Broker: 3}), inv(4), "", ReasonNotChanged, ""},
		{"failed", src(true, &Outcome{State: OutcomeFailed}), inv(4), OutcomeFailed, "", ""},
		{"failed, gone", src(true, &Outcome{State: OutcomeFailed, Broker: 1}), nil, "", ReasonGone, ""},
		{"failed, changed since", src(true, &Outcome{State: OutcomeFailed, Broker: 1}), inv(9), "", ReasonChangedSince, "applied generation 9, the rollout's was 5"},
		{"aborted mid-cluster", src(true, &Outcome{State: OutcomeAborted, Broker: 2}), inv(4), OutcomeAborted, "", ""},
		{"aborted before a broker", src(true, &Outcome{State: OutcomeAborted}), inv(4), "", ReasonNotChanged, ""},
		{"skipped", src(true, &Outcome{State: OutcomeSkipped}), inv(4), "", ReasonNotChanged, ""},
		{"not ran, not applied", src(false, nil), inv(4), "", ReasonNotChanged, ""},
		{"not ran, applied during the handover", src(false, nil), inv(5), OutcomeDone, "", ""},
		{"not ran, changed by another", src(false, nil), inv(6), "", ReasonNotChanged, ""},
		{"not ran, gone", src(false, nil), nil, "", ReasonNotChanged, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chs, excl, counts := Changes(tt.src, tt.inv)
			if tt.state != "" {
				require.Equal(t, []Change{{Target: target, Phase: "all", State: tt.state}}, chs)
				require.Empty(t, excl)
				require.Empty(t, counts)
				return
			}
			require.Empty(t, chs)
			require.Equal(t, map[string]int{tt.reason: 1}, counts)
			if tt.reason == ReasonNotChanged {
				require.Empty(t, excl, "not-changed clusters are counted, not listed")
			} else {
				require.Equal(t, []Exclusion{{ClusterID: "c", Reason: tt.reason, Detail: tt.details}}, excl)
			}
		})
	}

	chs, excl, counts := Changes(Source{ID: "rollout/x"}, inv(5))
	require.Nil(t, chs)
	require.Nil(t, excl)
	require.Empty(t, counts)
}

// noBreakdowns returns p's phases without their breakdowns.
func noBreakdowns(p *Plan) []Phase {
	out := slices.Clone(p.Phases)
	for i := range out {
		out[i].Breakdown = nil
	}
	return out
}

func TestRollback(t *testing.T) {
	src, now := recoverySource(t)
	srcHash := src.Plan.Hash
	p, err := Rollback(src, now, RollbackOptions{Name: "r1-rollback"})
	require.NoError(t, err)

	none := map[string]string{"a": ""}
	// i2 and p1 failed: their inventory generation is 10, the rollout sent
	// 11; the rollback sends 12, never the failed attempt's again.
	i2 := Target{ClusterID: "i2", Product: "kafka", Generation: 12, FromVersion: "3.6.0", Version: "3.6.0", Config: none}
	p1 := Target{ClusterID: "p1", Product: "kafka", Generation: 12, FromVersion: "3.7.0", Version: "3.6.0", Config: none, Downgrade: true}
	p4 := Target{ClusterID: "p4", Product: "kafka", Generation: 12, FromVersion: "3.7.0", Version: "3.6.0", Config: none, Downgrade: true}
	p7 := Target{ClusterID: "p7", Product: "kafka", Generation: 12, FromVersion: "3.7.0", Version: "3.5.2", Config: none, Downgrade: true}
	i1 := Target{ClusterID: "i1", Product: "kafka", Generation: 12, FromVersion: "3.7.0", Version: "3.6.0", Config: map[string]string{"a": "0"}, Downgrade: true}
	canary := func(name string, batches ...Batch) Phase {
		return Phase{Name: name, Concurrency: 1, Strict: true, Bake: time.Minute, Batches: batches}
	}
	prod := func(batches ...Batch) Phase {
		return Phase{Name: "prod", Concurrency: 6, Bake: 5 * time.Minute, Batches: batches}
	}
	// The failed and aborted clusters first, at the pace of the more
	// careful of their phases (canary); then the done ones, last phase
	// first, each phase with its source's batch size, concurrency, bake
	// and strictness.
	require.Equal(t, []Phase{
		canary(FailedPhase, Batch{Number: 1, Clusters: []Target{i2}}, Batch{Number: 2, Clusters: []Target{p1}}),
		prod(Batch{Number: 3, Clusters: []Target{p4, p7}}),
		canary("canary", Batch{Number: 4, Clusters: []Target{i1}}),
	}, noBreakdowns(p))
	require.Equal(t, &Breakdown{
		Product:     map[string]int{"kafka": 2},
		Cloud:       map[string]int{"aws": 2},
		Region:      map[string]int{"us-east-1": 2},
		Environment: map[string]int{"internal": 1, "prod": 1},
	}, p.Phases[0].Breakdown)
	for _, ph := range p.Phases {
		require.False(t, ph.RequireApproval, ph.Name)
	}
	require.Equal(t, 5, p.Total)
	require.Equal(t, 4, p.Downgrades, "every cluster but i2 (still on 3.6.0) moves to an older version")
	require.Equal(t, "3.6.0", p.Version, "the version most clusters return to")
	require.Nil(t, p.Config)
	require.Empty(t, p.Skipped)
	require.Equal(t, []Exclusion{
		{ClusterID: "i3", Reason: ReasonGone},
		{ClusterID: "p6", Reason: ReasonChangedSince, Detail: "applied generation 12, the rollout's was 11"},
	}, p.Excluded)
	require.Equal(t, map[string]int{ReasonNotChanged: 4, ReasonGone: 1, ReasonChangedSince: 1}, p.ExcludedCounts)
	require.Equal(t, p.ComputeHash(), p.Hash)
	require.Len(t, p.Hash, 12)
	require.Equal(t, srcHash, src.Plan.ComputeHash(), "Rollback modified the source plan")

	// Each target's To is its own version and config, not the plan's.
	v, c := p.Phases[2].Batches[0].Clusters[0].To(p)
	require.Equal(t, "3.6.0", v)
	require.Equal(t, map[string]string{"a": "0"}, c)
	v, c = p.Phases[1].Batches[0].Clusters[1].To(p)
	require.Equal(t, "3.5.2", v)
	require.Equal(t, none, c)

	// Forward keeps the source's phase order, after the failed ones.
	fwd, err := Rollback(src, now, RollbackOptions{Forward: true})
	require.NoError(t, err)
	require.Equal(t, []Phase{
		canary(FailedPhase, Batch{Number: 1, Clusters: []Target{i2}}, Batch{Number: 2, Clusters: []Target{p1}}),
		canary("canary", Batch{Number: 3, Clusters: []Target{i1}}),
		prod(Batch{Number: 4, Clusters: []Target{p4, p7}}),
	}, noBreakdowns(fwd))
	require.NotEqual(t, p.Hash, fwd.Hash)

	// Deterministic; a JSON round trip keeps the hash.
	again, err := Rollback(src, now, RollbackOptions{Name: "r1-rollback"})
	require.NoError(t, err)
	require.Equal(t, p, again)
	b, err := json.Marshal(p)
	require.NoError(t, err)
	var back Plan
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, p.Hash, back.ComputeHash())
	require.Equal(t, p.Phases, back.Phases)
}

// TestRollbackFailedPhasePace: the failed-first phase takes the settings of
// the failed clusters' phase.
func TestRollbackFailedPhasePace(t *testing.T) {
	src, now := recoverySource(t)
	delete(src.Outcomes, "i2") // i2 is done: only p1 (prod) is left to fail
	now[1] = kc("i2", fleet.EnvInternal, "3.7.0", 11, nil)
	p, err := Rollback(src, now, RollbackOptions{})
	require.NoError(t, err)
	require.Equal(t, "failed-first,prod,canary", phaseNames(p))
	ph := p.Phases[0]
	require.Equal(t, 6, ph.Concurrency)
	require.False(t, ph.Strict)
	require.Equal(t, 5*time.Minute, ph.Bake)
	require.Equal(t, "1:p1 2:p4,p7 3:i1 4:i2", ids(p), "canary: one a batch")
}

func TestRollbackExclusions(t *testing.T) {
	src, now := recoverySource(t)
	sourceTarget(t, src, "i2").FromVersion = "" // a plan that did not record it
	p, err := Rollback(src, now, RollbackOptions{
		Name:      "r1-rollback",
		Busy:      map[string]string{"p4": "other-rollout", "i1": "r1-rollback", "p8": "other-rollout"},
		Protected: map[string]string{"p7": "frozen for the audit", "p5": "frozen"},
	})
	require.NoError(t, err)
	// i1 is busy with this very rollback; p5 and p8 were not changed, so
	// being protected or busy does not list them.
	require.Equal(t, "1:p1 2:i1", ids(p))
	require.Equal(t, "failed-first,canary", phaseNames(p))
	require.Equal(t, []Exclusion{
		{ClusterID: "i3", Reason: ReasonGone},
		{ClusterID: "p6", Reason: ReasonChangedSince, Detail: "applied generation 12, the rollout's was 11"},
		{ClusterID: "i2", Reason: ReasonNoPrevious},
		{ClusterID: "p4", Reason: ReasonBusy, Detail: "other-rollout"},
		{ClusterID: "p7", Reason: ReasonProtected, Detail: "frozen for the audit"},
	}, p.Excluded)
	require.Equal(t, map[string]int{ReasonNotChanged: 4, ReasonGone: 1, ReasonChangedSince: 1,
		ReasonNoPrevious: 1, ReasonBusy: 1, ReasonProtected: 1}, p.ExcludedCounts)
	require.Equal(t, 2, p.Total)
	require.Equal(t, 2, p.Downgrades)

	// Nothing left to roll back: an empty plan, not an error.
	p, err = Rollback(src, now, RollbackOptions{Busy: map[string]string{"p1": "x", "i1": "x"}, Protected: map[string]string{"p4": "", "p7": ""}})
	require.NoError(t, err)
	require.Equal(t, 0, p.Total)
	require.NotNil(t, p.Phases)
	require.Empty(t, p.Phases)
	require.Equal(t, "", p.Version)
	require.Equal(t, 2, p.ExcludedCounts[ReasonProtected], "p4 and p7, protected without a reason")
	require.Equal(t, 2, p.ExcludedCounts[ReasonBusy])
	require.Equal(t, 1, p.ExcludedCounts[ReasonNoPrevious])
}

func TestRollbackVersion(t *testing.T) {
	// The plan's Version is the version most clusters return to.
	src, now := recoverySource(t)
	sourceTarget(t, src, "p1").FromVersion = "3.5.2"
	sourceTarget(t, src, "p4").FromVersion = "3.5.2"
	p, err := Rollback(src, now, RollbackOptions{})
	require.NoError(t, err)
	require.Equal(t, "3.5.2", p.Version) // p1, p4, p7 against i1, i2

	// An upgrade's rollback to a newer version (a cluster that had been
	// ahead) is not a downgrade.
	src, now = recoverySource(t)
	sourceTarget(t, src, "i1").FromVersion = "3.9.0"
	p, err = Rollback(src, now, RollbackOptions{})
	require.NoError(t, err)
	require.Equal(t, 3, p.Downgrades)
	for _, ph := range p.Phases {
		for _, b := range ph.Batches {
			for _, tg := range b.Clusters {
				require.Equal(t, tg.ClusterID != "i1" && tg.ClusterID != "i2", tg.Downgrade, tg.ClusterID)
			}
		}
	}
}

func TestRollbackHash(t *testing.T) {
	src, now := recoverySource(t)
	p, err := Rollback(src, now, RollbackOptions{})
	require.NoError(t, err)
	hashes := map[string]string{p.Hash: "as planned"}
	for name, change := range map[string]func(src Source){
		"a target's version": func(src Source) { sourceTarget(t, src, "p7").FromVersion = "3.5.1" },
		"a target's config":  func(src Source) { sourceTarget(t, src, "i1").FromConfig = map[string]string{"a": "9"} },
		"a config key":       func(src Source) { sourceTarget(t, src, "i1").FromConfig = map[string]string{"b": "0"} },
	} {
		src, now := recoverySource(t)
		change(src)
		q, err := Rollback(src, now, RollbackOptions{})
		require.NoError(t, err)
		require.Equal(t, ids(p), ids(q), name)
		if prev, dup := hashes[q.Hash]; dup {
			t.Errorf("changing %s hashes like %s", name, prev)
		}
		hashes[q.Hash] = name
	}
}

func TestRollbackNoPlan(t *testing.T) {
	_, err := Rollback(Source{ID: "rollout/x"}, nil, RollbackOptions{})
	require.EqualError(t, err, "plan: rollback: the rollout has no plan")
}

func TestRetryable(t *testing.T) {
	src, _ := recoverySource(t)
	all, err := Retryable(src, nil)
	require.NoError(t, err)
	// Failed, aborted (before or after a broker), skipped, and the clusters
	// of the batch that did not run.
	require.Equal(t, map[string]bool{"i2": true, "p1": true, "p2": true, "p3": true, "p7": true, "p8": true}, all)

	only, err := Retryable(src, []string{"p8", "i2"})
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"i2": true, "p8": true}, only)

	_, err = Retryable(src, []string{"p1", "i1", "ghost", "p4"})
	require.EqualError(t, err, "plan: retry takes failed or skipped clusters: i1 ended done; ghost is not in the rollout's plan; p4 ended done")

	// Nothing to retry.
	src.Ran = []int{1, 2, 3, 4, 5, 6}
	src.Outcomes = map[string]Outcome{"p4": {State: OutcomeDone, Broker: 3}}
	_, err = Retryable(src, nil)
	require.EqualError(t, err, "plan: retry: rollout/r1 has no failed or skipped cluster")

	_, err = Retryable(Source{ID: "rollout/x"}, nil)
	require.EqualError(t, err, "plan: retry: the rollout has no plan")
}

// TestBuildOnly: a retry plans only the clusters it names.
func TestBuildOnly(t *testing.T) {
	inv := []fleet.Cluster{
		kc("i1", fleet.EnvInternal, "3.6.0", 1, nil),
		kc("i2", fleet.EnvInternal, "3.6.0", 1, nil),
		kc("p1", fleet.EnvProd, "3.6.0", 1, nil),
		kc("p2", fleet.EnvProd, "3.6.0", 1, nil),
		kc("p3", fleet.EnvProd, "3.6.0", 1, nil),
		kc("p4", fleet.EnvProd, "3.7.0", 1, nil), // at target
		kc("n1", fleet.EnvNonProd, "3.6.0", 1, nil),
	}
	r := rollout("product=kafka, env!=non-prod",
		spec.Phase{Name: "canary", Selector: "env=internal", BatchSize: "1", RequireApproval: true},
		spec.Phase{Name: "prod", Selector: "env=prod", BatchSize: "2"})
	p, err := Build(r, inv, Options{Only: map[string]bool{"p3": true, "p1": true, "p4": true}, Protected: []string{"p3"}})
	require.NoError(t, err, "a phase left without clusters by Only is skipped, not an error")
	require.Equal(t, "prod", phaseNames(p))
	require.Equal(t, []string{"canary"}, p.Skipped)
	require.True(t, p.Phases[0].RequireApproval, "the skipped phase's approval moves on")
	require.Equal(t, "1:p1", ids(p))
	require.Equal(t, map[string]int{ReasonNotRetried: 3, ReasonNotMatched: 1, ReasonAtTarget: 1, ReasonProtected: 1}, p.ExcludedCounts)
	require.Equal(t, []Exclusion{{ClusterID: "p3", Reason: ReasonProtected}, {ClusterID: "p4", Reason: ReasonAtTarget}}, p.Excluded,
		"not-retried clusters are counted, not listed")

	// Without Only, a phase that selects nothing is still an error.
	_, err = Build(r, inv[2:], Options{})
	require.EqualError(t, err, `plan: phase "canary" selects no clusters`)

	// An empty Only retries nothing.
	p, err = Build(r, inv, Options{Only: map[string]bool{}})
	require.NoError(t, err)
	require.Equal(t, 0, p.Total)
	require.Equal(t, 6, p.ExcludedCounts[ReasonNotRetried])
}

// TestBuildFirst: a supersede's First clusters go first in their phase.
func TestBuildFirst(t *testing.T) {
	var inv []fleet.Cluster
	for _, id := range []string{"p1", "p2", "p3", "p4", "p5", "p6"} {
		inv = append(inv, kc(id, fleet.EnvProd, "3.6.0", 1, nil))
	}
	inv = append(inv, kc("i1", fleet.EnvInternal, "3.6.0", 1, nil), kc("i2", fleet.EnvInternal, "3.6.0", 1, nil))
	r := rollout("product=kafka",
		spec.Phase{Name: "canary", Selector: "env=internal", BatchSize: "1"},
		spec.Phase{Name: "prod", Selector: "env=prod", BatchSize: "2"})

	p, err := Build(r, inv, Options{})
	require.NoError(t, err)
	require.Equal(t, "1:i1 2:i2 3:p1,p2 4:p3,p4 5:p5,p6", ids(p))

	first := map[string]bool{"p5": true, "p2": true, "i2": true, "x": true}
	p, err = Build(r, inv, Options{First: first})
	require.NoError(t, err)
	require.Equal(t, "1:i2 2:i1 3:p2,p5 4:p1,p3 5:p4,p6", ids(p))
	require.Equal(t, "canary,prod", phaseNames(p), "First does not move clusters across phases")

	// Over an orderBy: First wins, the metric order holds within each part.
	r.Strategy.Phases[1].OrderBy = &spec.OrderBy{Metric: "cpu"}
	p, err = Build(r, inv, Options{First: first, Metrics: map[string]float64{"p1": 1, "p2": 2, "p3": 3, "p4": 4, "p5": 5, "p6": 6}})
	require.NoError(t, err)
	require.Equal(t, "1:i2 2:i1 3:p5,p2 4:p6,p4 5:p3,p1", ids(p))
}

// TestFromConfig: a plan that sets config records each key's value before.
func TestFromConfig(t *testing.T) {
	inv := []fleet.Cluster{
		kc("k1", fleet.EnvProd, "3.6.0", 1, map[string]string{"a": "0", "b": "x"}),
		kc("k2", fleet.EnvProd, "3.6.0", 1, nil),
		kc("k3", fleet.EnvProd, "3.6.0", 1, map[string]string{"b": "y"}),
	}
	r := rollout("product=kafka", spec.Phase{Name: "all", BatchSize: "100%"})
	plain, err := Build(r, inv, Options{})
	require.NoError(t, err)
	for _, tg := range plain.Phases[0].Batches[0].Clusters {
		require.Nil(t, tg.FromConfig, "a plan without config records none")
	}

	r.Target.Config = map[string]string{"a": "1"}
	p, err := Build(r, inv, Options{})
	require.NoError(t, err)
	got := map[string]map[string]string{}
	for _, tg := range p.Phases[0].Batches[0].Clusters {
		got[tg.ClusterID] = tg.FromConfig
		v, c := tg.To(p)
		require.Equal(t, "3.7.0", v)
		require.Equal(t, map[string]string{"a": "1"}, c, "a target without its own version takes the plan's")
	}
	require.Equal(t, map[string]map[string]string{"k1": {"a": "0"}, "k2": {"a": ""}, "k3": {"a": ""}}, got)
	b, err := json.Marshal(p.Phases[0].Batches[0].Clusters[:2])
	require.NoError(t, err)
	require.Equal(t, `[{"id":"k1","product":"kafka","gen":2,"from":"3.6.0","fromConfig":{"a":"0"}},{"id":"k2","product":"kafka","gen":2,"from":"3.6.0","fromConfig":{"a":""}}]`, string(b))
	require.NotEqual(t, plain.Hash, p.Hash)
}

// clonePlan deep-copies p's phases, batches and targets.
func clonePlan(p *Plan) *Plan {
	c := *p
	c.Phases = slices.Clone(p.Phases)
	for i := range c.Phases {
		c.Phases[i].Batches = slices.Clone(c.Phases[i].Batches)
		for j := range c.Phases[i].Batches {
			c.Phases[i].Batches[j].Clusters = slices.Clone(c.Phases[i].Batches[j].Clusters)
			for k := range c.Phases[i].Batches[j].Clusters {
				tg := &c.Phases[i].Batches[j].Clusters[k]
				tg.FromConfig, tg.Config = maps.Clone(tg.FromConfig), maps.Clone(tg.Config)
			}
		}
	}
	return &c
}

// TestPerTargetHash: the per-target fields are in the hash when present,
// and a plan without them hashes as before they existed (TestDowngradeHashAndJSON
// pins such a hash).
func TestPerTargetHash(t *testing.T) {
	inv := []fleet.Cluster{
		kc("k1", fleet.EnvProd, "3.6.0", 1, map[string]string{"a": "0"}),
		kc("k2", fleet.EnvProd, "3.6.0", 1, nil),
	}
	r := rollout("product=kafka", spec.Phase{Name: "all", BatchSize: "1"})
	plain, err := Build(r, inv, Options{})
	require.NoError(t, err)
	r.Target.Config = map[string]string{"a": "1"}
	withConfig, err := Build(r, inv, Options{})
	require.NoError(t, err)

	// Removing the config history from every target of the config plan
	// hashes like the config plan did before the history was recorded:
	// only the config differs from the plain plan's encoding.
	stripped := clonePlan(withConfig)
	for i := range stripped.Phases {
		for j := range stripped.Phases[i].Batches {
			for k := range stripped.Phases[i].Batches[j].Clusters {
				stripped.Phases[i].Batches[j].Clusters[k].FromConfig = nil
			}
		}
	}
	stripped.Config = nil
	require.Equal(t, plain.Hash, stripped.ComputeHash(), "without per-target fields the hash is the plain plan's")
	// A Config without a Version is not a target of its own: not hashed
	// (To ignores it).
	ignored := clonePlan(plain)
	ignored.Phases[0].Batches[0].Clusters[0].Config = map[string]string{"z": "1"}
	require.Equal(t, plain.Hash, ignored.ComputeHash())

	hashes := map[string]string{plain.Hash: "plain", withConfig.Hash: "with config"}
	for name, change := range map[string]func(p *Plan){
		"from config value":   func(p *Plan) { p.Phases[0].Batches[0].Clusters[0].FromConfig["a"] = "5" },
		"from config removed": func(p *Plan) { p.Phases[0].Batches[0].Clusters[0].FromConfig = nil },
		"from config moved": func(p *Plan) {
			a, b := &p.Phases[0].Batches[0].Clusters[0], &p.Phases[0].Batches[1].Clusters[0]
			a.FromConfig, b.FromConfig = map[string]string{"a": ""}, map[string]string{"a": "0"}
		},
		"own version": func(p *Plan) { p.Phases[0].Batches[0].Clusters[0].Version = "3.6.0" },
		"own version and config": func(p *Plan) {
			p.Phases[0].Batches[0].Clusters[0].Version = "3.6.0"
			p.Phases[0].Batches[0].Clusters[0].Config = map[string]string{"a": "0"}
		},
	} {
		q := clonePlan(withConfig)
		change(q)
		h := q.ComputeHash()
		if prev, dup := hashes[h]; dup {
			t.Errorf("changing the %s hashes like %s", name, prev)
		}
		hashes[h] = name
	}
	require.Equal(t, withConfig.Hash, withConfig.ComputeHash(), "the changes touched copies only")
}

// TestJSONSizeRecovery: jsonSize counts the per-target fields exactly, for
// a rollback plan and a plan with config history, with values JSON
// escapes.
func TestJSONSizeRecovery(t *testing.T) {
	odd := map[string]string{`a"<k>`: "v&\\\n", "ünï": "", "b": "\u2028"}
	inv := []fleet.Cluster{
		kc(`i"1<`, fleet.EnvInternal, "3.6.0", 1, odd),
		kc("i2", fleet.EnvInternal, "3.6.0", -3, nil),
		kc("p&1", fleet.EnvProd, `3.6.0-"rc"<1>`, 99, map[string]string{"b": "é"}),
		kc("p2", fleet.EnvProd, "3.6.0", 1234567, nil),
	}
	r := rollout("product=kafka",
		spec.Phase{Name: "canary", Selector: "env=internal", BatchSize: "1"},
		spec.Phase{Name: "prod", Selector: "env=prod", BatchSize: "1"})
	r.Target.Config = map[string]string{`a"<k>`: "new>", "ünï": "ü", "b": ""}
	src, err := Build(r, inv, Options{})
	require.NoError(t, err)

	now := slices.Clone(inv)
	for i := range now {
		now[i].Version, now[i].Generation = "3.7.0", now[i].Generation+1
	}
	now[3].Generation += 5 // p2: changed since, listed with a detail
	rb, err := Rollback(Source{ID: "rollout/r1", Plan: src, Ran: []int{1, 2, 3, 4},
		Outcomes: map[string]Outcome{"i2": {State: OutcomeFailed, Broker: 1}}}, now, RollbackOptions{})
	require.NoError(t, err)
	require.Equal(t, 3, rb.Total)
	require.NotEmpty(t, rb.Excluded)

	// Every per-target field at once, and empty maps (omitted).
	mixed := clonePlan(rb)
	mixed.Phases[0].Batches[0].Clusters[0].FromConfig = map[string]string{"<": ">"}
	mixed.Phases[1].Batches[0].Clusters[0].Config = map[string]string{}
	mixed.Phases[1].Batches[0].Clusters[0].FromConfig = map[string]string{}
	mixed.Config = odd

	for name, p := range map[string]*Plan{"source": src, "rollback": rb, "mixed": mixed} {
		b, err := json.Marshal(p)
		require.NoError(t, err)
		got, _, _ := jsonSize(p)
		require.Equal(t, len(b), got, "%s: jsonSize, json.Marshal writes\n%s", name, b)
	}
	b, _ := json.Marshal(rb)
	require.True(t, strings.Contains(string(b), `"version":"3.6.0-\"rc\"\u003c1\u003e"`), "%s", b)
}

// TestRollbackOfTheSimpleCase: a rollout that finished everywhere rolls
// back everything, last phase first.
func TestRollbackOfTheSimpleCase(t *testing.T) {
	inv := []fleet.Cluster{
		kc("i1", fleet.EnvInternal, "3.6.0", 1, nil),
		kc("p1", fleet.EnvProd, "3.6.0", 1, nil),
		kc("p2", fleet.EnvProd, "3.6.1", 1, nil),
	}
	r := rollout("product=kafka",
		spec.Phase{Name: "canary", Selector: "env=internal", BatchSize: "1"},
		spec.Phase{Name: "prod", Selector: "env=prod", BatchSize: "1"})
	src, err := Build(r, inv, Options{})
	require.NoError(t, err)
	now := slices.Clone(inv)
	for i := range now {
		now[i].Version, now[i].Generation = "3.7.0", 2
	}
	p, err := Rollback(Source{ID: "rollout/r1", Plan: src, Ran: []int{1, 2, 3}}, now, RollbackOptions{})
	require.NoError(t, err)
	require.Equal(t, "prod,canary", phaseNames(p), "no failed-first phase without failures")
	require.Equal(t, "1:p1 2:p2 3:i1", ids(p))
	require.Equal(t, 3, p.Downgrades)
	require.Equal(t, "3.6.0", p.Version)
	require.Equal(t, []int{1, 1}, []int{p.Phases[0].Concurrency, p.Phases[1].Concurrency})
	var versions []string
	for _, ph := range p.Phases {
		for _, b := range ph.Batches {
			for _, tg := range b.Clusters {
				versions = append(versions, tg.Version)
				require.Nil(t, tg.Config, "a plan without config restores none")
				require.Equal(t, int64(3), tg.Generation)
			}
		}
	}
	require.Equal(t, []string{"3.6.0", "3.6.1", "3.6.0"}, versions)
	require.Empty(t, p.ExcludedCounts)
	require.Empty(t, p.Excluded)
}

func TestBuildSentNeverReusesAGeneration(t *testing.T) {
	src, _ := recoverySource(t)
	sent := Sent(src)
	require.Equal(t, int64(11), sent["i2"], "the generation the source sent")
	// The retry plans over the inventory where i2's failed apply left it
	// (generation 10): it sends 12, not the failed attempt's 11.
	inv := []fleet.Cluster{kc("i2", fleet.EnvInternal, "3.6.0", 10, nil), kc("p1", fleet.EnvProd, "3.6.0", 10, nil)}
	p, err := Build(recoveryRollout(), inv, Options{Only: map[string]bool{"i2": true, "p1": true}, Sent: map[string]int64{"i2": 11}})
	require.NoError(t, err)
	gens := map[string]int64{}
	for _, ph := range p.Phases {
		for _, b := range ph.Batches {
			for _, tg := range b.Clusters {
				gens[tg.ClusterID] = tg.Generation
			}
		}
	}
	require.Equal(t, map[string]int64{"i2": 12, "p1": 11}, gens)
	require.Equal(t, "2 a, 1 b", DescribeCounts(map[string]int{"b": 1, "a": 2}))
}
