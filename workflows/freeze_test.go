package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/fleet-rollout/fleet/internal/policy"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/fleet-rollout/fleet/workflows"
)

// freezeT0 is the test clock's start.
var freezeT0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

type freezeHarness struct {
	t   *testing.T
	env *testsuite.TestWorkflowEnvironment

	mu         sync.Mutex
	broadcasts []workflows.FreezeState
	seq        int
	// policy answers the Policy activity (nil: no policy).
	policy *policy.Snapshot
}

// newFreezeHarness runs the Freeze workflow with BroadcastFreeze replaced by
// a recorder; the workflow is cancelled at end (it never ends by itself).
func newFreezeHarness(t *testing.T) *freezeHarness {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(freezeT0)
	h := &freezeHarness{t: t, env: env}
	workflows.RegisterFreeze(env)
	env.RegisterActivityWithOptions(func(_ context.Context, st workflows.FreezeState) (int, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.broadcasts = append(h.broadcasts, st)
		return 3, nil
	}, activity.RegisterOptions{Name: workflows.ActivityBroadcastFreeze})
	env.RegisterActivityWithOptions(func(_ context.Context) (*policy.Snapshot, error) {
		return h.policy, nil
	}, activity.RegisterOptions{Name: workflows.ActivityPolicy})
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflows.FreezeID})
	return h
}

// at runs fn at freezeT0+d on the test clock.
func (h *freezeHarness) at(d time.Duration, fn func()) { h.env.RegisterDelayedCallback(fn, d) }

// run executes the workflow, cancelling it at freezeT0+end.
func (h *freezeHarness) run(in workflows.FreezeInput, end time.Duration) {
	h.at(end, h.env.CancelWorkflow)
	h.env.ExecuteWorkflow(workflows.WorkflowFreeze, in)
	require.True(h.t, h.env.IsWorkflowCompleted())
	var canceled *temporal.CanceledError
	require.ErrorAs(h.t, h.env.GetWorkflowError(), &canceled)
}

func (h *freezeHarness) status() workflows.FreezeState {
	h.t.Helper()
	v, err := h.env.QueryWorkflow(workflows.QueryStatus)
	require.NoError(h.t, err)
	var st workflows.FreezeState
	require.NoError(h.t, v.Get(&st))
	return st
}

func (h *freezeHarness) audit() []workflows.AuditEntry {
	h.t.Helper()
	v, err := h.env.QueryWorkflow(workflows.QueryFreezeAudit)
	require.NoError(h.t, err)
	var a []workflows.AuditEntry
	require.NoError(h.t, v.Get(&a))
	return a
}

func (h *freezeHarness) sent() []workflows.FreezeState {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]workflows.FreezeState(nil), h.broadcasts...)
}

type freezeOutcome struct {
	done bool
	st   workflows.FreezeState
	err  error
}

func (h *freezeHarness) update(name string, arg any) *freezeOutcome {
	out := &freezeOutcome{}
	h.seq++
	h.env.UpdateWorkflow(name, fmt.Sprintf("%s-%d", name, h.seq), &testsuite.TestUpdateCallback{
		OnAccept: func() {},
		OnReject: func(err error) { out.done, out.err = true, err },
		OnComplete: func(v any, err error) {
			out.done, out.err = true, err
			if err == nil {
				out.st, _ = v.(workflows.FreezeState)
			}
		},
	}, arg)
	return out
}

func freezeReq(actor, reason string, until time.Time) workflows.FreezeRequest {
	return workflows.FreezeRequest{Actor: actor, Reason: reason, Until: until}
}

func TestFreezeSetsStateQueriesAndBroadcasts(t *testing.T) {
	h := newFreezeHarness(t)
	until := freezeT0.Add(2 * time.Hour)
	var out *freezeOutcome
	h.at(time.Minute, func() { out = h.update(workflows.FreezeUpdate, freezeReq("alice", "incident 4711", until)) })
	h.at(2*time.Minute, func() {
		require.True(t, out.done)
		require.NoError(t, out.err)
		want := &workflows.FreezeInfo{Actor: "alice", Reason: "incident 4711", Since: freezeT0.Add(time.Minute), Until: until}
		assert.Equal(t, want, out.st.Freeze, "update answer")

		st := h.status()
		require.NotNil(t, st.Freeze)
		assert.Equal(t, want, st.Freeze, "status query")
		assert.Empty(t, st.History)

		b := h.sent()
		require.Len(t, b, 1, "one broadcast per change")
		assert.Equal(t, want, b[0].Freeze, "broadcast carries the new freeze")

		a := h.audit()
		require.Len(t, a, 1)
		assert.Equal(t, "alice", a[0].Actor)
		assert.Equal(t, workflows.FreezeUpdate, a[0].Action)
		assert.Equal(t, "applied", a[0].Outcome)
	})
	h.run(workflows.FreezeInput{}, 10*time.Minute)
}

func TestFreezeRejectsInvalidRequests(t *testing.T) {
	now := freezeT0.Add(time.Minute)
	cases := []struct {
		name string
		req  workflows.FreezeRequest
		want string
	}{
		{"no reason", freezeReq("alice", "  ", now.Add(time.Hour)), "a reason is required to freeze"},
		{"no actor", freezeReq("", "incident", now.Add(time.Hour)), "an actor is required to freeze"},
		{"no until", freezeReq("alice", "incident", time.Time{}), "an end time (until) is required"},
		{"until in the past", freezeReq("alice", "incident", now.Add(-time.Second)), "until 2026-03-02T09:00:59Z is not in the future (now 2026-03-02T09:01:00Z)"},
		{"until now", freezeReq("alice", "incident", now), "is not in the future"},
		{"until too far", freezeReq("alice", "incident", now.Add(31*24*time.Hour)), "is more than 30 days ahead"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newFreezeHarness(t)
			var out *freezeOutcome
			h.at(time.Minute, func() { out = h.update(workflows.FreezeUpdate, tc.req) })
			h.at(2*time.Minute, func() {
				require.True(t, out.done)
				require.Error(t, out.err)
				assert.Contains(t, out.err.Error(), tc.want)
				assert.Nil(t, h.status().Freeze)
				assert.Empty(t, h.sent(), "a rejected request broadcasts nothing")
			})
			h.run(workflows.FreezeInput{}, 5*time.Minute)
		})
	}
}

func TestFreezeAcceptsThirtyDaysAhead(t *testing.T) {
	h := newFreezeHarness(t)
	var out *freezeOutcome
	h.at(time.Minute, func() {
		out = h.update(workflows.FreezeUpdate, freezeReq("alice", "quarter end", freezeT0.Add(time.Minute+workflows.MaxFreezeDuration)))
	})
	h.at(2*time.Minute, func() {
		require.True(t, out.done)
		require.NoError(t, out.err)
		require.NotNil(t, h.status().Freeze)
	})
	h.run(workflows.FreezeInput{}, 5*time.Minute)
}

func TestFreezeUnfreezeWhenNotFrozenIsRejected(t *testing.T) {
	h := newFreezeHarness(t)
	var out *freezeOutcome
	h.at(time.Minute, func() {
		out = h.update(workflows.UnfreezeUpdate, workflows.ActionRequest{Actor: "bob", Reason: "done"})
	})
	h.at(2*time.Minute, func() {
		require.True(t, out.done)
		require.Error(t, out.err)
		assert.Contains(t, out.err.Error(), "no freeze is in force")
		assert.Empty(t, h.sent())
	})
	h.run(workflows.FreezeInput{}, 5*time.Minute)
}

func TestFreezeUnfreezeLiftsAndBroadcasts(t *testing.T) {
	h := newFreezeHarness(t)
	until := freezeT0.Add(time.Hour)
	h.at(time.Minute, func() { h.update(workflows.FreezeUpdate, freezeReq("alice", "incident", until)) })
	var out *freezeOutcome
	h.at(10*time.Minute, func() {
		noActor := h.update(workflows.UnfreezeUpdate, workflows.ActionRequest{Reason: "fixed"})
		out = h.update(workflows.UnfreezeUpdate, workflows.ActionRequest{Actor: "bob", Reason: "fixed"})
		h.at(time.Second, func() {
			require.True(t, noActor.done)
			require.ErrorContains(t, noActor.err, "an actor is required to unfreeze")
		})
	})
	h.at(11*time.Minute, func() {
		require.True(t, out.done)
		require.NoError(t, out.err)
		assert.Nil(t, out.st.Freeze)
		st := h.status()
		assert.Nil(t, st.Freeze)
		require.Len(t, st.History, 1)
		assert.Equal(t, "alice", st.History[0].Actor)
		assert.Equal(t, freezeT0.Add(10*time.Minute), st.History[0].Until, "history records when it actually ended")
		b := h.sent()
		require.Len(t, b, 2)
		assert.Nil(t, b[1].Freeze, "the lift is broadcast")
	})
	// The old expiry timer must not fire anything after the unfreeze.
	h.at(2*time.Hour, func() {
		assert.Len(t, h.sent(), 2)
		a := h.audit()
		require.Len(t, a, 2)
		assert.Equal(t, "bob", a[1].Actor)
		assert.Equal(t, workflows.UnfreezeUpdate, a[1].Action)
		assert.Equal(t, "fixed", a[1].Reason)
	})
	h.run(workflows.FreezeInput{}, 3*time.Hour)
}

func TestFreezeExpiresAtUntilAndBroadcastsTheLift(t *testing.T) {
	h := newFreezeHarness(t)
	until := freezeT0.Add(time.Hour)
	h.at(time.Minute, func() { h.update(workflows.FreezeUpdate, freezeReq("alice", "incident", until)) })
	h.at(59*time.Minute, func() {
		require.NotNil(t, h.status().Freeze, "still frozen before Until")
		assert.Len(t, h.sent(), 1)
	})
	h.at(61*time.Minute, func() {
		st := h.status()
		assert.Nil(t, st.Freeze, "lifted by itself at Until")
		require.Len(t, st.History, 1)
		assert.Equal(t, until, st.History[0].Until)
		b := h.sent()
		require.Len(t, b, 2)
		assert.Nil(t, b[1].Freeze, "the lift is broadcast")
		a := h.audit()
		require.Len(t, a, 2)
		assert.Equal(t, "expire", a[1].Action)
		assert.Equal(t, until, a[1].At, "lifted exactly at Until")
	})
	h.run(workflows.FreezeInput{}, 2*time.Hour)
}

func TestFreezeSecondFreezeExtends(t *testing.T) {
	h := newFreezeHarness(t)
	first := freezeT0.Add(time.Hour)
	second := freezeT0.Add(3 * time.Hour)
	h.at(time.Minute, func() { h.update(workflows.FreezeUpdate, freezeReq("alice", "incident", first)) })
	var out *freezeOutcome
	h.at(30*time.Minute, func() { out = h.update(workflows.FreezeUpdate, freezeReq("bob", "incident, day 2", second)) })
	h.at(90*time.Minute, func() {
		require.True(t, out.done)
		require.NoError(t, out.err)
		st := h.status()
		require.NotNil(t, st.Freeze, "the first Until passed but the extension holds")
		assert.Equal(t, workflows.FreezeInfo{Actor: "bob", Reason: "incident, day 2", Since: freezeT0.Add(30 * time.Minute), Until: second}, *st.Freeze)
		require.Len(t, st.History, 1, "the replaced freeze is recorded")
		assert.Equal(t, "alice", st.History[0].Actor)
		assert.Equal(t, freezeT0.Add(30*time.Minute), st.History[0].Until)
		b := h.sent()
		require.Len(t, b, 2)
		assert.Equal(t, second, b[1].Freeze.Until)
		a := h.audit()
		require.Len(t, a, 2)
		assert.Contains(t, a[1].Outcome, "replaces the freeze set by alice")
	})
	h.at(3*time.Hour+time.Minute, func() {
		assert.Nil(t, h.status().Freeze)
		b := h.sent()
		require.Len(t, b, 3)
		assert.Nil(t, b[2].Freeze)
		a := h.audit()
		require.Len(t, a, 3)
		assert.Equal(t, second, a[2].At)
	})
	h.run(workflows.FreezeInput{}, 4*time.Hour)
}

func TestFreezeSignalsApplyOrAreRecordedAsRejected(t *testing.T) {
	h := newFreezeHarness(t)
	h.at(time.Minute, func() {
		h.env.SignalWorkflow(workflows.UnfreezeUpdate, workflows.ActionRequest{Actor: "carol"})
		h.env.SignalWorkflow(workflows.FreezeUpdate, freezeReq("carol", "", freezeT0.Add(time.Hour)))
		h.env.SignalWorkflow(workflows.FreezeUpdate, freezeReq("dave", "web ui freeze", freezeT0.Add(time.Hour)))
	})
	h.at(2*time.Minute, func() {
		st := h.status()
		require.NotNil(t, st.Freeze)
		assert.Equal(t, "dave", st.Freeze.Actor)
		a := h.audit()
		require.Len(t, a, 3)
		assert.Equal(t, "unfreeze (signal)", a[0].Action)
		assert.Equal(t, "rejected: no freeze is in force", a[0].Outcome)
		assert.Equal(t, "freeze (signal)", a[1].Action)
		assert.Equal(t, "rejected: a reason is required to freeze", a[1].Outcome)
		assert.Equal(t, "freeze (signal)", a[2].Action)
		assert.Equal(t, "applied", a[2].Outcome)
		assert.Len(t, h.sent(), 1)
	})
	h.at(3*time.Minute, func() {
		h.env.SignalWorkflow(workflows.UnfreezeUpdate, workflows.ActionRequest{Actor: "dave", Reason: "ok"})
	})
	h.at(4*time.Minute, func() {
		assert.Nil(t, h.status().Freeze)
		b := h.sent()
		require.Len(t, b, 2)
		assert.Nil(t, b[1].Freeze)
	})
	h.run(workflows.FreezeInput{}, 5*time.Minute)
}

func TestFreezeContinuesAsNewCarryingStateAndDeadline(t *testing.T) {
	h := newFreezeHarness(t)
	// 100 changes: each signal replaces the freeze with a later end.
	for i := 1; i <= 100; i++ {
		h.at(time.Duration(i)*time.Second, func() {
			h.env.SignalWorkflow(workflows.FreezeUpdate,
				freezeReq("alice", fmt.Sprintf("change %d", i), freezeT0.Add(time.Hour+time.Duration(i)*time.Minute)))
		})
	}
	h.env.ExecuteWorkflow(workflows.WorkflowFreeze, workflows.FreezeInput{})
	require.True(t, h.env.IsWorkflowCompleted())
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(h.env.GetWorkflowError(), &can), "got %v", h.env.GetWorkflowError())
	assert.Equal(t, workflows.WorkflowFreeze, can.WorkflowType.Name)
	var next workflows.FreezeInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.NotNil(t, next.State.Freeze)
	assert.Equal(t, "change 100", next.State.Freeze.Reason)
	assert.Equal(t, freezeT0.Add(time.Hour+100*time.Minute), next.State.Freeze.Until, "the pending deadline is carried")
	assert.Len(t, next.State.History, 50, "history is bounded")
	assert.Len(t, next.Audit, 100)
	b := h.sent()
	require.NotEmpty(t, b)
	assert.Equal(t, "change 100", b[len(b)-1].Freeze.Reason, "the newest state was broadcast before continuing")
}

func TestFreezeCarriedFreezeExpiresInTheNextRun(t *testing.T) {
	h := newFreezeHarness(t)
	until := freezeT0.Add(time.Hour)
	in := workflows.FreezeInput{State: workflows.FreezeState{
		Freeze: &workflows.FreezeInfo{Actor: "alice", Reason: "incident", Since: freezeT0.Add(-time.Hour), Until: until},
	}}
	h.at(time.Minute, func() {
		require.NotNil(t, h.status().Freeze)
		assert.Empty(t, h.sent(), "a carried state was broadcast by the previous run")
	})
	h.at(61*time.Minute, func() {
		assert.Nil(t, h.status().Freeze)
		b := h.sent()
		require.Len(t, b, 1)
		assert.Nil(t, b[0].Freeze)
		a := h.audit()
		require.Len(t, a, 1)
		assert.Equal(t, until, a[0].At)
	})
	h.run(in, 2*time.Hour)
}

func TestFreezeNeedsTheAdminRole(t *testing.T) {
	h := newFreezeHarness(t)
	h.policy = &policy.Snapshot{Access: &policy.Access{Roles: map[string][]policy.Role{"alice": {policy.RoleOperator}, "carol": {policy.RoleAdmin}}}}
	var denied, allowed *freezeOutcome
	h.at(time.Minute, func() {
		denied = h.update(workflows.FreezeUpdate, workflows.FreezeRequest{Actor: "alice", Reason: "holiday", Until: freezeT0.Add(48 * time.Hour)})
		allowed = h.update(workflows.FreezeUpdate, workflows.FreezeRequest{Actor: "carol", Reason: "holiday", Until: freezeT0.Add(48 * time.Hour)})
	})
	h.run(workflows.FreezeInput{}, time.Hour)
	require.ErrorIs(t, denied.err, policy.ErrDenied)
	require.ErrorContains(t, denied.err, "admin")
	require.NoError(t, allowed.err)
	require.Equal(t, "carol", allowed.st.Freeze.Actor)
}
