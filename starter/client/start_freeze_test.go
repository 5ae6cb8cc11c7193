package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	sdkclient "go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/fleet-rollout/fleet/workflows"
)

func TestStartRefusedDuringFreeze(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	freeze := workflows.FreezeInfo{Actor: "alice", Reason: "incident 4711",
		Since: now.Add(-3 * time.Hour), Until: now.Add(6 * time.Hour)}
	var queried []string
	f := &fakeSDK{
		query: func(id, name string) (any, error) {
			queried = append(queried, id+" "+name)
			return workflows.FreezeState{Freeze: &freeze}, nil
		},
		execute: func(sdkclient.StartWorkflowOptions, any, ...any) (sdkclient.WorkflowRun, error) {
			t.Fatal("a rollout started during a freeze")
			return nil, nil
		},
	}
	c := New(f)
	c.now = func() time.Time { return now }
	_, err := c.Start(context.Background(), validSpec("kafka-3-7-1"), "bob")
	require.Error(t, err)
	assert.Equal(t, []string{workflows.FreezeID + " " + workflows.QueryStatus}, queried)
	assert.ErrorIs(t, err, ErrFrozen)
	var fe *FrozenError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "kafka-3-7-1", fe.Name)
	assert.Equal(t, freeze, fe.Freeze)
	assert.EqualError(t, err, `start rollout "kafka-3-7-1": the fleet is frozen by alice until 2026-03-02T18:00:00Z`+
		` (since 2026-03-02T09:00:00Z): incident 4711; no rollout starts until the freeze ends or is lifted (fleet unfreeze)`)
}

func TestStartAfterFreezeEnded(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	tests := map[string]workflows.FreezeState{
		"lifted": {History: []workflows.FreezeInfo{{Actor: "alice", Reason: "old", Until: now.Add(-time.Hour)}}},
		// The expiry timer is about to lift it; the rollout's own check
		// (activity CurrentFreeze) already treats it as over.
		"until passed": {Freeze: &workflows.FreezeInfo{Actor: "alice", Reason: "r", Until: now.Add(-time.Second)}},
	}
	for name, st := range tests {
		t.Run(name, func(t *testing.T) {
			started := false
			f := &fakeSDK{
				query: func(string, string) (any, error) { return st, nil },
				execute: func(opts sdkclient.StartWorkflowOptions, _ any, _ ...any) (sdkclient.WorkflowRun, error) {
					started = true
					return fakeRun{id: opts.ID}, nil
				},
			}
			c := New(f)
			c.now = func() time.Time { return now }
			id, err := c.Start(context.Background(), validSpec("x"), "bob")
			require.NoError(t, err)
			assert.Equal(t, "rollout/x", id)
			assert.True(t, started)
		})
	}
}

func TestStartFreezeStateUnreadableStartsNothing(t *testing.T) {
	f := &fakeSDK{
		query: func(string, string) (any, error) {
			return nil, serviceerror.NewQueryFailed("workflow task failed")
		},
		execute: func(sdkclient.StartWorkflowOptions, any, ...any) (sdkclient.WorkflowRun, error) {
			t.Fatal("a rollout started with the freeze state unknown")
			return nil, nil
		},
	}
	_, err := New(f).Start(context.Background(), validSpec("x"), "bob")
	assert.EqualError(t, err, `start rollout "x": cannot tell whether the fleet is frozen, so nothing started: `+
		`freeze status fleet/freeze: query failed: workflow task failed`)
	assert.False(t, errors.Is(err, ErrFrozen))
}

func TestPace(t *testing.T) {
	bake := 90 * time.Second
	req := workflows.PacingRequest{Actor: "alice", Concurrency: 50, Bake: &bake, Reason: "quiet hours"}
	var got sdkclient.UpdateWorkflowOptions
	f := &fakeSDK{update: func(opts sdkclient.UpdateWorkflowOptions) error {
		got = opts
		return nil
	}}
	res, err := New(f).Pace(context.Background(), "kafka-3-7-1", req)
	require.NoError(t, err)
	assert.Equal(t, "held 2 clusters", res.Message) // the fake's canned answer
	assert.Equal(t, "rollout/kafka-3-7-1", got.WorkflowID)
	assert.Equal(t, workflows.UpdatePacing, got.UpdateName)
	assert.Equal(t, []any{req}, got.Args)
	assert.Equal(t, sdkclient.WorkflowUpdateStageCompleted, got.WaitForStage)
}

func TestPaceRejectedKeepsMessage(t *testing.T) {
	f := &fakeSDK{update: func(sdkclient.UpdateWorkflowOptions) error {
		return temporal.NewApplicationError("concurrency 20000 is above the limit of 10000", "")
	}}
	_, err := New(f).Pace(context.Background(), "rollout/x", workflows.PacingRequest{Actor: "a", Concurrency: 20000})
	assert.EqualError(t, err, "pacing rollout/x: rejected: concurrency 20000 is above the limit of 10000")
	var rej *RejectedError
	require.ErrorAs(t, err, &rej)
	assert.Equal(t, "concurrency 20000 is above the limit of 10000", rej.Message)
}
