package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/internal/spec"
)

// Long-lived batches: a batch may live for days (paused overnight, clusters
// waiting a week for their windows, queued behind a slow lane). Its history
// grows with work, not with wall-clock time: when nothing of it needs watching
// it sleeps on its signals and one long timer, and it continues as new,
// carrying its whole state (BatchCarry), when the history passes its budget or
// the server suggests it.

// watching reports whether something of the batch needs the short tick:
// clusters applying, holding (a hold not yet confirmed) or verifying, a bake
// under way, or monitors that cannot be read while the batch is not paused.
func (b *batch) watching() bool {
	for _, c := range b.clusters {
		switch c.State {
		case ClusterApplying, ClusterHolding, ClusterVerifying:
			return true
		}
	}
	if b.paused || b.aborted {
		return false
	}
	return b.state == BatchBaking || b.healthUnknown()
}

// tickIntervalV1 is the loop's timer: the monitoring interval while something
// needs watching, else a sleep until the next thing due (a window opening, a
// held cluster's report, the end of the wait for the rollout's verdict), at
// most idleWait.
func (b *batch) tickIntervalV1(now time.Time) time.Duration {
	if b.watching() {
		d := b.in.HealthInterval
		if d <= 0 || d > resyncAfter/3 {
			d = resyncAfter / 3
		}
		if b.needsHealth() {
			// Wake for the next read when it is due, and when the
			// monitors' silence would exceed the grace.
			for _, at := range []time.Time{b.pollDue, b.healthDeadline()} {
				if due := at.Sub(now); due > 0 && due < d {
					d = due
				}
			}
		}
		return max(d, minimumPollInterval)
	}
	d := idleWait
	due := func(at time.Time) {
		if !at.IsZero() && at.After(now) && at.Sub(now) < d {
			d = at.Sub(now)
		}
	}
	due(b.wakeAt)
	if b.awaitingAck > 0 {
		due(b.ackDeadline)
	}
	for _, c := range b.clusters {
		if c.State == ClusterHeld {
			due(b.lastSeen[c.ID].Add(heldResyncAfter))
		}
	}
	return max(d, minimumPollInterval)
}

// historyBudget is the history length at which the batch continues as new.
func historyBudget(n int) int {
	if n <= 0 {
		return DefaultHistoryBudget
	}
	return n
}

// continueAsNewDue reports whether this run's history is long enough to hand
// over to a new run.
func continueAsNewDue(ctx workflow.Context, budget int) bool {
	info := workflow.GetInfo(ctx)
	return info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() >= historyBudget(budget)
}

func (b *batch) continueAsNewDue(ctx workflow.Context) bool {
	return continueAsNewDue(ctx, b.in.HistoryBudget)
}

// continueAsNew hands the batch's state to a new run. Everything in flight is
// settled first: events published, slot grants delivered, and every signal
// already received handled (a status or a control left in a channel would be
// lost with this run).
func (b *batch) continueAsNew(ctx workflow.Context, controls []control, statusCh, statusesCh workflow.ReceiveChannel) error {
	logger := workflow.GetLogger(ctx)
	for {
		b.collectEvents(ctx)
		b.flushEvents(ctx)
		for _, f := range b.emits {
			if err := f.Get(ctx, nil); err != nil {
				logger.Error("emit cluster events", "error", err)
			}
		}
		b.emits = nil
		for _, f := range b.grants {
			if err := f.Get(ctx, nil); err != nil {
				logger.Warn("pass slots on", "error", err)
			}
		}
		b.grants = nil
		b.grantPending = nil
		handled := 0
		for _, c := range controls {
			for c.try() {
				handled++
			}
		}
		var st dataplane.Status
		for statusCh.ReceiveAsync(&st) {
			b.onStatus(ctx, st)
			handled++
		}
		var sts []dataplane.Status
		for statusesCh.ReceiveAsync(&sts) {
			for _, st := range sts {
				b.onStatus(ctx, st)
			}
			handled++
		}
		if handled == 0 && len(b.events) == 0 && workflow.AllHandlersFinished(ctx) {
			break
		}
	}
	in := b.in
	in.Carry = b.carry()
	if in.Plan != "" {
		// The next run loads its clusters from the plan store again.
		in.Batch.Clusters = nil
	}
	logger.Info("batch continues as new", "run", in.Carry.Runs, "history", workflow.GetInfo(ctx).GetCurrentHistoryLength())
	return workflow.NewContinueAsNewError(ctx, WorkflowBatch, in)
}

// carry is the batch's state for the next run.
func (b *batch) carry() *BatchCarry {
	c := &BatchCarry{
		LastSeen:        b.lastSeen,
		Info:            b.info,
		Policy:          b.policy,
		StartedAt:       b.startedAt,
		Overrides:       b.overrides,
		State:           b.state,
		Paused:          b.paused,
		Aborted:         b.aborted,
		Reported:        b.reported,
		BakeEnd:         b.bakeEnd,
		UnreadableSince: b.unreadableSince,
		UnknownSince:    b.unknownSince,
		AwaitingAck:     b.awaitingAck,
		AckDeadline:     b.ackDeadline,
		Emitted:         b.emitted,
		Slots:           b.slots,
		RolloutSlots:    b.rolloutSlots,
		Heir:            b.heir,
		HealthRead:      b.healthRead,
		DonorDone:       b.donorDone,
		GrantSeq:        b.grantSeq,
		GrantsTaken:     b.grantsTaken,
		PollDue:         b.pollDue,
		Runs:            b.runs + 1,
	}
	c.Clusters = make([]ClusterStatus, len(b.clusters))
	for i, cs := range b.clusters {
		c.Clusters[i] = *cs
	}
	return c
}

// restore takes the state a previous run carried.
func (b *batch) restore(c *BatchCarry) {
	b.clusters = make([]*ClusterStatus, len(c.Clusters))
	for i := range c.Clusters {
		cs := c.Clusters[i]
		b.clusters[i] = &cs
		b.byID[cs.ID] = &cs
	}
	orEmpty := func(m map[string]time.Time) map[string]time.Time {
		if m == nil {
			return map[string]time.Time{}
		}
		return m
	}
	b.lastSeen = orEmpty(c.LastSeen)
	b.unknownSince = orEmpty(c.UnknownSince)
	b.info = c.Info
	b.policy = c.Policy
	b.startedAt = c.StartedAt
	b.overrides = c.Overrides
	b.state = c.State
	b.paused, b.aborted = c.Paused, c.Aborted
	if c.Reported != nil {
		b.reported = c.Reported
	}
	b.bakeEnd = c.BakeEnd
	b.unreadableSince = c.UnreadableSince
	b.awaitingAck, b.ackDeadline = c.AwaitingAck, c.AckDeadline
	if c.Emitted != nil {
		b.emitted = c.Emitted
	}
	b.slots, b.rolloutSlots = c.Slots, c.RolloutSlots
	b.heir = c.Heir
	b.healthRead, b.donorDone = c.HealthRead, c.DonorDone
	b.grantSeq, b.grantsTaken = c.GrantSeq, c.GrantsTaken
	b.pollDue = c.PollDue
	b.runs = c.Runs
}

// cancelled ends a batch whose workflow was cancelled (its rollout was
// cancelled, terminated or reset, or someone cancelled the batch): it acts as
// an abort, in a disconnected context so the commands still go out. Every
// in-flight cluster gets abort (stopping before its next broker), pending
// ones are skipped, and nothing new starts; the batch then ends cancelled.
func (b *batch) cancelled(ctx workflow.Context) (BatchResult, error) {
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	logger := workflow.GetLogger(ctx)
	if b.health != nil {
		// The read's result no longer matters.
		b.health = nil
	}
	const why = "workflow cancelled (its rollout was cancelled, terminated or reset)"
	if err := b.abort(dctx, why); err != nil {
		logger.Error("abort clusters on cancel", "error", err)
	}
	b.state = BatchAborted
	b.publishBatchState(dctx)
	b.collectEvents(dctx)
	b.flushEvents(dctx)
	for _, f := range b.emits {
		if err := f.Get(dctx, nil); err != nil {
			logger.Error("emit cluster events", "error", err)
		}
	}
	logger.Warn("batch cancelled: in-flight clusters aborted", "batch", b.in.Batch.Number)
	return b.result(), temporal.NewCanceledError(fmt.Sprintf("batch %d cancelled: in-flight clusters aborted", b.in.Batch.Number))
}

// --- the rollout ---

// continueAsNew hands the rollout's state to a new run. It is called only
// where no batch runs (between phases, or at a gate), after every handler has
// finished, every signal already received has been handled, and the outbox has
// sent what it holds.
func (r *rollout) continueAsNew(ctx workflow.Context) error {
	err := workflow.Await(ctx, func() bool {
		return workflow.AllHandlersFinished(ctx) && r.out.pending() == 0 && !r.out.busy && r.signalsPending() == 0
	})
	if err != nil {
		return err
	}
	in := r.in
	in.Carry = r.carry()
	workflow.GetLogger(ctx).Info("rollout continues as new", "run", in.Carry.Runs, "nextPhase", in.Carry.NextPhase,
		"history", workflow.GetInfo(ctx).GetCurrentHistoryLength())
	return workflow.NewContinueAsNewError(ctx, WorkflowRollout, in)
}

// signalsPending counts signals received but not yet handled by the
// rollout's signal coroutines.
func (r *rollout) signalsPending() int {
	n := 0
	for _, ch := range r.signalChans {
		n += ch.Len()
	}
	return n
}

// carry is the rollout's state for the next run. Above detailLimit clusters,
// finished batches keep only the clusters that did not end done (the rest
// are counted), so the carried state stays far below Temporal's 2 MB cap.
func (r *rollout) carry() *RolloutCarry {
	results := r.results
	if r.st.Total > detailLimit {
		results = make(map[int]BatchResult, len(r.results))
		for _, n := range workflow.DeterministicKeys(r.results) {
			results[n] = r.results[n].compact()
		}
	}
	return &RolloutCarry{
		Plan:             r.plan,
		Status:           r.st,
		Aborted:          r.aborted,
		ApprovedPlan:     r.approvedPlan,
		ApprovedPhases:   r.approvedPhases,
		Results:          results,
		Failed:           r.failed,
		FailedBatch:      r.failedBatch,
		PhaseFailed:      r.phaseFailed,
		Frozen:           r.frozen,
		Policy:           r.policy,
		PacedConcurrency: r.pacedConcurrency,
		PacedBake:        r.pacedBake,
		ThreadTS:         r.threadTS,
		NextPhase:        r.nextPhase,
		NextBatch:        r.nextBatch,
		GateSince:        r.gateSince,
		Runs:             r.runs + 1,
		Nonces:           r.nonces,
		RollbackBy:       r.rollbackBy,
	}
}

// compact keeps the clusters that did not end done; the done ones are counted.
func (res BatchResult) compact() BatchResult {
	out := res
	out.Clusters = nil
	for _, c := range res.Clusters {
		if c.State == ClusterDone {
			out.Done++
			continue
		}
		out.Clusters = append(out.Clusters, c)
	}
	return out
}

// restore takes the state a previous run carried.
func (r *rollout) restore(c *RolloutCarry) {
	r.plan = c.Plan
	r.st = c.Status
	r.aborted = c.Aborted
	r.rollbackBy = c.RollbackBy
	r.approvedPlan = c.ApprovedPlan
	if c.ApprovedPhases != nil {
		r.approvedPhases = c.ApprovedPhases
	}
	if c.Results != nil {
		r.results = c.Results
	}
	if c.Failed != nil {
		r.failed = c.Failed
	}
	if c.PhaseFailed != nil {
		r.phaseFailed = c.PhaseFailed
	}
	if c.FailedBatch != nil {
		r.failedBatch = c.FailedBatch
	}
	r.frozen = c.Frozen
	r.policy = c.Policy
	// A run carried over has read its policy (continue-as-new happens
	// after planning).
	r.policyLoaded = true
	if c.Nonces != nil {
		r.nonces = c.Nonces
	}
	r.pacedConcurrency = c.PacedConcurrency
	r.pacedBake = c.PacedBake
	r.threadTS = c.ThreadTS
	r.nextPhase = c.NextPhase
	r.nextBatch = c.NextBatch
	r.gateSince = c.GateSince
	r.runs = c.Runs
	if r.plan != nil && r.nextPhase < len(r.plan.Phases) {
		r.currentPhase = r.plan.Phases[r.nextPhase].Name
	}
}

// cancelled ends a rollout whose workflow was cancelled (the Web UI, the
// temporal CLI, a client's CancelWorkflow): it acts as an abort. The batches
// were asked to cancel with it and abort their in-flight clusters (see
// batch.cancelled); the rollout waits for them, then records who cancelled in
// the audit, tells the Slack thread, and ends cancelled.
func (r *rollout) cancelled(ctx workflow.Context) (RolloutStatus, error) {
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	r.aborted = true
	who, why := "unknown", "workflow cancel request"
	actx := workflow.WithActivityOptions(dctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	var req CancelRequest
	if err := workflow.ExecuteActivity(actx, ActivityCancelRequest, CancelRequestInput{WorkflowID: r.id, RunID: workflow.GetInfo(ctx).WorkflowExecution.RunID}).Get(dctx, &req); err != nil {
		workflow.GetLogger(ctx).Warn("read who cancelled", "error", err)
	} else {
		if req.Identity != "" {
			who = req.Identity
		}
		if req.Reason != "" {
			why = req.Reason
		}
	}
	// The batches end as they abort their in-flight clusters (bounded).
	_, _ = workflow.AwaitWithTimeout(dctx, holdWaitAfterAbort+time.Minute, func() bool { return len(r.running) == 0 })
	r.audit(dctx, who, "cancel", why, "applied: in-flight clusters aborted, nothing new starts")
	r.finish(dctx, StateAborted, "cancelled by "+who)
	return r.statusDetail(false), temporal.NewCanceledError("rollout cancelled by " + who + ": " + why)
}

// --- what the Web UI and the temporal CLI show ---

// startStateWatcher keeps the RolloutState search attribute (the fleet's own
// state: an aborted rollout is not "Completed") and the workflow's current
// details (progress, phase, pause reason; shown by the Web UI) up to date.
func (r *rollout) startStateWatcher(ctx workflow.Context) {
	type mark struct {
		state            RolloutState
		results, running int
		paused           *PauseReason
		waiting, phase   string
	}
	now := func() mark {
		return mark{r.st.State, len(r.results), len(r.running), r.st.Paused, r.st.WaitingFor, r.currentPhase}
	}
	var last mark
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			if err := workflow.Await(ctx, func() bool { return now() != last }); err != nil {
				return
			}
			last = now()
			workflow.SetCurrentDetails(ctx, r.details())
			r.publishState(ctx)
		}
	})
}

// publishState upserts RolloutState when it changed.
func (r *rollout) publishState(ctx workflow.Context) {
	if string(r.st.State) == r.saState {
		return
	}
	r.saState = string(r.st.State)
	upsert(ctx, SARolloutState.ValueSet(r.saState))
}

// details is the rollout's one-paragraph story for the Web UI.
func (r *rollout) details() string {
	out := fmt.Sprintf("**%s** to %s: %s", r.st.Name, r.st.TargetVersion, r.st.State)
	if r.plan != nil {
		done := 0
		for _, n := range workflow.DeterministicKeys(r.results) {
			res := r.results[n]
			done += res.Done
			for _, c := range res.Clusters {
				if c.State == ClusterDone {
					done++
				}
			}
		}
		out += fmt.Sprintf(", %d of %d clusters done in finished batches, %d batches running", done, r.st.Total, len(r.running))
	}
	if r.currentPhase != "" {
		out += ", phase " + r.currentPhase
	}
	if p := r.st.Paused; p != nil {
		out += fmt.Sprintf("\n\nPaused by %s: %s", p.Actor, p.Reason)
	}
	if r.st.WaitingFor != "" {
		out += "\n\nWaiting for " + r.st.WaitingFor
	}
	return out
}

// publishBatchState upserts the batch's RolloutState when it changed and
// refreshes its current details (counts by state).
func (b *batch) publishBatchState(ctx workflow.Context) {
	if b.v < 1 {
		return
	}
	var c Counts
	for _, cs := range b.clusters {
		c.Add(cs.State)
	}
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("batch %d (%s): %s; %d done, %d in flight, %d held, %d verifying, %d pending, %d failed, %d aborted, %d skipped of %d",
		b.in.Batch.Number, b.in.Phase, b.state, c.Done, c.InFlight, c.Held, c.Verifying, c.Pending, c.Failed, c.Aborted, c.Skipped, len(b.clusters)))
	if string(b.state) == b.saState {
		return
	}
	b.saState = string(b.state)
	upsert(ctx, SARolloutState.ValueSet(b.saState))
}

// --- deadlines inside the grace ---

// needsHealth reports whether the batch needs monitor reads now: clusters
// applying, holding or verifying, or a bake under way, and not paused.
func (b *batch) needsHealth() bool {
	if b.in.HealthInterval <= 0 || b.paused || b.aborted {
		return false
	}
	if b.state == BatchBaking {
		return true
	}
	for _, c := range b.clusters {
		switch c.State {
		case ClusterApplying, ClusterHolding, ClusterVerifying:
			return true
		}
	}
	return false
}

// grace is the unknown-health grace in force (the spec's default when the
// input has none).
func (b *batch) grace() time.Duration {
	if b.in.UnknownGrace <= 0 {
		return spec.DefaultUnknownGrace
	}
	return b.in.UnknownGrace
}

// healthDeadline is when health becomes unknown without a healthy read: one
// monitoring interval (the next read is due) plus the grace after the last
// healthy read.
func (b *batch) healthDeadline() time.Time {
	return b.lastHealthy.Add(b.in.HealthInterval + b.grace())
}

// healthTimeout bounds one monitor read: no longer than the time health may
// go unknown (a monitoring interval plus the grace), so a read never outlives
// the deadline it feeds (checkStaleHealth raises at that deadline whatever a
// read is doing), and at most healthCheckTimeout.
func (b *batch) healthTimeout() time.Duration {
	if b.v < 1 {
		return healthCheckTimeout
	}
	return min(max(b.in.HealthInterval+b.grace(), 2*time.Second), healthCheckTimeout)
}

// checkStaleHealth raises a health-unknown incident when the monitors have
// not answered healthily for a monitoring interval plus the grace, whether a
// read failed, hangs, or none could start; while health is not needed, the
// clock stands still.
func (b *batch) checkStaleHealth(ctx workflow.Context) {
	if b.v < 1 {
		return
	}
	now := workflow.Now(ctx)
	if !b.needsHealth() || !b.healthNeeded || b.lastHealthy.IsZero() {
		// The clock starts when health becomes needed.
		b.healthNeeded = b.needsHealth()
		b.lastHealthy = now
		return
	}
	if now.Before(b.healthDeadline()) {
		return
	}
	if b.unreadableSince.IsZero() {
		b.unreadableSince = b.lastHealthy
	}
	target := ""
	for _, c := range b.clusters {
		if c.State == ClusterApplying || c.State == ClusterHolding || c.State == ClusterVerifying || c.State == ClusterDone {
			target = c.ID
			break
		}
	}
	why := "no answer from the monitors"
	if b.lastHealthErr != "" {
		why = "monitors unreadable: " + b.lastHealthErr
	}
	b.raise(ctx, Incident{Kind: IncidentHealthUnknown, ClusterID: target,
		Message: fmt.Sprintf("health unknown for %s: no healthy monitor read since %s (monitoring interval %s, grace %s): %s",
			now.Sub(b.lastHealthy).Round(time.Second), b.lastHealthy.UTC().Format(time.TimeOnly), b.in.HealthInterval, b.grace(), why)})
}
