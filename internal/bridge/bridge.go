// Package bridge is the status bridge: one consumer group for the whole
// fleet that turns the data plane's status events into signals to the
// workflow that asked (each command names it in ReplyTo).
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
	// Signal is the signal name events are delivered under.
	Signal string
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
	return &Bridge{cfg: cfg, sig: sig, log: log}, nil
}

// Stats returns how many events were delivered and how many dropped (bad
// payload, no reply-to, or the workflow is gone).
func (b *Bridge) Stats() (delivered, dropped int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.delivered, b.dropped
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
		var wg sync.WaitGroup
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, rec := range p.Records {
					if !b.deliver(ctx, rec) {
						return // ctx done: stop without marking
					}
					cl.MarkCommitRecords(rec)
				}
			}()
		})
		wg.Wait()
		cl.AllowRebalance()
	}
}

// deliver signals the event's workflow, retrying transient errors until ctx
// is done. It returns false only when ctx ended first.
func (b *Bridge) deliver(ctx context.Context, rec *kgo.Record) bool {
	st, err := dataplane.DecodeStatus(rec.Value)
	if err != nil {
		b.log.Warn("bridge: drop undecodable status", zap.Int32("partition", rec.Partition), zap.Int64("offset", rec.Offset), zap.Error(err))
		b.count(false)
		return true
	}
	if st.ReplyTo == "" {
		b.count(false)
		return true
	}
	backoff := 100 * time.Millisecond
	for {
		err := b.sig.SignalWorkflow(ctx, st.ReplyTo, "", b.cfg.Signal, st)
		if err == nil {
			b.count(true)
			return true
		}
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			// The workflow finished: nobody waits for this event.
			b.log.Debug("bridge: workflow gone", zap.String("workflow", st.ReplyTo), zap.String("cluster", st.ClusterID))
			b.count(false)
			return true
		}
		b.log.Warn("bridge: signal failed, retrying", zap.String("workflow", st.ReplyTo), zap.String("cluster", st.ClusterID), zap.Duration("backoff", backoff), zap.Error(err))
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

func (b *Bridge) count(delivered bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if delivered {
		b.delivered++
	} else {
		b.dropped++
	}
}
