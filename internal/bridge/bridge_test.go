package bridge_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/api/serviceerror"
	"go.uber.org/zap/zaptest"

	"github.com/fleet-rollout/fleet/internal/bridge"
	"github.com/fleet-rollout/fleet/internal/dataplane"
)

// recorder stands where the Temporal client would: it records each signal
// and answers NotFound for workflows listed as gone.
type recorder struct {
	mu      sync.Mutex
	signals map[string][][]dataplane.Status
	gone    map[string]bool
}

func (r *recorder) SignalWorkflow(_ context.Context, id, _, name string, arg any) error {
	if name != "cluster-statuses" {
		return fmt.Errorf("unexpected signal %q", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gone[id] {
		return serviceerror.NewNotFound("workflow execution already completed")
	}
	r.signals[id] = append(r.signals[id], arg.([]dataplane.Status))
	return nil
}

func (r *recorder) events(id string) []dataplane.Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []dataplane.Status
	for _, s := range r.signals[id] {
		out = append(out, s...)
	}
	return out
}

func (r *recorder) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.signals[id])
}

func TestEventsAreGroupedByWorkflowInOrder(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, dataplane.StatusTopic))
	require.NoError(t, err)
	defer kc.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...), kgo.DefaultProduceTopic(dataplane.StatusTopic))
	require.NoError(t, err)
	defer prod.Close()

	// Two batches, 10 clusters each, 5 brokers a cluster: 100 events for
	// each, keyed by cluster as the data plane does; a third batch is gone.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for broker := 1; broker <= 5; broker++ {
		for c := range 10 {
			for _, wf := range []string{"rollout/a/batch-1", "rollout/a/batch-2", "rollout/a/batch-3"} {
				id := fmt.Sprintf("%s-lkc-%02d", wf[len(wf)-1:], c)
				v, err := dataplane.Encode(dataplane.Status{ClusterID: id, Generation: 2, State: dataplane.Progress, Broker: broker, Brokers: 5, ReplyTo: wf})
				require.NoError(t, err)
				recs = append(recs, &kgo.Record{Key: []byte(id), Value: v})
			}
		}
	}
	recs = append(recs, &kgo.Record{Key: []byte("x"), Value: []byte("not json")})
	require.NoError(t, prod.ProduceSync(ctx, recs...).FirstErr())

	rec := &recorder{signals: map[string][][]dataplane.Status{}, gone: map[string]bool{"rollout/a/batch-3": true}}
	br, err := bridge.New(bridge.Config{Brokers: kc.ListenAddrs(), Signal: "cluster-statuses"}, rec, zaptest.NewLogger(t))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- br.Run(ctx) }()
	require.Eventually(t, func() bool {
		d, dropped := br.Stats()
		return d == 100 && dropped == 51
	}, 20*time.Second, 50*time.Millisecond, "50 events each delivered to batch-1 and batch-2; batch-3 gone and one undecodable dead-lettered")
	cancel()
	require.NoError(t, <-done)
	byReason, total := br.DeadLettered()
	require.Equal(t, int64(51), total)
	require.Equal(t, map[string]int64{bridge.ReasonPermanent: 50, bridge.ReasonUndecodable: 1}, byReason)
	dead := readDead(t, kc.ListenAddrs(), 51)
	n := map[string]int{}
	for _, d := range dead {
		n[d.Reason]++
		if d.Reason == bridge.ReasonPermanent {
			require.Equal(t, "rollout/a/batch-3", d.Workflow)
			require.Equal(t, "cluster-statuses", d.Signal)
			require.Equal(t, "*serviceerror.NotFound", d.ErrorType)
			require.Contains(t, d.Error, "already completed")
			require.Equal(t, dataplane.StatusTopic, d.Topic)
			st, err := dataplane.DecodeStatus(d.Event)
			require.NoError(t, err)
			require.Equal(t, "rollout/a/batch-3", st.ReplyTo)
		} else {
			require.Equal(t, []byte("not json"), d.Raw)
			require.Empty(t, d.Event)
		}
	}
	require.Equal(t, map[string]int{bridge.ReasonPermanent: 50, bridge.ReasonUndecodable: 1}, n)

	for _, wf := range []string{"rollout/a/batch-1", "rollout/a/batch-2"} {
		evs := rec.events(wf)
		require.Len(t, evs, 50, wf)
		// Each cluster's events arrive in the order they were published.
		last := map[string]int{}
		for _, e := range evs {
			require.Equal(t, wf, e.ReplyTo)
			require.Equal(t, last[e.ClusterID]+1, e.Broker, "%s: broker %d after %d", e.ClusterID, e.Broker, last[e.ClusterID])
			last[e.ClusterID] = e.Broker
		}
		require.Len(t, last, 10)
		require.Less(t, rec.count(wf), 50, "%s: fewer signals than events", wf)
	}
	require.Equal(t, int64(rec.count("rollout/a/batch-1")+rec.count("rollout/a/batch-2")), br.Signals())
}
