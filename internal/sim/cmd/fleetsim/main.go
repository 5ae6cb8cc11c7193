// Command fleet-sim is the simulated data plane as a process of its own, for
// the compose stack and the production-wiring test: what `worker dev` runs
// in-process (internal/sim, internal/ddsim), without Temporal or Kafka.
//
//	fleet-sim              run: serve the inventory and a Datadog-compatible
//	                       monitors API, and apply fleet.commands on Kafka,
//	                       reporting on fleet.status
//	fleet-sim healthcheck  exit 0 when a running fleet-sim answers (for a
//	                       container healthcheck: the image has no shell)
//
// Configured by the environment:
//
//	KAFKA_BROKERS              seed brokers (127.0.0.1:9092)
//	FLEET_SIM_CLUSTERS         clusters in the generated fleet (2000)
//	FLEET_SIM_SEED             seed of the generated fleet (1)
//	FLEET_SIM_BROKER_TIME      time to restart one simulated broker (100ms)
//	FLEET_SIM_INVENTORY_ADDR   inventory HTTP: GET /v1/clusters, /v1/state,
//	                           /v1/faults, /healthz (127.0.0.1:8089)
//	FLEET_SIM_DATADOG_ADDR     Datadog-compatible API: /api/v1/monitor,
//	                           /api/v1/query, /api/v1/validate (127.0.0.1:8090)
//	DD_API_KEY, DD_APP_KEY     the keys the Datadog-compatible API demands
//	                           (empty: any non-empty key)
//	FLEET_SIM_STATE            optional JSON state file: a restart keeps
//	                           versions, generations and applies in flight
//	FLEET_SIM_FAULTS           optional JSON file of fault rules (sim.Fault)
//	FLEET_LOG_LEVEL            zap level (info)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sync/errgroup"

	"github.com/fleet-rollout/fleet/internal/ddsim"
	"github.com/fleet-rollout/fleet/internal/monitors"
	"github.com/fleet-rollout/fleet/internal/sim"
)

func main() {
	var err error
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		err = healthcheck(fromEnv())
	} else if len(os.Args) > 1 {
		err = fmt.Errorf("unknown argument %q (want no argument, or healthcheck); configuration is in the environment", os.Args[1])
	} else {
		err = run(fromEnv())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet-sim:", err)
		os.Exit(1)
	}
}

type config struct {
	brokers       []string
	clusters      int
	seed          int64
	brokerTime    time.Duration
	inventoryAddr string
	datadogAddr   string
	apiKey        string
	appKey        string
	statePath     string
	faultsPath    string
	logLevel      string
	err           error
}

func fromEnv() config {
	c := config{
		brokers:       strings.Split(env("KAFKA_BROKERS", "127.0.0.1:9092"), ","),
		inventoryAddr: env("FLEET_SIM_INVENTORY_ADDR", "127.0.0.1:8089"),
		datadogAddr:   env("FLEET_SIM_DATADOG_ADDR", "127.0.0.1:8090"),
		apiKey:        os.Getenv("DD_API_KEY"),
		appKey:        os.Getenv("DD_APP_KEY"),
		statePath:     os.Getenv("FLEET_SIM_STATE"),
		faultsPath:    os.Getenv("FLEET_SIM_FAULTS"),
		logLevel:      env("FLEET_LOG_LEVEL", "info"),
	}
	var errs []error
	n, err := strconv.Atoi(env("FLEET_SIM_CLUSTERS", "2000"))
	if err != nil || n <= 0 {
		errs = append(errs, fmt.Errorf("FLEET_SIM_CLUSTERS=%q: want a positive count", os.Getenv("FLEET_SIM_CLUSTERS")))
	}
	c.clusters = n
	if c.seed, err = strconv.ParseInt(env("FLEET_SIM_SEED", "1"), 10, 64); err != nil {
		errs = append(errs, fmt.Errorf("FLEET_SIM_SEED=%q: want an integer", os.Getenv("FLEET_SIM_SEED")))
	}
	if c.brokerTime, err = time.ParseDuration(env("FLEET_SIM_BROKER_TIME", "100ms")); err != nil || c.brokerTime <= 0 {
		errs = append(errs, fmt.Errorf("FLEET_SIM_BROKER_TIME=%q: want a duration such as 100ms", os.Getenv("FLEET_SIM_BROKER_TIME")))
	}
	c.err = errors.Join(errs...)
	return c
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func run(c config) error {
	if c.err != nil {
		return c.err
	}
	log, err := newLogger(c.logLevel)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	simCfg := sim.Config{BrokerTime: c.brokerTime, StatePath: c.statePath}
	if c.faultsPath != "" {
		b, err := os.ReadFile(c.faultsPath)
		if err != nil {
			return fmt.Errorf("FLEET_SIM_FAULTS: %w", err)
		}
		if err := json.Unmarshal(b, &simCfg.Faults); err != nil {
			return fmt.Errorf("FLEET_SIM_FAULTS %s: %w", c.faultsPath, err)
		}
	}
	if _, statErr := os.Stat(c.statePath); c.statePath == "" || statErr != nil {
		simCfg.Clusters = sim.GenerateFleet(c.clusters, c.seed)
	}
	s, err := sim.New(simCfg, log.Named("dataplane"))
	if err != nil {
		return err
	}
	defer func() {
		if err := s.Close(); err != nil {
			log.Warn("close the simulator", zap.Error(err))
		}
	}()
	dd := ddsim.New(monitors.Default(), s, ddsim.Options{APIKey: c.apiKey, AppKey: c.appKey, Log: log.Named("datadog-sim")})

	invLn, err := net.Listen("tcp", c.inventoryAddr)
	if err != nil {
		return fmt.Errorf("inventory: listen %s: %w", c.inventoryAddr, err)
	}
	ddLn, err := net.Listen("tcp", c.datadogAddr)
	if err != nil {
		_ = invLn.Close()
		return fmt.Errorf("datadog: listen %s: %w", c.datadogAddr, err)
	}
	log.Info("fleet-sim ready",
		zap.Int("clusters", len(s.Clusters())),
		zap.Strings("kafka", c.brokers),
		zap.String("inventory", "http://"+invLn.Addr().String()+"/v1/clusters"),
		zap.String("datadog", "http://"+ddLn.Addr().String()),
		zap.Duration("brokerTime", c.brokerTime),
		zap.String("state", c.statePath))

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serve(gctx, invLn, s.Handler()) })
	g.Go(func() error { return serve(gctx, ddLn, dd.Handler()) })
	g.Go(func() error {
		if err := s.Run(gctx, c.brokers); err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("data plane: %w", err)
		}
		return nil
	})
	err = g.Wait()
	log.Info("fleet-sim stopped", zap.Error(err))
	return err
}

func serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// healthcheck asks the running fleet-sim's inventory for /healthz.
func healthcheck(c config) error {
	host, port, err := net.SplitHostPort(c.inventoryAddr)
	if err != nil {
		return fmt.Errorf("FLEET_SIM_INVENTORY_ADDR=%q: %w", c.inventoryAddr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	hc := &http.Client{Timeout: 3 * time.Second}
	resp, err := hc.Get("http://" + net.JoinHostPort(host, port) + "/healthz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz: %s", resp.Status)
	}
	return nil
}

func newLogger(level string) (*zap.Logger, error) {
	cfg := zap.NewProductionConfig()
	l, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("FLEET_LOG_LEVEL: %w", err)
	}
	cfg.Level = zap.NewAtomicLevelAt(l)
	return cfg.Build()
}
