package recovery

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/workflows"
)

const doc = `name: rc
target:
  version: 3.7.1
selector: product=kafka
strategy:
  phases:
    - name: all
      batchSize: "2"
`

func cluster(id, version string, gen int64) fleet.Cluster {
	return fleet.Cluster{ID: id, Product: "kafka", Cloud: "aws", Region: "us-east-1", Environment: "prod", Customer: "c", Version: version, Brokers: 3, Generation: gen}
}

func parse(t *testing.T, y string) *spec.Rollout {
	t.Helper()
	r, err := spec.Parse("r.yaml", []byte(y))
	require.NoError(t, err)
	r.Normalize()
	return r
}

// source: rc planned k-1..k-4 in two batches; only the second ran, k-4 failed.
func source(t *testing.T) (workflows.RolloutSource, []fleet.Cluster) {
	t.Helper()
	before := []fleet.Cluster{cluster("k-1", "3.6.1", 1), cluster("k-2", "3.6.1", 1), cluster("k-3", "3.6.1", 1), cluster("k-4", "3.6.1", 1)}
	r := parse(t, doc)
	p, err := plan.Build(r, before, plan.Options{})
	require.NoError(t, err)
	require.Len(t, p.Phases[0].Batches, 2)
	second := p.Phases[0].Batches[1]
	src := workflows.RolloutSource{Spec: *r, State: workflows.StateAborted,
		Source: plan.Source{ID: "rollout/rc", Plan: p, Ran: []int{second.Number}, Outcomes: map[string]plan.Outcome{}}}
	now := append([]fleet.Cluster(nil), before...)
	done, failed := second.Clusters[0].ClusterID, second.Clusters[1].ClusterID
	src.Source.Outcomes[failed] = plan.Outcome{State: plan.OutcomeFailed, Broker: 1}
	for i := range now {
		if now[i].ID == done {
			now[i].Version, now[i].Generation = "3.7.1", 2
		}
	}
	return src, now
}

func ids(p *plan.Plan) []string {
	var out []string
	for _, ph := range p.Phases {
		for _, b := range ph.Batches {
			for _, t := range b.Clusters {
				out = append(out, t.ClusterID)
			}
		}
	}
	return out
}

func TestPlanKinds(t *testing.T) {
	src, now := source(t)
	second := src.Source.Plan.Phases[0].Batches[1]
	done, failed := second.Clusters[0].ClusterID, second.Clusters[1].ClusterID

	// Rollback: the failed cluster first, then the done one.
	r := workflows.RollbackSpec(src.Spec, "3.6.1", false)
	p, err := Plan(src, "rollout/rc-rollback", &workflows.Recovery{Kind: workflows.RecoveryRollback, Of: "rollout/rc"}, &r, now, plan.Options{})
	require.NoError(t, err)
	assert.Equal(t, []string{failed, done}, ids(p))

	// Retry: the failed cluster and those of the batch that never ran.
	p, err = Plan(src, "rollout/rc-retry", &workflows.Recovery{Kind: workflows.RecoveryRetry, Of: "rollout/rc"}, &src.Spec, now, plan.Options{})
	require.NoError(t, err)
	assert.NotContains(t, ids(p), done)
	assert.Contains(t, ids(p), failed)
	assert.Len(t, ids(p), 3)

	// A retry naming a done cluster: a plain error, no refusal wrapping.
	_, err = Plan(src, "rollout/rc-retry", &workflows.Recovery{Kind: workflows.RecoveryRetry, Of: "rollout/rc", Clusters: []string{done}}, &src.Spec, now, plan.Options{})
	require.Error(t, err)
	assert.Equal(t, "plan: retry takes failed or skipped clusters: "+done+" ended done", err.Error())

	// Supersede: the clusters rc changed go first.
	hotfix := parse(t, doc)
	hotfix.Name, hotfix.Target.Version = "rc-hotfix", "3.7.2"
	p, err = Plan(src, "rollout/rc-hotfix", &workflows.Recovery{Kind: workflows.RecoverySupersede, Of: "rollout/rc"}, hotfix, now, plan.Options{})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{done, failed}, ids(p)[:2])
	assert.Equal(t, map[string]bool{done: true, failed: true}, First(src, now))

	// A hotfix below a changed cluster's version: the planner's DowngradeError, wrapped.
	hotfix.Target.Version = "3.7.0"
	_, err = Plan(src, "rollout/rc-hotfix", &workflows.Recovery{Kind: workflows.RecoverySupersede, Of: "rollout/rc"}, hotfix, now, plan.Options{})
	var de *plan.DowngradeError
	require.True(t, errors.As(err, &de), "%v", err)
	assert.Contains(t, err.Error(), "plan rollout/rc-hotfix: plan: 1 cluster runs a newer version than the target 3.7.0")
}
