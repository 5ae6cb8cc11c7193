package activities

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/identity"
	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/workflows"
)

// A scheduled start (fleet start --at) is signed when the schedule is
// created, days before the rollout starts: its proof verifies at the
// schedule's creation, for a rollout the server started at the signed time
// (up to ScheduleLateness late), and not otherwise.
func TestScheduledStartVerifiesTheProofAtCreation(t *testing.T) {
	dir := t.TempDir()
	pemBytes, pub, err := identity.GenerateKey()
	require.NoError(t, err)
	keyPath := filepath.Join(dir, "alice.pem")
	writeFile(t, keyPath, string(pemBytes))
	key, err := identity.LoadPrivateKey(keyPath)
	require.NoError(t, err)
	path := filepath.Join(dir, "policy.yaml")
	writeFile(t, path, "access:\n  identity: signed\n  people:\n    alice: {keys: [\""+pub+"\"]}\n  roles: {alice: [admin]}\n")
	a := &Activities{PolicyPath: path, Log: zap.NewNop()}
	require.NoError(t, a.PrimePolicy())

	created := time.Date(2026, 12, 4, 16, 0, 0, 0, time.UTC)
	at := created.Add(64 * time.Hour) // Monday 2026-12-07 09:00 in Berlin
	signer := &identity.Signer{Name: "alice", Key: key, Now: func() time.Time { return created }}
	sign := func(in workflows.RolloutInput) workflows.RolloutInput {
		p := signer.Sign("rollout/r", "start", workflows.StartArgs(in), "alice")
		in.Auth = &p
		return in
	}
	r := spec.Rollout{Name: "r", Requester: "alice"}
	scheduled := sign(workflows.RolloutInput{Spec: r, Requester: "alice",
		Scheduled: &workflows.ScheduledStart{Schedule: "scheduled/r", CreatedAt: created, At: at, Zone: "Europe/Berlin"}})
	clusters := []fleet.Cluster{{ID: "lkc-1"}}
	plan := func(in workflows.RolloutInput, started time.Time) error {
		_, _, err := a.protections(workflows.PlanInput{RolloutID: "rollout/r", Spec: in, StartedAt: started}, false, clusters)
		return err
	}

	require.NoError(t, plan(scheduled, at.Add(40*time.Millisecond)), "started by the schedule on time")
	require.NoError(t, plan(scheduled, at.Add(50*time.Minute)), "caught up after an outage")
	require.ErrorContains(t, plan(scheduled, at.Add(2*time.Hour)), "signed for 2026-12-07T08:00:00Z but the rollout started at 2026-12-07T10:00:00Z")
	require.ErrorContains(t, plan(scheduled, created.Add(time.Minute)), "more than 10m0s early")

	// The signed time cannot be moved: the proof covers it.
	moved := scheduled
	s := *moved.Scheduled
	s.At = at.Add(24 * time.Hour)
	moved.Scheduled = &s
	require.ErrorContains(t, plan(moved, s.At), "signature does not verify")

	// Nor dropped: an ordinary start signed days ago has expired.
	plain := sign(workflows.RolloutInput{Spec: r, Requester: "alice"})
	require.ErrorContains(t, plan(plain, at), "request expired")
	require.NoError(t, plan(plain, created.Add(time.Second)))
}
