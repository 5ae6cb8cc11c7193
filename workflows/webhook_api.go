package workflows

import "time"

// SignalMonitorAlert tells a Batch that a monitor fired for one of its
// clusters (push detection: the worker's Datadog webhook endpoint), so the
// batch does not wait for its next poll.
const SignalMonitorAlert = "monitor-alert"

// MonitorAlert is the payload of SignalMonitorAlert.
type MonitorAlert struct {
	ClusterID string    `json:"clusterId"`
	Monitor   string    `json:"monitor"`
	Status    string    `json:"status"`
	Message   string    `json:"message"`
	At        time.Time `json:"at"`
}

// SignalIncidentAck tells a Batch that its rollout judged a failure it
// reported (payload: the cluster ID) and the batch may go on starting
// clusters; when the failure exceeds the budget the rollout pauses instead.
const SignalIncidentAck = "incident-ack"
