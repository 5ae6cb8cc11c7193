package client

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/fleet-rollout/fleet/workflows"
)

func cl(id string, s workflows.ClusterState) workflows.ClusterStatus {
	return workflows.ClusterStatus{ID: id, State: s}
}

func TestMerge(t *testing.T) {
	running := func(n, size int) workflows.BatchStatus {
		return workflows.BatchStatus{Number: n, State: workflows.BatchRunning, Counts: workflows.Counts{InFlight: size}}
	}
	rollout := func(bs ...workflows.BatchStatus) workflows.RolloutStatus {
		total := 0
		for _, b := range bs {
			total += Sum(b.Counts)
		}
		return workflows.RolloutStatus{Name: "x", State: workflows.StateRunning, Total: total,
			Phases: []workflows.PhaseStatus{{Name: "p", State: "running", Batches: bs}}}
	}
	tests := []struct {
		name    string
		rollout workflows.RolloutStatus
		batches map[int]workflows.BatchStatus
		want    workflows.Counts
		states  []workflows.BatchState
	}{{
		name:    "running batch counted from its clusters",
		rollout: rollout(running(1, 3)),
		batches: map[int]workflows.BatchStatus{1: {Number: 1, State: workflows.BatchRunning, Clusters: []workflows.ClusterStatus{
			cl("a", workflows.ClusterApplying), cl("b", workflows.ClusterHeld), cl("c", workflows.ClusterWaiting)}}},
		want:   workflows.Counts{InFlight: 1, Held: 1, Pending: 1},
		states: []workflows.BatchState{workflows.BatchRunning},
	}, {
		name:    "holding is in flight, held and verifying apart",
		rollout: rollout(running(1, 4)),
		batches: map[int]workflows.BatchStatus{1: {Number: 1, State: workflows.BatchPaused, Clusters: []workflows.ClusterStatus{
			cl("a", workflows.ClusterHolding), cl("b", workflows.ClusterVerifying), cl("c", workflows.ClusterApplying), cl("d", workflows.ClusterHeld)}}},
		want:   workflows.Counts{InFlight: 2, Held: 1, Verifying: 1},
		states: []workflows.BatchState{workflows.BatchPaused},
	}, {
		name:    "batch finished between the queries: counted once, from the batch",
		rollout: rollout(workflows.BatchStatus{Number: 1, State: workflows.BatchCompleted, Counts: workflows.Counts{Done: 2}}, running(2, 2)),
		batches: map[int]workflows.BatchStatus{2: {Number: 2, State: workflows.BatchCompleted, Clusters: []workflows.ClusterStatus{
			cl("c", workflows.ClusterDone), cl("d", workflows.ClusterFailed)}}},
		want:   workflows.Counts{Done: 3, Failed: 1},
		states: []workflows.BatchState{workflows.BatchCompleted, workflows.BatchCompleted},
	}, {
		name:    "running batch without an answer is not in flight",
		rollout: rollout(running(1, 200), running(2, 62)),
		batches: map[int]workflows.BatchStatus{1: {Number: 1, State: workflows.BatchRunning, Counts: workflows.Counts{InFlight: 150, Done: 50}}},
		want:    workflows.Counts{InFlight: 150, Done: 50, Pending: 62},
		states:  []workflows.BatchState{workflows.BatchRunning, workflows.BatchRunning},
	}, {
		name:    "an answer for a batch the rollout already finished is ignored",
		rollout: rollout(workflows.BatchStatus{Number: 1, State: workflows.BatchCompleted, Counts: workflows.Counts{Done: 2}}),
		batches: map[int]workflows.BatchStatus{1: {Number: 1, State: workflows.BatchRunning, Counts: workflows.Counts{InFlight: 2}}},
		want:    workflows.Counts{Done: 2},
		states:  []workflows.BatchState{workflows.BatchCompleted},
	}, {
		name:    "pending batches stay pending",
		rollout: rollout(running(1, 1), workflows.BatchStatus{Number: 2, State: workflows.BatchPending, Counts: workflows.Counts{Pending: 5}}),
		batches: map[int]workflows.BatchStatus{1: {Number: 1, State: workflows.BatchBaking, Clusters: []workflows.ClusterStatus{cl("a", workflows.ClusterDone)}}},
		want:    workflows.Counts{Done: 1, Pending: 5},
		states:  []workflows.BatchState{workflows.BatchBaking, workflows.BatchPending},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.rollout.Phases[0].Batches[0]
			got := Merge(tt.rollout, tt.batches)
			assert.Equal(t, tt.want, got.Counts)
			assert.Equal(t, got.Total, Sum(got.Counts), "counts add up to the total")
			var states []workflows.BatchState
			for _, b := range got.Phases[0].Batches {
				states = append(states, b.State)
			}
			assert.Equal(t, tt.states, states)
			assert.Equal(t, before, tt.rollout.Phases[0].Batches[0], "Merge does not change its input")
			assert.Empty(t, Check(got, map[string]int{"p": 200}))
		})
	}
}

func TestCheck(t *testing.T) {
	st := workflows.RolloutStatus{Total: 300, Counts: workflows.Counts{InFlight: 262, Done: 38},
		Phases: []workflows.PhaseStatus{{Name: "prod", Batches: []workflows.BatchStatus{
			{Number: 1, Counts: workflows.Counts{InFlight: 200}},
			{Number: 2, Counts: workflows.Counts{InFlight: 62, Done: 38}},
		}}}}
	assert.Equal(t, []string{"phase prod: 262 in flight and 0 held above its concurrency 200"}, Check(st, map[string]int{"prod": 200}))
	assert.Empty(t, Check(st, nil))
	st.Counts.Pending = 5
	assert.Equal(t, []string{"counts add up to 305, not the total 300"}, Check(st, nil))
}

func TestStatusOfATerminatedRollout(t *testing.T) {
	// The query still answers (a worker replays the history up to the
	// termination): the numbers are not live.
	stale := workflows.RolloutStatus{ID: "rollout/x", Name: "x", State: workflows.StateRunning, Total: 300,
		WaitingFor: "batch 2", Counts: workflows.Counts{InFlight: 0, Pending: 300},
		Phases: []workflows.PhaseStatus{{Name: "p", Batches: []workflows.BatchStatus{{Number: 1, State: workflows.BatchRunning, Counts: workflows.Counts{InFlight: 300}}}}}}
	term := &historypb.HistoryEvent{Attributes: &historypb.HistoryEvent_WorkflowExecutionTerminatedEventAttributes{
		WorkflowExecutionTerminatedEventAttributes: &historypb.WorkflowExecutionTerminatedEventAttributes{Reason: "stuck on a bad broker", Identity: "alice@ops"}}}
	for _, answers := range []bool{true, false} {
		f := &fakeSDK{
			query: func(id, _ string) (any, error) {
				if !answers {
					return nil, serviceerror.NewQueryFailed("no worker")
				}
				if id == "rollout/x" {
					return stale, nil
				}
				return nil, serviceerror.NewNotFound("gone")
			},
			describe: func(string) (enumspb.WorkflowExecutionStatus, error) {
				return enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, nil
			},
			closeEvent: func(string) *historypb.HistoryEvent { return term },
		}
		st, err := New(f).Snapshot(context.Background(), "x")
		require.NoError(t, err)
		assert.Equal(t, workflows.RolloutState("terminated"), st.State)
		last := st.Audit[len(st.Audit)-1]
		assert.Equal(t, workflows.AuditEntry{Actor: "alice@ops", Action: "terminated", Reason: "stuck on a bad broker", Outcome: "workflow closed"}, last)
		plain, err := New(f).Status(context.Background(), "x")
		require.NoError(t, err)
		assert.Equal(t, workflows.RolloutState("terminated"), plain.State, "Status says so too")
		assert.Equal(t, ExecTerminated, st.Execution.Status)
		assert.Equal(t, "stuck on a bad broker", st.Execution.Reason)
		assert.Equal(t, "alice@ops", st.Execution.Identity)
		assert.Equal(t, "terminated by alice@ops: stuck on a bad broker", st.Execution.Summary())
		assert.True(t, st.Stale)
		assert.True(t, st.Ended())
		assert.Empty(t, st.WaitingFor)
		if answers {
			assert.Zero(t, st.Counts.InFlight, "an unread batch is not shown in flight")
		} else {
			assert.Contains(t, st.QueryError, "no worker")
		}
	}
}

func TestCloseEventReason(t *testing.T) {
	r, id := closeEventReason(&historypb.HistoryEvent{Attributes: &historypb.HistoryEvent_WorkflowExecutionTerminatedEventAttributes{
		WorkflowExecutionTerminatedEventAttributes: &historypb.WorkflowExecutionTerminatedEventAttributes{}}}, nil)
	assert.Equal(t, "(no reason given)", r)
	assert.Empty(t, id)
	r, _ = closeEventReason(&historypb.HistoryEvent{Attributes: &historypb.HistoryEvent_WorkflowExecutionTimedOutEventAttributes{
		WorkflowExecutionTimedOutEventAttributes: &historypb.WorkflowExecutionTimedOutEventAttributes{}}}, nil)
	assert.Equal(t, "workflow timeout reached", r)
}
