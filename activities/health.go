package activities

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/internal/fresh"
	"github.com/fleet-rollout/fleet/internal/monitors"
	"github.com/fleet-rollout/fleet/workflows"
)

// Health reads are batched: a product's critical monitors are read once,
// with every group (one per cluster) in the answer, and every cluster of
// that product is answered from that read. Every check is answered by a
// read that began after it asked (a cluster that has just finished applying
// is never judged by monitors read before): the checks that ask while a
// read is in flight (every batch on the worker) share the next one, and a
// product's monitors are read at most once per DatadogConfig.HealthReadSpacing.
// A worker so makes a few requests per product per interval (per page of
// monitorsPageSize monitors), however many clusters are in flight, where it
// made one per cluster.

// DefaultHealthReadSpacing is the least time between two reads of a
// product's monitors (DatadogConfig.HealthReadSpacing).
const DefaultHealthReadSpacing = 500 * time.Millisecond

// monitorsPageSize is how many monitors a bulk read asks per page
// (Datadog's default page size; its maximum is 1000). Each monitor comes
// with all its groups, one per cluster of the product.
const monitorsPageSize = 100

// maxMonitorPages bounds one bulk read, in case an endpoint ignores paging
// and answers every page in full.
const maxMonitorPages = 50

// productMonitors is one read of a product's critical monitors: by monitor
// ID, its name and its groups' statuses (group name "cluster:<id>" ->
// Datadog status "OK", "Alert", ...).
type productMonitors map[int64]monitorGroups

type monitorGroups struct {
	name   string
	groups map[string]string
}

// readProduct lists the product's critical monitors with all their group
// states (ListMonitors: monitor_tags=product:<p>,fleet:rollout-critical,
// group_states=all), page by page: one request per page, each bounded by
// the request timeout and ctx. A closed rate-limit window fails it at once
// (RateLimitedError): the checks sharing it wait, each within its deadline.
func (d *Datadog) readProduct(ctx context.Context, product string) (productMonitors, error) {
	pageSize := d.pageSize
	if pageSize <= 0 {
		pageSize = monitorsPageSize
	}
	out := productMonitors{}
	for page := int64(0); page < maxMonitorPages; page++ {
		opts := datadogV1.NewListMonitorsOptionalParameters().
			WithMonitorTags(monitors.ProductTag(product) + "," + CriticalTag).
			WithGroupStates("all").
			WithPage(page).
			WithPageSize(pageSize)
		if wait, by := d.rateLimit(); wait > 0 {
			return nil, &RateLimitedError{By: by, Wait: wait}
		}
		rctx, cancel := d.request(ctx)
		got, resp, err := d.api.ListMonitors(rctx, *opts)
		timedOut := context.Cause(rctx) // before cancel: set only on the timeout
		cancel()
		d.observeRateLimit(resp)
		if err != nil {
			code := 0
			if resp != nil {
				code = resp.StatusCode
			}
			if timedOut != nil && ctx.Err() == nil {
				err = fmt.Errorf("%w (%v)", err, timedOut)
			}
			return nil, fmt.Errorf("list the %s monitors, page %d (HTTP %d): %w", product, page, code, err)
		}
		added := 0
		for _, m := range got {
			if _, seen := out[m.GetId()]; seen {
				continue
			}
			added++
			st := m.GetState()
			groups := make(map[string]string, len(st.Groups))
			for name, g := range st.Groups {
				groups[name] = string(g.GetStatus())
			}
			out[m.GetId()] = monitorGroups{name: m.GetName(), groups: groups}
		}
		if len(got) < int(pageSize) || added == 0 {
			return out, nil
		}
	}
	return out, nil
}

// productHealth returns a read of the product's critical monitors that
// began after this call asked: one in flight that began since, or the next
// one. The read is shared (see fresh.Group): it runs under its own deadline
// (DatadogConfig.HealthReadTimeout), whatever the deadline of the check that
// started it, and this check waits for it only until its own ctx ends. A
// rate limit is waited out here, by each check within its own deadline,
// never inside the shared read (which fails on it at once).
func (d *Datadog) productHealth(ctx context.Context, product string) (productMonitors, fresh.Result, time.Time, error) {
	for {
		if err := d.waitForRateLimit(ctx); err != nil {
			return nil, 0, time.Time{}, err
		}
		notBefore := time.Now()
		snap, began, how, err := d.reads.Do(ctx, product, notBefore, func(rctx context.Context) (productMonitors, error) {
			return d.readProduct(rctx, product)
		})
		if err == nil {
			return snap, how, began, nil
		}
		if ctx.Err() != nil {
			return nil, how, began, fmt.Errorf("read the %s monitors: %w", product, context.Cause(ctx))
		}
		var rl *RateLimitedError
		if errors.As(err, &rl) {
			// The shared read met a closed rate-limit window: wait for it
			// here if this check's deadline leaves room, else fail on it.
			continue
		}
		return nil, how, began, err
	}
}

// beforeDeadline is ctx with a deadline a margin before its own (a tenth of
// the time left, between minReportMargin and maxReportMargin), so that
// what waits on it ends while its caller can still report why.
func beforeDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	margin := min(max(time.Until(dl)/10, minReportMargin), maxReportMargin)
	return context.WithDeadlineCause(ctx, dl.Add(-margin),
		fmt.Errorf("monitors not read %s before the check's deadline: %w", margin.Round(time.Millisecond), context.DeadlineExceeded))
}

const (
	minReportMargin = 100 * time.Millisecond
	maxReportMargin = time.Second
)

// clusterFindings answers one cluster from its product's monitors: an
// alerting group is a finding; OK, Warn and Ignored are fine; No Data is
// unknown unless the monitor accepts it (NoDataOK); a monitor Datadog does
// not have, or one without a group for the cluster, is unknown.
func clusterFindings(clusterID string, expected []monitors.Monitor, got productMonitors) []workflows.Finding {
	group := monitors.GroupName(clusterID)
	var findings []workflows.Finding
	for _, want := range expected {
		m, ok := got[want.ID]
		if !ok {
			findings = append(findings, workflows.Finding{ClusterID: clusterID, Unknown: true, Monitor: want.Name, Status: "missing", Message: "monitor not found in Datadog"})
			continue
		}
		status := m.groups[group]
		switch datadogV1.MonitorOverallStates(status) {
		case datadogV1.MONITOROVERALLSTATES_OK, datadogV1.MONITOROVERALLSTATES_WARN, datadogV1.MONITOROVERALLSTATES_IGNORED:
		case datadogV1.MONITOROVERALLSTATES_ALERT:
			findings = append(findings, workflows.Finding{ClusterID: clusterID, Monitor: want.Name, Status: status, Message: m.name})
		default:
			if want.NoDataOK && status == string(datadogV1.MONITOROVERALLSTATES_NO_DATA) {
				continue // this monitor is configured to accept no data
			}
			if status == "" {
				status = "no group"
			}
			findings = append(findings, workflows.Finding{ClusterID: clusterID, Unknown: true, Monitor: want.Name, Status: status, Message: "no data for " + group})
		}
	}
	return findings
}

// readFailure classifies a failed monitor read for the metrics.
func readFailure(err error) string {
	var rl *RateLimitedError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &rl):
		return "rate-limited"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "error"
}

// CheckHealth reads the critical monitors of each cluster: one shared read
// per product (see productHealth), each cluster answered from its
// product's. An alert is a finding; no data is an unknown finding; monitors
// that cannot be read at all fail the activity, which the workflow treats as
// health unknown.
func (a *Activities) CheckHealth(ctx context.Context, in workflows.HealthInput) (workflows.HealthResult, error) {
	if a.Datadog == nil {
		if a.MonitoringOff {
			a.Log.Warn("health checks skipped: monitoring is off", zap.Int("clusters", len(in.Clusters)))
		} else {
			a.Log.Warn("health checks skipped: no Datadog configured", zap.Int("clusters", len(in.Clusters)))
		}
		return workflows.HealthResult{}, nil
	}
	if activity.IsActivity(ctx) {
		// The read heartbeats while it runs (a rate limit waited out
		// included), so a read lost with a stopped worker times out at
		// its heartbeat timeout and the next read comes in time.
		stop := heartbeat(ctx, time.Second)
		defer stop()
	}
	// Answer before the activity's deadline, with room to report: the
	// worker's deadline runs from when it got the task, later than the
	// server's StartToClose, so a check that waits until its ctx ends
	// always loses the race and reports a timeout instead of its cause.
	ctx, cancel := beforeDeadline(ctx)
	defer cancel()
	expected := map[string][]monitors.Monitor{}
	var products []string
	for _, t := range in.Clusters {
		if _, ok := expected[t.Product]; ok {
			continue
		}
		expected[t.Product] = forProduct(a.Catalog, t.Product)
		if len(expected[t.Product]) > 0 {
			products = append(products, t.Product)
		}
	}
	sort.Strings(products)
	reads := make([]productMonitors, len(products))
	errs := make([]error, len(products))
	done := make(chan struct{})
	for i, p := range products {
		go func() {
			defer func() { done <- struct{}{} }()
			start := time.Now()
			snap, how, began, err := a.Datadog.productHealth(ctx, p)
			a.Metrics.ObserveHealthRead(time.Since(start), readFailure(err), err)
			if err == nil && a.Log != nil {
				a.Log.Debug("monitors read", zap.String("product", p), zap.Stringer("read", how),
					zap.Duration("age", time.Since(began)), zap.Int("clusters", len(in.Clusters)))
			}
			reads[i], errs[i] = snap, err
		}()
	}
	for range products {
		<-done
	}
	for _, first := range errs { // the first failed product's, in order
		if first == nil {
			continue
		}
		err := fmt.Errorf("check health of %d clusters: %w", len(in.Clusters), first)
		var rl *RateLimitedError
		if errors.As(first, &rl) {
			return workflows.HealthResult{}, temporal.NewApplicationErrorWithOptions(err.Error(), "RateLimited",
				temporal.ApplicationErrorOptions{NextRetryDelay: rl.Wait, Cause: err})
		}
		return workflows.HealthResult{}, err
	}
	byProduct := make(map[string]productMonitors, len(products))
	for i, p := range products {
		byProduct[p] = reads[i]
	}
	var findings []workflows.Finding
	for _, t := range in.Clusters {
		findings = append(findings, clusterFindings(t.ClusterID, expected[t.Product], byProduct[t.Product])...)
	}
	sort.Slice(findings, func(i, j int) bool {
		if findings[i].ClusterID != findings[j].ClusterID {
			return findings[i].ClusterID < findings[j].ClusterID
		}
		return findings[i].Monitor < findings[j].Monitor
	})
	return workflows.HealthResult{Findings: findings}, nil
}
