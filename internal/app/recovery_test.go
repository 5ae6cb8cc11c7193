package app_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/sim"
	"github.com/fleet-rollout/fleet/starter/client"
	"github.com/fleet-rollout/fleet/workflows"
)

// Whole-stack recovery tests: rollback after a fault, rollback started by
// the error budget, supersede mid-rollout, retry of failed clusters. The data
// plane (the simulator) is the judge: what each cluster runs at the end and
// how many applies it began.

// recoverySpec is a two-phase kafka rollout to version with the given error
// budget lines.
func recoverySpec(name, version, budget string) string {
	return fmt.Sprintf(`
name: %s
target: {version: %s}
selector: product=kafka, env in (internal, prod)
strategy:
  phases:
    - {name: canary, selector: env=internal, batchSize: 5, concurrency: 5}
    - {name: prod, selector: env=prod, batchSize: 10, concurrency: 10}
monitoring: {interval: 1s}
schedule: {windows: ignore}
%s`, name, version, budget)
}

// recoverySelected lists the clusters recoverySpec selects, from the fleet
// as it was before any rollout.
func (s *stack) recoverySelected() []string {
	return s.safetySelect(func(c fleet.Cluster) bool {
		return c.Product == fleet.ProductKafka && (c.Environment == fleet.EnvInternal || c.Environment == fleet.EnvProd)
	})
}

// recoveryChanged is what the rollout changed per the data plane and its
// status: clusters done, failed, or aborted after a broker.
func recoveryChanged(st *workflows.RolloutStatus) map[string]workflows.ClusterStatus {
	out := map[string]workflows.ClusterStatus{}
	for id, c := range safetyClusters(st) {
		switch {
		case c.State == workflows.ClusterDone, c.State == workflows.ClusterFailed,
			c.State == workflows.ClusterAborted && c.Broker > 0:
			out[id] = c
		}
	}
	return out
}

// checkRolledBack asserts that every cluster the rollout changed is back on
// the version it had before and began exactly one more apply (the
// rollback's), and that no other cluster was touched by the rollback.
func (s *stack) checkRolledBack(t *testing.T, orig *workflows.RolloutStatus, rb *workflows.RolloutStatus) {
	t.Helper()
	changed := recoveryChanged(orig)
	require.NotEmpty(t, changed, "the rollout changed nothing")
	require.Equal(t, workflows.StateCompleted, rb.State, "rollback: %+v", rb.Counts)
	require.Equal(t, len(changed), rb.Total, "the rollback plans every changed cluster")
	require.Equal(t, len(changed), rb.Counts.Done)
	byRollback := safetyClusters(rb)
	failedFirst := 0
	for _, ph := range rb.Phases {
		if ph.Name == plan.FailedPhase {
			failedFirst = len(ph.Batches)
		}
	}
	for id, c := range s.before {
		now, ok := s.dev.Sim.Cluster(id)
		require.True(t, ok)
		require.Equal(t, c.Version, now.Version, "%s is back on its version", id)
		starts := s.dev.Sim.ApplyStarts(id)
		if oc, ok := changed[id]; ok {
			require.Equal(t, 2, starts, "%s (%s in the rollout): its apply and one rollback", id, oc.State)
			require.Equal(t, workflows.ClusterDone, byRollback[id].State, id)
			continue
		}
		require.Equal(t, 0, s.dev.Sim.ApplyStarts(id)-orig0(orig, id), "%s was not changed by the rollout, nor by the rollback", id)
		_, inRollback := byRollback[id]
		require.False(t, inRollback, "%s is in the rollback", id)
	}
	if orig.Counts.Failed > 0 {
		require.Equal(t, plan.FailedPhase, rb.Phases[0].Name, "failed clusters first")
		require.Greater(t, failedFirst, 0)
	}
}

// orig0 is how many applies the rollout itself began on a cluster it did not
// change: one when it was aborted before its first broker, else none.
func orig0(st *workflows.RolloutStatus, id string) int {
	if c, ok := safetyClusters(st)[id]; ok && c.State == workflows.ClusterAborted && c.StartedAt != nil {
		return 1
	}
	return 0
}

func TestRollbackAfterAFaultPausedTheRollout(t *testing.T) {
	s := startStack(t, 400, 30*time.Millisecond, []sim.Fault{{Version: "3.7.1", Product: fleet.ProductKafka, Fraction: 0.06, FailApply: true}})
	ctx := context.Background()
	id, err := s.client.Start(ctx, parseSpec(t, recoverySpec("it-rb", "3.7.1", "errorBudget: {max: 0}")), "team-a")
	require.NoError(t, err)
	s.safetyWaitFor(t, id, "the pause on a failure", func(st *workflows.RolloutStatus) bool { return st.Paused != nil })

	// Running (paused): refused, saying what to do.
	_, err = s.client.Rollback(ctx, id, client.RollbackOptions{Actor: "alice"})
	var running *client.RunningError
	require.True(t, errors.As(err, &running), "%v", err)
	require.Contains(t, err.Error(), "--abort")
	var rej *client.RejectedError
	_, err = s.client.Rollback(ctx, id, client.RollbackOptions{Actor: "alice", Abort: true})
	require.True(t, errors.As(err, &rej), "no reason: %v", err)

	rbID, err := s.client.Rollback(ctx, id, client.RollbackOptions{Actor: "alice", Abort: true, Reason: "3.7.1 fails brokers"})
	require.NoError(t, err)
	require.Equal(t, workflows.RolloutID("it-rb-rollback"), rbID)
	orig := s.waitFor(t, id, "the end of the rollout", terminal)
	require.Equal(t, workflows.StateAborted, orig.State)
	require.Equal(t, rbID, orig.RollbackID)
	require.Greater(t, orig.Counts.Failed, 0)
	rb := s.waitFor(t, rbID, "the end of the rollback", terminal)
	require.NotNil(t, rb.Recovery)
	require.Equal(t, workflows.RecoveryRollback, rb.Recovery.Kind)
	s.checkRolledBack(t, orig, rb)
}

func TestErrorBudgetRollsBackUnattended(t *testing.T) {
	s := startStack(t, 400, 30*time.Millisecond, []sim.Fault{{Version: "3.7.1", Product: fleet.ProductKafka, Fraction: 0.06, FailApply: true}})
	ctx := context.Background()
	id, err := s.client.Start(ctx, parseSpec(t, recoverySpec("it-auto", "3.7.1", "errorBudget: {max: 0, onExceeded: rollback}")), "team-a")
	require.NoError(t, err)
	orig := s.waitFor(t, id, "the end of the rollout", terminal)
	require.Equal(t, workflows.StateAborted, orig.State)
	rbID := workflows.RolloutID("it-auto-rollback")
	require.Equal(t, rbID, orig.RollbackID)
	rb := s.waitFor(t, rbID, "the end of the rollback", terminal)
	require.Equal(t, "fleet-safety", rb.Requester)
	s.checkRolledBack(t, orig, rb)
}

func TestSupersedeMidRollout(t *testing.T) {
	s := startStack(t, 400, 40*time.Millisecond, nil)
	ctx := context.Background()
	a, err := s.client.Start(ctx, parseSpec(t, recoverySpec("it-old", "3.7.1", "")), "team-a")
	require.NoError(t, err)
	s.waitFor(t, a, "some clusters done and some in flight", func(st *workflows.RolloutStatus) bool {
		return st.Counts.Done >= 8 && st.Counts.InFlight > 0
	})
	b, err := s.client.Supersede(ctx, a, parseSpec(t, recoverySpec("it-hotfix", "3.7.2", "")), "alice", "3.7.1 leaks")
	require.NoError(t, err)
	stA := s.waitFor(t, a, "the end of the old rollout", terminal)
	require.Equal(t, workflows.StateSuperseded, stA.State)
	require.Equal(t, b, stA.SupersededBy)
	stB := s.waitFor(t, b, "the end of the hotfix", terminal)
	require.Equal(t, workflows.StateCompleted, stB.State, "%+v", stB.Counts)
	require.NotNil(t, stB.Recovery)
	require.Equal(t, a, stB.Recovery.Of)

	inA, inB := clustersOf(stA), clustersOf(stB)
	changedByA := recoveryChanged(stA)
	require.NotEmpty(t, changedByA)
	for _, id := range s.recoverySelected() {
		now, _ := s.dev.Sim.Cluster(id)
		require.Equal(t, "3.7.2", now.Version, "%s ends on the hotfix", id)
		cb, ok := inB[id]
		require.True(t, ok, "%s is in the hotfix's plan", id)
		require.NotNil(t, cb.StartedAt, id)
		if ca, ok := inA[id]; ok && ca.StartedAt != nil {
			// Never both at once: the old rollout was done with it before
			// the hotfix began.
			require.NotNil(t, ca.FinishedAt, id)
			require.False(t, cb.StartedAt.Before(*ca.FinishedAt), "%s: A finished %s, B began %s", id, ca.FinishedAt, cb.StartedAt)
		}
	}
	// The clusters A changed come first in each of B's phases.
	for _, ph := range stB.Phases {
		seenOther := false
		for _, bt := range ph.Batches {
			for _, c := range bt.Clusters {
				_, changed := changedByA[c.ID]
				if changed {
					require.False(t, seenOther, "phase %s: %s (changed by the old rollout) after a cluster it never touched", ph.Name, c.ID)
				} else {
					seenOther = true
				}
			}
		}
	}
}

func TestRetryFailedClusters(t *testing.T) {
	s := startStack(t, 400, 20*time.Millisecond, []sim.Fault{{Version: "3.7.1", Product: fleet.ProductKafka, Fraction: 0.06, FailApply: true}})
	ctx := context.Background()
	id, err := s.client.Start(ctx, parseSpec(t, recoverySpec("it-retry", "3.7.1", "errorBudget: {max: 50%}")), "team-a")
	require.NoError(t, err)
	orig := s.waitFor(t, id, "the end of the rollout", terminal)
	require.Equal(t, workflows.StateCompleted, orig.State)
	var failed []string
	for cid, c := range safetyClusters(orig) {
		if c.State == workflows.ClusterFailed {
			failed = append(failed, cid)
		}
	}
	require.NotEmpty(t, failed)
	// The fix: the data plane no longer fails 3.7.1.
	require.NoError(t, s.dev.Sim.SetFaults(nil))

	_, err = s.client.Retry(ctx, id, []string{"no-such-cluster"}, "alice", "")
	require.ErrorContains(t, err, "no-such-cluster")
	res, err := s.client.Retry(ctx, id, nil, "alice", "fault fixed")
	require.NoError(t, err)
	require.False(t, res.InPlace)
	require.Equal(t, workflows.RolloutID("it-retry-retry"), res.ID)
	rt := s.waitFor(t, res.ID, "the end of the retry", terminal)
	require.Equal(t, workflows.StateCompleted, rt.State, "%+v", rt.Counts)
	require.Equal(t, len(failed), rt.Total)
	require.Equal(t, len(failed), rt.Counts.Done)
	require.Equal(t, 0, rt.Failures, "a fresh budget")
	for _, cid := range failed {
		now, _ := s.dev.Sim.Cluster(cid)
		require.Equal(t, "3.7.1", now.Version, cid)
		require.Equal(t, 2, s.dev.Sim.ApplyStarts(cid), cid)
	}
}

func TestRetryWithinAPausedRollout(t *testing.T) {
	s := startStack(t, 400, 20*time.Millisecond, []sim.Fault{{Version: "3.7.1", Product: fleet.ProductKafka, Fraction: 0.06, FailApply: true}})
	ctx := context.Background()
	id, err := s.client.Start(ctx, parseSpec(t, recoverySpec("it-retry-in", "3.7.1", "errorBudget: {max: 50%}")), "team-a")
	require.NoError(t, err)
	// A failure counted in a finished batch (running batches report no
	// per-cluster state to the rollout), then a pause.
	s.safetyWaitFor(t, id, "a finished batch with a failure", func(st *workflows.RolloutStatus) bool { return st.Counts.Failed > 0 })
	_, err = s.client.Pause(ctx, id, workflows.ActionRequest{Actor: "alice", Reason: "look at the failures"})
	require.NoError(t, err)
	require.NoError(t, s.dev.Sim.SetFaults(nil))
	res, err := s.client.Retry(ctx, id, nil, "alice", "fault fixed")
	require.NoError(t, err)
	require.True(t, res.InPlace)
	require.Contains(t, res.Message, "retry-1")
	_, err = s.client.Resume(ctx, id, workflows.ActionRequest{Actor: "alice", Reason: "fixed"})
	require.NoError(t, err)
	end := s.waitFor(t, id, "the end of the rollout", terminal)
	require.Equal(t, workflows.StateCompleted, end.State)
	retried := map[string]bool{}
	for _, ph := range end.Phases {
		if ph.Name != "retry-1" {
			continue
		}
		for _, b := range ph.Batches {
			for _, c := range b.Clusters {
				require.Equal(t, workflows.ClusterDone, c.State, c.ID)
				retried[c.ID] = true
			}
		}
	}
	require.NotEmpty(t, retried)
	for cid := range retried {
		now, _ := s.dev.Sim.Cluster(cid)
		require.Equal(t, "3.7.1", now.Version, cid)
		require.Equal(t, 2, s.dev.Sim.ApplyStarts(cid), cid)
	}
	require.Equal(t, 0, end.Failures, "retried failures no longer count against the budget")
}

// A supersede that races the old rollout's last batch: whichever wins, the
// old rollout ends (superseded, or completed just before), the hotfix runs
// after it, and no cluster is changed by both at once.
func TestSupersedeRacingTheLastBatch(t *testing.T) {
	s := startStack(t, 120, 40*time.Millisecond, nil)
	ctx := context.Background()
	a, err := s.client.Start(ctx, parseSpec(t, recoverySpec("it-race", "3.7.1", "")), "team-a")
	require.NoError(t, err)
	s.waitFor(t, a, "the last batch running", func(st *workflows.RolloutStatus) bool {
		return st.Counts.Pending == 0 && st.Counts.InFlight > 0 || terminal(st)
	})
	b, err := s.client.Supersede(ctx, a, parseSpec(t, recoverySpec("it-race-fix", "3.7.2", "")), "alice", "")
	require.NoError(t, err)
	stA := s.waitFor(t, a, "the end of the old rollout", terminal)
	require.Contains(t, []workflows.RolloutState{workflows.StateSuperseded, workflows.StateCompleted}, stA.State)
	stB := s.waitFor(t, b, "the end of the hotfix", terminal)
	require.Equal(t, workflows.StateCompleted, stB.State)
	inA, inB := clustersOf(stA), clustersOf(stB)
	for _, id := range s.recoverySelected() {
		now, _ := s.dev.Sim.Cluster(id)
		require.Equal(t, "3.7.2", now.Version, id)
		if ca, ok := inA[id]; ok && ca.StartedAt != nil {
			cb := inB[id]
			require.NotNil(t, cb.StartedAt, id)
			require.False(t, cb.StartedAt.Before(*ca.FinishedAt), "%s changed by both at once", id)
		}
	}
}

// A rollback is a rollout like any other: paused, it starts nothing; resumed,
// it goes on; aborted, it stops, and every cluster is on one of the two
// versions with no apply in flight.
func TestRollbackPausedResumedAborted(t *testing.T) {
	s := startStack(t, 400, 60*time.Millisecond, nil)
	ctx := context.Background()
	id, err := s.client.Start(ctx, parseSpec(t, recoverySpec("it-rb2", "3.7.1", "")), "team-a")
	require.NoError(t, err)
	s.waitFor(t, id, "the end of the rollout", terminal)
	rbID, err := s.client.Rollback(ctx, id, client.RollbackOptions{Actor: "alice"})
	require.NoError(t, err)
	s.safetyWaitFor(t, rbID, "the rollback under way", func(st *workflows.RolloutStatus) bool { return st.Counts.Done >= 3 })
	_, err = s.client.Pause(ctx, rbID, workflows.ActionRequest{Actor: "alice", Reason: "check"})
	require.NoError(t, err)
	ids := s.recoverySelected()
	// Once the held clusters have stopped, nothing new starts.
	s.safetyWaitFor(t, rbID, "held", func(st *workflows.RolloutStatus) bool { return st.Counts.InFlight == 0 })
	started := map[string]bool{}
	for _, cid := range ids {
		if s.dev.Sim.ApplyStarts(cid) > 1 {
			started[cid] = true
		}
	}
	late := s.safetyLateStartsAbove(ids, started, 1, 2*time.Second)
	require.Empty(t, late, "clusters began a rollback apply while it was paused")
	_, err = s.client.Resume(ctx, rbID, workflows.ActionRequest{Actor: "alice", Reason: "go"})
	require.NoError(t, err)
	s.safetyWaitFor(t, rbID, "more rolled back", func(st *workflows.RolloutStatus) bool { return st.Counts.Done > len(started) })
	_, err = s.client.Abort(ctx, rbID, workflows.ActionRequest{Actor: "alice", Reason: "enough"})
	require.NoError(t, err)
	end := s.waitFor(t, rbID, "the end of the rollback", terminal)
	require.Equal(t, workflows.StateAborted, end.State)
	require.Equal(t, 0, s.dev.Sim.InFlight())
	for _, cid := range ids {
		now, _ := s.dev.Sim.Cluster(cid)
		require.Contains(t, []string{s.before[cid].Version, "3.7.1"}, now.Version, cid)
		require.LessOrEqual(t, s.dev.Sim.ApplyStarts(cid), 2, cid)
	}
	require.Greater(t, end.Counts.Done, 0)
	require.Less(t, end.Counts.Done, end.Total, "aborted before the end")
}

// safetyLateStartsAbove watches for d and returns the clusters of ids
// outside allowed whose apply count rose above base.
func (s *stack) safetyLateStartsAbove(ids []string, allowed map[string]bool, base int, d time.Duration) []string {
	deadline := time.Now().Add(d)
	for {
		var late []string
		for _, id := range ids {
			if !allowed[id] && s.dev.Sim.ApplyStarts(id) > base {
				late = append(late, id)
			}
		}
		if len(late) > 0 || time.Now().After(deadline) {
			return late
		}
		time.Sleep(100 * time.Millisecond)
	}
}
