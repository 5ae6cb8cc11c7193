package workflows_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/fleet-rollout/fleet/internal/sigauth"
	"github.com/fleet-rollout/fleet/workflows"
)

// historiesDir holds recorded workflow histories, one directory per release
// (e.g. v1-sdk1.38), each file named <scenario>__<workflow ID, / as _>.json.
//
// To record a release's histories (the stack runs in process; a few minutes):
//
//	FLEET_RECORD_HISTORIES=$PWD/workflows/testdata/histories/<release> go test -count=1 -run TestRecordHistories -timeout 20m ./internal/app/
//
// Record from the code that runs in production (a checkout of the release),
// not from the change under test. The recorder writes the stacks' signal
// key (signal.key, a test key) next to the histories: releases with sealed
// internal signals replay with the worker's interceptor and that key. Keep the histories of every release whose
// workflows may still be running when the new code is deployed.
const historiesDir = "testdata/histories"

// TestReplay replays every recorded history against the current workflow
// code: a change that would break a running workflow (a command added,
// removed or reordered, a different activity, timer or child) fails with a
// nondeterminism error naming the file. Local activities (Publish) need no
// registration: the replayer takes their results from the recorded markers.
func TestReplay(t *testing.T) {
	var files []string
	err := filepath.WalkDir(historiesDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == historiesDir && errors.Is(err, fs.ErrNotExist) {
				return nil // reported below
			}
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".json") {
			files = append(files, path)
		}
		return nil
	})
	require.NoError(t, err)
	require.NotEmpty(t, files, "no recorded histories under %s: record them (see historiesDir)", historiesDir)

	for _, path := range files {
		name, err := filepath.Rel(historiesDir, path)
		require.NoError(t, err)
		t.Run(filepath.ToSlash(name), func(t *testing.T) {
			id, err := historyWorkflowID(path)
			require.NoError(t, err)
			f, err := os.Open(path)
			require.NoError(t, err)
			defer f.Close()
			hist, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
			require.NoError(t, err)

			// Releases with sealed internal signals keep the recording's
			// signal key next to their histories: the replayer seals and
			// opens signals with it, as the worker did.
			var opts worker.WorkflowReplayerOptions
			if b, err := os.ReadFile(filepath.Join(filepath.Dir(path), "signal.key")); err == nil {
				keys, err := sigauth.NewKeys(strings.TrimSpace(string(b)))
				require.NoError(t, err)
				opts.Interceptors = []interceptor.WorkerInterceptor{sigauth.New(keys)}
			}
			replayer, err := worker.NewWorkflowReplayerWithOptions(opts)
			require.NoError(t, err)
			workflows.Register(replayer)
			// The workflow ID matters: the rollout derives its batches'
			// workflow IDs (its children and the targets of its signals)
			// from its own.
			err = replayer.ReplayWorkflowHistoryWithOptions(replayLogger{t}, hist,
				worker.ReplayWorkflowHistoryOptions{OriginalExecution: workflow.Execution{ID: id}})
			require.NoError(t, err, "replay %s (workflow %s, %d events)", path, id, len(hist.Events))
		})
	}
}

// historyWorkflowID reads the workflow ID from a history file's name.
func historyWorkflowID(path string) (string, error) {
	base := strings.TrimSuffix(filepath.Base(path), ".json")
	_, id, ok := strings.Cut(base, "__")
	if !ok || id == "" {
		return "", fmt.Errorf("%s: want <scenario>__<workflow ID with / as _>.json", path)
	}
	return strings.ReplaceAll(id, "_", "/"), nil
}

// replayLogger sends the replayer's warnings and errors to the test log,
// without stack traces (the failure names the event and the command).
type replayLogger struct{ t *testing.T }

func (l replayLogger) Debug(string, ...any) {}
func (l replayLogger) Info(string, ...any)  {}
func (l replayLogger) Warn(msg string, kv ...any) {
	l.t.Helper()
	l.log("WARN", msg, kv)
}
func (l replayLogger) Error(msg string, kv ...any) {
	l.t.Helper()
	l.log("ERROR", msg, kv)
}

func (l replayLogger) log(level, msg string, kv []any) {
	l.t.Helper()
	out := []any{level, msg}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] != "StackTrace" {
			out = append(out, fmt.Sprintf("%v=%v", kv[i], kv[i+1]))
		}
	}
	l.t.Log(out...)
}
