package metrics

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/workflows"
)

// RolloutLister returns the status of every running rollout, as each
// rollout's status query answers it; failed counts the rollouts that could
// not be asked (they are left out).
type RolloutLister func(ctx context.Context) (sts []workflows.RolloutStatus, failed int, err error)

// RolloutOptions configure RegisterRollouts.
type RolloutOptions struct {
	// Timeout bounds one read of every rollout (default 5 s, within
	// Prometheus's default scrape timeout of 10 s).
	Timeout time.Duration
	// MaxAge is how long one read serves scrapes (default 10 s), so that
	// several Prometheus servers, or a short scrape interval, cost one read.
	MaxAge time.Duration
	Log    *zap.Logger
}

// RegisterRollouts exports the running rollouts' gauges, read through list
// at scrape time (at most once per MaxAge).
func (m *Metrics) RegisterRollouts(list RolloutLister, o RolloutOptions) error {
	if m == nil {
		return nil
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	c := &rolloutCollector{list: list, o: o, errors: prometheus.NewCounter(prometheus.CounterOpts{
		Name: RolloutScrapeErrors,
		Help: "Reads of the running rollouts' status (at scrape time) that failed: the listing, or a rollout's query.",
	})}
	if err := m.Registry.Register(c); err != nil {
		return fmt.Errorf("metrics: register the rollouts: %w", err)
	}
	return nil
}

var (
	clustersDesc = prometheus.NewDesc(RolloutClusters,
		"Clusters of a running rollout by state (pending, inFlight, held, verifying, done, failed, aborted, skipped), as its status query counts them.",
		[]string{"rollout", "state"}, nil)
	pausedDesc = prometheus.NewDesc(RolloutPaused,
		"1 when a running rollout is paused, else 0.", []string{"rollout"}, nil)
	pausedSinceDesc = prometheus.NewDesc(RolloutPausedSince,
		"When a paused rollout paused (Unix seconds); absent while it is not paused.", []string{"rollout"}, nil)
	failuresDesc = prometheus.NewDesc(RolloutFailures,
		"Clusters of a running rollout counted against its error budget.", []string{"rollout"}, nil)
	budgetDesc = prometheus.NewDesc(RolloutBudget,
		"A running rollout's error budget: the failures it tolerates.", []string{"rollout"}, nil)
	outboxDesc = prometheus.NewDesc(RolloutOutbox,
		"Notifications and event batches a running rollout has queued and not yet sent (its outbox).", []string{"rollout"}, nil)
	runningDesc = prometheus.NewDesc(RolloutsRunning,
		"Running rollouts whose status was read.", nil, nil)
)

type rolloutCollector struct {
	list   RolloutLister
	o      RolloutOptions
	errors prometheus.Counter

	mu   sync.Mutex
	at   time.Time
	last []workflows.RolloutStatus
}

func (c *rolloutCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{clustersDesc, pausedDesc, pausedSinceDesc, failuresDesc, budgetDesc, outboxDesc, runningDesc} {
		ch <- d
	}
	c.errors.Describe(ch)
}

// read returns the rollouts' statuses, read again when older than MaxAge.
// A failed listing serves nothing (stale gauges would lie) and is counted.
func (c *rolloutCollector) read() []workflows.RolloutStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < c.o.MaxAge {
		return c.last
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.o.Timeout)
	defer cancel()
	sts, failed, err := c.list(ctx)
	if failed > 0 {
		c.errors.Add(float64(failed))
	}
	if err != nil {
		c.errors.Inc()
		c.o.Log.Warn("metrics: read the running rollouts", zap.Error(err))
		c.at, c.last = time.Time{}, nil
		return nil
	}
	c.at, c.last = time.Now(), sts
	return sts
}

func (c *rolloutCollector) Collect(ch chan<- prometheus.Metric) {
	sts := c.read()
	ch <- prometheus.MustNewConstMetric(runningDesc, prometheus.GaugeValue, float64(len(sts)))
	for _, st := range sts {
		name := st.Name
		if name == "" {
			name = st.ID
		}
		n := st.Counts
		for _, s := range []struct {
			state string
			n     int
		}{
			{"pending", n.Pending}, {"inFlight", n.InFlight}, {"held", n.Held}, {"verifying", n.Verifying},
			{"done", n.Done}, {"failed", n.Failed}, {"aborted", n.Aborted}, {"skipped", n.Skipped},
		} {
			ch <- prometheus.MustNewConstMetric(clustersDesc, prometheus.GaugeValue, float64(s.n), name, s.state)
		}
		paused := 0.0
		if st.Paused != nil {
			paused = 1
			ch <- prometheus.MustNewConstMetric(pausedSinceDesc, prometheus.GaugeValue, float64(st.Paused.At.UnixNano())/1e9, name)
		}
		ch <- prometheus.MustNewConstMetric(pausedDesc, prometheus.GaugeValue, paused, name)
		ch <- prometheus.MustNewConstMetric(failuresDesc, prometheus.GaugeValue, float64(st.Failures), name)
		ch <- prometheus.MustNewConstMetric(budgetDesc, prometheus.GaugeValue, float64(st.FailureBudget), name)
		ch <- prometheus.MustNewConstMetric(outboxDesc, prometheus.GaugeValue, float64(st.Outbox), name)
	}
	c.errors.Collect(ch)
}
