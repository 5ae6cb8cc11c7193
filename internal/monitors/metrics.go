package monitors

import (
	"maps"
	"slices"

	"github.com/fleet-rollout/fleet/internal/fleet"
)

// Ordering metrics: the names a rollout spec's orderBy may use.
const (
	// MetricCPU is CPU use in percent (0-100), averaged over the nodes.
	MetricCPU = "cpu"
	// MetricThroughput is bytes in and out in MB/s, summed over the nodes.
	MetricThroughput = "throughput"
	// MetricStorage is the data volume's use in percent (0-100), the fullest
	// node's.
	MetricStorage = "storage"
	// MetricPartitions is the partition replicas hosted, summed over the
	// brokers (Kafka only).
	MetricPartitions = "partitions"
)

// Metric is a per-cluster value a rollout can order its clusters by, read
// from Datadog. Each product reports it under its own Datadog metric name,
// tagged product:<product> and cluster:<id> like the monitors' metrics.
type Metric struct {
	// Name is what a spec's orderBy.metric says: "cpu", "throughput", ...
	Name string
	// Unit is the unit of the values ("percent", "MB/s", "partitions").
	Unit string
	// Description says what the value is, for help texts.
	Description string
	// Aggregator is the Datadog space aggregator across a cluster's nodes
	// ("avg", "sum", "max").
	Aggregator string
	// metrics maps a product to its Datadog metric name.
	metrics map[string]string
}

// DatadogMetric returns the Datadog metric name the product reports this
// metric under, or false when the product does not report it (partitions
// exist for Kafka only).
func (m Metric) DatadogMetric(product string) (string, bool) {
	name, ok := m.metrics[product]
	return name, ok
}

// Products lists the products that report the metric, sorted.
func (m Metric) Products() []string {
	return slices.Sorted(maps.Keys(m.metrics))
}

// Query is the Datadog metrics query reading the metric for every cluster
// of the product, one series per cluster (scope "cluster:<id>"):
//
//	avg:kafka.broker.cpu.percent{product:kafka} by {cluster}
//
// It is "" when the product does not report the metric.
func (m Metric) Query(product string) string {
	name, ok := m.metrics[product]
	if !ok {
		return ""
	}
	return m.Aggregator + ":" + name + "{" + ProductTag(product) + "} by {" + GroupBy + "}"
}

// ClusterQuery is the Datadog metrics query reading the metric for one
// cluster of the product, one series (scope "cluster:<id>"):
//
//	avg:kafka.broker.cpu.percent{cluster:lkc-00042}
//
// It is "" when the product does not report the metric.
func (m Metric) ClusterQuery(product, clusterID string) string {
	name, ok := m.metrics[product]
	if !ok {
		return ""
	}
	return m.Aggregator + ":" + name + "{" + GroupName(clusterID) + "}"
}

func (m Metric) clone() Metric {
	m.metrics = maps.Clone(m.metrics)
	return m
}

// metricCatalog is the source of truth for Metrics, sorted by name.
var metricCatalog = []Metric{
	{
		Name: MetricCPU, Unit: "percent", Aggregator: "avg",
		Description: "CPU use in percent, averaged over the cluster's nodes",
		metrics: map[string]string{
			fleet.ProductKafka:          "kafka.broker.cpu.percent",
			fleet.ProductKsqlDB:         "ksqldb.server.cpu.percent",
			fleet.ProductConnect:        "connect.worker.cpu.percent",
			fleet.ProductSchemaRegistry: "schema_registry.server.cpu.percent",
		},
	},
	{
		Name: MetricPartitions, Unit: "partitions", Aggregator: "sum",
		Description: "partition replicas hosted, summed over the brokers (Kafka only)",
		metrics: map[string]string{
			fleet.ProductKafka: "kafka.broker.partitions.count",
		},
	},
	{
		Name: MetricStorage, Unit: "percent", Aggregator: "max",
		Description: "data volume use in percent, the fullest node's",
		metrics: map[string]string{
			fleet.ProductKafka:          "kafka.broker.storage.used.percent",
			fleet.ProductKsqlDB:         "ksqldb.server.storage.used.percent",
			fleet.ProductConnect:        "connect.worker.storage.used.percent",
			fleet.ProductSchemaRegistry: "schema_registry.server.storage.used.percent",
		},
	},
	{
		Name: MetricThroughput, Unit: "MB/s", Aggregator: "sum",
		Description: "bytes in and out in MB/s, summed over the cluster's nodes",
		metrics: map[string]string{
			fleet.ProductKafka:          "kafka.broker.throughput.mbps",
			fleet.ProductKsqlDB:         "ksqldb.server.throughput.mbps",
			fleet.ProductConnect:        "connect.worker.throughput.mbps",
			fleet.ProductSchemaRegistry: "schema_registry.server.throughput.mbps",
		},
	},
}

// Metrics returns every ordering metric, sorted by name (fresh copies).
func Metrics() []Metric {
	out := make([]Metric, len(metricCatalog))
	for i, m := range metricCatalog {
		out[i] = m.clone()
	}
	return out
}

// MetricByName returns the ordering metric with that name.
func MetricByName(name string) (Metric, bool) {
	for _, m := range metricCatalog {
		if m.Name == name {
			return m.clone(), true
		}
	}
	return Metric{}, false
}

// MetricNames lists the ordering metrics' names, sorted.
func MetricNames() []string {
	out := make([]string, len(metricCatalog))
	for i, m := range metricCatalog {
		out[i] = m.Name
	}
	return out
}

// MetricSource is one Datadog metric name's meaning: which ordering metric
// of which product it is.
type MetricSource struct {
	Metric  string // ordering metric name, e.g. "cpu"
	Product string
}

// LookupDatadogMetric returns what a Datadog metric name reports, for the
// Datadog-compatible endpoint: every (ordering metric, product) pair the
// catalog reports under that name; nil when none.
func LookupDatadogMetric(datadogMetric string) []MetricSource {
	var out []MetricSource
	for _, m := range metricCatalog {
		for _, p := range m.Products() {
			if m.metrics[p] == datadogMetric {
				out = append(out, MetricSource{Metric: m.Name, Product: p})
			}
		}
	}
	return out
}
