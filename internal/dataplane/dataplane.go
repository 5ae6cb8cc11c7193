// Package dataplane is the wire contract between the control plane (the
// workflows' activities and the status bridge) and the data-plane operators:
// topic names and the JSON messages carried on them.
//
// Commands go to CommandsTopic keyed by cluster ID, so one cluster's commands
// stay ordered on one partition. Every command carries the cluster's spec
// generation: the operator applies a generation at most once, and ignores (but
// answers) a command for a generation it has already applied.
package dataplane

import (
	"encoding/json"
	"fmt"
	"time"
)

// Topics.
const (
	CommandsTopic = "fleet.commands"
	StatusTopic   = "fleet.status"
	// StatusDeadTopic holds the status events the status bridge could not
	// deliver (the workflow is gone, the signal is refused for good, or the
	// event does not decode), each wrapped with the target workflow and the
	// error (see bridge.DeadLetter). Keyed like StatusTopic.
	StatusDeadTopic = "fleet.status.dead"
)

// CommandKind says what the control plane asks of one cluster.
type CommandKind string

// Command kinds.
const (
	// Apply rolls the desired spec out to the cluster, one broker at a time.
	Apply CommandKind = "apply"
	// Hold stops an apply in flight before its next broker restart.
	Hold CommandKind = "hold"
	// Resume continues a held apply from the broker where it stopped.
	Resume CommandKind = "resume"
	// Abort stops an apply for good before its next broker restart; brokers
	// already restarted stay on the new version.
	Abort CommandKind = "abort"
	// Report asks the operator to publish the cluster's current state for the
	// generation again (used to recover from a lost status event).
	Report CommandKind = "report"
)

// Spec is the desired state of one cluster.
type Spec struct {
	Version string `json:"version"`
	// Config sets the given keys and leaves the others as they are; a
	// value "" unsets its key (a rollback returns keys the cluster did not
	// have).
	Config map[string]string `json:"config,omitempty"`
}

// Command is one message on CommandsTopic.
type Command struct {
	Kind       CommandKind `json:"kind"`
	ClusterID  string      `json:"clusterId"`
	Generation int64       `json:"generation"`
	// Spec is set on Apply only.
	Spec *Spec `json:"spec,omitempty"`
	// RolloutID names the rollout (its workflow ID) that sent the command.
	RolloutID string `json:"rolloutId"`
	// ReplyTo is the workflow ID that status events for this command go to.
	ReplyTo string `json:"replyTo"`
	// ReplyToken authenticates the statuses answering this command: the
	// data plane copies it onto each of them, and the status bridge signals
	// ReplyTo only with statuses whose token is the command's.
	ReplyToken string    `json:"replyToken,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	IssuedAt   time.Time `json:"issuedAt"`
}

// Validate checks that a command can be acted on.
func (c Command) Validate() error {
	switch c.Kind {
	case Apply, Hold, Resume, Abort, Report:
	default:
		return fmt.Errorf("command: unknown kind %q", c.Kind)
	}
	if c.ClusterID == "" {
		return fmt.Errorf("command %s: clusterId is empty", c.Kind)
	}
	if c.Generation <= 0 {
		return fmt.Errorf("command %s %s: generation must be positive, got %d", c.Kind, c.ClusterID, c.Generation)
	}
	if c.Kind == Apply && (c.Spec == nil || c.Spec.Version == "") {
		return fmt.Errorf("command apply %s: spec.version is empty", c.ClusterID)
	}
	return nil
}

// State is what an operator reports about one generation on one cluster.
type State string

// States.
const (
	// Progress: broker Broker of Brokers finished restarting on the new spec.
	Progress State = "progress"
	// Held: the apply stopped before broker Broker+1 on request.
	Held State = "held"
	// Resumed: a held apply continues.
	Resumed State = "resumed"
	// Completed: every broker runs the new spec.
	Completed State = "completed"
	// Failed: the apply failed; Message says why.
	Failed State = "failed"
	// Aborted: the apply stopped for good on request.
	Aborted State = "aborted"
	// Rejected: the command was refused (e.g. a stale generation); Message says why.
	Rejected State = "rejected"
)

// Terminal reports whether no further events follow for the generation.
func (s State) Terminal() bool {
	switch s {
	case Completed, Failed, Aborted, Rejected:
		return true
	}
	return false
}

// Status is one message on StatusTopic.
type Status struct {
	ClusterID  string `json:"clusterId"`
	Generation int64  `json:"generation"`
	State      State  `json:"state"`
	// Broker is how many brokers run the new spec so far.
	Broker int `json:"broker"`
	// Brokers is the cluster's broker count.
	Brokers   int    `json:"brokers"`
	Version   string `json:"version,omitempty"`
	RolloutID string `json:"rolloutId,omitempty"`
	ReplyTo   string `json:"replyTo,omitempty"`
	// ReplyToken is the command's ReplyToken, copied.
	ReplyToken string `json:"replyToken,omitempty"`
	Message    string `json:"message,omitempty"`
	// Code classifies a Rejected status: RejectBusy, RejectStale,
	// RejectUnknown, or empty (a malformed or unknown-cluster command).
	Code string    `json:"code,omitempty"`
	At   time.Time `json:"at"`
}

// Rejection codes. Both mean another change owns the cluster: the sender
// skips it rather than counting a failure.
const (
	// RejectBusy: another generation, or the same generation for another
	// rollout, is being applied.
	RejectBusy = "busy"
	// RejectStale: the cluster has applied a newer generation, or this
	// generation for another rollout, since the sender planned.
	RejectStale = "stale"
	// RejectUnknown: the operator has no record of the generation (its apply
	// command was lost): the sender sends the apply again.
	RejectUnknown = "unknown"
)

// Encode marshals a command or status to JSON.
func Encode(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return b, nil
}

// DecodeCommand parses and validates one command.
func DecodeCommand(b []byte) (Command, error) {
	var c Command
	if err := json.Unmarshal(b, &c); err != nil {
		return Command{}, fmt.Errorf("decode command: %w", err)
	}
	return c, c.Validate()
}

// DecodeStatus parses one status event.
func DecodeStatus(b []byte) (Status, error) {
	var s Status
	if err := json.Unmarshal(b, &s); err != nil {
		return Status{}, fmt.Errorf("decode status: %w", err)
	}
	if s.ClusterID == "" || s.State == "" {
		return Status{}, fmt.Errorf("decode status: clusterId and state are required")
	}
	return s, nil
}
