package activities

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap/zaptest"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/inventory"
	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/planstore"
	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/workflows"
)

// PlanOutline stores the plan it makes and returns its outline; the batches'
// clusters and the retry's targets load from the store; a plan missing from
// the store is a non-retryable error naming it.
func TestPlanOutlineAndLoads(t *testing.T) {
	var cs []fleet.Cluster
	for _, id := range []string{"lkc-1", "lkc-2", "lkc-3", "lkc-4"} {
		cs = append(cs, fleet.Cluster{ID: id, Product: "kafka", Cloud: "aws", Region: "us-east-1", Environment: "prod",
			Customer: "acme", Tier: "basic", Version: "3.6.0", Brokers: 3, Generation: 5})
	}
	dir := t.TempDir()
	store, err := planstore.NewDir(dir)
	require.NoError(t, err)
	a := &Activities{Inventory: inventory.Static(cs), Log: zaptest.NewLogger(t), Plans: planstore.NewCache(store)}
	r := spec.Rollout{Name: "a", Selector: "product=kafka", Target: spec.Target{Version: "3.7.0"}}
	r.Strategy.Phases = []spec.Phase{{Name: "prod", Selector: "environment=prod", BatchSize: "2", Concurrency: 2}}
	in := workflows.PlanInput{RolloutID: "rollout/a", Spec: workflows.RolloutInput{Spec: r, Requester: "alice"}}
	ctx := context.Background()

	o, err := a.PlanOutline(ctx, in)
	require.NoError(t, err)
	require.NotEmpty(t, o.Stored)
	require.Equal(t, 4, o.Total)
	require.Len(t, o.Phases[0].Batches, 2)
	for _, b := range o.Phases[0].Batches {
		require.Empty(t, b.Clusters)
		require.Equal(t, 2, b.Size)
	}
	full, err := a.Plan(ctx, in)
	require.NoError(t, err)
	require.Equal(t, full.Hash, o.Hash, "the outline names the plan's hash, which an approval names")

	ts, err := a.BatchTargets(ctx, workflows.BatchTargetsInput{Plan: o.Stored, Hash: o.Hash, Batch: 2})
	require.NoError(t, err)
	require.Equal(t, full.Phases[0].Batches[1].Clusters, ts)

	got, err := a.PlanTargets(ctx, workflows.PlanTargetsInput{Plan: o.Stored, Hash: o.Hash, IDs: []string{ts[0].ClusterID, "nope"}})
	require.NoError(t, err)
	require.Equal(t, map[string]plan.Target{ts[0].ClusterID: ts[0]}, got.Targets)
	require.Equal(t, 2, got.Batch[ts[0].ClusterID])

	src := workflows.RolloutSource{Source: plan.Source{ID: "rollout/a", Plan: o}}
	require.NoError(t, a.expandSource(ctx, &src))
	require.Equal(t, full.Phases, src.Source.Plan.Phases)

	// Another plan's hash: refused, naming both.
	_, err = a.BatchTargets(ctx, workflows.BatchTargetsInput{Plan: o.Stored, Hash: "0123456789ab", Batch: 1})
	requireUnavailable(t, err, o.Stored)

	// Gone from the store (a fresh worker's cache): refused for good, naming the key.
	require.NoError(t, os.RemoveAll(filepath.Join(dir, o.Stored[:2])))
	a.Plans = planstore.NewCache(store)
	_, err = a.BatchTargets(ctx, workflows.BatchTargetsInput{Plan: o.Stored, Hash: o.Hash, Batch: 1})
	requireUnavailable(t, err, o.Stored)
	src = workflows.RolloutSource{Source: plan.Source{ID: "rollout/a", Plan: o}}
	requireUnavailable(t, a.expandSource(ctx, &src), o.Stored)

	// No store: refused, saying so.
	a.Plans = nil
	_, err = a.PlanOutline(ctx, in)
	requireUnavailable(t, err, "FLEET_PLAN_STORE")
}

func requireUnavailable(t *testing.T, err error, mention string) {
	t.Helper()
	require.Error(t, err)
	require.Contains(t, err.Error(), mention)
	var app *temporal.ApplicationError
	require.True(t, errors.As(err, &app), "%v", err)
	require.Equal(t, workflows.ErrPlanUnavailable, app.Type())
	require.True(t, app.NonRetryable())
}
