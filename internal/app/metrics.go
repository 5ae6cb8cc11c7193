package app

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	sdkclient "go.temporal.io/sdk/client"
	"golang.org/x/sync/errgroup"

	"github.com/fleet-rollout/fleet/internal/metrics"
	"github.com/fleet-rollout/fleet/workflows"
)

// metricsQueries is how many rollouts the metrics scrape asks at once.
const metricsQueries = 8

// runningRollouts lists the IDs of the running Rollout workflows, every page.
func runningRollouts(ctx context.Context, c sdkclient.Client) ([]string, error) {
	q := fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running'", workflows.WorkflowRollout)
	var ids []string
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: q, NextPageToken: token})
		if err != nil {
			return nil, fmt.Errorf("list running rollouts: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			ids = append(ids, e.GetExecution().GetWorkflowId())
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			return ids, nil
		}
	}
}

// runningStatuses reads the status query of every running rollout for the
// metrics scrape (metricsQueries at a time). A rollout that ended meanwhile
// is left out; one that cannot be asked is left out and counted in failed.
func runningStatuses(c sdkclient.Client) metrics.RolloutLister {
	return func(ctx context.Context) ([]workflows.RolloutStatus, int, error) {
		ids, err := runningRollouts(ctx, c)
		if err != nil {
			return nil, 0, err
		}
		sts := make([]*workflows.RolloutStatus, len(ids))
		errs := make([]error, len(ids))
		var g errgroup.Group
		g.SetLimit(metricsQueries)
		for i, id := range ids {
			g.Go(func() error {
				v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryStatus)
				if err != nil {
					var nf *serviceerror.NotFound
					if !errors.As(err, &nf) {
						errs[i] = fmt.Errorf("query %s: %w", id, err)
					}
					return nil
				}
				var st workflows.RolloutStatus
				if err := v.Get(&st); err != nil {
					errs[i] = fmt.Errorf("decode the status of %s: %w", id, err)
					return nil
				}
				if !st.State.Terminal() {
					sts[i] = &st
				}
				return nil
			})
		}
		_ = g.Wait()
		out := make([]workflows.RolloutStatus, 0, len(ids))
		failed := 0
		for i := range ids {
			if errs[i] != nil {
				failed++
			}
			if sts[i] != nil {
				out = append(out, *sts[i])
			}
		}
		if failed > 0 && failed == len(ids) {
			return out, failed, errors.Join(errs...)
		}
		return out, failed, nil
	}
}
