package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/fleet-rollout/fleet/internal/identity"
	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/policy"
	"github.com/fleet-rollout/fleet/internal/spec"
)

// Recovery (README "Recovery"): a rollback returns every cluster a rollout
// changed to where it came from; a retry re-applies the clusters that failed
// or were skipped; a supersede hands a running rollout's clusters to a new
// one. Rollbacks and retries of a rollout that has ended are rollouts of
// their own (RolloutInput.Recovery), planned from the ended rollout's source
// (QuerySource); the updates below act on a rollout still running.
const (
	// UpdateRollback aborts a running rollout and, once its batches have
	// stopped, starts its rollback (ActionRequest).
	UpdateRollback = "rollback"
	// UpdateSupersede hands a running rollout over to another
	// (SupersedeRequest): it starts no new cluster, stops the ones in
	// flight after their current broker, and ends superseded.
	UpdateSupersede = "supersede"
	// UpdateRetry re-queues failed and skipped clusters of a running (or
	// paused) rollout as a last phase, with a fresh error budget for them
	// (RetryRequest).
	UpdateRetry = "retry"
	// QuerySource returns RolloutSource: what the rollout did, for
	// recovery planning.
	QuerySource = "source"

	// ActivityAwaitHandover waits until the rollout a supersede takes
	// over has stopped (AwaitHandoverInput).
	ActivityAwaitHandover = "AwaitHandover"
)

// RecoveryKind names a kind of recovery.
type RecoveryKind string

// Recovery kinds.
const (
	RecoveryRollback  RecoveryKind = "rollback"
	RecoveryRetry     RecoveryKind = "retry"
	RecoverySupersede RecoveryKind = "supersede"
)

// Recovery says which rollout a rollout recovers, and how.
type Recovery struct {
	Kind RecoveryKind `json:"kind"`
	// Of is the workflow ID of the rollout recovered.
	Of string `json:"of"`
	// Clusters restricts a retry to these clusters (all failed and
	// skipped ones when empty).
	Clusters []string `json:"clusters,omitempty"`
	// Forward runs a rollback's phases in the rollout's own order (by
	// default last phase first).
	Forward bool `json:"forward,omitempty"`
	// ThreadTS is the Slack thread of the rollout recovered: a rollback
	// and a retry post in it.
	ThreadTS string `json:"threadTs,omitempty"`
}

// Validate checks a Recovery on a start.
func (r *Recovery) Validate(self string) error {
	switch r.Kind {
	case RecoveryRollback, RecoveryRetry, RecoverySupersede:
	default:
		return fmt.Errorf("recovery: unknown kind %q (rollback, retry or supersede)", r.Kind)
	}
	if !strings.HasPrefix(r.Of, RolloutIDPrefix) || IsBatchID(r.Of) {
		return fmt.Errorf("recovery: of must be a rollout's workflow ID (rollout/NAME), got %q", r.Of)
	}
	if r.Of == self {
		return errors.New("recovery: a rollout cannot recover itself")
	}
	if len(r.Clusters) > 0 && r.Kind != RecoveryRetry {
		return errors.New("recovery: clusters apply to a retry only")
	}
	return nil
}

// RolloutSource is the answer of QuerySource.
type RolloutSource struct {
	Source       plan.Source  `json:"source"`
	Spec         spec.Rollout `json:"spec"`
	State        RolloutState `json:"state"`
	SupersededBy string       `json:"supersededBy,omitempty"`
	// ThreadTS is the rollout's Slack thread.
	ThreadTS string `json:"threadTs,omitempty"`
	// RollbackID names the rollback the rollout started itself (the
	// rollback update, or the error budget).
	RollbackID string `json:"rollbackId,omitempty"`
}

// SupersedeRequest hands a rollout over to the rollout By (its workflow ID).
type SupersedeRequest struct {
	Actor  string `json:"actor"`
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"`
	// Auth proves Actor (see ActionRequest.Auth).
	Auth *identity.Proof `json:"auth,omitempty"`
}

// RetryRequest re-queues failed and skipped clusters (all when Clusters is
// empty).
type RetryRequest struct {
	Actor    string   `json:"actor"`
	Clusters []string `json:"clusters,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	// Auth proves Actor (see ActionRequest.Auth).
	Auth *identity.Proof `json:"auth,omitempty"`
}

// AwaitHandoverInput is the argument of ActivityAwaitHandover.
type AwaitHandoverInput struct {
	// Of is the rollout taken over, By the rollout taking over.
	Of string `json:"of"`
	By string `json:"by"`
}

// AwaitHandoverResult is how the rollout taken over ended.
type AwaitHandoverResult struct {
	State        RolloutState `json:"state"`
	SupersededBy string       `json:"supersededBy,omitempty"`
}

// RollbackName is the name of the rollback of the rollout named name.
func RollbackName(name string) string { return name + "-rollback" }

// RollbackSpec is the spec of the rollback of a rollout with spec r whose
// clusters mostly return to version: the same monitors, budgets, pacing and
// Slack channel; downgrades allowed; no approval gates of its own; no
// waiting for maintenance windows unless respectWindows; and a rollback
// that exceeds its budget pauses (it never rolls back itself).
func RollbackSpec(r spec.Rollout, version string, respectWindows bool) spec.Rollout {
	out := r
	out.Name = RollbackName(r.Name)
	out.Description = "rollback of " + r.Name
	out.Target = spec.Target{Version: version}
	out.AllowDowngrade = true
	out.RequirePlanApproval = false
	if !respectWindows {
		out.Schedule.Windows = spec.WindowsIgnore
	}
	if out.ErrorBudget != nil {
		b := *out.ErrorBudget
		if b.OnExceeded == spec.OnExceededRollback {
			b.OnExceeded = spec.OnExceededPause
		}
		out.ErrorBudget = &b
	}
	return out
}

// source assembles the rollout's RolloutSource.
func (r *rollout) source() RolloutSource {
	out := RolloutSource{Spec: r.in.Spec, State: r.st.State, SupersededBy: r.st.SupersededBy, ThreadTS: r.threadTS, RollbackID: r.st.RollbackID}
	out.Source = plan.Source{ID: r.id, Plan: r.plan, Ran: []int{}, Outcomes: map[string]plan.Outcome{}}
	for _, n := range workflow.DeterministicKeys(r.results) {
		out.Source.Ran = append(out.Source.Ran, n)
		for _, c := range r.results[n].Clusters {
			if c.State != ClusterDone {
				out.Source.Outcomes[c.ID] = plan.Outcome{State: string(c.State), Broker: c.Broker}
			}
		}
	}
	return out
}

func (r *rollout) registerRecoveryHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QuerySource, func() (RolloutSource, error) {
		return r.source(), nil
	}); err != nil {
		return fmt.Errorf("register source query: %w", err)
	}
	if err := serveAction(ctx, r, UpdateRollback, r.validateRollback, r.doRollback,
		func(q *ActionRequest) (*string, string, *identity.Proof) { return &q.Actor, q.Reason, q.Auth }); err != nil {
		return err
	}
	if err := serveAction(ctx, r, UpdateSupersede, r.validateSupersede, r.doSupersede,
		func(q *SupersedeRequest) (*string, string, *identity.Proof) { return &q.Actor, q.Reason, q.Auth }); err != nil {
		return err
	}
	validateRetry := func(q RetryRequest) error {
		_, err := r.validateRetry(q)
		return err
	}
	return serveAction(ctx, r, UpdateRetry, validateRetry, r.doRetry,
		func(q *RetryRequest) (*string, string, *identity.Proof) { return &q.Actor, q.Reason, q.Auth })
}

// serveAction registers a person's action as an update and a signal of the
// same name: validated (policy refusals typed, see refusal), then applied
// for the person the request's proof names. person gives the request's
// actor (to be replaced by that person), reason and proof.
func serveAction[T any](ctx workflow.Context, r *rollout, name string, validate func(T) error,
	apply func(workflow.Context, T) ActionResult, person func(*T) (*string, string, *identity.Proof)) error {
	err := workflow.SetUpdateHandlerWithOptions(ctx, name,
		func(ctx workflow.Context, req T) (ActionResult, error) {
			actor, _, proof := person(&req)
			who, err := r.accept(*actor, proof)
			if err != nil {
				return ActionResult{State: r.st.State}, err
			}
			*actor = who
			return apply(ctx, req), nil
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, req T) error {
			return refusal(validate(req))
		}})
	if err != nil {
		return fmt.Errorf("register %s update: %w", name, err)
	}
	serveSignal(ctx, r, name, validate, func(ctx workflow.Context, req T) {
		actor, _, proof := person(&req)
		*actor, _ = r.accept(*actor, proof) // validated just now, no yield since
		apply(ctx, req)
	}, func(req T) (string, string) {
		actor, reason, _ := person(&req)
		return *actor, reason
	})
	return nil
}

// --- rollback of a running rollout ---

func (r *rollout) validateRollback(req ActionRequest) error {
	person, err := r.identify(UpdateRollback, req, req.Actor, req.Auth)
	if err != nil {
		return err
	}
	if err := r.authorize(person, policy.ActionAbort, r.planEnv()); err != nil {
		return err
	}
	switch {
	case r.st.State.Terminal():
		return fmt.Errorf("rollout is %s: start its rollback with fleet rollback %s", r.st.State, r.st.Name)
	case r.in.Recovery != nil && r.in.Recovery.Kind == RecoveryRollback:
		return errors.New("this rollout is a rollback: abort it, or retry its failed clusters")
	case r.rollbackBy != "":
		return errors.New("a rollback is already requested")
	case r.aborted:
		return errors.New("rollout is already aborting: roll it back when it has ended (fleet rollback " + r.st.Name + ")")
	case r.plan == nil:
		return errors.New("the plan is not ready yet: abort the rollout instead, it has changed nothing")
	case strings.TrimSpace(req.Reason) == "":
		return errors.New("a reason is required to roll back")
	}
	return nil
}

func (r *rollout) doRollback(ctx workflow.Context, req ActionRequest) ActionResult {
	r.rollbackBy = req.Actor
	r.audit(ctx, req.Actor, UpdateRollback, req.Reason, "applied: aborting; the rollback starts when the batches have stopped")
	r.doAbort(ctx, ActionRequest{Actor: req.Actor, Reason: "rollback: " + req.Reason})
	return ActionResult{State: r.st.State, Message: fmt.Sprintf("aborting; %s starts when the %d running batches have stopped",
		RolloutID(RollbackName(r.st.Name)), len(r.running))}
}

// startRollback starts the rollback of this rollout, which has just ended
// aborted, as a child that outlives it (abandoned on close). The child trusts
// its parent's request: the actor was verified by the rollback update (or is
// the error budget).
func (r *rollout) startRollback(ctx workflow.Context) {
	name := RollbackName(r.st.Name)
	in := RolloutInput{
		Spec:          RollbackSpec(r.in.Spec, RollbackVersion(r.plan), false),
		Requester:     r.rollbackBy,
		HistoryBudget: r.in.HistoryBudget,
		Recovery:      &Recovery{Kind: RecoveryRollback, Of: r.id, ThreadTS: r.threadTS},
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            RolloutID(name),
		TaskQueue:             TaskQueue,
		ParentClosePolicy:     enums.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		StaticSummary:         "rollback of " + r.st.Name,
	})
	child := workflow.ExecuteChildWorkflow(cctx, WorkflowRollout, in)
	if err := child.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("start rollback", "rollback", RolloutID(name), "error", err)
		r.st.RollbackID = ""
		r.st.Audit = append(r.st.Audit, AuditEntry{At: workflow.Now(ctx), Actor: "fleet", Action: UpdateRollback,
			Reason: "start " + RolloutID(name), Outcome: "failed: " + err.Error() + " (fleet rollback " + r.st.Name + " starts it)"})
		return
	}
}

// RollbackVersion is the version most of the plan's clusters came from
// (an outline counts its stored clusters in FromVersions); among equal
// counts the lowest in string order.
func RollbackVersion(p *plan.Plan) string {
	if p == nil {
		return ""
	}
	n := map[string]int{}
	best := ""
	add := func(v string, c int) {
		n[v] += c
		if best == "" || n[v] > n[best] || (n[v] == n[best] && v < best) {
			best = v
		}
	}
	for _, v := range workflow.DeterministicKeys(p.FromVersions) {
		add(v, p.FromVersions[v])
	}
	for _, ph := range p.Phases {
		for _, b := range ph.Batches {
			for _, t := range b.Clusters {
				if t.FromVersion != "" {
					add(t.FromVersion, 1)
				}
			}
		}
	}
	return best
}

// --- supersede ---

func (r *rollout) validateSupersede(req SupersedeRequest) error {
	person, err := r.identify(UpdateSupersede, req, req.Actor, req.Auth)
	if err != nil {
		return err
	}
	if err := r.authorize(person, policy.ActionAbort, r.planEnv()); err != nil {
		return err
	}
	switch {
	case r.st.State.Terminal():
		return fmt.Errorf("rollout is %s", r.st.State)
	case r.st.SupersededBy != "":
		return fmt.Errorf("rollout is already superseded by %s", r.st.SupersededBy)
	case r.aborted:
		return errors.New("rollout is already aborting")
	case !strings.HasPrefix(req.By, RolloutIDPrefix) || IsBatchID(req.By) || req.By == r.id:
		return fmt.Errorf("by must name another rollout's workflow ID (rollout/NAME), got %q", req.By)
	}
	return nil
}

func (r *rollout) doSupersede(ctx workflow.Context, req SupersedeRequest) ActionResult {
	r.st.SupersededBy = req.By
	reason := "superseded by " + req.By
	if req.Reason != "" {
		reason += ": " + req.Reason
	}
	r.audit(ctx, req.Actor, UpdateSupersede, reason, "applied: no new cluster starts; clusters in flight stop after their current broker")
	r.doAbort(ctx, ActionRequest{Actor: req.Actor, Reason: reason})
	return ActionResult{State: r.st.State, Message: fmt.Sprintf("handing over to %s; %d batches stopping", req.By, len(r.running))}
}

// --- retry within a running rollout ---

// retryable lists, in plan order, the clusters whose latest attempt in this
// rollout failed, was aborted or skipped: in a finished batch (its result),
// or failed in a batch still running (counted by its incident).
func (r *rollout) retryable() []retryTarget {
	if r.plan == nil {
		return nil
	}
	last := map[string]retryTarget{}
	var order []string
	for _, ph := range r.plan.Phases {
		for _, b := range ph.Batches {
			res, finished := r.results[b.Number]
			_, running := r.running[b.Number]
			var states map[string]ClusterState
			if finished {
				states = make(map[string]ClusterState, len(res.Clusters))
				for _, c := range res.Clusters {
					states[c.ID] = c.State
				}
			}
			ts := b.Clusters
			var outlined map[string]ClusterState
			if b.Outlined() {
				// Its clusters are in the plan store: those that can be
				// retried are in its result, or failed while it runs
				// (targets partial here, completed by doRetry).
				ts, outlined = r.outlineCandidates(b.Number, res, finished, running)
			}
			for _, t := range ts {
				state := ClusterPending
				switch _, failed := r.failed[t.ClusterID]; {
				case outlined != nil:
					state = outlined[t.ClusterID]
				case finished:
					state = ClusterDone // compacted results list only the others
					if s, ok := states[t.ClusterID]; ok {
						state = s
					}
				case running && failed:
					state = ClusterFailed
				}
				if _, seen := last[t.ClusterID]; !seen {
					order = append(order, t.ClusterID)
				}
				last[t.ClusterID] = retryTarget{phase: ph.Name, target: t, state: state, partial: outlined != nil}
			}
		}
	}
	var out []retryTarget
	for _, id := range order {
		switch t := last[id]; t.state {
		case ClusterFailed, ClusterAborted, ClusterSkipped:
			out = append(out, t)
		}
	}
	return out
}

type retryTarget struct {
	phase  string
	target plan.Target
	state  ClusterState
	// partial marks a target read from a batch's result (an outline's
	// batch): its full target is in the plan store.
	partial bool
}

// outlineCandidates lists the clusters of outline batch n that may be
// retried, with their states: those of its result that did not end done
// (finished), or those that failed while it runs (in ID order).
func (r *rollout) outlineCandidates(n int, res BatchResult, finished, running bool) ([]plan.Target, map[string]ClusterState) {
	var ts []plan.Target
	states := map[string]ClusterState{}
	switch {
	case finished:
		for _, c := range res.Clusters {
			if c.State == ClusterDone {
				continue
			}
			ts = append(ts, plan.Target{ClusterID: c.ID, Product: c.Product, Generation: c.Generation})
			states[c.ID] = c.State
		}
	case running:
		for _, id := range workflow.DeterministicKeys(r.failedBatch) {
			if _, failed := r.failed[id]; failed && r.failedBatch[id] == n {
				ts = append(ts, plan.Target{ClusterID: id})
				states[id] = ClusterFailed
			}
		}
	}
	return ts, states
}

func (r *rollout) validateRetry(req RetryRequest) ([]retryTarget, error) {
	person, err := r.identify(UpdateRetry, req, req.Actor, req.Auth)
	if err != nil {
		return nil, err
	}
	if err := r.authorize(person, policy.ActionStart, r.planEnv()); err != nil {
		return nil, err
	}
	return r.retryTargets(req)
}

// retryTargets is what a retry request takes now, or why it takes nothing.
// It does not check the request's proof: the validator did, and the nonce
// is spent by the time the update runs.
func (r *rollout) retryTargets(req RetryRequest) ([]retryTarget, error) {
	switch {
	case r.st.State.Terminal():
		return nil, fmt.Errorf("rollout is %s: retry it with fleet retry %s (a rollout of its own)", r.st.State, r.st.Name)
	case r.aborted:
		return nil, errors.New("rollout is aborting")
	case r.plan == nil:
		return nil, errors.New("the plan is not ready yet")
	}
	all := r.retryable()
	if len(req.Clusters) == 0 {
		if len(all) == 0 {
			return nil, errors.New("no cluster has failed, been aborted or skipped")
		}
		return all, nil
	}
	var out []retryTarget
	var errs []string
	for _, id := range req.Clusters {
		i := slices.IndexFunc(all, func(t retryTarget) bool { return t.target.ClusterID == id })
		if i < 0 {
			errs = append(errs, id)
			continue
		}
		out = append(out, all[i])
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("not failed, aborted or skipped (or already queued again): %s", strings.Join(errs, ", "))
	}
	return out, nil
}

// doRetry appends a phase "retry-N" holding the clusters, sent with a new
// generation, in batches the size of their first phase's, at that phase's
// concurrency; their failures no longer count against the budget.
func (r *rollout) doRetry(ctx workflow.Context, req RetryRequest) ActionResult {
	ts, err := r.retryTargets(req)
	if err != nil { // state changed between the validator and now
		return ActionResult{State: r.st.State, Message: "not retried: " + err.Error()}
	}
	if ts, err = r.completeTargets(ctx, req, ts); err != nil {
		return ActionResult{State: r.st.State, Message: "not retried: " + err.Error()}
	}
	var like *plan.Phase
	for i := range r.plan.Phases {
		if r.plan.Phases[i].Name == ts[0].phase {
			like = &r.plan.Phases[i]
		}
	}
	size := len(ts)
	if len(like.Batches) > 0 {
		size = max(1, like.Batches[0].Len())
	}
	retries := 0
	number := 0
	for _, ph := range r.plan.Phases {
		if strings.HasPrefix(ph.Name, "retry-") {
			retries++
		}
		for _, b := range ph.Batches {
			number = max(number, b.Number)
		}
	}
	ph := plan.Phase{Name: fmt.Sprintf("retry-%d", retries+1), Concurrency: like.Concurrency, Strict: like.Strict, Bake: like.Bake}
	ids := make([]string, 0, len(ts))
	for start := 0; start < len(ts); start += size {
		number++
		b := plan.Batch{Number: number}
		for _, t := range ts[start:min(start+size, len(ts))] {
			tg := t.target
			tg.Generation++
			b.Clusters = append(b.Clusters, tg)
			ids = append(ids, tg.ClusterID)
			if phase, ok := r.failed[tg.ClusterID]; ok {
				delete(r.failed, tg.ClusterID)
				delete(r.failedBatch, tg.ClusterID)
				r.phaseFailed[phase]--
			}
		}
		ph.Batches = append(ph.Batches, b)
	}
	r.plan.Phases = append(r.plan.Phases, ph)
	r.st.Total += len(ids)
	r.audit(ctx, req.Actor, UpdateRetry, strings.TrimSpace(fmt.Sprintf("%d clusters in phase %s %s", len(ids), ph.Name, req.Reason)), "applied")
	return ActionResult{State: r.st.State, Message: fmt.Sprintf("%d clusters queued in phase %s, with a fresh error budget", len(ids), ph.Name)}
}

// completeTargets fills the partial targets of ts (clusters of outline
// batches) from the plan store. Loading yields: what the request takes is
// read again after it, until every partial target has its load.
func (r *rollout) completeTargets(ctx workflow.Context, req RetryRequest, ts []retryTarget) ([]retryTarget, error) {
	loaded := map[string]plan.Target{}
	for range 3 {
		var ids []string
		for _, t := range ts {
			if _, ok := loaded[t.target.ClusterID]; t.partial && !ok {
				ids = append(ids, t.target.ClusterID)
			}
		}
		if len(ids) == 0 {
			for i, t := range ts {
				if t.partial {
					ts[i].target = loaded[t.target.ClusterID]
					ts[i].partial = false
				}
			}
			return ts, nil
		}
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 2 * time.Minute,
			RetryPolicy: &temporal.RetryPolicy{
				InitialInterval: time.Second, MaximumInterval: 10 * time.Second, MaximumAttempts: 5,
				NonRetryableErrorTypes: []string{ErrPlanUnavailable},
			},
		})
		var res PlanTargetsResult
		if err := workflow.ExecuteActivity(actx, ActivityPlanTargets, PlanTargetsInput{Plan: r.plan.Stored, Hash: r.plan.Hash, IDs: ids}).Get(ctx, &res); err != nil {
			return nil, fmt.Errorf("load the clusters' targets from plan %s: %w", r.plan.Stored, err)
		}
		for _, id := range ids {
			t, ok := res.Targets[id]
			if !ok {
				return nil, fmt.Errorf("plan %s has no cluster %s", r.plan.Stored, id)
			}
			loaded[id] = t
		}
		var err error
		if ts, err = r.retryTargets(req); err != nil {
			return nil, err
		}
	}
	return nil, errors.New("the clusters to retry kept changing while their targets loaded: try again")
}

// awaitHandover waits, before a superseding rollout plans, until the rollout
// it takes over has stopped.
func (r *rollout) awaitHandover(ctx workflow.Context) error {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Hour,
		HeartbeatTimeout:    30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			MaximumInterval:        30 * time.Second,
			NonRetryableErrorTypes: []string{"InvalidSpec"},
		},
	})
	r.st.WaitingFor = "the rollout it supersedes to stop: " + r.in.Recovery.Of
	var res AwaitHandoverResult
	err := workflow.ExecuteActivity(actx, ActivityAwaitHandover, AwaitHandoverInput{Of: r.in.Recovery.Of, By: r.id}).Get(ctx, &res)
	r.st.WaitingFor = ""
	if err != nil {
		return fmt.Errorf("supersede %s: %w", r.in.Recovery.Of, err)
	}
	what := fmt.Sprintf("%s ended %s", r.in.Recovery.Of, res.State)
	if res.SupersededBy == r.id {
		what = fmt.Sprintf("%s handed over (superseded)", r.in.Recovery.Of)
	}
	r.audit(ctx, r.in.Requester, "supersede", what, "applied")
	return nil
}
