package events

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fleet-rollout/fleet/workflows"
)

func newKafka(t *testing.T, opts ...kfake.Opt) []string {
	t.Helper()
	kc, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(kc.Close)
	return kc.ListenAddrs()
}

func newProducer(t *testing.T, brokers []string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

func TestPublishAndHistory(t *testing.T) {
	brokers := newKafka(t, kfake.SeedTopics(6, workflows.EventsTopic))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub := NewPublisher(newProducer(t, brokers))

	const (
		a     = "rollout/kafka-3-7-0"
		b     = "rollout/kafka-3-7-1"
		c     = "lkc-00042"
		other = "lkc-00007"
	)
	// As the workflows would emit them, in several Emit calls.
	batches := [][]workflows.Event{
		{started(a, "3.7.0", 0), {Kind: workflows.EventPhaseStarted, RolloutID: a, Phase: "prod", At: at(1)}},
		{state(a, c, workflows.ClusterApplying, 2), state(a, other, workflows.ClusterApplying, 2)},
		{state(a, c, workflows.ClusterVerifying, 6), state(a, other, workflows.ClusterFailed, 7)},
		{state(a, c, workflows.ClusterDone, 9), finished(a, "completed", 10)},
		{started(b, "3.7.1", 30), state(b, c, workflows.ClusterApplying, 31)},
		{alert(b, c, "kafka-cpu", "CPU 97% on broker 2", 33), alert(b, other, "kafka-lag", "lag", 33)},
		{{Kind: workflows.EventRolloutPaused, RolloutID: b, ClusterID: c, Actor: "monitor", Message: "kafka-cpu", At: at(33)},
			state(b, c, workflows.ClusterHolding, 33), state(b, c, workflows.ClusterHeld, 34)},
		{{Kind: workflows.EventAction, RolloutID: b, Actor: "alice", Message: "abort: bad build", At: at(40)},
			{Kind: workflows.EventClusterState, RolloutID: b, ClusterID: c, State: "aborted", Message: "aborted by alice", At: at(41)},
			finished(b, "aborted", 42)},
	}
	for _, evs := range batches {
		require.NoError(t, pub.Publish(ctx, evs))
	}

	entries, err := History(ctx, brokers, c)
	require.NoError(t, err)
	assert.Equal(t, []Entry{
		{RolloutID: a, Version: "3.7.0", First: at(2), Last: at(9), State: workflows.ClusterDone, RolloutState: "completed"},
		{RolloutID: b, Version: "3.7.1", First: at(31), Last: at(41), State: workflows.ClusterAborted,
			Message: "aborted by alice", RolloutState: "aborted",
			Alerts: []Alert{{Monitor: "kafka-cpu", Message: "CPU 97% on broker 2", At: at(33)}}},
	}, normalize(entries))

	entries, err = History(ctx, brokers, other)
	require.NoError(t, err)
	require.Len(t, entries, 2)
	assert.Equal(t, workflows.ClusterFailed, entries[0].State)
	assert.Equal(t, []Alert{{Monitor: "kafka-lag", Message: "lag", At: at(33)}}, normalize(entries)[1].Alerts)

	entries, err = History(ctx, brokers, "lkc-99999")
	require.NoError(t, err)
	assert.Empty(t, entries)

	// Keys: a cluster's events on its own key (one partition), the rest on
	// the rollout's.
	keys := map[string]map[int32]bool{}
	evs := 0
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(workflows.EventsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	for evs < 18 {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err())
		fs.EachRecord(func(r *kgo.Record) {
			evs++
			var ev workflows.Event
			require.NoError(t, json.Unmarshal(r.Value, &ev))
			assert.Equal(t, Key(ev), string(r.Key))
			assert.True(t, ev.At.Equal(r.Timestamp), "record time is the event's")
			if keys[string(r.Key)] == nil {
				keys[string(r.Key)] = map[int32]bool{}
			}
			keys[string(r.Key)][r.Partition] = true
		})
	}
	assert.Equal(t, 18, evs)
	assert.ElementsMatch(t, []string{a, b, c, other}, keysOf(keys))
	for k, ps := range keys {
		assert.Len(t, ps, 1, "key %s in one partition", k)
	}
}

func TestHistoryStopsAtTheEndAsOfTheStart(t *testing.T) {
	brokers := newKafka(t, kfake.SeedTopics(2, workflows.EventsTopic))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub := NewPublisher(newProducer(t, brokers))
	require.NoError(t, pub.Publish(ctx, []workflows.Event{started("rollout/x", "1.0.0", 0), state("rollout/x", "c1", workflows.ClusterDone, 1)}))

	// One partition is empty: History must not wait for it.
	got, err := Read(ctx, brokers)
	require.NoError(t, err)
	assert.Len(t, got, 2)

	var bad int
	cl := newProducer(t, brokers)
	require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: workflows.EventsTopic, Key: []byte("c1"), Value: []byte("not json")}).FirstErr())
	entries, err := History(ctx, brokers, "c1", OnBadRecord(func(*kgo.Record, error) { bad++ }))
	require.NoError(t, err)
	assert.Equal(t, 1, bad)
	require.Len(t, entries, 1)
	assert.Equal(t, "1.0.0", entries[0].Version)
}

func TestHistoryWithoutTopic(t *testing.T) {
	brokers := newKafka(t, kfake.AllowAutoTopicCreation())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := History(ctx, brokers, "lkc-1")
	require.ErrorIs(t, err, ErrNoTopic)
	// Reading did not create the topic.
	_, err = History(ctx, brokers, "lkc-1")
	require.ErrorIs(t, err, ErrNoTopic)
}

func TestPublishRejectsInvalidEventsBeforeProducing(t *testing.T) {
	brokers := newKafka(t, kfake.SeedTopics(1, workflows.EventsTopic))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub := NewPublisher(newProducer(t, brokers))
	err := pub.Publish(ctx, []workflows.Event{
		started("rollout/x", "1.0.0", 0),
		{Kind: workflows.EventClusterState, RolloutID: "rollout/x", State: "done"},
	})
	require.ErrorContains(t, err, "event 1: cluster-state event of rollout/x has no cluster ID")
	got, err := Read(ctx, brokers)
	require.NoError(t, err)
	assert.Empty(t, got)
	require.NoError(t, pub.Publish(ctx, nil))
}

func keysOf(m map[string]map[int32]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// normalize drops monotonic clock readings and locations so times compare
// with Equal semantics under assert.Equal.
func normalize(es []Entry) []Entry {
	for i := range es {
		es[i].First = es[i].First.UTC()
		es[i].Last = es[i].Last.UTC()
		for j := range es[i].Alerts {
			es[i].Alerts[j].At = es[i].Alerts[j].At.UTC()
		}
	}
	return es
}
