package ddsim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/monitors"
	"github.com/fleet-rollout/fleet/internal/sim"
)

// plainSource hides every method of a source but Source's, so ddsim takes
// the general path (a group evaluated at a time), as for any source that
// keeps no index.
type plainSource struct{ s Source }

func (p plainSource) ClusterProduct(id string) (string, bool) { return p.s.ClusterProduct(id) }
func (p plainSource) MonitorStatus(clusterID, monitorName string) string {
	return p.s.MonitorStatus(clusterID, monitorName)
}
func (p plainSource) ClusterIDs() []string { return p.s.ClusterIDs() }
func (p plainSource) Metric(clusterID, name string) (float64, bool) {
	return p.s.Metric(clusterID, name)
}

// simWithAlerts builds a simulator over clusters in which every cluster
// whose index is a multiple of every alerts on the first monitor of its
// product: the alerts are written to a state file the simulator loads (as
// a restarted simulator would), so no apply has to run.
func simWithAlerts(tb testing.TB, clusters []fleet.Cluster, every int) (*sim.Simulator, map[string]string) {
	tb.Helper()
	type entry struct {
		Cluster fleet.Cluster `json:"cluster"`
		Alerts  []string      `json:"alerts,omitempty"`
	}
	alerting := map[string]string{} // cluster -> monitor
	st := struct {
		Format   int     `json:"format"`
		Clusters []entry `json:"clusters"`
	}{Format: 1}
	for i, c := range clusters {
		e := entry{Cluster: c}
		if every > 0 && i%every == 0 {
			m := monitors.ForProduct(c.Product)[0].Name
			e.Alerts = []string{m}
			alerting[c.ID] = m
		}
		st.Clusters = append(st.Clusters, e)
	}
	b, err := json.Marshal(st)
	require.NoError(tb, err)
	path := filepath.Join(tb.TempDir(), "sim-state.json")
	require.NoError(tb, os.WriteFile(path, b, 0o600))
	s, err := sim.New(sim.Config{Clusters: clusters, StatePath: path}, zap.NewNop())
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = s.Close() })
	return s, alerting
}

func listRequest(query string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/monitor?"+query, nil)
	r.Header.Set("DD-API-KEY", apiKey)
	r.Header.Set("DD-APPLICATION-KEY", appKey)
	return r
}

// The worker's two bulk reads of one product's monitors.
const (
	frequentQuery = "monitor_tags=product:kafka,fleet:rollout-critical&group_states=alert,warn,no%20data&page=0&page_size=100"
	rosterQuery   = "monitor_tags=product:kafka,fleet:rollout-critical&group_states=all&page=0&page_size=2"
)

// BenchmarkListMonitors100k is one ListMonitors read of the worker's, through
// the handler, over a simulated fleet of 100,000 clusters (about 25,000 per
// product) of which 1% alert: the frequent read (the product's non-OK
// groups) and a roster page (every group of 2 monitors). source=sim is the
// simulator itself; source=plain is the same simulator behind a Source that
// keeps no index (the general path).
func BenchmarkListMonitors100k(b *testing.B) {
	clusters := sim.GenerateFleet(100_000, 7)
	s, _ := simWithAlerts(b, clusters, 100)
	for _, src := range []struct {
		name string
		src  Source
	}{{"sim", s}, {"plain", plainSource{s}}} {
		srv := New(monitors.Default(), src.src, Options{APIKey: apiKey, AppKey: appKey, RateLimit: 1 << 30})
		h := srv.Handler()
		for _, rd := range []struct{ name, query string }{{"frequent", frequentQuery}, {"roster", rosterQuery}} {
			b.Run(fmt.Sprintf("source=%s/read=%s", src.name, rd.name), func(b *testing.B) {
				// A first read, not counted, as the worker's reads follow
				// one another.
				w := httptest.NewRecorder()
				h.ServeHTTP(w, listRequest(rd.query))
				require.Equal(b, http.StatusOK, w.Code, w.Body.String())
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					w := httptest.NewRecorder()
					h.ServeHTTP(w, listRequest(rd.query))
					if w.Code != http.StatusOK {
						b.Fatalf("status %d: %s", w.Code, w.Body.String())
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(w.Body.Len()), "bytes/read")
			})
		}
	}
}

// indexedFake is a fleet whose statuses the test sets (fakeSource), with a
// group index that honours them (the index's answers agree with
// MonitorStatus).
type indexedFake struct {
	*fakeSource
}

func newIndexedFake(clusters []fleet.Cluster) *indexedFake {
	f := &fakeSource{products: map[string]string{}, status: map[[2]string]string{}, metrics: map[[2]string]float64{}}
	for _, c := range clusters {
		f.products[c.ID] = c.Product
	}
	return &indexedFake{f}
}

func (f *indexedFake) GroupIndexOwner() any { return f }

func (f *indexedFake) ProductClusters(product string) []string {
	var out []string
	for _, id := range f.ClusterIDs() {
		if p, _ := f.ClusterProduct(id); p == product {
			out = append(out, id)
		}
	}
	return out
}

func (f *indexedFake) MonitorStatuses(monitorName string, clusterIDs []string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(clusterIDs))
	for i, id := range clusterIDs {
		out[i] = f.statusLocked(id, monitorName)
	}
	return out
}

func (f *indexedFake) NotOKGroups(monitorName, product string) (map[string]string, bool) {
	if m, ok := monitors.ByName(monitorName); !ok || m.Product != product {
		return nil, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for k, st := range f.status {
		if k[1] == monitorName && f.products[k[0]] == product && st != StatusOK {
			out[k[0]] = st
		}
	}
	return out, true
}

// TestIndexedReadsAnswerAsGroupByGroup serves the same fleet twice, once
// through its group index and once group by group (plainSource), and asks
// both the same reads, round after round as statuses change: every answer
// (groups, statuses, *_ts history, overall_state, paging, filters, scopes)
// is the same, byte for byte.
func TestIndexedReadsAnswerAsGroupByGroup(t *testing.T) {
	clusters := sim.GenerateFleet(300, 5)
	src := newIndexedFake(clusters)
	clock := int64(1_000_000)
	newSrv := func(s Source) *Server {
		srv := New(monitors.Default(), s, Options{APIKey: apiKey, AppKey: appKey, RateLimit: 1 << 30})
		srv.now = func() time.Time { return time.Unix(clock, 0) }
		return srv
	}
	indexed, plain := newSrv(src), newSrv(plainSource{src})
	require.NotNil(t, indexed.idx, "the fake's index is its own")
	require.Nil(t, plain.idx)

	byProduct := map[string][]string{}
	for _, c := range clusters {
		byProduct[c.Product] = append(byProduct[c.Product], c.ID)
	}
	kafka, ksql := byProduct[fleet.ProductKafka], byProduct[fleet.ProductKsqlDB]
	require.Greater(t, len(kafka), 20)
	require.Greater(t, len(ksql), 5)
	kafkaMon, ksqlMon := monitors.ForProduct(fleet.ProductKafka), monitors.ForProduct(fleet.ProductKsqlDB)
	cpuID := strconv.FormatInt(kafkaMon[0].ID, 10)

	queries := []string{
		frequentQuery,
		rosterQuery,
		"monitor_tags=product:kafka,fleet:rollout-critical&group_states=all&page=1&page_size=2",
		"monitor_tags=product:kafka,fleet:rollout-critical&group_states=all&page=99&page_size=2",
		"monitor_tags=product:ksqldb,fleet:rollout-critical&group_states=alert,warn,no%20data&page=0&page_size=100",
		"monitor_tags=product:kafka&group_states=alert&page=0&page_size=1",
		"monitor_tags=product:kafka&group_states=alert&page=1&page_size=1",
		"group_states=warn",
		"group_states=ok",
		"group_states=no%20data,ok",
		"",
		"name=cpu&group_states=alert,warn",
		"tags=product:kafka&group_states=alert,warn,no%20data",
		"tags=product:ksqldb&group_states=all",
		"tags=cluster:" + kafka[0] + ",cluster:" + kafka[1] + ",cluster:" + ksql[0] + "&group_states=alert,warn,no%20data",
		"tags=cluster:" + kafka[2] + "&group_states=all",
		"tags=team:x&group_states=alert",
		"id_offset=" + cpuID + "&group_states=alert,no%20data",
	}
	gets := []string{
		"/api/v1/monitor/" + cpuID + "?group_states=alert,warn,no%20data",
		"/api/v1/monitor/" + cpuID + "?group_states=all",
		"/api/v1/monitor/" + cpuID,
	}
	// round asks the reads (all of them if none given); the frequent read
	// alone must observe what changed, as the worker's reads go (the roster
	// read is rare).
	round := func(name string, only ...string) {
		t.Helper()
		qs := queries
		if only != nil {
			qs = only
		}
		for _, q := range qs {
			a, b := httptest.NewRecorder(), httptest.NewRecorder()
			indexed.Handler().ServeHTTP(a, listRequest(q))
			plain.Handler().ServeHTTP(b, listRequest(q))
			require.Equal(t, http.StatusOK, a.Code, a.Body.String())
			require.Equal(t, b.Body.String(), a.Body.String(), "%s: %s", name, q)
		}
		if only != nil {
			return
		}
		for _, p := range gets {
			a, b := httptest.NewRecorder(), httptest.NewRecorder()
			r := listRequest("")
			r.URL, _ = url.Parse(p)
			indexed.Handler().ServeHTTP(a, r)
			plain.Handler().ServeHTTP(b, r)
			require.Equal(t, http.StatusOK, a.Code, a.Body.String())
			require.Equal(t, b.Body.String(), a.Body.String(), "%s: %s", name, p)
		}
	}

	round("all OK")
	clock += 60
	src.set(kafka[0], kafkaMon[0].Name, StatusAlert)
	src.set(kafka[1], kafkaMon[0].Name, StatusWarn)
	src.set(kafka[2], kafkaMon[1].Name, StatusNoData)
	src.set(kafka[3], kafkaMon[0].Name, "Ignored") // served as No Data
	src.set(ksql[0], ksqlMon[0].Name, StatusAlert)
	src.set(ksql[1], kafkaMon[0].Name, StatusAlert) // not the monitor's product: never a group
	round("alerting")
	clock += 60
	round("unchanged")
	clock += 60
	src.set(kafka[0], kafkaMon[0].Name, StatusOK) // resolves
	src.set(kafka[1], kafkaMon[0].Name, StatusAlert)
	src.set(kafka[2], kafkaMon[1].Name, StatusOK)
	src.set(kafka[4], kafkaMon[2].Name, StatusAlert)
	round("changed, frequent read", frequentQuery)
	clock += 60
	round("changed")
	clock += 60
	src.set(kafka[0], kafkaMon[0].Name, StatusAlert) // triggers again
	src.set(kafka[1], kafkaMon[0].Name, StatusOK)
	round("re-triggered, frequent read", frequentQuery)
	clock += 60
	round("re-triggered")
}

// listMonitorsJSON reads monitors through the handler.
func listMonitorsJSON(t *testing.T, h http.Handler, query string) []monitorJSON {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, listRequest(query))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var out []monitorJSON
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &out))
	return out
}

// TestFrequentReadOverTheSimulator runs the simulator for real (applies over
// Kafka, a fault that trips a monitor): among many clusters the frequent
// read returns exactly the few alerting groups and overall_state Alert;
// once one alert clears (an apply of a version without the fault), the
// frequent read itself observes it: that group reads OK with
// last_resolved_ts the time of that read.
func TestFrequentReadOverTheSimulator(t *testing.T) {
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, dataplane.CommandsTopic, dataplane.StatusTopic))
	require.NoError(t, err)
	t.Cleanup(kc.Close)
	brokers := kc.ListenAddrs()

	const monitor = "kafka-under-replicated-partitions"
	clusters := sim.GenerateFleet(2000, 11)
	var targets []fleet.Cluster
	kafkaN := 0
	for _, c := range clusters {
		if c.Product == fleet.ProductKafka {
			kafkaN++
			if kafkaN%300 == 1 {
				targets = append(targets, c)
			}
		}
	}
	require.GreaterOrEqual(t, len(targets), 3)
	targets = targets[:3]
	s, err := sim.New(sim.Config{Clusters: clusters, BrokerTime: time.Millisecond,
		Faults: []sim.Fault{{Version: "9.0.0-bad", Monitor: monitor, Fraction: 1}}}, log.Named("sim"))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx, brokers) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-runErr)
		require.NoError(t, s.Close())
	})
	srv := New(monitors.Default(), s, Options{APIKey: apiKey, AppKey: appKey, Log: log.Named("ddsim"), RateLimit: 1 << 30})
	require.NotNil(t, srv.idx, "the simulator's own index")
	var clock atomic.Int64
	clock.Store(1_000_000)
	srv.now = func() time.Time { return time.Unix(clock.Load(), 0) }
	h := srv.Handler()

	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	t.Cleanup(prod.Close)
	apply := func(c fleet.Cluster, gen int64, version string) {
		b, err := dataplane.Encode(dataplane.Command{
			Kind: dataplane.Apply, ClusterID: c.ID, Generation: gen,
			Spec: &dataplane.Spec{Version: version}, RolloutID: "rollout/scale", ReplyTo: "rollout/scale/batch-1",
			IssuedAt: time.Now(),
		})
		require.NoError(t, err)
		require.NoError(t, prod.ProduceSync(context.Background(), &kgo.Record{
			Topic: dataplane.CommandsTopic, Key: []byte(c.ID), Value: b,
		}).FirstErr())
	}
	// frequent is the worker's frequent read, by monitor name.
	frequent := func() map[string]monitorJSON {
		out := map[string]monitorJSON{}
		for _, m := range listMonitorsJSON(t, h, frequentQuery) {
			out[m.Name] = m
		}
		return out
	}
	groups := func(m monitorJSON) map[string]string {
		out := map[string]string{}
		if m.State != nil {
			for name, g := range m.State.Groups {
				out[name] = g.Status
			}
		}
		return out
	}

	got := frequent()
	require.Len(t, got, len(monitors.ForProduct(fleet.ProductKafka)))
	for name, m := range got {
		assert.Equal(t, StatusOK, m.OverallState, name)
		assert.Empty(t, groups(m), name)
	}

	for _, c := range targets {
		apply(c, c.Generation+1, "9.0.0-bad")
	}
	want := map[string]string{}
	for _, c := range targets {
		want[monitors.GroupName(c.ID)] = StatusAlert
	}
	require.Eventually(t, func() bool { return assert.ObjectsAreEqual(want, groups(frequent()[monitor])) },
		30*time.Second, 10*time.Millisecond, "the three alerting groups, and only them")
	got = frequent()
	assert.Equal(t, StatusAlert, got[monitor].OverallState)
	for name, m := range got {
		if name != monitor {
			assert.Equal(t, StatusOK, m.OverallState, name)
			assert.Empty(t, groups(m), name)
		}
	}
	for _, g := range got[monitor].State.Groups {
		assert.Equal(t, int64(1_000_000), g.LastTriggeredTs, g.Name)
		assert.Zero(t, g.LastResolvedTs, g.Name)
	}

	// The faulty applies end first: the simulator refuses an apply while
	// another is in flight ("busy"), which left the alert up in a CI run.
	require.Eventually(t, func() bool {
		for _, c := range targets {
			if got, _ := s.Cluster(c.ID); got.Version != "9.0.0-bad" {
				return false
			}
		}
		return true
	}, 30*time.Second, 10*time.Millisecond, "the faulty applies complete")

	// One alert clears; only frequent reads run until it shows.
	clock.Store(2_000_000)
	cleared := targets[0]
	apply(cleared, cleared.Generation+2, "9.0.1")
	delete(want, monitors.GroupName(cleared.ID))
	require.Eventually(t, func() bool { return assert.ObjectsAreEqual(want, groups(frequent()[monitor])) },
		30*time.Second, 10*time.Millisecond, "the cleared group leaves the frequent read")
	assert.Equal(t, StatusAlert, frequent()[monitor].OverallState, "two still alert")

	// Read later, the group is OK, resolved when the frequent read saw it.
	clock.Store(3_000_000)
	scoped := listMonitorsJSON(t, h, "tags=cluster:"+cleared.ID+"&name="+monitor+"&group_states=all")
	require.Len(t, scoped, 1)
	g := scoped[0].State.Groups[monitors.GroupName(cleared.ID)]
	assert.Equal(t, StatusOK, g.Status)
	assert.Equal(t, int64(2_000_000), g.LastResolvedTs, "observed by the frequent read")
	assert.Equal(t, int64(1_000_000), g.LastTriggeredTs)
	assert.Equal(t, StatusOK, scoped[0].OverallState)

	// Every alert clears: overall_state back to OK.
	clock.Store(4_000_000)
	for _, c := range targets[1:] {
		apply(c, c.Generation+2, "9.0.1")
	}
	require.Eventually(t, func() bool { return frequent()[monitor].OverallState == StatusOK },
		30*time.Second, 10*time.Millisecond)
	assert.Empty(t, groups(frequent()[monitor]))
	roster := listMonitorsJSON(t, h, "monitor_tags=product:kafka&name="+monitor+"&group_states=all")
	require.Len(t, roster, 1)
	assert.Len(t, roster[0].State.Groups, kafkaN, "the roster has every group")
	for _, c := range targets[1:] {
		assert.Equal(t, int64(4_000_000), roster[0].State.Groups[monitors.GroupName(c.ID)].LastResolvedTs, c.ID)
	}
}

// overridingSim embeds the simulator and overrides MonitorStatus without
// overriding the index: the promoted index would ignore the override, so
// the server must not use it.
type overridingSim struct {
	*sim.Simulator
	alert string // cluster whose every group alerts
}

func (o overridingSim) MonitorStatus(clusterID, monitorName string) string {
	if clusterID == o.alert {
		return StatusAlert
	}
	return o.Simulator.MonitorStatus(clusterID, monitorName)
}

func TestEmbeddedIndexIsNotUsed(t *testing.T) {
	clusters := sim.GenerateFleet(50, 3)
	s, err := sim.New(sim.Config{Clusters: clusters}, zap.NewNop())
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	var target string
	for _, c := range clusters {
		if c.Product == fleet.ProductKafka {
			target = c.ID
			break
		}
	}
	srv := New(monitors.Default(), overridingSim{Simulator: s, alert: target}, Options{APIKey: apiKey, AppKey: appKey})
	assert.Nil(t, srv.idx, "the index belongs to the embedded simulator")
	for _, m := range listMonitorsJSON(t, srv.Handler(), frequentQuery) {
		assert.Equal(t, StatusAlert, m.OverallState, m.Name)
		require.NotNil(t, m.State)
		assert.Equal(t, map[string]groupJSON{monitors.GroupName(target): m.State.Groups[monitors.GroupName(target)]}, m.State.Groups)
		assert.Equal(t, StatusAlert, m.State.Groups[monitors.GroupName(target)].Status)
	}
}
