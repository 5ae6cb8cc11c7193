package workflows

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/fleet-rollout/fleet/internal/identity"
	"github.com/fleet-rollout/fleet/internal/policy"
)

// Identity and trust (docs/architecture.md#identity-and-trust).
//
// A request from a person (pause, resume, abort, approve, pacing, freeze,
// unfreeze, and the start itself) carries an identity.Proof in its Auth
// field when the policy says `identity: signed` (the default of a policy
// with an access section). The validator verifies it against the keys in
// the policy snapshot the workflow carries, with workflow time, so the check
// is deterministic; it refuses unsigned, forged, expired and replayed
// requests (each nonce is remembered for identity.MaxSkew, across
// continue-as-new), and the refusal is recorded in the audit trail. The
// actor recorded is the person behind the proof (aliases resolved), so the
// two-person rule compares people across the CLI and Slack.
//
// Signals between the system's own workflows and from the worker (bridge
// statuses, lane slots, incidents, acks, pacing, freeze state) are sealed
// with a per-rollout key by the worker's interceptors (internal/sigauth);
// the workflow code never sees that key.

// versionIdentity gates the behaviour added with verified identities: a
// rollout refuses person actions until its policy is loaded, and the
// freeze workflow checks roles (and proofs) on its signals too.
const (
	versionIdentity    = "verified-identity"
	versionIdentityMax = 1
)

// ErrReplayed is returned for a proof whose nonce was seen before.
var ErrReplayed = errors.New("replayed request")

// SignedArgs is the byte string a proof covers for a person's request
// besides target, action and actor (see identity.Message): each argument
// as name=value on its own line, values quoted as Go quotes them
// (strconv.Quote), in this order:
//
//	ActionRequest   reason
//	ApproveRequest  planHash, phase, comment
//	PacingRequest   concurrency (an integer), bake (a Go duration, "" when unset), reason
//	FreezeRequest   reason, until (RFC 3339, UTC)
//	SupersedeRequest  by, reason
//	RetryRequest    clusters (comma-separated, as given), reason
//
// A start (RolloutInput) is covered by StartArgs instead.
func SignedArgs(req any) []byte {
	var b strings.Builder
	line := func(name, value string) { b.WriteString(name + "=" + strconv.Quote(value) + "\n") }
	switch q := req.(type) {
	case ActionRequest:
		line("reason", q.Reason)
	case ApproveRequest:
		line("planHash", q.PlanHash)
		line("phase", q.Phase)
		line("comment", q.Comment)
	case PacingRequest:
		line("concurrency", strconv.Itoa(q.Concurrency))
		bake := ""
		if q.Bake != nil {
			bake = q.Bake.String()
		}
		line("bake", bake)
		line("reason", q.Reason)
	case FreezeRequest:
		line("reason", q.Reason)
		line("until", q.Until.UTC().Format(time.RFC3339Nano))
	case SupersedeRequest:
		line("by", q.By)
		line("reason", q.Reason)
	case RetryRequest:
		line("clusters", strings.Join(q.Clusters, ","))
		line("reason", q.Reason)
	default:
		panic(fmt.Sprintf("SignedArgs: unsupported request %T", req))
	}
	return []byte(b.String())
}

// nonces remembers the proofs' nonces until they expire.
type nonces map[string]time.Time

// seen reports whether nonce was used.
func (n nonces) seen(nonce string) bool {
	_, ok := n[nonce]
	return ok
}

// use records nonce as used at now, or returns ErrReplayed when it was used
// before (two updates with one proof, both validated before either ran).
func (n nonces) use(nonce string, now time.Time) error {
	if n.seen(nonce) {
		return fmt.Errorf("%w: nonce %s was used before", ErrReplayed, nonce)
	}
	n.add(nonce, now)
	return nil
}

// add remembers nonce until it can no longer verify, and forgets expired
// ones.
func (n nonces) add(nonce string, now time.Time) {
	for _, k := range workflow.DeterministicKeys(n) {
		if now.After(n[k]) {
			delete(n, k)
		}
	}
	n[nonce] = now.Add(2 * identity.MaxSkew)
}

// verifyRequest checks a request's proof against snap (see
// policy.VerifyRequest) and the nonce against seen; it returns the person
// the request acts for.
func verifyRequest(snap *policy.Snapshot, seen nonces, target, action string, req any, actor string, p *identity.Proof, now time.Time) (string, error) {
	if !snap.SignedIdentity() {
		return snap.Person(actor), nil
	}
	person, err := snap.VerifyRequest(target, action, SignedArgs(req), actor, p, now)
	if err != nil {
		return "", err
	}
	if seen.seen(p.Nonce) {
		return "", fmt.Errorf("%w: nonce %s was used before", ErrReplayed, p.Nonce)
	}
	return person, nil
}

// identify verifies a person's request to this rollout and returns the
// person. Before the policy is loaded (first seconds of planning) it refuses,
// in runs that follow versionIdentity: nothing to verify against yet.
func (r *rollout) identify(action string, req any, actor string, p *identity.Proof) (string, error) {
	if r.vid >= 1 && !r.policyLoaded {
		return "", errors.New("the rollout is still loading its policy; try again in a few seconds")
	}
	person, err := verifyRequest(r.policy, r.nonces, r.id, action, req, actor, p, workflow.Now(r.rootCtx))
	if err != nil {
		refused(r.rootCtx, action, actor, err)
	}
	return person, err
}

// MetricRefused counts person requests refused for their proof, tagged
// with the action.
const MetricRefused = "fleet_requests_refused"

// refused logs and counts a request whose proof did not verify. An update
// refused by its validator leaves no trace in history (that is what keeps
// forged requests from filling it): the worker's log and this metric are
// its record; a refused signal is also in the audit trail.
func refused(ctx workflow.Context, action, actor string, err error) {
	workflow.GetLogger(ctx).Warn("request refused", "action", action, "actor", actor, "error", err)
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"action": action}).Counter(MetricRefused).Inc(1)
}

// accept records the proof's nonce (the request is being applied) and
// returns the actor to record: the person behind the proof or the name. A
// nonce used meanwhile (two updates with one proof, validated before either
// ran) is refused.
func (r *rollout) accept(actor string, p *identity.Proof) (string, error) {
	if p != nil && r.policy.SignedIdentity() {
		if err := r.nonces.use(p.Nonce, workflow.Now(r.rootCtx)); err != nil {
			return "", err
		}
		return r.policy.Person(p.Actor), nil
	}
	return r.policy.Person(actor), nil
}

// RefusedErrorType is the ApplicationError type a caller sees for a
// request the policy refused (an unsigned, forged, expired or replayed
// proof, a role too low, the two-person rule) or a fleet freeze (resume). Callers tell it from other
// rejections by this type (the fleet CLI exits 5 on it). It is the name of
// the Go type PolicyRefused, which Temporal's failure converter records.
const RefusedErrorType = "PolicyRefused"

// PolicyRefused wraps the error of a request the policy refused; its
// message is the refusal's and errors.Is sees through it.
type PolicyRefused struct{ Err error }

func (e *PolicyRefused) Error() string { return e.Err.Error() }
func (e *PolicyRefused) Unwrap() error { return e.Err }

// ErrFleetFrozen is matched (errors.Is) by a resume refused because the
// fleet is frozen; refusal marks it PolicyRefused too.
var ErrFleetFrozen = errors.New("the fleet is frozen")

// refusal marks err as PolicyRefused when the policy or a fleet freeze
// refused the request;
// other errors pass unchanged. Validators leave no history, and an
// update's failure is not compared on replay: replay-safe.
func refusal(err error) error {
	if err == nil {
		return nil
	}
	var already *PolicyRefused
	if errors.As(err, &already) {
		return err
	}
	for _, target := range []error{policy.ErrDenied, policy.ErrSelfApproval, policy.ErrUnsigned,
		policy.ErrUnknownSigner, policy.ErrForgedActor, identity.ErrBadSignature, identity.ErrExpired, ErrReplayed, ErrFleetFrozen} {
		if errors.Is(err, target) {
			return &PolicyRefused{Err: err}
		}
	}
	return err
}
