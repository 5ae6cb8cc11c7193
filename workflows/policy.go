package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/policy"
	"github.com/fleet-rollout/fleet/internal/spec"
)

// Policy: access control on every action, approval gates with the
// two-person rule in prod, gate timeouts, and (in batches) maintenance
// windows, blackouts and emergency overrides. The policy is the worker's
// policy file, read once when the rollout starts (the Policy activity) so
// every decision is deterministic and replayable.
//
// Identity: the person behind a request's proof (identity.go), or the actor
// named in it when the policy says identity: asserted. See
// docs/architecture.md#identity-and-trust.

// Activity names for policy.
const (
	ActivityPolicy   = "Policy"
	ActivityClusters = "Clusters"
)

// ClustersInput asks for the inventory records of some clusters.
type ClustersInput struct {
	IDs []string `json:"ids"`
}

// ClustersResult carries the clusters' inventory records and the policy in
// force (nil when no policy file is configured).
type ClustersResult struct {
	Clusters []fleet.Cluster  `json:"clusters"`
	Policy   *policy.Snapshot `json:"policy,omitempty"`
}

// loadPolicy reads the policy in force when the rollout starts.
func (r *rollout) loadPolicy(ctx workflow.Context) error {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5},
	})
	var snap *policy.Snapshot
	if err := workflow.ExecuteActivity(actx, ActivityPolicy).Get(ctx, &snap); err != nil {
		return fmt.Errorf("read policy: %w", err)
	}
	r.policy = snap
	r.policyLoaded = true
	if r.v >= 1 && snap != nil && snap.Stale != "" {
		// The policy file no longer loads: the worker serves the last good
		// policy. Say so, once, where people look.
		r.audit(ctx, safetyActor, "policy-stale", snap.Stale, "using the last good policy")
		r.notify(NotifyStarted, "Warning: the policy file does not load ("+snap.Stale+"); this rollout uses the last good policy. Fix the file.")
	}
	return nil
}

// authorize checks that actor may take action in environment env.
func (r *rollout) authorize(actor string, action policy.Action, env string) error {
	if r.policy == nil {
		return nil
	}
	return r.policy.Authorize(actor, action, env)
}

// envOf is the most sensitive environment among a phase's clusters.
func envOf(ph plan.Phase) string {
	if ph.Breakdown == nil {
		return ""
	}
	for _, e := range []string{fleet.EnvProd, fleet.EnvNonProd, fleet.EnvInternal} {
		if ph.Breakdown.Environment[e] > 0 {
			return e
		}
	}
	return ""
}

// planEnv is the most sensitive environment of the whole plan.
func (r *rollout) planEnv() string {
	if r.plan == nil {
		return ""
	}
	rank := map[string]int{fleet.EnvInternal: 1, fleet.EnvNonProd: 2, fleet.EnvProd: 3}
	best := ""
	for _, ph := range r.plan.Phases {
		if e := envOf(ph); rank[e] > rank[best] {
			best = e
		}
	}
	return best
}

// approvalEnv is the environment an approval request is for.
func (r *rollout) approvalEnv(req ApproveRequest) string {
	if req.Phase != "" && r.plan != nil {
		for _, ph := range r.plan.Phases {
			if ph.Name == req.Phase {
				return envOf(ph)
			}
		}
	}
	return r.planEnv()
}

// checkApprover applies access control and the two-person rule.
func (r *rollout) checkApprover(req ApproveRequest, person string) error {
	env := r.approvalEnv(req)
	if err := r.authorize(person, policy.ActionApprove, env); err != nil {
		return err
	}
	// People, not names: alice from the CLI and alice's Slack user are one.
	return policy.TwoPersonRule(r.policy.Person(r.in.Requester), person, env)
}

// gate waits for cond (an approval, or an abort), reminding in the rollout's
// thread every timeout, or aborting when the phase says so. A gate may wait
// for days: at each reminder it returns errContinueAsNew when the history is
// due to be handed to a new run (the wait goes on there, from gateSince).
func (r *rollout) gate(ctx workflow.Context, what, button string, sp *spec.Phase, cond func() bool) error {
	timeout := spec.DefaultApprovalTimeout
	action := spec.OnApprovalTimeoutRemind
	if sp != nil {
		if sp.ApprovalTimeout > 0 {
			timeout = sp.ApprovalTimeout.D()
		}
		if sp.OnApprovalTimeout != "" {
			action = sp.OnApprovalTimeout
		}
	}
	waited := time.Duration(0)
	first := timeout
	if r.v >= 1 {
		now := workflow.Now(ctx)
		if r.gateSince.IsZero() {
			r.gateSince = now
		}
		// A carried gate resumes its reminder rhythm where it was.
		waited = now.Sub(r.gateSince).Truncate(timeout)
		first = r.gateSince.Add(waited + timeout).Sub(now)
	}
	for wait := first; ; wait = timeout {
		ok, err := workflow.AwaitWithTimeout(ctx, wait, cond)
		if err != nil {
			return err
		}
		if ok {
			r.gateSince = time.Time{}
			return nil
		}
		waited += timeout
		if action == spec.OnApprovalTimeoutAbort {
			reason := fmt.Sprintf("%s not given within %s", what, waited)
			r.doAbort(ctx, ActionRequest{Actor: safetyActor, Reason: reason})
			r.gateSince = time.Time{}
			return nil
		}
		r.audit(ctx, safetyActor, "remind", what, fmt.Sprintf("still waiting after %s", waited))
		r.notify(NotifyApproval, fmt.Sprintf("Reminder: still waiting for %s (%s so far).", what, waited), button)
		if r.v >= 1 && continueAsNewDue(ctx, r.in.HistoryBudget) {
			return errContinueAsNew
		}
	}
}

// errContinueAsNew tells the rollout's main loop to hand over to a new run.
var errContinueAsNew = errors.New("continue as new")

// specPhase finds the spec's phase of that name (nil for preset phases).
func (r *rollout) specPhase(name string) *spec.Phase {
	for i := range r.in.Spec.Strategy.Phases {
		if r.in.Spec.Strategy.Phases[i].Name == name {
			return &r.in.Spec.Strategy.Phases[i]
		}
	}
	return nil
}
