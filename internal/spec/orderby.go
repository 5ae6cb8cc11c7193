package spec

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fleet-rollout/fleet/internal/monitors"
)

// OrderBy orders the clusters of a phase by a metric read from Datadog
// before they are cut into batches, e.g. the busiest first:
//
//	orderBy: {metric: cpu, direction: desc}
//
// or by their broker count from the inventory (OrderBrokers): a rolling
// restart takes time per broker, so the largest first starts the longest
// changes early and the phase ends sooner (longest job first):
//
//	orderBy: {metric: brokers}
//
// Given at the rollout level it applies to every phase; a phase's own
// orderBy replaces it for that phase. Clusters without a value (the metric
// could not be read, or their product does not report it, like partitions
// outside Kafka) come last; ties and the clusters without a value keep the
// planner's usual order (environment, cloud, region, spread by customer).
type OrderBy struct {
	// Metric names one of monitors.MetricNames() (cpu, throughput,
	// storage, partitions), read from Datadog, or "brokers", the
	// inventory's broker count.
	Metric string `json:"metric" yaml:"metric"`
	// Direction is "desc" (default: highest first) or "asc".
	Direction string `json:"direction,omitempty" yaml:"direction,omitempty"`
}

// OrderBrokers orders by the inventory's broker count, not a Datadog metric.
const OrderBrokers = "brokers"

// Order directions.
const (
	OrderDesc = "desc"
	OrderAsc  = "asc"
)

// Descending reports whether the highest values come first (the default).
func (o OrderBy) Descending() bool { return o.Direction != OrderAsc }

// String is "cpu desc": the metric and the effective direction.
func (o OrderBy) String() string {
	dir := OrderDesc
	if !o.Descending() {
		dir = OrderAsc
	}
	return o.Metric + " " + dir
}

func (o OrderBy) validate() (field, msg string) {
	names := append(monitors.MetricNames(), OrderBrokers)
	slices.Sort(names)
	known := strings.Join(names, ", ")
	if strings.TrimSpace(o.Metric) == "" {
		return "metric", "required: the metric to order by (" + known + ")"
	}
	if _, ok := monitors.MetricByName(o.Metric); !ok && o.Metric != OrderBrokers {
		return "metric", fmt.Sprintf("unknown metric %q (known: %s)", o.Metric, known)
	}
	switch o.Direction {
	case "", OrderAsc, OrderDesc:
	default:
		return "direction", fmt.Sprintf("must be asc or desc, got %q", o.Direction)
	}
	return "", ""
}

// PhaseOrderBy returns the ordering that applies to phase p of this
// rollout: the phase's own orderBy, else the rollout's, else nil (the
// planner's usual order).
func (r *Rollout) PhaseOrderBy(p Phase) *OrderBy {
	if p.OrderBy != nil {
		return p.OrderBy
	}
	return r.OrderBy
}

// OrderMetrics lists, sorted and without repeats, the Datadog metrics the
// effective phases (EffectivePhases) order their clusters by: what must be
// read from Datadog before planning. Empty when no phase is ordered by a
// Datadog metric (brokers come from the inventory).
func (r *Rollout) OrderMetrics() []string {
	phases, _ := r.Strategy.EffectivePhases()
	seen := map[string]bool{}
	var out []string
	for _, p := range phases {
		if o := r.PhaseOrderBy(p); o != nil && !seen[o.Metric] && o.Metric != OrderBrokers {
			seen[o.Metric] = true
			out = append(out, o.Metric)
		}
	}
	slices.Sort(out)
	return out
}
