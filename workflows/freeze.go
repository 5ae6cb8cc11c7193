package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/fleet-rollout/fleet/internal/identity"
	"github.com/fleet-rollout/fleet/internal/policy"
)

// Freeze activity names (registered by name by activities.FreezeActivities).
const (
	// ActivityBroadcastFreeze signals a FreezeState to every running Rollout
	// and returns how many it reached.
	ActivityBroadcastFreeze = "BroadcastFreeze"
	// ActivityCurrentFreeze returns the freeze in force (a FreezeState with a
	// nil Freeze when there is none); a Rollout calls it when it starts.
	ActivityCurrentFreeze = "CurrentFreeze"
	// ActivityCancelRequest reads who cancelled a workflow run, and why
	// (CancelRequestInput → CancelRequest).
	ActivityCancelRequest = "CancelRequest"
)

// CancelRequestInput names the run whose cancel request is read.
type CancelRequestInput struct {
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
}

// CancelRequest is who asked Temporal to cancel a run (the caller's identity,
// e.g. the temporal CLI's or the Web UI's) and the reason given.
type CancelRequest struct {
	Identity string `json:"identity,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// QueryFreezeAudit returns the freeze workflow's audit trail ([]AuditEntry):
// every freeze, unfreeze and expiry, and every signal that was rejected.
const QueryFreezeAudit = "audit"

// MaxFreezeDuration is how far ahead a freeze may end.
const MaxFreezeDuration = 30 * 24 * time.Hour

const (
	// maxFreezeHistory bounds FreezeState.History.
	maxFreezeHistory = 50
	// maxFreezeAudit bounds the audit trail.
	maxFreezeAudit = 200
	// maxFreezeChanges is how many handled messages (changes and rejected
	// signals) one run takes before it continues as new.
	maxFreezeChanges = 100
	// broadcastWait bounds how long a freeze or unfreeze update waits for the
	// broadcast to the running rollouts before it answers.
	broadcastWait = 30 * time.Second
)

// FreezeInput starts the Freeze workflow. A fresh start passes the zero
// value; continue-as-new carries the state and the audit trail. The pending
// expiry timer's deadline is State.Freeze.Until: the next run starts its
// timer for what is left of it (or lifts the freeze at once if it is past).
type FreezeInput struct {
	State FreezeState  `json:"state"`
	Audit []AuditEntry `json:"audit,omitempty"`
	// Nonces are the proofs' nonces still remembered (see identity.go).
	Nonces map[string]time.Time `json:"nonces,omitempty"`
}

// RegisterFreeze registers the Freeze workflow under WorkflowFreeze.
func RegisterFreeze(r worker.WorkflowRegistry) {
	r.RegisterWorkflowWithOptions(Freeze, workflow.RegisterOptions{Name: WorkflowFreeze})
}

// Freeze holds the fleet-wide freeze. It is a long-running singleton (ID
// FreezeID), started by the first freeze (update-with-start) and never
// finishing by itself: it continues as new to keep its history short.
//
//   - update/signal "freeze" (FreezeRequest → FreezeState) sets a freeze, or
//     replaces the one in force (which goes to History, ended now);
//   - update/signal "unfreeze" (ActionRequest → FreezeState) lifts it;
//   - a durable timer lifts it at Until; the timer is reset on every change;
//   - query "status" → FreezeState; query "audit" → []AuditEntry.
//
// Every change is broadcast (activity BroadcastFreeze) to every running
// Rollout as the SignalFreezeState signal, newest state last. Signals that do
// not apply are logged and recorded in the audit trail as rejected.
func Freeze(ctx workflow.Context, in FreezeInput) error {
	f, err := newFreezer(ctx, in)
	if err != nil {
		return err
	}
	return f.run(ctx)
}

type freezer struct {
	st    FreezeState
	audit []AuditEntry
	// gen counts state changes; sent is the gen the last finished broadcast
	// carried. gen != sent means a broadcast is due.
	gen, sent int
	// changes counts handled messages in this run (for continue-as-new).
	changes    int
	freezeCh   workflow.ReceiveChannel
	unfreezeCh workflow.ReceiveChannel
	// vid is the run's versionIdentity: from 1 on, signals are checked
	// like updates (proof and role). nonces are the proofs seen.
	vid    workflow.Version
	nonces nonces
}

func newFreezer(ctx workflow.Context, in FreezeInput) (*freezer, error) {
	f := &freezer{st: in.State, audit: in.Audit, nonces: in.Nonces}
	if f.nonces == nil {
		f.nonces = nonces{}
	}
	f.vid = workflow.GetVersion(ctx, versionIdentity, workflow.DefaultVersion, versionIdentityMax)
	if err := f.registerHandlers(ctx); err != nil {
		return nil, err
	}
	f.startBroadcaster(ctx)
	return f, nil
}

func (f *freezer) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (FreezeState, error) {
		return f.status(), nil
	}); err != nil {
		return fmt.Errorf("register status query: %w", err)
	}
	if err := workflow.SetQueryHandler(ctx, QueryFreezeAudit, func() ([]AuditEntry, error) {
		return append([]AuditEntry(nil), f.audit...), nil
	}); err != nil {
		return fmt.Errorf("register audit query: %w", err)
	}

	err := workflow.SetUpdateHandlerWithOptions(ctx, FreezeUpdate,
		func(ctx workflow.Context, req FreezeRequest) (FreezeState, error) {
			person, err := f.authorize(ctx, policy.ActionFreeze, FreezeUpdate, req, req.Actor, req.Auth)
			if err != nil {
				return f.status(), refusal(err)
			}
			req.Actor = person
			f.doFreeze(ctx, req, FreezeUpdate)
			f.awaitBroadcast(ctx)
			return f.status(), nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, req FreezeRequest) error {
			return refusal(f.validateFreeze(ctx, req))
		}})
	if err != nil {
		return fmt.Errorf("register %s update: %w", FreezeUpdate, err)
	}
	err = workflow.SetUpdateHandlerWithOptions(ctx, UnfreezeUpdate,
		func(ctx workflow.Context, req ActionRequest) (FreezeState, error) {
			// A signal handled since validation may have lifted it already.
			if err := f.validateUnfreeze(req); err != nil {
				return f.status(), err
			}
			person, err := f.authorize(ctx, policy.ActionUnfreeze, UnfreezeUpdate, req, req.Actor, req.Auth)
			if err != nil {
				return f.status(), refusal(err)
			}
			// The policy read yields: a signal may have lifted it meanwhile.
			if err := f.validateUnfreeze(req); err != nil {
				return f.status(), err
			}
			req.Actor = person
			f.doUnfreeze(ctx, req, UnfreezeUpdate)
			f.awaitBroadcast(ctx)
			return f.status(), nil
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, req ActionRequest) error {
			return refusal(f.validateUnfreeze(req))
		}})
	if err != nil {
		return fmt.Errorf("register %s update: %w", UnfreezeUpdate, err)
	}

	f.freezeCh = workflow.GetSignalChannel(ctx, FreezeUpdate)
	f.unfreezeCh = workflow.GetSignalChannel(ctx, UnfreezeUpdate)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var req FreezeRequest
			f.freezeCh.Receive(ctx, &req)
			f.onFreezeSignal(ctx, req)
		}
	})
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var req ActionRequest
			f.unfreezeCh.Receive(ctx, &req)
			f.onUnfreezeSignal(ctx, req)
		}
	})
	return nil
}

// --- validators: say why a message does not apply ---

func (f *freezer) validateFreeze(ctx workflow.Context, req FreezeRequest) error {
	now := workflow.Now(ctx)
	switch {
	case strings.TrimSpace(req.Actor) == "":
		return errors.New("an actor is required to freeze (who sets it)")
	case strings.TrimSpace(req.Reason) == "":
		return errors.New("a reason is required to freeze")
	case req.Until.IsZero():
		return errors.New("an end time (until) is required to freeze")
	case !req.Until.After(now):
		return fmt.Errorf("until %s is not in the future (now %s)",
			req.Until.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case req.Until.Sub(now) > MaxFreezeDuration:
		return fmt.Errorf("until %s is more than %d days ahead (latest %s)",
			req.Until.UTC().Format(time.RFC3339), int(MaxFreezeDuration/(24*time.Hour)),
			now.Add(MaxFreezeDuration).UTC().Format(time.RFC3339))
	}
	return nil
}

func (f *freezer) validateUnfreeze(req ActionRequest) error {
	switch {
	case f.st.Freeze == nil:
		return errors.New("no freeze is in force")
	case strings.TrimSpace(req.Actor) == "":
		return errors.New("an actor is required to unfreeze (who lifts it)")
	}
	return nil
}

// --- signals (Web UI, fire-and-forget callers) ---

func (f *freezer) onFreezeSignal(ctx workflow.Context, req FreezeRequest) {
	if err := f.validateFreeze(ctx, req); err != nil {
		f.reject(ctx, req.Actor, FreezeUpdate, req.Reason, err)
		return
	}
	if f.vid >= 1 {
		// Signals pass the same checks as updates: proof and role.
		person, err := f.authorize(ctx, policy.ActionFreeze, FreezeUpdate, req, req.Actor, req.Auth)
		if err == nil {
			err = f.validateFreeze(ctx, req) // the policy read yielded
		}
		if err != nil {
			f.reject(ctx, req.Actor, FreezeUpdate, req.Reason, err)
			return
		}
		req.Actor = person
	}
	f.doFreeze(ctx, req, FreezeUpdate+" (signal)")
}

func (f *freezer) onUnfreezeSignal(ctx workflow.Context, req ActionRequest) {
	if err := f.validateUnfreeze(req); err != nil {
		f.reject(ctx, req.Actor, UnfreezeUpdate, req.Reason, err)
		return
	}
	if f.vid >= 1 {
		person, err := f.authorize(ctx, policy.ActionUnfreeze, UnfreezeUpdate, req, req.Actor, req.Auth)
		if err == nil {
			err = f.validateUnfreeze(req) // the policy read yielded
		}
		if err != nil {
			f.reject(ctx, req.Actor, UnfreezeUpdate, req.Reason, err)
			return
		}
		req.Actor = person
	}
	f.doUnfreeze(ctx, req, UnfreezeUpdate+" (signal)")
}

func (f *freezer) reject(ctx workflow.Context, actor, name, reason string, err error) {
	workflow.GetLogger(ctx).Warn("freeze: signal rejected", "signal", name, "actor", actor, "error", err)
	f.record(ctx, actor, name+" (signal)", reason, "rejected: "+err.Error())
	f.changes++
}

// --- changes: none of them blocks ---

func (f *freezer) doFreeze(ctx workflow.Context, req FreezeRequest, action string) {
	now := workflow.Now(ctx)
	outcome := "applied"
	if prev := f.st.Freeze; prev != nil {
		ended := *prev
		ended.Until = now
		f.pushHistory(ended)
		outcome = fmt.Sprintf("applied; replaces the freeze set by %s (%q) that was to end %s",
			prev.Actor, prev.Reason, prev.Until.UTC().Format(time.RFC3339))
	}
	f.st.Freeze = &FreezeInfo{Actor: req.Actor, Reason: req.Reason, Since: now, Until: req.Until.UTC()}
	f.record(ctx, req.Actor, action, fmt.Sprintf("%s (until %s)", req.Reason, req.Until.UTC().Format(time.RFC3339)), outcome)
	f.changed()
}

func (f *freezer) doUnfreeze(ctx workflow.Context, req ActionRequest, action string) {
	ended := *f.st.Freeze
	ended.Until = workflow.Now(ctx)
	f.pushHistory(ended)
	f.st.Freeze = nil
	f.record(ctx, req.Actor, action, req.Reason,
		fmt.Sprintf("applied; lifted the freeze set by %s (%q)", ended.Actor, ended.Reason))
	f.changed()
}

func (f *freezer) expire(ctx workflow.Context) {
	ended := *f.st.Freeze
	f.pushHistory(ended)
	f.st.Freeze = nil
	f.record(ctx, "fleet", "expire", ended.Reason,
		fmt.Sprintf("applied; the freeze set by %s ended at %s", ended.Actor, ended.Until.UTC().Format(time.RFC3339)))
	f.changed()
}

func (f *freezer) changed() {
	f.gen++
	f.changes++
}

func (f *freezer) pushHistory(i FreezeInfo) {
	f.st.History = append(f.st.History, i)
	if len(f.st.History) > maxFreezeHistory {
		f.st.History = append([]FreezeInfo(nil), f.st.History[len(f.st.History)-maxFreezeHistory:]...)
	}
}

func (f *freezer) record(ctx workflow.Context, actor, action, reason, outcome string) {
	if strings.TrimSpace(actor) == "" {
		actor = "unknown"
	}
	f.audit = append(f.audit, AuditEntry{At: workflow.Now(ctx), Actor: actor, Action: action, Reason: reason, Outcome: outcome})
	if len(f.audit) > maxFreezeAudit {
		f.audit = append([]AuditEntry(nil), f.audit[len(f.audit)-maxFreezeAudit:]...)
	}
}

func (f *freezer) status() FreezeState {
	st := FreezeState{History: append([]FreezeInfo(nil), f.st.History...)}
	if f.st.Freeze != nil {
		cur := *f.st.Freeze
		st.Freeze = &cur
	}
	return st
}

// --- broadcast ---

// startBroadcaster runs the one coroutine that tells the running rollouts:
// it always sends the newest state, so rollouts see changes in order, and a
// burst of changes costs one broadcast. Rollouts get only the freeze in
// force, not the history.
func (f *freezer) startBroadcaster(ctx workflow.Context) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			// unlimited attempts: a signal of the absolute state is idempotent
		},
	})
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			if err := workflow.Await(ctx, func() bool { return f.gen != f.sent }); err != nil {
				return
			}
			g := f.gen
			st := FreezeState{}
			if f.st.Freeze != nil {
				cur := *f.st.Freeze
				st.Freeze = &cur
			}
			var n int
			if err := workflow.ExecuteActivity(actx, ActivityBroadcastFreeze, st).Get(ctx, &n); err != nil {
				if ctx.Err() != nil {
					return
				}
				workflow.GetLogger(ctx).Error("freeze: broadcast failed; retrying", "error", err)
				if err := workflow.Sleep(ctx, 30*time.Second); err != nil {
					return
				}
				continue
			}
			f.sent = g
			workflow.GetLogger(ctx).Info("freeze: broadcast", "frozen", st.Freeze != nil, "rollouts", n)
		}
	})
}

// awaitBroadcast lets an update answer once the running rollouts have been
// told about it (bounded: the broadcast goes on regardless).
func (f *freezer) awaitBroadcast(ctx workflow.Context) {
	g := f.gen
	_, _ = workflow.AwaitWithTimeout(ctx, broadcastWait, func() bool { return f.sent >= g })
}

// --- main loop ---

func (f *freezer) run(ctx workflow.Context) error {
	for {
		if f.continueAsNewDue(ctx) {
			return f.continueAsNew(ctx)
		}
		seen := f.gen
		wake := func() bool { return f.gen != seen || f.continueAsNewDue(ctx) }
		if f.st.Freeze == nil {
			if err := workflow.Await(ctx, wake); err != nil {
				return err
			}
			continue
		}
		left := f.st.Freeze.Until.Sub(workflow.Now(ctx))
		if left <= 0 {
			f.expire(ctx)
			continue
		}
		// A durable timer to Until; a change wakes the loop, which cancels it
		// and starts one for the new deadline.
		if _, err := workflow.AwaitWithTimeout(ctx, left, wake); err != nil {
			return err
		}
	}
}

func (f *freezer) continueAsNewDue(ctx workflow.Context) bool {
	return f.changes >= maxFreezeChanges || workflow.GetInfo(ctx).GetContinueAsNewSuggested()
}

// continueAsNew waits until no update is running and the newest state has
// been broadcast, handles signals still buffered, then continues as new
// with the state and the audit trail.
func (f *freezer) continueAsNew(ctx workflow.Context) error {
	for {
		if err := workflow.Await(ctx, func() bool {
			return workflow.AllHandlersFinished(ctx) && f.sent == f.gen
		}); err != nil {
			return err
		}
		if f.freezeCh.Len() == 0 && f.unfreezeCh.Len() == 0 {
			break
		}
		f.drainSignals(ctx)
	}
	in := FreezeInput{State: f.status(), Audit: f.audit}
	if len(f.nonces) > 0 {
		in.Nonces = f.nonces
	}
	return workflow.NewContinueAsNewError(ctx, WorkflowFreeze, in)
}

func (f *freezer) drainSignals(ctx workflow.Context) {
	for {
		var req FreezeRequest
		if !f.freezeCh.ReceiveAsync(&req) {
			break
		}
		f.onFreezeSignal(ctx, req)
	}
	for {
		var req ActionRequest
		if !f.unfreezeCh.ReceiveAsync(&req) {
			break
		}
		f.onUnfreezeSignal(ctx, req)
	}
}

// authorize verifies the request's proof (when the policy wants signed
// requests) and the person's role against the policy in force, read by the
// Policy activity (validators cannot run activities, so the handler checks
// and rejects before changing anything). It returns the person to record.
func (f *freezer) authorize(ctx workflow.Context, action policy.Action, name string, req any, actor string, p *identity.Proof) (string, error) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	var snap *policy.Snapshot
	if err := workflow.ExecuteActivity(actx, ActivityPolicy).Get(ctx, &snap); err != nil {
		return "", fmt.Errorf("read policy: %w", err)
	}
	now := workflow.Now(ctx)
	person, err := verifyRequest(snap, f.nonces, workflow.GetInfo(ctx).WorkflowExecution.ID, name, req, actor, p, now)
	if err != nil {
		refused(ctx, name, actor, err)
		return "", err
	}
	if snap == nil {
		return actor, nil
	}
	if err := snap.Authorize(person, action, ""); err != nil {
		return "", err
	}
	if p != nil && snap.SignedIdentity() {
		if err := f.nonces.use(p.Nonce, now); err != nil {
			return "", err
		}
	}
	return person, nil
}
