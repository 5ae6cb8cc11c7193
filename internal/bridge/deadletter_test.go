package bridge_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.uber.org/zap/zaptest"

	"github.com/fleet-rollout/fleet/internal/bridge"
	"github.com/fleet-rollout/fleet/internal/dataplane"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bridge.Class
	}{
		{serviceerror.NewNotFound("workflow execution already completed"), bridge.Permanent},
		{serviceerror.NewInvalidArgument("Blob data size exceeds limit."), bridge.Permanent},
		{serviceerror.NewInvalidArgument("exceeded workflow execution limit for signal events"), bridge.Permanent},
		{serviceerror.NewFailedPrecondition("x"), bridge.Permanent},
		{fmt.Errorf("wrapped: %w", serviceerror.NewNotFound("gone")), bridge.Permanent},
		{serviceerror.NewResourceExhausted(enumspb.RESOURCE_EXHAUSTED_CAUSE_UNSPECIFIED, "grpc: received message larger than max"), bridge.Permanent},
		{serviceerror.NewResourceExhausted(enumspb.RESOURCE_EXHAUSTED_CAUSE_PERSISTENCE_STORAGE_LIMIT, "storage"), bridge.Permanent},
		{serviceerror.NewResourceExhausted(enumspb.RESOURCE_EXHAUSTED_CAUSE_BUSY_WORKFLOW, "busy"), bridge.Transient},
		{serviceerror.NewResourceExhausted(enumspb.RESOURCE_EXHAUSTED_CAUSE_RPS_LIMIT, "rps"), bridge.Global},
		{serviceerror.NewResourceExhausted(enumspb.RESOURCE_EXHAUSTED_CAUSE_SYSTEM_OVERLOADED, "overloaded"), bridge.Global},
		{serviceerror.NewUnavailable("down"), bridge.Global},
		{serviceerror.NewDeadlineExceeded("slow"), bridge.Global},
		{serviceerror.NewPermissionDenied("no", ""), bridge.Global},
		{context.DeadlineExceeded, bridge.Global},
		{serviceerror.NewInternal("oops"), bridge.Transient},
		{errors.New("something"), bridge.Transient},
	} {
		require.Equal(t, tc.want, bridge.Classify(tc.err), "%T %v", tc.err, tc.err)
	}
}

// funcSignaler answers each signal with fn.
type funcSignaler struct {
	mu   sync.Mutex
	fn   func(id string, sts []dataplane.Status) error
	got  map[string][]dataplane.Status
	sigs map[string]int
}

func (f *funcSignaler) SignalWorkflow(_ context.Context, id, _, _ string, arg any) error {
	sts := arg.([]dataplane.Status)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fn(id, sts); err != nil {
		return err
	}
	f.got[id] = append(f.got[id], sts...)
	f.sigs[id]++
	return nil
}

func (f *funcSignaler) events(id string) []dataplane.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]dataplane.Status(nil), f.got[id]...)
}

type fixture struct {
	kc   *kfake.Cluster
	prod *kgo.Client
	ctx  context.Context
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, dataplane.StatusTopic))
	require.NoError(t, err)
	t.Cleanup(kc.Close)
	prod, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...), kgo.DefaultProduceTopic(dataplane.StatusTopic))
	require.NoError(t, err)
	t.Cleanup(prod.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	return &fixture{kc: kc, prod: prod, ctx: ctx}
}

func (f *fixture) produce(t *testing.T, sts ...dataplane.Status) {
	t.Helper()
	var recs []*kgo.Record
	for _, st := range sts {
		v, err := dataplane.Encode(st)
		require.NoError(t, err)
		recs = append(recs, &kgo.Record{Key: []byte(st.ClusterID), Value: v})
	}
	require.NoError(t, f.prod.ProduceSync(f.ctx, recs...).FirstErr())
}

func (f *fixture) run(t *testing.T, cfg bridge.Config, sig bridge.Signaler) *bridge.Bridge {
	t.Helper()
	cfg.Brokers = f.kc.ListenAddrs()
	cfg.Signal = "cluster-statuses"
	br, err := bridge.New(cfg, sig, zaptest.NewLogger(t))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan error, 1)
	go func() { done <- br.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return br
}

// readDead reads n dead letters from the dead-letter topic.
func readDead(t *testing.T, brokers []string, n int) []bridge.DeadLetter {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(dataplane.StatusDeadTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []bridge.DeadLetter
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "read %d of %d dead letters", len(out), n)
		fs.EachRecord(func(r *kgo.Record) {
			var d bridge.DeadLetter
			require.NoError(t, json.Unmarshal(r.Value, &d))
			out = append(out, d)
		})
	}
	require.Len(t, out, n)
	return out
}

func statuses(wf string, clusters, brokers int) []dataplane.Status {
	var out []dataplane.Status
	for b := 1; b <= brokers; b++ {
		for c := range clusters {
			out = append(out, dataplane.Status{ClusterID: fmt.Sprintf("%s-c%02d", wf, c), Generation: 2, State: dataplane.Progress, Broker: b, Brokers: brokers, ReplyTo: wf})
		}
	}
	return out
}

// A workflow whose signals keep failing with a transient error does not hold
// back the others for ever: past RetryFor its events are dead-lettered, and
// every other workflow's statuses, before and after it, are delivered. A
// workflow that fails a few times and recovers loses nothing.
func TestTransientErrorsDoNotBlockOtherWorkflows(t *testing.T) {
	f := newFixture(t)
	flaky := 0
	sig := &funcSignaler{got: map[string][]dataplane.Status{}, sigs: map[string]int{}, fn: func(id string, _ []dataplane.Status) error {
		switch id {
		case "stuck":
			return serviceerror.NewInternal("history shard is sulking")
		case "busy":
			flaky++
			if flaky <= 3 {
				return serviceerror.NewResourceExhausted(enumspb.RESOURCE_EXHAUSTED_CAUSE_BUSY_WORKFLOW, "workflow is busy")
			}
		}
		return nil
	}}
	br := f.run(t, bridge.Config{RetryFor: 700 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}, sig)
	var first []dataplane.Status
	first = append(first, statuses("ok-1", 4, 3)...)
	first = append(first, statuses("stuck", 2, 3)...)
	first = append(first, statuses("busy", 2, 3)...)
	f.produce(t, first...)
	require.Eventually(t, func() bool {
		d, _ := br.Stats()
		return d == 18
	}, 20*time.Second, 20*time.Millisecond)
	// After the stuck workflow's events were dead-lettered, later events
	// flow (the poll that held it has been committed).
	f.produce(t, statuses("ok-2", 3, 2)...)
	require.Eventually(t, func() bool {
		d, dropped := br.Stats()
		return d == 24 && dropped == 6
	}, 20*time.Second, 20*time.Millisecond)
	require.Len(t, sig.events("ok-1"), 12)
	require.Len(t, sig.events("busy"), 6)
	require.Len(t, sig.events("ok-2"), 6)
	require.Empty(t, sig.events("stuck"))
	byReason, total := br.DeadLettered()
	require.Equal(t, int64(6), total)
	require.Equal(t, int64(6), byReason[bridge.ReasonRetriesExhausted])
	for _, d := range readDead(t, f.kc.ListenAddrs(), 6) {
		require.Equal(t, "stuck", d.Workflow)
		require.Equal(t, bridge.ReasonRetriesExhausted, d.Reason)
		require.Equal(t, "transient", d.Class)
		require.Contains(t, d.Error, "sulking")
		require.Greater(t, d.Attempts, 1)
	}
}

// While Temporal as a whole is unreachable nothing is dead-lettered, however
// long it lasts: every event is delivered once it is back.
func TestGlobalOutageIsWaitedOut(t *testing.T) {
	f := newFixture(t)
	var down sync.Mutex
	until := time.Now().Add(1500 * time.Millisecond)
	sig := &funcSignaler{got: map[string][]dataplane.Status{}, sigs: map[string]int{}, fn: func(string, []dataplane.Status) error {
		down.Lock()
		defer down.Unlock()
		if time.Now().Before(until) {
			return serviceerror.NewUnavailable("connection refused")
		}
		return nil
	}}
	br := f.run(t, bridge.Config{RetryFor: 200 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}, sig)
	f.produce(t, append(statuses("a", 3, 2), statuses("b", 3, 2)...)...)
	require.Eventually(t, func() bool {
		d, _ := br.Stats()
		return d == 12
	}, 20*time.Second, 20*time.Millisecond)
	_, dropped := br.Stats()
	require.Zero(t, dropped)
	_, total := br.DeadLettered()
	require.Zero(t, total)
}

// A workflow's events of one poll go in signals of at most MaxSignalBytes;
// a signal refused for its size is split, so that only an event that is too
// big on its own is dead-lettered.
func TestOversizedSignalsAreSplitAndTheOversizedEventDeadLettered(t *testing.T) {
	f := newFixture(t)
	const limit = 4 << 10
	sig := &funcSignaler{got: map[string][]dataplane.Status{}, sigs: map[string]int{}, fn: func(_ string, sts []dataplane.Status) error {
		b, _ := json.Marshal(sts)
		if len(b) > limit {
			return serviceerror.NewInvalidArgument("Blob data size exceeds limit.")
		}
		return nil
	}}
	// MaxSignalBytes above the server's limit, so the splitting is exercised.
	br := f.run(t, bridge.Config{MaxSignalBytes: 64 << 10}, sig)
	sts := statuses("wf", 10, 5)
	huge := sts[7]
	huge.Message = strings.Repeat("x", 2*limit)
	sts[7] = huge
	f.produce(t, sts...)
	require.Eventually(t, func() bool {
		d, dropped := br.Stats()
		return d == 49 && dropped == 1
	}, 20*time.Second, 20*time.Millisecond)
	got := sig.events("wf")
	require.Len(t, got, 49)
	// Order per cluster kept.
	last := map[string]int{}
	for _, e := range got {
		require.Greater(t, e.Broker, last[e.ClusterID])
		last[e.ClusterID] = e.Broker
	}
	dead := readDead(t, f.kc.ListenAddrs(), 1)
	require.Equal(t, bridge.ReasonPermanent, dead[0].Reason)
	require.Equal(t, "*serviceerror.InvalidArgument", dead[0].ErrorType)
	st, err := dataplane.DecodeStatus(dead[0].Event)
	require.NoError(t, err)
	require.Equal(t, huge.ClusterID, st.ClusterID)
	require.Equal(t, huge.Broker, st.Broker)
}

// A workflow past its signal limit refuses every signal: its events are
// dead-lettered at the first refusal, without splitting, and events that
// name no workflow are dead-lettered too; the others are delivered.
func TestSignalLimitAndNoReplyToAreDeadLettered(t *testing.T) {
	f := newFixture(t)
	var calls sync.Map
	sig := &funcSignaler{got: map[string][]dataplane.Status{}, sigs: map[string]int{}, fn: func(id string, _ []dataplane.Status) error {
		n, _ := calls.LoadOrStore(id, new(int))
		*n.(*int)++
		if id == "full" {
			return serviceerror.NewInvalidArgument("exceeded workflow execution limit for signal events")
		}
		return nil
	}}
	br := f.run(t, bridge.Config{}, sig)
	sts := append(statuses("full", 4, 2), statuses("fine", 2, 2)...)
	sts = append(sts, dataplane.Status{ClusterID: "orphan", Generation: 1, State: dataplane.Completed})
	f.produce(t, sts...)
	require.Eventually(t, func() bool {
		d, dropped := br.Stats()
		return d == 4 && dropped == 9
	}, 20*time.Second, 20*time.Millisecond)
	n, _ := calls.Load("full")
	require.Equal(t, 1, *n.(*int), "no retry, no split")
	byReason, _ := br.DeadLettered()
	require.Equal(t, map[string]int64{bridge.ReasonPermanent: 8, bridge.ReasonNoReplyTo: 1}, byReason)
	reasons := map[string]int{}
	for _, d := range readDead(t, f.kc.ListenAddrs(), 9) {
		reasons[d.Reason]++
		if d.Reason == bridge.ReasonNoReplyTo {
			require.Empty(t, d.Workflow)
			require.Contains(t, string(d.Event), `"orphan"`)
		}
	}
	require.Equal(t, map[string]int{bridge.ReasonPermanent: 8, bridge.ReasonNoReplyTo: 1}, reasons)
}
