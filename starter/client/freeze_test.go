package client

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	sdkclient "go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/fleet-rollout/fleet/workflows"
)

// freezeFakeSDK implements the sdkclient.Client calls the freeze methods
// make; any other call panics on the nil embedded interface.
type freezeFakeSDK struct {
	sdkclient.Client
	startOpts  *sdkclient.StartWorkflowOptions
	startWF    any
	startArgs  []any
	updateOpts *sdkclient.UpdateWorkflowOptions
	answer     func(opts sdkclient.UpdateWorkflowOptions) (any, error)
	query      func(id, name string) (any, error)
}

type freezeStartOp struct{}

func (freezeStartOp) Get(context.Context) (sdkclient.WorkflowRun, error) { return nil, nil }

func (f *freezeFakeSDK) NewWithStartWorkflowOperation(opts sdkclient.StartWorkflowOptions, wf any, args ...any) sdkclient.WithStartWorkflowOperation {
	f.startOpts, f.startWF, f.startArgs = &opts, wf, args
	return freezeStartOp{}
}

func (f *freezeFakeSDK) UpdateWithStartWorkflow(_ context.Context, opts sdkclient.UpdateWithStartWorkflowOptions) (sdkclient.WorkflowUpdateHandle, error) {
	if _, ok := opts.StartWorkflowOperation.(freezeStartOp); !ok {
		return nil, errors.New("start operation not from NewWithStartWorkflowOperation")
	}
	f.updateOpts = &opts.UpdateOptions
	v, err := f.answer(opts.UpdateOptions)
	return freezeHandle{v: v, err: err}, nil
}

func (f *freezeFakeSDK) UpdateWorkflow(_ context.Context, opts sdkclient.UpdateWorkflowOptions) (sdkclient.WorkflowUpdateHandle, error) {
	f.updateOpts = &opts
	v, err := f.answer(opts)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return nil, err // the server refuses an update to a missing workflow up front
	}
	return freezeHandle{v: v, err: err}, nil
}

func (f *freezeFakeSDK) QueryWorkflow(_ context.Context, id, _ string, name string, _ ...any) (converter.EncodedValue, error) {
	v, err := f.query(id, name)
	if err != nil {
		return nil, err
	}
	return freezeValue{v}, nil
}

type freezeValue struct{ v any }

func (j freezeValue) HasValue() bool { return j.v != nil }
func (j freezeValue) Get(p any) error {
	b, err := json.Marshal(j.v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, p)
}

type freezeHandle struct {
	v   any
	err error
}

func (freezeHandle) WorkflowID() string { return workflows.FreezeID }
func (freezeHandle) RunID() string      { return "" }
func (freezeHandle) UpdateID() string   { return "" }
func (h freezeHandle) Get(_ context.Context, p any) error {
	if h.err != nil {
		return h.err
	}
	return freezeValue{h.v}.Get(p)
}

func TestFreezeUsesUpdateWithStart(t *testing.T) {
	until := time.Date(2026, 3, 2, 18, 0, 0, 0, time.UTC)
	req := workflows.FreezeRequest{Actor: "alice", Reason: "incident 4711", Until: until}
	want := workflows.FreezeState{Freeze: &workflows.FreezeInfo{Actor: "alice", Reason: "incident 4711", Until: until,
		Since: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}}
	fake := &freezeFakeSDK{answer: func(sdkclient.UpdateWorkflowOptions) (any, error) { return want, nil }}

	st, err := New(fake).Freeze(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, want, st)

	require.NotNil(t, fake.startOpts)
	assert.Equal(t, workflows.FreezeID, fake.startOpts.ID)
	assert.Equal(t, workflows.TaskQueue, fake.startOpts.TaskQueue)
	assert.Equal(t, enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING, fake.startOpts.WorkflowIDConflictPolicy)
	assert.Equal(t, workflows.WorkflowFreeze, fake.startWF)
	assert.Equal(t, []any{workflows.FreezeInput{}}, fake.startArgs)

	require.NotNil(t, fake.updateOpts)
	assert.Equal(t, workflows.FreezeID, fake.updateOpts.WorkflowID)
	assert.Equal(t, workflows.FreezeUpdate, fake.updateOpts.UpdateName)
	assert.Equal(t, []any{req}, fake.updateOpts.Args)
	assert.Equal(t, sdkclient.WorkflowUpdateStageCompleted, fake.updateOpts.WaitForStage)
}

func TestFreezeRejectedCarriesTheWorkflowsReason(t *testing.T) {
	fake := &freezeFakeSDK{answer: func(sdkclient.UpdateWorkflowOptions) (any, error) {
		return nil, temporal.NewApplicationError("a reason is required to freeze", "")
	}}
	_, err := New(fake).Freeze(context.Background(), workflows.FreezeRequest{Actor: "alice"})
	var rej *RejectedError
	require.ErrorAs(t, err, &rej)
	assert.Equal(t, "a reason is required to freeze", rej.Message)
	assert.Equal(t, "freeze fleet/freeze: rejected: a reason is required to freeze", err.Error())
}

func TestUnfreeze(t *testing.T) {
	t.Run("lifted", func(t *testing.T) {
		fake := &freezeFakeSDK{answer: func(sdkclient.UpdateWorkflowOptions) (any, error) {
			return workflows.FreezeState{History: []workflows.FreezeInfo{{Actor: "alice"}}}, nil
		}}
		st, err := New(fake).Unfreeze(context.Background(), "bob", "fixed")
		require.NoError(t, err)
		assert.Nil(t, st.Freeze)
		assert.Len(t, st.History, 1)
		assert.Equal(t, workflows.UnfreezeUpdate, fake.updateOpts.UpdateName)
		assert.Equal(t, []any{workflows.ActionRequest{Actor: "bob", Reason: "fixed"}}, fake.updateOpts.Args)
	})
	t.Run("not frozen", func(t *testing.T) {
		fake := &freezeFakeSDK{answer: func(sdkclient.UpdateWorkflowOptions) (any, error) {
			return nil, temporal.NewApplicationError("no freeze is in force", "")
		}}
		_, err := New(fake).Unfreeze(context.Background(), "bob", "")
		assert.ErrorIs(t, err, ErrNotFrozen)
		var rej *RejectedError
		assert.ErrorAs(t, err, &rej)
	})
	t.Run("never frozen", func(t *testing.T) {
		fake := &freezeFakeSDK{answer: func(sdkclient.UpdateWorkflowOptions) (any, error) {
			return nil, serviceerror.NewNotFound("workflow not found for ID: fleet/freeze")
		}}
		_, err := New(fake).Unfreeze(context.Background(), "bob", "")
		assert.ErrorIs(t, err, ErrNotFrozen)
	})
}

func TestFreezeStatus(t *testing.T) {
	t.Run("never frozen", func(t *testing.T) {
		fake := &freezeFakeSDK{query: func(string, string) (any, error) {
			return nil, serviceerror.NewNotFound("workflow not found")
		}}
		st, err := New(fake).FreezeStatus(context.Background())
		require.NoError(t, err)
		assert.Nil(t, st.Freeze)
	})
	t.Run("frozen", func(t *testing.T) {
		info := &workflows.FreezeInfo{Actor: "alice", Reason: "incident", Until: time.Date(2026, 3, 2, 18, 0, 0, 0, time.UTC)}
		fake := &freezeFakeSDK{query: func(id, name string) (any, error) {
			assert.Equal(t, workflows.FreezeID, id)
			assert.Equal(t, workflows.QueryStatus, name)
			return workflows.FreezeState{Freeze: info}, nil
		}}
		st, err := New(fake).FreezeStatus(context.Background())
		require.NoError(t, err)
		assert.Equal(t, info, st.Freeze)
	})
}
