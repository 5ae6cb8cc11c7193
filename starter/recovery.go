package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/recovery"
	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/starter/client"
	"github.com/fleet-rollout/fleet/workflows"
)

// Recovery commands (README "Recovery"): rollback, supersede, retry, and
// the plan previews fleet plan --rollback / --supersede.

const planDetail = "Plans the spec against the inventory at FLEET_INVENTORY (a URL or a file).\n" +
	"It does not ask Temporal, so clusters held by running rollouts are not\n" +
	"left out here as they are when the rollout plans for real.\n\n" +
	"--rollback NAME previews fleet rollback NAME: it reads what NAME did from\n" +
	"Temporal and plans its rollback as the worker does, listing each cluster\n" +
	"with the version it returns to. A rollout still running is previewed too,\n" +
	"with a reminder that it must be stopped first.\n" +
	"--supersede NAME -f FILE previews fleet supersede: FILE's plan, with the\n" +
	"clusters NAME changed first in their phase."

const rollbackDetail = "Rolls back the rollout NAME, which has ended: every cluster it changed (done,\n" +
	"failed, or stopped after at least one broker) returns to the version and the\n" +
	"config keys it had before, as the rollout NAME-rollback. Failed and stopped\n" +
	"clusters go first (phase failed-first), then the done ones by phase, last\n" +
	"phase first (--forward: the rollout's order), each phase with its batch size,\n" +
	"concurrency and bake. Clusters it never changed, and clusters another rollout\n" +
	"has changed since, are left alone. The rollback keeps the rollout's monitors,\n" +
	"error budget (onExceeded: rollback becomes pause) and Slack channel; it has\n" +
	"no approval gates and ignores maintenance windows unless --respect-windows.\n" +
	"Preview it with fleet plan --rollback NAME.\n\n" +
	"A rollout still running is refused: stop it first (fleet abort NAME), or give\n" +
	"--abort --reason R to abort it and start NAME-rollback once its batches have\n" +
	"stopped (clusters in flight stop after their current broker, held ones are\n" +
	"aborted); that rollback runs last phase first and ignores windows."

const supersedeDetail = "Hands the rollout NAME over to a new rollout from FILE (a hotfix, with a name\n" +
	"of its own). NAME starts no new cluster; its clusters in flight stop after\n" +
	"their current broker (held ones are aborted) and it ends superseded. The new\n" +
	"rollout waits for that, then plans FILE as usual with the clusters NAME\n" +
	"changed (done, failed, stopped mid-way) first in their phase; NAME's pending\n" +
	"and skipped clusters get the hotfix in the usual order. No cluster is changed\n" +
	"by both at once. FILE is checked like fleet start -f before anything is\n" +
	"touched (a malformed spec exits 2). A rollout NAME that has already ended is\n" +
	"not touched: the new one starts after it the same way.\n" +
	"Preview it with fleet plan --supersede NAME -f FILE."

const retryDetail = "Re-applies the clusters of the rollout NAME that failed, were aborted or were\n" +
	"skipped (only the --cluster ones when given), with a fresh error budget: their\n" +
	"earlier failures no longer count. A rollout still running or paused retries\n" +
	"them itself, in a last phase retry-N (with a new generation) holding those of\n" +
	"its finished batches. A rollout that has ended is retried by a new rollout\n" +
	"NAME-retry with the same spec, restricted to those clusters (and the ones of\n" +
	"batches that never ran)."

// recoveryResult is what rollback, supersede and retry print with --json.
type recoveryResult struct {
	Kind workflows.RecoveryKind `json:"kind"`
	// Of is the rollout recovered, ID the rollout doing it (the same one for
	// a retry within a running rollout).
	Of      string `json:"of"`
	ID      string `json:"id"`
	Name    string `json:"name"`
	InPlace bool   `json:"inPlace,omitempty"`
	// Aborted says a rollback aborted the running rollout first.
	Aborted bool   `json:"aborted,omitempty"`
	Message string `json:"message,omitempty"`
	Watch   string `json:"watch"`
}

// recoveryName checks the rollout NAME given to a recovery flag.
func recoveryName(cmd *command, flagName, v string) (string, error) {
	name := strings.TrimSpace(workflows.RolloutName(strings.TrimSpace(v)))
	if name == "" {
		return "", usagef(cmd.name, "%s: %s needs a rollout NAME", cmd.name, flagName)
	}
	return name, nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

// Type names the flag's value in help.
func (l *stringList) Type() string { return "ID" }

func (l *stringList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func cmdRollback(e *env, cmd *command, fs *pflag.FlagSet) runFunc {
	abort := fs.Bool("abort", false, "abort the rollout first if it is still running (needs --reason)")
	reason := fs.String("reason", "", "why (required with --abort; recorded in the audit trail)")
	forward := fs.Bool("forward", false, "return the phases in the rollout's own order (default: last phase first)")
	respect := fs.Bool("respect-windows", false, "wait for maintenance windows (default: the rollback ignores them)")
	return func(ctx context.Context, pos []string) error {
		id, err := oneID(cmd, pos)
		if err != nil {
			return err
		}
		*reason = strings.TrimSpace(*reason)
		if *abort && *reason == "" {
			return usagef(cmd.name, "rollback: --abort needs --reason (why the rollout is aborted and rolled back; recorded in the audit trail)")
		}
		name := workflows.RolloutName(id)
		api, cfg, closeFn, err := e.dial(ctx)
		if err != nil {
			return err
		}
		defer closeFn()
		actx, cancel := context.WithTimeout(ctx, rpcTimeout)
		defer cancel()
		running := false
		if *abort {
			src, err := api.Source(actx, name)
			if err != nil {
				return err
			}
			running = !src.State.Terminal()
			if running && (*forward || *respect) {
				return fmt.Errorf("rollback %s: it is %s, and the rollback --abort starts runs last phase first and ignores maintenance windows; to choose, stop it first (fleet abort %s --reason ...), then fleet rollback %s with --forward or --respect-windows",
					name, src.State, shellQuote(name), shellQuote(name))
			}
		}
		rid, err := api.Rollback(actx, name, client.RollbackOptions{
			Actor: cfg.User, Reason: *reason, Abort: *abort, Forward: *forward, RespectWindows: *respect,
		})
		if err != nil {
			return err
		}
		rname := workflows.RolloutName(rid)
		res := recoveryResult{Kind: workflows.RecoveryRollback, Of: workflows.RolloutID(name), ID: rid, Name: rname,
			Aborted: running, Watch: "fleet watch " + shellQuote(rname)}
		if running {
			res.Message = fmt.Sprintf("aborting %s; %s starts when its batches have stopped", name, rname)
		} else {
			res.Message = fmt.Sprintf("started %s", rname)
		}
		if e.asJSON() {
			return writeJSON(e.stdout, res)
		}
		if running {
			fmt.Fprintf(e.stdout, "Aborting rollout %q: clusters in flight stop after their current broker, held ones are aborted.\n", name)
			fmt.Fprintf(e.stdout, "Its rollback %q (workflow %s) starts when its batches have stopped.\n", rname, rid)
		} else {
			fmt.Fprintf(e.stdout, "Rolling back rollout %q: started rollout %q (workflow %s).\n", name, rname, rid)
		}
		renderRecoveryNext(e.stdout, rname)
		return nil
	}
}

func cmdSupersede(e *env, cmd *command, fs *pflag.FlagSet) runFunc {
	file := fileFlag(fs)
	reason := fs.String("reason", "", "why (recorded in the audit trail)")
	return func(ctx context.Context, pos []string) error {
		id, err := oneID(cmd, pos)
		if err != nil {
			return err
		}
		if *file == "" {
			return usagef(cmd.name, "supersede: -f FILE is required (the spec of the rollout that takes over)")
		}
		name := workflows.RolloutName(id)
		r, err := loadSpec(*file)
		if err != nil {
			return err
		}
		if r.Name == name {
			return &exitError{code: 2, err: fmt.Errorf("supersede: %s names the rollout %q it would supersede: give the new rollout a name of its own", *file, name)}
		}
		api, cfg, closeFn, err := e.dial(ctx)
		if err != nil {
			return err
		}
		defer closeFn()
		actx, cancel := context.WithTimeout(ctx, rpcTimeout)
		defer cancel()
		newID, err := api.Supersede(actx, name, r, cfg.User, strings.TrimSpace(*reason))
		if err != nil {
			return err
		}
		newName := workflows.RolloutName(newID)
		res := recoveryResult{Kind: workflows.RecoverySupersede, Of: workflows.RolloutID(name), ID: newID, Name: newName,
			Message: fmt.Sprintf("%s hands over to %s", name, newName), Watch: "fleet watch " + shellQuote(newName)}
		if e.asJSON() {
			return writeJSON(e.stdout, res)
		}
		fmt.Fprintf(e.stdout, "Superseding rollout %q (workflow %s) with %q (workflow %s).\n", name, workflows.RolloutID(name), newName, newID)
		fmt.Fprintf(e.stdout, "%s starts no new cluster; its clusters in flight stop after their current broker, then it ends superseded and hands over.\n", name)
		fmt.Fprintf(e.stdout, "%s waits for that, then plans with the clusters %s changed first in their phase.\n", newName, name)
		renderRecoveryNext(e.stdout, newName)
		return nil
	}
}

func cmdRetry(e *env, cmd *command, fs *pflag.FlagSet) runFunc {
	var clusters stringList
	fs.Var(&clusters, "cluster", "retry only the cluster `ID` (repeatable)")
	reason := fs.String("reason", "", "why (recorded in the audit trail)")
	return func(ctx context.Context, pos []string) error {
		id, err := oneID(cmd, pos)
		if err != nil {
			return err
		}
		name := workflows.RolloutName(id)
		api, cfg, closeFn, err := e.dial(ctx)
		if err != nil {
			return err
		}
		defer closeFn()
		actx, cancel := context.WithTimeout(ctx, rpcTimeout)
		defer cancel()
		rr, err := api.Retry(actx, name, clusters, cfg.User, strings.TrimSpace(*reason))
		if err != nil {
			return err
		}
		rname := workflows.RolloutName(rr.ID)
		res := recoveryResult{Kind: workflows.RecoveryRetry, Of: workflows.RolloutID(name), ID: rr.ID, Name: rname,
			InPlace: rr.InPlace, Message: rr.Message, Watch: "fleet watch " + shellQuote(rname)}
		if e.asJSON() {
			return writeJSON(e.stdout, res)
		}
		if rr.InPlace {
			fmt.Fprintf(e.stdout, "Retrying within rollout %q (still running): %s.\n", name, rr.Message)
			fmt.Fprintln(e.stdout, "They run in its new last phase.")
		} else {
			fmt.Fprintf(e.stdout, "Retrying rollout %q, which has ended: started rollout %q (workflow %s) with the same spec, for its failed, aborted and skipped clusters, with a fresh error budget.\n",
				name, rname, rr.ID)
		}
		renderRecoveryNext(e.stdout, rname)
		return nil
	}
}

func renderRecoveryNext(w io.Writer, name string) {
	name = shellQuote(name)
	fmt.Fprintf(w, "\nNext:\n")
	tw := newTable(w, 3)
	fmt.Fprintf(tw, "  fleet watch %s\tfollow it live\n", name)
	fmt.Fprintf(tw, "  fleet status %s\tphases, batches, clusters, pause reason\n", name)
	tw.Flush()
}

// renderOpts are fleet plan's output flags.
type renderOpts struct {
	json   bool
	render plan.RenderOptions
}

// planRollback previews fleet rollback name.
func planRollback(ctx context.Context, e *env, name string, o client.RollbackOptions, ro renderOpts) error {
	src, inv, err := recoverySource(ctx, e, name)
	if err != nil {
		return err
	}
	if src.Source.Plan == nil {
		return fmt.Errorf("rollback %s: it never planned, so it changed nothing", name)
	}
	in := client.RollbackInput(src, o)
	opts, err := planOptions(&in.Spec, inv)
	if err != nil {
		return err
	}
	self := workflows.RolloutID(workflows.RollbackName(name))
	p, err := recovery.Plan(*src, self, in.Recovery, &in.Spec, inv, opts)
	if err != nil {
		return err
	}
	var notes []string
	if !src.State.Terminal() {
		notes = append(notes, fmt.Sprintf("Rollout %q is %s: the rollback needs it stopped first (fleet abort %s --reason ..., then fleet rollback %s; or fleet rollback %s --abort --reason ... to do both). What it changes until then is rolled back too.",
			name, src.State, shellQuote(name), shellQuote(name), shellQuote(name)))
	}
	if ro.json {
		for _, n := range notes {
			fmt.Fprintln(e.stderr, n)
		}
		return writeJSON(e.stdout, p)
	}
	fmt.Fprintf(e.stdout, "Rollback of %q as rollout %q: each cluster %s changed returns to the version and config it came from.\n\n",
		name, workflows.RollbackName(name), name)
	if err := plan.Render(e.stdout, p, ro.render); err != nil {
		return err
	}
	renderReturns(e.stdout, p, ro.render.Clusters)
	for _, n := range notes {
		fmt.Fprintf(e.stdout, "\n%s\n", n)
	}
	return nil
}

// returnsShown is how many clusters plan --rollback lists without --clusters.
const returnsShown = 20

// renderReturns lists a rollback plan's clusters with the version (and
// config) each returns to, downgrades marked.
func renderReturns(w io.Writer, p *plan.Plan, all bool) {
	n := 0
	for _, ph := range p.Phases {
		for _, b := range ph.Batches {
			n += len(b.Clusters)
		}
	}
	if n == 0 {
		fmt.Fprintln(w, "\nNothing to roll back.")
		return
	}
	fmt.Fprintf(w, "\nClusters and the versions they return to:\n")
	tw := newTable(w, 2)
	fmt.Fprintf(tw, "  CLUSTER\tPHASE\tNOW\tBACK TO\tCONFIG\t\n")
	shown := 0
	for _, ph := range p.Phases {
		for _, b := range ph.Batches {
			for _, t := range b.Clusters {
				if !all && shown == returnsShown {
					continue
				}
				shown++
				version, config := t.To(p)
				note := ""
				if t.Downgrade {
					note = "downgrade"
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", t.ClusterID, ph.Name, orDash(t.FromVersion), version, configText(config), note)
			}
		}
	}
	tw.Flush()
	if shown < n {
		fmt.Fprintf(w, "  and %d more (--clusters lists every one)\n", n-shown)
	}
}

// configText formats config keys as k=v, "" as k unset.
func configText(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] == "" {
			kv = append(kv, k+" unset")
		} else {
			kv = append(kv, k+"="+m[k])
		}
	}
	return strings.Join(kv, ",")
}

// planSupersede previews fleet supersede name -f file.
func planSupersede(ctx context.Context, e *env, name string, r *spec.Rollout, file string, ro renderOpts) error {
	if r.Name == name {
		return &exitError{code: 2, err: fmt.Errorf("plan: %s names the rollout %q it would supersede: give the new rollout a name of its own", file, name)}
	}
	rec := &workflows.Recovery{Kind: workflows.RecoverySupersede, Of: workflows.RolloutID(name)}
	self := workflows.RolloutID(r.Name)
	if err := rec.Validate(self); err != nil {
		return usagef("plan", "plan: %v", err)
	}
	src, inv, err := recoverySource(ctx, e, name)
	if err != nil {
		return err
	}
	opts, err := planOptions(r, inv)
	if err != nil {
		return err
	}
	p, err := recovery.Plan(*src, self, rec, r, inv, opts)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	first := recovery.First(*src, inv)
	var ids []string
	for _, ph := range p.Phases {
		for _, b := range ph.Batches {
			for _, t := range b.Clusters {
				if first[t.ClusterID] {
					ids = append(ids, t.ClusterID)
				}
			}
		}
	}
	note := fmt.Sprintf("%s already changed by %s go first in their phase", plural(len(ids), "cluster"), name)
	if len(ids) > 0 && len(ids) <= returnsShown {
		note += ": " + strings.Join(ids, " ")
	}
	var running string
	if !src.State.Terminal() {
		running = fmt.Sprintf("Rollout %q is %s: fleet supersede stops it first (clusters in flight stop after their current broker); %s plans once it has stopped, so the clusters it changes until then go first too.",
			name, src.State, r.Name)
	}
	if ro.json {
		fmt.Fprintln(e.stderr, note+".")
		if running != "" {
			fmt.Fprintln(e.stderr, running)
		}
		return writeJSON(e.stdout, p)
	}
	fmt.Fprintf(e.stdout, "Supersede of %q by %q: %s.\n\n", name, r.Name, note)
	if err := plan.Render(e.stdout, p, ro.render); err != nil {
		return err
	}
	if running != "" {
		fmt.Fprintf(e.stdout, "\n%s\n", running)
	}
	return nil
}

// recoverySource reads what the rollout name did, and the inventory.
func recoverySource(ctx context.Context, e *env, name string) (*workflows.RolloutSource, []fleet.Cluster, error) {
	api, cfg, closeFn, err := e.dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer closeFn()
	qctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	src, err := api.Source(qctx, name)
	if err != nil {
		return nil, nil, err
	}
	inv, err := e.loadInventory(ctx, cfg.Inventory)
	if err != nil {
		return nil, nil, err
	}
	return src, inv, nil
}

// plural is "1 cluster", "2 clusters".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
