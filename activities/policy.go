package activities

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/policy"
	"github.com/fleet-rollout/fleet/workflows"
)

// policyCache keeps the last policy file that loaded, so that a file broken
// by an edit never fails a running rollout.
type policyCache struct {
	mu   sync.Mutex
	good *policy.Config
	// stale is the error of the last failed load while good is served.
	stale string
}

// registerPolicy registers the policy activities.
func (a *Activities) registerPolicy(r interface {
	RegisterActivityWithOptions(any, activity.RegisterOptions)
}) {
	r.RegisterActivityWithOptions(a.Policy, activity.RegisterOptions{Name: workflows.ActivityPolicy})
	r.RegisterActivityWithOptions(a.Clusters, activity.RegisterOptions{Name: workflows.ActivityClusters})
}

// PrimePolicy reads the policy file once, as the worker starts, so that the
// last good policy is known before the file can break; a malformed file is
// an error (file:line: reason). Without a policy file it does nothing.
func (a *Activities) PrimePolicy() error {
	if a.PolicyPath == "" {
		return nil
	}
	_, stale, err := a.loadPolicy()
	if err != nil {
		return err
	}
	if stale != "" { // cannot happen on the first read
		return fmt.Errorf("%s", stale)
	}
	return nil
}

// loadPolicy reads the worker's policy file (nil when none is configured).
// It is read on every call, so an edit applies to the next rollout or batch
// without a restart.
//
// When the file no longer loads (it does not parse or validate, or cannot be
// read), the last policy that loaded is returned with stale set to why
// (file:line: reason), and a warning is logged: an edit that breaks the file
// never fails a running rollout. Only when no policy ever loaded is it an
// error, non-retryable (type InvalidPolicy).
func (a *Activities) loadPolicy() (cfg *policy.Config, stale string, err error) {
	if a.PolicyPath == "" {
		return nil, "", nil
	}
	cfg, err = policy.Load(a.PolicyPath)
	a.policyCache.mu.Lock()
	defer a.policyCache.mu.Unlock()
	if err == nil {
		if a.policyCache.stale != "" {
			a.logger().Info("policy file loads again", zap.String("policy", a.PolicyPath))
		}
		a.policyCache.good, a.policyCache.stale = cfg, ""
		return cfg, "", nil
	}
	if a.policyCache.good == nil {
		return nil, "", temporal.NewNonRetryableApplicationError(err.Error(), "InvalidPolicy", err)
	}
	if a.policyCache.stale != err.Error() {
		// Once per distinct error, not once per call.
		a.logger().Warn("policy file does not load: serving the last good policy",
			zap.String("policy", a.PolicyPath), zap.String("reason", err.Error()))
	}
	a.policyCache.stale = err.Error()
	return a.policyCache.good, err.Error(), nil
}

func (a *Activities) logger() *zap.Logger {
	if a.Log == nil {
		return zap.NewNop()
	}
	return a.Log
}

// Policy returns the policy in force as plain data for the workflow; Stale
// is set when it is the last good policy standing in for a broken file.
func (a *Activities) Policy(ctx context.Context) (*policy.Snapshot, error) {
	cfg, stale, err := a.loadPolicy()
	if err != nil || cfg == nil {
		return nil, err
	}
	snap := cfg.Snapshot()
	snap.Stale = stale
	return &snap, nil
}

// Clusters returns the inventory records of a batch's clusters (for
// maintenance windows and blackouts) and the policy in force.
func (a *Activities) Clusters(ctx context.Context, in workflows.ClustersInput) (workflows.ClustersResult, error) {
	found, err := a.findInventory(ctx, in.IDs)
	if err != nil {
		return workflows.ClustersResult{}, fmt.Errorf("look up %d clusters in the inventory: %w", len(in.IDs), err)
	}
	// In the batch's order, as before.
	byID := make(map[string]fleet.Cluster, len(found))
	for _, c := range found {
		byID[c.ID] = c
	}
	var res workflows.ClustersResult
	for _, id := range in.IDs {
		if c, ok := byID[id]; ok {
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
// The policy file is read once per plan (the last good one if it broke).
func (a *Activities) protections(in workflows.PlanInput, force bool, clusters []fleet.Cluster) ([]string, map[string]string, error) {
	cfg, _, err := a.loadPolicy()
	if err != nil || cfg == nil {
		return nil, nil, err
	}
	// The start request's proof, at the time the server started the
	// rollout (a plan retried later still verifies).
	at := in.StartedAt
	if at.IsZero() {
		at = time.Now()
	}
	if s := in.Spec.Scheduled; s != nil && !in.Vouched {
		// Signed when the schedule was created: verify it then, for a
		// rollout started at the time it was signed for.
		if err := s.Check(at); err != nil {
			return nil, nil, temporal.NewNonRetryableApplicationError("start: "+err.Error(), "InvalidSpec", err)
		}
		at = s.CreatedAt
	}
	if in.Vouched {
		// A rollback started by the rollout it rolls back: the person (or
		// the error budget) was verified there.
		return a.protectedList(cfg, clusters)
	}
	requester, err := cfg.VerifyRequest(in.RolloutID, "start", workflows.StartArgs(in.Spec), in.Spec.Requester, in.Spec.Auth, at)
	if err != nil {
		a.Log.Warn("start rejected", zap.String("rollout", in.RolloutID), zap.String("requester", in.Spec.Requester), zap.Error(err))
		return nil, nil, temporal.NewNonRetryableApplicationError("start: "+err.Error(), "InvalidSpec", err)
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
	return a.protectedList(cfg, clusters)
}

// protectedList lists the protected clusters with the policy's reason.
func (a *Activities) protectedList(cfg *policy.Config, clusters []fleet.Cluster) ([]string, map[string]string, error) {
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
