package bench

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// The bare fan-out: the cost of N activities at concurrency C on the same
// Temporal server, with no rollout logic, for comparison. It runs on its own
// task queue, registered by the benchmark.
const (
	BareTaskQueue    = "fleet-bench-bare"
	BareWorkflowName = "BenchBareFanout"
	BareActivityName = "BenchNoop"
	// barePerRun bounds the activities one run starts before it
	// continues-as-new, so the bare workflow's own history stays small.
	barePerRun = 1000
)

// BareInput is the bare fan-out's argument.
type BareInput struct {
	N           int `json:"n"`
	Concurrency int `json:"concurrency"`
	// Sleep is each activity's duration (0: a no-op).
	Sleep time.Duration `json:"sleep"`
	// Done is how many activities earlier runs completed.
	Done int `json:"done"`
}

// BareFanout runs in.N activities with at most in.Concurrency in flight,
// continuing-as-new every barePerRun activities (the window drains first).
func BareFanout(ctx workflow.Context, in BareInput) (int, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute + in.Sleep,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond},
	})
	limit := min(in.N, in.Done+barePerRun)
	next, inflight := in.Done, 0
	var firstErr error
	sel := workflow.NewSelector(ctx)
	for next < limit || inflight > 0 {
		for next < limit && inflight < in.Concurrency {
			f := workflow.ExecuteActivity(ctx, BareActivityName, in.Sleep)
			sel.AddFuture(f, func(f workflow.Future) {
				inflight--
				if err := f.Get(ctx, nil); err != nil && firstErr == nil {
					firstErr = err
				}
			})
			inflight++
			next++
		}
		sel.Select(ctx)
	}
	if firstErr != nil {
		return 0, firstErr
	}
	if limit < in.N {
		in.Done = limit
		return 0, workflow.NewContinueAsNewError(ctx, BareWorkflowName, in)
	}
	return in.N, nil
}

// Noop is the bare fan-out's activity: it sleeps d (0: returns at once).
func Noop(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RegisterBare registers the bare fan-out on w.
func RegisterBare(w worker.Registry) {
	w.RegisterWorkflowWithOptions(BareFanout, workflow.RegisterOptions{Name: BareWorkflowName})
	w.RegisterActivityWithOptions(Noop, activity.RegisterOptions{Name: BareActivityName})
}
