// Package recovery plans a rollback, a retry or a supersede (see
// workflows.Recovery) from the source of the rollout recovered and the
// inventory now. The worker plans with it (activities) and so does fleet
// plan --rollback / --supersede, so a preview is the plan the worker makes
// from the same inputs.
package recovery

import (
	"fmt"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/workflows"
)

// Plan plans the recovery rec, by the rollout self, of the rollout whose
// source is src. r is the recovering rollout's spec (a rollback's from
// workflows.RollbackSpec). Its errors are plain (the worker makes them
// refusals); a plan error wraps the planner's (a *plan.DowngradeError, the
// limits).
func Plan(src workflows.RolloutSource, self string, rec *workflows.Recovery, r *spec.Rollout, clusters []fleet.Cluster, opts plan.Options) (*plan.Plan, error) {
	if p := src.Source.Plan; p != nil && p.Stored != "" {
		// An outline: its clusters are in the plan store, and planning from
		// it would see none.
		return nil, fmt.Errorf("the plan of %s is in the plan store as %s: read it from there (FLEET_PLAN_STORE) to plan its recovery",
			src.Source.ID, p.Stored)
	}
	wrap := func(p *plan.Plan, err error) (*plan.Plan, error) {
		if err != nil {
			return nil, fmt.Errorf("plan %s: %w", self, err)
		}
		return p, nil
	}
	switch rec.Kind {
	case workflows.RecoveryRollback:
		ro := plan.RollbackOptions{Forward: rec.Forward, Busy: opts.Busy, Name: r.Name, Outline: opts.Outline}
		if r.Emergency == nil || !r.Emergency.ForceProtected {
			ro.Protected = opts.ProtectedWhy
			if ro.Protected == nil {
				ro.Protected = map[string]string{}
			}
			for _, id := range opts.Protected {
				if _, ok := ro.Protected[id]; !ok {
					ro.Protected[id] = ""
				}
			}
		}
		p, err := wrap(plan.Rollback(src.Source, clusters, ro))
		if err == nil && p.Total == 0 {
			return nil, fmt.Errorf("nothing to roll back in %s: %s", workflows.RolloutName(rec.Of), plan.DescribeCounts(p.ExcludedCounts))
		}
		return p, err
	case workflows.RecoveryRetry:
		only, err := plan.Retryable(src.Source, rec.Clusters)
		if err != nil {
			return nil, err
		}
		opts.Only = only
		opts.Sent = plan.Sent(src.Source)
		return wrap(plan.Build(r, clusters, opts))
	default:
		opts.First = First(src, clusters)
		return wrap(plan.Build(r, clusters, opts))
	}
}

// First is the set of clusters a supersede of src plans first in their
// phase: those src changed (done, failed, stopped mid-way).
func First(src workflows.RolloutSource, clusters []fleet.Cluster) map[string]bool {
	chs, _, _ := plan.Changes(src.Source, clusters)
	first := make(map[string]bool, len(chs))
	for _, ch := range chs {
		first[ch.Target.ClusterID] = true
	}
	return first
}
