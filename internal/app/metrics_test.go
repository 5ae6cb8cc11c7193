package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/internal/app"
	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/sim"
	"github.com/fleet-rollout/fleet/workflows"
)

const metricsRollout = `
name: it-metrics
target:
  version: 3.7.1
selector: product=kafka
errorBudget: {max: 1000}
strategy:
  phases:
    - name: canary
      selector: env=internal
      batchSize: 10
      strict: true
      bake: 1s
    - name: rest
      selector: env in (non-prod, prod)
      batchSize: 10
      concurrency: 40
      requireApproval: true
monitoring:
  interval: 1s
schedule:
  windows: ignore
`

// scrape is one read of /metrics, by metric family name.
type scrape map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T, addr string) scrape {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

// value is the sum of the family's series whose labels include labels (a
// counter's or gauge's value, a histogram's count); ok is false when no
// series matches.
func (s scrape) value(name string, labels ...string) (v float64, ok bool) {
	f := s[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				match = false
			}
		}
		if !match {
			continue
		}
		ok = true
		switch {
		case m.Counter != nil:
			v += m.GetCounter().GetValue()
		case m.Gauge != nil:
			v += m.GetGauge().GetValue()
		case m.Histogram != nil:
			v += float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			v += m.GetUntyped().GetValue()
		}
	}
	return v, ok
}

func (s scrape) names() string {
	var out []string
	for n := range s {
		if strings.HasPrefix(n, "fleet_") || strings.HasPrefix(n, "temporal_") {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// TestMetricsEndpointDuringARollout runs a rollout on the whole stack and
// scrapes the worker's /metrics: the Temporal SDK's metrics (through the
// client's MetricsHandler) and the fleet's own, with values that match the
// rollout's status: clusters by state at the prod gate, the manual pause
// counted by kind, the incidents of the faulty clusters, health reads and
// the bridge's deliveries.
func TestMetricsEndpointDuringARollout(t *testing.T) {
	fault := sim.Fault{Version: "3.7.1", Product: fleet.ProductKafka, Monitor: "kafka-under-replicated-partitions", Fraction: 0.1}
	s := startStack(t, 200, 5*time.Millisecond, []sim.Fault{fault})
	addr := s.dev.Config.HTTPAddr
	ctx := context.Background()
	id, err := s.client.Start(ctx, parseSpec(t, metricsRollout), "integration-test")
	require.NoError(t, err)

	s.waitFor(t, id, "the rest gate", func(st *workflows.RolloutStatus) bool {
		return st.State == workflows.StateAwaitingApproval && strings.Contains(st.WaitingFor, "phase rest")
	})
	_, err = s.client.Pause(ctx, id, workflows.ActionRequest{Actor: "alice", Reason: "look at the canaries"})
	require.NoError(t, err)
	st := s.waitFor(t, id, "the pause", func(st *workflows.RolloutStatus) bool { return st.Paused != nil })
	require.Greater(t, st.Counts.Done, 0, "%+v", st.Counts)
	require.Greater(t, st.Counts.Pending, 0, "%+v", st.Counts)

	// The rollout's gauges are read at scrape time (cached up to 10 s): poll
	// until they show the pause, then compare every state with the status.
	want := map[string]int{
		"pending": st.Counts.Pending, "inFlight": st.Counts.InFlight, "held": st.Counts.Held, "verifying": st.Counts.Verifying,
		"done": st.Counts.Done, "failed": st.Counts.Failed, "aborted": st.Counts.Aborted, "skipped": st.Counts.Skipped,
	}
	var m scrape
	deadline := time.Now().Add(60 * time.Second)
	for {
		m = scrapeMetrics(t, addr)
		if v, _ := m.value("fleet_rollout_paused", "rollout", "it-metrics"); v == 1 {
			break
		}
		require.True(t, time.Now().Before(deadline), "no fleet_rollout_paused 1 for it-metrics; families: %s", m.names())
		time.Sleep(time.Second)
	}
	for state, n := range want {
		v, ok := m.value("fleet_rollout_clusters", "rollout", "it-metrics", "state", state)
		require.True(t, ok, "fleet_rollout_clusters{state=%q}", state)
		require.Equal(t, float64(n), v, "fleet_rollout_clusters{rollout=it-metrics,state=%q}", state)
	}
	v, _ := m.value("fleet_rollout_failures", "rollout", "it-metrics")
	require.Equal(t, float64(st.Failures), v)
	v, _ = m.value("fleet_rollout_failure_budget", "rollout", "it-metrics")
	require.Equal(t, float64(st.FailureBudget), v)
	since, ok := m.value("fleet_rollout_paused_since_timestamp_seconds", "rollout", "it-metrics")
	require.True(t, ok)
	require.InDelta(t, float64(st.Paused.At.Unix()), since, 1)
	v, _ = m.value("fleet_rollouts_running")
	require.Equal(t, 1.0, v)

	// Workflow-side counters through the SDK's handler: the manual pause,
	// once (replays do not count again), and the canaries' incidents.
	v, _ = m.value("fleet_pauses_total", "kind", workflows.PauseKindManual)
	require.Equal(t, 1.0, v, "fleet_pauses_total{kind=manual}; families: %s", m.names())
	incidents, _ := m.value("fleet_incidents_total", "kind", string(workflows.IncidentMonitorAlert))
	require.GreaterOrEqual(t, incidents, float64(st.Failures), "an incident per failed cluster at least")
	if st.Failures > 0 {
		require.Greater(t, incidents, 0.0)
	}

	// The SDK's own metrics: requests, the canary batches completed.
	v, _ = m.value("temporal_request_total")
	require.Greater(t, v, 0.0, "temporal_request_total; families: %s", m.names())
	canaryBatches := len(st.Phases[0].Batches)
	v, _ = m.value("temporal_workflow_completed_total", "workflow_type", workflows.WorkflowBatch)
	require.GreaterOrEqual(t, v, float64(canaryBatches), "temporal_workflow_completed_total{workflow_type=Batch}")
	v, _ = m.value("temporal_activity_execution_latency_seconds", "activity_type", workflows.ActivityCheckHealth)
	require.Greater(t, v, 0.0, "CheckHealth activity latency")

	// Health reads and the bridge.
	v, _ = m.value("fleet_health_read_seconds", "result", "ok")
	require.Greater(t, v, 0.0, "fleet_health_read_seconds{result=ok}")
	delivered, _ := m.value("fleet_bridge_events_delivered_total")
	require.Greater(t, delivered, 0.0)
	lags, _ := m.value("fleet_bridge_lag_seconds")
	require.Greater(t, lags, 0.0)

	// Pacing as a raw signal with the JSON another SDK sends (a count as a
	// string, a duration string): applied and audited like the update.
	tc, err := app.Dial(s.dev.Config, zap.NewNop())
	require.NoError(t, err)
	defer tc.Close()
	require.NoError(t, tc.SignalWorkflow(ctx, id, "", workflows.UpdatePacing,
		json.RawMessage(`{"actor":"alice","concurrency":"30","bake":"2s","reason":"raw signal"}`)))
	st = s.waitFor(t, id, "pacing by signal", func(st *workflows.RolloutStatus) bool {
		for _, a := range st.Audit {
			if a.Action == workflows.UpdatePacing && a.Outcome == "applied" {
				return true
			}
		}
		return false
	})
	require.Equal(t, 30, st.Phases[1].Concurrency, "the rest phase takes the signal's concurrency")

	// Resume, approve, finish: the rollout leaves the gauges, its workflow
	// counts as completed.
	_, err = s.client.Resume(ctx, id, workflows.ActionRequest{Actor: "alice", Reason: "canaries fine"})
	require.NoError(t, err)
	_, err = s.client.Approve(ctx, id, workflows.ApproveRequest{Actor: "bob", Phase: "rest", Comment: "go"})
	require.NoError(t, err)
	st = s.waitFor(t, id, "the end", terminal)
	require.Equal(t, workflows.StateCompleted, st.State, "%+v", st)
	deadline = time.Now().Add(60 * time.Second)
	for {
		m = scrapeMetrics(t, addr)
		done, _ := m.value("temporal_workflow_completed_total", "workflow_type", workflows.WorkflowRollout)
		_, listed := m.value("fleet_rollout_clusters", "rollout", "it-metrics")
		if done == 1 && !listed {
			break
		}
		require.True(t, time.Now().Before(deadline), "after the end: Rollout completed %v, still listed %v", done, listed)
		time.Sleep(time.Second)
	}
	v, _ = m.value("fleet_pauses_total", "kind", workflows.PauseKindManual)
	require.Equal(t, 1.0, v, "still one manual pause")
	v, _ = m.value("fleet_rollouts_running")
	require.Equal(t, 0.0, v)
}
