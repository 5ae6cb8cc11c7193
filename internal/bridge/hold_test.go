package bridge_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"

	"github.com/fleet-rollout/fleet/internal/bridge"
	"github.com/fleet-rollout/fleet/internal/dataplane"
)

func TestProgressWaitsForTheWorkflowsNextEventAndIsNotCommitted(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, dataplane.StatusTopic))
	require.NoError(t, err)
	defer kc.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...), kgo.DefaultProduceTopic(dataplane.StatusTopic))
	require.NoError(t, err)
	defer prod.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	produce := func(wf string, st dataplane.State, broker int, clusters ...string) {
		t.Helper()
		var recs []*kgo.Record
		for _, id := range clusters {
			v, err := dataplane.Encode(dataplane.Status{ClusterID: id, Generation: 2, State: st, Broker: broker, Brokers: 3, ReplyTo: wf})
			require.NoError(t, err)
			recs = append(recs, &kgo.Record{Key: []byte(id), Value: v})
		}
		require.NoError(t, prod.ProduceSync(ctx, recs...).FirstErr())
	}
	const a, b = "rollout/r/batch-1", "rollout/r/batch-2"
	cfg := bridge.Config{Brokers: kc.ListenAddrs(), Signal: "cluster-statuses", ProgressHold: 30 * time.Second}
	rec := &recorder{signals: map[string][][]dataplane.Status{}}
	br, err := bridge.New(cfg, rec, zaptest.NewLogger(t))
	require.NoError(t, err)
	bctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- br.Run(bctx) }()

	// Progress only: held.
	produce(a, dataplane.Progress, 1, "lkc-1", "lkc-2", "lkc-3")
	produce(b, dataplane.Progress, 1, "ksql-1", "ksql-2")
	require.Never(t, func() bool { return rec.count(a)+rec.count(b) > 0 }, time.Second, 50*time.Millisecond,
		"progress alone waits for the workflow's next event")

	// A completion goes at once, after the progress held before it, in one signal.
	sent := time.Now()
	produce(a, dataplane.Completed, 3, "lkc-2")
	require.Eventually(t, func() bool { return rec.count(a) == 1 }, 10*time.Second, 10*time.Millisecond)
	require.Less(t, time.Since(sent), 10*time.Second, "not held for the 30 s hold")
	evs := rec.events(a)
	require.Len(t, evs, 4)
	require.Equal(t, dataplane.Completed, evs[3].State)
	require.Equal(t, "lkc-2", evs[3].ClusterID)
	require.Zero(t, rec.count(b), "another workflow's progress is still held")

	// Stopped with b's progress held: it was never committed, so the next
	// bridge of the group delivers it.
	stop()
	require.NoError(t, <-done)
	cfg.ProgressHold = 200 * time.Millisecond
	rec2 := &recorder{signals: map[string][][]dataplane.Status{}}
	br2, err := bridge.New(cfg, rec2, zaptest.NewLogger(t))
	require.NoError(t, err)
	b2ctx, stop2 := context.WithCancel(ctx)
	defer stop2()
	go func() { done <- br2.Run(b2ctx) }()
	require.Eventually(t, func() bool { return len(rec2.events(b)) == 2 }, 20*time.Second, 20*time.Millisecond,
		"held progress comes again after a restart, and goes once its hold is over")
	for _, e := range rec2.events(b) {
		require.Equal(t, dataplane.Progress, e.State, fmt.Sprint(e))
	}
	stop2()
	require.NoError(t, <-done)
}
