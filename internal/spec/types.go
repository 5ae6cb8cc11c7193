// Package spec defines the rollout spec users write (YAML), its parsing and
// its validation. Errors name the file, the line and the field at fault.
//
// It has no Temporal or network imports.
package spec

// Rollout is one rollout spec, as written in rollout.yaml.
type Rollout struct {
	// Name is the rollout's stable name; its workflow ID is rollout/<name>.
	Name        string `json:"name" yaml:"name"`
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
	// Requester is who asks for the rollout (defaults to the CLI user).
	Requester string `json:"requester,omitempty" yaml:"requester,omitempty"`
	Target    Target `json:"target" yaml:"target"`
	// Selector is an expression over cluster attributes and labels, e.g.
	// "product=kafka, env in (internal, non-prod), version<3.7.0".
	Selector string   `json:"selector,omitempty" yaml:"selector,omitempty"`
	Include  []string `json:"include,omitempty" yaml:"include,omitempty"`
	Exclude  []string `json:"exclude,omitempty" yaml:"exclude,omitempty"`
	Strategy Strategy `json:"strategy" yaml:"strategy"`
	// RequirePlanApproval makes the rollout wait, after planning, for an
	// approval that names the plan's hash.
	RequirePlanApproval bool `json:"requirePlanApproval,omitempty" yaml:"requirePlanApproval,omitempty"`
	// AllowDowngrade lets the rollout move clusters running a newer version
	// than the target down to it. Without it, planning refuses a spec that
	// would downgrade any selected cluster (versions compared as semver);
	// with it, the plan marks each downgrade. A rollback sets it.
	AllowDowngrade bool `json:"allowDowngrade,omitempty" yaml:"allowDowngrade,omitempty"`
	// Monitoring configures health checks while clusters are in flight and bake.
	Monitoring Monitoring `json:"monitoring,omitempty" yaml:"monitoring,omitempty"`
	// ApplyTimeout bounds one cluster's apply (Go duration, default "30m").
	ApplyTimeout Duration `json:"applyTimeout,omitempty" yaml:"applyTimeout,omitempty"`
	// OrderBy orders every phase's clusters by a metric before batching,
	// unless the phase has its own (see OrderBy).
	OrderBy *OrderBy `json:"orderBy,omitempty" yaml:"orderBy,omitempty"`
	// ErrorBudget is the rollout-wide failure budget (default: max 0, pause).
	ErrorBudget *ErrorBudget `json:"errorBudget,omitempty" yaml:"errorBudget,omitempty"`
	// Schedule says whether clusters wait for their maintenance windows.
	Schedule Schedule `json:"schedule,omitempty" yaml:"schedule,omitempty"`
	// Emergency marks a rollout (e.g. a security patch) that may run through
	// maintenance windows and blackouts; every override is recorded.
	Emergency *Emergency `json:"emergency,omitempty" yaml:"emergency,omitempty"`
}

// Target is the desired spec pushed to each selected cluster.
type Target struct {
	Version string            `json:"version" yaml:"version"`
	Config  map[string]string `json:"config,omitempty" yaml:"config,omitempty"`
}

// Strategy orders the selected clusters into phases.
type Strategy struct {
	// Preset names a shipped strategy ("canary-then-waves", "emergency", ...);
	// Phases given here override it.
	Preset string  `json:"preset,omitempty" yaml:"preset,omitempty"`
	Phases []Phase `json:"phases,omitempty" yaml:"phases,omitempty"`
}

// Phase is one ordered step of a strategy.
type Phase struct {
	Name string `json:"name" yaml:"name"`
	// Selector narrows the rollout's selection to this phase. A cluster
	// matching two phases' selectors is an error.
	Selector string `json:"selector,omitempty" yaml:"selector,omitempty"`
	// BatchSize is a count ("25") or a percentage of the phase ("10%").
	BatchSize string `json:"batchSize,omitempty" yaml:"batchSize,omitempty"`
	// Concurrency is the most clusters applied at once in the phase
	// (default: one batch's size).
	Concurrency int `json:"concurrency,omitempty" yaml:"concurrency,omitempty"`
	// Strict runs batches in waves instead of a sliding window.
	Strict bool `json:"strict,omitempty" yaml:"strict,omitempty"`
	// Bake is how long each batch is watched after it applies.
	Bake Duration `json:"bake,omitempty" yaml:"bake,omitempty"`
	// RequireApproval gates the phase on an approval.
	RequireApproval bool `json:"requireApproval,omitempty" yaml:"requireApproval,omitempty"`
	// OrderBy orders this phase's clusters by a metric before batching,
	// replacing the rollout's orderBy.
	OrderBy *OrderBy `json:"orderBy,omitempty" yaml:"orderBy,omitempty"`
	// ErrorBudget is the phase's own failure budget, checked with the rollout's.
	ErrorBudget *ErrorBudget `json:"errorBudget,omitempty" yaml:"errorBudget,omitempty"`
	// ApprovalTimeout is how long the phase's gate waits before
	// OnApprovalTimeout: "remind" (default: remind in the rollout's thread and
	// keep waiting) or "abort". Default 4h.
	ApprovalTimeout   Duration `json:"approvalTimeout,omitempty" yaml:"approvalTimeout,omitempty"`
	OnApprovalTimeout string   `json:"onApprovalTimeout,omitempty" yaml:"onApprovalTimeout,omitempty"`
}

// Monitoring configures health checks.
type Monitoring struct {
	// Interval between monitor polls (default "10s").
	Interval Duration `json:"interval,omitempty" yaml:"interval,omitempty"`
	// Disabled turns health checks off (not for production).
	Disabled bool `json:"disabled,omitempty" yaml:"disabled,omitempty"`
	// UnknownGrace is how long health may stay unreadable (API errors,
	// rate limits, timeouts) before the rollout pauses with "health unknown"
	// (default "30s"). Nothing advances while health is unknown.
	UnknownGrace Duration `json:"unknownGrace,omitempty" yaml:"unknownGrace,omitempty"`
}

// Schedule controls maintenance windows.
type Schedule struct {
	// Windows is "respect" (default: each cluster waits for its weekly
	// maintenance window and for blackouts to end) or "ignore" (for changes
	// that need no window; blackouts still apply).
	Windows string `json:"windows,omitempty" yaml:"windows,omitempty"`
	// MaxWait bounds how long a cluster waits for its window before it is
	// skipped with the reason (default "168h").
	MaxWait Duration `json:"maxWait,omitempty" yaml:"maxWait,omitempty"`
}

// Emergency is the justification for running through windows and blackouts.
type Emergency struct {
	Justification string `json:"justification" yaml:"justification"`
	// ForceProtected also changes protected clusters; the requester must be
	// an admin in the worker's policy.
	ForceProtected bool `json:"forceProtected,omitempty" yaml:"forceProtected,omitempty"`
}

// Windows values.
const (
	WindowsRespect = "respect"
	WindowsIgnore  = "ignore"
)

// Gate timeout actions.
const (
	OnApprovalTimeoutRemind = "remind"
	OnApprovalTimeoutAbort  = "abort"
)
