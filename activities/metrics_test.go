package activities

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/fleet-rollout/fleet/internal/ddsim"
	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/monitors"
	"github.com/fleet-rollout/fleet/internal/sim"
)

const (
	testAPIKey = "metrics-api-key"
	testAppKey = "metrics-app-key"
)

// simDatadog is a real Simulator behind the Datadog-compatible endpoint,
// and a Datadog reader pointed at it. No Kafka: metrics need none.
func simDatadog(t *testing.T, n int) (*sim.Simulator, *ddsim.Server, *Datadog, []fleet.Cluster) {
	t.Helper()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	clusters := sim.GenerateFleet(n, 3)
	s, err := sim.New(sim.Config{Clusters: clusters}, log.Named("sim"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	srv := ddsim.New(monitors.Default(), s, ddsim.Options{APIKey: testAPIKey, AppKey: testAppKey, Log: log.Named("ddsim")})
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	d, err := NewDatadog(DatadogConfig{APIKey: testAPIKey, AppKey: testAppKey, URL: hs.URL})
	require.NoError(t, err)
	return s, srv, d, clusters
}

func idsOf(clusters []fleet.Cluster, product string) []string {
	var out []string
	for _, c := range clusters {
		if product == "" || c.Product == product {
			out = append(out, c.ID)
		}
	}
	return out
}

func TestClusterMetricsFromSimulator(t *testing.T) {
	s, _, d, clusters := simDatadog(t, 300)
	ctx := context.Background()
	kafka := idsOf(clusters, fleet.ProductKafka)
	require.Greater(t, len(kafka), 20)

	expect := func(metric string, ids []string) map[string]float64 {
		out := map[string]float64{}
		for _, id := range ids {
			if v, ok := s.Metric(id, metric); ok {
				out[id] = v
			}
		}
		return out
	}

	tests := []struct {
		name, metric, product string
		ids                   []string
		want                  []string // the clusters expected in the answer
	}{
		{"kafka cpu, every kafka cluster", monitors.MetricCPU, fleet.ProductKafka, kafka, kafka},
		{"a subset", monitors.MetricThroughput, fleet.ProductKafka, kafka[:5], kafka[:5]},
		{"ids not in Datadog are absent", monitors.MetricStorage, fleet.ProductKafka,
			append([]string{"lkc-99999"}, kafka[:3]...), kafka[:3]},
		{"no ids: every cluster of the product", monitors.MetricPartitions, fleet.ProductKafka, nil, kafka},
		{"every product", monitors.MetricCPU, "", idsOf(clusters, ""), idsOf(clusters, "")},
		{"partitions: kafka only", monitors.MetricPartitions, "", idsOf(clusters, ""), kafka},
		{"a product without the metric", monitors.MetricPartitions, fleet.ProductConnect,
			idsOf(clusters, fleet.ProductConnect), nil},
		{"ids of another product than asked", monitors.MetricCPU, fleet.ProductKsqlDB, kafka[:4], nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.ClusterMetrics(ctx, tt.metric, tt.product, tt.ids)
			require.NoError(t, err)
			require.NotNil(t, got)
			assert.Equal(t, expect(tt.metric, tt.want), got)
		})
	}
}

func TestClusterMetricsErrors(t *testing.T) {
	_, srv, d, clusters := simDatadog(t, 50)
	ctx := context.Background()
	ids := idsOf(clusters, fleet.ProductKafka)

	_, err := d.ClusterMetrics(ctx, "latency", fleet.ProductKafka, ids)
	require.ErrorContains(t, err, `unknown metric "latency"`)

	srv.SetFailure(http.StatusInternalServerError, 1)
	_, err = d.ClusterMetrics(ctx, monitors.MetricCPU, fleet.ProductKafka, ids)
	require.ErrorContains(t, err, "HTTP 500")

	srv.SetFailure(http.StatusTooManyRequests, 1)
	_, err = d.ClusterMetrics(ctx, monitors.MetricCPU, "", ids)
	require.ErrorContains(t, err, "HTTP 429")

	got, err := d.ClusterMetrics(ctx, monitors.MetricCPU, fleet.ProductKafka, ids)
	require.NoError(t, err, "failures were for one request each")
	assert.Len(t, got, len(ids))

	wrong, err := NewDatadog(DatadogConfig{APIKey: testAPIKey, AppKey: "wrong", URL: d.url})
	require.NoError(t, err)
	_, err = wrong.ClusterMetrics(ctx, monitors.MetricCPU, fleet.ProductKafka, ids)
	require.ErrorContains(t, err, "HTTP 403")
}

// TestClusterMetricsSeries checks how series become values against answers
// Datadog could give: the last non-null point wins, a series without one
// is absent, the cluster comes from tag_set or else from the scope.
func TestClusterMetricsSeries(t *testing.T) {
	body := `{"status":"ok","res_type":"time_series","query":"q","from_date":1000,"to_date":2000,"group_by":["cluster"],"series":[
	 {"scope":"cluster:a","tag_set":["cluster:a"],"pointlist":[[1000,1],[1020,2],[1040,null]]},
	 {"scope":"cluster:b,product:kafka","pointlist":[[1000,5],[1020,null],[1040,null]]},
	 {"scope":"cluster:c","tag_set":["cluster:c"],"pointlist":[[1000,null],[1020,null]]},
	 {"scope":"cluster:d","tag_set":["cluster:d"],"pointlist":[]},
	 {"scope":"cluster:e","tag_set":["cluster:e"],"pointlist":[[1000,7]]},
	 {"scope":"product:kafka","tag_set":[],"pointlist":[[1000,9]]}
	],"message":""}`
	var gotQuery string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotQuery = r.URL.Query().Get("query")
		assert.Equal(t, "/api/v1/query", r.URL.Path)
		assert.Equal(t, testAPIKey, r.Header.Get("DD-API-KEY"))
		assert.Equal(t, testAppKey, r.Header.Get("DD-APPLICATION-KEY"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(hs.Close)
	d, err := NewDatadog(DatadogConfig{APIKey: testAPIKey, AppKey: testAppKey, URL: hs.URL})
	require.NoError(t, err)

	got, err := d.ClusterMetrics(context.Background(), monitors.MetricStorage, fleet.ProductKafka, nil)
	require.NoError(t, err)
	assert.Equal(t, "max:kafka.broker.storage.used.percent{product:kafka} by {cluster}", gotQuery)
	assert.Equal(t, map[string]float64{"a": 2, "b": 5, "e": 7}, got)

	got, err = d.ClusterMetrics(context.Background(), monitors.MetricStorage, fleet.ProductKafka, []string{"b", "c", "z"})
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{"b": 5}, got)

	body = `{"status":"error","error":"query timed out","series":[]}`
	_, err = d.ClusterMetrics(context.Background(), monitors.MetricStorage, fleet.ProductKafka, nil)
	require.ErrorContains(t, err, "query timed out")
}
