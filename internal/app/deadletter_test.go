package app_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fleet-rollout/fleet/internal/bridge"
	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/internal/sigauth"
	"github.com/fleet-rollout/fleet/workflows"
)

const deadFirstRollout = `
name: it-dead-first
target:
  version: 3.7.1
selector: product=kafka, env=internal
strategy:
  phases:
    - name: internal
      batchSize: 10
monitoring:
  interval: 1s
schedule:
  windows: ignore
`

const deadSecondRollout = `
name: it-dead-second
target:
  version: 3.7.1
selector: product=kafka, env in (non-prod, prod)
strategy:
  phases:
    - name: rest
      batchSize: 5
      concurrency: 4
monitoring:
  interval: 1s
schedule:
  windows: ignore
`

// A status event the bridge can never deliver (its workflow is closed, or
// never existed) goes to the dead-letter topic with the target workflow and
// the error, and the statuses of a rollout running meanwhile keep flowing:
// it completes.
func TestUndeliverableStatusGoesToTheDeadLetterTopic(t *testing.T) {
	s := startStack(t, 120, 5*time.Millisecond, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	brokers := s.dev.Config.KafkaBrokers

	first, err := s.client.Start(ctx, parseSpec(t, deadFirstRollout), "integration-test")
	require.NoError(t, err)
	st := s.waitFor(t, first, "the end", terminal)
	require.Equal(t, workflows.StateCompleted, st.State, "%+v", st)

	// The batch workflow the first rollout's commands asked statuses for:
	// closed now.
	closed := findReplyTo(ctx, t, brokers, first)

	second, err := s.client.Start(ctx, parseSpec(t, deadSecondRollout), "integration-test")
	require.NoError(t, err)

	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(dataplane.StatusTopic))
	require.NoError(t, err)
	defer prod.Close()
	const never = "rollout/never-started/batch-1"
	var recs []*kgo.Record
	// Authentic statuses (the reply token of a command the worker sent):
	// they get past the bridge's check and fail at Temporal.
	keys, err := sigauth.NewKeys(s.dev.Config.SignalKey)
	require.NoError(t, err)
	for _, to := range []string{closed, never} {
		v, err := dataplane.Encode(dataplane.Status{ClusterID: "lkc-late", Generation: 42, State: dataplane.Completed, Broker: 3, Brokers: 3, ReplyTo: to,
			ReplyToken: keys.CommandToken(to, "lkc-late", 42), At: time.Now()})
		require.NoError(t, err)
		recs = append(recs, &kgo.Record{Key: []byte("lkc-late"), Value: v})
	}
	require.NoError(t, prod.ProduceSync(ctx, recs...).FirstErr())

	// Both land on the dead-letter topic.
	dead := map[string]bridge.DeadLetter{}
	cons, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(dataplane.StatusDeadTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cons.Close()
	deadline, dcancel := context.WithTimeout(ctx, time.Minute)
	defer dcancel()
	for len(dead) < 2 {
		fs := cons.PollFetches(deadline)
		require.NoError(t, deadline.Err(), "dead letters so far: %+v", dead)
		fs.EachRecord(func(r *kgo.Record) {
			var d bridge.DeadLetter
			require.NoError(t, json.Unmarshal(r.Value, &d))
			if d.Workflow == closed || d.Workflow == never {
				var ev dataplane.Status
				require.NoError(t, json.Unmarshal(d.Event, &ev))
				if ev.ClusterID == "lkc-late" {
					dead[d.Workflow] = d
				}
			}
		})
	}
	for _, id := range []string{closed, never} {
		d := dead[id]
		require.Equal(t, bridge.ReasonPermanent, d.Reason, id)
		require.Equal(t, "*serviceerror.NotFound", d.ErrorType, id)
		require.Equal(t, workflows.SignalClusterStatuses, d.Signal, id)
		require.Equal(t, dataplane.StatusTopic, d.Topic, id)
		require.NotEmpty(t, d.Error, id)
	}
	// And in the worker's metrics, by reason (counted once written).
	for wait := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		n, _ := scrapeMetrics(t, s.dev.Config.HTTPAddr).value("fleet_bridge_dead_letters_total", "reason", bridge.ReasonPermanent)
		if n >= 2 {
			break
		}
		require.True(t, time.Now().Before(wait), "fleet_bridge_dead_letters_total{reason=%q} = %v, want at least 2", bridge.ReasonPermanent, n)
	}

	st = s.waitFor(t, second, "the end", terminal)
	require.Equal(t, workflows.StateCompleted, st.State, "%+v", st)
	require.Equal(t, st.Total, st.Counts.Done)
}

// findReplyTo returns the ReplyTo of a command the rollout sent.
func findReplyTo(ctx context.Context, t *testing.T, brokers []string, rollout string) string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(dataplane.CommandsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "no command of %s", rollout)
		found := ""
		fs.EachRecord(func(r *kgo.Record) {
			var c dataplane.Command
			if json.Unmarshal(r.Value, &c) == nil && c.RolloutID == rollout && c.ReplyTo != "" && found == "" {
				found = c.ReplyTo
			}
		})
		if found != "" {
			return found
		}
	}
}
