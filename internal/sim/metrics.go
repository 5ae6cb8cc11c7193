package sim

import (
	"hash/fnv"
	"math"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/monitors"
)

// Metric returns the cluster's value of an ordering metric
// (monitors.MetricNames: cpu, throughput, storage, partitions), what the
// Datadog-compatible endpoint serves for it. It is false for an unknown
// cluster or metric, and for a metric the cluster's product does not report
// (partitions outside Kafka). See MetricValue.
func (s *Simulator) Metric(clusterID, name string) (float64, bool) {
	s.mu.Lock()
	cs, ok := s.clusters[clusterID]
	var c fleet.Cluster
	if ok {
		c = cs.c // the fields MetricValue reads are plain values
	}
	s.mu.Unlock()
	if !ok {
		return 0, false
	}
	return MetricValue(c, name)
}

// Per-node throughput in MB/s, by product: [low, high).
var nodeThroughput = map[string][2]float64{
	fleet.ProductKafka:          {5, 80},
	fleet.ProductKsqlDB:         {1, 20},
	fleet.ProductConnect:        {1, 30},
	fleet.ProductSchemaRegistry: {0.01, 0.5},
}

// MetricValue is the simulated value of an ordering metric for cluster c,
// a pure function of its ID, product and broker count, rounded to two
// decimals:
//
//   - cpu: percent in [5, 95], most clusters near the middle;
//   - throughput: MB/s, brokers × a per-node rate that depends on the
//     product (Kafka 5-80 MB/s per broker, Schema Registry well under 1);
//   - storage: percent in [10, 90], most clusters near the middle;
//   - partitions (Kafka only): brokers × 50-1,500 partition replicas.
//
// It is false for an unknown metric or one c's product does not report.
func MetricValue(c fleet.Cluster, name string) (float64, bool) {
	m, ok := monitors.MetricByName(name)
	if !ok {
		return 0, false
	}
	if _, ok := m.DatadogMetric(c.Product); !ok {
		return 0, false
	}
	u1, u2 := uniforms(c.ID + "\x00" + name)
	brokers := float64(max(1, c.Brokers))
	var v float64
	switch name {
	case monitors.MetricCPU:
		v = 5 + 90*(u1+u2)/2
	case monitors.MetricStorage:
		v = 10 + 80*(u1+u2)/2
	case monitors.MetricThroughput:
		r, ok := nodeThroughput[c.Product]
		if !ok {
			r = [2]float64{1, 10}
		}
		v = brokers * (r[0] + (r[1]-r[0])*u1)
	case monitors.MetricPartitions:
		return brokers * math.Floor(50+1450*u1), true
	default:
		// A catalog metric the simulator has no model for yet.
		return 0, false
	}
	return math.Round(v*100) / 100, true
}

// uniforms are two independent values in [0, 1) hashed from key.
func uniforms(key string) (float64, float64) {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	x := h.Sum64()
	// Mix (splitmix64's finalizer) so close keys spread.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>32) / (1 << 32), float64(x&0xffffffff) / (1 << 32)
}
