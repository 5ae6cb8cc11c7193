package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fleet-rollout/fleet/workflows"
)

// ErrNoTopic is returned (wrapped) by Read and History when the events
// topic does not exist: nothing was ever published to it.
var ErrNoTopic = errors.New("events topic does not exist")

// Option configures Read and History.
type Option func(*readOptions)

type readOptions struct {
	topic      string
	clientOpts []kgo.Opt
	onBad      func(r *kgo.Record, err error)
}

// WithTopic reads topic instead of workflows.EventsTopic.
func WithTopic(topic string) Option { return func(o *readOptions) { o.topic = topic } }

// WithClientOptions adds kgo options (TLS, SASL, a logger...) to the
// reading client. Group and consume options are not meant to be given.
func WithClientOptions(opts ...kgo.Opt) Option {
	return func(o *readOptions) { o.clientOpts = append(o.clientOpts, opts...) }
}

// OnBadRecord calls fn for every record whose value is not an Event (it is
// skipped either way).
func OnBadRecord(fn func(r *kgo.Record, err error)) Option {
	return func(o *readOptions) { o.onBad = fn }
}

// History reads the events topic from the beginning to its end as of the
// call and returns clusterID's history: one Entry per rollout that touched
// the cluster (see Fold). It uses no consumer group and commits nothing.
func History(ctx context.Context, brokers []string, clusterID string, opts ...Option) ([]Entry, error) {
	if clusterID == "" {
		return nil, errors.New("events: history: empty cluster ID")
	}
	evs, err := Read(ctx, brokers, opts...)
	if err != nil {
		return nil, err
	}
	return Fold(evs, clusterID), nil
}

// Read returns every event on the topic from each partition's log start to
// its end offset as of the call, partition by partition in offset order
// (partitions in number order). Records published while it reads are not
// waited for. Values that are not Event JSON are skipped (see OnBadRecord).
func Read(ctx context.Context, brokers []string, opts ...Option) ([]workflows.Event, error) {
	o := readOptions{topic: workflows.EventsTopic}
	for _, opt := range opts {
		opt(&o)
	}
	if len(brokers) == 0 {
		return nil, errors.New("events: no Kafka brokers given")
	}
	kopts := append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, o.clientOpts...)
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	defer cl.Close()

	bounds, err := offsets(ctx, cl, o.topic)
	if err != nil {
		return nil, err
	}
	// Consume each non-empty partition from its start; done when every one
	// has delivered the record just before its end offset.
	start := map[int32]kgo.Offset{}
	pending := map[int32]int64{} // partition -> end offset
	for p, b := range bounds {
		if b.end > b.start {
			start[p] = kgo.NewOffset().At(b.start)
			pending[p] = b.end
		}
	}
	if len(pending) == 0 {
		return nil, nil
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{o.topic: start})

	byPartition := map[int32][]workflows.Event{}
	for len(pending) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("events: read %s: %w (%d partitions not read to the end)", o.topic, err, len(pending))
		}
		if fetches.IsClientClosed() {
			return nil, fmt.Errorf("events: read %s: client closed", o.topic)
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			if ferr == nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				ferr = fmt.Errorf("events: read %s partition %d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return nil, ferr
		}
		fetches.EachRecord(func(r *kgo.Record) {
			end, ok := pending[r.Partition]
			if !ok || r.Offset >= end {
				return // past the end as of the start
			}
			var ev workflows.Event
			if err := json.Unmarshal(r.Value, &ev); err != nil || ev.Kind == "" {
				if err == nil {
					err = errors.New("no event kind")
				}
				if o.onBad != nil {
					o.onBad(r, err)
				}
			} else {
				byPartition[r.Partition] = append(byPartition[r.Partition], ev)
			}
			if r.Offset+1 >= end {
				delete(pending, r.Partition)
			}
		})
	}

	parts := make([]int32, 0, len(byPartition))
	for p := range byPartition {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	var out []workflows.Event
	for _, p := range parts {
		out = append(out, byPartition[p]...)
	}
	return out, nil
}

type bound struct{ start, end int64 }

// offsets lists the topic's partitions and each one's log start and end
// offset, without creating the topic.
func offsets(ctx context.Context, cl *kgo.Client, topic string) (map[int32]bound, error) {
	mreq := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	mreq.Topics = append(mreq.Topics, mt)
	mreq.AllowAutoTopicCreation = false
	mresp, err := mreq.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("events: metadata for %s: %w", topic, err)
	}
	if len(mresp.Topics) != 1 {
		return nil, fmt.Errorf("events: metadata for %s: %d topics in the answer", topic, len(mresp.Topics))
	}
	t := mresp.Topics[0]
	if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			return nil, fmt.Errorf("events: %s: %w", topic, ErrNoTopic)
		}
		return nil, fmt.Errorf("events: metadata for %s: %w", topic, err)
	}
	if len(t.Partitions) == 0 {
		return nil, fmt.Errorf("events: %s: %w", topic, ErrNoTopic)
	}

	list := func(ts int64) (map[int32]int64, error) {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		for _, p := range t.Partitions {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition = p.Partition
			rp.CurrentLeaderEpoch = -1
			rp.Timestamp = ts
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return nil, err
		}
		out := map[int32]int64{}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					return nil, fmt.Errorf("partition %d: %w", rp.Partition, err)
				}
				out[rp.Partition] = rp.Offset
			}
		}
		for _, p := range t.Partitions {
			if _, ok := out[p.Partition]; !ok {
				return nil, fmt.Errorf("partition %d: no offset in the answer", p.Partition)
			}
		}
		return out, nil
	}
	starts, err := list(-2) // earliest
	if err != nil {
		return nil, fmt.Errorf("events: start offsets of %s: %w", topic, err)
	}
	ends, err := list(-1) // latest
	if err != nil {
		return nil, fmt.Errorf("events: end offsets of %s: %w", topic, err)
	}
	out := make(map[int32]bound, len(ends))
	for p, end := range ends {
		out[p] = bound{start: starts[p], end: end}
	}
	return out, nil
}
