package app_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/api/workflowservice/v1"
	sdkclient "go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fleet-rollout/fleet/internal/app"
	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/workflows"
)

// cmdLog reads fleet.commands and fleet.status from the start (no consumer
// group) and keeps, per cluster of one rollout, every command and when the
// data plane reported it stopped (held or ended).
type cmdLog struct {
	mu      sync.Mutex
	rollout string
	cmds    map[string][]loggedCmd
	ended   map[string]time.Time
}

type loggedCmd struct {
	kind dataplane.CommandKind
	at   time.Time
}

func logCommands(t *testing.T, brokers []string, rollout string) *cmdLog {
	t.Helper()
	l := &cmdLog{rollout: rollout, cmds: map[string][]loggedCmd{}, ended: map[string]time.Time{}}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(dataplane.CommandsTopic, dataplane.StatusTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(l.record)
		}
	}()
	t.Cleanup(func() { cancel(); <-done; cl.Close() })
	return l
}

func (l *cmdLog) record(r *kgo.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch r.Topic {
	case dataplane.CommandsTopic:
		if cmd, err := dataplane.DecodeCommand(r.Value); err == nil && cmd.RolloutID == l.rollout {
			l.cmds[cmd.ClusterID] = append(l.cmds[cmd.ClusterID], loggedCmd{cmd.Kind, r.Timestamp})
		}
	case dataplane.StatusTopic:
		if st, err := dataplane.DecodeStatus(r.Value); err == nil && st.RolloutID == l.rollout && st.State.Terminal() {
			if _, ok := l.ended[st.ClusterID]; !ok {
				l.ended[st.ClusterID] = r.Timestamp
			}
		}
	}
}

// first is when a cluster first got a command of that kind (zero: never).
func (l *cmdLog) first(id string, kind dataplane.CommandKind) time.Time {
	for _, c := range l.cmds[id] {
		if c.kind == kind {
			return c.at
		}
	}
	return time.Time{}
}

const longLivedRollout = `
name: it-long-lived
target:
  version: 3.7.1
selector: product=kafka
strategy:
  phases:
    - name: all
      selector: env in (internal, non-prod, prod)
      batchSize: 10
      concurrency: 30
monitoring:
  interval: 1s
schedule:
  windows: ignore
`

// historyLengths returns the history length of each running batch of a rollout.
func historyLengths(t *testing.T, c sdkclient.Client, st *workflows.RolloutStatus) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, ph := range st.Phases {
		for _, b := range ph.Batches {
			if b.State == workflows.BatchCompleted || b.State == workflows.BatchAborted || b.State == workflows.BatchPending {
				continue
			}
			id := workflows.BatchID(st.ID, b.Number)
			d, err := c.DescribeWorkflowExecution(context.Background(), id, "")
			require.NoError(t, err, id)
			if d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				out[id] = d.GetWorkflowExecutionInfo().GetHistoryLength()
			}
		}
	}
	return out
}

func TestPausedRolloutStaysQuietAndCancelAbortsInFlightClusters(t *testing.T) {
	s := startStack(t, 300, 500*time.Millisecond, nil)
	ctx := context.Background()
	sdk, err := app.Dial(s.dev.Config, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	require.NoError(t, err)
	t.Cleanup(sdk.Close)
	id, err := s.client.Start(ctx, parseSpec(t, longLivedRollout), "alice")
	require.NoError(t, err)
	log := logCommands(t, s.dev.Config.KafkaBrokers, id)

	// Paused with every in-flight cluster held: the batches wait on their
	// signals and one long timer.
	s.waitFor(t, id, "clusters in flight", func(st *workflows.RolloutStatus) bool { return st.Counts.InFlight >= 20 })
	_, err = s.client.Pause(ctx, id, workflows.ActionRequest{Actor: "alice", Reason: "overnight"})
	require.NoError(t, err)
	st := s.waitFor(t, id, "every in-flight cluster held", func(st *workflows.RolloutStatus) bool {
		return st.Counts.InFlight == 0 && st.Counts.Held > 0
	})
	time.Sleep(3 * time.Second)
	before := historyLengths(t, sdk, st)
	require.NotEmpty(t, before)
	const quiet = time.Minute
	time.Sleep(quiet)
	after := historyLengths(t, sdk, st)
	for bid, n0 := range before {
		grew := after[bid] - n0
		t.Logf("%s: %d events in %s paused (history %d)", bid, grew, quiet, after[bid])
		require.LessOrEqual(t, grew, int64(5), "%s grew by %d events in a minute while paused", bid, grew)
	}

	// Resumed, then cancelled from the Temporal client mid-batch: every
	// cluster in flight gets abort, and no apply follows.
	_, err = s.client.Resume(ctx, id, workflows.ActionRequest{Actor: "alice", Reason: "found it"})
	require.NoError(t, err)
	s.waitFor(t, id, "clusters in flight again", func(st *workflows.RolloutStatus) bool { return st.Counts.InFlight >= 20 })
	cancelAt := time.Now()
	require.NoError(t, sdk.CancelWorkflow(ctx, id, ""))
	deadline := time.Now().Add(3 * time.Minute)
	for {
		d, err := sdk.DescribeWorkflowExecution(ctx, id, "")
		require.NoError(t, err)
		if d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, d.GetWorkflowExecutionInfo().GetStatus())
			break
		}
		require.True(t, time.Now().Before(deadline), "rollout still running 3 minutes after the cancel")
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // the last statuses reach the log
	require.Zero(t, s.dev.Sim.InFlight(), "no cluster goes on applying after the cancel")

	log.mu.Lock()
	defer log.mu.Unlock()
	var aborted, inFlight []string
	var firstAbort time.Time
	for cid := range log.cmds {
		applied := log.first(cid, dataplane.Apply)
		abort := log.first(cid, dataplane.Abort)
		if !abort.IsZero() && (firstAbort.IsZero() || abort.Before(firstAbort)) {
			firstAbort = abort
		}
		ended, done := log.ended[cid]
		if applied.IsZero() || (done && ended.Before(cancelAt)) {
			continue
		}
		if done && (abort.IsZero() || ended.Before(abort)) {
			// Finished on its own between the cancel and its abort.
			continue
		}
		inFlight = append(inFlight, cid)
		if !abort.IsZero() {
			aborted = append(aborted, cid)
		}
	}
	sort.Strings(inFlight)
	sort.Strings(aborted)
	require.NotEmpty(t, inFlight)
	require.Equal(t, inFlight, aborted, "every cluster in flight at the cancel got abort")
	for cid, cmds := range log.cmds {
		for _, c := range cmds {
			if c.kind == dataplane.Apply {
				require.False(t, c.at.After(firstAbort.Add(time.Second)), "%s: apply at %s after the first abort at %s", cid, c.at, firstAbort)
			}
		}
	}

	// The audit says who cancelled; the rollout reads as aborted.
	final, err := s.client.Status(ctx, id)
	require.NoError(t, err)
	require.Equal(t, workflows.StateAborted, final.State)
	var cancel *workflows.AuditEntry
	for i, a := range final.Audit {
		if a.Action == "cancel" {
			cancel = &final.Audit[i]
		}
	}
	require.NotNil(t, cancel, "the cancel is in the audit: %+v", final.Audit)
	require.NotEqual(t, "unknown", cancel.Actor)
	require.NotEmpty(t, strings.TrimSpace(cancel.Actor))
	t.Logf("cancel: %d clusters in flight aborted; audit: %s by %s (%s)", len(aborted), cancel.Action, cancel.Actor, cancel.Outcome)
}

const continuedRollout = `
name: it-continued
target:
  version: 3.7.1
selector: product=kafka
strategy:
  phases:
    - name: canary
      selector: env=internal
      batchSize: 10
      strict: true
    - name: rest
      selector: env in (non-prod, prod)
      batchSize: 20
      concurrency: 40
monitoring:
  interval: 1s
schedule:
  windows: ignore
`

// On the real server, with a small history budget: the rollout continues as
// new between its phases and the batches as they go, carrying their state,
// and every cluster is applied exactly once.
func TestRolloutAndBatchesContinueAsNewOnTheRealServer(t *testing.T) {
	s := startStack(t, 200, 20*time.Millisecond, nil)
	ctx := context.Background()
	sdk, err := app.Dial(s.dev.Config, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	require.NoError(t, err)
	t.Cleanup(sdk.Close)
	sp := parseSpec(t, continuedRollout)
	in := workflows.RolloutInput{Spec: *sp, Requester: "alice", HistoryBudget: 40}
	run, err := sdk.ExecuteWorkflow(ctx, sdkclient.StartWorkflowOptions{ID: workflows.RolloutID(sp.Name), TaskQueue: workflows.TaskQueue},
		workflows.WorkflowRollout, in)
	require.NoError(t, err)
	var res workflows.RolloutStatus
	require.NoError(t, run.Get(ctx, &res), "the chain of runs completes")
	require.Equal(t, workflows.StateCompleted, res.State)

	d, err := sdk.DescribeWorkflowExecution(ctx, run.GetID(), "")
	require.NoError(t, err)
	info := d.GetWorkflowExecutionInfo()
	for _, ph := range res.Phases {
		t.Logf("phase %s: %d batches", ph.Name, len(ph.Batches))
	}
	t.Logf("rollout: first run %s, current %s, history %d", info.GetFirstRunId(), info.GetExecution().GetRunId(), info.GetHistoryLength())
	require.NotEqual(t, info.GetFirstRunId(), info.GetExecution().GetRunId(), "the rollout continued as new")

	st, err := s.client.Status(ctx, run.GetID())
	require.NoError(t, err)
	require.Equal(t, res.Total, st.Counts.Done, "every cluster done: %+v", st.Counts)
	continuedBatches := 0
	for _, ph := range st.Phases {
		for _, b := range ph.Batches {
			d, err := sdk.DescribeWorkflowExecution(ctx, workflows.BatchID(run.GetID(), b.Number), "")
			require.NoError(t, err)
			if bi := d.GetWorkflowExecutionInfo(); bi.GetFirstRunId() != bi.GetExecution().GetRunId() {
				continuedBatches++
			}
			for _, c := range b.Clusters {
				require.Equal(t, 1, s.dev.Sim.ApplyStarts(c.ID), "%s applied exactly once", c.ID)
			}
		}
	}
	require.Positive(t, continuedBatches, "some batches continued as new")
	t.Logf("%d clusters, %d batches continued as new, rollout history now %d events", res.Total, continuedBatches, info.GetHistoryLength())
}

const hangingMonitorsRollout = `
name: it-hanging-monitors
target:
  version: 3.7.1
selector: product=kafka, env=prod
strategy:
  phases:
    - name: prod
      batchSize: 10
      concurrency: 20
monitoring:
  interval: 2s
  unknownGrace: 5s
schedule:
  windows: ignore
`

// A monitors API that accepts connections and never answers pauses the
// rollout within unknownGrace + one monitoring interval + 1 s of the last
// healthy read (at the latest, the moment the API stopped answering).
func TestHangingMonitorsPauseWithinTheGrace(t *testing.T) {
	s := startStack(t, 300, 300*time.Millisecond, nil)
	ctx := context.Background()
	id, err := s.client.Start(ctx, parseSpec(t, hangingMonitorsRollout), "alice")
	require.NoError(t, err)
	s.waitFor(t, id, "clusters in flight", func(st *workflows.RolloutStatus) bool { return st.Counts.InFlight >= 10 })
	hangAt := time.Now()
	s.dev.Datadog.SetHang(true)
	t.Cleanup(func() { s.dev.Datadog.SetHang(false) })
	paused := s.waitFor(t, id, "a health-unknown pause", func(st *workflows.RolloutStatus) bool { return st.Paused != nil })
	require.NotNil(t, paused.Paused.Incident)
	require.Equal(t, workflows.IncidentHealthUnknown, paused.Paused.Incident.Kind, paused.Paused.Reason)
	took := paused.Paused.At.Sub(hangAt)
	bound := 5*time.Second + 2*time.Second + time.Second
	t.Logf("paused %s after the monitors stopped answering (bound %s): %s", took.Round(10*time.Millisecond), bound, paused.Paused.Reason)
	require.LessOrEqual(t, took, bound)

	// Once the monitors answer again, a resume finishes the rollout. Other
	// batches' checks that were already failing when the first paused may
	// report after the resume and pause again (the safe way): those are
	// resumed too, but only those detected before the monitors came back.
	s.dev.Datadog.SetHang(false)
	backAt := time.Now()
	var st *workflows.RolloutStatus
	for i := 0; ; i++ {
		_, err = s.client.Resume(ctx, id, workflows.ActionRequest{Actor: "alice", Reason: "datadog is back"})
		require.NoError(t, err)
		st = s.waitFor(t, id, "the end or another pause", func(st *workflows.RolloutStatus) bool {
			return terminal(st) || st.Paused != nil
		})
		if terminal(st) {
			break
		}
		require.Less(t, i, 3, "paused again and again: %+v", st.Paused)
		require.NotNil(t, st.Paused.Incident)
		require.True(t, st.Paused.Incident.At.Before(backAt), "a pause for health detected after the monitors came back: %+v", st.Paused.Incident)
	}
	require.Equal(t, workflows.StateCompleted, st.State, "%+v", st.Paused)
}

const storyRollout = `
name: %s
target:
  version: 3.7.1
selector: product=kafka, env=prod, cloud in (%s)
strategy:
  phases:
    - name: prod
      batchSize: 10
      concurrency: 20
monitoring:
  interval: 1s
schedule:
  windows: ignore
`

// The Web UI and the temporal CLI tell the story: the RolloutState search
// attribute holds the fleet's own state (an aborted rollout is not
// "Completed"), batches carry a summary, rollouts their current details.
func TestWebUIShowsTheFleetsOwnStateSummaryAndDetails(t *testing.T) {
	s := startStack(t, 300, 50*time.Millisecond, nil)
	ctx := context.Background()
	sdk, err := app.Dial(s.dev.Config, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	require.NoError(t, err)
	t.Cleanup(sdk.Close)
	done, err := s.client.Start(ctx, parseSpec(t, fmt.Sprintf(storyRollout, "it-story-done", "aws")), "alice")
	require.NoError(t, err)
	aborted, err := s.client.Start(ctx, parseSpec(t, fmt.Sprintf(storyRollout, "it-story-aborted", "gcp, azure")), "alice")
	require.NoError(t, err)
	s.waitFor(t, aborted, "clusters in flight", func(st *workflows.RolloutStatus) bool { return st.Counts.InFlight > 0 })
	_, err = s.client.Abort(ctx, aborted, workflows.ActionRequest{Actor: "alice", Reason: "bad build"})
	require.NoError(t, err)
	s.waitFor(t, done, "the end", terminal)
	s.waitFor(t, aborted, "the end", terminal)

	find := func(query string) []string {
		var ids []string
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := sdk.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
			require.NoError(t, err, query)
			ids = ids[:0]
			for _, e := range resp.GetExecutions() {
				ids = append(ids, e.GetExecution().GetWorkflowId())
			}
			if len(ids) > 0 || time.Now().After(deadline) {
				sort.Strings(ids)
				return ids
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	require.Equal(t, []string{aborted}, find("WorkflowType = 'Rollout' AND RolloutState = 'aborted'"))
	require.Equal(t, []string{done}, find("WorkflowType = 'Rollout' AND RolloutState = 'completed'"))
	require.NotEmpty(t, find(fmt.Sprintf("WorkflowType = 'Batch' AND RolloutName = 'it-story-aborted' AND RolloutState = '%s'", workflows.BatchAborted)))

	d, err := sdk.DescribeWorkflowExecution(ctx, workflows.BatchID(done, 1), "")
	require.NoError(t, err)
	var summary string
	require.NoError(t, converter.GetDefaultDataConverter().FromPayload(d.GetExecutionConfig().GetUserMetadata().GetSummary(), &summary))
	require.Contains(t, summary, "batch 1 of phase prod")

	for id, want := range map[string]string{done: "completed", aborted: "aborted"} {
		v, err := sdk.QueryWorkflow(ctx, id, "", "__temporal_workflow_metadata")
		require.NoError(t, err)
		var md sdkpb.WorkflowMetadata
		require.NoError(t, v.Get(&md))
		require.Contains(t, md.GetCurrentDetails(), want, id)
		t.Logf("%s: summary of batch 1 %q; details %q", id, summary, md.GetCurrentDetails())
	}
}
