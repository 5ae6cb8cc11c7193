package workflows

import "go.temporal.io/sdk/workflow"

// Metrics the workflows record through workflow.GetMetricsHandler: the
// worker's client exports them on /metrics (internal/metrics), each counter
// with the suffix _total. The SDK records nothing while a workflow task
// replays, so each event counts once, on the worker that first ran it.
const (
	// MetricPauses counts rollout pauses, tagged kind (PauseKind...).
	MetricPauses = "fleet_pauses"
	// MetricIncidents counts the incidents batches report to their
	// rollout, tagged kind (IncidentKind: monitor-alert, health-unknown,
	// apply-failed).
	MetricIncidents = "fleet_incidents"
	// MetricNotificationsDropped counts the notifications a rollout gave up
	// sending (Slack refused them or every attempt failed), tagged event.
	MetricNotificationsDropped = "fleet_notifications_dropped"
)

// Why a rollout paused: the kind tag of MetricPauses.
const (
	PauseKindManual        = "manual"         // a person (CLI, Slack, API)
	PauseKindErrorBudget   = "error-budget"   // failures exceeded the budget
	PauseKindHealthUnknown = "health-unknown" // monitors unreadable past the grace
	PauseKindFreeze        = "freeze"         // a fleet freeze
	PauseKindFreezeUnknown = "freeze-unknown" // the freeze state could not be read
)

// count increments a workflow-side counter with one tag.
func count(ctx workflow.Context, name, tag, value string) {
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{tag: value}).Counter(name).Inc(1)
}
