package activities

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/inventory"
	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/workflows"
)

// A vouched rollback (started by its parent, skipping the start proof) plans
// only when the rollout it rolls back names it as the rollback it started:
// a workflow of another type reusing an ended rollout's ID could start a
// child "rollback" too, and nothing would vouch for its requester.
func TestVouchedRollbackNeedsItsRolloutToHaveStartedIt(t *testing.T) {
	c := fleet.Cluster{ID: "lkc-1", Product: "kafka", Cloud: "aws", Region: "us-east-1", Environment: "prod",
		Customer: "acme", Tier: "basic", Version: "3.7.1", Brokers: 3, Generation: 5}
	orig := &plan.Plan{Version: "3.7.1", Phases: []plan.Phase{{Name: "prod", Concurrency: 1,
		Batches: []plan.Batch{{Number: 1, Clusters: []plan.Target{{ClusterID: "lkc-1", Product: "kafka", Generation: 5, FromVersion: "3.6.0"}}}}}}}
	for _, tt := range []struct {
		name       string
		rollbackID string
		wantErr    string
	}{
		{"the rollout started it", "rollout/a-rollback", ""},
		{"another workflow under the rollout's ID started it", "", "did not start it"},
		{"the rollout started another", "rollout/other", "did not start it"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fake := &freezeFakeTemporal{query: func(id, name string) (any, error) {
				require.Equal(t, "rollout/a", id)
				require.Equal(t, workflows.QuerySource, name)
				return workflows.RolloutSource{
					Source:     plan.Source{ID: "rollout/a", Plan: orig, Ran: []int{1}},
					Spec:       spec.Rollout{Name: "a", Target: spec.Target{Version: "3.7.1"}},
					State:      workflows.StateAborted,
					RollbackID: tt.rollbackID,
				}, nil
			}}
			a := &Activities{Temporal: fake, Inventory: inventory.Static([]fleet.Cluster{c}), Log: zaptest.NewLogger(t)}
			rb := workflows.RollbackSpec(spec.Rollout{Name: "a", Target: spec.Target{Version: "3.7.1"}}, "3.6.0", false)
			in := workflows.PlanInput{RolloutID: "rollout/a-rollback", Vouched: true, Spec: workflows.RolloutInput{
				Spec: rb, Requester: "alice", Recovery: &workflows.Recovery{Kind: workflows.RecoveryRollback, Of: "rollout/a"}}}
			p, err := a.planRecovery(context.Background(), in, &rb, in.Spec.Recovery, []fleet.Cluster{c}, plan.Options{})
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, 1, p.Total)
			require.Equal(t, "3.6.0", p.Phases[0].Batches[0].Clusters[0].Version)
		})
	}
}
