package monitors

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/fleet"
)

func TestNoDataOK(t *testing.T) {
	var accepting []string
	for _, m := range Default() {
		if m.NoDataOK {
			accepting = append(accepting, m.Name)
		}
	}
	assert.Equal(t, []string{"kafka-consumer-lag", "connect-consumer-lag"}, accepting,
		"only monitors whose metric may be absent on a healthy cluster accept no data")
	for name := range noDataOK {
		_, ok := ByName(name)
		assert.True(t, ok, "noDataOK names an unknown monitor %q", name)
	}

	m, _ := ByName("kafka-cpu-high")
	assert.False(t, m.NoDataOK, "no data is unhealthy by default")

	// The JSON field round-trips, and an old payload without it decodes as
	// the default (no data is unhealthy).
	lag, _ := ByName("kafka-consumer-lag")
	b, err := json.Marshal(lag)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"noDataOk":true`)
	var back Monitor
	require.NoError(t, json.Unmarshal(b, &back))
	assert.True(t, back.NoDataOK)
	var old Monitor
	require.NoError(t, json.Unmarshal([]byte(`{"id":1010,"name":"kafka-consumer-lag"}`), &old))
	assert.False(t, old.NoDataOK)
}

var datadogMetricRE = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$`)

func TestMetricsCatalog(t *testing.T) {
	ms := Metrics()
	require.Equal(t, []string{MetricCPU, MetricPartitions, MetricStorage, MetricThroughput}, MetricNames())
	require.Len(t, ms, len(MetricNames()))
	seen := map[string]string{}
	for i, m := range ms {
		assert.Equal(t, MetricNames()[i], m.Name)
		assert.NotEmpty(t, m.Unit, m.Name)
		assert.NotEmpty(t, m.Description, m.Name)
		assert.Contains(t, []string{"avg", "sum", "min", "max"}, m.Aggregator, m.Name)
		require.NotEmpty(t, m.Products(), m.Name)
		for _, p := range m.Products() {
			assert.Contains(t, fleet.Products, p)
			dm, ok := m.DatadogMetric(p)
			require.True(t, ok)
			assert.Regexp(t, datadogMetricRE, dm)
			assert.NotContains(t, seen, dm, "one Datadog metric per (metric, product)")
			seen[dm] = m.Name + "/" + p
			assert.Equal(t, []MetricSource{{Metric: m.Name, Product: p}}, LookupDatadogMetric(dm))
		}
	}
	assert.Nil(t, LookupDatadogMetric("system.cpu.idle"))
}

func TestMetricQueries(t *testing.T) {
	tests := []struct {
		metric, product   string
		query, forCluster string
	}{
		{MetricCPU, fleet.ProductKafka,
			"avg:kafka.broker.cpu.percent{product:kafka} by {cluster}",
			"avg:kafka.broker.cpu.percent{cluster:lkc-00042}"},
		{MetricThroughput, fleet.ProductConnect,
			"sum:connect.worker.throughput.mbps{product:connect} by {cluster}",
			"sum:connect.worker.throughput.mbps{cluster:lkc-00042}"},
		{MetricStorage, fleet.ProductSchemaRegistry,
			"max:schema_registry.server.storage.used.percent{product:schema-registry} by {cluster}",
			"max:schema_registry.server.storage.used.percent{cluster:lkc-00042}"},
		{MetricPartitions, fleet.ProductKafka,
			"sum:kafka.broker.partitions.count{product:kafka} by {cluster}",
			"sum:kafka.broker.partitions.count{cluster:lkc-00042}"},
		{MetricPartitions, fleet.ProductKsqlDB, "", ""}, // Kafka only
		{MetricCPU, "nope", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.metric+"/"+tt.product, func(t *testing.T) {
			m, ok := MetricByName(tt.metric)
			require.True(t, ok)
			assert.Equal(t, tt.query, m.Query(tt.product))
			assert.Equal(t, tt.forCluster, m.ClusterQuery(tt.product, "lkc-00042"))
			_, reported := m.DatadogMetric(tt.product)
			assert.Equal(t, tt.query != "", reported)
			if tt.query != "" {
				assert.True(t, strings.HasSuffix(tt.query, " by {"+GroupBy+"}"))
			}
		})
	}
	_, ok := MetricByName("latency")
	assert.False(t, ok)
}

func TestMetricCopiesAreIndependent(t *testing.T) {
	a := Metrics()
	a[0].metrics[fleet.ProductKafka] = "mutated"
	b, _ := MetricByName(a[0].Name)
	dm, _ := b.DatadogMetric(fleet.ProductKafka)
	assert.NotEqual(t, "mutated", dm)
}
