package workflows_test

import (
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/fleet-rollout/fleet/workflows"
)

// countingHandler records the counters workflows increment, by name and
// tags ("fleet_pauses{kind=manual}").
type countingHandler struct {
	mu     *sync.Mutex
	tags   map[string]string
	counts map[string]int64
}

func newCountingHandler() *countingHandler {
	return &countingHandler{mu: &sync.Mutex{}, counts: map[string]int64{}}
}

func (h *countingHandler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := map[string]string{}
	for k, v := range h.tags {
		merged[k] = v
	}
	for k, v := range tags {
		merged[k] = v
	}
	return &countingHandler{mu: h.mu, tags: merged, counts: h.counts}
}

// key names a series by the tags the fleet sets (the SDK's own are left out).
func (h *countingHandler) key(name string) string {
	var parts []string
	for k, v := range h.tags {
		switch k {
		case "namespace", "task_queue", "workflow_type", "activity_type", "worker_type", "client_name", "operation":
			continue
		}
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return name + "{" + strings.Join(parts, ",") + "}"
}

type counterFunc func(int64)

func (f counterFunc) Inc(d int64) { f(d) }

type gaugeFunc func(float64)

func (f gaugeFunc) Update(v float64) { f(v) }

type timerFunc func(time.Duration)

func (f timerFunc) Record(d time.Duration) { f(d) }

func (h *countingHandler) Counter(name string) client.MetricsCounter {
	k := h.key(name)
	return counterFunc(func(d int64) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.counts[k] += d
	})
}

func (h *countingHandler) Gauge(string) client.MetricsGauge { return gaugeFunc(func(float64) {}) }

func (h *countingHandler) Timer(string) client.MetricsTimer {
	return timerFunc(func(time.Duration) {})
}

func (h *countingHandler) count(series string) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts[series]
}

// TestPausesAndIncidentsAreCountedByKind: the error budget's pause and the
// incident behind it, then a person's pause, each counted once by kind.
func TestPausesAndIncidentsAreCountedByKind(t *testing.T) {
	h := newRolloutHarness(t, 3, singlePhasePlan(8))
	h.plane.run(h.env, time.Second, 20*time.Minute)
	h.health = alertOn("lkc-003")
	resumed, paused := false, false
	for s := 5 * time.Second; s < 10*time.Minute; s += 5 * time.Second {
		h.env.RegisterDelayedCallback(func() {
			st := h.status(t)
			if st.Paused != nil && !st.State.Terminal() && !resumed {
				resumed = true
				h.update(workflows.Resume, workflows.ActionRequest{Actor: "alice", Reason: "one failure is fine"})
				return
			}
			if resumed && !paused && !st.State.Terminal() {
				paused = true
				h.update(workflows.Pause, workflows.ActionRequest{Actor: "alice", Reason: "look"})
				h.update(workflows.Resume, workflows.ActionRequest{Actor: "alice", Reason: "looked"})
			}
		}, s)
	}
	h.env.ExecuteWorkflow(workflows.WorkflowRollout, rolloutInput())
	require.NoError(t, h.env.GetWorkflowError())
	require.True(t, resumed && paused)
	require.Equal(t, int64(1), h.metrics.count("fleet_pauses{kind=error-budget}"), "%v", h.metrics.counts)
	require.Equal(t, int64(1), h.metrics.count("fleet_pauses{kind=manual}"), "%v", h.metrics.counts)
	require.Equal(t, int64(1), h.metrics.count("fleet_incidents{kind=monitor-alert}"), "%v", h.metrics.counts)
}
