package workflows

import (
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Workflow type names, as other services and the temporal CLI start them.
const (
	WorkflowRollout = "Rollout"
	WorkflowBatch   = "Batch"
)

// Register registers the workflows on a worker under their type names.
func Register(r worker.WorkflowRegistry) {
	r.RegisterWorkflowWithOptions(Rollout, workflow.RegisterOptions{Name: WorkflowRollout})
	r.RegisterWorkflowWithOptions(Batch, workflow.RegisterOptions{Name: WorkflowBatch})
	r.RegisterWorkflowWithOptions(ScheduledRollout, workflow.RegisterOptions{Name: WorkflowScheduledRollout})
	RegisterFreeze(r)
}
