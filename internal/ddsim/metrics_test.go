package ddsim

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadog"
	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/monitors"
	"github.com/fleet-rollout/fleet/internal/sim"
)

// metricsEnv is newEnv with a MetricsApi and some cpu values.
func metricsEnv(t *testing.T, opts Options) (*env, *datadogV1.MetricsApi) {
	e := newEnv(t, opts)
	e.source.setMetric("lkc-00001", monitors.MetricCPU, 40)
	e.source.setMetric("lkc-00002", monitors.MetricCPU, 75.5)
	e.source.setMetric("ksql-00003", monitors.MetricCPU, 12)
	e.source.setMetric("lkc-00002", monitors.MetricPartitions, 1200)
	cfg := datadog.NewConfiguration()
	cfg.RetryConfiguration.EnableRetry = false
	return e, datadogV1.NewMetricsApi(datadog.NewAPIClient(cfg))
}

// requireCleanMetrics checks the client decoded every field into its model.
func requireCleanMetrics(t *testing.T, r datadogV1.MetricsQueryResponse) {
	t.Helper()
	require.Nil(t, r.UnparsedObject)
	require.Empty(t, r.AdditionalProperties)
	assert.Equal(t, "ok", r.GetStatus())
	assert.Equal(t, "time_series", r.GetResType())
	for _, s := range r.Series {
		require.Nil(t, s.UnparsedObject, s.GetScope())
		require.Empty(t, s.AdditionalProperties, s.GetScope())
		assert.Equal(t, int64(len(s.Pointlist)), s.GetLength())
		for _, u := range s.Unit {
			require.Nil(t, u.UnparsedObject)
			require.Empty(t, u.AdditionalProperties)
		}
		for _, p := range s.Pointlist {
			require.Len(t, p, 2)
			require.NotNil(t, p[0], "every point has a timestamp")
		}
	}
}

// lastValue is the last non-null point of a series.
func lastValue(s datadogV1.MetricsQueryMetadata) (float64, bool) {
	for i := len(s.Pointlist) - 1; i >= 0; i-- {
		if p := s.Pointlist[i]; len(p) == 2 && p[1] != nil {
			return *p[1], true
		}
	}
	return 0, false
}

func TestQueryMetricsByCluster(t *testing.T) {
	e, api := metricsEnv(t, Options{})
	ctx := e.ctx(t, apiKey, appKey)
	to := time.Now().Unix()
	from := to - 600

	q := "avg:kafka.broker.cpu.percent{product:kafka} by {cluster}"
	got, resp, err := api.QueryMetrics(ctx, from, to, q)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	requireCleanMetrics(t, got)
	assert.Equal(t, q, got.GetQuery())
	assert.Equal(t, from*1000, got.GetFromDate())
	assert.Equal(t, to*1000, got.GetToDate())
	assert.Equal(t, []string{"cluster"}, got.GroupBy)
	require.Len(t, got.Series, 2, "one series per kafka cluster, not ksqldb's")
	want := map[string]float64{"cluster:lkc-00001": 40, "cluster:lkc-00002": 75.5}
	for _, s := range got.Series {
		scope := s.GetScope()
		require.Contains(t, want, scope)
		assert.Equal(t, []string{scope}, s.TagSet)
		assert.Equal(t, "kafka.broker.cpu.percent", s.GetMetric())
		assert.Equal(t, "avg", s.GetAggr())
		v, ok := lastValue(s)
		require.True(t, ok)
		assert.Equal(t, want[scope], v, "the last non-null point is the value")
		require.Greater(t, len(s.Pointlist), 2)
		assert.Nil(t, s.Pointlist[len(s.Pointlist)-1][1], "the current bucket is still filling")
		for _, p := range s.Pointlist[:len(s.Pointlist)-1] {
			require.NotNil(t, p[1])
			assert.InEpsilon(t, want[scope], *p[1], 0.031)
			assert.GreaterOrEqual(t, int64(*p[0]), from*1000)
			assert.LessOrEqual(t, int64(*p[0]), to*1000)
		}
		require.Len(t, s.Unit, 1)
		assert.Equal(t, "percent", s.Unit[0].GetName())
	}
	// Same answer twice: the series are deterministic.
	again, _, err := api.QueryMetrics(ctx, from, to, q)
	require.NoError(t, err)
	assert.Equal(t, got.Series, again.Series)
}

func TestQueryMetricsShapes(t *testing.T) {
	e, api := metricsEnv(t, Options{})
	ctx := e.ctx(t, apiKey, appKey)
	to := time.Now().Unix()
	from := to - 3600
	tests := []struct {
		name   string
		query  string
		scopes []string
		last   []float64
	}{
		{"one cluster", "avg:kafka.broker.cpu.percent{cluster:lkc-00002}",
			[]string{"cluster:lkc-00002"}, []float64{75.5}},
		{"one cluster, grouped", "avg:kafka.broker.cpu.percent{cluster:lkc-00002} by {cluster}",
			[]string{"cluster:lkc-00002"}, []float64{75.5}},
		{"product aggregated: avg", "avg:kafka.broker.cpu.percent{product:kafka}",
			[]string{"product:kafka"}, []float64{57.75}},
		{"product aggregated: max", "max:kafka.broker.cpu.percent{product:kafka}",
			[]string{"product:kafka"}, []float64{75.5}},
		{"everything aggregated: sum", "sum:kafka.broker.cpu.percent{*}",
			[]string{"*"}, []float64{115.5}},
		{"two filters", "avg:kafka.broker.cpu.percent{product:kafka,cluster:lkc-00001} by {cluster}",
			[]string{"cluster:lkc-00001"}, []float64{40}},
		{"another product's metric", "avg:ksqldb.server.cpu.percent{*} by {cluster}",
			[]string{"cluster:ksql-00003"}, []float64{12}},
		{"clusters without a value have no series", "sum:kafka.broker.partitions.count{product:kafka} by {cluster}",
			[]string{"cluster:lkc-00002"}, []float64{1200}},
		{"a cluster of another product", "avg:kafka.broker.cpu.percent{cluster:ksql-00003}", nil, nil},
		{"unknown cluster", "avg:kafka.broker.cpu.percent{cluster:lkc-09999} by {cluster}", nil, nil},
		{"conflicting filters", "avg:kafka.broker.cpu.percent{cluster:lkc-00001,cluster:lkc-00002}", nil, nil},
		{"unknown metric", "avg:system.cpu.idle{*} by {cluster}", nil, nil},
		{"other tag", "avg:kafka.broker.cpu.percent{env:prod} by {cluster}", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := api.QueryMetrics(ctx, from, to, tt.query)
			require.NoError(t, err)
			requireCleanMetrics(t, got)
			var scopes []string
			var last []float64
			for _, s := range got.Series {
				scopes = append(scopes, s.GetScope())
				v, ok := lastValue(s)
				require.True(t, ok)
				last = append(last, v)
			}
			assert.Equal(t, tt.scopes, scopes)
			if tt.last != nil {
				require.Len(t, last, len(tt.last))
				for i := range last {
					assert.InDelta(t, tt.last[i], last[i], 1e-9)
				}
			}
		})
	}
}

func TestQueryMetricsBadRequests(t *testing.T) {
	e, api := metricsEnv(t, Options{})
	ctx := e.ctx(t, apiKey, appKey)
	now := time.Now().Unix()
	tests := []struct {
		name     string
		from, to int64
		query    string
		msg      string
	}{
		{"function", now - 60, now, "top(avg:kafka.broker.cpu.percent{*} by {cluster}, 5, 'mean', 'desc')", "Error parsing query"},
		{"arithmetic", now - 60, now, "avg:a.b{*} / avg:c.d{*}", "Error parsing query"},
		{"no aggregator", now - 60, now, "kafka.broker.cpu.percent{*}", "Error parsing query"},
		{"grouped by another tag", now - 60, now, "avg:kafka.broker.cpu.percent{*} by {host}", "groups by {cluster} only"},
		{"bad filter", now - 60, now, "avg:kafka.broker.cpu.percent{prod}", "is not key:value"},
		{"empty query", now - 60, now, " ", "missing query"},
		{"to before from", now, now - 60, "avg:kafka.broker.cpu.percent{*}", "must be before to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, resp, err := api.QueryMetrics(ctx, tt.from, tt.to, tt.query)
			require.Error(t, err)
			require.NotNil(t, resp)
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
			var oe datadog.GenericOpenAPIError
			require.ErrorAs(t, err, &oe)
			model, ok := oe.Model().(datadogV1.APIErrorResponse)
			require.True(t, ok, string(oe.Body()))
			require.Len(t, model.Errors, 1)
			assert.Contains(t, model.Errors[0], tt.msg)
		})
	}
	for _, path := range []string{"/api/v1/query?to=10&query=avg:a.b{*}", "/api/v1/query?from=x&to=10&query=avg:a.b{*}"} {
		req, err := http.NewRequest(http.MethodGet, e.url+path, nil)
		require.NoError(t, err)
		req.Header.Set("DD-API-KEY", apiKey)
		req.Header.Set("DD-APPLICATION-KEY", appKey)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, path)
	}
}

func TestQueryMetricsAuthAndFailures(t *testing.T) {
	e, api := metricsEnv(t, Options{})
	now := time.Now().Unix()
	q := "avg:kafka.broker.cpu.percent{product:kafka} by {cluster}"

	for _, keys := range [][2]string{{"nope", appKey}, {apiKey, "nope"}, {"", appKey}, {apiKey, ""}} {
		_, resp, err := api.QueryMetrics(e.ctx(t, keys[0], keys[1]), now-60, now, q)
		require.Error(t, err)
		require.NotNil(t, resp)
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
		assertErrors(t, err, "Forbidden")
	}

	ctx := e.ctx(t, apiKey, appKey)
	e.srv.SetFailure(http.StatusInternalServerError, 1)
	_, resp, err := api.QueryMetrics(ctx, now-60, now, q)
	require.Error(t, err)
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)

	e.srv.SetFailure(http.StatusTooManyRequests, -1)
	_, resp, err = api.QueryMetrics(ctx, now-60, now, q)
	require.Error(t, err)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Equal(t, "0", resp.Header.Get("X-RateLimit-Remaining"))
	e.srv.ClearFailure()

	got, resp, err := api.QueryMetrics(ctx, now-60, now, q)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Len(t, got.Series, 2)
}

func TestBuckets(t *testing.T) {
	tests := []struct {
		from, to       int64
		n              int
		interval       int64
		first, lastOne int64
	}{
		{1000, 1600, 31, 20, 1000, 1600},
		{1005, 1600, 30, 20, 1020, 1600},
		{1000, 1010, 1, 20, 1000, 1000},
		{1001, 1010, 1, 20, 1001, 1001}, // no aligned point: one at from
		{0, 86400, 136, 640, 0, 86400},
	}
	for _, tt := range tests {
		times, interval := buckets(tt.from, tt.to)
		assert.Len(t, times, tt.n, "%d-%d", tt.from, tt.to)
		assert.LessOrEqual(t, len(times), maxPoints)
		assert.Equal(t, tt.interval, interval)
		assert.Equal(t, tt.first, times[0])
		assert.Equal(t, tt.lastOne, times[len(times)-1])
	}
}

// TestSimulatorMetricsInDatadog reads a real Simulator's metrics through
// the official client: one grouped query per product gives every cluster of
// the product its Simulator.Metric value. No Kafka is needed.
func TestSimulatorMetricsInDatadog(t *testing.T) {
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	clusters := sim.GenerateFleet(200, 5)
	s, err := sim.New(sim.Config{Clusters: clusters}, log)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	var _ Source = s

	hs := httptest.NewServer(New(monitors.Default(), s, Options{APIKey: apiKey, AppKey: appKey, Log: log}).Handler())
	t.Cleanup(hs.Close)
	e := &env{url: hs.URL}
	ctx := e.ctx(t, apiKey, appKey)
	api := datadogV1.NewMetricsApi(datadog.NewAPIClient(datadog.NewConfiguration()))
	now := time.Now().Unix()

	for _, m := range monitors.Metrics() {
		for _, product := range fleet.Products {
			q := m.Query(product)
			want := map[string]float64{}
			for _, c := range clusters {
				if c.Product != product {
					continue
				}
				if v, ok := s.Metric(c.ID, m.Name); ok {
					want[monitors.GroupName(c.ID)] = v
				}
			}
			if q == "" {
				assert.Empty(t, want, "%s/%s: values without a query", m.Name, product)
				continue
			}
			got, _, err := api.QueryMetrics(ctx, now-900, now, q)
			require.NoError(t, err, q)
			requireCleanMetrics(t, got)
			have := map[string]float64{}
			for _, series := range got.Series {
				v, ok := lastValue(series)
				require.True(t, ok)
				have[series.GetScope()] = v
			}
			require.NotEmpty(t, want, q)
			assert.Equal(t, want, have, q)
		}
	}
}
