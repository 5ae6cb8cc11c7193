package spec

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrorBudget bounds how many clusters may fail before the rollout (or the
// phase) stops. A failure is a cluster whose apply failed (the data plane
// reported an error, rejected the command, or did not finish within the apply
// timeout) or whose critical monitor alerted while it was in flight or baking.
// Each cluster counts once. Max is the number of failures tolerated: with
// max 0 the first failure exceeds the budget; with max 3 the fourth does.
type ErrorBudget struct {
	// Max is a count ("3") or a percentage of the rollout's (or the phase's)
	// clusters ("2%", rounded down).
	Max string `json:"max" yaml:"max"`
	// OnExceeded is "pause" (default), "abort", or "rollback" (abort, then
	// roll back every cluster the rollout changed, failed ones first).
	OnExceeded string `json:"onExceeded,omitempty" yaml:"onExceeded,omitempty"`
}

// DefaultUnknownGrace is how long health may be unreadable before a pause.
const DefaultUnknownGrace = 30 * time.Second

// DefaultMaxWait is how long a cluster waits for its maintenance window.
const DefaultMaxWait = 7 * 24 * time.Hour

// DefaultApprovalTimeout is how long a gate waits before reminding.
const DefaultApprovalTimeout = 4 * time.Hour

// Budget actions.
const (
	OnExceededPause = "pause"
	OnExceededAbort = "abort"
	// OnExceededRollback aborts and then starts the rollout's rollback.
	OnExceededRollback = "rollback"
)

const budgetHelp = "must be a count like 3 or a percentage like 2%"

// Limit returns how many failures the budget tolerates out of n clusters.
func (b ErrorBudget) Limit(n int) (int, error) {
	s := strings.TrimSpace(b.Max)
	if s == "" {
		return 0, nil
	}
	if pct, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(pct), 64)
		if err != nil || f < 0 || f > 100 {
			return 0, fmt.Errorf("%s, got %q", budgetHelp, b.Max)
		}
		return int(f * float64(n) / 100), nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%s, got %q", budgetHelp, b.Max)
	}
	return v, nil
}

// Action returns the normalised OnExceeded.
func (b ErrorBudget) Action() string {
	if b.OnExceeded == "" {
		return OnExceededPause
	}
	return b.OnExceeded
}

func (b ErrorBudget) validate() (field, msg string) {
	if _, err := b.Limit(100); err != nil {
		return "max", err.Error()
	}
	switch b.OnExceeded {
	case "", OnExceededPause, OnExceededAbort, OnExceededRollback:
	default:
		return "onExceeded", fmt.Sprintf("must be pause, abort or rollback, got %q", b.OnExceeded)
	}
	return "", ""
}
