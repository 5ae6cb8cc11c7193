package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/fleet-rollout/fleet/internal/app"
	"github.com/fleet-rollout/fleet/internal/bench/stack"
	"github.com/fleet-rollout/fleet/internal/chaos"
	"github.com/fleet-rollout/fleet/internal/ddsim"
	"github.com/fleet-rollout/fleet/workflows"
)

// Every fault case runs a rollout of the ~140 Kafka clusters of a 260-cluster
// fleet (concurrency 30, batches of 10, broker restarts of 150 ms, so about
// 20-30 s undisturbed), breaks something while it runs, and then checks the
// rollout completed, every selected cluster was applied exactly once and
// runs the target, none was skipped, and nothing else was touched.
const (
	fleetSize  = 260
	brokerTime = 150 * time.Millisecond
	// caseBudget bounds each case (plus the time a fault is held on
	// purpose); a case that needs more fails.
	caseBudget = 85 * time.Second
	// kafkaDown is how long Kafka stays down in the Kafka case.
	kafkaDown = 30 * time.Second
)

type harness struct {
	t        *testing.T
	s        *stack.Stack
	id       string
	budget   time.Duration
	deadline time.Time
	selected int
}

func newHarness(t *testing.T, configure func(*app.Config)) *harness {
	t.Helper()
	return newHarnessFor(t, caseBudget, configure)
}

// newHarnessFor is newHarness with its own budget.
func newHarnessFor(t *testing.T, budget time.Duration, configure func(*app.Config)) *harness {
	t.Helper()
	if testing.Short() {
		t.Skip("fault injection on the whole in-process stack")
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))
	s, err := stack.Start(context.Background(), stack.Options{
		DataDir:    t.TempDir(),
		Clusters:   fleetSize,
		Seed:       11,
		BrokerTime: brokerTime,
		Configure:  configure,
		Log:        log,
	})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	h := &harness{t: t, s: s, budget: budget, deadline: time.Now().Add(budget)}
	for _, c := range s.Before {
		if chaos.Selected(c) {
			h.selected++
		}
	}
	return h
}

func (h *harness) start(o chaos.SpecOptions) {
	h.t.Helper()
	r, err := chaos.Spec(o)
	require.NoError(h.t, err)
	h.id, err = h.s.Fleet.Start(context.Background(), r, "chaos-test")
	require.NoError(h.t, err)
}

// done counts selected clusters on the target version (the data plane's view).
func (h *harness) done() int {
	n := 0
	for _, c := range h.s.Dev.Sim.Clusters() {
		if chaos.Selected(c) && c.Version == chaos.Target {
			n++
		}
	}
	return n
}

// waitDone waits until at least n selected clusters run the target.
func (h *harness) waitDone(n int) {
	h.t.Helper()
	for h.done() < n {
		if time.Now().After(h.deadline) {
			h.t.Fatalf("only %d/%d clusters on %s when the case's time ran out (waiting for %d)", h.done(), h.selected, chaos.Target, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// status polls the rollout's status until cond holds, riding out errors
// (the worker or Temporal may be down).
func (h *harness) status(what string, cond func(*workflows.RolloutStatus) bool) *workflows.RolloutStatus {
	h.t.Helper()
	var last *workflows.RolloutStatus
	var lastErr error
	for time.Now().Before(h.deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := h.s.Fleet.Status(ctx, h.id)
		cancel()
		if err == nil {
			last = st
			if cond(st) {
				return st
			}
		} else {
			lastErr = err
		}
		time.Sleep(200 * time.Millisecond)
	}
	h.dumpBatches()
	h.t.Fatalf("%s: %s not reached within %s; last status: %s; last error: %v", h.id, what, h.budget, chaos.Outcome(last), lastErr)
	return nil
}

func (h *harness) waitTerminal() *workflows.RolloutStatus {
	h.t.Helper()
	return h.status("the end", func(st *workflows.RolloutStatus) bool { return st.State.Terminal() })
}

// verify asserts the rollout completed and applied every selected cluster
// exactly once.
func (h *harness) verify(final *workflows.RolloutStatus) {
	h.t.Helper()
	require.Equal(h.t, workflows.StateCompleted, final.State, chaos.Outcome(final))
	after := map[string]chaos.Cluster{}
	for _, c := range h.s.Dev.Sim.Clusters() {
		after[c.ID] = chaos.Cluster{ID: c.ID, Product: c.Product, Version: c.Version, Generation: c.Generation, ApplyStarts: h.s.Dev.Sim.ApplyStarts(c.ID)}
	}
	check := chaos.Verify(h.s.Before, after, final)
	require.True(h.t, check.OK(), check.String())
	require.GreaterOrEqual(h.t, check.Selected, 100, "the fleet has enough Kafka clusters for the case to mean something")
	h.t.Logf("%s: %s; %s", h.id, chaos.Outcome(final), check)
}

// (a) The worker is cancelled and restarted three times at random points.
func TestChaosWorkerRestarts(t *testing.T) {
	h := newHarness(t, nil)
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	t.Logf("seed %d", seed)
	// The default grace (30 s): a monitor read lost with the stopped worker
	// (its result never reported) times out at its heartbeat timeout and
	// the next read lands well before health would go unknown.
	h.start(chaos.SpecOptions{Name: "chaos-worker"})
	// Three random points of progress between 5% and 85%.
	points := []float64{0.05 + 0.25*rng.Float64(), 0.30 + 0.25*rng.Float64(), 0.55 + 0.30*rng.Float64()}
	for i, p := range points {
		h.waitDone(int(p * float64(h.selected)))
		time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
		require.NoError(t, h.s.StopWorker())
		down := time.Duration(200+rng.IntN(1800)) * time.Millisecond
		t.Logf("restart %d at %d/%d clusters done, worker down %s", i+1, h.done(), h.selected, down)
		time.Sleep(down)
		require.NoError(t, h.s.StartWorker())
	}
	h.verify(h.waitTerminal())
	require.Equal(t, 4, h.s.WorkerRuns())
}

// (b) The Temporal server stops and starts again on the same data dir
// mid-rollout; the worker reconnects by itself.
func TestChaosTemporalRestart(t *testing.T) {
	h := newHarness(t, nil)
	h.start(chaos.SpecOptions{Name: "chaos-temporal"})
	h.waitDone(h.selected / 3)
	t.Logf("stopping Temporal at %d/%d clusters done", h.done(), h.selected)
	require.NoError(t, h.s.RestartTemporal(context.Background(), 3*time.Second))
	t.Logf("Temporal is back at %d/%d clusters done", h.done(), h.selected)
	h.verify(h.waitTerminal())
}

// (c) Kafka drops every request for 30 s mid-rollout (commands, status
// events, the bridge's consumer group and the events log all stop); Slack is
// up. Afterwards the rollout completes, every cluster was applied exactly
// once, and the rollout's Slack thread is whole.
func TestChaosKafkaUnavailable(t *testing.T) {
	rec, apiURL := newSlack(t)
	h := newHarnessFor(t, caseBudget+kafkaDown, func(c *app.Config) {
		c.SlackToken = "xoxb-chaos"
		c.SlackChannel = "#chaos"
		c.SlackAPIURL = apiURL
	})
	h.start(chaos.SpecOptions{Name: "chaos-kafka"})
	h.waitDone(h.selected / 4)
	before := h.done()
	h.s.SetKafkaDown(true)
	t0 := time.Now()
	time.Sleep(kafkaDown)
	during := h.done()
	h.s.SetKafkaDown(false)
	up := time.Now()
	t.Logf("kafka down for %s from %d to %d/%d clusters done", up.Sub(t0).Round(time.Millisecond), before, during, h.selected)
	final := h.waitTerminal()
	t.Logf("the rollout reported %s %s after Kafka was back", final.State, time.Since(up).Round(time.Millisecond))
	h.verify(final)
	h.verifyThread(rec)
}

// (d) The monitors endpoint answers 500, then 429, for longer than the
// grace period: the rollout pauses with "health unknown"; once the
// endpoint is back a person resumes it and it completes.
func TestChaosMonitorsUnavailable(t *testing.T) {
	h := newHarness(t, nil)
	h.start(chaos.SpecOptions{Name: "chaos-monitors", Interval: 500 * time.Millisecond, UnknownGrace: 3 * time.Second})
	h.waitDone(h.selected / 4)
	h.s.Dev.Datadog.SetFailure(http.StatusInternalServerError, -1)
	time.Sleep(4 * time.Second)
	h.s.Dev.Datadog.SetFailure(http.StatusTooManyRequests, -1)
	paused := h.status("a health-unknown pause", func(st *workflows.RolloutStatus) bool { return st.Paused != nil })
	time.Sleep(2 * time.Second) // some more 429s while paused
	h.s.Dev.Datadog.ClearFailure()
	// The last 429 said when Datadog's rate-limit window reopens (up to a
	// period away), and the worker honours it: a person resumes once it
	// has, as resuming earlier meets the closed window and pauses again.
	reopens := time.Now().Add(ddsim.DefaultRateLimitPeriod)
	require.NotNil(t, paused.Paused.Incident, chaos.Outcome(paused))
	require.Equal(t, workflows.IncidentHealthUnknown, paused.Paused.Incident.Kind)
	require.Contains(t, paused.Paused.Reason, "health unknown")
	t.Logf("paused: %s", chaos.Outcome(paused))

	held := h.status("every in-flight cluster held", func(st *workflows.RolloutStatus) bool { return st.Counts.InFlight == 0 })
	require.Equal(t, workflows.StatePaused, held.State)
	time.Sleep(time.Until(reopens))
	_, err := h.s.Fleet.Resume(context.Background(), h.id, workflows.ActionRequest{Actor: "chaos-test", Reason: "monitors are back"})
	require.NoError(t, err)
	final := h.waitTerminal()
	h.verify(final)
	pauses := 0
	for _, a := range final.Audit {
		if a.Action == workflows.Pause && a.Outcome == "applied" {
			pauses++
		}
	}
	require.GreaterOrEqual(t, pauses, 1, "the automatic pause is in the audit trail")
}

// (e) Slack refuses connections for a while, then a Slack-compatible server
// (slacktest) answers on the same address: the rollout is not held up while
// Slack is down, and every message of the rollout's thread arrives once it
// is back, in one thread.
func TestChaosSlackUnreachable(t *testing.T) {
	// A free port nobody listens on: connections are refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	rec, apiURL := newSlack(t)

	h := newHarness(t, func(c *app.Config) {
		c.SlackToken = "xoxb-chaos"
		c.SlackChannel = "#chaos"
		c.SlackAPIURL = "http://" + addr + "/"
	})
	t0 := time.Now()
	h.start(chaos.SpecOptions{Name: "chaos-slack"})
	// Slack stays down while a good part of the rollout runs.
	h.waitDone(h.selected / 2)
	require.Empty(t, rec.Messages(), "nothing reached Slack while it was down")
	t.Logf("%d/%d clusters done after %s with Slack down", h.done(), h.selected, time.Since(t0).Round(time.Millisecond))

	// Slack comes back on the same address (a proxy to slacktest).
	target, err := url.Parse(apiURL)
	require.NoError(t, err)
	back, err := net.Listen("tcp", addr)
	require.NoError(t, err, "listen again on the Slack address")
	proxy := &http.Server{Handler: httputil.NewSingleHostReverseProxy(target), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = proxy.Serve(back) }()
	t.Cleanup(func() { _ = proxy.Close() })

	h.verify(h.waitTerminal())
	h.verifyThread(rec)
}

// newSlack starts a Slack-compatible server (slacktest) that records every
// chat.postMessage; apiURL is what the worker's SlackAPIURL takes.
func newSlack(t *testing.T) (rec *chaos.SlackRecorder, apiURL string) {
	t.Helper()
	rec = &chaos.SlackRecorder{}
	srv := slacktest.NewTestServer(func(c slacktest.Customize) { c.Handle("/chat.postMessage", rec.PostMessage) })
	srv.Start()
	t.Cleanup(srv.Stop)
	return rec, srv.GetAPIURL()
}

// verifyThread asserts no notification was lost or sent twice: once the
// rollout workflow has closed (it closes once its outbox, the thread, is
// drained; its status says completed before that), Slack got the start
// message, the phase's and the rollout's completion, every later message in
// the rollout's thread, each once.
func (h *harness) verifyThread(rec *chaos.SlackRecorder) {
	t := h.t
	t.Helper()
	ctx, cancel := context.WithDeadline(context.Background(), h.deadline)
	defer cancel()
	require.NoError(t, h.s.Temporal.GetWorkflow(ctx, h.id, "").Get(ctx, nil), "the rollout workflow closes")
	msgs := rec.Messages()
	problems, repeated := chaos.CheckThread(msgs)
	require.Empty(t, problems, "the rollout's Slack thread: %+v", msgs)
	require.Empty(t, repeated, "no message twice: %+v", msgs)
	t.Logf("%s: %d Slack messages, in one thread", h.id, len(msgs))
}

// dumpBatches logs the unfinished batches' state and lane, to say where a
// rollout that did not end stands.
func (h *harness) dumpBatches() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := h.s.Fleet.Status(ctx, h.id)
	if err != nil {
		h.t.Logf("status: %v", err)
		return
	}
	h.t.Logf("rollout %s paused %+v waiting %q", st.State, st.Paused, st.WaitingFor)
	it := h.s.Temporal.GetWorkflowHistory(ctx, h.id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var evs []string
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			break
		}
		evs = append(evs, fmt.Sprintf("%d %s %s %s%s", e.GetEventId(), e.GetEventTime().AsTime().Format("15:04:05.000"), e.GetEventType(),
			e.GetWorkflowExecutionSignaledEventAttributes().GetSignalName(), e.GetStartChildWorkflowExecutionInitiatedEventAttributes().GetWorkflowId()))
	}
	if len(evs) > 60 {
		evs = evs[len(evs)-60:]
	}
	for _, e := range evs {
		h.t.Log("  ", e)
	}
	for _, ph := range st.Phases {
		for _, b := range ph.Batches {
			if b.State == workflows.BatchCompleted || b.State == workflows.BatchAborted {
				continue
			}
			lane := "-"
			if b.Lane != nil {
				lane = fmt.Sprintf("%+v", *b.Lane)
			}
			h.t.Logf("batch %d %s %+v lane %s", b.Number, b.State, b.Counts, lane)
		}
	}
}
