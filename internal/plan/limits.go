package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/fleet-rollout/fleet/internal/spec"
)

// Temporal's limits, as a plan sees them. A stock Temporal server fails any
// payload (a workflow or activity input or result, a signal, a query answer)
// larger than 2 MB (limit.blobSize.error) and fails a workflow task that
// would leave more than 2,000 child workflows pending
// (limit.numPendingChildExecutions.error). Build refuses a plan that cannot
// stay within them, with an error naming what is too large and the limit,
// instead of a rollout that gets stuck half-way.
const (
	// MaxBatchSize is the most clusters one batch may hold. A Batch
	// workflow's input lists its clusters (~60 bytes each as JSON), it reads
	// their inventory records in one activity result (~330 bytes each), and
	// when it continues as new it carries each cluster's status, inventory
	// record and bookkeeping (~670 bytes each, measured on the simulator's
	// fleet): 2,000 clusters keep that under 1.4 MB, well within 2 MB.
	MaxBatchSize = 2000
	// MaxRunningBatches is the most Batch workflows a phase may run at once
	// (they are children of the Rollout, which Temporal caps at 2,000
	// pending): a non-strict phase runs concurrency/batchSize lanes of
	// laneDepth batches each, a strict phase concurrency/batchSize batches.
	MaxRunningBatches = 1500
	// MaxPlanBytes is the largest plan, as JSON. The plan is the Plan
	// activity's result and part of the Rollout's state when it continues
	// as new, both single payloads in workflow history (2 MB at most, with
	// the rest of the rollout's state beside the plan).
	MaxPlanBytes = 1536 * 1024

	// laneDepth is workflows.laneDepth: how many batches of one lane run at
	// once (the workflows package imports this one, not the reverse).
	laneDepth = 3
	// payloadLimit is a stock server's limit.blobSize.error, for messages.
	payloadLimit = 2 * 1024 * 1024
)

// checkLimits refuses a plan that would not fit in Temporal's limits (see
// MaxBatchSize, MaxRunningBatches, MaxPlanBytes). asked is the spec's batch
// size of each of p.Phases.
func checkLimits(p *Plan, asked []spec.BatchSize, outline bool) error {
	var errs []error
	for i, ph := range p.Phases {
		if len(ph.Batches) == 0 {
			continue
		}
		members := 0
		for _, b := range ph.Batches {
			members += len(b.Clusters)
		}
		size := len(ph.Batches[0].Clusters) // the first batch is the largest
		if size > MaxBatchSize {
			errs = append(errs, batchTooLarge(ph.Name, asked[i], members, size))
			continue
		}
		lanes := min(max(1, ph.Concurrency/size), len(ph.Batches))
		running, how := lanes, fmt.Sprintf("strict: waves of %s", plural(lanes, "batch"))
		if !ph.Strict {
			running = min(lanes*laneDepth, len(ph.Batches))
			how = fmt.Sprintf("%s of up to %d batches", plural(lanes, "lane"), laneDepth)
		}
		if running > MaxRunningBatches {
			errs = append(errs, fmt.Errorf("plan: phase %q: concurrency %s with batches of %s would run %s batch workflows at once (%s), more than the %s a rollout may run (Temporal fails a workflow with more than 2,000 child workflows pending); use larger batches or a lower concurrency",
				ph.Name, thousands(ph.Concurrency), plural(size, "cluster"), thousands(running), how, thousands(MaxRunningBatches)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if outline {
		return outlineTooLarge(p)
	}
	return planTooLarge(p)
}

// outlineTooLarge refuses a plan whose outline (what workflow history keeps
// of a plan in the plan store) is larger than MaxPlanBytes as JSON: it
// grows with the batches, not the clusters.
func outlineTooLarge(p *Plan) error {
	o := p.Outline(strings.Repeat("0", 64))
	b, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("plan: encode its outline: %w", err)
	}
	if len(b) <= MaxPlanBytes {
		return nil
	}
	return fmt.Errorf("plan: the plan's outline is %s as JSON (%s in %s), more than the %s it may take: Temporal keeps it in workflow history, where one payload may not exceed %s; use larger batches",
		mb(len(b)), plural(p.Total, "cluster"), plural(p.Batches(), "batch"), mb(MaxPlanBytes), mb(payloadLimit))
}

func batchTooLarge(phase string, asked spec.BatchSize, members, size int) error {
	what := fmt.Sprintf("batchSize %s", asked)
	switch {
	case asked.Hundredths > 0:
		what += fmt.Sprintf(" of the phase's %s is %s a batch", plural(members, "cluster"), plural(size, "cluster"))
	case asked.Count > size:
		what += fmt.Sprintf(" is %s a batch (the whole phase)", plural(size, "cluster"))
	default:
		what += fmt.Sprintf(" is %s a batch", plural(size, "cluster"))
	}
	fix := fmt.Sprintf("use a batchSize of at most %d", MaxBatchSize)
	if h := int(int64(MaxBatchSize) * 10000 / int64(members)); h > 0 {
		fix += fmt.Sprintf(" (or %s for this phase)", spec.BatchSize{Hundredths: h})
	}
	return fmt.Errorf("plan: phase %q: %s, more than the %s a batch may hold: a batch's input and the state it carries must stay well under Temporal's %s payload limit; %s",
		phase, what, thousands(MaxBatchSize), mb(payloadLimit), fix)
}

// planTooLarge refuses a plan larger than MaxPlanBytes as JSON.
func planTooLarge(p *Plan) error {
	size, fixed, listed := jsonSize(p)
	if size <= MaxPlanBytes {
		return nil
	}
	listed = max(1, listed)
	per := (size - fixed + listed/2) / listed
	fit := 0
	if size > fixed {
		fit = max(0, int(int64(MaxPlanBytes-fixed)*int64(listed)/int64(size-fixed)))
	}
	counts := plural(p.Total, "cluster") + " to change"
	if len(p.Excluded) > 0 {
		counts += ", " + plural(len(p.Excluded), "cluster") + " listed as excluded"
	}
	return fmt.Errorf("plan: the plan is %s as JSON (%s), more than the %s a plan may take: Temporal keeps it in workflow history (the Plan activity's result, the rollout's state when it continues as new), where one payload may not exceed %s; about %s fit in one plan (~%d bytes each); narrow the selector or split the rollout",
		mb(size), counts, mb(MaxPlanBytes), mb(payloadLimit), plural(roundDown(fit), "cluster"), per)
}

// jsonSize is len(json.Marshal(p)), counted without encoding the clusters:
// fixed is the size without the batches' clusters and the exclusions,
// listed how many of those there are.
func jsonSize(p *Plan) (size, fixed, listed int) {
	skel := *p
	skel.Excluded = nil
	skel.Phases = make([]Phase, len(p.Phases))
	for i, ph := range p.Phases {
		skel.Phases[i] = ph
		skel.Phases[i].Batches = make([]Batch, len(ph.Batches))
		for j, b := range ph.Batches {
			skel.Phases[i].Batches[j] = Batch{Number: b.Number, Clusters: []Target{}}
		}
	}
	b, err := json.Marshal(&skel)
	if err != nil {
		return 0, 0, 0 // a plan always encodes
	}
	fixed = len(b)
	size = fixed
	for _, ph := range p.Phases {
		for _, b := range ph.Batches {
			if n := len(b.Clusters); n > 0 {
				size += n - 1 // commas
			}
			for _, t := range b.Clusters {
				// {"id":..,"product":..,"gen":..[,"from":..][,"downgrade":true]}
				size += len(`{"id":,"product":,"gen":}`) + jsonString(t.ClusterID) + jsonString(t.Product) + intLen(t.Generation)
				if t.FromVersion != "" {
					size += len(`,"from":`) + jsonString(t.FromVersion)
				}
				if t.Downgrade {
					size += len(`,"downgrade":true`)
				}
				if len(t.FromConfig) > 0 {
					size += len(`,"fromConfig":`) + jsonMap(t.FromConfig)
				}
				if t.Version != "" {
					size += len(`,"version":`) + jsonString(t.Version)
				}
				if len(t.Config) > 0 {
					size += len(`,"config":`) + jsonMap(t.Config)
				}
				listed++
			}
		}
	}
	if n := len(p.Excluded); n > 0 {
		size += len(`,"excluded":[]`) + n - 1
		for _, e := range p.Excluded {
			size += len(`{"id":,"reason":}`) + jsonString(e.ClusterID) + jsonString(e.Reason)
			if e.Detail != "" {
				size += len(`,"detail":`) + jsonString(e.Detail)
			}
			listed++
		}
	}
	return size, fixed, listed
}

// jsonMap is the length of m encoded as a JSON object by encoding/json.
func jsonMap(m map[string]string) int {
	n := 2 + len(m) - 1 // braces and commas
	for k, v := range m {
		n += jsonString(k) + 1 + jsonString(v)
	}
	return n
}

// jsonString is the length of s encoded as a JSON string by encoding/json.
func jsonString(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s)
			return len(b)
		}
	}
	return len(s) + 2
}

func intLen(n int64) int {
	l := 1
	if n < 0 {
		l++
		if n == -n { // math.MinInt64
			return 20
		}
		n = -n
	}
	for n >= 10 {
		n /= 10
		l++
	}
	return l
}

// mb formats a size in MB with up to two decimals: "2 MB", "1.5 MB", "1.54 MB".
func mb(n int) string {
	s := strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", float64(n)/(1<<20)), "0"), ".")
	return s + " MB"
}

// roundDown rounds n down to two significant digits (23,456 -> 23,000).
func roundDown(n int) int {
	unit := 1
	for n/unit >= 100 {
		unit *= 10
	}
	return n / unit * unit
}
