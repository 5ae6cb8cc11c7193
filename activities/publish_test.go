package activities

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/workflows"
)

// publishBound is how long a Publish whose context expires after
// publishDeadline may take to return: generous, so the tests say "it
// returns instead of hanging", not "it returns fast".
const (
	publishDeadline = 2 * time.Second
	publishBound    = 15 * time.Second
)

// kafkaAt is a kfake broker on a fixed port with its log on disk, so it can
// be closed and started again where the client expects it, with its state
// (topics, producer IDs) kept, like the dev stack's Kafka.
type kafkaAt struct {
	t    *testing.T
	port int
	dir  string
	c    *kfake.Cluster

	mu        sync.Mutex
	fn        func() (error, bool)
	installed bool
}

func newKafkaAt(t *testing.T) *kafkaAt {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	k := &kafkaAt{t: t, port: port, dir: filepath.Join(t.TempDir(), "kafka")}
	k.start()
	t.Cleanup(k.close)
	return k
}

func (k *kafkaAt) start() {
	k.t.Helper()
	k.installed = false // a new cluster has no control function
	var err error
	for attempt := 0; ; attempt++ {
		k.c, err = kfake.NewCluster(
			kfake.NumBrokers(1),
			kfake.Ports(k.port),
			kfake.SeedTopics(12, dataplane.CommandsTopic),
			kfake.DataDir(k.dir),
		)
		if err == nil || attempt == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond) // the port may take a moment to be free again
	}
	require.NoError(k.t, err)
}

func (k *kafkaAt) close() {
	if k.c != nil {
		k.c.Close()
		k.c = nil
	}
}

// control makes the broker handle every request with fn (which returns the
// error to close the connection with, or nil to leave the request
// unanswered, and whether it handled the request); nil: serve normally.
func (k *kafkaAt) control(fn func() (error, bool)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.fn = fn
	if k.installed {
		return
	}
	k.installed = true
	k.c.Control(func(kmsg.Request) (kmsg.Response, error, bool) {
		k.c.KeepControl()
		k.mu.Lock()
		fn := k.fn
		k.mu.Unlock()
		if fn == nil {
			return nil, nil, false
		}
		err, handled := fn()
		return nil, err, handled
	})
}

func (k *kafkaAt) addr() string { return fmt.Sprintf("127.0.0.1:%d", k.port) }

func applyCommands(n int, gen int64) workflows.PublishInput {
	var in workflows.PublishInput
	for i := range n {
		in.Commands = append(in.Commands, dataplane.Command{
			Kind:       dataplane.Apply,
			ClusterID:  fmt.Sprintf("lkc-%05d", i),
			Generation: gen,
			Spec:       &dataplane.Spec{Version: "3.9.0"},
			RolloutID:  "rollout/publish-test",
			ReplyTo:    "rollout/publish-test/batch-1",
			IssuedAt:   time.Now(),
		})
	}
	return in
}

// publishWithin calls Publish with a context deadline of d and reports its
// error and how long it took; it fails the test if Publish has not returned
// within bound (the call is left running, and ends when the client closes).
func publishWithin(t *testing.T, a *Activities, in workflows.PublishInput, d, bound time.Duration) (error, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- a.Publish(ctx, in) }()
	select {
	case err := <-done:
		return err, time.Since(start)
	case <-time.After(bound):
		t.Fatalf("Publish did not return within %s of a %s deadline: it hangs", bound, d)
		return nil, 0
	}
}

func newPublisher(t *testing.T, brokers ...string) *Activities {
	t.Helper()
	kc, err := kgo.NewClient(ProducerOptions(brokers)...)
	require.NoError(t, err)
	t.Cleanup(kc.Close)
	return &Activities{Kafka: kc, Log: zap.NewNop()}
}

// Each fault takes Kafka away while the worker's producer is warm (metadata
// known, connections open, producer ID assigned): Publish returns an error
// once its context's deadline has passed instead of waiting for Kafka, and
// once Kafka is back the next call (Temporal's retry) succeeds.
func TestPublishKafkaDown(t *testing.T) {
	for _, fault := range []struct {
		name     string
		down, up func(*kafkaAt)
	}{{
		// The broker stops: connections are dropped and new ones refused;
		// it starts again on the same address with its log.
		name: "refuses connections",
		down: func(k *kafkaAt) { k.close() },
		up:   func(k *kafkaAt) { k.start() },
	}, {
		// The broker closes the connection on every request (the dev
		// stack's Kafka-down switch, which the chaos suite uses).
		name: "drops requests",
		down: func(k *kafkaAt) { k.control(func() (error, bool) { return errors.New("kafka is down"), true }) },
		up:   func(k *kafkaAt) { k.control(nil) },
	}, {
		// The broker reads requests and never answers them.
		name: "never answers",
		down: func(k *kafkaAt) { k.control(func() (error, bool) { return nil, true }) },
		up:   func(k *kafkaAt) { k.control(nil) },
	}} {
		t.Run(fault.name, func(t *testing.T) {
			k := newKafkaAt(t)
			a := newPublisher(t, k.addr())
			err, _ := publishWithin(t, a, applyCommands(20, 1), 10*time.Second, publishBound)
			require.NoError(t, err, "Kafka is up")

			fault.down(k)
			err, took := publishWithin(t, a, applyCommands(20, 2), publishDeadline, publishBound)
			t.Logf("Kafka down: Publish with a %s deadline returned after %s: %v", publishDeadline, took.Round(time.Millisecond), err)
			require.Error(t, err, "Kafka is down")

			fault.up(k)
			// The workflow's Publish has a 30s StartToClose timeout.
			err, took = publishWithin(t, a, applyCommands(20, 2), 30*time.Second, 45*time.Second)
			t.Logf("Kafka back: Publish returned after %s: %v", took.Round(time.Millisecond), err)
			require.NoError(t, err, "Kafka is back")
		})
	}
}
