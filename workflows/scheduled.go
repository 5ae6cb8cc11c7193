package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/workflow"

	"github.com/fleet-rollout/fleet/internal/identity"
)

// WorkflowScheduledRollout is the type name of ScheduledRollout, the
// workflow a fleet schedule (fleet start --at) starts.
const WorkflowScheduledRollout = "ScheduledRollout"

// ScheduleLateness is how late after its time a scheduled start may still
// start the rollout (the schedule's catch-up window): a server that was
// down at the time starts it when it is back within this window, not later.
const ScheduleLateness = time.Hour

// ScheduledStart is part of the input of a rollout a Temporal Schedule
// starts (fleet start --at). The request was signed when the schedule was
// created, not when it fires: the Plan activity verifies the proof at
// CreatedAt, and only for a rollout the server started between At minus
// identity.MaxSkew and At plus ScheduleLateness. Both times are signed
// (StartArgs covers them), so a captured input cannot start the rollout at
// another time than the one its requester chose.
type ScheduledStart struct {
	// Schedule is the Temporal Schedule's ID.
	Schedule string `json:"schedule"`
	// CreatedAt is when the requester created the schedule and signed the
	// start.
	CreatedAt time.Time `json:"createdAt"`
	// At is when the rollout is to start.
	At time.Time `json:"at"`
	// Zone is the time zone At was given in (for display).
	Zone string `json:"zone,omitempty"`
}

// Check says whether a rollout the server started at started may run this
// scheduled start.
func (s *ScheduledStart) Check(started time.Time) error {
	if started.Before(s.At.Add(-identity.MaxSkew)) || started.After(s.At.Add(ScheduleLateness)) {
		return fmt.Errorf("scheduled start %s was signed for %s but the rollout started at %s (more than %s early or %s late)",
			s.Schedule, s.At.UTC().Format(time.RFC3339), started.UTC().Format(time.RFC3339), identity.MaxSkew, ScheduleLateness)
	}
	return nil
}

// ScheduledRollout is the workflow a fleet schedule starts at its time: it
// starts the rollout in (its Scheduled set) as workflow rollout/<name>, a
// child it abandons, and returns that workflow's ID. (The schedule cannot
// start rollout/<name> itself: Temporal appends the time to the IDs of the
// workflows a schedule starts.) The rollout checks the freeze, the proof
// and the policy as any rollout does: during a fleet freeze it starts
// paused and applies nothing until the freeze is lifted and it is resumed.
func ScheduledRollout(ctx workflow.Context, in RolloutInput) (string, error) {
	if in.Scheduled == nil {
		return "", fmt.Errorf("scheduled start of %q: the input names no schedule", in.Spec.Name)
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            RolloutID(in.Spec.Name),
		TaskQueue:             TaskQueue,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		ParentClosePolicy:     enums.PARENT_CLOSE_POLICY_ABANDON,
	})
	var exec workflow.Execution
	if err := workflow.ExecuteChildWorkflow(cctx, WorkflowRollout, in).GetChildWorkflowExecution().Get(ctx, &exec); err != nil {
		return "", fmt.Errorf("start rollout %q: %w", in.Spec.Name, err)
	}
	workflow.GetLogger(ctx).Info("scheduled rollout started", "rollout", exec.ID, "schedule", in.Scheduled.Schedule)
	return exec.ID, nil
}
