package workflows_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/activities"
	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/planstore"
	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/workflows"
)

const testRolloutID = "rollout/test"

// testPlan has two phases: canary (1 batch of 2) and prod (3 batches of 2,
// two batches in parallel).
func testPlan() *plan.Plan {
	ts := targets(8)
	return &plan.Plan{
		Hash:    "abc123def456",
		Version: "3.7.0",
		Total:   8,
		Phases: []plan.Phase{
			{Name: "canary", Concurrency: 2, Batches: []plan.Batch{{Number: 1, Clusters: ts[0:2]}}},
			{Name: "prod", Concurrency: 4, Batches: []plan.Batch{
				{Number: 2, Clusters: ts[2:4]}, {Number: 3, Clusters: ts[4:6]}, {Number: 4, Clusters: ts[6:8]},
			}},
		},
	}
}

type rolloutHarness struct {
	*batchHarness
	notes  []workflows.Notification
	events []workflows.Event
	freeze workflows.FreezeState
	mu     sync.Mutex
	seq    int
	// plans records the Plan activity's inputs; planFor, when set,
	// answers them instead of the harness's plan.
	plans   []workflows.PlanInput
	planFor func(workflows.PlanInput) *plan.Plan
	// metrics records what the workflows count (GetMetricsHandler).
	metrics *countingHandler
	// store is the plan store the PlanOutline activity writes to;
	// afterStore, when set, is called with the key of each plan stored.
	store      *planstore.Dir
	afterStore func(key string)
	acts       *activities.Activities
}

// shareStore makes h use other's plan store: a run continued in h reads
// the plan other's run stored, as every worker of a deployment shares one.
func (h *rolloutHarness) shareStore(other *rolloutHarness) {
	h.store = other.store
	h.acts.Plans = other.acts.Plans
}

func newRolloutHarness(t *testing.T, brokers int, p *plan.Plan) *rolloutHarness {
	var s testsuite.WorkflowTestSuite
	counted := newCountingHandler()
	s.SetMetricsHandler(counted)
	env := s.NewTestWorkflowEnvironment()
	h := &rolloutHarness{batchHarness: &batchHarness{env: env, plane: newStepPlane(brokers)}, metrics: counted}
	workflows.Register(env)
	env.RegisterActivityWithOptions(func(_ context.Context, in workflows.PlanInput) (*plan.Plan, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.plans = append(h.plans, in)
		if h.planFor != nil {
			return h.planFor(in), nil
		}
		return p, nil
	}, activity.RegisterOptions{Name: workflows.ActivityPlan})
	// From versionPlanStore on the rollout plans through PlanOutline: the
	// same plan, kept in a real plan store (a directory), its outline in
	// history; the batches load their clusters with the worker's own
	// activities.
	store, err := planstore.NewDir(t.TempDir())
	require.NoError(t, err)
	h.store = store
	acts := &activities.Activities{Plans: planstore.NewCache(store), Log: zap.NewNop()}
	env.RegisterActivityWithOptions(func(ctx context.Context, in workflows.PlanInput) (*plan.Plan, error) {
		h.mu.Lock()
		h.plans = append(h.plans, in)
		full := p
		if h.planFor != nil {
			full = h.planFor(in)
		}
		h.mu.Unlock()
		key, err := planstore.PutPlan(ctx, h.store, full)
		if err != nil {
			return nil, err
		}
		if h.afterStore != nil {
			h.afterStore(key)
		}
		return full.Outline(key), nil
	}, activity.RegisterOptions{Name: workflows.ActivityPlanOutline})
	h.acts = acts
	env.RegisterActivityWithOptions(func(ctx context.Context, in workflows.BatchTargetsInput) ([]plan.Target, error) {
		return h.acts.BatchTargets(ctx, in)
	}, activity.RegisterOptions{Name: workflows.ActivityBatchTargets})
	env.RegisterActivityWithOptions(func(ctx context.Context, in workflows.PlanTargetsInput) (workflows.PlanTargetsResult, error) {
		return h.acts.PlanTargets(ctx, in)
	}, activity.RegisterOptions{Name: workflows.ActivityPlanTargets})
	env.RegisterActivityWithOptions(func(_ context.Context, in workflows.PublishInput) error {
		return h.plane.publish(in)
	}, activity.RegisterOptions{Name: workflows.ActivityPublish})
	env.RegisterActivityWithOptions(func(_ context.Context, in workflows.HealthInput) (workflows.HealthResult, error) {
		if h.health == nil {
			return workflows.HealthResult{}, nil
		}
		return h.health(in)
	}, activity.RegisterOptions{Name: workflows.ActivityCheckHealth})
	env.RegisterActivityWithOptions(func(_ context.Context, n workflows.Notification) (workflows.NotifyResult, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.notes = append(h.notes, n)
		return workflows.NotifyResult{ThreadTS: "1700000000.000100"}, nil
	}, activity.RegisterOptions{Name: workflows.ActivityNotify})
	env.RegisterActivityWithOptions(func(_ context.Context, in workflows.EmitInput) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.events = append(h.events, in.Events...)
		return nil
	}, activity.RegisterOptions{Name: workflows.ActivityEmit})
	env.RegisterActivityWithOptions(func(_ context.Context) (workflows.FreezeState, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.freeze, nil
	}, activity.RegisterOptions{Name: workflows.ActivityCurrentFreeze})
	registerPolicyActivities(env, h.batchHarness)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: testRolloutID})
	return h
}

func rolloutInput() workflows.RolloutInput {
	return workflows.RolloutInput{
		Requester: "alice",
		Spec: spec.Rollout{
			Name:       "test",
			Target:     spec.Target{Version: "3.7.0"},
			Monitoring: spec.Monitoring{Interval: spec.Duration(2 * time.Second)},
		},
	}
}

func (h *rolloutHarness) status(t *testing.T) workflows.RolloutStatus {
	t.Helper()
	v, err := h.env.QueryWorkflow(workflows.QueryStatus)
	require.NoError(t, err)
	var st workflows.RolloutStatus
	require.NoError(t, v.Get(&st))
	return st
}

// updateOutcome is filled in when the test environment has run the update.
type updateOutcome struct {
	done bool
	res  workflows.ActionResult
	err  error
}

// update sends an update; the outcome is known once the workflow ran it.
func (h *rolloutHarness) update(name string, arg any) *updateOutcome {
	out := &updateOutcome{}
	h.seq++
	h.env.UpdateWorkflow(name, fmt.Sprintf("%s-%d", name, h.seq), &testsuite.TestUpdateCallback{
		OnAccept: func() {},
		OnReject: func(err error) { out.done, out.err = true, err },
		OnComplete: func(v any, err error) {
			out.done, out.err = true, err
			if err == nil {
				out.res, _ = v.(workflows.ActionResult)
			}
		},
	}, arg)
	return out
}

func TestRolloutRunsPhasesInOrderAndCompletes(t *testing.T) {
	h := newRolloutHarness(t, 3, testPlan())
	h.plane.run(h.env, time.Second, 10*time.Minute)
	h.env.ExecuteWorkflow(workflows.WorkflowRollout, rolloutInput())
	require.NoError(t, h.env.GetWorkflowError())
	var st workflows.RolloutStatus
	require.NoError(t, h.env.GetWorkflowResult(&st))
	require.Equal(t, workflows.StateCompleted, st.State)
	require.Equal(t, 8, st.Counts.Done)
	require.Equal(t, "abc123def456", st.PlanHash)
	// The result stays small at any size: counts per batch, and clusters
	// only where something went wrong (none here).
	for _, ph := range st.Phases {
		for _, b := range ph.Batches {
			require.Empty(t, b.Clusters, "batch %d", b.Number)
			require.Equal(t, workflows.BatchCompleted, b.State)
		}
	}
	// The canary's clusters were applied before any prod cluster.
	applies := h.plane.commands(dataplane.Apply)
	require.Len(t, applies, 8)
	require.ElementsMatch(t, []string{"lkc-001", "lkc-002"}, applies[:2])
	for id, n := range h.plane.starts {
		require.Equal(t, 1, n, id)
	}
	// One thread: started, phase done x2, finished.
	var events []workflows.NotifyEvent
	for _, n := range h.notes {
		events = append(events, n.Event)
	}
	require.Equal(t, []workflows.NotifyEvent{workflows.NotifyStarted, workflows.NotifyPhaseDone, workflows.NotifyPhaseDone, workflows.NotifyFinished}, events)
	require.Empty(t, h.notes[0].ThreadTS)
	require.Equal(t, "1700000000.000100", h.notes[3].ThreadTS, "later messages go to the first message's thread")
}

func TestRolloutMonitorAlertPausesEveryBatchUntilResumed(t *testing.T) {
	h := newRolloutHarness(t, 30, testPlan())
	h.plane.run(h.env, time.Second, 30*time.Minute)
	fired := false
	var mu sync.Mutex
	h.health = func(in workflows.HealthInput) (workflows.HealthResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range in.Clusters {
			if c.ClusterID == "lkc-003" && !fired {
				fired = true
				return workflows.HealthResult{Findings: []workflows.Finding{{ClusterID: "lkc-003", Monitor: "kafka-cpu-high", Status: "Alert", Message: "CPU > 90%"}}}, nil
			}
		}
		return workflows.HealthResult{}, nil
	}
	var paused workflows.RolloutStatus
	var appliesWhilePaused int
	// Batch 1 (canary, 30 brokers) finishes near 31s; batches 2 and 3 start
	// together; lkc-003 (batch 2) alerts at their first health poll.
	h.env.RegisterDelayedCallback(func() {
		paused = h.status(t)
		appliesWhilePaused = len(h.plane.commands(dataplane.Apply))
	}, 50*time.Second)
	var rejected, resumed *updateOutcome
	var appliesBeforeResume int
	h.env.RegisterDelayedCallback(func() {
		appliesBeforeResume = len(h.plane.commands(dataplane.Apply))
		rejected = h.update(workflows.Pause, workflows.ActionRequest{Actor: "carol", Reason: "again"})
		resumed = h.update(workflows.Resume, workflows.ActionRequest{Actor: "carol", Reason: "false alarm"})
	}, 5*time.Minute)
	h.env.ExecuteWorkflow(workflows.WorkflowRollout, rolloutInput())
	require.NoError(t, h.env.GetWorkflowError())

	require.Equal(t, workflows.StatePaused, paused.State)
	require.NotNil(t, paused.Paused)
	require.Equal(t, "fleet-safety", paused.Paused.Actor)
	require.Contains(t, paused.Paused.Reason, "kafka-cpu-high")
	require.Contains(t, paused.Paused.Reason, "lkc-003")
	require.Len(t, paused.Incidents, 1)
	require.Equal(t, 6, appliesWhilePaused, "canary (2) + two parallel prod batches (4)")
	// The alerting cluster is stopped for good; every other in-flight
	// cluster of both running batches got a hold.
	require.Equal(t, []string{"lkc-003"}, h.plane.commands(dataplane.Abort))
	require.ElementsMatch(t, []string{"lkc-004", "lkc-005", "lkc-006"}, h.plane.commands(dataplane.Hold))
	require.Equal(t, appliesWhilePaused, appliesBeforeResume, "nothing new starts while paused")
	require.True(t, rejected.done)
	require.ErrorContains(t, rejected.err, "already paused")
	require.NoError(t, resumed.err)
	require.Equal(t, workflows.StateRunning, resumed.res.State)

	var st workflows.RolloutStatus
	require.NoError(t, h.env.GetWorkflowResult(&st))
	require.Equal(t, workflows.StateCompleted, st.State)
	require.Equal(t, 7, st.Counts.Done)
	require.Equal(t, 1, st.Counts.Failed, "the alerting cluster stays failed")
	var listed []string
	for _, ph := range st.Phases {
		for _, b := range ph.Batches {
			for _, c := range b.Clusters {
				listed = append(listed, c.ID+":"+string(c.State))
			}
		}
	}
	require.Equal(t, []string{"lkc-003:failed"}, listed, "the result lists the clusters that went wrong")
	for id, n := range h.plane.starts {
		require.Equal(t, 1, n, id)
	}
	var actions []string
	for _, a := range st.Audit {
		actions = append(actions, a.Actor+":"+a.Action)
	}
	require.Equal(t, []string{"alice:start", "fleet-safety:pause", "carol:resume", "fleet:finish"}, actions)
	var sawPaused bool
	for _, n := range h.notes {
		if n.Event == workflows.NotifyPaused {
			sawPaused = true
			require.Contains(t, n.Text, "kafka-cpu-high")
		}
	}
	require.True(t, sawPaused, "the pause is told in Slack")
}

func TestRolloutUpdatesSayWhyTheyDoNotApply(t *testing.T) {
	h := newRolloutHarness(t, 5, testPlan())
	h.plane.run(h.env, time.Second, 10*time.Minute)
	errs := map[string]*updateOutcome{}
	h.env.RegisterDelayedCallback(func() {
		errs["resume"] = h.update(workflows.Resume, workflows.ActionRequest{Actor: "dave"})
		errs["pause-no-reason"] = h.update(workflows.Pause, workflows.ActionRequest{Actor: "dave"})
		errs["approve-unneeded"] = h.update(workflows.Approve, workflows.ApproveRequest{Actor: "dave", PlanHash: "abc123def456"})
		errs["approve-unknown-phase"] = h.update(workflows.Approve, workflows.ApproveRequest{Actor: "dave", Phase: "nope"})
		errs["abort-no-reason"] = h.update(workflows.Abort, workflows.ActionRequest{Actor: "dave"})
		// A signal that does not apply is recorded, not lost.
		h.env.SignalWorkflow(workflows.Resume, workflows.ActionRequest{Actor: "erin", Reason: "try"})
	}, 2*time.Second)
	h.env.ExecuteWorkflow(workflows.WorkflowRollout, rolloutInput())
	require.NoError(t, h.env.GetWorkflowError())
	require.ErrorContains(t, errs["resume"].err, "rollout is not paused")
	require.ErrorContains(t, errs["pause-no-reason"].err, "a reason is required to pause")
	require.ErrorContains(t, errs["approve-unneeded"].err, "does not require plan approval")
	require.ErrorContains(t, errs["approve-unknown-phase"].err, `no phase "nope"`)
	require.ErrorContains(t, errs["abort-no-reason"].err, "a reason is required to abort")
	var st workflows.RolloutStatus
	require.NoError(t, h.env.GetWorkflowResult(&st))
	require.Equal(t, workflows.StateCompleted, st.State)
	found := false
	for _, a := range st.Audit {
		if a.Actor == "erin" {
			found = true
			require.Equal(t, "rejected: rollout is not paused", a.Outcome)
		}
	}
	require.True(t, found, "rejected signal recorded in the audit trail")
}

func TestRolloutPlanApprovalRejectsStaleHash(t *testing.T) {
	h := newRolloutHarness(t, 3, testPlan())
	h.plane.run(h.env, time.Second, 20*time.Minute)
	in := rolloutInput()
	in.Spec.RequirePlanApproval = true
	var waiting workflows.RolloutStatus
	var stale, approved *updateOutcome
	appliedBeforeApproval := -1
	h.env.RegisterDelayedCallback(func() {
		waiting = h.status(t)
		stale = h.update(workflows.Approve, workflows.ApproveRequest{Actor: "frank", PlanHash: "000000000000"})
	}, 10*time.Second)
	h.env.RegisterDelayedCallback(func() {
		appliedBeforeApproval = len(h.plane.commands(dataplane.Apply))
		approved = h.update(workflows.Approve, workflows.ApproveRequest{Actor: "frank", PlanHash: "abc123def456"})
	}, 5*time.Minute)
	h.env.ExecuteWorkflow(workflows.WorkflowRollout, in)
	require.NoError(t, h.env.GetWorkflowError())
	require.Equal(t, workflows.StateAwaitingApproval, waiting.State)
	require.Contains(t, waiting.WaitingFor, "--plan abc123def456")
	require.ErrorContains(t, stale.err, "stale plan hash 000000000000")
	require.Equal(t, 0, appliedBeforeApproval, "nothing applied before approval")
	require.NoError(t, approved.err)
	var st workflows.RolloutStatus
	require.NoError(t, h.env.GetWorkflowResult(&st))
	require.Equal(t, workflows.StateCompleted, st.State)
	require.Equal(t, 8, st.Counts.Done)
}

func TestRolloutAbortStopsEverything(t *testing.T) {
	h := newRolloutHarness(t, 50, testPlan())
	h.plane.run(h.env, time.Second, 30*time.Minute)
	var aborted *updateOutcome
	h.env.RegisterDelayedCallback(func() {
		aborted = h.update(workflows.Abort, workflows.ActionRequest{Actor: "grace", Reason: "customer escalation"})
	}, 10*time.Second)
	h.env.ExecuteWorkflow(workflows.WorkflowRollout, rolloutInput())
	require.NoError(t, h.env.GetWorkflowError())
	var st workflows.RolloutStatus
	require.NoError(t, h.env.GetWorkflowResult(&st))
	require.NoError(t, aborted.err)
	require.Equal(t, workflows.StateAborted, st.State)
	require.Equal(t, 2, st.Counts.Aborted, "the canary's in-flight clusters stop")
	require.Equal(t, 6, st.Counts.Skipped, "later batches never start")
	require.Len(t, h.plane.commands(dataplane.Apply), 2)
}
