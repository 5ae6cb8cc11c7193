// Command worker runs the fleet rollout worker: the Temporal workflows and
// activities, the status bridge and the worker's HTTP endpoints.
//
//	worker            connect to the addresses in the environment (production:
//	                  refuses to start without Datadog keys, or FLEET_MONITORING=off,
//	                  and without a policy whose access control is explicit)
//	worker dev        start the embedded dev stack in this process, then the worker
//	worker stack      start only the embedded dev stack (for a worker run as its
//	                  own process: `worker` with the dev stack's addresses)
//
// FLEET_CPUPROFILE=path writes a CPU profile of the process, in any mode, to
// path when it exits (go tool pprof); fleetbench -cpuprofile sets it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/fleet-rollout/fleet/internal/app"
)

// CPUProfileEnv names the file a CPU profile of the whole process is
// written to when it exits (unset: none).
const CPUProfileEnv = "FLEET_CPUPROFILE"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if path := os.Getenv(CPUProfileEnv); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("%s: %w", CPUProfileEnv, err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("%s: %w", CPUProfileEnv, err)
		}
		defer pprof.StopCPUProfile()
	}
	mode := "run"
	if len(args) > 0 && (args[0] == "dev" || args[0] == "run" || args[0] == "stack") {
		mode, args = args[0], args[1:]
	}
	log, err := newLogger(mode != "run")
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	if mode == "run" {
		fs := flag.NewFlagSet("worker", flag.ContinueOnError)
		if err := fs.Parse(args); err != nil {
			return err
		}
		cfg, err := app.FromEnv()
		if err != nil {
			return err
		}
		return app.Run(ctx, cfg, log)
	}
	return runDev(ctx, args, mode == "dev", log)
}

func runDev(ctx context.Context, args []string, withWorker bool, log *zap.Logger) error {
	fs := flag.NewFlagSet("worker dev", flag.ContinueOnError)
	var (
		o          app.DevOptions
		faultsFile string
		reset      bool
	)
	fs.StringVar(&o.DataDir, "data", ".fleet-dev", "directory for the Temporal SQLite file, Kafka's log and the data plane's state")
	fs.IntVar(&o.Clusters, "clusters", 2000, "simulated clusters (used when the data dir is new)")
	fs.Int64Var(&o.Seed, "seed", 1, "seed of the simulated fleet")
	fs.DurationVar(&o.BrokerTime, "broker-time", 100*time.Millisecond, "time to restart one simulated broker")
	fs.StringVar(&faultsFile, "faults", "", "JSON file with fault rules for the simulated data plane")
	fs.IntVar(&o.TemporalPort, "temporal-port", 7233, "Temporal frontend gRPC port")
	fs.IntVar(&o.KafkaPort, "kafka-port", 9092, "Kafka port")
	fs.IntVar(&o.InventoryPort, "inventory-port", 8089, "simulated data plane's inventory HTTP port")
	fs.IntVar(&o.DatadogPort, "datadog-port", 8090, "Datadog-compatible monitors endpoint port")
	fs.IntVar(&o.WorkerPort, "worker-port", 8088, "worker HTTP port")
	fs.StringVar(&o.UIBinary, "ui", "bin/fleet-ui", "Temporal Web UI binary (built by `make ui`)")
	fs.IntVar(&o.UIPort, "ui-port", 8233, "Temporal Web UI port")
	fs.BoolVar(&reset, "reset", false, "delete the data dir first (a fresh fleet and no history)")
	policyPath := fs.String("policy", os.Getenv("FLEET_POLICY"), "policy file: blackouts, protected clusters, access control")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Persistent = true
	if reset {
		if err := os.RemoveAll(o.DataDir); err != nil {
			return fmt.Errorf("reset %s: %w", o.DataDir, err)
		}
	}
	if faultsFile != "" {
		b, err := os.ReadFile(faultsFile)
		if err != nil {
			return fmt.Errorf("read faults: %w", err)
		}
		if err := json.Unmarshal(b, &o.Faults); err != nil {
			return fmt.Errorf("parse faults %s: %w", faultsFile, err)
		}
	}
	dev, err := app.StartDev(ctx, o, log)
	if err != nil {
		return err
	}
	defer dev.Close()
	// Secrets and the policy come from the environment in dev mode too, so
	// Slack and the Datadog webhook can be tried against the dev stack.
	// The dev stack's own Temporal and Kafka are plaintext: connection
	// settings in the environment do not apply, nor do their errors.
	env, err := app.FromEnv()
	if err != nil {
		log.Warn("connection settings in the environment are ignored by the dev stack", zap.Error(err))
	}
	dev.Config.PolicyPath = *policyPath
	dev.Config.SlackToken, dev.Config.SlackAPIURL = env.SlackToken, env.SlackAPIURL
	dev.Config.SlackSigningSecret, dev.Config.WebhookSecret = env.SlackSigningSecret, env.WebhookSecret
	dev.Config.WorkerKeyFile, dev.Config.WorkerName, dev.Config.SlackTeamID = env.WorkerKeyFile, env.WorkerName, env.SlackTeamID
	if env.SlackToken != "" {
		dev.Config.SlackChannel = env.SlackChannel
	}
	dev.Config.DashboardUserHeader = env.DashboardUserHeader
	log.Info("fleet dashboard", zap.String("url", "http://"+dev.Config.HTTPAddr+"/"), zap.String("temporalWebUI", dev.UIAddress))
	if !withWorker {
		log.Info("dev stack only; run the worker with these addresses", dev.Config.Fields()...)
		// A production worker fails closed: it needs the keys and a policy.
		log.Info("the worker also needs DD_API_KEY=" + app.DevDatadogAPIKey + " DD_APP_KEY=" + app.DevDatadogAppKey +
			" DD_URL=" + dev.Config.Datadog.URL + ", FLEET_SIGNAL_KEY (openssl rand -hex 32) and FLEET_POLICY (a file with `access: open` will do)")
		<-ctx.Done()
		return nil
	}
	if err := app.Run(ctx, dev.Config, log); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func newLogger(dev bool) (*zap.Logger, error) {
	cfg := zap.NewProductionConfig()
	if dev {
		cfg = zap.NewDevelopmentConfig()
		cfg.DisableStacktrace = true
		cfg.Level = zap.NewAtomicLevelAt(zapcore.InfoLevel)
	}
	if lvl := os.Getenv("FLEET_LOG_LEVEL"); lvl != "" {
		l, err := zapcore.ParseLevel(lvl)
		if err != nil {
			return nil, fmt.Errorf("FLEET_LOG_LEVEL: %w", err)
		}
		cfg.Level = zap.NewAtomicLevelAt(l)
	}
	return cfg.Build()
}
