package ddsim

import (
	"fmt"
	"hash/fnv"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/fleet-rollout/fleet/internal/monitors"
)

// The metrics query API (GET /api/v1/query?from=&to=&query=), as
// MetricsApi.QueryMetrics calls it. from and to are POSIX seconds. The query
// is one of
//
//	<aggr>:<metric>{<filters>}                one series over the matches
//	<aggr>:<metric>{<filters>} by {cluster}   one series per cluster
//
// where aggr is avg, sum, min or max, metric is a Datadog metric name of
// monitors.Metrics() (an unknown one matches nothing, as in Datadog), and
// filters is * or a comma list of tags that must all match: cluster:<id>,
// product:<product> (any other tag matches nothing). A series' scope is
// "cluster:<id>" per cluster, or the filters for the single series.
//
// Each series has a point per interval from from to to: the last full one
// carries the Source's value, the ones before wobble around it by a few
// percent, and the current (last) bucket, still filling, is null, as
// Datadog's often is. Anything else (functions, arithmetic, rollups,
// grouping by another tag) is a 400 "Error parsing query".

var queryRE = regexp.MustCompile(`^\s*(avg|sum|min|max):([A-Za-z][A-Za-z0-9_.]*)\s*\{([^{}]*)\}\s*(by\s*\{([^{}]*)\})?\s*$`)

// maxPoints bounds a series' length, like Datadog's rollup does.
const maxPoints = 150

type metricsQuery struct {
	aggr, metric string
	filters      []string // "key:value"
	byCluster    bool
}

func parseMetricsQuery(q string) (metricsQuery, error) {
	m := queryRE.FindStringSubmatch(q)
	if m == nil {
		return metricsQuery{}, fmt.Errorf("Error parsing query: %q: ddsim supports <avg|sum|min|max>:<metric>{<tags>} [by {cluster}]", q)
	}
	mq := metricsQuery{aggr: m[1], metric: m[2]}
	for _, f := range splitList(m[3]) {
		if f == "*" {
			continue
		}
		if k, v, ok := strings.Cut(f, ":"); !ok || k == "" || v == "" {
			return metricsQuery{}, fmt.Errorf("Error parsing query: %q: tag filter %q is not key:value", q, f)
		}
		mq.filters = append(mq.filters, f)
	}
	switch by := splitList(m[5]); {
	case m[4] == "": // not grouped
	case len(by) == 1 && by[0] == monitors.GroupBy:
		mq.byCluster = true
	default:
		return metricsQuery{}, fmt.Errorf("Error parsing query: %q: ddsim groups by {%s} only", q, monitors.GroupBy)
	}
	return mq, nil
}

// scope is the filters as Datadog spells a series' scope.
func (mq metricsQuery) scope() string {
	if len(mq.filters) == 0 {
		return "*"
	}
	return strings.Join(mq.filters, ",")
}

// matches reports whether a cluster's tags satisfy every filter.
func (mq metricsQuery) matches(clusterID, product string) bool {
	for _, f := range mq.filters {
		if f != monitors.GroupName(clusterID) && f != monitors.ProductTag(product) {
			return false
		}
	}
	return true
}

// clusterFilter lists the cluster IDs the filters name (nil: any).
func (mq metricsQuery) clusterFilter() []string {
	var ids []string
	for _, f := range mq.filters {
		if k, v, _ := strings.Cut(f, ":"); k == monitors.GroupBy {
			ids = append(ids, v)
		}
	}
	return ids
}

func (s *Server) queryMetrics(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, err := strconv.ParseInt(q.Get("from"), 10, 64)
	if err != nil || from < 0 {
		writeErrors(w, http.StatusBadRequest, fmt.Sprintf("invalid from %q: want POSIX seconds", q.Get("from")))
		return
	}
	to, err := strconv.ParseInt(q.Get("to"), 10, 64)
	if err != nil || to < 0 {
		writeErrors(w, http.StatusBadRequest, fmt.Sprintf("invalid to %q: want POSIX seconds", q.Get("to")))
		return
	}
	if to <= from {
		writeErrors(w, http.StatusBadRequest, fmt.Sprintf("invalid time range: from (%d) must be before to (%d)", from, to))
		return
	}
	raw := q.Get("query")
	if strings.TrimSpace(raw) == "" {
		writeErrors(w, http.StatusBadRequest, "missing query")
		return
	}
	mq, err := parseMetricsQuery(raw)
	if err != nil {
		writeErrors(w, http.StatusBadRequest, err.Error())
		return
	}

	times, interval := buckets(from, to)
	type clusterSeries struct {
		id     string
		points []*float64
	}
	var found []clusterSeries
	var unit []unitJSON
	if sources := monitors.LookupDatadogMetric(mq.metric); len(sources) > 0 {
		unit = unitFor(sources[0].Metric)
		ids := mq.clusterFilter()
		if ids == nil {
			ids = s.src.ClusterIDs()
		} else {
			slices.Sort(ids)
			ids = slices.Compact(ids)
		}
		for _, id := range ids {
			product, ok := s.src.ClusterProduct(id)
			if !ok || !mq.matches(id, product) {
				continue
			}
			i := slices.IndexFunc(sources, func(src monitors.MetricSource) bool { return src.Product == product })
			if i < 0 {
				continue
			}
			v, ok := s.src.Metric(id, sources[i].Metric)
			if !ok {
				continue
			}
			found = append(found, clusterSeries{id, pointValues(id, mq.metric, v, len(times))})
		}
	}

	out := metricsResponseJSON{
		Status:   "ok",
		ResType:  "time_series",
		Query:    raw,
		FromDate: from * 1000,
		ToDate:   to * 1000,
		GroupBy:  []string{},
		Series:   []seriesJSON{},
		Message:  "",
	}
	series := func(scope string, tagSet []string, points []*float64) seriesJSON {
		pl := make([][]*float64, len(times))
		for i, t := range times {
			ts := float64(t * 1000)
			pl[i] = []*float64{&ts, points[i]}
		}
		return seriesJSON{
			Aggr: mq.aggr, DisplayName: mq.metric, Metric: mq.metric,
			Expression: mq.metric + "{" + scope + "}",
			Scope:      scope, TagSet: tagSet,
			Interval: interval, Length: int64(len(times)),
			Start: times[0] * 1000, End: (times[len(times)-1]+interval)*1000 - 1,
			Pointlist: pl, QueryIndex: 0, Unit: unit,
		}
	}
	if mq.byCluster {
		out.GroupBy = []string{monitors.GroupBy}
		for _, cs := range found {
			name := monitors.GroupName(cs.id)
			out.Series = append(out.Series, series(name, []string{name}, cs.points))
		}
	} else if len(found) > 0 {
		agg := make([]*float64, len(times))
		for i := range times {
			var vals []float64
			for _, cs := range found {
				if p := cs.points[i]; p != nil {
					vals = append(vals, *p)
				}
			}
			if len(vals) > 0 {
				v := aggregate(mq.aggr, vals)
				agg[i] = &v
			}
		}
		out.Series = append(out.Series, series(mq.scope(), []string{}, agg))
	}
	writeJSON(w, http.StatusOK, out)
}

// buckets returns the point timestamps (seconds) from from to to and the
// interval: at least 20 s, doubled until there are at most maxPoints.
func buckets(from, to int64) ([]int64, int64) {
	interval := int64(20)
	for (to-from)/interval+1 > maxPoints {
		interval *= 2
	}
	var times []int64
	for t := (from + interval - 1) / interval * interval; t <= to; t += interval {
		times = append(times, t)
	}
	if len(times) == 0 {
		times = []int64{from}
	}
	return times, interval
}

// pointValues is one cluster's points: a few percent of deterministic
// wobble around v, v itself at the last full bucket, and null for the
// current bucket (when there is more than one).
func pointValues(clusterID, metric string, v float64, n int) []*float64 {
	out := make([]*float64, n)
	last := n - 1
	if n > 1 {
		last = n - 2 // out[n-1] stays null: the bucket is still filling
	}
	for i := 0; i < last; i++ {
		h := fnv.New64a()
		_, _ = fmt.Fprintf(h, "%s\x00%s\x00%d", clusterID, metric, i)
		wobble := 1 + (float64(h.Sum64()%6001)/100000 - 0.03) // [0.97, 1.03]
		x := v * wobble
		out[i] = &x
	}
	x := v
	out[last] = &x
	return out
}

func aggregate(aggr string, vals []float64) float64 {
	switch aggr {
	case "sum":
		var t float64
		for _, v := range vals {
			t += v
		}
		return t
	case "min":
		return slices.Min(vals)
	case "max":
		return slices.Max(vals)
	default:
		var t float64
		for _, v := range vals {
			t += v
		}
		return t / float64(len(vals))
	}
}

// unitFor describes an ordering metric's unit as Datadog does (nil when
// Datadog has no such unit, like partitions).
func unitFor(metric string) []unitJSON {
	m, ok := monitors.MetricByName(metric)
	if !ok {
		return nil
	}
	switch m.Unit {
	case "percent":
		return []unitJSON{{Family: "percentage", Name: "percent", Plural: "percent", ScaleFactor: 1, ShortName: "%"}}
	case "MB/s":
		return []unitJSON{
			{Family: "bytes", Name: "megabyte", Plural: "megabytes", ScaleFactor: 1e6, ShortName: "MB"},
			{Family: "time", Name: "second", Plural: "seconds", ScaleFactor: 1, ShortName: "s"},
		}
	}
	return nil
}

// The JSON shapes below use only fields of datadog-api-client-go's
// MetricsQueryResponse model, so the client decodes them with no unparsed
// or additional fields.

type metricsResponseJSON struct {
	Status   string       `json:"status"`
	ResType  string       `json:"res_type"`
	Query    string       `json:"query"`
	FromDate int64        `json:"from_date"`
	ToDate   int64        `json:"to_date"`
	GroupBy  []string     `json:"group_by"`
	Series   []seriesJSON `json:"series"`
	Message  string       `json:"message"`
}

type seriesJSON struct {
	Aggr        string       `json:"aggr"`
	DisplayName string       `json:"display_name"`
	End         int64        `json:"end"`
	Expression  string       `json:"expression"`
	Interval    int64        `json:"interval"`
	Length      int64        `json:"length"`
	Metric      string       `json:"metric"`
	Pointlist   [][]*float64 `json:"pointlist"`
	QueryIndex  int64        `json:"query_index"`
	Scope       string       `json:"scope"`
	Start       int64        `json:"start"`
	TagSet      []string     `json:"tag_set"`
	Unit        []unitJSON   `json:"unit,omitempty"`
}

type unitJSON struct {
	Family      string  `json:"family"`
	Name        string  `json:"name"`
	Plural      string  `json:"plural"`
	ScaleFactor float64 `json:"scale_factor"`
	ShortName   string  `json:"short_name"`
}
