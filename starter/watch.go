package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/fleet-rollout/fleet/starter/client"
	"github.com/fleet-rollout/fleet/workflows"
)

// maxStatusFailures is how many status polls in a row may fail before watch
// gives up.
const maxStatusFailures = 10

// followFor is follow bounded by timeout (none when 0): when it elapses
// first, it returns a timeoutError (exit 7) and the rollout goes on.
func (e *env) followFor(ctx context.Context, api rollouts, id string, quiet bool, timeout time.Duration) error {
	if timeout <= 0 {
		return e.follow(ctx, api, id, quiet)
	}
	tctx, cancel := context.WithTimeoutCause(ctx, timeout, errTimedOut)
	defer cancel()
	err := e.follow(tctx, api, id, quiet)
	if err != nil && errors.Is(context.Cause(tctx), errTimedOut) && ctx.Err() == nil {
		return &exitError{code: exitTimeout, err: fmt.Errorf("rollout %q has not ended after --timeout %s; it goes on (fleet watch %s)",
			workflows.RolloutName(id), timeout, workflows.RolloutName(id))}
	}
	return err
}

// errTimedOut is the cause of a --timeout's context.
var errTimedOut = errors.New("--timeout elapsed")

// follow watches a rollout to its end, prints the summary, and fails unless
// it completed. quiet skips the live progress; with -o json it prints the
// final status as JSON instead of the summary.
func (e *env) follow(ctx context.Context, api rollouts, id string, quiet bool) error {
	var p progress
	switch {
	case quiet || e.asJSON():
		p = nopProgress{}
	case e.tty:
		p = &barProgress{w: e.stdout, lines: &lineProgress{w: e.stdout, now: e.now}}
	default:
		p = &lineProgress{w: e.stdout, now: e.now}
	}
	st, err := watchRollout(ctx, api, id, p, e.interval)
	if err != nil {
		return err
	}
	if e.asJSON() {
		if err := writeJSON(e.stdout, st); err != nil {
			return err
		}
	} else {
		renderSummary(e.stdout, st, e.now())
	}
	if x := st.Execution; x.Status.Abnormal() && st.Stale {
		return fmt.Errorf("rollout %q stopped: its workflow was %s; the clusters it had in flight were left as they were", displayName(&st.RolloutStatus), x.Summary())
	}
	if st.State != workflows.StateCompleted {
		return fmt.Errorf("rollout %q %s", displayName(&st.RolloutStatus), endedAs(st.State))
	}
	return nil
}

func endedAs(s workflows.RolloutState) string {
	switch s {
	case workflows.StateAborted:
		return "was aborted"
	case workflows.StateFailed:
		return "failed"
	case workflows.StateSuperseded:
		return "was superseded"
	case "":
		return "ended"
	}
	return "ended " + string(s)
}

// progress shows a rollout's progress as it changes.
type progress interface {
	update(st *client.Status)
	problem(err error)
	finish()
}

// watchRollout polls the rollout's status every interval until it has
// ended or its workflow has closed (terminated, timed out, ...) and returns
// the last status.
func watchRollout(ctx context.Context, api rollouts, id string, p progress, interval time.Duration) (*client.Status, error) {
	defer p.finish()
	failures := 0
	for {
		sctx, cancel := context.WithTimeout(ctx, rpcTimeout)
		st, err := api.Snapshot(sctx, id)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil:
			if errors.Is(err, client.ErrNotFound) {
				return nil, err
			}
			failures++
			if failures >= maxStatusFailures {
				return nil, fmt.Errorf("%w (gave up after %d failed polls)", err, failures)
			}
			p.problem(err)
		default:
			failures = 0
			p.update(st)
			if st.Ended() {
				return st, nil
			}
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

type nopProgress struct{}

func (nopProgress) update(*client.Status) {}
func (nopProgress) problem(error)         {}
func (nopProgress) finish()               {}

// lineProgress writes one line per change, for logs and pipes.
type lineProgress struct {
	w       io.Writer
	now     func() time.Time
	last    string
	lastErr string
}

func (l *lineProgress) update(st *client.Status) {
	l.lastErr = ""
	line := progressLine(st)
	if line == l.last {
		return
	}
	l.last = line
	fmt.Fprintf(l.w, "%s %s\n", l.now().UTC().Format(time.RFC3339), line)
}

func (l *lineProgress) problem(err error) {
	if msg := err.Error(); msg != l.lastErr {
		l.lastErr = msg
		fmt.Fprintf(l.w, "%s status unavailable, retrying: %s\n", l.now().UTC().Format(time.RFC3339), msg)
	}
}

func (l *lineProgress) finish() {}

// barProgress draws a progress bar of done/total on a terminal. Until the
// rollout has a plan (total known), it writes lines.
type barProgress struct {
	w     io.Writer
	bar   *progressbar.ProgressBar
	max   int
	lines *lineProgress
}

func (b *barProgress) update(st *client.Status) {
	if st.Total <= 0 {
		if b.bar == nil {
			b.lines.update(st)
		}
		return
	}
	desc := barDescription(st)
	if b.bar == nil {
		b.max = st.Total
		b.bar = progressbar.NewOptions(st.Total,
			progressbar.OptionSetWriter(b.w),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionSetDescription(desc),
			progressbar.OptionSetRenderBlankState(true),
		)
	} else if st.Total != b.max {
		b.max = st.Total
		b.bar.ChangeMax(st.Total)
	}
	b.bar.Describe(desc)
	_ = b.bar.Set(min(st.Counts.Done, st.Total))
}

func (b *barProgress) problem(err error) {
	if b.bar == nil {
		b.lines.problem(err)
		return
	}
	b.bar.Describe("status unavailable, retrying")
}

func (b *barProgress) finish() {
	if b.bar != nil {
		_ = b.bar.Exit()
		fmt.Fprintln(b.w)
		b.bar = nil
	}
}
