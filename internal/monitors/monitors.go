// Package monitors is the catalog of the Datadog monitors that gate a
// rollout: for every product, the critical signals (CPU, throughput dropped to
// zero, latency spikes, error rates, replication, storage, lag, JVM pauses,
// crash loops) that must stay green while a cluster changes.
//
// Every monitor is a multi-alert "query alert" grouped by {cluster}, so one
// monitor reports one group per cluster ("cluster:<id>"). Every monitor carries
// the tags product:<product> and fleet:rollout-critical, which is how the
// rollout's health checks select them.
//
// A monitor whose metric may legitimately be absent on a cluster (consumer
// lag where nothing consumes) is marked NoDataOK; for the others, a group in
// "No Data" counts as unhealthy.
//
// The package also lists the metrics a rollout may order its clusters by
// (Metrics: cpu, throughput, storage, partitions) with the Datadog query
// reading each per cluster.
//
// The package is pure data: no network, no Datadog client. IDs are stable so
// the simulator, the Datadog-compatible endpoint and tests agree on them.
package monitors

import (
	"fmt"
	"sort"

	"github.com/fleet-rollout/fleet/internal/fleet"
)

// TypeQueryAlert is the Datadog monitor type of every catalog entry.
const TypeQueryAlert = "query alert"

// TagRolloutCritical marks the monitors a rollout must watch.
const TagRolloutCritical = "fleet:rollout-critical"

// GroupBy is the tag every catalog monitor is grouped by; a group is named
// GroupBy + ":" + clusterID.
const GroupBy = "cluster"

// Monitor is one Datadog monitor definition.
type Monitor struct {
	ID      int64    `json:"id"`
	Name    string   `json:"name"`
	Product string   `json:"product"`
	Type    string   `json:"type"`
	Query   string   `json:"query"`
	Message string   `json:"message"`
	Tags    []string `json:"tags"`
	// NoDataOK marks a monitor configured to accept no data: for it, a
	// cluster's group reporting "No Data" means the signal does not exist
	// there (consumer lag on a cluster without consumers), not that health
	// is unknown. It is false by default: for every other monitor, no data
	// is unhealthy, like an alert the rollout cannot see past.
	NoDataOK bool `json:"noDataOk"`
}

// ProductTag is the tag selecting the monitors of one product.
func ProductTag(product string) string { return "product:" + product }

// GroupName is the name of the monitor group reporting on one cluster.
func GroupName(clusterID string) string { return GroupBy + ":" + clusterID }

// def is the compact form the catalog is written in.
type def struct {
	id      int64
	name    string
	query   string
	summary string
}

// noDataOK names the monitors that accept no data (Monitor.NoDataOK): their
// metric only exists where the cluster has the thing it measures.
//
//   - kafka-consumer-lag: kafka.consumer_lag is reported per consumer group;
//     a cluster nobody consumes from (a produce-only landing cluster, a fresh
//     one) has no group and so no series.
//   - connect-consumer-lag: only sink connectors consume; a Connect cluster
//     running only source connectors reports no lag at all.
//
// Every other monitor's metric is always reported by a healthy cluster, so
// no data there means the cluster (or its agent) is not healthy.
var noDataOK = map[string]bool{
	"kafka-consumer-lag":   true,
	"connect-consumer-lag": true,
}

// notify is appended to every message: where Datadog sends the alert.
const notify = "@slack-fleet-rollouts @webhook-fleet-rollout"

// catalog is the source of truth; Default copies it.
var catalog = func() []Monitor {
	var out []Monitor
	add := func(product string, defs []def) {
		for _, d := range defs {
			out = append(out, Monitor{
				ID:       d.id,
				Name:     d.name,
				Product:  product,
				Type:     TypeQueryAlert,
				Query:    d.query,
				Message:  message(d.summary),
				Tags:     []string{ProductTag(product), TagRolloutCritical},
				NoDataOK: noDataOK[d.name],
			})
		}
	}
	add(fleet.ProductKafka, kafkaDefs)
	add(fleet.ProductKsqlDB, ksqlDefs)
	add(fleet.ProductConnect, connectDefs)
	add(fleet.ProductSchemaRegistry, schemaRegistryDefs)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}()

func message(summary string) string {
	return fmt.Sprintf("{{#is_alert}}%s on cluster {{cluster.name}}: {{value}} (threshold {{threshold}}).{{/is_alert}}\n"+
		"{{#is_recovery}}Recovered on cluster {{cluster.name}}.{{/is_recovery}}\n"+
		"Rollouts touching this cluster pause while this monitor alerts. %s", summary, notify)
}

var kafkaDefs = []def{
	{1001, "kafka-cpu-high",
		"avg(last_10m):100 - avg:system.cpu.idle{product:kafka} by {cluster} > 85",
		"Broker CPU above 85%"},
	{1002, "kafka-throughput-zero",
		"sum(last_5m):sum:kafka.messages_in.rate{product:kafka} by {cluster} <= 0",
		"Produce throughput dropped to zero"},
	{1003, "kafka-produce-latency-p99",
		"avg(last_5m):max:kafka.request.produce.time.99percentile{product:kafka} by {cluster} > 500",
		"Produce request latency p99 above 500 ms"},
	{1004, "kafka-fetch-latency-p99",
		"avg(last_5m):max:kafka.request.fetch_consumer.time.99percentile{product:kafka} by {cluster} > 1000",
		"Consumer fetch latency p99 above 1000 ms"},
	{1005, "kafka-request-error-rate",
		"sum(last_5m):sum:kafka.request.produce.failed.rate{product:kafka} by {cluster} + sum:kafka.request.fetch.failed.rate{product:kafka} by {cluster} > 5",
		"Failed produce/fetch requests above 5/s"},
	{1006, "kafka-under-replicated-partitions",
		"max(last_5m):sum:kafka.replication.under_replicated_partitions{product:kafka} by {cluster} > 0",
		"Under-replicated partitions"},
	{1007, "kafka-offline-partitions",
		"max(last_5m):sum:kafka.replication.offline_partitions_count{product:kafka} by {cluster} > 0",
		"Offline partitions"},
	{1008, "kafka-active-controller",
		"min(last_5m):sum:kafka.replication.active_controller_count{product:kafka} by {cluster} < 1",
		"No active controller"},
	{1009, "kafka-storage-usage",
		"max(last_15m):max:system.disk.in_use{product:kafka,device:/var/lib/kafka} by {cluster} > 0.85",
		"Log volume usage above 85%"},
	{1010, "kafka-consumer-lag",
		"avg(last_15m):max:kafka.consumer_lag{product:kafka} by {cluster} > 100000",
		"Consumer lag above 100k messages"},
	{1011, "kafka-jvm-gc-pause",
		"avg(last_10m):max:jvm.gc.major_collection_time{product:kafka} by {cluster} > 200",
		"JVM major GC time above 200 ms/s"},
	{1012, "kafka-broker-restarts",
		"change(max(last_10m),last_10m):sum:kubernetes.containers.restarts{product:kafka,kube_container_name:kafka} by {cluster} > 3",
		"Broker containers crash looping"},
}

var ksqlDefs = []def{
	{2001, "ksqldb-cpu-high",
		"avg(last_10m):100 - avg:system.cpu.idle{product:ksqldb} by {cluster} > 85",
		"ksqlDB server CPU above 85%"},
	{2002, "ksqldb-throughput-zero",
		"sum(last_5m):sum:confluent.ksql.ksql_engine_query_stats.messages_consumed_per_sec{product:ksqldb} by {cluster} <= 0",
		"Persistent queries stopped consuming"},
	{2003, "ksqldb-pull-query-latency-p99",
		"avg(last_5m):max:confluent.ksql.pull_query_metrics.pull_query_requests_latency_99th_percentile{product:ksqldb} by {cluster} > 1000",
		"Pull query latency p99 above 1000 ms"},
	{2004, "ksqldb-request-error-rate",
		"sum(last_5m):sum:confluent.ksql.ksql_engine_query_stats.error_rate{product:ksqldb} by {cluster} > 1",
		"Query error rate above 1/s"},
	{2005, "ksqldb-error-queries",
		"max(last_5m):sum:confluent.ksql.ksql_engine_query_stats.error_queries{product:ksqldb} by {cluster} > 0",
		"Persistent queries in ERROR state"},
	{2006, "ksqldb-liveness",
		"min(last_5m):min:confluent.ksql.ksql_engine_query_stats.liveness_indicator{product:ksqldb} by {cluster} < 1",
		"ksqlDB engine not live"},
	{2007, "ksqldb-storage-usage",
		"max(last_15m):max:system.disk.in_use{product:ksqldb,device:/var/lib/ksql} by {cluster} > 0.85",
		"State store volume usage above 85%"},
	{2008, "ksqldb-consumer-lag",
		"avg(last_15m):max:kafka.consumer_lag{product:ksqldb} by {cluster} > 100000",
		"Query consumer lag above 100k messages"},
	{2009, "ksqldb-jvm-gc-pause",
		"avg(last_10m):max:jvm.gc.major_collection_time{product:ksqldb} by {cluster} > 200",
		"JVM major GC time above 200 ms/s"},
	{2010, "ksqldb-restarts",
		"change(max(last_10m),last_10m):sum:kubernetes.containers.restarts{product:ksqldb,kube_container_name:ksqldb} by {cluster} > 3",
		"ksqlDB containers crash looping"},
}

var connectDefs = []def{
	{3001, "connect-cpu-high",
		"avg(last_10m):100 - avg:system.cpu.idle{product:connect} by {cluster} > 85",
		"Connect worker CPU above 85%"},
	{3002, "connect-throughput-zero",
		"sum(last_5m):sum:confluent.kafka.connect.source_task_metrics.source_record_poll_rate{product:connect} by {cluster} + sum:confluent.kafka.connect.sink_task_metrics.sink_record_read_rate{product:connect} by {cluster} <= 0",
		"Connector throughput dropped to zero"},
	{3003, "connect-put-latency-p99",
		"avg(last_5m):max:confluent.kafka.connect.sink_task_metrics.put_batch_max_time_ms{product:connect} by {cluster} > 5000",
		"Sink put batch latency above 5000 ms"},
	{3004, "connect-request-error-rate",
		"sum(last_5m):sum:confluent.kafka.connect.task_error_metrics.total_record_errors{product:connect} by {cluster} > 10",
		"Record errors above 10 in 5 minutes"},
	{3005, "connect-failed-tasks",
		"max(last_5m):sum:confluent.kafka.connect.connect_worker_metrics.connector_failed_task_count{product:connect} by {cluster} > 0",
		"Connector tasks in FAILED state"},
	{3006, "connect-rebalance-stuck",
		"min(last_10m):max:confluent.kafka.connect.connect_worker_rebalance_metrics.rebalancing{product:connect} by {cluster} >= 1",
		"Worker group rebalancing for 10 minutes"},
	{3007, "connect-consumer-lag",
		"avg(last_15m):max:kafka.consumer_lag{product:connect} by {cluster} > 100000",
		"Sink connector lag above 100k messages"},
	{3008, "connect-heap-usage",
		"avg(last_10m):max:jvm.heap_memory{product:connect} by {cluster} / max:jvm.heap_memory_max{product:connect} by {cluster} > 0.9",
		"JVM heap usage above 90%"},
	{3009, "connect-jvm-gc-pause",
		"avg(last_10m):max:jvm.gc.major_collection_time{product:connect} by {cluster} > 200",
		"JVM major GC time above 200 ms/s"},
	{3010, "connect-restarts",
		"change(max(last_10m),last_10m):sum:kubernetes.containers.restarts{product:connect,kube_container_name:connect} by {cluster} > 3",
		"Connect worker containers crash looping"},
}

var schemaRegistryDefs = []def{
	{4001, "schema-registry-cpu-high",
		"avg(last_10m):100 - avg:system.cpu.idle{product:schema-registry} by {cluster} > 85",
		"Schema Registry CPU above 85%"},
	{4002, "schema-registry-throughput-zero",
		"sum(last_5m):sum:confluent.schema_registry.jersey_metrics.request_rate{product:schema-registry} by {cluster} <= 0",
		"Schema Registry stopped serving requests"},
	{4003, "schema-registry-request-latency-p99",
		"avg(last_5m):max:confluent.schema_registry.jersey_metrics.request_latency_99{product:schema-registry} by {cluster} > 250",
		"Request latency p99 above 250 ms"},
	{4004, "schema-registry-request-error-rate",
		"sum(last_5m):sum:confluent.schema_registry.jersey_metrics.request_error_rate{product:schema-registry} by {cluster} > 1",
		"Request error rate above 1/s"},
	{4005, "schema-registry-no-primary",
		"min(last_5m):sum:confluent.schema_registry.master_slave_role.master_slave_role{product:schema-registry} by {cluster} < 1",
		"No primary (leader) instance elected"},
	{4006, "schema-registry-storage-usage",
		"max(last_15m):max:kafka.log.partition.size{product:schema-registry,topic:_schemas} by {cluster} > 1073741824",
		"_schemas topic above 1 GiB"},
	{4007, "schema-registry-heap-usage",
		"avg(last_10m):max:jvm.heap_memory{product:schema-registry} by {cluster} / max:jvm.heap_memory_max{product:schema-registry} by {cluster} > 0.9",
		"JVM heap usage above 90%"},
	{4008, "schema-registry-jvm-gc-pause",
		"avg(last_10m):max:jvm.gc.major_collection_time{product:schema-registry} by {cluster} > 200",
		"JVM major GC time above 200 ms/s"},
	{4009, "schema-registry-restarts",
		"change(max(last_10m),last_10m):sum:kubernetes.containers.restarts{product:schema-registry,kube_container_name:schema-registry} by {cluster} > 3",
		"Schema Registry containers crash looping"},
}

// byName indexes the catalog by monitor name.
var byName = func() map[string]int {
	m := make(map[string]int, len(catalog))
	for i, mon := range catalog {
		m[mon.Name] = i
	}
	return m
}()

// Default returns every catalog monitor, sorted by ID. The slice and its
// tags are fresh copies: callers may modify them.
func Default() []Monitor {
	out := make([]Monitor, len(catalog))
	for i, m := range catalog {
		out[i] = m.clone()
	}
	return out
}

// ForProduct returns the catalog monitors of one product, sorted by ID; nil
// for an unknown product.
func ForProduct(product string) []Monitor {
	var out []Monitor
	for _, m := range catalog {
		if m.Product == product {
			out = append(out, m.clone())
		}
	}
	return out
}

// ByName returns the catalog monitor with that name.
func ByName(name string) (Monitor, bool) {
	i, ok := byName[name]
	if !ok {
		return Monitor{}, false
	}
	return catalog[i].clone(), true
}

// HasTag reports whether the monitor carries the tag.
func (m Monitor) HasTag(tag string) bool {
	for _, t := range m.Tags {
		if t == tag {
			return true
		}
	}
	return false
}

func (m Monitor) clone() Monitor {
	m.Tags = append([]string(nil), m.Tags...)
	return m
}
