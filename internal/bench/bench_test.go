package bench

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

func TestSlidingWindow(t *testing.T) {
	s := time.Second
	require.Equal(t, time.Duration(0), slidingWindow(nil, 3))
	// Two slots: 4 | 1,1,1 -> the short jobs share one slot.
	require.Equal(t, 4*s, slidingWindow([]time.Duration{4 * s, s, s, s}, 2))
	// One slot: the sum.
	require.Equal(t, 6*s, slidingWindow([]time.Duration{s, 2 * s, 3 * s}, 1))
	// Enough slots: the longest.
	require.Equal(t, 3*s, slidingWindow([]time.Duration{s, 2 * s, 3 * s}, 10))
}

func TestPercentile(t *testing.T) {
	require.Equal(t, 0.0, percentile(nil, 50))
	xs := []float64{5, 1, 4, 2, 3}
	require.Equal(t, 3.0, percentile(xs, 50))
	require.Equal(t, 5.0, percentile(xs, 99))
	require.Equal(t, 1.0, percentile(xs, 1))
	require.Equal(t, []float64{5, 1, 4, 2, 3}, xs, "the input is not sorted in place")
}

func TestRolloutSpec(t *testing.T) {
	r, err := RolloutSpec("bench-10", "99.0.0", 250, time.Second, "")
	require.NoError(t, err)
	require.Nil(t, r.Strategy.Phases[0].OrderBy)
	ordered, err := RolloutSpec("bench-10", "99.0.0", 250, time.Second, "brokers")
	require.NoError(t, err)
	require.Equal(t, "brokers desc", ordered.PhaseOrderBy(ordered.Strategy.Phases[0]).String())
	require.Equal(t, "bench-10", r.Name)
	require.Empty(t, r.Selector, "every cluster")
	require.Len(t, r.Strategy.Phases, 1)
	require.Equal(t, 250, r.Strategy.Phases[0].Concurrency)
	require.Equal(t, "25", r.Strategy.Phases[0].BatchSize)
}

func TestVmHWM(t *testing.T) {
	kb, err := vmHWM()
	require.NoError(t, err)
	require.Greater(t, kb, int64(1000))
}

// TestRunSmall runs the whole benchmark on a small fleet: every measurement
// is taken and makes sense.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole stack")
	}
	res, err := RunOne(context.Background(), Options{
		Concurrency:     50,
		BrokerTime:      100 * time.Millisecond,
		MonitorInterval: 500 * time.Millisecond,
		Pauses:          2,
		Idle:            5 * time.Second,
		BareApply:       true,
		Seed:            3,
		Timeout:         3 * time.Minute,
		TempDir:         t.TempDir(),
		Log:             zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)),
		Progress:        t.Logf,
	}, 300)
	require.NoError(t, err)
	require.Empty(t, res.Errors)
	require.Equal(t, "completed", res.RolloutState)
	require.Equal(t, 300, res.Selected)
	require.Equal(t, 12, res.Batches)
	require.Equal(t, res.Selected, res.ExactlyOnce, res.Violations)
	require.Greater(t, float64(res.Makespan), 0.0)
	require.GreaterOrEqual(t, float64(res.BatchBound), float64(res.Ideal))
	require.GreaterOrEqual(t, float64(res.WindowBound), float64(res.Ideal))
	require.Greater(t, res.MeanInFlight, 0.0)
	require.LessOrEqual(t, res.MaxInFlight, res.Concurrency, "never more clusters in flight than the concurrency")
	require.Greater(t, res.RatioIdeal, 1.0)
	require.Greater(t, float64(res.BareNoop), 0.0)
	require.Greater(t, float64(res.BareApply), 0.0)
	require.Greater(t, res.MaxHistoryEvents, int64(10))
	require.Greater(t, res.RolloutHistory, int64(10))
	require.Greater(t, res.MaxBatchHistory, int64(10))
	require.Greater(t, res.PeakRSSMB, 10.0)
	require.Greater(t, res.PeakHeapMB, 1.0)
	require.Len(t, res.PauseSamplesMS, 2)
	require.Greater(t, res.PauseP50MS, 0.0)
	require.Empty(t, res.FinalStatusError)
	require.Equal(t, Seconds(5), res.IdleWindow)
	require.Greater(t, res.IdleHeld, 0)
	require.Greater(t, res.IdleWorkflows, 1, "the rollout and at least one batch")
	require.GreaterOrEqual(t, res.IdleEvents, int64(0))
	require.GreaterOrEqual(t, res.IdleEventsPerHourMax, res.IdleEventsPerHourMean)
	t.Logf("%+v", res)
}
