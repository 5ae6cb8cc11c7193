package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	_ "time/tzdata" // --at names IANA zones on machines without a zoneinfo database too

	"github.com/spf13/pflag"

	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/starter/client"
)

const scheduleDetail = "fleet start -f FILE --at TIME creates a Temporal Schedule (the Web UI's Schedules\n" +
	"page shows it) that starts the rollout once at TIME. TIME is a local time and an\n" +
	"IANA time zone, \"2026-12-07T09:00 Europe/Berlin\" (seconds and a space for the T\n" +
	"may be given), or an RFC 3339 time with its offset; it must lie ahead. The spec is\n" +
	"checked before the schedule is created, and the start is signed then (FLEET_KEY):\n" +
	"the rollout verifies that signature at the schedule's creation, for a start at\n" +
	"TIME (up to 1h late, when Temporal was down at TIME). A rollout that starts\n" +
	"during a fleet freeze waits paused and changes nothing until the freeze is lifted\n" +
	"and it is resumed.\n\n" +
	"list shows each schedule: its rollout, when, who created it, and whether it\n" +
	"is waiting, started the rollout, or missed its time. cancel deletes the\n" +
	"schedule NAME (the rollout's name or the schedule's ID); a rollout it has\n" +
	"already started goes on (fleet abort stops it)."

// atLayouts are the local-time forms --at takes before its zone.
var atLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02 15:04:05"}

// parseAt reads --at: "2026-12-07T09:00 Europe/Berlin" (a local time and an
// IANA zone) or an RFC 3339 time with an offset. The time must exist in its
// zone (not in a DST gap) and lie after now.
func parseAt(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		i := strings.LastIndex(s, " ")
		if i < 0 {
			return time.Time{}, fmt.Errorf("%q: want a local time and a time zone, like \"2026-12-07T09:00 Europe/Berlin\", or an RFC 3339 time with an offset", s)
		}
		clock, zone := strings.TrimSpace(s[:i]), s[i+1:]
		if zone == "" || zone == "Local" {
			return time.Time{}, fmt.Errorf("%q: name the time zone (an IANA name like Europe/Berlin, or UTC)", s)
		}
		loc, err := time.LoadLocation(zone)
		if err != nil {
			return time.Time{}, fmt.Errorf("unknown time zone %q (want an IANA name like Europe/Berlin, America/New_York or UTC)", zone)
		}
		t, err = parseClock(clock, loc)
		if err != nil {
			return time.Time{}, err
		}
	}
	if !t.After(now) {
		return time.Time{}, fmt.Errorf("%s is in the past (now is %s): a schedule starts a rollout later", t.Format("2006-01-02 15:04:05 MST"), now.In(t.Location()).Format("2006-01-02 15:04:05 MST"))
	}
	return t, nil
}

func parseClock(clock string, loc *time.Location) (time.Time, error) {
	for _, layout := range atLayouts {
		t, err := time.ParseInLocation(layout, clock, loc)
		if err != nil {
			continue
		}
		if t.Format(layout) != clock {
			return time.Time{}, fmt.Errorf("%s does not exist in %s (the clocks skip it for daylight saving time)", clock, loc)
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time like 2026-12-07T09:00", clock)
}

// scheduleStart creates the schedule of fleet start --at.
func scheduleStart(ctx context.Context, e *env, api rollouts, r *spec.Rollout, user string, at time.Time) error {
	sctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	s, err := api.ScheduleStart(sctx, r, user, at)
	if err != nil {
		return err
	}
	if e.asJSON() {
		return writeJSON(e.stdout, s)
	}
	fmt.Fprintf(e.stdout, "Scheduled rollout %q to start at %s (%s, %s from now): schedule %s.\n",
		s.Rollout, formatAt(s.At), s.At.UTC().Format(time.RFC3339), formatDuration(s.At.Sub(e.now())), s.ID)
	fmt.Fprintf(e.stdout, "The Temporal Web UI shows it under Schedules. A freeze in force then keeps the rollout paused.\n\n")
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  fleet schedule list\tyour scheduled starts\n")
	fmt.Fprintf(tw, "  fleet schedule cancel %s\tcall it off\n", shellQuote(s.Rollout))
	fmt.Fprintf(tw, "  fleet watch %s\tfollow it once it has started\n", shellQuote(s.Rollout))
	return tw.Flush()
}

func formatAt(t time.Time) string {
	return t.Format("2006-01-02 15:04:05 MST") + " " + t.Location().String()
}

// cmdSchedule is `fleet schedule list` and `fleet schedule cancel NAME`.
func cmdSchedule(e *env, cmd *command, fs *pflag.FlagSet) runFunc {
	reason := fs.String("reason", "", "with cancel: why (printed with the cancellation)")
	return func(ctx context.Context, pos []string) error {
		if len(pos) == 0 {
			return usagef(cmd.name, "schedule: list or cancel? (usage: fleet %s)", cmd.synopsis)
		}
		switch pos[0] {
		case "list", "ls":
			if len(pos) > 1 {
				return usagef(cmd.name, "schedule list: unexpected argument %q (usage: fleet %s)", pos[1], cmd.synopsis)
			}
			if fs.Changed("reason") {
				return usagef(cmd.name, "schedule list: --reason goes with cancel")
			}
			return scheduleList(ctx, e)
		case "cancel", "delete", "rm":
			switch {
			case len(pos) < 2 || strings.TrimSpace(pos[1]) == "":
				return usagef(cmd.name, "schedule cancel: missing NAME (usage: fleet %s)", cmd.alt)
			case len(pos) > 2:
				return usagef(cmd.name, "schedule cancel: unexpected argument %q (usage: fleet %s)", pos[2], cmd.alt)
			}
			return scheduleCancel(ctx, e, pos[1], strings.TrimSpace(*reason))
		}
		return usagef(cmd.name, "schedule: unknown subcommand %q: list or cancel (usage: fleet %s)", pos[0], cmd.synopsis)
	}
}

func scheduleList(ctx context.Context, e *env) error {
	api, _, closeFn, err := e.dial(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	lctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	list, err := api.Schedules(lctx)
	if err != nil {
		return err
	}
	if e.asJSON() {
		if list == nil {
			list = []client.Scheduled{}
		}
		return writeJSON(e.stdout, list)
	}
	renderSchedules(e.stdout, list, e.now())
	return nil
}

func renderSchedules(w io.Writer, list []client.Scheduled, now time.Time) {
	if len(list) == 0 {
		fmt.Fprintln(w, "No scheduled starts (fleet start -f FILE --at TIME makes one).")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLLOUT\tAT\tSTATE\tBY\tSCHEDULE")
	for _, s := range list {
		state := s.State
		switch {
		case s.State == client.ScheduleWaiting:
			state += " (" + inOrAgo(s.At, now) + ")"
		case s.StartedAt != nil:
			state += " " + s.StartedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Rollout, formatAt(s.At), state, s.Requester, s.ID)
	}
	tw.Flush()
}

// cancelOutput is what schedule cancel prints with -o json: the schedule
// deleted, by whom, when and why.
type cancelOutput struct {
	client.Scheduled
	CanceledBy string    `json:"canceledBy"`
	CanceledAt time.Time `json:"canceledAt"`
	Reason     string    `json:"reason,omitempty"`
}

func scheduleCancel(ctx context.Context, e *env, name, reason string) error {
	api, cfg, closeFn, err := e.dial(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	cctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	s, err := api.CancelSchedule(cctx, name)
	if err != nil {
		return err
	}
	out := cancelOutput{Scheduled: *s, CanceledBy: cfg.User, CanceledAt: e.now().UTC(), Reason: reason}
	if e.asJSON() {
		return writeJSON(e.stdout, out)
	}
	why := ""
	if reason != "" {
		why = ": " + reason
	}
	fmt.Fprintf(e.stdout, "Canceled schedule %s (rollout %q at %s, created by %s at %s): deleted by %s at %s%s.\n",
		s.ID, s.Rollout, formatAt(s.At), s.Requester, s.CreatedAt.UTC().Format(time.RFC3339),
		out.CanceledBy, out.CanceledAt.Format(time.RFC3339), why)
	if s.State == client.ScheduleStarted {
		fmt.Fprintf(e.stdout, "It had already started the rollout, which goes on (fleet status %s; fleet abort stops it).\n", shellQuote(s.Rollout))
	}
	return nil
}
