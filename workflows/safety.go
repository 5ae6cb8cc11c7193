package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/fleet-rollout/fleet/internal/policy"
	"github.com/fleet-rollout/fleet/internal/spec"
)

// Safety: error budgets, unknown health, the fleet freeze and live pacing.
//
// Error budget semantics (also in README): a failure is a cluster whose apply
// failed (data-plane error, rejected command, apply timeout) or whose
// critical monitor alerted while it was in flight or baking; the batch stops
// that cluster at once. Each cluster counts once. A budget of max N tolerates
// N failures: the (N+1)th exceeds it and triggers onExceeded (pause by
// default, or abort) for the whole rollout. The rollout's budget (default
// max 0: the first failure pauses) and the failing cluster's phase budget are
// both checked. Unknown health is not a failure but never lets the rollout
// advance: past the grace period it pauses the rollout.

const safetyActor = "fleet-safety"

func (r *rollout) registerSafetyHandlers(ctx workflow.Context) error {
	freezeCh := workflow.GetSignalChannel(ctx, SignalFreezeState)
	r.signalChans = append(r.signalChans, freezeCh)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var st FreezeState
			freezeCh.Receive(ctx, &st)
			r.onFreeze(ctx, st.Freeze)
		}
	})
	err := workflow.SetUpdateHandlerWithOptions(ctx, UpdatePacing,
		func(ctx workflow.Context, req PacingRequest) (ActionResult, error) {
			actor, err := r.accept(req.Actor, req.Auth)
			if err != nil {
				return ActionResult{State: r.st.State}, err
			}
			req.Actor = actor
			return r.doPacing(ctx, req), nil
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, req PacingRequest) error {
			return refusal(r.validatePacing(req))
		}})
	if err != nil {
		return fmt.Errorf("register pacing update: %w", err)
	}
	serveSignal(ctx, r, UpdatePacing, r.validatePacing, func(ctx workflow.Context, req PacingRequest) {
		req.Actor, _ = r.accept(req.Actor, req.Auth) // validated just now, no yield since
		r.doPacing(ctx, req)
	}, func(req PacingRequest) (string, string) { return req.Actor, req.Reason })
	return nil
}

// budgetLimit returns how many failures a budget tolerates out of n clusters,
// and its action. A nil budget tolerates none and pauses.
func budgetLimit(b *spec.ErrorBudget, n int) (int, string) {
	if b == nil {
		return 0, spec.OnExceededPause
	}
	limit, err := b.Limit(n)
	if err != nil {
		// Validated before the workflow started; stay safe if not.
		return 0, spec.OnExceededPause
	}
	return limit, b.Action()
}

func (r *rollout) phaseBudget(name string) *spec.ErrorBudget {
	// Presets carry no budgets: only phases written in the spec can.
	for _, p := range r.in.Spec.Strategy.Phases {
		if p.Name == name {
			return p.ErrorBudget
		}
	}
	return nil
}

func (r *rollout) phaseOf(batch int) (string, int) {
	if r.plan == nil {
		return "", 0
	}
	for _, ph := range r.plan.Phases {
		for _, b := range ph.Batches {
			if b.Number == batch {
				n := 0
				for _, bb := range ph.Batches {
					n += bb.Len()
				}
				return ph.Name, n
			}
		}
	}
	return "", 0
}

func (r *rollout) onIncident(ctx workflow.Context, inc Incident) {
	count(ctx, MetricIncidents, "kind", string(inc.Kind))
	if len(r.st.Incidents) < maxIncidents {
		r.st.Incidents = append(r.st.Incidents, inc)
	}
	phase, phaseSize := r.phaseOf(inc.Batch)
	if inc.Kind == IncidentMonitorAlert {
		r.emit(ctx, Event{Kind: EventClusterAlert, Phase: phase, Batch: inc.Batch, ClusterID: inc.ClusterID, Monitor: inc.Monitor, Message: inc.Message, At: inc.At})
	}
	if r.aborted || r.st.State.Terminal() {
		return
	}
	incCopy := inc
	if inc.Kind == IncidentHealthUnknown {
		if r.st.Paused == nil {
			reason := fmt.Sprintf("health unknown on cluster %s (batch %d): %s", inc.ClusterID, inc.Batch, inc.Message)
			r.pauseAll(ctx, PauseKindHealthUnknown, PauseReason{Actor: safetyActor, Reason: reason, At: workflow.Now(ctx), Incident: &incCopy})
			r.audit(ctx, safetyActor, Pause, reason, "applied")
		}
		return
	}
	if _, seen := r.failed[inc.ClusterID]; seen {
		r.ackIncident(ctx, inc)
		return
	}
	r.failed[inc.ClusterID] = phase
	r.phaseFailed[phase]++
	if r.plan != nil && r.plan.Stored != "" {
		// An outline does not say which batch holds the cluster: a retry
		// finds it here.
		r.failedBatch[inc.ClusterID] = inc.Batch
	}

	what := fmt.Sprintf("%s on cluster %s (batch %d)", inc.Kind, inc.ClusterID, inc.Batch)
	if inc.Monitor != "" {
		what = fmt.Sprintf("monitor %s fired on cluster %s (batch %d)", inc.Monitor, inc.ClusterID, inc.Batch)
	}
	if inc.Message != "" {
		what += ": " + inc.Message
	}
	limit, action := budgetLimit(r.in.Spec.ErrorBudget, r.st.Total)
	exceeded := ""
	if len(r.failed) > limit {
		exceeded = fmt.Sprintf("error budget exceeded: %d failed, rollout budget %d", len(r.failed), limit)
	} else if pb := r.phaseBudget(phase); pb != nil {
		plimit, paction := budgetLimit(pb, phaseSize)
		if r.phaseFailed[phase] > plimit {
			exceeded = fmt.Sprintf("error budget exceeded: %d failed in phase %s, phase budget %d", r.phaseFailed[phase], phase, plimit)
			action = paction
		}
	}
	if exceeded == "" {
		r.audit(ctx, safetyActor, "count-failure", what, fmt.Sprintf("within budget: %d failed, budget %d", len(r.failed), limit))
		r.ackIncident(ctx, inc)
		return
	}
	reason := exceeded + "; last: " + what
	if action == spec.OnExceededAbort {
		r.doAbort(ctx, ActionRequest{Actor: safetyActor, Reason: reason})
		return
	}
	if action == spec.OnExceededRollback && !r.aborted && r.plan != nil {
		r.rollbackBy = safetyActor
		r.audit(ctx, safetyActor, UpdateRollback, reason, "applied: aborting; the rollback starts when the batches have stopped")
		r.doAbort(ctx, ActionRequest{Actor: safetyActor, Reason: "rollback: " + reason})
		return
	}
	if r.st.Paused == nil {
		r.pauseAll(ctx, PauseKindErrorBudget, PauseReason{Actor: safetyActor, Reason: reason, At: workflow.Now(ctx), Incident: &incCopy})
		r.audit(ctx, safetyActor, Pause, reason, "applied")
	}
}

// ackIncident lets the reporting batch go on starting clusters: the failure
// is within the budget (the batch waits for this verdict, so a failed cluster
// is not replaced by a new one before the rollout could pause).
func (r *rollout) ackIncident(ctx workflow.Context, inc Incident) {
	f := workflow.SignalExternalWorkflow(ctx, BatchID(r.id, inc.Batch), "", SignalIncidentAck, inc.ClusterID)
	if err := f.Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Info("ack incident", "batch", inc.Batch, "error", err)
	}
}

// checkFreeze asks the freeze workflow whether the fleet is frozen when the
// rollout starts; a rollout started during a freeze waits, paused.
func (r *rollout) checkFreeze(ctx workflow.Context) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5},
	})
	var st FreezeState
	if err := workflow.ExecuteActivity(actx, ActivityCurrentFreeze).Get(ctx, &st); err != nil {
		var canceled *temporal.CanceledError
		if errors.As(err, &canceled) {
			return
		}
		// The freeze cannot be read: fail closed, as for health.
		r.pauseAll(ctx, PauseKindFreezeUnknown, PauseReason{Actor: safetyActor, Reason: "fleet freeze state unknown: " + err.Error(), At: workflow.Now(ctx)})
		r.audit(ctx, safetyActor, Pause, "fleet freeze state unknown", "applied")
		return
	}
	r.onFreeze(ctx, st.Freeze)
}

func (r *rollout) onFreeze(ctx workflow.Context, f *FreezeInfo) {
	if r.st.State.Terminal() {
		return
	}
	if f == nil {
		if r.frozen != nil {
			r.audit(ctx, r.frozen.Actor, "freeze-lifted", r.frozen.Reason, "resume is allowed again")
			r.notify(NotifyPaused, "The fleet freeze is lifted; this rollout stays paused until someone resumes it.", "resume", "abort")
		}
		r.frozen = nil
		return
	}
	r.frozen = f
	reason := fmt.Sprintf("fleet freeze until %s: %s", f.Until.UTC().Format(time.RFC3339), f.Reason)
	if r.st.Paused == nil {
		r.pauseAll(ctx, PauseKindFreeze, PauseReason{Actor: f.Actor, Reason: reason, At: workflow.Now(ctx)})
		r.audit(ctx, f.Actor, Pause, reason, "applied")
	}
}

func (r *rollout) validatePacing(req PacingRequest) error {
	person, err := r.identify(UpdatePacing, req, req.Actor, req.Auth)
	if err != nil {
		return err
	}
	if err := r.authorize(person, policy.ActionPace, r.planEnv()); err != nil {
		return err
	}
	switch {
	case r.st.State.Terminal():
		return fmt.Errorf("rollout is %s", r.st.State)
	case req.Concurrency < 0:
		return fmt.Errorf("concurrency must not be negative, got %d", req.Concurrency)
	case req.Bake != nil && *req.Bake < 0:
		return errors.New("bake must not be negative")
	case req.Concurrency == 0 && req.Bake == nil:
		return errors.New("give a concurrency, a bake, or both")
	case req.Concurrency > 10000:
		return fmt.Errorf("concurrency %d is above the limit of 10000", req.Concurrency)
	}
	return nil
}

func (r *rollout) doPacing(ctx workflow.Context, req PacingRequest) ActionResult {
	var what string
	if req.Concurrency > 0 {
		r.pacedConcurrency = req.Concurrency
		what = fmt.Sprintf("concurrency %d", req.Concurrency)
		if r.lanes != nil {
			// The running phase's lanes take their new slots at once.
			what += r.paceLanes(ctx, req.Concurrency)
		} else {
			r.paceBatches(ctx, req.Concurrency)
		}
	}
	if req.Bake != nil {
		b := *req.Bake
		r.pacedBake = &b
		if what != "" {
			what += ", "
		}
		what += "bake " + b.String()
	}
	r.audit(ctx, req.Actor, UpdatePacing, what+" "+req.Reason, "applied")
	return ActionResult{State: r.st.State, Message: "pacing set: " + what + " (current and later phases)"}
}

// paceBatches gives the running batches of a strict phase their new
// per-batch window at once.
func (r *rollout) paceBatches(ctx workflow.Context, concurrency int) {
	for _, n := range workflow.DeterministicKeys(r.running) {
		per := concurrency
		if r.plan != nil {
			for _, ph := range r.plan.Phases {
				for _, b := range ph.Batches {
					if b.Number == n && b.Len() < per {
						per = b.Len()
					}
				}
			}
		}
		if err := r.running[n].SignalChildWorkflow(ctx, SignalPacing, per).Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Info("pacing signal", "batch", n, "error", err)
		}
	}
}
