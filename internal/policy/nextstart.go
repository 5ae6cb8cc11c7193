package policy

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fleet-rollout/fleet/internal/fleet"
)

// SearchHorizon is how far past t NextStart looks for a start.
const SearchHorizon = 60 * 24 * time.Hour

// ErrNoStart is matched (errors.Is) by NextStart's error when no start
// exists within SearchHorizon.
var ErrNoStart = errors.New("no start within the search horizon")

// maxReasonSteps is how many waits a reason lists before summarising.
const maxReasonSteps = 4

// NextStart returns the earliest instant at ≥ t when cluster c may start:
// inside its maintenance window (c.Window; nil or unset is always open) and
// outside every blackout of cfg that applies to it (cfg may be nil). It
// alternates: an active blackout moves the candidate to its end, a closed
// window to its next opening, until both allow it; then at is the
// candidate and reason says what it waited for, e.g.
//
//	blackout black-friday (peak retail traffic) until 2026-11-30T00:00:00Z, then maintenance window opens Tue 02:00 Europe/Berlin (2026-12-01T01:00:00Z)
//
// reason is "" when c may start at t. The window must also stay open long
// enough for the work: that is the caller's check (WindowAt's closesAt).
// Protection is not considered here: see Protected.
//
// With ignoreWindowsAndBlackouts (emergency mode) it returns t at once, ""
// and no error, without looking at the window. An invalid window is an
// error; so is finding no start within SearchHorizon of t (ErrNoStart).
func NextStart(c fleet.Cluster, t time.Time, cfg *Config, ignoreWindowsAndBlackouts bool) (at time.Time, reason string, err error) {
	if ignoreWindowsAndBlackouts {
		return t, "", nil
	}
	var cw *compiledWindow
	if c.Window != nil {
		if cw, err = compileWindow(*c.Window); err != nil {
			return time.Time{}, "", fmt.Errorf("cluster %s: %w", c.ID, err)
		}
	}
	limit := t.Add(SearchHorizon)
	var steps []string
	at = t
	for !at.After(limit) {
		moved := false
		if active, until, why := cfg.Blackout(c, at); active {
			at = until
			steps = append(steps, "blackout "+why+" until "+until.UTC().Format(time.RFC3339))
			moved = true
		}
		if cw != nil {
			if open, opensAt, _ := cw.at(at); !open {
				at = opensAt
				steps = append(steps, "maintenance window opens "+cw.describeOpening(opensAt))
				moved = true
			}
		}
		if !moved {
			return at, joinSteps(steps), nil
		}
	}
	return time.Time{}, "", fmt.Errorf("cluster %s: %w (%s after %s): waited for %s",
		c.ID, ErrNoStart, SearchHorizon, t.UTC().Format(time.RFC3339), joinSteps(steps))
}

func joinSteps(steps []string) string {
	if len(steps) > maxReasonSteps {
		n := len(steps) - maxReasonSteps
		steps = append(steps[:maxReasonSteps:maxReasonSteps], fmt.Sprintf("%d more", n))
	}
	return strings.Join(steps, ", then ")
}
