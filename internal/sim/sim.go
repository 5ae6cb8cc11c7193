// Package sim is the simulated data plane: a fleet of clusters that consumes
// commands from dataplane.CommandsTopic, rolls specs out one broker at a time,
// and reports every step on dataplane.StatusTopic, with fault injection that
// fails applies or trips Datadog monitors.
//
// Command semantics (per cluster; g is the command's generation, N the
// cluster's applied generation):
//
//   - Apply g: g < N is Rejected (stale); g == N re-publishes Completed for g
//     (so a duplicate delivery or a retried push still gets its answer); g in
//     flight re-publishes the apply's latest state; another generation in
//     flight is Rejected (busy); otherwise the apply starts: one broker at a
//     time, each taking Config.BrokerTime, Progress after each, Completed
//     after the last (the cluster then runs spec.Version at generation g).
//   - Hold g stops the apply before its next broker (Held); Resume g continues
//     from the next broker (Resumed); Abort g stops it for good (Aborted), the
//     brokers already restarted stay on the new version.
//   - Report g, and Hold/Resume/Abort for a generation not in flight,
//     re-publish the current state for g.
//
// Statuses produced by the apply itself carry the RolloutID and ReplyTo of
// the command that started it; answers to a command that only asks (a
// duplicate, a Report, a rejected command) go to that command's RolloutID and
// ReplyTo, falling back to the apply's when the command names none.
package sim

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/internal/fleet"
)

// Monitor group statuses, spelled as Datadog spells them.
const (
	StatusOK     = "OK"
	StatusAlert  = "Alert"
	StatusNoData = "No Data"
)

// Defaults for Config.
const (
	DefaultGroup      = "fleet-dataplane-sim"
	DefaultBrokerTime = 2 * time.Second
	DefaultPartitions = 12
)

// saveInterval bounds how often state is written while it changes.
const saveInterval = 500 * time.Millisecond

// Config configures a Simulator.
type Config struct {
	// Clusters is the fleet. With a state file, clusters saved there keep
	// their saved state; clusters only in Clusters are added.
	Clusters []fleet.Cluster
	// BrokerTime is how long one broker takes to restart (DefaultBrokerTime
	// if zero).
	BrokerTime time.Duration
	// Faults are the injected faults at start; see SetFaults.
	Faults []Fault
	// StatePath is an optional JSON file: loaded by New if present, written
	// at most every ~500ms while state changes and on Close, so a restarted
	// process keeps versions and generations and resumes applies in flight.
	StatePath string
	// Group is the consumer group on CommandsTopic (DefaultGroup if empty).
	Group string
	// Partitions is used when Run has to create the topics
	// (DefaultPartitions if zero).
	Partitions int32
	// KafkaOpts are appended to the options of Run's Kafka clients (TLS,
	// SASL: see internal/connect).
	KafkaOpts []kgo.Opt
}

// Simulator is the simulated data plane. Its methods are safe for
// concurrent use.
type Simulator struct {
	log        *zap.Logger
	brokerTime time.Duration
	statePath  string
	group      string
	partitions int32
	kafkaOpts  []kgo.Opt

	mu       sync.Mutex
	clusters map[string]*clusterState
	// observe, when set (Observe), is told of every apply that starts or
	// ends; called with mu held.
	observe func(ApplyEvent)
	// byProduct lists each product's cluster IDs, sorted. The clusters are
	// fixed once New returns (New and its state load are the only places
	// that add any), so it is built then and only read afterwards.
	byProduct map[string][]string
	// alerting indexes cs.alerts: monitor name -> IDs of the clusters of
	// the monitor's product on which it alerts. Kept by setAlerts (an
	// apply's completion) and tripFaults, the only writers of cs.alerts
	// after New; built by New from the clusters and the state loaded.
	alerting  map[string]map[string]bool
	faults    []Fault
	runActive bool            // Run is executing
	running   bool            // apply runners may start
	runCtx    context.Context // context of the current Run's runners
	runners   sync.WaitGroup

	outMu    sync.Mutex
	out      []dataplane.Status
	outReady chan struct{}

	dirty     chan struct{}
	saveMu    sync.Mutex
	stopSaver chan struct{}
	saverDone chan struct{}
	closeOnce sync.Once
	closeErr  error

	// afterBroker, if set (tests only, before Run), is called by an apply's
	// runner after each broker that does not end the apply, without locks.
	afterBroker func(ctx context.Context, clusterID string, broker int)
}

// clusterState is everything the simulator knows about one cluster.
type clusterState struct {
	c        fleet.Cluster
	inflight *apply
	// last is the terminal outcome of the most recent apply that ended.
	last   *dataplane.Status
	alerts map[string]bool
	starts int
}

// apply is one apply in flight. Exported fields are persisted.
type apply struct {
	Generation int64            `json:"generation"`
	Spec       dataplane.Spec   `json:"spec"`
	RolloutID  string           `json:"rolloutId,omitempty"`
	ReplyTo    string           `json:"replyTo,omitempty"`
	ReplyToken string           `json:"replyToken,omitempty"`
	Brokers    int              `json:"brokers"`
	Done       int              `json:"done"`
	Held       bool             `json:"held,omitempty"`
	HoldReq    bool             `json:"holdRequested,omitempty"`
	ResumeReq  bool             `json:"resumeRequested,omitempty"`
	AbortReq   bool             `json:"abortRequested,omitempty"`
	Last       dataplane.Status `json:"last"`

	wake    chan struct{}
	running bool
}

// New builds a simulator from cfg, loading cfg.StatePath if it exists.
func New(cfg Config, log *zap.Logger) (*Simulator, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.BrokerTime < 0 {
		return nil, fmt.Errorf("sim: broker time must not be negative, got %s", cfg.BrokerTime)
	}
	if cfg.BrokerTime == 0 {
		cfg.BrokerTime = DefaultBrokerTime
	}
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = DefaultPartitions
	}
	if err := ValidateFaults(cfg.Faults); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	s := &Simulator{
		log:        log,
		brokerTime: cfg.BrokerTime,
		statePath:  cfg.StatePath,
		group:      cfg.Group,
		partitions: cfg.Partitions,
		kafkaOpts:  slices.Clone(cfg.KafkaOpts),
		clusters:   make(map[string]*clusterState, len(cfg.Clusters)),
		faults:     slices.Clone(cfg.Faults),
		outReady:   make(chan struct{}, 1),
		dirty:      make(chan struct{}, 1),
		stopSaver:  make(chan struct{}),
		saverDone:  make(chan struct{}),
	}
	for _, c := range cfg.Clusters {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("sim: %w", err)
		}
		if _, dup := s.clusters[c.ID]; dup {
			return nil, fmt.Errorf("sim: duplicate cluster id %s", c.ID)
		}
		s.clusters[c.ID] = &clusterState{c: cloneCluster(c), alerts: map[string]bool{}}
	}
	if s.statePath != "" {
		loaded, err := s.load()
		if err != nil {
			return nil, err
		}
		if loaded > 0 {
			log.Info("sim state loaded", zap.String("path", s.statePath), zap.Int("clusters", loaded))
		}
	}
	s.buildIndexes()
	if s.statePath != "" {
		go s.saver()
	} else {
		close(s.saverDone)
	}
	return s, nil
}

// buildIndexes builds byProduct and alerting from the clusters; New calls
// it once every cluster is in (the state loaded).
func (s *Simulator) buildIndexes() {
	s.byProduct = map[string][]string{}
	s.alerting = map[string]map[string]bool{}
	for id, cs := range s.clusters {
		s.byProduct[cs.c.Product] = append(s.byProduct[cs.c.Product], id)
		for m, on := range cs.alerts {
			if on {
				s.indexAlert(cs, m, true)
			}
		}
	}
	for _, ids := range s.byProduct {
		sort.Strings(ids)
	}
}

// indexAlert records in the alerting index that monitor m alerts (on) or
// not on cs. Only a monitor of the cluster's product is indexed: on a
// cluster of another product its group is No Data whatever the alerts say
// (see MonitorStatus). Called with s.mu held (or from New).
func (s *Simulator) indexAlert(cs *clusterState, m string, on bool) {
	if p, ok := monitorProduct[m]; !ok || p != cs.c.Product {
		return
	}
	set := s.alerting[m]
	if on {
		if set == nil {
			set = map[string]bool{}
			s.alerting[m] = set
		}
		set[cs.c.ID] = true
		return
	}
	delete(set, cs.c.ID)
	if len(set) == 0 {
		delete(s.alerting, m)
	}
}

// setAlerts replaces the monitors alerting on cs, keeping the index right.
// Called with s.mu held.
func (s *Simulator) setAlerts(cs *clusterState, alerts map[string]bool) {
	for m, on := range cs.alerts {
		if on && !alerts[m] {
			s.indexAlert(cs, m, false)
		}
	}
	for m, on := range alerts {
		if on {
			s.indexAlert(cs, m, true)
		}
	}
	cs.alerts = alerts
}

// Close writes the state file (if configured) and stops background saving.
// Cancel Run's context and let it return before calling Close.
func (s *Simulator) Close() error {
	s.closeOnce.Do(func() {
		if s.statePath == "" {
			return
		}
		close(s.stopSaver)
		<-s.saverDone
		s.closeErr = s.save()
	})
	return s.closeErr
}

// handle acts on one decoded, valid command.
func (s *Simulator) handle(cmd dataplane.Command) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, ok := s.clusters[cmd.ClusterID]
	if !ok {
		s.log.Warn("command for unknown cluster", zap.String("cluster", cmd.ClusterID), zap.String("kind", string(cmd.Kind)))
		s.emit(dataplane.Status{
			ClusterID: cmd.ClusterID, Generation: cmd.Generation, State: dataplane.Rejected,
			RolloutID: cmd.RolloutID, ReplyTo: cmd.ReplyTo, ReplyToken: cmd.ReplyToken,
			Message: fmt.Sprintf("unknown cluster %s", cmd.ClusterID),
		})
		return
	}
	s.log.Debug("command",
		zap.String("cluster", cmd.ClusterID), zap.String("kind", string(cmd.Kind)),
		zap.Int64("generation", cmd.Generation), zap.String("rollout", cmd.RolloutID))

	switch cmd.Kind {
	case dataplane.Apply:
		s.handleApply(cs, cmd)
	case dataplane.Hold, dataplane.Resume, dataplane.Abort:
		a := cs.inflight
		if a == nil || a.Generation != cmd.Generation {
			s.answerCurrent(cs, cmd)
			return
		}
		s.control(cs, a, cmd)
	case dataplane.Report:
		s.answerCurrent(cs, cmd)
	}
}

func (s *Simulator) handleApply(cs *clusterState, cmd dataplane.Command) {
	g, applied := cmd.Generation, cs.c.Generation
	switch a := cs.inflight; {
	case g < applied:
		s.reject(cs, cmd, dataplane.RejectStale, fmt.Sprintf("stale generation %d, applied %d", g, applied))
	case g == applied && cs.last != nil && cs.last.Generation == g && otherRollout(cs.last.RolloutID, cmd.RolloutID):
		// Two rollouts planned the same next generation: the first won.
		s.reject(cs, cmd, dataplane.RejectStale, fmt.Sprintf("generation %d was applied by %s", g, cs.last.RolloutID))
	case g == applied:
		st, _ := s.currentState(cs, g)
		s.answer(st, cmd)
	case a != nil && a.Generation == g && otherRollout(a.RolloutID, cmd.RolloutID):
		s.reject(cs, cmd, dataplane.RejectBusy, fmt.Sprintf("busy: generation %d is being applied by %s", g, a.RolloutID))
	case a != nil && a.Generation == g:
		s.answer(a.Last, cmd)
	case a != nil:
		s.reject(cs, cmd, dataplane.RejectBusy, fmt.Sprintf("busy with generation %d (%s)", a.Generation, a.RolloutID))
	default:
		a := &apply{
			Generation: g,
			Spec:       cloneSpec(*cmd.Spec),
			RolloutID:  cmd.RolloutID,
			ReplyTo:    cmd.ReplyTo,
			ReplyToken: cmd.ReplyToken,
			Brokers:    cs.c.Brokers,
			wake:       make(chan struct{}, 1),
		}
		a.Last = s.statusOf(cs, a, dataplane.Progress, "")
		cs.inflight = a
		cs.starts++
		if s.observe != nil {
			s.observe(ApplyEvent{ClusterID: cs.c.ID, ReplyTo: cmd.ReplyTo, Start: true, IssuedAt: cmd.IssuedAt, At: time.Now()})
		}
		s.log.Info("apply started",
			zap.String("cluster", cs.c.ID), zap.Int64("generation", g),
			zap.String("from", cs.c.Version), zap.String("to", a.Spec.Version),
			zap.Int("brokers", a.Brokers), zap.String("rollout", a.RolloutID))
		s.startRunner(cs, a)
		s.markDirty()
	}
}

// control applies Hold, Resume or Abort to the apply in flight.
func (s *Simulator) control(cs *clusterState, a *apply, cmd dataplane.Command) {
	switch cmd.Kind {
	case dataplane.Hold:
		switch {
		case a.Held:
			s.answer(a.Last, cmd)
		default:
			// Held is published when the current broker finishes. A Resume
			// queued behind an earlier Hold is cancelled by this newer Hold.
			a.HoldReq, a.ResumeReq = true, false
		}
	case dataplane.Resume:
		switch {
		case a.Held && !a.AbortReq:
			a.Held = false
			s.progress(cs, a, dataplane.Resumed)
			wakeUp(a)
		case a.HoldReq:
			// The Hold has not taken effect yet: it will, then resume.
			a.ResumeReq = true
		default:
			s.answer(a.Last, cmd)
		}
	case dataplane.Abort:
		if !a.AbortReq {
			a.AbortReq = true
			wakeUp(a)
		}
	}
	s.markDirty()
}

func wakeUp(a *apply) {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// answerCurrent re-publishes the current state for the command's generation,
// or rejects the command when there is none.
func (s *Simulator) answerCurrent(cs *clusterState, cmd dataplane.Command) {
	if st, ok := s.currentState(cs, cmd.Generation); ok {
		s.answer(st, cmd)
		return
	}
	g, applied := cmd.Generation, cs.c.Generation
	switch {
	case g < applied:
		s.reject(cs, cmd, dataplane.RejectStale, fmt.Sprintf("stale generation %d, applied %d", g, applied))
	case cs.inflight != nil:
		s.reject(cs, cmd, dataplane.RejectBusy, fmt.Sprintf("generation %d not in flight: busy with generation %d", g, cs.inflight.Generation))
	default:
		s.reject(cs, cmd, dataplane.RejectUnknown, fmt.Sprintf("generation %d unknown: nothing in flight, applied %d", g, applied))
	}
}

// currentState is the latest state known for generation g.
func (s *Simulator) currentState(cs *clusterState, g int64) (dataplane.Status, bool) {
	if a := cs.inflight; a != nil && a.Generation == g {
		return a.Last, true
	}
	if cs.last != nil && cs.last.Generation == g {
		return *cs.last, true
	}
	if g == cs.c.Generation {
		return dataplane.Status{
			ClusterID: cs.c.ID, Generation: g, State: dataplane.Completed,
			Broker: cs.c.Brokers, Brokers: cs.c.Brokers, Version: cs.c.Version,
		}, true
	}
	return dataplane.Status{}, false
}

func (s *Simulator) answer(st dataplane.Status, cmd dataplane.Command) {
	if cmd.ReplyTo != "" {
		st.RolloutID, st.ReplyTo, st.ReplyToken = cmd.RolloutID, cmd.ReplyTo, cmd.ReplyToken
	}
	st.Message = joinMessage(st.Message, "re-published")
	s.emit(st)
}

func joinMessage(msg, suffix string) string {
	if msg == "" {
		return suffix
	}
	return msg + " (" + suffix + ")"
}

// otherRollout reports whether two commands come from different rollouts
// (an empty ID, from a sender that names none, matches any).
func otherRollout(a, b string) bool { return a != "" && b != "" && a != b }

func (s *Simulator) reject(cs *clusterState, cmd dataplane.Command, code, why string) {
	s.log.Info("command rejected",
		zap.String("cluster", cs.c.ID), zap.String("kind", string(cmd.Kind)),
		zap.Int64("generation", cmd.Generation), zap.String("reason", why))
	s.emit(dataplane.Status{
		ClusterID: cs.c.ID, Generation: cmd.Generation, State: dataplane.Rejected,
		Brokers: cs.c.Brokers, Version: cs.c.Version,
		RolloutID: cmd.RolloutID, ReplyTo: cmd.ReplyTo, ReplyToken: cmd.ReplyToken, Message: why, Code: code,
	})
}

// statusOf describes the apply a in the given state.
func (s *Simulator) statusOf(cs *clusterState, a *apply, state dataplane.State, msg string) dataplane.Status {
	return dataplane.Status{
		ClusterID: cs.c.ID, Generation: a.Generation, State: state,
		Broker: a.Done, Brokers: a.Brokers, Version: a.Spec.Version,
		RolloutID: a.RolloutID, ReplyTo: a.ReplyTo, ReplyToken: a.ReplyToken, Message: msg,
	}
}

// progress publishes a non-terminal state of the apply and remembers it.
func (s *Simulator) progress(cs *clusterState, a *apply, state dataplane.State) {
	a.Last = s.statusOf(cs, a, state, "")
	s.emit(a.Last)
}

// finish ends the apply with a terminal state.
func (s *Simulator) finish(cs *clusterState, a *apply, state dataplane.State, msg string) {
	st := s.statusOf(cs, a, state, msg)
	cs.last = &st
	cs.inflight = nil
	a.running = false
	s.emit(st)
	if s.observe != nil {
		s.observe(ApplyEvent{ClusterID: cs.c.ID, ReplyTo: a.ReplyTo, At: time.Now()})
	}
	s.markDirty()
	s.log.Info("apply "+string(state),
		zap.String("cluster", cs.c.ID), zap.Int64("generation", a.Generation),
		zap.String("version", a.Spec.Version), zap.Int("broker", a.Done), zap.Int("brokers", a.Brokers),
		zap.String("rollout", a.RolloutID), zap.String("message", msg))
}

// emit queues a status for the producer; called with s.mu held, so one
// cluster's statuses leave in the order its state changed.
func (s *Simulator) emit(st dataplane.Status) {
	st.At = time.Now()
	s.outMu.Lock()
	s.out = append(s.out, st)
	s.outMu.Unlock()
	select {
	case s.outReady <- struct{}{}:
	default:
	}
}

func (s *Simulator) takeOut() []dataplane.Status {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	out := s.out
	s.out = nil
	return out
}

// startRunner starts the goroutine driving a, if Run is active. Called
// with s.mu held.
func (s *Simulator) startRunner(cs *clusterState, a *apply) {
	if !s.running || a.running {
		return
	}
	a.running = true
	s.runners.Add(1)
	go s.runApply(s.runCtx, cs, a)
}

// runApply restarts the brokers of a one at a time, honouring hold, resume
// and abort between brokers. It returns when the apply ends or ctx is done;
// in the latter case the apply stays in flight and a later Run resumes it.
func (s *Simulator) runApply(ctx context.Context, cs *clusterState, a *apply) {
	defer s.runners.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()

	for {
		s.mu.Lock()
		if cs.inflight != a {
			a.running = false
			s.mu.Unlock()
			return
		}
		if ctx.Err() != nil {
			a.running = false
			s.mu.Unlock()
			return
		}
		if a.AbortReq {
			s.finish(cs, a, dataplane.Aborted, fmt.Sprintf("aborted before broker %d of %d", a.Done+1, a.Brokers))
			s.mu.Unlock()
			return
		}
		if a.HoldReq {
			a.HoldReq, a.Held = false, true
			s.progress(cs, a, dataplane.Held)
			s.markDirty()
			if a.ResumeReq {
				a.ResumeReq, a.Held = false, false
				s.progress(cs, a, dataplane.Resumed)
			}
		}
		if a.Held {
			wake := a.wake
			s.mu.Unlock()
			select {
			case <-wake:
				continue
			case <-ctx.Done():
				s.mu.Lock()
				a.running = false
				s.mu.Unlock()
				return
			}
		}
		s.mu.Unlock()

		// Restart broker a.Done+1.
		timer.Reset(s.brokerTime)
		select {
		case <-timer.C:
		case <-ctx.Done():
			s.mu.Lock()
			a.running = false
			s.mu.Unlock()
			return
		}

		s.mu.Lock()
		if cs.inflight != a {
			a.running = false
			s.mu.Unlock()
			return
		}
		a.Done++
		s.progress(cs, a, dataplane.Progress)
		if a.Done == 1 && s.tripFaults(cs, a) {
			s.finish(cs, a, dataplane.Failed, fmt.Sprintf(
				"simulated failure: broker 1 of %d did not come back healthy on version %s (fault injection)",
				a.Brokers, a.Spec.Version))
			s.mu.Unlock()
			return
		}
		if a.Done >= a.Brokers {
			cs.c.Version = a.Spec.Version
			cs.c.Config = mergeConfig(cs.c.Config, a.Spec.Config)
			cs.c.Generation = a.Generation
			s.setAlerts(cs, s.alertsFor(cs.c, a.Spec.Version))
			s.finish(cs, a, dataplane.Completed, "")
			s.mu.Unlock()
			return
		}
		s.markDirty()
		done := a.Done
		s.mu.Unlock()
		if s.afterBroker != nil {
			s.afterBroker(ctx, cs.c.ID, done)
		}
	}
}

// tripFaults raises the monitors the apply's faults trip and reports
// whether a fault fails the apply. Called with s.mu held.
func (s *Simulator) tripFaults(cs *clusterState, a *apply) (fail bool) {
	for _, f := range s.faults {
		if !f.Trips(cs.c, a.Spec.Version) {
			continue
		}
		if f.Monitor != "" && !cs.alerts[f.Monitor] {
			cs.alerts[f.Monitor] = true
			s.indexAlert(cs, f.Monitor, true)
			s.log.Info("monitor tripped by fault",
				zap.String("cluster", cs.c.ID), zap.String("monitor", f.Monitor), zap.String("version", a.Spec.Version))
		}
		fail = fail || f.FailApply
	}
	return fail
}

// alertsFor is the set of monitors alerting on c once it fully runs version.
func (s *Simulator) alertsFor(c fleet.Cluster, version string) map[string]bool {
	alerts := map[string]bool{}
	for _, f := range s.faults {
		if f.Monitor != "" && f.Trips(c, version) {
			alerts[f.Monitor] = true
		}
	}
	return alerts
}

// ApplyEvent is an apply that started (Start, with its command's IssuedAt)
// or ended, At when the simulator saw it; ReplyTo is the workflow the
// command came from.
type ApplyEvent struct {
	ClusterID string
	ReplyTo   string
	Start     bool
	IssuedAt  time.Time
	At        time.Time
}

// Observe has f told of every apply that starts or ends from now on (nil
// stops it). f is called with the simulator's lock held: it must be quick
// and must not call the simulator.
func (s *Simulator) Observe(f func(ApplyEvent)) {
	s.mu.Lock()
	s.observe = f
	s.mu.Unlock()
}

// InFlight is how many clusters have an apply in flight (applying or held).
func (s *Simulator) InFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, cs := range s.clusters {
		if cs.inflight != nil {
			n++
		}
	}
	return n
}

// ApplyStarts is how many applies actually began on the cluster, across all
// generations (a duplicate command does not begin one; a resumed apply is
// not a new one).
func (s *Simulator) ApplyStarts(clusterID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cs, ok := s.clusters[clusterID]; ok {
		return cs.starts
	}
	return 0
}

// ClusterState is one cluster as the data plane knows it: what it runs and
// how many applies it started (a generation is applied at most once, so a
// rollout that changed it once started exactly one).
type ClusterState struct {
	ID          string `json:"id"`
	Product     string `json:"product"`
	Version     string `json:"version"`
	Generation  int64  `json:"generation"`
	ApplyStarts int    `json:"applyStarts"`
}

// ClusterStates returns every cluster's state, sorted by ID.
func (s *Simulator) ClusterStates() []ClusterState {
	s.mu.Lock()
	out := make([]ClusterState, 0, len(s.clusters))
	for _, cs := range s.clusters {
		out = append(out, ClusterState{ID: cs.c.ID, Product: cs.c.Product, Version: cs.c.Version, Generation: cs.c.Generation, ApplyStarts: cs.starts})
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Cluster returns a copy of one cluster's inventory record.
func (s *Simulator) Cluster(id string) (fleet.Cluster, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, ok := s.clusters[id]
	if !ok {
		return fleet.Cluster{}, false
	}
	return cloneCluster(cs.c), true
}

// Clusters returns copies of every cluster, sorted by ID.
func (s *Simulator) Clusters() []fleet.Cluster {
	s.mu.Lock()
	out := make([]fleet.Cluster, 0, len(s.clusters))
	for _, cs := range s.clusters {
		out = append(out, cloneCluster(cs.c))
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ClusterIDs returns every cluster ID, sorted.
func (s *Simulator) ClusterIDs() []string {
	s.mu.Lock()
	out := make([]string, 0, len(s.clusters))
	for id := range s.clusters {
		out = append(out, id)
	}
	s.mu.Unlock()
	sort.Strings(out)
	return out
}

// ClusterProduct returns the product a cluster runs.
func (s *Simulator) ClusterProduct(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cs, ok := s.clusters[id]; ok {
		return cs.c.Product, true
	}
	return "", false
}

// MonitorStatus is the status of the monitor's group for the cluster:
// StatusAlert once a fault tripped the monitor there (from the first broker
// restart on the faulty version, until the cluster completes an apply of a
// version without that fault), StatusOK otherwise, and StatusNoData for an
// unknown cluster or a monitor that does not watch the cluster's product.
func (s *Simulator) MonitorStatus(clusterID, monitorName string) string {
	product, ok := monitorProduct[monitorName]
	if !ok {
		return StatusNoData
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, ok := s.clusters[clusterID]
	if !ok || cs.c.Product != product {
		return StatusNoData
	}
	if cs.alerts[monitorName] {
		return StatusAlert
	}
	return StatusOK
}

// ProductClusters returns the IDs of the product's clusters, sorted. The
// slice is shared and must not be modified; it does not change, as the
// simulator's clusters are fixed once New returns.
func (s *Simulator) ProductClusters(product string) []string {
	return s.byProduct[product]
}

// MonitorStatuses is MonitorStatus for each of the clusters, in order, read
// under one lock.
func (s *Simulator) MonitorStatuses(monitorName string, clusterIDs []string) []string {
	out := make([]string, len(clusterIDs))
	product, known := monitorProduct[monitorName]
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, id := range clusterIDs {
		cs, ok := s.clusters[id]
		switch {
		case !known || !ok || cs.c.Product != product:
			out[i] = StatusNoData
		case cs.alerts[monitorName]:
			out[i] = StatusAlert
		default:
			out[i] = StatusOK
		}
	}
	return out
}

// NotOKGroups returns the clusters of the product whose group of the
// monitor is not OK, with its status (what MonitorStatus says), from an
// index: the cost is in the groups returned, not in the fleet. It answers
// false when the index does not apply: a monitor the simulator does not
// know, or one watching another product (every group is then No Data).
func (s *Simulator) NotOKGroups(monitorName, product string) (map[string]string, bool) {
	if p, ok := monitorProduct[monitorName]; !ok || p != product {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.alerting[monitorName]
	out := make(map[string]string, len(set))
	for id := range set {
		out[id] = StatusAlert
	}
	return out, true
}

// GroupIndexOwner returns the simulator itself: a reader of its group index
// (ProductClusters, MonitorStatuses, NotOKGroups) checks that the index
// belongs to the source it reads, not to a *Simulator embedded in a type
// that overrides MonitorStatus or ClusterProduct (the promoted index would
// ignore the overrides).
func (s *Simulator) GroupIndexOwner() any { return s }

// SetFaults replaces the injected faults. Faults are evaluated when an
// apply restarts its first broker and when it completes.
func (s *Simulator) SetFaults(faults []Fault) error {
	if err := ValidateFaults(faults); err != nil {
		return fmt.Errorf("set faults: %w", err)
	}
	s.mu.Lock()
	s.faults = slices.Clone(faults)
	s.mu.Unlock()
	s.log.Info("faults replaced", zap.Int("faults", len(faults)))
	return nil
}

// Faults returns a copy of the injected faults.
func (s *Simulator) Faults() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.faults)
	if out == nil {
		out = []Fault{}
	}
	return out
}

// errRunActive is returned by Run when it is already running.
var errRunActive = errors.New("sim: Run is already active")

func cloneCluster(c fleet.Cluster) fleet.Cluster {
	if c.Labels != nil {
		labels := make(map[string]string, len(c.Labels))
		for k, v := range c.Labels {
			labels[k] = v
		}
		c.Labels = labels
	}
	c.Config = maps.Clone(c.Config)
	if c.Window != nil {
		w := *c.Window
		w.Days = slices.Clone(w.Days)
		c.Window = &w
	}
	return c
}

func cloneSpec(sp dataplane.Spec) dataplane.Spec {
	if sp.Config != nil {
		cfg := make(map[string]string, len(sp.Config))
		for k, v := range sp.Config {
			cfg[k] = v
		}
		sp.Config = cfg
	}
	return sp
}

// mergeConfig applies an apply's config to a cluster's: each key set to its
// value, a key whose value is "" removed.
func mergeConfig(have, set map[string]string) map[string]string {
	if len(set) == 0 {
		return have
	}
	out := make(map[string]string, len(have)+len(set))
	for k, v := range have {
		out[k] = v
	}
	for k, v := range set {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
