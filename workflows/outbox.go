package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// outbox sends the rollout's side messages — Slack notifications and
// fleet.events — from one coroutine, in order, so the thread reads in order
// and the rollout never waits on Slack or Kafka.
type outbox struct {
	ch     workflow.Channel
	done   workflow.WaitGroup
	closed bool
	// busy is set while an item is being sent.
	busy bool
	// overflow holds, in order, what did not fit in the channel: nothing is
	// dropped (an audit entry or a notification lost would be a lie).
	overflow []outboxItem
}

// outboxSize is the channel's buffer; beyond it items wait in overflow.
const outboxSize = 1000

// send queues an item behind everything queued before it.
func (o *outbox) send(it outboxItem) {
	if len(o.overflow) > 0 || !o.ch.SendAsync(it) {
		o.overflow = append(o.overflow, it)
	}
}

// next takes the oldest item: from the channel, or, once it is empty, from
// the overflow; false when the outbox is closed and empty.
func (o *outbox) next(ctx workflow.Context, it *outboxItem) bool {
	if o.ch.Len() == 0 && len(o.overflow) > 0 {
		*it = o.overflow[0]
		o.overflow = o.overflow[1:]
		return true
	}
	if o.ch.Receive(ctx, it) {
		return true
	}
	if len(o.overflow) > 0 {
		*it = o.overflow[0]
		o.overflow = o.overflow[1:]
		return true
	}
	return false
}

// pending counts the items not yet taken.
func (o *outbox) pending() int { return o.ch.Len() + len(o.overflow) }

type outboxItem struct {
	Note   *Notification
	Events []Event
}

func (r *rollout) startOutbox(ctx workflow.Context) {
	r.out = &outbox{ch: workflow.NewBufferedChannel(ctx, outboxSize), done: workflow.NewWaitGroup(ctx)}
	r.out.done.Add(1)
	// The outbox's activities run in a disconnected context: a cancelled
	// rollout still tells its thread and fleet.events how it ended.
	actx := ctx
	if r.v >= 1 {
		actx, _ = workflow.NewDisconnectedContext(ctx)
	}
	nctx := workflow.WithActivityOptions(actx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			MaximumAttempts:        10,
			NonRetryableErrorTypes: []string{"PermanentNotifyError"},
		},
	})
	ectx := workflow.WithActivityOptions(actx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		// Events are history: keep trying (Kafka may be restarting).
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 30 * time.Second},
	})
	workflow.Go(ctx, func(ctx workflow.Context) {
		defer r.out.done.Done()
		for {
			var it outboxItem
			if ok := r.out.next(ctx, &it); !ok {
				return
			}
			r.out.busy = true
			if len(it.Events) > 0 {
				if err := workflow.ExecuteActivity(ectx, ActivityEmit, EmitInput{Events: it.Events}).Get(ctx, nil); err != nil {
					workflow.GetLogger(ctx).Error("emit events", "count", len(it.Events), "error", err)
				}
			}
			if it.Note == nil {
				r.out.busy = false
				continue
			}
			n := *it.Note
			n.ThreadTS = r.threadTS
			var res NotifyResult
			err := workflow.ExecuteActivity(nctx, ActivityNotify, n).Get(ctx, &res)
			r.out.busy = false
			if err != nil {
				workflow.GetLogger(ctx).Error("notify", "event", n.Event, "error", err)
				count(ctx, MetricNotificationsDropped, "event", string(n.Event))
				continue
			}
			if r.threadTS == "" {
				r.threadTS = res.ThreadTS
			}
		}
	})
}

func (r *rollout) closeOutbox(ctx workflow.Context) {
	if r.out == nil || r.out.closed {
		return
	}
	r.out.closed = true
	r.out.ch.Close()
	r.out.done.Wait(ctx)
}

// open reports whether the outbox still takes messages.
func (o *outbox) open() bool { return o != nil && !o.closed }

// notify queues a message for the rollout's thread, with the rollout's
// current state for rich rendering.
func (r *rollout) notify(event NotifyEvent, text string, actions ...string) {
	if !r.out.open() {
		return
	}
	st := r.statusDetail(false) // counts only: no need to copy every cluster
	counts := st.Counts
	n := &Notification{
		RolloutID: r.id,
		Event:     event,
		Text:      text,
		Name:      r.st.Name,
		Version:   r.st.TargetVersion,
		Phase:     r.currentPhase,
		State:     r.st.State,
		Total:     r.st.Total,
		Counts:    &counts,
		Paused:    r.st.Paused,
		PlanHash:  r.st.PlanHash,
		Actions:   actions,
	}
	r.out.send(outboxItem{Note: n})
}

// emit queues events for fleet.events, stamped with the rollout and time.
func (r *rollout) emit(ctx workflow.Context, evs ...Event) {
	if !r.out.open() || len(evs) == 0 {
		return
	}
	now := workflow.Now(ctx)
	for i := range evs {
		evs[i].RolloutID = r.id
		evs[i].Version = r.st.TargetVersion
		if evs[i].At.IsZero() {
			evs[i].At = now
		}
	}
	r.out.send(outboxItem{Events: evs})
}
