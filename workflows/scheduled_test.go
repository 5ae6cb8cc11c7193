package workflows_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/workflows"
)

// The workflow a fleet schedule starts starts rollout/<name> with the
// scheduled input, unchanged (its proof covers it), and returns its ID.
func TestScheduledRolloutStartsTheRollout(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(workflows.ScheduledRollout, workflow.RegisterOptions{Name: workflows.WorkflowScheduledRollout})
	var gotID string
	var got workflows.RolloutInput
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context, in workflows.RolloutInput) error {
		gotID, got = workflow.GetInfo(ctx).WorkflowExecution.ID, in
		return nil
	}, workflow.RegisterOptions{Name: workflows.WorkflowRollout})
	at := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	in := workflows.RolloutInput{Spec: spec.Rollout{Name: "kafka-3-7-1"}, Requester: "alice",
		Scheduled: &workflows.ScheduledStart{Schedule: "scheduled/kafka-3-7-1", CreatedAt: at.Add(-72 * time.Hour), At: at, Zone: "Europe/Berlin"}}
	env.ExecuteWorkflow(workflows.WorkflowScheduledRollout, in)
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var id string
	require.NoError(t, env.GetWorkflowResult(&id))
	require.Equal(t, "rollout/kafka-3-7-1", id)
	require.Equal(t, "rollout/kafka-3-7-1", gotID)
	require.Equal(t, in.Scheduled.At, got.Scheduled.At)
	require.Equal(t, "alice", got.Requester)

	// Without its schedule the input is not a scheduled start.
	env = suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(workflows.ScheduledRollout, workflow.RegisterOptions{Name: workflows.WorkflowScheduledRollout})
	env.ExecuteWorkflow(workflows.WorkflowScheduledRollout, workflows.RolloutInput{Spec: spec.Rollout{Name: "x"}})
	require.ErrorContains(t, env.GetWorkflowError(), "names no schedule")
}

func TestScheduledStartCheck(t *testing.T) {
	at := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	s := &workflows.ScheduledStart{Schedule: "scheduled/x", At: at}
	require.NoError(t, s.Check(at))
	require.NoError(t, s.Check(at.Add(-9*time.Minute)))
	require.NoError(t, s.Check(at.Add(workflows.ScheduleLateness)))
	require.Error(t, s.Check(at.Add(-11*time.Minute)))
	require.Error(t, s.Check(at.Add(workflows.ScheduleLateness+time.Second)))
}
