package app

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/internal/planstore"
	"github.com/fleet-rollout/fleet/internal/policy"
	"github.com/fleet-rollout/fleet/internal/redact"
)

// A production worker (`worker` without `dev` or `stack`) fails closed: it
// refuses to start without what keeps a rollout safe, and says what to set.
// The dev stack (Config.Dev) keeps its conveniences and says so in its log.

// MonitoringEnv turns monitoring off explicitly: FLEET_MONITORING=off runs
// a production worker without Datadog (every health check is skipped, and
// the log and every rollout notification say so). Unset or "on": Datadog
// keys are required.
const MonitoringEnv = "FLEET_MONITORING"

// Requirement is one environment variable a production worker refuses to
// start without.
type Requirement struct {
	// Var is the environment variable.
	Var string
	// Unless is the setting that lifts the requirement ("" if none).
	Unless string
	// What it is for, and how to satisfy it.
	Why string
	// set says whether the configuration has it; lifted says whether Unless
	// applies.
	set    func(Config) bool
	lifted func(Config) bool
}

// requirements are the variables Validate checks, in the order it reports
// them. docker-compose.yml's worker sets each (internal/composecheck).
var requirements = []Requirement{
	{
		Var: "DD_API_KEY", Unless: MonitoringEnv + "=off",
		Why:    "Datadog API key: health checks read the critical monitors (with DD_SITE, or DD_URL for a Datadog-compatible endpoint)",
		set:    func(c Config) bool { return c.Datadog.APIKey != "" },
		lifted: Config.MonitoringOff,
	},
	{
		Var: "DD_APP_KEY", Unless: MonitoringEnv + "=off",
		Why:    "Datadog application key (the monitors API needs both keys)",
		set:    func(c Config) bool { return c.Datadog.AppKey != "" },
		lifted: Config.MonitoringOff,
	},
	{
		Var:    "FLEET_SIGNAL_KEY",
		Why:    "the deployment's secret for internal signals and status replies (the same on every worker; make one with `openssl rand -hex 32`)",
		set:    func(c Config) bool { return c.SignalKey != "" },
		lifted: func(Config) bool { return false },
	},
	{
		Var:    planstore.EnvStore,
		Why:    "where rollouts' plans are kept outside workflow history, shared by every worker: dir:/path (a volume all workers mount) or s3://bucket/prefix (with " + planstore.EnvS3Endpoint + ", " + planstore.EnvS3AccessKey + ", " + planstore.EnvS3SecretKey + ")",
		set:    func(c Config) bool { return c.PlanStore != "" },
		lifted: func(Config) bool { return false },
	},
	{
		Var:    "FLEET_POLICY",
		Why:    "policy file with an access section (roles), or one that says `access: open` explicitly",
		set:    func(c Config) bool { return c.PolicyPath != "" },
		lifted: func(Config) bool { return false },
	},
}

// RequiredEnv lists the environment variables a production worker refuses
// to start without (Validate), each with the setting that lifts it, if any.
func RequiredEnv() []Requirement { return append([]Requirement(nil), requirements...) }

// DeploymentEnv lists the variables a deployment sets although the worker
// has defaults for them: the defaults point at the dev stack on 127.0.0.1,
// which in a container (or on another host) is nothing.
var DeploymentEnv = []string{"TEMPORAL_ADDRESS", "KAFKA_BROKERS", "FLEET_INVENTORY", "FLEET_HTTP_ADDR"}

// MonitoringOff reports FLEET_MONITORING=off.
func (c Config) MonitoringOff() bool {
	return strings.EqualFold(strings.TrimSpace(c.Monitoring), "off")
}

// Validate checks that a production worker has what keeps rollouts safe: Datadog
// credentials unless monitoring is off explicitly, and a policy whose access
// control is explicit (an access section, or `access: open`). A dev
// configuration (Dev) passes; LogMode says what it does without. A broken
// policy file is reported with file:line: reason.
func (c Config) Validate() error {
	switch strings.ToLower(strings.TrimSpace(c.Monitoring)) {
	case "", "on", "off":
	default:
		return fmt.Errorf("%s=%q: want on or off", MonitoringEnv, c.Monitoring)
	}
	if c.Dev {
		if c.PolicyPath != "" {
			if _, err := policy.Load(c.PolicyPath); err != nil {
				return fmt.Errorf("policy: %w", err)
			}
		}
		return nil
	}
	var missing []string
	for _, r := range requirements {
		if r.set(c) || r.lifted(c) {
			continue
		}
		line := r.Var + " is not set: " + r.Why
		if r.Unless != "" {
			line += "; or set " + r.Unless
		}
		missing = append(missing, line)
	}
	if _, err := c.signalKeys(); err != nil {
		missing = append(missing, "FLEET_SIGNAL_KEY: "+err.Error())
	}
	signer, err := c.workerSigner()
	if err != nil {
		missing = append(missing, err.Error())
	}
	if c.PlanStore != "" {
		if err := planstore.Check(c.PlanStore); err != nil {
			missing = append(missing, err.Error())
		}
	}
	if c.SlackSigningSecret != "" && c.SlackTeamID == "" {
		missing = append(missing, "SLACK_SIGNING_SECRET is set without SLACK_TEAM_ID: name the Slack workspace whose button presses count (a signing secret belongs to an app, which other workspaces may install)")
	}
	if c.PolicyPath != "" {
		pol, err := policy.Load(c.PolicyPath)
		switch {
		case err != nil:
			missing = append(missing, fmt.Sprintf("FLEET_POLICY=%s does not load: %v", c.PolicyPath, err))
		case pol.Access == nil && !pol.OpenAccess:
			missing = append(missing, fmt.Sprintf("FLEET_POLICY=%s has no access section: add one (access: {roles: ..., default: viewer}), or `access: open` to run without access control, said explicitly", c.PolicyPath))
		case pol.SignedIdentity() && c.SlackSigningSecret != "" && signer == nil:
			missing = append(missing, "SLACK_SIGNING_SECRET is set and the policy wants signed requests: set FLEET_WORKER_KEY (the worker signs for the Slack users it verified; list its public key under access.services."+firstNonEmpty(c.WorkerName, DefaultWorkerName)+" with vouch: [\"slack:\"])")
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return errors.New("refusing to start in production mode (run `worker dev` for the embedded dev stack):\n  - " + strings.Join(missing, "\n  - "))
}

// OpenPlanStore opens the plan store PlanStore names (nil when empty).
func (c Config) OpenPlanStore() (*planstore.Cache, error) {
	if c.PlanStore == "" {
		return nil, nil
	}
	s, err := planstore.Open(c.PlanStore, os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("plan store: %w", err)
	}
	return planstore.NewCache(s), nil
}

// planStoreDesc is PlanStore for the log: credentials are never in it (they
// have variables of their own), URL-looking parts are masked anyway.
func planStoreDesc(s string) string {
	if s == "" {
		return "none"
	}
	return redact.String(s)
}

// LogMode writes one line per safety the configuration goes without: each
// convenience of the dev stack, and monitoring off in production.
func (c Config) LogMode(log *zap.Logger) {
	if c.PolicyPath != "" {
		if pol, err := policy.Load(c.PolicyPath); err == nil && pol.Access != nil && !pol.SignedIdentity() {
			log.Warn("the policy says identity: asserted: a request's actor is taken at its word (anyone who can reach Temporal can claim any name); use identity: signed in production", zap.String("policy", c.PolicyPath))
		}
	}
	if c.MonitoringOff() {
		log.Warn("monitoring is off (" + MonitoringEnv + "=off): no Datadog, every health-check wait is skipped, rollouts advance on the data plane's word alone; every notification says so")
	}
	if !c.Dev {
		return
	}
	switch {
	case c.MonitoringOff():
	case c.Datadog.APIKey == DevDatadogAPIKey:
		log.Info("dev: no Datadog keys, health checks read the simulated monitors", zap.String("datadog", c.Datadog.URL))
	case c.Datadog.APIKey == "":
		log.Warn("dev: no Datadog keys, every health check passes")
	}
	if c.PolicyPath == "" {
		log.Info("dev: no FLEET_POLICY, access control is off (everyone is admin)")
	} else if pol, err := policy.Load(c.PolicyPath); err == nil && pol.Access == nil && !pol.OpenAccess {
		log.Info("dev: the policy has no access section, access control is off (everyone is admin)", zap.String("policy", c.PolicyPath))
	}
	log.Info("dev: Kafka creates missing topics on first use (a production broker may not: create every topic, as compose's kafka-init does)")
	log.Info("dev: Temporal runs without authentication (TLS, client certificates and API keys are for production)")
}
