// Package workflows holds the rollout's durable logic: the Rollout parent
// workflow, the Batch child workflow, and the names, IDs and payloads that
// callers (the fleet CLI, the Web UI, the temporal CLI, other services) use to
// talk to them. Payloads carry IDs and small records, never documents.
package workflows

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/identity"
	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/policy"
	"github.com/fleet-rollout/fleet/internal/spec"
)

// TaskQueue is the task queue the worker polls for workflows and activities.
const TaskQueue = "fleet-rollouts"

// Message names. Each action exists as an update (validated, answers the
// caller with the outcome) and as a signal of the same name (for the Web UI
// and fire-and-forget callers; a signal that does not apply is recorded in the
// audit trail with the reason).
const (
	Pause   = "pause"
	Resume  = "resume"
	Abort   = "abort"
	Approve = "approve"

	// QueryStatus returns RolloutStatus (on a Rollout) or BatchStatus (on a Batch).
	QueryStatus = "status"
	// QueryClusters returns the IDs of the clusters a Rollout still has to
	// do or is doing ([]string): the clusters another rollout must not take.
	QueryClusters = "clusters"
	// QueryClusterBatch takes a cluster ID and returns the workflow ID of
	// the Rollout's running batch that holds it ("" if none): the Datadog
	// webhook finds the batch to signal this way.
	QueryClusterBatch = "cluster-batch"
	// QueryOpenBatches returns OpenBatches: a Rollout's batches whose
	// clusters are in the plan store and that have not finished (their
	// clusters are not in the answers of QueryClusters and
	// QueryClusterBatch).
	QueryOpenBatches = "open-batches"

	// SignalClusterStatus carries one dataplane.Status to a Batch.
	SignalClusterStatus = "cluster-status"
	// SignalClusterStatuses carries []dataplane.Status, in order, from the
	// status bridge to a Batch: the events of one poll for that batch.
	SignalClusterStatuses = "cluster-statuses"
	// SignalIncident carries an Incident from a Batch to its Rollout.
	SignalIncident = "incident"
)

// RolloutIDPrefix starts every rollout's workflow ID.
const RolloutIDPrefix = "rollout/"

// RolloutID is the workflow ID of the rollout with the given name.
func RolloutID(name string) string { return RolloutIDPrefix + name }

// RolloutName is the inverse of RolloutID; it accepts a bare name too.
func RolloutName(id string) string { return strings.TrimPrefix(id, RolloutIDPrefix) }

// BatchID is the workflow ID of batch n of a rollout.
func BatchID(rolloutID string, n int) string { return fmt.Sprintf("%s/batch-%d", rolloutID, n) }

// IsBatchID reports whether id has the form of BatchID: rollout/<name>/batch-<n>.
func IsBatchID(id string) bool {
	rest, ok := strings.CutPrefix(id, RolloutIDPrefix)
	if !ok {
		return false
	}
	i := strings.LastIndex(rest, "/batch-")
	if i <= 0 {
		return false
	}
	n := rest[i+len("/batch-"):]
	if n == "" || len(n) > 9 {
		return false
	}
	for _, c := range n {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// OpenBatches is the answer of QueryOpenBatches.
type OpenBatches struct {
	// Plan is the plan store's key of the rollout's full plan and
	// PlanHash its content hash ("" when the rollout keeps its plan in
	// its history).
	Plan     string `json:"plan,omitempty"`
	PlanHash string `json:"planHash,omitempty"`
	// Open are the outline batches not finished, Running those of them
	// running, by number.
	Open    []int `json:"open,omitempty"`
	Running []int `json:"running,omitempty"`
}

// RolloutInput starts a Rollout.
type RolloutInput struct {
	Spec spec.Rollout `json:"spec"`
	// Requester is who started the rollout.
	Requester string `json:"requester"`
	// HistoryBudget is the history length (events) at which the rollout,
	// and each of its batches, continues as new; 0 means
	// DefaultHistoryBudget. The server's suggestion also counts.
	HistoryBudget int `json:"historyBudget,omitempty"`
	// Carry is the state of the previous run after a continue-as-new; nil
	// when a client starts the rollout.
	Carry *RolloutCarry `json:"carry,omitempty" jsonschema:"-"`
	// Auth proves the requester (see identity.Proof; required when the
	// policy says identity: signed). Verified when the rollout plans.
	Auth *identity.Proof `json:"auth,omitempty" jsonschema:"-"`
	// Recovery makes this rollout a rollback or a retry of another, or the
	// one that supersedes it (see Recovery).
	Recovery *Recovery `json:"recovery,omitempty" jsonschema:"-"`
	// Scheduled is set on a rollout a Temporal Schedule started (fleet
	// start --at): Auth was signed when the schedule was created.
	Scheduled *ScheduledStart `json:"scheduled,omitempty" jsonschema:"-"`
}

// RolloutCarry is everything a rollout knows, handed from one run to the next
// across a continue-as-new (which happens only where no batch is running:
// between phases or while it waits at a gate): the plan, the status (pause
// reason, incidents, audit), approvals, failures counted against the budgets,
// the freeze in force, the policy, live pacing, finished batches' results, the
// Slack thread, and where it is.
type RolloutCarry struct {
	Plan           *plan.Plan          `json:"plan"`
	Status         RolloutStatus       `json:"status"`
	Aborted        bool                `json:"aborted,omitempty"`
	ApprovedPlan   bool                `json:"approvedPlan,omitempty"`
	ApprovedPhases map[string]bool     `json:"approvedPhases,omitempty"`
	Results        map[int]BatchResult `json:"results,omitempty"`
	Failed         map[string]string   `json:"failed,omitempty"`
	PhaseFailed    map[string]int      `json:"phaseFailed,omitempty"`
	// FailedBatch is, for an outline plan, the batch of each failed cluster.
	FailedBatch map[string]int   `json:"failedBatch,omitempty"`
	Frozen      *FreezeInfo      `json:"frozen,omitempty"`
	Policy      *policy.Snapshot `json:"policy,omitempty"`
	// PacedConcurrency and PacedBake are live pacing overrides (0 / nil: as planned).
	PacedConcurrency int            `json:"pacedConcurrency,omitempty"`
	PacedBake        *time.Duration `json:"pacedBake,omitempty"`
	ThreadTS         string         `json:"threadTs,omitempty"`
	// NextPhase is the index of the phase to run next; GateSince is when the
	// gate the rollout waits at (plan or NextPhase approval) began, zero if none.
	NextPhase int       `json:"nextPhase"`
	GateSince time.Time `json:"gateSince,omitzero"`
	// NextBatch is the index, in phase NextPhase, of its first batch not
	// yet run when the phase continued as new between segments.
	NextBatch int `json:"nextBatch,omitempty"`
	// Runs counts the continue-as-news so far.
	Runs int `json:"runs"`
	// Nonces are the proofs' nonces still remembered, with their expiry.
	Nonces map[string]time.Time `json:"nonces,omitempty"`
	// RollbackBy is who asked for the rollback that starts when the
	// rollout has stopped ("": none).
	RollbackBy string `json:"rollbackBy,omitempty"`
}

// ActionRequest is the argument of pause, resume and abort.
type ActionRequest struct {
	Actor  string `json:"actor"`
	Reason string `json:"reason"`
	// Auth proves Actor (see identity.Proof); required when the policy
	// says identity: signed.
	Auth *identity.Proof `json:"auth,omitempty"`
}

// ApproveRequest approves the plan (PlanHash set) or a gated phase (Phase set).
type ApproveRequest struct {
	Actor    string `json:"actor"`
	PlanHash string `json:"planHash,omitempty"`
	Phase    string `json:"phase,omitempty"`
	Comment  string `json:"comment,omitempty"`
	// Auth proves Actor (see ActionRequest.Auth).
	Auth *identity.Proof `json:"auth,omitempty"`
}

// ActionResult answers an update.
type ActionResult struct {
	State   RolloutState `json:"state"`
	Message string       `json:"message"`
}

// RolloutState is the rollout's lifecycle state.
type RolloutState string

// Rollout states.
const (
	StatePlanning         RolloutState = "planning"
	StateAwaitingApproval RolloutState = "awaiting-approval"
	StateRunning          RolloutState = "running"
	StatePaused           RolloutState = "paused"
	StateCompleted        RolloutState = "completed"
	StateAborted          RolloutState = "aborted"
	StateFailed           RolloutState = "failed"
	// StateSuperseded: another rollout took over (RolloutStatus.SupersededBy).
	StateSuperseded RolloutState = "superseded"
)

// Terminal reports whether the rollout has ended.
func (s RolloutState) Terminal() bool {
	return s == StateCompleted || s == StateAborted || s == StateFailed || s == StateSuperseded
}

// ClusterState is one cluster's state within a rollout.
type ClusterState string

// Cluster states.
const (
	ClusterPending   ClusterState = "pending"
	ClusterWaiting   ClusterState = "waiting" // for its maintenance window or a blackout's end
	ClusterApplying  ClusterState = "applying"
	ClusterHolding   ClusterState = "holding"
	ClusterHeld      ClusterState = "held"
	ClusterVerifying ClusterState = "verifying"
	ClusterDone      ClusterState = "done"
	ClusterFailed    ClusterState = "failed"
	ClusterAborted   ClusterState = "aborted"
	ClusterSkipped   ClusterState = "skipped"
)

// Terminal reports whether nothing more happens to the cluster in this rollout.
func (s ClusterState) Terminal() bool {
	switch s {
	case ClusterDone, ClusterFailed, ClusterAborted, ClusterSkipped:
		return true
	}
	return false
}

// ClusterStatus is one cluster's progress.
type ClusterStatus struct {
	ID         string       `json:"id"`
	Product    string       `json:"product"`
	Generation int64        `json:"gen"`
	State      ClusterState `json:"state"`
	Broker     int          `json:"broker,omitempty"`
	Brokers    int          `json:"brokers,omitempty"`
	Message    string       `json:"message,omitempty"`
	StartedAt  *time.Time   `json:"startedAt,omitempty"`
	FinishedAt *time.Time   `json:"finishedAt,omitempty"`
}

// Counts tallies clusters by state.
//
// In flight is defined once, here: clusters being changed now (applying,
// or holding: a hold sent, the current broker finishing). Held clusters
// (stopped mid-way) are counted apart; in flight plus held never exceed the
// phase's concurrency in force (after a pacing cut, until clusters end).
// Verifying clusters (every broker on the new spec, waiting for a healthy
// monitor read) hold no concurrency slot and are counted apart too.
type Counts struct {
	Pending   int `json:"pending"`
	InFlight  int `json:"inFlight"`
	Held      int `json:"held"`
	Verifying int `json:"verifying"`
	Done      int `json:"done"`
	Failed    int `json:"failed"`
	Aborted   int `json:"aborted"`
	Skipped   int `json:"skipped"`
}

// Add counts one cluster state.
func (c *Counts) Add(s ClusterState) {
	switch s {
	case ClusterPending, ClusterWaiting:
		c.Pending++
	case ClusterApplying, ClusterHolding:
		c.InFlight++
	case ClusterVerifying:
		c.Verifying++
	case ClusterHeld:
		c.Held++
	case ClusterDone:
		c.Done++
	case ClusterFailed:
		c.Failed++
	case ClusterAborted:
		c.Aborted++
	case ClusterSkipped:
		c.Skipped++
	}
}

// Merge adds another tally.
func (c *Counts) Merge(o Counts) {
	c.Pending += o.Pending
	c.InFlight += o.InFlight
	c.Held += o.Held
	c.Verifying += o.Verifying
	c.Done += o.Done
	c.Failed += o.Failed
	c.Aborted += o.Aborted
	c.Skipped += o.Skipped
}

// BatchInput starts a Batch.
type BatchInput struct {
	RolloutID string     `json:"rolloutId"`
	Phase     string     `json:"phase"`
	Batch     plan.Batch `json:"batch"`
	// Plan, when set, is the plan store's key of the rollout's full plan,
	// and PlanHash its content hash: Batch is an outline batch (Number and
	// Size), whose clusters the batch loads from the store at the start of
	// each run (versionPlanStore).
	Plan        string         `json:"plan,omitempty"`
	PlanHash    string         `json:"planHash,omitempty"`
	Target      dataplane.Spec `json:"target"`
	Concurrency int            `json:"concurrency"`
	Bake        time.Duration  `json:"bake"`
	// HealthInterval is the monitor poll interval; 0 disables health checks.
	HealthInterval time.Duration `json:"healthInterval"`
	// Schedule: maintenance windows, blackouts, emergency overrides.
	Schedule BatchSchedule `json:"schedule"`
	// UnknownGrace is how long health may stay unknown before an incident.
	UnknownGrace time.Duration `json:"unknownGrace"`
	ApplyTimeout time.Duration `json:"applyTimeout"`
	// Lane, when set, replaces Concurrency: the batch is one link of a lane
	// of batches that pass concurrency slots along cluster by cluster (see
	// BatchLane). Nil runs the batch on its own Concurrency.
	Lane *BatchLane `json:"lane,omitempty"`
	// HistoryBudget is the history length (events) at which the batch
	// continues as new, carrying its state; 0 means DefaultHistoryBudget.
	// The server's own suggestion (GetContinueAsNewSuggested) also counts.
	HistoryBudget int `json:"historyBudget,omitempty"`
	// Carry is the state of the previous run after a continue-as-new; nil
	// on the first run.
	Carry *BatchCarry `json:"carry,omitempty"`
	// CompactResult asks for a result of counts and exceptions: the
	// clusters that ended done are counted (BatchResult.Done), the others
	// listed. Set for rollouts above DetailLimit clusters, whose status
	// lists only the clusters that did not end done anyway.
	CompactResult bool `json:"compactResult,omitempty"`
}

// DefaultHistoryBudget is the history length (events) past which a rollout
// or a batch continues as new: well under the server's warning at 10,240
// events and its limit at 51,200, and small enough to replay in milliseconds.
const DefaultHistoryBudget = 4000

// DefaultSegmentBudget is the history length a rollout's phase segment may
// fill before the rollout continues as new (a rollout with no HistoryBudget
// of its own): a segment drains the window as it ends, so it is as long as
// stays well under the server's 10,240-event warning (a segment is planned
// at eight events a batch, and a batch takes about seven): 20,000 clusters
// in batches of 25 run in one segment, 100,000 in five.
const DefaultSegmentBudget = 8000

// BatchCarry is everything a batch knows, handed from one run to the next
// across a continue-as-new: each cluster's state and generation, when the data
// plane last spoke of it, the inventory records and policy read when the batch
// started, the pause and abort state, incidents raised, unknown-health clocks,
// the bake, the lane's slots and heir, and what was published to fleet.events.
type BatchCarry struct {
	Clusters        []ClusterStatus          `json:"clusters"`
	LastSeen        map[string]time.Time     `json:"lastSeen,omitempty"`
	Info            map[string]fleet.Cluster `json:"info,omitempty"`
	Policy          *policy.Snapshot         `json:"policy,omitempty"`
	StartedAt       time.Time                `json:"startedAt"`
	Overrides       []string                 `json:"overrides,omitempty"`
	State           BatchState               `json:"state"`
	Paused          bool                     `json:"paused,omitempty"`
	Aborted         bool                     `json:"aborted,omitempty"`
	Reported        map[string]bool          `json:"reported,omitempty"`
	BakeEnd         time.Time                `json:"bakeEnd,omitzero"`
	UnreadableSince time.Time                `json:"unreadableSince,omitzero"`
	UnknownSince    map[string]time.Time     `json:"unknownSince,omitempty"`
	AwaitingAck     int                      `json:"awaitingAck,omitempty"`
	AckDeadline     time.Time                `json:"ackDeadline,omitzero"`
	Emitted         map[string]ClusterState  `json:"emitted,omitempty"`
	Slots           int                      `json:"slots"`
	RolloutSlots    int                      `json:"rolloutSlots,omitempty"`
	Heir            string                   `json:"heir,omitempty"`
	HealthRead      bool                     `json:"healthRead,omitempty"`
	DonorDone       bool                     `json:"donorDone,omitempty"`
	GrantSeq        int                      `json:"grantSeq,omitempty"`
	GrantsTaken     map[int]bool             `json:"grantsTaken,omitempty"`
	PollDue         time.Time                `json:"pollDue,omitzero"`
	// Runs counts the continue-as-news so far.
	Runs int `json:"runs"`
	// Nonces are the proofs' nonces still remembered, with their expiry.
	Nonces map[string]time.Time `json:"nonces,omitempty"`
}

// BatchLane makes a phase's concurrency a cluster-level window across its
// batches. The phase's concurrency is split into lanes, each owning a number
// of slots (one per cluster in flight). A lane is a chain of batches: the
// rollout gives the lane whose chain is shortest the next batch of the plan,
// queued behind the lane's newest batch (its donor). A batch starts clusters
// while it holds free slots, and hands each slot it can no longer use to its
// heir as soon as one of its clusters finishes, so the heir's clusters start
// without waiting for the batch's slowest cluster; a lane that moves faster
// takes more batches. Slots are only passed along (batch to heir, or back to
// the rollout, which gives them to another lane), never created, so no more
// clusters are in flight than the phase's concurrency.
type BatchLane struct {
	// Lane numbers the lane (from 0).
	Lane int `json:"lane"`
	// Slots is how many slots the batch owns when it starts: the lane's
	// slots for a batch without a donor, 0 for the others, which are given
	// theirs by their donor.
	Slots int `json:"slots"`
	// Donor is the workflow ID of the batch before this one in the lane ("":
	// none). The batch tells its donor it is running (SignalLaneReady), and
	// finishes only after its donor's last grant (SlotGrant.Final).
	Donor string `json:"donor,omitempty"`
}

// Lane signals: between the batches of a lane; from a batch that finishes
// with no heir to its rollout; from the rollout to a batch.
const (
	// SignalLaneReady tells a donor its heir is running; the payload is the
	// heir's workflow ID.
	SignalLaneReady = "lane-ready"
	// SignalLaneSlots carries a SlotGrant to a batch.
	SignalLaneSlots = "lane-slots"
	// SignalLaneReturn carries a LaneReturn from a batch to its rollout.
	SignalLaneReturn = "lane-return"
)

// SlotGrant passes slots to a batch. N may be negative when pacing lowered
// the lane's concurrency: the receiver then frees that many slots before it
// starts another cluster. Final is the donor's last grant: it has finished.
type SlotGrant struct {
	N     int  `json:"n"`
	Final bool `json:"final,omitempty"`
	// FromRollout marks a grant the rollout sent; the batch's result counts
	// them (BatchResult.RolloutSlots), so the rollout gives again what a
	// batch that finished as the grant arrived never took.
	FromRollout bool `json:"fromRollout,omitempty"`
	// Seq numbers the grants of a batch to its heir (from
	// versionDirectGrants; 0 on other grants): the heir takes each number
	// once.
	Seq int `json:"seq,omitempty"`
}

// LaneReturn gives the rollout every slot a batch with no heir still owns as
// it finishes.
type LaneReturn struct {
	Phase string `json:"phase"`
	Batch int    `json:"batch"`
	N     int    `json:"n"`
}

// BatchSchedule says when a batch's clusters may start.
type BatchSchedule struct {
	// RespectWindows makes each cluster wait for its maintenance window.
	RespectWindows bool `json:"respectWindows,omitempty"`
	// Emergency runs through windows and blackouts, recording each override.
	Emergency bool `json:"emergency,omitempty"`
	// MaxWait bounds the wait, from the batch's start; past it a cluster is
	// skipped with the reason.
	MaxWait time.Duration `json:"maxWait,omitempty"`
}

// BatchState is a batch's lifecycle state.
type BatchState string

// Batch states.
const (
	BatchPending   BatchState = "pending"
	BatchRunning   BatchState = "running"
	BatchPaused    BatchState = "paused"
	BatchBaking    BatchState = "baking"
	BatchCompleted BatchState = "completed"
	BatchAborted   BatchState = "aborted"
)

// BatchStatus is the answer of a Batch's status query.
type BatchStatus struct {
	Number   int             `json:"number"`
	Phase    string          `json:"phase"`
	State    BatchState      `json:"state"`
	Clusters []ClusterStatus `json:"clusters"`
	Counts   Counts          `json:"counts"`
	// Lane is the batch's place in its lane (nil in a strict phase).
	Lane *LaneStatus `json:"lane,omitempty"`
}

// LaneStatus is a batch's lane state: the slots it holds, its donor and
// heir, and whether its donor has handed over its last slots.
type LaneStatus struct {
	Lane      int    `json:"lane"`
	Slots     int    `json:"slots"`
	Donor     string `json:"donor,omitempty"`
	Heir      string `json:"heir,omitempty"`
	DonorDone bool   `json:"donorDone"`
}

// BatchResult is what a Batch returns.
type BatchResult struct {
	Number   int             `json:"number"`
	Aborted  bool            `json:"aborted,omitempty"`
	Clusters []ClusterStatus `json:"clusters"`
	// Overrides lists what an emergency rollout ran through, per cluster.
	Overrides []string `json:"overrides,omitempty"`
	// RolloutSlots sums the slots of the grants from the rollout the batch
	// took (SlotGrant.FromRollout).
	RolloutSlots int `json:"rolloutSlots,omitempty"`
	// Done counts clusters that ended done and are not listed in Clusters
	// (a compacted result carried across a continue-as-new).
	Done int `json:"done,omitempty"`
}

// IncidentKind says why a batch asks its rollout to stop.
type IncidentKind string

// Incident kinds.
const (
	IncidentMonitorAlert  IncidentKind = "monitor-alert"
	IncidentHealthUnknown IncidentKind = "health-unknown"
	IncidentApplyFailed   IncidentKind = "apply-failed"
)

// Incident is a problem a batch found with one cluster.
type Incident struct {
	Kind      IncidentKind `json:"kind"`
	Batch     int          `json:"batch"`
	ClusterID string       `json:"clusterId"`
	Monitor   string       `json:"monitor,omitempty"`
	Message   string       `json:"message"`
	At        time.Time    `json:"at"`
}

// PauseReason says why a rollout is paused.
type PauseReason struct {
	Actor    string    `json:"actor"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
	Incident *Incident `json:"incident,omitempty"`
}

// AuditEntry is one action on a rollout: who, when, what, why, and whether it applied.
type AuditEntry struct {
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Reason  string    `json:"reason,omitempty"`
	Outcome string    `json:"outcome"`
}

// PhaseStatus is one phase's progress.
type PhaseStatus struct {
	Name            string `json:"name"`
	State           string `json:"state"`
	RequireApproval bool   `json:"requireApproval,omitempty"`
	// Concurrency is the phase's concurrency in force (planned, or paced).
	Concurrency int           `json:"concurrency,omitempty"`
	Batches     []BatchStatus `json:"batches"`
}

// RolloutStatus is the answer of a Rollout's status query. Batches that are
// running carry no cluster detail here: query the batch workflow (the fleet
// client package does both).
type RolloutStatus struct {
	ID            string       `json:"id"`
	Name          string       `json:"name"`
	Requester     string       `json:"requester"`
	TargetVersion string       `json:"targetVersion"`
	State         RolloutState `json:"state"`
	Paused        *PauseReason `json:"paused,omitempty"`
	PlanHash      string       `json:"planHash,omitempty"`
	// PlanStored is the plan store's key of the full plan when the rollout
	// keeps only its outline (versionPlanStore): the clusters of batches
	// not started are counted, not listed (a client with the plan store
	// lists them: starter/client WithPlans).
	PlanStored string        `json:"planStored,omitempty"`
	Total      int           `json:"total"`
	Counts     Counts        `json:"counts"`
	Phases     []PhaseStatus `json:"phases,omitempty"`
	Incidents  []Incident    `json:"incidents,omitempty"`
	// Failures counts the clusters that failed (each once), against the
	// rollout's error budget FailureBudget.
	Failures      int          `json:"failures"`
	FailureBudget int          `json:"failureBudget"`
	Audit         []AuditEntry `json:"audit,omitempty"`
	StartedAt     time.Time    `json:"startedAt"`
	FinishedAt    *time.Time   `json:"finishedAt,omitempty"`
	// WaitingFor says what a rollout that is not moving waits for.
	WaitingFor string `json:"waitingFor,omitempty"`
	// Recovery is what this rollout recovers (a rollback, retry or
	// supersede of another rollout).
	Recovery *Recovery `json:"recovery,omitempty"`
	// SupersededBy names the rollout that took this one over.
	SupersededBy string `json:"supersededBy,omitempty"`
	// RollbackID names the rollback this rollout started when it ended
	// (fleet rollback --abort, or errorBudget.onExceeded: rollback).
	RollbackID string `json:"rollbackId,omitempty"`
	// Outbox counts the notifications and event batches queued and not yet
	// sent (the fleet_outbox_depth metric).
	Outbox int `json:"outbox,omitempty"`
}

// --- fleet freeze ---

// FreezeID is the workflow ID of the single fleet-wide freeze workflow.
const FreezeID = "fleet/freeze"

// WorkflowFreeze is the freeze workflow's type name.
const WorkflowFreeze = "Freeze"

// Freeze messages. Freeze and Unfreeze are updates (and signals) on the
// freeze workflow; SignalFreezeState carries the freeze state (nil Freeze =
// lifted) from the freeze workflow to every running rollout.
const (
	FreezeUpdate      = "freeze"
	UnfreezeUpdate    = "unfreeze"
	SignalFreezeState = "freeze-state"
)

// FreezeRequest sets a fleet-wide freeze.
type FreezeRequest struct {
	Actor  string    `json:"actor"`
	Reason string    `json:"reason"`
	Until  time.Time `json:"until"`
	// Auth proves Actor (see ActionRequest.Auth).
	Auth *identity.Proof `json:"auth,omitempty"`
}

// FreezeInfo is the freeze in force.
type FreezeInfo struct {
	Actor  string    `json:"actor"`
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until"`
}

// FreezeState is what SignalFreezeState carries and the freeze workflow's
// status query answers: Freeze is nil when no freeze is in force.
type FreezeState struct {
	Freeze *FreezeInfo `json:"freeze,omitempty"`
	// History lists past freezes, newest last (bounded).
	History []FreezeInfo `json:"history,omitempty"`
}

// --- live pacing ---

// UpdatePacing changes a running rollout's pacing.
const UpdatePacing = "pacing"

// PacingRequest changes concurrency and bake for the current and later
// phases (zero fields are left as they are). It is the argument of the
// pacing update and of the pacing signal.
//
// In JSON (UnmarshalJSON), concurrency is a number or a string ("300");
// bake is a duration string ("10s", "2m", or "90" seconds) or, as the Go
// client has always written it and histories hold it, a number of
// nanoseconds (10000000000 is 10 s).
type PacingRequest struct {
	Actor       string         `json:"actor"`
	Concurrency int            `json:"concurrency,omitempty"`
	Bake        *time.Duration `json:"bake,omitempty"`
	Reason      string         `json:"reason,omitempty"`
	// Auth proves Actor (see ActionRequest.Auth).
	Auth *identity.Proof `json:"auth,omitempty"`
}

// UnmarshalJSON reads a pacing request from any SDK: see PacingRequest.
// What the Go client writes (a number of nanoseconds for bake) reads as
// before.
func (p *PacingRequest) UnmarshalJSON(b []byte) error {
	type plain PacingRequest
	var raw struct {
		*plain
		Concurrency spec.Count      `json:"concurrency"`
		Bake        json.RawMessage `json:"bake"`
	}
	raw.plain = (*plain)(p)
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("pacing request: %w", err)
	}
	p.Concurrency = int(raw.Concurrency)
	p.Bake = nil
	bake := bytes.TrimSpace(raw.Bake)
	if len(bake) == 0 || bytes.Equal(bake, []byte("null")) {
		return nil
	}
	var s string
	if err := json.Unmarshal(bake, &s); err == nil {
		d, err := spec.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("pacing request: bake: %w", err)
		}
		p.Bake = &d
		return nil
	}
	var ns int64
	if err := json.Unmarshal(bake, &ns); err != nil {
		return fmt.Errorf("pacing request: bake: want a duration like \"10s\" or a whole number of nanoseconds, got %s", bake)
	}
	d := time.Duration(ns)
	p.Bake = &d
	return nil
}

// SignalPacing carries a new per-batch concurrency to running batches.
const SignalPacing = "pacing"

// --- events (fleet.events) ---

// EventsTopic is the Kafka topic every rollout state change is published to,
// so history outlives Temporal's retention.
const EventsTopic = "fleet.events"

// AuditTopic is the Kafka topic every action on a rollout (EventAction: who,
// when, what, why and whether it applied) is published to.
const AuditTopic = "fleet.audit"

// EventKind names a state change.
type EventKind string

// Event kinds.
const (
	EventRolloutStarted  EventKind = "rollout-started"
	EventRolloutPaused   EventKind = "rollout-paused"
	EventRolloutResumed  EventKind = "rollout-resumed"
	EventRolloutFinished EventKind = "rollout-finished"
	EventPhaseStarted    EventKind = "phase-started"
	EventPhaseFinished   EventKind = "phase-finished"
	EventClusterState    EventKind = "cluster-state"
	EventClusterAlert    EventKind = "cluster-alert"
	EventAction          EventKind = "action"
)

// Event is one message on EventsTopic, keyed by cluster ID for cluster
// events and by rollout ID otherwise.
type Event struct {
	Kind      EventKind `json:"kind"`
	RolloutID string    `json:"rolloutId"`
	Version   string    `json:"version,omitempty"`
	Phase     string    `json:"phase,omitempty"`
	Batch     int       `json:"batch,omitempty"`
	ClusterID string    `json:"clusterId,omitempty"`
	State     string    `json:"state,omitempty"`
	Monitor   string    `json:"monitor,omitempty"`
	Actor     string    `json:"actor,omitempty"`
	Message   string    `json:"message,omitempty"`
	At        time.Time `json:"at"`
}

// ActivityEmit publishes events to EventsTopic.
const ActivityEmit = "Emit"

// EmitInput is the argument of the Emit activity.
type EmitInput struct {
	Events []Event `json:"events"`
}
