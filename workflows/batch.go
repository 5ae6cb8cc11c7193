package workflows

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/policy"
)

// Activity names, shared with the activities package (registered by name so
// workflows and activities do not import each other).
const (
	ActivityPlan        = "Plan"
	ActivityPublish     = "Publish"
	ActivityCheckHealth = "CheckHealth"
	ActivityNotify      = "Notify"
	// ActivityPlanOutline plans like ActivityPlan, keeps the full plan in
	// the plan store and returns its outline (plan.Plan.Outline), from
	// versionPlanStore on.
	ActivityPlanOutline = "PlanOutline"
	// ActivityBatchTargets loads one batch's clusters from the plan store
	// (BatchTargetsInput; returns []plan.Target).
	ActivityBatchTargets = "BatchTargets"
	// ActivityPlanTargets loads some clusters' targets from the plan store
	// (PlanTargetsInput; returns PlanTargetsResult): a retry's.
	ActivityPlanTargets = "PlanTargets"
	// ActivityGrantSlots signals a SlotGrant to a batch through the client
	// (GrantSlotsInput), from a local activity: see versionDirectGrants.
	ActivityGrantSlots = "GrantSlots"
)

// GrantSlotsInput is a grant of slots to the batch WorkflowID.
type GrantSlotsInput struct {
	WorkflowID string    `json:"workflowId"`
	Grant      SlotGrant `json:"grant"`
}

// BatchTargetsInput names one batch of a stored plan.
type BatchTargetsInput struct {
	// Plan is the plan store's key of the full plan; Hash is the plan's
	// content hash (plan.Plan.Hash), checked against what is loaded.
	Plan  string `json:"plan"`
	Hash  string `json:"hash"`
	Batch int    `json:"batch"`
}

// PlanTargetsInput names clusters of a stored plan.
type PlanTargetsInput struct {
	Plan string   `json:"plan"`
	Hash string   `json:"hash"`
	IDs  []string `json:"ids"`
}

// PlanTargetsResult is each cluster's target in the stored plan and the
// batch that holds it.
type PlanTargetsResult struct {
	Targets map[string]plan.Target `json:"targets"`
	Batch   map[string]int         `json:"batch"`
}

// PublishInput is the argument of the Publish activity: commands sent in
// order, each keyed by its cluster.
type PublishInput struct {
	Commands []dataplane.Command `json:"commands"`
}

// HealthTarget is one cluster whose monitors are checked.
type HealthTarget struct {
	ClusterID string `json:"id"`
	Product   string `json:"product"`
}

// HealthInput is the argument of the CheckHealth activity.
type HealthInput struct {
	Clusters []HealthTarget `json:"clusters"`
}

// Finding is one cluster that is not healthy.
type Finding struct {
	ClusterID string `json:"id"`
	// Unknown is true when health could not be read (no data, API error):
	// unknown health is treated as unhealthy.
	Unknown bool   `json:"unknown,omitempty"`
	Monitor string `json:"monitor,omitempty"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

// HealthResult is what CheckHealth returns.
type HealthResult struct {
	Findings []Finding `json:"findings,omitempty"`
}

// Timing knobs for batches. Status resync re-sends a cluster's last command
// when the data plane has said nothing about it for this long, so a lost
// command or status event costs a delay, never progress.
const (
	resyncAfter         = 30 * time.Second
	holdWaitAfterAbort  = 2 * time.Minute
	publishTimeout      = 30 * time.Second
	healthCheckTimeout  = 30 * time.Second
	minimumPollInterval = 250 * time.Millisecond
	// healthHeartbeatTimeout: a monitor read heartbeats every second
	// (activities.CheckHealth); one silent this long was lost.
	healthHeartbeatTimeout = 5 * time.Second
	// ackTimeout bounds how long a batch waits for its rollout's verdict on
	// a failure before it goes on starting clusters.
	ackTimeout = time.Minute
	// idleWait is the longest a batch sleeps when nothing of it needs
	// watching (paused with every cluster held, queued in a lane, every
	// pending cluster waiting for a window): signals wake it, the timer is
	// a backstop, so an idle day costs a handful of events, not thousands.
	idleWait = 6 * time.Hour
	// heldResyncAfter is how often a held cluster is asked whether it still
	// holds (a steady state, so rarely).
	heldResyncAfter = 2 * time.Hour
)

// Workflow versions (workflow.GetVersion). A running workflow replays with
// the version it recorded; workflows started before a change replay with
// workflow.DefaultVersion and keep the old behaviour. See README, "Changing
// workflow code".
const (
	// versionLongLived: batches sleep when idle, do not poll held clusters,
	// continue as new, and abort their in-flight clusters when cancelled;
	// rollouts continue as new and treat cancellation as an abort.
	versionLongLived    = "long-lived"
	versionLongLivedMax = 1
	// versionWatchWhilePublishing: while a batch waits for Kafka to take
	// its commands, it keeps reading its monitors (and acting on what they
	// say) instead of standing blind; a Kafka outage longer than the
	// unknown-health grace no longer reads as "health unknown".
	versionWatchWhilePublishing    = "watch-while-publishing"
	versionWatchWhilePublishingMax = 1
	// versionPlanStore: the rollout plans through ActivityPlanOutline, so
	// its history and continue-as-new input hold the plan's outline, not
	// every cluster's target; each batch loads its own clusters from the
	// plan store (BatchInput.Plan) at the start of every run.
	versionPlanStore    = "plan-store"
	versionPlanStoreMax = 1
	// versionDirectGrants: a batch passes slots to its heir from a local
	// activity that signals it through the client (ActivityGrantSlots),
	// one grant in flight at a time and numbered, so the heir drops a grant
	// it already took; a grant the activity cannot deliver goes as a
	// signal from the workflow, as before. A grant reaches the heir in one
	// call instead of the server's signal-external path, and the donor no
	// longer wakes to the server's "signaled" event.
	versionDirectGrants    = "direct-grants"
	versionDirectGrantsMax = 1
	// versionSegmentBudget: a phase's segments (plan-store rollouts) fill
	// DefaultSegmentBudget events, not DefaultHistoryBudget: each
	// continue-as-new between segments drains the phase's window for
	// seconds, and this halves how many there are.
	versionSegmentBudget    = "segment-budget"
	versionSegmentBudgetMax = 1
	// versionQuietEmits: a running batch publishes its cluster events to
	// fleet.events at most every emitEvery (or once emitBatch are
	// waiting), not on every tick: an Emit activity and the workflow task
	// its completion brings were a fifth of a batch's history. They go at
	// once as the batch ends or continues as new.
	versionQuietEmits    = "quiet-emits"
	versionQuietEmitsMax = 1
	// versionTickWhilePublishing: a publish watches the monitors on the
	// loop's tick instead of starting (and, as the publish ends, cancelling)
	// a timer of its own: two events per cluster started.
	versionTickWhilePublishing    = "tick-while-publishing"
	versionTickWhilePublishingMax = 1
	// versionStartFill: a batch starts as many clusters as it has free
	// slots at once; before, each cluster it started was counted twice,
	// so it started half of them and the rest at its next turn.
	versionStartFill    = "start-fill"
	versionStartFillMax = 1
)

// emitEvery and emitBatch bound how long and how many cluster events wait
// for fleet.events (versionQuietEmits). The log is per-cluster history
// (`fleet history`), not live progress, which the status query answers.
const (
	emitEvery = 5 * time.Second
	emitBatch = 100
)

// emitDue reports whether the collected events go out at this tick.
func (b *batch) emitDue(ctx workflow.Context) bool {
	if b.vq < 1 {
		return true
	}
	now := workflow.Now(ctx)
	if len(b.events) < emitBatch && now.Sub(b.lastEmit) < emitEvery {
		return false
	}
	if len(b.events) > 0 {
		b.lastEmit = now
	}
	return true
}

// control is a signal channel handled before anything else in a batch's loop.
type control struct {
	ch  workflow.ReceiveChannel
	try func() bool // receives and handles one pending message, if any
}

// controls lists the batch's control signals in priority order.
func (b *batch) controls(ctx workflow.Context) []control {
	logger := workflow.GetLogger(ctx)
	abortCh := workflow.GetSignalChannel(ctx, Abort)
	pauseCh := workflow.GetSignalChannel(ctx, Pause)
	resumeCh := workflow.GetSignalChannel(ctx, Resume)
	alertCh := workflow.GetSignalChannel(ctx, SignalMonitorAlert)
	ackCh := workflow.GetSignalChannel(ctx, SignalIncidentAck)
	pacingCh := workflow.GetSignalChannel(ctx, SignalPacing)
	readyCh := workflow.GetSignalChannel(ctx, SignalLaneReady)
	slotsCh := workflow.GetSignalChannel(ctx, SignalLaneSlots)
	action := func(ch workflow.ReceiveChannel, do func(workflow.Context, string) error, what string) control {
		return control{ch: ch, try: func() bool {
			var req ActionRequest
			if !ch.ReceiveAsync(&req) {
				return false
			}
			if err := do(ctx, req.Reason); err != nil {
				logger.Error(what, "error", err)
			}
			return true
		}}
	}
	return []control{
		action(abortCh, b.abort, "abort clusters"),
		action(pauseCh, b.pause, "hold clusters"),
		{ch: alertCh, try: func() bool {
			var al MonitorAlert
			if !alertCh.ReceiveAsync(&al) {
				return false
			}
			if err := b.onPushedAlert(ctx, al); err != nil {
				logger.Error("stop alerting cluster", "error", err)
			}
			return true
		}},
		{ch: ackCh, try: func() bool {
			var id string
			if !ackCh.ReceiveAsync(&id) {
				return false
			}
			if b.awaitingAck > 0 {
				b.awaitingAck--
			}
			return true
		}},
		action(resumeCh, b.resume, "resume clusters"),
		{ch: pacingCh, try: func() bool {
			var n int
			if !pacingCh.ReceiveAsync(&n) {
				return false
			}
			if n > 0 {
				b.in.Concurrency = min(n, len(b.clusters))
			}
			return true
		}},
		{ch: readyCh, try: func() bool {
			return readyCh.ReceiveAsync(&b.heir)
		}},
		{ch: slotsCh, try: func() bool {
			var g SlotGrant
			if !slotsCh.ReceiveAsync(&g) {
				return false
			}
			b.take(g)
			return true
		}},
	}
}

// drainControls handles every pending control signal, in priority order.
func (b *batch) drainControls(controls []control) {
	for again := true; again; {
		again = false
		for _, c := range controls {
			for c.try() {
				again = true
			}
		}
	}
}

// Batch applies the target spec to one batch of clusters: it keeps up to
// Concurrency clusters in flight, follows each through the data plane's status
// events, checks monitors while clusters are in flight and through the bake,
// holds every in-flight cluster on pause and continues them on resume.
func Batch(ctx workflow.Context, in BatchInput) (BatchResult, error) {
	if in.Plan != "" && len(in.Batch.Clusters) == 0 {
		// Its clusters are in the plan store (versionPlanStore): loaded at
		// the start of each run, never carried across a continue-as-new.
		// The status query answers while they load (newBatch replaces it).
		if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (BatchStatus, error) {
			return loadingStatus(in), nil
		}); err != nil {
			return BatchResult{}, fmt.Errorf("register status query: %w", err)
		}
		ts, err := loadBatchTargets(ctx, in)
		if err != nil {
			return BatchResult{}, err
		}
		in.Batch.Clusters = ts
	}
	b, err := newBatch(ctx, in)
	if err != nil {
		return BatchResult{}, err
	}
	return b.run(ctx)
}

type batch struct {
	in       BatchInput
	self     string
	parent   string
	clusters []*ClusterStatus
	byID     map[string]*ClusterStatus
	// own holds the clusters that have a target of their own (targetOf).
	own      map[string]dataplane.Spec
	lastSeen map[string]time.Time
	// Scheduling: each cluster's inventory record and the policy in force
	// (windows, blackouts), read once when the batch starts.
	info      map[string]fleet.Cluster
	policy    *policy.Snapshot
	startedAt time.Time
	wakeAt    time.Time
	overrides []string
	state     BatchState
	paused    bool
	aborted   bool
	// reported holds the incidents this batch already raised, so one bad
	// cluster raises one incident, not one per poll.
	reported map[string]bool
	bakeEnd  time.Time
	// unreadableSince is when the monitors API started failing (zero when
	// readable); unknownSince is, per cluster, when its health became unknown.
	unreadableSince time.Time
	unknownSince    map[string]time.Time
	// health is the monitor read in flight (nil when none) and the clusters
	// it reads.
	health        workflow.Future
	healthTargets []HealthTarget
	lastRead      time.Time
	// awaitingAck counts failures reported to the rollout that it has not yet
	// judged against the error budget: nothing new starts meanwhile, so a
	// failed cluster is not replaced before the rollout decides to pause.
	awaitingAck int
	ackDeadline time.Time
	// emitted is each cluster's last state published to fleet.events;
	// emits are the Emit activities in flight.
	emitted map[string]ClusterState
	events  []Event
	emits   []workflow.Future
	// vq is versionQuietEmits's version; lastEmit is when the collected
	// events last went out.
	vq       workflow.Version
	lastEmit time.Time
	// tick is the loop's timer (due at tickAt; cancelTick stops it). From
	// versionTickWhilePublishing (vt) a publish waits on it instead of a
	// timer of its own.
	tick       workflow.Future
	tickAt     time.Time
	cancelTick func()
	vt         workflow.Version
	// vf is versionStartFill's version.
	vf workflow.Version
	// Lane state (BatchInput.Lane): the slots owned (clusters that may be in
	// flight; negative after pacing lowered the lane's slots), those of them
	// the rollout granted, the heir that announced itself, whether the donor
	// has finished, and the grants sent.
	slots        int
	rolloutSlots int
	heir         string
	// healthRead is set by the first successful health read: until then a
	// cluster that finished applying keeps its slot.
	healthRead bool
	donorDone  bool
	grants     []workflow.Future
	// From versionDirectGrants (vg): grantSeq numbers the grants sent to
	// the heir, grantPending is the last one until delivered (the next
	// waits for it, so grants arrive in order), and grantsTaken holds the
	// numbers of the donor's grants taken (a grant delivered twice counts
	// once).
	vg           workflow.Version
	grantSeq     int
	grantPending workflow.Future
	grantsTaken  map[int]bool
	// v is the workflow version this run follows (versionLongLived).
	v workflow.Version
	// vw is versionWatchWhilePublishing's version in this run; awaiting
	// is set while a publish is waited for (a publish started meanwhile,
	// by an alerting monitor, waits plainly).
	vw       workflow.Version
	awaiting bool
	pollDue  time.Time
	runs     int
	// saState is the RolloutState search attribute's value last upserted.
	saState string
	// lastHealthy is when the monitors last answered (or when health was
	// last not needed): health unknown counts its grace from it.
	lastHealthy  time.Time
	healthNeeded bool
	// lastHealthErr is why the last monitor read failed ("" after a healthy one).
	lastHealthErr string
}

// loadBatchTargets loads the batch's clusters from the plan store. A plan
// that cannot be loaded fails the batch, naming the plan: nothing is planned
// again in its place.
func loadBatchTargets(ctx workflow.Context, in BatchInput) ([]plan.Target, error) {
	// One read is short (a batch's slice of the plan), so a read lost with
	// a stopped worker is retried after planLoadAttempt, not minutes later;
	// a store that stays unreachable fails the batch after planLoadDeadline.
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    planLoadAttempt,
		ScheduleToCloseTimeout: planLoadDeadline,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			MaximumInterval:        30 * time.Second,
			NonRetryableErrorTypes: []string{ErrPlanUnavailable},
		},
	})
	var ts []plan.Target
	err := workflow.ExecuteActivity(actx, ActivityBatchTargets, BatchTargetsInput{Plan: in.Plan, Hash: in.PlanHash, Batch: in.Batch.Number}).Get(ctx, &ts)
	if err != nil {
		return nil, fmt.Errorf("batch %d: load its clusters from plan %s: %w", in.Batch.Number, in.Plan, err)
	}
	if len(ts) != in.Batch.Size {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("batch %d: plan %s holds %d clusters for it, the rollout planned %d",
			in.Batch.Number, in.Plan, len(ts), in.Batch.Size), ErrPlanUnavailable, nil)
	}
	return ts, nil
}

// loadingStatus is a batch's status while it loads its clusters from the
// plan store: what it carried from its last run, or every cluster pending.
func loadingStatus(in BatchInput) BatchStatus {
	st := BatchStatus{Number: in.Batch.Number, Phase: in.Phase, State: BatchPending}
	if c := in.Carry; c != nil {
		st.State = c.State
		st.Clusters = append([]ClusterStatus(nil), c.Clusters...)
		for _, cs := range c.Clusters {
			st.Counts.Add(cs.State)
		}
		return st
	}
	st.Clusters = []ClusterStatus{}
	st.Counts.Pending = in.Batch.Size
	return st
}

// planLoadAttempt bounds one read of a batch's clusters from the plan store;
// planLoadDeadline all of them.
const (
	planLoadAttempt  = 20 * time.Second
	planLoadDeadline = 15 * time.Minute
)

// ErrPlanUnavailable is the error type of a plan that cannot be loaded from
// the plan store (missing, corrupt, not the plan named): not retried.
const ErrPlanUnavailable = "PlanUnavailable"

func newBatch(ctx workflow.Context, in BatchInput) (*batch, error) {
	if len(in.Batch.Clusters) == 0 {
		return nil, temporal.NewNonRetryableApplicationError("batch has no clusters", "InvalidBatch", nil)
	}
	info := workflow.GetInfo(ctx)
	b := &batch{
		in:           in,
		self:         info.WorkflowExecution.ID,
		byID:         make(map[string]*ClusterStatus, len(in.Batch.Clusters)),
		lastSeen:     make(map[string]time.Time, len(in.Batch.Clusters)),
		reported:     map[string]bool{},
		unknownSince: map[string]time.Time{},
		emitted:      map[string]ClusterState{},
		state:        BatchRunning,
	}
	if info.ParentWorkflowExecution != nil {
		b.parent = info.ParentWorkflowExecution.ID
	}
	if b.in.Concurrency <= 0 || b.in.Concurrency > len(in.Batch.Clusters) {
		b.in.Concurrency = len(in.Batch.Clusters)
	}
	if in.Lane != nil {
		b.slots = in.Lane.Slots
		b.donorDone = in.Lane.Donor == ""
		if b.slots <= 0 {
			// Queued: nothing may start until the donor grants a slot.
			b.state = BatchPending
		}
	}
	if in.Carry != nil {
		b.restore(in.Carry)
		b.in.Carry = nil
	} else {
		for _, t := range in.Batch.Clusters {
			cs := &ClusterStatus{ID: t.ClusterID, Product: t.Product, Generation: t.Generation, State: ClusterPending}
			b.clusters = append(b.clusters, cs)
			b.byID[t.ClusterID] = cs
		}
	}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (BatchStatus, error) {
		return b.status(), nil
	}); err != nil {
		return nil, fmt.Errorf("register status query: %w", err)
	}
	return b, nil
}

func (b *batch) status() BatchStatus {
	st := BatchStatus{Number: b.in.Batch.Number, Phase: b.in.Phase, State: b.state}
	if l := b.in.Lane; l != nil {
		st.Lane = &LaneStatus{Lane: l.Lane, Slots: b.slots, Donor: l.Donor, Heir: b.heir, DonorDone: b.donorDone}
	}
	st.Clusters = make([]ClusterStatus, len(b.clusters))
	for i, c := range b.clusters {
		st.Clusters[i] = *c
		st.Counts.Add(c.State)
	}
	return st
}

func (b *batch) result() BatchResult {
	r := BatchResult{Number: b.in.Batch.Number, Aborted: b.aborted, Overrides: b.overrides, RolloutSlots: b.rolloutSlots}
	r.Clusters = make([]ClusterStatus, len(b.clusters))
	for i, c := range b.clusters {
		r.Clusters[i] = *c
	}
	if b.in.CompactResult {
		return r.compact()
	}
	return r
}

func (b *batch) inFlight() []*ClusterStatus {
	var out []*ClusterStatus
	for _, c := range b.clusters {
		switch c.State {
		case ClusterApplying, ClusterHolding, ClusterHeld, ClusterVerifying:
			out = append(out, c)
		}
	}
	return out
}

func (b *batch) active() int {
	n := 0
	for _, c := range b.clusters {
		switch c.State {
		case ClusterApplying, ClusterHolding, ClusterHeld:
			n++
		}
	}
	return n
}

func (b *batch) allTerminal() bool {
	for _, c := range b.clusters {
		if !c.State.Terminal() {
			return false
		}
	}
	return true
}

// targetOf is the spec to push to a cluster: its own target (a rollback's
// clusters each return to their own version), else the batch's.
func (b *batch) targetOf(id string) dataplane.Spec {
	if b.own == nil {
		b.own = map[string]dataplane.Spec{}
		for _, t := range b.in.Batch.Clusters {
			if t.Version != "" {
				b.own[t.ClusterID] = dataplane.Spec{Version: t.Version, Config: t.Config}
			}
		}
	}
	if s, ok := b.own[id]; ok {
		return s
	}
	return b.in.Target
}

func (b *batch) command(ctx workflow.Context, kind dataplane.CommandKind, c *ClusterStatus, reason string) dataplane.Command {
	cmd := dataplane.Command{
		Kind:       kind,
		ClusterID:  c.ID,
		Generation: c.Generation,
		RolloutID:  b.in.RolloutID,
		ReplyTo:    b.self,
		Reason:     reason,
		IssuedAt:   workflow.Now(ctx),
	}
	if kind == dataplane.Apply {
		spec := b.targetOf(c.ID)
		cmd.Spec = &spec
	}
	return cmd
}

// Publishing: first as a local activity, which skips the server's schedule,
// dispatch and completion round trips that a cluster's slot would otherwise
// sit idle through; if Kafka does not take the commands within
// localPublishFor, as a regular activity retried until it succeeds, which
// waits out a long outage without holding the batch's workflow task open. A
// retry may send a command twice; commands are idempotent by generation.
const localPublishFor = time.Minute

var publishRetry = &temporal.RetryPolicy{
	InitialInterval:    200 * time.Millisecond,
	BackoffCoefficient: 2,
	MaximumInterval:    10 * time.Second,
}

// publish sends commands and waits until Kafka acknowledged them.
func (b *batch) publish(ctx workflow.Context, cmds []dataplane.Command) error {
	if len(cmds) == 0 {
		return nil
	}
	in := PublishInput{Commands: cmds}
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		ScheduleToCloseTimeout: localPublishFor,
		StartToCloseTimeout:    publishTimeout,
		RetryPolicy:            publishRetry,
	})
	err := b.await(ctx, workflow.ExecuteLocalActivity(lctx, ActivityPublish, in))
	if err == nil {
		return nil
	}
	workflow.GetLogger(ctx).Warn("publish still failing; retrying as an activity", "commands", len(cmds), "error", err)
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: publishTimeout, RetryPolicy: publishRetry})
	if err := b.await(ctx, workflow.ExecuteActivity(actx, ActivityPublish, in)); err != nil {
		return fmt.Errorf("publish %d commands: %w", len(cmds), err)
	}
	return nil
}

// await waits for a publish. From versionWatchWhilePublishing on, the
// monitors are read on their interval meanwhile, their answers acted on, and
// health that goes unknown raised, as in the batch's loop: Kafka being down
// (commands and statuses stopped) does not leave the clusters in flight
// unwatched, nor read as the monitors not answering.
func (b *batch) await(ctx workflow.Context, f workflow.Future) error {
	if b.vw < 1 || b.awaiting || b.in.HealthInterval <= 0 {
		return f.Get(ctx, nil)
	}
	b.awaiting = true
	defer func() { b.awaiting = false }()
	for !f.IsReady() {
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(f, func(workflow.Future) {})
		cancel := func() {}
		if b.health != nil {
			sel.AddFuture(b.health, b.healthDone(ctx))
		} else if b.needsHealth() && b.vt >= 1 && b.tick != nil {
			// The loop's tick (due within a health interval) stands in
			// for a timer of its own: a publish that ends first, as
			// nearly all do, adds no timer to the history.
			sel.AddFuture(b.tick, func(workflow.Future) {
				b.tick = nil // the loop sets the next
				b.cancelTick()
				if now := workflow.Now(ctx); !now.Before(b.pollDue) {
					b.pollDue = now.Add(b.in.HealthInterval)
					b.startHealth(ctx)
				}
			})
		} else if b.needsHealth() {
			now := workflow.Now(ctx)
			d := max(b.pollDue.Sub(now), minimumPollInterval)
			var tctx workflow.Context
			tctx, cancel = workflow.WithCancel(ctx)
			sel.AddFuture(workflow.NewTimer(tctx, d), func(workflow.Future) {
				b.pollDue = workflow.Now(ctx).Add(b.in.HealthInterval)
				b.startHealth(ctx)
			})
		}
		sel.Select(ctx)
		cancel()
		if ctx.Err() != nil {
			break
		}
		b.checkStaleHealth(ctx)
	}
	return f.Get(ctx, nil)
}

func (b *batch) run(ctx workflow.Context) (BatchResult, error) {
	b.v = workflow.GetVersion(ctx, versionLongLived, workflow.DefaultVersion, versionLongLivedMax)
	b.vw = workflow.GetVersion(ctx, versionWatchWhilePublishing, workflow.DefaultVersion, versionWatchWhilePublishingMax)
	b.vg = workflow.GetVersion(ctx, versionDirectGrants, workflow.DefaultVersion, versionDirectGrantsMax)
	b.vq = workflow.GetVersion(ctx, versionQuietEmits, workflow.DefaultVersion, versionQuietEmitsMax)
	b.vt = workflow.GetVersion(ctx, versionTickWhilePublishing, workflow.DefaultVersion, versionTickWhilePublishingMax)
	b.vf = workflow.GetVersion(ctx, versionStartFill, workflow.DefaultVersion, versionStartFillMax)
	err := b.loop(ctx)
	var can *workflow.ContinueAsNewError
	switch {
	case err == nil:
	case errors.As(err, &can):
		return BatchResult{}, err
	case b.v >= 1 && (ctx.Err() != nil || temporal.IsCanceledError(err)):
		return b.cancelled(ctx)
	default:
		return b.result(), err
	}
	if b.aborted {
		b.state = BatchAborted
	} else {
		b.state = BatchCompleted
	}
	b.publishBatchState(ctx)
	b.collectEvents(ctx)
	b.flushEvents(ctx)
	for _, f := range b.emits {
		if err := f.Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Error("emit cluster events", "error", err)
		}
	}
	// Last, so no grant arrives after the slots are handed over.
	b.handOver(ctx)
	return b.result(), nil
}

// loop runs the batch until every cluster has ended (and the bake is over);
// it returns a ContinueAsNewError when the history has grown past its budget.
func (b *batch) loop(ctx workflow.Context) error {
	statusCh := workflow.GetSignalChannel(ctx, SignalClusterStatus)
	statusesCh := workflow.GetSignalChannel(ctx, SignalClusterStatuses)
	controls := b.controls(ctx)

	if b.runs == 0 {
		b.announce(ctx)
		if err := b.loadSchedule(ctx); err != nil {
			return err
		}
	}
	b.tick, b.cancelTick = nil, func() {}
	for {
		// Control signals first: a pause or an abort that has arrived is
		// acted on before another status is processed or a cluster starts.
		b.drainControls(controls)
		if b.v >= 1 && ctx.Err() != nil {
			return ctx.Err()
		}
		// Start what may start.
		queued := b.state == BatchPending
		if err := b.startClusters(ctx); err != nil {
			return err
		}
		if queued && b.state != BatchPending && b.tick != nil {
			// The queued batch's long backstop timer gives way to the
			// running batch's ticks (health reads, resync).
			b.cancelTick()
			b.tick = nil
		}
		b.donate(ctx)
		b.checkStaleHealth(ctx)
		b.publishBatchState(ctx)
		if b.allTerminal() && b.health == nil && b.laneSettled() {
			if b.aborted || b.in.Bake <= 0 || b.in.HealthInterval <= 0 {
				break
			}
			if b.bakeEnd.IsZero() {
				b.bakeEnd = workflow.Now(ctx).Add(b.in.Bake)
				b.state = BatchBaking
			}
			if !b.paused && !workflow.Now(ctx).Before(b.bakeEnd) {
				break
			}
		}
		if b.v >= 1 && b.health == nil && b.continueAsNewDue(ctx) {
			b.cancelTick()
			return b.continueAsNew(ctx, controls, statusCh, statusesCh)
		}

		// One timer drives status resync, apply timeouts, health polls and the bake.
		if b.tick != nil && b.v >= 1 {
			// A long idle sleep gives way when something needs watching
			// again (a resume, a grant, a window reached).
			now := workflow.Now(ctx)
			if now.Add(b.tickInterval(now)).Before(b.tickAt) {
				b.cancelTick()
				b.tick = nil
			}
		}
		if b.tick == nil {
			var tctx workflow.Context
			tctx, b.cancelTick = workflow.WithCancel(ctx)
			now := workflow.Now(ctx)
			d := b.tickInterval(now)
			b.tickAt = now.Add(d)
			b.tick = workflow.NewTimer(tctx, d)
		}
		sel := workflow.NewSelector(ctx)
		for _, c := range controls {
			// Received by drainControls at the top of the loop.
			sel.AddReceive(c.ch, func(workflow.ReceiveChannel, bool) {})
		}
		b.receiveStatuses(ctx, sel, statusCh, statusesCh)
		fired := false
		sel.AddFuture(b.tick, func(workflow.Future) { fired = true; b.tick = nil; b.cancelTick() })
		if b.health != nil {
			// Health is read without blocking the loop: a pause is handled
			// while monitors are being read (or a rate limit waited out).
			sel.AddFuture(b.health, b.healthDone(ctx))
		}
		if b.grantPending != nil && !b.grantPending.IsReady() {
			// Slots freed meanwhile go on as soon as it is delivered.
			sel.AddFuture(b.grantPending, func(workflow.Future) {})
		}
		sel.Select(ctx)
		b.collectEvents(ctx)
		if b.v >= 1 && ctx.Err() != nil {
			return ctx.Err()
		}
		if !fired {
			now := workflow.Now(ctx)
			if b.onlyVerifying() && b.health == nil && b.in.HealthInterval > 0 && now.Sub(b.lastRead) >= minimumPollInterval {
				// The batch waits only for its last clusters' monitors:
				// read them now, not at the next tick.
				b.pollDue = now.Add(b.in.HealthInterval)
				b.startHealth(ctx)
			}
			continue
		}
		if b.emitDue(ctx) {
			b.flushEvents(ctx)
		}
		now := workflow.Now(ctx)
		if err := b.resync(ctx, now); err != nil {
			return err
		}
		if b.in.HealthInterval > 0 && !now.Before(b.pollDue) && b.health == nil {
			b.pollDue = now.Add(b.in.HealthInterval)
			b.startHealth(ctx)
		}
	}
	return nil
}

// collectEvents records every cluster state change since the last call, for
// fleet.events.
func (b *batch) collectEvents(ctx workflow.Context) {
	now := workflow.Now(ctx)
	for _, c := range b.clusters {
		if c.State == ClusterPending || b.emitted[c.ID] == c.State {
			continue
		}
		b.emitted[c.ID] = c.State
		b.events = append(b.events, Event{Kind: EventClusterState, RolloutID: b.in.RolloutID, Version: b.targetOf(c.ID).Version,
			Phase: b.in.Phase, Batch: b.in.Batch.Number, ClusterID: c.ID, State: string(c.State), Message: c.Message, At: now})
	}
}

// flushEvents publishes the collected events to fleet.events in one Emit
// activity, not waited for here: Kafka being slow must not slow the batch.
func (b *batch) flushEvents(ctx workflow.Context) {
	if len(b.events) == 0 || b.in.RolloutID == "" {
		return
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 30 * time.Second},
	})
	b.emits = append(b.emits, workflow.ExecuteActivity(actx, ActivityEmit, EmitInput{Events: b.events}))
	b.events = nil
}

func (b *batch) tickInterval(now time.Time) time.Duration {
	if b.v >= 1 {
		return b.tickIntervalV1(now)
	}
	if b.active() == 0 && !b.wakeAt.IsZero() && b.wakeAt.After(now) && !b.anyVerifying() {
		// Only clusters waiting for a window or a blackout's end: sleep
		// until the first may start (a durable timer, however long).
		return b.wakeAt.Sub(now)
	}
	if b.state == BatchPending && b.health == nil {
		// Queued in a lane: the donor's grant wakes the batch; the timer
		// is only a backstop, so a long queue does not fill the history.
		return resyncAfter / 3
	}
	d := b.in.HealthInterval
	if d <= 0 || d > resyncAfter/3 {
		d = resyncAfter / 3
	}
	if d < minimumPollInterval {
		d = minimumPollInterval
	}
	return d
}

// startClusters sends apply commands for pending clusters while the window
// has room and the batch is neither paused nor aborted.
func (b *batch) startClusters(ctx workflow.Context) error {
	if b.paused || b.aborted || b.healthUnknown() {
		return nil
	}
	if b.awaitingAck > 0 && workflow.Now(ctx).Before(b.ackDeadline) {
		return nil
	}
	var cmds []dataplane.Command
	now := workflow.Now(ctx)
	b.wakeAt = time.Time{}
	for _, c := range b.clusters {
		// A cluster started here is applying already, so active() counts
		// it: before versionStartFill it was counted twice, and a batch
		// started half its free slots at a time (13 of 25, then 6, ...).
		started := 0
		if b.vf < 1 {
			started = len(cmds)
		}
		if b.active()+started >= b.limit() {
			break
		}
		if c.State != ClusterPending && c.State != ClusterWaiting {
			continue
		}
		at, reason, err := b.nextStart(c, now)
		switch {
		case err != nil:
			c.State, c.Message, c.FinishedAt = ClusterSkipped, "skipped: "+err.Error(), &now
			continue
		case at.After(now) && at.Sub(b.startedAt) > b.in.Schedule.MaxWait && b.in.Schedule.MaxWait > 0:
			c.State, c.FinishedAt = ClusterSkipped, &now
			c.Message = fmt.Sprintf("skipped: cannot start within the maximum wait of %s: %s", b.in.Schedule.MaxWait, reason)
			continue
		case at.After(now):
			c.State = ClusterWaiting
			c.Message = "waiting: " + reason
			if b.wakeAt.IsZero() || at.Before(b.wakeAt) {
				b.wakeAt = at
			}
			continue
		}
		cmds = append(cmds, b.command(ctx, dataplane.Apply, c, ""))
		c.State = ClusterApplying
		c.StartedAt = &now
		b.lastSeen[c.ID] = now
	}
	if len(cmds) > 0 && b.state == BatchPending {
		b.state = BatchRunning
	}
	return b.publish(ctx, cmds)
}

// nextStart is when a cluster may start: inside its maintenance window
// (unless the rollout ignores windows) and outside blackouts; an emergency
// rollout starts at once and records the override.
func (b *batch) nextStart(c *ClusterStatus, now time.Time) (time.Time, string, error) {
	info, ok := b.info[c.ID]
	if !ok {
		return now, "", nil
	}
	if !b.in.Schedule.RespectWindows {
		info.Window = nil
	}
	at, reason, err := policy.NextStart(info, now, b.policy, false)
	if b.in.Schedule.Emergency {
		if err != nil || at.After(now) {
			if err != nil {
				reason = err.Error()
			}
			note := fmt.Sprintf("%s: emergency override: %s", c.ID, reason)
			if len(b.overrides) < 1000 && !slices.Contains(b.overrides, note) {
				b.overrides = append(b.overrides, note)
			}
			c.Message = "emergency override: " + reason
		}
		return now, "", nil
	}
	return at, reason, err
}

// onlyVerifying reports whether every cluster not yet finished is verifying.
func (b *batch) onlyVerifying() bool {
	any := false
	for _, c := range b.clusters {
		switch {
		case c.State == ClusterVerifying:
			any = true
		case !c.State.Terminal():
			return false
		}
	}
	return any
}

func (b *batch) anyVerifying() bool {
	for _, c := range b.clusters {
		if c.State == ClusterVerifying {
			return true
		}
	}
	return false
}

// loadSchedule reads the batch's clusters' inventory records and the policy.
func (b *batch) loadSchedule(ctx workflow.Context) error {
	b.startedAt = workflow.Now(ctx)
	ids := make([]string, len(b.clusters))
	for i, c := range b.clusters {
		ids[i] = c.ID
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 30 * time.Second},
	})
	var res ClustersResult
	if err := workflow.ExecuteActivity(actx, ActivityClusters, ClustersInput{IDs: ids}).Get(ctx, &res); err != nil {
		return fmt.Errorf("read the batch's clusters: %w", err)
	}
	b.info = make(map[string]fleet.Cluster, len(res.Clusters))
	for _, c := range res.Clusters {
		b.info[c.ID] = c
	}
	b.policy = res.Policy
	return nil
}

func (b *batch) onStatus(ctx workflow.Context, st dataplane.Status) {
	c, ok := b.byID[st.ClusterID]
	if !ok || st.Generation != c.Generation || c.State.Terminal() {
		return // for another batch, an older generation, or late
	}
	now := workflow.Now(ctx)
	b.lastSeen[c.ID] = now
	if st.Brokers > 0 {
		c.Brokers = st.Brokers
	}
	if st.Broker > c.Broker {
		c.Broker = st.Broker
	}
	switch st.State {
	case dataplane.Progress, dataplane.Resumed:
		if c.State == ClusterHeld || c.State == ClusterHolding {
			if !b.paused {
				c.State = ClusterApplying
			}
			return
		}
		if c.State == ClusterPending {
			c.State = ClusterApplying
		}
	case dataplane.Held:
		c.State = ClusterHeld
		c.Message = fmt.Sprintf("held before broker %d of %d", st.Broker+1, st.Brokers)
	case dataplane.Completed:
		c.Message = ""
		if b.in.HealthInterval > 0 {
			c.State = ClusterVerifying
		} else {
			c.State = ClusterDone
			c.FinishedAt = &now
		}
	case dataplane.Rejected:
		switch st.Code {
		case dataplane.RejectBusy, dataplane.RejectStale:
			// Another change owns the cluster: skip it, with the reason.
			c.State = ClusterSkipped
			c.Message = "skipped: another change owns the cluster: " + st.Message
			c.FinishedAt = &now
			return
		case dataplane.RejectUnknown:
			// The apply command was lost: send it again (held if paused).
			cmds := []dataplane.Command{b.command(ctx, dataplane.Apply, c, "resend: "+st.Message)}
			if b.paused {
				c.State = ClusterHolding
				cmds = append(cmds, b.command(ctx, dataplane.Hold, c, "paused"))
			} else {
				c.State = ClusterApplying
			}
			if err := b.publish(ctx, cmds); err != nil {
				workflow.GetLogger(ctx).Error("resend apply", "cluster", c.ID, "error", err)
			}
			return
		}
		c.State = ClusterFailed
		c.Message = st.Message
		c.FinishedAt = &now
		b.raise(ctx, Incident{Kind: IncidentApplyFailed, ClusterID: c.ID, Message: fmt.Sprintf("%s: %s", st.State, st.Message)})
	case dataplane.Failed:
		c.State = ClusterFailed
		c.Message = st.Message
		c.FinishedAt = &now
		b.raise(ctx, Incident{Kind: IncidentApplyFailed, ClusterID: c.ID, Message: fmt.Sprintf("%s: %s", st.State, st.Message)})
	case dataplane.Aborted:
		c.State = ClusterAborted
		c.Message = "aborted at broker " + fmt.Sprint(st.Broker)
		c.FinishedAt = &now
	}
}

// receiveStatuses adds the data plane's status signals (one status, or the
// bridge's list) to sel.
func (b *batch) receiveStatuses(ctx workflow.Context, sel workflow.Selector, one, list workflow.ReceiveChannel) {
	sel.AddReceive(one, func(ch workflow.ReceiveChannel, _ bool) {
		var st dataplane.Status
		ch.Receive(ctx, &st)
		b.onStatus(ctx, st)
	})
	sel.AddReceive(list, func(ch workflow.ReceiveChannel, _ bool) {
		var sts []dataplane.Status
		ch.Receive(ctx, &sts)
		for _, st := range sts {
			b.onStatus(ctx, st)
		}
	})
}

// resync re-sends the last command for clusters the data plane has been
// silent about, and fails clusters past their apply timeout.
func (b *batch) resync(ctx workflow.Context, now time.Time) error {
	var cmds []dataplane.Command
	for _, c := range b.inFlight() {
		if c.State == ClusterVerifying {
			continue
		}
		if b.in.ApplyTimeout > 0 && c.StartedAt != nil && c.State == ClusterApplying && now.Sub(*c.StartedAt) > b.in.ApplyTimeout {
			c.State = ClusterFailed
			c.Message = fmt.Sprintf("no completion within the apply timeout %s", b.in.ApplyTimeout)
			c.FinishedAt = &now
			b.raise(ctx, Incident{Kind: IncidentApplyFailed, ClusterID: c.ID, Message: c.Message})
			continue
		}
		after := resyncAfter
		if c.State == ClusterHeld && b.v >= 1 {
			after = heldResyncAfter
		}
		if now.Sub(b.lastSeen[c.ID]) < after {
			continue
		}
		b.lastSeen[c.ID] = now
		switch c.State {
		case ClusterApplying:
			cmds = append(cmds, b.command(ctx, dataplane.Apply, c, "resync"))
		case ClusterHolding:
			cmds = append(cmds, b.command(ctx, dataplane.Hold, c, "resync"))
		case ClusterHeld:
			// Held is a steady state; ask only whether it still holds.
			cmds = append(cmds, b.command(ctx, dataplane.Report, c, "resync"))
		}
	}
	return b.publish(ctx, cmds)
}

// startHealth starts reading the monitors of the clusters in flight,
// verifying, or done and baking.
func (b *batch) startHealth(ctx workflow.Context) {
	var targets []HealthTarget
	for _, c := range b.clusters {
		switch c.State {
		case ClusterHeld:
			// A held cluster changes nothing: it is read again on resume.
			if b.v < 1 {
				targets = append(targets, HealthTarget{ClusterID: c.ID, Product: c.Product})
			}
		case ClusterApplying, ClusterHolding, ClusterVerifying:
			targets = append(targets, HealthTarget{ClusterID: c.ID, Product: c.Product})
		case ClusterDone:
			if b.state == BatchBaking && (b.v < 1 || !b.paused) {
				targets = append(targets, HealthTarget{ClusterID: c.ID, Product: c.Product})
			}
		}
	}
	if len(targets) == 0 {
		return
	}
	timeout := b.healthTimeout()
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		// A read lost with a stopped worker fails at its heartbeat
		// timeout, in seconds, not at its deadline: the next read still
		// lands within the grace.
		HeartbeatTimeout: min(healthHeartbeatTimeout, timeout),
		RetryPolicy:      &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	b.healthTargets = targets
	b.lastRead = workflow.Now(ctx)
	b.health = workflow.ExecuteActivity(actx, ActivityCheckHealth, HealthInput{Clusters: targets})
}

// healthDone is the selector callback of the monitor read in flight: the
// read is over, and its result is acted on.
func (b *batch) healthDone(ctx workflow.Context) func(workflow.Future) {
	return func(f workflow.Future) {
		b.health = nil
		if err := b.onHealth(ctx, f); err != nil {
			workflow.GetLogger(ctx).Error("health result", "error", err)
		}
	}
}

// onHealth acts on a health read: alerting clusters fail and stop, unknown
// health holds everything back and, past the grace period, raises an incident.
func (b *batch) onHealth(ctx workflow.Context, f workflow.Future) error {
	targets := b.healthTargets
	now := workflow.Now(ctx)
	var res HealthResult
	err := f.Get(ctx, &res)
	if err != nil {
		var canceled *temporal.CanceledError
		if errors.As(err, &canceled) {
			return err
		}
		// Health that cannot be read is not healthy: nothing advances, and
		// past the grace period the rollout pauses. One incident for the
		// batch, not one per cluster.
		b.lastHealthErr = err.Error()
		if b.unreadableSince.IsZero() {
			b.unreadableSince = now
			if b.v >= 1 {
				// The grace counts from the last healthy read.
				b.unreadableSince = b.lastHealthy
			}
		}
		if now.Sub(b.unreadableSince) >= b.in.UnknownGrace {
			b.raise(ctx, Incident{Kind: IncidentHealthUnknown, ClusterID: targets[0].ClusterID,
				Message: fmt.Sprintf("health unknown for %s: monitors unreadable: %v", now.Sub(b.unreadableSince).Round(time.Second), err)})
		}
		return nil
	}
	b.unreadableSince = time.Time{}
	b.healthRead = true
	b.lastHealthy = now
	b.lastHealthErr = ""

	sort.Slice(res.Findings, func(i, j int) bool {
		if res.Findings[i].ClusterID != res.Findings[j].ClusterID {
			return res.Findings[i].ClusterID < res.Findings[j].ClusterID
		}
		return res.Findings[i].Monitor < res.Findings[j].Monitor
	})
	alerting := map[string]Finding{}
	unknown := map[string]Finding{}
	for _, f := range res.Findings {
		if f.Unknown {
			if _, ok := unknown[f.ClusterID]; !ok {
				unknown[f.ClusterID] = f
			}
		} else if _, ok := alerting[f.ClusterID]; !ok {
			alerting[f.ClusterID] = f
		}
	}
	var cmds []dataplane.Command
	for _, c := range b.clusters {
		if f, ok := alerting[c.ID]; ok {
			if cmd, stop := b.failAlerting(ctx, c, f); stop {
				cmds = append(cmds, cmd)
			}
			continue
		}
		if f, ok := unknown[c.ID]; ok && !c.State.Terminal() || ok && c.State == ClusterDone {
			since, seen := b.unknownSince[c.ID]
			if !seen {
				since = now
				b.unknownSince[c.ID] = now
			}
			c.Message = fmt.Sprintf("health unknown: %s %s", f.Monitor, f.Status)
			if now.Sub(since) >= b.in.UnknownGrace {
				b.raise(ctx, Incident{Kind: IncidentHealthUnknown, ClusterID: c.ID, Monitor: f.Monitor,
					Message: fmt.Sprintf("health unknown for %s: %s %s", now.Sub(since).Round(time.Second), f.Monitor, f.Message)})
			}
			continue
		}
		delete(b.unknownSince, c.ID)
		if c.State == ClusterVerifying {
			c.State = ClusterDone
			c.Message = ""
			c.FinishedAt = &now
		}
	}
	return b.publish(ctx, cmds)
}

// failAlerting fails a cluster whose critical monitor alerts (in flight,
// verifying, or done and baking) and raises the incident; it returns the abort
// command that stops the cluster before its next broker, if it is in flight.
func (b *batch) failAlerting(ctx workflow.Context, c *ClusterStatus, f Finding) (dataplane.Command, bool) {
	if c.State.Terminal() && !(c.State == ClusterDone && b.state == BatchBaking) {
		return dataplane.Command{}, false
	}
	var cmd dataplane.Command
	stop := false
	switch c.State {
	case ClusterApplying, ClusterHolding, ClusterHeld:
		cmd, stop = b.command(ctx, dataplane.Abort, c, "monitor "+f.Monitor+" alerting"), true
	}
	now := workflow.Now(ctx)
	c.State = ClusterFailed
	c.Message = fmt.Sprintf("monitor %s %s at broker %d of %d: %s", f.Monitor, f.Status, c.Broker, c.Brokers, f.Message)
	c.FinishedAt = &now
	delete(b.unknownSince, c.ID)
	b.raise(ctx, Incident{Kind: IncidentMonitorAlert, ClusterID: c.ID, Monitor: f.Monitor, Message: f.Message})
	return cmd, stop
}

// onPushedAlert handles a monitor alert pushed by the webhook endpoint.
func (b *batch) onPushedAlert(ctx workflow.Context, al MonitorAlert) error {
	c, ok := b.byID[al.ClusterID]
	if !ok {
		return nil
	}
	status := al.Status
	if status == "" {
		status = "Alert"
	}
	if cmd, stop := b.failAlerting(ctx, c, Finding{ClusterID: c.ID, Monitor: al.Monitor, Status: status, Message: al.Message + " (webhook)"}); stop {
		return b.publish(ctx, []dataplane.Command{cmd})
	}
	return nil
}

// healthUnknown reports whether some cluster's health (or the monitors API)
// is unreadable right now: the batch then starts nothing new.
func (b *batch) healthUnknown() bool {
	return !b.unreadableSince.IsZero() || len(b.unknownSince) > 0
}

// raise tells the rollout about a cluster problem; the rollout counts it
// against the error budget and pauses (or aborts) every batch when the budget
// is exceeded, or at once for unknown health. One incident per cluster and kind.
func (b *batch) raise(ctx workflow.Context, inc Incident) {
	key := string(inc.Kind) + "/" + inc.ClusterID
	if b.reported[key] {
		return
	}
	b.reported[key] = true
	inc.Batch = b.in.Batch.Number
	inc.At = workflow.Now(ctx)
	logger := workflow.GetLogger(ctx)
	logger.Warn("incident", "kind", inc.Kind, "cluster", inc.ClusterID, "monitor", inc.Monitor, "message", inc.Message)
	if b.parent == "" {
		// A batch run on its own has no budget to consult: it holds.
		if err := b.pause(ctx, fmt.Sprintf("%s on %s", inc.Kind, inc.ClusterID)); err != nil {
			logger.Error("hold clusters", "error", err)
		}
		return
	}
	if inc.Kind != IncidentHealthUnknown {
		b.awaitingAck++
		b.ackDeadline = inc.At.Add(ackTimeout)
	}
	// The parent's run ID is left empty: after a continue-as-new the
	// current run of the rollout receives it.
	f := workflow.SignalExternalWorkflow(ctx, b.parent, "", SignalIncident, inc)
	if err := f.Get(ctx, nil); err != nil {
		logger.Error("signal incident to rollout", "error", err)
	}
}

func (b *batch) pause(ctx workflow.Context, reason string) error {
	if b.paused || b.aborted {
		return nil
	}
	b.paused = true
	if b.state == BatchRunning {
		b.state = BatchPaused
	}
	var cmds []dataplane.Command
	for _, c := range b.clusters {
		if c.State == ClusterApplying {
			c.State = ClusterHolding
			cmds = append(cmds, b.command(ctx, dataplane.Hold, c, reason))
		}
	}
	return b.publish(ctx, cmds)
}

func (b *batch) resume(ctx workflow.Context, reason string) error {
	if !b.paused || b.aborted {
		return nil
	}
	b.paused = false
	// The incidents already reported stay recorded; a cluster that is still
	// unhealthy after resume raises a fresh incident.
	b.reported = map[string]bool{}
	b.awaitingAck = 0
	// A person resumed: unknown health gets a fresh grace period.
	now0 := workflow.Now(ctx)
	if !b.unreadableSince.IsZero() {
		b.unreadableSince = now0
	}
	for _, id := range workflow.DeterministicKeys(b.unknownSince) {
		b.unknownSince[id] = now0
	}
	if b.state == BatchPaused {
		b.state = BatchRunning
	}
	if b.v >= 1 && !b.bakeEnd.IsZero() && b.in.HealthInterval > 0 {
		// Monitors were not read while paused: the bake ends only after
		// at least one more read.
		if min := now0.Add(b.in.HealthInterval + minimumPollInterval); b.bakeEnd.Before(min) {
			b.bakeEnd = min
		}
		b.pollDue = now0
	}
	var cmds []dataplane.Command
	now := workflow.Now(ctx)
	for _, c := range b.clusters {
		if c.State == ClusterHeld || c.State == ClusterHolding {
			c.State = ClusterApplying
			c.Message = ""
			b.lastSeen[c.ID] = now
			cmds = append(cmds, b.command(ctx, dataplane.Resume, c, reason))
		}
	}
	return b.publish(ctx, cmds)
}

func (b *batch) abort(ctx workflow.Context, reason string) error {
	if b.aborted {
		return nil
	}
	b.aborted = true
	b.state = BatchAborted
	now := workflow.Now(ctx)
	var cmds []dataplane.Command
	for _, c := range b.clusters {
		switch c.State {
		case ClusterPending, ClusterWaiting:
			c.State = ClusterSkipped
			c.Message = "rollout aborted: " + reason
		case ClusterApplying, ClusterHolding, ClusterHeld:
			cmds = append(cmds, b.command(ctx, dataplane.Abort, c, reason))
			// Keep a bounded wait for the data plane's Aborted answer.
			b.lastSeen[c.ID] = now
		case ClusterVerifying:
			c.State = ClusterDone
			c.FinishedAt = &now
		}
	}
	if err := b.publish(ctx, cmds); err != nil {
		return err
	}
	// Wait for the in-flight clusters to stop, but not forever.
	statusCh := workflow.GetSignalChannel(ctx, SignalClusterStatus)
	statusesCh := workflow.GetSignalChannel(ctx, SignalClusterStatuses)
	deadline := now.Add(holdWaitAfterAbort)
	for b.active() > 0 && workflow.Now(ctx).Before(deadline) {
		tctx, cancel := workflow.WithCancel(ctx)
		timedOut := false
		sel := workflow.NewSelector(ctx)
		b.receiveStatuses(ctx, sel, statusCh, statusesCh)
		sel.AddFuture(workflow.NewTimer(tctx, deadline.Sub(workflow.Now(ctx))), func(workflow.Future) { timedOut = true })
		sel.Select(ctx)
		cancel()
		if timedOut {
			break
		}
	}
	end := workflow.Now(ctx)
	for _, c := range b.clusters {
		if !c.State.Terminal() {
			c.State = ClusterAborted
			c.Message = "abort sent; the data plane did not confirm within " + holdWaitAfterAbort.String()
			c.FinishedAt = &end
		}
	}
	return nil
}
