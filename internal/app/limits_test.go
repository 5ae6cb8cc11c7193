package app_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	sdkclient "go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/internal/app"
	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/workflows"
)

// Real-stack tests at the size of a large batch, on the in-process server,
// which runs with a stock Temporal server's limits (2 MB payloads, 2 KB
// search attribute values, 50 MB / 51,200 events of history, 2,000 pending
// activities...; see internal/devserver).

const (
	// limitsBatch is the size of the one batch of the rollouts below.
	limitsBatch = 1000
	// limitsFleet is the simulated fleet (seed 7): 1,170 kafka clusters.
	limitsFleet = 2100
)

// TestThousandClusterBatchWithinStockLimits runs one phase of one batch of
// 1,000 clusters at concurrency 200: the rollout completes, every cluster is
// at the target and applied exactly once.
func TestThousandClusterBatchWithinStockLimits(t *testing.T) {
	limitsRun(t, 0)
}

// TestThousandClusterBatchContinuesAsNewWithinStockLimits is the same
// rollout with a small history budget: the batch continues as new several
// times, each run carrying the state of its 1,000 clusters (~0.65 MB, over
// the server's 512 KB warning, well under its 2 MB limit).
func TestThousandClusterBatchContinuesAsNewWithinStockLimits(t *testing.T) {
	limitsRun(t, 60)
}

// limitsRun runs the rollout (with HistoryBudget budget, 0 for the default)
// and checks it.
func limitsRun(t *testing.T, budget int) {
	s := startStack(t, limitsFleet, 5*time.Millisecond, nil)
	// The spec excludes the kafka clusters after the first limitsBatch by ID.
	var kafka []string
	for id, c := range s.before {
		if c.Product == fleet.ProductKafka {
			kafka = append(kafka, id)
		}
	}
	sort.Strings(kafka)
	require.GreaterOrEqual(t, len(kafka), limitsBatch, "the fleet has too few kafka clusters")
	selected := map[string]bool{}
	for _, id := range kafka[:limitsBatch] {
		selected[id] = true
	}
	var exclude strings.Builder
	for _, id := range kafka[limitsBatch:] {
		fmt.Fprintf(&exclude, "  - %s\n", id)
	}
	sp := parseSpec(t, fmt.Sprintf(`
name: it-large-batch
target:
  version: 3.7.1
selector: product=kafka
exclude:
%sstrategy:
  phases:
    - name: all
      batchSize: %d
      concurrency: 200
monitoring:
  interval: 1s
schedule:
  windows: ignore
`, exclude.String(), limitsBatch))

	ctx := context.Background()
	c, err := app.Dial(s.dev.Config, zap.NewNop())
	require.NoError(t, err)
	defer c.Close()
	start := time.Now()
	run, err := c.ExecuteWorkflow(ctx, sdkclient.StartWorkflowOptions{ID: workflows.RolloutID(sp.Name), TaskQueue: workflows.TaskQueue},
		workflows.WorkflowRollout, workflows.RolloutInput{Spec: *sp, Requester: "integration-test", HistoryBudget: budget})
	require.NoError(t, err)
	id := run.GetID()
	st := s.waitFor(t, id, "the end", terminal)
	t.Logf("rollout %s ended %s in %s: counts %+v", id, st.State, time.Since(start).Round(time.Second), st.Counts)
	require.Equal(t, workflows.StateCompleted, st.State, "%+v", st.Audit)
	require.Equal(t, limitsBatch, st.Total)
	require.Equal(t, limitsBatch, st.Counts.Done)
	require.Len(t, st.Phases, 1)
	require.Len(t, st.Phases[0].Batches, 1, "one batch of %d", limitsBatch)

	for cid, before := range s.before {
		after, ok := s.dev.Sim.Cluster(cid)
		require.True(t, ok)
		if selected[cid] {
			require.Equal(t, "3.7.1", after.Version, cid)
			require.Equal(t, 1, s.dev.Sim.ApplyStarts(cid), "applies of %s", cid)
			require.Equal(t, before.Generation+1, after.Generation, cid)
		} else {
			require.Equal(t, 0, s.dev.Sim.ApplyStarts(cid), "%s is outside the selection", cid)
			require.Equal(t, before.Version, after.Version, cid)
		}
	}

	// The workflows themselves end (the status says completed a little
	// before the rollout returns), and how close they came to the limits:
	// runs, and history events and bytes of the last run.
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.NoError(t, run.Get(wctx, nil), "the rollout workflow")
	batchID := workflows.BatchID(id, st.Phases[0].Batches[0].Number)
	for _, wid := range []string{id, batchID} {
		d, err := c.DescribeWorkflowExecution(wctx, wid, "")
		require.NoError(t, err)
		e := d.GetWorkflowExecutionInfo()
		require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, e.GetStatus(), wid)
		runs := 1
		for r := e.GetExecution().GetRunId(); r != e.GetFirstRunId(); runs++ {
			r = limitsPreviousRun(t, c, wid, r)
		}
		if wid == batchID && budget > 0 {
			require.Greater(t, runs, 1, "the batch continued as new")
		}
		t.Logf("%s: %s, %d runs, last run %d events, %d KB of history", wid, e.GetStatus(), runs, e.GetHistoryLength(), e.GetHistorySizeBytes()/1024)
	}
}

// limitsPreviousRun returns the run that continued as new into run, from
// the first event of run's history.
func limitsPreviousRun(t *testing.T, c sdkclient.Client, wid, run string) string {
	t.Helper()
	it := c.GetWorkflowHistory(context.Background(), wid, run, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	require.True(t, it.HasNext())
	ev, err := it.Next()
	require.NoError(t, err)
	prev := ev.GetWorkflowExecutionStartedEventAttributes().GetContinuedExecutionRunId()
	require.NotEmpty(t, prev, "run %s of %s was not continued from another", run, wid)
	return prev
}
