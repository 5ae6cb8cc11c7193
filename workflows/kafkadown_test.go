package workflows_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/workflows"
)

// kafkaOutage runs a batch of 4 clusters (2 at a time, 3 brokers each, a
// monitor read every second, a grace of 40 s) with Kafka down from 4 s to
// 90 s: longer than a monitoring interval plus the grace, and the batch
// publishes while Kafka is down (its resync of the silent clusters, 30 s
// in) before the grace runs out. The monitors answer with monitors(); reads
// records when each read ran.
type kafkaOutage struct {
	h     *batchHarness
	in    workflows.BatchInput
	mu    sync.Mutex
	reads []time.Duration
	start time.Time
}

const (
	outageFrom = 4 * time.Second
	outageTo   = 90 * time.Second
)

func newKafkaOutage(t *testing.T, monitors func(at time.Duration) error) *kafkaOutage {
	o := &kafkaOutage{h: newBatchHarness(t, 3)}
	o.in = batchInput(4, 2)
	o.in.HealthInterval = time.Second
	o.in.UnknownGrace = 40 * time.Second
	o.h.plane.run(o.h.env, time.Second, 10*time.Minute)
	o.h.health = func(workflows.HealthInput) (workflows.HealthResult, error) {
		at := o.h.env.Now().Sub(o.start)
		o.mu.Lock()
		o.reads = append(o.reads, at)
		o.mu.Unlock()
		return workflows.HealthResult{}, monitors(at)
	}
	set := func(down bool) func() {
		return func() {
			o.h.plane.mu.Lock()
			o.h.plane.down = down
			o.h.plane.mu.Unlock()
		}
	}
	o.h.env.RegisterDelayedCallback(set(true), outageFrom)
	o.h.env.RegisterDelayedCallback(set(false), outageTo)
	return o
}

// readsDuring counts the monitor reads made while Kafka was down.
func (o *kafkaOutage) readsDuring() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, at := range o.reads {
		if at > outageFrom && at < outageTo {
			n++
		}
	}
	return n
}

// The batch keeps reading its monitors while Kafka is down, so an outage
// longer than the grace is not "health unknown": nothing is held, and the
// batch completes once Kafka is back.
func TestBatchKeepsReadingMonitorsWhileKafkaIsDown(t *testing.T) {
	o := newKafkaOutage(t, func(time.Duration) error { return nil })
	var during workflows.BatchStatus
	o.h.env.RegisterDelayedCallback(func() { during = o.h.query(t) }, outageTo-2*time.Second)
	o.start = o.h.env.Now()
	o.h.env.ExecuteWorkflow(workflows.WorkflowBatch, o.in)
	require.NoError(t, o.h.env.GetWorkflowError())
	var res workflows.BatchResult
	require.NoError(t, o.h.env.GetWorkflowResult(&res))

	require.Equal(t, workflows.BatchRunning, during.State, "not paused while Kafka is down and the monitors answer")
	require.GreaterOrEqual(t, o.readsDuring(), 60, "the monitors were read about every second of the 86 s outage")
	require.Empty(t, o.h.plane.commands(dataplane.Hold), "nothing was held")
	require.Len(t, res.Clusters, 4)
	for _, c := range res.Clusters {
		require.Equal(t, workflows.ClusterDone, c.State, c.ID)
		require.Equal(t, 1, o.h.plane.starts[c.ID], c.ID)
	}
}

// With the monitors failing too, health goes unknown past the grace while
// Kafka is still down, and the batch pauses then (its hold commands go out
// when Kafka is back), not only after the outage.
func TestBatchRaisesUnknownHealthDuringAKafkaOutage(t *testing.T) {
	o := newKafkaOutage(t, func(at time.Duration) error {
		if at > outageFrom {
			return errors.New("monitors: 500 Internal Server Error")
		}
		return nil
	})
	var during workflows.BatchStatus
	o.h.env.RegisterDelayedCallback(func() { during = o.h.query(t) }, outageTo-10*time.Second)
	o.h.env.RegisterDelayedCallback(func() {
		o.h.env.SignalWorkflow(workflows.Abort, workflows.ActionRequest{Actor: "bob", Reason: "end of test"})
	}, 2*time.Minute)
	o.start = o.h.env.Now()
	o.h.env.ExecuteWorkflow(workflows.WorkflowBatch, o.in)
	require.NoError(t, o.h.env.GetWorkflowError())

	require.Equal(t, workflows.BatchPaused, during.State, "health unknown past the grace pauses the batch while Kafka is down")
	require.GreaterOrEqual(t, o.readsDuring(), 30, "the monitors were retried while Kafka was down")
	require.NotEmpty(t, o.h.plane.commands(dataplane.Hold), "the in-flight clusters were held once Kafka was back")
}
