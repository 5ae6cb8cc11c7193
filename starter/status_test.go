package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/starter/client"
	"github.com/fleet-rollout/fleet/workflows"
)

// terminated is a rollout whose workflow the server terminated mid-phase:
// the last recorded numbers say 300 in flight.
func terminated() *client.Status {
	start := fixedNow.Add(-5 * time.Minute)
	closed := fixedNow.Add(-2 * time.Minute)
	return &client.Status{
		RolloutStatus: workflows.RolloutStatus{ID: "rollout/x", Name: "x", State: "terminated", Total: 300,
			StartedAt: start, FinishedAt: &closed, Counts: workflows.Counts{InFlight: 300},
			Audit: []workflows.AuditEntry{{At: closed, Actor: "alice@ops", Action: "terminated", Reason: "stuck", Outcome: "workflow closed"}}},
		Execution: client.Execution{Status: client.ExecTerminated, Reason: "stuck", Identity: "alice@ops", StartTime: start, CloseTime: &closed},
		Stale:     true,
	}
}

func TestStatusOfATerminatedRollout(t *testing.T) {
	e, out, _ := testEnv(t, &fakeAPI{full: []*client.Status{terminated()}})
	require.NoError(t, run(context.Background(), []string{"status", "x"}, e))
	s := out.String()
	assert.True(t, strings.HasPrefix(s, "WORKFLOW TERMINATED by alice@ops, 2m0s ago: stuck\n"), s)
	assert.Contains(t, s, "not live")
	assert.Contains(t, s, "State:           terminated")
	assert.Contains(t, s, "Workflow:        terminated by alice@ops: stuck")
	assert.Contains(t, s, "0/300 done, 300 in flight, 0 held, 0 failed, 0 aborted, 0 skipped, 0 pending (last recorded, not live)")
	assert.NotContains(t, s, "Waiting for")

	e, out, _ = testEnv(t, &fakeAPI{full: []*client.Status{terminated()}})
	require.NoError(t, run(context.Background(), []string{"status", "x", "--json"}, e))
	var got map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &got), out.String())
	assert.Equal(t, "terminated", got["state"])
	assert.Equal(t, true, got["stale"])
	x := got["execution"].(map[string]any)
	assert.Equal(t, "terminated", x["status"])
	assert.Equal(t, "stuck", x["reason"])
	assert.Equal(t, "alice@ops", x["identity"])
	assert.Equal(t, "x", got["name"], "the rollout's own fields stay at the top level")
}

func TestStatusNoWorkerForAClosedWorkflow(t *testing.T) {
	st := &client.Status{RolloutStatus: workflows.RolloutStatus{ID: "rollout/x", Name: "x", State: "timed-out"},
		Execution: client.Execution{Status: client.ExecTimedOut, Reason: "workflow run timeout (1h0m0s) reached"},
		Stale:     true, QueryError: "status rollout/x: query failed: no worker"}
	e, out, _ := testEnv(t, &fakeAPI{full: []*client.Status{st}})
	require.NoError(t, run(context.Background(), []string{"status", "x"}, e))
	assert.Contains(t, out.String(), "WORKFLOW TIMED-OUT: workflow run timeout (1h0m0s) reached")
	assert.Contains(t, out.String(), "Clusters:        unknown (no status could be read)")
	assert.NotContains(t, out.String(), "in flight")
}

func TestStatusRelativeTimesUseTheCallersClock(t *testing.T) {
	st := live(&workflows.RolloutStatus{Name: "x", State: workflows.StateRunning, Total: 1,
		StartedAt: fixedNow.Add(-75 * time.Second), Counts: workflows.Counts{Pending: 1}})
	e, out, _ := testEnv(t, &fakeAPI{full: []*client.Status{st}})
	require.NoError(t, run(context.Background(), []string{"status", "x"}, e))
	assert.Contains(t, out.String(), "(1m15s ago)")
}

func TestStatusSaysWhenTheSnapshotMayBeOff(t *testing.T) {
	st := live(&workflows.RolloutStatus{Name: "x", State: workflows.StateRunning, Total: 1, Counts: workflows.Counts{Pending: 1}})
	st.Inconsistent = []string{"batches [3] in flight could not be read"}
	e, out, _ := testEnv(t, &fakeAPI{full: []*client.Status{st}})
	require.NoError(t, run(context.Background(), []string{"status", "x"}, e))
	assert.Contains(t, out.String(), "Note:            the counts may be off (batches [3] in flight could not be read)")
}

func TestWatchStopsWhenTheWorkflowIsTerminated(t *testing.T) {
	running := live(&workflows.RolloutStatus{Name: "x", State: workflows.StateRunning, Total: 300,
		Counts: workflows.Counts{InFlight: 200, Pending: 100}})
	e, out, _ := testEnv(t, &fakeAPI{full: []*client.Status{running, terminated()}})
	err := run(context.Background(), []string{"watch", "x"}, e)
	require.EqualError(t, err, `rollout "x" stopped: its workflow was terminated by alice@ops: stuck; the clusters it had in flight were left as they were`)
	assert.Equal(t, 1, report(&bytes.Buffer{}, err))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 3, out.String())
	assert.Contains(t, lines[0], "running: 0/300 done, 200 in flight")
	assert.Contains(t, lines[1], "workflow terminated by alice@ops: stuck: last recorded, not live: 0/300 done, 300 in flight")
	assert.Equal(t, `Rollout "x": workflow terminated by alice@ops: stuck: last recorded, not live: 0/300 done, 300 in flight, 0 held, 0 failed, 0 aborted, 0 skipped, 0 pending`, lines[2])
}

func TestListShowsClosedRolloutsWithTheirReason(t *testing.T) {
	start := fixedNow.Add(-time.Hour)
	closed := fixedNow.Add(-time.Minute)
	list := []client.Summary{
		{ID: "rollout/a", Name: "a", Status: client.ExecRunning, StartTime: start},
		{ID: "rollout/x", Name: "x", Status: client.ExecTerminated, StartTime: start, CloseTime: &closed, Reason: "stuck", Identity: "alice@ops"},
	}
	e, out, _ := testEnv(t, &fakeAPI{list: list})
	require.NoError(t, run(context.Background(), []string{"list"}, e))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 3, out.String())
	assert.Regexp(t, `^NAME\s+STATUS\s+STARTED\s+CLOSED\s+REASON$`, lines[0])
	assert.Regexp(t, `^a\s+running\s+2026-03-01 11:00:00 UTC\s+-$`, lines[1])
	assert.Regexp(t, `^x\s+terminated\s+.*2026-03-01 11:59:00 UTC\s+by alice@ops: stuck$`, lines[2])

	e, out, _ = testEnv(t, &fakeAPI{list: list})
	require.NoError(t, run(context.Background(), []string{"list", "--json"}, e))
	var got []map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &got))
	assert.Equal(t, "terminated", got[1]["status"])
	assert.Equal(t, "stuck", got[1]["reason"])
}

func TestHelpDefinesInFlight(t *testing.T) {
	for _, cmd := range []string{"status", "watch"} {
		e, out, _ := testEnv(t, nil)
		require.NoError(t, run(context.Background(), []string{cmd, "-h"}, e))
		assert.Contains(t, out.String(), "in flight = being changed now (applying, or holding")
	}
}
