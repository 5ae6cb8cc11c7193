package chaos_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/fleet-rollout/fleet/internal/app"
)

// TestAdminEndpoints drives the dev stack's fault-injection endpoints
// (internal/app/admin.go), which cmd/fleetchaos uses against `worker stack`.
func TestAdminEndpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the dev stack")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	dev, err := app.StartDev(context.Background(), app.DevOptions{
		DataDir: t.TempDir(), Clusters: 40, Seed: 1, BrokerTime: 10 * time.Millisecond, AdminPort: port,
	}, zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)))
	require.NoError(t, err)
	t.Cleanup(dev.Close)
	require.NotEmpty(t, dev.AdminAddress)
	base := "http://" + dev.AdminAddress
	do := func(method, path string) int {
		req, err := http.NewRequest(method, base+path, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}

	require.Equal(t, http.StatusOK, do(http.MethodGet, "/admin/healthz"))

	resp, err := http.Get(base + "/admin/clusters")
	require.NoError(t, err)
	var cs []app.AdminCluster
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&cs))
	resp.Body.Close()
	require.Len(t, cs, 40)
	for _, c := range cs {
		require.NotEmpty(t, c.ID)
		require.Equal(t, 0, c.ApplyStarts)
	}

	// The monitors endpoint fails, then answers again.
	validate := func() int {
		req, err := http.NewRequest(http.MethodGet, dev.Config.Datadog.URL+"/api/v1/validate", nil)
		require.NoError(t, err)
		req.Header.Set("DD-API-KEY", app.DevDatadogAPIKey)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusOK, validate())
	require.Equal(t, http.StatusOK, do(http.MethodPost, "/admin/datadog/failure?code=429"))
	require.Equal(t, http.StatusTooManyRequests, validate())
	require.Equal(t, http.StatusTooManyRequests, validate(), "until cleared")
	require.Equal(t, http.StatusOK, do(http.MethodDelete, "/admin/datadog/failure"))
	require.Equal(t, http.StatusOK, validate())
	require.Equal(t, http.StatusBadRequest, do(http.MethodPost, "/admin/datadog/failure?code=200"))

	// Kafka down: a fresh client cannot reach a broker; up: it can.
	ping := func() error {
		kc, err := kgo.NewClient(kgo.SeedBrokers(dev.Config.KafkaBrokers...))
		require.NoError(t, err)
		defer kc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return kc.Ping(ctx)
	}
	require.NoError(t, ping())
	require.Equal(t, http.StatusOK, do(http.MethodPost, "/admin/kafka?down=true"))
	require.Error(t, ping(), "kafka is down")
	require.Equal(t, http.StatusOK, do(http.MethodPost, "/admin/kafka?down=false"))
	require.Eventually(t, func() bool { return ping() == nil }, 20*time.Second, 100*time.Millisecond, "kafka is back")
	require.Equal(t, http.StatusBadRequest, do(http.MethodPost, "/admin/kafka?down=maybe"))
}
