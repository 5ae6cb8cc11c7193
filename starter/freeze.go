package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/fleet-rollout/fleet/starter/client"
	"github.com/fleet-rollout/fleet/workflows"
)

// freezeHistoryShown is how many past freezes `fleet freeze status` prints.
const freezeHistoryShown = 5

// maxFreezeDays is workflows.MaxFreezeDuration in days, for messages.
var maxFreezeDays = strconv.Itoa(int(workflows.MaxFreezeDuration / (24 * time.Hour)))

var freezeDetail = "A fleet-wide freeze pauses every running rollout at once (clusters in flight\n" +
	"are held before their next broker), and no rollout starts or resumes until it\n" +
	"ends at --until or 'fleet unfreeze' lifts it. Freezing again replaces the freeze\n" +
	"in force. --until is an RFC 3339 time (2026-03-02T18:00:00Z) or a duration from\n" +
	"now (48h, 90m, 3d), at most " + maxFreezeDays + " days ahead.\n" +
	"'fleet freeze status' shows who froze the fleet, why, since and until when,\n" +
	"and the recent freezes."

const unfreezeDetail = "Lifts the fleet-wide freeze in force. Rollouts it paused stay paused: resume\n" +
	"each with 'fleet resume ID'."

const paceDetail = "Changes a running rollout's pacing for its current and later phases:\n" +
	"--concurrency is the most clusters applied at once (batches already running\n" +
	"take it at once), --bake how long each batch watches its monitors before it\n" +
	"counts as done (0 for none). Give either or both; the change is recorded in\n" +
	"the audit trail."

// parseUntil reads --until: an RFC 3339 time, or a duration from now (Go
// syntax, or whole days like 3d). The end must be ahead of now and at most
// workflows.MaxFreezeDuration away.
func parseUntil(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	var until time.Time
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		until = t
		if !until.After(now) {
			return time.Time{}, fmt.Errorf("%s is not in the future (now %s)", until.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		}
	} else {
		d, derr := parseFreezeDuration(s)
		if derr != nil {
			return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time like 2026-03-02T18:00:00Z nor a duration from now like 48h", s)
		}
		if d <= 0 {
			return time.Time{}, fmt.Errorf("duration %s must be positive", s)
		}
		until = now.Add(d)
	}
	if until.Sub(now) > workflows.MaxFreezeDuration {
		return time.Time{}, fmt.Errorf("%s is more than %s days ahead (latest %s)",
			until.UTC().Format(time.RFC3339), maxFreezeDays, now.Add(workflows.MaxFreezeDuration).UTC().Format(time.RFC3339))
	}
	return until.UTC(), nil
}

// parseFreezeDuration is time.ParseDuration plus whole days ("3d").
func parseFreezeDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, err
		}
		if n > 100_000 || n < -100_000 { // beyond what a time.Duration holds
			return 0, fmt.Errorf("%d days is out of range", n)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// cmdFreeze is `fleet freeze --reason R --until T` and `fleet freeze status`.
func cmdFreeze(e *env, cmd *command, fs *pflag.FlagSet) runFunc {
	reason := fs.String("reason", "", "why (required; shown to everyone whose rollout it pauses)")
	untilArg := fs.String("until", "", "when the freeze ends (required): `T` is an RFC 3339 time or a duration from now (48h, 3d)")
	return func(ctx context.Context, pos []string) error {
		if len(pos) > 0 {
			if pos[0] == "status" {
				for _, name := range []string{"reason", "until"} {
					if fs.Changed(name) {
						return usagef(cmd.name, "freeze: flag provided but not defined: -%s\nfreeze: 'status' takes no --reason or --until (usage: fleet %s)", name, cmd.alt)
					}
				}
				return freezeStatus(ctx, e, cmd, pos[1:])
			}
			return noArgs(cmd, pos)
		}
		*reason = strings.TrimSpace(*reason)
		if *reason == "" {
			return usagef(cmd.name, "freeze: --reason is required (usage: fleet %s)", cmd.synopsis)
		}
		if strings.TrimSpace(*untilArg) == "" {
			return usagef(cmd.name, "freeze: --until is required: when the freeze ends (an RFC 3339 time or a duration from now like 48h)")
		}
		now := e.now()
		until, err := parseUntil(*untilArg, now)
		if err != nil {
			return usagef(cmd.name, "freeze: --until: %v", err)
		}
		api, cfg, closeFn, err := e.dial(ctx)
		if err != nil {
			return err
		}
		defer closeFn()
		fctx, cancel := context.WithTimeout(ctx, rpcTimeout)
		defer cancel()
		st, err := api.Freeze(fctx, workflows.FreezeRequest{Actor: cfg.User, Reason: *reason, Until: until})
		if err != nil {
			return err
		}
		if e.asJSON() {
			return writeJSON(e.stdout, st)
		}
		renderFrozen(e.stdout, st, now)
		return nil
	}
}

func freezeStatus(ctx context.Context, e *env, cmd *command, pos []string) error {
	if len(pos) > 0 {
		return usagef(cmd.name, "freeze status: unexpected argument %q (usage: fleet %s)", pos[0], cmd.alt)
	}
	api, _, closeFn, err := e.dial(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	sctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	st, err := api.FreezeStatus(sctx)
	if err != nil {
		return err
	}
	if e.asJSON() {
		return writeJSON(e.stdout, st)
	}
	renderFreezeStatus(e.stdout, st, e.now())
	return nil
}

func cmdUnfreeze(e *env, cmd *command, fs *pflag.FlagSet) runFunc {
	reason := fs.String("reason", "", "why (recorded in the freeze's audit trail)")
	return func(ctx context.Context, pos []string) error {
		if err := noArgs(cmd, pos); err != nil {
			return err
		}
		api, cfg, closeFn, err := e.dial(ctx)
		if err != nil {
			return err
		}
		defer closeFn()
		uctx, cancel := context.WithTimeout(ctx, rpcTimeout)
		defer cancel()
		st, err := api.Unfreeze(uctx, cfg.User, strings.TrimSpace(*reason))
		if errors.Is(err, client.ErrNotFrozen) {
			return errors.New("unfreeze: the fleet is not frozen: nothing to lift ('fleet freeze status' shows past freezes)")
		}
		if err != nil {
			return err
		}
		if e.asJSON() {
			return writeJSON(e.stdout, st)
		}
		renderUnfrozen(e.stdout, st, e.now())
		return nil
	}
}

func cmdPace(e *env, cmd *command, fs *pflag.FlagSet) runFunc {
	concurrency := fs.Int("concurrency", 0, "the most clusters applied at once (`N`, at least 1)")
	bakeArg := fs.String("bake", "", "how long each batch bakes before it counts as done (a duration `D` like 5m; 0 for none)")
	reason := fs.String("reason", "", "why (recorded in the audit trail)")
	return func(ctx context.Context, pos []string) error {
		id, err := oneID(cmd, pos)
		if err != nil {
			return err
		}
		req, err := pacingRequest(cmd, fs.Changed("concurrency"), *concurrency, fs.Changed("bake"), *bakeArg)
		if err != nil {
			return err
		}
		api, cfg, closeFn, err := e.dial(ctx)
		if err != nil {
			return err
		}
		defer closeFn()
		req.Actor, req.Reason = cfg.User, strings.TrimSpace(*reason)
		pctx, cancel := context.WithTimeout(ctx, rpcTimeout)
		defer cancel()
		res, err := api.Pace(pctx, id, req)
		if err != nil {
			return err
		}
		return e.printAction(workflows.UpdatePacing, id, res)
	}
}

// pacingRequest checks pace's flags; Actor and Reason are left to the caller.
func pacingRequest(cmd *command, concSet bool, conc int, bakeSet bool, bakeArg string) (workflows.PacingRequest, error) {
	var req workflows.PacingRequest
	if !concSet && !bakeSet {
		return req, usagef(cmd.name, "pace: give --concurrency N, --bake D, or both (usage: fleet %s)", cmd.synopsis)
	}
	if concSet {
		if conc < 1 {
			return req, usagef(cmd.name, "pace: --concurrency must be at least 1, got %d", conc)
		}
		req.Concurrency = conc
	}
	if bakeSet {
		d, err := time.ParseDuration(strings.TrimSpace(bakeArg))
		if err != nil {
			return req, usagef(cmd.name, "pace: --bake: %q is not a duration like 5m or 90s", bakeArg)
		}
		if d < 0 {
			return req, usagef(cmd.name, "pace: --bake must not be negative, got %s", d)
		}
		req.Bake = &d
	}
	return req, nil
}

// inOrAgo is "in 6h0m0s" for a time ahead of now, "3h0m0s ago" otherwise.
func inOrAgo(t, now time.Time) string {
	if t.After(now) {
		return "in " + formatDuration(t.Sub(now))
	}
	return formatDuration(now.Sub(t)) + " ago"
}

// renderFrozen reports a freeze just set.
func renderFrozen(w io.Writer, st workflows.FreezeState, now time.Time) {
	f := st.Freeze
	if f == nil { // the workflow answered without one: say what it holds
		renderFreezeStatus(w, st, now)
		return
	}
	fmt.Fprintf(w, "The fleet is frozen until %s (%s) by %s: %s\n", formatTime(f.Until), inOrAgo(f.Until, now), orDash(f.Actor), orDash(f.Reason))
	fmt.Fprintln(w, "Running rollouts pause (clusters in flight are held before their next broker);")
	fmt.Fprintln(w, "none starts or resumes until the freeze ends or 'fleet unfreeze' lifts it.")
}

// renderUnfrozen reports a freeze just lifted: the newest history entry.
func renderUnfrozen(w io.Writer, st workflows.FreezeState, now time.Time) {
	if n := len(st.History); n > 0 {
		f := st.History[n-1]
		fmt.Fprintf(w, "The fleet freeze set by %s (%q) is lifted", orDash(f.Actor), f.Reason)
		if !f.Since.IsZero() {
			fmt.Fprintf(w, " after %s", formatDuration(now.Sub(f.Since)))
		}
		fmt.Fprintln(w, ".")
	} else {
		fmt.Fprintln(w, "The fleet freeze is lifted.")
	}
	if st.Freeze != nil { // someone froze it again meanwhile
		fmt.Fprintf(w, "A new freeze is in force: by %s until %s: %s\n", orDash(st.Freeze.Actor), formatTime(st.Freeze.Until), orDash(st.Freeze.Reason))
		return
	}
	fmt.Fprintln(w, "Rollouts it paused stay paused: resume each with 'fleet resume ID' ('fleet list' shows them).")
}

// renderFreezeStatus prints the freeze in force, if any, and the recent freezes.
func renderFreezeStatus(w io.Writer, st workflows.FreezeState, now time.Time) {
	kv := newTable(w, 2)
	if f := st.Freeze; f != nil {
		fmt.Fprintf(kv, "Frozen:\tyes, by %s\n", orDash(f.Actor))
		fmt.Fprintf(kv, "Reason:\t%s\n", orDash(f.Reason))
		if !f.Since.IsZero() {
			fmt.Fprintf(kv, "Since:\t%s (%s)\n", formatTime(f.Since), inOrAgo(f.Since, now))
		}
		until := fmt.Sprintf("%s (%s)", formatTime(f.Until), inOrAgo(f.Until, now))
		if !f.Until.After(now) {
			until += ", being lifted"
		}
		fmt.Fprintf(kv, "Until:\t%s\n", until)
	} else {
		fmt.Fprintf(kv, "Frozen:\tno\n")
	}
	kv.Flush()
	if st.Freeze != nil {
		fmt.Fprintln(w, "\nRunning rollouts are paused; none starts or resumes until the freeze ends.")
		fmt.Fprintln(w, "Lift it with: fleet unfreeze --reason '...'")
	}

	n := len(st.History)
	if n == 0 {
		fmt.Fprintln(w, "\nNo past freezes.")
		return
	}
	if n > freezeHistoryShown {
		fmt.Fprintf(w, "\nPast freezes (last %d of %d, newest first):\n", freezeHistoryShown, n)
	} else {
		fmt.Fprintf(w, "\nPast freezes (newest first):\n")
	}
	tw := newTable(w, 2)
	fmt.Fprintln(tw, "  SINCE\tENDED\tLASTED\tBY\tREASON")
	for i := n - 1; i >= max(0, n-freezeHistoryShown); i-- {
		f := st.History[i]
		lasted := "-"
		if !f.Since.IsZero() && !f.Until.IsZero() {
			lasted = formatDuration(f.Until.Sub(f.Since))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", formatTime(f.Since), formatTime(f.Until), lasted, orDash(f.Actor), f.Reason)
	}
	tw.Flush()
}
