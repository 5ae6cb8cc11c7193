package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/planstore"
	"github.com/fleet-rollout/fleet/workflows"
)

// The plan outside workflow history (README "Scale"): PlanOutline stores
// the full plan and gives the rollout its outline; a batch loads its own
// clusters (BatchTargets), a retry its clusters' targets (PlanTargets), and
// recovery and the busy-cluster check read the plan through Plans.

func (a *Activities) registerPlanStore(r interface {
	RegisterActivityWithOptions(any, activity.RegisterOptions)
}) {
	r.RegisterActivityWithOptions(a.PlanOutline, activity.RegisterOptions{Name: workflows.ActivityPlanOutline})
	r.RegisterActivityWithOptions(a.BatchTargets, activity.RegisterOptions{Name: workflows.ActivityBatchTargets})
	r.RegisterActivityWithOptions(a.PlanTargets, activity.RegisterOptions{Name: workflows.ActivityPlanTargets})
}

// unavailable is a plan that cannot be loaded, for good: the error names
// the plan and is not retried (the rollout never plans again in its place).
func unavailable(err error) error {
	if errors.Is(err, planstore.ErrNotFound) || errors.Is(err, planstore.ErrCorrupt) {
		return temporal.NewNonRetryableApplicationError(err.Error(), workflows.ErrPlanUnavailable, err)
	}
	return err
}

// storedPlan loads the plan stored under key and checks it is the plan
// hash names.
func (a *Activities) storedPlan(ctx context.Context, key, hash string) (*plan.Plan, error) {
	if a.Plans == nil {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("load plan %s: this worker has no plan store (FLEET_PLAN_STORE)", key), workflows.ErrPlanUnavailable, nil)
	}
	p, err := a.Plans.Plan(ctx, key)
	if err != nil {
		return nil, unavailable(err)
	}
	if hash != "" && p.Hash != hash {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("load plan %s: it is plan %s, not %s", key, p.Hash, hash), workflows.ErrPlanUnavailable, nil)
	}
	return p, nil
}

// PlanOutline plans (as Plan does), stores the full plan in the plan store
// and returns its outline.
func (a *Activities) PlanOutline(ctx context.Context, in workflows.PlanInput) (*plan.Plan, error) {
	if a.Plans == nil {
		return nil, temporal.NewNonRetryableApplicationError("plan "+in.RolloutID+": this worker has no plan store (FLEET_PLAN_STORE)", workflows.ErrPlanUnavailable, nil)
	}
	p, err := a.plan(ctx, in, true)
	if err != nil {
		return nil, err
	}
	key, err := a.Plans.Put(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", in.RolloutID, err)
	}
	a.Log.Info("stored plan", zap.String("rollout", in.RolloutID), zap.String("plan", p.Hash), zap.String("key", key),
		zap.String("store", a.Plans.Store.String()))
	return p.Outline(key), nil
}

// BatchTargets loads one batch's clusters from the plan store.
func (a *Activities) BatchTargets(ctx context.Context, in workflows.BatchTargetsInput) ([]plan.Target, error) {
	p, err := a.storedPlan(ctx, in.Plan, in.Hash)
	if err != nil {
		return nil, err
	}
	ts, ok := p.BatchTargets(in.Batch)
	if !ok {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("plan %s has no batch %d", in.Plan, in.Batch), workflows.ErrPlanUnavailable, nil)
	}
	return ts, nil
}

// PlanTargets loads some clusters' targets, and their batches, from the
// plan store; a cluster the plan does not hold is left out.
func (a *Activities) PlanTargets(ctx context.Context, in workflows.PlanTargetsInput) (workflows.PlanTargetsResult, error) {
	out := workflows.PlanTargetsResult{Targets: map[string]plan.Target{}, Batch: map[string]int{}}
	p, err := a.storedPlan(ctx, in.Plan, in.Hash)
	if err != nil {
		return out, err
	}
	for _, ph := range p.Phases {
		for _, b := range ph.Batches {
			for _, t := range b.Clusters {
				if slices.Contains(in.IDs, t.ClusterID) {
					out.Targets[t.ClusterID] = t
					out.Batch[t.ClusterID] = b.Number
				}
			}
		}
	}
	return out, nil
}

// openInStore adds to busy the clusters of rollout id's outline batches
// that have not finished (QueryOpenBatches), read from the plan store.
func (a *Activities) openInStore(ctx context.Context, id string, busy map[string]string) error {
	v, err := a.Temporal.QueryWorkflow(ctx, id, "", workflows.QueryOpenBatches)
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("open batches of %s: %w", id, err)
	}
	var ob workflows.OpenBatches
	if err := v.Get(&ob); err != nil {
		return fmt.Errorf("decode the open batches of %s: %w", id, err)
	}
	if ob.Plan == "" || len(ob.Open) == 0 {
		return nil
	}
	p, err := a.storedPlan(ctx, ob.Plan, ob.PlanHash)
	if err != nil {
		return fmt.Errorf("clusters of %s: %w", id, err)
	}
	for _, n := range ob.Open {
		ts, _ := p.BatchTargets(n)
		for _, t := range ts {
			busy[t.ClusterID] = id
		}
	}
	return nil
}

// expandSource replaces an outline in src with the full plan from the
// plan store.
func (a *Activities) expandSource(ctx context.Context, src *workflows.RolloutSource) error {
	o := src.Source.Plan
	if o == nil || o.Stored == "" {
		return nil
	}
	full, err := a.storedPlan(ctx, o.Stored, o.Hash)
	if err != nil {
		return fmt.Errorf("the plan of %s: %w", src.Source.ID, err)
	}
	p, err := o.Expand(full)
	if err != nil {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("the plan of %s: plan %s: %v", src.Source.ID, o.Stored, err), workflows.ErrPlanUnavailable, err)
	}
	src.Source.Plan = p
	return nil
}
