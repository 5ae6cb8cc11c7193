package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/fleet-rollout/fleet/internal/plan"
)

// Lanes: a phase's concurrency as a cluster-level window across its batches
// (see BatchLane). This file holds both ends: the batch side (announce,
// donate, hand over) and the rollout side (which lane takes the next batch,
// where returned slots go, pacing).

// laneDepth is how many batches of one lane run at once: the one applying
// and the heirs queued behind it, so a freed slot finds its heir running.
const laneDepth = 3

// --- the batch side ---

// limit is how many clusters the batch may have in flight.
func (b *batch) limit() int {
	if b.in.Lane != nil {
		return b.slots
	}
	return b.in.Concurrency
}

// announce tells the donor the batch is running, so the donor may grant it
// slots. A donor that has already closed has handed its slots to the rollout,
// which passes them on.
func (b *batch) announce(ctx workflow.Context) {
	if b.in.Lane == nil || b.in.Lane.Donor == "" {
		return
	}
	if err := workflow.SignalExternalWorkflow(ctx, b.in.Lane.Donor, "", SignalLaneReady, b.self).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Info("lane donor has finished", "donor", b.in.Lane.Donor, "error", err)
	}
}

// take adds a grant's slots, once per numbered grant.
func (b *batch) take(g SlotGrant) {
	if g.Seq > 0 {
		if b.grantsTaken[g.Seq] {
			return
		}
		if b.grantsTaken == nil {
			b.grantsTaken = map[int]bool{}
		}
		b.grantsTaken[g.Seq] = true
	}
	b.slots += g.N
	if g.FromRollout {
		b.rolloutSlots += g.N
	}
	if g.Final {
		b.donorDone = true
	}
}

// spare is how many of the batch's slots it can no longer use: every cluster
// in flight or still to start keeps one.
func (b *batch) spare() int {
	need := 0
	for _, c := range b.clusters {
		switch c.State {
		case ClusterPending, ClusterWaiting, ClusterApplying, ClusterHolding, ClusterHeld:
			need++
		}
	}
	return b.slots - need
}

// donate passes on to the heir the slots the batch can no longer use, as
// soon as a cluster finishes (a batch with no heir keeps them until it
// finishes and gives them to the rollout). Nothing is handed on while the
// batch is paused, aborted, reading unknown health, or waiting for the
// rollout's verdict on a failure (a slot freed by a failed cluster must not
// start another cluster before the error budget is judged), nor before a
// first monitor read has passed the clusters that finished applying. With a
// bake, slots pass on only when it is over.
func (b *batch) donate(ctx workflow.Context) {
	if b.in.Lane == nil || b.in.Bake > 0 || b.heir == "" {
		return
	}
	if b.paused || b.aborted || b.healthUnknown() {
		return
	}
	if b.awaitingAck > 0 && workflow.Now(ctx).Before(b.ackDeadline) {
		return
	}
	n := b.spare()
	if !b.healthRead && b.in.HealthInterval > 0 {
		for _, c := range b.clusters {
			if c.State == ClusterVerifying {
				n--
			}
		}
	}
	if n <= 0 {
		return
	}
	if b.vg < 1 {
		b.slots -= n
		b.grants = append(b.grants, workflow.SignalExternalWorkflow(ctx, b.heir, "", SignalLaneSlots, SlotGrant{N: n}))
		return
	}
	if b.grantPending != nil && !b.grantPending.IsReady() {
		return // sent when the grant in flight is delivered (the loop waits for it)
	}
	b.slots -= n
	b.grantSeq++
	b.grantPending = b.grant(ctx, b.heir, SlotGrant{N: n, Seq: b.grantSeq})
	b.grants = append(b.grants, b.grantPending)
}

// grantFor bounds the local activity that delivers a grant; past it (or
// when it fails) the grant goes as a signal from the workflow.
const grantFor = 30 * time.Second

// grant delivers g to heir from a local activity (one call to the server,
// while this workflow task runs), or, if that fails, as a signal from the
// workflow (durable; the heir drops a grant number it already took).
func (b *batch) grant(ctx workflow.Context, heir string, g SlotGrant) workflow.Future {
	f, set := workflow.NewFuture(ctx)
	workflow.Go(ctx, func(gctx workflow.Context) {
		lctx := workflow.WithLocalActivityOptions(gctx, workflow.LocalActivityOptions{
			ScheduleToCloseTimeout: grantFor,
			StartToCloseTimeout:    5 * time.Second,
			RetryPolicy:            &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, MaximumInterval: 5 * time.Second},
		})
		err := workflow.ExecuteLocalActivity(lctx, ActivityGrantSlots, GrantSlotsInput{WorkflowID: heir, Grant: g}).Get(gctx, nil)
		if err != nil {
			workflow.GetLogger(gctx).Info("grant by signal from the workflow", "heir", heir, "error", err)
			err = workflow.SignalExternalWorkflow(gctx, heir, "", SignalLaneSlots, g).Get(gctx, nil)
		}
		set.Set(nil, err)
	})
	return f
}

// giveBack returns slots to the rollout as the batch finishes.
func (b *batch) giveBack(ctx workflow.Context, n int) workflow.Future {
	ret := LaneReturn{Phase: b.in.Phase, Batch: b.in.Batch.Number, N: n}
	return workflow.SignalExternalWorkflow(ctx, b.parent, "", SignalLaneReturn, ret)
}

// laneSettled reports whether the batch may finish as far as its lane goes:
// its donor has finished, so no grant can arrive after it closes.
func (b *batch) laneSettled() bool {
	return b.in.Lane == nil || b.aborted || b.donorDone
}

// handOver passes on every slot the batch still owns as it finishes: to its
// heir as the final grant, else back to the rollout. The grants already sent
// are delivered first, so the final one is the last; slots that arrive while
// it is sent (a pacing change) follow it.
func (b *batch) handOver(ctx workflow.Context) {
	if b.in.Lane == nil || b.parent == "" {
		return
	}
	logger := workflow.GetLogger(ctx)
	for _, f := range b.grants {
		if err := f.Get(ctx, nil); err != nil {
			logger.Warn("pass slots on", "error", err)
		}
	}
	b.grants = nil
	readyCh := workflow.GetSignalChannel(ctx, SignalLaneReady)
	slotsCh := workflow.GetSignalChannel(ctx, SignalLaneSlots)
	// late takes what arrived after the loop's last turn: an heir that
	// announced itself, slots.
	late := func() int {
		for readyCh.ReceiveAsync(&b.heir) {
		}
		before := b.slots
		var g SlotGrant
		for slotsCh.ReceiveAsync(&g) {
			b.take(g)
		}
		return b.slots - before
	}
	late()
	for n, first := b.slots-b.active(), true; first || n != 0; n, first = late(), false {
		if b.heir != "" {
			err := workflow.SignalExternalWorkflow(ctx, b.heir, "", SignalLaneSlots, SlotGrant{N: n, Final: true}).Get(ctx, nil)
			if err == nil {
				continue
			}
			logger.Warn("final grant to heir", "heir", b.heir, "error", err)
			b.heir = ""
		}
		if err := b.giveBack(ctx, n).Get(ctx, nil); err != nil {
			logger.Warn("return slots to the rollout", "error", err)
		}
	}
}

// --- the rollout side ---

// lanes is a running phase's lanes.
type lanes struct {
	phase *plan.Phase
	// slots is each lane's share of the concurrency, as last set or moved.
	slots []int
	// pool holds slots of lanes with no batch running: the lane's next
	// batch starts with them.
	pool []int
	// chain is each lane's started batches in order (indexes into the
	// phase's batches).
	chain [][]int
	// Per batch index: its lane (-1: not started), its heir (-1: none yet),
	// whether its workflow has begun, whether it gave its slots back as it
	// finished (it takes no heir then), whether it has ended.
	laneOf   []int
	heirOf   []int
	running  []bool
	returned []bool
	done     []bool
	// sent sums, per batch index, the slots the rollout granted it.
	sent  []int
	index map[int]int // batch number -> index
	// next is the next batch to start; ended is set once the slots pooled
	// for lanes with nothing left to run have moved to the others.
	next  int
	ended bool
}

// splitSlots divides total slots over n lanes, the first ones taking the
// remainder.
func splitSlots(total, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = total / n
		if i < total%n {
			out[i]++
		}
	}
	return out
}

// live lists the lane's batches that have not ended (nor given their slots
// back as they finish), oldest first.
func (l *lanes) live(lane int) []int {
	var out []int
	for _, i := range l.chain[lane] {
		if !l.done[i] && !l.returned[i] {
			out = append(out, i)
		}
	}
	return out
}

// tail is the lane's newest batch if it may still take an heir (it has not
// ended nor handed its slots back), else -1. An older batch never takes
// another heir: its slots flow to the one it has.
func (l *lanes) tail(lane int) int {
	c := l.chain[lane]
	if len(c) == 0 {
		return -1
	}
	last := c[len(c)-1]
	if l.done[last] || l.returned[last] {
		return -1
	}
	return last
}

// pick is the lane that takes the next batch: the one with the fewest
// batches queued, whose newest batch is running (-1: none may take one).
func (l *lanes) pick() int {
	best, fewest := -1, laneDepth
	for lane := range l.chain {
		if len(l.live(lane)) >= fewest {
			continue
		}
		if t := l.tail(lane); t >= 0 && !l.running[t] {
			continue
		}
		best, fewest = lane, len(l.live(lane))
	}
	return best
}

// runLanes runs a phase's batches as lanes: concurrency/batchSize lanes (at
// least one, at most one per batch), the phase's concurrency split over them.
// Nothing starts while the rollout is paused.
func (r *rollout) runLanes(ctx workflow.Context, ph *plan.Phase) error {
	total := len(ph.Batches)
	batchSize := ph.Batches[0].Len()
	conc := r.concurrency(ph)
	if conc <= 0 {
		conc = batchSize
	}
	n := min(max(1, conc/batchSize), total)
	l := &lanes{
		phase: ph, slots: splitSlots(max(conc, n), n), chain: make([][]int, n),
		laneOf: make([]int, total), heirOf: make([]int, total), running: make([]bool, total),
		returned: make([]bool, total), done: make([]bool, total), sent: make([]int, total),
		index: make(map[int]int, total),
	}
	l.pool = append([]int(nil), l.slots...)
	for i, b := range ph.Batches {
		l.laneOf[i], l.heirOf[i] = -1, -1
		l.index[b.Number] = i
	}
	r.lanes = l
	defer func() { r.lanes = nil }()

	stopping := false
	for {
		ok := func() bool {
			switch {
			case r.childErr != nil && !stopping:
				return true
			case r.aborted || r.childErr != nil:
				return len(r.running) == 0
			case l.next >= total:
				return !l.ended || len(r.running) == 0
			default:
				return r.st.Paused == nil && l.pick() >= 0
			}
		}
		if err := workflow.Await(ctx, ok); err != nil {
			return err
		}
		if r.childErr != nil {
			if !stopping && len(r.running) > 0 {
				// The batches queued behind the failed one would wait for
				// its slots forever: stop the phase's other batches.
				stopping = true
				r.signalChildren(ctx, Abort, ActionRequest{Actor: "fleet", Reason: "phase stopped: " + r.childErr.Error()})
				continue
			}
			return r.childErr
		}
		if r.aborted {
			return nil
		}
		if l.next >= total {
			if !l.ended {
				r.endLanes(ctx)
				continue
			}
			return nil
		}
		for l.next < total && r.st.Paused == nil {
			lane := l.pick()
			if lane < 0 {
				break
			}
			r.startInLane(ctx, lane)
		}
	}
}

// startInLane starts the phase's next batch in the lane: queued behind the
// lane's newest batch, or with the lane's pooled slots when none runs.
func (r *rollout) startInLane(ctx workflow.Context, lane int) {
	l := r.lanes
	i := l.next
	l.next++
	bl := &BatchLane{Lane: lane}
	if donor := l.tail(lane); donor >= 0 {
		bl.Donor = BatchID(r.id, l.phase.Batches[donor].Number)
		l.heirOf[donor] = i
	} else {
		bl.Slots, l.pool[lane] = l.pool[lane], 0
	}
	l.laneOf[i] = lane
	l.chain[lane] = append(l.chain[lane], i)
	b := l.phase.Batches[i]
	child := r.startBatch(ctx, l.phase, b, b.Len(), bl, func(ctx workflow.Context, res BatchResult) {
		l.done[i] = true
		// A grant that reached the batch as it finished was not taken:
		// give those slots again, so the lane does not lose them.
		if lost := l.sent[i] - res.RolloutSlots; lost != 0 && r.lanes == l {
			workflow.GetLogger(ctx).Info("lane slots not taken", "batch", b.Number, "slots", lost)
			if !r.grantLane(ctx, l, lane, lost) && r.lanes == l {
				r.poolOrMove(ctx, l, lane, lost)
			}
		}
	})
	workflow.Go(ctx, func(ctx workflow.Context) {
		// An error here is the child's error too: startBatch reports it.
		_ = child.GetChildWorkflowExecution().Get(ctx, nil)
		l.running[i] = true
	})
}

// endLanes runs once every batch has started: the slots pooled for lanes
// with no batch left move to lanes with work.
func (r *rollout) endLanes(ctx workflow.Context) {
	l := r.lanes
	l.ended = true
	for lane := range l.chain {
		if l.tail(lane) < 0 {
			n := l.pool[lane]
			l.pool[lane] = 0
			r.moveSlots(ctx, l, lane, n)
		}
	}
}

// onLaneReturn takes the slots a batch gave back as it finished: to its heir
// if the rollout has started one since (the heir missed the batch), else to
// the lane's next batch, or, once every batch has started, to the lane with
// the most clusters left.
func (r *rollout) onLaneReturn(ctx workflow.Context, ret LaneReturn) {
	l := r.lanes
	if l == nil || ret.Phase != l.phase.Name {
		return // the phase is over: its slots end with it
	}
	i, ok := l.index[ret.Batch]
	if !ok {
		return
	}
	lane := l.laneOf[i]
	l.returned[i] = true
	if h := l.heirOf[i]; h >= 0 && !l.done[h] {
		if child, ok := r.running[l.phase.Batches[h].Number]; ok {
			if err := child.SignalChildWorkflow(ctx, SignalLaneSlots, SlotGrant{N: ret.N, Final: true, FromRollout: true}).Get(ctx, nil); err == nil {
				l.sent[h] += ret.N
				return
			}
		}
	}
	if r.lanes != l {
		return // the phase ended while the grant was sent: its slots end with it
	}
	r.poolOrMove(ctx, l, lane, ret.N)
}

// poolOrMove keeps a lane's slots for its next batch while batches remain to
// start, else moves them to the lane with the most left.
func (r *rollout) poolOrMove(ctx workflow.Context, l *lanes, lane, n int) {
	if l.next < len(l.phase.Batches) {
		l.pool[lane] += n
		return
	}
	r.moveSlots(ctx, l, lane, n)
}

// moveSlots gives n slots of lane from to the lane with the most clusters in
// batches that have not ended, through its oldest batch: each batch of the
// lane uses them or passes them on to its heir, and the newest gives back
// what it holds as it finishes. Only a lane with a batch queued behind
// another takes them (one batch alone is finishing its own clusters); with
// none they stay in the pool.
//
// The lanes are passed, not read from r.lanes: a grant waits, and the phase
// may end meanwhile (r.lanes becomes nil or the next phase's).
func (r *rollout) moveSlots(ctx workflow.Context, l *lanes, from, n int) {
	if n == 0 {
		return
	}
	to, most := -1, 0
	for lane := range l.chain {
		live := l.live(lane)
		if lane == from || len(live) < 2 {
			continue
		}
		left := 0
		for _, i := range live {
			left += l.phase.Batches[i].Len()
		}
		if left > most {
			to, most = lane, left
		}
	}
	if to >= 0 && r.grantLane(ctx, l, to, n) {
		l.slots[from] -= n
		l.slots[to] += n
		return
	}
	l.pool[from] += n
}

// grantBatch gives n slots to the batch at index i (-1: none); it reports
// whether the batch took them.
func (r *rollout) grantBatch(ctx workflow.Context, l *lanes, i, n int) bool {
	if i < 0 || l.done[i] {
		return false
	}
	num := l.phase.Batches[i].Number
	child, ok := r.running[num]
	if !ok {
		return false
	}
	if err := child.SignalChildWorkflow(ctx, SignalLaneSlots, SlotGrant{N: n, FromRollout: true}).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Info("lane slots", "batch", num, "error", err)
		return false
	}
	l.sent[i] += n
	return true
}

// grantLane gives n slots (negative: takes them) to the lane's oldest running
// batch, or the next if it has just ended. It reports whether one took them.
func (r *rollout) grantLane(ctx workflow.Context, l *lanes, lane, n int) bool {
	for _, i := range l.live(lane) {
		if r.grantBatch(ctx, l, i, n) {
			return true
		}
	}
	return false
}

// paceLanes gives each lane of the running phase its share of a new
// concurrency: the difference goes to the lane's oldest running batch, the
// one that hands slots on first (a cut is taken from the next slots it
// frees), or to the lane's pool. Each lane keeps at least one slot. It
// returns a note when the lanes keep more than asked.
func (r *rollout) paceLanes(ctx workflow.Context, concurrency int) string {
	l := r.lanes
	n := len(l.slots)
	slots := splitSlots(max(concurrency, n), n)
	for lane := range n {
		delta := slots[lane] - l.slots[lane]
		l.slots[lane] = slots[lane]
		if delta != 0 && !r.grantLane(ctx, l, lane, delta) {
			l.pool[lane] += delta
		}
	}
	if concurrency < n {
		return fmt.Sprintf("; phase %s runs %d lanes and each keeps one cluster in flight, so %d run at once", l.phase.Name, n, n)
	}
	return ""
}
