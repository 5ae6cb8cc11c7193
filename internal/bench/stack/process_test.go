package stack

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/activities"
	"github.com/fleet-rollout/fleet/internal/app"
)

// TestWorkerEnvRoundTrip: what WorkerEnv writes, app.FromEnv (what the
// worker command reads) reads back as the same configuration.
func TestWorkerEnvRoundTrip(t *testing.T) {
	cfg := app.Config{
		TemporalAddress: "127.0.0.1:17233",
		Namespace:       "default",
		KafkaBrokers:    []string{"127.0.0.1:19092", "127.0.0.1:19093"},
		Inventory:       "http://127.0.0.1:18089/v1/clusters",
		Datadog: activities.DatadogConfig{
			APIKey: app.DevDatadogAPIKey, AppKey: app.DevDatadogAppKey,
			URL: "http://127.0.0.1:18090", RequestTimeout: 3 * time.Second,
		},
		SlackToken:    "xoxb-test",
		SlackChannel:  "#bench",
		SlackAPIURL:   "http://127.0.0.1:18091/api/",
		WebhookSecret: "hook",
		HTTPAddr:      "127.0.0.1:18088",
		SignalKey:     strings.Repeat("ab", 32),
		WorkerName:    "fleet-worker",
		Dev:           true,
	}
	env := WorkerEnv(cfg, "/tmp/open-policy.yaml")
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		require.True(t, ok, kv)
		t.Setenv(k, v)
	}
	// Unset what WorkerEnv leaves out, in case the machine sets it.
	for _, k := range []string{"TEMPORAL_API_KEY", "TEMPORAL_TLS", "TEMPORAL_PROFILE", "TEMPORAL_CONFIG_FILE", "KAFKA_TLS", "KAFKA_SASL_MECHANISM", "DD_SITE", app.MonitoringEnv} {
		if _, set := os.LookupEnv(k); set {
			t.Setenv(k, "")
		}
	}
	got, err := app.FromEnv()
	require.NoError(t, err)
	require.Equal(t, cfg.TemporalAddress, got.TemporalAddress)
	require.Equal(t, cfg.Namespace, got.Namespace)
	require.Equal(t, cfg.KafkaBrokers, got.KafkaBrokers)
	require.Equal(t, cfg.Inventory, got.Inventory)
	require.Equal(t, cfg.Datadog, got.Datadog)
	require.Equal(t, cfg.SlackToken, got.SlackToken)
	require.Equal(t, cfg.SlackChannel, got.SlackChannel)
	require.Equal(t, cfg.SlackAPIURL, got.SlackAPIURL)
	require.Equal(t, cfg.WebhookSecret, got.WebhookSecret)
	require.Equal(t, cfg.HTTPAddr, got.HTTPAddr)
	require.Equal(t, cfg.SignalKey, got.SignalKey)
	require.Equal(t, "/tmp/open-policy.yaml", got.PolicyPath, "the open policy stands in for none")
	require.False(t, got.Dev, "the worker process runs in production mode")

	cfg.PolicyPath = "/etc/fleet/policy.yaml"
	require.Contains(t, WorkerEnv(cfg, "/tmp/open-policy.yaml"), "FLEET_POLICY=/etc/fleet/policy.yaml", "the configuration's own policy wins")
}

func TestVmHWM(t *testing.T) {
	self, err := VmHWM(0)
	require.NoError(t, err)
	require.Greater(t, self, int64(1000))
	byPID, err := VmHWM(os.Getpid())
	require.NoError(t, err)
	require.GreaterOrEqual(t, byPID, self)
	_, err = VmHWM(1 << 30)
	require.Error(t, err)
}
