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
)

// PlanInput is the argument of the Plan activity.
type PlanInput struct {
	RolloutID string       `json:"rolloutId"`
	Spec      RolloutInput `json:"input"`
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
	Text      string      `json:"text"`
	// ThreadTS is the rollout's thread; empty on the first message.
	ThreadTS string `json:"threadTs,omitempty"`
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
	notes          workflow.Channel
	threadTS       string
	notifier       workflow.WaitGroup
}

func newRollout(ctx workflow.Context, in RolloutInput) (*rollout, error) {
	info := workflow.GetInfo(ctx)
	r := &rollout{
		in:             in,
		id:             info.WorkflowExecution.ID,
		approvedPhases: map[string]bool{},
		running:        map[int]workflow.ChildWorkflowFuture{},
		results:        map[int]BatchResult{},
	}
	r.st = RolloutStatus{
		ID:            r.id,
		Name:          in.Spec.Name,
		Requester:     in.Requester,
		TargetVersion: in.Spec.Target.Version,
		State:         StatePlanning,
		StartedAt:     workflow.Now(ctx),
	}
	if err := r.registerHandlers(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *rollout) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (RolloutStatus, error) {
		return r.status(), nil
	}); err != nil {
		return fmt.Errorf("register status query: %w", err)
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
				return a.apply(ctx, req), nil
			},
			workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, req ActionRequest) error {
				return a.validate(req)
			}})
		if err != nil {
			return fmt.Errorf("register %s update: %w", a.name, err)
		}
		ch := workflow.GetSignalChannel(ctx, a.name)
		workflow.Go(ctx, func(ctx workflow.Context) {
			for {
				var req ActionRequest
				ch.Receive(ctx, &req)
				if err := a.validate(req); err != nil {
					r.audit(ctx, req.Actor, a.name+" (signal)", req.Reason, "rejected: "+err.Error())
					continue
				}
				a.apply(ctx, req)
			}
		})
	}
	err := workflow.SetUpdateHandlerWithOptions(ctx, Approve,
		func(ctx workflow.Context, req ApproveRequest) (ActionResult, error) {
			return r.doApprove(ctx, req), nil
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, req ApproveRequest) error {
			return r.validateApprove(req)
		}})
	if err != nil {
		return fmt.Errorf("register approve update: %w", err)
	}
	approveCh := workflow.GetSignalChannel(ctx, Approve)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var req ApproveRequest
			approveCh.Receive(ctx, &req)
			if err := r.validateApprove(req); err != nil {
				r.audit(ctx, req.Actor, "approve (signal)", req.Comment, "rejected: "+err.Error())
				continue
			}
			r.doApprove(ctx, req)
		}
	})
	incidents := workflow.GetSignalChannel(ctx, SignalIncident)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var inc Incident
			incidents.Receive(ctx, &inc)
			r.onIncident(ctx, inc)
		}
	})
	return nil
}

// --- validators: say why an action does not apply ---

func (r *rollout) validatePause(req ActionRequest) error {
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

func (r *rollout) validateResume(ActionRequest) error {
	switch {
	case r.st.State.Terminal():
		return fmt.Errorf("rollout is %s", r.st.State)
	case r.st.Paused == nil:
		return errors.New("rollout is not paused")
	}
	return nil
}

func (r *rollout) validateAbort(req ActionRequest) error {
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
	return nil
}

// --- actions ---

func (r *rollout) doPause(ctx workflow.Context, req ActionRequest) ActionResult {
	r.pauseAll(ctx, PauseReason{Actor: req.Actor, Reason: req.Reason, At: workflow.Now(ctx)})
	r.audit(ctx, req.Actor, Pause, req.Reason, "applied")
	return ActionResult{State: r.st.State, Message: fmt.Sprintf("paused; %d batches holding their in-flight clusters", len(r.running))}
}

func (r *rollout) pauseAll(ctx workflow.Context, why PauseReason) {
	r.st.Paused = &why
	if r.st.State == StateRunning {
		r.st.State = StatePaused
	}
	r.signalChildren(ctx, Pause, ActionRequest{Actor: why.Actor, Reason: why.Reason})
	text := fmt.Sprintf("Paused by %s: %s", why.Actor, why.Reason)
	r.notify(NotifyPaused, text)
}

func (r *rollout) doResume(ctx workflow.Context, req ActionRequest) ActionResult {
	r.st.Paused = nil
	if r.st.State == StatePaused {
		r.st.State = StateRunning
	}
	r.signalChildren(ctx, Resume, req)
	r.audit(ctx, req.Actor, Resume, req.Reason, "applied")
	r.notify(NotifyResumed, fmt.Sprintf("Resumed by %s. %s", req.Actor, req.Reason))
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

func (r *rollout) onIncident(ctx workflow.Context, inc Incident) {
	if len(r.st.Incidents) < maxIncidents {
		r.st.Incidents = append(r.st.Incidents, inc)
	}
	if r.st.Paused != nil || r.aborted || r.st.State.Terminal() {
		return
	}
	reason := fmt.Sprintf("%s on cluster %s (batch %d)", inc.Kind, inc.ClusterID, inc.Batch)
	if inc.Monitor != "" {
		reason = fmt.Sprintf("monitor %s fired on cluster %s (batch %d)", inc.Monitor, inc.ClusterID, inc.Batch)
	}
	if inc.Message != "" {
		reason += ": " + inc.Message
	}
	incCopy := inc
	r.pauseAll(ctx, PauseReason{Actor: "fleet-safety", Reason: reason, At: workflow.Now(ctx), Incident: &incCopy})
	r.audit(ctx, "fleet-safety", Pause, reason, "applied")
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
	if len(r.st.Audit) > maxAudit {
		r.st.Audit = r.st.Audit[len(r.st.Audit)-maxAudit:]
	}
}

// notify queues a message for the rollout's thread; a single coroutine sends
// them in order so the thread reads in order and the rollout never waits on Slack.
func (r *rollout) notify(event NotifyEvent, text string) {
	if r.notes == nil {
		return
	}
	r.notes.SendAsync(Notification{RolloutID: r.id, Event: event, Text: text})
}

func (r *rollout) startNotifier(ctx workflow.Context) {
	r.notes = workflow.NewBufferedChannel(ctx, 1000)
	r.notifier = workflow.NewWaitGroup(ctx)
	r.notifier.Add(1)
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			MaximumAttempts:    10,
		},
	})
	workflow.Go(ctx, func(ctx workflow.Context) {
		defer r.notifier.Done()
		for {
			var n Notification
			if ok := r.notes.Receive(ctx, &n); !ok {
				return
			}
			n.ThreadTS = r.threadTS
			var res NotifyResult
			if err := workflow.ExecuteActivity(actx, ActivityNotify, n).Get(ctx, &res); err != nil {
				workflow.GetLogger(ctx).Error("notify", "event", n.Event, "error", err)
				continue
			}
			if r.threadTS == "" {
				r.threadTS = res.ThreadTS
			}
		}
	})
}

func (r *rollout) run(ctx workflow.Context) (RolloutStatus, error) {
	r.startNotifier(ctx)
	r.audit(ctx, r.in.Requester, "start", r.in.Spec.Description, "applied")

	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			MaximumInterval:        30 * time.Second,
			MaximumAttempts:        5,
			NonRetryableErrorTypes: []string{"InvalidSpec"},
		},
	})
	var p plan.Plan
	if err := workflow.ExecuteActivity(actx, ActivityPlan, PlanInput{RolloutID: r.id, Spec: r.in}).Get(ctx, &p); err != nil {
		return r.finish(ctx, StateFailed, fmt.Sprintf("planning failed: %v", err)), fmt.Errorf("plan rollout %s: %w", r.id, err)
	}
	r.plan = &p
	r.st.PlanHash = p.Hash
	r.st.Total = p.Total
	r.st.State = StateRunning
	r.notify(NotifyStarted, fmt.Sprintf("Rollout %s to %s started by %s: %d clusters in %d phases (plan %s).",
		r.in.Spec.Name, r.in.Spec.Target.Version, r.in.Requester, p.Total, len(p.Phases), p.Hash))

	if r.in.Spec.RequirePlanApproval {
		r.st.State = StateAwaitingApproval
		r.st.WaitingFor = "plan approval (fleet approve " + r.st.Name + " --plan " + p.Hash + ")"
		r.notify(NotifyApproval, "Waiting for plan approval: "+r.st.WaitingFor)
		if err := workflow.Await(ctx, func() bool { return r.approvedPlan || r.aborted }); err != nil {
			return r.st, err
		}
		r.st.WaitingFor = ""
		r.st.State = StateRunning
	}

	for i := range p.Phases {
		if r.aborted {
			break
		}
		ph := &p.Phases[i]
		if ph.RequireApproval {
			r.st.State = StateAwaitingApproval
			r.awaitingPhase = ph.Name
			r.st.WaitingFor = fmt.Sprintf("approval of phase %s (fleet approve %s --phase %s)", ph.Name, r.st.Name, ph.Name)
			r.notify(NotifyApproval, "Waiting for "+r.st.WaitingFor)
			if err := workflow.Await(ctx, func() bool { return r.approvedPhases[ph.Name] || r.aborted }); err != nil {
				return r.st, err
			}
			r.st.WaitingFor = ""
			r.awaitingPhase = ""
			r.st.State = StateRunning
			if r.st.Paused != nil {
				r.st.State = StatePaused
			}
		}
		if err := r.runPhase(ctx, ph); err != nil {
			return r.st, err
		}
		if !r.aborted {
			done := r.phaseCounts(ph)
			r.notify(NotifyPhaseDone, fmt.Sprintf("Phase %s done: %d clusters updated, %d failed.", ph.Name, done.Done, done.Failed))
		}
	}
	if r.aborted {
		return r.finish(ctx, StateAborted, "aborted"), nil
	}
	return r.finish(ctx, StateCompleted, "completed"), nil
}

// runPhase runs the phase's batches: a sliding window of parallel batches, or
// waves when the phase is strict. Nothing starts while the rollout is paused.
func (r *rollout) runPhase(ctx workflow.Context, ph *plan.Phase) error {
	if len(ph.Batches) == 0 {
		return nil
	}
	batchSize := len(ph.Batches[0].Clusters)
	concurrency := ph.Concurrency
	if concurrency <= 0 {
		concurrency = batchSize
	}
	parallel := concurrency / batchSize
	if parallel < 1 {
		parallel = 1
	}
	perBatch := concurrency
	if perBatch > batchSize {
		perBatch = batchSize
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		TaskQueue:         TaskQueue,
		ParentClosePolicy: enums.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
		// A re-run of the same rollout name may reuse batch IDs of a closed run.
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	})
	var childErr error
	next := 0
	for {
		ok := func() bool {
			if r.aborted || childErr != nil {
				return len(r.running) == 0
			}
			if next >= len(ph.Batches) {
				return len(r.running) == 0
			}
			if r.st.Paused != nil {
				return false
			}
			if ph.Strict && len(r.running) > 0 && next%parallel == 0 {
				return false // wait for the wave to finish
			}
			return len(r.running) < parallel
		}
		if err := workflow.Await(ctx, ok); err != nil {
			return err
		}
		if childErr != nil {
			return childErr
		}
		if r.aborted || next >= len(ph.Batches) {
			return nil
		}
		b := ph.Batches[next]
		next++
		in := BatchInput{
			RolloutID:      r.id,
			Phase:          ph.Name,
			Batch:          b,
			Target:         dataplane.Spec{Version: r.in.Spec.Target.Version, Config: r.in.Spec.Target.Config},
			Concurrency:    perBatch,
			Bake:           ph.Bake,
			ApplyTimeout:   r.in.Spec.ApplyTimeout.D(),
			HealthInterval: r.in.Spec.Monitoring.Interval.D(),
		}
		if r.in.Spec.Monitoring.Disabled {
			in.HealthInterval = 0
		}
		child := workflow.ExecuteChildWorkflow(workflow.WithWorkflowID(cctx, BatchID(r.id, b.Number)), Batch, in)
		r.running[b.Number] = child
		workflow.Go(ctx, func(ctx workflow.Context) {
			var res BatchResult
			err := child.Get(ctx, &res)
			delete(r.running, b.Number)
			if err != nil {
				childErr = fmt.Errorf("batch %d: %w", b.Number, err)
				return
			}
			r.results[b.Number] = res
		})
	}
}

func (r *rollout) phaseCounts(ph *plan.Phase) Counts {
	var c Counts
	for _, b := range ph.Batches {
		if res, ok := r.results[b.Number]; ok {
			for _, cl := range res.Clusters {
				c.Add(cl.State)
			}
		}
	}
	return c
}

func (r *rollout) finish(ctx workflow.Context, state RolloutState, why string) RolloutStatus {
	now := workflow.Now(ctx)
	r.st.State = state
	r.st.FinishedAt = &now
	r.st.WaitingFor = ""
	st := r.status()
	r.notify(NotifyFinished, fmt.Sprintf("Rollout %s %s: %d done, %d failed, %d aborted, %d skipped of %d in %s.",
		r.st.Name, why, st.Counts.Done, st.Counts.Failed, st.Counts.Aborted, st.Counts.Skipped, st.Total,
		now.Sub(r.st.StartedAt).Round(time.Second)))
	r.audit(ctx, "fleet", "finish", why, string(state))
	if r.notes != nil {
		r.notes.Close()
		r.notifier.Wait(ctx)
	}
	// Let in-flight update handlers answer before the workflow closes.
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	return r.status()
}

// status assembles the query answer from the plan and the batch results.
func (r *rollout) status() RolloutStatus {
	st := r.st
	st.Counts = Counts{}
	st.Phases = nil
	if r.plan == nil {
		return st
	}
	for _, ph := range r.plan.Phases {
		ps := PhaseStatus{Name: ph.Name, RequireApproval: ph.RequireApproval}
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
				bs.Clusters = res.Clusters
				for _, c := range res.Clusters {
					bs.Counts.Add(c.State)
				}
			} else if _, ok := r.running[b.Number]; ok {
				started++
				bs.State = BatchRunning
				if r.st.Paused != nil {
					bs.State = BatchPaused
				}
				bs.Counts.InFlight = len(b.Clusters)
			} else {
				bs.State = BatchPending
				bs.Clusters = make([]ClusterStatus, len(b.Clusters))
				for i, t := range b.Clusters {
					state := ClusterPending
					if r.st.State.Terminal() {
						state = ClusterSkipped
					}
					bs.Clusters[i] = ClusterStatus{ID: t.ClusterID, Product: t.Product, Generation: t.Generation, State: state}
					bs.Counts.Add(state)
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
