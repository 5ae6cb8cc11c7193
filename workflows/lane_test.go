package workflows_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"

	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/workflows"
)

// lanePlan is one phase of n clusters in batches of size, at concurrency c.
func lanePlan(n, size, c int) *plan.Plan {
	ts := targets(n)
	p := &plan.Plan{Hash: "1a2e1a2e1a2e", Version: "3.7.0", Total: n}
	ph := plan.Phase{Name: "prod", Concurrency: c}
	for i := 0; i < n; i += size {
		ph.Batches = append(ph.Batches, plan.Batch{Number: i/size + 1, Clusters: ts[i:min(i+size, n)]})
	}
	p.Phases = []plan.Phase{ph}
	return p
}

// clusterTimes returns, per cluster, when its apply started and finished.
func clusterTimes(st workflows.RolloutStatus) map[string][2]time.Time {
	out := map[string][2]time.Time{}
	for _, ph := range st.Phases {
		for _, b := range ph.Batches {
			for _, c := range b.Clusters {
				if c.StartedAt != nil && c.FinishedAt != nil {
					out[c.ID] = [2]time.Time{*c.StartedAt, *c.FinishedAt}
				}
			}
		}
	}
	return out
}

func TestLanesKeepTheWindowFullAcrossBatches(t *testing.T) {
	cases := []struct {
		name              string
		n, size, c        int
		wantMaxConcurrent int
	}{
		{"one lane", 24, 4, 4, 4},
		{"two lanes", 32, 4, 8, 8},
		{"concurrency below the batch size", 12, 4, 3, 3},
		{"concurrency not a multiple of the batch size", 30, 4, 6, 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newRolloutHarness(t, 2, lanePlan(tc.n, tc.size, tc.c))
			// The first cluster of every batch is slow (12 brokers), the
			// others take 2: a batch lasts as long as its slow cluster, so a
			// window of whole batches would leave most slots idle.
			for i := 1; i <= tc.n; i += tc.size {
				h.plane.brokersOf[fmt.Sprintf("lkc-%03d", i)] = 12
			}
			h.plane.run(h.env, time.Second, 20*time.Minute)
			h.env.ExecuteWorkflow(workflows.WorkflowRollout, rolloutInput())
			require.NoError(t, h.env.GetWorkflowError())
			st := h.status(t) // per-cluster detail (the result is a summary)
			require.Equal(t, workflows.StateCompleted, st.State)
			require.Equal(t, tc.n, st.Counts.Done)
			for i := 1; i <= tc.n; i++ {
				require.Equal(t, 1, h.plane.applies(fmt.Sprintf("lkc-%03d", i)), "lkc-%03d applied once", i)
			}
			require.Equal(t, tc.wantMaxConcurrent, h.plane.maxInFlight(0, h.plane.steps),
				"the window is full and never above the phase's concurrency")

			// The second batch of the first lane starts clusters while the
			// first batch's slow cluster is still applying.
			times := clusterTimes(st)
			lanes := max(1, tc.c/tc.size)
			slow := times["lkc-001"]
			heir := times[fmt.Sprintf("lkc-%03d", lanes*tc.size+1)]
			require.True(t, heir[0].Before(slow[1]), "batch %d started (%s) before batch 1's slow cluster finished (%s)",
				lanes+1, heir[0].Format(time.TimeOnly), slow[1].Format(time.TimeOnly))
		})
	}
}

func TestLanePacingMovesSlotsBetweenRunningBatches(t *testing.T) {
	// 40 clusters of 6 brokers in batches of 2; 2 lanes of 2 slots.
	h := newRolloutHarness(t, 6, lanePlan(40, 2, 4))
	h.plane.run(h.env, time.Second, 30*time.Minute)
	var down, up *updateOutcome
	var stepDown, stepUp int
	h.env.RegisterDelayedCallback(func() {
		stepDown = h.plane.steps
		down = h.update(workflows.UpdatePacing, workflows.PacingRequest{Actor: "op", Concurrency: 1, Reason: "noisy"})
	}, 10*time.Second)
	h.env.RegisterDelayedCallback(func() {
		stepUp = h.plane.steps
		up = h.update(workflows.UpdatePacing, workflows.PacingRequest{Actor: "op", Concurrency: 8, Reason: "quiet"})
	}, 60*time.Second)
	h.env.ExecuteWorkflow(workflows.WorkflowRollout, rolloutInput())
	require.NoError(t, h.env.GetWorkflowError())
	require.NoError(t, down.err)
	require.NoError(t, up.err)
	require.Contains(t, down.res.Message, "2 lanes", "a concurrency below the lane count says what runs")

	require.Equal(t, 4, h.plane.maxInFlight(0, stepDown), "as planned: 4 in flight")
	// The clusters in flight at the update finish (6 brokers); after that one
	// per lane.
	require.Equal(t, 2, h.plane.maxInFlight(stepDown+8, stepUp), "lowered: one per lane")
	require.Equal(t, 8, h.plane.maxInFlight(stepUp+1, h.plane.steps), "raised: 8 in flight")
	var st workflows.RolloutStatus
	require.NoError(t, h.env.GetWorkflowResult(&st))
	require.Equal(t, 40, st.Counts.Done)
	for i := 1; i <= 40; i++ {
		require.Equal(t, 1, h.plane.applies(fmt.Sprintf("lkc-%03d", i)))
	}
}

func TestLaneSlotsMoveToTheLaneWithWorkLeft(t *testing.T) {
	// Two lanes of 2 slots. Batch 1's clusters take 30 brokers; the other
	// five batches' take 2. The batches queued behind batch 1 in its lane
	// would wait 30 s for its slots; once every batch has started, the
	// other lane's freed slots move to them instead.
	h := newRolloutHarness(t, 2, lanePlan(12, 2, 4))
	h.plane.brokersOf["lkc-001"], h.plane.brokersOf["lkc-002"] = 30, 30
	h.plane.run(h.env, time.Second, 20*time.Minute)
	h.env.ExecuteWorkflow(workflows.WorkflowRollout, rolloutInput())
	require.NoError(t, h.env.GetWorkflowError())
	st := h.status(t)
	require.Equal(t, 12, st.Counts.Done)
	require.Equal(t, 4, h.plane.maxInFlight(0, h.plane.steps), "never above the phase's concurrency")
	times := clusterTimes(st)
	t0 := st.StartedAt
	for i := 3; i <= 12; i++ {
		id := fmt.Sprintf("lkc-%03d", i)
		require.Equal(t, 1, h.plane.applies(id))
		require.Less(t, times[id][1].Sub(t0), 25*time.Second, "%s finished while batch 1 was still applying", id)
	}
	require.Greater(t, times["lkc-001"][1].Sub(t0), 29*time.Second)
}

func TestDirectGrantDeliveredTwiceIsTakenOnce(t *testing.T) {
	h := newRolloutHarness(t, 2, lanePlan(24, 4, 4))
	for i := 1; i <= 24; i += 4 {
		h.plane.brokersOf[fmt.Sprintf("lkc-%03d", i)] = 12
	}
	// The local activity delivers every grant twice, as a retry does when
	// the first answer was lost.
	var delivered atomic.Int32
	h.env.RegisterActivityWithOptions(func(_ context.Context, in workflows.GrantSlotsInput) error {
		require.Positive(t, in.Grant.Seq, "a donor's grants are numbered")
		for range 2 {
			if err := h.env.SignalWorkflowByID(in.WorkflowID, workflows.SignalLaneSlots, in.Grant); err != nil {
				return err
			}
		}
		delivered.Add(1)
		return nil
	}, activity.RegisterOptions{Name: workflows.ActivityGrantSlots})
	h.plane.run(h.env, time.Second, 20*time.Minute)
	h.env.ExecuteWorkflow(workflows.WorkflowRollout, rolloutInput())
	require.NoError(t, h.env.GetWorkflowError())
	st := h.status(t)
	require.Equal(t, workflows.StateCompleted, st.State)
	require.Equal(t, 24, st.Counts.Done)
	require.Positive(t, delivered.Load(), "grants went through the local activity")
	for i := 1; i <= 24; i++ {
		require.Equal(t, 1, h.plane.applies(fmt.Sprintf("lkc-%03d", i)), "lkc-%03d applied once", i)
	}
	require.Equal(t, 4, h.plane.maxInFlight(0, h.plane.steps), "a grant delivered twice adds its slots once")
}
