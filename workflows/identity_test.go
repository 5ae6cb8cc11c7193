package workflows_test

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/fleet-rollout/fleet/internal/identity"
	"github.com/fleet-rollout/fleet/internal/policy"
	"github.com/fleet-rollout/fleet/workflows"
)

// keyring holds test keys and signs requests at the test clock's time.
type keyring struct {
	t    *testing.T
	env  *testsuite.TestWorkflowEnvironment
	keys map[string]ed25519.PrivateKey
	pubs map[string]string
}

func newKeyring(t *testing.T, env *testsuite.TestWorkflowEnvironment, names ...string) *keyring {
	k := &keyring{t: t, env: env, keys: map[string]ed25519.PrivateKey{}, pubs: map[string]string{}}
	for _, n := range names {
		pemBytes, pub, err := identity.GenerateKey()
		require.NoError(t, err)
		key, err := identity.ParsePrivateKey(pemBytes)
		require.NoError(t, err)
		k.keys[n], k.pubs[n] = key, pub
	}
	return k
}

// sign signs req to target as actor with signer's key, skew away from now.
func (k *keyring) sign(signer, actor, target, action string, req any, skew time.Duration) *identity.Proof {
	s := identity.Signer{Name: signer, Key: k.keys[signer], Now: func() time.Time { return k.env.Now().Add(skew) }}
	p := s.Sign(target, action, workflows.SignedArgs(req), actor)
	return &p
}

func signedPolicy(k *keyring) *policy.Snapshot {
	return &policy.Snapshot{Access: &policy.Access{
		Identity: policy.IdentitySigned,
		People: []policy.Person{
			{Name: "alice", Keys: []string{k.pubs["alice"]}},
			{Name: "bob", Keys: []string{k.pubs["bob"]}, Aliases: []string{"slack:UBOB"}},
			{Name: "carol", Keys: []string{k.pubs["carol"]}},
			{Name: "erin", Keys: []string{k.pubs["erin"]}, Aliases: []string{"slack:UERIN"}},
			{Name: "vic", Keys: []string{k.pubs["vic"]}},
		},
		Services: map[string]policy.Service{"fleet-worker": {Keys: []string{k.pubs["fleet-worker"]}, Vouch: []string{"slack:"}}},
		Roles: map[string][]policy.Role{
			"alice": {policy.RoleOperator}, "bob": {policy.RoleApprover}, "carol": {policy.RoleAdmin},
			"erin": {policy.RoleOperator, policy.RoleApprover}, "vic": {policy.RoleViewer},
		},
	}}
}

// TestSignedRequestsToARollout: with identity: signed, unsigned, forged,
// expired and replayed requests are refused (updates say why; signals are
// recorded as rejected) and change nothing; the two-person rule holds for
// one person acting from the CLI and from Slack.
func TestSignedRequestsToARollout(t *testing.T) {
	h := newRolloutHarness(t, 3, gatedPlan())
	k := newKeyring(t, h.env, "alice", "bob", "carol", "erin", "vic", "mallory", "fleet-worker")
	h.policy = signedPolicy(k)
	h.plane.run(h.env, time.Second, 30*time.Minute)
	in := rolloutInput()
	in.Requester = "erin"
	const id = "rollout/test"
	out := map[string]*updateOutcome{}
	var midState workflows.RolloutState
	var pauseProof *identity.Proof
	h.env.RegisterDelayedCallback(func() {
		pause := workflows.ActionRequest{Actor: "alice", Reason: "look"}
		out["unsigned"] = h.update(workflows.Pause, pause)

		forged := workflows.ApproveRequest{Actor: "bob", Phase: "prod"}
		forged.Auth = k.sign("alice", "alice", id, workflows.Approve, forged, 0)
		out["forged-actor"] = h.update(workflows.Approve, forged)

		stolenName := workflows.ActionRequest{Actor: "alice", Reason: "look"}
		s := identity.Signer{Name: "alice", Key: k.keys["mallory"], Now: h.env.Now}
		p := s.Sign(id, workflows.Pause, workflows.SignedArgs(stolenName), "")
		stolenName.Auth = &p
		out["wrong-key"] = h.update(workflows.Pause, stolenName)

		expired := workflows.ActionRequest{Actor: "alice", Reason: "look"}
		expired.Auth = k.sign("alice", "alice", id, workflows.Pause, expired, -identity.MaxSkew-time.Minute)
		out["expired"] = h.update(workflows.Pause, expired)

		tampered := workflows.ActionRequest{Actor: "alice", Reason: "look"}
		tampered.Auth = k.sign("alice", "alice", id, workflows.Pause, tampered, 0)
		tampered.Reason = "something else"
		out["tampered"] = h.update(workflows.Pause, tampered)

		viewer := workflows.ActionRequest{Actor: "vic", Reason: "look"}
		viewer.Auth = k.sign("vic", "vic", id, workflows.Pause, viewer, 0)
		out["viewer"] = h.update(workflows.Pause, viewer)

		// erin started it; erin's Slack user is erin.
		self := workflows.ApproveRequest{Actor: "slack:UERIN", Phase: "prod", Comment: "via Slack"}
		self.Auth = k.sign("fleet-worker", "slack:UERIN", id, workflows.Approve, self, 0)
		out["self-via-slack"] = h.update(workflows.Approve, self)

		// An unsigned signal (the Web UI) is recorded and ignored.
		h.env.SignalWorkflow(workflows.Pause, workflows.ActionRequest{Actor: "carol", Reason: "web ui"})
	}, 2*time.Minute)
	h.env.RegisterDelayedCallback(func() {
		midState = h.status(t).State
		pause := workflows.ActionRequest{Actor: "alice", Reason: "look"}
		pause.Auth = k.sign("alice", "alice", id, workflows.Pause, pause, 0)
		pauseProof = pause.Auth
		out["pause"] = h.update(workflows.Pause, pause)
	}, 150*time.Second)
	h.env.RegisterDelayedCallback(func() {
		resume := workflows.ActionRequest{Actor: "alice", Reason: "fine"}
		resume.Auth = k.sign("alice", "alice", id, workflows.Resume, resume, 0)
		out["resume"] = h.update(workflows.Resume, resume)
	}, 160*time.Second)
	h.env.RegisterDelayedCallback(func() {
		replay := workflows.ActionRequest{Actor: "alice", Reason: "look", Auth: pauseProof}
		out["replayed"] = h.update(workflows.Pause, replay)
	}, 170*time.Second)
	h.env.RegisterDelayedCallback(func() {
		ok := workflows.ApproveRequest{Actor: "slack:UBOB", Phase: "prod", Comment: "via Slack"}
		ok.Auth = k.sign("fleet-worker", "slack:UBOB", id, workflows.Approve, ok, 0)
		out["bob-via-slack"] = h.update(workflows.Approve, ok)
	}, 3*time.Minute)
	h.env.ExecuteWorkflow(workflows.WorkflowRollout, in)
	require.NoError(t, h.env.GetWorkflowError())

	require.ErrorIs(t, out["unsigned"].err, policy.ErrUnsigned)
	require.ErrorIs(t, out["forged-actor"].err, policy.ErrForgedActor)
	require.ErrorIs(t, out["wrong-key"].err, identity.ErrBadSignature)
	require.ErrorIs(t, out["expired"].err, identity.ErrExpired)
	require.ErrorIs(t, out["tampered"].err, identity.ErrBadSignature)
	require.ErrorContains(t, out["viewer"].err, "vic holds viewer")
	require.ErrorIs(t, out["self-via-slack"].err, policy.ErrSelfApproval)
	require.NotEqual(t, workflows.StatePaused, midState, "nothing refused paused the rollout")
	require.NoError(t, out["pause"].err)
	require.NoError(t, out["resume"].err)
	require.ErrorIs(t, out["replayed"].err, workflows.ErrReplayed)
	require.NoError(t, out["bob-via-slack"].err)

	var st workflows.RolloutStatus
	require.NoError(t, h.env.GetWorkflowResult(&st))
	require.Equal(t, workflows.StateCompleted, st.State)
	var actions []string
	for _, a := range st.Audit {
		actions = append(actions, a.Actor+" "+a.Action+" "+a.Outcome)
	}
	require.Contains(t, actions, "alice pause applied")
	require.Contains(t, actions, "alice resume applied")
	require.Contains(t, actions, "bob approve applied", "the Slack user is recorded as the person")
	rejected := false
	for _, a := range st.Audit {
		if a.Action == "pause (signal)" && a.Actor == "carol" {
			rejected = true
			require.Contains(t, a.Outcome, "rejected: unsigned request")
		}
	}
	require.True(t, rejected, "the unsigned signal is in the audit trail: %v", actions)
}

// TestFreezeSignalsCheckRolesAndProofs: a viewer's unfreeze signal, an
// unsigned freeze signal and a forged one are rejected and recorded; an
// admin's signed update freezes.
func TestFreezeSignalsCheckRolesAndProofs(t *testing.T) {
	h := newFreezeHarness(t)
	k := newKeyring(t, h.env, "alice", "bob", "carol", "erin", "vic", "fleet-worker")
	h.policy = signedPolicy(k)
	var frozen *freezeOutcome
	h.at(time.Minute, func() {
		req := freezeReq("carol", "holiday", freezeT0.Add(48*time.Hour))
		req.Auth = k.sign("carol", "carol", workflows.FreezeID, workflows.FreezeUpdate, req, 0)
		frozen = h.update(workflows.FreezeUpdate, req)
	})
	h.at(2*time.Minute, func() {
		un := workflows.ActionRequest{Actor: "vic", Reason: "i want to deploy"}
		un.Auth = k.sign("vic", "vic", workflows.FreezeID, workflows.UnfreezeUpdate, un, 0)
		h.env.SignalWorkflow(workflows.UnfreezeUpdate, un)
		h.env.SignalWorkflow(workflows.UnfreezeUpdate, workflows.ActionRequest{Actor: "carol", Reason: "unsigned"})
		forged := workflows.ActionRequest{Actor: "carol", Reason: "forged"}
		forged.Auth = k.sign("vic", "vic", workflows.FreezeID, workflows.UnfreezeUpdate, forged, 0)
		h.env.SignalWorkflow(workflows.UnfreezeUpdate, forged)
	})
	h.at(3*time.Minute, func() {
		st := h.status()
		require.NotNil(t, st.Freeze, "the freeze stands")
		require.Equal(t, "carol", st.Freeze.Actor)
		var got []string
		for _, a := range h.audit() {
			got = append(got, a.Actor+"|"+a.Outcome)
		}
		require.Len(t, got, 4, "%v", got)
		require.Contains(t, got[1], "vic|rejected: vic holds viewer")
		require.Contains(t, got[2], "carol|rejected: unsigned request")
		require.Contains(t, got[3], "carol|rejected: forged actor")
	})
	h.run(workflows.FreezeInput{}, time.Hour)
	require.NoError(t, frozen.err)
}
