package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/activities"
	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/internal/ddsim"
	"github.com/fleet-rollout/fleet/internal/devserver"
	"github.com/fleet-rollout/fleet/internal/monitors"
	"github.com/fleet-rollout/fleet/internal/sim"
	"github.com/fleet-rollout/fleet/workflows"
)

// Dev-stack keys for the Datadog-compatible endpoint. They guard nothing
// real; they exist so the real client's authentication path runs.
const (
	DevDatadogAPIKey = "dev-api-key"
	DevDatadogAppKey = "dev-app-key"
)

// DevOptions configure the dev stack. A zero port picks a free one.
type DevOptions struct {
	// DataDir keeps the Temporal SQLite file, Kafka's log and the
	// simulator's state, so a restart resumes where it stopped.
	DataDir       string
	Clusters      int
	Seed          int64
	BrokerTime    time.Duration
	Faults        []sim.Fault
	TemporalPort  int
	KafkaPort     int
	InventoryPort int
	DatadogPort   int
	WorkerPort    int
	// UIBinary, when set and present, is started as the Temporal Web UI on UIPort.
	UIBinary string
	UIPort   int
	// Persistent keeps Kafka on disk (DataDir/kafka); tests use memory.
	Persistent bool
	// AdminPort serves the fault-injection endpoints (admin.go) on
	// 127.0.0.1; 0 reads FLEET_ADMIN_PORT, and neither means off.
	AdminPort int
}

// Dev is the running dev stack.
type Dev struct {
	Config    Config
	Temporal  *devserver.Server
	Kafka     *kfake.Cluster
	Sim       *sim.Simulator
	Datadog   *ddsim.Server
	UIAddress string
	cancel    context.CancelFunc
	done      chan struct{}
	closers   []func()
	log       *zap.Logger

	// AdminAddress is where the admin endpoints listen ("" when off).
	AdminAddress string
}

// StartDev starts the in-process Temporal server, Kafka, the simulated data
// plane and the Datadog-compatible monitors endpoint, and returns the Config
// a worker uses to talk to them.
func StartDev(ctx context.Context, o DevOptions, log *zap.Logger) (_ *Dev, err error) {
	if o.DataDir == "" {
		return nil, errors.New("dev: DataDir is required")
	}
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("dev: data dir: %w", err)
	}
	if o.Clusters <= 0 {
		o.Clusters = 2000
	}
	if o.BrokerTime <= 0 {
		o.BrokerTime = 100 * time.Millisecond
	}
	d := &Dev{log: log, done: make(chan struct{})}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()

	start := time.Now()
	temporalPort, err := pickPort(o.TemporalPort)
	if err != nil {
		return nil, err
	}
	d.Temporal, err = devserver.Start(ctx, devserver.Options{
		DataDir:          o.DataDir,
		Host:             "127.0.0.1",
		Port:             temporalPort,
		Namespace:        "default",
		SearchAttributes: devserver.DefaultSearchAttributes(),
		Log:              log.Named("temporal-server"),
	})
	if err != nil {
		return nil, fmt.Errorf("dev: temporal server: %w", err)
	}
	d.closers = append(d.closers, func() { _ = d.Temporal.Stop() })

	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.SeedTopics(12, dataplane.CommandsTopic, dataplane.StatusTopic, workflows.EventsTopic, workflows.AuditTopic),
		kfake.AllowAutoTopicCreation(),
	}
	if o.KafkaPort > 0 {
		kopts = append(kopts, kfake.Ports(o.KafkaPort))
	}
	if o.Persistent {
		kopts = append(kopts, kfake.DataDir(filepath.Join(o.DataDir, "kafka")))
	}
	d.Kafka, err = kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("dev: kafka: %w", err)
	}
	d.closers = append(d.closers, d.Kafka.Close)
	brokers := d.Kafka.ListenAddrs()

	statePath := filepath.Join(o.DataDir, "dataplane.json")
	simCfg := sim.Config{BrokerTime: o.BrokerTime, Faults: o.Faults, StatePath: statePath}
	if _, statErr := os.Stat(statePath); statErr != nil {
		simCfg.Clusters = sim.GenerateFleet(o.Clusters, o.Seed)
	}
	d.Sim, err = sim.New(simCfg, log.Named("dataplane"))
	if err != nil {
		return nil, fmt.Errorf("dev: simulator: %w", err)
	}
	d.closers = append(d.closers, func() { _ = d.Sim.Close() })
	d.Datadog = ddsim.New(monitors.Default(), d.Sim, ddsim.Options{APIKey: DevDatadogAPIKey, AppKey: DevDatadogAppKey, Log: log.Named("datadog-sim")})

	runCtx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	go func() {
		defer close(d.done)
		if err := d.Sim.Run(runCtx, brokers); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("simulated data plane stopped", zap.Error(err))
		}
	}()

	invAddr, err := serveBackground(runCtx, o.InventoryPort, d.Sim.Handler(), log)
	if err != nil {
		return nil, err
	}
	ddAddr, err := serveBackground(runCtx, o.DatadogPort, d.Datadog.Handler(), log)
	if err != nil {
		return nil, err
	}
	if err := d.startAdmin(runCtx, o.AdminPort); err != nil {
		return nil, err
	}
	workerPort, err := pickPort(o.WorkerPort)
	if err != nil {
		return nil, err
	}
	signalKey, err := devSignalKey(o.DataDir)
	if err != nil {
		return nil, err
	}
	// The plan store names an absolute directory (make run's data dir is
	// relative: .fleet-dev).
	plansDir, err := filepath.Abs(filepath.Join(o.DataDir, "plans"))
	if err != nil {
		return nil, fmt.Errorf("plan store directory: %w", err)
	}
	d.Config = Config{
		SignalKey:       signalKey,
		TemporalAddress: d.Temporal.Address(),
		Namespace:       "default",
		KafkaBrokers:    brokers,
		Inventory:       "http://" + invAddr + "/v1/clusters",
		Datadog: activities.DatadogConfig{
			APIKey: DevDatadogAPIKey,
			AppKey: DevDatadogAppKey,
			URL:    "http://" + ddAddr,
		},
		SlackChannel: "#fleet-rollouts",
		HTTPAddr:     fmt.Sprintf("127.0.0.1:%d", workerPort),
		PlanStore:    "dir:" + plansDir,
		Dev:          true,
	}
	if o.UIBinary != "" {
		if _, statErr := os.Stat(o.UIBinary); statErr == nil {
			uiPort, perr := pickPort(o.UIPort)
			if perr != nil {
				return nil, perr
			}
			stop, uerr := devserver.StartUI(runCtx, o.UIBinary, d.Temporal.Address(), uiPort, log.Named("ui"))
			if uerr != nil {
				log.Warn("temporal web ui not started", zap.Error(uerr))
			} else {
				d.closers = append(d.closers, stop)
				d.UIAddress = fmt.Sprintf("http://127.0.0.1:%d", uiPort)
			}
		} else {
			log.Info("temporal web ui not built; run `make ui` to build it", zap.String("binary", o.UIBinary))
		}
	}
	log.Info("dev stack ready",
		zap.String("temporal", d.Config.TemporalAddress),
		zap.Strings("kafka", brokers),
		zap.String("inventory", d.Config.Inventory),
		zap.String("datadog", d.Config.Datadog.URL),
		zap.String("ui", d.UIAddress),
		zap.Int("clusters", len(d.Sim.Clusters())),
		zap.Duration("took", time.Since(start)))
	return d, nil
}

// Close stops the dev stack in reverse order of start.
func (d *Dev) Close() {
	if d.cancel != nil {
		d.cancel()
		<-d.done
	}
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.closers = nil
}

func pickPort(p int) (int, error) {
	if p > 0 {
		return p, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// serveBackground listens on 127.0.0.1:port (0 = any) and serves h until ctx
// is done; it returns the address.
func serveBackground(ctx context.Context, port int, h http.Handler, log *zap.Logger) (string, error) {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return "", fmt.Errorf("listen on port %d: %w", port, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", zap.String("addr", ln.Addr().String()), zap.Error(err))
		}
	}()
	return ln.Addr().String(), nil
}

// devSignalKey is the dev stack's signal key (FLEET_SIGNAL_KEY): made once
// and kept in the data dir, so a restarted worker still opens the seals of
// the signals its rollouts sent before.
func devSignalKey(dir string) (string, error) {
	path := filepath.Join(dir, "signal.key")
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("dev signal key: %w", err)
	}
	key := hex.EncodeToString(b)
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("dev signal key: %w", err)
	}
	return key, nil
}
