package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/workflows"
)

const overlapA = `
name: it-overlap-a
target: {version: 3.7.1}
selector: product=kafka, env=prod, cloud=aws
strategy:
  phases:
    - {name: prod, batchSize: 10, concurrency: 20}
monitoring: {interval: 1s}
schedule: {windows: ignore}
`

const overlapB = `
name: it-overlap-b
target: {version: 3.7.2}
selector: product=kafka, env=prod
strategy:
  phases:
    - {name: prod, batchSize: 10, concurrency: 20}
monitoring: {interval: 1s}
schedule: {windows: ignore}
`

// Two rollouts that select overlapping clusters never operate on the same
// cluster: one started while the other runs leaves the busy clusters out of
// its plan ("in another running rollout"); two that plan at the same moment
// race at the data plane, where the loser is told the generation is taken
// and skips the cluster with that reason. Either way each cluster is
// changed once.
func TestOverlappingRolloutsNeverShareACluster(t *testing.T) {
	for _, simultaneous := range []bool{false, true} {
		name := "second starts while the first runs"
		if simultaneous {
			name = "both start together"
		}
		t.Run(name, func(t *testing.T) {
			s := startStackWith(t, stackOptions{Clusters: 300, BrokerTime: 20 * time.Millisecond})
			ctx := context.Background()
			a, err := s.client.Start(ctx, parseSpec(t, overlapA), "team-a")
			require.NoError(t, err)
			if !simultaneous {
				s.waitFor(t, a, "the first rollout running", func(st *workflows.RolloutStatus) bool { return st.Counts.InFlight > 0 })
			}
			b, err := s.client.Start(ctx, parseSpec(t, overlapB), "team-b")
			require.NoError(t, err)
			stA := s.waitFor(t, a, "the end of A", terminal)
			stB := s.waitFor(t, b, "the end of B", terminal)
			require.Equal(t, workflows.StateCompleted, stA.State)
			require.Equal(t, workflows.StateCompleted, stB.State)

			skippedByB := map[string]string{}
			inA, inB := clustersOf(stA), clustersOf(stB)
			for id, c := range inB {
				if c.State == workflows.ClusterSkipped {
					skippedByB[id] = c.Message
				}
			}
			overlap, kafkaProd := 0, 0
			for id, before := range s.before {
				if before.Product != fleet.ProductKafka || before.Environment != fleet.EnvProd {
					require.Equal(t, 0, s.dev.Sim.ApplyStarts(id), id)
					continue
				}
				kafkaProd++
				if starts := s.dev.Sim.ApplyStarts(id); starts > 1 {
					// Changed by both, which is right only one after the
					// other: A had finished it before B planned and began.
					require.Equal(t, 2, starts, id)
					a, b := inA[id], inB[id]
					require.Equal(t, workflows.ClusterDone, a.State, "%s changed by two rollouts", id)
					require.Equal(t, workflows.ClusterDone, b.State, "%s changed by two rollouts", id)
					require.NotNil(t, a.FinishedAt, id)
					require.NotNil(t, b.StartedAt, id)
					require.False(t, b.StartedAt.Before(*a.FinishedAt), "%s changed by two rollouts at once: A finished %s, B began %s", id, a.FinishedAt, b.StartedAt)
				}
				if before.Cloud == fleet.CloudAWS {
					overlap++
					if msg, ok := skippedByB[id]; ok {
						require.True(t, strings.Contains(msg, "another change owns the cluster"), "%s: %s", id, msg)
					}
				}
			}
			require.Greater(t, overlap, 0)
			if !simultaneous {
				// B planned after A started: every AWS cluster still open in A is
				// out of B's plan with the reason.
				require.Greater(t, stB.Total, 0)
				require.Less(t, stB.Total, kafkaProd, "B left A's open clusters out of its plan")
			}
		})
	}
}

// clustersOf indexes a rollout's clusters by ID.
func clustersOf(st *workflows.RolloutStatus) map[string]workflows.ClusterStatus {
	out := map[string]workflows.ClusterStatus{}
	for _, ph := range st.Phases {
		for _, bt := range ph.Batches {
			for _, c := range bt.Clusters {
				out[c.ID] = c
			}
		}
	}
	return out
}
