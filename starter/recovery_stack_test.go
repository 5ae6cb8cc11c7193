package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/fleet-rollout/fleet/internal/app"
	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/sim"
	"github.com/fleet-rollout/fleet/starter/client"
	"github.com/fleet-rollout/fleet/workflows"
)

// cliStack is the whole system in one process (the in-process Temporal
// server, Kafka, the simulated data plane and the worker, as internal/app's
// tests start it), driven through the CLI.
type cliStack struct {
	dev    *app.Dev
	api    *client.Client
	before map[string]fleet.Cluster
	// key is FLEET_KEY for the CLI ("" for none).
	key string
}

func startCLIStack(t *testing.T, clusters int, brokerTime time.Duration, faults []sim.Fault, configure ...func(*app.Config)) *cliStack {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: starts the whole stack")
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	ctx, cancel := context.WithCancel(context.Background())
	dev, err := app.StartDev(ctx, app.DevOptions{
		DataDir: t.TempDir(), Clusters: clusters, Seed: 7, BrokerTime: brokerTime, Faults: faults,
	}, log)
	require.NoError(t, err)
	for _, f := range configure {
		f(&dev.Config)
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
	// The CLI reads the worker's plan store (FLEET_PLAN_STORE).
	s := &cliStack{dev: dev, api: client.New(c).WithPlans(plans), before: map[string]fleet.Cluster{}}
	for _, cl := range dev.Sim.Clusters() {
		s.before[cl.ID] = cl
	}
	return s
}

// fleet runs the CLI against the stack (FLEET_USER alice, the stack's
// inventory); it returns stdout, stderr and the error.
func (s *cliStack) fleet(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	e, out, errOut := testEnv(t, s.api)
	base := e.getenv
	e.getenv = func(k string) string {
		switch k {
		case "FLEET_INVENTORY":
			return s.dev.Config.Inventory
		case "FLEET_KEY":
			return s.key
		}
		return base(k)
	}
	e.loadInventory = loadInventory
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := run(ctx, args, e)
	t.Logf("fleet %s\n%s%s", strings.Join(args, " "), out.String(), errOut.String())
	return out.String(), errOut.String(), err
}

// must runs the CLI and fails the test on an error.
func (s *cliStack) must(t *testing.T, args ...string) string {
	t.Helper()
	out, _, err := s.fleet(t, args...)
	require.NoError(t, err, "fleet %s", strings.Join(args, " "))
	return out
}

func (s *cliStack) waitFor(t *testing.T, id, what string, cond func(*workflows.RolloutStatus) bool) *workflows.RolloutStatus {
	t.Helper()
	var last *workflows.RolloutStatus
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		st, err := s.api.Status(context.Background(), id)
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

func (s *cliStack) waitEnded(t *testing.T, id string) *workflows.RolloutStatus {
	t.Helper()
	return s.waitFor(t, id, "the end", func(st *workflows.RolloutStatus) bool { return st.State.Terminal() })
}

// clustersIn lists the rollout's clusters in the given state.
func clustersIn(st *workflows.RolloutStatus, state workflows.ClusterState) map[string]bool {
	out := map[string]bool{}
	for _, ph := range st.Phases {
		for _, b := range ph.Batches {
			for _, c := range b.Clusters {
				if c.State == state {
					out[c.ID] = true
				}
			}
		}
	}
	return out
}

// audited reports whether the rollout's audit trail has the entry, applied.
func audited(st *workflows.RolloutStatus, actor, action, reason string) bool {
	for _, a := range st.Audit {
		if a.Actor == actor && a.Action == action && a.Reason == reason && strings.HasPrefix(a.Outcome, "applied") {
			return true
		}
	}
	return false
}

func recoverySpec(name, product, version, selector, extra string) string {
	return fmt.Sprintf(`name: %s
target:
  version: %s
selector: product=%s, %s
errorBudget: {max: "100%%"}
strategy:
  phases:
    - name: first
      selector: env=non-prod
      batchSize: 4
      concurrency: 4
%smonitoring:
  interval: 1s
schedule:
  windows: ignore
`, name, version, product, selector, extra)
}

// A gated second phase keeps a rollout running once its first is done.
const gated = `    - name: second
      selector: env=prod
      batchSize: 4
      concurrency: 4
      requireApproval: true
`

func TestRecoveryCommandsOnTheStack(t *testing.T) {
	fault := sim.Fault{Version: "3.7.1", Product: fleet.ProductKafka, FailApply: true, Fraction: 0.3}
	s := startCLIStack(t, 200, 5*time.Millisecond, []sim.Fault{fault})
	specs := map[string]string{
		// Ends with failures: rolled back.
		"rc-a": recoverySpec("rc-a", "kafka", "3.7.1", "env=non-prod", ""),
		// Ends with failures: retried.
		"rc-b": recoverySpec("rc-b", "kafka", "3.7.1", "env in (non-prod, prod)", `    - name: second
      selector: env=prod
      batchSize: 8
      concurrency: 8
`),
		// Waits at its gate: refused a rollback, then superseded.
		"rc-c": recoverySpec("rc-c", "connect", "7.7.0", "env in (non-prod, prod)", gated),
		// Waits at its gate: rolled back with --abort.
		"rc-d": recoverySpec("rc-d", "schema-registry", "7.7.0", "env in (non-prod, prod)", gated),
	}
	// rc-a and rc-b would share kafka non-prod clusters: rc-b starts after rc-a.
	for _, name := range []string{"rc-a", "rc-c", "rc-d"} {
		out := s.must(t, "start", "-f", writeFile(t, name+".yaml", specs[name]))
		require.Contains(t, out, fmt.Sprintf("Started rollout %q", name))
	}

	t.Run("plan --rollback and rollback of an ended rollout", func(t *testing.T) {
		st := s.waitEnded(t, "rc-a")
		require.Equal(t, workflows.StateCompleted, st.State, "%+v", st)
		failed, done := clustersIn(st, workflows.ClusterFailed), clustersIn(st, workflows.ClusterDone)
		require.NotEmpty(t, failed, "the fault fails some applies")
		require.NotEmpty(t, done)

		out := s.must(t, "plan", "--rollback", "rc-a", "--clusters")
		assert.Contains(t, out, `Rollback of "rc-a" as rollout "rc-a-rollback"`)
		assert.Contains(t, out, fmt.Sprintf("Phase 1 failed-first: %s", plural(len(failed), "cluster")))
		assert.Contains(t, out, fmt.Sprintf("Downgrades: %s run a newer version", plural(len(done), "cluster")))
		assert.Contains(t, out, "Clusters and the versions they return to:")
		for id := range done {
			assert.Contains(t, out, id+" (downgrade from 3.7.1)")
			assert.Regexp(t, fmt.Sprintf(`%s\s+first\s+3\.7\.1\s+%s\s+-\s+downgrade\n`, id, s.before[id].Version), out)
		}
		for id := range failed {
			assert.Regexp(t, fmt.Sprintf(`%s\s+failed-first\s+%s\s+%[2]s\s+-\n`, id, s.before[id].Version), out)
		}

		out = s.must(t, "plan", "--rollback", "rc-a", "--json")
		var p plan.Plan
		require.NoError(t, json.Unmarshal([]byte(out), &p))
		require.Equal(t, len(failed)+len(done), p.Total)
		require.Equal(t, plan.FailedPhase, p.Phases[0].Name)
		for id, tg := range targets(&p) {
			require.True(t, failed[id] || done[id], id)
			require.Equal(t, s.before[id].Version, tg.Version, id)
			require.Equal(t, done[id], tg.Downgrade, id)
		}

		out = s.must(t, "rollback", "rc-a", "--reason", "bad build")
		assert.Contains(t, out, `Rolling back rollout "rc-a": started rollout "rc-a-rollback" (workflow rollout/rc-a-rollback).`)
		assert.Contains(t, out, "fleet watch rc-a-rollback")
		rb := s.waitEnded(t, "rc-a-rollback")
		require.Equal(t, workflows.StateCompleted, rb.State, "%+v", rb)
		require.Equal(t, len(failed)+len(done), rb.Total)
		assert.True(t, audited(rb, "alice", "start", "rollback of rc-a: bad build"), "who rolled back and why is audited: %+v", rb.Audit)
		for id := range done {
			c, ok := s.dev.Sim.Cluster(id)
			require.True(t, ok)
			assert.Equal(t, s.before[id].Version, c.Version, "%s is back where it came from", id)
		}
	})

	t.Run("retry of an ended rollout starts NAME-retry", func(t *testing.T) {
		s.must(t, "start", "-f", writeFile(t, "rc-b.yaml", specs["rc-b"]))
		st := s.waitEnded(t, "rc-b")
		require.Equal(t, workflows.StateCompleted, st.State, "%+v", st)
		failed := clustersIn(st, workflows.ClusterFailed)
		require.NotEmpty(t, failed)
		require.NoError(t, s.dev.Sim.SetFaults(nil))

		out := s.must(t, "retry", "rc-b", "--reason", "fault fixed", "--json")
		var res recoveryResult
		require.NoError(t, json.Unmarshal([]byte(out), &res))
		assert.Equal(t, recoveryResult{Kind: workflows.RecoveryRetry, Of: "rollout/rc-b", ID: "rollout/rc-b-retry", Name: "rc-b-retry",
			Message: "started rollout/rc-b-retry", Watch: "fleet watch rc-b-retry"}, res)
		rt := s.waitEnded(t, "rc-b-retry")
		require.Equal(t, workflows.StateCompleted, rt.State, "%+v", rt)
		assert.True(t, audited(rt, "alice", "start", "retry of rc-b: fault fixed"), "%+v", rt.Audit)
		require.Equal(t, len(failed), rt.Total, "only the failed clusters")
		require.Equal(t, failed, clustersIn(rt, workflows.ClusterDone))
		for id := range failed {
			c, _ := s.dev.Sim.Cluster(id)
			assert.Equal(t, "3.7.1", c.Version, id)
		}
	})

	t.Run("a running rollout: rollback refused, previewed, superseded", func(t *testing.T) {
		s.waitFor(t, "rc-c", "its gate", func(st *workflows.RolloutStatus) bool { return st.State == workflows.StateAwaitingApproval })
		_, stderr, err := s.fleet(t, "rollback", "rc-c")
		require.Error(t, err)
		var rep bytes.Buffer
		assert.Equal(t, 1, report(&rep, err))
		assert.Contains(t, rep.String(), `fleet: rollout "rc-c" is awaiting-approval: a rollback needs it stopped: fleet abort rc-c --reason ..., then fleet rollback rc-c; or fleet rollback rc-c --abort --reason ... to do both`)
		assert.Empty(t, stderr)

		out := s.must(t, "plan", "--rollback", "rc-c")
		assert.Contains(t, out, `Rollout "rc-c" is awaiting-approval: the rollback needs it stopped first`)

		ungated := strings.Replace(gated, "      requireApproval: true\n", "", 1)
		hotfix := writeFile(t, "rc-c-hotfix.yaml", recoverySpec("rc-c-hotfix", "connect", "7.7.1", "env in (non-prod, prod)", ungated))
		out = s.must(t, "plan", "--supersede", "rc-c", "-f", hotfix)
		assert.Contains(t, out, `Supersede of "rc-c" by "rc-c-hotfix": `)
		assert.Contains(t, out, "already changed by rc-c go first in their phase")

		out = s.must(t, "supersede", "rc-c", "-f", hotfix, "--reason", "CVE")
		assert.Contains(t, out, `Superseding rollout "rc-c" (workflow rollout/rc-c) with "rc-c-hotfix" (workflow rollout/rc-c-hotfix).`)
		old := s.waitEnded(t, "rc-c")
		require.Equal(t, workflows.StateSuperseded, old.State, "%+v", old)
		require.Equal(t, "rollout/rc-c-hotfix", old.SupersededBy)
		assert.True(t, audited(old, "alice", "supersede", "superseded by rollout/rc-c-hotfix: CVE"), "%+v", old.Audit)
		hf := s.waitEnded(t, "rc-c-hotfix")
		require.Equal(t, workflows.StateCompleted, hf.State, "%+v", hf)
		for id, before := range s.before {
			if before.Product == fleet.ProductConnect && (before.Environment == fleet.EnvNonProd || before.Environment == fleet.EnvProd) {
				c, _ := s.dev.Sim.Cluster(id)
				assert.Equal(t, "7.7.1", c.Version, id)
			}
		}
	})

	t.Run("rollback --abort of a running rollout", func(t *testing.T) {
		st := s.waitFor(t, "rc-d", "its gate", func(st *workflows.RolloutStatus) bool { return st.State == workflows.StateAwaitingApproval })
		changed := clustersIn(st, workflows.ClusterDone)
		require.NotEmpty(t, changed)
		out := s.must(t, "rollback", "rc-d", "--abort", "--reason", "bad build")
		assert.Contains(t, out, `Aborting rollout "rc-d"`)
		assert.Contains(t, out, `Its rollback "rc-d-rollback" (workflow rollout/rc-d-rollback) starts when its batches have stopped.`)
		old := s.waitEnded(t, "rc-d")
		require.Equal(t, workflows.StateAborted, old.State)
		assert.True(t, audited(old, "alice", "rollback", "bad build"), "%+v", old.Audit)
		rb := s.waitFor(t, "rc-d-rollback", "the end", func(st *workflows.RolloutStatus) bool { return st.State.Terminal() })
		require.Equal(t, workflows.StateCompleted, rb.State, "%+v", rb)
		require.Equal(t, len(changed), rb.Total)
		for id := range changed {
			c, _ := s.dev.Sim.Cluster(id)
			assert.Equal(t, s.before[id].Version, c.Version, id)
		}
	})

	t.Run("retry within a running rollout", func(t *testing.T) {
		fault := sim.Fault{Version: "0.30.0", Product: fleet.ProductKsqlDB, FailApply: true, Fraction: 0.4}
		require.NoError(t, s.dev.Sim.SetFaults([]sim.Fault{fault}))
		s.must(t, "start", "-f", writeFile(t, "rc-e.yaml", recoverySpec("rc-e", "ksqldb", "0.30.0", "env in (non-prod, prod)", gated)))
		st := s.waitFor(t, "rc-e", "its gate", func(st *workflows.RolloutStatus) bool { return st.State == workflows.StateAwaitingApproval })
		failed := clustersIn(st, workflows.ClusterFailed)
		require.NotEmpty(t, failed)
		require.NoError(t, s.dev.Sim.SetFaults(nil))

		out := s.must(t, "retry", "rc-e", "--reason", "fault fixed")
		assert.Contains(t, out, fmt.Sprintf(`Retrying within rollout "rc-e" (still running): %d clusters queued in phase retry-1, with a fresh error budget.`, len(failed)))
		assert.Contains(t, out, "fleet watch rc-e")

		_, err := s.api.Approve(context.Background(), "rc-e", workflows.ApproveRequest{Actor: "bob", Phase: "second"})
		require.NoError(t, err)
		st = s.waitEnded(t, "rc-e")
		require.Equal(t, workflows.StateCompleted, st.State, "%+v", st)
		last := st.Phases[len(st.Phases)-1]
		require.Equal(t, "retry-1", last.Name)
		retried := map[string]bool{}
		for _, b := range last.Batches {
			for _, c := range b.Clusters {
				require.Equal(t, workflows.ClusterDone, c.State, c.ID)
				retried[c.ID] = true
			}
		}
		require.Equal(t, failed, retried)
		for id := range failed {
			c, _ := s.dev.Sim.Cluster(id)
			assert.Equal(t, "0.30.0", c.Version, id)
		}
	})
}
