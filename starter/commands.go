package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/policy"
	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/starter/client"
	"github.com/fleet-rollout/fleet/workflows"
)

// command is one fleet subcommand.
type command struct {
	name     string
	synopsis string   // after "fleet "
	alt      string   // another form of the command line, after "fleet "
	more     []string // further forms, after "fleet "
	summary  string
	detail   string
	// setup defines the command's flags on fs and returns what runs it.
	setup func(e *env, cmd *command, fs *pflag.FlagSet) runFunc
	// validArgs are the words shell completion offers as the first
	// argument (subcommands such as freeze status).
	validArgs []string
	// rolloutArg says the first argument is a rollout: shell completion
	// offers the running and recent ones.
	rolloutArg bool
}

var commands []*command

func init() {
	commands = []*command{
		{
			name: "start", synopsis: "start -f FILE [--watch | --wait] [--timeout D]",
			alt:     "start -f FILE --at \"2026-12-07T09:00 Europe/Berlin\"",
			summary: "start a rollout from a spec file",
			detail: "Loads and checks the spec before anything starts (a malformed spec exits 2),\n" +
				"then starts workflow rollout/<name>. A rollout of that name that is still\n" +
				"running is an error; a finished one may be started again. Nothing starts\n" +
				"while the fleet is frozen: the error says who froze it, why and until when\n" +
				"(fleet freeze status).\n\n" +
				"--wait and --watch follow the rollout to its end; --timeout D gives up after D\n" +
				"(exit 7; the rollout goes on). --at TIME starts it later, once, through a\n" +
				"Temporal Schedule: see fleet schedule -h.",
			setup: cmdStart,
		},
		{
			name: "plan", synopsis: "plan -f FILE [--json] [--clusters] [--excluded N]",
			alt:     "plan --rollback NAME [--forward] [--respect-windows] [--json] [--clusters]",
			more:    []string{"plan --supersede NAME -f FILE [--json] [--clusters]"},
			summary: "show the phases and batches a spec, a rollback or a supersede would run",
			detail:  planDetail,
			setup:   cmdPlan,
		},
		{
			name: "list", synopsis: "list [--all] [--json]",
			summary: "list running and recently closed rollouts with their workflow status (--all: older ones too)",
			detail: "STATUS is the workflow's execution status as Temporal records it: running,\n" +
				"completed, failed, terminated, timed-out or canceled; REASON is the server's\n" +
				"reason for an abnormal close (terminate reason and who, failure, timeout).\n" +
				"Without --all, rollouts closed in the last 24h are listed too.",
			setup: cmdList,
		},
		{
			rolloutArg: true,
			name:       "status", synopsis: "status ID [--json]",
			alt:     "status [--by cloud,region,environment] [--json]",
			summary: "show a rollout's state, pause reason, error budget, incidents, phases, batches and clusters; without ID, the fleet's versions",
			detail:  statusDetail,
			setup:   cmdStatus,
		},
		{
			rolloutArg: true,
			name:       "watch", synopsis: "watch ID [--timeout D]",
			summary: "follow a rollout live until it ends",
			detail: "Exits 0 when the rollout completes, 1 when it is aborted or fails, or when\n" +
				"its workflow is closed from outside (terminated, timed out, canceled): watch\n" +
				"then stops and says so, with the server's reason. --timeout D gives up after D\n" +
				"(exit 7; the rollout goes on). -o json prints the final status as JSON.\n\n" + countsLegend,
			setup: cmdWatch,
		},
		{
			rolloutArg: true,
			name:       "pause", synopsis: "pause ID --reason R",
			summary: "pause a rollout: clusters in flight are held before their next broker",
			setup:   cmdAction(workflows.Pause, true),
		},
		{
			rolloutArg: true,
			name:       "resume", synopsis: "resume ID [--reason R]",
			summary: "resume a paused rollout where it stopped",
			setup:   cmdAction(workflows.Resume, false),
		},
		{
			rolloutArg: true,
			name:       "abort", synopsis: "abort ID --reason R",
			summary: "stop a rollout for good",
			setup:   cmdAction(workflows.Abort, true),
		},
		{
			rolloutArg: true,
			name:       "rollback", synopsis: "rollback NAME [--abort --reason R] [--forward] [--respect-windows] [--json]",
			summary: "return every cluster an ended rollout changed to the version and config it came from, as rollout NAME-rollback",
			detail:  rollbackDetail,
			setup:   cmdRollback,
		},
		{
			rolloutArg: true,
			name:       "supersede", synopsis: "supersede NAME -f FILE [--reason R] [--json]",
			summary: "hand a running rollout over to a new one (a hotfix): the old one stops, the new one takes its clusters first",
			detail:  supersedeDetail,
			setup:   cmdSupersede,
		},
		{
			rolloutArg: true,
			name:       "retry", synopsis: "retry NAME [--cluster ID]... [--reason R] [--json]",
			summary: "re-apply a rollout's failed, aborted and skipped clusters with a fresh error budget",
			detail:  retryDetail,
			setup:   cmdRetry,
		},
		{
			rolloutArg: true,
			name:       "approve", synopsis: "approve ID (--plan HASH | --phase NAME) [--comment C]",
			summary: "approve a rollout's plan or a gated phase",
			setup:   cmdApprove,
		},
		{
			rolloutArg: true,
			name:       "pace", synopsis: "pace ID [--concurrency N] [--bake D] [--reason R]",
			summary: "change a running rollout's concurrency and/or bake for its current and later phases",
			detail:  paceDetail,
			setup:   cmdPace,
		},
		{
			name: "freeze", synopsis: "freeze --reason R --until T",
			alt:       "freeze status [--json]",
			summary:   "freeze the fleet until T (RFC 3339 or a duration like 48h): every rollout pauses; status shows the freeze",
			detail:    freezeDetail,
			setup:     cmdFreeze,
			validArgs: []string{"status"},
		},
		{
			name: "unfreeze", synopsis: "unfreeze [--reason R]",
			summary: "lift the fleet freeze (paused rollouts stay paused until resumed)",
			detail:  unfreezeDetail,
			setup:   cmdUnfreeze,
		},
		{
			name: "schedule", synopsis: "schedule list [--json]",
			alt:       "schedule cancel NAME [--reason R]",
			summary:   "list and cancel scheduled starts (fleet start --at): Temporal Schedules",
			detail:    scheduleDetail,
			setup:     cmdSchedule,
			validArgs: []string{"list", "cancel"},
		},
		{
			name: "drift", synopsis: "drift [--product P] [--version V] [--json] [--write-spec FILE]",
			summary: "list clusters off their product's desired version (no Temporal)",
			detail:  driftDetail,
			setup:   cmdDrift,
		},
		{
			name: "history", synopsis: "history CLUSTER [--json]",
			summary: "show every rollout that touched a cluster, its outcome and alerts (from Kafka)",
			detail:  historyDetail,
			setup:   cmdHistory,
		},
		{
			name: "keygen", synopsis: "keygen [--out FILE]",
			summary: "make your signing key; prints the public key for the policy",
			detail: "Writes a new ed25519 private key (PEM, mode 0600) to FILE (default\n" +
				"~/.config/fleet/key.pem; an existing file is never overwritten) and prints\n" +
				"the public key. Give it to whoever keeps the policy: it goes under\n" +
				"access.people.<you>.keys. The CLI signs every request with FLEET_KEY.",
			setup: cmdKeygen,
		},
		{
			name: "help", synopsis: "help [COMMAND]",
			summary: "show this help, or a command's",
		},
	}
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, "fleet drives fleet rollouts on Temporal.\n\nUsage: fleet [--address HOST:PORT] [--namespace NS] [--profile NAME] COMMAND ...\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  fleet %s\n", c.synopsis)
		if c.alt != "" {
			fmt.Fprintf(w, "  fleet %s\n", c.alt)
		}
		for _, m := range c.more {
			fmt.Fprintf(w, "  fleet %s\n", m)
		}
		fmt.Fprintf(w, "      %s\n", c.summary)
	}
	fmt.Fprint(w, `  fleet version
      print the CLI's version (module version, VCS revision)
  fleet completion bash|zsh|fish
      print a shell completion script (see fleet completion SHELL -h)

ID is a rollout's name or its workflow ID (rollout/<name>).

Global flags (before the command or among its arguments):
  --address HOST:PORT  Temporal frontend (over TEMPORAL_ADDRESS and the profile)
  --namespace NS       Temporal namespace (over TEMPORAL_NAMESPACE and the profile)
  --profile NAME       profile of the temporal CLI's config file (over TEMPORAL_PROFILE)
  -o, --output FORMAT  text (default) or json: every command, including the ones that
                       change something, prints its result as JSON on stdout
  --json               same as -o json

Temporal connection: flags, then TEMPORAL_* variables, then the profile of the temporal
CLI's config file (TEMPORAL_CONFIG_FILE, default ~/.config/temporalio/temporal.toml;
profile "default" unless TEMPORAL_PROFILE or --profile names one), as the temporal CLI does.

Environment:
  TEMPORAL_ADDRESS    Temporal frontend (default `+defaultAddress+`)
  TEMPORAL_NAMESPACE  Temporal namespace (default `+defaultNamespace+`)
  TEMPORAL_API_KEY    API key for Temporal Cloud (turns TLS on)
  TEMPORAL_TLS        true/false: TLS without an API key or certificate, or off
  TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH   client certificate (mTLS)
  TEMPORAL_TLS_SERVER_CA_CERT_PATH   CA to verify the server with (default: the system's)
  TEMPORAL_TLS_SERVER_NAME           name to verify in the server's certificate (SNI)
  TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE   profile and config file (see above)
  FLEET_INVENTORY     fleet inventory for plan, status (no ID) and drift (default `+defaultInventory+`)
  KAFKA_BROKERS       Kafka seed brokers for history, comma-separated (default `+defaultBrokers+`)
  KAFKA_TLS           true for TLS; KAFKA_TLS_CA_FILE, KAFKA_TLS_CERT_FILE + KAFKA_TLS_KEY_FILE,
                      KAFKA_TLS_SERVER_NAME (any of them turns TLS on)
  KAFKA_SASL_MECHANISM  PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (with KAFKA_SASL_USERNAME and
                      KAFKA_SASL_PASSWORD) or OAUTHBEARER (with KAFKA_SASL_TOKEN)
  FLEET_USER          who you are in the audit trail (default $USER)
  FLEET_KEY           your private key file (fleet keygen): signs every request, as a policy
                      with identity: signed requires (default ~/.config/fleet/key.pem when present)

Exit codes:
  0  ok
  1  failed: the rollout failed or was aborted (watch, start --wait), or another error
  2  usage error or invalid spec: nothing was done
  3  rejected by the rollout: the action does not apply now (e.g. resume a running rollout)
  4  not found: no such rollout or schedule, or the rollout has already ended
  5  refused by the policy (unsigned or forged request, role, two-person rule) or by a
     fleet freeze
  6  unreachable: Temporal could not be reached or did not answer in time
  7  --timeout elapsed before the rollout ended (it goes on)
  130 interrupted
Run 'fleet COMMAND -h' for a command's flags.
`)
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// oneID checks that exactly one rollout ID was given.
func oneID(cmd *command, pos []string) (string, error) {
	switch {
	case len(pos) == 0:
		return "", usagef(cmd.name, "%s: missing rollout ID (usage: fleet %s)", cmd.name, cmd.synopsis)
	case len(pos) > 1:
		return "", usagef(cmd.name, "%s: unexpected argument %q (usage: fleet %s)", cmd.name, pos[1], cmd.synopsis)
	case strings.TrimSpace(workflows.RolloutName(pos[0])) == "":
		return "", usagef(cmd.name, "%s: empty rollout ID", cmd.name)
	}
	return pos[0], nil
}

func noArgs(cmd *command, pos []string) error {
	if len(pos) > 0 {
		return usagef(cmd.name, "%s: unexpected argument %q (usage: fleet %s)", cmd.name, pos[0], cmd.synopsis)
	}
	return nil
}

// fileFlag defines -f and its long form --file.
func fileFlag(fs *pflag.FlagSet) *string {
	return fs.StringP("file", "f", "", "rollout spec `FILE` (YAML)")
}

// loadSpec loads and normalizes a spec. Its errors name the file and line
// and exit 2: nothing has started.
func loadSpec(path string) (*spec.Rollout, error) {
	r, err := spec.Load(path)
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	r.Normalize()
	return r, nil
}

// dial connects to Temporal; call the returned function when done.
func (e *env) dial(ctx context.Context) (rollouts, config, func(), error) {
	cfg := e.config()
	signer, err := e.signer(cfg.User)
	if err != nil {
		return nil, cfg, nil, err
	}
	t, err := e.temporal()
	if err != nil {
		return nil, cfg, nil, err
	}
	cfg.Temporal, cfg.Address, cfg.Namespace = t, t.Address, t.Namespace
	api, closeFn, err := e.connect(ctx, cfg)
	if err != nil {
		return nil, cfg, nil, err
	}
	if closeFn == nil {
		closeFn = func() {}
	}
	if c, ok := api.(*client.Client); ok && signer != nil {
		api = c.WithSigner(signer)
	}
	return api, cfg, closeFn, nil
}

func cmdStart(e *env, cmd *command, fs *pflag.FlagSet) runFunc {
	file := fileFlag(fs)
	watch := fs.Bool("watch", false, "follow the rollout live after starting it (like fleet watch)")
	wait := fs.Bool("wait", false, "wait quietly until the rollout ends, then print a summary; exit 1 unless it completes")
	timeout := fs.Duration("timeout", 0, "with --watch or --wait: give up after `D` (exit 7; the rollout goes on)")
	at := fs.String("at", "", "start once at `TIME` through a Temporal Schedule instead of now: \"2026-12-07T09:00 Europe/Berlin\" (see fleet schedule)")
	return func(ctx context.Context, pos []string) error {
		if err := noArgs(cmd, pos); err != nil {
			return err
		}
		if *file == "" {
			return usagef(cmd.name, "start: -f FILE is required (the rollout spec to start)")
		}
		if fs.Changed("timeout") && !*watch && !*wait {
			return usagef(cmd.name, "start: --timeout bounds --watch or --wait: give one of them")
		}
		if *at != "" && (*watch || *wait) {
			return usagef(cmd.name, "start: --at schedules the start for later: --watch and --wait do not apply (fleet watch NAME once it has started)")
		}
		var when time.Time
		if *at != "" {
			t, err := parseAt(*at, e.now())
			if err != nil {
				return usagef(cmd.name, "start: --at: %v", err)
			}
			when = t
		}
		r, err := loadSpec(*file)
		if err != nil {
			return err
		}
		api, cfg, closeFn, err := e.dial(ctx)
		if err != nil {
			return err
		}
		defer closeFn()
		if *at != "" {
			return scheduleStart(ctx, e, api, r, cfg.User, when)
		}
		sctx, cancel := context.WithTimeout(ctx, rpcTimeout)
		id, err := api.Start(sctx, r, cfg.User)
		cancel()
		if err != nil {
			return err
		}
		following := *watch || *wait
		if e.asJSON() {
			if !following {
				return writeJSON(e.stdout, startedOutput{ID: id, Name: workflows.RolloutName(id)})
			}
		} else {
			renderStarted(e.stdout, id, r, following)
		}
		if following {
			return e.followFor(ctx, api, id, !*watch, *timeout)
		}
		return nil
	}
}

// startedOutput is what start prints with -o json.
type startedOutput struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func cmdPlan(e *env, cmd *command, fs *pflag.FlagSet) runFunc {
	file := fileFlag(fs)
	clusters := fs.Bool("clusters", false, "list each batch's cluster IDs")
	excluded := fs.Int("excluded", 0, "list up to `N` excluded cluster IDs per reason")
	rollback := fs.String("rollback", "", "preview the rollback of the rollout `NAME` (asks Temporal)")
	supersede := fs.String("supersede", "", "preview the spec -f taking over the rollout `NAME` (asks Temporal)")
	forward := fs.Bool("forward", false, "with --rollback: the rollout's phase order (default: last phase first)")
	respect := fs.Bool("respect-windows", false, "with --rollback: wait for maintenance windows (default: ignore them)")
	return func(ctx context.Context, pos []string) error {
		if err := noArgs(cmd, pos); err != nil {
			return err
		}
		ro := renderOpts{json: e.asJSON(), render: plan.RenderOptions{Clusters: *clusters, ExcludedIDs: *excluded}}
		switch {
		case fs.Changed("rollback") && fs.Changed("supersede"):
			return usagef(cmd.name, "plan: give --rollback or --supersede, not both")
		case (*forward || *respect) && !fs.Changed("rollback"):
			return usagef(cmd.name, "plan: --forward and --respect-windows shape a rollback: give them with --rollback NAME")
		case fs.Changed("rollback"):
			if *file != "" {
				return usagef(cmd.name, "plan: --rollback plans from the rollout itself: give no -f")
			}
			name, err := recoveryName(cmd, "--rollback", *rollback)
			if err != nil {
				return err
			}
			return planRollback(ctx, e, name, client.RollbackOptions{Forward: *forward, RespectWindows: *respect}, ro)
		case fs.Changed("supersede"):
			name, err := recoveryName(cmd, "--supersede", *supersede)
			if err != nil {
				return err
			}
			if *file == "" {
				return usagef(cmd.name, "plan: --supersede needs -f FILE (the spec that takes over)")
			}
			r, err := loadSpec(*file)
			if err != nil {
				return err
			}
			return planSupersede(ctx, e, name, r, *file, ro)
		}
		if *file == "" {
			return usagef(cmd.name, "plan: -f FILE is required (the rollout spec to plan)")
		}
		r, err := loadSpec(*file)
		if err != nil {
			return err
		}
		cfg := e.config()
		inv, err := e.loadInventory(ctx, cfg.Inventory)
		if err != nil {
			return err
		}
		opts, err := planOptions(r, inv)
		if err != nil {
			return err
		}
		p, err := plan.Build(r, inv, opts)
		if err != nil {
			return fmt.Errorf("%s: %w", *file, err)
		}
		if e.asJSON() {
			return writeJSON(e.stdout, p)
		}
		return plan.Render(e.stdout, p, ro.render)
	}
}

// planOptions are the options the worker plans r with, as far as the CLI
// knows them: the protected clusters of the policy at FLEET_POLICY, if any.
func planOptions(r *spec.Rollout, inv []fleet.Cluster) (plan.Options, error) {
	// The worker keeps the plan in its plan store and history its outline.
	opts := plan.Options{Outline: true}
	if path := os.Getenv("FLEET_POLICY"); path != "" {
		// Explain protected clusters the way the worker will.
		pol, err := policy.Load(path)
		if err != nil {
			return opts, fmt.Errorf("FLEET_POLICY: %w", err)
		}
		if r.Emergency == nil || !r.Emergency.ForceProtected {
			opts.ProtectedWhy = map[string]string{}
			for _, c := range inv {
				if why, ok := pol.Protected(c); ok {
					opts.Protected = append(opts.Protected, c.ID)
					opts.ProtectedWhy[c.ID] = why
				}
			}
		}
	}
	return opts, nil
}

func cmdList(e *env, cmd *command, fs *pflag.FlagSet) runFunc {
	all := fs.Bool("all", false, "include rollouts closed more than 24h ago")
	return func(ctx context.Context, pos []string) error {
		if err := noArgs(cmd, pos); err != nil {
			return err
		}
		api, _, closeFn, err := e.dial(ctx)
		if err != nil {
			return err
		}
		defer closeFn()
		lctx, cancel := context.WithTimeout(ctx, rpcTimeout)
		defer cancel()
		list, err := api.List(lctx, !*all)
		if err != nil {
			return err
		}
		if e.asJSON() {
			if list == nil {
				list = []client.Summary{}
			}
			return writeJSON(e.stdout, list)
		}
		renderList(e.stdout, list, !*all)
		return nil
	}
}

func cmdStatus(e *env, cmd *command, fs *pflag.FlagSet) runFunc {
	by := fs.String("by", defaultBy, "without ID: break versions down by these `DIMS` (cloud, region, environment, tier; \"\" for none)")
	return func(ctx context.Context, pos []string) error {
		if len(pos) == 0 {
			return fleetStatus(ctx, e, cmd, *by, e.asJSON())
		}
		if fs.Changed("by") {
			return usagef(cmd.name, "status: --by shows the fleet's versions: give it without a rollout ID")
		}
		id, err := oneID(cmd, pos)
		if err != nil {
			return err
		}
		api, _, closeFn, err := e.dial(ctx)
		if err != nil {
			return err
		}
		defer closeFn()
		sctx, cancel := context.WithTimeout(ctx, rpcTimeout)
		defer cancel()
		st, err := api.Snapshot(sctx, id)
		if err != nil {
			return err
		}
		if e.asJSON() {
			return writeJSON(e.stdout, st)
		}
		renderStatus(e.stdout, st, e.now())
		return nil
	}
}

func cmdWatch(e *env, cmd *command, fs *pflag.FlagSet) runFunc {
	timeout := fs.Duration("timeout", 0, "give up after `D` (a duration like 30m): exit 7, the rollout goes on")
	return func(ctx context.Context, pos []string) error {
		id, err := oneID(cmd, pos)
		if err != nil {
			return err
		}
		api, _, closeFn, err := e.dial(ctx)
		if err != nil {
			return err
		}
		defer closeFn()
		return e.followFor(ctx, api, id, false, *timeout)
	}
}

// cmdAction builds pause, resume and abort.
func cmdAction(action string, reasonRequired bool) func(*env, *command, *pflag.FlagSet) runFunc {
	return func(e *env, cmd *command, fs *pflag.FlagSet) runFunc {
		help := "why (recorded in the audit trail)"
		if reasonRequired {
			help = "why (required; recorded in the audit trail)"
		}
		reason := fs.String("reason", "", help)
		return func(ctx context.Context, pos []string) error {
			id, err := oneID(cmd, pos)
			if err != nil {
				return err
			}
			*reason = strings.TrimSpace(*reason)
			if reasonRequired && *reason == "" {
				return usagef(cmd.name, "%s: --reason is required (usage: fleet %s)", cmd.name, cmd.synopsis)
			}
			api, cfg, closeFn, err := e.dial(ctx)
			if err != nil {
				return err
			}
			defer closeFn()
			req := workflows.ActionRequest{Actor: cfg.User, Reason: *reason}
			actx, cancel := context.WithTimeout(ctx, rpcTimeout)
			defer cancel()
			var res workflows.ActionResult
			switch action {
			case workflows.Pause:
				res, err = api.Pause(actx, id, req)
			case workflows.Resume:
				res, err = api.Resume(actx, id, req)
			case workflows.Abort:
				res, err = api.Abort(actx, id, req)
			default:
				return fmt.Errorf("unknown action %q", action)
			}
			if err != nil {
				return err
			}
			return e.printAction(action, id, res)
		}
	}
}

func cmdApprove(e *env, cmd *command, fs *pflag.FlagSet) runFunc {
	hash := fs.String("plan", "", "approve the plan with this `HASH` (see fleet status)")
	phase := fs.String("phase", "", "approve the gated phase `NAME`")
	comment := fs.String("comment", "", "note recorded in the audit trail")
	return func(ctx context.Context, pos []string) error {
		id, err := oneID(cmd, pos)
		if err != nil {
			return err
		}
		*hash, *phase = strings.TrimSpace(*hash), strings.TrimSpace(*phase)
		switch {
		case *hash == "" && *phase == "":
			return usagef(cmd.name, "approve: one of --plan HASH or --phase NAME is required")
		case *hash != "" && *phase != "":
			return usagef(cmd.name, "approve: give --plan or --phase, not both")
		}
		api, cfg, closeFn, err := e.dial(ctx)
		if err != nil {
			return err
		}
		defer closeFn()
		actx, cancel := context.WithTimeout(ctx, rpcTimeout)
		defer cancel()
		res, err := api.Approve(actx, id, workflows.ApproveRequest{
			Actor: cfg.User, PlanHash: *hash, Phase: *phase, Comment: *comment,
		})
		if err != nil {
			return err
		}
		return e.printAction(workflows.Approve, id, res)
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
