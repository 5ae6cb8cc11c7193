package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"

	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/planstore"
	"github.com/fleet-rollout/fleet/workflows"
)

// payloadRecorder is the data converter of a test run: it records every
// payload the run writes (workflow and child inputs and results, activity
// inputs and results, signals, continue-as-new inputs), so a test can say
// how large the largest was and how many clusters it named.
type payloadRecorder struct {
	converter.DataConverter
	mu       sync.Mutex
	payloads []string
}

func (r *payloadRecorder) record(ps ...*commonpb.Payload) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range ps {
		r.payloads = append(r.payloads, string(p.GetData()))
	}
}

func (r *payloadRecorder) ToPayload(v any) (*commonpb.Payload, error) {
	p, err := r.DataConverter.ToPayload(v)
	if err == nil {
		r.record(p)
	}
	return p, err
}

func (r *payloadRecorder) ToPayloads(vs ...any) (*commonpb.Payloads, error) {
	ps, err := r.DataConverter.ToPayloads(vs...)
	if err == nil {
		r.record(ps.GetPayloads()...)
	}
	return ps, err
}

// clusterID matches the clusters' IDs in a payload.
var clusterID = regexp.MustCompile(`lkc-[0-9]+`)

// largest is the size of the largest payload and the most distinct
// clusters (IDs "lkc-...") one payload names.
func (r *payloadRecorder) largest() (size, clusters int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.payloads {
		size = max(size, len(p))
		ids := map[string]bool{}
		for _, id := range clusterID.FindAllString(p, -1) {
			ids[id] = true
		}
		clusters = max(clusters, len(ids))
	}
	return size, clusters
}

// bigPlan is a plan of n clusters: a canary batch of batch clusters, then a
// prod phase that waits for approval, in batches of batch.
func bigPlan(n, batch int) *plan.Plan {
	ts := make([]plan.Target, n)
	for i := range ts {
		ts[i] = plan.Target{ClusterID: fmt.Sprintf("lkc-%05d", i+1), Product: "kafka", Generation: 2, FromVersion: "3.6.0"}
	}
	p := &plan.Plan{Version: "3.7.0", Total: n}
	canary := plan.Phase{Name: "canary", Concurrency: batch, Batches: []plan.Batch{{Number: 1, Clusters: ts[:batch]}}}
	prod := plan.Phase{Name: "prod", Concurrency: batch, RequireApproval: true}
	for i, num := batch, 2; i < n; i, num = i+batch, num+1 {
		prod.Batches = append(prod.Batches, plan.Batch{Number: num, Clusters: ts[i:min(i+batch, n)]})
	}
	p.Phases = []plan.Phase{canary, prod}
	p.Hash = p.ComputeHash()
	return p
}

// With the plan in the store, no payload of the run holds more than one
// batch's clusters, whatever the plan's size: the rollout keeps the outline,
// each batch loads its own clusters.
func TestRolloutKeepsItsPlanOutsideHistory(t *testing.T) {
	const n, batch = 2000, 50
	p := bigPlan(n, batch)
	h := newRolloutHarness(t, 1, p)
	rec := &payloadRecorder{DataConverter: converter.GetDefaultDataConverter()}
	h.env.SetDataConverter(rec)
	h.plane.run(h.env, time.Second, 10*time.Minute)
	h.env.RegisterDelayedCallback(func() {
		st := h.status(t)
		require.Equal(t, workflows.StateAwaitingApproval, st.State, "the canary ran; prod waits for its approval")
		require.Equal(t, p.Hash, st.PlanHash)
		require.NotEmpty(t, st.PlanStored)
		require.Equal(t, batch, st.Counts.Done)
		require.Equal(t, n-batch, st.Counts.Pending, "clusters of batches not started are counted")
		h.update(workflows.Abort, workflows.ActionRequest{Actor: "alice", Reason: "enough"})
	}, 5*time.Minute)
	h.env.ExecuteWorkflow(workflows.WorkflowRollout, rolloutInput())
	require.NoError(t, h.env.GetWorkflowError())
	var st workflows.RolloutStatus
	require.NoError(t, h.env.GetWorkflowResult(&st))
	require.Equal(t, workflows.StateAborted, st.State)
	require.Equal(t, batch, st.Counts.Done)
	require.Equal(t, n-batch, st.Counts.Skipped)

	size, clusters := rec.largest()
	full, err := rec.DataConverter.ToPayload(p)
	require.NoError(t, err)
	t.Logf("largest payload %d bytes naming %d clusters; the full plan is %d bytes", size, clusters, len(full.GetData()))
	require.LessOrEqual(t, clusters, batch, "no payload names more than one batch's clusters")
	// One batch's worth (its result, its events), whatever the plan's size;
	// the plan itself would be the largest payload by far.
	require.Greater(t, len(full.GetData()), 100<<10)
	require.Less(t, size, 32<<10, "the largest payload is one batch's, not the plan")
}

// A plan that cannot be loaded fails the rollout loudly, naming it: nothing
// is planned again in its place.
func TestRolloutFailsWhenItsPlanIsMissing(t *testing.T) {
	p := bigPlan(20, 5)
	h := newRolloutHarness(t, 1, p)
	var stored string
	h.afterStore = func(key string) {
		stored = key
		require.NoError(t, os.RemoveAll(filepath.Join(h.store.Path, key[:2])))
	}
	h.plane.run(h.env, time.Second, 10*time.Minute)
	h.env.ExecuteWorkflow(workflows.WorkflowRollout, rolloutInput())
	err := h.env.GetWorkflowError()
	require.Error(t, err)
	require.NotEmpty(t, stored)
	require.Contains(t, err.Error(), stored)
	require.Contains(t, err.Error(), "not in the plan store")
	require.Len(t, h.plans, 1, "planned once, never again")
	var st workflows.RolloutStatus
	v, qerr := h.env.QueryWorkflow(workflows.QueryStatus)
	require.NoError(t, qerr)
	require.NoError(t, v.Get(&st))
	require.Equal(t, workflows.StateFailed, st.State)
	require.Zero(t, st.Counts.Done)
	require.Empty(t, h.plane.commands(dataplane.Apply), "no cluster was touched")
}

// The rollback's version is the same from the outline as from the plan.
func TestRollbackVersionOfAnOutline(t *testing.T) {
	p := bigPlan(30, 10)
	for i, v := range []string{"3.5.0", "3.5.0", "3.4.0", "3.4.0", "3.4.0"} {
		p.Phases[1].Batches[0].Clusters[i].FromVersion = v
	}
	// 3.6.0: 15 clusters (the canary, half of batch 2), 3.4.0: 13, 3.5.0: 2.
	for _, b := range p.Phases[1].Batches[1:] {
		for i := range b.Clusters {
			b.Clusters[i].FromVersion = "3.4.0"
		}
	}
	want := workflows.RollbackVersion(p)
	require.Equal(t, "3.6.0", want)
	require.Equal(t, want, workflows.RollbackVersion(p.Outline("k")))
	tie := bigPlan(4, 2)
	tie.Phases[1].Batches[0].Clusters[0].FromVersion = "3.5.0"
	tie.Phases[1].Batches[0].Clusters[1].FromVersion = "3.5.0"
	require.Equal(t, "3.5.0", workflows.RollbackVersion(tie), "2 and 2: the lower version")
	require.Equal(t, "3.5.0", workflows.RollbackVersion(tie.Outline("k")))
}

// flakyStore fails its first fails reads, as a store that is briefly
// unreachable does.
type flakyStore struct {
	planstore.Store
	mu    sync.Mutex
	fails int
	reads int
}

func (s *flakyStore) Get(ctx context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	s.reads++
	fail := s.reads <= s.fails
	s.mu.Unlock()
	if fail {
		return nil, errors.New("connection refused")
	}
	return s.Store.Get(ctx, key)
}

// A batch answers its status query while it loads its clusters (here while
// it waits to retry a failed read of the store): every cluster pending, none
// listed yet. Once loaded it applies them all.
func TestBatchAnswersStatusWhileLoadingItsClusters(t *testing.T) {
	p := bigPlan(12, 6)
	h := newRolloutHarness(t, 1, p)
	key, err := planstore.PutPlan(context.Background(), h.store, p)
	require.NoError(t, err)
	flaky := &flakyStore{Store: h.store, fails: 1}
	h.acts.Plans = planstore.NewCache(flaky)
	h.plane.run(h.env, time.Second, 10*time.Minute)
	var loading workflows.BatchStatus
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflow(workflows.QueryStatus)
		require.NoError(t, err, "the status query is answered while the clusters load")
		require.NoError(t, v.Get(&loading))
	}, 500*time.Millisecond)
	out := p.Outline(key)
	in := workflows.BatchInput{
		RolloutID: "rollout/test", Phase: "prod", Batch: out.Phases[1].Batches[0],
		Plan: key, PlanHash: p.Hash, Target: dataplane.Spec{Version: "3.7.0"}, Concurrency: 3,
	}
	h.env.ExecuteWorkflow(workflows.WorkflowBatch, in)
	require.NoError(t, h.env.GetWorkflowError())
	require.Equal(t, 2, flaky.reads, "the failed read was retried")
	require.Equal(t, workflows.BatchPending, loading.State)
	require.Equal(t, 2, loading.Number)
	require.Equal(t, 6, loading.Counts.Pending)
	require.Empty(t, loading.Clusters)
	var res workflows.BatchResult
	require.NoError(t, h.env.GetWorkflowResult(&res))
	require.Len(t, res.Clusters, 6)
	for _, c := range res.Clusters {
		require.Equal(t, workflows.ClusterDone, c.State, c.ID)
	}
}

// A phase with more batches than one run's history budget has room for runs
// in segments: the rollout continues as new between them, carrying where the
// phase stands, and every cluster is applied exactly once.
func TestLargePhaseRunsInSegmentsAcrossContinueAsNew(t *testing.T) {
	const n, size, budget = 300, 2, 600 // 150 batches; 75 fit in a run
	ts := make([]plan.Target, n)
	for i := range ts {
		ts[i] = plan.Target{ClusterID: fmt.Sprintf("lkc-%05d", i+1), Product: "kafka", Generation: 2, FromVersion: "3.6.0"}
	}
	p := &plan.Plan{Version: "3.7.0", Total: n}
	prod := plan.Phase{Name: "prod", Concurrency: 10}
	for i := 0; i < n; i += size {
		prod.Batches = append(prod.Batches, plan.Batch{Number: len(prod.Batches) + 1, Clusters: ts[i : i+size]})
	}
	p.Phases = []plan.Phase{prod}
	p.Hash = p.ComputeHash()

	in := rolloutInput()
	in.HistoryBudget = budget
	first := newRolloutHarness(t, 1, p)
	h := first
	var batchesPerRun []int
	for run := 0; ; run++ {
		require.Less(t, run, 5, "the phase ends within a few runs")
		started := map[int]bool{}
		h.plane.run(h.env, time.Second, time.Hour)
		h.env.SetOnChildWorkflowStartedListener(func(info *workflow.Info, _ workflow.Context, args converter.EncodedValues) {
			var bi workflows.BatchInput
			require.NoError(t, args.Get(&bi))
			started[bi.Batch.Number] = true
		})
		h.env.ExecuteWorkflow(workflows.WorkflowRollout, in)
		batchesPerRun = append(batchesPerRun, len(started))
		if err := h.env.GetWorkflowError(); err == nil {
			break
		}
		in = continued[workflows.RolloutInput](t, h.env)
		require.NotNil(t, in.Carry)
		require.Equal(t, 0, in.Carry.NextPhase, "still in the phase")
		require.Equal(t, sum(batchesPerRun), in.Carry.NextBatch, "the next run starts where this one stopped")
		next := newRolloutHarness(t, 1, p)
		next.shareStore(first)
		next.plane = first.plane
		h = next
	}
	var st workflows.RolloutStatus
	require.NoError(t, h.env.GetWorkflowResult(&st))
	require.Equal(t, workflows.StateCompleted, st.State)
	require.Equal(t, n, st.Counts.Done)
	require.Equal(t, []int{75, 75}, batchesPerRun, "two segments of the budget's room (600 / 8 events a batch)")
	for _, id := range ts {
		require.Equal(t, 1, first.plane.applies(id.ClusterID), "%s applied exactly once", id.ClusterID)
	}
	phaseStarted := 0
	for _, e := range append(first.events, h.events...) {
		if e.Kind == workflows.EventPhaseStarted {
			phaseStarted++
		}
	}
	require.Equal(t, 1, phaseStarted, "the phase starts once, not once a segment")
}

func sum(xs []int) int {
	t := 0
	for _, x := range xs {
		t += x
	}
	return t
}

// Without a budget of its own, a rollout's phase segment fills
// DefaultSegmentBudget: 520 batches, more than the 4,000-event history
// budget has room for (a segment ends with a drain of the window), run in
// one segment, with no continue-as-new.
func TestPhaseSegmentFillsTheSegmentBudget(t *testing.T) {
	const n = 520
	ts := make([]plan.Target, n)
	for i := range ts {
		ts[i] = plan.Target{ClusterID: fmt.Sprintf("lkc-%05d", i+1), Product: "kafka", Generation: 2, FromVersion: "3.6.0"}
	}
	p := &plan.Plan{Version: "3.7.0", Total: n}
	prod := plan.Phase{Name: "prod", Concurrency: 20}
	for i := range ts {
		prod.Batches = append(prod.Batches, plan.Batch{Number: i + 1, Clusters: ts[i : i+1]})
	}
	p.Phases = []plan.Phase{prod}
	p.Hash = p.ComputeHash()
	require.Greater(t, n*8, workflows.DefaultHistoryBudget, "more batches than the history budget has room for")

	h := newRolloutHarness(t, 1, p)
	h.plane.run(h.env, time.Second, time.Hour)
	h.env.ExecuteWorkflow(workflows.WorkflowRollout, rolloutInput())
	require.NoError(t, h.env.GetWorkflowError(), "one segment: no continue-as-new")
	var st workflows.RolloutStatus
	require.NoError(t, h.env.GetWorkflowResult(&st))
	require.Equal(t, workflows.StateCompleted, st.State)
	require.Equal(t, n, st.Counts.Done)
}
