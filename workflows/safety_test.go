package workflows_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"

	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/workflows"
)

// alertOn makes the listed clusters' monitors alert whenever they are checked.
func alertOn(ids ...string) func(workflows.HealthInput) (workflows.HealthResult, error) {
	bad := map[string]bool{}
	for _, id := range ids {
		bad[id] = true
	}
	return func(in workflows.HealthInput) (workflows.HealthResult, error) {
		var res workflows.HealthResult
		for _, c := range in.Clusters {
			if bad[c.ClusterID] {
				res.Findings = append(res.Findings, workflows.Finding{ClusterID: c.ClusterID, Monitor: "kafka-cpu-high", Status: "Alert", Message: "CPU > 90%"})
			}
		}
		return res, nil
	}
}

// singlePhasePlan is one phase of n clusters in batches of 2, one batch at a time.
func singlePhasePlan(n int) *plan.Plan {
	ts := targets(n)
	p := &plan.Plan{Hash: "feedfeedfeed", Version: "3.7.1", Total: n}
	ph := plan.Phase{Name: "prod", Concurrency: 2}
	for i := 0; i < n; i += 2 {
		ph.Batches = append(ph.Batches, plan.Batch{Number: i/2 + 1, Clusters: ts[i:min(i+2, n)]})
	}
	p.Phases = []plan.Phase{ph}
	return p
}

func TestErrorBudgetPausesOnTheFailureThatExceedsIt(t *testing.T) {
	cases := []struct {
		name       string
		budget     *spec.ErrorBudget
		bad        []string
		wantPaused bool
		wantState  workflows.RolloutState
		wantFailed int
	}{
		{"budget 0 pauses on the first failure", nil, []string{"lkc-003"}, true, workflows.StateCompleted, 1},
		{"budget 1 tolerates one failure", &spec.ErrorBudget{Max: "1"}, []string{"lkc-003"}, false, workflows.StateCompleted, 1},
		{"budget 1 pauses on the second", &spec.ErrorBudget{Max: "1"}, []string{"lkc-003", "lkc-006"}, true, workflows.StateCompleted, 2},
		{"budget 3 pauses on the fourth", &spec.ErrorBudget{Max: "3"}, []string{"lkc-001", "lkc-003", "lkc-005", "lkc-007"}, true, workflows.StateCompleted, 4},
		{"budget 3 tolerates three", &spec.ErrorBudget{Max: "3"}, []string{"lkc-001", "lkc-003", "lkc-005"}, false, workflows.StateCompleted, 3},
		{"onExceeded abort", &spec.ErrorBudget{Max: "0", OnExceeded: "abort"}, []string{"lkc-003"}, false, workflows.StateAborted, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newRolloutHarness(t, 3, singlePhasePlan(8))
			h.plane.run(h.env, time.Second, 20*time.Minute)
			h.health = alertOn(c.bad...)
			in := rolloutInput()
			in.Spec.ErrorBudget = c.budget
			pausedAt := -1
			var resumes []*updateOutcome
			// Resume whenever the rollout is found paused, like an operator who
			// accepts each failure, and record when the first pause came.
			for s := 5 * time.Second; s < 10*time.Minute; s += 5 * time.Second {
				h.env.RegisterDelayedCallback(func() {
					st := h.status(t)
					if st.Paused != nil && !st.State.Terminal() {
						if pausedAt < 0 {
							pausedAt = st.Failures
						}
						resumes = append(resumes, h.update(workflows.Resume, workflows.ActionRequest{Actor: "op", Reason: "accept"}))
					}
				}, s)
			}
			h.env.ExecuteWorkflow(workflows.WorkflowRollout, in)
			require.NoError(t, h.env.GetWorkflowError())
			var st workflows.RolloutStatus
			require.NoError(t, h.env.GetWorkflowResult(&st))
			require.Equal(t, c.wantState, st.State)
			require.Equal(t, c.wantFailed, st.Counts.Failed)
			require.Equal(t, c.wantFailed, st.Failures)
			if c.wantPaused {
				require.Equal(t, len(c.bad), pausedAt, "paused on the failure that exceeded the budget, not before")
			} else {
				require.Equal(t, -1, pausedAt, "never paused")
			}
			for _, id := range c.bad {
				require.Contains(t, h.plane.commands(dataplane.Abort), id, "an alerting cluster is stopped")
			}
		})
	}
}

func TestHealthUnknownPausesAfterTheGracePeriodAndNeverAdvances(t *testing.T) {
	h := newRolloutHarness(t, 2, singlePhasePlan(4))
	h.plane.run(h.env, time.Second, 20*time.Minute)
	failing := true
	h.health = func(in workflows.HealthInput) (workflows.HealthResult, error) {
		if failing {
			return workflows.HealthResult{}, errors.New("list monitors (HTTP 500)")
		}
		return workflows.HealthResult{}, nil
	}
	in := rolloutInput()
	in.Spec.Monitoring.UnknownGrace = spec.Duration(20 * time.Second)
	var early, late workflows.RolloutStatus
	var resumed *updateOutcome
	h.env.RegisterDelayedCallback(func() { early = h.status(t) }, 15*time.Second)
	appliesLate := -1
	h.env.RegisterDelayedCallback(func() {
		late = h.status(t)
		appliesLate = len(h.plane.commands(dataplane.Apply))
	}, 40*time.Second)
	h.env.RegisterDelayedCallback(func() {
		failing = false
		resumed = h.update(workflows.Resume, workflows.ActionRequest{Actor: "op", Reason: "datadog is back"})
	}, 2*time.Minute)
	h.env.ExecuteWorkflow(workflows.WorkflowRollout, in)
	require.NoError(t, h.env.GetWorkflowError())

	require.Nil(t, early.Paused, "within the grace period: no pause yet")
	require.Equal(t, 0, early.Counts.Done, "but nothing advances on unknown health")
	require.NotNil(t, late.Paused)
	require.Contains(t, late.Paused.Reason, "health unknown")
	require.Contains(t, late.Paused.Reason, "HTTP 500")
	require.Equal(t, 2, appliesLate, "no cluster started beyond the first batch while health was unknown")
	require.NoError(t, resumed.err)
	var st workflows.RolloutStatus
	require.NoError(t, h.env.GetWorkflowResult(&st))
	require.Equal(t, workflows.StateCompleted, st.State)
	require.Equal(t, 4, st.Counts.Done)
}

func TestFreezeStopsARunningRolloutAndRefusesResume(t *testing.T) {
	h := newRolloutHarness(t, 20, singlePhasePlan(4))
	h.plane.run(h.env, time.Second, 30*time.Minute)
	until := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var paused workflows.RolloutStatus
	var refused, resumed *updateOutcome
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(workflows.SignalFreezeState, workflows.FreezeState{Freeze: &workflows.FreezeInfo{Actor: "sre-lead", Reason: "holiday weekend", Until: until}})
	}, 5*time.Second)
	h.env.RegisterDelayedCallback(func() {
		paused = h.status(t)
		refused = h.update(workflows.Resume, workflows.ActionRequest{Actor: "op", Reason: "please"})
	}, 30*time.Second)
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(workflows.SignalFreezeState, workflows.FreezeState{})
	}, time.Minute)
	h.env.RegisterDelayedCallback(func() {
		resumed = h.update(workflows.Resume, workflows.ActionRequest{Actor: "op", Reason: "freeze over"})
	}, 90*time.Second)
	h.env.ExecuteWorkflow(workflows.WorkflowRollout, rolloutInput())
	require.NoError(t, h.env.GetWorkflowError())

	require.NotNil(t, paused.Paused)
	require.Equal(t, "sre-lead", paused.Paused.Actor)
	require.Contains(t, paused.Paused.Reason, "holiday weekend")
	require.ElementsMatch(t, []string{"lkc-001", "lkc-002"}, h.plane.commands(dataplane.Hold), "in-flight clusters hold")
	require.ErrorContains(t, refused.err, "the fleet is frozen until 2030-01-01T00:00:00Z by sre-lead: holiday weekend")
	require.NoError(t, resumed.err)
	var st workflows.RolloutStatus
	require.NoError(t, h.env.GetWorkflowResult(&st))
	require.Equal(t, workflows.StateCompleted, st.State)
}

func TestRolloutStartedDuringAFreezeWaits(t *testing.T) {
	h := newRolloutHarness(t, 2, singlePhasePlan(2))
	h.plane.run(h.env, time.Second, 10*time.Minute)
	h.freeze = workflows.FreezeState{Freeze: &workflows.FreezeInfo{Actor: "sre-lead", Reason: "incident INC-7", Until: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}}
	var during workflows.RolloutStatus
	appliesDuring := -1
	h.env.RegisterDelayedCallback(func() {
		during = h.status(t)
		appliesDuring = len(h.plane.commands(dataplane.Apply))
	}, time.Minute)
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(workflows.SignalFreezeState, workflows.FreezeState{})
		h.update(workflows.Resume, workflows.ActionRequest{Actor: "op", Reason: "go"})
	}, 2*time.Minute)
	h.env.ExecuteWorkflow(workflows.WorkflowRollout, rolloutInput())
	require.NoError(t, h.env.GetWorkflowError())
	require.Equal(t, workflows.StatePaused, during.State)
	require.Contains(t, during.Paused.Reason, "incident INC-7")
	require.Equal(t, 0, appliesDuring, "nothing applied while frozen")
	var st workflows.RolloutStatus
	require.NoError(t, h.env.GetWorkflowResult(&st))
	require.Equal(t, workflows.StateCompleted, st.State)
	require.Equal(t, 2, st.Counts.Done)
}

func TestPacingUpdateWidensTheWindow(t *testing.T) {
	p := singlePhasePlan(8)
	p.Phases[0].Concurrency = 2 // one batch of 2 at a time
	h := newRolloutHarness(t, 10, p)
	h.plane.run(h.env, time.Second, 20*time.Minute)
	var bad, good *updateOutcome
	maxBatches := 0
	h.env.RegisterDelayedCallback(func() {
		bad = h.update(workflows.UpdatePacing, workflows.PacingRequest{Actor: "op", Concurrency: -1})
		good = h.update(workflows.UpdatePacing, workflows.PacingRequest{Actor: "op", Concurrency: 8, Reason: "quiet hours"})
	}, 3*time.Second)
	for s := 4 * time.Second; s < 3*time.Minute; s += 2 * time.Second {
		h.env.RegisterDelayedCallback(func() {
			running := 0
			for _, ph := range h.status(t).Phases {
				for _, b := range ph.Batches {
					if b.State == workflows.BatchRunning {
						running++
					}
				}
			}
			maxBatches = max(maxBatches, running)
		}, s)
	}
	h.env.ExecuteWorkflow(workflows.WorkflowRollout, rolloutInput())
	require.NoError(t, h.env.GetWorkflowError())
	require.ErrorContains(t, bad.err, "concurrency must not be negative")
	require.NoError(t, good.err)
	require.Contains(t, good.res.Message, "concurrency 8")
	require.GreaterOrEqual(t, maxBatches, 3, "more batches side by side after the update")
	var st workflows.RolloutStatus
	require.NoError(t, h.env.GetWorkflowResult(&st))
	require.Equal(t, 8, st.Counts.Done)
}

func TestRolloutPublishesStateChangesAsEvents(t *testing.T) {
	h := newRolloutHarness(t, 3, testPlan())
	h.plane.run(h.env, time.Second, 10*time.Minute)
	h.env.ExecuteWorkflow(workflows.WorkflowRollout, rolloutInput())
	require.NoError(t, h.env.GetWorkflowError())
	kinds := map[workflows.EventKind]int{}
	for _, e := range h.events {
		kinds[e.Kind]++
		require.Equal(t, testRolloutID, e.RolloutID)
		require.Equal(t, "3.7.0", e.Version)
	}
	require.Equal(t, 1, kinds[workflows.EventRolloutStarted])
	require.Equal(t, 2, kinds[workflows.EventPhaseStarted])
	require.Equal(t, 2, kinds[workflows.EventPhaseFinished])
	require.Equal(t, 1, kinds[workflows.EventRolloutFinished])
}

func TestPauseIsHandledBeforeStatusesThatArriveWithIt(t *testing.T) {
	h := newBatchHarness(t, 1) // one broker: every step completes the clusters in flight
	// The plane's first step (t=1s) completes lkc-001 and lkc-002; the pause
	// arrives at the same instant, in the same workflow task. Handled first,
	// it keeps the freed slots empty.
	h.env.RegisterDelayedCallback(func() {
		require.Equal(t, []string{"lkc-001", "lkc-002"}, h.plane.commands(dataplane.Apply), "both slots filled at the start")
		h.plane.stepQuietly(h.env)
		h.env.SignalWorkflow(workflows.Pause, workflows.ActionRequest{Actor: "op", Reason: "now"})
	}, time.Second)
	var applies int
	h.env.RegisterDelayedCallback(func() {
		applies = len(h.plane.commands(dataplane.Apply))
		h.env.SignalWorkflow(workflows.Abort, workflows.ActionRequest{Actor: "op", Reason: "done"})
	}, time.Minute)
	h.env.ExecuteWorkflow(workflows.WorkflowBatch, batchInput(6, 2))
	require.NoError(t, h.env.GetWorkflowError())
	require.Equal(t, 2, applies, "no cluster started after the pause arrived")
}

// silentParent runs a batch as its child and never answers its incidents,
// like a rollout whose verdict is slow to arrive.
func silentParent(ctx workflow.Context, in workflows.BatchInput) (workflows.BatchResult, error) {
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: testBatchID})
	var res workflows.BatchResult
	err := workflow.ExecuteChildWorkflow(cctx, workflows.WorkflowBatch, in).Get(ctx, &res)
	return res, err
}

func TestAFailedClusterIsNotReplacedBeforeTheRolloutDecides(t *testing.T) {
	h := newBatchHarness(t, 30)
	h.env.RegisterWorkflow(silentParent)
	h.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "rollout/test"})
	h.plane.run(h.env, time.Second, 20*time.Minute)
	h.health = alertOn("lkc-001")
	in := batchInput(6, 2)
	in.HealthInterval = 2 * time.Second
	var beforeVerdict, afterTimeout int
	h.env.RegisterDelayedCallback(func() { beforeVerdict = len(h.plane.commands(dataplane.Apply)) }, 40*time.Second)
	h.env.RegisterDelayedCallback(func() { afterTimeout = len(h.plane.commands(dataplane.Apply)) }, 90*time.Second)
	h.env.ExecuteWorkflow(silentParent, in)
	require.NoError(t, h.env.GetWorkflowError())
	require.Equal(t, 2, beforeVerdict, "lkc-001 failed at its first health read; its slot stays empty while the rollout has not judged it")
	require.Greater(t, afterTimeout, 2, "with no verdict for a minute, the batch goes on")
}

// TestPacingSignalFromOtherSDKs: pacing is a signal as well as an update, of
// the same name, taking the JSON other SDKs send (counts as strings,
// durations as strings); a signal that does not apply is in the audit trail
// with the reason, as is a recovery signal (rollback) that does not apply.
func TestPacingSignalFromOtherSDKs(t *testing.T) {
	p := singlePhasePlan(8)
	p.Phases[0].Concurrency = 2 // one batch of 2 at a time
	h := newRolloutHarness(t, 10, p)
	h.plane.run(h.env, time.Second, 20*time.Minute)
	maxBatches := 0
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(workflows.UpdatePacing, json.RawMessage(`{"actor":"op","concurrency":-1,"reason":"typo"}`))
		h.env.SignalWorkflow(workflows.UpdatePacing, json.RawMessage(`{"actor":"op","concurrency":"8","bake":"2s","reason":"quiet hours"}`))
		h.env.SignalWorkflow(workflows.UpdateRollback, json.RawMessage(`{"actor":"op"}`))
	}, 3*time.Second)
	for s := 4 * time.Second; s < 3*time.Minute; s += 2 * time.Second {
		h.env.RegisterDelayedCallback(func() {
			running := 0
			for _, ph := range h.status(t).Phases {
				for _, b := range ph.Batches {
					if b.State == workflows.BatchRunning {
						running++
					}
				}
			}
			maxBatches = max(maxBatches, running)
		}, s)
	}
	h.env.ExecuteWorkflow(workflows.WorkflowRollout, rolloutInput())
	require.NoError(t, h.env.GetWorkflowError())
	require.GreaterOrEqual(t, maxBatches, 3, "more batches side by side after the signal")
	var st workflows.RolloutStatus
	require.NoError(t, h.env.GetWorkflowResult(&st))
	require.Equal(t, 8, st.Counts.Done)
	var rejected, applied, rollback *workflows.AuditEntry
	for i, e := range st.Audit {
		switch {
		case e.Action == "pacing (signal)":
			rejected = &st.Audit[i]
		case e.Action == workflows.UpdatePacing:
			applied = &st.Audit[i]
		case e.Action == "rollback (signal)":
			rollback = &st.Audit[i]
		}
	}
	require.NotNil(t, rejected, "%+v", st.Audit)
	require.Equal(t, "op", rejected.Actor)
	require.Contains(t, rejected.Outcome, "rejected: concurrency must not be negative")
	require.NotNil(t, applied, "%+v", st.Audit)
	require.Equal(t, "applied", applied.Outcome)
	require.Contains(t, applied.Reason, "concurrency 8")
	require.Contains(t, applied.Reason, "bake 2s")
	require.NotNil(t, rollback, "%+v", st.Audit)
	require.Contains(t, rollback.Outcome, "rejected: a reason is required to roll back")
}
