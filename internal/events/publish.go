// Package events writes and reads the fleet's event log: every rollout,
// phase and cluster state change and every alert, published as
// workflows.Event JSON on the Kafka topic workflows.EventsTopic
// (fleet.events), so a cluster's history outlives Temporal's retention.
//
// Cluster events (cluster-state, cluster-alert) are keyed by cluster ID, so
// one cluster's events share a partition and stay in order; every other
// event is keyed by its rollout ID.
//
// Publisher writes events (the worker's Emit activity uses it). History
// reads the topic from its start to its end as of the call and folds it,
// with the pure Fold, into one Entry per rollout that touched a cluster.
package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fleet-rollout/fleet/workflows"
)

// Publisher publishes events to workflows.EventsTopic.
type Publisher struct {
	cl    *kgo.Client
	topic string
}

// NewPublisher returns a Publisher producing through cl. The client is the
// caller's: Publisher never closes it.
func NewPublisher(cl *kgo.Client) *Publisher {
	return &Publisher{cl: cl, topic: workflows.EventsTopic}
}

// NewAuditPublisher returns a Publisher to workflows.AuditTopic (fleet.audit),
// where every action on a rollout is recorded.
func NewAuditPublisher(cl *kgo.Client) *Publisher {
	return &Publisher{cl: cl, topic: workflows.AuditTopic}
}

// IsClusterEvent reports whether an event of kind k is about one cluster
// and is therefore keyed by its cluster ID.
func IsClusterEvent(k workflows.EventKind) bool {
	return k == workflows.EventClusterState || k == workflows.EventClusterAlert
}

// Key is the record key of ev: its cluster ID for cluster events, its
// rollout ID otherwise.
func Key(ev workflows.Event) string {
	if IsClusterEvent(ev.Kind) {
		return ev.ClusterID
	}
	return ev.RolloutID
}

// Check reports why ev cannot be published: it needs a kind, a rollout ID
// and, for a cluster event, a cluster ID.
func Check(ev workflows.Event) error {
	switch {
	case ev.Kind == "":
		return errors.New("event has no kind")
	case ev.RolloutID == "":
		return fmt.Errorf("%s event has no rollout ID", ev.Kind)
	case IsClusterEvent(ev.Kind) && ev.ClusterID == "":
		return fmt.Errorf("%s event of %s has no cluster ID", ev.Kind, ev.RolloutID)
	}
	return nil
}

// Publish produces evs, in order, and waits until Kafka has acknowledged
// every one. Events are checked first (Check): if one is invalid nothing is
// produced. The record timestamp is the event's At when set. On a produce
// error some events may have been written; publishing the same events again
// duplicates those, which readers tolerate (Fold keeps the last state).
func Publish(ctx context.Context, cl *kgo.Client, evs []workflows.Event) error {
	return NewPublisher(cl).Publish(ctx, evs)
}

// Publish produces evs; see the package function Publish.
func (p *Publisher) Publish(ctx context.Context, evs []workflows.Event) error {
	if len(evs) == 0 {
		return nil
	}
	recs := make([]*kgo.Record, 0, len(evs))
	for i, ev := range evs {
		if err := Check(ev); err != nil {
			return fmt.Errorf("events: event %d: %w", i, err)
		}
		val, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("events: event %d: %w", i, err)
		}
		r := &kgo.Record{Topic: p.topic, Key: []byte(Key(ev)), Value: val}
		if !ev.At.IsZero() {
			r.Timestamp = ev.At
		}
		recs = append(recs, r)
	}
	if err := p.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("events: publish %d events to %s: %w", len(evs), p.topic, err)
	}
	return nil
}
