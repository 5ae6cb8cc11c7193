// Package plan turns a rollout spec and an inventory into an explicit,
// deterministic plan: ordered phases of batches of clusters, plus every
// cluster the spec could have touched but will not, with the reason.
//
// It has no Temporal or network imports: the same inputs give the same plan
// and the same hash, on any machine.
package plan

import "time"

// Plan is the result of planning one rollout.
type Plan struct {
	// Hash identifies the plan's content (hex SHA-256 prefix); approving a
	// rollout names it so a stale approval cannot start a changed plan.
	Hash     string      `json:"hash"`
	Version  string      `json:"version"`
	Phases   []Phase     `json:"phases"`
	Excluded []Exclusion `json:"excluded,omitempty"`
	Total    int         `json:"total"`
}

// Phase is one ordered step with its batches.
type Phase struct {
	Name            string        `json:"name"`
	Concurrency     int           `json:"concurrency"`
	Strict          bool          `json:"strict,omitempty"`
	Bake            time.Duration `json:"bake,omitempty"`
	RequireApproval bool          `json:"requireApproval,omitempty"`
	Batches         []Batch       `json:"batches"`
}

// Batch is one unit of work run by one child workflow.
type Batch struct {
	// Number is 1-based and unique across the whole plan.
	Number   int      `json:"number"`
	Clusters []Target `json:"clusters"`
}

// Target is one cluster to change, carrying only what the run needs.
type Target struct {
	ClusterID string `json:"id"`
	Product   string `json:"product"`
	// Generation is the generation to send: the inventory's applied
	// generation plus one.
	Generation  int64  `json:"gen"`
	FromVersion string `json:"from,omitempty"`
}

// Exclusion is a cluster the spec could have touched but will not.
type Exclusion struct {
	ClusterID string `json:"id"`
	Reason    string `json:"reason"`
}

// Reasons for exclusion.
const (
	ReasonNotMatched = "not matched"
	ReasonAtTarget   = "already at the target version"
	ReasonExcluded   = "excluded by the spec"
	ReasonBusy       = "in another running rollout"
	ReasonProtected  = "protected"
	ReasonNoPhase    = "matched no phase"
)
