package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/workflows"
)

// Long-lived rollouts on the test clock: days of idle time (paused, waiting
// for windows, at a gate, queued in a lane) cost a bounded history, and the
// state survives continue-as-new with every cluster applied exactly once.

// idleDayBudget is the most history events a workflow may add in an idle day.
const idleDayBudget = 200

// meter estimates the history events the workflows of a test environment
// write, from what the environment sees them do: a timer started (1 event),
// fired (1, plus a workflow task: 3) or cancelled (1); an activity (scheduled,
// started, completed: 3, plus the workflow task it wakes: 3); a local activity
// (1 marker); a signal received (1, plus a workflow task: 3). It charges a full
// workflow task to every wake-up, so it is an upper bound.
type meter struct {
	mu                                  sync.Mutex
	on                                  bool
	timers, fired, cancelled, acts, las int
	byActivity                          map[string]int
}

func newMeter(env *testsuite.TestWorkflowEnvironment) *meter {
	m := &meter{byActivity: map[string]int{}}
	count := func(n *int) {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.on {
			*n++
		}
	}
	env.SetOnTimerScheduledListener(func(string, time.Duration) { count(&m.timers) })
	env.SetOnTimerFiredListener(func(string) { count(&m.fired) })
	env.SetOnTimerCanceledListener(func(string) { count(&m.cancelled) })
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		count(&m.acts)
		m.mu.Lock()
		if m.on {
			m.byActivity[info.ActivityType.Name]++
		}
		m.mu.Unlock()
	})
	env.SetOnLocalActivityStartedListener(func(*activity.Info, context.Context, []any) { count(&m.las) })
	return m
}

func (m *meter) set(on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.on = on
}

// events is the estimate, given the signals received meanwhile.
func (m *meter) events(signals int) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.timers + 4*m.fired + m.cancelled + 6*m.acts + m.las + 4*signals
}

// measure turns the meter on over [from, to) of the test clock and, at the
// end, reports the estimate per idle day to got.
func measure(env *testsuite.TestWorkflowEnvironment, m *meter, p *stepPlane, from, to time.Duration, got *float64) {
	var signals0 int
	env.RegisterDelayedCallback(func() {
		p.mu.Lock()
		signals0 = p.signals
		p.mu.Unlock()
		m.set(true)
	}, from)
	env.RegisterDelayedCallback(func() {
		m.set(false)
		p.mu.Lock()
		signals := p.signals - signals0
		p.mu.Unlock()
		*got = float64(m.events(signals)) / (to - from).Hours() * 24
	}, to)
}

// stepFrom steps the plane every second for d, starting after delay.
func stepFrom(env *testsuite.TestWorkflowEnvironment, p *stepPlane, delay, d time.Duration) {
	env.RegisterDelayedCallback(func() { p.run(env, time.Second, d) }, delay)
}

// continued returns the input a run handed to its next one, failing the test
// unless the workflow continued as new.
func continued[T any](t *testing.T, env *testsuite.TestWorkflowEnvironment) T {
	t.Helper()
	err := env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(err, &can), "the workflow continues as new, got %v", err)
	var in T
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &in))
	return in
}

func TestBatchPausedThreeDaysStaysSmallAndContinuesAsNew(t *testing.T) {
	start := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	h := newBatchHarness(t, 5)
	h.env.SetStartTime(start)
	m := newMeter(h.env)
	stepFrom(h.env, h.plane, 0, 10*time.Minute)
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(workflows.Pause, workflows.ActionRequest{Actor: "alice", Reason: "overnight investigation"})
	}, 2500*time.Millisecond)
	var day1 float64
	measure(h.env, m, h.plane, 30*time.Minute, 20*time.Hour, &day1)
	var healthWhilePaused int
	h.env.RegisterDelayedCallback(func() { healthWhilePaused = m.byActivity[workflows.ActivityCheckHealth] }, 20*time.Hour)
	// The server suggests a continue-as-new past 20 hours (here: the
	// history is reported over the budget).
	h.env.RegisterDelayedCallback(func() { h.env.SetCurrentHistoryLength(workflows.DefaultHistoryBudget) }, 20*time.Hour)
	in := batchInput(6, 2)
	in.HealthInterval = 10 * time.Second
	h.env.ExecuteWorkflow(workflows.WorkflowBatch, in)

	next := continued[workflows.BatchInput](t, h.env)
	ended := h.env.Now()
	require.NotNil(t, next.Carry)
	require.Equal(t, 1, next.Carry.Runs)
	require.True(t, next.Carry.Paused)
	held := 0
	for _, c := range next.Carry.Clusters {
		if c.State == workflows.ClusterHeld {
			held++
			require.Less(t, c.Broker, 5, "%s held before its last broker", c.ID)
		}
	}
	require.Equal(t, 2, held, "the two in-flight clusters are carried held")
	require.Zero(t, healthWhilePaused, "held clusters are not read from Datadog while paused")
	t.Logf("paused batch: %.0f history events per idle day (budget %d)", day1, idleDayBudget)
	require.LessOrEqual(t, day1, float64(idleDayBudget))

	// The next run, on a fresh worker, picks up where the first stopped and
	// is resumed on day 3.
	h2 := newBatchHarness(t, 5)
	h2.plane = h.plane
	h2.env.SetStartTime(ended)
	m2 := newMeter(h2.env)
	resumeAt := start.Add(72 * time.Hour).Sub(ended)
	var day3 float64
	measure(h2.env, m2, h2.plane, time.Hour, resumeAt-time.Minute, &day3)
	h2.env.RegisterDelayedCallback(func() {
		h2.env.SignalWorkflow(workflows.Resume, workflows.ActionRequest{Actor: "alice", Reason: "root cause found"})
	}, resumeAt)
	stepFrom(h2.env, h2.plane, resumeAt, 20*time.Minute)
	h2.env.ExecuteWorkflow(workflows.WorkflowBatch, next)
	require.NoError(t, h2.env.GetWorkflowError())
	t.Logf("paused batch, second run: %.0f history events per idle day", day3)
	require.LessOrEqual(t, day3, float64(idleDayBudget))

	var res workflows.BatchResult
	require.NoError(t, h2.env.GetWorkflowResult(&res))
	for _, c := range res.Clusters {
		require.Equal(t, workflows.ClusterDone, c.State, c.ID)
		require.Equal(t, 1, h.plane.applies(c.ID), "%s applied exactly once", c.ID)
		require.Equal(t, 5, h.plane.brokersRestarted(c.ID), c.ID)
		require.True(t, c.FinishedAt.After(start.Add(72*time.Hour)) || c.ID > "lkc-002", "%s", c.ID)
	}
	require.ElementsMatch(t, []string{"lkc-001", "lkc-002"}, h.plane.commands(dataplane.Resume))
}

func TestBatchWaitsSixDaysForWindowsThroughAContinueAsNew(t *testing.T) {
	// Sunday 04:00 UTC, just after the clusters' weekly window closed: the
	// next opens Sunday 02:00 UTC, 5 days 22 hours away.
	start := time.Date(2026, 3, 1, 4, 0, 0, 0, time.UTC)
	opens := time.Date(2026, 3, 8, 2, 0, 0, 0, time.UTC)
	window := &fleet.Window{Days: []string{"sun"}, Start: "02:00", Duration: "2h", TimeZone: "UTC"}
	h := newBatchHarness(t, 3)
	h.env.SetStartTime(start)
	h.inventory = map[string]fleet.Cluster{}
	for i := 1; i <= 4; i++ {
		id := fmt.Sprintf("lkc-%03d", i)
		h.inventory[id] = cluster(id, window)
	}
	m := newMeter(h.env)
	var idle float64
	measure(h.env, m, h.plane, time.Hour, 3*24*time.Hour, &idle)
	h.env.RegisterDelayedCallback(func() { h.env.SetCurrentHistoryLength(workflows.DefaultHistoryBudget) }, 3*24*time.Hour)
	in := batchInput(4, 2)
	in.HealthInterval = 10 * time.Second
	in.Schedule = workflows.BatchSchedule{RespectWindows: true, MaxWait: 7 * 24 * time.Hour}
	h.env.ExecuteWorkflow(workflows.WorkflowBatch, in)

	next := continued[workflows.BatchInput](t, h.env)
	ended := h.env.Now()
	for _, c := range next.Carry.Clusters {
		require.Equal(t, workflows.ClusterWaiting, c.State, c.ID)
		require.Contains(t, c.Message, "maintenance window opens")
	}
	require.Equal(t, start, next.Carry.StartedAt, "the maximum wait counts from the first run's start")
	require.Empty(t, h.plane.commands(dataplane.Apply), "nothing applied outside the window")
	t.Logf("batch waiting for windows: %.0f history events per idle day (budget %d)", idle, idleDayBudget)
	require.LessOrEqual(t, idle, float64(idleDayBudget))

	h2 := newBatchHarness(t, 3)
	h2.plane, h2.inventory = h.plane, h.inventory
	h2.env.SetStartTime(ended)
	stepFrom(h2.env, h2.plane, opens.Sub(ended)-time.Minute, time.Hour)
	h2.env.ExecuteWorkflow(workflows.WorkflowBatch, next)
	require.NoError(t, h2.env.GetWorkflowError())
	var res workflows.BatchResult
	require.NoError(t, h2.env.GetWorkflowResult(&res))
	for _, c := range res.Clusters {
		require.Equal(t, workflows.ClusterDone, c.State, c.ID)
		require.Equal(t, 1, h.plane.applies(c.ID), "%s applied exactly once", c.ID)
		require.False(t, c.StartedAt.Before(opens), "%s started at %s, inside its window", c.ID, c.StartedAt)
		require.True(t, c.StartedAt.Before(opens.Add(2*time.Hour)), "%s started at %s, inside its window", c.ID, c.StartedAt)
	}
}

func TestGateWaitsTwoDaysWithRemindersThroughAContinueAsNew(t *testing.T) {
	start := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	h := newRolloutHarness(t, 3, gatedPlan())
	h.env.SetStartTime(start)
	m := newMeter(h.env)
	stepFrom(h.env, h.plane, 0, 30*time.Minute)
	var idle float64
	measure(h.env, m, h.plane, time.Hour, 20*time.Hour, &idle)
	h.env.RegisterDelayedCallback(func() { h.env.SetCurrentHistoryLength(workflows.DefaultHistoryBudget) }, 21*time.Hour)
	h.env.ExecuteWorkflow(workflows.WorkflowRollout, rolloutInput())

	next := continued[workflows.RolloutInput](t, h.env)
	ended := h.env.Now()
	c := next.Carry
	require.NotNil(t, c)
	require.Equal(t, 1, c.NextPhase, "carried at the prod gate")
	require.Equal(t, workflows.StateAwaitingApproval, c.Status.State)
	require.Equal(t, "1700000000.000100", c.ThreadTS, "the Slack thread goes on")
	require.Equal(t, 2, c.Results[1].Done+len(c.Results[1].Clusters), "canary's results carried")
	require.False(t, c.GateSince.IsZero())
	t.Logf("rollout at a gate: %.0f history events per idle day (budget %d)", idle, idleDayBudget)
	require.LessOrEqual(t, idle, float64(idleDayBudget))

	h2 := newRolloutHarness(t, 3, gatedPlan())
	h2.shareStore(h)
	h2.plane = h.plane
	h2.env.SetStartTime(ended)
	approveAt := start.Add(48 * time.Hour).Sub(ended)
	h2.env.RegisterDelayedCallback(func() {
		h2.update(workflows.Approve, workflows.ApproveRequest{Actor: "bob", Phase: "prod"})
	}, approveAt)
	stepFrom(h2.env, h2.plane, approveAt, 30*time.Minute)
	h2.env.ExecuteWorkflow(workflows.WorkflowRollout, next)
	require.NoError(t, h2.env.GetWorkflowError())
	var st workflows.RolloutStatus
	require.NoError(t, h2.env.GetWorkflowResult(&st))
	require.Equal(t, workflows.StateCompleted, st.State)
	require.Equal(t, 8, st.Counts.Done)
	for i := 1; i <= 8; i++ {
		require.Equal(t, 1, h.plane.applies(fmt.Sprintf("lkc-%03d", i)), "lkc-%03d applied once", i)
	}
	reminders := 0
	for _, n := range append(h.notes, h2.notes...) {
		if n.Event == workflows.NotifyApproval && strings.HasPrefix(n.Text, "Reminder") {
			reminders++
		}
	}
	require.Equal(t, 11, reminders, "every 4 hours from 4h to 44h, across both runs")
	remind, approved := 0, false
	for _, a := range st.Audit {
		switch a.Action {
		case "remind":
			remind++
		case workflows.Approve:
			approved = a.Actor == "bob"
		}
	}
	require.Equal(t, 11, remind, "the audit carried across the continue-as-new")
	require.True(t, approved)
	for _, n := range h2.notes {
		require.NotContains(t, n.Text, "Waiting for approval", "the new run does not announce the gate again")
	}
}

func TestLaneQueuedTwelveHoursBehindASlowBatch(t *testing.T) {
	// One lane of 2 slots, three batches of 2: batch 1's clusters wait 12
	// hours for their window, holding the lane's slots; batches 2 and 3
	// wait queued behind it.
	start := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC) // Monday
	opens := start.Add(12 * time.Hour)
	window := &fleet.Window{Days: []string{"tue"}, Start: "00:00", Duration: "2h", TimeZone: "UTC"}
	h := newRolloutHarness(t, 2, lanePlan(6, 2, 2))
	h.env.SetStartTime(start)
	h.inventory = map[string]fleet.Cluster{"lkc-001": cluster("lkc-001", window), "lkc-002": cluster("lkc-002", window)}
	m := newMeter(h.env)
	var idle float64
	measure(h.env, m, h.plane, time.Hour, 11*time.Hour, &idle)
	var queued workflows.BatchStatus
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflowByID(workflows.BatchID(testRolloutID, 3), workflows.QueryStatus)
		require.NoError(t, err)
		require.NoError(t, v.Get(&queued))
	}, 6*time.Hour)
	stepFrom(h.env, h.plane, opens.Sub(start)-time.Minute, time.Hour)
	h.env.ExecuteWorkflow(workflows.WorkflowRollout, rolloutInput())
	require.NoError(t, h.env.GetWorkflowError())

	require.Equal(t, workflows.BatchPending, queued.State, "batch 3 is queued in the lane")
	require.Zero(t, queued.Lane.Slots)
	// Four workflows (the rollout and three batches) shared the idle time.
	perWorkflow := idle / 4
	t.Logf("lane queued behind a waiting batch: %.0f history events per idle day per workflow (budget %d)", perWorkflow, idleDayBudget)
	require.LessOrEqual(t, perWorkflow, float64(idleDayBudget))
	st := h.status(t)
	require.Equal(t, workflows.StateCompleted, st.State)
	require.Equal(t, 6, st.Counts.Done)
	for i := 1; i <= 6; i++ {
		id := fmt.Sprintf("lkc-%03d", i)
		require.Equal(t, 1, h.plane.applies(id), "%s applied once", id)
	}
	times := clusterTimes(st)
	require.False(t, times["lkc-001"][0].Before(opens), "batch 1 waited for its window")
	require.False(t, times["lkc-003"][0].Before(times["lkc-001"][1]) && times["lkc-003"][0].Before(times["lkc-002"][1]),
		"batch 2 started only when batch 1 gave up a slot")
}
