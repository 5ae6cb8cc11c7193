// Package bridge is the status bridge: one consumer group for the whole
// fleet that turns the data plane's status events into signals to the
// workflow that asked (each command names it in ReplyTo). The events of one
// poll are grouped by workflow, in order, one signal per workflow, so the
// busier the fleet the fewer signals per event.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/api/serviceerror"
	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/internal/dataplane"
)

// DefaultGroup is the bridge's consumer group.
const DefaultGroup = "fleet-status-bridge"

// Signaler delivers a signal to a workflow; the Temporal client is one.
type Signaler interface {
	SignalWorkflow(ctx context.Context, workflowID, runID, signalName string, arg any) error
}

// Config configures a Bridge.
type Config struct {
	Brokers []string
	// Group is the consumer group (default DefaultGroup).
	Group string
	// Signal is the signal name events are delivered under; its payload is
	// a []dataplane.Status, in the order the events were published.
	Signal string
	// Parallel bounds the signals in flight at once (default 32).
	Parallel int
	// ExtraOpts are added to the Kafka client's options (TLS, SASL, ...).
	ExtraOpts []kgo.Opt
}

// Bridge consumes dataplane.StatusTopic and signals workflows.
type Bridge struct {
	cfg Config
	sig Signaler
	log *zap.Logger

	mu        sync.Mutex
	delivered int64
	dropped   int64
	signals   int64
}

// New builds a bridge; Run starts it.
func New(cfg Config, sig Signaler, log *zap.Logger) (*Bridge, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("bridge: no Kafka brokers configured")
	}
	if cfg.Signal == "" {
		return nil, errors.New("bridge: no signal name configured")
	}
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 32
	}
	return &Bridge{cfg: cfg, sig: sig, log: log}, nil
}

// Stats returns how many events were delivered and how many dropped (bad
// payload, no reply-to, or the workflow is gone).
func (b *Bridge) Stats() (delivered, dropped int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.delivered, b.dropped
}

// Signals returns how many signals delivered the events Stats counts.
func (b *Bridge) Signals() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.signals
}

// Run consumes until ctx is done. An event's offset is committed only after
// its signal was delivered (or the event was dropped for good), so a crash
// re-delivers and never loses one; a Batch ignores what it has seen.
func (b *Bridge) Run(ctx context.Context) error {
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(b.cfg.Brokers...),
		kgo.ConsumerGroup(b.cfg.Group),
		kgo.ConsumeTopics(dataplane.StatusTopic),
		kgo.AutoCommitMarks(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// A worker killed without leaving the group holds its partitions
		// until the session times out: keep that short (default 45 s).
		kgo.SessionTimeout(10 * time.Second),
		kgo.HeartbeatInterval(2 * time.Second),
	}, b.cfg.ExtraOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("bridge: kafka client: %w", err)
	}
	defer func() {
		// Commit what was marked before leaving the group.
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := cl.CommitMarkedOffsets(cctx); err != nil {
			b.log.Warn("bridge: commit on close", zap.Error(err))
		}
		cl.Close()
	}()
	b.log.Info("status bridge started", zap.Strings("brokers", b.cfg.Brokers), zap.String("group", b.cfg.Group))
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			cl.AllowRebalance()
			return nil
		}
		fetches.EachError(func(t string, p int32, err error) {
			b.log.Warn("bridge: fetch", zap.String("topic", t), zap.Int32("partition", p), zap.Error(err))
		})
		var recs []*kgo.Record
		fetches.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
		if b.deliverAll(ctx, recs) {
			cl.MarkCommitRecords(recs...)
		}
		cl.AllowRebalance()
	}
}

// deliverAll groups the records by the workflow they answer, keeping their
// order, and signals each workflow once. It returns false when ctx ended
// before everything was delivered (nothing is marked then, so it comes again).
func (b *Bridge) deliverAll(ctx context.Context, recs []*kgo.Record) bool {
	groups := map[string][]dataplane.Status{}
	var order []string
	for _, rec := range recs {
		st, err := dataplane.DecodeStatus(rec.Value)
		if err != nil {
			b.log.Warn("bridge: drop undecodable status", zap.Int32("partition", rec.Partition), zap.Int64("offset", rec.Offset), zap.Error(err))
			b.count(false, 1)
			continue
		}
		if st.ReplyTo == "" {
			b.count(false, 1)
			continue
		}
		if _, ok := groups[st.ReplyTo]; !ok {
			order = append(order, st.ReplyTo)
		}
		groups[st.ReplyTo] = append(groups[st.ReplyTo], st)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, b.cfg.Parallel)
	ok := true
	var mu sync.Mutex
	for _, id := range order {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return false
		}
		wg.Add(1)
		go func(id string, sts []dataplane.Status) {
			defer wg.Done()
			defer func() { <-sem }()
			if !b.deliver(ctx, id, sts) {
				mu.Lock()
				ok = false
				mu.Unlock()
			}
		}(id, groups[id])
	}
	wg.Wait()
	return ok
}

// deliver signals one workflow its events, retrying transient errors until
// ctx is done. It returns false only when ctx ended first.
func (b *Bridge) deliver(ctx context.Context, workflowID string, sts []dataplane.Status) bool {
	backoff := 100 * time.Millisecond
	for {
		err := b.sig.SignalWorkflow(ctx, workflowID, "", b.cfg.Signal, sts)
		if err == nil {
			b.count(true, len(sts))
			b.mu.Lock()
			b.signals++
			b.mu.Unlock()
			return true
		}
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			// The workflow finished: nobody waits for these events.
			b.log.Debug("bridge: workflow gone", zap.String("workflow", workflowID), zap.Int("events", len(sts)))
			b.count(false, len(sts))
			return true
		}
		b.log.Warn("bridge: signal failed, retrying", zap.String("workflow", workflowID), zap.Int("events", len(sts)), zap.Duration("backoff", backoff), zap.Error(err))
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		if backoff < 5*time.Second {
			backoff *= 2
		}
	}
}

func (b *Bridge) count(delivered bool, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if delivered {
		b.delivered += int64(n)
	} else {
		b.dropped += int64(n)
	}
}
