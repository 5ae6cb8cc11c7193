package client

import (
	"context"
	"fmt"

	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/planstore"
	"github.com/fleet-rollout/fleet/workflows"
)

// WithPlans returns a client that reads rollouts' plans from the plan store
// (FLEET_PLAN_STORE; the worker's): Source returns the full plan of a
// rollout that keeps only its outline, and Status lists the clusters of its
// batches not started yet (up to workflows.DetailLimit clusters, as the
// rollout does for the others).
func (c *Client) WithPlans(p *planstore.Cache) *Client {
	cp := *c
	cp.plans = p
	return &cp
}

// expandSource replaces an outline in src with the full plan, when the
// client has the plan store; without it the outline stays (its Stored says
// where the plan is).
func (c *Client) expandSource(ctx context.Context, src *workflows.RolloutSource) error {
	o := src.Source.Plan
	if o == nil || o.Stored == "" || c.plans == nil {
		return nil
	}
	p, err := planstore.Load(ctx, c.plans.Store, o)
	if err != nil {
		return fmt.Errorf("the plan of %s: %w", src.Source.ID, err)
	}
	src.Source.Plan = p
	return nil
}

// fillPending lists the clusters of st's batches not started (counted, not
// listed, when the plan is in the store), from the plan store.
func (c *Client) fillPending(ctx context.Context, st *workflows.RolloutStatus) error {
	if st.PlanStored == "" || c.plans == nil || st.Total > workflows.DetailLimit || !anyUnlisted(st) {
		return nil
	}
	full, err := c.plans.Plan(ctx, st.PlanStored)
	if err != nil {
		return fmt.Errorf("status %s: %w", st.ID, err)
	}
	FillPending(st, full)
	return nil
}

// anyUnlisted reports whether a pending batch of st lists none of its clusters.
func anyUnlisted(st *workflows.RolloutStatus) bool {
	for _, ph := range st.Phases {
		for _, b := range ph.Batches {
			if b.State == workflows.BatchPending && len(b.Clusters) == 0 {
				return true
			}
		}
	}
	return false
}

// FillPending lists, in st, the clusters of the pending batches that list
// none (a rollout whose plan is in the plan store counts them only), from
// full, the rollout's plan: pending, or skipped once the rollout has ended
// (as the rollout counts them).
func FillPending(st *workflows.RolloutStatus, full *plan.Plan) {
	for pi := range st.Phases {
		for bi := range st.Phases[pi].Batches {
			b := &st.Phases[pi].Batches[bi]
			if b.State != workflows.BatchPending || len(b.Clusters) > 0 {
				continue
			}
			ts, _ := full.BatchTargets(b.Number)
			state := workflows.ClusterPending
			if b.Counts.Skipped > 0 {
				state = workflows.ClusterSkipped
			}
			for _, t := range ts {
				b.Clusters = append(b.Clusters, workflows.ClusterStatus{ID: t.ClusterID, Product: t.Product, Generation: t.Generation, State: state})
			}
		}
	}
}
