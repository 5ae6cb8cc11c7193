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

// Health reads are batched: a product's critical monitors are read once
// for every cluster of that product on the worker. Every check is answered
// by a read that began after it asked (a cluster that has just finished
// applying is never judged by monitors read before): the checks that ask
// while a read is in flight (every batch on the worker) share the next one,
// and a product's monitors are read at most once per
// DatadogConfig.HealthReadSpacing. A worker so makes a few requests per
// product per interval (per page of monitorsPageSize monitors), however many
// clusters are in flight, where it made one per cluster.
//
// What a read answers follows the clusters that are not OK, not the fleet:
// the frequent read (the issues read) asks only the groups in Alert, Warn or
// No Data (group_states=alert,warn,no data), for every monitor of the
// product. A rare read (the roster, group_states=all, shared and reused while
// at most DatadogConfig.HealthRosterMaxAge old) tells which groups exist. A
// cluster's group is then: its status in the issues read; else OK when the
// roster has it (never the roster's own, possibly stale, status: a group
// that is not OK now is in the issues read); else, the group may be new
// since the roster was read: the check asks once for a roster read begun
// after it asked, and a group still absent is "no group" (unknown). Decoding
// every group of every monitor twice a second was most of the worker's CPU
// at 2,000 clusters.

// DefaultHealthReadSpacing is the least time between two reads of a
// product's monitors (DatadogConfig.HealthReadSpacing).
const DefaultHealthReadSpacing = 500 * time.Millisecond

// DefaultHealthRosterMaxAge is how old a product's roster (which groups
// exist) may be when a check uses it (DatadogConfig.HealthRosterMaxAge).
const DefaultHealthRosterMaxAge = time.Minute

// monitorsPageSize is how many monitors a bulk read asks per page
// (Datadog's default page size; its maximum is 1000).
const monitorsPageSize = 100

// maxMonitorPages bounds one bulk read, in case an endpoint ignores paging
// and answers every page in full.
const maxMonitorPages = 50

// The group_states of the two reads: the issues read asks the groups that
// are not OK (Datadog filters state.groups by it), the roster every group.
const (
	issueGroupStates  = "alert,warn,no data"
	rosterGroupStates = "all"
)

// productMonitors is one read of a product's critical monitors: by monitor
// ID, its name and its groups' statuses (group name "cluster:<id>" ->
// Datadog status "OK", "Alert", ...).
type productMonitors map[int64]monitorGroups

type monitorGroups struct {
	name   string
	groups map[string]string
}

// productRoster is which groups each of a product's critical monitors has
// (by monitor ID, the group names), without their statuses.
type productRoster map[int64]map[string]struct{}

func rosterOf(read productMonitors) productRoster {
	out := make(productRoster, len(read))
	for id, m := range read {
		groups := make(map[string]struct{}, len(m.groups))
		for name := range m.groups {
			groups[name] = struct{}{}
		}
		out[id] = groups
	}
	return out
}

// readProduct lists the product's critical monitors with the groups in
// groupStates (ListMonitors: monitor_tags=product:<p>,fleet:rollout-critical,
// group_states=<groupStates>), page by page: one request per page, each
// bounded by the request timeout and ctx. A closed rate-limit window fails
// it at once (RateLimitedError): the checks sharing it wait, each within its
// deadline.
func (d *Datadog) readProduct(ctx context.Context, product, groupStates string) (productMonitors, error) {
	pageSize := d.pageSize
	switch {
	case pageSize > 0:
	case groupStates == rosterGroupStates && d.rosterPageSize > 0:
		pageSize = d.rosterPageSize
	default:
		pageSize = monitorsPageSize
	}
	out := productMonitors{}
	for page := int64(0); page < maxMonitorPages; page++ {
		opts := datadogV1.NewListMonitorsOptionalParameters().
			WithMonitorTags(monitors.ProductTag(product) + "," + CriticalTag).
			WithGroupStates(groupStates).
			WithPage(page).
			WithPageSize(pageSize)
		if wait, by := d.rateLimit(); wait > 0 {
			return nil, &RateLimitedError{By: by, Wait: wait}
		}
		var within time.Duration
		if groupStates == rosterGroupStates {
			// A roster page holds a group per cluster of the product.
			within = d.rosters.Timeout
		}
		rctx, cancel := d.requestWithin(ctx, within)
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
			return nil, fmt.Errorf("list the %s monitors (group_states=%s), page %d (HTTP %d): %w", product, groupStates, page, code, err)
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

// sharedRead returns a read of the product through g that began at or
// after notBefore() (asked anew at each try). The read is shared (see
// fresh.Group): it runs under its own deadline (DatadogConfig.HealthReadTimeout),
// whatever the deadline of the check that started it, and this check waits
// for it only until its own ctx ends. A rate limit is waited out here, by
// each check within its own deadline, never inside the shared read (which
// fails on it at once).
func sharedRead[V any](ctx context.Context, d *Datadog, g *fresh.Group[string, V], product, what string,
	notBefore func() time.Time, read func(context.Context) (V, error)) (V, fresh.Result, time.Time, error) {
	for {
		if err := d.waitForRateLimit(ctx); err != nil {
			var zero V
			return zero, 0, time.Time{}, err
		}
		v, began, how, err := g.Do(ctx, product, notBefore(), read)
		if err == nil {
			return v, how, began, nil
		}
		if ctx.Err() != nil {
			return v, how, began, fmt.Errorf("read the %s monitors (%s): %w", product, what, context.Cause(ctx))
		}
		var rl *RateLimitedError
		if errors.As(err, &rl) {
			// The shared read met a closed rate-limit window: wait for it
			// here if this check's deadline leaves room, else fail on it.
			continue
		}
		return v, how, began, err
	}
}

// productRead is how a check's product was answered, for the logs.
type productRead struct {
	how           fresh.Result // the issues read
	began         time.Time    // the issues read's start
	rosterBegan   time.Time
	rosterRefresh bool // a group absent from the roster made it read anew
}

// productHealth answers the product's clusters: an issues read that began
// after this call asked, then the last roster while at most
// HealthRosterMaxAge old (else a roster read begun after this call asked),
// merged (see merge); a group in neither makes it read the roster once
// more, a read begun after it asked, and merge again.
func (d *Datadog) productHealth(ctx context.Context, product string, clusters []string) (productMonitors, productRead, error) {
	asked := time.Now()
	var info productRead
	// A roster read begun after this call asked (the one in flight when it
	// did, or the next): never one from before, which may hang until its
	// deadline.
	readRoster := func() (productRoster, time.Time, error) {
		return d.rosterSince(ctx, product, asked)
	}
	issues, how, began, err := sharedRead(ctx, d, &d.reads, product, "issues", time.Now,
		func(rctx context.Context) (productMonitors, error) {
			return d.readProduct(rctx, product, issueGroupStates)
		})
	info.how, info.began = how, began
	if err != nil {
		return nil, info, err
	}
	// The last roster while at most rosterMaxAge old. An older one is
	// still used, up to rosterStaleLimit times that age, while a new one
	// is read in the background: no check waits for the whole fleet's
	// groups to be read (a group it lacks still makes the check read anew,
	// below). Without one, or past that, the check reads a new one.
	roster, rosterBegan, ok := d.rosters.Last(product)
	maxAge := d.rosterAge(product)
	if age := time.Since(rosterBegan); !ok || age > rosterStaleLimit*maxAge {
		// Any roster newer than the last will do (it says which groups
		// exist; freshness is the frequent read's): the checks that find
		// none share the one in flight, however long it takes. It is read
		// in the background, so a read longer than this check's deadline
		// still ends and serves the next checks; this check waits for it
		// within its own.
		newer := rosterBegan.Add(time.Nanosecond)
		d.refreshRoster(product, newer)
		roster, rosterBegan, err = d.rosterSince(ctx, product, newer)
		if err != nil {
			return nil, info, err
		}
	} else if age > maxAge {
		d.refreshRoster(product, time.Now())
	}
	info.rosterBegan = rosterBegan
	got, absent := merge(issues, roster, clusters)
	if !absent || !rosterBegan.Before(asked) {
		return got, info, nil
	}
	// A group the roster lacks may be new since it was read.
	roster, rosterBegan, err = readRoster()
	info.rosterBegan, info.rosterRefresh = rosterBegan, true
	if err != nil {
		return nil, info, err
	}
	got, _ = merge(issues, roster, clusters)
	return got, info, nil
}

// rosterStaleLimit is how many times its max age (rosterAge) a roster may be
// old while a new one is read in the background.
const rosterStaleLimit = 3

// rosterAge is how old the product's roster may be when a check uses it:
// HealthRosterMaxAge, or HealthRosterReadShare times its last read's duration
// when that is longer (at 100,000 clusters the kafka roster takes seconds
// to read: read every minute it would keep a core busy, and under load
// never finish).
func (d *Datadog) rosterAge(product string) time.Duration {
	d.mu.Lock()
	took := d.rosterTook[product]
	d.mu.Unlock()
	return max(d.rosterMaxAge, time.Duration(d.rosterShare)*took)
}

// refreshRoster reads the product's roster in the background (one read at
// a time per product), under the roster read's own deadline: a read begun
// at or after notBefore (one in flight since then, or the next).
func (d *Datadog) refreshRoster(product string, notBefore time.Time) {
	d.mu.Lock()
	if d.refreshing[product] {
		d.mu.Unlock()
		return
	}
	if d.refreshing == nil {
		d.refreshing = map[string]bool{}
	}
	d.refreshing[product] = true
	d.mu.Unlock()
	go func() {
		defer func() {
			d.mu.Lock()
			delete(d.refreshing, product)
			d.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), d.rosters.Timeout)
		defer cancel()
		// A failed read leaves the last roster, which checks use while it
		// is young enough; past that, a check reads one itself and fails
		// with the cause.
		_, _, _ = d.rosterSince(ctx, product, notBefore)
	}()
}

// rosterSince returns a roster of the product read (shared) from asked on:
// the one in flight that began since, or the next.
func (d *Datadog) rosterSince(ctx context.Context, product string, asked time.Time) (productRoster, time.Time, error) {
	roster, _, began, err := sharedRead(ctx, d, &d.rosters, product, "roster", func() time.Time { return asked },
		func(rctx context.Context) (productRoster, error) {
			began := time.Now()
			read, err := d.readProduct(rctx, product, rosterGroupStates)
			if err != nil {
				return nil, err
			}
			d.mu.Lock()
			if d.rosterTook == nil {
				d.rosterTook = map[string]time.Duration{}
			}
			d.rosterTook[product] = time.Since(began)
			d.mu.Unlock()
			return rosterOf(read), nil
		})
	return roster, began, err
}

// merge answers the clusters from an issues read and a roster: every
// monitor of the issues read (a monitor it lacks is missing from Datadog),
// with, for each cluster's group, its status in the issues read, else "OK"
// when the roster has the group, else no group. absent says whether some
// cluster's group of some monitor is in neither. Neither read is changed
// (both are shared).
func merge(issues productMonitors, roster productRoster, clusters []string) (got productMonitors, absent bool) {
	got = make(productMonitors, len(issues))
	for id, m := range issues {
		groups := make(map[string]string, len(clusters))
		for _, c := range clusters {
			g := monitors.GroupName(c)
			if status, ok := m.groups[g]; ok {
				groups[g] = status
			} else if _, ok := roster[id][g]; ok {
				groups[g] = string(datadogV1.MONITOROVERALLSTATES_OK)
			} else {
				absent = true
			}
		}
		got[id] = monitorGroups{name: m.name, groups: groups}
	}
	return got, absent
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

// CheckHealth reads the critical monitors of each cluster: shared reads
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
	clusters := map[string][]string{}
	var products []string
	for _, t := range in.Clusters {
		if _, ok := expected[t.Product]; !ok {
			expected[t.Product] = forProduct(a.Catalog, t.Product)
			if len(expected[t.Product]) > 0 {
				products = append(products, t.Product)
			}
		}
		clusters[t.Product] = append(clusters[t.Product], t.ClusterID)
	}
	sort.Strings(products)
	reads := make([]productMonitors, len(products))
	errs := make([]error, len(products))
	done := make(chan struct{})
	for i, p := range products {
		go func() {
			defer func() { done <- struct{}{} }()
			start := time.Now()
			snap, info, err := a.Datadog.productHealth(ctx, p, clusters[p])
			a.Metrics.ObserveHealthRead(time.Since(start), readFailure(err), err)
			if err == nil && a.Log != nil {
				a.Log.Debug("monitors read", zap.String("product", p), zap.Stringer("read", info.how),
					zap.Duration("age", time.Since(info.began)), zap.Duration("roster_age", time.Since(info.rosterBegan)),
					zap.Bool("roster_refreshed", info.rosterRefresh), zap.Int("clusters", len(in.Clusters)))
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
