package activities

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/fleet-rollout/fleet/internal/ddsim"
	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/monitors"
	"github.com/fleet-rollout/fleet/internal/sim"
	"github.com/fleet-rollout/fleet/workflows"
)

// The findings of one cluster, for every state its monitors' groups can be
// in (the mapping CheckHealth applies to each cluster of a bulk read).
func TestClusterFindings(t *testing.T) {
	cpu := monitors.Monitor{ID: 1, Name: "kafka-cpu-high", Product: fleet.ProductKafka}
	lag := monitors.Monitor{ID: 2, Name: "kafka-consumer-lag", Product: fleet.ProductKafka, NoDataOK: true}
	const id, group = "lkc-1", "cluster:lkc-1"
	read := func(cpuStatus, lagStatus string) productMonitors {
		out := productMonitors{
			1: {name: "Kafka CPU high (Datadog's name)", groups: map[string]string{"cluster:lkc-2": "Alert"}},
			2: {name: "kafka-consumer-lag", groups: map[string]string{"cluster:lkc-2": "No Data"}},
		}
		if cpuStatus != "" {
			out[1].groups[group] = cpuStatus
		}
		if lagStatus != "" {
			out[2].groups[group] = lagStatus
		}
		return out
	}
	alert := func(m monitors.Monitor, msg string) workflows.Finding {
		return workflows.Finding{ClusterID: id, Monitor: m.Name, Status: "Alert", Message: msg}
	}
	unknown := func(m monitors.Monitor, status, msg string) workflows.Finding {
		return workflows.Finding{ClusterID: id, Unknown: true, Monitor: m.Name, Status: status, Message: msg}
	}
	tests := []struct {
		name     string
		expected []monitors.Monitor
		got      productMonitors
		want     []workflows.Finding
	}{
		{"OK", []monitors.Monitor{cpu, lag}, read("OK", "OK"), nil},
		{"Warn is fine", []monitors.Monitor{cpu, lag}, read("Warn", "OK"), nil},
		{"Ignored is fine", []monitors.Monitor{cpu, lag}, read("Ignored", "OK"), nil},
		{"Alert is a finding, named as Datadog names the monitor", []monitors.Monitor{cpu, lag}, read("Alert", "OK"),
			[]workflows.Finding{alert(cpu, "Kafka CPU high (Datadog's name)")}},
		{"Alert on a no-data-ok monitor", []monitors.Monitor{cpu, lag}, read("OK", "Alert"),
			[]workflows.Finding{alert(lag, "kafka-consumer-lag")}},
		{"No Data is unknown", []monitors.Monitor{cpu, lag}, read("No Data", "OK"),
			[]workflows.Finding{unknown(cpu, "No Data", "no data for "+group)}},
		{"No Data where the monitor accepts it", []monitors.Monitor{cpu, lag}, read("OK", "No Data"), nil},
		{"Skipped (another status) is unknown", []monitors.Monitor{cpu, lag}, read("Skipped", "OK"),
			[]workflows.Finding{unknown(cpu, "Skipped", "no data for "+group)}},
		{"no group for the cluster", []monitors.Monitor{cpu, lag}, read("", "OK"),
			[]workflows.Finding{unknown(cpu, "no group", "no data for "+group)}},
		{"no group, even where no data is accepted", []monitors.Monitor{cpu, lag}, read("OK", ""),
			[]workflows.Finding{unknown(lag, "no group", "no data for "+group)}},
		{"monitor not in Datadog", []monitors.Monitor{cpu, lag}, productMonitors{2: read("OK", "OK")[2]},
			[]workflows.Finding{unknown(cpu, "missing", "monitor not found in Datadog")}},
		{"nothing read", []monitors.Monitor{cpu, lag}, nil,
			[]workflows.Finding{unknown(cpu, "missing", "monitor not found in Datadog"), unknown(lag, "missing", "monitor not found in Datadog")}},
		{"monitors not expected are ignored", []monitors.Monitor{lag}, read("Alert", "OK"), nil},
		{"nothing expected", nil, read("Alert", "Alert"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, clusterFindings(id, tt.expected, tt.got))
		})
	}
}

// overrideSource is the simulator with some groups' statuses set by the
// test.
type overrideSource struct {
	*sim.Simulator
	mu     sync.Mutex
	status map[[2]string]string
	added  map[string]string // clusters Datadog has groups for beyond the simulator's: ID -> product
}

// add gives Datadog groups for a cluster the simulator does not run (all
// OK unless set): a cluster new since a roster was read.
func (o *overrideSource) add(clusterID, product string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.added[clusterID] = product
}

func (o *overrideSource) ClusterIDs() []string {
	ids := o.Simulator.ClusterIDs()
	o.mu.Lock()
	defer o.mu.Unlock()
	for id := range o.added {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func (o *overrideSource) ClusterProduct(id string) (string, bool) {
	o.mu.Lock()
	p, ok := o.added[id]
	o.mu.Unlock()
	if ok {
		return p, true
	}
	return o.Simulator.ClusterProduct(id)
}

func (o *overrideSource) set(clusterID, monitor, status string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.status[[2]string{clusterID, monitor}] = status
}

func (o *overrideSource) MonitorStatus(clusterID, monitor string) string {
	o.mu.Lock()
	s, ok := o.status[[2]string{clusterID, monitor}]
	_, added := o.added[clusterID]
	o.mu.Unlock()
	if ok {
		return s
	}
	if added {
		return ddsim.StatusOK
	}
	return o.Simulator.MonitorStatus(clusterID, monitor)
}

// The simulator's group index (ddsim.GroupIndex) is overridden too, so
// that ddsim reads these overrides through it (as it reads the simulator's
// in production) rather than group by group: the promoted methods would
// ignore them, and ddsim reads an index only when GroupIndexOwner is the
// source it was given.
var _ ddsim.GroupIndex = (*overrideSource)(nil)

func (o *overrideSource) GroupIndexOwner() any { return o }

func (o *overrideSource) ProductClusters(product string) []string {
	ids := slices.Clone(o.Simulator.ProductClusters(product))
	o.mu.Lock()
	for id, p := range o.added {
		if p == product {
			ids = append(ids, id)
		}
	}
	o.mu.Unlock()
	sort.Strings(ids)
	return ids
}

func (o *overrideSource) MonitorStatuses(monitor string, clusterIDs []string) []string {
	out := o.Simulator.MonitorStatuses(monitor, clusterIDs)
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, id := range clusterIDs {
		if s, ok := o.status[[2]string{id, monitor}]; ok {
			out[i] = s
		} else if _, added := o.added[id]; added {
			out[i] = ddsim.StatusOK
		}
	}
	return out
}

func (o *overrideSource) NotOKGroups(monitor, product string) (map[string]string, bool) {
	base, ok := o.Simulator.NotOKGroups(monitor, product)
	if !ok {
		return nil, false
	}
	o.mu.Lock()
	set := map[string]string{}
	for k, s := range o.status {
		if k[1] == monitor {
			set[k[0]] = s
		}
	}
	o.mu.Unlock()
	for id, s := range set {
		if p, ok := o.ClusterProduct(id); !ok || p != product {
			continue // not a group of this monitor
		}
		if s == ddsim.StatusOK {
			delete(base, id)
		} else {
			base[id] = s
		}
	}
	return base, true
}

// healthEnv is a simulated fleet behind ddsim, and CheckHealth reading it
// through the official client over HTTP.
type healthEnv struct {
	src      *overrideSource
	srv      *ddsim.Server
	byStates *statesCounter
	url      string
	a        *Activities
	clusters []fleet.Cluster
}

func newHealthEnv(t *testing.T, n int, opts ddsim.Options, cfg DatadogConfig, wrap func(http.Handler) http.Handler) *healthEnv {
	t.Helper()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	clusters := sim.GenerateFleet(n, 3)
	s, err := sim.New(sim.Config{Clusters: clusters}, log.Named("sim"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	src := &overrideSource{Simulator: s, status: map[[2]string]string{}, added: map[string]string{}}
	opts.APIKey, opts.AppKey, opts.Log = testAPIKey, testAppKey, log.Named("ddsim")
	srv := ddsim.New(monitors.Default(), src, opts)
	h := srv.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	byStates := &statesCounter{n: map[string]int{}}
	h = byStates.wrap(h)
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	cfg.APIKey, cfg.AppKey, cfg.URL = testAPIKey, testAppKey, hs.URL
	if cfg.HealthRosterPageSize == 0 {
		// A roster read in one page, so the tests count reads as
		// requests (TestRosterReadsInSmallPages has the default).
		cfg.HealthRosterPageSize = monitorsPageSize
	}
	d, err := NewDatadog(cfg)
	require.NoError(t, err)
	return &healthEnv{src: src, srv: srv, byStates: byStates, url: hs.URL, clusters: clusters,
		a: &Activities{Datadog: d, Catalog: monitors.Default(), Log: log}}
}

func (e *healthEnv) listRequests() int { return e.srv.Requests()[ddsim.EndpointListMonitors] }

// issueReads and rosterReads count the ListMonitors requests of each kind
// (by their group_states).
func (e *healthEnv) issueReads() int  { return e.byStates.get(issueGroupStates) }
func (e *healthEnv) rosterReads() int { return e.byStates.get(rosterGroupStates) }

// statesCounter counts the ListMonitors requests by group_states.
type statesCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *statesCounter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/monitor" {
			c.mu.Lock()
			c.n[r.URL.Query().Get("group_states")]++
			c.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}

func (c *statesCounter) get(states string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[states]
}

func (e *healthEnv) targets() []workflows.HealthTarget {
	var out []workflows.HealthTarget
	for _, c := range e.clusters {
		out = append(out, workflows.HealthTarget{ClusterID: c.ID, Product: c.Product})
	}
	return out
}

// checkAll runs one CheckHealth per batch, all at once, and returns their
// findings together, by cluster.
func (e *healthEnv) checkAll(t *testing.T, batches [][]workflows.HealthTarget) map[string][]workflows.Finding {
	t.Helper()
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out = map[string][]workflows.Finding{}
	)
	for _, b := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res, err := e.a.CheckHealth(ctx, workflows.HealthInput{Clusters: b})
			if !assert.NoError(t, err) {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, f := range res.Findings {
				out[f.ClusterID] = append(out[f.ClusterID], f)
			}
		}()
	}
	wg.Wait()
	return out
}

func firstOf(clusters []fleet.Cluster, product string, skip int) fleet.Cluster {
	for _, c := range clusters {
		if c.Product == product {
			if skip == 0 {
				return c
			}
			skip--
		}
	}
	panic("no " + product + " cluster")
}

func productsOf(clusters []fleet.Cluster) map[string]int {
	out := map[string]int{}
	for _, c := range clusters {
		out[c.Product]++
	}
	return out
}

// 500 clusters in flight in 21 batches read their health at once: a
// request or two per product, not per cluster, against a Datadog whose rate limit
// (100 requests per 10 s) the per-cluster reads would have run into at the
// 101st cluster; every cluster's findings are its own.
func TestCheckHealthReadsInBulk(t *testing.T) {
	e := newHealthEnv(t, 500, ddsim.Options{RateLimit: 100, RateLimitPeriod: 10 * time.Second}, DatadogConfig{}, nil)
	products := productsOf(e.clusters)
	require.GreaterOrEqual(t, len(products), 3, "%v", products)

	kafka := fleet.ProductKafka
	alerting := firstOf(e.clusters, kafka, 0)
	noData := firstOf(e.clusters, kafka, 1)
	lagNoData := firstOf(e.clusters, kafka, 2)
	ksqlAlert := firstOf(e.clusters, fleet.ProductKsqlDB, 0)
	e.src.set(alerting.ID, "kafka-under-replicated-partitions", ddsim.StatusAlert)
	e.src.set(noData.ID, "kafka-cpu-high", ddsim.StatusNoData)
	e.src.set(lagNoData.ID, "kafka-consumer-lag", ddsim.StatusNoData) // accepted
	e.src.set(ksqlAlert.ID, "ksqldb-liveness", ddsim.StatusAlert)
	e.src.set(ksqlAlert.ID, "ksqldb-cpu-high", ddsim.StatusWarn) // fine

	targets := e.targets()
	// A cluster Datadog has no group for, in the last batch.
	targets = append(targets, workflows.HealthTarget{ClusterID: "lkc-not-in-datadog", Product: kafka})
	batches := batchesOf(targets, 25)
	require.Len(t, batches, 21)

	got := e.checkAll(t, batches)
	reqs := e.listRequests()
	// The first check of a product reads at once; the checks that ask
	// while that read is in flight share the next. So with the roster
	// (which groups exist); the cluster Datadog lacks may make its check
	// read the roster once more.
	issues, rosters := e.issueReads(), e.rosterReads()
	assert.Equal(t, reqs, issues+rosters)
	assert.LessOrEqual(t, issues, 2*len(products), "at most two issues reads per product (a page each), shared by %d batches", len(batches))
	assert.GreaterOrEqual(t, issues, len(products))
	assert.LessOrEqual(t, rosters, 2*len(products)+1, "at most two roster reads per product, and one for the cluster Datadog lacks")
	assert.GreaterOrEqual(t, rosters, len(products))
	t.Logf("%d clusters in %d batches: %d ListMonitors requests (%d issues, %d roster)", len(targets), len(batches), reqs, issues, rosters)

	assert.Equal(t, []workflows.Finding{{ClusterID: alerting.ID, Monitor: "kafka-under-replicated-partitions", Status: "Alert",
		Message: "kafka-under-replicated-partitions"}}, got[alerting.ID])
	assert.Equal(t, []workflows.Finding{{ClusterID: noData.ID, Unknown: true, Monitor: "kafka-cpu-high", Status: "No Data",
		Message: "no data for cluster:" + noData.ID}}, got[noData.ID])
	assert.Equal(t, []workflows.Finding{{ClusterID: ksqlAlert.ID, Monitor: "ksqldb-liveness", Status: "Alert",
		Message: "ksqldb-liveness"}}, got[ksqlAlert.ID])
	unknownCluster := got["lkc-not-in-datadog"]
	require.Len(t, unknownCluster, len(monitors.ForProduct(kafka)))
	for _, f := range unknownCluster {
		assert.True(t, f.Unknown)
		assert.Equal(t, "no group", f.Status)
	}
	assert.Len(t, got, 4, "no other cluster has a finding: %v", got)

	// The same with pages of 5 monitors, from a reader of its own: the
	// same findings, a request per page.
	paged, err := NewDatadog(DatadogConfig{APIKey: testAPIKey, AppKey: testAppKey, URL: e.url})
	require.NoError(t, err)
	paged.pageSize = 5
	e.a.Datadog = paged
	before, rostersBefore := e.issueReads(), e.rosterReads()
	assert.Equal(t, got, e.checkAll(t, batches))
	pages := 0
	for p := range products {
		pages += len(monitors.ForProduct(p))/5 + 1 // the last page short or empty
	}
	assert.LessOrEqual(t, e.issueReads()-before, 2*pages)
	assert.GreaterOrEqual(t, e.issueReads()-before, pages)
	assert.LessOrEqual(t, e.rosterReads()-rostersBefore, 3*pages)
	assert.GreaterOrEqual(t, e.rosterReads()-rostersBefore, pages)
}

// A check is never answered by monitors read before it asked: a cluster
// that alerts right after a read is seen by the next check, which starts
// its read no sooner than the spacing after the last; checks that ask
// together share one read.
func TestCheckHealthNeverUsesAReadFromBeforeItAsked(t *testing.T) {
	const spacing = 300 * time.Millisecond
	e := newHealthEnv(t, 60, ddsim.Options{}, DatadogConfig{HealthReadSpacing: spacing}, nil)
	c := firstOf(e.clusters, fleet.ProductKafka, 0)
	in := workflows.HealthInput{Clusters: []workflows.HealthTarget{{ClusterID: c.ID, Product: c.Product}}}
	ctx := context.Background()

	start := time.Now()
	res, err := e.a.CheckHealth(ctx, in)
	require.NoError(t, err)
	require.Empty(t, res.Findings)
	require.Equal(t, 1, e.issueReads())
	require.Equal(t, 1, e.rosterReads())

	e.src.set(c.ID, "kafka-offline-partitions", ddsim.StatusAlert)
	res, err = e.a.CheckHealth(ctx, in)
	require.NoError(t, err)
	require.Len(t, res.Findings, 1, "the alert raised after the first read is seen")
	assert.Equal(t, "kafka-offline-partitions", res.Findings[0].Monitor)
	assert.Equal(t, "Alert", res.Findings[0].Status)
	assert.Equal(t, 2, e.issueReads())
	assert.Equal(t, 1, e.rosterReads(), "the roster is reused")
	assert.GreaterOrEqual(t, time.Since(start), spacing, "the second read waited for the spacing")

	// Ten checks asking together share one read.
	batch := [][]workflows.HealthTarget{}
	for range 10 {
		batch = append(batch, in.Clusters)
	}
	got := e.checkAll(t, batch)
	assert.Len(t, got[c.ID], 10)
	assert.LessOrEqual(t, e.issueReads(), 3, "ten checks asking together: one read")
	assert.Equal(t, 1, e.rosterReads())
}

// A 429 with Datadog's rate-limit headers fails the read that got it (health
// unknown); the next checks wait for the window to reset, together, and
// then share one read.
func TestCheckHealthWaitsOutA429(t *testing.T) {
	e := newHealthEnv(t, 100, ddsim.Options{RateLimitPeriod: time.Second}, DatadogConfig{}, nil)
	kafka := []workflows.HealthTarget{}
	for _, c := range e.clusters {
		if c.Product == fleet.ProductKafka {
			kafka = append(kafka, workflows.HealthTarget{ClusterID: c.ID, Product: c.Product})
		}
	}
	e.srv.SetFailure(http.StatusTooManyRequests, 1)
	_, err := e.a.CheckHealth(context.Background(), workflows.HealthInput{Clusters: kafka})
	require.ErrorContains(t, err, "HTTP 429")
	var rl *RateLimitedError
	require.False(t, errors.As(err, &rl), "the 429 itself is an error of the read")
	require.Equal(t, 1, e.listRequests(), "the issues read got it; no roster read followed")
	require.Equal(t, 1, e.issueReads())

	start := time.Now()
	got := e.checkAll(t, batchesOf(kafka, 5))
	took := time.Since(start)
	assert.Empty(t, got)
	assert.Greater(t, took, 200*time.Millisecond, "waited for X-RateLimit-Reset")
	assert.LessOrEqual(t, e.issueReads(), 3, "the waiting checks shared an issues read (or two: the first and the next)")
	assert.LessOrEqual(t, e.rosterReads(), 2, "the waiting checks shared a roster read (or two)")

	// A window that resets after the deadline fails at once, as
	// RateLimited with the wait as the retry delay.
	e.srv.SetFailure(http.StatusTooManyRequests, 1)
	_, err = e.a.CheckHealth(context.Background(), workflows.HealthInput{Clusters: kafka})
	require.ErrorContains(t, err, "HTTP 429")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err = e.a.CheckHealth(ctx, workflows.HealthInput{Clusters: kafka})
	require.ErrorContains(t, err, "Datadog rate limit (HTTP 429) resets in")
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%T", err)
	require.Equal(t, "RateLimited", appErr.Type())
}

// A check that asks while a read whose starter gives up at its (earlier)
// deadline is in flight gets the next read, within its own deadline; the
// read left by every check is canceled, not waited for.
func TestCheckHealthOutlivesTheStartersDeadline(t *testing.T) {
	var n atomic.Int64
	slowFirst := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 1 {
				select {
				case <-time.After(2 * time.Second):
				case <-r.Context().Done():
					return
				}
			}
			h.ServeHTTP(w, r)
		})
	}
	e := newHealthEnv(t, 40, ddsim.Options{}, DatadogConfig{}, slowFirst)
	c := firstOf(e.clusters, fleet.ProductKafka, 0)
	e.src.set(c.ID, "kafka-cpu-high", ddsim.StatusAlert)
	in := workflows.HealthInput{Clusters: []workflows.HealthTarget{{ClusterID: c.ID, Product: c.Product}}}

	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	starterErr := make(chan error, 1)
	go func() {
		_, err := e.a.CheckHealth(short, in)
		starterErr <- err
	}()
	require.Eventually(t, func() bool { return n.Load() == 1 }, 5*time.Second, time.Millisecond)
	long, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	start := time.Now()
	res, err := e.a.CheckHealth(long, in)
	require.NoError(t, err)
	require.Len(t, res.Findings, 1)
	assert.Equal(t, "Alert", res.Findings[0].Status)
	assert.Less(t, time.Since(start), 1500*time.Millisecond, "the slow first read was not waited for")
	assert.ErrorIs(t, <-starterErr, context.DeadlineExceeded)
	assert.EqualValues(t, 3, n.Load(), "the (issues) read begun before the long check asked, then the next, then the roster")
	assert.Equal(t, 2, e.issueReads())
	assert.Equal(t, 1, e.rosterReads())
}

// Regression (CI: TestMonitorsEndpoint500PausesWithHealthUnknown/429 and
// TestChaosMonitorsUnavailable timed out at StartToClose after a 429
// period): a check whose rate-limit window resets just before its deadline
// must not wait for it, since the read that follows could not finish in
// time; it fails at once as RateLimited, with the wait as retry delay. And
// whatever it waits for, a check returns before its ctx's deadline: a
// worker's activity deadline runs from when it got the task, later than the
// server's StartToClose, so a check that returns only at its ctx's deadline
// is timed out instead of reporting why.
func TestCheckHealthLeavesRoomAfterARateLimit(t *testing.T) {
	e := newHealthEnv(t, 40, ddsim.Options{}, DatadogConfig{}, nil)
	c := firstOf(e.clusters, fleet.ProductKafka, 0)
	in := workflows.HealthInput{Clusters: []workflows.HealthTarget{{ClusterID: c.ID, Product: c.Product}}}
	d := e.a.Datadog
	closeWindow := func(wait time.Duration) {
		d.mu.Lock()
		d.resumeAt, d.limitedBy = time.Now().Add(wait), "HTTP 429"
		d.mu.Unlock()
	}

	// The window resets 2.9 s into a 3 s check: no time left to read.
	closeWindow(2900 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	_, err := e.a.CheckHealth(ctx, in)
	took := time.Since(start)
	require.ErrorContains(t, err, "Datadog rate limit (HTTP 429) resets in")
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%T: %v", err, err)
	require.Equal(t, "RateLimited", appErr.Type())
	assert.Less(t, took, 500*time.Millisecond, "failed at once, not after waiting for the window")
	assert.Zero(t, e.listRequests())

	// Within the time a read needs, the window is waited out and read.
	closeWindow(500 * time.Millisecond)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel2()
	start = time.Now()
	_, err = e.a.CheckHealth(ctx2, in)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), 500*time.Millisecond)
	assert.Equal(t, 2, e.listRequests(), "the roster and the issues read")
}

// A check returns before its deadline (a margin before it, to report why)
// when the shared read hangs, and its error is a timeout.
func TestCheckHealthReturnsBeforeItsDeadline(t *testing.T) {
	a := healthActivities(t, DatadogConfig{URL: silentDatadog(t), RequestTimeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	dl, _ := ctx.Deadline()
	_, err := a.CheckHealth(ctx, healthIn)
	require.Error(t, err)
	require.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
	require.Contains(t, err.Error(), "before the check's deadline")
	assert.GreaterOrEqual(t, time.Until(dl), 150*time.Millisecond, "returned %s before the deadline", time.Until(dl))
	require.NoError(t, ctx.Err())
}

// The bulk read judges every cluster as the per-cluster read did (the
// query CheckHealth made before: tags=cluster:<id>, one request per
// cluster), for a fleet whose groups are in every status.
func TestBulkFindingsMatchPerClusterReads(t *testing.T) {
	e := newHealthEnv(t, 120, ddsim.Options{}, DatadogConfig{}, nil)
	statuses := []string{ddsim.StatusOK, ddsim.StatusAlert, ddsim.StatusWarn, ddsim.StatusNoData, "Ignored"}
	for i, c := range e.clusters {
		for j, m := range monitors.ForProduct(c.Product) {
			if (i+j)%4 == 0 {
				e.src.set(c.ID, m.Name, statuses[(i*7+j)%len(statuses)])
			}
		}
	}
	targets := e.targets()
	got, err := e.a.CheckHealth(context.Background(), workflows.HealthInput{Clusters: targets})
	require.NoError(t, err)

	d := e.a.Datadog
	var want []workflows.Finding
	for _, tg := range targets {
		opts := datadogV1.NewListMonitorsOptionalParameters().
			WithTags("cluster:" + tg.ClusterID).
			WithMonitorTags("product:" + tg.Product + "," + CriticalTag).
			WithGroupStates("all")
		ms, _, err := d.api.ListMonitors(d.context(context.Background()), *opts)
		require.NoError(t, err)
		read := productMonitors{}
		for _, m := range ms {
			groups := map[string]string{}
			for name, g := range m.GetState().Groups {
				groups[name] = string(g.GetStatus())
			}
			read[m.GetId()] = monitorGroups{name: m.GetName(), groups: groups}
		}
		want = append(want, clusterFindings(tg.ClusterID, forProduct(monitors.Default(), tg.Product), read)...)
	}
	sort.Slice(want, func(i, j int) bool {
		if want[i].ClusterID != want[j].ClusterID {
			return want[i].ClusterID < want[j].ClusterID
		}
		return want[i].Monitor < want[j].Monitor
	})
	require.NotEmpty(t, want)
	kinds := map[string]int{}
	for _, f := range want {
		kinds[f.Status]++
	}
	assert.Positive(t, kinds["Alert"], "%v", kinds)
	assert.Positive(t, kinds["No Data"], "%v", kinds)
	assert.Equal(t, want, got.Findings)
}

// nonOK counts the groups of the product's critical monitors that are not
// OK in the source: what the issues read answers.
func (e *healthEnv) nonOK(product string) int {
	n := 0
	for _, id := range e.src.ClusterIDs() {
		if p, _ := e.src.ClusterProduct(id); p != product {
			continue
		}
		for _, m := range monitors.ForProduct(product) {
			if !m.HasTag(CriticalTag) {
				continue
			}
			if e.src.MonitorStatus(id, m.Name) != ddsim.StatusOK {
				n++
			}
		}
	}
	return n
}

func (e *healthEnv) groupsSent() int { return e.srv.GroupsSent()[ddsim.EndpointListMonitors] }

// The frequent read carries only the groups that are not OK; a cluster
// the roster has and the issues read lacks is OK, answered by an issues
// read that began after the check asked.
func TestIssuesReadCarriesOnlyNonOKGroups(t *testing.T) {
	const spacing = 100 * time.Millisecond
	e := newHealthEnv(t, 80, ddsim.Options{}, DatadogConfig{HealthReadSpacing: spacing}, nil)
	kafka := fleet.ProductKafka
	ok := firstOf(e.clusters, kafka, 0)
	alerting := firstOf(e.clusters, kafka, 1)
	e.src.set(alerting.ID, "kafka-cpu-high", ddsim.StatusAlert)
	e.src.set(firstOf(e.clusters, kafka, 2).ID, "kafka-storage-usage", ddsim.StatusWarn)
	in := workflows.HealthInput{Clusters: []workflows.HealthTarget{
		{ClusterID: ok.ID, Product: kafka}, {ClusterID: alerting.ID, Product: kafka}}}
	critical := 0
	for _, m := range monitors.ForProduct(kafka) {
		if m.HasTag(CriticalTag) {
			critical++
		}
	}
	all := critical * productsOf(e.clusters)[kafka]
	require.Equal(t, 2, e.nonOK(kafka))

	res, err := e.a.CheckHealth(context.Background(), in)
	require.NoError(t, err)
	require.Equal(t, []workflows.Finding{{ClusterID: alerting.ID, Monitor: "kafka-cpu-high", Status: "Alert", Message: "kafka-cpu-high"}}, res.Findings)
	require.Equal(t, 1, e.issueReads())
	require.Equal(t, 1, e.rosterReads())
	assert.Equal(t, 2+all, e.groupsSent(), "the issues read: the 2 non-OK groups; the roster: every group")

	// The next check reads the issues anew, reuses the roster: 2 groups.
	before := e.groupsSent()
	asked := time.Now()
	res, err = e.a.CheckHealth(context.Background(), in)
	require.NoError(t, err)
	assert.Len(t, res.Findings, 1)
	assert.Equal(t, 2, e.issueReads())
	assert.Equal(t, 1, e.rosterReads())
	assert.Equal(t, 2, e.groupsSent()-before, "only the non-OK groups")
	_, began, ok2 := e.a.Datadog.reads.Last(kafka)
	require.True(t, ok2)
	assert.False(t, began.Before(asked), "answered by an issues read begun after the check asked")

	// The alert resolves: the issues read lacks the group, the roster has
	// it: OK.
	e.src.set(alerting.ID, "kafka-cpu-high", ddsim.StatusOK)
	res, err = e.a.CheckHealth(context.Background(), in)
	require.NoError(t, err)
	assert.Empty(t, res.Findings)
	assert.Equal(t, 1, e.rosterReads())
}

// An alert raised after the roster was read is seen: the roster says only
// that the group exists, the issues read (fresh) its status.
func TestAlertAfterTheRosterIsSeen(t *testing.T) {
	e := newHealthEnv(t, 60, ddsim.Options{}, DatadogConfig{HealthReadSpacing: -1}, nil)
	c := firstOf(e.clusters, fleet.ProductKafka, 0)
	in := workflows.HealthInput{Clusters: []workflows.HealthTarget{{ClusterID: c.ID, Product: c.Product}}}
	res, err := e.a.CheckHealth(context.Background(), in)
	require.NoError(t, err)
	require.Empty(t, res.Findings)
	require.Equal(t, 1, e.rosterReads())

	e.src.set(c.ID, "kafka-offline-partitions", ddsim.StatusAlert)
	e.src.set(c.ID, "kafka-cpu-high", ddsim.StatusNoData)
	res, err = e.a.CheckHealth(context.Background(), in)
	require.NoError(t, err)
	assert.Equal(t, []workflows.Finding{
		{ClusterID: c.ID, Unknown: true, Monitor: "kafka-cpu-high", Status: "No Data", Message: "no data for cluster:" + c.ID},
		{ClusterID: c.ID, Monitor: "kafka-offline-partitions", Status: "Alert", Message: "kafka-offline-partitions"},
	}, res.Findings)
	assert.Equal(t, 1, e.rosterReads(), "the roster (stale: every group OK) was reused")
	assert.Equal(t, 2, e.issueReads())
}

// A group the cached roster lacks (a cluster new since) makes the check read
// the roster once more, and is then OK; a group in neither read is "no
// group", after one roster read.
func TestNewGroupRefreshesTheRosterOnce(t *testing.T) {
	e := newHealthEnv(t, 60, ddsim.Options{}, DatadogConfig{HealthReadSpacing: 50 * time.Millisecond}, nil)
	kafka := fleet.ProductKafka
	old := firstOf(e.clusters, kafka, 0)
	check := func(ids ...string) []workflows.Finding {
		t.Helper()
		in := workflows.HealthInput{}
		for _, id := range ids {
			in.Clusters = append(in.Clusters, workflows.HealthTarget{ClusterID: id, Product: kafka})
		}
		res, err := e.a.CheckHealth(context.Background(), in)
		require.NoError(t, err)
		return res.Findings
	}
	require.Empty(t, check(old.ID))
	require.Equal(t, 1, e.rosterReads())
	require.Empty(t, check(old.ID))
	require.Equal(t, 1, e.rosterReads(), "the roster is reused")

	e.src.add("lkc-new", kafka)
	assert.Empty(t, check(old.ID, "lkc-new"), "the new cluster's groups are OK")
	assert.Equal(t, 2, e.rosterReads(), "one roster read for the new group")
	assert.Empty(t, check("lkc-new"))
	assert.Equal(t, 2, e.rosterReads(), "the refreshed roster has it")

	ghost := check(old.ID, "lkc-ghost")
	assert.Equal(t, 3, e.rosterReads(), "one roster read for the group in neither")
	require.Len(t, ghost, len(monitors.ForProduct(kafka)))
	for _, f := range ghost {
		assert.Equal(t, "lkc-ghost", f.ClusterID)
		assert.True(t, f.Unknown)
		assert.Equal(t, "no group", f.Status)
	}

	// A new cluster that alerts is in the issues read: no roster read.
	e.src.add("lkc-new-alerting", kafka)
	for _, m := range monitors.ForProduct(kafka) {
		e.src.set("lkc-new-alerting", m.Name, ddsim.StatusAlert)
	}
	got := check("lkc-new-alerting")
	assert.Len(t, got, len(monitors.ForProduct(kafka)))
	assert.Equal(t, 3, e.rosterReads())
}

// What the frequent read answers grows with the clusters that are not OK,
// not with the fleet: with the same two clusters alerting, a fleet eight
// times larger sends the same groups an interval (once the roster is read),
// and each cluster that alerts adds its groups. An interval here is one
// check of the whole fleet: one issues read per product.
func TestFrequentReadFollowsNonOKClusters(t *testing.T) {
	perInterval := func(n, alerting int) (groups, bytes, rosterGroups int) {
		e := newHealthEnv(t, n, ddsim.Options{RateLimit: 1 << 20}, DatadogConfig{HealthReadSpacing: -1}, nil)
		for i := range alerting {
			e.src.set(firstOf(e.clusters, fleet.ProductKafka, i).ID, "kafka-cpu-high", ddsim.StatusAlert)
		}
		nonOK := 0
		for p := range productsOf(e.clusters) {
			nonOK += e.nonOK(p)
		}
		require.Equal(t, alerting, nonOK)
		all := [][]workflows.HealthTarget{e.targets()}
		e.checkAll(t, all) // reads the rosters
		rosterGroups = e.groupsSent() - nonOK
		g0, b0, r0, i0 := e.groupsSent(), e.srv.BytesSent()[ddsim.EndpointListMonitors], e.rosterReads(), e.issueReads()
		const intervals = 3
		for range intervals {
			e.checkAll(t, all)
		}
		require.Equal(t, r0, e.rosterReads(), "no roster read once the rosters are had")
		require.Equal(t, i0+intervals*len(productsOf(e.clusters)), e.issueReads(), "an issues read per product an interval")
		return (e.groupsSent() - g0) / intervals, (e.srv.BytesSent()[ddsim.EndpointListMonitors] - b0) / intervals, rosterGroups
	}
	smallG, smallB, smallRoster := perInterval(100, 2)
	largeG, largeB, largeRoster := perInterval(800, 2)
	moreG, moreB, _ := perInterval(800, 20)
	t.Logf("an interval: 100 clusters, 2 alerting: %d groups, %d bytes; 800 clusters, 2 alerting: %d groups, %d bytes; 800, 20 alerting: %d groups, %d bytes; roster groups %d and %d",
		smallG, smallB, largeG, largeB, moreG, moreB, smallRoster, largeRoster)
	assert.Greater(t, largeRoster, 6*smallRoster, "the roster follows the fleet")
	assert.Equal(t, 2, smallG)
	assert.Equal(t, 2, largeG, "the frequent read does not grow with the fleet")
	assert.Equal(t, 20, moreG, "it grows with the clusters alerting")
	assert.Less(t, largeB, smallB+smallB/10, "nor do its bytes")
	assert.Greater(t, moreB, largeB)
}

// A roster past its max age is still used (up to rosterStaleLimit times
// that age) while a new one is read in the background: a check does not
// wait for the whole fleet's groups. Past that limit the check reads one.
func TestStaleRosterIsRefreshedInTheBackground(t *testing.T) {
	const maxAge = 300 * time.Millisecond
	var slow atomic.Bool
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if slow.Load() && r.URL.Query().Get("group_states") == rosterGroupStates {
				time.Sleep(time.Second)
			}
			h.ServeHTTP(w, r)
		})
	}
	// The max age as set (a roster read of a second does not make it ten).
	e := newHealthEnv(t, 40, ddsim.Options{}, DatadogConfig{HealthReadSpacing: 10 * time.Millisecond, HealthRosterMaxAge: maxAge, HealthRosterReadShare: -1}, wrap)
	in := workflows.HealthInput{}
	for _, c := range e.clusters[:5] {
		in.Clusters = append(in.Clusters, workflows.HealthTarget{ClusterID: c.ID, Product: c.Product})
	}
	check := func() time.Duration {
		t.Helper()
		start := time.Now()
		res, err := e.a.CheckHealth(context.Background(), in)
		require.NoError(t, err)
		require.Empty(t, res.Findings)
		return time.Since(start)
	}
	check()
	first := e.rosterReads()
	require.Positive(t, first)

	slow.Store(true)
	time.Sleep(maxAge + 50*time.Millisecond)
	took := check()
	assert.Less(t, took, 500*time.Millisecond, "the stale roster answers while a new one is read")
	require.Eventually(t, func() bool { return e.rosterReads() > first }, 5*time.Second, 20*time.Millisecond,
		"a new roster is read in the background")
	time.Sleep(1500 * time.Millisecond) // the background reads end
	refreshed := e.rosterReads()

	time.Sleep(rosterStaleLimit*maxAge + 100*time.Millisecond)
	took = check()
	assert.GreaterOrEqual(t, took, time.Second, "past the stale limit the check waits for a new roster")
	assert.Greater(t, e.rosterReads(), refreshed)
}

// A roster is read DefaultHealthRosterPageSize monitors a page: each page
// holds every group of its monitors (a cluster each), so small pages bound
// what one response holds in memory. The answers are the same.
func TestRosterReadsInSmallPages(t *testing.T) {
	e := newHealthEnv(t, 60, ddsim.Options{}, DatadogConfig{HealthRosterPageSize: DefaultHealthRosterPageSize}, nil)
	kafka := fleet.ProductKafka
	c := firstOf(e.clusters, kafka, 0)
	monitorsOfKafka := len(forProduct(monitors.Default(), kafka))
	require.Greater(t, monitorsOfKafka, DefaultHealthRosterPageSize)
	before := e.listRequests()
	res, err := e.a.CheckHealth(context.Background(), workflows.HealthInput{Clusters: []workflows.HealthTarget{{ClusterID: c.ID, Product: kafka}}})
	require.NoError(t, err)
	require.Empty(t, res.Findings)
	pages := (monitorsOfKafka + DefaultHealthRosterPageSize - 1) / DefaultHealthRosterPageSize
	// The issues read in one page, the roster in pages of
	// DefaultHealthRosterPageSize (a short or empty last page ends it).
	assert.Equal(t, 1, e.issueReads())
	assert.GreaterOrEqual(t, e.rosterReads(), pages)
	assert.LessOrEqual(t, e.rosterReads(), pages+1)
	assert.Equal(t, e.listRequests()-before, e.issueReads()+e.rosterReads())
}

// A roster read that takes longer than the check that needed it (100,000
// clusters: seconds a page) still ends and serves the next checks: it runs
// in the background under its own deadline, not the check's. Before, the
// read was cancelled with the check and every check after it started again
// and failed the same way, until the rollout paused on unknown health.
func TestRosterReadOutlivesTheCheckThatStartedIt(t *testing.T) {
	var delayed atomic.Int64
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("group_states") == rosterGroupStates && delayed.Add(1) == 1 {
				select {
				case <-time.After(2500 * time.Millisecond):
				case <-r.Context().Done():
					return
				}
			}
			h.ServeHTTP(w, r)
		})
	}
	e := newHealthEnv(t, 40, ddsim.Options{}, DatadogConfig{}, wrap)
	c := firstOf(e.clusters, fleet.ProductKafka, 0)
	in := workflows.HealthInput{Clusters: []workflows.HealthTarget{{ClusterID: c.ID, Product: c.Product}}}

	short, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := e.a.CheckHealth(short, in)
	require.Error(t, err, "the roster did not come within the check's deadline")

	require.Eventually(t, func() bool {
		_, _, ok := e.a.Datadog.rosters.Last(c.Product)
		return ok
	}, 5*time.Second, 20*time.Millisecond, "the roster read ends after the check gave up")
	start := time.Now()
	res, err := e.a.CheckHealth(context.Background(), in)
	require.NoError(t, err)
	assert.Empty(t, res.Findings)
	assert.Less(t, time.Since(start), time.Second, "the next check uses it")
	assert.Equal(t, 1, e.rosterReads(), "one roster read, not one per check")
}

// A roster may be as old as HealthRosterReadShare times its last read took,
// when that is longer than HealthRosterMaxAge: a large fleet's roster is
// not read again every minute (at 100,000 clusters that kept the worker
// reading it and, under load, never finishing).
func TestRosterMaxAgeGrowsWithItsReadTime(t *testing.T) {
	for _, tc := range []struct {
		name   string
		share  int
		reread bool
	}{
		{"max age as set", -1, true},
		{"ten times the read", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wrap := func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Query().Get("group_states") == rosterGroupStates {
						time.Sleep(200 * time.Millisecond)
					}
					h.ServeHTTP(w, r)
				})
			}
			e := newHealthEnv(t, 40, ddsim.Options{}, DatadogConfig{HealthReadSpacing: 10 * time.Millisecond,
				HealthRosterMaxAge: 100 * time.Millisecond, HealthRosterReadShare: tc.share}, wrap)
			c := firstOf(e.clusters, fleet.ProductKafka, 0)
			in := workflows.HealthInput{Clusters: []workflows.HealthTarget{{ClusterID: c.ID, Product: c.Product}}}
			_, err := e.a.CheckHealth(context.Background(), in)
			require.NoError(t, err)
			require.Equal(t, 1, e.rosterReads())
			time.Sleep(400 * time.Millisecond) // past 100 ms and 3x it, within 10x 200 ms
			_, err = e.a.CheckHealth(context.Background(), in)
			require.NoError(t, err)
			require.Eventually(t, func() bool { return !tc.reread || e.rosterReads() == 2 }, 3*time.Second, 10*time.Millisecond)
			time.Sleep(300 * time.Millisecond)
			if tc.reread {
				assert.Equal(t, 2, e.rosterReads(), "read again past its max age")
			} else {
				assert.Equal(t, 1, e.rosterReads(), "still young: it took 200 ms to read")
			}
		})
	}
}

// The checks that find no roster share the one roster read in flight,
// whenever each asked: a roster says which groups exist, so one begun
// before a check asked serves it (at 100,000 clusters, every batch starting
// a read of its own made none of them finish within the checks' deadlines).
func TestChecksWithoutARosterShareOneRead(t *testing.T) {
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("group_states") == rosterGroupStates {
				time.Sleep(time.Second)
			}
			h.ServeHTTP(w, r)
		})
	}
	e := newHealthEnv(t, 40, ddsim.Options{}, DatadogConfig{HealthReadSpacing: 10 * time.Millisecond}, wrap)
	var wg sync.WaitGroup
	for i := range 5 {
		c := firstOf(e.clusters, fleet.ProductKafka, i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.a.CheckHealth(context.Background(), workflows.HealthInput{Clusters: []workflows.HealthTarget{{ClusterID: c.ID, Product: c.Product}}})
			assert.NoError(t, err)
		}()
		time.Sleep(150 * time.Millisecond)
	}
	wg.Wait()
	assert.Equal(t, 1, e.rosterReads(), "one roster read for the five checks")
}
