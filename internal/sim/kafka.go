package sim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/internal/dataplane"
)

// shutdownTimeout bounds flushing statuses and committing offsets when Run
// stops.
const shutdownTimeout = 5 * time.Second

// Run connects to the Kafka brokers, creates the command and status topics if
// they are missing, resumes the applies that were in flight, and then serves
// commands until ctx is done. It returns nil when ctx ends it.
//
// It consumes dataplane.CommandsTopic in consumer group Config.Group and
// commits a command's offset only after the command has been acted on, so a
// command is redelivered after a crash; the generation rules make that
// harmless. Statuses go to dataplane.StatusTopic keyed by cluster ID.
func (s *Simulator) Run(ctx context.Context, brokers []string) error {
	if len(brokers) == 0 {
		return errors.New("sim: run: no Kafka brokers given")
	}
	s.mu.Lock()
	if s.runActive {
		s.mu.Unlock()
		return errRunActive
	}
	s.runActive = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.runActive = false
		s.mu.Unlock()
	}()

	base := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.WithLogger(kgoLogger{s.log.Named("kgo")})}
	base = append(base, s.kafkaOpts...)
	producer, err := kgo.NewClient(append(slices.Clip(base),
		kgo.ClientID("fleet-dataplane-sim"),
		kgo.DefaultProduceTopic(dataplane.StatusTopic),
	)...)
	if err != nil {
		return fmt.Errorf("sim: run: producer client: %w", err)
	}
	defer producer.Close()

	if err := ensureTopics(ctx, producer, s.partitions, dataplane.CommandsTopic, dataplane.StatusTopic); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("sim: run: %w", err)
	}

	consumer, err := kgo.NewClient(append(slices.Clip(base),
		kgo.ClientID("fleet-dataplane-sim"),
		kgo.ConsumerGroup(s.group),
		kgo.ConsumeTopics(dataplane.CommandsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(time.Second),
		kgo.FetchMaxWait(time.Second),
	)...)
	if err != nil {
		return fmt.Errorf("sim: run: consumer client: %w", err)
	}
	defer consumer.Close()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	stopPub := make(chan struct{})
	pubDone := make(chan struct{})
	go s.publishLoop(producer, stopPub, pubDone)

	s.mu.Lock()
	s.running, s.runCtx = true, runCtx
	resumed := 0
	for _, cs := range s.clusters {
		if a := cs.inflight; a != nil {
			s.startRunner(cs, a)
			resumed++
		}
	}
	s.mu.Unlock()
	s.log.Info("sim running",
		zap.Strings("brokers", brokers), zap.String("group", s.group),
		zap.Int("clusters", len(s.ClusterIDs())), zap.Int("resumedApplies", resumed),
		zap.Duration("brokerTime", s.brokerTime))

	err = s.consume(runCtx, consumer)

	// Stop the runners first so their last statuses are flushed.
	cancel()
	s.mu.Lock()
	s.running = false
	s.mu.Unlock()
	s.runners.Wait()
	close(stopPub)
	<-pubDone

	commitCtx, cancelCommit := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancelCommit()
	if cerr := consumer.CommitMarkedOffsets(commitCtx); cerr != nil {
		s.log.Warn("commit offsets on shutdown", zap.Error(cerr))
	}
	s.markDirty()
	s.log.Info("sim stopped")
	return err
}

// consume polls commands and acts on them until ctx is done.
func (s *Simulator) consume(ctx context.Context, cl *kgo.Client) error {
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			s.log.Warn("fetch commands", zap.String("topic", topic), zap.Int32("partition", partition), zap.Error(err))
		})
		var done []*kgo.Record
		fetches.EachRecord(func(r *kgo.Record) {
			s.handleRecord(r)
			done = append(done, r)
		})
		if len(done) > 0 {
			cl.MarkCommitRecords(done...)
		}
	}
}

// handleRecord decodes one command record and acts on it. A command that
// cannot be decoded is logged and skipped; a decodable but invalid one is
// answered with Rejected when it names a cluster.
func (s *Simulator) handleRecord(r *kgo.Record) {
	cmd, err := dataplane.DecodeCommand(r.Value)
	if err != nil {
		s.log.Warn("bad command skipped",
			zap.Int32("partition", r.Partition), zap.Int64("offset", r.Offset),
			zap.ByteString("key", r.Key), zap.Error(err))
		if cmd.ClusterID != "" {
			s.mu.Lock()
			s.emit(dataplane.Status{
				ClusterID: cmd.ClusterID, Generation: cmd.Generation, State: dataplane.Rejected,
				RolloutID: cmd.RolloutID, ReplyTo: cmd.ReplyTo, ReplyToken: cmd.ReplyToken,
				Message: fmt.Sprintf("invalid command: %v", err),
			})
			s.mu.Unlock()
		}
		return
	}
	if string(r.Key) != cmd.ClusterID {
		s.log.Warn("command key differs from its cluster id",
			zap.ByteString("key", r.Key), zap.String("cluster", cmd.ClusterID))
	}
	s.handle(cmd)
}

// publishLoop produces queued statuses until stop is closed, then flushes.
func (s *Simulator) publishLoop(cl *kgo.Client, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	send := func() {
		for _, st := range s.takeOut() {
			b, err := dataplane.Encode(st)
			if err != nil {
				s.log.Error("encode status", zap.String("cluster", st.ClusterID), zap.Error(err))
				continue
			}
			rec := &kgo.Record{Topic: dataplane.StatusTopic, Key: []byte(st.ClusterID), Value: b}
			cl.Produce(context.Background(), rec, func(r *kgo.Record, err error) {
				if err != nil {
					s.log.Warn("publish status", zap.String("cluster", string(r.Key)), zap.Error(err))
				}
			})
		}
	}
	for {
		select {
		case <-s.outReady:
			send()
		case <-stop:
			send()
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			if err := cl.Flush(ctx); err != nil {
				s.log.Warn("flush statuses on shutdown", zap.Error(err))
			}
			cancel()
			return
		}
	}
}

// ensureTopics creates the topics that do not exist yet.
func ensureTopics(ctx context.Context, cl *kgo.Client, partitions int32, topics ...string) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 15000
	for _, t := range topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic = t
		rt.NumPartitions = partitions
		rt.ReplicationFactor = -1
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("create topics %v: %w", topics, err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", t.Topic, err)
		}
	}
	return nil
}

// kgoLogger routes franz-go's logs to zap. franz-go's info level is a
// per-request trace, so only warnings and errors are forwarded unless zap
// has debug enabled.
type kgoLogger struct{ l *zap.Logger }

func (k kgoLogger) Level() kgo.LogLevel {
	if k.l.Core().Enabled(zap.DebugLevel) {
		return kgo.LogLevelDebug
	}
	return kgo.LogLevelWarn
}

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	fields := make([]zap.Field, 0, len(keyvals)/2)
	for i := 0; i+1 < len(keyvals); i += 2 {
		key, ok := keyvals[i].(string)
		if !ok {
			key = fmt.Sprint(keyvals[i])
		}
		fields = append(fields, zap.Any(key, keyvals[i+1]))
	}
	switch level {
	case kgo.LogLevelError:
		k.l.Error(msg, fields...)
	case kgo.LogLevelWarn:
		k.l.Warn(msg, fields...)
	case kgo.LogLevelInfo:
		k.l.Info(msg, fields...)
	default:
		k.l.Debug(msg, fields...)
	}
}
