package activities

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap/zaptest"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/monitors"
	"github.com/fleet-rollout/fleet/workflows"
)

// silentDatadog accepts connections and requests and never answers.
func silentDatadog(t *testing.T) string {
	t.Helper()
	stop := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(func() { close(stop); hs.Close() })
	return hs.URL
}

func healthActivities(t *testing.T, cfg DatadogConfig) *Activities {
	t.Helper()
	cfg.APIKey, cfg.AppKey = testAPIKey, testAppKey
	d, err := NewDatadog(cfg)
	require.NoError(t, err)
	return &Activities{Datadog: d, Catalog: monitors.Default(), Log: zaptest.NewLogger(t)}
}

var healthIn = workflows.HealthInput{Clusters: []workflows.HealthTarget{
	{ClusterID: "lkc-1", Product: fleet.ProductKafka},
	{ClusterID: "lkc-2", Product: fleet.ProductKafka},
}}

// A Datadog that accepts and never answers fails the read within the
// per-request timeout, long before the activity's own deadline.
func TestCheckHealthFailsFastOnASilentDatadog(t *testing.T) {
	a := healthActivities(t, DatadogConfig{URL: silentDatadog(t), RequestTimeout: 300 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	_, err := a.CheckHealth(ctx, healthIn)
	took := time.Since(start)
	require.Error(t, err)
	require.Less(t, took, 3*time.Second, "took %s: %v", took, err)
	require.Contains(t, err.Error(), "request timeout 300ms")
	require.NoError(t, ctx.Err())
}

// With a long request timeout, the activity's deadline bounds the read.
func TestCheckHealthIsBoundedByTheActivityDeadline(t *testing.T) {
	a := healthActivities(t, DatadogConfig{URL: silentDatadog(t), RequestTimeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := a.CheckHealth(ctx, healthIn)
	took := time.Since(start)
	require.Error(t, err)
	require.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
	require.Less(t, took, 3*time.Second, "took %s", took)
}

// The default request timeout applies when none is configured, also on a
// caller's HTTP client without a timeout; a client's own timeout is kept.
func TestDatadogRequestTimeoutDefaults(t *testing.T) {
	d, err := NewDatadog(DatadogConfig{APIKey: "k", AppKey: "a"})
	require.NoError(t, err)
	require.Equal(t, DefaultDatadogRequestTimeout, d.timeout)
	require.Equal(t, DefaultDatadogRequestTimeout, d.api.Client.GetConfig().HTTPClient.Timeout)

	own := &http.Client{}
	d, err = NewDatadog(DatadogConfig{APIKey: "k", AppKey: "a", HTTPClient: own, RequestTimeout: 2 * time.Second})
	require.NoError(t, err)
	require.Equal(t, 2*time.Second, d.api.Client.GetConfig().HTTPClient.Timeout)
	require.Zero(t, own.Timeout, "the caller's client is not changed")

	d, err = NewDatadog(DatadogConfig{APIKey: "k", AppKey: "a", HTTPClient: &http.Client{Timeout: time.Second}})
	require.NoError(t, err)
	require.Equal(t, time.Second, d.api.Client.GetConfig().HTTPClient.Timeout)
}

// ClusterMetrics (Plan's orderBy) has the same bound.
func TestClusterMetricsFailsFastOnASilentDatadog(t *testing.T) {
	a := healthActivities(t, DatadogConfig{URL: silentDatadog(t), RequestTimeout: 300 * time.Millisecond})
	name := monitors.MetricNames()[0]
	start := time.Now()
	_, err := a.Datadog.ClusterMetrics(context.Background(), name, "", nil)
	require.Error(t, err)
	require.Less(t, time.Since(start), 3*time.Second)
}

// blockingSource is an inventory that never answers (until ctx ends).
type blockingSource struct{}

func (blockingSource) List(ctx context.Context) ([]fleet.Cluster, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestInventoryReadIsBounded(t *testing.T) {
	a := &Activities{Inventory: blockingSource{}, InventoryTimeout: 200 * time.Millisecond, Log: zaptest.NewLogger(t)}
	start := time.Now()
	_, err := a.Clusters(context.Background(), workflows.ClustersInput{IDs: []string{"lkc-1"}})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Contains(t, err.Error(), "inventory read timeout 200ms")
	require.Less(t, time.Since(start), 3*time.Second)
}

// A rate-limit window that resets after the read's deadline fails the read
// at once, saying what Datadog answered, instead of waiting the deadline out.
func TestRateLimitBeyondTheDeadlineFailsAtOnce(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-RateLimit-Reset", "30")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer hs.Close()
	a := healthActivities(t, DatadogConfig{URL: hs.URL})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := a.CheckHealth(ctx, healthIn)
	require.ErrorContains(t, err, "HTTP 429")
	start := time.Now()
	_, err = a.CheckHealth(ctx, healthIn)
	require.ErrorContains(t, err, "Datadog rate limit (HTTP 429) resets in")
	require.Less(t, time.Since(start), time.Second)
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%T", err)
	require.Equal(t, "RateLimited", appErr.Type())
	require.Greater(t, appErr.NextRetryDelay(), 25*time.Second)
	require.NoError(t, ctx.Err())
}
