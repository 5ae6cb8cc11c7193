package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fleet-rollout/fleet/internal/connect"
	"github.com/fleet-rollout/fleet/internal/connect/connecttest"
	"github.com/fleet-rollout/fleet/internal/events"
	"github.com/fleet-rollout/fleet/workflows"
)

// fleet history reads fleet.events from a Kafka that wants TLS and
// SASL/SCRAM-SHA-256, with the credentials from the environment; a wrong
// password fails without showing it, and a malformed setting names its
// variable.
func TestHistoryOverKafkaSASL(t *testing.T) {
	certs := connecttest.New(t)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1),
		kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-256", "fleet-cli", "right-pw-k2"),
		kfake.TLS(certs.ServerTLS(t, false)),
		kfake.SeedTopics(1, workflows.EventsTopic))
	require.NoError(t, err)
	defer kc.Close()
	vars := map[string]string{
		"KAFKA_BROKERS":        strings.Join(kc.ListenAddrs(), ","),
		"KAFKA_TLS_CA_FILE":    certs.CAFile,
		"KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
		"KAFKA_SASL_USERNAME":  "fleet-cli",
		"KAFKA_SASL_PASSWORD":  "right-pw-k2",
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kopts, err := connect.KafkaOpts(func(k string) string { return vars[k] })
	require.NoError(t, err)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(kc.ListenAddrs()...)}, kopts...)...)
	require.NoError(t, err)
	defer cl.Close()
	const id = "rollout/kafka-3-7-1"
	require.NoError(t, events.NewPublisher(cl).Publish(ctx, []workflows.Event{
		{Kind: workflows.EventRolloutStarted, RolloutID: id, Version: "3.7.1", At: hAt(0)},
		{Kind: workflows.EventClusterState, RolloutID: id, ClusterID: "lkc-1", State: "done", At: hAt(1)},
	}))

	e, out, _ := envWith(t, vars)
	e.history = nil // the real reader
	require.NoError(t, run(ctx, []string{"history", "lkc-1"}, e))
	assert.Contains(t, out.String(), "kafka-3-7-1 -> 3.7.1")

	vars["KAFKA_SASL_PASSWORD"] = "wrong-pw-k2"
	e, _, _ = envWith(t, vars)
	e.history = nil
	hctx, hcancel := context.WithTimeout(ctx, 4*time.Second)
	defer hcancel()
	err = run(hctx, []string{"history", "lkc-1"}, e)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "wrong-pw-k2")
	t.Log(err)

	vars["KAFKA_SASL_MECHANISM"] = "SCRAM-SHA-1"
	e, _, _ = envWith(t, vars)
	e.history = nil
	err = run(ctx, []string{"history", "lkc-1"}, e)
	require.ErrorContains(t, err, "KAFKA_SASL_MECHANISM")
	assert.NotContains(t, err.Error(), "wrong-pw-k2")
}

// An inventory URL's token never shows in the CLI's errors.
func TestInventoryErrorsMaskTheToken(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	}))
	defer srv.Close()
	for _, ref := range []string{
		srv.URL + "/v1/clusters?access_token=tok-Z81",
		"https://svc:tok-Z81@inventory.example.com:bad/v1",
	} {
		e, _, _ := envWith(t, map[string]string{"FLEET_INVENTORY": ref})
		err := run(context.Background(), []string{"status"}, e)
		require.Error(t, err, ref)
		assert.NotContains(t, err.Error(), "tok-Z81")
		assert.Contains(t, err.Error(), "FLEET_INVENTORY")
		t.Log(err)
	}
}
