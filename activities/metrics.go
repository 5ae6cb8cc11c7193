package activities

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"

	"github.com/fleet-rollout/fleet/internal/monitors"
)

// metricsWindow is how far back ClusterMetrics reads: enough for a few
// points of every series, the last full one of which is the value.
const metricsWindow = 15 * time.Minute

// metricsAPI is the Metrics API on the same client (configuration, HTTP
// client, retry policy) as the monitors reader.
func (d *Datadog) metricsAPI() *datadogV1.MetricsApi {
	return datadogV1.NewMetricsApi(d.api.Client)
}

// ClusterMetrics reads an ordering metric (monitors.MetricNames: cpu,
// throughput, storage, partitions) for clusters from Datadog, with one
// grouped query per product (monitors.Metric.Query, "... by {cluster}")
// over the last 15 minutes, and returns each cluster's latest value: the
// last non-null point of its series.
//
// product names the clusters' product; "" queries every product that
// reports the metric. ids restricts the answer to those clusters; empty
// means every cluster Datadog returns a series for. A cluster without a
// series, or whose series has no non-null point, is absent from the map,
// as are all clusters of a product that does not report the metric
// (partitions outside Kafka). An unknown metric, a request Datadog refuses
// or cannot answer, or an answer with an error status is an error.
func (d *Datadog) ClusterMetrics(ctx context.Context, metric string, product string, ids []string) (map[string]float64, error) {
	m, ok := monitors.MetricByName(metric)
	if !ok {
		return nil, fmt.Errorf("cluster metrics: unknown metric %q (known: %s)", metric, strings.Join(monitors.MetricNames(), ", "))
	}
	products := m.Products()
	if product != "" {
		products = []string{product}
	}
	var want map[string]bool
	if len(ids) > 0 {
		want = make(map[string]bool, len(ids))
		for _, id := range ids {
			want[id] = true
		}
	}
	api := d.metricsAPI()
	to := time.Now().Unix()
	from := to - int64(metricsWindow/time.Second)
	out := map[string]float64{}
	for _, p := range products {
		q := m.Query(p)
		if q == "" {
			continue // the product does not report the metric: no series
		}
		dctx, cancel := d.request(ctx)
		resp, httpResp, err := api.QueryMetrics(dctx, from, to, q)
		cancel()
		if err != nil {
			code := 0
			if httpResp != nil {
				code = httpResp.StatusCode
			}
			return nil, fmt.Errorf("cluster metrics: query %s (HTTP %d): %w", q, code, err)
		}
		if resp.GetStatus() == "error" || resp.GetError() != "" {
			return nil, fmt.Errorf("cluster metrics: query %s: Datadog answered with an error: %s", q, resp.GetError())
		}
		for _, s := range resp.Series {
			id, ok := seriesCluster(s)
			if !ok || (want != nil && !want[id]) {
				continue
			}
			if v, ok := lastPoint(s); ok {
				out[id] = v
			}
		}
	}
	return out, nil
}

// seriesCluster is the cluster a grouped series is about: its
// "cluster:<id>" tag, else the one in its scope ("cluster:<id>" or, as
// Datadog writes it with filters, "cluster:<id>,product:kafka").
func seriesCluster(s datadogV1.MetricsQueryMetadata) (string, bool) {
	prefix := monitors.GroupBy + ":"
	for _, t := range s.TagSet {
		if id, ok := strings.CutPrefix(t, prefix); ok && id != "" {
			return id, true
		}
	}
	for _, t := range strings.Split(s.GetScope(), ",") {
		if id, ok := strings.CutPrefix(strings.TrimSpace(t), prefix); ok && id != "" {
			return id, true
		}
	}
	return "", false
}

// lastPoint is the value of the series' last point that has one (not null,
// not NaN).
func lastPoint(s datadogV1.MetricsQueryMetadata) (float64, bool) {
	for i := len(s.Pointlist) - 1; i >= 0; i-- {
		p := s.Pointlist[i]
		if len(p) < 2 || p[1] == nil || math.IsNaN(*p[1]) {
			continue
		}
		return *p[1], true
	}
	return 0, false
}
