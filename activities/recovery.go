package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/recovery"
	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/workflows"
)

// refuse is a recovery that cannot plan, for good (the rollout is not
// retried; its error says why).
func refuse(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return temporal.NewNonRetryableApplicationError(msg, "InvalidSpec", errors.New(msg))
}

// Source reads what a rollout did (its QuerySource answer). A rollout that
// does not exist is a refusal; any other failure is retried.
func (a *Activities) Source(ctx context.Context, id string) (workflows.RolloutSource, error) {
	var src workflows.RolloutSource
	if a.Temporal == nil {
		return src, refuse("recovery of %s: no Temporal client to read it", id)
	}
	v, err := a.Temporal.QueryWorkflow(ctx, id, "", workflows.QuerySource)
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return src, refuse("rollout %s not found", id)
		}
		return src, fmt.Errorf("read %s: %w", id, err)
	}
	if err := v.Get(&src); err != nil {
		return src, fmt.Errorf("decode the source of %s: %w", id, err)
	}
	if src.Source.Plan == nil {
		return src, refuse("rollout %s never planned: it changed nothing", id)
	}
	if err := a.expandSource(ctx, &src); err != nil {
		return src, err
	}
	return src, nil
}

// planRecovery plans a rollback, a retry or a supersede (see
// workflows.Recovery) from the source rollout and the inventory now.
func (a *Activities) planRecovery(ctx context.Context, in workflows.PlanInput, r *spec.Rollout, rec *workflows.Recovery, clusters []fleet.Cluster, opts plan.Options) (*plan.Plan, error) {
	if err := rec.Validate(in.RolloutID); err != nil {
		return nil, refuse("%v", err)
	}
	src, err := a.Source(ctx, rec.Of)
	if err != nil {
		return nil, err
	}
	name := workflows.RolloutName(rec.Of)
	switch rec.Kind {
	case workflows.RecoveryRollback:
		if in.Vouched && src.RollbackID != in.RolloutID {
			// Vouched means started by its parent, the rollout it rolls
			// back: that rollout must say so (a workflow of another type
			// reusing the ID of an ended rollout could start a child too).
			return nil, refuse("rollback %s: %s did not start it, so nothing vouches for its requester; start it signed (fleet rollback %s)", in.RolloutID, rec.Of, name)
		}
		if !src.State.Terminal() {
			return nil, refuse("rollout %s is %s: a rollback needs it stopped first: fleet abort %s, or fleet rollback %s --abort to do both", name, src.State, name, name)
		}
		return RecoveryPlan(src, in.RolloutID, rec, r, clusters, opts)
	case workflows.RecoveryRetry:
		if !src.State.Terminal() {
			return nil, refuse("rollout %s is %s: retry its clusters within it (fleet retry %s re-queues them there)", name, src.State, name)
		}
		return RecoveryPlan(src, in.RolloutID, rec, r, clusters, opts)
	default: // supersede: the workflow waited for the handover
		if !src.State.Terminal() {
			return nil, fmt.Errorf("rollout %s is still %s", name, src.State)
		}
		return RecoveryPlan(src, in.RolloutID, rec, r, clusters, opts)
	}
}

// RecoveryPlan plans a recovery from a rollout's source: recovery.Plan,
// the code fleet plan --rollback and --supersede run too, its errors made
// refusals. r is the recovering rollout's spec (a rollback's from
// workflows.RollbackSpec).
func RecoveryPlan(src workflows.RolloutSource, self string, rec *workflows.Recovery, r *spec.Rollout, clusters []fleet.Cluster, opts plan.Options) (*plan.Plan, error) {
	p, err := recovery.Plan(src, self, rec, r, clusters, opts)
	if err != nil {
		return nil, refuse("%v", err)
	}
	return p, nil
}

// handoverPoll is how often AwaitHandover reads the rollout it waits for.
const handoverPoll = 2 * time.Second

// AwaitHandover waits until the rollout a supersede takes over has stopped.
// That rollout must have been handed over to in.By (the supersede update),
// unless it had already ended: a supersede racing its last batch finds it
// completed, and the new rollout plans after it.
func (a *Activities) AwaitHandover(ctx context.Context, in workflows.AwaitHandoverInput) (workflows.AwaitHandoverResult, error) {
	if a.Temporal == nil {
		return workflows.AwaitHandoverResult{}, refuse("supersede %s: no Temporal client to read it", in.Of)
	}
	t := time.NewTicker(handoverPoll)
	defer t.Stop()
	for {
		v, err := a.Temporal.QueryWorkflow(ctx, in.Of, "", workflows.QueryStatus)
		var nf *serviceerror.NotFound
		switch {
		case errors.As(err, &nf):
			return workflows.AwaitHandoverResult{}, refuse("rollout %s not found", in.Of)
		case err != nil:
			return workflows.AwaitHandoverResult{}, fmt.Errorf("read %s: %w", in.Of, err)
		}
		var st workflows.RolloutStatus
		if err := v.Get(&st); err != nil {
			return workflows.AwaitHandoverResult{}, fmt.Errorf("decode the status of %s: %w", in.Of, err)
		}
		switch {
		case st.State.Terminal():
			return workflows.AwaitHandoverResult{State: st.State, SupersededBy: st.SupersededBy}, nil
		case st.SupersededBy != in.By:
			return workflows.AwaitHandoverResult{}, refuse("rollout %s is %s and was not handed over to %s: supersede it (fleet supersede %s -f FILE), or abort it first",
				in.Of, st.State, in.By, workflows.RolloutName(in.Of))
		}
		activity.RecordHeartbeat(ctx, st.Counts)
		select {
		case <-ctx.Done():
			return workflows.AwaitHandoverResult{}, ctx.Err()
		case <-t.C:
		}
	}
}
