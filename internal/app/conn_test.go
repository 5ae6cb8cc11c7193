package app_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fleet-rollout/fleet/internal/app"
	"github.com/fleet-rollout/fleet/internal/connect/connecttest"
	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/internal/devserver/devservertest"
	"github.com/fleet-rollout/fleet/workflows"
)

// clearConnEnv unsets the connection variables a developer's shell may
// have, and points TEMPORAL_CONFIG_FILE at an empty file.
func clearConnEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "TEMPORAL_") || strings.HasPrefix(k, "KAFKA_") || k == "FLEET_INVENTORY" {
			t.Setenv(k, "")
		}
	}
	empty := filepath.Join(t.TempDir(), "empty.toml")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	t.Setenv("TEMPORAL_CONFIG_FILE", empty)
}

// The worker's Dial against a Temporal server that accepts mutual TLS only.
func TestDialOverMutualTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	certs := connecttest.New(t)
	srv, headers := devservertest.StartMTLS(t, certs)
	dial := func(t *testing.T) error {
		cfg, err := app.FromEnv()
		if err != nil {
			return err
		}
		c, err := app.Dial(cfg, zap.NewNop())
		if err != nil {
			return err
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
		return err
	}

	t.Run("defaults: the dev stack's address, plaintext", func(t *testing.T) {
		clearConnEnv(t)
		cfg, err := app.FromEnv()
		require.NoError(t, err)
		assert.Equal(t, "127.0.0.1:7233", cfg.TemporalAddress)
		assert.Equal(t, "default", cfg.Namespace)
		assert.False(t, cfg.Temporal.TLS())
	})
	t.Run("plaintext fails", func(t *testing.T) {
		clearConnEnv(t)
		t.Setenv("TEMPORAL_ADDRESS", srv.Address())
		require.Error(t, dial(t))
	})
	t.Run("TLS without a client certificate fails", func(t *testing.T) {
		clearConnEnv(t)
		t.Setenv("TEMPORAL_ADDRESS", srv.Address())
		t.Setenv("TEMPORAL_TLS", "true")
		t.Setenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH", certs.CAFile)
		err := dial(t)
		require.Error(t, err)
		t.Log(err)
	})
	t.Run("client certificate from the environment", func(t *testing.T) {
		clearConnEnv(t)
		t.Setenv("TEMPORAL_ADDRESS", srv.Address())
		t.Setenv("TEMPORAL_NAMESPACE", "default")
		t.Setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", certs.ClientCert)
		t.Setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", certs.ClientKey)
		t.Setenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH", certs.CAFile)
		t.Setenv("TEMPORAL_TLS_SERVER_NAME", certs.ServerName)
		require.NoError(t, dial(t))
	})
	t.Run("client certificate from a profile, with an API key", func(t *testing.T) {
		clearConnEnv(t)
		const key = "worker-key-SECRET"
		file := filepath.Join(t.TempDir(), "temporal.toml")
		require.NoError(t, os.WriteFile(file, []byte(fmt.Sprintf(`
[profile.worker]
address = %q
namespace = "default"
api_key = %q
[profile.worker.tls]
client_cert_path = %q
client_key_path = %q
server_ca_cert_path = %q
`, srv.Address(), key, certs.ClientCert, certs.ClientKey, certs.CAFile)), 0o600))
		t.Setenv("TEMPORAL_CONFIG_FILE", file)
		t.Setenv("TEMPORAL_PROFILE", "worker")
		require.NoError(t, dial(t))
		assert.Contains(t, headers.Authorization(), "Bearer "+key)

		// What the worker logs at start: booleans and paths, not the key.
		cfg, err := app.FromEnv()
		require.NoError(t, err)
		core, logs := observer.New(zap.InfoLevel)
		zap.New(core).Info("worker starting", cfg.Fields()...)
		fields := logs.All()[0].ContextMap()
		assert.Equal(t, true, fields["temporalAPIKey"])
		assert.Equal(t, true, fields["temporalTLS"])
		assert.Equal(t, certs.ClientCert, fields["temporalClientCert"])
		assert.Equal(t, "worker", fields["temporalProfile"])
		assert.NotContains(t, fmt.Sprint(fields), key)
		assert.NotContains(t, fmt.Sprintf("%v %+v", cfg, cfg), key)

		// A missing profile is an error naming it.
		t.Setenv("TEMPORAL_PROFILE", "nope")
		_, err = app.FromEnv()
		require.ErrorContains(t, err, `"nope"`)
	})
}

// Fields masks the inventory URL's token and shows Kafka's SASL as a
// mechanism and a user, never the password.
func TestFieldsHideCredentials(t *testing.T) {
	clearConnEnv(t)
	t.Setenv("FLEET_INVENTORY", "https://inv:pw-SECRET@inventory.example.com/v1/clusters?token=tok-SECRET&env=prod")
	t.Setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
	t.Setenv("KAFKA_SASL_USERNAME", "fleet")
	t.Setenv("KAFKA_SASL_PASSWORD", "kafka-SECRET")
	t.Setenv("TEMPORAL_API_KEY", "temporal-SECRET")
	t.Setenv("KAFKA_TLS", "true")
	cfg, err := app.FromEnv()
	require.NoError(t, err)
	core, logs := observer.New(zap.InfoLevel)
	zap.New(core).Info("worker starting", cfg.Fields()...)
	fields := logs.All()[0].ContextMap()
	assert.NotContains(t, fmt.Sprint(fields), "SECRET")
	assert.Equal(t, "https://inv:REDACTED@inventory.example.com/v1/clusters?token=REDACTED&env=prod", fields["inventory"])
	assert.Equal(t, "SCRAM-SHA-512", fields["kafkaSASL"])
	assert.Equal(t, true, fields["kafkaTLS"])

	t.Setenv("KAFKA_SASL_MECHANISM", "KERBEROS")
	_, err = app.FromEnv()
	require.ErrorContains(t, err, "KAFKA_SASL_MECHANISM")
	assert.NotContains(t, err.Error(), "SECRET")
}

// The whole worker (app.Run) configured from the environment only: Temporal
// over mutual TLS, Kafka over TLS with SASL/SCRAM-SHA-256 (kfake). Its
// Temporal worker polls the task queue, and its status bridge consumes
// fleet.status and produces to the dead-letter topic with the credentials.
func TestWorkerRunsOverMutualTLSAndKafkaSASL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	certs := connecttest.New(t)
	srv, _ := devservertest.StartMTLS(t, certs)
	kc, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-256", "fleet-worker", "kafka-pw-x9q"),
		kfake.TLS(certs.ServerTLS(t, false)),
		kfake.AllowAutoTopicCreation(),
		kfake.SeedTopics(1, dataplane.StatusTopic, dataplane.CommandsTopic, workflows.EventsTopic, workflows.AuditTopic),
	)
	require.NoError(t, err)
	defer kc.Close()

	clearConnEnv(t)
	inv := filepath.Join(t.TempDir(), "inventory.yaml")
	require.NoError(t, os.WriteFile(inv, []byte("[]\n"), 0o600))
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(pol, []byte("access: open\n"), 0o600))
	for k, v := range map[string]string{
		// What a production worker refuses to start without.
		"FLEET_MONITORING":                 "off",
		"FLEET_POLICY":                     pol,
		"FLEET_SIGNAL_KEY":                 strings.Repeat("5a", 32),
		"FLEET_PLAN_STORE":                 "dir:" + t.TempDir(),
		"TEMPORAL_ADDRESS":                 srv.Address(),
		"TEMPORAL_TLS_CLIENT_CERT_PATH":    certs.ClientCert,
		"TEMPORAL_TLS_CLIENT_KEY_PATH":     certs.ClientKey,
		"TEMPORAL_TLS_SERVER_CA_CERT_PATH": certs.CAFile,
		"KAFKA_BROKERS":                    strings.Join(kc.ListenAddrs(), ","),
		"KAFKA_TLS_CA_FILE":                certs.CAFile,
		"KAFKA_SASL_MECHANISM":             "SCRAM-SHA-256",
		"KAFKA_SASL_USERNAME":              "fleet-worker",
		"KAFKA_SASL_PASSWORD":              "kafka-pw-x9q",
		"FLEET_INVENTORY":                  inv,
		"FLEET_HTTP_ADDR":                  "127.0.0.1:0",
	} {
		t.Setenv(k, v)
	}
	cfg, err := app.FromEnv()
	require.NoError(t, err)

	core, logs := observer.New(zap.InfoLevel)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, cfg, zap.New(core)) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("worker did not stop")
		}
		for _, e := range logs.All() {
			assert.NotContains(t, e.Message+fmt.Sprint(e.ContextMap()), "kafka-pw-x9q")
		}
	}()

	// Temporal: the worker's pollers reach the task queue over mTLS.
	c, err := app.Dial(cfg, zap.NewNop())
	require.NoError(t, err)
	defer c.Close()
	require.Eventually(t, func() bool {
		dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
		defer dcancel()
		resp, err := c.WorkflowService().DescribeTaskQueue(dctx, &workflowservice.DescribeTaskQueueRequest{
			Namespace: "default", TaskQueue: &taskqueuepb.TaskQueue{Name: workflows.TaskQueue},
		})
		return err == nil && len(resp.GetPollers()) > 0
	}, 30*time.Second, 200*time.Millisecond, "no poller on %s", workflows.TaskQueue)

	// Kafka: an undecodable status is consumed by the bridge and lands on
	// the dead-letter topic, both through TLS and SASL.
	kopts, err := cfg.KafkaOpts()
	require.NoError(t, err)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(kc.ListenAddrs()...),
		kgo.ConsumeTopics(dataplane.StatusDeadTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, kopts...)...)
	require.NoError(t, err)
	defer cl.Close()
	pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
	defer pcancel()
	require.NoError(t, cl.ProduceSync(pctx, &kgo.Record{Topic: dataplane.StatusTopic, Key: []byte("lkc-1"), Value: []byte("not json")}).FirstErr())
	for {
		fs := cl.PollFetches(pctx)
		require.NoError(t, pctx.Err(), "no dead letter")
		if recs := fs.Records(); len(recs) > 0 {
			assert.Equal(t, "lkc-1", string(recs[0].Key))
			break
		}
	}
}
