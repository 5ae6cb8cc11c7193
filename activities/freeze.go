package activities

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/workflows"
)

// broadcastConcurrency bounds the signals in flight during a broadcast.
const broadcastConcurrency = 16

// FreezeActivities are the fleet freeze's side effects: telling running
// rollouts about the freeze, and reading the freeze in force.
type FreezeActivities struct {
	// Temporal is the worker's client (visibility, signals, queries).
	Temporal client.Client
	Log      *zap.Logger
}

// Register registers the freeze activities on a worker under the names the
// workflows call.
func (a *FreezeActivities) Register(r interface {
	RegisterActivityWithOptions(any, activity.RegisterOptions)
}) {
	r.RegisterActivityWithOptions(a.BroadcastFreeze, activity.RegisterOptions{Name: workflows.ActivityBroadcastFreeze})
	r.RegisterActivityWithOptions(a.CurrentFreeze, activity.RegisterOptions{Name: workflows.ActivityCurrentFreeze})
	r.RegisterActivityWithOptions(a.CancelRequest, activity.RegisterOptions{Name: workflows.ActivityCancelRequest})
}

// CancelRequest reads who asked Temporal to cancel a workflow run, and why,
// from the run's own history (the WorkflowExecutionCancelRequested event: the
// caller's identity and the reason it gave), for the rollout's audit.
func (a *FreezeActivities) CancelRequest(ctx context.Context, in workflows.CancelRequestInput) (workflows.CancelRequest, error) {
	it := a.Temporal.GetWorkflowHistory(ctx, in.WorkflowID, in.RunID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var out workflows.CancelRequest
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return out, fmt.Errorf("read history of %s: %w", in.WorkflowID, err)
		}
		if attrs := ev.GetWorkflowExecutionCancelRequestedEventAttributes(); attrs != nil {
			out = workflows.CancelRequest{Identity: attrs.GetIdentity(), Reason: attrs.GetCause()}
		}
	}
	return out, nil
}

// rolloutsRunningQuery selects the running rollouts in visibility.
var rolloutsRunningQuery = fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running'", workflows.WorkflowRollout)

// BroadcastFreeze signals st (workflows.SignalFreezeState) to every running
// Rollout and returns how many took it. A rollout that finished meanwhile
// (NotFound) is skipped; any other failure fails the activity after every
// rollout has been tried, so a retry reaches the ones that were missed (the
// signal carries the absolute state, so a repeat is harmless).
func (a *FreezeActivities) BroadcastFreeze(ctx context.Context, st workflows.FreezeState) (int, error) {
	log := a.logger()
	var (
		mu      sync.Mutex
		sent    int
		skipped int
		errs    []error
		wg      sync.WaitGroup
		seen    = map[string]bool{}
		sem     = make(chan struct{}, broadcastConcurrency)
		token   []byte
		listErr error
	)
	for {
		resp, err := a.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query:         rolloutsRunningQuery,
			NextPageToken: token,
		})
		if err != nil {
			listErr = fmt.Errorf("list running rollouts: %w", err)
			break
		}
		for _, e := range resp.GetExecutions() {
			id := e.GetExecution().GetWorkflowId()
			if id == "" || seen[id] {
				continue
			}
			seen[id] = true
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				wg.Wait()
				return sent, ctx.Err()
			}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				// Run ID empty: the rollout's current run, also after continue-as-new.
				err := a.Temporal.SignalWorkflow(ctx, id, "", workflows.SignalFreezeState, st)
				mu.Lock()
				defer mu.Unlock()
				var nf *serviceerror.NotFound
				switch {
				case err == nil:
					sent++
				case errors.As(err, &nf):
					skipped++ // it finished since it was listed
				default:
					errs = append(errs, fmt.Errorf("signal %s: %w", id, err))
				}
			}()
		}
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, len(seen))
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			break
		}
	}
	wg.Wait()
	if listErr != nil {
		errs = append(errs, listErr)
	}
	log.Info("freeze broadcast", zap.Bool("frozen", st.Freeze != nil), zap.Int("rollouts", sent),
		zap.Int("finished", skipped), zap.Int("failed", len(errs)))
	if len(errs) > 0 {
		return sent, fmt.Errorf("freeze broadcast: %d of %d rollouts not reached: %w", len(errs), len(seen), errors.Join(errs...))
	}
	return sent, nil
}

// CurrentFreeze returns the freeze in force, read from the freeze workflow's
// status query. No freeze workflow (never frozen) and a freeze whose end has
// passed are both "no freeze" (a nil Freeze). The history is left out: a
// rollout needs only the freeze in force.
func (a *FreezeActivities) CurrentFreeze(ctx context.Context) (workflows.FreezeState, error) {
	v, err := a.Temporal.QueryWorkflow(ctx, workflows.FreezeID, "", workflows.QueryStatus)
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return workflows.FreezeState{}, nil
		}
		return workflows.FreezeState{}, fmt.Errorf("query freeze %s: %w", workflows.FreezeID, err)
	}
	var st workflows.FreezeState
	if err := v.Get(&st); err != nil {
		return workflows.FreezeState{}, fmt.Errorf("query freeze %s: decode: %w", workflows.FreezeID, err)
	}
	if st.Freeze == nil || !st.Freeze.Until.After(time.Now()) {
		return workflows.FreezeState{}, nil
	}
	return workflows.FreezeState{Freeze: st.Freeze}, nil
}

func (a *FreezeActivities) logger() *zap.Logger {
	if a.Log == nil {
		return zap.NewNop()
	}
	return a.Log
}
