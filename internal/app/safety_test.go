package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	sdkclient "go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/internal/app"
	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/monitors"
	"github.com/fleet-rollout/fleet/internal/sim"
	"github.com/fleet-rollout/fleet/starter/client"
	"github.com/fleet-rollout/fleet/workflows"
)

// Whole-stack safety tests: automatic pauses on a bad version, on an
// unreadable monitors API, on a fleet freeze and on a pushed Datadog alert.
// Every wait polls (waitFor); nothing asserts wall-clock durations. Helpers
// are prefixed with safety so they do not collide with other test files.
// SAFETY_DEBUG=1 logs every batch's history (signals, publishes) when it is
// checked.

// safetyWaitFor is waitFor that stops early, with the reason, when the
// rollout ends without cond holding.
func (s *stack) safetyWaitFor(t *testing.T, id, what string, cond func(*workflows.RolloutStatus) bool) *workflows.RolloutStatus {
	t.Helper()
	st := s.waitFor(t, id, what, func(st *workflows.RolloutStatus) bool { return cond(st) || terminal(st) })
	if !cond(st) {
		last := ""
		if n := len(st.Audit); n > 0 {
			last = st.Audit[n-1].Reason + " (" + st.Audit[n-1].Outcome + ")"
		}
		t.Fatalf("rollout %s ended %s while waiting for %s: %s; counts %+v", id, st.State, what, last, st.Counts)
	}
	return st
}

// safetyClusters indexes the per-cluster detail of a rollout status (finished
// and running batches carry it; pending batches list their clusters as
// pending).
func safetyClusters(st *workflows.RolloutStatus) map[string]workflows.ClusterStatus {
	out := map[string]workflows.ClusterStatus{}
	for _, ph := range st.Phases {
		for _, b := range ph.Batches {
			for _, c := range b.Clusters {
				out[c.ID] = c
			}
		}
	}
	return out
}

// safetySelect lists, sorted, the clusters of the initial fleet keep accepts.
func (s *stack) safetySelect(keep func(fleet.Cluster) bool) []string {
	var ids []string
	for id, c := range s.before {
		if keep(c) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// safetyStarted is the subset of ids the data plane began an apply on.
func (s *stack) safetyStarted(ids []string) map[string]bool {
	out := map[string]bool{}
	for _, id := range ids {
		if s.dev.Sim.ApplyStarts(id) > 0 {
			out[id] = true
		}
	}
	return out
}

// safetyLateStarts watches the data plane for d and returns the clusters of
// ids outside allowed that began an apply meanwhile.
func (s *stack) safetyLateStarts(ids []string, allowed map[string]bool, d time.Duration) []string {
	deadline := time.Now().Add(d)
	for {
		var late []string
		for _, id := range ids {
			if !allowed[id] && s.dev.Sim.ApplyStarts(id) > 0 {
				late = append(late, id)
			}
		}
		if len(late) > 0 || time.Now().After(deadline) {
			return late
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// safetyNoNewStarts fails if any of ids outside allowed begins an apply
// within d.
func (s *stack) safetyNoNewStarts(t *testing.T, ids []string, allowed map[string]bool, d time.Duration, what string) {
	t.Helper()
	require.Empty(t, s.safetyLateStarts(ids, allowed, d), "%s: clusters outside the in-flight set began an apply", what)
}

// safetyStartsWhileStopped reads a batch's history and returns, for each
// cluster the batch sent its first apply to while it had to start nothing,
// why: after the pause signal was in its history, or after it had raised an
// incident to its rollout (whose budget is 0: the incident pauses the
// rollout), until the next resume signal. History order makes this exact:
// a signal recorded before a workflow task is seen by that task.
func safetyStartsWhileStopped(t *testing.T, c sdkclient.Client, batchID string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	it := c.GetWorkflowHistory(ctx, batchID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	out := map[string]string{}
	applied := map[string]bool{}
	var paused, raised string // why the batch had to start nothing ("" while it may)
	dc := converter.GetDefaultDataConverter()
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err, "history of %s", batchID)
		at := ev.GetEventTime().AsTime()
		if os.Getenv("SAFETY_DEBUG") != "" {
			line := fmt.Sprintf("%s %d %s %s", batchID, ev.GetEventId(), at.Format("15:04:05.000"), ev.GetEventType())
			if a := ev.GetWorkflowExecutionSignaledEventAttributes(); a != nil {
				line += " " + a.GetSignalName()
				if a.GetSignalName() == workflows.SignalClusterStatus {
					var st dataplane.Status
					_ = dc.FromPayloads(a.GetInput(), &st)
					line += fmt.Sprintf(" %s %s %d/%d", st.ClusterID, st.State, st.Broker, st.Brokers)
				}
			}
			if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == workflows.ActivityPublish {
				var in workflows.PublishInput
				_ = dc.FromPayloads(a.GetInput(), &in)
				for _, c := range in.Commands {
					line += fmt.Sprintf(" %s:%s", c.Kind, c.ClusterID)
				}
			}
			t.Log(line)
		}
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			switch ev.GetWorkflowExecutionSignaledEventAttributes().GetSignalName() {
			case workflows.Pause:
				if paused == "" {
					paused = fmt.Sprintf("the pause signal (event %d at %s)", ev.GetEventId(), at.Format("15:04:05.000"))
				}
			case workflows.Resume:
				paused, raised = "", ""
			}
		case enumspb.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
			if ev.GetSignalExternalWorkflowExecutionInitiatedEventAttributes().GetSignalName() == workflows.SignalIncident && raised == "" {
				raised = fmt.Sprintf("raising an incident (event %d at %s)", ev.GetEventId(), at.Format("15:04:05.000"))
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			a := ev.GetActivityTaskScheduledEventAttributes()
			if a.GetActivityType().GetName() != workflows.ActivityPublish {
				continue
			}
			var in workflows.PublishInput
			require.NoError(t, dc.FromPayloads(a.GetInput(), &in))
			for _, cmd := range in.Commands {
				if cmd.Kind != dataplane.Apply || applied[cmd.ClusterID] {
					continue
				}
				applied[cmd.ClusterID] = true
				var why []string
				for _, w := range []string{paused, raised} {
					if w != "" {
						why = append(why, w)
					}
				}
				if len(why) > 0 {
					out[cmd.ClusterID] = fmt.Sprintf("first apply scheduled at event %d (%s), after %s",
						ev.GetEventId(), at.Format("15:04:05.000"), strings.Join(why, " and after "))
				}
			}
		}
	}
	return out
}

// safetyFinish resumes a paused rollout and waits for its end. A rollout the
// safety layer pauses again is resumed again when allow says the new pause is
// expected (at most a few times).
func (s *stack) safetyFinish(t *testing.T, id, actor string, allow func(*workflows.PauseReason) bool) *workflows.RolloutStatus {
	t.Helper()
	ctx := context.Background()
	for round := 0; ; round++ {
		_, err := s.client.Resume(ctx, id, workflows.ActionRequest{Actor: actor, Reason: "cleared"})
		require.NoError(t, err, "resume %s", id)
		st := s.safetyWaitFor(t, id, "the end (or another pause)", func(st *workflows.RolloutStatus) bool {
			return terminal(st) || st.Paused != nil
		})
		if terminal(st) {
			return st
		}
		require.Less(t, round, 5, "%s keeps pausing: %+v", id, st.Paused)
		require.True(t, allow(st.Paused), "%s paused again unexpectedly: %+v", id, st.Paused)
		t.Logf("%s paused again after resume (expected): %s", id, st.Paused.Reason)
	}
}

const safetyBadVersionRollout = `
name: it-bad-version
target:
  version: 3.7.1
selector: product=kafka, env=prod
strategy:
  phases:
    - name: prod
      batchSize: 25
      concurrency: 10
monitoring:
  interval: 1s
schedule:
  windows: ignore
`

func TestBadVersionPausesAndNothingOutsideTheInFlightSetReceivesIt(t *testing.T) {
	const monitor = "kafka-under-replicated-partitions"
	fault := sim.Fault{Version: "3.7.1", Product: fleet.ProductKafka, Monitor: monitor, Fraction: 0.05}
	// Brokers take 300ms: a Kafka cluster (3 to 12 brokers) is in flight for
	// 0.9 to 3.6 s, so a tripped monitor is often seen mid-apply. A batch
	// (25) is larger than the window (10): clusters start one by one inside
	// a batch as others finish, the path a pause must stop.
	s := startStack(t, 300, 300*time.Millisecond, []sim.Fault{fault})
	ctx := context.Background()
	selected := s.safetySelect(func(c fleet.Cluster) bool {
		return c.Product == fleet.ProductKafka && c.Environment == fleet.EnvProd
	})
	trips := 0
	for _, id := range selected {
		if fault.Trips(s.before[id], "3.7.1") {
			trips++
		}
	}
	require.Greater(t, trips, 0, "the fault trips some selected cluster")
	require.Less(t, trips, len(selected)/4, "the fault trips only some clusters")

	id, err := s.client.Start(ctx, parseSpec(t, safetyBadVersionRollout), "integration-test")
	require.NoError(t, err)

	paused := s.safetyWaitFor(t, id, "an automatic pause", func(st *workflows.RolloutStatus) bool { return st.Paused != nil })
	// The in-flight set at the moment of the pause: what the data plane began,
	// and what the rollout had sent (in flight, done or failed).
	inSet := s.safetyStarted(selected)
	for cid, c := range safetyClusters(paused) {
		if c.State != workflows.ClusterPending && c.State != workflows.ClusterSkipped {
			inSet[cid] = true
		}
	}
	require.Equal(t, len(selected), paused.Total)
	require.Equal(t, workflows.StatePaused, paused.State)
	require.Equal(t, "fleet-safety", paused.Paused.Actor)
	require.Contains(t, paused.Paused.Reason, monitor)
	require.NotNil(t, paused.Paused.Incident)
	require.Equal(t, workflows.IncidentMonitorAlert, paused.Paused.Incident.Kind)
	require.Equal(t, monitor, paused.Paused.Incident.Monitor)
	tripped, ok := s.dev.Sim.Cluster(paused.Paused.Incident.ClusterID)
	require.True(t, ok)
	require.True(t, fault.Trips(tripped, "3.7.1"), "the incident names a cluster the fault trips")
	require.Less(t, len(inSet), len(selected), "the pause came before every cluster had started")
	t.Logf("paused with %d of %d clusters sent: %s", len(inSet), len(selected), paused.Paused.Reason)

	// Every in-flight cluster gets held (or finishes its verification), and
	// no cluster outside the set starts, now or a few seconds later.
	held := s.safetyWaitFor(t, id, "every in-flight cluster held", func(st *workflows.RolloutStatus) bool {
		return st.Counts.InFlight == 0
	})
	// The set is the brief's contract: checked, not fatal, so the rest of
	// the test still reports what the batches did.
	if late := s.safetyLateStarts(selected, inSet, 3*time.Second); len(late) > 0 {
		cl := safetyClusters(held)
		for _, cid := range late {
			t.Errorf("cluster %s outside the in-flight set at the pause began an apply while paused: %+v (rollout paused at %s)",
				cid, cl[cid], paused.Paused.At.Format(time.RFC3339Nano))
		}
	}

	// The bad build is replaced: no more trips. Resume and finish.
	require.NoError(t, s.dev.Sim.SetFaults(nil))
	st := s.safetyFinish(t, id, "alice", func(p *workflows.PauseReason) bool {
		// A cluster tripped before the fault was removed may still be found.
		if p.Incident == nil || p.Incident.Monitor != monitor {
			return false
		}
		c, ok := s.dev.Sim.Cluster(p.Incident.ClusterID)
		return ok && fault.Trips(c, "3.7.1") && inSet[c.ID]
	})
	require.Equal(t, workflows.StateCompleted, st.State, "%+v", st)

	final := safetyClusters(st)
	require.Len(t, final, len(selected))
	failed := 0
	for _, cid := range selected {
		c, ok := final[cid]
		require.True(t, ok, "cluster %s in the final status", cid)
		after, _ := s.dev.Sim.Cluster(cid)
		require.LessOrEqual(t, s.dev.Sim.ApplyStarts(cid), 1, "%s applied at most once", cid)
		alerting := s.dev.Sim.MonitorStatus(cid, monitor) == sim.StatusAlert
		if alerting {
			// Tripped: stopped and failed, never retried.
			require.Equal(t, workflows.ClusterFailed, c.State, "tripped cluster %s", cid)
			require.True(t, fault.Trips(s.before[cid], "3.7.1"), cid)
			require.True(t, inSet[cid], "tripped cluster %s was in flight before the pause", cid)
		}
		if c.State == workflows.ClusterFailed {
			failed++
			require.True(t, alerting, "failed cluster %s has its monitor alerting: %s", cid, c.Message)
			continue
		}
		require.Equal(t, workflows.ClusterDone, c.State, cid)
		require.Equal(t, "3.7.1", after.Version, cid)
		require.Equal(t, 1, s.dev.Sim.ApplyStarts(cid), cid)
	}
	require.Greater(t, failed, 0)
	require.Equal(t, failed, st.Counts.Failed)
	require.Equal(t, len(selected)-failed, st.Counts.Done)
	// Nothing outside the selection was touched.
	for cid, before := range s.before {
		if before.Product != fleet.ProductKafka || before.Environment != fleet.EnvProd {
			require.Equal(t, 0, s.dev.Sim.ApplyStarts(cid), "%s is outside the selection", cid)
		}
	}

	// What each batch did, from its history: no first apply once it had
	// the pause signal or had raised the incident that pauses the rollout.
	s.safetyCheckHistories(t, st)
}

// safetyCheckHistories reports every cluster a batch of the rollout sent its
// first apply to while it had to start nothing (safetyStartsWhileStopped).
func (s *stack) safetyCheckHistories(t *testing.T, st *workflows.RolloutStatus) {
	t.Helper()
	sdk, err := app.Dial(s.dev.Config, zap.NewNop())
	require.NoError(t, err)
	defer sdk.Close()
	cl := safetyClusters(st)
	for _, ph := range st.Phases {
		for _, b := range ph.Batches {
			if b.State == workflows.BatchPending {
				continue
			}
			bid := workflows.BatchID(st.ID, b.Number)
			for cid, why := range safetyStartsWhileStopped(t, sdk, bid) {
				t.Errorf("%s sent cluster %s (now %s) the new version while it had to start nothing: %s",
					bid, cid, cl[cid].State, why)
			}
		}
	}
}

const safetyUnknownHealthRollout = `
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
  unknownGrace: 2s
schedule:
  windows: ignore
`

func TestMonitorsEndpoint500PausesWithHealthUnknown(t *testing.T) {
	s := startStack(t, 300, 300*time.Millisecond, nil)
	ctx := context.Background()
	cases := []struct {
		name, clouds string
		code         int
	}{
		{"it-unknown-500", "aws", http.StatusInternalServerError},
		{"it-unknown-429", "gcp, azure", http.StatusTooManyRequests},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			clouds := strings.Split(strings.ReplaceAll(tc.clouds, " ", ""), ",")
			selected := s.safetySelect(func(c fleet.Cluster) bool {
				if c.Product != fleet.ProductKafka || c.Environment != fleet.EnvProd {
					return false
				}
				for _, cl := range clouds {
					if c.Cloud == cl {
						return true
					}
				}
				return false
			})
			id, err := s.client.Start(ctx, parseSpec(t, fmt.Sprintf(safetyUnknownHealthRollout, tc.name, tc.clouds)), "integration-test")
			require.NoError(t, err)
			s.safetyWaitFor(t, id, "clusters in flight", func(st *workflows.RolloutStatus) bool { return st.Counts.InFlight >= 5 })

			s.dev.Datadog.SetFailure(tc.code, -1)
			paused := s.safetyWaitFor(t, id, "a health-unknown pause", func(st *workflows.RolloutStatus) bool { return st.Paused != nil })
			require.Equal(t, workflows.StatePaused, paused.State)
			require.Equal(t, "fleet-safety", paused.Paused.Actor)
			require.Contains(t, paused.Paused.Reason, "health unknown")
			require.NotNil(t, paused.Paused.Incident)
			require.Equal(t, workflows.IncidentHealthUnknown, paused.Paused.Incident.Kind)
			require.Contains(t, paused.Paused.Reason, fmt.Sprintf("HTTP %d", tc.code), "the reason says what the API answered")
			require.Zero(t, paused.Failures, "unknown health is not a failure")
			// The worker's metrics: failed monitor reads, and the pause by kind.
			m := scrapeMetrics(t, s.dev.Config.HTTPAddr)
			failedReads, _ := m.value("fleet_health_read_failures_total")
			require.Greater(t, failedReads, 0.0, "fleet_health_read_failures_total")
			errReads, _ := m.value("fleet_health_read_seconds", "result", "error")
			require.Greater(t, errReads, 0.0, "fleet_health_read_seconds{result=error}")
			unknownPauses, _ := m.value("fleet_pauses_total", "kind", workflows.PauseKindHealthUnknown)
			require.GreaterOrEqual(t, unknownPauses, 1.0, "fleet_pauses_total{kind=health-unknown}")
			inSet := s.safetyStarted(selected)
			for cid, c := range safetyClusters(paused) {
				if c.State != workflows.ClusterPending {
					inSet[cid] = true
				}
			}
			require.Less(t, len(inSet), len(selected), "the pause came before every cluster had started")
			t.Logf("paused with %d of %d clusters sent: %s", len(inSet), len(selected), paused.Paused.Reason)

			// Held, and nothing new starts while health is unknown.
			s.safetyWaitFor(t, id, "in-flight clusters held", func(st *workflows.RolloutStatus) bool {
				return st.Counts.InFlight == 0
			})
			s.safetyNoNewStarts(t, selected, inSet, 3*time.Second, "while health is unknown")
			st, err := s.client.Status(ctx, id)
			require.NoError(t, err)
			require.Equal(t, workflows.StatePaused, st.State)

			s.dev.Datadog.ClearFailure()
			// The endpoint's own rate-limit window (10 s) may outlast the
			// failure: a read waits for a reset only within the grace it
			// feeds (interval + unknownGrace = 3 s here), so a longer one
			// pauses again, saying so; the next resume gets through.
			st = s.safetyFinish(t, id, "alice", func(p *workflows.PauseReason) bool {
				return tc.code == http.StatusTooManyRequests && strings.Contains(p.Reason, "rate limit (HTTP 429)")
			})
			require.Equal(t, workflows.StateCompleted, st.State, "%+v", st)
			require.Equal(t, len(selected), st.Counts.Done)
			for _, cid := range selected {
				after, _ := s.dev.Sim.Cluster(cid)
				require.Equal(t, "3.7.1", after.Version, cid)
				require.Equal(t, 1, s.dev.Sim.ApplyStarts(cid), "%s applied once: held clusters continue", cid)
			}
			s.safetyCheckHistories(t, st)
		})
	}
}

const safetyFreezeRollout = `
name: %s
target:
  version: 3.7.1
selector: product=kafka, env=prod, cloud=%s
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

func TestFreezeStopsTwoConcurrentRolloutsMidBatch(t *testing.T) {
	s := startStack(t, 300, 500*time.Millisecond, nil)
	ctx := context.Background()
	type rollout struct {
		id, cloud string
		selected  []string
		inSet     map[string]bool
	}
	mk := func(name, cloud string) *rollout {
		r := &rollout{cloud: cloud}
		r.selected = s.safetySelect(func(c fleet.Cluster) bool {
			return c.Product == fleet.ProductKafka && c.Environment == fleet.EnvProd && c.Cloud == cloud
		})
		require.NotEmpty(t, r.selected)
		id, err := s.client.Start(ctx, parseSpec(t, fmt.Sprintf(safetyFreezeRollout, name, cloud)), "integration-test")
		require.NoError(t, err)
		r.id = id
		return r
	}
	aws, gcp := mk("it-freeze-aws", fleet.CloudAWS), mk("it-freeze-gcp", fleet.CloudGCP)
	for _, r := range []*rollout{aws, gcp} {
		s.safetyWaitFor(t, r.id, "clusters in flight", func(st *workflows.RolloutStatus) bool {
			return st.Counts.InFlight >= 5
		})
	}

	const reason = "incident INC-4242: regional network degradation"
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	fs, err := s.client.Freeze(ctx, workflows.FreezeRequest{Actor: "sre-oncall", Reason: reason, Until: until})
	require.NoError(t, err)
	require.NotNil(t, fs.Freeze)
	require.Equal(t, reason, fs.Freeze.Reason)

	for _, r := range []*rollout{aws, gcp} {
		paused := s.safetyWaitFor(t, r.id, "paused by the freeze", func(st *workflows.RolloutStatus) bool { return st.Paused != nil })
		require.Equal(t, workflows.StatePaused, paused.State)
		require.Equal(t, "sre-oncall", paused.Paused.Actor)
		require.Contains(t, paused.Paused.Reason, reason)
		require.Contains(t, paused.Paused.Reason, "freeze")
		r.inSet = s.safetyStarted(r.selected)
		for cid, c := range safetyClusters(paused) {
			if c.State != workflows.ClusterPending {
				r.inSet[cid] = true
			}
		}
		require.Less(t, len(r.inSet), len(r.selected), "%s: the freeze came mid-rollout", r.id)
	}
	for _, r := range []*rollout{aws, gcp} {
		st := s.safetyWaitFor(t, r.id, "in-flight clusters held", func(st *workflows.RolloutStatus) bool {
			return st.Counts.InFlight == 0
		})
		require.Greater(t, st.Counts.Held, 0, "%s: clusters caught mid-apply are held: %+v", r.id, st.Counts)
	}

	// A rollout started during the freeze: the fleet client refuses to start
	// it, naming the freeze; started anyway by another service straight
	// through Temporal, it pauses itself and applies nothing.
	azureSpec := parseSpec(t, fmt.Sprintf(safetyFreezeRollout, "it-freeze-azure", fleet.CloudAzure))
	_, err = s.client.Start(ctx, azureSpec, "integration-test")
	require.ErrorIs(t, err, client.ErrFrozen)
	require.ErrorContains(t, err, reason)
	sdk, err := app.Dial(s.dev.Config, zap.NewNop())
	require.NoError(t, err)
	defer sdk.Close()
	in := workflows.RolloutInput{Spec: *azureSpec, Requester: "other-service"}
	in.Spec.Normalize()
	if in.Spec.Requester == "" {
		in.Spec.Requester = in.Requester
	}
	run, err := sdk.ExecuteWorkflow(ctx, sdkclient.StartWorkflowOptions{
		ID: workflows.RolloutID(azureSpec.Name), TaskQueue: workflows.TaskQueue,
	}, client.RolloutWorkflowType, in)
	require.NoError(t, err)
	azure := &rollout{id: run.GetID(), cloud: fleet.CloudAzure}
	azure.selected = s.safetySelect(func(c fleet.Cluster) bool {
		return c.Product == fleet.ProductKafka && c.Environment == fleet.EnvProd && c.Cloud == fleet.CloudAzure
	})
	st := s.safetyWaitFor(t, azure.id, "the new rollout paused by the freeze", func(st *workflows.RolloutStatus) bool { return st.Paused != nil })
	require.Equal(t, workflows.StatePaused, st.State)
	require.Contains(t, st.Paused.Reason, reason)
	azure.inSet = map[string]bool{}

	for _, r := range []*rollout{aws, gcp, azure} {
		s.safetyNoNewStarts(t, r.selected, r.inSet, time.Second, r.id+" frozen")
	}
	for _, r := range []*rollout{aws, gcp, azure} {
		_, err := s.client.Resume(ctx, r.id, workflows.ActionRequest{Actor: "alice", Reason: "looks fine to me"})
		var rej *client.RejectedError
		require.ErrorAs(t, err, &rej, "%s: resume during a freeze is rejected", r.id)
		require.Contains(t, rej.Message, "frozen")
		require.Contains(t, rej.Message, reason)
	}
	azure.inSet = s.safetyStarted(azure.selected)
	require.Empty(t, azure.inSet, "a rollout started during the freeze applies nothing")
	st, err = s.client.Status(ctx, azure.id)
	require.NoError(t, err)
	require.Equal(t, st.Total, st.Counts.Pending, "%+v", st.Counts)
	for _, r := range []*rollout{aws, gcp} {
		st, err := s.client.Status(ctx, r.id)
		require.NoError(t, err)
		require.Equal(t, workflows.StatePaused, st.State)
		require.Greater(t, st.Counts.Held, 0)
	}

	fs, err = s.client.FreezeStatus(ctx)
	require.NoError(t, err)
	require.NotNil(t, fs.Freeze)
	_, err = s.client.Unfreeze(ctx, "sre-oncall", "network recovered")
	require.NoError(t, err)
	fs, err = s.client.FreezeStatus(ctx)
	require.NoError(t, err)
	require.Nil(t, fs.Freeze)

	// Resume is accepted once the freeze is lifted (the broadcast may take a
	// moment to reach each rollout).
	for _, r := range []*rollout{aws, gcp, azure} {
		deadline := time.Now().Add(time.Minute)
		for {
			_, err := s.client.Resume(ctx, r.id, workflows.ActionRequest{Actor: "alice", Reason: "freeze lifted"})
			if err == nil {
				break
			}
			var rej *client.RejectedError
			require.ErrorAs(t, err, &rej)
			require.Contains(t, rej.Message, "frozen", "only the freeze may refuse the resume")
			require.True(t, time.Now().Before(deadline), "%s: resume still refused after unfreeze: %v", r.id, err)
			time.Sleep(200 * time.Millisecond)
		}
	}
	for _, r := range []*rollout{aws, gcp, azure} {
		st := s.waitFor(t, r.id, "the end", terminal)
		require.Equal(t, workflows.StateCompleted, st.State, "%+v", st)
		require.Equal(t, len(r.selected), st.Counts.Done, r.id)
		for _, cid := range r.selected {
			after, _ := s.dev.Sim.Cluster(cid)
			require.Equal(t, "3.7.1", after.Version, cid)
			require.Equal(t, 1, s.dev.Sim.ApplyStarts(cid), "%s applied once", cid)
		}
		s.safetyCheckHistories(t, st)
	}
}

const safetyWebhookRollout = `
name: it-webhook
target:
  version: 3.7.1
selector: product=kafka, env=prod
strategy:
  phases:
    - name: prod
      batchSize: 10
      concurrency: 20
monitoring:
  interval: 5m
schedule:
  windows: ignore
`

// safetyPostWebhook posts a Datadog webhook payload and returns the status code and
// decoded body.
func safetyPostWebhook(t *testing.T, addr, secret string, payload map[string]string) (int, map[string]any) {
	t.Helper()
	body, err := json.Marshal(payload)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/webhooks/datadog", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set(app.WebhookSecretHeader, secret)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := map[string]any{}
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

func TestWebhookAlertPausesWithoutWaitingForAPoll(t *testing.T) {
	const secret = "s3cr3t-webhook"
	s := startStackWith(t, stackOptions{
		Clusters:   300,
		BrokerTime: 500 * time.Millisecond,
		Configure:  func(c *app.Config) { c.WebhookSecret = secret },
	})
	ctx := context.Background()
	addr := s.dev.Config.HTTPAddr
	// The worker's HTTP server is up.
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		require.True(t, time.Now().Before(deadline), "worker HTTP at %s: %v", addr, err)
		time.Sleep(100 * time.Millisecond)
	}

	var mon monitors.Monitor
	for _, m := range monitors.Default() {
		if m.Name == "kafka-offline-partitions" {
			mon = m
		}
	}
	require.NotZero(t, mon.ID)

	id, err := s.client.Start(ctx, parseSpec(t, safetyWebhookRollout), "integration-test")
	require.NoError(t, err)
	// A cluster well inside its apply: running, with brokers left to restart.
	var target string
	s.safetyWaitFor(t, id, "a cluster mid-apply", func(st *workflows.RolloutStatus) bool {
		best := 0
		for cid, c := range safetyClusters(st) {
			if c.State != workflows.ClusterApplying || c.Broker < 1 {
				continue
			}
			if left := s.before[cid].Brokers - c.Broker; left >= 3 && left > best {
				best, target = left, cid
			}
		}
		return target != ""
	})
	require.Equal(t, sim.StatusOK, s.dev.Sim.MonitorStatus(target, mon.Name), "no poll can find anything: the monitor is green in the data")
	alert := map[string]string{
		"transition": "Triggered",
		"status":     "Alert",
		"monitorId":  fmt.Sprint(mon.ID),
		"title":      "[Triggered on {cluster:" + target + "}] " + mon.Name,
		"scope":      "cluster:" + target,
		"tags":       "cluster:" + target + ",product:kafka",
	}

	// Wrong or missing secret: 401, and nothing happens.
	code, _ := safetyPostWebhook(t, addr, "wrong-secret", alert)
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = safetyPostWebhook(t, addr, "", alert)
	require.Equal(t, http.StatusUnauthorized, code)
	// A recovery is not an alert: accepted and ignored.
	recovered := map[string]string{}
	for k, v := range alert {
		recovered[k] = v
	}
	recovered["transition"], recovered["status"] = "Recovered", "OK"
	recovered["title"] = "[Recovered on {cluster:" + target + "}] " + mon.Name
	code, body := safetyPostWebhook(t, addr, secret, recovered)
	require.Equal(t, http.StatusAccepted, code)
	require.Contains(t, body["ignored"], "not an alert")

	time.Sleep(time.Second)
	st, err := s.client.Status(ctx, id)
	require.NoError(t, err)
	require.Nil(t, st.Paused, "nothing happened")
	require.Empty(t, st.Incidents)
	require.NotEqual(t, workflows.ClusterFailed, safetyClusters(st)[target].State)

	// The real alert, with the right secret: the rollout pauses now, not at
	// the next poll (5 minutes away, and it would find the monitor green).
	var n float64
	for attempt := 0; ; attempt++ {
		code, body = safetyPostWebhook(t, addr, secret, alert)
		require.Equal(t, http.StatusAccepted, code, "%v", body)
		require.Equal(t, target, body["cluster"])
		require.Equal(t, mon.Name, body["monitor"])
		n, _ = body["batches"].(float64)
		if n >= 1 {
			break
		}
		// Visibility (the list of running rollouts) is eventually consistent.
		t.Logf("webhook attempt %d reached no batch: %v", attempt, body)
		require.Less(t, attempt, 20, "the webhook never found the batch running %s", target)
		time.Sleep(250 * time.Millisecond)
	}
	require.Equal(t, float64(1), n, "one batch holds the cluster")

	paused := s.safetyWaitFor(t, id, "a pause from the webhook", func(st *workflows.RolloutStatus) bool { return st.Paused != nil })
	require.Equal(t, "fleet-safety", paused.Paused.Actor)
	require.Contains(t, paused.Paused.Reason, mon.Name)
	require.Contains(t, paused.Paused.Reason, target)
	require.NotNil(t, paused.Paused.Incident)
	require.Equal(t, workflows.IncidentMonitorAlert, paused.Paused.Incident.Kind)
	require.Equal(t, target, paused.Paused.Incident.ClusterID)
	require.Equal(t, mon.Name, paused.Paused.Incident.Monitor)
	c := safetyClusters(paused)[target]
	require.Equal(t, workflows.ClusterFailed, c.State, "the alerting cluster is stopped")
	require.Contains(t, c.Message, "webhook")
	held := s.safetyWaitFor(t, id, "in-flight clusters held", func(st *workflows.RolloutStatus) bool {
		return st.Counts.InFlight == 0
	})
	t.Logf("paused by the webhook: %s; counts %+v", paused.Paused.Reason, held.Counts)

	// A second alert for a cluster no running batch holds reaches nobody.
	code, body = safetyPostWebhook(t, addr, secret, map[string]string{"transition": "Triggered", "monitorId": fmt.Sprint(mon.ID), "scope": "cluster:lkc-99999"})
	require.Equal(t, http.StatusAccepted, code)
	require.Equal(t, float64(0), body["batches"])
	// Not rollout-critical: ignored.
	code, body = safetyPostWebhook(t, addr, secret, map[string]string{"transition": "Triggered", "monitorId": "424242", "scope": "cluster:" + target})
	require.Equal(t, http.StatusAccepted, code)
	require.Contains(t, body["ignored"], "not rollout-critical")

	res, err := s.client.Abort(ctx, id, workflows.ActionRequest{Actor: "alice", Reason: "bad build"})
	require.NoError(t, err)
	require.NotEmpty(t, res.Message)
	end := s.waitFor(t, id, "the end", terminal)
	require.Equal(t, workflows.StateAborted, end.State)
	require.Equal(t, 1, s.dev.Sim.ApplyStarts(target))
	s.safetyCheckHistories(t, end)
}
