package activities

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/policy"
	"github.com/fleet-rollout/fleet/workflows"
)

// registerPolicy registers the policy activities.
func (a *Activities) registerPolicy(r interface {
	RegisterActivityWithOptions(any, activity.RegisterOptions)
}) {
	r.RegisterActivityWithOptions(a.Policy, activity.RegisterOptions{Name: workflows.ActivityPolicy})
	r.RegisterActivityWithOptions(a.Clusters, activity.RegisterOptions{Name: workflows.ActivityClusters})
}

// loadPolicy reads the worker's policy file (nil when none is configured).
// It is read on every call, so an edit applies to the next rollout or batch
// without a restart; a malformed file fails the call with file:line: reason.
func (a *Activities) loadPolicy() (*policy.Config, error) {
	if a.PolicyPath == "" {
		return nil, nil
	}
	cfg, err := policy.Load(a.PolicyPath)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidPolicy", err)
	}
	return cfg, nil
}

// Policy returns the policy in force as plain data for the workflow.
func (a *Activities) Policy(ctx context.Context) (*policy.Snapshot, error) {
	cfg, err := a.loadPolicy()
	if err != nil || cfg == nil {
		return nil, err
	}
	snap := cfg.Snapshot()
	return &snap, nil
}

// Clusters returns the inventory records of a batch's clusters (for
// maintenance windows and blackouts) and the policy in force.
func (a *Activities) Clusters(ctx context.Context, in workflows.ClustersInput) (workflows.ClustersResult, error) {
	all, err := a.Inventory.List(ctx)
	if err != nil {
		return workflows.ClustersResult{}, fmt.Errorf("list inventory: %w", err)
	}
	want := make(map[string]bool, len(in.IDs))
	for _, id := range in.IDs {
		want[id] = true
	}
	var res workflows.ClustersResult
	for _, c := range all {
		if want[c.ID] {
			res.Clusters = append(res.Clusters, c)
		}
	}
	if res.Policy, err = a.Policy(ctx); err != nil {
		return workflows.ClustersResult{}, err
	}
	return res, nil
}

// protections lists the protected clusters with the policy's reason, and
// checks who may start the rollout and who may force protected clusters.
// The policy file is read once per plan.
func (a *Activities) protections(requester string, force bool, clusters []fleet.Cluster) ([]string, map[string]string, error) {
	cfg, err := a.loadPolicy()
	if err != nil || cfg == nil {
		return nil, nil, err
	}
	if err := cfg.Authorize(requester, policy.ActionStart, ""); err != nil {
		return nil, nil, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidSpec", err)
	}
	if force {
		if err := cfg.Authorize(requester, policy.ActionForceProtected, ""); err != nil {
			return nil, nil, temporal.NewNonRetryableApplicationError("emergency.forceProtected: "+err.Error(), "InvalidSpec", err)
		}
		return nil, nil, nil
	}
	var ids []string
	why := map[string]string{}
	for _, c := range clusters {
		if reason, ok := cfg.Protected(c); ok {
			ids = append(ids, c.ID)
			why[c.ID] = reason
		}
	}
	return ids, why, nil
}
