package metrics_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/metrics"
	"github.com/fleet-rollout/fleet/workflows"
)

func TestRolloutGaugesAreReadAtScrapeTime(t *testing.T) {
	m, err := metrics.New()
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	calls := 0
	var fail error
	paused := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	require.NoError(t, m.RegisterRollouts(func(context.Context) ([]workflows.RolloutStatus, int, error) {
		calls++
		if fail != nil {
			return nil, 0, fail
		}
		return []workflows.RolloutStatus{{
			Name: "kafka-3-7-1", Counts: workflows.Counts{Pending: 5, InFlight: 2, Done: 7, Failed: 1},
			Paused: &workflows.PauseReason{Actor: "alice", At: paused}, Failures: 1, FailureBudget: 3, Outbox: 4,
		}}, 1, nil
	}, metrics.RolloutOptions{MaxAge: time.Hour}))

	want := `
# HELP fleet_rollout_clusters Clusters of a running rollout by state (pending, inFlight, held, verifying, done, failed, aborted, skipped), as its status query counts them.
# TYPE fleet_rollout_clusters gauge
fleet_rollout_clusters{rollout="kafka-3-7-1",state="aborted"} 0
fleet_rollout_clusters{rollout="kafka-3-7-1",state="done"} 7
fleet_rollout_clusters{rollout="kafka-3-7-1",state="failed"} 1
fleet_rollout_clusters{rollout="kafka-3-7-1",state="held"} 0
fleet_rollout_clusters{rollout="kafka-3-7-1",state="inFlight"} 2
fleet_rollout_clusters{rollout="kafka-3-7-1",state="pending"} 5
fleet_rollout_clusters{rollout="kafka-3-7-1",state="skipped"} 0
fleet_rollout_clusters{rollout="kafka-3-7-1",state="verifying"} 0
# HELP fleet_rollout_paused 1 when a running rollout is paused, else 0.
# TYPE fleet_rollout_paused gauge
fleet_rollout_paused{rollout="kafka-3-7-1"} 1
# HELP fleet_outbox_depth Notifications and event batches a running rollout has queued and not yet sent (its outbox).
# TYPE fleet_outbox_depth gauge
fleet_outbox_depth{rollout="kafka-3-7-1"} 4
# HELP fleet_rollout_status_errors_total Reads of the running rollouts' status (at scrape time) that failed: the listing, or a rollout's query.
# TYPE fleet_rollout_status_errors_total counter
fleet_rollout_status_errors_total 1
`
	require.NoError(t, testutil.GatherAndCompare(m.Registry, strings.NewReader(want),
		"fleet_rollout_clusters", "fleet_rollout_paused", "fleet_outbox_depth", "fleet_rollout_status_errors_total"))
	// Within MaxAge a scrape reuses the last read.
	_, err = m.Registry.Gather()
	require.NoError(t, err)
	require.Equal(t, 1, calls, "one read serves scrapes within MaxAge")
}

func TestRolloutGaugesVanishWhenTheReadFails(t *testing.T) {
	m, err := metrics.New()
	require.NoError(t, err)
	require.NoError(t, m.RegisterRollouts(func(context.Context) ([]workflows.RolloutStatus, int, error) {
		return nil, 0, errors.New("temporal unavailable")
	}, metrics.RolloutOptions{}))
	n, err := testutil.GatherAndCount(m.Registry, "fleet_rollout_clusters")
	require.NoError(t, err)
	require.Zero(t, n, "no stale gauges")
	n, err = testutil.GatherAndCount(m.Registry, "fleet_rollout_status_errors_total")
	require.NoError(t, err)
	require.Equal(t, 1, n)
}

func TestNilMetricsRecordNothingAndHealthReadsAreCounted(t *testing.T) {
	var none *metrics.Metrics
	none.ObserveHealthRead(time.Second, "timeout", errors.New("x"))
	none.ObserveBridgeLag(time.Second)
	require.Nil(t, none.TemporalHandler())

	m, err := metrics.New()
	require.NoError(t, err)
	m.ObserveHealthRead(20*time.Millisecond, "", nil)
	m.ObserveHealthRead(5*time.Second, "timeout", errors.New("deadline"))
	m.ObserveBridgeLag(300 * time.Millisecond)
	m.TemporalHandler().WithTags(map[string]string{"kind": "manual"}).Counter(workflows.MetricPauses).Inc(1)

	rec := httptest.NewRecorder()
	m.HTTPHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	require.Contains(t, body, `fleet_health_read_seconds_count{result="ok"} 1`)
	require.Contains(t, body, `fleet_health_read_seconds_count{result="error"} 1`)
	require.Contains(t, body, `fleet_health_read_failures_total{reason="timeout"} 1`)
	require.Contains(t, body, `fleet_health_read_failures_total{reason="rate-limited"} 0`)
	require.Contains(t, body, `fleet_bridge_lag_seconds_count 1`)
	require.Contains(t, body, `fleet_pauses_total{kind="manual"} 1`)
}
