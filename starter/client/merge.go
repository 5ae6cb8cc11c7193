package client

import (
	"fmt"

	"github.com/fleet-rollout/fleet/workflows"
)

// Merge makes one snapshot of a rollout from its status query and the
// status queries of the batches it reports in flight (batches, by batch
// number). It is pure: the inputs are not changed.
//
//   - A batch the rollout reports finished or pending is taken from the
//     rollout: its record is final (finished) or complete (pending).
//   - A batch the rollout reports in flight (running, paused, baking) is
//     taken from the batch's own answer, cluster by cluster; if that answer
//     says it finished (it ended between the two queries), its final
//     clusters are counted, once, from the batch.
//   - A batch the rollout reports in flight with no answer of its own is
//     not known to have anything in flight: its clusters count as pending
//     (the rollout's answer says only that the batch runs). Check reports
//     it so a caller can read again.
//
// Counts are recounted from the batches with workflows.Counts.Add: in
// flight is applying or holding; held and verifying are counted apart. Clusters
// no batch accounts for are pending, so the counts add up to Total unless
// the inputs disagree (Check says so).
func Merge(rollout workflows.RolloutStatus, batches map[int]workflows.BatchStatus) workflows.RolloutStatus {
	st := rollout
	if len(rollout.Phases) == 0 {
		return st
	}
	st.Phases = make([]workflows.PhaseStatus, len(rollout.Phases))
	for pi, p := range rollout.Phases {
		p.Batches = append([]workflows.BatchStatus(nil), p.Batches...)
		for bi := range p.Batches {
			b := &p.Batches[bi]
			if !batchInFlight(b.State) {
				continue
			}
			src, ok := batches[b.Number]
			if !ok {
				b.Counts = workflows.Counts{Pending: batchSize(*b)}
				continue
			}
			mergeBatch(b, &src)
		}
		st.Phases[pi] = p
	}
	recount(&st)
	return st
}

// batchSize is how many clusters a batch of the rollout's answer holds.
func batchSize(b workflows.BatchStatus) int {
	return max(len(b.Clusters), Sum(b.Counts))
}

// Check lists what makes a merged snapshot inconsistent: counts that do not
// add up to the total, a phase with more clusters in flight than its
// concurrency in force (concurrency, by phase name; a phase not in it is
// not checked). None means the snapshot is consistent.
func Check(st workflows.RolloutStatus, concurrency map[string]int) []string {
	var out []string
	if len(st.Phases) == 0 {
		return nil
	}
	if n := Sum(st.Counts); n != st.Total {
		out = append(out, fmt.Sprintf("counts add up to %d, not the total %d", n, st.Total))
	}
	for _, p := range st.Phases {
		var c workflows.Counts
		for _, b := range p.Batches {
			c.Merge(batchCounts(b))
		}
		if limit, ok := concurrency[p.Name]; ok && limit > 0 && c.InFlight+c.Held > limit {
			out = append(out, fmt.Sprintf("phase %s: %d in flight and %d held above its concurrency %d", p.Name, c.InFlight, c.Held, limit))
		}
	}
	return out
}

// batchCounts is what a batch of a merged snapshot counts.
func batchCounts(b workflows.BatchStatus) workflows.Counts {
	return b.Counts
}

// unread lists the batches the rollout reports in flight that batches has
// no answer for.
func unread(rollout workflows.RolloutStatus, batches map[int]workflows.BatchStatus) []int {
	var out []int
	for _, p := range rollout.Phases {
		for _, b := range p.Batches {
			if _, ok := batches[b.Number]; batchInFlight(b.State) && !ok {
				out = append(out, b.Number)
			}
		}
	}
	return out
}
