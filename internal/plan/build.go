package plan

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/selector"
	"github.com/fleet-rollout/fleet/internal/semver"
	"github.com/fleet-rollout/fleet/internal/spec"
)

// Options carries what planning needs beyond the spec and the inventory.
type Options struct {
	// Busy maps a cluster ID to the rollout holding it. Those clusters are
	// excluded (ReasonBusy, with the holder as Detail), except the ones
	// held by this very rollout (same name), so re-planning a running
	// rollout keeps its own clusters.
	Busy map[string]string
	// Protected lists cluster IDs no rollout may change (ReasonProtected),
	// even when the spec includes them.
	Protected []string
	// ProtectedWhy optionally gives the reason per protected cluster ID
	// (shown as the exclusion's Detail).
	ProtectedWhy map[string]string
	// Metrics maps a cluster ID to its value of the ordering metric, for the
	// phases with an orderBy (the spec's OrderMetrics, read from Datadog
	// before planning). A cluster without a value, or with NaN, is ordered
	// after the ones with a value.
	Metrics map[string]float64
	// MetricsByName holds the values per metric name (metric -> cluster ID
	// -> value) for a spec whose phases order by different metrics. A phase
	// ordered by metric m reads MetricsByName[m] when it is present, else
	// Metrics.
	MetricsByName map[string]map[string]float64
	// Only, when not nil, restricts the plan to these clusters (a retry):
	// every other cluster is counted as ReasonNotRetried, and a phase left
	// without clusters is skipped rather than an error.
	Only map[string]bool
	// First puts these clusters first within their phase, keeping the
	// order among them and among the rest (a supersede: the clusters the
	// rollout it takes over already changed go to the fix first).
	First map[string]bool
	// Sent maps clusters to a generation already sent to them (a retry:
	// the failed attempt's); the plan sends one past it, never the same.
	Sent map[string]int64
	// Outline says the plan goes to the plan store and workflow history
	// keeps its outline (Plan.Outline): MaxPlanBytes bounds the outline,
	// not the plan.
	Outline bool
}

// metricValues returns the values a phase ordered by metric reads.
func (o Options) metricValues(metric string) map[string]float64 {
	if v, ok := o.MetricsByName[metric]; ok {
		return v
	}
	return o.Metrics
}

// Build plans rollout r over inventory. The spec is validated first; r is
// neither modified nor required to be normalised.
//
// The result does not depend on the inventory's order. Clusters are
// considered in ID order, and each one the spec could touch gets exactly
// one outcome, checked in this order:
//
//  1. listed in the spec's exclude: ReasonExcluded;
//  2. neither matched by the spec's selector nor listed in include:
//     ReasonNotMatched (counted in ExcludedCounts only, not listed);
//  3. assigned to the single phase whose selector matches it; matching two
//     phases' selectors is an error naming both and the cluster;
//  4. in opts.Protected: ReasonProtected;
//  5. matching no phase: ReasonNoPhase;
//  6. running the target version already (semantic equality, "v3.7" =
//     "3.7.0"): ReasonAtTarget;
//  7. held by another rollout in opts.Busy: ReasonBusy;
//  8. otherwise planned in its phase.
//
// A planned cluster running a newer version than the target (semver order;
// a version that does not parse is not compared) is a downgrade. Without
// the spec's allowDowngrade that is an error, a *DowngradeError naming how
// many clusters and the first few with their versions; with it, each such
// Target is marked Downgrade and Plan.Downgrades counts them. Clusters
// excluded by steps 1 to 7 are not checked: the rollout does not change
// them.
//
// An explicit phase (from strategy.phases) whose selector matches none of
// the selected clusters is an error: the spec is likely wrong. A preset's
// phase that matches none, and any phase whose clusters are all excluded
// by steps 4 to 7, is left out of Phases and named in Skipped; when such a
// phase required approval, the next phase that runs requires it instead.
//
// Within a phase clusters are ordered by environment (fleet.Environments
// order), cloud, region, and then spread across customers: inside one
// (environment, cloud, region) group, clusters are dealt round-robin by
// customer (customers by name, each customer's clusters by ID), so a batch
// holds as few clusters of one customer as the group allows. Batches cut
// that order into runs of the phase's batch size (a count, or a percentage
// of the phase rounded up; at least 1); batch numbers are 1-based across
// the whole plan. A phase's concurrency defaults to its batch size.
//
// A phase with an orderBy (its own, else the rollout's: spec's
// PhaseOrderBy) is then ordered by its clusters' values of that metric
// (opts.Metrics, or opts.MetricsByName[metric]; for "brokers" the
// inventory's broker count), highest first for desc
// (the default), lowest first for asc. The sort is stable over the order
// above: ties keep it, and clusters without a value come last, in it too.
// The phase records the ordering (Phase.OrderBy) for display; the hash
// depends only on the resulting batches.
//
// Last, the plan must fit in Temporal's limits (see limits.go): a batch of
// more than MaxBatchSize clusters, a phase that would run more than
// MaxRunningBatches batch workflows at once, or a plan whose JSON is larger
// than MaxPlanBytes is an error naming the phase, the size asked for and the
// limit.
func Build(r *spec.Rollout, inventory []fleet.Cluster, opts Options) (*Plan, error) {
	p, asked, err := build(r, inventory, opts)
	if err != nil {
		return nil, err
	}
	if err := checkLimits(p, asked, opts.Outline); err != nil {
		return nil, err
	}
	return p, nil
}

// build is Build without the limit checks; asked holds the spec's batch
// size of each phase in p.Phases.
func build(r *spec.Rollout, inventory []fleet.Cluster, opts Options) (_ *Plan, asked []spec.BatchSize, _ error) {
	if r == nil {
		return nil, nil, errors.New("plan: no rollout spec")
	}
	if err := r.Validate(); err != nil {
		return nil, nil, fmt.Errorf("plan: invalid spec:\n%w", err)
	}
	phases, fromPreset := r.Strategy.EffectivePhases()
	top, err := selector.Parse(r.Selector)
	if err != nil {
		return nil, nil, fmt.Errorf("plan: selector: %w", err)
	}
	sels := make([]*selector.Selector, len(phases))
	sizes := make([]spec.BatchSize, len(phases))
	for i, p := range phases {
		if sels[i], err = selector.Parse(p.Selector); err != nil {
			return nil, nil, fmt.Errorf("plan: phase %q: selector: %w", p.Name, err)
		}
		if sizes[i], err = spec.ParseBatchSize(p.BatchSize); err != nil {
			return nil, nil, fmt.Errorf("plan: phase %q: batchSize: %w", p.Name, err)
		}
	}
	target, err := semver.Parse(r.Target.Version)
	if err != nil {
		return nil, nil, fmt.Errorf("plan: target version: %w", err)
	}

	// Sort by ID; the IDs sit beside the pointers to spare cache misses.
	type ref struct {
		id string
		c  *fleet.Cluster
	}
	refs := make([]ref, len(inventory))
	for i := range inventory {
		refs[i] = ref{inventory[i].ID, &inventory[i]}
	}
	slices.SortFunc(refs, func(a, b ref) int { return strings.Compare(a.id, b.id) })
	cs := make([]*fleet.Cluster, len(refs))
	for i, r := range refs {
		cs[i] = r.c
	}
	for i, c := range cs {
		if c.ID == "" {
			return nil, nil, errors.New("plan: the inventory has a cluster without an id")
		}
		if i > 0 && cs[i-1].ID == c.ID {
			return nil, nil, fmt.Errorf("plan: the inventory lists cluster %q twice", c.ID)
		}
	}

	include := set(r.Include)
	exclude := set(r.Exclude)
	protected := set(opts.Protected)
	p := &Plan{
		Version:        r.Target.Version,
		Config:         maps.Clone(r.Target.Config),
		ExcludedCounts: map[string]int{},
	}
	exclusion := func(c *fleet.Cluster, reason, detail string) {
		p.Excluded = append(p.Excluded, Exclusion{ClusterID: c.ID, Reason: reason, Detail: detail})
		p.ExcludedCounts[reason]++
	}
	members := make([][]*fleet.Cluster, len(phases))
	var downgrades []Downgrade
	selected := make([]int, len(phases)) // clusters each phase's selector took
	found := 0
	for _, c := range cs {
		if include[c.ID] {
			found++
		}
		if exclude[c.ID] {
			exclusion(c, ReasonExcluded, "")
			continue
		}
		if !include[c.ID] && !top.MatchPtr(c) {
			p.ExcludedCounts[ReasonNotMatched]++
			continue
		}
		if opts.Only != nil && !opts.Only[c.ID] {
			p.ExcludedCounts[ReasonNotRetried]++
			continue
		}
		pi := -1
		for i, s := range sels {
			if s.MatchPtr(c) {
				if pi >= 0 {
					return nil, nil, fmt.Errorf("plan: cluster %q matches the selectors of phases %q and %q; phase selectors must not overlap",
						c.ID, phases[pi].Name, phases[i].Name)
				}
				pi = i
			}
		}
		if pi >= 0 {
			selected[pi]++
		}
		switch {
		case protected[c.ID]:
			exclusion(c, ReasonProtected, opts.ProtectedWhy[c.ID])
		case pi < 0:
			exclusion(c, ReasonNoPhase, "")
		case atTarget(c.Version, r.Target.Version, target):
			exclusion(c, ReasonAtTarget, "")
		case opts.Busy[c.ID] != "" && opts.Busy[c.ID] != r.Name:
			exclusion(c, ReasonBusy, opts.Busy[c.ID])
		default:
			members[pi] = append(members[pi], c)
			if newer(c.Version, target) {
				downgrades = append(downgrades, Downgrade{ClusterID: c.ID, Version: c.Version})
			}
		}
	}
	if found < len(include) {
		var missing []string
		inv := set(nil)
		for _, c := range cs {
			inv[c.ID] = true
		}
		for _, id := range r.Include {
			if !inv[id] {
				missing = append(missing, fmt.Sprintf("%q", id))
			}
		}
		return nil, nil, fmt.Errorf("plan: include names clusters not in the inventory: %s", strings.Join(missing, ", "))
	}
	if !fromPreset && opts.Only == nil {
		var errs []error
		for i, ph := range phases {
			if selected[i] == 0 {
				errs = append(errs, fmt.Errorf("plan: phase %q selects no clusters", ph.Name))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return nil, nil, err
		}
	}
	if len(downgrades) > 0 && !r.AllowDowngrade {
		return nil, nil, &DowngradeError{Target: r.Target.Version, Clusters: downgrades}
	}

	for _, ms := range members {
		p.Total += len(ms)
	}
	targets := make([]Target, 0, p.Total) // one backing array for every batch
	number := 0
	approval := false // a skipped phase's approval gate, moving forward
	for i, ph := range phases {
		ms := members[i]
		if len(ms) == 0 {
			p.Skipped = append(p.Skipped, ph.Name)
			approval = approval || ph.RequireApproval
			continue
		}
		order(ms)
		orderBy := r.PhaseOrderBy(ph)
		unvalued := 0
		if orderBy != nil {
			values := opts.metricValues(orderBy.Metric)
			if orderBy.Metric == spec.OrderBrokers {
				values = make(map[string]float64, len(ms))
				for _, c := range ms {
					values[c.ID] = float64(c.Brokers)
				}
			}
			unvalued = orderByMetric(ms, values, orderBy.Descending())
		}
		if len(opts.First) > 0 {
			slices.SortStableFunc(ms, func(a, b *fleet.Cluster) int {
				switch fa, fb := opts.First[a.ID], opts.First[b.ID]; {
				case fa == fb:
					return 0
				case fa:
					return -1
				}
				return 1
			})
		}
		size := sizes[i].Of(len(ms))
		out := Phase{
			Name:            ph.Name,
			Concurrency:     ph.Concurrency,
			Strict:          ph.Strict,
			Bake:            time.Duration(ph.Bake),
			RequireApproval: ph.RequireApproval || approval,
			Batches:         make([]Batch, 0, (len(ms)+size-1)/size),
			Breakdown:       breakdown(ms),
		}
		if orderBy != nil {
			out.OrderBy = orderBy.String()
			out.Unordered = unvalued
		}
		approval = false
		if out.Concurrency == 0 {
			out.Concurrency = size
		}
		for start := 0; start < len(ms); start += size {
			end := min(start+size, len(ms))
			first := len(targets)
			for _, c := range ms[start:end] {
				down := len(downgrades) > 0 && newer(c.Version, target)
				if down {
					p.Downgrades++
				}
				targets = append(targets, Target{
					ClusterID:   c.ID,
					Product:     c.Product,
					Generation:  max(c.Generation, opts.Sent[c.ID]) + 1,
					FromVersion: c.Version,
					Downgrade:   down,
					FromConfig:  fromConfig(c, p.Config),
				})
			}
			number++
			out.Batches = append(out.Batches, Batch{Number: number, Clusters: targets[first:len(targets):len(targets)]})
		}
		p.Phases = append(p.Phases, out)
		asked = append(asked, sizes[i])
	}
	if p.Phases == nil {
		p.Phases = []Phase{}
	}
	p.Hash = p.ComputeHash()
	return p, asked, nil
}

// fromConfig is the cluster's value of each key config sets ("" where it
// has none), nil when config sets none.
func fromConfig(c *fleet.Cluster, config map[string]string) map[string]string {
	if len(config) == 0 {
		return nil
	}
	out := make(map[string]string, len(config))
	for k := range config {
		out[k] = c.Config[k]
	}
	return out
}

func set(ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// atTarget reports whether a cluster running version v runs the target:
// semantically equal, or textually equal when v does not parse.
func atTarget(v, targetText string, target semver.Version) bool {
	cv, err := semver.Parse(v)
	if err != nil {
		return v == targetText
	}
	return cv.Compare(target) == 0
}

// newer reports whether a cluster running version v runs a newer version
// than the target. A version that does not parse is not newer: it cannot
// be compared.
func newer(v string, target semver.Version) bool {
	cv, err := semver.Parse(v)
	return err == nil && cv.Compare(target) > 0
}

func envRank(env string) int {
	if i := slices.Index(fleet.Environments, env); i >= 0 {
		return i
	}
	return len(fleet.Environments)
}

// order sorts one phase's clusters as Build documents: environment rank,
// cloud, region, then round-robin across customers. cs must be in ID order.
//
// Each cluster gets an integer key (group, turn, customer) where group
// ranks its (environment, cloud, region), customer ranks its customer's
// name, and turn counts the customer's clusters before it (by ID) in the
// group. The key is unique per cluster, so one integer sort does it.
func order(cs []*fleet.Cluster) {
	type groupKey struct{ env, cloud, region string }
	groupIDs := map[groupKey]int{} // provisional IDs, in first-seen order
	customerIDs := map[string]int{}
	var groupList []groupKey
	var customerList []string
	gid := make([]int, len(cs))
	cid := make([]int, len(cs))
	for i, c := range cs {
		k := groupKey{c.Environment, c.Cloud, c.Region}
		g, ok := groupIDs[k]
		if !ok {
			g = len(groupList)
			groupIDs[k] = g
			groupList = append(groupList, k)
		}
		cu, ok := customerIDs[c.Customer]
		if !ok {
			cu = len(customerList)
			customerIDs[c.Customer] = cu
			customerList = append(customerList, c.Customer)
		}
		gid[i], cid[i] = g, cu
	}
	// Rank the provisional IDs.
	byGroup := make([]int, len(groupList))
	for i := range byGroup {
		byGroup[i] = i
	}
	slices.SortFunc(byGroup, func(x, y int) int {
		a, b := groupList[x], groupList[y]
		return cmp.Or(
			cmp.Compare(envRank(a.env), envRank(b.env)),
			strings.Compare(a.env, b.env),
			strings.Compare(a.cloud, b.cloud),
			strings.Compare(a.region, b.region))
	})
	groupRank := make([]uint64, len(groupList))
	for r, g := range byGroup {
		groupRank[g] = uint64(r)
	}
	byCustomer := make([]int, len(customerList))
	for i := range byCustomer {
		byCustomer[i] = i
	}
	slices.SortFunc(byCustomer, func(x, y int) int { return strings.Compare(customerList[x], customerList[y]) })
	customerRank := make([]uint64, len(customerList))
	for r, cu := range byCustomer {
		customerRank[cu] = uint64(r)
	}

	type item struct {
		hi, lo uint64 // group<<32 | turn, customer
		c      *fleet.Cluster
	}
	turns := map[uint64]uint64{} // group<<32 | customer -> clusters seen
	items := make([]item, len(cs))
	for i, c := range cs {
		g, cu := groupRank[gid[i]], customerRank[cid[i]]
		k := g<<32 | cu
		turn := turns[k]
		turns[k] = turn + 1
		items[i] = item{hi: g<<32 | turn, lo: cu, c: c}
	}
	slices.SortFunc(items, func(a, b item) int {
		return cmp.Or(cmp.Compare(a.hi, b.hi), cmp.Compare(a.lo, b.lo))
	})
	for i := range items {
		cs[i] = items[i].c
	}
}

// orderByMetric sorts cs (already in the planner's order) by the clusters'
// values, highest first when desc; clusters without a value (or with NaN)
// go last. Ties keep the order cs had: each cluster's position there is the
// last key, so the keys are unique and an unstable sort is stable. It
// returns how many clusters had no value.
func orderByMetric(cs []*fleet.Cluster, values map[string]float64, desc bool) (missing int) {
	type item struct {
		v   float64 // negated when desc, so the sort is always ascending
		pos int     // position in cs; missing values get len(cs)+pos
		c   *fleet.Cluster
	}
	items := make([]item, len(cs))
	for i, c := range cs {
		v, ok := values[c.ID]
		if !ok || math.IsNaN(v) {
			missing++
			items[i] = item{v: math.Inf(1), pos: len(cs) + i, c: c}
			continue
		}
		if desc {
			v = -v
		}
		items[i] = item{v: v, pos: i, c: c}
	}
	if missing == len(cs) {
		return missing // nothing to order by: keep the order
	}
	slices.SortFunc(items, func(a, b item) int {
		if (a.pos < len(cs)) != (b.pos < len(cs)) { // one has a value
			return cmp.Compare(a.pos, b.pos)
		}
		return cmp.Or(cmp.Compare(a.v, b.v), cmp.Compare(a.pos, b.pos))
	})
	for i := range items {
		cs[i] = items[i].c
	}
	return missing
}

func breakdown(cs []*fleet.Cluster) *Breakdown {
	b := &Breakdown{
		Product:     map[string]int{},
		Cloud:       map[string]int{},
		Region:      map[string]int{},
		Environment: map[string]int{},
	}
	for _, c := range cs {
		b.Product[c.Product]++
		b.Cloud[c.Cloud]++
		b.Region[c.Region]++
		b.Environment[c.Environment]++
	}
	return b
}

// ComputeHash returns the plan's content hash: the first 12 hex digits of
// the SHA-256 of a canonical, length-prefixed encoding of the version, the
// config (keys sorted), and every phase's settings, batches and targets in
// order, then, only when some target is marked Downgrade, the positions of
// those targets in plan order (so a plan without downgrades hashes as it
// did before they were marked). Exclusions, counts and breakdowns are not
// part of it: they do not change what the rollout does. Build sets Hash to
// it.
func (p *Plan) ComputeHash() string {
	h := sha256.New()
	buf := make([]byte, 0, 64<<10)
	str := func(s string) {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	num := func(n int64) { buf = binary.AppendVarint(buf, n) }
	flag := func(b bool) {
		if b {
			buf = append(buf, 1)
		} else {
			buf = append(buf, 0)
		}
	}
	flush := func() {
		if len(buf) > 60<<10 {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	str("fleet-plan/v1")
	str(p.Version)
	keys := slices.Sorted(maps.Keys(p.Config))
	num(int64(len(keys)))
	for _, k := range keys {
		str(k)
		str(p.Config[k])
	}
	num(int64(len(p.Phases)))
	var down []int64 // positions of the downgrades, in plan order
	pos := int64(0)
	for _, ph := range p.Phases {
		str(ph.Name)
		num(int64(ph.Concurrency))
		flag(ph.Strict)
		num(int64(ph.Bake))
		flag(ph.RequireApproval)
		num(int64(len(ph.Batches)))
		for _, b := range ph.Batches {
			num(int64(b.Number))
			num(int64(len(b.Clusters)))
			for _, t := range b.Clusters {
				str(t.ClusterID)
				str(t.Product)
				num(t.Generation)
				str(t.FromVersion)
				if t.Downgrade {
					down = append(down, pos)
				}
				pos++
				flush()
			}
		}
	}
	// Per-target config history and targets: only plans that have them
	// (so the hash of every other plan is what it always was).
	strMap := func(m map[string]string) {
		keys := slices.Sorted(maps.Keys(m))
		num(int64(len(keys)))
		for _, k := range keys {
			str(k)
			str(m[k])
		}
	}
	pos = 0
	for _, ph := range p.Phases {
		for _, b := range ph.Batches {
			for _, t := range b.Clusters {
				if t.Version != "" || len(t.FromConfig) > 0 {
					str("target")
					num(pos)
					str(t.Version)
					strMap(t.Config)
					strMap(t.FromConfig)
					flush()
				}
				pos++
			}
		}
	}
	if len(down) > 0 {
		str("downgrades")
		num(int64(len(down)))
		for _, i := range down {
			num(i)
			flush()
		}
	}
	h.Write(buf)
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// Batches returns the number of batches in the plan.
func (p *Plan) Batches() int {
	n := 0
	for _, ph := range p.Phases {
		n += len(ph.Batches)
	}
	return n
}

// FindBatch returns the phase and the batch numbered n.
func (p *Plan) FindBatch(n int) (*Phase, *Batch, bool) {
	for i := range p.Phases {
		ph := &p.Phases[i]
		if len(ph.Batches) == 0 || n < ph.Batches[0].Number || n > ph.Batches[len(ph.Batches)-1].Number {
			continue
		}
		for j := range ph.Batches {
			if ph.Batches[j].Number == n {
				return ph, &ph.Batches[j], true
			}
		}
	}
	return nil, nil, false
}
