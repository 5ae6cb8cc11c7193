package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/app"
	"github.com/fleet-rollout/fleet/internal/identity"
	"github.com/fleet-rollout/fleet/starter/client"
	"github.com/fleet-rollout/fleet/workflows"
)

// fleet start --at on the real stack, with a policy that wants signed
// requests: the schedule starts the rollout at its time (its proof,
// signed when the schedule was created, verifies), the rollout completes,
// schedule list shows the schedule and what it did, cancel deletes it.
func TestScheduledStartOnTheStack(t *testing.T) {
	dir := t.TempDir()
	pemBytes, pub, err := identity.GenerateKey()
	require.NoError(t, err)
	keyFile := filepath.Join(dir, "alice.pem")
	require.NoError(t, os.WriteFile(keyFile, pemBytes, 0o600))
	policyFile := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policyFile, []byte(`access:
  identity: signed
  people:
    alice: {keys: ["`+pub+`"]}
  roles: {alice: [admin]}
`), 0o644))
	s := startCLIStack(t, 60, 5*time.Millisecond, nil, func(c *app.Config) { c.PolicyPath = policyFile })
	s.key = keyFile

	// Whole seconds, a few ahead, in a named zone.
	at := time.Now().Add(6 * time.Second).Truncate(time.Second).In(mustZone(t, "Europe/Berlin"))
	spec := writeFile(t, "sched-a.yaml", recoverySpec("sched-a", "kafka", "3.7.1", "env=non-prod", ""))
	out := s.must(t, "start", "-f", spec, "--at", at.Format("2006-01-02T15:04:05")+" Europe/Berlin", "-o", "json")
	var created client.Scheduled
	require.NoError(t, json.Unmarshal([]byte(out), &created))
	assert.Equal(t, "scheduled/sched-a", created.ID)
	assert.True(t, created.At.Equal(at), "%s != %s", created.At, at)

	// Nothing runs before the time.
	_, err = s.api.Status(context.Background(), "sched-a")
	require.ErrorIs(t, err, client.ErrNotFound)

	out = s.must(t, "schedule", "list")
	assert.Contains(t, out, "sched-a")
	assert.Contains(t, out, "waiting")
	_, _, err = s.fleet(t, "start", "-f", spec, "--at", at.Add(time.Hour).Format("2006-01-02T15:04:05")+" Europe/Berlin")
	require.ErrorContains(t, err, "schedule scheduled/sched-a already exists")

	st := s.waitEnded(t, "sched-a")
	require.Equal(t, workflows.StateCompleted, st.State, "%+v", st)
	require.Equal(t, "alice", st.Requester)
	assert.False(t, st.StartedAt.Before(at), "started at %s, scheduled for %s", st.StartedAt, at)

	var listed []client.Scheduled
	require.NoError(t, json.Unmarshal([]byte(s.must(t, "schedule", "list", "--json")), &listed))
	require.Len(t, listed, 1)
	assert.Equal(t, client.ScheduleStarted, listed[0].State)
	assert.Equal(t, "alice", listed[0].Requester)

	out = s.must(t, "schedule", "cancel", "sched-a", "--reason", "done with it")
	assert.Contains(t, out, "Canceled schedule scheduled/sched-a")
	assert.Contains(t, out, "deleted by alice")
	assert.Contains(t, out, "done with it")
	_, _, err = s.fleet(t, "schedule", "cancel", "sched-a")
	require.Error(t, err)
	assert.Equal(t, exitNotFound, exitCode(err))
	require.Eventually(t, func() bool {
		list, err := s.api.Schedules(context.Background())
		return err == nil && len(list) == 0
	}, 30*time.Second, 200*time.Millisecond, "the list forgets the cancelled schedule")

	// Exit codes and -o json of actions on the same stack: a rollout
	// waiting at its gate, an unsigned pause refused by the policy (5), a
	// signed one applied (its ActionResult as JSON), resuming twice
	// rejected by the rollout (3), a rollout that does not exist (4).
	s.must(t, "start", "-f", writeFile(t, "sched-b.yaml", recoverySpec("sched-b", "connect", "7.7.0", "env in (non-prod, prod)", gated)))
	s.waitFor(t, "sched-b", "its gate", func(st *workflows.RolloutStatus) bool { return st.State == workflows.StateAwaitingApproval })
	s.key = ""
	_, _, err = s.fleet(t, "pause", "sched-b", "--reason", "unsigned")
	require.ErrorIs(t, err, client.ErrRefused)
	assert.Equal(t, exitRefused, exitCode(err))
	s.key = keyFile
	var res actionOutput
	require.NoError(t, json.Unmarshal([]byte(s.must(t, "pause", "sched-b", "--reason", "signed", "-o", "json")), &res))
	assert.Contains(t, res.Message, "paused")
	assert.Equal(t, actionOutput{ID: "rollout/sched-b", Action: "pause", ActionResult: workflows.ActionResult{State: workflows.StateAwaitingApproval, Message: res.Message}}, res)
	s.must(t, "resume", "sched-b")
	_, _, err = s.fleet(t, "resume", "sched-b")
	assert.Equal(t, exitRejected, exitCode(err), "%v", err)
	_, _, err = s.fleet(t, "pause", "ghost", "--reason", "r")
	assert.Equal(t, exitNotFound, exitCode(err), "%v", err)
	s.must(t, "abort", "sched-b", "--reason", "done")
	s.waitEnded(t, "sched-b")

	// A schedule that fires during a fleet freeze starts nothing: its
	// rollout waits paused, no cluster changes, until the freeze is lifted
	// and it is resumed.
	k, err := identity.LoadPrivateKey(keyFile)
	require.NoError(t, err)
	alice := s.api.WithSigner(&identity.Signer{Name: "alice", Key: k})
	// Through the client: the CLI's clock is fixed in these tests.
	_, err = alice.Freeze(context.Background(), workflows.FreezeRequest{Actor: "alice", Reason: "change freeze", Until: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	at = time.Now().Add(4 * time.Second).Truncate(time.Second).UTC()
	s.must(t, "start", "-f", writeFile(t, "sched-c.yaml", recoverySpec("sched-c", "kafka", "3.7.2", "env=non-prod", "")),
		"--at", at.Format(time.RFC3339))
	st = s.waitFor(t, "sched-c", "paused by the freeze", func(st *workflows.RolloutStatus) bool {
		return st.Paused != nil && st.Total > 0
	})
	assert.Contains(t, st.Paused.Reason, "change freeze")
	time.Sleep(2 * time.Second)
	st, err = s.api.Status(context.Background(), "sched-c")
	require.NoError(t, err)
	assert.Equal(t, workflows.Counts{Pending: st.Total}, st.Counts, "nothing applied while frozen")
	_, _, err = s.fleet(t, "resume", "sched-c")
	assert.Equal(t, exitRefused, exitCode(err), "resume during a freeze: %v", err)
	s.must(t, "unfreeze")
	s.must(t, "abort", "sched-c", "--reason", "not needed")
	s.must(t, "schedule", "cancel", "sched-c")
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	return loc
}
