package plan

import (
	"fmt"
	"maps"
	"slices"
)

// Outline is the plan without its clusters: what a rollout's workflow keeps
// (in its history and across a continue-as-new) when the full plan is in the
// plan store under the key stored. Phases keep their settings and
// breakdowns, batches their number and Size; the plan keeps its Hash (an
// approval names it), totals, counts and skipped phases, plus what the
// rollout reads of the clusters: the products, and the versions the
// clusters come from. Excluded (a list of clusters) is left out:
// ExcludedCounts counts them.
func (p *Plan) Outline(stored string) *Plan {
	out := *p
	out.Stored = stored
	out.Excluded = nil
	out.Phases = make([]Phase, len(p.Phases))
	products := map[string]bool{}
	from := map[string]int{}
	for i, ph := range p.Phases {
		o := ph
		o.Batches = make([]Batch, len(ph.Batches))
		for j, b := range ph.Batches {
			o.Batches[j] = Batch{Number: b.Number, Size: len(b.Clusters)}
			for _, t := range b.Clusters {
				products[t.Product] = true
				if t.FromVersion != "" {
					from[t.FromVersion]++
				}
			}
		}
		out.Phases[i] = o
	}
	out.Products = slices.Sorted(maps.Keys(products))
	if len(from) > 0 {
		out.FromVersions = from
	}
	return &out
}

// Expand returns the outline o with the clusters of its outline batches
// taken from full, the plan stored under o.Stored (matched by batch
// number); batches o holds in full (a retry's phase, added after planning)
// stay as they are. It fails when full is not o's plan or lacks a batch.
func (o *Plan) Expand(full *Plan) (*Plan, error) {
	if full.Hash != o.Hash {
		return nil, fmt.Errorf("the stored plan is %s, not %s", full.Hash, o.Hash)
	}
	byNumber := map[int][]Target{}
	for _, ph := range full.Phases {
		for _, b := range ph.Batches {
			byNumber[b.Number] = b.Clusters
		}
	}
	out := *o
	out.Stored = ""
	out.Products = nil
	out.FromVersions = nil
	out.Excluded = full.Excluded
	out.Phases = make([]Phase, len(o.Phases))
	for i, ph := range o.Phases {
		e := ph
		e.Batches = make([]Batch, len(ph.Batches))
		for j, b := range ph.Batches {
			if b.Outlined() {
				cs, ok := byNumber[b.Number]
				if !ok || len(cs) != b.Size {
					return nil, fmt.Errorf("the stored plan has no batch %d of %d clusters", b.Number, b.Size)
				}
				b = Batch{Number: b.Number, Clusters: cs}
			}
			e.Batches[j] = b
		}
		out.Phases[i] = e
	}
	return &out, nil
}

// BatchTargets returns the clusters of batch number n.
func (p *Plan) BatchTargets(n int) ([]Target, bool) {
	for _, ph := range p.Phases {
		for _, b := range ph.Batches {
			if b.Number == n {
				return b.Clusters, true
			}
		}
	}
	return nil, false
}
