package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/starter/client"
	"github.com/fleet-rollout/fleet/workflows"
)

func (f *fakeAPI) Source(_ context.Context, id string) (*workflows.RolloutSource, error) {
	f.calls = append(f.calls, "source "+id)
	if f.source == nil {
		return nil, &client.NotFoundError{Name: workflows.RolloutName(id)}
	}
	return f.source, nil
}

func (f *fakeAPI) Rollback(_ context.Context, id string, o client.RollbackOptions) (string, error) {
	f.calls = append(f.calls, fmt.Sprintf("rollback %s actor=%s reason=%q abort=%v forward=%v windows=%v", id, o.Actor, o.Reason, o.Abort, o.Forward, o.RespectWindows))
	if f.recoveryErr != nil {
		return "", f.recoveryErr
	}
	return workflows.RolloutID(workflows.RollbackName(workflows.RolloutName(id))), nil
}

func (f *fakeAPI) Supersede(_ context.Context, id string, r *spec.Rollout, actor, reason string) (string, error) {
	f.started = r
	f.calls = append(f.calls, fmt.Sprintf("supersede %s by %s actor=%s reason=%q", id, r.Name, actor, reason))
	if f.recoveryErr != nil {
		return "", f.recoveryErr
	}
	return workflows.RolloutID(r.Name), nil
}

func (f *fakeAPI) Retry(_ context.Context, id string, clusters []string, actor, reason string) (client.RetryResult, error) {
	f.calls = append(f.calls, fmt.Sprintf("retry %s clusters=%v actor=%s reason=%q", id, clusters, actor, reason))
	if f.recoveryErr != nil {
		return client.RetryResult{}, f.recoveryErr
	}
	return f.retry, nil
}

const hotfixSpec = `name: rc-hotfix
target:
  version: 3.7.2
selector: product=kafka
strategy:
  phases:
    - name: canary
      selector: env=internal
      batchSize: "1"
    - name: prod
      selector: env=prod
      batchSize: "2"
`

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(body), 0o644))
	return path
}

func TestRecoveryUsageErrors(t *testing.T) {
	hotfix := writeFile(t, "hotfix.yaml", hotfixSpec)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"rollback"}, "rollback: missing rollout ID (usage: fleet rollback NAME"},
		{[]string{"rollback", "a", "b"}, `rollback: unexpected argument "b"`},
		{[]string{"rollback", "x", "--abort"}, "rollback: --abort needs --reason"},
		{[]string{"rollback", "x", "--abort", "--reason", " "}, "rollback: --abort needs --reason"},
		{[]string{"rollback", "x", "--reason"}, "rollback: flag needs an argument: -reason"},
		{[]string{"supersede", "x"}, "supersede: -f FILE is required"},
		{[]string{"supersede", "-f", hotfix}, "supersede: missing rollout ID"},
		{[]string{"retry"}, "retry: missing rollout ID"},
		{[]string{"retry", "x", "--cluster"}, "retry: flag needs an argument: -cluster"},
		{[]string{"plan", "--rollback", "x", "--supersede", "y"}, "plan: give --rollback or --supersede, not both"},
		{[]string{"plan", "--rollback", "x", "-f", hotfix}, "plan: --rollback plans from the rollout itself: give no -f"},
		{[]string{"plan", "--rollback", " "}, "plan: --rollback needs a rollout NAME"},
		{[]string{"plan", "--supersede", "x"}, "plan: --supersede needs -f FILE"},
		{[]string{"plan", "-f", hotfix, "--forward"}, "plan: --forward and --respect-windows shape a rollback"},
		{[]string{"plan", "--supersede", "x", "-f", hotfix, "--respect-windows"}, "plan: --forward and --respect-windows shape a rollback"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			e, out, _ := testEnv(t, nil) // connecting fails the test
			err := run(context.Background(), tt.args, e)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			var stderr bytes.Buffer
			assert.Equal(t, 2, report(&stderr, err))
			assert.Contains(t, stderr.String(), "Run 'fleet ")
			assert.Empty(t, out.String())
		})
	}
}

// A malformed spec, or one naming the rollout it supersedes, is rejected
// before anything is touched.
func TestSupersedeRejectsTheSpecBeforeTemporal(t *testing.T) {
	bad := writeFile(t, "rollout.yaml", "name: rc-hotfix\ntarget:\n  version: 3.7.2\nselector: product=kafka\nstrategy:\n  phases:\n    - name: all\n      batchSize: lots\n")
	same := writeFile(t, "same.yaml", strings.Replace(hotfixSpec, "name: rc-hotfix", "name: rc", 1))
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"supersede", "rc", "-f", bad}, "rollout.yaml:8"},
		{[]string{"plan", "--supersede", "rc", "-f", bad}, "rollout.yaml:8"},
		{[]string{"supersede", "rc", "--file", same}, `names the rollout "rc" it would supersede`},
		{[]string{"plan", "--supersede", "rollout/rc", "-f", same}, `names the rollout "rc" it would supersede`},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			e, out, _ := testEnv(t, nil)
			err := run(context.Background(), tt.args, e)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Equal(t, 2, report(&bytes.Buffer{}, err))
			assert.Empty(t, out.String())
		})
	}
}

func TestRecoveryCommandsCallTheClient(t *testing.T) {
	hotfix := writeFile(t, "hotfix.yaml", hotfixSpec)
	ended := &workflows.RolloutSource{State: workflows.StateCompleted}
	running := &workflows.RolloutSource{State: workflows.StateRunning}
	tests := []struct {
		name   string
		args   []string
		source *workflows.RolloutSource
		retry  client.RetryResult
		calls  []string
		out    []string
	}{
		{name: "rollback of an ended rollout", args: []string{"rollback", "rc"},
			calls: []string{`rollback rc actor=alice reason="" abort=false forward=false windows=false`},
			out:   []string{`Rolling back rollout "rc": started rollout "rc-rollback" (workflow rollout/rc-rollback).`, "fleet watch rc-rollback"}},
		{name: "rollback options", args: []string{"rollback", "rollout/rc", "--forward", "--respect-windows", "--reason", "bad build"},
			calls: []string{`rollback rc actor=alice reason="bad build" abort=false forward=true windows=true`},
			out:   []string{"fleet watch rc-rollback"}},
		{name: "rollback --abort of a running rollout", args: []string{"rollback", "rc", "--abort", "--reason", "bad build"}, source: running,
			calls: []string{"source rc", `rollback rc actor=alice reason="bad build" abort=true forward=false windows=false`},
			out:   []string{`Aborting rollout "rc"`, `Its rollback "rc-rollback" (workflow rollout/rc-rollback) starts when its batches have stopped.`, "fleet watch rc-rollback"}},
		{name: "rollback --abort of an ended rollout", args: []string{"rollback", "rc", "--abort", "--reason", "r", "--forward"}, source: ended,
			calls: []string{"source rc", `rollback rc actor=alice reason="r" abort=true forward=true windows=false`},
			out:   []string{`Rolling back rollout "rc": started rollout "rc-rollback"`}},
		{name: "rollback --json", args: []string{"rollback", "rc", "--json"},
			calls: []string{`rollback rc actor=alice reason="" abort=false forward=false windows=false`},
			out:   []string{`"kind": "rollback"`, `"of": "rollout/rc"`, `"id": "rollout/rc-rollback"`, `"watch": "fleet watch rc-rollback"`}},
		{name: "supersede", args: []string{"supersede", "rc", "-f", hotfix, "--reason", "CVE"},
			calls: []string{`supersede rc by rc-hotfix actor=alice reason="CVE"`},
			out: []string{`Superseding rollout "rc" (workflow rollout/rc) with "rc-hotfix" (workflow rollout/rc-hotfix).`,
				"rc starts no new cluster", "then it ends superseded and hands over", "fleet watch rc-hotfix"}},
		{name: "supersede --json", args: []string{"supersede", "rc", "--json", "-f", hotfix},
			calls: []string{`supersede rc by rc-hotfix actor=alice reason=""`},
			out:   []string{`"kind": "supersede"`, `"id": "rollout/rc-hotfix"`, `"message": "rc hands over to rc-hotfix"`}},
		{name: "retry within a running rollout", args: []string{"retry", "rc", "--cluster", "k-1", "--cluster=k-2,k-3"},
			retry: client.RetryResult{ID: "rollout/rc", InPlace: true, Message: "3 clusters queued in phase retry-1, with a fresh error budget"},
			calls: []string{`retry rc clusters=[k-1 k-2 k-3] actor=alice reason=""`},
			out:   []string{`Retrying within rollout "rc" (still running): 3 clusters queued in phase retry-1`, "new last phase", "fleet watch rc\t"}},
		{name: "retry of an ended rollout", args: []string{"retry", "rc", "--reason", "flaky"},
			retry: client.RetryResult{ID: "rollout/rc-retry", Message: "started rollout/rc-retry"},
			calls: []string{`retry rc clusters=[] actor=alice reason="flaky"`},
			out:   []string{`Retrying rollout "rc", which has ended: started rollout "rc-retry" (workflow rollout/rc-retry)`, "fleet watch rc-retry"}},
		{name: "retry --json", args: []string{"retry", "rc", "--json"},
			retry: client.RetryResult{ID: "rollout/rc-retry", Message: "started rollout/rc-retry"},
			calls: []string{`retry rc clusters=[] actor=alice reason=""`},
			out:   []string{`"kind": "retry"`, `"id": "rollout/rc-retry"`, `"name": "rc-retry"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeAPI{source: tt.source, retry: tt.retry}
			e, out, _ := testEnv(t, api)
			require.NoError(t, run(context.Background(), tt.args, e))
			assert.Equal(t, tt.calls, api.calls)
			text := strings.ReplaceAll(out.String(), "   ", "\t")
			for _, w := range tt.out {
				assert.Contains(t, text, strings.TrimSuffix(w, "\t"))
			}
			t.Log("\n" + out.String())
		})
	}
}

// The client's refusal of a running rollout reaches the user with its hint
// and exit code 1.
func TestRollbackOfARunningRolloutIsRefused(t *testing.T) {
	api := &fakeAPI{recoveryErr: &client.RunningError{Name: "rc", State: workflows.StateRunning,
		Hint: "a rollback needs it stopped: fleet abort rc --reason ..., then fleet rollback rc; or fleet rollback rc --abort --reason ... to do both"}}
	e, out, _ := testEnv(t, api)
	err := run(context.Background(), []string{"rollback", "rc"}, e)
	require.Error(t, err)
	var stderr bytes.Buffer
	assert.Equal(t, 1, report(&stderr, err))
	assert.Contains(t, stderr.String(), `fleet: rollout "rc" is running: a rollback needs it stopped: fleet abort rc --reason`)
	assert.Empty(t, out.String())

	// --abort with a rollback shape it cannot honour is refused before the update.
	api = &fakeAPI{source: &workflows.RolloutSource{State: workflows.StatePaused}}
	e, _, _ = testEnv(t, api)
	err = run(context.Background(), []string{"rollback", "rc", "--abort", "--reason", "r", "--forward"}, e)
	require.ErrorContains(t, err, "it is paused, and the rollback --abort starts runs last phase first")
	assert.Equal(t, []string{"source rc"}, api.calls)
}

func TestRecoveryHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"help"}, []string{
			"fleet rollback NAME [--abort --reason R] [--forward] [--respect-windows] [--json]",
			"fleet supersede NAME -f FILE [--reason R] [--json]",
			"fleet retry NAME [--cluster ID]... [--reason R] [--json]",
			"  fleet plan -f FILE [--json] [--clusters] [--excluded N]\n  fleet plan --rollback NAME [--forward] [--respect-windows] [--json] [--clusters]\n  fleet plan --supersede NAME -f FILE [--json] [--clusters]\n",
		}},
		{[]string{"rollback", "-h"}, []string{"Usage: fleet rollback NAME", "--abort", "--reason REASON", "--forward", "--respect-windows", "failed-first", "NAME-rollback"}},
		{[]string{"help", "supersede"}, []string{"Usage: fleet supersede NAME -f FILE", "-f FILE", "ends superseded", "first in their phase"}},
		{[]string{"retry", "--help"}, []string{"Usage: fleet retry NAME", "--cluster ID", "retry-N", "NAME-retry", "fresh error budget"}},
		{[]string{"plan", "-h"}, []string{"       fleet plan --rollback NAME", "       fleet plan --supersede NAME -f FILE", "--rollback NAME", "--supersede NAME", "--forward"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			e, out, _ := testEnv(t, nil)
			require.NoError(t, run(context.Background(), tt.args, e))
			for _, w := range tt.want {
				assert.Contains(t, out.String(), w)
			}
		})
	}
}

const rcSpec = `name: rc
target:
  version: 3.7.1
selector: product=kafka
strategy:
  phases:
    - name: canary
      selector: env=internal
      batchSize: "1"
    - name: prod
      selector: env=prod
      batchSize: "2"
`

// rcSource plans rcSpec over before, and returns the source of a rollout
// that ran the batches ran (all when nil) with the outcomes given.
func rcSource(t *testing.T, before []fleet.Cluster, state workflows.RolloutState, ran []int, outcomes map[string]plan.Outcome) *workflows.RolloutSource {
	t.Helper()
	r, err := spec.Parse("rc.yaml", []byte(rcSpec))
	require.NoError(t, err)
	r.Normalize()
	p, err := plan.Build(r, before, plan.Options{})
	require.NoError(t, err)
	if ran == nil {
		for _, ph := range p.Phases {
			for _, b := range ph.Batches {
				ran = append(ran, b.Number)
			}
		}
	}
	if outcomes == nil {
		outcomes = map[string]plan.Outcome{}
	}
	return &workflows.RolloutSource{
		Source: plan.Source{ID: "rollout/rc", Plan: p, Ran: ran, Outcomes: outcomes},
		Spec:   *r, State: state,
	}
}

// targets maps each cluster of a plan to its target and phase.
func targets(p *plan.Plan) map[string]plan.Target {
	m := map[string]plan.Target{}
	for _, ph := range p.Phases {
		for _, b := range ph.Batches {
			for _, t := range b.Clusters {
				m[t.ClusterID] = t
			}
		}
	}
	return m
}

func rcFleet() []fleet.Cluster {
	k := func(id, env, version string, gen int64) fleet.Cluster {
		return fleet.Cluster{ID: id, Product: "kafka", Cloud: "aws", Region: "us-east-1", Environment: env, Customer: "c", Version: version, Brokers: 3, Generation: gen}
	}
	return []fleet.Cluster{
		k("k-1", "internal", "3.6.1", 5),
		k("k-2", "prod", "3.6.1", 3),
		k("k-3", "prod", "3.6.0", 2),
		k("k-4", "prod", "3.6.1", 7),
		k("k-5", "prod", "3.6.1", 1),
	}
}

// after is the inventory once the rollout with source src ran: each done
// cluster on 3.7.1 at the generation sent; failed ones unchanged.
func after(before []fleet.Cluster, src *workflows.RolloutSource, changedSince ...string) []fleet.Cluster {
	ts := targets(src.Source.Plan)
	ran := map[int]bool{}
	for _, n := range src.Source.Ran {
		ran[n] = true
	}
	inBatch := map[string]int{}
	for _, ph := range src.Source.Plan.Phases {
		for _, b := range ph.Batches {
			for _, t := range b.Clusters {
				inBatch[t.ClusterID] = b.Number
			}
		}
	}
	out := slices.Clone(before)
	for i, c := range out {
		t, ok := ts[c.ID]
		if !ok || !ran[inBatch[c.ID]] {
			continue
		}
		if o, failed := src.Source.Outcomes[c.ID]; failed && o.State != plan.OutcomeDone {
			continue
		}
		out[i].Version, out[i].Generation = "3.7.1", t.Generation
		if slices.Contains(changedSince, c.ID) {
			out[i].Generation++
		}
	}
	return out
}

// fleet plan --rollback of a finished rollout lists the clusters it changed
// with the version each returns to, downgrades marked, failed ones first,
// phases last first; a cluster changed since by another rollout is left out.
func TestPlanRollbackListsTheChangedClusters(t *testing.T) {
	before := rcFleet()
	src := rcSource(t, before, workflows.StateCompleted, nil, map[string]plan.Outcome{"k-4": {State: plan.OutcomeFailed, Broker: 1}})
	now := after(before, src, "k-5")
	planWith := func(t *testing.T, args ...string) (string, *fakeAPI) {
		api := &fakeAPI{source: src}
		e, out, _ := testEnv(t, api)
		e.loadInventory = func(context.Context, string) ([]fleet.Cluster, error) { return now, nil }
		require.NoError(t, run(context.Background(), append([]string{"plan"}, args...), e))
		t.Log("\n" + out.String())
		return out.String(), api
	}

	text, api := planWith(t, "--rollback", "rc", "--excluded", "5")
	assert.Equal(t, []string{"source rc"}, api.calls)
	for _, want := range []string{
		`Rollback of "rc" as rollout "rc-rollback"`,
		"4 clusters to version 3.6.1 in 3 phases",
		"Downgrades: 3 clusters run a newer version",
		"Phase 1 failed-first: 1 cluster",
		"Phase 2 prod: 2 clusters",
		"Phase 3 canary: 1 cluster",
		"Clusters and the versions they return to:",
		"changed since by another rollout  1  k-5 (applied generation 3, the rollout's was 2)",
	} {
		assert.Contains(t, text, want)
	}
	for _, row := range []string{
		`k-4\s+failed-first\s+3\.6\.1\s+3\.6\.1\s+-\n`,
		`k-2\s+prod\s+3\.7\.1\s+3\.6\.1\s+-\s+downgrade\n`,
		`k-3\s+prod\s+3\.7\.1\s+3\.6\.0\s+-\s+downgrade\n`,
		`k-1\s+canary\s+3\.7\.1\s+3\.6\.1\s+-\s+downgrade\n`,
	} {
		assert.Regexp(t, regexp.MustCompile(row), text)
	}
	assert.NotRegexp(t, `k-5\s+`+"prod", text)
	assert.NotContains(t, text, "must be stopped")

	// --forward keeps the rollout's order; --json is the plan itself.
	text, _ = planWith(t, "--rollback", "rc", "--forward", "--json")
	var p plan.Plan
	require.NoError(t, json.Unmarshal([]byte(text), &p))
	var names []string
	for _, ph := range p.Phases {
		names = append(names, ph.Name)
	}
	assert.Equal(t, []string{plan.FailedPhase, "canary", "prod"}, names)
	ts := targets(&p)
	assert.Equal(t, "3.6.0", ts["k-3"].Version)
	assert.True(t, ts["k-3"].Downgrade)
	assert.False(t, ts["k-4"].Downgrade)
	assert.Equal(t, 3, p.Downgrades)

	// --clusters lists the batches with the downgrades.
	text, _ = planWith(t, "--rollback", "rc", "--clusters")
	assert.Contains(t, text, "k-1 (downgrade from 3.7.1)")
}

// A rollout still running is previewed, with the reminder to stop it.
func TestPlanRollbackOfARunningRollout(t *testing.T) {
	before := rcFleet()
	src := rcSource(t, before, workflows.StateRunning, []int{1}, nil)
	now := after(before, src)
	api := &fakeAPI{source: src}
	e, out, errOut := testEnv(t, api)
	e.loadInventory = func(context.Context, string) ([]fleet.Cluster, error) { return now, nil }
	require.NoError(t, run(context.Background(), []string{"plan", "--rollback", "rc"}, e))
	t.Log("\n" + out.String())
	assert.Contains(t, out.String(), "1 cluster to version 3.6.1 in 1 phase")
	assert.Contains(t, out.String(), `Rollout "rc" is running: the rollback needs it stopped first (fleet abort rc --reason ..., then fleet rollback rc; or fleet rollback rc --abort --reason ... to do both)`)

	e, out, errOut = testEnv(t, api)
	e.loadInventory = func(context.Context, string) ([]fleet.Cluster, error) { return now, nil }
	require.NoError(t, run(context.Background(), []string{"plan", "--rollback", "rc", "--json"}, e))
	var p plan.Plan
	require.NoError(t, json.Unmarshal(out.Bytes(), &p), "the note goes to stderr")
	assert.Equal(t, 1, p.Total)
	assert.Contains(t, errOut.String(), "the rollback needs it stopped first")

	// A rollout that never planned has nothing to roll back.
	api = &fakeAPI{source: &workflows.RolloutSource{State: workflows.StateFailed}}
	e, _, _ = testEnv(t, api)
	e.loadInventory = func(context.Context, string) ([]fleet.Cluster, error) { return now, nil }
	require.ErrorContains(t, run(context.Background(), []string{"plan", "--rollback", "rc"}, e), "it never planned, so it changed nothing")
}

// fleet plan --supersede plans the new spec with the clusters the old
// rollout changed first in their phase.
func TestPlanSupersedePutsTheChangedClustersFirst(t *testing.T) {
	before := rcFleet()
	base := rcSource(t, before, workflows.StateRunning, nil, nil)
	// Only the last batch of prod ran.
	last := base.Source.Plan.Phases[1].Batches[len(base.Source.Plan.Phases[1].Batches)-1]
	src := rcSource(t, before, workflows.StateRunning, []int{last.Number}, nil)
	now := after(before, src)
	var changed []string
	for _, tg := range last.Clusters {
		changed = append(changed, tg.ClusterID)
	}
	hotfix := writeFile(t, "hotfix.yaml", hotfixSpec)

	api := &fakeAPI{source: src}
	e, out, _ := testEnv(t, api)
	e.loadInventory = func(context.Context, string) ([]fleet.Cluster, error) { return now, nil }
	require.NoError(t, run(context.Background(), []string{"plan", "--supersede", "rc", "-f", hotfix, "--clusters"}, e))
	t.Log("\n" + out.String())
	assert.Equal(t, []string{"source rc"}, api.calls)
	text := out.String()
	assert.Contains(t, text, fmt.Sprintf(`Supersede of "rc" by "rc-hotfix": 2 clusters already changed by rc go first in their phase: %s.`, strings.Join(changed, " ")))
	assert.Contains(t, text, "5 clusters to version 3.7.2")
	assert.Contains(t, text, `Rollout "rc" is running: fleet supersede stops it first`)
	assert.Regexp(t, `Phase 2 prod: 4 clusters.*\n(.*\n)*  batch 2: `+strings.Join(changed, " ")+"\n", text)

	e, out, _ = testEnv(t, api)
	e.loadInventory = func(context.Context, string) ([]fleet.Cluster, error) { return now, nil }
	require.NoError(t, run(context.Background(), []string{"plan", "--supersede", "rc", "-f", hotfix, "--json"}, e))
	var p plan.Plan
	require.NoError(t, json.Unmarshal(out.Bytes(), &p))
	var first []string
	for _, tg := range p.Phases[1].Batches[0].Clusters {
		first = append(first, tg.ClusterID)
	}
	assert.Equal(t, changed, first)
}

// fleet plan -f of a spec whose target is below some clusters' versions is
// refused, naming them; with allowDowngrade: true the plan marks them.
func TestPlanDowngrade(t *testing.T) {
	doc := `name: kafka-down
target:
  version: 3.7.1
selector: product=kafka
strategy:
  phases:
    - name: all
      batchSize: "2"
`
	inv := []fleet.Cluster{
		{ID: "k-1", Product: "kafka", Cloud: "aws", Region: "us-east-1", Environment: "prod", Customer: "a", Version: "3.8.0", Brokers: 3},
		{ID: "k-2", Product: "kafka", Cloud: "aws", Region: "us-east-1", Environment: "prod", Customer: "b", Version: "3.6.0", Brokers: 3},
	}
	planOf := func(t *testing.T, doc string, args ...string) (string, error) {
		path := writeFile(t, "rollout.yaml", doc)
		e, out, _ := testEnv(t, nil)
		e.loadInventory = func(context.Context, string) ([]fleet.Cluster, error) { return inv, nil }
		err := run(context.Background(), append([]string{"plan", "-f", path}, args...), e)
		return out.String(), err
	}
	out, err := planOf(t, doc)
	require.Error(t, err)
	assert.Empty(t, out)
	assert.Contains(t, err.Error(), "rollout.yaml: plan: 1 cluster runs a newer version than the target 3.7.1 (k-1 on 3.8.0): set allowDowngrade: true to downgrade it")
	assert.Equal(t, 1, report(&bytes.Buffer{}, err))

	allowed := strings.Replace(doc, "selector:", "allowDowngrade: true\nselector:", 1)
	out, err = planOf(t, allowed, "--clusters")
	require.NoError(t, err)
	t.Log("\n" + out)
	assert.Contains(t, out, "2 clusters to version 3.7.1")
	assert.Contains(t, out, "Downgrades: 1 cluster runs a newer version and will go down to 3.7.1 (allowDowngrade)")
	assert.Contains(t, out, "1 downgrade")
	assert.Contains(t, out, "k-1 (downgrade from 3.8.0)")
	assert.NotContains(t, out, "k-2 (downgrade")

	out, err = planOf(t, allowed, "--json")
	require.NoError(t, err)
	var p plan.Plan
	require.NoError(t, json.Unmarshal([]byte(out), &p))
	assert.Equal(t, 1, p.Downgrades)
	assert.True(t, targets(&p)["k-1"].Downgrade)
}

func TestRenderStatusPointsAtRelatedRollouts(t *testing.T) {
	var b bytes.Buffer
	renderStatus(&b, live(&workflows.RolloutStatus{State: workflows.StateSuperseded, SupersededBy: "rollout/hotfix"}), fixedNow)
	require.Contains(t, b.String(), "Superseded by:   hotfix (fleet status hotfix)\n")
	b.Reset()
	renderStatus(&b, live(&workflows.RolloutStatus{State: workflows.StateRunning,
		Recovery: &workflows.Recovery{Kind: workflows.RecoverySupersede, Of: "rollout/old"}}), fixedNow)
	require.Contains(t, b.String(), "Recovery:        supersedes old\n")
	b.Reset()
	renderStatus(&b, live(&workflows.RolloutStatus{State: workflows.StateAborted, RollbackID: "rollout/x-rollback"}), fixedNow)
	require.Contains(t, b.String(), "Rolled back by:  x-rollback (fleet status x-rollback)\n")
}
