package app_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/temporalproto"
	sdkclient "go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/internal/app"
	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/policy"
	"github.com/fleet-rollout/fleet/internal/sim"
	"github.com/fleet-rollout/fleet/workflows"
)

// recordHistoriesEnv names the directory TestRecordHistories writes to.
const recordHistoriesEnv = "FLEET_RECORD_HISTORIES"

// recordClusters is the fleet size of every scenario: 29 of its clusters run
// Kafka (1 internal, 8 non-prod, 20 prod with seed 7), which keeps each
// recorded history small.
const recordClusters = 60

// TestRecordHistories records the workflow histories that the replay test
// (workflows/replay_test.go) replays against the current workflow code, so
// that an incompatible change to the workflows fails `make test`. It runs
// only when FLEET_RECORD_HISTORIES names the output directory:
//
//	FLEET_RECORD_HISTORIES=$PWD/workflows/testdata/histories/<release> go test -count=1 -run TestRecordHistories -timeout 20m ./internal/app/
//
// Each scenario is one rollout on its own in-process stack; once it is over,
// the rollout's history and up to three of its batches' are written as
// <dir>/<scenario>__<workflow ID with / as _>.json, in the JSON that
// `temporal workflow show --output json` writes and client.HistoryFromJSON
// reads. The replay test derives the workflow ID from the file name, so
// neither scenario names nor workflow IDs may contain "_".
func TestRecordHistories(t *testing.T) {
	dir := os.Getenv(recordHistoriesEnv)
	if dir == "" {
		t.Skip("set " + recordHistoriesEnv + " to the output directory to record workflow histories")
	}
	dir, err := filepath.Abs(dir)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	// One signal key for every scenario, kept with the histories: the
	// replayer seals and opens the signals with it (workflows/replay_test.go).
	key := make([]byte, 32)
	_, err = rand.Read(key)
	require.NoError(t, err)
	recordSignalKey = hex.EncodeToString(key)
	t.Cleanup(func() { recordSignalKey = "" })
	require.NoError(t, os.WriteFile(filepath.Join(dir, "signal.key"), []byte(recordSignalKey+"\n"), 0o644))

	t.Run("lanes-pause", func(t *testing.T) { recordLanesPause(t, dir) })
	t.Run("incident", func(t *testing.T) { recordIncident(t, dir) })
	t.Run("approvals", func(t *testing.T) { recordApprovals(t, dir) })
	t.Run("blackout", func(t *testing.T) { recordBlackout(t, dir) })
	t.Run("freeze", func(t *testing.T) { recordFreeze(t, dir) })
	if os.Getenv(recordSinceLongLivedEnv) != "" {
		// Scenarios the previous release cannot run.
		t.Run("continue-as-new", func(t *testing.T) { recordContinueAsNew(t, dir) })
		t.Run("cancel", func(t *testing.T) { recordCancel(t, dir) })
	}
	if os.Getenv(recordSinceRecoveryEnv) != "" {
		t.Run("rollback", func(t *testing.T) { recordRollback(t, dir) })
		t.Run("supersede", func(t *testing.T) { recordSupersede(t, dir) })
		t.Run("retry", func(t *testing.T) { recordRetry(t, dir) })
	}
}

// recordSinceRecoveryEnv, when set, also records the recovery scenarios
// (rollback, supersede, retry).
const recordSinceRecoveryEnv = "FLEET_RECORD_RECOVERY"

// recordRecoverySpec is a two-phase kafka rollout for the recovery scenarios.
func recordRecoverySpec(name, version, budget string) string {
	return fmt.Sprintf(`
name: %s
target: {version: %s}
selector: product=kafka
strategy:
  phases:
    - {name: canary, selector: "env in (internal, non-prod)", batchSize: 3, concurrency: 3}
    - {name: prod, selector: env=prod, batchSize: 5, concurrency: 5}
monitoring: {interval: 1s}
schedule: {windows: ignore}
%s`, name, version, budget)
}

// (h) A failure exceeds a zero budget whose onExceeded is rollback: the
// rollout aborts and starts its rollback, which completes.
func recordRollback(t *testing.T, dir string) {
	s := startStack(t, recordClusters, 30*time.Millisecond, []sim.Fault{{Version: "3.7.1", Product: fleet.ProductKafka, Fraction: 0.15, FailApply: true}})
	rec := newHistoryRecorder(t, s, dir, "rollback")
	ctx := context.Background()
	id, err := s.client.Start(ctx, parseSpec(t, recordRecoverySpec("replay-rb", "3.7.1", "errorBudget: {max: 0, onExceeded: rollback}")), "history-recorder")
	require.NoError(t, err)
	st := s.waitFor(t, id, "the end", terminal)
	require.NotEmpty(t, st.RollbackID, "the rollout started its rollback: %+v", st.Counts)
	rb := s.waitFor(t, st.RollbackID, "the end of the rollback", terminal)
	require.Equal(t, workflows.StateCompleted, rb.State)
	rec.rollout(id, st)
	rec.rollout(st.RollbackID, rb)
}

// (i) A hotfix supersedes a running rollout.
func recordSupersede(t *testing.T, dir string) {
	s := startStack(t, recordClusters, 40*time.Millisecond, nil)
	rec := newHistoryRecorder(t, s, dir, "supersede")
	ctx := context.Background()
	a, err := s.client.Start(ctx, parseSpec(t, recordRecoverySpec("replay-old", "3.7.1", "")), "history-recorder")
	require.NoError(t, err)
	s.waitFor(t, a, "clusters done and in flight", func(st *workflows.RolloutStatus) bool { return st.Counts.Done >= 3 && st.Counts.InFlight > 0 })
	b, err := s.client.Supersede(ctx, a, parseSpec(t, recordRecoverySpec("replay-hotfix", "3.7.2", "")), "oncall-alice", "3.7.1 leaks")
	require.NoError(t, err)
	stA := s.waitFor(t, a, "the end of the old rollout", terminal)
	stB := s.waitFor(t, b, "the end of the hotfix", terminal)
	require.Equal(t, workflows.StateCompleted, stB.State)
	rec.rollout(a, stA)
	rec.rollout(b, stB)
}

// (j) A failed cluster is retried within its paused rollout.
func recordRetry(t *testing.T, dir string) {
	s := startStack(t, recordClusters, 30*time.Millisecond, []sim.Fault{{Version: "3.7.1", Product: fleet.ProductKafka, Fraction: 0.15, FailApply: true}})
	rec := newHistoryRecorder(t, s, dir, "retry")
	ctx := context.Background()
	id, err := s.client.Start(ctx, parseSpec(t, recordRecoverySpec("replay-retry", "3.7.1", "errorBudget: {max: 50%}")), "history-recorder")
	require.NoError(t, err)
	s.waitFor(t, id, "a failure", func(st *workflows.RolloutStatus) bool { return st.Counts.Failed > 0 || terminal(st) })
	_, err = s.client.Pause(ctx, id, workflows.ActionRequest{Actor: "oncall-alice", Reason: "look"})
	require.NoError(t, err)
	require.NoError(t, s.dev.Sim.SetFaults(nil))
	_, err = s.client.Retry(ctx, id, nil, "oncall-alice", "fixed")
	require.NoError(t, err)
	_, err = s.client.Resume(ctx, id, workflows.ActionRequest{Actor: "oncall-alice", Reason: "go"})
	require.NoError(t, err)
	st := s.waitFor(t, id, "the end", terminal)
	require.Equal(t, workflows.StateCompleted, st.State)
	var last []int
	if n := len(st.Phases); n > 0 {
		for _, b := range st.Phases[n-1].Batches {
			last = append(last, b.Number)
		}
	}
	rec.rollout(id, st, last...)
}

// recordSignalKey, when set, is the signal key of the stacks the recorder
// starts (startStackWith).
var recordSignalKey string

// recordSinceLongLivedEnv, when set, also records the scenarios of releases
// with long-lived workflows (continue-as-new, cancellation as an abort).
const recordSinceLongLivedEnv = "FLEET_RECORD_LONG_LIVED"

// (f) A small history budget: the rollout continues as new between its
// phases and its batches as they go. The first and the last run of the
// rollout and of one batch are recorded.
const recordContinueAsNewSpec = `
name: replay-continued
target:
  version: 3.7.1
selector: product=kafka
strategy:
  phases:
    - name: canary
      selector: env in (internal, non-prod)
      batchSize: 4
      strict: true
    - name: prod
      selector: env=prod
      batchSize: 5
      concurrency: 10
monitoring:
  interval: 1s
schedule:
  windows: ignore
`

func recordContinueAsNew(t *testing.T, dir string) {
	s := startStack(t, recordClusters, 50*time.Millisecond, nil)
	first := newHistoryRecorder(t, s, dir, "continue-as-new-first")
	last := newHistoryRecorder(t, s, dir, "continue-as-new-last")
	ctx := context.Background()
	sp := parseSpec(t, recordContinueAsNewSpec)
	in := workflows.RolloutInput{Spec: *sp, Requester: "history-recorder", HistoryBudget: 40}
	run, err := first.sdk.ExecuteWorkflow(ctx, sdkclient.StartWorkflowOptions{ID: workflows.RolloutID(sp.Name), TaskQueue: workflows.TaskQueue},
		workflows.WorkflowRollout, in)
	require.NoError(t, err)
	var st workflows.RolloutStatus
	require.NoError(t, run.Get(ctx, &st))
	require.Equal(t, workflows.StateCompleted, st.State)
	// The rollout and the first two batches that continued as new.
	ids := []string{run.GetID()}
	for _, n := range batchesWhere(&st, func(workflows.BatchStatus) bool { return true }) {
		ids = append(ids, workflows.BatchID(run.GetID(), n))
	}
	recorded := 0
	for _, id := range ids {
		d, err := first.sdk.DescribeWorkflowExecution(ctx, id, "")
		require.NoError(t, err)
		info := d.GetWorkflowExecutionInfo()
		if info.GetFirstRunId() == info.GetExecution().GetRunId() {
			require.NotEqual(t, run.GetID(), id, "the rollout continued as new")
			continue
		}
		first.writeRun(id, info.GetFirstRunId())
		last.write(id, false)
		if recorded++; recorded == 3 {
			break
		}
	}
	require.Equal(t, 3, recorded, "the rollout and two batches continued as new")
}

// (g) A rollout cancelled from the Temporal client mid-batch: its batches
// abort their in-flight clusters, the rollout audits who cancelled.
func recordCancel(t *testing.T, dir string) {
	s := startStack(t, recordClusters, 300*time.Millisecond, nil)
	rec := newHistoryRecorder(t, s, dir, "cancel")
	ctx := context.Background()
	sp := parseSpec(t, strings.ReplaceAll(recordLanesSpec, "replay-lanes", "replay-cancel"))
	id, err := s.client.Start(ctx, sp, "history-recorder")
	require.NoError(t, err)
	mid := s.waitFor(t, id, "clusters in flight", func(st *workflows.RolloutStatus) bool { return st.Counts.InFlight >= 4 })
	running := batchesWhere(mid, func(b workflows.BatchStatus) bool {
		return b.State != workflows.BatchPending && b.State != workflows.BatchCompleted
	})
	require.NoError(t, rec.sdk.CancelWorkflow(ctx, id, ""))
	st := s.waitFor(t, id, "the end", terminal)
	require.Equal(t, workflows.StateAborted, st.State)
	rec.rollout(id, st, running...)
}

// (a) A non-strict phase in two lanes, paused by hand mid-phase while
// clusters are in flight (they are held), then resumed to completion.
const recordLanesSpec = `
name: replay-lanes
target:
  version: 3.7.1
selector: product=kafka
strategy:
  phases:
    - name: all
      batchSize: 3
      concurrency: 6
monitoring:
  interval: 1s
schedule:
  windows: ignore
`

func recordLanesPause(t *testing.T, dir string) {
	s := startStack(t, recordClusters, 150*time.Millisecond, nil)
	rec := newHistoryRecorder(t, s, dir, "lanes-pause")
	ctx := context.Background()
	id, err := s.client.Start(ctx, parseSpec(t, recordLanesSpec), "history-recorder")
	require.NoError(t, err)
	s.waitFor(t, id, "mid-phase with clusters in flight", func(st *workflows.RolloutStatus) bool {
		return st.Counts.Done >= 6 && st.Counts.InFlight >= 2
	})
	_, err = s.client.Pause(ctx, id, workflows.ActionRequest{Actor: "oncall-alice", Reason: "checking consumer lag"})
	require.NoError(t, err)
	paused := s.waitFor(t, id, "in-flight clusters held", func(st *workflows.RolloutStatus) bool {
		return st.Paused != nil && st.Counts.InFlight == 0
	})
	running := batchesWhere(paused, func(b workflows.BatchStatus) bool {
		return b.State != workflows.BatchPending && b.State != workflows.BatchCompleted
	})
	time.Sleep(2 * time.Second)
	_, err = s.client.Resume(ctx, id, workflows.ActionRequest{Actor: "oncall-alice", Reason: "lag is fine"})
	require.NoError(t, err)
	st := s.waitFor(t, id, "the end", terminal)
	require.Equal(t, workflows.StateCompleted, st.State, "%+v", st)
	rec.rollout(id, st, running...)
}

// (b) A monitor alert on some clusters pauses the rollout automatically; it
// is resumed, and aborted if a second alert pauses it again.
const recordIncidentSpec = `
name: replay-incident
target:
  version: 3.7.1
selector: product=kafka
strategy:
  phases:
    - name: all
      batchSize: 4
      concurrency: 8
monitoring:
  interval: 1s
schedule:
  windows: ignore
`

func recordIncident(t *testing.T, dir string) {
	fault := sim.Fault{Version: "3.7.1", Product: fleet.ProductKafka, Monitor: "kafka-under-replicated-partitions", Fraction: 0.1}
	var tripped []string
	for _, c := range sim.GenerateFleet(recordClusters, 7) {
		if c.Product == fleet.ProductKafka && fault.Trips(c, "3.7.1") {
			tripped = append(tripped, c.ID)
		}
	}
	require.NotEmpty(t, tripped, "the fault trips no selected cluster: raise its fraction")
	t.Logf("the fault trips %v", tripped)

	s := startStack(t, recordClusters, 30*time.Millisecond, []sim.Fault{fault})
	rec := newHistoryRecorder(t, s, dir, "incident")
	ctx := context.Background()
	id, err := s.client.Start(ctx, parseSpec(t, recordIncidentSpec), "history-recorder")
	require.NoError(t, err)
	st := s.waitFor(t, id, "an automatic pause", func(st *workflows.RolloutStatus) bool { return st.Paused != nil })
	require.NotNil(t, st.Paused.Incident, "paused by an incident: %+v", st.Paused)
	first := st.Paused.Incident.Batch
	s.waitFor(t, id, "in-flight clusters held", func(st *workflows.RolloutStatus) bool { return st.Counts.InFlight == 0 })
	_, err = s.client.Resume(ctx, id, workflows.ActionRequest{Actor: "oncall-alice", Reason: "one cluster, known issue"})
	require.NoError(t, err)
	st = s.waitFor(t, id, "the end or another pause", func(st *workflows.RolloutStatus) bool {
		return terminal(st) || st.Paused != nil
	})
	if !terminal(st) {
		_, err = s.client.Abort(ctx, id, workflows.ActionRequest{Actor: "oncall-alice", Reason: "a second alert: bad build"})
		require.NoError(t, err)
		st = s.waitFor(t, id, "the end", terminal)
	}
	t.Logf("rollout %s: %s, %d incidents, counts %+v", id, st.State, len(st.Incidents), st.Counts)
	prefer := []int{first}
	for _, inc := range st.Incidents {
		prefer = append(prefer, inc.Batch)
	}
	rec.rollout(id, st, prefer...)
}

// (c) Approval gates: the plan, then a gated phase, approved through the
// client by someone other than the requester.
const recordApprovalsSpec = `
name: replay-approvals
target:
  version: 3.7.1
selector: product=kafka
requirePlanApproval: true
strategy:
  phases:
    - name: canary
      selector: env in (internal, non-prod)
      batchSize: 5
      strict: true
      bake: 1s
    - name: prod
      selector: env=prod
      batchSize: 5
      concurrency: 10
      requireApproval: true
monitoring:
  interval: 1s
schedule:
  windows: ignore
`

func recordApprovals(t *testing.T, dir string) {
	s := startStack(t, recordClusters, 5*time.Millisecond, nil)
	rec := newHistoryRecorder(t, s, dir, "approvals")
	ctx := context.Background()
	id, err := s.client.Start(ctx, parseSpec(t, recordApprovalsSpec), "history-recorder")
	require.NoError(t, err)
	st := s.waitFor(t, id, "the plan gate", func(st *workflows.RolloutStatus) bool {
		return st.State == workflows.StateAwaitingApproval && st.PlanHash != ""
	})
	_, err = s.client.Approve(ctx, id, workflows.ApproveRequest{Actor: "approver-bob", PlanHash: st.PlanHash, Comment: "plan looks right"})
	require.NoError(t, err)
	s.waitFor(t, id, "the prod gate", func(st *workflows.RolloutStatus) bool {
		return st.State == workflows.StateAwaitingApproval && strings.Contains(st.WaitingFor, "phase prod")
	})
	_, err = s.client.Approve(ctx, id, workflows.ApproveRequest{Actor: "approver-bob", Phase: "prod", Comment: "canaries healthy"})
	require.NoError(t, err)
	st = s.waitFor(t, id, "the end", terminal)
	require.Equal(t, workflows.StateCompleted, st.State, "%+v", st)
	rec.rollout(id, st)
}

// (d) A global blackout from the worker's policy file that ends ~15 s after
// the stack starts: the first batches wait for it on a durable timer.
const recordBlackoutSpec = `
name: replay-blackout
target:
  version: 3.7.1
selector: product=kafka, env=prod
strategy:
  phases:
    - name: prod
      batchSize: 5
      concurrency: 10
monitoring:
  interval: 1s
schedule:
  windows: ignore
`

func recordBlackout(t *testing.T, dir string) {
	policyPath := filepath.Join(t.TempDir(), "policy.yaml")
	var blackoutEnd time.Time
	s := startStackWith(t, stackOptions{Clusters: recordClusters, BrokerTime: 5 * time.Millisecond, Configure: func(c *app.Config) {
		now := time.Now().UTC()
		blackoutEnd = now.Add(15 * time.Second).Truncate(time.Second)
		doc := fmt.Sprintf("blackouts:\n  - {name: replay-blackout, start: %s, end: %s, reason: \"recorded for the replay test\"}\n",
			now.Add(-time.Hour).Truncate(time.Second).Format(time.RFC3339), blackoutEnd.Format(time.RFC3339))
		require.NoError(t, os.WriteFile(policyPath, []byte(doc), 0o644))
		_, err := policy.Load(policyPath)
		require.NoError(t, err)
		c.PolicyPath = policyPath
	}})
	rec := newHistoryRecorder(t, s, dir, "blackout")
	ctx := context.Background()
	id, err := s.client.Start(ctx, parseSpec(t, recordBlackoutSpec), "history-recorder")
	require.NoError(t, err)
	st := s.waitFor(t, id, "the end", terminal)
	require.Equal(t, workflows.StateCompleted, st.State, "%+v", st)
	if time.Now().Before(blackoutEnd) {
		t.Errorf("the rollout finished before the blackout ended at %s", blackoutEnd)
	}
	rec.rollout(id, st)

	// The first batch waited for the blackout's end on one long timer.
	h := rec.history(workflows.BatchID(id, 1))
	longest := time.Duration(0)
	for _, e := range h.Events {
		if a := e.GetTimerStartedEventAttributes(); a != nil {
			longest = max(longest, a.GetStartToFireTimeout().AsDuration())
		}
	}
	t.Logf("batch 1's longest timer: %s", longest)
	if longest < 5*time.Second {
		t.Errorf("batch 1 did not wait for the blackout on a timer (longest timer %s)", longest)
	}
}

// (e) A fleet freeze mid-batch pauses the rollout; it is lifted and the
// rollout resumed to completion. The freeze workflow (fleet/freeze) keeps
// running, so its history is recorded open.
const recordFreezeSpec = `
name: replay-freeze
target:
  version: 3.7.1
selector: product=kafka, env=prod
strategy:
  phases:
    - name: prod
      batchSize: 5
      concurrency: 10
monitoring:
  interval: 1s
schedule:
  windows: ignore
`

func recordFreeze(t *testing.T, dir string) {
	s := startStack(t, recordClusters, 150*time.Millisecond, nil)
	rec := newHistoryRecorder(t, s, dir, "freeze")
	ctx := context.Background()
	id, err := s.client.Start(ctx, parseSpec(t, recordFreezeSpec), "history-recorder")
	require.NoError(t, err)
	s.waitFor(t, id, "clusters in flight", func(st *workflows.RolloutStatus) bool { return st.Counts.InFlight >= 3 })
	_, err = s.client.Freeze(ctx, workflows.FreezeRequest{
		Actor: "sre-oncall", Reason: "INC-1: regional network degradation", Until: time.Now().Add(time.Hour).UTC().Truncate(time.Second),
	})
	require.NoError(t, err)
	frozen := s.waitFor(t, id, "paused by the freeze, in-flight clusters held", func(st *workflows.RolloutStatus) bool {
		return st.Paused != nil && st.Counts.InFlight == 0
	})
	running := batchesWhere(frozen, func(b workflows.BatchStatus) bool {
		return b.State != workflows.BatchPending && b.State != workflows.BatchCompleted
	})
	_, err = s.client.Unfreeze(ctx, "sre-oncall", "network recovered")
	require.NoError(t, err)
	// The lift reaches the rollout by a broadcast: resume until it is accepted.
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := s.client.Resume(ctx, id, workflows.ActionRequest{Actor: "oncall-alice", Reason: "freeze lifted"})
		if err == nil {
			break
		}
		require.True(t, time.Now().Before(deadline), "resume after the freeze: %v", err)
		time.Sleep(200 * time.Millisecond)
	}
	st := s.waitFor(t, id, "the end", terminal)
	require.Equal(t, workflows.StateCompleted, st.State, "%+v", st)
	rec.rollout(id, st, running...)
	rec.write(workflows.FreezeID, true)
}

// batchesWhere lists the numbers of the rollout's batches that match.
func batchesWhere(st *workflows.RolloutStatus, match func(workflows.BatchStatus) bool) []int {
	var out []int
	for _, ph := range st.Phases {
		for _, b := range ph.Batches {
			if match(b) {
				out = append(out, b.Number)
			}
		}
	}
	return out
}

// historyRecorder writes one scenario's workflow histories.
type historyRecorder struct {
	t        *testing.T
	dir      string
	scenario string
	sdk      sdkclient.Client
}

func newHistoryRecorder(t *testing.T, s *stack, dir, scenario string) *historyRecorder {
	t.Helper()
	require.NotContains(t, scenario, "_", "the replay test reads workflow IDs from file names")
	sdk, err := app.Dial(s.dev.Config, zap.NewNop())
	require.NoError(t, err)
	t.Cleanup(sdk.Close)
	// A scenario recorded again replaces its files.
	old, err := filepath.Glob(filepath.Join(dir, scenario+"__*.json"))
	require.NoError(t, err)
	for _, f := range old {
		require.NoError(t, os.Remove(f))
	}
	return &historyRecorder{t: t, dir: dir, scenario: scenario, sdk: sdk}
}

// maxRecordedBatches is how many of a rollout's batches are recorded.
const maxRecordedBatches = 3

// rollout records the rollout's history and up to three of its batches':
// those in prefer first (e.g. the ones running when it paused), then the
// first batch of each phase, then in order.
func (r *historyRecorder) rollout(id string, st *workflows.RolloutStatus, prefer ...int) {
	r.t.Helper()
	r.write(id, false)
	candidates := slices.Clone(prefer)
	for _, ph := range st.Phases {
		if len(ph.Batches) > 0 {
			candidates = append(candidates, ph.Batches[0].Number)
		}
	}
	candidates = append(candidates, batchesWhere(st, func(workflows.BatchStatus) bool { return true })...)
	done := map[int]bool{}
	for _, n := range candidates {
		if len(done) == maxRecordedBatches {
			break
		}
		if done[n] {
			continue
		}
		bid := workflows.BatchID(id, n)
		if _, err := r.sdk.DescribeWorkflowExecution(context.Background(), bid, ""); err != nil {
			var nf *serviceerror.NotFound
			require.ErrorAs(r.t, err, &nf, "describe %s", bid)
			continue // a batch that never started
		}
		done[n] = true
		r.write(bid, false)
	}
}

// historyWhen fetches the workflow's history (its latest run). Unless open, it
// first waits until the workflow has closed; if open, until it is idle (its
// last event a completed workflow task).
func (r *historyRecorder) historyWhen(id string, open bool) *historypb.History {
	r.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(time.Minute)
	for {
		if !open {
			d, err := r.sdk.DescribeWorkflowExecution(ctx, id, "")
			require.NoError(r.t, err, "describe %s", id)
			if d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				require.True(r.t, time.Now().Before(deadline), "%s is still running", id)
				time.Sleep(200 * time.Millisecond)
				continue
			}
		}
		h := r.history(id)
		last := h.Events[len(h.Events)-1].GetEventType()
		if open && last != enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			require.True(r.t, time.Now().Before(deadline), "%s is not idle: last event %s", id, last)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		return h
	}
}

func (r *historyRecorder) history(id string) *historypb.History {
	return r.runHistory(id, "")
}

// runHistory fetches one run's history ("": the latest run).
func (r *historyRecorder) runHistory(id, runID string) *historypb.History {
	r.t.Helper()
	it := r.sdk.GetWorkflowHistory(context.Background(), id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(r.t, err, "history of %s", id)
		h.Events = append(h.Events, e)
	}
	require.NotEmpty(r.t, h.Events, "history of %s", id)
	return h
}

// write writes the workflow's history as <scenario>__<id, / as _>.json and
// checks that it reads back.
func (r *historyRecorder) write(id string, open bool) {
	r.t.Helper()
	r.save(id, r.historyWhen(id, open))
}

// writeRun writes one closed run's history (a run that continued as new).
func (r *historyRecorder) writeRun(id, runID string) {
	r.t.Helper()
	r.save(id, r.runHistory(id, runID))
}

func (r *historyRecorder) save(id string, h *historypb.History) {
	r.t.Helper()
	require.NotContains(r.t, id, "_", "the replay test reads workflow IDs from file names")
	b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(h)
	require.NoError(r.t, err)
	name := r.scenario + "__" + strings.ReplaceAll(id, "/", "_") + ".json"
	path := filepath.Join(r.dir, name)
	require.NoError(r.t, os.WriteFile(path, append(b, '\n'), 0o644))

	f, err := os.Open(path)
	require.NoError(r.t, err)
	defer f.Close()
	back, err := sdkclient.HistoryFromJSON(f, sdkclient.HistoryJSONOptions{})
	require.NoError(r.t, err, "read back %s", name)
	require.Len(r.t, back.Events, len(h.Events), name)
	r.t.Logf("%s: %d events, %d bytes, last %s", name, len(h.Events), len(b)+1, h.Events[len(h.Events)-1].GetEventType())
	if len(b) > 300<<10 {
		r.t.Logf("%s is larger than 300 KB: consider fewer clusters", name)
	}
}
