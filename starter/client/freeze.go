package client

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	sdkclient "go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/fleet-rollout/fleet/workflows"
)

// ErrNotFrozen is matched (errors.Is) by the error Unfreeze returns when no
// freeze is in force.
var ErrNotFrozen = errors.New("no freeze is in force")

// Freeze sets a fleet-wide freeze (or replaces the one in force): every
// running rollout pauses, in flight included, and no rollout starts or
// resumes until Unfreeze or req.Until. The freeze workflow (FreezeID) is
// started if it is not running (update-with-start). A request the workflow
// refuses (no actor or reason, an end in the past or too far ahead) is a
// *RejectedError carrying the workflow's reason.
func (c *Client) Freeze(ctx context.Context, req workflows.FreezeRequest) (workflows.FreezeState, error) {
	var st workflows.FreezeState
	req.Auth = c.proof(workflows.FreezeID, workflows.FreezeUpdate, workflows.SignedArgs(req), &req.Actor)
	start := c.c.NewWithStartWorkflowOperation(sdkclient.StartWorkflowOptions{
		ID:                       workflows.FreezeID,
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, workflows.WorkflowFreeze, workflows.FreezeInput{})
	h, err := c.c.UpdateWithStartWorkflow(ctx, sdkclient.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: sdkclient.UpdateWorkflowOptions{
			WorkflowID:   workflows.FreezeID,
			UpdateName:   workflows.FreezeUpdate,
			Args:         []any{req},
			WaitForStage: sdkclient.WorkflowUpdateStageCompleted,
		},
	})
	if err == nil {
		err = h.Get(ctx, &st)
	}
	if err != nil {
		return workflows.FreezeState{}, freezeErr(ctx, workflows.FreezeUpdate, err)
	}
	return st, nil
}

// Unfreeze lifts the freeze in force. With none in force (or no freeze
// workflow at all) the error matches ErrNotFrozen.
func (c *Client) Unfreeze(ctx context.Context, actor, reason string) (workflows.FreezeState, error) {
	var st workflows.FreezeState
	req := workflows.ActionRequest{Actor: actor, Reason: reason}
	req.Auth = c.proof(workflows.FreezeID, workflows.UnfreezeUpdate, workflows.SignedArgs(req), &req.Actor)
	h, err := c.c.UpdateWorkflow(ctx, sdkclient.UpdateWorkflowOptions{
		WorkflowID:   workflows.FreezeID,
		UpdateName:   workflows.UnfreezeUpdate,
		Args:         []any{req},
		WaitForStage: sdkclient.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, &st)
	}
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) && ctx.Err() == nil {
			return workflows.FreezeState{}, fmt.Errorf("%s %s: %w", workflows.UnfreezeUpdate, workflows.FreezeID, ErrNotFrozen)
		}
		err = freezeErr(ctx, workflows.UnfreezeUpdate, err)
		var rej *RejectedError
		if errors.As(err, &rej) && rej.Message == ErrNotFrozen.Error() {
			return workflows.FreezeState{}, fmt.Errorf("%w: %w", ErrNotFrozen, err)
		}
		return workflows.FreezeState{}, err
	}
	return st, nil
}

// FreezeStatus returns the freeze in force (nil Freeze when none) and the
// past freezes. No freeze workflow (never frozen) is no freeze, not an error.
func (c *Client) FreezeStatus(ctx context.Context) (workflows.FreezeState, error) {
	var st workflows.FreezeState
	v, err := c.c.QueryWorkflow(ctx, workflows.FreezeID, "", workflows.QueryStatus)
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) && ctx.Err() == nil {
			return st, nil
		}
		return st, freezeErr(ctx, "freeze status", err)
	}
	if err := v.Get(&st); err != nil {
		return st, fmt.Errorf("freeze status %s: decode: %w", workflows.FreezeID, err)
	}
	return st, nil
}

// freezeErr turns a Temporal error about the freeze workflow into one that
// says what happened.
func freezeErr(ctx context.Context, action string, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("%s %s: %w", action, workflows.FreezeID, ctx.Err())
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return rejected(action, workflows.FreezeID, app, err)
	}
	var qf *serviceerror.QueryFailed
	if errors.As(err, &qf) {
		return fmt.Errorf("%s %s: query failed: %s", action, workflows.FreezeID, qf.Message)
	}
	var to *sdkclient.WorkflowUpdateServiceTimeoutOrCanceledError
	var de *serviceerror.DeadlineExceeded
	if errors.As(err, &to) || errors.As(err, &de) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s %s: no answer in time (is a fleet worker polling task queue %q?): %w",
			action, workflows.FreezeID, workflows.TaskQueue, err)
	}
	return fmt.Errorf("%s %s: %w", action, workflows.FreezeID, err)
}
