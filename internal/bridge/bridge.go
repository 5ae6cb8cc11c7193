// Package bridge is the status bridge: one consumer group for the whole
// fleet that turns the data plane's status events into signals to the
// workflow that asked (each command names it in ReplyTo). The events of one
// poll are grouped by workflow, in order, one signal per workflow (split when
// it would exceed Config.MaxSignalBytes), so the busier the fleet the fewer
// signals per event. A workflow's progress events (a broker done: nothing to
// act on) wait up to Config.ProgressHold to go with its next event; any
// other event goes at once, with the progress held before it. A signal and a
// workflow task per broker restart would be most of what the server writes.
//
// An event that cannot be delivered is never dropped silently: it goes to
// the dead-letter topic (dataplane.StatusDeadTopic) wrapped in a DeadLetter
// (the original record, the target workflow, the error), is logged and
// counted (DeadLettered), and the bridge goes on. See Classify: permanent
// errors are dead-lettered at once; a workflow's transient errors are
// retried with a capped backoff for Config.RetryFor, then dead-lettered (the
// batch's status resync recovers the state); errors of Temporal as a whole
// (unavailable, throttled) are retried for as long as they last, unless
// other signals get through meanwhile. So one workflow never holds back
// every rollout's statuses for more than RetryFor, and nothing is lost: an
// offset is committed only once its event was delivered or dead-lettered.
package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
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
	// ObserveLag, when set, is told each delivered event's lag: from the
	// event's Kafka timestamp to its signal's delivery.
	ObserveLag func(time.Duration)
	// DeadLetterTopic receives the events that cannot be delivered (default
	// dataplane.StatusDeadTopic). The bridge creates it at start when it is
	// missing (with the broker's default partitions and replication) and
	// the broker allows it.
	DeadLetterTopic string
	// RetryFor bounds how long one signal is retried after a Transient error
	// (and after a Global one once other signals got through) before its
	// events are dead-lettered (default DefaultRetryFor). The workflow
	// recovers the state of its clusters with a Report command.
	RetryFor time.Duration
	// MaxBackoff caps the pause between two attempts of a signal (default
	// 5 s); the first pause is 100 ms and doubles.
	MaxBackoff time.Duration
	// MaxSignalBytes bounds the encoded events of one signal (default
	// DefaultMaxSignalBytes), far below Temporal's 2 MB blob limit; a
	// workflow's events of one poll go in as many signals as it takes.
	MaxSignalBytes int
	// ExtraOpts are added to the Kafka client's options (TLS, SASL, ...).
	ExtraOpts []kgo.Opt
	// ProgressHold is how long a workflow's dataplane.Progress events may
	// wait for its next event (default DefaultProgressHold; negative: they
	// go at once). Every other state goes at once, with the progress held
	// before it. Offsets are committed only up to the first event held.
	ProgressHold time.Duration
	// Accept, when set, says whether a status may be signalled to its
	// ReplyTo (a workflow of this system, a reply token that verifies);
	// nil errors are accepted. Refused statuses are dead-lettered with
	// ReasonUnauthenticated and the error, and counted.
	Accept func(dataplane.Status) error
}

// Defaults.
const (
	// DefaultRetryFor matches the batch's status resync (30 s of silence
	// re-sends a cluster's last command): a workflow's statuses held back
	// that long are recovered by the resync once they are dead-lettered.
	DefaultRetryFor       = 30 * time.Second
	DefaultMaxSignalBytes = 256 << 10
	// DefaultProgressHold keeps a broker counter at most a second behind
	// (a broker restart takes longer), far inside the batch's 30 s status
	// resync.
	DefaultProgressHold = time.Second
)

// Dead-letter reasons (DeadLetter.Reason).
const (
	// ReasonPermanent: Temporal refused the signal for good (Classify).
	ReasonPermanent = "permanent"
	// ReasonRetriesExhausted: the signal kept failing for Config.RetryFor.
	ReasonRetriesExhausted = "retries-exhausted"
	// ReasonUndecodable: the record is not a status event.
	ReasonUndecodable = "undecodable"
	// ReasonNoReplyTo: the event names no workflow.
	ReasonNoReplyTo = "no-reply-to"
	// ReasonUnauthenticated: Config.Accept refused the event (it names a
	// workflow that is not a batch of this system, or its reply token is
	// missing or wrong).
	ReasonUnauthenticated = "unauthenticated"
)

// DeadLetter is one message on the dead-letter topic: an undeliverable
// status event, where it came from, where it was going, and why it did not
// get there. Its key is the original record's key (the cluster ID).
type DeadLetter struct {
	// Topic, Partition and Offset locate the original record.
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	// Event is the original value when it is JSON, Raw otherwise.
	Event json.RawMessage `json:"event,omitempty"`
	Raw   []byte          `json:"raw,omitempty"`
	// Workflow is the target workflow (the event's ReplyTo), Signal the
	// signal name.
	Workflow string `json:"workflow,omitempty"`
	Signal   string `json:"signal,omitempty"`
	Reason   string `json:"reason"`
	// Error is the last error; ErrorType its Go type (e.g.
	// *serviceerror.NotFound); Class its Classify class.
	Error     string    `json:"error,omitempty"`
	ErrorType string    `json:"errorType,omitempty"`
	Class     string    `json:"class,omitempty"`
	Attempts  int       `json:"attempts,omitempty"`
	At        time.Time `json:"at"`
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
	dead      map[string]int64 // by reason

	// lastOK is when a signal last succeeded (unix nanoseconds).
	lastOK atomic.Int64
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
	if cfg.DeadLetterTopic == "" {
		cfg.DeadLetterTopic = dataplane.StatusDeadTopic
	}
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = DefaultRetryFor
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	if cfg.MaxSignalBytes <= 0 {
		cfg.MaxSignalBytes = DefaultMaxSignalBytes
	}
	if cfg.ProgressHold == 0 {
		cfg.ProgressHold = DefaultProgressHold
	}
	return &Bridge{cfg: cfg, sig: sig, log: log, dead: map[string]int64{}}, nil
}

// Stats returns how many events were delivered and how many were not (every
// one of those went to the dead-letter topic: DeadLettered).
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

// DeadLettered returns how many events went to the dead-letter topic, by
// reason (ReasonPermanent, ...), and in all.
func (b *Bridge) DeadLettered() (byReason map[string]int64, total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	byReason = make(map[string]int64, len(b.dead))
	for r, n := range b.dead {
		byReason[r] = n
		total += n
	}
	return byReason, total
}

// producer is what the bridge produces dead letters with (the consumer's
// Kafka client).
type producer interface {
	ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults
}

// Run consumes until ctx is done. An event's offset is committed only after
// its signal was delivered or the event was written to the dead-letter
// topic, so a crash re-delivers and never loses one; a Batch ignores what it
// has seen.
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
		// Dead letters.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
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
	b.ensureTopic(ctx, cl)
	b.log.Info("status bridge started", zap.Strings("brokers", b.cfg.Brokers), zap.String("group", b.cfg.Group),
		zap.String("deadLetterTopic", b.cfg.DeadLetterTopic), zap.Duration("progressHold", b.cfg.ProgressHold))
	trk := &tracker{parts: map[topicPartition][]*entry{}}
	held := map[string]*heldGroup{}
	for {
		// With progress held, the poll ends when the first is due.
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if due, ok := nextDue(held, b.cfg.ProgressHold); ok {
			pctx, cancel = context.WithDeadline(ctx, due)
		}
		fetches := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			cl.AllowRebalance()
			return nil
		}
		fetches.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return // the poll's own deadline
			}
			b.log.Warn("bridge: fetch", zap.String("topic", t), zap.Int32("partition", p), zap.Error(err))
		})
		var recs []*kgo.Record
		fetches.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
		if b.deliverAll(ctx, cl, trk.add(recs), held, time.Now()) {
			cl.MarkCommitRecords(trk.release()...)
		}
		cl.AllowRebalance()
	}
}

// topicPartition names a partition.
type topicPartition struct {
	topic     string
	partition int32
}

// entry is a consumed record and whether it was delivered (or
// dead-lettered).
type entry struct {
	rec  *kgo.Record
	done bool
}

// tracker keeps each partition's records in order until they are done, so
// an offset is committed only once every record before it is: a record held
// back keeps the ones after it from being committed.
type tracker struct {
	parts map[topicPartition][]*entry
}

func (t *tracker) add(recs []*kgo.Record) []*entry {
	out := make([]*entry, len(recs))
	for i, r := range recs {
		e := &entry{rec: r}
		tp := topicPartition{r.Topic, r.Partition}
		t.parts[tp] = append(t.parts[tp], e)
		out[i] = e
	}
	return out
}

// release removes and returns each partition's records that are done up to
// the first that is not.
func (t *tracker) release() []*kgo.Record {
	var out []*kgo.Record
	for tp, es := range t.parts {
		n := 0
		for n < len(es) && es[n].done {
			out = append(out, es[n].rec)
			n++
		}
		if n == len(es) {
			delete(t.parts, tp)
		} else {
			t.parts[tp] = es[n:]
		}
	}
	return out
}

// heldGroup is a workflow's progress events held back, and since when.
type heldGroup struct {
	items []item
	since time.Time
}

// nextDue is when the first held group must go.
func nextDue(held map[string]*heldGroup, hold time.Duration) (time.Time, bool) {
	var first time.Time
	for _, g := range held {
		if first.IsZero() || g.since.Before(first) {
			first = g.since
		}
	}
	return first.Add(hold), !first.IsZero()
}

// ensureTopic creates the dead-letter topic if it is missing. Failing that
// (no permission, auto-creation off) it only warns: dead letters are then
// retried until the topic exists.
func (b *Bridge) ensureTopic(ctx context.Context, cl *kgo.Client) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10000
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic = b.cfg.DeadLetterTopic
	t.NumPartitions = -1
	t.ReplicationFactor = -1
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(cctx, cl)
	if err == nil && len(resp.Topics) == 1 {
		err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	}
	switch {
	case err == nil:
		b.log.Info("bridge: created the dead-letter topic", zap.String("topic", b.cfg.DeadLetterTopic))
	case errors.Is(err, kerr.TopicAlreadyExists):
	default:
		b.log.Warn("bridge: could not create the dead-letter topic; create it (dead letters wait for it)", zap.String("topic", b.cfg.DeadLetterTopic), zap.Error(err))
	}
}

// item is one status event, the record it came in (e) and its encoded size.
type item struct {
	st dataplane.Status
	e  *entry
	n  int
}

// deliverAll groups the records by the workflow they answer, keeping their
// order, and signals each workflow (in chunks of at most MaxSignalBytes);
// what cannot be delivered goes to the dead-letter topic. A workflow whose
// events are all progress is held back (held) until it has another event or
// its oldest has waited Config.ProgressHold; held groups that are due by now
// go too. Each record's entry is done once it was delivered or
// dead-lettered. It returns false when ctx ended before every record due was
// delivered or dead-lettered (nothing is marked then, so it comes again).
func (b *Bridge) deliverAll(ctx context.Context, pr producer, entries []*entry, held map[string]*heldGroup, now time.Time) bool {
	start := time.Now()
	groups := map[string][]item{}
	var (
		order    []string
		dead     []*kgo.Record
		deadFrom []*entry
	)
	for _, e := range entries {
		rec := e.rec
		st, err := dataplane.DecodeStatus(rec.Value)
		if err != nil {
			b.log.Warn("bridge: undecodable status", zap.Int32("partition", rec.Partition), zap.Int64("offset", rec.Offset), zap.Error(err))
			dead, deadFrom = append(dead, b.letter(rec, "", ReasonUndecodable, err, 0)), append(deadFrom, e)
			continue
		}
		if st.ReplyTo == "" {
			b.log.Warn("bridge: status without reply-to", zap.String("cluster", st.ClusterID), zap.Int32("partition", rec.Partition), zap.Int64("offset", rec.Offset))
			dead, deadFrom = append(dead, b.letter(rec, "", ReasonNoReplyTo, nil, 0)), append(deadFrom, e)
			continue
		}
		if b.cfg.Accept != nil {
			if err := b.cfg.Accept(st); err != nil {
				b.log.Warn("bridge: unauthenticated status refused", zap.String("cluster", st.ClusterID), zap.String("workflow", st.ReplyTo),
					zap.Int32("partition", rec.Partition), zap.Int64("offset", rec.Offset), zap.Error(err))
				dead, deadFrom = append(dead, b.letter(rec, st.ReplyTo, ReasonUnauthenticated, err, 0)), append(deadFrom, e)
				continue
			}
		}
		if _, ok := groups[st.ReplyTo]; !ok {
			order = append(order, st.ReplyTo)
		}
		groups[st.ReplyTo] = append(groups[st.ReplyTo], item{st: st, e: e, n: len(rec.Value)})
	}
	if len(dead) > 0 {
		if !b.produceDead(ctx, pr, dead) {
			return false
		}
		b.countDead(nil, dead)
		for _, e := range deadFrom {
			e.done = true
		}
	}
	order = b.hold(groups, order, held, now)
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
		go func(id string, items []item) {
			defer wg.Done()
			defer func() { <-sem }()
			for _, chunk := range b.chunks(items) {
				if !b.deliver(ctx, pr, id, chunk, start) {
					mu.Lock()
					ok = false
					mu.Unlock()
					return
				}
				for _, it := range chunk {
					it.e.done = true
				}
			}
		}(id, groups[id])
	}
	wg.Wait()
	return ok
}

// hold decides which workflows are signalled now (returned, in order, their
// groups in groups) and which wait (moved to held): a workflow with only
// progress events waits, unless its held events are due; one with another
// event goes with what was held before it. Held groups due by now go too.
func (b *Bridge) hold(groups map[string][]item, order []string, held map[string]*heldGroup, now time.Time) []string {
	if b.cfg.ProgressHold < 0 {
		return order
	}
	var out []string
	for _, id := range order {
		items := groups[id]
		h := held[id]
		urgent := false
		for _, it := range items {
			if it.st.State != dataplane.Progress {
				urgent = true
				break
			}
		}
		if !urgent && (h == nil || now.Sub(h.since) < b.cfg.ProgressHold) {
			if h == nil {
				h = &heldGroup{since: now}
				held[id] = h
			}
			h.items = append(h.items, items...)
			delete(groups, id)
			continue
		}
		if h != nil {
			groups[id] = append(h.items, items...)
			delete(held, id)
		}
		out = append(out, id)
	}
	var due []string
	for id, h := range held {
		if now.Sub(h.since) >= b.cfg.ProgressHold {
			due = append(due, id)
		}
	}
	sort.Strings(due)
	for _, id := range due {
		groups[id] = held[id].items
		delete(held, id)
		out = append(out, id)
	}
	return out
}

// chunks splits a workflow's events into signals of at most MaxSignalBytes
// (at least one event each), in order.
func (b *Bridge) chunks(items []item) [][]item {
	var out [][]item
	size, from := 0, 0
	for i, it := range items {
		if i > from && size+it.n > b.cfg.MaxSignalBytes {
			out = append(out, items[from:i])
			from, size = i, 0
		}
		size += it.n
	}
	return append(out, items[from:])
}

// deliver signals one workflow some of its events, retrying as Classify
// says; events that cannot be delivered go to the dead-letter topic. It
// returns false only when ctx ended first. pollStart is when the poll's
// delivery began: a Global error is this workflow's own once some other
// signal succeeded since.
func (b *Bridge) deliver(ctx context.Context, pr producer, workflowID string, items []item, pollStart time.Time) bool {
	sts := make([]dataplane.Status, len(items))
	for i, it := range items {
		sts[i] = it.st
	}
	started := time.Now()
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := b.sig.SignalWorkflow(ctx, workflowID, "", b.cfg.Signal, sts)
		if err == nil {
			now := time.Now()
			b.lastOK.Store(now.UnixNano())
			if b.cfg.ObserveLag != nil {
				for _, it := range items {
					if !it.e.rec.Timestamp.IsZero() {
						b.cfg.ObserveLag(now.Sub(it.e.rec.Timestamp))
					}
				}
			}
			b.mu.Lock()
			b.delivered += int64(len(sts))
			b.signals++
			b.mu.Unlock()
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		class := Classify(err)
		reason := ""
		switch class {
		case Permanent:
			if len(items) > 1 && sizeRelated(err) {
				// Perhaps only the whole is too big, or only one event is
				// refused: try each half.
				b.log.Info("bridge: signal refused, splitting it", zap.String("workflow", workflowID), zap.Int("events", len(items)), zap.Error(err))
				half := len(items) / 2
				return b.deliver(ctx, pr, workflowID, items[:half], pollStart) &&
					b.deliver(ctx, pr, workflowID, items[half:], pollStart)
			}
			reason = ReasonPermanent
		case Transient:
			if time.Since(started) >= b.cfg.RetryFor {
				reason = ReasonRetriesExhausted
			}
		case Global:
			if time.Since(started) >= b.cfg.RetryFor && b.lastOK.Load() > pollStart.UnixNano() {
				reason = ReasonRetriesExhausted
			}
		}
		if reason != "" {
			recs := make([]*kgo.Record, len(items))
			for i, it := range items {
				recs[i] = b.letter(it.e.rec, workflowID, reason, err, attempt)
			}
			if !b.produceDead(ctx, pr, recs) {
				return false
			}
			lvl := zap.ErrorLevel
			var nf *serviceerror.NotFound
			if errors.As(err, &nf) {
				// The workflow finished: late events are expected.
				lvl = zap.InfoLevel
			}
			b.log.Log(lvl, "bridge: status events dead-lettered",
				zap.String("workflow", workflowID), zap.Int("events", len(items)),
				zap.String("reason", reason), zap.String("class", class.String()),
				zap.Int("attempts", attempt), zap.String("topic", b.cfg.DeadLetterTopic), zap.Error(err))
			b.countDead(map[string]int{reason: len(items)}, nil)
			return true
		}
		b.log.Warn("bridge: signal failed, retrying", zap.String("workflow", workflowID), zap.Int("events", len(sts)),
			zap.String("class", class.String()), zap.Int("attempt", attempt), zap.Duration("backoff", backoff), zap.Error(err))
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		if backoff *= 2; backoff > b.cfg.MaxBackoff {
			backoff = b.cfg.MaxBackoff
		}
	}
}

// letter wraps an undeliverable record for the dead-letter topic.
func (b *Bridge) letter(rec *kgo.Record, workflowID, reason string, err error, attempts int) *kgo.Record {
	dl := DeadLetter{
		Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
		Workflow: workflowID, Reason: reason, Attempts: attempts, At: time.Now().UTC(),
	}
	if workflowID != "" {
		dl.Signal = b.cfg.Signal
	}
	if json.Valid(rec.Value) {
		dl.Event = json.RawMessage(rec.Value)
	} else {
		dl.Raw = rec.Value
	}
	if err != nil {
		dl.Error = err.Error()
		dl.ErrorType = fmt.Sprintf("%T", err)
		if workflowID != "" {
			dl.Class = Classify(err).String()
		}
	}
	v, mErr := json.Marshal(dl)
	if mErr != nil { // cannot happen: plain data
		v = []byte(fmt.Sprintf(`{"reason":%q,"error":"encode dead letter: %s"}`, reason, mErr))
	}
	headers := append([]kgo.RecordHeader{}, rec.Headers...)
	headers = append(headers, kgo.RecordHeader{Key: "dead-letter-reason", Value: []byte(reason)})
	return &kgo.Record{Topic: b.cfg.DeadLetterTopic, Key: rec.Key, Value: v, Headers: headers}
}

// produceDead writes dead letters, retrying until Kafka takes them all or
// ctx ends (false: nothing may be committed then).
func (b *Bridge) produceDead(ctx context.Context, pr producer, recs []*kgo.Record) bool {
	backoff := 100 * time.Millisecond
	for {
		err := pr.ProduceSync(ctx, recs...).FirstErr()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		b.log.Warn("bridge: write dead letters, retrying", zap.String("topic", b.cfg.DeadLetterTopic), zap.Int("events", len(recs)), zap.Duration("backoff", backoff), zap.Error(err))
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		if backoff *= 2; backoff > b.cfg.MaxBackoff {
			backoff = b.cfg.MaxBackoff
		}
	}
}

// countDead counts dead-lettered events: n by reason, or each record of
// recs by its dead-letter-reason header.
func (b *Bridge) countDead(n map[string]int, recs []*kgo.Record) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for r, k := range n {
		b.dead[r] += int64(k)
		b.dropped += int64(k)
	}
	for _, rec := range recs {
		if h := rec.Headers; len(h) > 0 && h[len(h)-1].Key == "dead-letter-reason" {
			b.dead[string(h[len(h)-1].Value)]++
		}
		b.dropped++
	}
}
