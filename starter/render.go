package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/starter/client"
	"github.com/fleet-rollout/fleet/workflows"
)

// auditShown is how many of the last audit entries status prints.
const auditShown = 5

// incidentsShown is how many of the last incidents status prints.
const incidentsShown = 3

// table aligns columns like text/tabwriter and drops trailing blanks.
type table struct {
	*tabwriter.Writer
	w   io.Writer
	buf bytes.Buffer
}

func newTable(w io.Writer, padding int) *table {
	t := &table{w: w}
	t.Writer = tabwriter.NewWriter(&t.buf, 0, 0, padding, ' ', 0)
	return t
}

// Flush writes the aligned rows.
func (t *table) Flush() error {
	if err := t.Writer.Flush(); err != nil {
		return err
	}
	lines := strings.SplitAfter(t.buf.String(), "\n")
	t.buf.Reset()
	for _, l := range lines {
		nl := strings.HasSuffix(l, "\n")
		l = strings.TrimRight(l, " \n")
		if nl {
			l += "\n"
		}
		if _, err := io.WriteString(t.w, l); err != nil {
			return err
		}
	}
	return nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func formatDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return d.Round(time.Second).String()
}

func displayName(st *workflows.RolloutStatus) string {
	if st.Name != "" {
		return st.Name
	}
	return workflows.RolloutName(st.ID)
}

func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`!*?&;|<>(){}[]#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// renderStarted tells the user what started and what to run next.
func renderStarted(w io.Writer, id string, r *spec.Rollout, following bool) {
	name := shellQuote(workflows.RolloutName(id))
	fmt.Fprintf(w, "Started rollout %q (workflow %s).\n", workflows.RolloutName(id), id)
	if r != nil && r.RequirePlanApproval {
		fmt.Fprintf(w, "The plan needs approval: see its hash with 'fleet status %s', then run 'fleet approve %s --plan HASH'.\n", name, name)
	}
	if r != nil {
		for _, p := range r.Strategy.Phases {
			if p.RequireApproval {
				fmt.Fprintf(w, "Phase %q needs approval when it is reached: 'fleet approve %s --phase %s'.\n", p.Name, name, shellQuote(p.Name))
			}
		}
	}
	if following {
		return
	}
	fmt.Fprintf(w, "\nNext:\n")
	tw := newTable(w, 3)
	fmt.Fprintf(tw, "  fleet watch %s\tfollow it live\n", name)
	fmt.Fprintf(tw, "  fleet status %s\tphases, batches, clusters, pause reason\n", name)
	fmt.Fprintf(tw, "  fleet pause %s --reason '...'\thold every cluster in flight\n", name)
	tw.Flush()
}

// countsLine is "40/120 done, 3 in flight, 2 held, 1 failed, 0 aborted, 2 skipped, 72 pending",
// with "N verifying" after held when some clusters wait for their monitors.
func countsLine(c workflows.Counts, total int) string {
	verifying := ""
	if c.Verifying > 0 {
		verifying = fmt.Sprintf(" %d verifying,", c.Verifying)
	}
	return fmt.Sprintf("%d/%d done, %d in flight, %d held,%s %d failed, %d aborted, %d skipped, %d pending",
		c.Done, total, c.InFlight, c.Held, verifying, c.Failed, c.Aborted, c.Skipped, c.Pending)
}

// shortCounts lists the non-zero counts other than done and pending.
func shortCounts(c workflows.Counts) string {
	var parts []string
	add := func(n int, what string) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(c.InFlight, "in flight")
	add(c.Held, "held")
	add(c.Verifying, "verifying")
	add(c.Failed, "failed")
	add(c.Aborted, "aborted")
	add(c.Skipped, "skipped")
	return strings.Join(parts, ", ")
}

// pauseText is "by alice: db maintenance".
func pauseText(p *workflows.PauseReason) string {
	if p == nil {
		return ""
	}
	s := "by " + orDash(p.Actor)
	if p.Reason != "" {
		s += ": " + p.Reason
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func incidentText(in *workflows.Incident) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s on %s (batch %d", in.Kind, orDash(in.ClusterID), in.Batch)
	if in.Monitor != "" {
		fmt.Fprintf(&b, ", monitor %s", in.Monitor)
	}
	b.WriteString(")")
	if in.Message != "" {
		b.WriteString(": " + in.Message)
	}
	if !in.At.IsZero() {
		b.WriteString(" at " + formatTime(in.At))
	}
	return b.String()
}

// stateText is the state, with the pause reason when paused.
func stateText(st *workflows.RolloutStatus) string {
	s := string(st.State)
	if st.State == workflows.StatePaused && st.Paused != nil {
		s += " (" + pauseText(st.Paused) + ")"
	}
	if st.WaitingFor != "" && !st.State.Terminal() {
		s += ", waiting for " + st.WaitingFor
	}
	return s
}

// progressLine is one line of non-TTY watch output.
func progressLine(st *client.Status) string {
	if st.Stale {
		return "workflow " + st.Execution.Summary() + ": " + staleCounts(st)
	}
	return stateText(&st.RolloutStatus) + ": " + countsLine(st.Counts, st.Total)
}

// staleCounts says what a closed workflow last recorded, as not live.
func staleCounts(st *client.Status) string {
	if st.QueryError != "" {
		return "no status could be read (" + st.QueryError + ")"
	}
	return "last recorded, not live: " + countsLine(st.Counts, st.Total)
}

// barDescription sits beside the progress bar.
func barDescription(st *client.Status) string {
	if st.Stale {
		return "workflow " + string(st.Execution.Status)
	}
	s := stateText(&st.RolloutStatus)
	if c := shortCounts(st.Counts); c != "" {
		s += " · " + c
	}
	return s
}

// renderClosedBanner puts first what stopped a rollout whose workflow closed
// before the rollout ended: the server's status and reason, and that the
// numbers below are not live.
func renderClosedBanner(w io.Writer, st *client.Status, now time.Time) {
	if !st.Stale {
		return
	}
	x := st.Execution
	head := "WORKFLOW " + strings.ToUpper(string(x.Status))
	if x.Identity != "" {
		head += " by " + x.Identity
	}
	if x.CloseTime != nil {
		head += ", " + formatDuration(now.Sub(*x.CloseTime)) + " ago"
	}
	fmt.Fprintf(w, "%s: %s\n", head, orDash(x.Reason))
	if st.QueryError != "" {
		fmt.Fprintf(w, "Its status could not be read: %s\n\n", st.QueryError)
		return
	}
	fmt.Fprintf(w, "The rollout did not end: the counts below are the last it recorded, not live;\nclusters shown in flight were left as they were.\n\n")
}

func isActive(s workflows.ClusterState) bool {
	switch s {
	case workflows.ClusterApplying, workflows.ClusterHolding, workflows.ClusterVerifying,
		workflows.ClusterHeld, workflows.ClusterFailed:
		return true
	}
	return false
}

func batchTotal(b workflows.BatchStatus) int {
	return max(len(b.Clusters), client.Sum(b.Counts))
}

func batchDone(b workflows.BatchStatus) int {
	if len(b.Clusters) == 0 {
		return b.Counts.Done
	}
	n := 0
	for _, c := range b.Clusters {
		if c.State == workflows.ClusterDone {
			n++
		}
	}
	return n
}

// renderStatus prints a rollout's status for people; relative times are
// from now, the caller's clock.
func renderStatus(w io.Writer, cst *client.Status, now time.Time) {
	st := &cst.RolloutStatus
	name := displayName(st)
	id := st.ID
	if id == "" {
		id = workflows.RolloutID(name)
	}
	renderClosedBanner(w, cst, now)
	renderPauseBanner(w, st, now)
	kv := newTable(w, 2)
	fmt.Fprintf(kv, "Rollout:\t%s (%s)\n", name, id)
	fmt.Fprintf(kv, "State:\t%s\n", orDash(string(st.State)))
	if x := cst.Execution; x.Status != "" {
		wf := string(x.Status)
		if x.Status.Abnormal() {
			wf = x.Summary()
		}
		fmt.Fprintf(kv, "Workflow:\t%s\n", wf)
	}
	fmt.Fprintf(kv, "Target version:\t%s\n", orDash(st.TargetVersion))
	if st.Requester != "" {
		fmt.Fprintf(kv, "Requester:\t%s\n", st.Requester)
	}
	if st.PlanHash != "" {
		fmt.Fprintf(kv, "Plan:\t%s\n", st.PlanHash)
	}
	if rec := st.Recovery; rec != nil {
		what := map[workflows.RecoveryKind]string{
			workflows.RecoveryRollback:  "rolls back",
			workflows.RecoveryRetry:     "retries",
			workflows.RecoverySupersede: "supersedes",
		}[rec.Kind]
		fmt.Fprintf(kv, "Recovery:\t%s %s\n", what, workflows.RolloutName(rec.Of))
	}
	if st.SupersededBy != "" {
		fmt.Fprintf(kv, "Superseded by:\t%s (fleet status %s)\n", workflows.RolloutName(st.SupersededBy), workflows.RolloutName(st.SupersededBy))
	}
	if st.RollbackID != "" {
		fmt.Fprintf(kv, "Rolled back by:\t%s (fleet status %s)\n", workflows.RolloutName(st.RollbackID), workflows.RolloutName(st.RollbackID))
	}
	if !st.StartedAt.IsZero() {
		if st.FinishedAt != nil {
			fmt.Fprintf(kv, "Started:\t%s\n", formatTime(st.StartedAt))
			fmt.Fprintf(kv, "Finished:\t%s (took %s)\n", formatTime(*st.FinishedAt), formatDuration(st.FinishedAt.Sub(st.StartedAt)))
		} else {
			fmt.Fprintf(kv, "Started:\t%s (%s ago)\n", formatTime(st.StartedAt), formatDuration(now.Sub(st.StartedAt)))
		}
	}
	if p := st.Paused; p != nil {
		fmt.Fprintf(kv, "Paused:\t%s at %s\n", pauseText(p), formatTime(p.At))
		if p.Incident != nil {
			fmt.Fprintf(kv, "Incident:\t%s\n", incidentText(p.Incident))
		}
	}
	if st.WaitingFor != "" && !st.State.Terminal() {
		fmt.Fprintf(kv, "Waiting for:\t%s\n", st.WaitingFor)
	}
	switch {
	case cst.Stale && cst.QueryError != "":
		fmt.Fprintf(kv, "Clusters:\tunknown (no status could be read)\n")
	case cst.Stale:
		fmt.Fprintf(kv, "Clusters:\t%s (last recorded, not live)\n", countsLine(st.Counts, st.Total))
	default:
		fmt.Fprintf(kv, "Clusters:\t%s\n", countsLine(st.Counts, st.Total))
	}
	if len(cst.Inconsistent) > 0 {
		fmt.Fprintf(kv, "Note:\tthe counts may be off (%s)\n", strings.Join(cst.Inconsistent, "; "))
	}
	if cst.QueryError == "" {
		fmt.Fprintf(kv, "Error budget:\t%s\n", budgetLine(st))
	}
	kv.Flush()

	switch st.State {
	case workflows.StateAwaitingApproval:
		if st.PlanHash != "" {
			fmt.Fprintf(w, "\nApprove the plan with: fleet approve %s --plan %s\n", shellQuote(name), st.PlanHash)
		}
	case workflows.StatePaused:
		fmt.Fprintf(w, "\nResume with: fleet resume %s --reason '...'   (or abort with: fleet abort %s --reason '...')\n",
			shellQuote(name), shellQuote(name))
	}

	if len(st.Phases) > 0 {
		fmt.Fprintf(w, "\nPhases:\n")
		for _, p := range st.Phases {
			renderPhase(w, p)
		}
	}

	renderIncidents(w, st.Incidents)

	if n := len(st.Audit); n > 0 {
		fmt.Fprintf(w, "\nRecent actions:\n")
		tw := newTable(w, 2)
		for _, a := range st.Audit[max(0, n-auditShown):] {
			reason := ""
			if a.Reason != "" {
				reason = fmt.Sprintf("%q", a.Reason)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", formatTime(a.At), orDash(a.Actor), a.Action, a.Outcome, reason)
		}
		tw.Flush()
	}
}

// renderPauseBanner puts a paused rollout's pause reason first, where it is
// seen: who paused it, how long ago, and why.
func renderPauseBanner(w io.Writer, st *workflows.RolloutStatus, now time.Time) {
	if st.State != workflows.StatePaused {
		return
	}
	p := st.Paused
	if p == nil {
		fmt.Fprintf(w, "PAUSED (no reason recorded)\n\n")
		return
	}
	head := "PAUSED by " + orDash(p.Actor)
	if !p.At.IsZero() {
		head += ", " + formatDuration(now.Sub(p.At)) + " ago"
	}
	fmt.Fprintf(w, "%s: %s\n\n", head, orDash(p.Reason))
}

// budgetLine is "failures 2 / budget 3", saying when the budget is spent.
func budgetLine(st *workflows.RolloutStatus) string {
	s := fmt.Sprintf("failures %d / budget %d", st.Failures, st.FailureBudget)
	switch {
	case st.Failures > st.FailureBudget:
		s += " (exceeded)"
	case st.Failures == st.FailureBudget && !st.State.Terminal():
		s += " (the next failure exceeds it)"
	}
	return s
}

// renderIncidents lists the last incidents, oldest first: when, what, where,
// which monitor, and what it said.
func renderIncidents(w io.Writer, incidents []workflows.Incident) {
	n := len(incidents)
	if n == 0 {
		return
	}
	if n > incidentsShown {
		fmt.Fprintf(w, "\nIncidents (last %d of %d):\n", incidentsShown, n)
	} else {
		fmt.Fprintf(w, "\nIncidents (%d):\n", n)
	}
	tw := newTable(w, 2)
	fmt.Fprintln(tw, "  TIME\tKIND\tCLUSTER\tBATCH\tMONITOR\tMESSAGE")
	for _, in := range incidents[max(0, n-incidentsShown):] {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\t%s\n", formatTime(in.At), orDash(string(in.Kind)),
			orDash(in.ClusterID), in.Batch, orDash(in.Monitor), in.Message)
	}
	tw.Flush()
}

// renderPhase prints a phase: a line per batch (runs of pending batches
// folded into one), then the clusters in flight, held or failed.
func renderPhase(w io.Writer, p workflows.PhaseStatus) {
	head := fmt.Sprintf("  %s (%s", p.Name, orDash(p.State))
	if p.RequireApproval {
		head += ", requires approval"
	}
	fmt.Fprintln(w, head+")")
	tw := newTable(w, 2)
	bs := p.Batches
	for i := 0; i < len(bs); i++ {
		b := bs[i]
		if foldable(b) {
			j := i
			total := 0
			for j < len(bs) && foldable(bs[j]) {
				total += batchTotal(bs[j])
				j++
			}
			if j-i >= 3 {
				fmt.Fprintf(tw, "    batches %d-%d\t%s\t0/%d\t\n", bs[i].Number, bs[j-1].Number, workflows.BatchPending, total)
				i = j - 1
				continue
			}
		}
		fmt.Fprintf(tw, "    batch %d\t%s\t%d/%d\t\n", b.Number, b.State, batchDone(b), batchTotal(b))
		for _, c := range b.Clusters {
			if !isActive(c.State) {
				continue
			}
			broker := ""
			if c.Brokers > 0 {
				broker = fmt.Sprintf("broker %d/%d", c.Broker, c.Brokers)
			}
			fmt.Fprintf(tw, "      %s\t%s\t%s\t%s\n", c.ID, c.State, broker, c.Message)
		}
	}
	tw.Flush()
}

// foldable is a pending batch with nothing to show but its size.
func foldable(b workflows.BatchStatus) bool {
	if b.State != workflows.BatchPending {
		return false
	}
	for _, c := range b.Clusters {
		if isActive(c.State) {
			return false
		}
	}
	return true
}

// renderSummary is the last thing watch prints.
func renderSummary(w io.Writer, cst *client.Status, now time.Time) {
	st := &cst.RolloutStatus
	if cst.Stale {
		fmt.Fprintf(w, "Rollout %q: workflow %s: %s\n", displayName(st), cst.Execution.Summary(), staleCounts(cst))
		return
	}
	end := now
	if st.FinishedAt != nil {
		end = *st.FinishedAt
	}
	took := ""
	if !st.StartedAt.IsZero() {
		took = " in " + formatDuration(end.Sub(st.StartedAt))
	}
	fmt.Fprintf(w, "Rollout %q %s%s: %s\n", displayName(st), st.State, took, countsLine(st.Counts, st.Total))
	if st.State == workflows.StateAborted || st.State == workflows.StateFailed {
		for i := len(st.Audit) - 1; i >= 0; i-- {
			if a := st.Audit[i]; a.Action == workflows.Abort {
				fmt.Fprintf(w, "Aborted by %s: %s\n", orDash(a.Actor), orDash(a.Reason))
				break
			}
		}
		if n := len(st.Incidents); n > 0 {
			fmt.Fprintf(w, "Last incident: %s\n", incidentText(&st.Incidents[n-1]))
		}
	}
}

// renderList prints rollouts as a table.
func renderList(w io.Writer, list []client.Summary, open bool) {
	if len(list) == 0 {
		if open {
			fmt.Fprintln(w, "No running or recently closed rollouts (fleet list --all shows older ones).")
		} else {
			fmt.Fprintln(w, "No rollouts.")
		}
		return
	}
	tw := newTable(w, 2)
	fmt.Fprintln(tw, "NAME\tSTATUS\tSTARTED\tCLOSED\tREASON")
	for _, s := range list {
		closed := "-"
		if s.CloseTime != nil {
			closed = formatTime(*s.CloseTime)
		}
		reason := ""
		if s.Status.Abnormal() {
			reason = s.Reason
			if s.Identity != "" {
				reason = "by " + s.Identity + ": " + reason
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.Status, formatTime(s.StartTime), closed, reason)
	}
	tw.Flush()
}

// renderAction reports an accepted action.
func renderAction(w io.Writer, id string, res workflows.ActionResult) {
	rid := workflows.RolloutID(workflows.RolloutName(id))
	if res.State != "" {
		fmt.Fprintf(w, "%s is now %s", rid, res.State)
	} else {
		fmt.Fprintf(w, "%s: done", rid)
	}
	if res.Message != "" {
		fmt.Fprintf(w, ": %s", res.Message)
	}
	fmt.Fprintln(w)
}
