// Package plan turns a rollout spec and an inventory into an explicit,
// deterministic plan: ordered phases of batches of clusters, plus every
// cluster the spec could have touched but will not, with the reason.
//
// It has no Temporal or network imports: the same inputs give the same plan
// and the same hash, on any machine.
package plan

import (
	"fmt"
	"strings"
	"time"
)

// Plan is the result of planning one rollout.
type Plan struct {
	// Hash identifies the plan's content (hex SHA-256 prefix); approving a
	// rollout names it so a stale approval cannot start a changed plan.
	Hash    string `json:"hash"`
	Version string `json:"version"`
	// Config is the spec's target config pushed with the version; part of
	// the hash, so an approval names the config too.
	Config map[string]string `json:"config,omitempty"`
	Phases []Phase           `json:"phases"`
	// Excluded lists the clusters the spec could have touched but will not,
	// by ID, for every reason except ReasonNotMatched (which would repeat
	// most of the fleet in workflow history).
	Excluded []Exclusion `json:"excluded,omitempty"`
	// ExcludedCounts counts the excluded clusters by reason, including
	// ReasonNotMatched.
	ExcludedCounts map[string]int `json:"excludedCounts,omitempty"`
	// Skipped names the strategy's phases that have no cluster to change
	// (a preset's phase that selects none, or one whose clusters are all
	// excluded); they are not in Phases.
	Skipped []string `json:"skipped,omitempty"`
	Total   int      `json:"total"`
	// Downgrades counts the targets that run a newer version than Version
	// (each marked Downgrade); a plan has any only when the spec sets
	// allowDowngrade.
	Downgrades int `json:"downgrades,omitempty"`

	// Stored is set on an outline only (Outline): the plan store's key of
	// the full plan, from which a batch's clusters are loaded.
	Stored string `json:"stored,omitempty"`
	// Products lists the distinct products of an outline's clusters, sorted
	// (a full plan's are in its targets).
	Products []string `json:"products,omitempty"`
	// FromVersions counts an outline's clusters by the version they run
	// (FromVersion; those without one are not counted): what a rollback
	// returns most of them to (see MostFrom).
	FromVersions map[string]int `json:"fromVersions,omitempty"`
}

// Phase is one ordered step with its batches.
type Phase struct {
	Name            string        `json:"name"`
	Concurrency     int           `json:"concurrency"`
	Strict          bool          `json:"strict,omitempty"`
	Bake            time.Duration `json:"bake,omitempty"`
	RequireApproval bool          `json:"requireApproval,omitempty"`
	Batches         []Batch       `json:"batches"`
	// Breakdown counts the phase's clusters by attribute, for display.
	Breakdown *Breakdown `json:"breakdown,omitempty"`
	// OrderBy is the metric ordering the phase's clusters ("cpu desc"),
	// empty for the planner's usual order; Unordered counts the clusters
	// that had no value and went last. Both are for display: the hash
	// covers the batches they produced, not them.
	OrderBy   string `json:"orderBy,omitempty"`
	Unordered int    `json:"unordered,omitempty"`
}

// Breakdown counts clusters by product, cloud, region and environment.
type Breakdown struct {
	Product     map[string]int `json:"product,omitempty"`
	Cloud       map[string]int `json:"cloud,omitempty"`
	Region      map[string]int `json:"region,omitempty"`
	Environment map[string]int `json:"environment,omitempty"`
}

// Batch is one unit of work run by one child workflow.
type Batch struct {
	// Number is 1-based and unique across the whole plan.
	Number   int      `json:"number"`
	Clusters []Target `json:"clusters"`
	// Size is how many clusters the batch holds in an outline, whose
	// batches carry none (0 in a full plan: see Len).
	Size int `json:"size,omitempty"`
}

// Len is how many clusters the batch holds: its targets, or an outline
// batch's Size.
func (b Batch) Len() int {
	if len(b.Clusters) > 0 {
		return len(b.Clusters)
	}
	return b.Size
}

// Outlined reports whether the batch is an outline's (its clusters are in
// the plan store).
func (b Batch) Outlined() bool { return len(b.Clusters) == 0 && b.Size > 0 }

// Target is one cluster to change, carrying only what the run needs.
type Target struct {
	ClusterID string `json:"id"`
	Product   string `json:"product"`
	// Generation is the generation to send: the inventory's applied
	// generation plus one.
	Generation  int64  `json:"gen"`
	FromVersion string `json:"from,omitempty"`
	// Downgrade marks a cluster whose FromVersion is newer than the
	// version it moves to (semver order); only a spec with allowDowngrade
	// plans one.
	Downgrade bool `json:"downgrade,omitempty"`
	// FromConfig records, for a plan that sets config keys, each key's
	// value on the cluster before ("" where the cluster had none): what a
	// rollback pushes back.
	FromConfig map[string]string `json:"fromConfig,omitempty"`
	// Version and Config, when Version is set, are this cluster's own
	// target instead of the plan's (a rollback returns each cluster to the
	// version and config it came from). A config value "" unsets the key.
	Version string            `json:"version,omitempty"`
	Config  map[string]string `json:"config,omitempty"`
}

// To returns the version and config to push to the cluster: its own target
// when it has one, else the plan's.
func (t Target) To(p *Plan) (string, map[string]string) {
	if t.Version != "" {
		return t.Version, t.Config
	}
	return p.Version, p.Config
}

// Exclusion is a cluster the spec could have touched but will not.
type Exclusion struct {
	ClusterID string `json:"id"`
	Reason    string `json:"reason"`
	// Detail adds context, e.g. the rollout holding a busy cluster.
	Detail string `json:"detail,omitempty"`
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

// DowngradeError refuses a plan that would move clusters to an older
// version than they run, for a spec without allowDowngrade.
type DowngradeError struct {
	// Target is the target version as the spec writes it.
	Target string
	// Clusters are the clusters on a newer version, in ID order.
	Clusters []Downgrade
}

// Downgrade is one cluster that runs a newer version than the target.
type Downgrade struct {
	ClusterID string `json:"id"`
	Version   string `json:"version"`
}

// downgradeIDs is how many clusters a DowngradeError names.
const downgradeIDs = 5

func (e *DowngradeError) Error() string {
	var b strings.Builder
	verb, them := "run", "them"
	if len(e.Clusters) == 1 {
		verb, them = "runs", "it"
	}
	fmt.Fprintf(&b, "plan: %s %s a newer version than the target %s (", plural(len(e.Clusters), "cluster"), verb, e.Target)
	for i, c := range e.Clusters {
		if i == downgradeIDs {
			fmt.Fprintf(&b, " and %s more", thousands(len(e.Clusters)-downgradeIDs))
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s on %s", c.ClusterID, c.Version)
	}
	fmt.Fprintf(&b, "): set allowDowngrade: true to downgrade %s", them)
	return b.String()
}
