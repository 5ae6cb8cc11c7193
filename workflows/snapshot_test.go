package workflows_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/planstore"
	"github.com/fleet-rollout/fleet/starter/client"
	"github.com/fleet-rollout/fleet/workflows"
)

// snapshot queries the rollout and every batch it reports in flight at the
// same simulated instant and merges them as the fleet client does.
func (h *rolloutHarness) snapshot(t *testing.T) workflows.RolloutStatus {
	t.Helper()
	st := h.status(t)
	if st.PlanStored != "" {
		// The client lists the pending clusters from the plan store.
		full, err := planstore.GetPlan(context.Background(), h.store, st.PlanStored)
		require.NoError(t, err)
		client.FillPending(&st, full)
	}
	batches := map[int]workflows.BatchStatus{}
	for _, ph := range st.Phases {
		for _, b := range ph.Batches {
			switch b.State {
			case workflows.BatchRunning, workflows.BatchPaused, workflows.BatchBaking:
			default:
				continue
			}
			v, err := h.env.QueryWorkflowByID(workflows.BatchID(testRolloutID, b.Number), workflows.QueryStatus)
			require.NoError(t, err, "query batch %d", b.Number)
			var bs workflows.BatchStatus
			require.NoError(t, v.Get(&bs))
			batches[b.Number] = bs
		}
	}
	return client.Merge(st, batches)
}

type snapshotCase struct {
	name string
	plan *plan.Plan
	// paceAt, when set, raises the phase's concurrency to paced then.
	paceAt time.Duration
	paced  int
}

func snapshotCases() []snapshotCase {
	strict := func(p *plan.Plan) *plan.Plan {
		p.Phases[0].Strict = true
		return p
	}
	return []snapshotCase{
		{name: "two lanes", plan: lanePlan(32, 4, 8)},
		{name: "lanes, pacing raised mid-phase", plan: lanePlan(40, 4, 8), paceAt: 15 * time.Second, paced: 12},
		{name: "lane concurrency below the batch size", plan: lanePlan(18, 6, 4)},
		{name: "lane concurrency below the batch size, paced", plan: lanePlan(24, 6, 4), paceAt: 12 * time.Second, paced: 6},
		{name: "strict batch larger than the concurrency", plan: strict(lanePlan(18, 6, 4))},
	}
}

// runSnapshots runs the rollout of tc, takes a merged snapshot every 2
// simulated seconds and checks on each: the counts add up to the total; in
// flight is applying+holding, held and verifying are counted apart; in
// flight plus held (the clusters that hold a concurrency slot) never exceed
// the phase's concurrency in force, which the status carries.
func runSnapshots(t *testing.T, tc snapshotCase) {
	h := newRolloutHarness(t, 3, tc.plan)
	n := tc.plan.Total
	// Some clusters are slow, so batches overlap and slots move.
	for i := 1; i <= n; i += 5 {
		h.plane.brokersOf[fmt.Sprintf("lkc-%03d", i)] = 9
	}
	h.plane.run(h.env, time.Second, 30*time.Minute)
	var paced *updateOutcome
	if tc.paceAt > 0 {
		h.env.RegisterDelayedCallback(func() {
			paced = h.update(workflows.UpdatePacing, workflows.PacingRequest{Actor: "op", Concurrency: tc.paced, Reason: "quiet hours"})
		}, tc.paceAt)
	}
	snapshots, maxInFlight := 0, 0
	for s := 1500 * time.Millisecond; s < 10*time.Minute; s += 2 * time.Second {
		h.env.RegisterDelayedCallback(func() {
			st := h.snapshot(t)
			if st.Total == 0 {
				return // still planning
			}
			snapshots++
			limit := tc.plan.Phases[0].Concurrency
			if tc.paceAt > 0 && s > tc.paceAt {
				limit = tc.paced
			}
			require.Equal(t, st.Total, client.Sum(st.Counts), "at %s the counts add up to the total: %+v", s, st.Counts)
			require.Empty(t, client.Check(st, nil), "at %s", s)
			by := map[workflows.ClusterState]int{}
			for _, ph := range st.Phases {
				for _, b := range ph.Batches {
					require.Equal(t, len(b.Clusters), client.Sum(b.Counts), "at %s batch %d: every cluster counted once", s, b.Number)
					for _, c := range b.Clusters {
						by[c.State]++
					}
				}
			}
			inFlight := by[workflows.ClusterApplying] + by[workflows.ClusterHolding]
			require.Equal(t, inFlight, st.Counts.InFlight, "at %s in flight is applying+holding", s)
			require.Equal(t, by[workflows.ClusterHeld], st.Counts.Held, "at %s held is counted apart", s)
			require.Equal(t, by[workflows.ClusterVerifying], st.Counts.Verifying, "at %s verifying is counted apart", s)
			require.LessOrEqual(t, st.Counts.InFlight+st.Counts.Held, limit, "at %s in flight plus held are within the concurrency in force", s)
			for _, ph := range st.Phases {
				require.Equal(t, limit, ph.Concurrency, "at %s the status carries the concurrency in force", s)
			}
			maxInFlight = max(maxInFlight, st.Counts.InFlight)
		}, s)
	}
	h.env.ExecuteWorkflow(workflows.WorkflowRollout, rolloutInput())
	require.NoError(t, h.env.GetWorkflowError())
	if paced != nil {
		require.NoError(t, paced.err)
	}
	require.Greater(t, snapshots, 5)
	require.Greater(t, maxInFlight, 1, "snapshots saw clusters in flight")
	st := h.status(t)
	require.Equal(t, workflows.StateCompleted, st.State)
	require.Equal(t, n, st.Counts.Done)
}

// TestSnapshotsAddUpAndStayWithinTheConcurrency takes a merged status
// snapshot (the rollout's query and every running batch's, at the same
// instant, merged by client.Merge) every 2 simulated seconds while phases
// run under lanes, with a pacing change mid-phase, and with batches larger
// than the concurrency.
func TestSnapshotsAddUpAndStayWithinTheConcurrency(t *testing.T) {
	for _, tc := range snapshotCases() {
		t.Run(tc.name, func(t *testing.T) { runSnapshots(t, tc) })
	}
}
