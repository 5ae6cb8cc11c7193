package workflows_test

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/policy"
	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/workflows"
)

func cluster(id string, w *fleet.Window) fleet.Cluster {
	return fleet.Cluster{ID: id, Product: "kafka", Cloud: "gcp", Region: "europe-west1", Environment: "prod",
		Customer: "cust-001", Version: "3.6.1", Brokers: 3, Generation: 1, Window: w}
}

func startedAt(t *testing.T, res workflows.BatchResult, id string) time.Time {
	t.Helper()
	for _, c := range res.Clusters {
		if c.ID == id {
			require.NotNil(t, c.StartedAt, "%s never started (%s: %s)", id, c.State, c.Message)
			return c.StartedAt.UTC()
		}
	}
	t.Fatalf("no cluster %s", id)
	return time.Time{}
}

func TestMaintenanceWindowsInTheClustersTimeZoneAcrossClockChanges(t *testing.T) {
	berlinSat := &fleet.Window{Days: []string{"sat"}, Start: "02:00", Duration: "2h", TimeZone: "Europe/Berlin"}
	berlinSun := &fleet.Window{Days: []string{"sun"}, Start: "02:00", Duration: "2h", TimeZone: "Europe/Berlin"}
	cases := []struct {
		name   string
		start  time.Time
		window *fleet.Window
		want   time.Time
	}{
		// Saturday 02:00 CET = 01:00 UTC, the weekend clocks go forward (Sun 29 March).
		{"saturday window, spring-forward weekend", time.Date(2026, 3, 25, 12, 0, 0, 0, time.UTC), berlinSat, time.Date(2026, 3, 28, 1, 0, 0, 0, time.UTC)},
		// The Saturday after: CEST, 02:00 local = 00:00 UTC.
		{"saturday window, first summer-time week", time.Date(2026, 3, 29, 12, 0, 0, 0, time.UTC), berlinSat, time.Date(2026, 4, 4, 0, 0, 0, 0, time.UTC)},
		// Sunday 29 March 02:00 does not exist locally: the window opens at 03:00 CEST = 01:00 UTC.
		{"sunday window at the missing hour", time.Date(2026, 3, 26, 12, 0, 0, 0, time.UTC), berlinSun, time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)},
		// Sunday 25 October 02:00 happens twice: the first (CEST) = 00:00 UTC.
		{"sunday window at the repeated hour", time.Date(2026, 10, 21, 12, 0, 0, 0, time.UTC), berlinSun, time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newBatchHarness(t, 3)
			h.env.SetStartTime(c.start)
			h.inventory = map[string]fleet.Cluster{"lkc-001": cluster("lkc-001", c.window)}
			// lkc-002 has no window: it must not wait behind lkc-001.
			h.plane.run(h.env, time.Minute, 12*24*time.Hour)
			in := batchInput(2, 2)
			in.Schedule = workflows.BatchSchedule{RespectWindows: true, MaxWait: 14 * 24 * time.Hour}
			var waiting workflows.BatchStatus
			h.env.RegisterDelayedCallback(func() { waiting = h.query(t) }, 10*time.Minute)
			h.env.ExecuteWorkflow(workflows.WorkflowBatch, in)
			require.NoError(t, h.env.GetWorkflowError())
			var res workflows.BatchResult
			require.NoError(t, h.env.GetWorkflowResult(&res))
			require.Equal(t, c.want, startedAt(t, res, "lkc-001"), "touched only when its window opens")
			require.Equal(t, c.start, startedAt(t, res, "lkc-002"), "a cluster whose window is open is not held up")
			for _, cl := range res.Clusters {
				require.Equal(t, workflows.ClusterDone, cl.State, cl.ID)
			}
			st := byState(waiting)
			require.Equal(t, []string{"lkc-001"}, st[workflows.ClusterWaiting])
			for _, cl := range waiting.Clusters {
				if cl.ID == "lkc-001" {
					require.Contains(t, cl.Message, "maintenance window opens")
				}
			}
		})
	}
}

func TestBlackoutDayMovesWorkToTheNextDay(t *testing.T) {
	h := newBatchHarness(t, 3)
	start := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC) // Thursday
	h.env.SetStartTime(start)
	daily := &fleet.Window{Start: "10:00", Duration: "2h", TimeZone: "UTC"}
	h.inventory = map[string]fleet.Cluster{"lkc-001": cluster("lkc-001", daily)}
	h.policy = &policy.Snapshot{Blackouts: []policy.Blackout{{
		Name: "black-friday", Start: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC), Reason: "peak retail traffic",
	}}}
	h.plane.run(h.env, time.Minute, 5*24*time.Hour)
	in := batchInput(1, 1)
	in.Schedule = workflows.BatchSchedule{RespectWindows: true, MaxWait: 7 * 24 * time.Hour}
	h.env.ExecuteWorkflow(workflows.WorkflowBatch, in)
	require.NoError(t, h.env.GetWorkflowError())
	var res workflows.BatchResult
	require.NoError(t, h.env.GetWorkflowResult(&res))
	// Thursday's window has passed; Friday is blacked out; Saturday 10:00.
	require.Equal(t, time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC), startedAt(t, res, "lkc-001"))
}

func TestWindowThatNeverOpensInTimeIsSkippedWithTheReason(t *testing.T) {
	h := newBatchHarness(t, 3)
	h.env.SetStartTime(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)) // Monday
	h.inventory = map[string]fleet.Cluster{"lkc-001": cluster("lkc-001", &fleet.Window{Days: []string{"sun"}, Start: "02:00", Duration: "1h", TimeZone: "UTC"})}
	h.plane.run(h.env, time.Minute, 2*time.Hour)
	in := batchInput(2, 2)
	in.Schedule = workflows.BatchSchedule{RespectWindows: true, MaxWait: 48 * time.Hour}
	h.env.ExecuteWorkflow(workflows.WorkflowBatch, in)
	require.NoError(t, h.env.GetWorkflowError())
	var res workflows.BatchResult
	require.NoError(t, h.env.GetWorkflowResult(&res))
	require.Equal(t, workflows.ClusterSkipped, res.Clusters[0].State)
	require.Contains(t, res.Clusters[0].Message, "maximum wait of 48h0m0s")
	require.Equal(t, workflows.ClusterDone, res.Clusters[1].State)
	require.NotContains(t, h.plane.commands(dataplane.Apply), "lkc-001")
}

func TestEmergencyRunsThroughWindowsAndRecordsEachOverride(t *testing.T) {
	h := newBatchHarness(t, 3)
	start := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	h.env.SetStartTime(start)
	h.inventory = map[string]fleet.Cluster{"lkc-001": cluster("lkc-001", &fleet.Window{Days: []string{"sun"}, Start: "02:00", Duration: "1h", TimeZone: "Europe/Berlin"})}
	h.policy = &policy.Snapshot{Blackouts: []policy.Blackout{{Name: "black-friday", Start: start.Add(-time.Hour), End: start.Add(48 * time.Hour)}}}
	h.plane.run(h.env, time.Second, time.Hour)
	in := batchInput(2, 2)
	in.Schedule = workflows.BatchSchedule{RespectWindows: true, Emergency: true, MaxWait: time.Hour}
	h.env.ExecuteWorkflow(workflows.WorkflowBatch, in)
	require.NoError(t, h.env.GetWorkflowError())
	var res workflows.BatchResult
	require.NoError(t, h.env.GetWorkflowResult(&res))
	// At once (the test clock may tick a step while the batch reads its clusters).
	require.WithinDuration(t, start, startedAt(t, res, "lkc-001"), 5*time.Second)
	require.WithinDuration(t, start, startedAt(t, res, "lkc-002"), 5*time.Second)
	require.Len(t, res.Overrides, 2, "both clusters ran through the blackout (and lkc-001 through its window)")
	require.Contains(t, res.Overrides[0], "lkc-001: emergency override: blackout black-friday")
}

// gatedPlan has a canary phase and a prod phase that needs approval.
func gatedPlan() *plan.Plan {
	p := testPlan()
	p.Phases[0].Breakdown = &plan.Breakdown{Environment: map[string]int{"internal": 2}}
	p.Phases[1].RequireApproval = true
	p.Phases[1].Breakdown = &plan.Breakdown{Environment: map[string]int{"prod": 6}}
	return p
}

func loadTestPolicy(t *testing.T) *policy.Snapshot {
	t.Helper()
	b, err := os.ReadFile("../internal/policy/testdata/policy.yaml")
	require.NoError(t, err)
	cfg, err := policy.Parse("policy.yaml", b)
	require.NoError(t, err)
	snap := cfg.Snapshot()
	return &snap
}

func TestApprovalsNeedTheRoleAndTwoPeopleInProd(t *testing.T) {
	h := newRolloutHarness(t, 3, gatedPlan())
	h.policy = loadTestPolicy(t)
	// Names as typed: this test is about roles (identity_test.go signs).
	h.policy.Access.Identity = policy.IdentityAsserted
	h.plane.run(h.env, time.Second, 30*time.Minute)
	in := rolloutInput()
	in.Requester = "erin" // operator and approver, on prod's approver list
	outcomes := map[string]*updateOutcome{}
	h.env.RegisterDelayedCallback(func() {
		outcomes["self"] = h.update(workflows.Approve, workflows.ApproveRequest{Actor: "erin", Phase: "prod"})
		outcomes["operator"] = h.update(workflows.Approve, workflows.ApproveRequest{Actor: "alice", Phase: "prod"})
		outcomes["not-listed"] = h.update(workflows.Approve, workflows.ApproveRequest{Actor: "dave", Phase: "prod"})
		outcomes["viewer-pause"] = h.update(workflows.Pause, workflows.ActionRequest{Actor: "mallory", Reason: "x"})
	}, 2*time.Minute)
	h.env.RegisterDelayedCallback(func() {
		outcomes["bob"] = h.update(workflows.Approve, workflows.ApproveRequest{Actor: "bob", Phase: "prod"})
	}, 3*time.Minute)
	h.env.ExecuteWorkflow(workflows.WorkflowRollout, in)
	require.NoError(t, h.env.GetWorkflowError())
	require.ErrorIs(t, outcomes["self"].err, policy.ErrSelfApproval)
	require.ErrorContains(t, outcomes["operator"].err, "needs approver")
	require.ErrorContains(t, outcomes["not-listed"].err, "prod")
	require.ErrorContains(t, outcomes["viewer-pause"].err, "needs operator")
	require.NoError(t, outcomes["bob"].err)
	var st workflows.RolloutStatus
	require.NoError(t, h.env.GetWorkflowResult(&st))
	require.Equal(t, workflows.StateCompleted, st.State)
	approved := false
	for _, a := range st.Audit {
		if a.Action == workflows.Approve {
			approved = true
			require.Equal(t, "bob", a.Actor)
		}
	}
	require.True(t, approved)
}

func TestGateTimeoutRemindsThenAbortsWhenConfigured(t *testing.T) {
	for _, action := range []string{spec.OnApprovalTimeoutRemind, spec.OnApprovalTimeoutAbort} {
		t.Run(action, func(t *testing.T) {
			h := newRolloutHarness(t, 3, gatedPlan())
			h.plane.run(h.env, 10*time.Second, 4*time.Hour)
			in := rolloutInput()
			in.Spec.Strategy.Phases = []spec.Phase{{Name: "prod", BatchSize: "2", RequireApproval: true,
				ApprovalTimeout: spec.Duration(time.Hour), OnApprovalTimeout: action}}
			if action == spec.OnApprovalTimeoutRemind {
				h.env.RegisterDelayedCallback(func() {
					h.update(workflows.Approve, workflows.ApproveRequest{Actor: "bob", Phase: "prod"})
				}, 150*time.Minute)
			}
			h.env.ExecuteWorkflow(workflows.WorkflowRollout, in)
			require.NoError(t, h.env.GetWorkflowError())
			var st workflows.RolloutStatus
			require.NoError(t, h.env.GetWorkflowResult(&st))
			reminders := 0
			for _, n := range h.notes {
				if n.Event == workflows.NotifyApproval && len(n.Text) > 8 && n.Text[:8] == "Reminder" {
					reminders++
				}
			}
			if action == spec.OnApprovalTimeoutAbort {
				require.Equal(t, workflows.StateAborted, st.State)
				require.Equal(t, 0, reminders)
				require.Equal(t, 6, st.Counts.Skipped, "prod never started")
			} else {
				require.Equal(t, workflows.StateCompleted, st.State)
				require.Equal(t, 2, reminders, "reminded at 1h and 2h, approved at 2.5h")
			}
		})
	}
}
