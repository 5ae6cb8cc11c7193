package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"

	"github.com/fleet-rollout/fleet/starter/client"
	"github.com/fleet-rollout/fleet/workflows"
)

// Every command prints JSON with -o json (or --json), the ones that change
// something included, and only JSON.
func TestJSONOnEveryCommand(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "kafka.yaml")
	require.NoError(t, os.WriteFile(spec, []byte("name: kafka-3-7-1\ntarget:\n  version: 3.7.1\nselector: product=kafka\nstrategy:\n  preset: canary-then-waves\n"), 0o644))
	hotfix := filepath.Join(dir, "hotfix.yaml")
	require.NoError(t, os.WriteFile(hotfix, []byte(hotfixSpec), 0o644))
	tests := []struct {
		args []string
		want string // a key of the JSON printed
	}{
		{[]string{"start", "-f", spec}, `"id": "rollout/kafka-3-7-1"`},
		{[]string{"start", "-f", spec, "--wait"}, `"state": "completed"`},
		{[]string{"pause", "x", "--reason", "r"}, `"action": "pause"`},
		{[]string{"resume", "x"}, `"action": "resume"`},
		{[]string{"abort", "x", "--reason", "r"}, `"action": "abort"`},
		{[]string{"approve", "x", "--phase", "prod"}, `"action": "approve"`},
		{[]string{"pace", "x", "--concurrency", "3"}, `"action": "pacing"`},
		{[]string{"freeze", "--reason", "r", "--until", "2h"}, `"freeze"`},
		{[]string{"unfreeze"}, `"history"`},
		{[]string{"freeze", "status"}, `"history"`},
		{[]string{"list"}, `[]`},
		{[]string{"status", "x"}, `"state": "completed"`},
		{[]string{"watch", "x"}, `"state": "completed"`},
		{[]string{"rollback", "x"}, `"kind": "rollback"`},
		{[]string{"supersede", "x", "-f", hotfix}, `"kind": "supersede"`},
		{[]string{"retry", "x"}, `"kind": "retry"`},
		{[]string{"schedule", "list"}, `[]`},
		{[]string{"keygen", "--out", filepath.Join(dir, "k.pem")}, `"publicKey": "ed25519:`},
		{[]string{"version"}, `"module": "github.com/fleet-rollout/fleet"`},
	}
	for _, tt := range tests {
		for _, flag := range [][]string{{"-o", "json"}, {"--json"}} {
			args := append(append([]string{}, tt.args...), flag...)
			if tt.args[0] == "keygen" && flag[0] == "--json" {
				continue // one key file
			}
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				done := &workflows.RolloutStatus{Name: "x", State: workflows.StateCompleted}
				api := &fakeAPI{statuses: []*workflows.RolloutStatus{done}, source: &workflows.RolloutSource{State: workflows.StateCompleted},
					freeze: workflows.FreezeState{History: []workflows.FreezeInfo{{Actor: "bob", Reason: "r"}}}}
				e, out, _ := testEnv(t, api)
				require.NoError(t, run(context.Background(), args, e))
				assert.True(t, json.Valid(out.Bytes()), "not JSON: %s", out)
				assert.Contains(t, out.String(), tt.want)
			})
		}
	}
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("boom"), exitFailure},
		{usagef("x", "bad"), exitUsage},
		{&exitError{code: 2, err: errors.New("spec.yaml:3: bad")}, exitUsage},
		{&client.RejectedError{Action: "resume", WorkflowID: "rollout/x", Message: "rollout is running"}, exitRejected},
		{fmt.Errorf("wrapped: %w", &client.RejectedError{Action: "pause", Message: "bob holds viewer", Refused: true}), exitRefused},
		{&client.FrozenError{Name: "x"}, exitRefused},
		{&client.NotFoundError{Name: "x"}, exitNotFound},
		{&client.FinishedError{Action: "pause", Name: "x", Status: "Completed"}, exitNotFound},
		{&client.ScheduleNotFoundError{ID: "scheduled/x"}, exitNotFound},
		{&unreachableError{errors.New("connect to Temporal")}, exitUnreachable},
		{fmt.Errorf("list: %w", serviceerror.NewUnavailable("down")), exitUnreachable},
		{fmt.Errorf("pause rollout/x: %w: %w", client.ErrNoAnswer, context.DeadlineExceeded), exitUnreachable},
		{&exitError{code: exitTimeout, err: errors.New("not ended")}, exitTimeout},
		{context.Canceled, exitInterrupted},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, exitCode(tt.err), "%v", tt.err)
	}
}

// --timeout on watch: exit 7 when the rollout has not ended, and the
// rollout is left alone.
func TestWatchTimeout(t *testing.T) {
	running := &workflows.RolloutStatus{Name: "x", State: workflows.StateRunning}
	api := &fakeAPI{statuses: []*workflows.RolloutStatus{running}}
	e, _, _ := testEnv(t, api)
	err := run(context.Background(), []string{"watch", "x", "--timeout", "50ms"}, e)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `rollout "x" has not ended after --timeout 50ms; it goes on (fleet watch x)`)
	assert.Equal(t, exitTimeout, exitCode(err))
	for _, c := range api.calls {
		assert.Equal(t, "status x", c, "watch only reads")
	}
}

// Mistyped commands and flags get suggestions; the CLI's single-dash long
// flags (-reason) still work.
func TestSuggestions(t *testing.T) {
	e, _, _ := testEnv(t, nil)
	err := run(context.Background(), []string{"stauts", "x"}, e)
	var stderr strings.Builder
	assert.Equal(t, exitUsage, report(&stderr, err))
	assert.Contains(t, stderr.String(), "fleet: unknown command \"stauts\"\n\nDid you mean this?\n\tstart\n\tstatus\n")

	e, _, _ = testEnv(t, nil)
	err = run(context.Background(), []string{"pause", "x", "--reasn", "r"}, e)
	stderr.Reset()
	assert.Equal(t, exitUsage, report(&stderr, err))
	assert.Contains(t, stderr.String(), "fleet: pause: flag provided but not defined: -reasn\n\nDid you mean --reason?\n")
	assert.Contains(t, stderr.String(), "Run 'fleet pause -h' for usage.")
}

func TestCompletionAndVersion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		e, out, _ := testEnv(t, nil)
		require.NoError(t, run(context.Background(), []string{"completion", shell}, e))
		assert.Contains(t, out.String(), "fleet", shell)
		assert.Contains(t, out.String(), "__complete", shell)
	}
	e, out, _ := testEnv(t, nil)
	require.NoError(t, run(context.Background(), []string{"__complete", "sta"}, e))
	assert.Contains(t, out.String(), "start\t")
	assert.Contains(t, out.String(), "status\t")
	e, out, _ = testEnv(t, nil)
	require.NoError(t, run(context.Background(), []string{"__complete", "status", "x", "-o", ""}, e))
	assert.Contains(t, out.String(), "json")

	api := &fakeAPI{list: []client.Summary{{ID: "rollout/kafka-3-7-1", Name: "kafka-3-7-1", Status: client.ExecRunning}}}
	e, out, _ = testEnv(t, api)
	require.NoError(t, run(context.Background(), []string{"__complete", "pause", ""}, e))
	assert.Contains(t, out.String(), "kafka-3-7-1\t")
	assert.Equal(t, []string{"list open=true"}, api.calls)
	e, out, _ = testEnv(t, nil)
	require.NoError(t, run(context.Background(), []string{"__complete", "freeze", ""}, e))
	assert.Contains(t, out.String(), "status")

	e, out, _ = testEnv(t, nil)
	require.NoError(t, run(context.Background(), []string{"version"}, e))
	assert.Contains(t, out.String(), "fleet ")
	assert.Contains(t, out.String(), "github.com/fleet-rollout/fleet")
}
