package plan

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/semver"
	"github.com/fleet-rollout/fleet/internal/spec"
)

// Recovery: rolling a rollout back, retrying its failed clusters, and
// ordering a superseding rollout. Each starts from a Source, what a rollout
// that has ended (or is handing over) did, and the inventory as it is now.

// Cluster outcomes, spelled as the workflows' cluster states.
const (
	OutcomeDone    = "done"
	OutcomeFailed  = "failed"
	OutcomeAborted = "aborted"
	OutcomeSkipped = "skipped"
)

// Reasons a recovery plan leaves a cluster out.
const (
	// ReasonNotChanged: the rollout never began changing the cluster
	// (pending, skipped, or aborted before its first broker). Counted, not
	// listed.
	ReasonNotChanged = "not changed by the rollout"
	// ReasonChangedSince: the data plane has applied a later generation
	// than the rollout's, so another change owns the cluster now.
	ReasonChangedSince = "changed since by another rollout"
	// ReasonGone: the cluster is no longer in the inventory.
	ReasonGone = "not in the inventory"
	// ReasonNoPrevious: the plan did not record the version the cluster
	// came from.
	ReasonNoPrevious = "previous version unknown"
	// ReasonNotRetried: a retry names other clusters. Counted, not listed.
	ReasonNotRetried = "not retried"
)

// Outcome is how one cluster of a rollout ended.
type Outcome struct {
	State string `json:"state"`
	// Broker is how many of its brokers the apply got through.
	Broker int `json:"broker,omitempty"`
}

// Source is a rollout as recovery planning reads it: its plan, the batches
// that ran (to a result), and the outcome of every cluster of those batches
// that did not end done. A cluster of a batch that ran and is not in
// Outcomes ended done; a cluster of a batch that did not run was skipped.
type Source struct {
	ID       string             `json:"id"`
	Plan     *Plan              `json:"plan"`
	Ran      []int              `json:"ran"`
	Outcomes map[string]Outcome `json:"outcomes,omitempty"`
}

// Change is a cluster a rollout began changing, with how it ended there.
type Change struct {
	Target Target `json:"target"`
	Phase  string `json:"phase"`
	State  string `json:"state"`
}

// Changes lists, in plan order, the clusters src changed: an apply finished
// (done) or got through at least one broker (failed, aborted mid-cluster).
// Done is read from the data plane as well as from src: a cluster whose
// applied generation is the one src sent is done, so a source compacted to
// counts still names every one. A cluster the data plane has since moved
// past src's generation is left out (ReasonChangedSince), as is one gone
// from the inventory; clusters src never changed are counted
// (ReasonNotChanged).
func Changes(src Source, inventory []fleet.Cluster) ([]Change, []Exclusion, map[string]int) {
	inv := make(map[string]*fleet.Cluster, len(inventory))
	for i := range inventory {
		inv[inventory[i].ID] = &inventory[i]
	}
	return changes(src, inv)
}

func changes(src Source, inv map[string]*fleet.Cluster) ([]Change, []Exclusion, map[string]int) {
	var out []Change
	var excl []Exclusion
	counts := map[string]int{}
	if src.Plan == nil {
		return nil, nil, counts
	}
	ran := make(map[int]bool, len(src.Ran))
	for _, n := range src.Ran {
		ran[n] = true
	}
	exclude := func(id, reason, detail string) {
		excl = append(excl, Exclusion{ClusterID: id, Reason: reason, Detail: detail})
		counts[reason]++
	}
	for _, ph := range src.Plan.Phases {
		for _, b := range ph.Batches {
			for _, t := range b.Clusters {
				c := inv[t.ClusterID]
				state := ""
				if ran[b.Number] {
					o, listed := src.Outcomes[t.ClusterID]
					switch {
					case !listed, o.State == OutcomeDone:
						state = OutcomeDone
					case o.State == OutcomeFailed:
						state = OutcomeFailed
					case o.State == OutcomeAborted && o.Broker > 0:
						state = OutcomeAborted
					}
					if state == OutcomeDone && c != nil && c.Generation < t.Generation {
						state = "" // the data plane never applied it
					}
				} else if c != nil && c.Generation == t.Generation {
					state = OutcomeDone // finished as the rollout handed over
				}
				switch {
				case state == "":
					counts[ReasonNotChanged]++
				case c == nil:
					exclude(t.ClusterID, ReasonGone, "")
				case c.Generation > t.Generation:
					exclude(t.ClusterID, ReasonChangedSince, fmt.Sprintf("applied generation %d, the rollout's was %d", c.Generation, t.Generation))
				default:
					out = append(out, Change{Target: t, Phase: ph.Name, State: state})
				}
			}
		}
	}
	return out, excl, counts
}

// RollbackOptions shapes a rollback plan.
type RollbackOptions struct {
	// Forward runs the source's phases in their own order; by default a
	// rollback runs them last phase first.
	Forward bool
	// Busy is Options.Busy: clusters held by other running rollouts.
	Busy map[string]string
	// Name is the rollback's own name (its clusters in Busy are its own).
	Name string
	// Protected maps the clusters no rollout may change to the reason
	// (ReasonProtected); nil when the rollback forces protected clusters.
	Protected map[string]string
	// Outline is Options.Outline.
	Outline bool
}

// FailedPhase names the phase of a rollback that returns the clusters that
// failed or were aborted mid-way, before any other.
const FailedPhase = "failed-first"

// Rollback plans returning every cluster src changed to the version (and
// the config keys) it had before, as src's plan recorded them: the clusters
// that failed or stopped mid-way first (phase FailedPhase), then the done
// ones by src's phases, last phase first unless opts.Forward. Each phase
// keeps its source phase's batch size, concurrency, bake and strictness; no
// phase requires approval (the policy's own approval rules still apply).
// Each Target carries its own Version and Config; Downgrade marks the
// clusters moving to an older version, which is every one in a rollback of
// an upgrade.
func Rollback(src Source, inventory []fleet.Cluster, opts RollbackOptions) (*Plan, error) {
	if src.Plan == nil {
		return nil, errors.New("plan: rollback: the rollout has no plan")
	}
	inv := make(map[string]*fleet.Cluster, len(inventory))
	for i := range inventory {
		inv[inventory[i].ID] = &inventory[i]
	}
	chs, excl, counts := changes(src, inv)
	p := &Plan{Excluded: excl, ExcludedCounts: counts}
	phaseOf := map[string]*Phase{}
	for i := range src.Plan.Phases {
		phaseOf[src.Plan.Phases[i].Name] = &src.Plan.Phases[i]
	}
	var failed []Target
	done := map[string][]Target{}
	versions := map[string]int{}
	for _, ch := range chs {
		t := ch.Target
		c := inv[t.ClusterID]
		switch {
		case t.FromVersion == "":
			p.Excluded = append(p.Excluded, Exclusion{ClusterID: t.ClusterID, Reason: ReasonNoPrevious})
			p.ExcludedCounts[ReasonNoPrevious]++
			continue
		case hasKey(opts.Protected, t.ClusterID):
			p.Excluded = append(p.Excluded, Exclusion{ClusterID: t.ClusterID, Reason: ReasonProtected, Detail: opts.Protected[t.ClusterID]})
			p.ExcludedCounts[ReasonProtected]++
			continue
		case opts.Busy[t.ClusterID] != "" && opts.Busy[t.ClusterID] != opts.Name:
			p.Excluded = append(p.Excluded, Exclusion{ClusterID: t.ClusterID, Reason: ReasonBusy, Detail: opts.Busy[t.ClusterID]})
			p.ExcludedCounts[ReasonBusy]++
			continue
		}
		back := Target{
			ClusterID: t.ClusterID,
			Product:   t.Product,
			// Past both what the data plane applied and what the rollout
			// sent (a failed apply's generation is never reused).
			Generation:  max(c.Generation, t.Generation) + 1,
			FromVersion: c.Version,
			Version:     t.FromVersion,
			Config:      maps.Clone(t.FromConfig),
		}
		if to, err := semver.Parse(t.FromVersion); err == nil && newer(c.Version, to) {
			back.Downgrade = true
			p.Downgrades++
		}
		versions[t.FromVersion]++
		if ch.State == OutcomeDone {
			done[ch.Phase] = append(done[ch.Phase], back)
		} else {
			failed = append(failed, back)
		}
	}
	order := slices.Clone(src.Plan.Phases)
	if !opts.Forward {
		slices.Reverse(order)
	}
	number := 0
	add := func(name string, like *Phase, ts []Target) {
		if len(ts) == 0 {
			return
		}
		members := make([]*fleet.Cluster, len(ts))
		for i, t := range ts {
			members[i] = inv[t.ClusterID]
		}
		size := len(ts)
		if len(like.Batches) > 0 && len(like.Batches[0].Clusters) > 0 {
			size = len(like.Batches[0].Clusters)
		}
		ph := Phase{Name: name, Concurrency: like.Concurrency, Strict: like.Strict, Bake: like.Bake, Breakdown: breakdown(members)}
		if ph.Concurrency <= 0 {
			ph.Concurrency = size
		}
		for start := 0; start < len(ts); start += size {
			number++
			end := min(start+size, len(ts))
			ph.Batches = append(ph.Batches, Batch{Number: number, Clusters: ts[start:end:end]})
		}
		p.Phases = append(p.Phases, ph)
		p.Total += len(ts)
	}
	if len(failed) > 0 {
		// The failed clusters' own phases set the pace: the most careful
		// (smallest concurrency) of them.
		like := (*Phase)(nil)
		for _, ch := range chs {
			if ch.State == OutcomeDone {
				continue
			}
			if ph := phaseOf[ch.Phase]; like == nil || ph.Concurrency < like.Concurrency {
				like = ph
			}
		}
		add(FailedPhase, like, failed)
	}
	for i := range order {
		add(order[i].Name, &order[i], done[order[i].Name])
	}
	if p.Phases == nil {
		p.Phases = []Phase{}
	}
	// The plan's Version names the version most clusters return to (each
	// Target carries its own).
	best := ""
	for v, n := range versions {
		if best == "" || n > versions[best] || (n == versions[best] && v < best) {
			best = v
		}
	}
	p.Version = best
	p.Hash = p.ComputeHash()
	asked := make([]spec.BatchSize, len(p.Phases))
	for i, ph := range p.Phases {
		asked[i] = spec.BatchSize{Count: len(ph.Batches[0].Clusters)}
	}
	if err := checkLimits(p, asked, opts.Outline); err != nil {
		return nil, err
	}
	return p, nil
}

// Sent maps each cluster of src's plan to the generation src sent it: a
// retry's Options.Sent, so no generation is sent twice.
func Sent(src Source) map[string]int64 {
	out := map[string]int64{}
	if src.Plan == nil {
		return out
	}
	for _, ph := range src.Plan.Phases {
		for _, b := range ph.Batches {
			for _, t := range b.Clusters {
				out[t.ClusterID] = max(out[t.ClusterID], t.Generation)
			}
		}
	}
	return out
}

// Retryable returns the clusters a retry of src may take: those that
// failed, were aborted or skipped, and those of batches that never ran. With
// names, only those, each of which must be retryable.
func Retryable(src Source, names []string) (map[string]bool, error) {
	if src.Plan == nil {
		return nil, errors.New("plan: retry: the rollout has no plan")
	}
	ran := make(map[int]bool, len(src.Ran))
	for _, n := range src.Ran {
		ran[n] = true
	}
	all := map[string]string{}
	for _, ph := range src.Plan.Phases {
		for _, b := range ph.Batches {
			for _, t := range b.Clusters {
				switch o, listed := src.Outcomes[t.ClusterID]; {
				case !ran[b.Number]:
					all[t.ClusterID] = OutcomeSkipped
				case !listed:
					all[t.ClusterID] = OutcomeDone
				default:
					all[t.ClusterID] = o.State
				}
			}
		}
	}
	retry := map[string]bool{}
	for id, state := range all {
		if state != OutcomeDone {
			retry[id] = true
		}
	}
	if len(names) == 0 {
		if len(retry) == 0 {
			return nil, fmt.Errorf("plan: retry: %s has no failed or skipped cluster", src.ID)
		}
		return retry, nil
	}
	only := map[string]bool{}
	var errs []string
	for _, id := range names {
		switch state, ok := all[id]; {
		case !ok:
			errs = append(errs, fmt.Sprintf("%s is not in the rollout's plan", id))
		case !retry[id]:
			errs = append(errs, fmt.Sprintf("%s ended %s", id, state))
		default:
			only[id] = true
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("plan: retry takes failed or skipped clusters: %s", strings.Join(errs, "; "))
	}
	return only, nil
}

func hasKey(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}

// DescribeCounts writes exclusion counts as "3 changed since by another
// rollout, 12 not changed by the rollout", by reason.
func DescribeCounts(counts map[string]int) string {
	if len(counts) == 0 {
		return "no cluster"
	}
	parts := make([]string, 0, len(counts))
	for _, r := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%d %s", counts[r], r))
	}
	return strings.Join(parts, ", ")
}
