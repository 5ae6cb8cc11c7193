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
			for _, ph := range stB.Phases {
				for _, bt := range ph.Batches {
					for _, c := range bt.Clusters {
						if c.State == workflows.ClusterSkipped {
							skippedByB[c.ID] = c.Message
						}
					}
				}
			}
			overlap, kafkaProd := 0, 0
			for id, before := range s.before {
				if before.Product != fleet.ProductKafka || before.Environment != fleet.EnvProd {
					require.Equal(t, 0, s.dev.Sim.ApplyStarts(id), id)
					continue
				}
				kafkaProd++
				require.LessOrEqual(t, s.dev.Sim.ApplyStarts(id), 1, "%s changed by two rollouts", id)
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
