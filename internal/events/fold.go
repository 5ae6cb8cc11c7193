package events

import (
	"cmp"
	"slices"
	"time"

	"github.com/fleet-rollout/fleet/workflows"
)

// Alert is a monitor alert raised on a cluster during a rollout.
type Alert struct {
	Monitor string    `json:"monitor,omitempty"`
	Message string    `json:"message,omitempty"`
	At      time.Time `json:"at"`
}

// Entry is one rollout's part in one cluster's history.
type Entry struct {
	RolloutID string `json:"rolloutId"`
	// Version is the rollout's target version.
	Version string `json:"version,omitempty"`
	// Phase and Batch are where the cluster ran (the last ones reported).
	Phase string `json:"phase,omitempty"`
	Batch int    `json:"batch,omitempty"`
	// First and Last are the times of the first and the last event about
	// the cluster in this rollout.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	// State is the cluster's last reported state in the rollout (done,
	// failed, aborted, skipped, held, ...); empty when only alerts were seen.
	State workflows.ClusterState `json:"state,omitempty"`
	// Message is the last cluster-state event's message (why it failed, ...).
	Message string `json:"message,omitempty"`
	// RolloutState is how the rollout itself ended (the state of its
	// rollout-finished event: completed, aborted, failed); empty while it
	// runs or when its end is not in the log.
	RolloutState string `json:"rolloutState,omitempty"`
	// Alerts raised on the cluster during the rollout, oldest first.
	Alerts []Alert `json:"alerts,omitempty"`
}

// run is one execution of a rollout ID: a rollout that finished may be
// started again under the same name.
type run struct {
	start    time.Time
	version  string
	finished bool
	state    string
}

// Fold returns, for clusterID, one Entry per rollout run that touched it
// (sent it a cluster-state or cluster-alert event), sorted by First time,
// then rollout ID.
//
// events is a log in order: a cluster's events share a partition, and so do
// one rollout's own events, so within each of those the order given is the
// order they happened, and a cluster's last state is the last one given
// (times break no ties). Interleaving between partitions does not matter.
//
// A rollout ID started again after its rollout-finished is a new run and a
// new Entry; cluster events go to the run that started last at or before
// their time. A rollout-started that repeats within a run (continue-as-new)
// starts no new run. The target version comes from the run's
// rollout-started event, else from any of the rollout's events that carry
// one. Alerts repeated verbatim (an event published twice) are kept once.
func Fold(events []workflows.Event, clusterID string) []Entry {
	if clusterID == "" {
		return nil
	}
	// Pass 1: the rollouts' own events delimit runs and give versions.
	runs := map[string][]*run{}
	anyVersion := map[string]string{}
	current := func(id string) *run {
		rs := runs[id]
		if len(rs) == 0 {
			r := &run{}
			runs[id] = []*run{r}
			return r
		}
		return rs[len(rs)-1]
	}
	for _, ev := range events {
		if ev.RolloutID == "" {
			continue
		}
		if ev.Version != "" && anyVersion[ev.RolloutID] == "" {
			anyVersion[ev.RolloutID] = ev.Version
		}
		if IsClusterEvent(ev.Kind) {
			continue
		}
		switch ev.Kind {
		case workflows.EventRolloutStarted:
			rs := runs[ev.RolloutID]
			if n := len(rs); n == 0 || rs[n-1].finished {
				runs[ev.RolloutID] = append(rs, &run{start: ev.At, version: ev.Version})
				continue
			}
			r := rs[len(rs)-1]
			if r.version == "" {
				r.version = ev.Version
			}
			if r.start.IsZero() {
				r.start = ev.At
			}
		case workflows.EventRolloutFinished:
			r := current(ev.RolloutID)
			r.finished = true
			r.state = ev.State
			if r.version == "" {
				r.version = ev.Version
			}
		default:
			if r := current(ev.RolloutID); r.version == "" {
				r.version = ev.Version
			}
		}
	}

	// Pass 2: the cluster's events, in log order.
	type key struct {
		rollout string
		run     int
	}
	byKey := map[key]*Entry{}
	var order []key
	for _, ev := range events {
		if !IsClusterEvent(ev.Kind) || ev.ClusterID != clusterID || ev.RolloutID == "" {
			continue
		}
		k := key{ev.RolloutID, runOf(runs[ev.RolloutID], ev.At)}
		e := byKey[k]
		if e == nil {
			e = &Entry{RolloutID: ev.RolloutID, First: ev.At, Last: ev.At}
			if rs := runs[ev.RolloutID]; k.run < len(rs) {
				r := rs[k.run]
				e.Version = r.version
				if r.finished {
					e.RolloutState = r.state
				}
			}
			if e.Version == "" {
				e.Version = anyVersion[ev.RolloutID]
			}
			byKey[k] = e
			order = append(order, k)
		}
		if ev.At.Before(e.First) {
			e.First = ev.At
		}
		if ev.At.After(e.Last) {
			e.Last = ev.At
		}
		if ev.Phase != "" {
			e.Phase = ev.Phase
		}
		if ev.Batch != 0 {
			e.Batch = ev.Batch
		}
		switch ev.Kind {
		case workflows.EventClusterState:
			e.State = workflows.ClusterState(ev.State)
			e.Message = ev.Message
		case workflows.EventClusterAlert:
			a := Alert{Monitor: ev.Monitor, Message: ev.Message, At: ev.At}
			if !slices.ContainsFunc(e.Alerts, func(b Alert) bool {
				return b.Monitor == a.Monitor && b.Message == a.Message && b.At.Equal(a.At)
			}) {
				e.Alerts = append(e.Alerts, a)
			}
		}
	}

	if len(order) == 0 {
		return nil
	}
	out := make([]Entry, 0, len(order))
	runIdx := make([]int, 0, len(order))
	for _, k := range order {
		e := byKey[k]
		slices.SortStableFunc(e.Alerts, func(a, b Alert) int { return a.At.Compare(b.At) })
		out = append(out, *e)
		runIdx = append(runIdx, k.run)
	}
	idx := make([]int, len(out))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		return cmp.Or(
			out[a].First.Compare(out[b].First),
			cmp.Compare(out[a].RolloutID, out[b].RolloutID),
			cmp.Compare(runIdx[a], runIdx[b]),
		)
	})
	sorted := make([]Entry, len(out))
	for i, j := range idx {
		sorted[i] = out[j]
	}
	return sorted
}

// runOf picks the run an event at time at belongs to: the last one started
// at or before it (a run whose start is unknown counts as started before
// everything), else the first.
func runOf(rs []*run, at time.Time) int {
	pick := 0
	for i, r := range rs {
		if r.start.IsZero() || !r.start.After(at) {
			pick = i
		}
	}
	return pick
}
