package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"

	"github.com/fleet-rollout/fleet/workflows"
)

// GrantSlots signals a lane grant to a batch (the donor's local activity:
// see workflows.ActivityGrantSlots). Without a Temporal client, or when the
// batch is not running, it fails for good and the workflow signals instead.
func (a *Activities) GrantSlots(ctx context.Context, in workflows.GrantSlotsInput) error {
	if a.Temporal == nil {
		return temporal.NewNonRetryableApplicationError("no Temporal client to signal with", "NoClient", nil)
	}
	err := a.Temporal.SignalWorkflow(ctx, in.WorkflowID, "", workflows.SignalLaneSlots, in.Grant)
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("grant %d slots to %s: not running", in.Grant.N, in.WorkflowID), "NotRunning", err)
	case err != nil:
		return fmt.Errorf("grant %d slots to %s: %w", in.Grant.N, in.WorkflowID, err)
	}
	return nil
}
