package client

import (
	"context"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/fleet-rollout/fleet/workflows"
)

// InFlightLegend defines "in flight" once for every reader of Counts: the
// clusters being applied, holding between brokers, or being verified
// (workflows.Counts.Add); held clusters (paused or stopped by an incident)
// are counted apart.
const InFlightLegend = "in flight = applying, holding between brokers or verifying; held (paused or stopped by an incident) is counted apart"

// ExecStatus is a workflow execution's status as Temporal records it.
type ExecStatus string

// Execution statuses.
const (
	ExecRunning        ExecStatus = "running"
	ExecCompleted      ExecStatus = "completed"
	ExecFailed         ExecStatus = "failed"
	ExecTerminated     ExecStatus = "terminated"
	ExecTimedOut       ExecStatus = "timed-out"
	ExecCanceled       ExecStatus = "canceled"
	ExecContinuedAsNew ExecStatus = "continued-as-new"
	ExecUnknown        ExecStatus = "unknown"
)

// Abnormal reports whether the workflow closed without finishing on its own:
// terminated, failed, timed out or canceled.
func (s ExecStatus) Abnormal() bool {
	switch s {
	case ExecTerminated, ExecFailed, ExecTimedOut, ExecCanceled:
		return true
	}
	return false
}

// Closed reports whether the workflow execution has closed.
func (s ExecStatus) Closed() bool {
	return s != ExecRunning && s != ExecUnknown && s != ""
}

func execStatus(s enumspb.WorkflowExecutionStatus) ExecStatus {
	switch s {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return ExecRunning
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return ExecCompleted
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:
		return ExecFailed
	case enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		return ExecTerminated
	case enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return ExecTimedOut
	case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		return ExecCanceled
	case enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
		return ExecContinuedAsNew
	}
	return ExecUnknown
}

// Execution is the rollout's workflow execution as the Temporal server
// records it (DescribeWorkflowExecution, and the close event's reason when
// it closed abnormally).
type Execution struct {
	Status ExecStatus `json:"status"`
	RunID  string     `json:"runId,omitempty"`
	// StartTime is when the rollout's first run started (server clock).
	StartTime time.Time  `json:"startTime,omitzero"`
	CloseTime *time.Time `json:"closeTime,omitempty"`
	// Reason is the server's reason for an abnormal close: the terminate
	// reason, the failure message, the timeout that fired.
	Reason string `json:"reason,omitempty"`
	// Identity is who terminated or canceled the workflow, when known.
	Identity string `json:"identity,omitempty"`
}

// Summary of an abnormal close: "terminated by alice: stuck".
func (x Execution) Summary() string {
	s := string(x.Status)
	if x.Identity != "" {
		s += " by " + x.Identity
	}
	if x.Reason != "" {
		s += ": " + x.Reason
	}
	return s
}

// Status is a rollout's status as the client reads it: the rollout
// workflow's answer merged with its running batches' (Merge), and the
// execution as Temporal records it. When the workflow closed abnormally
// (terminated, timed out, canceled, failed) before the rollout itself ended,
// State says so (terminated, timed-out, canceled, failed) and Stale is set:
// the counts and phases are the last the workflow recorded, not live.
type Status struct {
	workflows.RolloutStatus
	Execution Execution `json:"execution"`
	// Stale marks counts and phases that are no longer live: the workflow
	// closed before the rollout ended, so they are what it last recorded.
	Stale bool `json:"stale,omitempty"`
	// QueryError is why the rollout's own status could not be read (only
	// set on a closed workflow; on a running one it is an error).
	QueryError string `json:"queryError,omitempty"`
	// Inconsistent lists what still disagreed in the snapshot after Status
	// read it again a few times (see Check); empty for a consistent one.
	Inconsistent []string `json:"inconsistent,omitempty"`
}

// Ended reports whether nothing more will happen: the rollout ended, or its
// workflow closed.
func (s *Status) Ended() bool {
	return s.State.Terminal() || s.Execution.Status.Closed()
}

// describe reads the rollout's latest run, following continue-as-new, and
// the close event's reason when it closed abnormally.
func (c *Client) describe(ctx context.Context, rid string) (Execution, error) {
	var x Execution
	var d *workflowservice.DescribeWorkflowExecutionResponse
	var err error
	for i := 0; i < 3; i++ {
		d, err = c.c.DescribeWorkflowExecution(ctx, rid, "")
		if err != nil {
			return x, err
		}
		if execStatus(d.GetWorkflowExecutionInfo().GetStatus()) != ExecContinuedAsNew {
			break
		}
	}
	info := d.GetWorkflowExecutionInfo()
	x.Status = execStatus(info.GetStatus())
	x.RunID = info.GetExecution().GetRunId()
	if t := info.GetStartTime(); t != nil {
		x.StartTime = t.AsTime()
	}
	if first := info.GetFirstRunId(); first != "" && first != x.RunID {
		// The rollout started with its first run; it may be gone (retention).
		if fd, ferr := c.c.DescribeWorkflowExecution(ctx, rid, first); ferr == nil {
			if t := fd.GetWorkflowExecutionInfo().GetStartTime(); t != nil {
				x.StartTime = t.AsTime()
			}
		}
	}
	if t := info.GetCloseTime(); t != nil && t.AsTime().Unix() > 0 {
		ct := t.AsTime()
		x.CloseTime = &ct
	}
	if x.Status.Abnormal() {
		x.Reason, x.Identity = c.closeReason(ctx, rid, x.RunID, d)
	}
	return x, nil
}

// closeReason reads the server's reason for an abnormal close from the close
// event.
func (c *Client) closeReason(ctx context.Context, id, runID string, d *workflowservice.DescribeWorkflowExecutionResponse) (reason, identity string) {
	var ev *historypb.HistoryEvent
	it := c.c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)
	for it != nil && it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return "(close reason unavailable: " + err.Error() + ")", ""
		}
		ev = e
	}
	return closeEventReason(ev, d)
}

func closeEventReason(ev *historypb.HistoryEvent, d *workflowservice.DescribeWorkflowExecutionResponse) (reason, identity string) {
	switch {
	case ev == nil:
		return "", ""
	case ev.GetWorkflowExecutionTerminatedEventAttributes() != nil:
		a := ev.GetWorkflowExecutionTerminatedEventAttributes()
		return orNone(a.GetReason()), a.GetIdentity()
	case ev.GetWorkflowExecutionFailedEventAttributes() != nil:
		f := ev.GetWorkflowExecutionFailedEventAttributes().GetFailure()
		msg := f.GetMessage()
		for c := f.GetCause(); c != nil; c = c.GetCause() {
			if m := c.GetMessage(); m != "" && !strings.Contains(msg, m) {
				msg += ": " + m
			}
		}
		return orNone(msg), ""
	case ev.GetWorkflowExecutionTimedOutEventAttributes() != nil:
		cfg := d.GetExecutionConfig()
		switch {
		case cfg.GetWorkflowRunTimeout().AsDuration() > 0:
			return fmt.Sprintf("workflow run timeout (%s) reached", cfg.GetWorkflowRunTimeout().AsDuration()), ""
		case cfg.GetWorkflowExecutionTimeout().AsDuration() > 0:
			return fmt.Sprintf("workflow execution timeout (%s) reached", cfg.GetWorkflowExecutionTimeout().AsDuration()), ""
		}
		return "workflow timeout reached", ""
	case ev.GetWorkflowExecutionCanceledEventAttributes() != nil:
		return "cancellation requested", ""
	}
	return "", ""
}

func orNone(s string) string {
	if strings.TrimSpace(s) == "" {
		return "(no reason given)"
	}
	return s
}

// closedStatus is the status of a rollout whose workflow closed: st is what
// the query answered (nil if it could not be answered, qerr says why).
func closedStatus(name string, x Execution, st *workflows.RolloutStatus, qerr error) *Status {
	out := &Status{Execution: x}
	if st != nil {
		out.RolloutStatus = *st
	} else {
		out.ID = workflows.RolloutID(name)
		out.Name = name
		out.State = workflows.RolloutState(x.Status)
		out.Stale = true
		out.QueryError = qerr.Error()
	}
	if x.Status.Abnormal() && !out.State.Terminal() {
		// The workflow stopped before the rollout ended: nothing is live.
		out.State = workflows.RolloutState(x.Status)
		out.Stale = true
		out.WaitingFor = ""
		if out.FinishedAt == nil && x.CloseTime != nil {
			ct := *x.CloseTime
			out.FinishedAt = &ct
		}
		// The server's close is the last action on the rollout.
		a := workflows.AuditEntry{Actor: x.Identity, Action: string(x.Status), Reason: x.Reason, Outcome: "workflow closed"}
		if a.Actor == "" {
			a.Actor = "temporal"
		}
		if x.CloseTime != nil {
			a.At = *x.CloseTime
		}
		out.Audit = append(append([]workflows.AuditEntry(nil), out.Audit...), a)
	}
	return out
}
