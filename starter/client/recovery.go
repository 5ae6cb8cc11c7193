package client

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/workflows"
)

// Source reads what a rollout did (its plan, the batches that ran, the
// clusters that did not end done, its spec and state): what recovery plans
// from.
func (c *Client) Source(ctx context.Context, id string) (*workflows.RolloutSource, error) {
	name := workflows.RolloutName(id)
	v, err := c.c.QueryWorkflow(ctx, workflows.RolloutID(name), "", workflows.QuerySource)
	if err != nil {
		return nil, c.wrap(ctx, "read", name, err)
	}
	var src workflows.RolloutSource
	if err := v.Get(&src); err != nil {
		return nil, fmt.Errorf("decode the source of %s: %w", name, err)
	}
	if err := c.expandSource(ctx, &src); err != nil {
		return nil, err
	}
	return &src, nil
}

// RunningError refuses a recovery that needs the rollout ended, saying what
// to do.
type RunningError struct {
	Name  string
	State workflows.RolloutState
	Hint  string
}

func (e *RunningError) Error() string {
	return fmt.Sprintf("rollout %q is %s: %s", e.Name, e.State, e.Hint)
}

// RollbackOptions are the choices of a rollback.
type RollbackOptions struct {
	Actor  string
	Reason string
	// Abort rolls back a rollout that is still running: it is aborted,
	// and its rollback starts when its batches have stopped. Without it a
	// running rollout is refused (*RunningError).
	Abort bool
	// Forward runs the phases in the rollout's order (default: last first).
	Forward bool
	// RespectWindows makes the rollback wait for maintenance windows.
	RespectWindows bool
}

// RollbackInput is the input of the rollback of the rollout whose
// source is src: what Rollback starts and fleet plan --rollback plans.
func RollbackInput(src *workflows.RolloutSource, o RollbackOptions) workflows.RolloutInput {
	version := ""
	if chs := src.Source.Plan; chs != nil {
		version = workflows.RollbackVersion(chs)
	}
	s := workflows.RollbackSpec(src.Spec, version, o.RespectWindows)
	if o.Reason != "" {
		// The start's audit entry records the description: the reason with it.
		s.Description += ": " + o.Reason
	}
	return workflows.RolloutInput{
		Spec:      s,
		Requester: o.Actor,
		Recovery:  &workflows.Recovery{Kind: workflows.RecoveryRollback, Of: src.Source.ID, Forward: o.Forward, ThreadTS: src.ThreadTS},
	}
}

// Rollback returns every cluster the rollout changed to the version and
// config it had before, as a rollout of its own (named NAME-rollback), and
// returns that rollout's ID. A rollout still running is refused unless
// o.Abort, which aborts it and lets it start its rollback once stopped.
func (c *Client) Rollback(ctx context.Context, id string, o RollbackOptions) (string, error) {
	name := workflows.RolloutName(id)
	src, err := c.Source(ctx, name)
	if err != nil {
		return "", err
	}
	if !src.State.Terminal() {
		if !o.Abort {
			return "", &RunningError{Name: name, State: src.State,
				Hint: fmt.Sprintf("a rollback needs it stopped: fleet abort %s --reason ..., then fleet rollback %s; or fleet rollback %s --abort --reason ... to do both", name, name, name)}
		}
		req := workflows.ActionRequest{Actor: o.Actor, Reason: o.Reason}
		req.Auth = c.proof(rolloutID(name), workflows.UpdateRollback, workflows.SignedArgs(req), &req.Actor)
		if _, err := c.update(ctx, workflows.UpdateRollback, name, req); err != nil {
			return "", err
		}
		return workflows.RolloutID(workflows.RollbackName(name)), nil
	}
	if src.Source.Plan == nil {
		return "", fmt.Errorf("rollback %s: it never planned, so it changed nothing", name)
	}
	return c.start(ctx, RollbackInput(src, o))
}

// Supersede hands the running rollout id over to a new rollout with spec r:
// the old one starts no new cluster and stops the ones in flight after their
// current broker, then ends superseded; the new one waits for that, and
// plans with the clusters the old one changed first in their phases. A
// rollout that has already ended is not touched: the new one starts after
// it the same way. Returns the new rollout's ID.
func (c *Client) Supersede(ctx context.Context, id string, r *spec.Rollout, actor, reason string) (string, error) {
	if r == nil {
		return "", errors.New("supersede: no spec")
	}
	name := workflows.RolloutName(id)
	in := workflows.RolloutInput{Spec: *r, Requester: actor,
		Recovery: &workflows.Recovery{Kind: workflows.RecoverySupersede, Of: workflows.RolloutID(name)}}
	in.Spec.Normalize()
	if err := in.Spec.Validate(); err != nil {
		return "", fmt.Errorf("supersede %s: invalid spec: %w", name, err)
	}
	newID := workflows.RolloutID(r.Name)
	if err := in.Recovery.Validate(newID); err != nil {
		return "", fmt.Errorf("supersede %s: %w", name, err)
	}
	if d, err := c.c.DescribeWorkflowExecution(ctx, newID, ""); err == nil && d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return "", &AlreadyRunningError{Name: r.Name}
	}
	src, err := c.Source(ctx, name)
	if err != nil {
		return "", err
	}
	if !src.State.Terminal() {
		req := workflows.SupersedeRequest{Actor: actor, By: newID, Reason: reason}
		req.Auth = c.proof(rolloutID(name), workflows.UpdateSupersede, workflows.SignedArgs(req), &req.Actor)
		if _, err := c.update(ctx, workflows.UpdateSupersede, name, req); err != nil {
			var fin *FinishedError
			var rej *RejectedError
			if !errors.As(err, &fin) && !(errors.As(err, &rej) && isEnded(ctx, c, name)) {
				return "", err
			}
			// It ended meanwhile: the new rollout starts after it.
		}
	}
	return c.start(ctx, in)
}

// isEnded reports whether the rollout's state is terminal now.
func isEnded(ctx context.Context, c *Client, name string) bool {
	src, err := c.Source(ctx, name)
	return err == nil && src.State.Terminal()
}

// RetryResult says where a retry runs.
type RetryResult struct {
	// ID is the rollout that re-applies the clusters: the rollout itself
	// when it is still running (a last phase), else a new rollout.
	ID      string `json:"id"`
	InPlace bool   `json:"inPlace"`
	Message string `json:"message"`
}

// RetryName is the name of the retry of the rollout named name.
func RetryName(name string) string { return name + "-retry" }

// Retry re-applies the failed, aborted and skipped clusters of a rollout
// (only the named ones when clusters is not empty) with a fresh error
// budget: within the rollout when it is still running or paused (a last
// phase), else as a new rollout NAME-retry with the same spec.
func (c *Client) Retry(ctx context.Context, id string, clusters []string, actor, reason string) (RetryResult, error) {
	name := workflows.RolloutName(id)
	src, err := c.Source(ctx, name)
	if err != nil {
		return RetryResult{}, err
	}
	if !src.State.Terminal() {
		req := workflows.RetryRequest{Actor: actor, Clusters: clusters, Reason: reason}
		req.Auth = c.proof(rolloutID(name), workflows.UpdateRetry, workflows.SignedArgs(req), &req.Actor)
		res, err := c.update(ctx, workflows.UpdateRetry, name, req)
		if err != nil {
			return RetryResult{}, err
		}
		return RetryResult{ID: workflows.RolloutID(name), InPlace: true, Message: res.Message}, nil
	}
	if _, err := plan.Retryable(src.Source, clusters); err != nil {
		return RetryResult{}, err
	}
	in := RetryInput(src, clusters, actor)
	if reason != "" {
		// The start's audit entry records the description: the reason with it.
		in.Spec.Description += ": " + reason
	}
	rid, err := c.start(ctx, in)
	if err != nil {
		return RetryResult{}, err
	}
	return RetryResult{ID: rid, Message: fmt.Sprintf("started %s", rid)}, nil
}

// RetryInput is the input of the rollout that retries src's clusters.
func RetryInput(src *workflows.RolloutSource, clusters []string, actor string) workflows.RolloutInput {
	s := src.Spec
	s.Name = RetryName(src.Spec.Name)
	s.Description = "retry of " + src.Spec.Name
	s.RequirePlanApproval = false
	return workflows.RolloutInput{Spec: s, Requester: actor,
		Recovery: &workflows.Recovery{Kind: workflows.RecoveryRetry, Of: src.Source.ID, Clusters: clusters, ThreadTS: src.ThreadTS}}
}
