package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/fleet-rollout/fleet/internal/app"
	"github.com/fleet-rollout/fleet/starter/client"
	"github.com/fleet-rollout/fleet/workflows"
)

const terminateRollout = `
name: it-terminate
target:
  version: 3.7.1
selector: product=kafka, env=prod
strategy:
  phases:
    - name: prod
      batchSize: 10
      concurrency: 20
monitoring:
  interval: 1s
schedule:
  windows: ignore
`

// TestTerminatedRolloutSaysSo terminates a running rollout's workflow from
// outside (as an operator with the temporal CLI would) and checks that the
// client's Status, Snapshot and List, and the fleet CLI's status --json,
// say it was terminated and why, and show nothing as live.
func TestTerminatedRolloutSaysSo(t *testing.T) {
	s := startStack(t, 300, 500*time.Millisecond, nil)
	ctx := context.Background()
	id, err := s.client.Start(ctx, parseSpec(t, terminateRollout), "integration-test")
	require.NoError(t, err)
	s.waitFor(t, id, "clusters in flight", func(st *workflows.RolloutStatus) bool { return st.Counts.InFlight >= 5 })

	sdk, err := app.Dial(s.dev.Config, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	require.NoError(t, err)
	defer sdk.Close()
	const reason = "stuck behind a broken broker (issue 12 test)"
	require.NoError(t, sdk.TerminateWorkflow(ctx, id, "", reason))

	// Status: the state says terminated; the last audit entry is the close.
	st, err := s.client.Status(ctx, id)
	require.NoError(t, err)
	require.Equal(t, workflows.RolloutState("terminated"), st.State, "%+v", st)
	require.Empty(t, st.WaitingFor)
	last := st.Audit[len(st.Audit)-1]
	require.Equal(t, "terminated", last.Action)
	require.Equal(t, reason, last.Reason)

	// Snapshot: the execution, the server's reason and identity, stale counts.
	snap, err := s.client.Snapshot(ctx, id)
	require.NoError(t, err)
	require.Equal(t, client.ExecTerminated, snap.Execution.Status)
	require.Equal(t, reason, snap.Execution.Reason)
	require.NotEmpty(t, snap.Execution.Identity)
	require.NotNil(t, snap.Execution.CloseTime)
	require.True(t, snap.Stale, "the counts are not live")
	require.True(t, snap.Ended())

	// List (running and recently closed) keeps it, with its status and reason.
	var found *client.Summary
	deadline := time.Now().Add(30 * time.Second)
	for found == nil && time.Now().Before(deadline) {
		list, err := s.client.List(ctx, true)
		require.NoError(t, err)
		for i := range list {
			if list[i].ID == id && list[i].Status == client.ExecTerminated {
				found = &list[i]
			}
		}
		if found == nil {
			time.Sleep(200 * time.Millisecond)
		}
	}
	require.NotNil(t, found, "fleet list shows the terminated rollout")
	require.Equal(t, reason, found.Reason)
	require.NotNil(t, found.CloseTime)

	// The CLI: fleet status --json.
	bin := filepath.Join(t.TempDir(), "fleet")
	build := exec.Command("go", "build", "-o", bin, "../../starter")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())
	cmd := exec.Command(bin, "status", "it-terminate", "--json")
	cmd.Env = append(os.Environ(), "TEMPORAL_ADDRESS="+s.dev.Config.TemporalAddress, "TEMPORAL_NAMESPACE="+s.dev.Config.Namespace,
		"TEMPORAL_API_KEY=", "TEMPORAL_TLS=")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	require.NoError(t, cmd.Run(), errOut.String())
	var got struct {
		State     string           `json:"state"`
		Stale     bool             `json:"stale"`
		Execution client.Execution `json:"execution"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &got), out.String())
	require.Equal(t, "terminated", got.State)
	require.True(t, got.Stale)
	require.Equal(t, client.ExecTerminated, got.Execution.Status)
	require.Equal(t, reason, got.Execution.Reason)

	// fleet watch stops at once, non-zero, saying why.
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd = exec.CommandContext(wctx, bin, "watch", "it-terminate")
	cmd.Env = append(os.Environ(), "TEMPORAL_ADDRESS="+s.dev.Config.TemporalAddress, "TEMPORAL_NAMESPACE="+s.dev.Config.Namespace,
		"TEMPORAL_API_KEY=", "TEMPORAL_TLS=")
	out.Reset()
	errOut.Reset()
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "stdout: %s\nstderr: %s", out.String(), errOut.String())
	require.Equal(t, 1, ee.ExitCode())
	require.Contains(t, errOut.String(), "its workflow was terminated")
	require.Contains(t, errOut.String(), reason)
}
