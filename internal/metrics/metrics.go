// Package metrics is the worker's Prometheus registry: the Temporal SDK's
// metrics (client, worker, workflow and activity), through the SDK's
// OpenTelemetry contrib handler and OpenTelemetry's Prometheus exporter,
// and the fleet's own metrics, served on the worker's /metrics.
//
// Workflow code counts through workflow.GetMetricsHandler (the SDK drops
// what is recorded while a workflow task replays, so a counter counts each
// event once); the rollouts' gauges (clusters by state, paused, outbox) are
// read at scrape time from the running rollouts' status query (Rollouts),
// so they are right whichever worker runs the rollout and vanish when it
// ends. The README's Metrics section lists every metric with its labels.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdkclient "go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
)

// Names of the fleet's own metrics recorded outside workflow code. The
// workflow-side names are in package workflows (MetricPauses, ...); every
// counter gets the suffix _total on /metrics.
const (
	HealthReadSeconds   = "fleet_health_read_seconds"
	HealthReadFailures  = "fleet_health_read_failures_total"
	BridgeLagSeconds    = "fleet_bridge_lag_seconds"
	BridgeDelivered     = "fleet_bridge_events_delivered_total"
	BridgeDeadLetters   = "fleet_bridge_dead_letters_total"
	RolloutClusters     = "fleet_rollout_clusters"
	RolloutPaused       = "fleet_rollout_paused"
	RolloutPausedSince  = "fleet_rollout_paused_since_timestamp_seconds"
	RolloutFailures     = "fleet_rollout_failures"
	RolloutBudget       = "fleet_rollout_failure_budget"
	RolloutOutbox       = "fleet_outbox_depth"
	RolloutsRunning     = "fleet_rollouts_running"
	RolloutScrapeErrors = "fleet_rollout_status_errors_total"
)

// Metrics is one worker's registry and the fleet's collectors on it. A nil
// *Metrics records nothing: every method is safe on it.
type Metrics struct {
	Registry *prometheus.Registry

	provider *sdkmetric.MeterProvider
	handler  sdkclient.MetricsHandler

	healthRead     *prometheus.HistogramVec
	healthFailures *prometheus.CounterVec
	bridgeLag      prometheus.Histogram
}

// New builds a registry with the Go runtime and process collectors, the
// Temporal SDK's handler and the fleet's metrics.
func New() (*Metrics, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, fmt.Errorf("metrics: prometheus exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	m := &Metrics{
		Registry: reg,
		provider: mp,
		handler: temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
			Meter:                mp.Meter("temporal-sdk-go"),
			UseMonotonicCounters: true,
			// A metric the meter refuses (a bad name) must not panic a
			// workflow task: it is dropped.
			OnError: func(error) {},
		}),
		healthRead: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    HealthReadSeconds,
			Help:    "How long a health check (CheckHealth) waited for one product's monitors from Datadog (a read shared between the worker's checks), by result (ok, error).",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"result"}),
		healthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: HealthReadFailures,
			Help: "Monitor reads from Datadog that failed (health unknown), by reason (rate-limited, timeout, error).",
		}, []string{"reason"}),
		bridgeLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    BridgeLagSeconds,
			Help:    "Time from a data-plane status event (its Kafka timestamp) to its signal's delivery to the batch.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}),
	}
	reg.MustRegister(m.healthRead, m.healthFailures, m.bridgeLag)
	// Zero series exist from the start, so rate() and alerts see them.
	for _, r := range []string{"ok", "error"} {
		m.healthRead.WithLabelValues(r)
	}
	for _, r := range []string{"rate-limited", "timeout", "error"} {
		m.healthFailures.WithLabelValues(r)
	}
	return m, nil
}

// TemporalHandler is the Temporal client's MetricsHandler (nil: none).
func (m *Metrics) TemporalHandler() sdkclient.MetricsHandler {
	if m == nil {
		return nil
	}
	return m.handler
}

// HTTPHandler serves the registry in Prometheus's text format.
func (m *Metrics) HTTPHandler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// ObserveHealthRead records one health check's read of one product's
// monitors (shared with the other checks on the worker while fresh); reason
// classifies a failure (ignored when err is nil).
func (m *Metrics) ObserveHealthRead(d time.Duration, reason string, err error) {
	if m == nil {
		return
	}
	if err == nil {
		m.healthRead.WithLabelValues("ok").Observe(d.Seconds())
		return
	}
	m.healthRead.WithLabelValues("error").Observe(d.Seconds())
	m.healthFailures.WithLabelValues(reason).Inc()
}

// ObserveBridgeLag records the lag of one delivered status event.
func (m *Metrics) ObserveBridgeLag(d time.Duration) {
	if m == nil || d < 0 {
		return
	}
	m.bridgeLag.Observe(d.Seconds())
}

// BridgeStats is what the status bridge counts (internal/bridge.Bridge).
type BridgeStats interface {
	Stats() (delivered, dropped int64)
	DeadLettered() (byReason map[string]int64, total int64)
}

// RegisterBridge exports the bridge's counters, read at scrape time.
func (m *Metrics) RegisterBridge(b BridgeStats) error {
	if m == nil {
		return nil
	}
	if err := m.Registry.Register(bridgeCollector{b}); err != nil {
		return fmt.Errorf("metrics: register the bridge: %w", err)
	}
	return nil
}

var (
	bridgeDeliveredDesc = prometheus.NewDesc(BridgeDelivered, "Status events the bridge delivered to workflows.", nil, nil)
	bridgeDeadDesc      = prometheus.NewDesc(BridgeDeadLetters, "Status events the bridge could not deliver and wrote to the dead-letter topic, by reason.", []string{"reason"}, nil)
)

type bridgeCollector struct{ b BridgeStats }

func (c bridgeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- bridgeDeliveredDesc
	ch <- bridgeDeadDesc
}

func (c bridgeCollector) Collect(ch chan<- prometheus.Metric) {
	delivered, _ := c.b.Stats()
	ch <- prometheus.MustNewConstMetric(bridgeDeliveredDesc, prometheus.CounterValue, float64(delivered))
	byReason, _ := c.b.DeadLettered()
	for r, n := range byReason {
		ch <- prometheus.MustNewConstMetric(bridgeDeadDesc, prometheus.CounterValue, float64(n), r)
	}
}

// Close flushes and stops the SDK's meter provider.
func (m *Metrics) Close(ctx context.Context) error {
	if m == nil {
		return nil
	}
	if err := m.provider.Shutdown(ctx); err != nil && !errors.Is(err, sdkmetric.ErrReaderShutdown) {
		return fmt.Errorf("metrics: shut down: %w", err)
	}
	return nil
}
