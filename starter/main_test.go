package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/starter/client"
	"github.com/fleet-rollout/fleet/workflows"
)

// fakeAPI records calls and answers with canned values.
type fakeAPI struct {
	calls    []string
	statuses []*workflows.RolloutStatus // successive Status answers; the last repeats
	// full, when set, replaces statuses: successive client.Status answers.
	full []*client.Status
	// list answers List.
	list    []client.Summary
	started *spec.Rollout
	// freeze answers FreezeStatus, Freeze and Unfreeze (see freeze_test.go).
	freeze workflows.FreezeState
	// err, when set, is what Start, Pace, Freeze and Unfreeze return.
	err error
	// source answers Source; recoveryErr is what Rollback, Supersede and
	// Retry return; retry answers Retry (see recovery_test.go).
	source      *workflows.RolloutSource
	recoveryErr error
	retry       client.RetryResult
	// schedules answers Schedules and CancelSchedule (see schedule_test.go).
	schedules []client.Scheduled
}

func (f *fakeAPI) Start(_ context.Context, r *spec.Rollout, requester string) (string, error) {
	f.started = r
	f.calls = append(f.calls, fmt.Sprintf("start %s by %s", r.Name, requester))
	if f.err != nil {
		return "", f.err
	}
	return workflows.RolloutID(r.Name), nil
}

func (f *fakeAPI) Snapshot(_ context.Context, id string) (*client.Status, error) {
	f.calls = append(f.calls, "status "+id)
	if len(f.full) > 0 {
		st := f.full[0]
		if len(f.full) > 1 {
			f.full = f.full[1:]
		}
		return st, nil
	}
	if len(f.statuses) == 0 {
		return nil, &client.NotFoundError{Name: workflows.RolloutName(id)}
	}
	st := f.statuses[0]
	if len(f.statuses) > 1 {
		f.statuses = f.statuses[1:]
	}
	return &client.Status{RolloutStatus: *st, Execution: client.Execution{Status: client.ExecRunning}}, nil
}

func (f *fakeAPI) action(name, id string, req workflows.ActionRequest) (workflows.ActionResult, error) {
	f.calls = append(f.calls, fmt.Sprintf("%s %s actor=%s reason=%q", name, id, req.Actor, req.Reason))
	return workflows.ActionResult{State: workflows.StatePaused, Message: "2 clusters held"}, nil
}

func (f *fakeAPI) Pause(_ context.Context, id string, req workflows.ActionRequest) (workflows.ActionResult, error) {
	return f.action("pause", id, req)
}

func (f *fakeAPI) Resume(_ context.Context, id string, req workflows.ActionRequest) (workflows.ActionResult, error) {
	return f.action("resume", id, req)
}

func (f *fakeAPI) Abort(_ context.Context, id string, req workflows.ActionRequest) (workflows.ActionResult, error) {
	return f.action("abort", id, req)
}

func (f *fakeAPI) Approve(_ context.Context, id string, req workflows.ApproveRequest) (workflows.ActionResult, error) {
	f.calls = append(f.calls, fmt.Sprintf("approve %s actor=%s plan=%q phase=%q comment=%q", id, req.Actor, req.PlanHash, req.Phase, req.Comment))
	return workflows.ActionResult{State: workflows.StateRunning}, nil
}

func (f *fakeAPI) List(_ context.Context, open bool) ([]client.Summary, error) {
	f.calls = append(f.calls, fmt.Sprintf("list open=%v", open))
	return f.list, nil
}

// live wraps a rollout status as the client returns it for a running workflow.
func live(st *workflows.RolloutStatus) *client.Status {
	return &client.Status{RolloutStatus: *st, Execution: client.Execution{Status: client.ExecRunning}}
}

var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testEnv returns an env whose Temporal connection is api; a nil api fails
// the test if the command tries to connect.
func testEnv(t *testing.T, api rollouts) (*env, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	var out, errOut bytes.Buffer
	vars := map[string]string{"FLEET_USER": "alice", "USER": "someone-else"}
	return &env{
		stdout: &out,
		stderr: &errOut,
		getenv: func(k string) string { return vars[k] },
		connect: func(context.Context, config) (rollouts, func(), error) {
			if api == nil {
				t.Fatalf("the command contacted Temporal")
			}
			return api, func() {}, nil
		},
		loadInventory: func(context.Context, string) ([]fleet.Cluster, error) {
			t.Fatalf("the command read the inventory")
			return nil, nil
		},
		interval: time.Millisecond,
		now:      func() time.Time { return fixedNow },
	}, &out, &errOut
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"deploy"}, `unknown command "deploy"`},
		{[]string{"start"}, "start: -f FILE is required"},
		{[]string{"start", "--watch"}, "start: -f FILE is required"},
		{[]string{"start", "-f", "a.yaml", "extra"}, `start: unexpected argument "extra"`},
		{[]string{"plan", "--json"}, "plan: -f FILE is required"},
		{[]string{"list", "extra"}, `list: unexpected argument "extra"`},
		{[]string{"status", "--by", "zone"}, `status: --by: unknown dimension "zone"`}, // no ID: the fleet view
		{[]string{"status", "a", "b"}, `status: unexpected argument "b"`},
		{[]string{"status", "x", "--nope"}, "status: flag provided but not defined: -nope"},
		{[]string{"watch"}, "watch: missing rollout ID"},
		{[]string{"pause", "x"}, "pause: --reason is required"},
		{[]string{"pause", "x", "--reason", "  "}, "pause: --reason is required"},
		{[]string{"pause", "--reason", "db"}, "pause: missing rollout ID"},
		{[]string{"pause", "x", "--reason"}, "pause: flag needs an argument: -reason"},
		{[]string{"abort", "x"}, "abort: --reason is required"},
		{[]string{"resume"}, "resume: missing rollout ID"},
		{[]string{"approve", "x"}, "approve: one of --plan HASH or --phase NAME is required"},
		{[]string{"approve", "x", "--plan", "abc", "--phase", "prod"}, "approve: give --plan or --phase, not both"},
		{[]string{"help", "deploy"}, `help: unknown command "deploy"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			e, _, _ := testEnv(t, nil)
			err := run(context.Background(), tt.args, e)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			var stderr bytes.Buffer
			assert.Equal(t, 2, report(&stderr, err))
			assert.True(t, strings.HasPrefix(stderr.String(), "fleet: "), stderr.String())
		})
	}
}

func TestCommandsCallTheClient(t *testing.T) {
	tests := []struct {
		args []string
		call string
		out  string
	}{
		{[]string{"pause", "x", "--reason", "db maintenance"}, `pause x actor=alice reason="db maintenance"`, "rollout/x is now paused: 2 clusters held"},
		{[]string{"pause", "--reason=r", "rollout/x"}, `pause rollout/x actor=alice reason="r"`, "rollout/x is now paused"},
		{[]string{"resume", "x"}, `resume x actor=alice reason=""`, "rollout/x is now paused"},
		{[]string{"abort", "x", "-reason", "bad build"}, `abort x actor=alice reason="bad build"`, ""},
		{[]string{"approve", "x", "--phase", "prod", "--comment", "lgtm"}, `approve x actor=alice plan="" phase="prod" comment="lgtm"`, "rollout/x is now running"},
		{[]string{"approve", "rollout/x", "--plan", "3f2a"}, `approve rollout/x actor=alice plan="3f2a" phase="" comment=""`, ""},
		{[]string{"list"}, "list open=true", "No running or recently closed rollouts"},
		{[]string{"list", "--all", "--json"}, "list open=false", "[]"},
		{[]string{"status", "x", "--json"}, "status x", `"state": "running"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			api := &fakeAPI{statuses: []*workflows.RolloutStatus{{Name: "x", State: workflows.StateRunning}}}
			e, out, _ := testEnv(t, api)
			require.NoError(t, run(context.Background(), tt.args, e))
			assert.Equal(t, []string{tt.call}, api.calls)
			assert.Contains(t, out.String(), tt.out)
		})
	}
}

func TestHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"help"}, []string{"Usage:", "fleet pause ID --reason R", "TEMPORAL_ADDRESS", "FLEET_INVENTORY"}},
		{[]string{"--help"}, []string{"fleet approve ID (--plan HASH | --phase NAME) [--comment C]"}},
		{[]string{"pause", "-h"}, []string{"Usage: fleet pause ID --reason R", "--reason"}},
		{[]string{"help", "start"}, []string{"Usage: fleet start -f FILE", "-f FILE", "--watch", "--wait"}},
		{[]string{"approve", "--help"}, []string{"--plan HASH", "--phase NAME", "--comment"}},
		{[]string{"status", "-h"}, []string{"Usage: fleet status ID [--json]"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			e, out, _ := testEnv(t, nil)
			require.NoError(t, run(context.Background(), tt.args, e))
			for _, w := range tt.want {
				assert.Contains(t, out.String(), w)
			}
		})
	}
}

func TestStartMalformedSpecNeverContactsTemporal(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rollout.yaml")
	// Line 12 holds the bad batch size.
	doc := `name: kafka-3-7-1
target:
  version: 3.7.1
selector: product=kafka
strategy:
  phases:
    - name: canary
      selector: env=internal
      batchSize: "1"
    - name: prod
      selector: env=prod
      batchSize: lots
`
	require.NoError(t, os.WriteFile(path, []byte(doc), 0o644))

	for _, args := range [][]string{
		{"start", "-f", path},
		{"start", "--watch", "--file", path},
		{"plan", "-f", path},
	} {
		t.Run(strings.Join(args[:len(args)-1], " "), func(t *testing.T) {
			e, out, _ := testEnv(t, nil) // connecting fails the test
			err := run(context.Background(), args, e)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "rollout.yaml:12")
			assert.Contains(t, err.Error(), "batchSize")
			assert.Equal(t, 2, report(&bytes.Buffer{}, err))
			assert.Empty(t, out.String())
			t.Log(err)
		})
	}
}

func TestStartMissingFile(t *testing.T) {
	e, _, _ := testEnv(t, nil)
	err := run(context.Background(), []string{"start", "-f", filepath.Join(t.TempDir(), "nope.yaml")}, e)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nope.yaml")
}

func TestRenderStatus(t *testing.T) {
	started := fixedNow.Add(-90 * time.Minute)
	pausedAt := fixedNow.Add(-5 * time.Minute)
	st := &workflows.RolloutStatus{
		ID: "rollout/kafka-3.7.1", Name: "kafka-3.7.1", Requester: "alice",
		TargetVersion: "3.7.1", State: workflows.StatePaused, PlanHash: "3f2a9c1e",
		Paused: &workflows.PauseReason{
			Actor: "monitor", Reason: "kafka-cpu-high alerting on kafka-prod-7", At: pausedAt,
			Incident: &workflows.Incident{Kind: workflows.IncidentMonitorAlert, Batch: 4, ClusterID: "kafka-prod-7",
				Monitor: "kafka-cpu-high", Message: "CPU 97%", At: pausedAt},
		},
		Total:  20,
		Counts: workflows.Counts{Done: 6, InFlight: 1, Held: 2, Failed: 1, Pending: 10},
		Phases: []workflows.PhaseStatus{
			{Name: "canary", State: "completed", Batches: []workflows.BatchStatus{
				{Number: 1, State: workflows.BatchCompleted, Counts: workflows.Counts{Done: 2}},
			}},
			{Name: "prod", State: "running", RequireApproval: true, Batches: []workflows.BatchStatus{
				{Number: 2, State: workflows.BatchCompleted, Clusters: []workflows.ClusterStatus{
					{ID: "kafka-prod-1", State: workflows.ClusterDone},
					{ID: "kafka-prod-2", State: workflows.ClusterFailed, Message: "apply timed out"},
				}},
				{Number: 4, State: workflows.BatchPaused, Clusters: []workflows.ClusterStatus{
					{ID: "kafka-prod-6", State: workflows.ClusterDone},
					{ID: "kafka-prod-7", State: workflows.ClusterHeld, Broker: 2, Brokers: 3, Message: "held before broker 3"},
					{ID: "kafka-prod-8", State: workflows.ClusterHeld, Broker: 1, Brokers: 6},
					{ID: "kafka-prod-9", State: workflows.ClusterHolding, Broker: 4, Brokers: 6},
				}},
				{Number: 5, State: workflows.BatchPending, Counts: workflows.Counts{Pending: 3}},
				{Number: 6, State: workflows.BatchPending, Counts: workflows.Counts{Pending: 3}, Clusters: []workflows.ClusterStatus{
					{ID: "kafka-prod-20", State: workflows.ClusterPending},
					{ID: "kafka-prod-21", State: workflows.ClusterPending},
					{ID: "kafka-prod-22", State: workflows.ClusterPending}}},
				{Number: 7, State: workflows.BatchPending, Counts: workflows.Counts{Pending: 4}},
			}},
		},
		Audit: []workflows.AuditEntry{
			{At: started, Actor: "alice", Action: "start", Outcome: "applied"},
			{At: pausedAt, Actor: "monitor", Action: "pause", Reason: "kafka-cpu-high", Outcome: "applied"},
			{At: pausedAt.Add(time.Minute), Actor: "bob", Action: "resume", Reason: "looking", Outcome: "rejected: incident open"},
		},
		StartedAt: started,
	}
	var b bytes.Buffer
	renderStatus(&b, live(st), fixedNow)
	out := b.String()
	t.Log("\n" + out)

	lines := strings.Split(out, "\n")
	has := func(parts ...string) {
		t.Helper()
		for _, l := range lines {
			ok := true
			for _, p := range parts {
				if !strings.Contains(l, p) {
					ok = false
					break
				}
			}
			if ok {
				return
			}
		}
		t.Errorf("no line has all of %q", parts)
	}
	has("Rollout:", "kafka-3.7.1 (rollout/kafka-3.7.1)")
	has("State:", "paused")
	has("Target version:", "3.7.1")
	has("Paused:", "by monitor: kafka-cpu-high alerting on kafka-prod-7", "2026-03-01 11:55:00 UTC")
	has("Incident:", "monitor-alert on kafka-prod-7", "monitor kafka-cpu-high", "CPU 97%")
	has("Clusters:", "6/20 done", "1 in flight", "2 held", "1 failed", "10 pending")
	has("Started:", "(1h30m0s ago)")
	has("prod (running, requires approval)")
	has("batch 1", "completed", "2/2")
	has("batch 2", "completed", "1/2")
	has("kafka-prod-2", "failed", "apply timed out")
	has("batch 4", "paused", "1/4")
	has("kafka-prod-7", "held", "broker 2/3", "held before broker 3")
	has("kafka-prod-8", "held", "broker 1/6")
	has("kafka-prod-9", "holding", "broker 4/6")
	has("batches 5-7", "pending", "0/10")
	has("fleet resume kafka-3.7.1")
	has("bob", "resume", "rejected: incident open", `"looking"`)
	assert.NotContains(t, out, "kafka-prod-1 ", "done clusters are not listed")
	assert.NotContains(t, out, "kafka-prod-6")
	assert.NotContains(t, out, "kafka-prod-20", "pending clusters are not listed")
}

func TestWatchLinesAndSummary(t *testing.T) {
	start := fixedNow.Add(-10 * time.Minute)
	end := fixedNow
	running := func(done int) *workflows.RolloutStatus {
		return &workflows.RolloutStatus{Name: "x", State: workflows.StateRunning, Total: 4, StartedAt: start,
			Counts: workflows.Counts{Done: done, InFlight: 1, Pending: 3 - done}}
	}
	paused := &workflows.RolloutStatus{Name: "x", State: workflows.StatePaused, Total: 4, StartedAt: start,
		Paused: &workflows.PauseReason{Actor: "bob", Reason: "db maintenance"},
		Counts: workflows.Counts{Done: 1, Held: 1, Pending: 2}}
	done := &workflows.RolloutStatus{Name: "x", State: workflows.StateCompleted, Total: 4, StartedAt: start, FinishedAt: &end,
		Counts: workflows.Counts{Done: 4}}
	api := &fakeAPI{statuses: []*workflows.RolloutStatus{running(0), running(0), running(1), paused, paused, done}}
	e, out, _ := testEnv(t, api)
	require.NoError(t, run(context.Background(), []string{"watch", "x"}, e))
	got := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, got, 5, out.String())
	assert.Equal(t, "2026-03-01T12:00:00Z running: 0/4 done, 1 in flight, 0 held, 0 failed, 0 aborted, 0 skipped, 3 pending", got[0])
	assert.Contains(t, got[1], "running: 1/4 done")
	assert.Contains(t, got[2], "paused (by bob: db maintenance): 1/4 done")
	assert.Contains(t, got[3], "completed: 4/4 done")
	assert.Equal(t, `Rollout "x" completed in 10m0s: 4/4 done, 0 in flight, 0 held, 0 failed, 0 aborted, 0 skipped, 0 pending`, got[4])
}

func TestWatchAbortedExitsNonZero(t *testing.T) {
	aborted := &workflows.RolloutStatus{Name: "x", State: workflows.StateAborted, Total: 2,
		Counts: workflows.Counts{Done: 1, Aborted: 1},
		Audit:  []workflows.AuditEntry{{Actor: "bob", Action: workflows.Abort, Reason: "bad build", Outcome: "applied"}}}
	e, out, _ := testEnv(t, &fakeAPI{statuses: []*workflows.RolloutStatus{aborted}})
	err := run(context.Background(), []string{"watch", "rollout/x"}, e)
	require.EqualError(t, err, `rollout "x" was aborted`)
	assert.Equal(t, 1, report(&bytes.Buffer{}, err))
	assert.Contains(t, out.String(), "Aborted by bob: bad build")
}

func TestWatchNotFound(t *testing.T) {
	e, _, _ := testEnv(t, &fakeAPI{})
	err := run(context.Background(), []string{"watch", "ghost"}, e)
	require.EqualError(t, err, `rollout "ghost" not found`)
	assert.True(t, errors.Is(err, client.ErrNotFound))
}

func TestReport(t *testing.T) {
	var b bytes.Buffer
	assert.Equal(t, 0, report(&b, nil))
	assert.Equal(t, 1, report(&b, errors.New(`rollout "x" not found`)))
	assert.Equal(t, 2, report(&b, &exitError{code: 2, err: errors.New("rollout.yaml:3: name: required")}))
	assert.Equal(t, 2, report(&b, usagef("pause", "pause: --reason is required")))
	assert.Equal(t, 130, report(&b, context.Canceled))
	assert.Contains(t, b.String(), "fleet: rollout \"x\" not found\n")
	assert.Contains(t, b.String(), "fleet: rollout.yaml:3: name: required\n")
	assert.Contains(t, b.String(), "Run 'fleet pause -h' for usage.")
}

func TestConfigDefaults(t *testing.T) {
	e := &env{getenv: func(k string) string {
		if k == "USER" {
			return "carol"
		}
		return ""
	}}
	cfg := e.config()
	assert.Equal(t, config{Address: "localhost:7233", Namespace: "default",
		Inventory: "http://127.0.0.1:8089/v1/clusters", User: "carol"}, cfg)
}

func TestBarProgress(t *testing.T) {
	var b bytes.Buffer
	p := &barProgress{w: &b, lines: &lineProgress{w: &b, now: func() time.Time { return fixedNow }}}
	p.update(live(&workflows.RolloutStatus{Name: "x", State: workflows.StatePlanning}))
	p.update(live(&workflows.RolloutStatus{Name: "x", State: workflows.StateRunning, Total: 4,
		Counts: workflows.Counts{Done: 2, InFlight: 1, Pending: 1}}))
	p.update(live(&workflows.RolloutStatus{Name: "x", State: workflows.StatePaused, Total: 4,
		Paused: &workflows.PauseReason{Actor: "bob", Reason: "db"},
		Counts: workflows.Counts{Done: 3, Held: 1}}))
	p.finish()
	out := b.String()
	assert.Contains(t, out, "2026-03-01T12:00:00Z planning: 0/0 done")
	assert.Contains(t, out, "(2/4")
	assert.Contains(t, out, "running · 1 in flight")
	assert.Contains(t, out, "(3/4")
	assert.Contains(t, out, "paused (by bob: db) · 1 held")
	assert.True(t, strings.HasSuffix(out, "\n"))
}

func TestStartPrintsNextCommands(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rollout.yaml")
	doc := `name: kafka-3-7-1
target:
  version: 3.7.1
selector: product=kafka
strategy:
  preset: canary-then-waves
`
	require.NoError(t, os.WriteFile(path, []byte(doc), 0o644))
	api := &fakeAPI{}
	e, out, _ := testEnv(t, api)
	require.NoError(t, run(context.Background(), []string{"start", "-f", path}, e))
	assert.Equal(t, []string{"start kafka-3-7-1 by alice"}, api.calls)
	assert.NotEmpty(t, api.started.Strategy.Phases, "the spec is normalized before it starts")
	for _, want := range []string{
		`Started rollout "kafka-3-7-1" (workflow rollout/kafka-3-7-1).`,
		"fleet watch kafka-3-7-1",
		"fleet status kafka-3-7-1",
		"fleet pause kafka-3-7-1 --reason",
	} {
		assert.Contains(t, out.String(), want)
	}
	t.Log("\n" + out.String())
}

func TestPlanReadsInventoryNotTemporal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rollout.yaml")
	doc := `name: kafka-3-7-1
target:
  version: 3.7.1
selector: product=kafka
strategy:
  phases:
    - name: all
      batchSize: "1"
`
	require.NoError(t, os.WriteFile(path, []byte(doc), 0o644))
	inv := []fleet.Cluster{
		{ID: "k-1", Product: "kafka", Cloud: "aws", Region: "us-east-1", Environment: "internal", Customer: "a", Version: "3.6.0", Brokers: 3},
		{ID: "k-2", Product: "kafka", Cloud: "gcp", Region: "us-central1", Environment: "prod", Customer: "b", Version: "3.6.0", Brokers: 3},
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"plan", "-f", path}, "2 clusters to version 3.7.1"},
		{[]string{"plan", "-f", path, "--json"}, `"id": "k-2"`},
	} {
		t.Run(strings.Join(tt.args[2:], " "), func(t *testing.T) {
			e, out, _ := testEnv(t, nil) // connecting fails the test
			var ref string
			e.loadInventory = func(_ context.Context, r string) ([]fleet.Cluster, error) {
				ref = r
				return inv, nil
			}
			require.NoError(t, run(context.Background(), tt.args, e))
			assert.Equal(t, "http://127.0.0.1:8089/v1/clusters", ref)
			assert.Contains(t, out.String(), tt.want)
		})
	}
}
