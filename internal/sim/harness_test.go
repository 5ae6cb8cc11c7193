package sim

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/internal/fleet"
)

// Generous bounds: these tests run with -race on small, noisy machines.
const (
	waitTimeout = 30 * time.Second
	waitTick    = 10 * time.Millisecond
	testBroker  = 15 * time.Millisecond
)

const (
	testRollout = "rollout/test"
	testReplyTo = "rollout/test/batch-1"
)

// startKafka starts an in-process Kafka with both topics.
func startKafka(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, dataplane.CommandsTopic, dataplane.StatusTopic))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func kafkaCluster(id string, brokers int) fleet.Cluster {
	return fleet.Cluster{
		ID: id, Product: fleet.ProductKafka, Cloud: fleet.CloudAWS, Region: "us-east-1",
		Environment: fleet.EnvProd, Customer: "cust-001", Tier: "dedicated",
		Version: "3.6.1", Brokers: brokers, Generation: 1,
		Labels: map[string]string{"team": "payments", "tier": "dedicated"},
		Window: &fleet.Window{Days: []string{"tue"}, Start: "02:00", Duration: "4h", TimeZone: "America/New_York"},
	}
}

func newSim(t *testing.T, cfg Config) *Simulator {
	t.Helper()
	if cfg.BrokerTime == 0 {
		cfg.BrokerTime = testBroker
	}
	s, err := New(cfg, zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)))
	require.NoError(t, err)
	return s
}

// runSim runs s until the returned stop is called (or the test ends).
func runSim(t *testing.T, s *Simulator, brokers []string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx, brokers) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				require.NoError(t, err)
			case <-time.After(waitTimeout):
				t.Error("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// until polls cond until it holds; usable off the test goroutine.
func until(t *testing.T, what string, cond func() bool) {
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Errorf("timed out waiting for %s", what)
			return
		}
		time.Sleep(waitTick)
	}
}

// holdRequested reports whether a Hold reached the cluster's apply.
func holdRequested(s *Simulator, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.clusters[id].inflight
	return a != nil && a.HoldReq
}

// commander produces commands the way the control plane does.
type commander struct{ cl *kgo.Client }

func newCommander(t *testing.T, brokers []string) *commander {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return &commander{cl: cl}
}

// send produces the commands in one batch, so commands for one cluster are
// consumed back to back and in order.
func (c *commander) send(t *testing.T, cmds ...dataplane.Command) {
	t.Helper()
	require.NoError(t, c.produce(cmds...))
}

// produce is send for goroutines other than the test's.
func (c *commander) produce(cmds ...dataplane.Command) error {
	recs := make([]*kgo.Record, 0, len(cmds))
	for _, cmd := range cmds {
		b, err := dataplane.Encode(cmd)
		if err != nil {
			return err
		}
		recs = append(recs, &kgo.Record{Topic: dataplane.CommandsTopic, Key: []byte(cmd.ClusterID), Value: b})
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	return c.cl.ProduceSync(ctx, recs...).FirstErr()
}

func applyCmd(id string, gen int64, version string) dataplane.Command {
	return dataplane.Command{
		Kind: dataplane.Apply, ClusterID: id, Generation: gen,
		Spec:      &dataplane.Spec{Version: version},
		RolloutID: testRollout, ReplyTo: testReplyTo, IssuedAt: time.Now(),
	}
}

func ctlCmd(kind dataplane.CommandKind, id string, gen int64) dataplane.Command {
	return dataplane.Command{
		Kind: kind, ClusterID: id, Generation: gen,
		RolloutID: testRollout, ReplyTo: testReplyTo, IssuedAt: time.Now(),
	}
}

// collector reads every status event from the status topic.
type collector struct {
	mu  sync.Mutex
	all []dataplane.Status
}

func collect(t *testing.T, brokers []string) *collector {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(dataplane.StatusTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	require.NoError(t, err)
	c := &collector{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			f := cl.PollFetches(ctx)
			if ctx.Err() != nil || f.IsClientClosed() {
				return
			}
			f.EachRecord(func(r *kgo.Record) {
				st, err := dataplane.DecodeStatus(r.Value)
				if err != nil {
					t.Errorf("undecodable status %q: %v", r.Value, err)
					return
				}
				if string(r.Key) != st.ClusterID {
					t.Errorf("status key %q for cluster %q", r.Key, st.ClusterID)
				}
				c.mu.Lock()
				c.all = append(c.all, st)
				c.mu.Unlock()
			})
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		cl.Close()
	})
	return c
}

// of returns the statuses of one cluster's generation, in order.
func (c *collector) of(cluster string, gen int64) []dataplane.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []dataplane.Status
	for _, st := range c.all {
		if st.ClusterID == cluster && st.Generation == gen {
			out = append(out, st)
		}
	}
	return out
}

func (c *collector) count(cluster string, gen int64, match func(dataplane.Status) bool) int {
	n := 0
	for _, st := range c.of(cluster, gen) {
		if match(st) {
			n++
		}
	}
	return n
}

// waitNth waits for the n-th (1-based) matching status and returns it.
func (c *collector) waitNth(t *testing.T, cluster string, gen int64, n int, match func(dataplane.Status) bool) dataplane.Status {
	t.Helper()
	var got dataplane.Status
	require.Eventually(t, func() bool {
		seen := 0
		for _, st := range c.of(cluster, gen) {
			if match(st) {
				seen++
				if seen == n {
					got = st
					return true
				}
			}
		}
		return false
	}, waitTimeout, waitTick, "status #%d for %s generation %d never arrived; got %s", n, cluster, gen, c.dump(cluster, gen))
	return got
}

func (c *collector) wait(t *testing.T, cluster string, gen int64, match func(dataplane.Status) bool) dataplane.Status {
	t.Helper()
	return c.waitNth(t, cluster, gen, 1, match)
}

func (c *collector) dump(cluster string, gen int64) string {
	var b strings.Builder
	for _, st := range c.of(cluster, gen) {
		fmt.Fprintf(&b, "\n  %s broker=%d/%d msg=%q", st.State, st.Broker, st.Brokers, st.Message)
	}
	return b.String()
}

func is(state dataplane.State) func(dataplane.Status) bool {
	return func(st dataplane.Status) bool { return st.State == state }
}

// first-hand: produced by the apply itself, not re-published as an answer.
func fresh(state dataplane.State) func(dataplane.Status) bool {
	return func(st dataplane.Status) bool { return st.State == state && !isRepublished(st) }
}

func republished(state dataplane.State) func(dataplane.Status) bool {
	return func(st dataplane.Status) bool { return st.State == state && isRepublished(st) }
}

func isRepublished(st dataplane.Status) bool { return strings.Contains(st.Message, "re-published") }

// freshProgressBrokers lists the broker numbers of first-hand Progress events.
func freshProgressBrokers(sts []dataplane.Status) []int {
	var out []int
	for _, st := range sts {
		if st.State == dataplane.Progress && !isRepublished(st) {
			out = append(out, st.Broker)
		}
	}
	return out
}

func seq(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}
