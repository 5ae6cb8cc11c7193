package devserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

const taskQueue = "devserver-test"

// waitForGo blocks until the "go" signal and returns "hello <payload>".
func waitForGo(ctx workflow.Context) (string, error) {
	state := "waiting"
	if err := workflow.SetQueryHandler(ctx, "state", func() (string, error) { return state, nil }); err != nil {
		return "", err
	}
	var name string
	workflow.GetSignalChannel(ctx, "go").Receive(ctx, &name)
	state = "done"
	return "hello " + name, nil
}

func startServer(t *testing.T, dir string, port int) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	begin := time.Now()
	s, err := Start(ctx, Options{
		DataDir:          dir,
		Port:             port,
		SearchAttributes: DefaultSearchAttributes(),
	})
	require.NoError(t, err)
	t.Logf("server started on %s in %v", s.Address(), time.Since(begin))
	return s
}

func dial(t *testing.T, s *Server) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{
		HostPort:  s.Address(),
		Namespace: s.Namespace(),
		Logger:    sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	require.NoError(t, err)
	return c
}

func startWorker(t *testing.T, c client.Client) worker.Worker {
	t.Helper()
	w := worker.New(c, taskQueue, worker.Options{})
	w.RegisterWorkflow(waitForGo)
	require.NoError(t, w.Start())
	return w
}

func TestRestartResumesWorkflow(t *testing.T) {
	dir := t.TempDir()
	port, err := FreePort()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// First life: start a workflow that waits for a signal.
	s := startServer(t, dir, port)
	c := dial(t, s)
	w := startWorker(t, c)

	const wfID = "rollout/devserver-test"
	rolloutName := temporal.NewSearchAttributeKeyKeyword("RolloutName")
	clusters := temporal.NewSearchAttributeKeyKeywordList("Clusters")
	paused := temporal.NewSearchAttributeKeyBool("Paused")
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        wfID,
		TaskQueue: taskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			rolloutName.ValueSet("devserver-test"),
			clusters.ValueSet([]string{"kafka-1", "kafka-2"}),
			paused.ValueSet(false),
		),
	}, waitForGo)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		v, err := c.QueryWorkflow(ctx, wfID, "", "state")
		var state string
		return err == nil && v.Get(&state) == nil && state == "waiting"
	}, 20*time.Second, 50*time.Millisecond, "workflow never ran its first task")

	// Visibility indexes the custom search attributes.
	require.Eventually(t, func() bool {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: `RolloutName = "devserver-test" AND Clusters = "kafka-2" AND Paused = false`,
		})
		return err == nil && len(resp.GetExecutions()) == 1
	}, 20*time.Second, 100*time.Millisecond, "workflow not found by its search attributes")

	w.Stop()
	c.Close()
	begin := time.Now()
	require.NoError(t, s.Stop())
	t.Logf("server stopped in %v", time.Since(begin))
	require.FileExists(t, filepath.Join(dir, DBFileName))

	// Second life on the same data dir: the workflow is still running.
	s = startServer(t, dir, port)
	defer func() { require.NoError(t, s.Stop()) }()
	c = dial(t, s)
	defer c.Close()
	w = startWorker(t, c)
	defer w.Stop()

	desc, err := c.DescribeWorkflowExecution(ctx, wfID, run.GetRunID())
	require.NoError(t, err)
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.GetWorkflowExecutionInfo().GetStatus())

	require.NoError(t, c.SignalWorkflow(ctx, wfID, run.GetRunID(), "go", "fleet"))
	var result string
	require.NoError(t, c.GetWorkflow(ctx, wfID, run.GetRunID()).Get(ctx, &result))
	require.Equal(t, "hello fleet", result)

	// Namespace and search attributes survived and were not re-created.
	ns, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: DefaultNamespace})
	require.NoError(t, err)
	require.Equal(t, DefaultRetention, ns.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration())
	requireSearchAttributes(t, ctx, c, DefaultNamespace, DefaultSearchAttributes())
}

// TestSearchAttributesAddedToExistingNamespace: a namespace created by an
// earlier start gets attributes added later, idempotently.
func TestSearchAttributesAddedToExistingNamespace(t *testing.T) {
	dir := t.TempDir()
	port, err := FreePort()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	s, err := Start(ctx, Options{DataDir: dir, Port: port, Namespace: "fleet"})
	require.NoError(t, err)
	require.NoError(t, s.Stop())

	want := DefaultSearchAttributes()
	want["Owner"] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	for range 2 { // second start: nothing to add
		s, err = Start(ctx, Options{DataDir: dir, Port: port, Namespace: "fleet", SearchAttributes: want})
		require.NoError(t, err)
		c := dial(t, s)
		requireSearchAttributes(t, ctx, c, "fleet", want)
		c.Close()
		require.NoError(t, s.Stop())
	}

	// Same name, another type: a clear error, not a silent skip.
	_, err = Start(ctx, Options{DataDir: dir, Port: port, Namespace: "fleet",
		SearchAttributes: map[string]enumspb.IndexedValueType{"Owner": enumspb.INDEXED_VALUE_TYPE_BOOL}})
	require.ErrorContains(t, err, `"Owner" is registered as`)
}

func requireSearchAttributes(t *testing.T, ctx context.Context, c client.Client, ns string, want map[string]enumspb.IndexedValueType) {
	t.Helper()
	list, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ns})
	require.NoError(t, err)
	for name, typ := range want {
		require.Equal(t, typ, list.GetCustomAttributes()[name], "search attribute %s", name)
	}
}

func TestStartErrors(t *testing.T) {
	_, err := Start(context.Background(), Options{})
	require.ErrorContains(t, err, "DataDir")

	_, err = StartUI(context.Background(), filepath.Join(t.TempDir(), "missing-ui"), "127.0.0.1:7233", 8233, nil)
	require.ErrorContains(t, err, "not found")
	require.ErrorContains(t, err, UIBuildHint)
}

// TestStartUI runs when FLEET_UI_BIN names a binary built from tools/ui
// (building it here would add a minute to every run).
func TestStartUI(t *testing.T) {
	bin := os.Getenv("FLEET_UI_BIN")
	if bin == "" {
		t.Skip("set FLEET_UI_BIN to a binary built with: " + UIBuildHint)
	}
	port, err := FreePort()
	require.NoError(t, err)
	s := startServer(t, t.TempDir(), port)
	defer func() { require.NoError(t, s.Stop()) }()

	uiPort, err := FreePort()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stop, err := StartUI(ctx, bin, s.Address(), uiPort, nil)
	require.NoError(t, err)
	defer stop()

	for _, path := range []string{"/", "/api/v1/namespaces/default"} {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", uiPort, path))
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
	}
	stop()
	_, err = http.Get(fmt.Sprintf("http://127.0.0.1:%d/", uiPort))
	require.Error(t, err, "UI still serving after stop")
	require.False(t, errors.Is(err, context.Canceled))
}
