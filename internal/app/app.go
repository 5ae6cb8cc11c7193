// Package app assembles the worker process: the Temporal worker with the
// workflows and activities, the status bridge, and the worker's HTTP
// endpoints. The same code runs against a real Temporal cluster, real Kafka,
// real Datadog and real Slack, or against the dev stack (dev.go).
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/twmb/franz-go/pkg/kgo"
	sdkclient "go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/fleet-rollout/fleet/activities"
	"github.com/fleet-rollout/fleet/internal/bridge"
	"github.com/fleet-rollout/fleet/internal/connect"
	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/internal/events"
	"github.com/fleet-rollout/fleet/internal/identity"
	"github.com/fleet-rollout/fleet/internal/inventory"
	"github.com/fleet-rollout/fleet/internal/metrics"
	"github.com/fleet-rollout/fleet/internal/monitors"
	"github.com/fleet-rollout/fleet/internal/notify"
	"github.com/fleet-rollout/fleet/internal/planstore"
	"github.com/fleet-rollout/fleet/internal/policy"
	"github.com/fleet-rollout/fleet/internal/redact"
	"github.com/fleet-rollout/fleet/internal/sigauth"
	"github.com/fleet-rollout/fleet/workflows"
)

// Config is every address and key the worker uses. Secrets are never logged.
type Config struct {
	// TemporalAddress and Namespace are the frontend and namespace; they
	// win over Temporal's (FromEnv copies them from there).
	TemporalAddress string
	Namespace       string
	// Temporal is the rest of the connection (TLS, client certificate, API
	// key), from the temporal CLI's profile and the TEMPORAL_* variables.
	// The zero value is plaintext.
	Temporal     connect.Temporal
	KafkaBrokers []string
	// Kafka is TLS and SASL for every Kafka client (KAFKA_TLS*, KAFKA_SASL_*);
	// the zero value is plaintext without authentication.
	Kafka connect.Kafka
	// Inventory is an http(s) URL or a file path listing the fleet.
	Inventory string
	// Datadog; an empty APIKey disables health checks (the log says so).
	Datadog activities.DatadogConfig
	// Slack; an empty token sends notifications to the log.
	SlackToken   string
	SlackChannel string
	SlackAPIURL  string
	// SlackSigningSecret verifies Slack's button requests; empty turns them off.
	SlackSigningSecret string
	// WebhookSecret authenticates the Datadog webhook; empty turns it off.
	WebhookSecret string
	// PolicyPath is the policy file: maintenance-window blackouts, protected
	// clusters and access control (roles); empty means none.
	PolicyPath string
	// HTTPAddr is where the worker serves /healthz (and webhooks).
	HTTPAddr string
	// PlanStore (FLEET_PLAN_STORE) is where rollouts' full plans are kept,
	// outside workflow history: dir:/path (a directory every worker shares)
	// or s3://bucket/prefix (FLEET_PLAN_STORE_S3_* for the endpoint and
	// credentials). The dev stack uses DataDir/plans.
	PlanStore string

	// SignalKey (FLEET_SIGNAL_KEY, hex or base64, at least 32 bytes) seals
	// the system's internal signals and the commands' reply tokens; every
	// worker of a deployment has the same one. SignalKeysOld
	// (FLEET_SIGNAL_KEYS_OLD, comma-separated) are still accepted, for
	// rotation. Empty: nothing is sealed (the dev stack without a key).
	SignalKey     string
	SignalKeysOld []string
	// WorkerKeyFile (FLEET_WORKER_KEY) is the worker's ed25519 private key:
	// it signs, as the service WorkerName (FLEET_WORKER_NAME, default
	// fleet-worker), the requests of the Slack users it verified. The
	// policy lists its public key under access.services.
	WorkerKeyFile string
	WorkerName    string
	// SlackTeamID (SLACK_TEAM_ID) is the only Slack workspace whose button
	// presses are taken.
	SlackTeamID string
	// Dev marks the embedded dev stack's configuration: Validate lets it
	// run without Datadog keys or a policy, and LogMode says so.
	Dev bool
	// Monitoring is FLEET_MONITORING: "off" runs without Datadog (see
	// config.go); empty or "on" requires Datadog keys in production.
	Monitoring string
	// DashboardUserHeader (FLEET_DASHBOARD_USER_HEADER, e.g.
	// X-Forwarded-Email) is the header an authenticating proxy in front of
	// the worker sets to the person: the dashboard acts for them as
	// "web:<value>", signed with the worker's key. Empty: the dashboard is
	// read-only (open on the dev stack).
	DashboardUserHeader string
	// Metrics is the worker's Prometheus registry, served on /metrics and
	// given to the Temporal client as its MetricsHandler by Dial. Run makes
	// one when it is nil; a client dialled without it records nothing.
	Metrics *metrics.Metrics
}

// DefaultWorkerName is the service name the worker signs Slack users'
// requests as.
const DefaultWorkerName = "fleet-worker"

// DefaultTemporalAddress is the dev stack's frontend, used when neither the
// environment nor a profile names one.
const DefaultTemporalAddress = "127.0.0.1:7233"

// FromEnv reads the configuration from the environment, with defaults that
// point at the dev stack. Temporal's connection comes from the temporal
// CLI's config file profile (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE) and
// the TEMPORAL_* variables over it; Kafka's TLS and SASL from KAFKA_*.
// Malformed connection settings are an error naming the variable or file;
// the other fields are filled in either way.
func FromEnv() (Config, error) {
	var errs []error
	tc, err := connect.LoadTemporal(os.Getenv, connect.Overrides{}, DefaultTemporalAddress)
	if err != nil {
		errs = append(errs, err)
		tc.Address, tc.Namespace = env("TEMPORAL_ADDRESS", DefaultTemporalAddress), env("TEMPORAL_NAMESPACE", connect.DefaultNamespace)
	}
	kafka, err := connect.KafkaFromEnv(os.Getenv)
	if err != nil {
		errs = append(errs, err)
	}
	return Config{
		TemporalAddress: tc.Address,
		Namespace:       tc.Namespace,
		Temporal:        tc,
		KafkaBrokers:    strings.Split(env("KAFKA_BROKERS", "127.0.0.1:9092"), ","),
		Kafka:           kafka,
		Inventory:       env("FLEET_INVENTORY", "http://127.0.0.1:8089/v1/clusters"),
		Datadog: activities.DatadogConfig{
			APIKey: os.Getenv("DD_API_KEY"),
			AppKey: os.Getenv("DD_APP_KEY"),
			Site:   os.Getenv("DD_SITE"),
			URL:    os.Getenv("DD_URL"),
			// Per-request bound, e.g. "5s" (default activities.DefaultDatadogRequestTimeout).
			RequestTimeout: envDuration("DD_REQUEST_TIMEOUT", 0),
			// Least time between two reads of a product's monitors, shared
			// by the batches that ask meanwhile, e.g. "500ms" (default
			// activities.DefaultHealthReadSpacing).
			HealthReadSpacing: envDuration("DD_MONITORS_READ_SPACING", 0),
			// Deadline of one shared read of a product's monitors (all
			// its pages), e.g. "30s" (default
			// activities.DefaultHealthReadTimeout).
			HealthReadTimeout: envDuration("DD_MONITORS_READ_TIMEOUT", 0),
			// How old a product's roster (which monitor groups exist, read
			// with every group) may be; the frequent read asks only the
			// groups not OK, e.g. "60s" (default
			// activities.DefaultHealthRosterMaxAge).
			HealthRosterMaxAge: envDuration("DD_MONITORS_ROSTER_MAX_AGE", 0),
			// Deadline of one roster read (every page, and each page),
			// e.g. "2m" (default activities.DefaultHealthRosterTimeout).
			HealthRosterTimeout: envDuration("DD_MONITORS_ROSTER_TIMEOUT", 0),
		},
		Monitoring:          os.Getenv(MonitoringEnv),
		SlackToken:          os.Getenv("SLACK_TOKEN"),
		SlackChannel:        env("SLACK_CHANNEL", "#fleet-rollouts"),
		SlackAPIURL:         os.Getenv("SLACK_API_URL"),
		SlackSigningSecret:  os.Getenv("SLACK_SIGNING_SECRET"),
		WebhookSecret:       os.Getenv("FLEET_WEBHOOK_SECRET"),
		PolicyPath:          os.Getenv("FLEET_POLICY"),
		PlanStore:           os.Getenv(planstore.EnvStore),
		HTTPAddr:            env("FLEET_HTTP_ADDR", "127.0.0.1:8088"),
		SignalKey:           os.Getenv("FLEET_SIGNAL_KEY"),
		SignalKeysOld:       splitList(os.Getenv("FLEET_SIGNAL_KEYS_OLD")),
		WorkerKeyFile:       os.Getenv("FLEET_WORKER_KEY"),
		WorkerName:          env("FLEET_WORKER_NAME", DefaultWorkerName),
		SlackTeamID:         os.Getenv("SLACK_TEAM_ID"),
		DashboardUserHeader: os.Getenv("FLEET_DASHBOARD_USER_HEADER"),
	}, errors.Join(errs...)
}

// envDuration reads a Go duration ("5s"); unset or malformed gives def.
func envDuration(key string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(key)); err == nil && d > 0 {
		return d
	}
	return def
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// Fields describes the configuration for the log, without secrets: the
// credentials show as booleans or file paths, URLs with their tokens masked.
func (c Config) Fields() []zap.Field {
	f := c.temporal().Fields()
	f = append(f, zap.Strings("kafka", c.KafkaBrokers))
	f = append(f, c.Kafka.Fields()...)
	return append(f,
		zap.String("inventory", redact.URL(c.Inventory)),
		zap.Bool("datadog", c.Datadog.APIKey != ""),
		zap.String("datadogEndpoint", redact.URL(firstNonEmpty(c.Datadog.URL, c.Datadog.Site, "datadoghq.com"))),
		zap.Bool("slack", c.SlackToken != ""),
		zap.Bool("slackButtons", c.SlackSigningSecret != ""),
		zap.Bool("datadogWebhook", c.WebhookSecret != ""),
		zap.String("policy", c.PolicyPath),
		zap.String("planStore", planStoreDesc(c.PlanStore)),
		zap.String("http", c.HTTPAddr),
		zap.Bool("signalKey", c.SignalKey != ""),
		zap.String("workerKey", c.WorkerKeyFile),
		zap.String("slackTeam", c.SlackTeamID),
	)
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// signalKeys parses SignalKey and SignalKeysOld; nil without a key.
func (c Config) signalKeys() (*sigauth.Keys, error) {
	if c.SignalKey == "" {
		return nil, nil
	}
	return sigauth.NewKeys(c.SignalKey, c.SignalKeysOld...)
}

// workerSigner loads the worker's signing key; nil without one.
func (c Config) workerSigner() (*identity.Signer, error) {
	if c.WorkerKeyFile == "" {
		return nil, nil
	}
	k, err := identity.LoadPrivateKey(c.WorkerKeyFile)
	if err != nil {
		return nil, fmt.Errorf("FLEET_WORKER_KEY: %w", err)
	}
	return &identity.Signer{Name: firstNonEmpty(c.WorkerName, DefaultWorkerName), Key: k}, nil
}

// temporal is the connection with TemporalAddress and Namespace applied.
func (c Config) temporal() connect.Temporal {
	t := c.Temporal
	if c.TemporalAddress != "" {
		t.Address = c.TemporalAddress
	}
	if c.Namespace != "" {
		t.Namespace = c.Namespace
	}
	if t.Address == "" {
		t.Address = DefaultTemporalAddress
	}
	if t.Namespace == "" {
		t.Namespace = connect.DefaultNamespace
	}
	return t
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// Worker is a running worker process.
type Worker struct {
	Client sdkclient.Client
	Bridge *bridge.Bridge
	log    *zap.Logger
}

// Dial connects to Temporal with the worker's logger, over TLS with a
// client certificate or an API key when cfg.Temporal says so.
func Dial(cfg Config, log *zap.Logger) (sdkclient.Client, error) {
	t := cfg.temporal()
	opts, err := t.ClientOptions()
	if err != nil {
		return nil, err
	}
	opts.Logger = temporalLogger{log.Named("temporal").WithOptions(zap.AddCallerSkip(1)).Sugar()}
	if h := cfg.Metrics.TemporalHandler(); h != nil {
		// The SDK's metrics and the workflows' own (GetMetricsHandler).
		opts.MetricsHandler = h
	}
	keys, err := cfg.signalKeys()
	if err != nil {
		return nil, fmt.Errorf("FLEET_SIGNAL_KEY: %w", err)
	}
	if keys != nil {
		// Seals what this client sends and, for workers built on it, what
		// workflows send; checks what workflows receive (internal/sigauth).
		opts.Interceptors = append(opts.Interceptors, sigauth.New(keys))
	}
	c, err := sdkclient.Dial(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to temporal at %s (namespace %q, TLS %t): %w", t.Address, t.Namespace, t.TLS(), err)
	}
	return c, nil
}

// KafkaOpts are the options (TLS, SASL) every Kafka client of the worker
// appends to its own.
func (c Config) KafkaOpts() ([]kgo.Opt, error) {
	opts, err := c.Kafka.Opts()
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	return opts, nil
}

// Run runs the worker until ctx is done.
func Run(ctx context.Context, cfg Config, log *zap.Logger) error {
	log.Info("worker starting", cfg.Fields()...)
	// Fail closed: a production worker refuses to start without Datadog
	// (unless monitoring is off explicitly) or an explicit access policy.
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg.LogMode(log)
	if cfg.Metrics == nil {
		m, err := metrics.New()
		if err != nil {
			return err
		}
		cfg.Metrics = m
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := m.Close(sctx); err != nil {
				log.Warn("metrics", zap.Error(err))
			}
		}()
	}
	if cfg.MonitoringOff() {
		cfg.Datadog = activities.DatadogConfig{}
	}
	c, err := Dial(cfg, log)
	if err != nil {
		return err
	}
	defer c.Close()

	if cfg.PolicyPath != "" {
		// A malformed policy stops the worker at start, with file:line: reason.
		if _, err := policy.Load(cfg.PolicyPath); err != nil {
			return fmt.Errorf("policy: %w", err)
		}
	}
	acts, closeActs, err := NewActivities(cfg, c, log)
	if err != nil {
		return err
	}
	defer closeActs()
	acts.MonitoringOff = cfg.MonitoringOff()
	acts.Metrics = cfg.Metrics
	// The last good policy, served (marked stale) if the file breaks later.
	if err := acts.PrimePolicy(); err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	keys, err := cfg.signalKeys()
	if err != nil {
		return fmt.Errorf("FLEET_SIGNAL_KEY: %w", err)
	}
	acts.Signals = keys
	if keys == nil {
		log.Warn("no FLEET_SIGNAL_KEY: internal signals and status replies are not authenticated (anyone who can signal the namespace or write fleet.status can fake them)")
	}

	w := worker.New(c, workflows.TaskQueue, worker.Options{
		MaxConcurrentActivityExecutionSize: 200,
		// Hundreds of batches take signals at once: more pollers keep
		// task pick-up latency low (the SDK's default is 2 of each).
		MaxConcurrentWorkflowTaskPollers: 8,
		MaxConcurrentActivityTaskPollers: 8,
	})
	workflows.Register(w)
	acts.Register(w)
	(&activities.FreezeActivities{Temporal: c, Log: log.Named("freeze")}).Register(w)

	kopts, err := cfg.KafkaOpts()
	if err != nil {
		return err
	}
	br, err := bridge.New(bridge.Config{Brokers: cfg.KafkaBrokers, Signal: workflows.SignalClusterStatuses, ExtraOpts: kopts,
		Accept: acceptStatus(keys), ObserveLag: cfg.Metrics.ObserveBridgeLag}, c, log.Named("bridge"))
	if err != nil {
		return err
	}
	if err := cfg.Metrics.RegisterBridge(br); err != nil {
		return err
	}
	if err := cfg.Metrics.RegisterRollouts(runningStatuses(c), metrics.RolloutOptions{Log: log.Named("metrics")}); err != nil {
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := w.Start(); err != nil {
			return fmt.Errorf("start temporal worker: %w", err)
		}
		<-gctx.Done()
		w.Stop()
		return nil
	})
	g.Go(func() error { return br.Run(gctx) })
	g.Go(func() error { return serveHTTP(gctx, cfg.HTTPAddr, handler(cfg, c, log), log) })
	log.Info("worker ready", zap.String("taskQueue", workflows.TaskQueue))
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// acceptStatus is the bridge's check of a data-plane status: it answers a
// batch of this system (rollout/<name>/batch-<n>), and, with a signal key,
// carries the reply token of the command it answers.
func acceptStatus(keys *sigauth.Keys) func(dataplane.Status) error {
	return func(st dataplane.Status) error {
		if !workflows.IsBatchID(st.ReplyTo) {
			return fmt.Errorf("reply-to %q is not a batch of this system", st.ReplyTo)
		}
		if keys != nil && !keys.CheckCommandToken(st.ReplyToken, st.ReplyTo, st.ClusterID, st.Generation) {
			if st.ReplyToken == "" {
				return errors.New("no reply token")
			}
			return errors.New("reply token does not match the command")
		}
		return nil
	}
}

// NewActivities builds the activities' dependencies from the configuration.
func NewActivities(cfg Config, c sdkclient.Client, log *zap.Logger) (*activities.Activities, func(), error) {
	kopts, err := cfg.KafkaOpts()
	if err != nil {
		return nil, nil, err
	}
	kc, err := kgo.NewClient(activities.ProducerOptions(cfg.KafkaBrokers, kopts...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("kafka producer: %w", err)
	}
	plans, err := cfg.OpenPlanStore()
	if err != nil {
		kc.Close()
		return nil, nil, err
	}
	inv, err := inventory.Open(cfg.Inventory)
	if err != nil {
		kc.Close()
		// The inventory's errors mask the URL's credentials; so does this.
		return nil, nil, fmt.Errorf("inventory %s: %w", redact.URL(cfg.Inventory), err)
	}
	a := &activities.Activities{
		Kafka:      kc,
		Inventory:  inv,
		Catalog:    monitors.Default(),
		Events:     events.NewPublisher(kc),
		Audit:      events.NewAuditPublisher(kc),
		PolicyPath: cfg.PolicyPath,
		Temporal:   c,
		Notifier:   notify.NewLog(log.Named("notify")),
		Log:        log.Named("activities"),
		Plans:      plans,
	}
	if plans == nil {
		log.Warn("no plan store (" + planstore.EnvStore + "): rollouts cannot plan")
	}
	if cfg.Datadog.APIKey != "" {
		dd, err := activities.NewDatadog(cfg.Datadog)
		if err != nil {
			kc.Close()
			return nil, nil, err
		}
		a.Datadog = dd
	} else {
		log.Warn("no DD_API_KEY: monitor checks are disabled and every health check passes")
	}
	if cfg.SlackToken != "" {
		// Below the Notify activity's 30 s StartToClose (the activity also
		// bounds each post by activities.DefaultNotifyTimeout).
		opts := []slack.Option{slack.OptionHTTPClient(&http.Client{Timeout: slackHTTPTimeout})}
		if cfg.SlackAPIURL != "" {
			opts = append(opts, slack.OptionAPIURL(cfg.SlackAPIURL))
		}
		a.Notifier = notify.NewSlack(slack.New(cfg.SlackToken, opts...), cfg.SlackChannel, log.Named("slack"))
	} else {
		log.Info("no SLACK_TOKEN: notifications go to the log")
	}
	return a, kc.Close, nil
}

// slackHTTPTimeout bounds one request to Slack.
const slackHTTPTimeout = 15 * time.Second

// serveHTTP serves h on addr until ctx is done.
func serveHTTP(ctx context.Context, addr string, h http.Handler, log *zap.Logger) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("http listening", zap.String("addr", ln.Addr().String()))
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", addr, err)
	}
	return nil
}

// temporalLogger adapts zap to the Temporal SDK's key-value logger.
type temporalLogger struct{ s *zap.SugaredLogger }

func (l temporalLogger) Debug(msg string, kv ...any) { l.s.Debugw(msg, kv...) }
func (l temporalLogger) Info(msg string, kv ...any)  { l.s.Infow(msg, kv...) }
func (l temporalLogger) Warn(msg string, kv ...any)  { l.s.Warnw(msg, kv...) }
func (l temporalLogger) Error(msg string, kv ...any) { l.s.Errorw(msg, kv...) }
