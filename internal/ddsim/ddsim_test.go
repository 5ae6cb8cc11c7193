package ddsim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
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
)

const (
	apiKey = "test-api-key"
	appKey = "test-app-key"
)

// fakeSource is a small in-memory fleet.
type fakeSource struct {
	mu       sync.Mutex
	products map[string]string
	status   map[[2]string]string
	metrics  map[[2]string]float64 // cluster, metric name -> value
}

func newFakeSource() *fakeSource {
	return &fakeSource{
		products: map[string]string{
			"lkc-00001":  fleet.ProductKafka,
			"lkc-00002":  fleet.ProductKafka,
			"ksql-00003": fleet.ProductKsqlDB,
		},
		status:  map[[2]string]string{},
		metrics: map[[2]string]float64{},
	}
}

func (f *fakeSource) Metric(clusterID, name string) (float64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.metrics[[2]string{clusterID, name}]
	return v, ok
}

func (f *fakeSource) setMetric(clusterID, name string, v float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.metrics[[2]string{clusterID, name}] = v
}

func (f *fakeSource) ClusterProduct(id string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.products[id]
	return p, ok
}

func (f *fakeSource) MonitorStatus(clusterID, monitorName string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.statusLocked(clusterID, monitorName)
}

// statusLocked is MonitorStatus with f.mu held.
func (f *fakeSource) statusLocked(clusterID, monitorName string) string {
	p, ok := f.products[clusterID]
	m, known := monitors.ByName(monitorName)
	if !ok || !known || m.Product != p {
		return StatusNoData
	}
	if s, ok := f.status[[2]string{clusterID, monitorName}]; ok {
		return s
	}
	return StatusOK
}

func (f *fakeSource) ClusterIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for id := range f.products {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func (f *fakeSource) set(clusterID, monitorName, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status[[2]string{clusterID, monitorName}] = status
}

// env is a running server and an official client pointed at it.
type env struct {
	srv    *Server
	url    string
	api    *datadogV1.MonitorsApi
	auth   *datadogV1.AuthenticationApi
	source *fakeSource
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	src := newFakeSource()
	if opts.APIKey == "" && opts.AppKey == "" {
		opts.APIKey, opts.AppKey = apiKey, appKey
	}
	opts.Log = zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	s := New(monitors.Default(), src, opts)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	cfg := datadog.NewConfiguration()
	cfg.RetryConfiguration.EnableRetry = false
	cfg.HTTPClient = hs.Client()
	client := datadog.NewAPIClient(cfg)
	return &env{srv: s, url: hs.URL, api: datadogV1.NewMonitorsApi(client), auth: datadogV1.NewAuthenticationApi(client), source: src}
}

// ctx points the client at the test server, with the given keys.
func (e *env) ctx(t *testing.T, api, app string) context.Context {
	t.Helper()
	u, err := url.Parse(e.url)
	require.NoError(t, err)
	ctx := context.WithValue(t.Context(), datadog.ContextServerIndex, 1)
	ctx = context.WithValue(ctx, datadog.ContextServerVariables, map[string]string{"protocol": "http", "name": u.Host})
	return context.WithValue(ctx, datadog.ContextAPIKeys, map[string]datadog.APIKey{
		"apiKeyAuth": {Key: api},
		"appKeyAuth": {Key: app},
	})
}

func (e *env) list(t *testing.T, p *datadogV1.ListMonitorsOptionalParameters) []datadogV1.Monitor {
	t.Helper()
	got, resp, err := e.api.ListMonitors(e.ctx(t, apiKey, appKey), *p)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, m := range got {
		requireClean(t, m)
	}
	return got
}

// requireClean checks the client decoded every field into its model.
func requireClean(t *testing.T, m datadogV1.Monitor) {
	t.Helper()
	require.Nil(t, m.UnparsedObject, "monitor %d not parsed", m.GetId())
	require.Empty(t, m.AdditionalProperties, "monitor %d has unknown fields", m.GetId())
	require.Equal(t, datadogV1.MONITORTYPE_QUERY_ALERT, m.Type)
	require.True(t, m.GetOverallState().IsValid())
	require.NotNil(t, m.Options)
	require.Nil(t, m.Options.UnparsedObject)
	require.Empty(t, m.Options.AdditionalProperties)
	require.NotNil(t, m.Options.Thresholds)
	require.Nil(t, m.Options.Thresholds.UnparsedObject)
	require.Empty(t, m.Options.Thresholds.AdditionalProperties)
	require.NotNil(t, m.Creator)
	require.Nil(t, m.Creator.UnparsedObject)
	require.Empty(t, m.Creator.AdditionalProperties)
	require.NotNil(t, m.Created)
	require.NotNil(t, m.Modified)
	if m.State != nil {
		require.Nil(t, m.State.UnparsedObject)
		require.Empty(t, m.State.AdditionalProperties)
		for name, g := range m.State.Groups {
			require.Nil(t, g.UnparsedObject, name)
			require.Empty(t, g.AdditionalProperties, name)
			require.Equal(t, name, g.GetName())
		}
	}
}

func params() *datadogV1.ListMonitorsOptionalParameters {
	return datadogV1.NewListMonitorsOptionalParameters()
}

func names(ms []datadogV1.Monitor) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.GetName())
	}
	return out
}

func catalogNames(product string) []string {
	var out []string
	for _, m := range monitors.ForProduct(product) {
		out = append(out, m.Name)
	}
	return out
}

func TestListMonitorsScopedToCluster(t *testing.T) {
	e := newEnv(t, Options{})
	scoped := func() []datadogV1.Monitor {
		return e.list(t, params().
			WithTags("cluster:lkc-00001").
			WithMonitorTags("product:kafka,fleet:rollout-critical").
			WithGroupStates("all"))
	}

	got := scoped()
	require.Equal(t, catalogNames(fleet.ProductKafka), names(got))
	for _, m := range got {
		require.Len(t, m.State.Groups, 1, m.GetName())
		g := m.State.Groups["cluster:lkc-00001"]
		assert.Equal(t, datadogV1.MONITOROVERALLSTATES_OK, g.GetStatus())
		assert.Zero(t, g.GetLastTriggeredTs())
		assert.Equal(t, datadogV1.MONITOROVERALLSTATES_OK, m.GetOverallState())
		assert.Equal(t, []string{"product:kafka", monitors.TagRolloutCritical}, m.Tags)
		assert.True(t, m.GetMulti())
	}

	e.source.set("lkc-00001", "kafka-under-replicated-partitions", StatusAlert)
	got = scoped()
	for _, m := range got {
		g := m.State.Groups["cluster:lkc-00001"]
		if m.GetName() == "kafka-under-replicated-partitions" {
			assert.Equal(t, datadogV1.MONITOROVERALLSTATES_ALERT, g.GetStatus())
			assert.Equal(t, datadogV1.MONITOROVERALLSTATES_ALERT, m.GetOverallState())
			assert.Positive(t, g.GetLastTriggeredTs())
			assert.Equal(t, int64(1006), m.GetId())
			assert.Equal(t, 0.0, m.Options.Thresholds.GetCritical())
		} else {
			assert.Equal(t, datadogV1.MONITOROVERALLSTATES_OK, g.GetStatus(), m.GetName())
		}
	}

	// The other cluster's scope does not see the alert.
	other := e.list(t, params().WithTags("cluster:lkc-00002").WithGroupStates("all"))
	for _, m := range other {
		assert.Equal(t, datadogV1.MONITOROVERALLSTATES_OK, m.GetOverallState(), m.GetName())
		assert.Contains(t, m.State.Groups, "cluster:lkc-00002")
	}

	// Recovery is recorded.
	e.source.set("lkc-00001", "kafka-under-replicated-partitions", StatusOK)
	for _, m := range scoped() {
		if m.GetName() == "kafka-under-replicated-partitions" {
			g := m.State.Groups["cluster:lkc-00001"]
			assert.Equal(t, datadogV1.MONITOROVERALLSTATES_OK, g.GetStatus())
			assert.Positive(t, g.GetLastResolvedTs())
			assert.Positive(t, g.GetLastTriggeredTs())
		}
	}
}

func TestListMonitorsFilters(t *testing.T) {
	e := newEnv(t, Options{})
	e.source.set("lkc-00002", "kafka-cpu-high", StatusAlert)
	e.source.set("ksql-00003", "ksqldb-restarts", StatusWarn)
	all := monitors.Default()
	kafka, ksql := catalogNames(fleet.ProductKafka), catalogNames(fleet.ProductKsqlDB)

	tests := []struct {
		name      string
		p         *datadogV1.ListMonitorsOptionalParameters
		want      []string       // monitor names, in order (nil: skip)
		count     int            // when want is nil
		groups    map[string]int // monitor name -> group count (nil: state omitted)
		overall   map[string]datadogV1.MonitorOverallStates
		noStateOn bool
	}{
		{name: "everything, no group states", p: params(), count: len(all), noStateOn: true,
			overall: map[string]datadogV1.MonitorOverallStates{
				"kafka-cpu-high":     datadogV1.MONITOROVERALLSTATES_ALERT,
				"kafka-consumer-lag": datadogV1.MONITOROVERALLSTATES_OK,
				"ksqldb-restarts":    datadogV1.MONITOROVERALLSTATES_WARN,
				"connect-restarts":   datadogV1.MONITOROVERALLSTATES_NO_DATA, // no connect cluster
			}},
		{name: "all groups", p: params().WithGroupStates("all"), count: len(all),
			groups: map[string]int{"kafka-cpu-high": 2, "ksqldb-cpu-high": 1, "connect-cpu-high": 0}},
		{name: "only alerting groups", p: params().WithGroupStates("alert"), count: len(all),
			groups:  map[string]int{"kafka-cpu-high": 1, "kafka-consumer-lag": 0, "ksqldb-restarts": 0},
			overall: map[string]datadogV1.MonitorOverallStates{"kafka-consumer-lag": datadogV1.MONITOROVERALLSTATES_OK}},
		{name: "alert and warn groups", p: params().WithGroupStates("alert,warn"), count: len(all),
			groups: map[string]int{"kafka-cpu-high": 1, "ksqldb-restarts": 1, "ksqldb-cpu-high": 0}},
		{name: "ok groups", p: params().WithGroupStates("ok"), count: len(all),
			groups: map[string]int{"kafka-cpu-high": 1, "kafka-consumer-lag": 2}},
		{name: "monitor tag", p: params().WithMonitorTags("product:ksqldb"), want: ksql},
		{name: "monitor tags are all required", p: params().WithMonitorTags("product:kafka,product:ksqldb"), want: []string{}},
		{name: "monitor tags with critical", p: params().WithMonitorTags("fleet:rollout-critical, product:kafka"), want: kafka},
		{name: "name", p: params().WithName("Under-Replicated"), want: []string{"kafka-under-replicated-partitions"}},
		{name: "unknown cluster scope", p: params().WithTags("cluster:lkc-09999"), want: []string{}},
		{name: "other scope tag", p: params().WithTags("env:prod"), want: []string{}},
		{name: "product scope", p: params().WithTags("product:ksqldb").WithGroupStates("all"), want: ksql,
			groups: map[string]int{"ksqldb-cpu-high": 1}},
		{name: "two clusters of two products", p: params().WithTags("cluster:lkc-00001,cluster:ksql-00003").WithGroupStates("all"),
			want:   append(append([]string{}, kafka...), ksql...),
			groups: map[string]int{"kafka-cpu-high": 1, "ksqldb-restarts": 1},
			overall: map[string]datadogV1.MonitorOverallStates{
				"kafka-cpu-high":  datadogV1.MONITOROVERALLSTATES_OK, // the alert is on lkc-00002
				"ksqldb-restarts": datadogV1.MONITOROVERALLSTATES_WARN,
			}},
		{name: "id offset", p: params().WithIdOffset(2008).WithMonitorTags("product:ksqldb"), want: []string{"ksqldb-jvm-gc-pause", "ksqldb-restarts"}},
		{name: "first page", p: params().WithPage(0).WithPageSize(5), want: namesOf(all[:5])},
		{name: "second page", p: params().WithPage(1).WithPageSize(5), want: namesOf(all[5:10])},
		{name: "page past the end", p: params().WithPage(100).WithPageSize(5), want: []string{}},
		{name: "page size without page", p: params().WithPageSize(5), count: len(all)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := e.list(t, tt.p)
			if tt.want != nil {
				assert.Equal(t, tt.want, append([]string{}, names(got)...))
			} else {
				assert.Len(t, got, tt.count)
			}
			byName := map[string]datadogV1.Monitor{}
			for _, m := range got {
				byName[m.GetName()] = m
				if tt.noStateOn {
					assert.Nil(t, m.State, "no group states unless asked")
				}
			}
			for n, c := range tt.groups {
				require.Contains(t, byName, n)
				m := byName[n]
				assert.Len(t, m.GetState().Groups, c, n)
			}
			for n, st := range tt.overall {
				require.Contains(t, byName, n)
				m := byName[n]
				assert.Equal(t, st, m.GetOverallState(), n)
			}
		})
	}
}

func namesOf(ms []monitors.Monitor) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

func TestListMonitorsPagination(t *testing.T) {
	e := newEnv(t, Options{})
	items, cancel := e.api.ListMonitorsWithPagination(e.ctx(t, apiKey, appKey), *params().WithPageSize(7))
	defer cancel()
	var got []string
	for it := range items {
		require.NoError(t, it.Error)
		got = append(got, it.Item.GetName())
	}
	assert.Equal(t, namesOf(monitors.Default()), got)
}

func TestGetMonitor(t *testing.T) {
	e := newEnv(t, Options{})
	e.source.set("lkc-00002", "kafka-offline-partitions", StatusAlert)
	ctx := e.ctx(t, apiKey, appKey)

	m, resp, err := e.api.GetMonitor(ctx, 1007, *datadogV1.NewGetMonitorOptionalParameters().WithGroupStates("all"))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	requireClean(t, m)
	assert.Equal(t, "kafka-offline-partitions", m.GetName())
	assert.Equal(t, datadogV1.MONITOROVERALLSTATES_ALERT, m.GetOverallState())
	require.Len(t, m.State.Groups, 2)
	assert.Equal(t, datadogV1.MONITOROVERALLSTATES_OK, groupStatus(m, "lkc-00001"))
	assert.Equal(t, datadogV1.MONITOROVERALLSTATES_ALERT, groupStatus(m, "lkc-00002"))
	assert.Contains(t, m.GetQuery(), "kafka.replication.offline_partitions_count")

	m, _, err = e.api.GetMonitor(ctx, 1007)
	require.NoError(t, err)
	assert.Nil(t, m.State, "no group states unless asked")

	_, resp, err = e.api.GetMonitor(ctx, 999999)
	require.Error(t, err)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assertErrors(t, err, "Monitor not found")
}

func assertErrors(t *testing.T, err error, want ...string) {
	t.Helper()
	var oe datadog.GenericOpenAPIError
	require.True(t, errors.As(err, &oe), "%T: %v", err, err)
	model, ok := oe.Model().(datadogV1.APIErrorResponse)
	require.True(t, ok, "error model %T, body %s", oe.Model(), oe.Body())
	assert.Equal(t, want, model.Errors)
}

func TestAuth(t *testing.T) {
	e := newEnv(t, Options{})
	tests := []struct {
		name     string
		api, app string
		code     int
	}{
		{"both keys", apiKey, appKey, http.StatusOK},
		{"wrong api key", "nope", appKey, http.StatusForbidden},
		{"missing api key", "", appKey, http.StatusForbidden},
		{"wrong app key", apiKey, "nope", http.StatusForbidden},
		{"missing app key", apiKey, "", http.StatusForbidden},
		{"keys swapped", appKey, apiKey, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := e.ctx(t, tt.api, tt.app)
			_, resp, err := e.api.ListMonitors(ctx, *params().WithTags("cluster:lkc-00001"))
			require.NotNil(t, resp)
			assert.Equal(t, tt.code, resp.StatusCode)
			_, resp2, err2 := e.api.GetMonitor(ctx, 1001)
			require.NotNil(t, resp2)
			assert.Equal(t, tt.code, resp2.StatusCode)
			if tt.code == http.StatusOK {
				assert.NoError(t, err)
				assert.NoError(t, err2)
				return
			}
			assertErrors(t, err, "Forbidden")
			assertErrors(t, err2, "Forbidden")
		})
	}

	t.Run("validate needs the api key only", func(t *testing.T) {
		v, resp, err := e.auth.Validate(e.ctx(t, apiKey, ""))
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.True(t, v.GetValid())
		assert.Nil(t, v.UnparsedObject)

		_, resp, err = e.auth.Validate(e.ctx(t, "nope", appKey))
		require.Error(t, err)
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
		assertErrors(t, err, "Forbidden")
	})
}

func TestFailureInjection(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := e.ctx(t, apiKey, appKey)
	list := func() (*http.Response, error) {
		_, resp, err := e.api.ListMonitors(ctx, *params().WithTags("cluster:lkc-00001").WithGroupStates("all"))
		return resp, err
	}

	t.Run("normal answers carry rate-limit headers", func(t *testing.T) {
		resp, err := list()
		require.NoError(t, err)
		for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Period", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
			v, err := strconv.Atoi(resp.Header.Get(h))
			assert.NoError(t, err, h)
			assert.Positive(t, v, h)
		}
	})

	t.Run("500 for the next two requests", func(t *testing.T) {
		e.srv.SetFailure(http.StatusInternalServerError, 2)
		for i := 0; i < 2; i++ {
			resp, err := list()
			require.Error(t, err)
			require.NotNil(t, resp)
			assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
			assert.Contains(t, err.Error(), "500")
		}
		resp, err := list()
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	})

	t.Run("429 until cleared", func(t *testing.T) {
		e.srv.SetFailure(http.StatusTooManyRequests, -1)
		for i := 0; i < 3; i++ {
			resp, err := list()
			require.Error(t, err)
			require.NotNil(t, resp)
			assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
			assert.Equal(t, "0", resp.Header.Get("X-RateLimit-Remaining"))
			assert.NotEmpty(t, resp.Header.Get("X-RateLimit-Limit"))
			assert.NotEmpty(t, resp.Header.Get("X-RateLimit-Period"))
			assert.NotEmpty(t, resp.Header.Get("X-RateLimit-Reset"))
			var oe datadog.GenericOpenAPIError
			require.True(t, errors.As(err, &oe))
			assert.IsType(t, datadogV1.APIErrorResponse{}, oe.Model())
		}
		e.srv.ClearFailure()
		resp, err := list()
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	})

	t.Run("n zero clears, non-error codes ignored", func(t *testing.T) {
		e.srv.SetFailure(http.StatusServiceUnavailable, -1)
		e.srv.SetFailure(http.StatusServiceUnavailable, 0)
		_, err := list()
		require.NoError(t, err)
		e.srv.SetFailure(http.StatusOK, 5)
		_, err = list()
		require.NoError(t, err)
	})
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, Options{RateLimit: 3, RateLimitPeriod: time.Hour})
	ctx := e.ctx(t, apiKey, appKey)
	for i := 0; i < 3; i++ {
		_, resp, err := e.api.GetMonitor(ctx, 1001)
		require.NoError(t, err)
		assert.Equal(t, strconv.Itoa(2-i), resp.Header.Get("X-RateLimit-Remaining"))
		assert.Equal(t, "3", resp.Header.Get("X-RateLimit-Limit"))
		assert.Equal(t, "3600", resp.Header.Get("X-RateLimit-Period"))
	}
	_, resp, err := e.api.GetMonitor(ctx, 1001)
	require.Error(t, err)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Equal(t, "0", resp.Header.Get("X-RateLimit-Remaining"))

	// A new window starts after the period.
	e.srv.mu.Lock()
	e.srv.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	e.srv.mu.Unlock()
	_, _, err = e.api.GetMonitor(ctx, 1001)
	require.NoError(t, err)
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, Options{})
	tests := []struct {
		path string
		code int
		msg  string
	}{
		{"/api/v1/monitor?group_states=bogus", 400, `invalid group_states value "bogus"`},
		{"/api/v1/monitor?page=-1", 400, "invalid page"},
		{"/api/v1/monitor?page=abc", 400, "invalid page"},
		{"/api/v1/monitor?page=0&page_size=0", 400, "invalid page_size"},
		{"/api/v1/monitor?page=0&page_size=5000", 400, "invalid page_size"},
		{"/api/v1/monitor?id_offset=x", 400, "invalid id_offset"},
		{"/api/v1/monitor?with_downtimes=maybe", 400, "invalid with_downtimes"},
		{"/api/v1/monitor/abc", 400, "invalid monitor_id"},
		{"/api/v1/monitor/1001?group_states=nope", 400, "invalid group_states"},
		{"/api/v2/whatever", 404, "Not found"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, e.url+tt.path, nil)
			require.NoError(t, err)
			req.Header.Set("DD-API-KEY", apiKey)
			req.Header.Set("DD-APPLICATION-KEY", appKey)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, tt.code, resp.StatusCode)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			var body struct{ Errors []string }
			require.NoError(t, json.Unmarshal(b, &body), string(b))
			require.Len(t, body.Errors, 1)
			assert.True(t, strings.Contains(body.Errors[0], tt.msg), body.Errors[0])
		})
	}
}

func TestAnyKeyWhenUnconfigured(t *testing.T) {
	e := newEnv(t, Options{APIKey: "only-api"})
	_, _, err := e.api.GetMonitor(e.ctx(t, "only-api", "whatever"), 1001)
	require.NoError(t, err)
	_, resp, err := e.api.GetMonitor(e.ctx(t, "only-api", ""), 1001)
	require.Error(t, err)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
}

// groupStatus is the status of the cluster's group ("" when absent).
func groupStatus(m datadogV1.Monitor, clusterID string) datadogV1.MonitorOverallStates {
	if m.State == nil {
		return ""
	}
	g, ok := m.State.Groups[monitors.GroupName(clusterID)]
	if !ok || g.Status == nil {
		return ""
	}
	return *g.Status
}

// The bulk form the health checks read each interval: one product's
// critical monitors, every group (one per cluster of the product) with the
// status the source gives it, paged; and the requests are counted.
func TestListMonitorsBulkGroupStates(t *testing.T) {
	e := newEnv(t, Options{})
	e.source.set("lkc-00002", "kafka-cpu-high", StatusAlert)
	e.source.set("lkc-00001", "kafka-consumer-lag", StatusNoData)
	e.source.set("lkc-00001", "kafka-storage-usage", StatusWarn)
	kafka := catalogNames(fleet.ProductKafka)
	require.Greater(t, len(kafka), 5)
	bulk := func() *datadogV1.ListMonitorsOptionalParameters {
		return params().WithMonitorTags(monitors.ProductTag(fleet.ProductKafka) + "," + monitors.TagRolloutCritical).WithGroupStates("all")
	}
	before := e.srv.Requests()[EndpointListMonitors]

	got := e.list(t, bulk().WithPage(0).WithPageSize(100))
	assert.Equal(t, kafka, names(got))
	want := map[string]map[string]datadogV1.MonitorOverallStates{}
	for _, n := range kafka {
		want[n] = map[string]datadogV1.MonitorOverallStates{
			"cluster:lkc-00001": datadogV1.MONITOROVERALLSTATES_OK,
			"cluster:lkc-00002": datadogV1.MONITOROVERALLSTATES_OK,
		}
	}
	want["kafka-cpu-high"]["cluster:lkc-00002"] = datadogV1.MONITOROVERALLSTATES_ALERT
	want["kafka-consumer-lag"]["cluster:lkc-00001"] = datadogV1.MONITOROVERALLSTATES_NO_DATA
	want["kafka-storage-usage"]["cluster:lkc-00001"] = datadogV1.MONITOROVERALLSTATES_WARN
	for _, m := range got {
		groups := map[string]datadogV1.MonitorOverallStates{}
		for name, g := range m.GetState().Groups {
			assert.Equal(t, name, g.GetName())
			groups[name] = g.GetStatus()
		}
		assert.Equal(t, want[m.GetName()], groups, m.GetName())
	}

	// Paged: the pages together are the whole answer, a short page ends it.
	var paged []string
	for page := int64(0); ; page++ {
		p := e.list(t, bulk().WithPage(page).WithPageSize(5))
		paged = append(paged, names(p)...)
		if len(p) < 5 {
			break
		}
	}
	assert.Equal(t, kafka, paged)
	pages := (len(kafka) + 5) / 5 // the last one short (or empty)

	e.srv.SetFailure(http.StatusInternalServerError, 1)
	_, resp, err := e.api.ListMonitors(e.ctx(t, apiKey, appKey), *bulk())
	require.Error(t, err)
	require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	_, _, err = e.api.GetMonitor(e.ctx(t, apiKey, appKey), 1001)
	require.NoError(t, err)

	reqs := e.srv.Requests()
	assert.Equal(t, before+1+pages+1, reqs[EndpointListMonitors], "every request counts, the failed one too")
	assert.Equal(t, 1, reqs[EndpointGetMonitor])
}

func TestGroupsAndBytesSent(t *testing.T) {
	e := newEnv(t, Options{})
	e.source.set("lkc-00002", "kafka-cpu-high", StatusAlert)
	e.source.set("lkc-00001", "kafka-consumer-lag", StatusNoData)
	kafka := catalogNames(fleet.ProductKafka)
	bulk := func(states string) *datadogV1.ListMonitorsOptionalParameters {
		return params().WithMonitorTags(monitors.ProductTag(fleet.ProductKafka) + "," + monitors.TagRolloutCritical).WithGroupStates(states)
	}

	got := e.list(t, bulk("all"))
	require.Len(t, got, len(kafka))
	all := e.srv.GroupsSent()[EndpointListMonitors]
	allBytes := e.srv.BytesSent()[EndpointListMonitors]
	assert.Equal(t, 2*len(kafka), all, "every group of every monitor: two kafka clusters")
	assert.Positive(t, allBytes)

	got = e.list(t, bulk("alert,warn,no data"))
	require.Len(t, got, len(kafka), "every monitor, with only its non-OK groups")
	issues := e.srv.GroupsSent()[EndpointListMonitors] - all
	assert.Equal(t, 2, issues, "the alert and the no data")
	issuesBytes := e.srv.BytesSent()[EndpointListMonitors] - allBytes
	assert.Less(t, issuesBytes, allBytes)

	_, _, err := e.api.GetMonitor(e.ctx(t, apiKey, appKey), 1001, *datadogV1.NewGetMonitorOptionalParameters().WithGroupStates("all"))
	require.NoError(t, err)
	assert.Equal(t, 2, e.srv.GroupsSent()[EndpointGetMonitor])
	assert.Positive(t, e.srv.BytesSent()[EndpointGetMonitor])
}
