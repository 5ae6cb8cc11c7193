package workflows_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/internal/identity"
	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/policy"
	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/workflows"
)

// appliedSpecs maps each cluster to the versions its apply commands carried,
// in order.
func (p *stepPlane) appliedSpecs() map[string][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string][]string{}
	for _, c := range p.log {
		if c.Kind == dataplane.Apply && c.Spec != nil {
			out[c.ClusterID] = append(out[c.ClusterID], c.Spec.Version)
		}
	}
	return out
}

func TestBatchPushesEachClusterItsOwnTarget(t *testing.T) {
	h := newBatchHarness(t, 2)
	h.plane.run(h.env, time.Second, 2*time.Minute)
	in := batchInput(3, 3)
	in.Batch.Clusters[0].Version, in.Batch.Clusters[0].Config = "3.6.0", map[string]string{"log.retention": ""}
	in.Batch.Clusters[1].Version = "3.5.2"
	h.env.ExecuteWorkflow(workflows.WorkflowBatch, in)
	require.NoError(t, h.env.GetWorkflowError())
	got := h.plane.appliedSpecs()
	require.Equal(t, []string{"3.6.0"}, got["lkc-001"])
	require.Equal(t, []string{"3.5.2"}, got["lkc-002"])
	require.Equal(t, []string{"3.7.0"}, got["lkc-003"], "a cluster without a target of its own gets the batch's")
	for _, c := range h.plane.log {
		if c.Kind == dataplane.Apply && c.ClusterID == "lkc-001" {
			require.Equal(t, map[string]string{"log.retention": ""}, c.Spec.Config)
		}
	}
	for _, e := range h.events {
		want := map[string]string{"lkc-001": "3.6.0", "lkc-002": "3.5.2", "lkc-003": "3.7.0"}[e.ClusterID]
		require.Equal(t, want, e.Version, "fleet.events carry the version the cluster moves to")
	}
}

// A cluster that fails mid-way (broker 2 of 3) exceeds a zero budget whose
// onExceeded is rollback, or an operator asks for the rollback: the rollout
// aborts, ends, and starts its rollback as a child that outlives it, vouched
// for (no start proof of its own).
func TestRollbackStartsWhenTheRolloutHasStopped(t *testing.T) {
	for _, viaUpdate := range []bool{false, true} {
		name := "error budget"
		if viaUpdate {
			name = "rollback update"
		}
		t.Run(name, func(t *testing.T) {
			h := newRolloutHarness(t, 3, singlePhasePlan(8))
			orig := singlePhasePlan(8)
			// The rollback child plans nothing here (it ends at once): what
			// matters is that it started, and how.
			h.planFor = func(in workflows.PlanInput) *plan.Plan {
				if in.Spec.Recovery != nil {
					return &plan.Plan{Hash: "000000000000", Phases: []plan.Phase{}}
				}
				return orig
			}
			h.plane.failAt["lkc-003"] = 2
			h.plane.run(h.env, time.Second, 20*time.Minute)
			in := rolloutInput()
			in.Spec.ErrorBudget = &spec.ErrorBudget{Max: "0", OnExceeded: spec.OnExceededRollback}
			var refused, noReason, accepted *updateOutcome
			if viaUpdate {
				in.Spec.ErrorBudget = &spec.ErrorBudget{Max: "5"}
				h.env.RegisterDelayedCallback(func() {
					noReason = h.update(workflows.UpdateRollback, workflows.ActionRequest{Actor: "alice"})
					accepted = h.update(workflows.UpdateRollback, workflows.ActionRequest{Actor: "alice", Reason: "bad build"})
				}, 8*time.Second)
				h.env.RegisterDelayedCallback(func() {
					refused = h.update(workflows.UpdateRollback, workflows.ActionRequest{Actor: "bob", Reason: "again"})
				}, 9*time.Second)
			}
			h.env.ExecuteWorkflow(workflows.WorkflowRollout, in)
			require.NoError(t, h.env.GetWorkflowError())
			var st workflows.RolloutStatus
			require.NoError(t, h.env.GetWorkflowResult(&st))
			require.Equal(t, workflows.StateAborted, st.State)
			require.Equal(t, "rollout/test-rollback", st.RollbackID)
			require.Less(t, st.Counts.Done, 8, "stopped before the end")
			if viaUpdate {
				require.ErrorContains(t, noReason.err, "a reason is required")
				require.NoError(t, accepted.err)
				require.ErrorContains(t, refused.err, "already")
			} else {
				require.Equal(t, 1, st.Counts.Failed)
			}
			// The rollback child planned as a vouched rollback of this rollout.
			var child *workflows.PlanInput
			for i := range h.plans {
				if h.plans[i].RolloutID == "rollout/test-rollback" {
					child = &h.plans[i]
				}
			}
			require.NotNil(t, child, "the rollback started and planned")
			{
				require.True(t, child.Vouched)
				require.Equal(t, workflows.RecoveryRollback, child.Spec.Recovery.Kind)
				require.Equal(t, testRolloutID, child.Spec.Recovery.Of)
				require.Equal(t, "1700000000.000100", child.Spec.Recovery.ThreadTS, "the rollback tells the rollout's thread")
				require.True(t, child.Spec.Spec.AllowDowngrade)
				require.NotEqual(t, spec.OnExceededRollback, child.Spec.Spec.ErrorBudget.OnExceeded, "a rollback never rolls itself back")
				want := "fleet-safety"
				if viaUpdate {
					want = "alice"
				}
				require.Equal(t, want, child.Spec.Requester)
			}
		})
	}
}

// A rollback rollout pushes each cluster's own version; a rollback of a
// rollback in flight is refused, and a start not started by the rollout it
// rolls back is not vouched for.
func TestRollbackRolloutPushesPreviousVersions(t *testing.T) {
	p := singlePhasePlan(4)
	for i := range p.Phases[0].Batches {
		for j := range p.Phases[0].Batches[i].Clusters {
			tg := &p.Phases[0].Batches[i].Clusters[j]
			tg.Version, tg.FromVersion, tg.Downgrade = "3.6.0", "3.7.1", true
		}
	}
	p.Phases[0].Name = plan.FailedPhase
	h := newRolloutHarness(t, 2, p)
	h.plane.run(h.env, time.Second, 20*time.Minute)
	in := rolloutInput()
	in.Spec.Name = "test"
	in.Recovery = &workflows.Recovery{Kind: workflows.RecoveryRollback, Of: "rollout/orig", ThreadTS: "1600000000.000001"}
	var refused *updateOutcome
	h.env.RegisterDelayedCallback(func() {
		refused = h.update(workflows.UpdateRollback, workflows.ActionRequest{Actor: "alice", Reason: "undo the undo"})
	}, 3*time.Second)
	h.env.ExecuteWorkflow(workflows.WorkflowRollout, in)
	require.NoError(t, h.env.GetWorkflowError())
	var st workflows.RolloutStatus
	require.NoError(t, h.env.GetWorkflowResult(&st))
	require.Equal(t, workflows.StateCompleted, st.State)
	require.ErrorContains(t, refused.err, "this rollout is a rollback")
	require.Equal(t, workflows.RecoveryRollback, st.Recovery.Kind)
	require.False(t, h.plans[0].Vouched, "started by a client, not by rollout/orig")
	for id, vs := range h.plane.appliedSpecs() {
		require.Equal(t, []string{"3.6.0"}, vs, id)
	}
	require.Contains(t, h.notes[0].Text, "It rolls back rollout/orig.")
	for _, n := range h.notes {
		require.Equal(t, "1600000000.000001", n.ThreadTS, "every message of the rollback goes to the original's thread")
	}
}

func TestSupersedeStopsTheRolloutAndPointsAtItsSuccessor(t *testing.T) {
	h := newRolloutHarness(t, 3, singlePhasePlan(8))
	h.plane.run(h.env, time.Second, 20*time.Minute)
	var self, badBy, ok, again *updateOutcome
	var during workflows.RolloutStatus
	h.env.RegisterDelayedCallback(func() {
		during = h.status(t)
		self = h.update(workflows.UpdateSupersede, workflows.SupersedeRequest{Actor: "alice", By: testRolloutID})
		badBy = h.update(workflows.UpdateSupersede, workflows.SupersedeRequest{Actor: "alice", By: "rollout/x/batch-1"})
		ok = h.update(workflows.UpdateSupersede, workflows.SupersedeRequest{Actor: "alice", By: "rollout/hotfix", Reason: "leak"})
	}, 5*time.Second)
	h.env.RegisterDelayedCallback(func() {
		again = h.update(workflows.UpdateSupersede, workflows.SupersedeRequest{Actor: "bob", By: "rollout/other"})
	}, 6*time.Second)
	h.env.ExecuteWorkflow(workflows.WorkflowRollout, rolloutInput())
	require.NoError(t, h.env.GetWorkflowError())
	var st workflows.RolloutStatus
	require.NoError(t, h.env.GetWorkflowResult(&st))
	require.Less(t, during.Counts.Done, 8)
	require.Error(t, self.err)
	require.Error(t, badBy.err)
	require.NoError(t, ok.err)
	require.ErrorContains(t, again.err, "already superseded by rollout/hotfix")
	require.Equal(t, workflows.StateSuperseded, st.State)
	require.Equal(t, "rollout/hotfix", st.SupersededBy)
	require.Less(t, st.Counts.Done, 8, "no new cluster after the handover")
	require.Equal(t, 8, st.Counts.Done+st.Counts.Aborted+st.Counts.Skipped+st.Counts.Failed)
	last := h.notes[len(h.notes)-1]
	require.Contains(t, last.Text, "superseded by rollout/hotfix")
	found := false
	for _, a := range st.Audit {
		if a.Action == workflows.UpdateSupersede && a.Actor == "alice" {
			found = true
		}
	}
	require.True(t, found, "the supersede is audited")
}

// A cluster failed mid-way within the budget; a retry update queues it in a
// last phase with a new generation and a fresh budget, and it completes.
func TestRetryUpdateRequeuesAFailedCluster(t *testing.T) {
	h := newRolloutHarness(t, 3, singlePhasePlan(8))
	h.plane.failAt["lkc-003"] = 2
	h.plane.run(h.env, time.Second, 20*time.Minute)
	in := rolloutInput()
	in.Spec.ErrorBudget = &spec.ErrorBudget{Max: "1"}
	var early, named, ok *updateOutcome
	h.env.RegisterDelayedCallback(func() {
		early = h.update(workflows.UpdateRetry, workflows.RetryRequest{Actor: "alice"})
	}, 1*time.Second)
	// As soon as the failure shows (every half second on the test clock),
	// while the rollout still runs: a fixed time raced its completion.
	for at := 1500 * time.Millisecond; at <= 20*time.Second; at += 500 * time.Millisecond {
		h.env.RegisterDelayedCallback(func() {
			if ok != nil {
				return
			}
			if st := h.status(t); st.Failures == 0 || st.State.Terminal() {
				return
			}
			named = h.update(workflows.UpdateRetry, workflows.RetryRequest{Actor: "alice", Clusters: []string{"lkc-001"}})
			ok = h.update(workflows.UpdateRetry, workflows.RetryRequest{Actor: "alice", Reason: "flaky broker"})
		}, at)
	}
	h.env.ExecuteWorkflow(workflows.WorkflowRollout, in)
	require.NoError(t, h.env.GetWorkflowError())
	var st workflows.RolloutStatus
	require.NoError(t, h.env.GetWorkflowResult(&st))
	require.ErrorContains(t, early.err, "no cluster has failed")
	require.NotNil(t, ok, "the retry was asked while the rollout ran")
	require.ErrorContains(t, named.err, "lkc-001")
	require.NoError(t, ok.err)
	require.Contains(t, ok.res.Message, "retry-1")
	require.Equal(t, workflows.StateCompleted, st.State)
	require.Equal(t, 9, st.Total)
	require.Equal(t, 0, st.Failures, "the retried failure no longer counts")
	last := st.Phases[len(st.Phases)-1]
	require.Equal(t, "retry-1", last.Name)
	require.Equal(t, 1, last.Batches[0].Counts.Done)
	require.Equal(t, 2, h.plane.starts["lkc-003"])
	gens := []int64{}
	for _, c := range h.plane.log {
		if c.Kind == dataplane.Apply && c.ClusterID == "lkc-003" && (len(gens) == 0 || gens[len(gens)-1] != c.Generation) {
			gens = append(gens, c.Generation)
		}
	}
	require.Equal(t, []int64{2, 3}, gens, "the retry sends a new generation")
}

// With identity: signed, the recovery updates take signed requests like
// every other action: unsigned ones are refused, a proof works once, and an
// accepted retry runs (its proof is checked by the validator only: the
// nonce is spent when the update runs).
func TestSignedRecoveryUpdates(t *testing.T) {
	h := newRolloutHarness(t, 3, singlePhasePlan(8))
	k := newKeyring(t, h.env, "alice", "bob", "carol", "erin", "vic", "fleet-worker")
	h.policy = signedPolicy(k)
	h.plane.failAt["lkc-003"] = 2
	h.plane.run(h.env, time.Second, 20*time.Minute)
	in := rolloutInput()
	in.Requester = "erin"
	in.Spec.ErrorBudget = &spec.ErrorBudget{Max: "1"}
	const id = "rollout/test"
	out := map[string]*updateOutcome{}
	// As soon as the failure shows (every half second on the test clock),
	// while the rollout still runs: a fixed 12 s raced its completion and
	// failed a clean CI run ("not retried: rollout is completed").
	asked := false
	for at := 1500 * time.Millisecond; at <= 20*time.Second; at += 500 * time.Millisecond {
		h.env.RegisterDelayedCallback(func() {
			if asked {
				return
			}
			if st := h.status(t); st.Failures == 0 || st.State.Terminal() {
				return
			}
			asked = true
			askSigned(h, k, id, out)
		}, at)
	}
	h.env.ExecuteWorkflow(workflows.WorkflowRollout, in)
	require.NoError(t, h.env.GetWorkflowError())
	require.True(t, asked, "the updates were asked while the rollout ran")
	require.ErrorIs(t, out["unsigned"].err, policy.ErrUnsigned)
	require.ErrorContains(t, out["viewer"].err, "vic holds viewer")
	require.NoError(t, out["retry"].err)
	require.Contains(t, out["retry"].res.Message, "retry-1", "the accepted retry ran: %s", out["retry"].res.Message)
	require.ErrorIs(t, out["replayed"].err, workflows.ErrReplayed)
	require.ErrorIs(t, out["tampered-supersede"].err, identity.ErrBadSignature)
	var st workflows.RolloutStatus
	require.NoError(t, h.env.GetWorkflowResult(&st))
	require.Equal(t, workflows.StateCompleted, st.State)
	require.Equal(t, "retry-1", st.Phases[len(st.Phases)-1].Name)
	require.Equal(t, 2, h.plane.starts["lkc-003"])
}

// askSigned asks TestSignedRecoveryUpdates' updates: unsigned, by a viewer,
// a signed retry and its replay, a supersede tampered after signing.
func askSigned(h *rolloutHarness, k *keyring, id string, out map[string]*updateOutcome) {
	out["unsigned"] = h.update(workflows.UpdateRetry, workflows.RetryRequest{Actor: "alice"})
	viewer := workflows.RetryRequest{Actor: "vic"}
	viewer.Auth = k.sign("vic", "vic", id, workflows.UpdateRetry, viewer, 0)
	out["viewer"] = h.update(workflows.UpdateRetry, viewer)
	retry := workflows.RetryRequest{Actor: "alice", Reason: "flaky broker"}
	retry.Auth = k.sign("alice", "alice", id, workflows.UpdateRetry, retry, 0)
	out["retry"] = h.update(workflows.UpdateRetry, retry)
	out["replayed"] = h.update(workflows.UpdateRetry, retry)
	sup := workflows.SupersedeRequest{Actor: "alice", By: "rollout/hotfix"}
	sup.Auth = k.sign("alice", "alice", id, workflows.UpdateSupersede, sup, 0)
	sup.By = "rollout/other" // tampered after signing
	out["tampered-supersede"] = h.update(workflows.UpdateSupersede, sup)
}
