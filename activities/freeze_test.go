package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"

	"github.com/fleet-rollout/fleet/workflows"
)

// freezeFakeTemporal implements the client.Client calls the freeze
// activities make; any other call panics on the nil embedded interface.
type freezeFakeTemporal struct {
	client.Client
	pages  [][]string // workflow IDs per visibility page
	signal func(id string) error
	query  func(id, name string) (any, error)

	mu      sync.Mutex
	queries []string
	signals map[string]workflows.FreezeState
}

func (f *freezeFakeTemporal) ListWorkflow(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	f.mu.Lock()
	f.queries = append(f.queries, req.GetQuery())
	f.mu.Unlock()
	page := 0
	if len(req.GetNextPageToken()) > 0 {
		fmt.Sscanf(string(req.GetNextPageToken()), "%d", &page)
	}
	resp := &workflowservice.ListWorkflowExecutionsResponse{}
	for _, id := range f.pages[page] {
		resp.Executions = append(resp.Executions, &workflowpb.WorkflowExecutionInfo{
			Execution: &commonpb.WorkflowExecution{WorkflowId: id, RunId: "run-" + id},
		})
	}
	if page+1 < len(f.pages) {
		resp.NextPageToken = []byte(fmt.Sprint(page + 1))
	}
	return resp, nil
}

func (f *freezeFakeTemporal) SignalWorkflow(_ context.Context, id, runID, name string, arg any) error {
	if runID != "" || name != workflows.SignalFreezeState {
		return fmt.Errorf("unexpected signal %s to %s run %q", name, id, runID)
	}
	if f.signal != nil {
		if err := f.signal(id); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.signals == nil {
		f.signals = map[string]workflows.FreezeState{}
	}
	f.signals[id] = arg.(workflows.FreezeState)
	return nil
}

func (f *freezeFakeTemporal) QueryWorkflow(_ context.Context, id, _ string, name string, _ ...any) (converter.EncodedValue, error) {
	v, err := f.query(id, name)
	if err != nil {
		return nil, err
	}
	return freezeJSONValue{v}, nil
}

type freezeJSONValue struct{ v any }

func (j freezeJSONValue) HasValue() bool { return j.v != nil }
func (j freezeJSONValue) Get(p any) error {
	b, err := json.Marshal(j.v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, p)
}

func TestBroadcastFreezeSignalsEveryRunningRolloutAcrossPages(t *testing.T) {
	fake := &freezeFakeTemporal{
		pages: [][]string{{"rollout/a", "rollout/b"}, {"rollout/c", "rollout/b"}, {"rollout/gone"}},
		signal: func(id string) error {
			if id == "rollout/gone" {
				return serviceerror.NewNotFound("workflow execution already completed")
			}
			return nil
		},
	}
	a := &FreezeActivities{Temporal: fake}
	st := workflows.FreezeState{Freeze: &workflows.FreezeInfo{Actor: "alice", Reason: "incident", Until: time.Now().Add(time.Hour)}}
	n, err := a.BroadcastFreeze(context.Background(), st)
	require.NoError(t, err)
	assert.Equal(t, 3, n, "a, b (once) and c; the finished one is skipped")
	ids := make([]string, 0, len(fake.signals))
	for id, got := range fake.signals {
		ids = append(ids, id)
		assert.Equal(t, st, got)
	}
	sort.Strings(ids)
	assert.Equal(t, []string{"rollout/a", "rollout/b", "rollout/c"}, ids)
	require.Len(t, fake.queries, 3)
	assert.Equal(t, "WorkflowType = 'Rollout' AND ExecutionStatus = 'Running'", fake.queries[0])
}

func TestBroadcastFreezeFailsWhenARolloutWasNotReached(t *testing.T) {
	fake := &freezeFakeTemporal{
		pages: [][]string{{"rollout/a", "rollout/b"}},
		signal: func(id string) error {
			if id == "rollout/b" {
				return serviceerror.NewUnavailable("frontend down")
			}
			return nil
		},
	}
	a := &FreezeActivities{Temporal: fake}
	n, err := a.BroadcastFreeze(context.Background(), workflows.FreezeState{})
	assert.Equal(t, 1, n)
	require.Error(t, err, "the activity fails so its retry reaches the missed rollout")
	assert.Contains(t, err.Error(), "1 of 2 rollouts not reached")
	assert.Contains(t, err.Error(), "rollout/b")
}

func TestCurrentFreeze(t *testing.T) {
	future := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	past := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	cases := []struct {
		name    string
		answer  any
		err     error
		want    *workflows.FreezeInfo
		wantErr string
	}{
		{name: "never frozen", err: serviceerror.NewNotFound("workflow not found")},
		{name: "not frozen", answer: workflows.FreezeState{History: []workflows.FreezeInfo{{Actor: "old"}}}},
		{name: "frozen", answer: workflows.FreezeState{
			Freeze:  &workflows.FreezeInfo{Actor: "alice", Reason: "incident", Until: future},
			History: []workflows.FreezeInfo{{Actor: "old"}},
		}, want: &workflows.FreezeInfo{Actor: "alice", Reason: "incident", Until: future}},
		{name: "end passed, lift not yet processed", answer: workflows.FreezeState{
			Freeze: &workflows.FreezeInfo{Actor: "alice", Reason: "incident", Until: past},
		}},
		{name: "query fails", err: errors.New("boom"), wantErr: "query freeze fleet/freeze: boom"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := &freezeFakeTemporal{query: func(id, name string) (any, error) {
				assert.Equal(t, workflows.FreezeID, id)
				assert.Equal(t, workflows.QueryStatus, name)
				return tc.answer, tc.err
			}}
			st, err := (&FreezeActivities{Temporal: fake}).CurrentFreeze(context.Background())
			if tc.wantErr != "" {
				require.EqualError(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, st.Freeze)
			assert.Empty(t, st.History, "rollouts get only the freeze in force")
		})
	}
}

func TestFreezeActivitiesRegisterByName(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	fake := &freezeFakeTemporal{
		pages: [][]string{{"rollout/a"}},
		query: func(string, string) (any, error) { return nil, serviceerror.NewNotFound("workflow not found") },
	}
	(&FreezeActivities{Temporal: fake}).Register(env)

	v, err := env.ExecuteActivity(workflows.ActivityBroadcastFreeze, workflows.FreezeState{})
	require.NoError(t, err)
	var n int
	require.NoError(t, v.Get(&n))
	assert.Equal(t, 1, n)

	v, err = env.ExecuteActivity(workflows.ActivityCurrentFreeze)
	require.NoError(t, err)
	var st workflows.FreezeState
	require.NoError(t, v.Get(&st))
	assert.Nil(t, st.Freeze)
}
