package app_test

// Whole-stack tests of what people see of a rollout: the order in which the
// fleet is touched, the status query and the Web UI's search attributes, the
// Slack thread and its buttons, and a cluster's history in fleet.events.
// Specs set schedule.windows: ignore: the simulated clusters' maintenance
// windows would otherwise hold them for days.
// They reuse startStackWith / waitFor / parseSpec from app_test.go; helpers
// here are prefixed with vis so they do not collide with other test files.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	sdkclient "go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/internal/app"
	"github.com/fleet-rollout/fleet/internal/events"
	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/identity"
	"github.com/fleet-rollout/fleet/internal/notify"
	"github.com/fleet-rollout/fleet/internal/sim"
	"github.com/fleet-rollout/fleet/starter/client"
	"github.com/fleet-rollout/fleet/workflows"
)

// --- helpers ---------------------------------------------------------------

// visDeadline bounds every wait: generous, for a loaded 2-core machine.
const visDeadline = 2 * time.Minute

// visEventually polls cond until it holds; on timeout it fails with what and
// cond's last explanation.
func visEventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(visDeadline)
	last := ""
	for time.Now().Before(deadline) {
		ok, why := cond()
		if ok {
			return
		}
		last = why
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last: %s", what, last)
}

// visCtx bounds one call to the stack: an update on a workflow that cannot
// make progress would otherwise wait forever.
func visCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// visSDK dials a plain Temporal client to the stack (visibility queries,
// waiting for a workflow's result).
func visSDK(t *testing.T, s *stack) sdkclient.Client {
	t.Helper()
	c, err := app.Dial(s.dev.Config, zap.NewNop())
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// visAwaitClosed waits until the workflow (following continue-as-new) has
// closed and returns its result: after it, every notification and event of
// the rollout has been sent (finish drains the outbox before returning).
func visAwaitClosed(t *testing.T, c sdkclient.Client, id string) workflows.RolloutStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), visDeadline)
	defer cancel()
	var st workflows.RolloutStatus
	require.NoError(t, c.GetWorkflow(ctx, id, "").Get(ctx, &st), "result of %s", id)
	// The result lists clusters only where something went wrong (it must stay
	// small at any fleet size); the status query has every cluster's detail.
	v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryStatus)
	require.NoError(t, err, "status of %s", id)
	require.NoError(t, v.Get(&st))
	return st
}

// visList returns the workflow IDs (with their types) matching a visibility query.
func visList(c sdkclient.Client, q string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out := map[string]string{}
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: q, NextPageToken: token})
		if err != nil {
			return nil, err
		}
		for _, e := range resp.GetExecutions() {
			out[e.GetExecution().GetWorkflowId()] = e.GetType().GetName()
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			return out, nil
		}
	}
}

// visFinds waits until the query's answer holds workflow id (visibility is
// eventually consistent) and returns the last answer.
func visFinds(t *testing.T, c sdkclient.Client, q, id string) map[string]string {
	t.Helper()
	var got map[string]string
	visEventually(t, fmt.Sprintf("%q to find %s", q, id), func() (bool, string) {
		var err error
		got, err = visList(c, q)
		if err != nil {
			return false, err.Error()
		}
		_, ok := got[id]
		return ok, fmt.Sprintf("found %v", got)
	})
	return got
}

// visClusters flattens a status into its clusters, with each one's phase.
func visClusters(st *workflows.RolloutStatus) (map[string]workflows.ClusterStatus, map[string]string) {
	cl := map[string]workflows.ClusterStatus{}
	phase := map[string]string{}
	for _, ph := range st.Phases {
		for _, b := range ph.Batches {
			for _, c := range b.Clusters {
				cl[c.ID] = c
				phase[c.ID] = ph.Name
			}
		}
	}
	return cl, phase
}

// visPosted is one chat.postMessage request as the Slack test server saw it.
type visPosted struct {
	TS        string
	Channel   string
	Text      string
	ThreadTS  string
	Broadcast bool
	Blocks    slack.Blocks
}

// visSlack is slacktest's server with a chat.postMessage handler that records
// every message and gives each a distinct ts (slacktest's own handler stamps
// the Unix second, so messages within a second would share a ts).
type visSlack struct {
	mu   sync.Mutex
	msgs []visPosted
	url  string
}

func visStartSlack(t *testing.T) *visSlack {
	t.Helper()
	rec := &visSlack{}
	srv := slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", rec.postMessage)
	})
	srv.Start()
	t.Cleanup(srv.Stop)
	rec.url = srv.GetAPIURL()
	return rec
}

func (rc *visSlack) postMessage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if err := r.ParseForm(); err != nil {
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "invalid_form_data"})
		return
	}
	p := visPosted{
		Channel:   r.PostForm.Get("channel"),
		Text:      r.PostForm.Get("text"),
		ThreadTS:  r.PostForm.Get("thread_ts"),
		Broadcast: r.PostForm.Get("reply_broadcast") == "true",
	}
	if raw := r.PostForm.Get("blocks"); raw != "" {
		if err := json.Unmarshal([]byte(raw), &p.Blocks); err != nil {
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "invalid_blocks"})
			return
		}
	}
	rc.mu.Lock()
	p.TS = fmt.Sprintf("1700000000.%06d", 100*(len(rc.msgs)+1))
	rc.msgs = append(rc.msgs, p)
	rc.mu.Unlock()
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": p.Channel, "ts": p.TS})
}

func (rc *visSlack) messages() []visPosted {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]visPosted(nil), rc.msgs...)
}

// headline is the message's first section: what happened.
func (p visPosted) headline() string {
	for _, b := range p.Blocks.BlockSet {
		if s, ok := b.(*slack.SectionBlock); ok && s.Text != nil {
			return s.Text.Text
		}
	}
	return ""
}

// allText is every text the message's blocks show.
func (p visPosted) allText() string {
	var parts []string
	for _, b := range p.Blocks.BlockSet {
		switch b := b.(type) {
		case *slack.SectionBlock:
			if b.Text != nil {
				parts = append(parts, b.Text.Text)
			}
			for _, f := range b.Fields {
				parts = append(parts, f.Text)
			}
		case *slack.ContextBlock:
			for _, e := range b.ContextElements.Elements {
				if o, ok := e.(*slack.TextBlockObject); ok {
					parts = append(parts, o.Text)
				}
			}
		}
	}
	return strings.Join(parts, "\n")
}

// buttons maps the message's button action IDs to their values.
func (p visPosted) buttons() map[string]string {
	out := map[string]string{}
	for _, b := range p.Blocks.BlockSet {
		a, ok := b.(*slack.ActionBlock)
		if !ok || a.Elements == nil {
			continue
		}
		for _, e := range a.Elements.ElementSet {
			if btn, ok := e.(*slack.ButtonBlockElement); ok {
				out[btn.ActionID] = btn.Value
			}
		}
	}
	return out
}

// event names the notification a message renders, from its headline emoji.
func (p visPosted) event() workflows.NotifyEvent {
	h := p.headline()
	switch {
	case strings.HasPrefix(h, ":rocket:"):
		return workflows.NotifyStarted
	case strings.HasPrefix(h, ":raised_hand:"):
		return workflows.NotifyApproval
	case strings.HasPrefix(h, ":double_vertical_bar:"):
		return workflows.NotifyPaused
	case strings.HasPrefix(h, ":arrow_forward:"):
		return workflows.NotifyResumed
	case strings.HasPrefix(h, ":white_check_mark:"):
		return workflows.NotifyPhaseDone
	case strings.HasPrefix(h, ":tada:"), strings.HasPrefix(h, ":no_entry:"),
		strings.HasPrefix(h, ":x:"), strings.HasPrefix(h, ":checkered_flag:"):
		return workflows.NotifyFinished
	}
	return workflows.NotifyEvent("unknown: " + h)
}

func visEvents(msgs []visPosted) []workflows.NotifyEvent {
	out := make([]workflows.NotifyEvent, len(msgs))
	for i, m := range msgs {
		out[i] = m.event()
	}
	return out
}

// visButtonValue decodes a button's value as internal/notify builds it.
func visButtonValue(t *testing.T, raw string) notify.ActionValue {
	t.Helper()
	var v notify.ActionValue
	require.NoError(t, json.Unmarshal([]byte(raw), &v), "button value %q", raw)
	return v
}

// --- 1. phase order and the plan's exact footprint ------------------------

const threePhaseRollout = `
name: it-three-phase
target:
  version: 3.7.1
selector: product=kafka
strategy:
  phases:
    - name: internal
      selector: env=internal
      batchSize: 5
      strict: true
    - name: non-prod
      selector: env=non-prod
      batchSize: 10
      concurrency: 30
    - name: prod
      selector: env=prod
      batchSize: 20
      concurrency: 60
monitoring:
  interval: 1s
schedule:
  windows: ignore # clusters do not wait for their maintenance windows
`

func TestThreePhaseRolloutTouchesClustersInPhaseOrderAndOnlyThePlan(t *testing.T) {
	s := startStack(t, 300, 5*time.Millisecond, nil)
	id, err := s.client.Start(visCtx(t), parseSpec(t, threePhaseRollout), "integration-test")
	require.NoError(t, err)

	st := s.waitFor(t, id, "the end", terminal)
	require.Equal(t, workflows.StateCompleted, st.State, "%+v", st)

	wantEnv := []string{fleet.EnvInternal, fleet.EnvNonProd, fleet.EnvProd}
	require.Len(t, st.Phases, 3)
	planned := map[string]bool{}
	var prevFinished time.Time
	prevPhase := ""
	for i, ph := range st.Phases {
		require.Equal(t, []string{"internal", "non-prod", "prod"}[i], ph.Name)
		require.Equal(t, "completed", ph.State, "phase %s", ph.Name)
		require.NotEmpty(t, ph.Batches, "phase %s", ph.Name)
		var firstStart, lastFinish time.Time
		for _, b := range ph.Batches {
			require.Equal(t, workflows.BatchCompleted, b.State, "batch %d", b.Number)
			require.NotEmpty(t, b.Clusters, "batch %d carries its clusters", b.Number)
			for _, c := range b.Clusters {
				require.False(t, planned[c.ID], "%s planned twice", c.ID)
				planned[c.ID] = true
				before, ok := s.before[c.ID]
				require.True(t, ok, "%s is in the fleet", c.ID)
				require.Equal(t, fleet.ProductKafka, before.Product, c.ID)
				require.Equal(t, wantEnv[i], before.Environment, "%s is in phase %s", c.ID, ph.Name)
				require.Equal(t, workflows.ClusterDone, c.State, c.ID)
				require.NotNil(t, c.StartedAt, "%s started", c.ID)
				require.NotNil(t, c.FinishedAt, "%s finished", c.ID)
				require.False(t, c.FinishedAt.Before(*c.StartedAt), "%s finished before it started", c.ID)
				if firstStart.IsZero() || c.StartedAt.Before(firstStart) {
					firstStart = *c.StartedAt
				}
				if c.FinishedAt.After(lastFinish) {
					lastFinish = *c.FinishedAt
				}
			}
		}
		if i > 0 {
			// Every cluster of the previous phase finished before any of this one started.
			require.False(t, firstStart.Before(prevFinished),
				"phase %s started a cluster at %s, before phase %s's last cluster finished at %s",
				ph.Name, firstStart.Format(time.RFC3339Nano), prevPhase, prevFinished.Format(time.RFC3339Nano))
		}
		prevFinished, prevPhase = lastFinish, ph.Name
	}

	// The plan is exactly the fleet's Kafka clusters, and the data plane
	// applied exactly the plan, once per cluster; nothing else was touched.
	applied := map[string]bool{}
	kafka := map[string]bool{}
	for id, before := range s.before {
		if before.Product == fleet.ProductKafka {
			kafka[id] = true
		}
		after, ok := s.dev.Sim.Cluster(id)
		require.True(t, ok)
		if n := s.dev.Sim.ApplyStarts(id); n > 0 {
			applied[id] = true
			require.Equal(t, 1, n, "applies of %s", id)
			require.Equal(t, "3.7.1", after.Version, id)
			require.Equal(t, before.Generation+1, after.Generation, id)
		} else {
			require.Equal(t, before.Version, after.Version, "%s untouched", id)
			require.Equal(t, before.Generation, after.Generation, "%s untouched", id)
		}
	}
	require.Equal(t, planned, applied, "the clusters the data plane applied are the plan's")
	require.Equal(t, kafka, planned, "the plan is the fleet's Kafka clusters")
	require.Len(t, planned, st.Total)
	require.Equal(t, st.Total, st.Counts.Done)
	require.Less(t, len(planned), len(s.before), "other products exist and stay untouched")

	// The rollout's history as the server keeps it: the plan is its
	// outline (the PlanOutline activity's result names no cluster), and no
	// event names more clusters than one batch holds (its child's result).
	largestBatch := 0
	for _, ph := range st.Phases {
		for _, b := range ph.Batches {
			largestBatch = max(largestBatch, len(b.Clusters))
		}
	}
	tc := visSDK(t, s)
	it := tc.GetWorkflowHistory(visCtx(t), id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	planScheduled, mostNamed := int64(0), 0
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		text := ev.String()
		named := 0
		for cid := range planned {
			if strings.Contains(text, cid) {
				named++
			}
		}
		mostNamed = max(mostNamed, named)
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == workflows.ActivityPlanOutline {
			planScheduled = ev.GetEventId()
		}
		if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil && a.GetScheduledEventId() == planScheduled {
			require.Zero(t, named, "the plan's outline names no cluster")
		}
	}
	require.NotZero(t, planScheduled, "the rollout planned through PlanOutline")
	t.Logf("rollout history: at most %d clusters named in one event; largest batch %d", mostNamed, largestBatch)
	require.LessOrEqual(t, mostNamed, largestBatch, "no event of the rollout's history names more clusters than one batch")
}

// --- 2. status query and search attributes mid-rollout ---------------------

const statusRollout = `
name: it-status
target:
  version: 3.7.1
selector: product=kafka
strategy:
  phases:
    - name: internal
      selector: env=internal
      batchSize: 5
      concurrency: 10
    - name: non-prod
      selector: env=non-prod
      batchSize: 10
      concurrency: 20
    - name: prod
      selector: env=prod
      batchSize: 25
      concurrency: 50
monitoring:
  interval: 1s
schedule:
  windows: ignore # clusters do not wait for their maintenance windows
`

func TestStatusQueryMidRollout(t *testing.T) {
	// Brokers take 300ms: clusters stay in flight for 1 to 4 s.
	s := startStack(t, 400, 300*time.Millisecond, nil)
	tc := visSDK(t, s)
	ctx := context.Background()
	id, err := s.client.Start(visCtx(t), parseSpec(t, statusRollout), "integration-test")
	require.NoError(t, err)
	const target = "3.7.1"

	// Mid-way: the first phase done, the second applying with broker progress.
	// The simulator is read just before the status and just after it, so
	// each comparison below holds whatever moved in between.
	type simView struct {
		version map[string]string
		starts  map[string]int
	}
	view := func() simView {
		v := simView{version: map[string]string{}, starts: map[string]int{}}
		for _, c := range s.dev.Sim.Clusters() {
			v.version[c.ID] = c.Version
			v.starts[c.ID] = s.dev.Sim.ApplyStarts(c.ID)
		}
		return v
	}
	var st *workflows.RolloutStatus
	var simBefore, simAfter simView
	visEventually(t, "phase non-prod applying", func() (bool, string) {
		b := view()
		qctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		got, err := s.client.Status(qctx, id)
		if err != nil {
			return false, err.Error()
		}
		a := view()
		if len(got.Phases) != 3 || got.Phases[0].State != "completed" || got.Phases[1].State != "running" {
			return false, fmt.Sprintf("%s %+v", got.State, got.Counts)
		}
		applying := false
		for _, ph := range got.Phases {
			for _, bs := range ph.Batches {
				if len(bs.Clusters) == 0 {
					return false, fmt.Sprintf("batch %d (%s) without cluster detail", bs.Number, bs.State)
				}
				for _, c := range bs.Clusters {
					applying = applying || c.State == workflows.ClusterApplying && c.Brokers > 0
				}
			}
		}
		st, simBefore, simAfter = got, b, a
		return applying, "no cluster reported broker progress yet"
	})

	require.Equal(t, workflows.StateRunning, st.State)
	require.Nil(t, st.Paused)
	require.Equal(t, []string{"completed", "running", "pending"},
		[]string{st.Phases[0].State, st.Phases[1].State, st.Phases[2].State})
	require.Equal(t, st.Total, client.Sum(st.Counts), "counts cover the plan: %+v", st.Counts)

	var inFlightCluster string
	var inFlightBatch int
	counted := workflows.Counts{}
	for pi, ph := range st.Phases {
		for _, b := range ph.Batches {
			require.NotEmpty(t, b.Clusters, "phase %s batch %d (%s) has cluster detail", ph.Name, b.Number, b.State)
			for _, c := range b.Clusters {
				counted.Add(c.State)
				before := s.before[c.ID]
				switch pi {
				case 0:
					require.Equal(t, workflows.BatchCompleted, b.State)
					require.Equal(t, workflows.ClusterDone, c.State, c.ID)
				case 2:
					require.Equal(t, workflows.BatchPending, b.State)
					require.Equal(t, workflows.ClusterPending, c.State, c.ID)
					require.Equal(t, before.Version, simAfter.version[c.ID], c.ID)
				}
				if simBefore.version[c.ID] == target {
					// The data plane had finished it before the query: the rollout started it.
					require.Contains(t, []workflows.ClusterState{workflows.ClusterApplying, workflows.ClusterVerifying, workflows.ClusterDone}, c.State, c.ID)
				}
				switch c.State {
				case workflows.ClusterDone:
					require.Equal(t, target, simAfter.version[c.ID], "%s is done, so the data plane runs %s", c.ID, target)
					require.Equal(t, 1, simAfter.starts[c.ID], c.ID)
				case workflows.ClusterApplying:
					// Broker k of n once the data plane reported; n is the cluster's size.
					if c.Brokers > 0 {
						require.Equal(t, before.Brokers, c.Brokers, c.ID)
						require.GreaterOrEqual(t, c.Broker, 0, c.ID)
						require.LessOrEqual(t, c.Broker, c.Brokers, c.ID)
					} else {
						require.Zero(t, c.Broker, c.ID)
					}
					require.NotNil(t, c.StartedAt, c.ID)
					require.Equal(t, workflows.BatchRunning, b.State)
					if c.Brokers > 0 && inFlightCluster == "" {
						inFlightCluster, inFlightBatch = c.ID, b.Number
					}
				case workflows.ClusterVerifying:
					// Every broker runs the new spec; the monitors are being read.
					require.Equal(t, before.Brokers, c.Brokers, c.ID)
					require.Equal(t, c.Brokers, c.Broker, c.ID)
					require.Equal(t, target, simAfter.version[c.ID], c.ID)
				case workflows.ClusterPending:
					// Not started when the query answered, so not started before it.
					require.Equal(t, 0, simBefore.starts[c.ID], "pending %s untouched", c.ID)
				default:
					t.Fatalf("cluster %s in unexpected state %s", c.ID, c.State)
				}
			}
		}
	}
	require.Equal(t, st.Counts, counted, "the counts are the clusters' states")
	require.NotEmpty(t, inFlightCluster)
	doneBefore, doneAfter := 0, 0
	clusters, _ := visClusters(st)
	require.Len(t, clusters, st.Total)
	for cid := range clusters {
		if simBefore.version[cid] == target {
			doneBefore++
		}
		if simAfter.version[cid] == target {
			doneAfter++
		}
	}
	require.LessOrEqual(t, st.Counts.Done, doneAfter, "done clusters run the target in the data plane")
	require.LessOrEqual(t, doneBefore, st.Counts.Done+st.Counts.InFlight, "the data plane finished only clusters the rollout started")

	// The Web UI's queries.
	byName := visFinds(t, tc, "RolloutName = 'it-status'", id)
	require.Equal(t, "Rollout", byName[id])
	batchID := workflows.BatchID(id, inFlightBatch)
	// Which batch holds a cluster: the rollout's cluster-batch query, and
	// for its batches in the plan store, their clusters read from there (a
	// search attribute listing a batch's clusters would break the 2 KB
	// value limit of a stock server).
	plans, err := s.dev.Config.OpenPlanStore()
	require.NoError(t, err)
	holder, err := app.BatchHolding(visCtx(t), tc, plans, id, inFlightCluster)
	require.NoError(t, err)
	require.Equal(t, batchID, holder, "the batch holding %s", inFlightCluster)
	visFinds(t, tc, "WorkflowType = 'Batch' AND RolloutName = 'it-status' AND Phase = 'non-prod'", batchID)
	visFinds(t, tc, "WorkflowType = 'Rollout' AND Phase = 'non-prod'", id)
	got, err := visList(tc, "WorkflowType = 'Rollout' AND Paused = true")
	require.NoError(t, err)
	require.NotContains(t, got, id, "not paused yet")

	_, err = s.client.Pause(visCtx(t), id, workflows.ActionRequest{Actor: "alice", Reason: "looking at the status"})
	require.NoError(t, err)
	paused := s.waitFor(t, id, "paused", func(st *workflows.RolloutStatus) bool { return st.State == workflows.StatePaused })
	require.Equal(t, "alice", paused.Paused.Actor)
	visFinds(t, tc, "WorkflowType = 'Rollout' AND Paused = true", id)
	visFinds(t, tc, "RolloutName = 'it-status' AND Paused = true", id)

	_, err = s.client.Abort(visCtx(t), id, workflows.ActionRequest{Actor: "alice", Reason: "test over"})
	require.NoError(t, err)
	end := s.waitFor(t, id, "the end", terminal)
	require.Equal(t, workflows.StateAborted, end.State)
}

// --- 3. the Slack thread of a rollout that pauses and resumes --------------

const slackRollout = `
name: it-slack
target:
  version: 3.7.1
selector: product=kafka, env in (internal, non-prod)
strategy:
  phases:
    - name: internal
      selector: env=internal
      batchSize: 5
      concurrency: 10
    - name: non-prod
      selector: env=non-prod
      batchSize: 10
      concurrency: 20
monitoring:
  interval: 1s
schedule:
  windows: ignore # clusters do not wait for their maintenance windows
`

func TestSlackThreadForARolloutThatPausesAndResumes(t *testing.T) {
	sl := visStartSlack(t)
	const channel = "C0FLEETIT"
	s := startStackWith(t, stackOptions{Clusters: 300, BrokerTime: 200 * time.Millisecond, Configure: func(c *app.Config) {
		c.SlackToken = "xoxb-test-token"
		c.SlackAPIURL = sl.url
		c.SlackChannel = channel
	}})
	tc := visSDK(t, s)
	id, err := s.client.Start(visCtx(t), parseSpec(t, slackRollout), "integration-test")
	require.NoError(t, err)

	// Pause once the second phase has clusters in flight.
	s.waitFor(t, id, "phase non-prod in flight", func(st *workflows.RolloutStatus) bool {
		return len(st.Phases) == 2 && st.Phases[1].State == "running" && st.Counts.InFlight > 0
	})
	const reason = "checking lag on lkc-00042"
	_, err = s.client.Pause(visCtx(t), id, workflows.ActionRequest{Actor: "alice", Reason: reason})
	require.NoError(t, err)
	s.waitFor(t, id, "clusters held", func(st *workflows.RolloutStatus) bool {
		return st.State == workflows.StatePaused && st.Counts.InFlight == 0
	})
	visEventually(t, "the paused message", func() (bool, string) {
		evs := visEvents(sl.messages())
		return slices.Contains(evs, workflows.NotifyPaused), fmt.Sprint(evs)
	})
	_, err = s.client.Resume(visCtx(t), id, workflows.ActionRequest{Actor: "alice", Reason: "lag is fine"})
	require.NoError(t, err)
	final := visAwaitClosed(t, tc, id)
	require.Equal(t, workflows.StateCompleted, final.State)
	st := s.waitFor(t, id, "the end", terminal)
	require.Equal(t, st.Total, st.Counts.Done)
	internal, nonProd := 0, 0
	for _, b := range st.Phases[0].Batches {
		internal += len(b.Clusters)
	}
	for _, b := range st.Phases[1].Batches {
		nonProd += len(b.Clusters)
	}

	msgs := sl.messages()
	require.Equal(t, []workflows.NotifyEvent{
		workflows.NotifyStarted,
		workflows.NotifyPhaseDone, // internal
		workflows.NotifyPaused,
		workflows.NotifyResumed,
		workflows.NotifyPhaseDone, // non-prod
		workflows.NotifyFinished,
	}, visEvents(msgs), "one message per rollout event, none per cluster (%d clusters)", st.Total)

	// One thread: the first message starts it, every other replies in it.
	parent := msgs[0]
	require.Empty(t, parent.ThreadTS)
	require.NotEmpty(t, parent.TS)
	for i, m := range msgs {
		require.Equal(t, channel, m.Channel, "message %d", i)
		require.NotEmpty(t, m.Text, "message %d has a fallback text", i)
		if i > 0 {
			require.Equal(t, parent.TS, m.ThreadTS, "message %d (%s) replies in the rollout's thread", i, m.event())
		}
	}
	tsSeen := map[string]bool{}
	for _, m := range msgs {
		require.False(t, tsSeen[m.TS], "distinct ts")
		tsSeen[m.TS] = true
	}

	started, phase1, paused, resumed, phase2, finished := msgs[0], msgs[1], msgs[2], msgs[3], msgs[4], msgs[5]
	require.Contains(t, started.headline(), "*it-slack* started")
	require.Contains(t, started.Text, fmt.Sprintf("%d clusters in 2 phases", st.Total))
	require.Contains(t, started.allText(), "`3.7.1`")

	require.Contains(t, phase1.headline(), "phase *internal* done")
	require.Contains(t, phase1.Text, fmt.Sprintf("Phase internal done: %d clusters updated, 0 failed.", internal))
	require.Contains(t, phase2.headline(), "phase *non-prod* done")
	require.Contains(t, phase2.Text, fmt.Sprintf("Phase non-prod done: %d clusters updated, 0 failed.", nonProd))

	require.Contains(t, paused.headline(), "*it-slack* paused")
	require.Contains(t, paused.headline(), "*Reason:* "+reason)
	require.Contains(t, paused.Text, reason)
	require.Contains(t, paused.allText(), "*Paused by*\nalice")
	require.True(t, paused.Broadcast, "a pause is also shown in the channel")
	btn := paused.buttons()
	require.Len(t, btn, 2, "Resume and Abort: %v", btn)
	require.Contains(t, btn, notify.ActionResume)
	require.Contains(t, btn, notify.ActionAbort)
	require.Equal(t, notify.ActionValue{Rollout: id}, visButtonValue(t, btn[notify.ActionResume]))
	require.Equal(t, notify.ActionValue{Rollout: id}, visButtonValue(t, btn[notify.ActionAbort]))

	require.Contains(t, resumed.headline(), "*it-slack* resumed")
	require.Contains(t, resumed.Text, "Resumed by alice")
	require.Contains(t, resumed.buttons(), notify.ActionPause)

	require.Contains(t, finished.headline(), "*it-slack* completed")
	require.True(t, finished.Broadcast)
	require.Contains(t, finished.Text, fmt.Sprintf("%d done, 0 failed, 0 aborted, 0 skipped of %d", st.Total, st.Total))
	require.Contains(t, finished.allText(), fmt.Sprintf("*Progress:* %d done of %d", st.Total, st.Total))
	require.Empty(t, finished.buttons(), "nothing to press on a finished rollout")
}

// --- 4. a Slack button approves a gated phase ------------------------------

const approvalRollout = `
name: it-approve
target:
  version: 3.7.1
selector: product=kafka, env in (internal, non-prod)
strategy:
  phases:
    - name: internal
      selector: env=internal
      batchSize: 10
    - name: non-prod
      selector: env=non-prod
      batchSize: 20
      concurrency: 40
      requireApproval: true
monitoring:
  interval: 1s
schedule:
  windows: ignore # clusters do not wait for their maintenance windows
`

// visInteraction is a block_actions payload as Slack sends it for a button,
// form-encoded.
func visInteraction(actionID, value, messageTS, responseURL string) []byte {
	p := map[string]any{
		"type":         "block_actions",
		"user":         map[string]any{"id": "U0CAROL", "username": "carol", "name": "carol", "team_id": "T1"},
		"api_app_id":   "A1",
		"team":         map[string]any{"id": "T1", "domain": "fleet"},
		"channel":      map[string]any{"id": "C0FLEETIT", "name": "fleet-it"},
		"container":    map[string]any{"type": "message", "message_ts": messageTS, "channel_id": "C0FLEETIT"},
		"trigger_id":   "123.456.abc",
		"response_url": responseURL,
		"message":      map[string]any{"type": "message", "ts": messageTS, "text": "waits for approval"},
		"actions": []map[string]any{{
			"type": "button", "action_id": actionID, "block_id": "fleet-actions", "value": value,
			"text": map[string]any{"type": "plain_text", "text": "Approve"}, "action_ts": "1700000001.000000",
		}},
	}
	b, err := json.Marshal(p)
	if err != nil {
		panic(err)
	}
	return []byte(url.Values{"payload": {string(b)}}.Encode())
}

// With identity: signed, the worker verifies Slack's request (signature,
// workspace), signs it with its own key for the Slack user, and the rollout
// records the person behind the Slack alias.
func TestSlackApprovalStartsAGatedPhase(t *testing.T) {
	sl := visStartSlack(t)
	const secret = "8f742231b10e8888abcd99yyyzzz85a5"
	dir := t.TempDir()
	key := func(name string) (*identity.Signer, string, string) {
		pemBytes, pub, err := identity.GenerateKey()
		require.NoError(t, err)
		path := filepath.Join(dir, name+".pem")
		require.NoError(t, os.WriteFile(path, pemBytes, 0o600))
		k, err := identity.LoadPrivateKey(path)
		require.NoError(t, err)
		return &identity.Signer{Name: name, Key: k}, pub, path
	}
	ivan, ivanPub, _ := key("ivan")
	_, carolPub, _ := key("carol")
	_, workerPub, workerKey := key("worker")
	policyPath := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policyPath, []byte(`access:
  people:
    ivan: {keys: ["`+ivanPub+`"]}
    carol: {keys: ["`+carolPub+`"], aliases: ["slack:U0CAROL"]}
  services:
    fleet-worker: {keys: ["`+workerPub+`"], vouch: ["slack:"]}
  roles: {ivan: [operator], carol: [approver]}
`), 0o644))
	s := startStackWith(t, stackOptions{Clusters: 300, BrokerTime: 5 * time.Millisecond, Configure: func(c *app.Config) {
		c.SlackToken = "xoxb-test-token"
		c.SlackAPIURL = sl.url
		c.SlackChannel = "C0FLEETIT"
		c.SlackSigningSecret = secret
		c.SlackTeamID = "T1"
		c.WorkerKeyFile = workerKey
		c.PolicyPath = policyPath
	}})
	s.client = s.client.WithSigner(ivan)
	tc := visSDK(t, s)

	// Slack's response_url: the handler answers the clicking user there.
	var replyMu sync.Mutex
	var replies []string
	respSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct {
			Text string `json:"text"`
		}
		_ = json.NewDecoder(r.Body).Decode(&m)
		replyMu.Lock()
		replies = append(replies, m.Text)
		replyMu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(respSrv.Close)
	getReplies := func() []string {
		replyMu.Lock()
		defer replyMu.Unlock()
		return append([]string(nil), replies...)
	}

	endpoint := "http://" + s.dev.Config.HTTPAddr + "/slack/interactions"
	visEventually(t, "the worker's HTTP endpoint", func() (bool, string) {
		resp, err := http.Get("http://" + s.dev.Config.HTTPAddr + "/healthz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	post := func(body []byte, sign func(*http.Request)) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(string(body)))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if sign != nil {
			sign(req)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}

	id, err := s.client.Start(visCtx(t), parseSpec(t, approvalRollout), "ivan")
	require.NoError(t, err)
	waiting := s.waitFor(t, id, "the approval gate of phase non-prod", func(st *workflows.RolloutStatus) bool {
		return st.State == workflows.StateAwaitingApproval && len(st.Phases) == 2 && st.Phases[1].State == "awaiting-approval"
	})
	require.Equal(t, "completed", waiting.Phases[0].State)
	require.Contains(t, waiting.WaitingFor, "approval of phase non-prod")
	for _, b := range waiting.Phases[1].Batches {
		for _, c := range b.Clusters {
			require.Equal(t, 0, s.dev.Sim.ApplyStarts(c.ID), "gated %s untouched", c.ID)
		}
	}

	// The approval message in the thread carries the button to press.
	var approval visPosted
	visEventually(t, "the approval message", func() (bool, string) {
		for _, m := range sl.messages() {
			if m.event() == workflows.NotifyApproval {
				approval = m
				return true, ""
			}
		}
		return false, fmt.Sprint(visEvents(sl.messages()))
	})
	require.Contains(t, approval.headline(), "waits for approval of phase *non-prod*")
	require.True(t, approval.Broadcast)
	value, ok := approval.buttons()[notify.ActionApprovePhase]
	require.True(t, ok, "approve-phase button: %v", approval.buttons())
	require.Equal(t, notify.ActionValue{Rollout: id, Phase: "non-prod"}, visButtonValue(t, value))

	body := visInteraction(notify.ActionApprovePhase, value, approval.TS, respSrv.URL)

	// Unsigned, signed with another secret, or signed over another body: 401, nothing happens.
	require.Equal(t, http.StatusUnauthorized, post(body, nil), "unsigned")
	require.Equal(t, http.StatusUnauthorized, post(body, func(r *http.Request) {
		notify.SignRequest(r, body, "not-the-secret", time.Now())
	}), "wrong secret")
	require.Equal(t, http.StatusUnauthorized, post(body, func(r *http.Request) {
		notify.SignRequest(r, visInteraction(notify.ActionApprovePhase, value, "1.2", respSrv.URL), secret, time.Now())
	}), "signature of another body")
	require.Equal(t, http.StatusUnauthorized, post(body, func(r *http.Request) {
		notify.SignRequest(r, body, secret, time.Now().Add(-10*time.Minute))
	}), "stale timestamp")
	time.Sleep(time.Second) // give a wrongly accepted request the chance to act
	still, err := s.client.Status(visCtx(t), id)
	require.NoError(t, err)
	require.Equal(t, workflows.StateAwaitingApproval, still.State)
	require.Equal(t, "awaiting-approval", still.Phases[1].State)
	for _, a := range still.Audit {
		require.NotEqual(t, workflows.Approve, a.Action, "no approval recorded: %+v", a)
	}
	require.Empty(t, getReplies(), "rejected requests are not answered through response_url")

	// Signed the way Slack signs: the phase starts and the rollout completes.
	require.Equal(t, http.StatusOK, post(body, func(r *http.Request) {
		notify.SignRequest(r, body, secret, time.Now())
	}))
	final := visAwaitClosed(t, tc, id)
	require.Equal(t, workflows.StateCompleted, final.State)
	st := s.waitFor(t, id, "the end", terminal)
	require.Equal(t, st.Total, st.Counts.Done)
	require.Equal(t, "completed", st.Phases[1].State)

	var approved *workflows.AuditEntry
	for i, a := range st.Audit {
		if a.Action == workflows.Approve {
			require.Nil(t, approved, "one approval: %+v", st.Audit)
			approved = &st.Audit[i]
		}
	}
	require.NotNil(t, approved, "audit: %+v", st.Audit)
	require.Equal(t, "carol", approved.Actor, "the person behind the Slack user")
	require.Equal(t, "applied", approved.Outcome)
	require.Contains(t, approved.Reason, "phase non-prod")
	require.Contains(t, approved.Reason, notify.SlackReason)
	for _, b := range st.Phases[1].Batches {
		for _, c := range b.Clusters {
			require.NotNil(t, c.StartedAt, c.ID)
			require.False(t, c.StartedAt.Before(approved.At), "%s started before the approval", c.ID)
			require.Equal(t, 1, s.dev.Sim.ApplyStarts(c.ID), c.ID)
		}
	}
	visEventually(t, "the answer to the clicking user", func() (bool, string) {
		r := getReplies()
		return len(r) == 1 && strings.Contains(r[0], "Approve phase non-prod of"), fmt.Sprint(r)
	})
	assert.Contains(t, getReplies()[0], "approved phase non-prod")
}

// --- 5. a cluster's history across two rollouts ----------------------------

const historyRollout = `
name: %s
target:
  version: %s
selector: product=kafka, env=internal
strategy:
  phases:
    - name: internal
      batchSize: 4
      concurrency: 4
monitoring:
  interval: 1s
schedule:
  windows: ignore # clusters do not wait for their maintenance windows
`

func TestHistoryOfAClusterTouchedByTwoRollouts(t *testing.T) {
	const monitor = "kafka-under-replicated-partitions"
	s := startStack(t, 400, 5*time.Millisecond, nil)
	tc := visSDK(t, s)
	ctx := context.Background()

	// First rollout: 3.7.1 to every internal Kafka cluster, one batch at a time.
	first, err := s.client.Start(visCtx(t), parseSpec(t, fmt.Sprintf(historyRollout, "it-hist-371", "3.7.1")), "integration-test")
	require.NoError(t, err)
	st1 := visAwaitClosed(t, tc, first)
	require.Equal(t, workflows.StateCompleted, st1.State)
	require.Equal(t, st1.Total, st1.Counts.Done)
	require.Len(t, st1.Phases, 1)
	batches := st1.Phases[0].Batches
	require.GreaterOrEqual(t, len(batches), 2, "the second rollout needs batches after the tripped one")
	var internal []string
	for _, b := range batches {
		for _, c := range b.Clusters {
			internal = append(internal, c.ID)
		}
	}

	// A fault on 3.7.2 that trips the monitor on cluster(s) of the first batch
	// only (the second rollout plans the same clusters in the same order).
	// With later batches still pending, the automatic pause cannot race the
	// rollout's end.
	firstBatch := map[string]bool{}
	for _, c := range batches[0].Clusters {
		firstBatch[c.ID] = true
	}
	var fault sim.Fault
	tripped := map[string]bool{}
	for _, c := range batches[0].Clusters {
		cl := s.before[c.ID]
		f := sim.Fault{Version: "3.7.2", Monitor: monitor, Cloud: cl.Cloud, Region: cl.Region, Fraction: sim.Bucket(cl.ID) + 0.00005}
		hits := map[string]bool{}
		for _, id := range internal {
			if f.Trips(s.before[id], "3.7.2") {
				hits[id] = true
			}
		}
		inFirst := true
		for id := range hits {
			inFirst = inFirst && firstBatch[id]
		}
		if inFirst && len(hits) > 0 && len(hits) < len(firstBatch) {
			fault, tripped = f, hits
			break
		}
	}
	require.NotEmpty(t, tripped, "a fault that trips only clusters of batch %d", batches[0].Number)
	require.NoError(t, s.dev.Sim.SetFaults([]sim.Fault{fault}))

	second, err := s.client.Start(visCtx(t), parseSpec(t, fmt.Sprintf(historyRollout, "it-hist-372", "3.7.2")), "integration-test")
	require.NoError(t, err)
	paused := s.waitFor(t, second, "the automatic pause", func(st *workflows.RolloutStatus) bool { return st.Paused != nil || terminal(st) })
	require.NotNil(t, paused.Paused, "paused by the tripped monitor: %+v", paused)
	require.Equal(t, "fleet-safety", paused.Paused.Actor)
	require.NotNil(t, paused.Paused.Incident)
	require.True(t, tripped[paused.Paused.Incident.ClusterID], "the incident names a tripped cluster: %+v", paused.Paused.Incident)
	require.Equal(t, monitor, paused.Paused.Incident.Monitor)
	// Wait until every tripped cluster has failed, then resume past them.
	s.waitFor(t, second, "the tripped clusters failed", func(st *workflows.RolloutStatus) bool {
		cl, _ := visClusters(st)
		for id := range tripped {
			if cl[id].State != workflows.ClusterFailed {
				return false
			}
		}
		return true
	})
	_, err = s.client.Resume(visCtx(t), second, workflows.ActionRequest{Actor: "alice", Reason: "known fault on the canary"})
	require.NoError(t, err)
	st2 := visAwaitClosed(t, tc, second)
	require.Equal(t, workflows.StateCompleted, st2.State)
	require.Equal(t, len(tripped), st2.Counts.Failed, "%+v", st2.Counts)
	require.Equal(t, len(internal)-len(tripped), st2.Counts.Done)
	require.Len(t, st2.Incidents, len(tripped))
	for _, inc := range st2.Incidents {
		require.True(t, tripped[inc.ClusterID], "incident on a tripped cluster: %+v", inc)
		require.Equal(t, workflows.IncidentMonitorAlert, inc.Kind)
		require.Equal(t, monitor, inc.Monitor)
	}

	history := func(clusterID string) []events.Entry {
		t.Helper()
		hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		h, err := events.History(hctx, s.dev.Config.KafkaBrokers, clusterID)
		require.NoError(t, err, "history of %s", clusterID)
		return h
	}

	// Every cluster both rollouts finished: two entries, in order, both done.
	checked := 0
	for _, id := range internal {
		if tripped[id] {
			continue
		}
		h := history(id)
		require.Len(t, h, 2, "history of %s: %+v", id, h)
		for i, want := range []struct{ rollout, version string }{{first, "3.7.1"}, {second, "3.7.2"}} {
			e := h[i]
			assert.Equal(t, want.rollout, e.RolloutID, "%s entry %d", id, i)
			assert.Equal(t, want.version, e.Version, "%s entry %d", id, i)
			assert.Equal(t, workflows.ClusterDone, e.State, "%s entry %d", id, i)
			assert.Equal(t, string(workflows.StateCompleted), e.RolloutState, "%s entry %d", id, i)
			assert.Equal(t, "internal", e.Phase, "%s entry %d", id, i)
			assert.Positive(t, e.Batch, "%s entry %d", id, i)
			assert.Empty(t, e.Alerts, "%s entry %d", id, i)
			assert.False(t, e.Last.Before(e.First), "%s entry %d", id, i)
		}
		require.False(t, h[1].First.Before(h[0].Last), "%s: the second rollout's events follow the first's", id)
		if checked++; checked == 3 {
			break
		}
	}
	require.Positive(t, checked)

	// The cluster the monitor tripped on: its alert is in the second rollout's entry.
	for id := range tripped {
		h := history(id)
		require.Len(t, h, 2, "history of %s: %+v", id, h)
		assert.Equal(t, first, h[0].RolloutID)
		assert.Equal(t, "3.7.1", h[0].Version)
		assert.Equal(t, workflows.ClusterDone, h[0].State)
		assert.Empty(t, h[0].Alerts)
		assert.Equal(t, second, h[1].RolloutID)
		assert.Equal(t, "3.7.2", h[1].Version)
		assert.Equal(t, workflows.ClusterFailed, h[1].State)
		assert.Contains(t, h[1].Message, monitor)
		assert.Equal(t, string(workflows.StateCompleted), h[1].RolloutState)
		require.NotEmpty(t, h[1].Alerts, "the alert is in %s's history: %+v", id, h[1])
		assert.Equal(t, monitor, h[1].Alerts[0].Monitor)
	}

	// A cluster outside both rollouts has no history.
	for id, c := range s.before {
		if c.Product != fleet.ProductKafka {
			require.Empty(t, history(id), "history of %s", id)
			break
		}
	}
}
