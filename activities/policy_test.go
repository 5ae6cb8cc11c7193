package activities

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/inventory"
	"github.com/fleet-rollout/fleet/internal/policy"
	"github.com/fleet-rollout/fleet/workflows"
)

const goodPolicy = `
protected:
  - clusters: [lkc-1]
    reason: the crown jewels
`

const otherGoodPolicy = `
protected:
  - clusters: [lkc-2]
    reason: the other jewels
`

type listSource []fleet.Cluster

func (l listSource) List(context.Context) ([]fleet.Cluster, error) { return l, nil }

var _ inventory.Source = listSource(nil)

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(s), 0o600))
}

// A policy file broken by an edit never fails a rollout: Policy and
// Clusters serve the last good policy, marked Stale with file:line: reason,
// and warn once; a good file is served again as soon as it loads.
func TestBrokenPolicyServesTheLastGoodSnapshot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, goodPolicy)
	core, logs := observer.New(zap.WarnLevel)
	a := &Activities{PolicyPath: path, Log: zap.New(core), Inventory: listSource{{ID: "lkc-1"}, {ID: "lkc-2"}}}
	ctx := context.Background()

	require.NoError(t, a.PrimePolicy())
	snap, err := a.Policy(ctx)
	require.NoError(t, err)
	require.Empty(t, snap.Stale)
	reason, ok := snap.Protected(fleet.Cluster{ID: "lkc-1"})
	require.True(t, ok)
	require.Equal(t, "the crown jewels", reason)

	// Broken: an unknown field on line 3.
	writeFile(t, path, "protected:\n  - clusters: [lkc-1]\n    reasn: typo\n")
	_, loadErr := policy.Load(path)
	require.Error(t, loadErr)
	for range 3 {
		snap, err = a.Policy(ctx)
		require.NoError(t, err)
		require.Equal(t, loadErr.Error(), snap.Stale)
		require.Contains(t, snap.Stale, path+":3")
		reason, ok = snap.Protected(fleet.Cluster{ID: "lkc-1"})
		require.True(t, ok, "the last good policy still applies")
		require.Equal(t, "the crown jewels", reason)
	}
	res, err := a.Clusters(ctx, workflows.ClustersInput{IDs: []string{"lkc-1"}})
	require.NoError(t, err)
	require.Len(t, res.Clusters, 1)
	require.Equal(t, loadErr.Error(), res.Policy.Stale)
	ids, _, err := a.protections(workflows.PlanInput{RolloutID: "rollout/r", Spec: workflows.RolloutInput{Requester: "someone"}}, false, []fleet.Cluster{{ID: "lkc-1"}, {ID: "lkc-2"}})
	require.NoError(t, err)
	require.Equal(t, []string{"lkc-1"}, ids)

	warns := logs.FilterMessage("policy file does not load: serving the last good policy").All()
	require.Len(t, warns, 1, "one warning per distinct error")
	require.Equal(t, loadErr.Error(), warns[0].ContextMap()["reason"])
	require.Equal(t, path, warns[0].ContextMap()["policy"])

	// Gone altogether: still the last good one.
	require.NoError(t, os.Remove(path))
	snap, err = a.Policy(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, snap.Stale)
	require.Len(t, logs.FilterMessage("policy file does not load: serving the last good policy").All(), 2)

	// Fixed (and changed): the new policy, not stale.
	writeFile(t, path, otherGoodPolicy)
	snap, err = a.Policy(ctx)
	require.NoError(t, err)
	require.Empty(t, snap.Stale)
	_, ok = snap.Protected(fleet.Cluster{ID: "lkc-1"})
	require.False(t, ok)
	_, ok = snap.Protected(fleet.Cluster{ID: "lkc-2"})
	require.True(t, ok)
}

// Without a policy that ever loaded, a broken file fails for good, as
// before: there is nothing to fall back on.
func TestBrokenPolicyWithoutAGoodOneIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, "protected: [[[\n")
	a := &Activities{PolicyPath: path, Log: zap.NewNop(), Inventory: listSource{}}
	require.Error(t, a.PrimePolicy())
	_, err := a.Policy(context.Background())
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%T %v", err, err)
	require.True(t, appErr.NonRetryable())
	require.Equal(t, "InvalidPolicy", appErr.Type())
	require.Contains(t, err.Error(), path+":1")
	_, err = a.Clusters(context.Background(), workflows.ClustersInput{})
	require.Error(t, err)

	// No policy configured: nil, no error.
	none := &Activities{Inventory: listSource{}}
	snap, err := none.Policy(context.Background())
	require.NoError(t, err)
	require.Nil(t, snap)
}
