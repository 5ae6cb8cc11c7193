// Command fleet is the rollout CLI: it plans, starts, watches and steers
// fleet rollouts running on Temporal.
//
//	go build -o bin/fleet ./starter
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/api/serviceerror"
	sdkclient "go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/fleet-rollout/fleet/internal/connect"
	"github.com/fleet-rollout/fleet/internal/events"
	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/inventory"
	"github.com/fleet-rollout/fleet/internal/planstore"
	"github.com/fleet-rollout/fleet/internal/redact"
	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/starter/client"
	"github.com/fleet-rollout/fleet/workflows"
)

// Defaults for the environment the CLI reads.
const (
	defaultAddress   = "localhost:7233"
	defaultNamespace = "default"
	defaultInventory = "http://127.0.0.1:8089/v1/clusters"
)

// rpcTimeout bounds one call to Temporal (a query, an update, a list).
const rpcTimeout = 30 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], defaultEnv())
	stop()
	os.Exit(report(os.Stderr, err))
}

// rollouts is what the CLI needs from starter/client.
type rollouts interface {
	Start(ctx context.Context, r *spec.Rollout, requester string) (string, error)
	Snapshot(ctx context.Context, id string) (*client.Status, error)
	Pause(ctx context.Context, id string, req workflows.ActionRequest) (workflows.ActionResult, error)
	Resume(ctx context.Context, id string, req workflows.ActionRequest) (workflows.ActionResult, error)
	Abort(ctx context.Context, id string, req workflows.ActionRequest) (workflows.ActionResult, error)
	Approve(ctx context.Context, id string, req workflows.ApproveRequest) (workflows.ActionResult, error)
	Pace(ctx context.Context, id string, req workflows.PacingRequest) (workflows.ActionResult, error)
	List(ctx context.Context, open bool) ([]client.Summary, error)
	Freeze(ctx context.Context, req workflows.FreezeRequest) (workflows.FreezeState, error)
	Unfreeze(ctx context.Context, actor, reason string) (workflows.FreezeState, error)
	FreezeStatus(ctx context.Context) (workflows.FreezeState, error)
	// Recovery (recovery.go).
	Source(ctx context.Context, id string) (*workflows.RolloutSource, error)
	Rollback(ctx context.Context, id string, o client.RollbackOptions) (string, error)
	Supersede(ctx context.Context, id string, r *spec.Rollout, actor, reason string) (string, error)
	Retry(ctx context.Context, id string, clusters []string, actor, reason string) (client.RetryResult, error)
	// Scheduled starts (schedule.go).
	ScheduleStart(ctx context.Context, r *spec.Rollout, requester string, at time.Time) (*client.Scheduled, error)
	Schedules(ctx context.Context) ([]client.Scheduled, error)
	CancelSchedule(ctx context.Context, id string) (*client.Scheduled, error)
}

var _ rollouts = (*client.Client)(nil)

// config is what the environment and the global flags say.
type config struct {
	// Address and Namespace are Temporal's; dial resolves them with the
	// profile (Temporal) and sets them again.
	Address   string
	Namespace string
	Inventory string
	// PlanStore is the worker's plan store (FLEET_PLAN_STORE; by default
	// the dev stack's, .fleet-dev/plans, when there is one): the CLI reads
	// rollouts' plans from it (recovery previews, pending clusters).
	PlanStore string
	User      string
	// Temporal is the whole connection (TLS, client certificate, API key)
	// from the temporal CLI's profile, TEMPORAL_* and the global flags; set
	// by dial. Its String never shows the API key.
	Temporal connect.Temporal
}

// env is everything a command touches outside itself, so tests can replace it.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// global are the global flags (--address, --namespace, --profile):
	// they win over the environment, which wins over the profile.
	global connect.Overrides
	// output and json are the global -o/--output and --json flags (asJSON).
	output outputFormat
	json   bool
	// connect dials Temporal. Commands that do not need Temporal never call it.
	connect func(ctx context.Context, cfg config) (rollouts, func(), error)
	// loadInventory lists the clusters of an inventory reference.
	loadInventory func(ctx context.Context, ref string) ([]fleet.Cluster, error)
	// history reads a cluster's rollout history from the events topic;
	// nil means events.History with the KAFKA_TLS*/KAFKA_SASL_* options.
	history func(ctx context.Context, brokers []string, clusterID string) ([]events.Entry, error)
	// tty says stdout is a terminal (live progress bar) rather than a log.
	tty      bool
	interval time.Duration
	now      func() time.Time
}

func defaultEnv() *env {
	return &env{
		stdout:        os.Stdout,
		stderr:        os.Stderr,
		getenv:        os.Getenv,
		connect:       dialTemporal,
		loadInventory: loadInventory,
		tty:           isTerminal(os.Stdout),
		interval:      time.Second,
		now:           time.Now,
	}
}

func (e *env) config() config {
	get := func(key, def string) string {
		if v := e.getenv(key); v != "" {
			return v
		}
		return def
	}
	user := get("FLEET_USER", get("USER", "unknown"))
	return config{
		Address:   firstNonEmpty(e.global.Address, get("TEMPORAL_ADDRESS", defaultAddress)),
		Namespace: firstNonEmpty(e.global.Namespace, get("TEMPORAL_NAMESPACE", defaultNamespace)),
		Inventory: get("FLEET_INVENTORY", defaultInventory),
		PlanStore: get(planstore.EnvStore, devPlanStore()),
		User:      user,
	}
}

// temporal resolves the connection: the profile, then TEMPORAL_*, then the
// global flags.
func (e *env) temporal() (connect.Temporal, error) {
	return connect.LoadTemporal(e.getenv, e.global, defaultAddress)
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

func dialTemporal(ctx context.Context, cfg config) (rollouts, func(), error) {
	t := cfg.Temporal
	if t.Address == "" {
		t.Address, t.Namespace = cfg.Address, cfg.Namespace
	}
	opts, err := t.ClientOptions()
	if err != nil {
		return nil, nil, err
	}
	opts.Identity = "fleet-cli:" + cfg.User
	// The SDK logs to stdout by default; the CLI's stdout is for its output.
	opts.Logger = sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := sdkclient.DialContext(dctx, opts)
	if err != nil {
		return nil, nil, &unreachableError{fmt.Errorf("connect to Temporal at %s (namespace %q, TLS %t; --address, --namespace, --profile or TEMPORAL_* choose the connection): %w",
			t.Address, t.Namespace, t.TLS(), err)}
	}
	api := client.New(c)
	if cfg.PlanStore != "" {
		s, err := planstore.Open(cfg.PlanStore, os.Getenv)
		if err != nil {
			c.Close()
			return nil, nil, err
		}
		api = api.WithPlans(planstore.NewCache(s))
	}
	return api, c.Close, nil
}

// devPlanStore is the dev stack's plan store (worker dev's default data
// dir) when it exists here, else "".
func devPlanStore() string {
	p, err := filepath.Abs(filepath.Join(".fleet-dev", "plans"))
	if err != nil {
		return ""
	}
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		return "dir:" + p
	}
	return ""
}

func loadInventory(ctx context.Context, ref string) ([]fleet.Cluster, error) {
	// The inventory's errors name the source; ref is not repeated here in
	// case it carries a token.
	src, err := inventory.Open(ref)
	if err != nil {
		return nil, redact.Error(fmt.Errorf("%w (FLEET_INVENTORY chooses the inventory)", err))
	}
	if c, ok := any(src).(io.Closer); ok {
		defer c.Close()
	}
	cs, err := src.List(ctx)
	if err != nil {
		return nil, redact.Error(fmt.Errorf("%w (FLEET_INVENTORY chooses the inventory)", err))
	}
	return cs, nil
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// usageError is a command line the CLI cannot run: exit code 2, with a hint
// pointing at the command's help.
type usageError struct {
	cmd string
	msg string
	// hint follows the message unprefixed ("Did you mean ...?").
	hint string
}

func (e *usageError) Error() string { return e.msg }

func usagef(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

// Exit codes: documented in fleet help and the README.
const (
	exitOK          = 0
	exitFailure     = 1 // anything else: the rollout failed or was aborted, a bad inventory, ...
	exitUsage       = 2 // the command line or the spec is wrong; nothing was done
	exitRejected    = 3 // the workflow rejected the request (it does not apply now)
	exitNotFound    = 4 // no such rollout, or it has already ended
	exitRefused     = 5 // refused by the policy (identity, role, two-person rule) or a fleet freeze
	exitUnreachable = 6 // Temporal could not be reached or did not answer in time
	exitTimeout     = 7 // --timeout elapsed before the rollout ended (it goes on)
	exitInterrupted = 130
)

// exitError carries an exit code other than 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// unreachableError is a Temporal frontend the CLI could not reach.
type unreachableError struct{ err error }

func (e *unreachableError) Error() string { return e.err.Error() }
func (e *unreachableError) Unwrap() error { return e.err }

// exitCode classifies err into the CLI's exit codes.
func exitCode(err error) int {
	var (
		ue  *usageError
		ee  *exitError
		rej *client.RejectedError
		fz  *client.FrozenError
		nf  *client.NotFoundError
		fin *client.FinishedError
		un  *unreachableError
		sa  *serviceerror.Unavailable
		sd  *serviceerror.DeadlineExceeded
	)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &fz), errors.Is(err, client.ErrRefused):
		return exitRefused
	case errors.As(err, &rej):
		return exitRejected
	case errors.As(err, &nf), errors.As(err, &fin), errors.Is(err, client.ErrNotFound):
		return exitNotFound
	case errors.As(err, &un), errors.As(err, &sa), errors.As(err, &sd), errors.Is(err, client.ErrNoAnswer):
		return exitUnreachable
	}
	return exitFailure
}

// report prints err as the CLI does and returns the process exit code.
func report(w io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(w, "fleet: interrupted")
		return exitInterrupted
	}
	// A spec may have several problems, one per line: prefix each.
	for _, line := range strings.Split(strings.TrimRight(err.Error(), "\n"), "\n") {
		fmt.Fprintf(w, "fleet: %s\n", line)
	}
	var ue *usageError
	if errors.As(err, &ue) {
		if ue.hint != "" {
			fmt.Fprintf(w, "\n%s\n\n", ue.hint)
		}
		if ue.cmd != "" {
			fmt.Fprintf(w, "Run 'fleet %s -h' for usage.\n", ue.cmd)
		} else {
			fmt.Fprintln(w, "Run 'fleet help' for usage.")
		}
	}
	return exitCode(err)
}
