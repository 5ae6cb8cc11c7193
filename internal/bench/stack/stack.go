// Package stack runs the whole fleet system in one process for benchmarks
// and fault-injection tests: the dev stack (app.StartDev: the in-process
// Temporal server, kfake, the simulated data plane, the Datadog-compatible
// monitors endpoint) and the worker (app.Run), with handles to break each
// piece and bring it back: restart the worker, stop and start the Temporal
// server on the same data dir, take Kafka down and up, make the monitors
// endpoint fail. With Options.WorkerBinary the worker runs as its own
// process instead (process.go): the production binary, configured by
// environment variables as a deployment configures it.
package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	sdkclient "go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/internal/app"
	"github.com/fleet-rollout/fleet/internal/devserver"
	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/sim"
	"github.com/fleet-rollout/fleet/starter/client"
)

// Options configure Start.
type Options struct {
	DataDir    string
	Clusters   int
	Seed       int64
	BrokerTime time.Duration
	Faults     []sim.Fault
	// Configure may change the worker's Config (Slack, webhook, ...) before
	// the worker first starts.
	Configure func(*app.Config)
	// NoWorker leaves the worker stopped (StartWorker starts it).
	NoWorker bool
	// WorkerBinary, when set, runs the worker as its own process: this
	// binary (built from ./worker) in production mode, its environment
	// made from Config by WorkerEnv, plus WorkerEnvExtra. WorkerLog is the
	// file its output goes to ("": DataDir/worker.log, appended across
	// restarts).
	WorkerBinary   string
	WorkerEnvExtra []string
	WorkerLog      string
	Log            *zap.Logger
}

// Stack is the running system.
type Stack struct {
	Dev *app.Dev
	// Config is what the worker runs with.
	Config app.Config
	// Temporal is a client of the stack's Temporal server; Fleet wraps it.
	Temporal sdkclient.Client
	Fleet    *client.Client
	// Before is the fleet as generated, before any rollout.
	Before map[string]fleet.Cluster

	log     *zap.Logger
	dataDir string
	opts    Options

	mu           sync.Mutex
	workerCancel context.CancelFunc
	workerDone   chan error
	workerRuns   int
	// proc is the worker process (WorkerBinary), the current or the last.
	proc *workerProc

	kafkaDown atomic.Bool
}

// Start starts the dev stack and (unless NoWorker) the worker.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	dev, err := app.StartDev(ctx, app.DevOptions{
		DataDir:    o.DataDir,
		Clusters:   o.Clusters,
		Seed:       o.Seed,
		BrokerTime: o.BrokerTime,
		Faults:     o.Faults,
	}, o.Log)
	if err != nil {
		return nil, err
	}
	s := &Stack{Dev: dev, Config: dev.Config, log: o.Log, dataDir: o.DataDir, opts: o, Before: map[string]fleet.Cluster{}}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if o.Configure != nil {
		o.Configure(&s.Config)
	}
	for _, c := range dev.Sim.Clusters() {
		s.Before[c.ID] = c
	}
	if !o.NoWorker {
		if err := s.StartWorker(); err != nil {
			return nil, err
		}
	}
	c, err := app.Dial(s.Config, o.Log)
	if err != nil {
		return nil, err
	}
	s.Temporal = c
	s.Fleet = client.New(c)
	return s, nil
}

// StartWorker runs the worker (app.Run) in the background, or, with
// WorkerBinary, starts the worker process and waits until it serves
// /healthz.
func (s *Stack) StartWorker() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.workerCancel != nil || (s.proc != nil && s.proc.running()) {
		return errors.New("stack: worker already running")
	}
	if s.opts.WorkerBinary != "" {
		s.workerRuns++
		p, err := s.startProcess()
		if err != nil {
			return err
		}
		s.proc = p
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	s.workerCancel, s.workerDone = cancel, done
	s.workerRuns++
	cfg := s.Config
	log := s.log.With(zap.Int("workerRun", s.workerRuns))
	go func() { done <- app.Run(ctx, cfg, log) }()
	return nil
}

// StopWorker cancels the worker and waits (bounded) until app.Run returns;
// a worker process is interrupted (SIGINT, as a deployment stops it) and
// waited for, killed if it does not exit within a minute.
func (s *Stack) StopWorker() error {
	s.mu.Lock()
	cancel, done := s.workerCancel, s.workerDone
	s.workerCancel, s.workerDone = nil, nil
	p := s.proc
	s.mu.Unlock()
	if p != nil {
		return p.stop(time.Minute)
	}
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("worker: %w", err)
		}
		return nil
	case <-time.After(60 * time.Second):
		return errors.New("stack: worker did not stop within 60s")
	}
}

// WorkerRuns is how many times the worker was started.
func (s *Stack) WorkerRuns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.workerRuns
}

// RestartTemporal stops the Temporal server, waits down, and starts it again
// on the same data dir and address. Clients (the worker's, the stack's)
// reconnect by themselves.
func (s *Stack) RestartTemporal(ctx context.Context, down time.Duration) error {
	addr := s.Dev.Temporal.Address()
	host, portS, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	port, err := strconv.Atoi(portS)
	if err != nil {
		return err
	}
	if err := s.Dev.Temporal.Stop(); err != nil {
		return fmt.Errorf("stop temporal: %w", err)
	}
	select {
	case <-time.After(down):
	case <-ctx.Done():
		return ctx.Err()
	}
	var srv *devserver.Server
	// The port can take a moment to be free again.
	for attempt := 0; ; attempt++ {
		srv, err = devserver.Start(ctx, devserver.Options{
			DataDir:          s.dataDir,
			Host:             host,
			Port:             port,
			Namespace:        s.Config.Namespace,
			SearchAttributes: devserver.DefaultSearchAttributes(),
			Log:              s.log.Named("temporal-server"),
		})
		if err == nil || attempt >= 20 {
			break
		}
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err != nil {
		return fmt.Errorf("start temporal again: %w", err)
	}
	// Dev.Close stops whatever Dev.Temporal is then.
	s.Dev.Temporal = srv
	return nil
}

// SetKafkaDown makes Kafka drop every request, closing the connection
// (down), or serve again (app.Dev.SetKafkaDown).
func (s *Stack) SetKafkaDown(down bool) {
	s.kafkaDown.Store(down)
	s.Dev.SetKafkaDown(down)
}

// KafkaDown reports the Kafka-down switch.
func (s *Stack) KafkaDown() bool { return s.kafkaDown.Load() }

// Close stops the worker and the dev stack.
func (s *Stack) Close() {
	if err := s.StopWorker(); err != nil {
		s.log.Warn("stop worker", zap.Error(err))
	}
	if s.Temporal != nil {
		s.Temporal.Close()
	}
	if s.kafkaDown.Load() {
		s.SetKafkaDown(false)
	}
	s.Dev.Close()
}
