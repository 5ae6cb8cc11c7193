package client

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	sdkclient "go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/workflows"
)

// fakeSDK implements the few sdkclient.Client methods the client calls;
// any other call panics on the nil embedded interface.
type fakeSDK struct {
	sdkclient.Client
	execute  func(opts sdkclient.StartWorkflowOptions, wf any, args ...any) (sdkclient.WorkflowRun, error)
	query    func(id, name string) (any, error)
	update   func(opts sdkclient.UpdateWorkflowOptions) error
	describe func(id string) (enumspb.WorkflowExecutionStatus, error)
	// closeEvent answers GetWorkflowHistory (close event filter).
	closeEvent func(id string) *historypb.HistoryEvent
}

func (f *fakeSDK) GetWorkflowHistory(_ context.Context, id, _ string, _ bool, _ enumspb.HistoryEventFilterType) sdkclient.HistoryEventIterator {
	it := &fakeIter{}
	if f.closeEvent != nil {
		if e := f.closeEvent(id); e != nil {
			it.events = []*historypb.HistoryEvent{e}
		}
	}
	return it
}

type fakeIter struct{ events []*historypb.HistoryEvent }

func (i *fakeIter) HasNext() bool { return len(i.events) > 0 }
func (i *fakeIter) Next() (*historypb.HistoryEvent, error) {
	e := i.events[0]
	i.events = i.events[1:]
	return e, nil
}

func (f *fakeSDK) ExecuteWorkflow(_ context.Context, opts sdkclient.StartWorkflowOptions, wf any, args ...any) (sdkclient.WorkflowRun, error) {
	return f.execute(opts, wf, args...)
}

func (f *fakeSDK) QueryWorkflow(_ context.Context, id, _ string, name string, _ ...any) (converter.EncodedValue, error) {
	v, err := f.query(id, name)
	if err != nil {
		return nil, err
	}
	return jsonValue{v}, nil
}

func (f *fakeSDK) UpdateWorkflow(_ context.Context, opts sdkclient.UpdateWorkflowOptions) (sdkclient.WorkflowUpdateHandle, error) {
	return fakeHandle{err: f.update(opts)}, nil
}

func (f *fakeSDK) DescribeWorkflowExecution(_ context.Context, id, _ string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	s, err := f.describe(id)
	if err != nil {
		return nil, err
	}
	return &workflowservice.DescribeWorkflowExecutionResponse{
		WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{Status: s},
	}, nil
}

type jsonValue struct{ v any }

func (j jsonValue) HasValue() bool { return j.v != nil }
func (j jsonValue) Get(p any) error {
	b, err := json.Marshal(j.v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, p)
}

type fakeHandle struct{ err error }

func (fakeHandle) WorkflowID() string { return "" }
func (fakeHandle) RunID() string      { return "" }
func (fakeHandle) UpdateID() string   { return "" }
func (h fakeHandle) Get(_ context.Context, p any) error {
	if h.err != nil {
		return h.err
	}
	*(p.(*workflows.ActionResult)) = workflows.ActionResult{State: workflows.StatePaused, Message: "held 2 clusters"}
	return nil
}

type fakeRun struct {
	sdkclient.WorkflowRun
	id string
}

func (r fakeRun) GetID() string { return r.id }

func TestStartOptionsAndInput(t *testing.T) {
	var gotOpts sdkclient.StartWorkflowOptions
	var gotIn workflows.RolloutInput
	f := &fakeSDK{query: neverFrozen, execute: func(opts sdkclient.StartWorkflowOptions, wf any, args ...any) (sdkclient.WorkflowRun, error) {
		gotOpts = opts
		assert.Equal(t, "Rollout", wf)
		require.Len(t, args, 1)
		gotIn = args[0].(workflows.RolloutInput)
		return fakeRun{id: opts.ID}, nil
	}}
	id, err := New(f).Start(context.Background(), validSpec("kafka-3-7-1"), "alice")
	require.NoError(t, err)
	assert.Equal(t, "rollout/kafka-3-7-1", id)
	assert.Equal(t, workflows.TaskQueue, gotOpts.TaskQueue)
	assert.Equal(t, enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL, gotOpts.WorkflowIDConflictPolicy)
	assert.Equal(t, enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE, gotOpts.WorkflowIDReusePolicy)
	assert.True(t, gotOpts.WorkflowExecutionErrorWhenAlreadyStarted)
	assert.Equal(t, "alice", gotIn.Requester)
	assert.Equal(t, "alice", gotIn.Spec.Requester)
	assert.NotEmpty(t, gotIn.Spec.Strategy.Phases, "the spec is normalized")
}

// neverFrozen answers a query as Temporal does when the freeze workflow
// was never started.
func neverFrozen(id, _ string) (any, error) {
	if id == workflows.FreezeID {
		return nil, serviceerror.NewNotFound("workflow not found for ID: " + id)
	}
	return nil, serviceerror.NewNotFound("unexpected query of " + id)
}

func validSpec(name string) *spec.Rollout {
	return &spec.Rollout{Name: name, Target: spec.Target{Version: "3.7.1"},
		Selector: "product=kafka", Strategy: spec.Strategy{Preset: spec.PresetCanaryThenWaves}}
}

func TestStartInvalidSpecStartsNothing(t *testing.T) {
	f := &fakeSDK{execute: func(sdkclient.StartWorkflowOptions, any, ...any) (sdkclient.WorkflowRun, error) {
		t.Fatal("an invalid spec reached Temporal")
		return nil, nil
	}}
	r := validSpec("x")
	r.Target.Version = ""
	_, err := New(f).Start(context.Background(), r, "alice")
	assert.ErrorContains(t, err, `start rollout "x": invalid spec: target.version: required`)
}

func TestStartAlreadyRunning(t *testing.T) {
	f := &fakeSDK{query: neverFrozen, execute: func(sdkclient.StartWorkflowOptions, any, ...any) (sdkclient.WorkflowRun, error) {
		return nil, serviceerror.NewWorkflowExecutionAlreadyStarted("already started", "", "run-1")
	}}
	_, err := New(f).Start(context.Background(), validSpec("x"), "alice")
	require.Error(t, err)
	assert.EqualError(t, err, `rollout "x" is already running (workflow rollout/x)`)
	assert.ErrorIs(t, err, ErrAlreadyRunning)
}

func TestUpdateRejectedKeepsMessage(t *testing.T) {
	f := &fakeSDK{update: func(opts sdkclient.UpdateWorkflowOptions) error {
		assert.Equal(t, "rollout/x", opts.WorkflowID)
		assert.Equal(t, workflows.Pause, opts.UpdateName)
		assert.Equal(t, sdkclient.WorkflowUpdateStageCompleted, opts.WaitForStage)
		return temporal.NewApplicationError("rollout is already paused", "Rejected")
	}}
	_, err := New(f).Pause(context.Background(), "x", workflows.ActionRequest{Actor: "a", Reason: "r"})
	assert.EqualError(t, err, "pause rollout/x: rejected: rollout is already paused")
	var rej *RejectedError
	assert.True(t, errors.As(err, &rej))
}

func TestUpdateAcceptsFullID(t *testing.T) {
	f := &fakeSDK{update: func(opts sdkclient.UpdateWorkflowOptions) error {
		assert.Equal(t, "rollout/x", opts.WorkflowID)
		assert.Equal(t, workflows.Resume, opts.UpdateName)
		return nil
	}}
	res, err := New(f).Resume(context.Background(), "rollout/x", workflows.ActionRequest{Actor: "a"})
	require.NoError(t, err)
	assert.Equal(t, "held 2 clusters", res.Message)
}

func TestNotFoundAndFinished(t *testing.T) {
	nf := serviceerror.NewNotFound("workflow not found")
	f := &fakeSDK{
		query:  func(string, string) (any, error) { return nil, nf },
		update: func(sdkclient.UpdateWorkflowOptions) error { return nf },
		describe: func(id string) (enumspb.WorkflowExecutionStatus, error) {
			if id == "rollout/done" {
				return enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, nil
			}
			return 0, nf
		},
	}
	c := New(f)
	_, err := c.Status(context.Background(), "ghost")
	assert.EqualError(t, err, `rollout "ghost" not found`)
	assert.ErrorIs(t, err, ErrNotFound)

	_, err = c.Abort(context.Background(), "done", workflows.ActionRequest{Actor: "a", Reason: "r"})
	assert.EqualError(t, err, `abort rollout/done: rollout "done" has already ended (completed)`)
}

func TestStatusMergesInFlightBatches(t *testing.T) {
	parent := func(b3 workflows.BatchStatus) workflows.RolloutStatus {
		return workflows.RolloutStatus{
			ID: "rollout/x", Name: "x", State: workflows.StateRunning, Total: 9,
			Counts: workflows.Counts{Done: 2, Pending: 7},
			Phases: []workflows.PhaseStatus{{
				Name: "canary", State: "running",
				Batches: []workflows.BatchStatus{
					{Number: 1, State: workflows.BatchCompleted, Counts: workflows.Counts{Done: 2}, Clusters: []workflows.ClusterStatus{
						{ID: "a", State: workflows.ClusterDone}, {ID: "b", State: workflows.ClusterDone}}},
					{Number: 2, State: workflows.BatchRunning, Counts: workflows.Counts{InFlight: 3}}, // detail from the child
					b3,
					{Number: 4, State: workflows.BatchPending, Counts: workflows.Counts{Pending: 2}},
				},
			}},
		}
	}
	// Batch 3 finishes between the rollout's query and its own: the first
	// snapshot cannot account for it, so the rollout is read again.
	reads := []workflows.RolloutStatus{
		parent(workflows.BatchStatus{Number: 3, State: workflows.BatchBaking, Counts: workflows.Counts{InFlight: 2}}),
		parent(workflows.BatchStatus{Number: 3, State: workflows.BatchCompleted, Counts: workflows.Counts{Done: 2}}),
	}
	child2 := workflows.BatchStatus{Number: 2, State: workflows.BatchPaused, Clusters: []workflows.ClusterStatus{
		{ID: "c", State: workflows.ClusterDone},
		{ID: "d", State: workflows.ClusterHeld, Broker: 2, Brokers: 3},
		{ID: "e", State: workflows.ClusterApplying},
	}}
	var (
		mu      sync.Mutex
		queried []string
	)
	f := &fakeSDK{
		query: func(id, name string) (any, error) {
			assert.Equal(t, workflows.QueryStatus, name)
			mu.Lock()
			defer mu.Unlock()
			queried = append(queried, id)
			switch id {
			case "rollout/x":
				st := reads[0]
				if len(reads) > 1 {
					reads = reads[1:]
				}
				return st, nil
			case "rollout/x/batch-2":
				return child2, nil
			case "rollout/x/batch-3":
				return nil, serviceerror.NewQueryFailed("workflow closed")
			}
			t.Fatalf("unexpected query of %s", id)
			return nil, nil
		},
		describe: func(id string) (enumspb.WorkflowExecutionStatus, error) {
			if id == "rollout/x" {
				return enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, nil
			}
			assert.Equal(t, "rollout/x/batch-3", id)
			return enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, nil
		},
	}
	st, err := New(f).Snapshot(context.Background(), "x")
	require.NoError(t, err)
	assert.Equal(t, []string{"rollout/x", "rollout/x/batch-2", "rollout/x/batch-3", "rollout/x", "rollout/x/batch-2"},
		append(append([]string{queried[0]}, sorted(queried[1:3])...), queried[3:]...))
	b2 := st.Phases[0].Batches[1]
	assert.Equal(t, workflows.BatchPaused, b2.State)
	assert.Len(t, b2.Clusters, 3)
	assert.Equal(t, workflows.Counts{Done: 1, Held: 1, InFlight: 1}, b2.Counts)
	assert.Equal(t, workflows.BatchCompleted, st.Phases[0].Batches[2].State)
	// 2 (batch 1) + 1 (batch 2) + 2 (batch 3) done, counted once; batch 4 pending.
	assert.Equal(t, workflows.Counts{Done: 5, Held: 1, InFlight: 1, Pending: 2}, st.Counts)
	assert.Empty(t, st.Inconsistent)
	assert.Equal(t, ExecRunning, st.Execution.Status)
	assert.False(t, st.Stale)
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func TestStatusBatchErrorWhileRunningIsAnError(t *testing.T) {
	parent := workflows.RolloutStatus{Name: "x", State: workflows.StateRunning, Total: 1,
		Phases: []workflows.PhaseStatus{{Name: "p", Batches: []workflows.BatchStatus{{Number: 1, State: workflows.BatchRunning}}}}}
	f := &fakeSDK{
		query: func(id, _ string) (any, error) {
			if id == "rollout/x" {
				return parent, nil
			}
			return nil, serviceerror.NewQueryFailed("boom")
		},
		describe: func(string) (enumspb.WorkflowExecutionStatus, error) {
			return enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, nil
		},
	}
	_, err := New(f).Status(context.Background(), "rollout/x")
	assert.ErrorContains(t, err, "rollout/x/batch-1")
}

func TestWorkflowTypeMatchesRegistration(t *testing.T) {
	assert.Equal(t, workflows.WorkflowRollout, RolloutWorkflowType)
}
