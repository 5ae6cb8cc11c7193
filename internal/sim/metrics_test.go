package sim

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/monitors"
)

func TestMetricValues(t *testing.T) {
	clusters := GenerateFleet(2000, 7)
	s := newSim(t, Config{Clusters: clusters})
	ranges := map[string][2]float64{
		monitors.MetricCPU:     {5, 95},
		monitors.MetricStorage: {10, 90},
	}
	distinct := map[string]map[float64]bool{}
	for _, name := range monitors.MetricNames() {
		distinct[name] = map[float64]bool{}
	}
	for _, c := range clusters {
		for _, name := range monitors.MetricNames() {
			v, ok := s.Metric(c.ID, name)
			pure, pureOK := MetricValue(c, name)
			require.Equal(t, pureOK, ok)
			require.Equal(t, pure, v, "Metric is MetricValue of the cluster")
			m, _ := monitors.MetricByName(name)
			_, reported := m.DatadogMetric(c.Product)
			require.Equal(t, reported, ok, "%s %s", c.ID, name)
			if !ok {
				continue
			}
			distinct[name][v] = true
			if r, bounded := ranges[name]; bounded {
				require.GreaterOrEqual(t, v, r[0], "%s %s", c.ID, name)
				require.LessOrEqual(t, v, r[1], "%s %s", c.ID, name)
			}
			switch name {
			case monitors.MetricThroughput:
				require.Positive(t, v)
				if c.Product == fleet.ProductKafka {
					require.GreaterOrEqual(t, v, 5*float64(c.Brokers))
					require.Less(t, v, 80*float64(c.Brokers))
				}
			case monitors.MetricPartitions:
				require.Equal(t, fleet.ProductKafka, c.Product)
				require.GreaterOrEqual(t, v, 50*float64(c.Brokers))
				require.Less(t, v, 1500*float64(c.Brokers))
			}
		}
	}
	// Values spread out, so ordering by them means something.
	for name, seen := range distinct {
		assert.Greater(t, len(seen), 300, name)
	}
}

func TestMetricIsDeterministic(t *testing.T) {
	a := kafkaCluster("lkc-00001", 6)
	b := kafkaCluster("lkc-00002", 6)
	for _, name := range monitors.MetricNames() {
		v1, ok1 := MetricValue(a, name)
		v2, ok2 := MetricValue(a, name)
		require.True(t, ok1 && ok2, name)
		assert.Equal(t, v1, v2, name)
		other, _ := MetricValue(b, name)
		assert.NotEqual(t, v1, other, "%s: neighbouring IDs get different values", name)
	}
	// Throughput and partitions scale with the brokers.
	small := kafkaCluster("lkc-00001", 3)
	for _, name := range []string{monitors.MetricThroughput, monitors.MetricPartitions} {
		big, _ := MetricValue(a, name)
		little, _ := MetricValue(small, name)
		assert.InDelta(t, 2*little, big, 0.02, name)
	}
}

func TestMetricUnknowns(t *testing.T) {
	ksql := kafkaCluster("ksql-00001", 2)
	ksql.Product = fleet.ProductKsqlDB
	s := newSim(t, Config{Clusters: []fleet.Cluster{kafkaCluster("lkc-00001", 3), ksql}})
	_, ok := s.Metric("lkc-99999", monitors.MetricCPU)
	assert.False(t, ok, "unknown cluster")
	_, ok = s.Metric("lkc-00001", "latency")
	assert.False(t, ok, "unknown metric")
	_, ok = s.Metric("ksql-00001", monitors.MetricPartitions)
	assert.False(t, ok, "partitions are Kafka's only")
	_, ok = s.Metric("ksql-00001", monitors.MetricCPU)
	assert.True(t, ok)
}
