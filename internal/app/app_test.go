package app_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/fleet-rollout/fleet/internal/app"
	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/sim"
	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/starter/client"
	"github.com/fleet-rollout/fleet/workflows"
)

// stack is the whole system in one process: the in-process Temporal server
// (SQLite), kfake speaking the Kafka protocol, the simulated data plane, the
// Datadog-compatible monitors endpoint read through the official client, and
// the worker with its status bridge.
type stack struct {
	dev    *app.Dev
	client *client.Client
	before map[string]fleet.Cluster
}

func startStack(t *testing.T, clusters int, brokerTime time.Duration, faults []sim.Fault) *stack {
	t.Helper()
	return startStackWith(t, stackOptions{Clusters: clusters, BrokerTime: brokerTime, Faults: faults})
}

// stackOptions configure startStackWith; Configure may change the worker's
// Config (webhook secret, Slack, ...) before the worker starts.
type stackOptions struct {
	Clusters   int
	BrokerTime time.Duration
	Faults     []sim.Fault
	Configure  func(*app.Config)
}

func startStackWith(t *testing.T, o stackOptions) *stack {
	t.Helper()
	clusters, brokerTime, faults := o.Clusters, o.BrokerTime, o.Faults
	if testing.Short() {
		t.Skip("integration test: starts the whole stack")
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	ctx, cancel := context.WithCancel(context.Background())
	dev, err := app.StartDev(ctx, app.DevOptions{
		DataDir:    t.TempDir(),
		Clusters:   clusters,
		Seed:       7,
		BrokerTime: brokerTime,
		Faults:     faults,
	}, log)
	require.NoError(t, err)
	if recordSignalKey != "" {
		dev.Config.SignalKey = recordSignalKey
	}
	if o.Configure != nil {
		o.Configure(&dev.Config)
	}
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, dev.Config, log) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("worker: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("worker did not stop")
		}
		dev.Close()
	})
	c, err := app.Dial(dev.Config, log)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	plans, err := dev.Config.OpenPlanStore()
	require.NoError(t, err)
	// The client reads the worker's plan store, as the CLI does with
	// FLEET_PLAN_STORE: pending clusters of a stored plan are listed.
	s := &stack{dev: dev, client: client.New(c).WithPlans(plans), before: map[string]fleet.Cluster{}}
	for _, cl := range dev.Sim.Clusters() {
		s.before[cl.ID] = cl
	}
	return s
}

func parseSpec(t *testing.T, y string) *spec.Rollout {
	t.Helper()
	r, err := spec.Parse("test.yaml", []byte(y))
	require.NoError(t, err)
	return r
}

// waitFor polls the rollout's status until cond holds.
func (s *stack) waitFor(t *testing.T, id string, what string, cond func(*workflows.RolloutStatus) bool) *workflows.RolloutStatus {
	t.Helper()
	var last *workflows.RolloutStatus
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		st, err := s.client.Status(context.Background(), id)
		if err == nil {
			last = st
			if cond(st) {
				return st
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("rollout %s: timed out waiting for %s; last status: %+v", id, what, last)
	return nil
}

func terminal(st *workflows.RolloutStatus) bool { return st.State.Terminal() }

const kafkaRollout = `
name: it-kafka
target:
  version: 3.7.1
selector: product=kafka
strategy:
  phases:
    - name: canary
      selector: env=internal
      batchSize: 10
      strict: true
      bake: 1s
    - name: everything-else
      selector: env in (non-prod, prod)
      batchSize: 25
      concurrency: 100
monitoring:
  interval: 1s
schedule:
  windows: ignore
`

func TestRolloutAcrossTheSimulatedFleet(t *testing.T) {
	s := startStack(t, 420, 5*time.Millisecond, nil)
	ctx := context.Background()
	id, err := s.client.Start(ctx, parseSpec(t, kafkaRollout), "integration-test")
	require.NoError(t, err)
	require.Equal(t, "rollout/it-kafka", id)

	// Starting the same rollout again while it runs is refused with a reason.
	_, err = s.client.Start(ctx, parseSpec(t, kafkaRollout), "integration-test")
	require.ErrorContains(t, err, "already running")

	st := s.waitFor(t, id, "the end", terminal)
	require.Equal(t, workflows.StateCompleted, st.State, "%+v", st)

	selected := 0
	for _, before := range s.before {
		after, ok := s.dev.Sim.Cluster(before.ID)
		require.True(t, ok)
		if before.Product == fleet.ProductKafka {
			selected++
			require.Equal(t, "3.7.1", after.Version, before.ID)
			require.Equal(t, 1, s.dev.Sim.ApplyStarts(before.ID), "applies of %s", before.ID)
			require.Equal(t, before.Generation+1, after.Generation, before.ID)
		} else {
			require.Equal(t, 0, s.dev.Sim.ApplyStarts(before.ID), "%s is outside the selection", before.ID)
			require.Equal(t, before.Version, after.Version, before.ID)
		}
	}
	require.GreaterOrEqual(t, selected, 200)
	require.Equal(t, selected, st.Total)
	require.Equal(t, selected, st.Counts.Done)
	// Canaries went first: every canary batch precedes every other batch.
	require.Equal(t, "canary", st.Phases[0].Name)
	require.Equal(t, "completed", st.Phases[0].State)
}

const pauseRollout = `
name: it-pause
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

func TestPauseHoldsInFlightClustersAndResumeFinishes(t *testing.T) {
	// Brokers take 500ms: a cluster is in flight for 1.5 to 6 s, long enough
	// for the pause to find it mid-apply even on a loaded machine.
	s := startStack(t, 300, 500*time.Millisecond, nil)
	ctx := context.Background()
	id, err := s.client.Start(ctx, parseSpec(t, pauseRollout), "integration-test")
	require.NoError(t, err)
	s.waitFor(t, id, "clusters in flight", func(st *workflows.RolloutStatus) bool { return st.Counts.InFlight >= 10 })

	res, err := s.client.Pause(ctx, id, workflows.ActionRequest{Actor: "alice", Reason: "checking lag"})
	require.NoError(t, err)
	require.Equal(t, workflows.StatePaused, res.State)
	paused := s.waitFor(t, id, "every in-flight cluster held", func(st *workflows.RolloutStatus) bool {
		return st.Counts.InFlight == 0 && st.Counts.Held > 0
	})
	require.Equal(t, "alice", paused.Paused.Actor)

	// While paused nothing starts and nothing moves.
	starts := func() (n int) {
		for id := range s.before {
			n += s.dev.Sim.ApplyStarts(id)
		}
		return n
	}
	versions := func() map[string]int {
		out := map[string]int{}
		for _, c := range s.dev.Sim.Clusters() {
			out[c.Version]++
		}
		return out
	}
	startsAtPause, versionsAtPause := starts(), versions()
	time.Sleep(2 * time.Second)
	require.Equal(t, startsAtPause, starts(), "no new cluster starts while paused")
	require.Equal(t, versionsAtPause, versions(), "held clusters do not finish while paused")

	_, err = s.client.Pause(ctx, id, workflows.ActionRequest{Actor: "bob", Reason: "me too"})
	require.ErrorContains(t, err, "already paused")

	_, err = s.client.Resume(ctx, id, workflows.ActionRequest{Actor: "alice", Reason: "lag is fine"})
	require.NoError(t, err)
	st := s.waitFor(t, id, "the end", terminal)
	require.Equal(t, workflows.StateCompleted, st.State)
	for _, c := range s.before {
		if c.Product == fleet.ProductKafka && c.Environment == fleet.EnvProd {
			require.Equal(t, 1, s.dev.Sim.ApplyStarts(c.ID), "held clusters continue, not restart: %s", c.ID)
		}
	}
}

const faultyRollout = `
name: it-fault
target:
  version: 3.7.1
selector: product=kafka, env=prod
strategy:
  phases:
    - name: prod
      batchSize: 10
      concurrency: 10
monitoring:
  interval: 1s
schedule:
  windows: ignore
`

func TestMonitorAlertPausesTheRolloutAndAbortStopsIt(t *testing.T) {
	fault := sim.Fault{Version: "3.7.1", Product: fleet.ProductKafka, Monitor: "kafka-under-replicated-partitions", Fraction: 0.05}
	s := startStack(t, 300, 30*time.Millisecond, []sim.Fault{fault})
	ctx := context.Background()
	id, err := s.client.Start(ctx, parseSpec(t, faultyRollout), "integration-test")
	require.NoError(t, err)
	st := s.waitFor(t, id, "an automatic pause", func(st *workflows.RolloutStatus) bool { return st.Paused != nil })
	require.Equal(t, "fleet-safety", st.Paused.Actor)
	require.Contains(t, st.Paused.Reason, "kafka-under-replicated-partitions")
	require.NotNil(t, st.Paused.Incident)
	tripped, ok := s.dev.Sim.Cluster(st.Paused.Incident.ClusterID)
	require.True(t, ok)
	require.True(t, fault.Trips(tripped, "3.7.1"), "the incident names a cluster the fault trips")

	res, err := s.client.Abort(ctx, id, workflows.ActionRequest{Actor: "alice", Reason: "bad build"})
	require.NoError(t, err)
	require.NotEmpty(t, res.Message)
	st = s.waitFor(t, id, "the end", terminal)
	require.Equal(t, workflows.StateAborted, st.State)
	require.Greater(t, st.Counts.Skipped, 0, "clusters after the alert never start")
	for _, ph := range st.Phases {
		for _, b := range ph.Batches {
			for _, c := range b.Clusters {
				if c.State == workflows.ClusterSkipped {
					require.Equal(t, 0, s.dev.Sim.ApplyStarts(c.ID), "skipped cluster %s was touched", c.ID)
				}
			}
		}
	}
}
