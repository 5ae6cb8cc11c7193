package workflows_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/policy"
	"github.com/fleet-rollout/fleet/workflows"
)

const testBatchID = "rollout/test/batch-1"

func targets(n int) []plan.Target {
	out := make([]plan.Target, n)
	for i := range out {
		out[i] = plan.Target{ClusterID: fmt.Sprintf("lkc-%03d", i+1), Product: "kafka", Generation: 2}
	}
	return out
}

type batchHarness struct {
	env   *testsuite.TestWorkflowEnvironment
	plane *stepPlane
	// health, if set, answers CheckHealth.
	health func(workflows.HealthInput) (workflows.HealthResult, error)
	// events are what the Emit activity received.
	events []workflows.Event
	// inventory and policy answer the Clusters and Policy activities
	// (clusters not listed have no window).
	inventory map[string]fleet.Cluster
	policy    *policy.Snapshot
}

func registerPolicyActivities(env *testsuite.TestWorkflowEnvironment, h *batchHarness) {
	env.RegisterActivityWithOptions(func(_ context.Context, in workflows.ClustersInput) (workflows.ClustersResult, error) {
		res := workflows.ClustersResult{Policy: h.policy}
		for _, id := range in.IDs {
			c, ok := h.inventory[id]
			if !ok {
				c = fleet.Cluster{ID: id, Product: "kafka", Cloud: "aws", Region: "us-east-1", Environment: "prod", Customer: "cust-001", Version: "3.6.1", Brokers: 3, Generation: 1}
			}
			res.Clusters = append(res.Clusters, c)
		}
		return res, nil
	}, activity.RegisterOptions{Name: workflows.ActivityClusters})
	env.RegisterActivityWithOptions(func(_ context.Context) (*policy.Snapshot, error) {
		return h.policy, nil
	}, activity.RegisterOptions{Name: workflows.ActivityPolicy})
}

func newBatchHarness(t *testing.T, brokers int) *batchHarness {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	h := &batchHarness{env: env, plane: newStepPlane(brokers)}
	workflows.Register(env)
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
		return workflows.NotifyResult{ThreadTS: "1"}, nil
	}, activity.RegisterOptions{Name: workflows.ActivityNotify})
	env.RegisterActivityWithOptions(func(_ context.Context, in workflows.EmitInput) error {
		h.plane.mu.Lock()
		defer h.plane.mu.Unlock()
		h.events = append(h.events, in.Events...)
		return nil
	}, activity.RegisterOptions{Name: workflows.ActivityEmit})
	registerPolicyActivities(env, h)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: testBatchID})
	t.Cleanup(func() { env.AssertExpectations(t) })
	return h
}

func (h *batchHarness) query(t *testing.T) workflows.BatchStatus {
	t.Helper()
	v, err := h.env.QueryWorkflow(workflows.QueryStatus)
	require.NoError(t, err)
	var st workflows.BatchStatus
	require.NoError(t, v.Get(&st))
	return st
}

func byState(st workflows.BatchStatus) map[workflows.ClusterState][]string {
	out := map[workflows.ClusterState][]string{}
	for _, c := range st.Clusters {
		out[c.State] = append(out[c.State], c.ID)
	}
	return out
}

func batchInput(n, concurrency int) workflows.BatchInput {
	return workflows.BatchInput{
		RolloutID:   "rollout/test",
		Phase:       "prod",
		Batch:       plan.Batch{Number: 1, Clusters: targets(n)},
		Target:      dataplane.Spec{Version: "3.7.0"},
		Concurrency: concurrency,
	}
}

func TestBatchAppliesEveryClusterOnceWithinConcurrency(t *testing.T) {
	h := newBatchHarness(t, 3)
	h.plane.run(h.env, time.Second, 2*time.Minute)
	maxActive := 0
	for s := 500 * time.Millisecond; s < 30*time.Second; s += time.Second {
		h.env.RegisterDelayedCallback(func() {
			if n := byState(h.query(t)); len(n[workflows.ClusterApplying]) > maxActive {
				maxActive = len(n[workflows.ClusterApplying])
			}
		}, s)
	}
	h.env.ExecuteWorkflow(workflows.WorkflowBatch, batchInput(7, 3))
	require.True(t, h.env.IsWorkflowCompleted())
	require.NoError(t, h.env.GetWorkflowError())
	var res workflows.BatchResult
	require.NoError(t, h.env.GetWorkflowResult(&res))
	require.Len(t, res.Clusters, 7)
	for _, c := range res.Clusters {
		require.Equal(t, workflows.ClusterDone, c.State, c.ID)
		require.Equal(t, 1, h.plane.starts[c.ID], "applies of %s", c.ID)
		require.Equal(t, 3, c.Broker, c.ID)
	}
	require.Equal(t, 3, maxActive, "sliding window keeps exactly the concurrency in flight")
	require.Len(t, h.plane.commands(dataplane.Apply), 7)
	// Every cluster's state changes reach fleet.events, in order.
	seen := map[string][]string{}
	for _, e := range h.events {
		require.Equal(t, workflows.EventClusterState, e.Kind)
		require.Equal(t, "rollout/test", e.RolloutID)
		seen[e.ClusterID] = append(seen[e.ClusterID], e.State)
	}
	for _, c := range res.Clusters {
		states := seen[c.ID]
		require.NotEmpty(t, states, c.ID)
		require.Equal(t, "applying", states[0], c.ID)
		require.Equal(t, "done", states[len(states)-1], c.ID)
	}
}

func TestBatchPauseHoldsInFlightAndStartsNoNew(t *testing.T) {
	h := newBatchHarness(t, 5)
	h.plane.run(h.env, time.Second, 5*time.Minute)
	var during workflows.BatchStatus
	var appliesAtPause int
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(workflows.Pause, workflows.ActionRequest{Actor: "alice", Reason: "look at lag"})
	}, 2500*time.Millisecond)
	h.env.RegisterDelayedCallback(func() {
		during = h.query(t)
		appliesAtPause = len(h.plane.commands(dataplane.Apply))
	}, time.Minute)
	h.env.RegisterDelayedCallback(func() {
		// Still nothing new a minute later.
		require.Equal(t, appliesAtPause, len(h.plane.commands(dataplane.Apply)))
		h.env.SignalWorkflow(workflows.Resume, workflows.ActionRequest{Actor: "alice"})
	}, 2*time.Minute)
	h.env.ExecuteWorkflow(workflows.WorkflowBatch, batchInput(6, 2))
	require.NoError(t, h.env.GetWorkflowError())

	states := byState(during)
	require.Equal(t, workflows.BatchPaused, during.State)
	require.ElementsMatch(t, []string{"lkc-001", "lkc-002"}, states[workflows.ClusterHeld], "in-flight clusters hold")
	require.Len(t, states[workflows.ClusterPending], 4, "no new cluster starts while paused")
	require.Equal(t, 2, appliesAtPause)
	require.ElementsMatch(t, []string{"lkc-001", "lkc-002"}, h.plane.commands(dataplane.Hold))
	for _, c := range during.Clusters[:2] {
		require.Less(t, c.Broker, 5, "held before the last broker")
		require.Contains(t, c.Message, "held before broker")
	}

	// Resume continued the held clusters where they stopped: one apply each,
	// every broker restarted once.
	var res workflows.BatchResult
	require.NoError(t, h.env.GetWorkflowResult(&res))
	for _, c := range res.Clusters {
		require.Equal(t, workflows.ClusterDone, c.State, c.ID)
		require.Equal(t, 1, h.plane.starts[c.ID], c.ID)
		require.Equal(t, 5, h.plane.brokersRestarted(c.ID), c.ID)
	}
	require.ElementsMatch(t, []string{"lkc-001", "lkc-002"}, h.plane.commands(dataplane.Resume))
}

func TestBatchAbortStopsInFlightAndSkipsPending(t *testing.T) {
	h := newBatchHarness(t, 10)
	h.plane.run(h.env, time.Second, 5*time.Minute)
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(workflows.Abort, workflows.ActionRequest{Actor: "bob", Reason: "wrong version"})
	}, 3500*time.Millisecond)
	h.env.ExecuteWorkflow(workflows.WorkflowBatch, batchInput(5, 2))
	require.NoError(t, h.env.GetWorkflowError())
	var res workflows.BatchResult
	require.NoError(t, h.env.GetWorkflowResult(&res))
	require.True(t, res.Aborted)
	got := map[string]workflows.ClusterState{}
	for _, c := range res.Clusters {
		got[c.ID] = c.State
	}
	require.Equal(t, map[string]workflows.ClusterState{
		"lkc-001": workflows.ClusterAborted, "lkc-002": workflows.ClusterAborted,
		"lkc-003": workflows.ClusterSkipped, "lkc-004": workflows.ClusterSkipped, "lkc-005": workflows.ClusterSkipped,
	}, got)
	require.Len(t, h.plane.commands(dataplane.Apply), 2)
	require.ElementsMatch(t, []string{"lkc-001", "lkc-002"}, h.plane.commands(dataplane.Abort))
}

func TestBatchResyncResendsApplyWhenTheDataPlaneIsSilent(t *testing.T) {
	h := newBatchHarness(t, 2)
	h.plane.silent["lkc-001"] = true
	h.plane.run(h.env, time.Second, 5*time.Minute)
	h.env.RegisterDelayedCallback(func() {
		h.plane.mu.Lock()
		delete(h.plane.silent, "lkc-001") // the status stream comes back
		h.plane.mu.Unlock()
	}, 45*time.Second)
	in := batchInput(1, 1)
	h.env.ExecuteWorkflow(workflows.WorkflowBatch, in)
	require.NoError(t, h.env.GetWorkflowError())
	var res workflows.BatchResult
	require.NoError(t, h.env.GetWorkflowResult(&res))
	require.Equal(t, workflows.ClusterDone, res.Clusters[0].State)
	require.GreaterOrEqual(t, len(h.plane.commands(dataplane.Apply)), 2, "apply re-sent after silence")
	require.Equal(t, 1, h.plane.starts["lkc-001"], "a re-sent apply of the same generation is not applied twice")
}

func TestBatchMonitorAlertStopsTheClusterAndHoldsTheBatch(t *testing.T) {
	h := newBatchHarness(t, 20)
	h.plane.run(h.env, time.Second, 10*time.Minute)
	h.health = func(in workflows.HealthInput) (workflows.HealthResult, error) {
		for _, c := range in.Clusters {
			if c.ClusterID == "lkc-002" {
				return workflows.HealthResult{Findings: []workflows.Finding{{ClusterID: "lkc-002", Monitor: "kafka-under-replicated-partitions", Status: "Alert", Message: "URP > 0"}}}, nil
			}
		}
		return workflows.HealthResult{}, nil
	}
	in := batchInput(4, 2)
	in.HealthInterval = 2 * time.Second
	var during workflows.BatchStatus
	h.env.RegisterDelayedCallback(func() { during = h.query(t) }, 30*time.Second)
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(workflows.Abort, workflows.ActionRequest{Actor: "bob", Reason: "bad version"})
	}, time.Minute)
	h.env.ExecuteWorkflow(workflows.WorkflowBatch, in)
	require.NoError(t, h.env.GetWorkflowError())
	// The alerting cluster is stopped for good and failed; run on its own
	// (no rollout to consult a budget), the batch holds the rest.
	require.Equal(t, workflows.BatchPaused, during.State)
	states := byState(during)
	require.Equal(t, []string{"lkc-002"}, states[workflows.ClusterFailed])
	require.Equal(t, []string{"lkc-001"}, states[workflows.ClusterHeld])
	require.Len(t, states[workflows.ClusterPending], 2)
	require.Equal(t, []string{"lkc-002"}, h.plane.commands(dataplane.Abort)[:1])
	require.Equal(t, []string{"lkc-001"}, h.plane.commands(dataplane.Hold))
	for _, c := range during.Clusters {
		if c.ID == "lkc-002" {
			require.Contains(t, c.Message, "monitor kafka-under-replicated-partitions Alert")
		}
	}
}

// A compact result (BatchInput.CompactResult, what rollouts above
// DetailLimit ask) counts the clusters that ended done and lists only the
// others: the same outcome as the full result, without a row per success.
func TestBatchCompactResultCountsDoneAndListsExceptions(t *testing.T) {
	run := func(compact bool) workflows.BatchResult {
		h := newBatchHarness(t, 10)
		h.plane.run(h.env, time.Second, 5*time.Minute)
		h.env.RegisterDelayedCallback(func() {
			h.env.SignalWorkflow(workflows.Abort, workflows.ActionRequest{Actor: "bob", Reason: "wrong version"})
		}, 25*time.Second)
		in := batchInput(8, 2)
		in.CompactResult = compact
		h.env.ExecuteWorkflow(workflows.WorkflowBatch, in)
		require.NoError(t, h.env.GetWorkflowError())
		var res workflows.BatchResult
		require.NoError(t, h.env.GetWorkflowResult(&res))
		return res
	}
	full, compact := run(false), run(true)
	done, others := 0, map[string]workflows.ClusterState{}
	for _, c := range full.Clusters {
		if c.State == workflows.ClusterDone {
			done++
			continue
		}
		others[c.ID] = c.State
	}
	require.Positive(t, done, "some clusters ended done before the abort")
	require.NotEmpty(t, others, "some did not")
	require.Equal(t, done, compact.Done, "the done clusters are counted")
	got := map[string]workflows.ClusterState{}
	for _, c := range compact.Clusters {
		got[c.ID] = c.State
	}
	require.Equal(t, others, got, "only the exceptions are listed")
	require.True(t, compact.Aborted)
}
