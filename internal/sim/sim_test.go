package sim

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/internal/fleet"
)

func TestApplyCompletesWithProgressPerBroker(t *testing.T) {
	brokers := startKafka(t)
	s := newSim(t, Config{Clusters: []fleet.Cluster{kafkaCluster("lkc-00001", 4)}})
	runSim(t, s, brokers)
	statuses := collect(t, brokers)
	cmd := newCommander(t, brokers)

	cmd.send(t, applyCmd("lkc-00001", 2, "3.7.0"))
	done := statuses.wait(t, "lkc-00001", 2, is(dataplane.Completed))

	got := statuses.of("lkc-00001", 2)
	assert.Equal(t, []int{1, 2, 3, 4}, freshProgressBrokers(got))
	require.Len(t, got, 5, statuses.dump("lkc-00001", 2))
	for _, st := range got {
		assert.Equal(t, testRollout, st.RolloutID)
		assert.Equal(t, testReplyTo, st.ReplyTo)
		assert.Equal(t, "3.7.0", st.Version)
		assert.Equal(t, 4, st.Brokers)
		assert.False(t, st.At.IsZero())
	}
	assert.Equal(t, 4, done.Broker)

	c, ok := s.Cluster("lkc-00001")
	require.True(t, ok)
	assert.Equal(t, "3.7.0", c.Version)
	assert.Equal(t, int64(2), c.Generation)
	assert.Equal(t, 1, s.ApplyStarts("lkc-00001"))
}

func TestDuplicateApplyAppliesOnce(t *testing.T) {
	brokers := startKafka(t)
	s := newSim(t, Config{Clusters: []fleet.Cluster{kafkaCluster("lkc-00001", 5)}})
	runSim(t, s, brokers)
	statuses := collect(t, brokers)
	cmd := newCommander(t, brokers)

	// Delivered twice back to back: the second copy arrives while the first
	// is in flight and is answered with the apply's latest state.
	cmd.send(t, applyCmd("lkc-00001", 2, "3.7.0"), applyCmd("lkc-00001", 2, "3.7.0"))
	statuses.wait(t, "lkc-00001", 2, fresh(dataplane.Completed))
	statuses.wait(t, "lkc-00001", 2, republished(dataplane.Progress))

	// A retried push after completion gets Completed again.
	cmd.send(t, applyCmd("lkc-00001", 2, "3.7.0"))
	again := statuses.wait(t, "lkc-00001", 2, republished(dataplane.Completed))
	assert.Equal(t, testReplyTo, again.ReplyTo)
	assert.Equal(t, testRollout, again.RolloutID)
	assert.Equal(t, "3.7.0", again.Version)
	assert.Equal(t, 5, again.Broker)

	assert.Equal(t, 1, s.ApplyStarts("lkc-00001"), "applied exactly once")
	assert.Equal(t, seq(1, 5), freshProgressBrokers(statuses.of("lkc-00001", 2)), "no broker restarted twice")
	assert.Equal(t, 1, statuses.count("lkc-00001", 2, fresh(dataplane.Completed)))
}

// TestCommandAnswers checks the answer to each command against a cluster in
// a known state: applied generation 5 on lkc-00005, nothing in flight.
func TestCommandAnswers(t *testing.T) {
	brokers := startKafka(t)
	at5 := kafkaCluster("lkc-00005", 3)
	at5.Generation = 5
	busy := kafkaCluster("lkc-00009", 12)
	shared := kafkaCluster("lkc-00010", 3)
	s := newSim(t, Config{Clusters: []fleet.Cluster{at5, busy, shared}, BrokerTime: 200 * time.Millisecond})
	runSim(t, s, brokers)
	statuses := collect(t, brokers)
	cmd := newCommander(t, brokers)

	other := func(c dataplane.Command) dataplane.Command {
		c.RolloutID, c.ReplyTo = "rollout/other", "rollout/other/batch-7"
		return c
	}
	tests := []struct {
		name    string
		cmd     dataplane.Command
		state   dataplane.State
		message string
		replyTo string
	}{
		{"stale apply", applyCmd("lkc-00005", 3, "3.7.0"), dataplane.Rejected, "stale generation 3, applied 5", testReplyTo},
		{"apply of the applied generation", applyCmd("lkc-00005", 5, "3.7.0"), dataplane.Completed, "re-published", testReplyTo},
		{"report applied", ctlCmd(dataplane.Report, "lkc-00005", 5), dataplane.Completed, "re-published", testReplyTo},
		{"report stale", ctlCmd(dataplane.Report, "lkc-00005", 4), dataplane.Rejected, "stale generation 4, applied 5", testReplyTo},
		{"report unknown", ctlCmd(dataplane.Report, "lkc-00005", 6), dataplane.Rejected, "generation 6 unknown", testReplyTo},
		{"hold not in flight", ctlCmd(dataplane.Hold, "lkc-00005", 5), dataplane.Completed, "re-published", testReplyTo},
		{"resume not in flight", ctlCmd(dataplane.Resume, "lkc-00005", 5), dataplane.Completed, "re-published", testReplyTo},
		{"abort not in flight", ctlCmd(dataplane.Abort, "lkc-00005", 5), dataplane.Completed, "re-published", testReplyTo},
		{"answer goes to the asker", other(ctlCmd(dataplane.Report, "lkc-00005", 5)), dataplane.Completed, "re-published", "rollout/other/batch-7"},
		{"unknown cluster", applyCmd("lkc-99999", 2, "3.7.0"), dataplane.Rejected, "unknown cluster", testReplyTo},
		{"invalid apply", applyCmd("lkc-00005", 6, ""), dataplane.Rejected, "invalid command", testReplyTo},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(statuses.of(tt.cmd.ClusterID, tt.cmd.Generation))
			cmd.send(t, tt.cmd)
			got := statuses.waitNth(t, tt.cmd.ClusterID, tt.cmd.Generation, before+1, func(dataplane.Status) bool { return true })
			assert.Equal(t, tt.state, got.State, got.Message)
			assert.Contains(t, got.Message, tt.message)
			assert.Equal(t, tt.replyTo, got.ReplyTo)
		})
	}
	assert.Equal(t, 0, s.ApplyStarts("lkc-00005"), "no command began an apply")

	t.Run("busy", func(t *testing.T) {
		// The second apply arrives while the first (12 slow brokers) runs.
		cmd.send(t, applyCmd("lkc-00009", 2, "3.7.0"), other(applyCmd("lkc-00009", 3, "3.8.0")))
		got := statuses.wait(t, "lkc-00009", 3, is(dataplane.Rejected))
		assert.Equal(t, "busy with generation 2 (rollout/test)", got.Message)
		assert.Equal(t, "rollout/other/batch-7", got.ReplyTo, "rejection goes to the sender")
		cmd.send(t, ctlCmd(dataplane.Abort, "lkc-00009", 2))
		statuses.wait(t, "lkc-00009", 2, is(dataplane.Aborted))
		assert.Equal(t, 1, s.ApplyStarts("lkc-00009"))
		assert.Equal(t, dataplane.RejectBusy, got.Code)
	})

	t.Run("same generation from another rollout", func(t *testing.T) {
		// Two rollouts planned generation 2 for the same cluster: the one
		// whose apply arrives first owns it; the other is told, with a code
		// that means "skip", both while it runs and after it completed.
		cmd.send(t, applyCmd("lkc-00010", 2, "3.7.0"), other(applyCmd("lkc-00010", 2, "3.8.0")))
		busy := statuses.wait(t, "lkc-00010", 2, func(st dataplane.Status) bool {
			return st.State == dataplane.Rejected && st.ReplyTo == "rollout/other/batch-7"
		})
		assert.Equal(t, dataplane.RejectBusy, busy.Code)
		assert.Contains(t, busy.Message, "being applied by rollout/test")
		statuses.wait(t, "lkc-00010", 2, is(dataplane.Completed))
		before := len(statuses.of("lkc-00010", 2))
		cmd.send(t, other(applyCmd("lkc-00010", 2, "3.8.0")))
		stale := statuses.waitNth(t, "lkc-00010", 2, before+1, func(dataplane.Status) bool { return true })
		assert.Equal(t, dataplane.Rejected, stale.State)
		assert.Equal(t, dataplane.RejectStale, stale.Code)
		assert.Contains(t, stale.Message, "was applied by rollout/test")
		assert.Equal(t, 1, s.ApplyStarts("lkc-00010"))
		c, _ := s.Cluster("lkc-00010")
		assert.Equal(t, "3.7.0", c.Version, "the second rollout's spec never ran")
	})
}

func TestHoldAndResume(t *testing.T) {
	const n, id = 10, "lkc-00001"
	const k1, k2 = 3, 6 // brokers after which a Hold arrives
	brokers := startKafka(t)
	s := newSim(t, Config{Clusters: []fleet.Cluster{kafkaCluster(id, n)}})
	statuses := collect(t, brokers)
	cmd := newCommander(t, brokers)
	// Deliver a Hold through Kafka while broker k1 (then k2) has just
	// finished, and let the apply go on only once the Hold reached it: the
	// hold lands mid-apply at a known broker, however slow the machine.
	s.afterBroker = func(_ context.Context, cluster string, broker int) {
		if cluster == id && (broker == k1 || broker == k2) {
			if err := cmd.produce(ctlCmd(dataplane.Hold, id, 2)); err != nil {
				t.Errorf("send hold: %v", err)
				return
			}
			until(t, "hold to reach the apply", func() bool { return holdRequested(s, id) })
		}
	}
	runSim(t, s, brokers)

	cmd.send(t, applyCmd(id, 2, "3.7.0"))
	held := statuses.wait(t, id, 2, is(dataplane.Held))
	assert.Equal(t, k1, held.Broker)

	// While held, no broker restarts and the inventory is unchanged.
	time.Sleep(10 * testBroker)
	assert.Equal(t, seq(1, k1), freshProgressBrokers(statuses.of(id, 2)), "no progress while held")
	c, _ := s.Cluster(id)
	assert.Equal(t, int64(1), c.Generation)
	assert.Equal(t, "3.6.1", c.Version)

	// A duplicate Hold is answered with the Held state.
	cmd.send(t, ctlCmd(dataplane.Hold, id, 2))
	statuses.wait(t, id, 2, republished(dataplane.Held))

	cmd.send(t, ctlCmd(dataplane.Resume, id, 2))
	held = statuses.waitNth(t, id, 2, 2, fresh(dataplane.Held))
	assert.Equal(t, k2, held.Broker)
	cmd.send(t, ctlCmd(dataplane.Resume, id, 2))
	statuses.wait(t, id, 2, is(dataplane.Completed))

	type step struct {
		State  dataplane.State
		Broker int
	}
	var want []step
	for b := 1; b <= k1; b++ {
		want = append(want, step{dataplane.Progress, b})
	}
	want = append(want, step{dataplane.Held, k1}, step{dataplane.Held, k1}, step{dataplane.Resumed, k1})
	for b := k1 + 1; b <= k2; b++ {
		want = append(want, step{dataplane.Progress, b})
	}
	want = append(want, step{dataplane.Held, k2}, step{dataplane.Resumed, k2})
	for b := k2 + 1; b <= n; b++ {
		want = append(want, step{dataplane.Progress, b})
	}
	want = append(want, step{dataplane.Completed, n})

	var got []step
	for _, st := range statuses.of(id, 2) {
		got = append(got, step{st.State, st.Broker})
	}
	assert.Equal(t, want, got, statuses.dump(id, 2))
	assert.Equal(t, seq(1, n), freshProgressBrokers(statuses.of(id, 2)), "each broker restarted exactly once")
	assert.Equal(t, 1, s.ApplyStarts(id))
	c, _ = s.Cluster(id)
	assert.Equal(t, "3.7.0", c.Version)
	assert.Equal(t, int64(2), c.Generation)
}

// TestHoldBeforeFirstBroker: a Hold consumed right behind its Apply stops
// the apply at the first boundary; Resume and Hold consumed together hold
// it again at the same boundary, since no broker started in between.
func TestHoldBeforeFirstBroker(t *testing.T) {
	const n, id = 4, "lkc-00001"
	brokers := startKafka(t)
	s := newSim(t, Config{Clusters: []fleet.Cluster{kafkaCluster(id, n)}})
	runSim(t, s, brokers)
	statuses := collect(t, brokers)
	cmd := newCommander(t, brokers)

	cmd.send(t, applyCmd(id, 2, "3.7.0"), ctlCmd(dataplane.Hold, id, 2))
	k := statuses.wait(t, id, 2, is(dataplane.Held)).Broker
	require.Less(t, k, n)
	cmd.send(t, ctlCmd(dataplane.Resume, id, 2), ctlCmd(dataplane.Hold, id, 2))
	again := statuses.waitNth(t, id, 2, 2, fresh(dataplane.Held))
	assert.GreaterOrEqual(t, again.Broker, k)
	cmd.send(t, ctlCmd(dataplane.Resume, id, 2))
	statuses.wait(t, id, 2, is(dataplane.Completed))
	assert.Equal(t, seq(1, n), freshProgressBrokers(statuses.of(id, 2)))
	assert.Equal(t, 2, statuses.count(id, 2, is(dataplane.Resumed)))
}

func TestAbort(t *testing.T) {
	tests := []struct {
		name string
		// first is sent with the apply; the abort follows once it is held
		// (or right away when first is empty).
		holdFirst bool
	}{
		{"while held", true},
		{"while running", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n, id = 12, "lkc-00001"
			brokers := startKafka(t)
			s := newSim(t, Config{Clusters: []fleet.Cluster{kafkaCluster(id, n)}})
			runSim(t, s, brokers)
			statuses := collect(t, brokers)
			cmd := newCommander(t, brokers)

			if tt.holdFirst {
				cmd.send(t, applyCmd(id, 2, "3.7.0"), ctlCmd(dataplane.Hold, id, 2))
				statuses.wait(t, id, 2, is(dataplane.Held))
				cmd.send(t, ctlCmd(dataplane.Abort, id, 2))
			} else {
				cmd.send(t, applyCmd(id, 2, "3.7.0"), ctlCmd(dataplane.Abort, id, 2))
			}
			aborted := statuses.wait(t, id, 2, fresh(dataplane.Aborted))
			k := aborted.Broker
			require.Less(t, k, n)

			time.Sleep(10 * testBroker)
			assert.Equal(t, seq(1, k), freshProgressBrokers(statuses.of(id, 2)), "no broker after the abort")
			assert.Zero(t, statuses.count(id, 2, is(dataplane.Completed)))

			c, _ := s.Cluster(id)
			assert.Equal(t, "3.6.1", c.Version, "inventory keeps the old version")
			assert.Equal(t, int64(1), c.Generation)

			// The sender of a late Resume or Abort learns where it stands.
			cmd.send(t, ctlCmd(dataplane.Resume, id, 2))
			again := statuses.wait(t, id, 2, republished(dataplane.Aborted))
			assert.Equal(t, k, again.Broker)

			// The cluster is free for the next apply of the same generation.
			cmd.send(t, applyCmd(id, 2, "3.6.2"))
			statuses.wait(t, id, 2, is(dataplane.Completed))
			assert.Equal(t, 2, s.ApplyStarts(id))
		})
	}
}

func TestFaultTripsMonitor(t *testing.T) {
	brokers := startKafka(t)

	const version = "3.7.0"
	urp := Fault{Version: version, Monitor: "kafka-under-replicated-partitions", Fraction: 0.5}
	// Find a cluster the fault hits and one it spares: Trips is the oracle.
	var hit, spared string
	for i := 0; hit == "" || spared == ""; i++ {
		require.Less(t, i, 1000)
		id := fmt.Sprintf("lkc-%05d", i)
		if urp.Trips(kafkaCluster(id, 3), version) {
			if hit == "" {
				hit = id
			}
		} else if spared == "" {
			spared = id
		}
	}
	failing := "lkc-90000"
	ksql := fleet.Cluster{ID: "ksql-00001", Product: fleet.ProductKsqlDB, Cloud: fleet.CloudGCP, Region: "us-central1",
		Environment: fleet.EnvProd, Customer: "cust-002", Tier: "standard", Version: "0.29.0", Brokers: 2, Generation: 1}
	s := newSim(t, Config{
		Clusters: []fleet.Cluster{kafkaCluster(hit, 3), kafkaCluster(spared, 3), kafkaCluster(failing, 4), ksql},
		Faults: []Fault{
			urp,
			{Version: "3.8.0-bad", Monitor: "kafka-offline-partitions", FailApply: true, Fraction: 1},
		},
	})
	runSim(t, s, brokers)
	statuses := collect(t, brokers)
	cmd := newCommander(t, brokers)

	for _, id := range []string{hit, spared} {
		assert.Equal(t, StatusOK, s.MonitorStatus(id, urp.Monitor), id)
	}
	cmd.send(t, applyCmd(hit, 2, version), applyCmd(spared, 2, version), applyCmd(ksql.ID, 2, "0.30.0"))
	for _, id := range []string{hit, spared, ksql.ID} {
		statuses.wait(t, id, 2, is(dataplane.Completed))
	}
	assert.Equal(t, StatusAlert, s.MonitorStatus(hit, urp.Monitor))
	assert.Equal(t, StatusOK, s.MonitorStatus(hit, "kafka-cpu-high"), "other monitors stay OK")
	assert.Equal(t, StatusOK, s.MonitorStatus(spared, urp.Monitor))
	assert.Equal(t, StatusOK, s.MonitorStatus(ksql.ID, "ksqldb-cpu-high"), "the fault is scoped to its monitor's product")
	assert.Equal(t, map[string]map[string]string{urp.Monitor: {hit: StatusAlert}}, requireIndexAgrees(t, s), "indexed by tripFaults")

	t.Run("back to OK after a version without the fault", func(t *testing.T) {
		cmd.send(t, applyCmd(hit, 3, "3.6.1"))
		statuses.wait(t, hit, 3, is(dataplane.Completed))
		assert.Equal(t, StatusOK, s.MonitorStatus(hit, urp.Monitor))
		assert.Empty(t, requireIndexAgrees(t, s), "cleared by the apply's completion")
	})

	t.Run("fail apply after the first broker, monitor trips on it", func(t *testing.T) {
		cmd.send(t, applyCmd(failing, 2, "3.8.0-bad"))
		failed := statuses.wait(t, failing, 2, is(dataplane.Failed))
		assert.Equal(t, 1, failed.Broker)
		assert.Contains(t, failed.Message, "fault injection")
		assert.Equal(t, []int{1}, freshProgressBrokers(statuses.of(failing, 2)))
		c, _ := s.Cluster(failing)
		assert.Equal(t, "3.6.1", c.Version)
		assert.Equal(t, int64(1), c.Generation)
		assert.Equal(t, StatusAlert, s.MonitorStatus(failing, "kafka-offline-partitions"), "tripped from the first broker restart")
		assert.Equal(t, map[string]map[string]string{"kafka-offline-partitions": {failing: StatusAlert}}, requireIndexAgrees(t, s))

		// A Report learns the outcome.
		cmd.send(t, ctlCmd(dataplane.Report, failing, 2))
		statuses.wait(t, failing, 2, republished(dataplane.Failed))
	})

	t.Run("no data", func(t *testing.T) {
		assert.Equal(t, StatusNoData, s.MonitorStatus("lkc-77777", urp.Monitor), "unknown cluster")
		assert.Equal(t, StatusNoData, s.MonitorStatus(hit, "ksqldb-cpu-high"), "monitor of another product")
		assert.Equal(t, StatusNoData, s.MonitorStatus(hit, "no-such-monitor"))
	})
}

func TestSetFaultsAppliesToNextApply(t *testing.T) {
	brokers := startKafka(t)
	s := newSim(t, Config{Clusters: []fleet.Cluster{kafkaCluster("lkc-00001", 2)}})
	runSim(t, s, brokers)
	statuses := collect(t, brokers)
	cmd := newCommander(t, brokers)

	require.Error(t, s.SetFaults([]Fault{{Monitor: "kafka-cpu-high"}}), "fraction 0 is rejected")
	assert.Empty(t, s.Faults())
	f := []Fault{{Product: fleet.ProductKafka, Monitor: "kafka-cpu-high", Fraction: 1}}
	require.NoError(t, s.SetFaults(f))
	assert.Equal(t, f, s.Faults())

	cmd.send(t, applyCmd("lkc-00001", 2, "3.7.0"))
	statuses.wait(t, "lkc-00001", 2, is(dataplane.Completed))
	assert.Equal(t, StatusAlert, s.MonitorStatus("lkc-00001", "kafka-cpu-high"))
}

func TestStateSurvivesRestart(t *testing.T) {
	const n = 10
	brokers := startKafka(t)
	path := t.TempDir() + "/dataplane.json"
	fleetCfg := []fleet.Cluster{kafkaCluster("lkc-00001", 3), kafkaCluster("lkc-00002", n), kafkaCluster("lkc-00003", n)}
	cfg := Config{Clusters: fleetCfg, StatePath: path, Faults: []Fault{{Version: "3.7.0", Monitor: "kafka-cpu-high", Fraction: 1}}}

	s1 := newSim(t, cfg)
	// Stop the process while lkc-00003 is between brokers 2 and 3.
	reached := make(chan struct{})
	s1.afterBroker = func(ctx context.Context, cluster string, broker int) {
		if cluster == "lkc-00003" && broker == 2 {
			close(reached)
			<-ctx.Done()
		}
	}
	stop1 := runSim(t, s1, brokers)
	statuses := collect(t, brokers)
	cmd := newCommander(t, brokers)

	// lkc-00001 completes; lkc-00002 is held; lkc-00003 is running when the
	// process stops.
	cmd.send(t, applyCmd("lkc-00001", 2, "3.7.0"))
	statuses.wait(t, "lkc-00001", 2, is(dataplane.Completed))
	cmd.send(t, applyCmd("lkc-00002", 2, "3.7.0"), ctlCmd(dataplane.Hold, "lkc-00002", 2))
	held := statuses.wait(t, "lkc-00002", 2, is(dataplane.Held))
	cmd.send(t, applyCmd("lkc-00003", 2, "3.7.0"))
	select {
	case <-reached:
	case <-time.After(waitTimeout):
		t.Fatal("lkc-00003 never reached broker 2")
	}
	stop1()
	require.NoError(t, s1.Close())
	require.Eventually(t, func() bool { return len(freshProgressBrokers(statuses.of("lkc-00003", 2))) == 2 }, waitTimeout, waitTick)

	s2 := newSim(t, cfg)
	defer func() { require.NoError(t, s2.Close()) }()
	c1, _ := s2.Cluster("lkc-00001")
	assert.Equal(t, "3.7.0", c1.Version)
	assert.Equal(t, int64(2), c1.Generation)
	assert.Equal(t, StatusAlert, s2.MonitorStatus("lkc-00001", "kafka-cpu-high"), "alerts survive")
	// (lkc-00003 alerts too, tripped at its first broker; lkc-00002 if its
	// hold came after its first broker.)
	assert.Equal(t, StatusAlert, requireIndexAgrees(t, s2)["kafka-cpu-high"]["lkc-00001"], "indexed from the state loaded")
	for _, id := range []string{"lkc-00001", "lkc-00002", "lkc-00003"} {
		assert.Equal(t, 1, s2.ApplyStarts(id), id)
	}
	assert.Equal(t, s1.Clusters(), s2.Clusters())

	runSim(t, s2, brokers)
	// The running apply resumes by itself, from the broker after the last
	// one it reported.
	statuses.wait(t, "lkc-00003", 2, is(dataplane.Completed))
	assert.Equal(t, seq(1, n), freshProgressBrokers(statuses.of("lkc-00003", 2)), "no broker reported twice")

	// The held apply stays held until resumed, then continues where it was.
	cmd.send(t, ctlCmd(dataplane.Report, "lkc-00002", 2))
	again := statuses.wait(t, "lkc-00002", 2, republished(dataplane.Held))
	assert.Equal(t, held.Broker, again.Broker)
	cmd.send(t, ctlCmd(dataplane.Resume, "lkc-00002", 2))
	statuses.wait(t, "lkc-00002", 2, is(dataplane.Completed))
	assert.Equal(t, seq(1, n), freshProgressBrokers(statuses.of("lkc-00002", 2)))

	for _, id := range []string{"lkc-00001", "lkc-00002", "lkc-00003"} {
		assert.Equal(t, 1, s2.ApplyStarts(id), id)
	}
}

func TestRunRejectsSecondRun(t *testing.T) {
	brokers := startKafka(t)
	s := newSim(t, Config{Clusters: []fleet.Cluster{kafkaCluster("lkc-00001", 3)}})
	runSim(t, s, brokers)
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.running
	}, waitTimeout, waitTick)
	assert.ErrorIs(t, s.Run(t.Context(), brokers), errRunActive)
	assert.Error(t, s.Run(t.Context(), nil))
}
