package bench

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"
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
	require.GreaterOrEqual(t, res.HistoriesScanned, res.Batches+1, "the rollout's and every batch's history")
	require.Greater(t, res.MaxPayloadBytes, int64(100))
	require.False(t, res.WorkerProcess)
	require.Zero(t, res.WorkerPeakRSSMB)
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

func TestParseCases(t *testing.T) {
	cs, err := ParseCases([]int{2000, 20000}, "250,25@2000")
	require.NoError(t, err)
	require.Equal(t, []Case{{2000, 250}, {2000, 25}, {20000, 250}}, cs)
	cs, err = ParseCases([]int{20000}, "250, 25@2000")
	require.NoError(t, err)
	require.Equal(t, []Case{{20000, 250}}, cs, "C@N for an N not run is ignored")
	cs, err = ParseCases([]int{10}, "5,5,7")
	require.NoError(t, err)
	require.Equal(t, []Case{{10, 5}, {10, 7}}, cs, "a repeated concurrency runs once")
	for _, bad := range []string{"", "0", "x", "25@", "25@-1", "25@2000"} {
		_, err := ParseCases([]int{100}, bad)
		require.Error(t, err, "%q", bad)
	}
}

func TestEventLargestPayload(t *testing.T) {
	payload := func(n int) *commonpb.Payload {
		return &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: make([]byte, n)}
	}
	big := payload(5000)
	// A local activity's result: a marker's details (a map of Payloads).
	marker := &historypb.HistoryEvent{
		EventType: enums.EVENT_TYPE_MARKER_RECORDED,
		Attributes: &historypb.HistoryEvent_MarkerRecordedEventAttributes{MarkerRecordedEventAttributes: &historypb.MarkerRecordedEventAttributes{
			MarkerName: "LocalActivity",
			Details: map[string]*commonpb.Payloads{
				"data":   {Payloads: []*commonpb.Payload{payload(10), big}},
				"result": {Payloads: []*commonpb.Payload{payload(100)}},
			},
		}},
	}
	require.Equal(t, proto.Size(big), eventLargestPayload(marker))
	require.Greater(t, proto.Size(big), 5000, "metadata counts")

	// A search attribute (a map of single Payloads) larger than the input.
	sa := payload(700)
	started := &historypb.HistoryEvent{
		EventType: enums.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
		Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{
			Input:            &commonpb.Payloads{Payloads: []*commonpb.Payload{payload(300)}},
			SearchAttributes: &commonpb.SearchAttributes{IndexedFields: map[string]*commonpb.Payload{"RolloutName": sa}},
		}},
	}
	require.Equal(t, proto.Size(sa), eventLargestPayload(started))
	require.Equal(t, 0, eventLargestPayload(&historypb.HistoryEvent{EventType: enums.EVENT_TYPE_TIMER_FIRED}))
}

// TestRunWorkerProcess runs a tiny benchmark with the worker as its own
// process (the production binary): the rollout completes exactly once,
// the worker's peak memory and CPU profile are taken, and the histories
// are read for their largest payload.
func TestRunWorkerProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the worker and starts the whole stack")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "worker")
	require.NoError(t, BuildWorker(context.Background(), bin))
	res, err := RunOne(context.Background(), Options{
		Concurrency:      25,
		BrokerTime:       50 * time.Millisecond,
		MonitorInterval:  500 * time.Millisecond,
		Seed:             5,
		Timeout:          3 * time.Minute,
		TempDir:          dir,
		WorkerBinary:     bin,
		WorkerCPUProfile: filepath.Join(dir, "cpu.pprof"),
		WorkerLogDir:     filepath.Join(dir, "logs"),
		Log:              zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)),
		Progress:         t.Logf,
	}, 100)
	require.NoError(t, err)
	require.Empty(t, res.Errors)
	require.True(t, res.WorkerProcess)
	require.Equal(t, "completed", res.RolloutState)
	require.Equal(t, 100, res.Selected)
	require.Equal(t, res.Selected, res.ExactlyOnce, res.Violations)
	require.Greater(t, res.WorkerPeakRSSMB, 10.0, "the worker process's VmHWM")
	require.Greater(t, res.WorkerRolloutRSSMB, 10.0)
	require.GreaterOrEqual(t, res.WorkerPeakRSSMB, res.WorkerRolloutRSSMB)
	require.Equal(t, filepath.Join(dir, "cpu.worker-n100-c25.pprof"), res.WorkerCPUProfile)
	st, err := os.Stat(res.WorkerCPUProfile)
	require.NoError(t, err)
	require.Positive(t, st.Size())
	require.FileExists(t, filepath.Join(dir, "logs", "worker-n100-c25.log"))
	require.GreaterOrEqual(t, res.HistoriesScanned, res.Batches+1, "the rollout's and every batch's history")
	require.Greater(t, res.MaxPayloadBytes, int64(100))
	require.NotEmpty(t, res.MaxPayloadAt)
	require.Greater(t, res.RolloutHistory, int64(10))
	require.Greater(t, res.MaxBatchHistory, int64(10))
	t.Logf("worker peak RSS %.1f MB (%.1f MB at the rollout's end), bench process %.1f MB; largest payload %d B in %s",
		res.WorkerPeakRSSMB, res.WorkerRolloutRSSMB, res.PeakRSSMB, res.MaxPayloadBytes, res.MaxPayloadAt)
}
