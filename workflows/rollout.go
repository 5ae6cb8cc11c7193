package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/policy"
	"github.com/fleet-rollout/fleet/internal/spec"
)

// PlanInput is the argument of the Plan activity.
type PlanInput struct {
	RolloutID string       `json:"rolloutId"`
	Spec      RolloutInput `json:"input"`
	// StartedAt is when the server started the rollout: the start
	// request's proof (Spec.Auth) is checked at that time.
	StartedAt time.Time `json:"startedAt,omitzero"`
	// Vouched marks a rollback its parent started (the rollout it rolls
	// back, where a verified person or the error budget asked for it): no
	// start proof to check. Only workflow code sets it.
	Vouched bool `json:"vouched,omitempty"`
}

// NotifyEvent names what a notification tells.
type NotifyEvent string

// Notification events.
const (
	NotifyStarted   NotifyEvent = "started"
	NotifyApproval  NotifyEvent = "approval-needed"
	NotifyPaused    NotifyEvent = "paused"
	NotifyResumed   NotifyEvent = "resumed"
	NotifyPhaseDone NotifyEvent = "phase-done"
	NotifyFinished  NotifyEvent = "finished"
)

// Notification is the argument of the Notify activity: one message in the
// rollout's thread.
type Notification struct {
	RolloutID string      `json:"rolloutId"`
	Event     NotifyEvent `json:"event"`
	// Text is the plain-text message (also the Slack fallback text).
	Text string `json:"text"`
	// ThreadTS is the rollout's thread; empty on the first message.
	ThreadTS string `json:"threadTs,omitempty"`
	// Structured detail for rich messages (Block Kit); all optional.
	Name     string       `json:"name,omitempty"`
	Version  string       `json:"version,omitempty"`
	Phase    string       `json:"phase,omitempty"`
	State    RolloutState `json:"state,omitempty"`
	Total    int          `json:"total,omitempty"`
	Counts   *Counts      `json:"counts,omitempty"`
	Paused   *PauseReason `json:"paused,omitempty"`
	PlanHash string       `json:"planHash,omitempty"`
	// Actions are the buttons to offer: "approve-plan", "approve-phase",
	// "pause", "resume", "abort".
	Actions []string `json:"actions,omitempty"`
}

// NotifyResult is what Notify returns.
type NotifyResult struct {
	ThreadTS string `json:"threadTs,omitempty"`
}

const (
	maxIncidents = 100
	maxAudit     = 500
)

// Rollout plans a rollout, waits for the approvals it needs, runs each phase's
// batches as child workflows, and holds the pause state and the audit trail.
func Rollout(ctx workflow.Context, in RolloutInput) (RolloutStatus, error) {
	r, err := newRollout(ctx, in)
	if err != nil {
		return RolloutStatus{}, err
	}
	return r.run(ctx)
}

type rollout struct {
	in      RolloutInput
	id      string
	plan    *plan.Plan
	st      RolloutStatus
	aborted bool
	// approvedPlan and approvedPhases hold what has been approved.
	approvedPlan   bool
	approvedPhases map[string]bool
	awaitingPhase  string
	running        map[int]workflow.ChildWorkflowFuture
	results        map[int]BatchResult
	out            *outbox
	threadTS       string
	// Safety state: see safety.go.
	failed map[string]string // cluster ID -> phase, each failure counted once
	// failedBatch is, for an outline plan, each failed cluster's batch.
	failedBatch map[string]int
	phaseFailed map[string]int
	frozen      *FreezeInfo
	policy      *policy.Snapshot
	// Pacing overrides set by the pacing update (0 / nil: as planned).
	pacedConcurrency int
	pacedBake        *time.Duration
	currentPhase     string
	// lanes is the running phase's lanes (nil for a strict phase).
	lanes *lanes
	// childErr is the first batch that ended in error: the phase stops.
	childErr error
	// v is the workflow version this run follows (versionLongLived);
	// nextPhase is the phase to run next, gateSince when the current gate
	// began, runs the continue-as-news so far.
	v         workflow.Version
	nextPhase int
	// nextBatch is the index, in phase nextPhase, of the first batch not yet
	// run when a phase continues as new between segments (0: none run).
	nextBatch int
	gateSince time.Time
	runs      int
	// signalChans are the signal channels the rollout's coroutines read:
	// empty before a continue-as-new.
	signalChans []workflow.ReceiveChannel
	// saState is the RolloutState search attribute's value last upserted.
	saState string
	// vid is the run's versionIdentity; policyLoaded is set once the
	// policy is read; nonces are the proofs' nonces seen (identity.go).
	vid          workflow.Version
	policyLoaded bool
	nonces       nonces
	rootCtx      workflow.Context
	// rollbackBy is who asked for a rollback once the rollout has stopped
	// (the rollback update, or the error budget).
	rollbackBy string
}

func newRollout(ctx workflow.Context, in RolloutInput) (*rollout, error) {
	info := workflow.GetInfo(ctx)
	r := &rollout{
		in:             in,
		id:             info.WorkflowExecution.ID,
		approvedPhases: map[string]bool{},
		running:        map[int]workflow.ChildWorkflowFuture{},
		results:        map[int]BatchResult{},
		failed:         map[string]string{},
		failedBatch:    map[string]int{},
		phaseFailed:    map[string]int{},
		nonces:         nonces{},
		rootCtx:        ctx,
	}
	r.st = RolloutStatus{
		ID:            r.id,
		Name:          in.Spec.Name,
		Requester:     in.Requester,
		TargetVersion: in.Spec.Target.Version,
		State:         StatePlanning,
		StartedAt:     workflow.Now(ctx),
	}
	if in.Carry != nil {
		r.restore(in.Carry)
		r.in.Carry = nil
	}
	if err := r.registerHandlers(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *rollout) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (RolloutStatus, error) {
		// Per-cluster detail of finished batches only while it stays small
		// (Temporal caps a query answer at 2 MB); failed, aborted and skipped
		// clusters are always listed. Every cluster's history is in fleet.events.
		return r.statusDetail(r.st.Total <= detailLimit), nil
	}); err != nil {
		return fmt.Errorf("register status query: %w", err)
	}
	if err := workflow.SetQueryHandler(ctx, QueryClusters, func() ([]string, error) {
		return r.openClusters(), nil
	}); err != nil {
		return fmt.Errorf("register clusters query: %w", err)
	}
	if err := workflow.SetQueryHandler(ctx, QueryClusterBatch, func(cluster string) (string, error) {
		return r.batchOf(cluster), nil
	}); err != nil {
		return fmt.Errorf("register cluster-batch query: %w", err)
	}
	if err := workflow.SetQueryHandler(ctx, QueryOpenBatches, func() (OpenBatches, error) {
		return r.openBatches(), nil
	}); err != nil {
		return fmt.Errorf("register open-batches query: %w", err)
	}
	type action struct {
		name     string
		validate func(ActionRequest) error
		apply    func(workflow.Context, ActionRequest) ActionResult
	}
	actions := []action{
		{Pause, r.validatePause, r.doPause},
		{Resume, r.validateResume, r.doResume},
		{Abort, r.validateAbort, r.doAbort},
	}
	for _, a := range actions {
		a := a
		err := workflow.SetUpdateHandlerWithOptions(ctx, a.name,
			func(ctx workflow.Context, req ActionRequest) (ActionResult, error) {
				actor, err := r.accept(req.Actor, req.Auth)
				if err != nil {
					return ActionResult{State: r.st.State}, err
				}
				req.Actor = actor
				return a.apply(ctx, req), nil
			},
			workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, req ActionRequest) error {
				return refusal(a.validate(req))
			}})
		if err != nil {
			return fmt.Errorf("register %s update: %w", a.name, err)
		}
		ch := workflow.GetSignalChannel(ctx, a.name)
		r.signalChans = append(r.signalChans, ch)
		workflow.Go(ctx, func(ctx workflow.Context) {
			for {
				var req ActionRequest
				ch.Receive(ctx, &req)
				if err := a.validate(req); err != nil {
					r.audit(ctx, req.Actor, a.name+" (signal)", req.Reason, "rejected: "+err.Error())
					continue
				}
				req.Actor, _ = r.accept(req.Actor, req.Auth) // validated just now, no yield since
				a.apply(ctx, req)
			}
		})
	}
	err := workflow.SetUpdateHandlerWithOptions(ctx, Approve,
		func(ctx workflow.Context, req ApproveRequest) (ActionResult, error) {
			actor, err := r.accept(req.Actor, req.Auth)
			if err != nil {
				return ActionResult{State: r.st.State}, err
			}
			req.Actor = actor
			return r.doApprove(ctx, req), nil
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, req ApproveRequest) error {
			return refusal(r.validateApprove(req))
		}})
	if err != nil {
		return fmt.Errorf("register approve update: %w", err)
	}
	approveCh := workflow.GetSignalChannel(ctx, Approve)
	r.signalChans = append(r.signalChans, approveCh)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var req ApproveRequest
			approveCh.Receive(ctx, &req)
			if err := r.validateApprove(req); err != nil {
				r.audit(ctx, req.Actor, "approve (signal)", req.Comment, "rejected: "+err.Error())
				continue
			}
			req.Actor, _ = r.accept(req.Actor, req.Auth)
			r.doApprove(ctx, req)
		}
	})
	if err := r.registerSafetyHandlers(ctx); err != nil {
		return err
	}
	if err := r.registerRecoveryHandlers(ctx); err != nil {
		return err
	}
	incidents := workflow.GetSignalChannel(ctx, SignalIncident)
	r.signalChans = append(r.signalChans, incidents)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var inc Incident
			incidents.Receive(ctx, &inc)
			r.onIncident(ctx, inc)
		}
	})
	returns := workflow.GetSignalChannel(ctx, SignalLaneReturn)
	r.signalChans = append(r.signalChans, returns)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var ret LaneReturn
			returns.Receive(ctx, &ret)
			// Each return on its own: an heir waiting for its donor's
			// slots must not wait behind other returns' signals.
			workflow.Go(ctx, func(ctx workflow.Context) { r.onLaneReturn(ctx, ret) })
		}
	})
	return nil
}

// serveSignal receives the signal name, the fire-and-forget twin of the
// update of the same name: each request is validated as the update's is;
// one that does not apply is recorded in the audit trail as rejected, with
// the reason, and the others are applied in the order received. who gives
// the request's actor and reason for that record.
func serveSignal[T any](ctx workflow.Context, r *rollout, name string, validate func(T) error,
	apply func(workflow.Context, T), who func(T) (actor, reason string)) {
	ch := workflow.GetSignalChannel(ctx, name)
	r.signalChans = append(r.signalChans, ch)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var req T
			ch.Receive(ctx, &req)
			if err := validate(req); err != nil {
				actor, reason := who(req)
				r.audit(ctx, actor, name+" (signal)", reason, "rejected: "+err.Error())
				continue
			}
			apply(ctx, req)
		}
	})
}

// --- validators: say why an action does not apply ---

func (r *rollout) validatePause(req ActionRequest) error {
	person, err := r.identify(Pause, req, req.Actor, req.Auth)
	if err != nil {
		return err
	}
	if err := r.authorize(person, policy.ActionPause, r.planEnv()); err != nil {
		return err
	}
	switch {
	case r.st.State.Terminal():
		return fmt.Errorf("rollout is %s", r.st.State)
	case r.st.Paused != nil:
		return fmt.Errorf("rollout is already paused (by %s: %s)", r.st.Paused.Actor, r.st.Paused.Reason)
	case strings.TrimSpace(req.Reason) == "":
		return errors.New("a reason is required to pause")
	}
	return nil
}

func (r *rollout) validateResume(req ActionRequest) error {
	person, err := r.identify(Resume, req, req.Actor, req.Auth)
	if err != nil {
		return err
	}
	if err := r.authorize(person, policy.ActionResume, r.planEnv()); err != nil {
		return err
	}
	switch {
	case r.st.State.Terminal():
		return fmt.Errorf("rollout is %s", r.st.State)
	case r.st.Paused == nil:
		return errors.New("rollout is not paused")
	case r.frozen != nil:
		return fmt.Errorf("%w until %s by %s: %s (fleet unfreeze lifts it)", ErrFleetFrozen,
			r.frozen.Until.UTC().Format(time.RFC3339), r.frozen.Actor, r.frozen.Reason)
	}
	return nil
}

func (r *rollout) validateAbort(req ActionRequest) error {
	person, err := r.identify(Abort, req, req.Actor, req.Auth)
	if err != nil {
		return err
	}
	if err := r.authorize(person, policy.ActionAbort, r.planEnv()); err != nil {
		return err
	}
	switch {
	case r.st.State.Terminal():
		return fmt.Errorf("rollout is already %s", r.st.State)
	case r.aborted:
		return errors.New("rollout is already aborting")
	case strings.TrimSpace(req.Reason) == "":
		return errors.New("a reason is required to abort")
	}
	return nil
}

func (r *rollout) validateApprove(req ApproveRequest) error {
	if r.st.State.Terminal() {
		return fmt.Errorf("rollout is %s", r.st.State)
	}
	switch {
	case req.PlanHash != "" && req.Phase != "":
		return errors.New("approve either the plan (planHash) or a phase, not both")
	case req.PlanHash != "":
		if !r.in.Spec.RequirePlanApproval {
			return errors.New("this rollout does not require plan approval")
		}
		if r.approvedPlan {
			return errors.New("the plan is already approved")
		}
		if r.plan == nil {
			return errors.New("the plan is not ready yet")
		}
		if req.PlanHash != r.plan.Hash {
			return fmt.Errorf("stale plan hash %s: the current plan is %s", req.PlanHash, r.plan.Hash)
		}
	case req.Phase != "":
		if r.plan == nil {
			return errors.New("the plan is not ready yet")
		}
		found := false
		for _, p := range r.plan.Phases {
			if p.Name == req.Phase {
				found = true
				if !p.RequireApproval {
					return fmt.Errorf("phase %q does not require approval", req.Phase)
				}
			}
		}
		if !found {
			return fmt.Errorf("no phase %q in the plan", req.Phase)
		}
		if r.approvedPhases[req.Phase] {
			return fmt.Errorf("phase %q is already approved", req.Phase)
		}
	default:
		return errors.New("name the plan hash or the phase to approve")
	}
	person, err := r.identify(Approve, req, req.Actor, req.Auth)
	if err != nil {
		return err
	}
	return r.checkApprover(req, person)
}

// --- actions ---

func (r *rollout) doPause(ctx workflow.Context, req ActionRequest) ActionResult {
	r.pauseAll(ctx, PauseKindManual, PauseReason{Actor: req.Actor, Reason: req.Reason, At: workflow.Now(ctx)})
	r.audit(ctx, req.Actor, Pause, req.Reason, "applied")
	return ActionResult{State: r.st.State, Message: fmt.Sprintf("paused; %d batches holding their in-flight clusters", len(r.running))}
}

// pauseAll pauses the rollout and its batches; kind says why, for the
// MetricPauses counter.
func (r *rollout) pauseAll(ctx workflow.Context, kind string, why PauseReason) {
	count(ctx, MetricPauses, "kind", kind)
	r.st.Paused = &why
	if r.st.State == StateRunning {
		r.st.State = StatePaused
	}
	r.signalChildren(ctx, Pause, ActionRequest{Actor: why.Actor, Reason: why.Reason})
	upsert(ctx, SAPaused.ValueSet(true))
	text := fmt.Sprintf("Paused by %s: %s", why.Actor, why.Reason)
	r.notify(NotifyPaused, text, Resume, Abort)
	ev := Event{Kind: EventRolloutPaused, Actor: why.Actor, Message: why.Reason}
	if why.Incident != nil {
		ev.ClusterID, ev.Monitor, ev.Batch = why.Incident.ClusterID, why.Incident.Monitor, why.Incident.Batch
	}
	r.emit(ctx, ev)
}

func (r *rollout) doResume(ctx workflow.Context, req ActionRequest) ActionResult {
	r.st.Paused = nil
	if r.st.State == StatePaused {
		r.st.State = StateRunning
	}
	r.signalChildren(ctx, Resume, req)
	upsert(ctx, SAPaused.ValueSet(false))
	r.audit(ctx, req.Actor, Resume, req.Reason, "applied")
	r.notify(NotifyResumed, fmt.Sprintf("Resumed by %s. %s", req.Actor, req.Reason), Pause)
	r.emit(ctx, Event{Kind: EventRolloutResumed, Actor: req.Actor, Message: req.Reason})
	return ActionResult{State: r.st.State, Message: fmt.Sprintf("resumed; %d batches continuing", len(r.running))}
}

func (r *rollout) doAbort(ctx workflow.Context, req ActionRequest) ActionResult {
	r.aborted = true
	r.signalChildren(ctx, Abort, req)
	r.audit(ctx, req.Actor, Abort, req.Reason, "applied")
	return ActionResult{State: r.st.State, Message: fmt.Sprintf("aborting; %d batches stopping", len(r.running))}
}

func (r *rollout) doApprove(ctx workflow.Context, req ApproveRequest) ActionResult {
	what := "plan " + req.PlanHash
	if req.Phase != "" {
		r.approvedPhases[req.Phase] = true
		what = "phase " + req.Phase
	} else {
		r.approvedPlan = true
	}
	r.audit(ctx, req.Actor, Approve, strings.TrimSpace(what+" "+req.Comment), "applied")
	return ActionResult{State: r.st.State, Message: "approved " + what}
}

// signalChildren sends a signal to every running batch, in batch order, and
// waits until each was delivered.
func (r *rollout) signalChildren(ctx workflow.Context, name string, req ActionRequest) {
	nums := workflow.DeterministicKeys(r.running)
	futures := make([]workflow.Future, 0, len(nums))
	for _, n := range nums {
		futures = append(futures, r.running[n].SignalChildWorkflow(ctx, name, req))
	}
	for i, f := range futures {
		if err := f.Get(ctx, nil); err != nil {
			// A batch that finished meanwhile cannot take the signal; that is fine.
			workflow.GetLogger(ctx).Info("signal batch", "batch", nums[i], "signal", name, "error", err)
		}
	}
}

func (r *rollout) audit(ctx workflow.Context, actor, action, reason, outcome string) {
	if actor == "" {
		actor = "unknown"
	}
	e := AuditEntry{At: workflow.Now(ctx), Actor: actor, Action: action, Reason: reason, Outcome: outcome}
	r.st.Audit = append(r.st.Audit, e)
	r.emit(ctx, Event{Kind: EventAction, Actor: actor, State: outcome, Message: action + ": " + reason, At: e.At})
	if len(r.st.Audit) > maxAudit {
		r.st.Audit = r.st.Audit[len(r.st.Audit)-maxAudit:]
	}
}

func (r *rollout) run(ctx workflow.Context) (RolloutStatus, error) {
	r.v = workflow.GetVersion(ctx, versionLongLived, workflow.DefaultVersion, versionLongLivedMax)
	r.vid = workflow.GetVersion(ctx, versionIdentity, workflow.DefaultVersion, versionIdentityMax)
	r.startOutbox(ctx)
	if r.v >= 1 {
		r.startStateWatcher(ctx)
	}
	st, err := r.runPhases(ctx)
	var can *workflow.ContinueAsNewError
	switch {
	case r.v < 1 || err == nil || errors.As(err, &can):
		return st, err
	case ctx.Err() != nil:
		// The rollout itself was cancelled (a batch cancelled on its own
		// is a batch error, reported as such).
		return r.cancelled(ctx)
	case !r.st.State.Terminal():
		// Every exit goes through finish: the thread, the audit, the
		// search attributes say how it ended.
		r.finish(ctx, StateFailed, "failed: "+err.Error())
	}
	return r.statusDetail(false), err
}

func (r *rollout) runPhases(ctx workflow.Context) (RolloutStatus, error) {
	if r.plan == nil {
		if err := r.setup(ctx); err != nil {
			return r.st, err
		}
	}
	if err := r.planGate(ctx); err != nil {
		if errors.Is(err, errContinueAsNew) {
			return r.st, r.continueAsNew(ctx)
		}
		return r.st, err
	}
	p := r.plan
	for i := r.nextPhase; i < len(p.Phases); i++ {
		r.nextPhase = i
		if r.aborted {
			break
		}
		if r.v >= 1 && continueAsNewDue(ctx, r.in.HistoryBudget) {
			return r.st, r.continueAsNew(ctx)
		}
		ph := &p.Phases[i]
		if ph.RequireApproval && (r.v < 1 || !r.approvedPhases[ph.Name]) {
			r.st.State = StateAwaitingApproval
			r.awaitingPhase = ph.Name
			r.st.WaitingFor = fmt.Sprintf("approval of phase %s (fleet approve %s --phase %s)", ph.Name, r.st.Name, ph.Name)
			r.currentPhase = ph.Name
			if r.gateSince.IsZero() {
				r.notify(NotifyApproval, "Waiting for "+r.st.WaitingFor, "approve-phase")
			}
			if err := r.gate(ctx, "approval of phase "+ph.Name, "approve-phase", r.specPhase(ph.Name), func() bool { return r.approvedPhases[ph.Name] || r.aborted }); err != nil {
				if errors.Is(err, errContinueAsNew) {
					return r.st, r.continueAsNew(ctx)
				}
				return r.st, err
			}
			r.st.WaitingFor = ""
			r.awaitingPhase = ""
			r.setRunning()
		}
		r.currentPhase = ph.Name
		upsert(ctx, SAPhase.ValueSet(ph.Name))
		if r.nextBatch == 0 {
			r.emit(ctx, Event{Kind: EventPhaseStarted, Phase: ph.Name})
		}
		if err := r.runPhase(ctx, ph); err != nil {
			if errors.Is(err, errContinueAsNew) {
				return r.st, r.continueAsNew(ctx)
			}
			return r.st, err
		}
		if !r.aborted {
			done := r.phaseCounts(ph)
			r.notify(NotifyPhaseDone, fmt.Sprintf("Phase %s done: %d clusters updated, %d failed.", ph.Name, done.Done, done.Failed))
			r.emit(ctx, Event{Kind: EventPhaseFinished, Phase: ph.Name, Message: fmt.Sprintf("%d done, %d failed", done.Done, done.Failed)})
		}
		r.nextPhase = i + 1
	}
	if r.aborted {
		if r.st.SupersededBy != "" {
			return r.finish(ctx, StateSuperseded, "superseded by "+r.st.SupersededBy), nil
		}
		why := "aborted"
		if r.rollbackBy != "" {
			why = "aborted; rolling back as " + RolloutID(RollbackName(r.st.Name))
		}
		starting := r.rollbackBy != "" && r.st.RollbackID == ""
		if starting {
			// Named from the moment the rollout reads as ended.
			r.st.RollbackID = RolloutID(RollbackName(r.st.Name))
		}
		st := r.finish(ctx, StateAborted, why)
		if starting {
			r.startRollback(ctx)
			st.RollbackID = r.st.RollbackID
		}
		return st, nil
	}
	return r.finish(ctx, StateCompleted, "completed"), nil
}

// setup plans the rollout and waits for plan approval: the first run's work
// before its first phase.
func (r *rollout) setup(ctx workflow.Context) error {
	r.audit(ctx, r.in.Requester, "start", r.in.Spec.Description, "applied")
	vouched := false
	if rec := r.in.Recovery; rec != nil {
		r.st.Recovery = rec
		if err := rec.Validate(r.id); err != nil {
			r.finish(ctx, StateFailed, "planning failed: "+err.Error())
			return fmt.Errorf("plan rollout %s: %w", r.id, err)
		}
		// A rollback started by the rollout it rolls back was asked for
		// there (by a verified person, or by the error budget).
		if parent := workflow.GetInfo(ctx).ParentWorkflowExecution; parent != nil && parent.ID == rec.Of && rec.Kind == RecoveryRollback {
			vouched = true
		}
		if rec.Kind != RecoverySupersede && rec.ThreadTS != "" && r.threadTS == "" {
			r.threadTS = rec.ThreadTS // a rollback or retry tells the rollout's own thread
		}
		if rec.Kind == RecoverySupersede {
			if err := r.awaitHandover(ctx); err != nil {
				r.finish(ctx, StateFailed, "planning failed: "+err.Error())
				return err
			}
		}
	}

	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			MaximumInterval:        30 * time.Second,
			MaximumAttempts:        5,
			NonRetryableErrorTypes: []string{"InvalidSpec"},
		},
	})
	// From versionPlanStore on, the full plan goes to the plan store and
	// the rollout keeps its outline: no payload of its history holds a
	// target per cluster, at any fleet size.
	planActivity := ActivityPlan
	if workflow.GetVersion(ctx, versionPlanStore, workflow.DefaultVersion, versionPlanStoreMax) >= 1 {
		planActivity = ActivityPlanOutline
		actx = workflow.WithActivityOptions(actx, workflow.ActivityOptions{
			StartToCloseTimeout: 5 * time.Minute,
			RetryPolicy: &temporal.RetryPolicy{
				InitialInterval:        time.Second,
				MaximumInterval:        30 * time.Second,
				MaximumAttempts:        5,
				NonRetryableErrorTypes: []string{"InvalidSpec", ErrPlanUnavailable},
			},
		})
	}
	var p plan.Plan
	if err := workflow.ExecuteActivity(actx, planActivity, PlanInput{RolloutID: r.id, Spec: r.in, StartedAt: workflow.GetInfo(ctx).WorkflowStartTime, Vouched: vouched}).Get(ctx, &p); err != nil {
		r.finish(ctx, StateFailed, fmt.Sprintf("planning failed: %v", err))
		return fmt.Errorf("plan rollout %s: %w", r.id, err)
	}
	r.plan = &p
	r.st.PlanHash = p.Hash
	r.st.PlanStored = p.Stored
	r.st.Total = p.Total
	if r.in.Recovery != nil && r.in.Recovery.Kind == RecoveryRollback && p.Version != "" {
		r.st.TargetVersion = p.Version
	}
	r.st.State = StateRunning
	prods := map[string]bool{}
	for _, prod := range p.Products {
		prods[prod] = true
	}
	for _, ph := range p.Phases {
		for _, b := range ph.Batches {
			for _, t := range b.Clusters {
				prods[t.Product] = true
			}
		}
	}
	upsert(ctx, SARolloutName.ValueSet(r.st.Name), SATargetVersion.ValueSet(r.st.TargetVersion),
		SAProduct.ValueSet(products(prods)), SAPaused.ValueSet(false))
	what := ""
	if rec := r.in.Recovery; rec != nil {
		switch rec.Kind {
		case RecoveryRollback:
			what = " It rolls back " + rec.Of + "."
		case RecoveryRetry:
			what = " It retries " + rec.Of + "."
		case RecoverySupersede:
			what = " It supersedes " + rec.Of + "."
		}
	}
	r.notify(NotifyStarted, fmt.Sprintf("Rollout %s to %s started by %s: %d clusters in %d phases (plan %s).%s",
		r.in.Spec.Name, r.st.TargetVersion, r.in.Requester, p.Total, len(p.Phases), p.Hash, what), Pause)
	r.emit(ctx, Event{Kind: EventRolloutStarted, Actor: r.in.Requester, Message: fmt.Sprintf("%d clusters, plan %s", p.Total, p.Hash)})
	r.checkFreeze(ctx)
	if err := r.loadPolicy(ctx); err != nil {
		r.finish(ctx, StateFailed, err.Error())
		return err
	}
	if r.in.Spec.Emergency != nil {
		r.audit(ctx, r.in.Requester, "emergency", r.in.Spec.Emergency.Justification,
			"maintenance windows and blackouts are overridden; each override is recorded")
	}

	if r.in.Spec.RequirePlanApproval {
		r.st.State = StateAwaitingApproval
		r.st.WaitingFor = "plan approval (fleet approve " + r.st.Name + " --plan " + p.Hash + ")"
		r.notify(NotifyApproval, "Waiting for plan approval: "+r.st.WaitingFor, "approve-plan")
	}
	return nil
}

// planGate waits for plan approval, when the spec requires it.
func (r *rollout) planGate(ctx workflow.Context) error {
	if !r.in.Spec.RequirePlanApproval || r.approvedPlan {
		return nil
	}
	if err := r.gate(ctx, "plan approval", "approve-plan", nil, func() bool { return r.approvedPlan || r.aborted }); err != nil {
		return err
	}
	r.st.WaitingFor = ""
	r.setRunning()
	return nil
}

// runPhase runs the phase's batches: lanes of batches passing slots along
// (see BatchLane), or waves when the phase is strict. Nothing starts while the
// rollout is paused.
func (r *rollout) runPhase(ctx workflow.Context, ph *plan.Phase) error {
	if r.plan.Stored == "" {
		return r.runBatches(ctx, ph)
	}
	// A plan in the store may be of any size: the phase runs in segments
	// that fit the history budget, continuing as new between them.
	budget := historyBudget(r.in.HistoryBudget)
	if r.in.HistoryBudget <= 0 && workflow.GetVersion(ctx, versionSegmentBudget, workflow.DefaultVersion, versionSegmentBudgetMax) >= 1 {
		budget = DefaultSegmentBudget
	}
	for r.nextBatch < len(ph.Batches) {
		end := segmentEnd(len(ph.Batches), r.nextBatch, budget, workflow.GetInfo(ctx).GetCurrentHistoryLength())
		seg := *ph
		seg.Batches = ph.Batches[r.nextBatch:end]
		if err := r.runBatches(ctx, &seg); err != nil {
			return err
		}
		if r.aborted {
			break
		}
		r.nextBatch = end
		if end < len(ph.Batches) {
			workflow.GetLogger(ctx).Info("phase segment done", "phase", ph.Name, "nextBatch", end, "batches", len(ph.Batches))
			return errContinueAsNew
		}
	}
	r.nextBatch = 0
	return nil
}

// Phase segments (plan-store rollouts): a rollout adds about
// eventsPerBatch history events for each batch it runs, so a phase runs as
// many batches in one run as its history budget has room for (at least
// minSegment), then continues as new before the next segment. Each segment
// ends when its last batch has, so its tail runs below the phase's
// concurrency: one such drain per segment. From versionSegmentBudget on, a
// segment fills DefaultSegmentBudget unless the rollout sets its own budget.
const (
	eventsPerBatch = 8
	minSegment     = 50
)

// segmentEnd is the end (exclusive) of the segment of a phase of total
// batches that starts at from, in a run whose history has length events of
// its budget.
func segmentEnd(total, from, budget, length int) int {
	room := (budget - length) / eventsPerBatch
	if total-from <= room {
		return total
	}
	return min(total, from+max(minSegment, room))
}

// runBatches runs a phase's batches (or a segment of them) to their end.
func (r *rollout) runBatches(ctx workflow.Context, ph *plan.Phase) error {
	if len(ph.Batches) == 0 {
		return nil
	}
	if !ph.Strict {
		return r.runLanes(ctx, ph)
	}
	batchSize := ph.Batches[0].Len()
	// window returns the batches to run side by side and the clusters per
	// batch, from the plan or the live pacing override.
	window := func() (parallel, perBatch int) {
		concurrency := r.concurrency(ph)
		if concurrency <= 0 {
			concurrency = batchSize
		}
		return max(1, concurrency/batchSize), min(concurrency, batchSize)
	}
	next := 0
	for {
		ok := func() bool {
			if r.aborted || r.childErr != nil {
				return len(r.running) == 0
			}
			if next >= len(ph.Batches) {
				return len(r.running) == 0
			}
			if r.st.Paused != nil {
				return false
			}
			parallel, _ := window()
			if len(r.running) > 0 && next%parallel == 0 {
				return false // wait for the wave to finish
			}
			return len(r.running) < parallel
		}
		if err := workflow.Await(ctx, ok); err != nil {
			return err
		}
		if r.childErr != nil {
			return r.childErr
		}
		if r.aborted || next >= len(ph.Batches) {
			return nil
		}
		_, perBatch := window()
		r.startBatch(ctx, ph, ph.Batches[next], perBatch, nil, nil)
		next++
	}
}

// concurrency is the phase's concurrency, from the plan or the live pacing
// override (0: the batch size).
func (r *rollout) concurrency(ph *plan.Phase) int {
	if r.pacedConcurrency > 0 {
		return r.pacedConcurrency
	}
	return ph.Concurrency
}

// A batch whose ID an earlier run (before a reset) still uses is started
// again every startRetryEvery, up to startRetries times.
const (
	startRetryEvery = 10 * time.Second
	startRetries    = 30
)

// startBatch starts one Batch child and follows it to its end; done, if
// set, is called with its result when it has ended.
func (r *rollout) startBatch(ctx workflow.Context, ph *plan.Phase, b plan.Batch, perBatch int, lane *BatchLane, done func(workflow.Context, BatchResult)) workflow.ChildWorkflowFuture {
	bake := ph.Bake
	if r.pacedBake != nil {
		bake = *r.pacedBake
	}
	in := BatchInput{
		RolloutID:    r.id,
		Phase:        ph.Name,
		Batch:        b,
		Target:       dataplane.Spec{Version: r.in.Spec.Target.Version, Config: r.in.Spec.Target.Config},
		Concurrency:  perBatch,
		Bake:         bake,
		UnknownGrace: r.in.Spec.Monitoring.UnknownGrace.D(),
		Schedule: BatchSchedule{
			RespectWindows: r.in.Spec.Schedule.Windows != spec.WindowsIgnore,
			Emergency:      r.in.Spec.Emergency != nil,
			MaxWait:        r.in.Spec.Schedule.MaxWait.D(),
		},
		ApplyTimeout:   r.in.Spec.ApplyTimeout.D(),
		HealthInterval: r.in.Spec.Monitoring.Interval.D(),
		Lane:           lane,
		HistoryBudget:  r.in.HistoryBudget,
		// Counts and exceptions: what the status and a continue-as-new
		// keep of a rollout this size (no command changes, so no version).
		CompactResult: r.st.Total > detailLimit,
	}
	if b.Outlined() {
		in.Plan, in.PlanHash = r.plan.Stored, r.plan.Hash
	}
	if r.in.Spec.Monitoring.Disabled {
		in.HealthInterval = 0
	}
	ids := make([]string, len(b.Clusters))
	for i, t := range b.Clusters {
		ids[i] = t.ClusterID
	}
	opts := workflow.ChildWorkflowOptions{
		WorkflowID:        BatchID(r.id, b.Number),
		TaskQueue:         TaskQueue,
		ParentClosePolicy: enums.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
		// A re-run of the same rollout name may reuse batch IDs of a closed run.
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		// Cancelling the rollout cancels its batches, which abort their
		// in-flight clusters; the rollout waits for them to end.
		WaitForCancellation: r.v >= 1,
	}
	sas := []temporal.SearchAttributeUpdate{SARolloutName.ValueSet(r.st.Name), SAPhase.ValueSet(ph.Name),
		SATargetVersion.ValueSet(r.st.TargetVersion)}
	if r.v < 1 {
		// The previous release listed the batch's clusters (QueryClusterBatch
		// replaces it: a list breaks the 2 KB value limit above ~200).
		sas = append(sas, SAClusters.ValueSet(ids))
	} else {
		// What the Web UI shows in its lists.
		opts.StaticSummary = fmt.Sprintf("%s: batch %d of phase %s, %d clusters to %s", r.st.Name, b.Number, ph.Name, b.Len(), r.st.TargetVersion)
		sas = append(sas, SARolloutState.ValueSet(string(BatchRunning)))
	}
	opts.TypedSearchAttributes = temporal.NewSearchAttributes(sas...)
	cctx := workflow.WithChildOptions(ctx, opts)
	child := workflow.ExecuteChildWorkflow(cctx, Batch, in)
	r.running[b.Number] = child
	workflow.Go(ctx, func(ctx workflow.Context) {
		var res BatchResult
		err := child.Get(ctx, &res)
		// After a reset, the earlier run's batch of the same ID may still
		// be running: cancelled with its rollout, it aborts its in-flight
		// clusters and ends within holdWaitAfterAbort. Start again once it
		// has.
		var dup *temporal.ChildWorkflowExecutionAlreadyStartedError
		for tries := 0; r.v >= 1 && errors.As(err, &dup) && tries < startRetries; tries++ {
			workflow.GetLogger(ctx).Warn("batch ID still in use by an earlier run; waiting", "batch", opts.WorkflowID)
			if serr := workflow.Sleep(ctx, startRetryEvery); serr != nil {
				err = serr
				break
			}
			child = workflow.ExecuteChildWorkflow(cctx, Batch, in)
			r.running[b.Number] = child
			err = child.Get(ctx, &res)
		}
		delete(r.running, b.Number)
		if done != nil {
			defer done(ctx, res)
		}
		if err != nil {
			if r.childErr == nil {
				r.childErr = fmt.Errorf("batch %d: %w", b.Number, err)
			}
			return
		}
		r.results[b.Number] = res
		for _, o := range res.Overrides {
			r.audit(ctx, r.in.Requester, "override", o, "applied (emergency: "+r.in.Spec.Emergency.Justification+")")
		}
	})
	return child
}

func (r *rollout) phaseCounts(ph *plan.Phase) Counts {
	var c Counts
	for _, b := range ph.Batches {
		if res, ok := r.results[b.Number]; ok {
			for _, cl := range res.Clusters {
				c.Add(cl.State)
			}
			c.Done += res.Done
		}
	}
	return c
}

func (r *rollout) finish(ctx workflow.Context, state RolloutState, why string) RolloutStatus {
	now := workflow.Now(ctx)
	r.st.State = state
	r.st.FinishedAt = &now
	r.st.WaitingFor = ""
	st := r.statusDetail(false)
	r.notify(NotifyFinished, fmt.Sprintf("Rollout %s %s: %d done, %d failed, %d aborted, %d skipped of %d in %s.",
		r.st.Name, why, st.Counts.Done, st.Counts.Failed, st.Counts.Aborted, st.Counts.Skipped, st.Total,
		now.Sub(r.st.StartedAt).Round(time.Second)))
	r.audit(ctx, "fleet", "finish", why, string(state))
	if r.v >= 1 {
		upsert(ctx, SAPaused.ValueSet(false))
		r.publishState(ctx)
	}
	r.emit(ctx, Event{Kind: EventRolloutFinished, State: string(state), Message: fmt.Sprintf("%d done, %d failed, %d aborted, %d skipped of %d",
		st.Counts.Done, st.Counts.Failed, st.Counts.Aborted, st.Counts.Skipped, st.Total)})
	// Let in-flight handlers (a pause racing the last batch, say) finish —
	// they may still notify — before the outbox closes; anything sent after
	// that is dropped, not a panic.
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	r.closeOutbox(ctx)
	// The result stays small at any fleet size (Temporal caps a result at
	// 2 MB): counts and batches, clusters only where something went wrong.
	return r.statusDetail(false)
}

// detailLimit is the rollout size up to which the status query lists every
// finished cluster.
const detailLimit = DetailLimit

// DetailLimit is the rollout size up to which the status query lists every
// cluster (a client fills in the pending clusters of a plan in the store).
const DetailLimit = 5000

// statusDetail assembles the status; without detail, finished batches list
// only the clusters that did not end done.
func (r *rollout) statusDetail(detail bool) RolloutStatus {
	st := r.st
	st.Counts = Counts{}
	st.Phases = nil
	st.Failures = len(r.failed)
	st.FailureBudget, _ = budgetLimit(r.in.Spec.ErrorBudget, r.st.Total)
	if r.out != nil {
		st.Outbox = r.out.pending()
	}
	if r.plan == nil {
		return st
	}
	for _, ph := range r.plan.Phases {
		ps := PhaseStatus{Name: ph.Name, RequireApproval: ph.RequireApproval, Concurrency: r.concurrency(&ph)}
		started, finished := 0, 0
		for _, b := range ph.Batches {
			bs := BatchStatus{Number: b.Number, Phase: ph.Name}
			if res, ok := r.results[b.Number]; ok {
				finished++
				started++
				bs.State = BatchCompleted
				if res.Aborted {
					bs.State = BatchAborted
				}
				for _, c := range res.Clusters {
					bs.Counts.Add(c.State)
					if detail || c.State != ClusterDone {
						bs.Clusters = append(bs.Clusters, c)
					}
				}
				bs.Counts.Done += res.Done
			} else if _, ok := r.running[b.Number]; ok {
				started++
				bs.State = BatchRunning
				if r.st.Paused != nil {
					bs.State = BatchPaused
				}
				bs.Counts.InFlight = b.Len()
			} else {
				bs.State = BatchPending
				state := ClusterPending
				if r.st.State.Terminal() {
					state = ClusterSkipped
				}
				if b.Outlined() {
					// Its clusters are in the plan store: counted here,
					// listed by a client that reads the store.
					for range b.Size {
						bs.Counts.Add(state)
					}
				}
				for _, t := range b.Clusters {
					bs.Counts.Add(state)
					if detail {
						bs.Clusters = append(bs.Clusters, ClusterStatus{ID: t.ClusterID, Product: t.Product, Generation: t.Generation, State: state})
					}
				}
			}
			st.Counts.Merge(bs.Counts)
			ps.Batches = append(ps.Batches, bs)
		}
		switch {
		case finished == len(ph.Batches):
			ps.State = "completed"
		case started > 0:
			ps.State = "running"
		case r.awaitingPhase == ph.Name:
			ps.State = "awaiting-approval"
		default:
			ps.State = "pending"
		}
		st.Phases = append(st.Phases, ps)
	}
	return st
}

// setRunning leaves a wait (an approval): running, or paused if a pause came meanwhile.
func (r *rollout) setRunning() {
	r.st.State = StateRunning
	if r.st.Paused != nil {
		r.st.State = StatePaused
	}
}

// batchOf is the workflow ID of the running batch that holds the cluster,
// or "" if none does.
func (r *rollout) batchOf(cluster string) string {
	if r.plan == nil {
		return ""
	}
	for _, ph := range r.plan.Phases {
		for _, b := range ph.Batches {
			if _, ok := r.running[b.Number]; !ok {
				continue
			}
			for _, t := range b.Clusters {
				if t.ClusterID == cluster {
					return BatchID(r.id, b.Number)
				}
			}
		}
	}
	return ""
}

// openBatches lists the outline batches (their clusters in the plan store)
// that have not finished, and those of them running.
func (r *rollout) openBatches() OpenBatches {
	var out OpenBatches
	if r.plan == nil || r.plan.Stored == "" || r.st.State.Terminal() {
		return out
	}
	out.Plan, out.PlanHash = r.plan.Stored, r.plan.Hash
	for _, ph := range r.plan.Phases {
		for _, b := range ph.Batches {
			if _, done := r.results[b.Number]; done || !b.Outlined() {
				continue
			}
			out.Open = append(out.Open, b.Number)
			if _, ok := r.running[b.Number]; ok {
				out.Running = append(out.Running, b.Number)
			}
		}
	}
	return out
}

// openClusters lists the clusters of every batch that has not finished
// (outline batches' are in the plan store: see openBatches).
func (r *rollout) openClusters() []string {
	if r.plan == nil || r.st.State.Terminal() {
		return nil
	}
	var ids []string
	for _, ph := range r.plan.Phases {
		for _, b := range ph.Batches {
			if _, done := r.results[b.Number]; done {
				continue
			}
			for _, t := range b.Clusters {
				ids = append(ids, t.ClusterID)
			}
		}
	}
	return ids
}
