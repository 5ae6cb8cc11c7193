package ddsim

import (
	"context"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadog"
	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/monitors"
	"github.com/fleet-rollout/fleet/internal/sim"
)

var _ Source = (*sim.Simulator)(nil)

// TestSimulatorFaultSurfacesInDatadog runs the real path: a command over
// Kafka makes the simulator apply a faulty version, and the official client
// sees the monitor go from OK to Alert for that cluster only.
func TestSimulatorFaultSurfacesInDatadog(t *testing.T) {
	log := zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, dataplane.CommandsTopic, dataplane.StatusTopic))
	require.NoError(t, err)
	t.Cleanup(kc.Close)
	brokers := kc.ListenAddrs()

	clusters := sim.GenerateFleet(40, 11)
	fault := sim.Fault{Version: "3.7.0", Monitor: "kafka-under-replicated-partitions", Fraction: 1}
	var target, bystander fleet.Cluster
	for _, c := range clusters {
		if c.Product != fleet.ProductKafka {
			continue
		}
		if target.ID == "" {
			target = c
		} else if bystander.ID == "" {
			bystander = c
		}
	}
	require.NotEmpty(t, bystander.ID)
	s, err := sim.New(sim.Config{Clusters: clusters, BrokerTime: 5 * time.Millisecond, Faults: []sim.Fault{fault}}, log.Named("sim"))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx, brokers) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-runErr)
		require.NoError(t, s.Close())
	})

	srv := New(monitors.Default(), s, Options{APIKey: apiKey, AppKey: appKey, Log: log.Named("ddsim")})
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	u, err := url.Parse(hs.URL)
	require.NoError(t, err)
	cfg := datadog.NewConfiguration()
	api := datadogV1.NewMonitorsApi(datadog.NewAPIClient(cfg))
	dctx := context.WithValue(context.Background(), datadog.ContextServerIndex, 1)
	dctx = context.WithValue(dctx, datadog.ContextServerVariables, map[string]string{"protocol": "http", "name": u.Host})
	dctx = context.WithValue(dctx, datadog.ContextAPIKeys, map[string]datadog.APIKey{
		"apiKeyAuth": {Key: apiKey}, "appKeyAuth": {Key: appKey},
	})

	status := func(clusterID string) datadogV1.MonitorOverallStates {
		got, _, err := api.ListMonitors(dctx, *datadogV1.NewListMonitorsOptionalParameters().
			WithTags("cluster:" + clusterID).
			WithMonitorTags("product:kafka," + monitors.TagRolloutCritical).
			WithName(fault.Monitor).
			WithGroupStates("all"))
		require.NoError(t, err)
		require.Len(t, got, 1)
		requireClean(t, got[0])
		return groupStatus(got[0], clusterID)
	}
	assert.Equal(t, datadogV1.MONITOROVERALLSTATES_OK, status(target.ID))

	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	t.Cleanup(prod.Close)
	b, err := dataplane.Encode(dataplane.Command{
		Kind: dataplane.Apply, ClusterID: target.ID, Generation: target.Generation + 1,
		Spec: &dataplane.Spec{Version: "3.7.0"}, RolloutID: "rollout/e2e", ReplyTo: "rollout/e2e/batch-1",
		IssuedAt: time.Now(),
	})
	require.NoError(t, err)
	require.NoError(t, prod.ProduceSync(context.Background(), &kgo.Record{
		Topic: dataplane.CommandsTopic, Key: []byte(target.ID), Value: b,
	}).FirstErr())

	require.Eventually(t, func() bool {
		return status(target.ID) == datadogV1.MONITOROVERALLSTATES_ALERT
	}, 30*time.Second, 20*time.Millisecond)
	assert.Equal(t, datadogV1.MONITOROVERALLSTATES_OK, status(bystander.ID))
}
