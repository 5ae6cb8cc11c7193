package app_test

// BenchmarkPauseLatency measures, on the whole in-process stack, how long a
// rollout with 500 Kafka clusters in flight (10 batches of 50 side by side,
// 1,200-cluster fleet) takes to hold all of them once a monitor flips, with
// push detection (the Datadog webhook; monitoring.interval 5m, so no poll
// can pause) and with polling detection (monitoring.interval 1s). Each run
// is a fresh rollout to a version of its own; it is aborted once measured.
//
// What is measured, per run:
//
//	t0        webhook: just before the alert is POSTed to the worker;
//	          polling: the first moment a critical monitor of an in-flight
//	          cluster reads Alert in the data (sim.MonitorStatus, watched
//	          every 2 ms after a fault on the run's version is injected).
//	in flight the clusters sent an apply before t0 and neither held nor
//	          finished before t0 (from fleet.commands and fleet.status).
//	detect    the rollout's own pause time (PauseReason.At) - t0.
//	hold-cmd  the last hold command for the in-flight set on fleet.commands
//	          (Kafka record timestamp, set by the Publish activity) - t0.
//	held      the data plane's own report: per in-flight cluster, the time
//	          (Status.At, stamped by the simulator) of its first "held" event
//	          on fleet.status, or of its terminal event (completed, failed,
//	          aborted) if it finished or was stopped first. held-p50 is over
//	          the clusters of one run; all-held is the last of them - t0.
//
// The topics are read by a consumer of their own (no group), so the
// observation does not go through the status bridge or the workflows. The
// simulator holds a cluster when the broker restarting at that moment is
// done (the contract: "before its next broker"), so all-held includes up to
// one broker restart (BrokerTime) after the hold command: hold-cmd is the
// control plane's share.
//
//	go test -run '^$' -bench PauseLatency -benchtime 1x ./internal/app/
//
// LAT_REPS (default 3) sets the runs per mode, LAT_MODES (default
// "webhook,polling") the modes, LAT_BROKER_TIME (default 6s) the simulated
// broker restart (long enough that all 500 are mid-apply on a loaded 2-core
// machine), LAT_DEBUG=1 prints the rollout's counts while waiting.
import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/fleet-rollout/fleet/internal/app"
	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/monitors"
	"github.com/fleet-rollout/fleet/internal/sim"
	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/starter/client"
	"github.com/fleet-rollout/fleet/workflows"
)

const (
	latInFlight = 500
	latFleet    = 1200
	latSecret   = "bench-webhook-secret"
	latMonitor  = "kafka-under-replicated-partitions"
)

// latStack is startStackWith for a benchmark (the harness takes *testing.T).
func latStack(tb testing.TB, clusters int, brokerTime time.Duration, configure func(*app.Config)) *stack {
	tb.Helper()
	log := zaptest.NewLogger(tb, zaptest.Level(zap.ErrorLevel))
	ctx, cancel := context.WithCancel(context.Background())
	dev, err := app.StartDev(ctx, app.DevOptions{
		DataDir:    tb.TempDir(),
		Clusters:   clusters,
		Seed:       7,
		BrokerTime: brokerTime,
	}, log)
	require.NoError(tb, err)
	if configure != nil {
		configure(&dev.Config)
	}
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, dev.Config, log) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				tb.Errorf("worker: %v", err)
			}
		case <-time.After(30 * time.Second):
			tb.Errorf("worker did not stop")
		}
		dev.Close()
	})
	c, err := app.Dial(dev.Config, log)
	require.NoError(tb, err)
	tb.Cleanup(c.Close)
	plans, err := dev.Config.OpenPlanStore()
	require.NoError(tb, err)
	s := &stack{dev: dev, client: client.New(c).WithPlans(plans), before: map[string]fleet.Cluster{}}
	for _, cl := range dev.Sim.Clusters() {
		s.before[cl.ID] = cl
	}
	return s
}

// latWait polls the rollout's status until cond holds (or the rollout ends,
// which fails unless cond accepts it).
func latWait(tb testing.TB, s *stack, id, what string, d time.Duration, cond func(*workflows.RolloutStatus) bool) *workflows.RolloutStatus {
	tb.Helper()
	var last *workflows.RolloutStatus
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		st, err := s.client.Status(context.Background(), id)
		if os.Getenv("LAT_DEBUG") != "" && err == nil {
			fmt.Printf("%s %s: %s %+v\n", time.Now().Format("15:04:05.000"), id, st.State, st.Counts)
		}
		if err == nil {
			last = st
			if cond(st) {
				return st
			}
			if st.State.Terminal() {
				tb.Fatalf("%s ended (%s) while waiting for %s: %+v", id, st.State, what, st.Counts)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if last != nil {
		tb.Fatalf("%s: timed out waiting for %s; counts %+v paused %+v", id, what, last.Counts, last.Paused)
	}
	tb.Fatalf("%s: timed out waiting for %s", id, what)
	return nil
}

// latObserver reads fleet.status and fleet.commands from the start, with no
// consumer group, and remembers per rollout and cluster when each first
// stopped (held or terminal) and when its first hold command was produced.
type latObserver struct {
	mu       sync.Mutex
	applyCmd map[string]map[string]time.Time
	stopped  map[string]map[string]time.Time
	held     map[string]map[string]bool
	holdCmd  map[string]map[string]time.Time
}

func latObserve(tb testing.TB, brokers []string) *latObserver {
	tb.Helper()
	o := &latObserver{
		applyCmd: map[string]map[string]time.Time{},
		stopped:  map[string]map[string]time.Time{},
		held:     map[string]map[string]bool{},
		holdCmd:  map[string]map[string]time.Time{},
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(dataplane.StatusTopic, dataplane.CommandsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	require.NoError(tb, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(o.record)
		}
	}()
	tb.Cleanup(func() { cancel(); <-done; cl.Close() })
	return o
}

func latPut[V any](m map[string]map[string]V, k1, k2 string, v V) bool {
	inner := m[k1]
	if inner == nil {
		inner = map[string]V{}
		m[k1] = inner
	}
	if _, ok := inner[k2]; ok {
		return false
	}
	inner[k2] = v
	return true
}

func (o *latObserver) record(r *kgo.Record) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch r.Topic {
	case dataplane.StatusTopic:
		st, err := dataplane.DecodeStatus(r.Value)
		if err != nil {
			return
		}
		switch {
		case st.State == dataplane.Held:
			if latPut(o.stopped, st.RolloutID, st.ClusterID, st.At) {
				latPut(o.held, st.RolloutID, st.ClusterID, true)
			}
		case st.State.Terminal() || st.State == dataplane.Rejected:
			latPut(o.stopped, st.RolloutID, st.ClusterID, st.At)
		}
	case dataplane.CommandsTopic:
		cmd, err := dataplane.DecodeCommand(r.Value)
		switch {
		case err != nil:
		case cmd.Kind == dataplane.Hold:
			latPut(o.holdCmd, cmd.RolloutID, cmd.ClusterID, r.Timestamp)
		case cmd.Kind == dataplane.Apply:
			latPut(o.applyCmd, cmd.RolloutID, cmd.ClusterID, r.Timestamp)
		}
	}
}

// inFlightAt lists the clusters of the rollout in flight at t0: sent an
// apply before t0, and neither held nor finished before t0.
func (o *latObserver) inFlightAt(rollout string, t0 time.Time) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var ids []string
	for id, sent := range o.applyCmd[rollout] {
		if stop, ok := o.stopped[rollout][id]; sent.Before(t0) && (!ok || !stop.Before(t0)) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// stops returns, for the clusters of ids, when each stopped and whether it
// was held; ok is false until every one has.
func (o *latObserver) stops(rollout string, ids []string) (at map[string]time.Time, held int, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	at = map[string]time.Time{}
	for _, id := range ids {
		t, seen := o.stopped[rollout][id]
		if !seen {
			return nil, 0, false
		}
		at[id] = t
		if o.held[rollout][id] {
			held++
		}
	}
	return at, held, true
}

func (o *latObserver) lastHoldCmd(rollout string, ids []string) (time.Time, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var last time.Time
	n := 0
	for _, id := range ids {
		if t, ok := o.holdCmd[rollout][id]; ok {
			n++
			if t.After(last) {
				last = t
			}
		}
	}
	return last, n
}

// latRun is one measured pause.
type latRun struct {
	mode, rollout    string
	inFlight, held   int
	detect, holdCmd  time.Duration
	heldP50, allHeld time.Duration
	holdCmds         int
}

// latModes are the detection modes to measure (LAT_MODES, default both).
func latModes() []string {
	if v := os.Getenv("LAT_MODES"); v != "" {
		return strings.Split(v, ",")
	}
	return []string{"webhook", "polling"}
}

func latEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func BenchmarkPauseLatency(b *testing.B) {
	if testing.Short() {
		b.Skip("whole-stack benchmark")
	}
	reps := latEnvInt("LAT_REPS", 3)
	brokerTime := 6 * time.Second
	if d, err := time.ParseDuration(os.Getenv("LAT_BROKER_TIME")); err == nil && d > 0 {
		brokerTime = d
	}
	s := latStack(b, latFleet, brokerTime, func(c *app.Config) { c.WebhookSecret = latSecret })
	obs := latObserve(b, s.dev.Config.KafkaBrokers)
	var mon monitors.Monitor
	for _, m := range monitors.Default() {
		if m.Name == latMonitor {
			mon = m
		}
	}
	require.NotZero(b, mon.ID)

	var runs []latRun
	for i := 0; i < b.N; i++ {
		runs = runs[:0]
		// Webhook runs first: a polling run leaves alerts behind on the
		// clusters it tripped (they are excluded from later runs).
		for _, mode := range latModes() {
			for rep := 1; rep <= reps; rep++ {
				// A version of its own per run: every Kafka cluster is
				// eligible again (the planner skips those at the target).
				version := fmt.Sprintf("4.0.%d", len(runs)+1+i*100)
				r := latMeasure(b, s, obs, mon, mode, fmt.Sprintf("lat-%s-%d-%d", mode, i, rep), version, brokerTime)
				runs = append(runs, r)
			}
		}
	}
	b.StopTimer()

	var sb strings.Builder
	fmt.Fprintf(&sb, "\npause latency, %d clusters in flight, broker restart %s (ms from t0)\n", latInFlight, brokerTime)
	fmt.Fprintf(&sb, "%-8s %-20s %8s %8s %9s %9s %9s %9s\n", "mode", "rollout", "inflight", "held", "detect", "hold-cmd", "held-p50", "all-held")
	for _, r := range runs {
		fmt.Fprintf(&sb, "%-8s %-20s %8d %8d %9d %9d %9d %9d\n", r.mode, r.rollout, r.inFlight, r.held,
			r.detect.Milliseconds(), r.holdCmd.Milliseconds(), r.heldP50.Milliseconds(), r.allHeld.Milliseconds())
	}
	fmt.Fprintf(&sb, "%-8s %8s %8s %12s %12s %12s %12s\n", "mode", "metric", "", "detect", "hold-cmd", "held-p50", "all-held")
	for _, mode := range latModes() {
		var det, cmd, hp50, all []time.Duration
		for _, r := range runs {
			if r.mode == mode {
				det, cmd, hp50, all = append(det, r.detect), append(cmd, r.holdCmd), append(hp50, r.heldP50), append(all, r.allHeld)
			}
		}
		for _, q := range []float64{50, 99} {
			fmt.Fprintf(&sb, "%-8s %8s %8s %12d %12d %12d %12d\n", mode, fmt.Sprintf("p%.0f", q), "",
				latPct(det, q).Milliseconds(), latPct(cmd, q).Milliseconds(), latPct(hp50, q).Milliseconds(), latPct(all, q).Milliseconds())
		}
		b.ReportMetric(float64(latPct(all, 50).Milliseconds()), mode+"-p50-ms")
		b.ReportMetric(float64(latPct(all, 99).Milliseconds()), mode+"-p99-ms")
		b.ReportMetric(float64(latPct(cmd, 50).Milliseconds()), mode+"-holdcmd-p50-ms")
		b.ReportMetric(float64(latPct(det, 50).Milliseconds()), mode+"-detect-p50-ms")
	}
	fmt.Fprintf(&sb, "(p99 over %d runs per mode is their maximum)\n", reps)
	// Printed, not logged: a benchmark's log is cut after ten lines.
	fmt.Print(sb.String())
}

// latPct is the nearest-rank percentile.
func latPct(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(q/100*float64(len(s))+0.999999) - 1
	return s[max(0, min(k, len(s)-1))]
}

const latRollout = `
name: %s
target:
  version: %s
selector: product=kafka
exclude: [%s]
strategy:
  phases:
    - name: all
      batchSize: 50
      concurrency: %d
monitoring:
  interval: %s
schedule:
  windows: ignore
`

// latMeasure runs one rollout to latInFlight clusters in flight, flips a
// monitor, measures until every in-flight cluster is held, and aborts it.
func latMeasure(b *testing.B, s *stack, obs *latObserver, mon monitors.Monitor, mode, name, version string, brokerTime time.Duration) latRun {
	b.Helper()
	ctx := context.Background()
	// Clusters a polling run left alerting would pause this run at once.
	var exclude []string
	for id, c := range s.before {
		if c.Product == fleet.ProductKafka && s.dev.Sim.MonitorStatus(id, mon.Name) == sim.StatusAlert {
			exclude = append(exclude, id)
		}
	}
	sort.Strings(exclude)
	interval := "5m" // push only: no poll can pause the rollout
	if mode == "polling" {
		interval = "1s"
	}
	sp := latParseSpec(b, fmt.Sprintf(latRollout, name, version, strings.Join(exclude, ", "), latInFlight, interval))
	id, err := s.client.Start(ctx, sp, "bench")
	require.NoError(b, err)

	applying := func(st *workflows.RolloutStatus) (ids []string, pastFirst int) {
		for _, ph := range st.Phases {
			for _, bt := range ph.Batches {
				for _, c := range bt.Clusters {
					if c.State == workflows.ClusterApplying {
						ids = append(ids, c.ID)
						if c.Broker >= 1 {
							pastFirst++
						}
					}
				}
			}
		}
		return ids, pastFirst
	}
	st := latWait(b, s, id, fmt.Sprintf("%d clusters applying", latInFlight), 3*time.Minute, func(st *workflows.RolloutStatus) bool {
		ids, _ := applying(st)
		return st.Total > 0 && len(ids) >= min(latInFlight, st.Total)
	})
	// Mid-apply: wait (bounded) until most have restarted a broker, so the
	// polling fault trips on completions, not on every first restart.
	deadline := time.Now().Add(2 * brokerTime)
	for time.Now().Before(deadline) {
		ids, past := applying(st)
		if past >= len(ids)*9/10 {
			break
		}
		time.Sleep(100 * time.Millisecond)
		if next, err := s.client.Status(ctx, id); err == nil {
			st = next
		}
	}
	applyingNow, _ := applying(st)
	require.NotEmpty(b, applyingNow)

	var t0 time.Time
	switch mode {
	case "webhook":
		target := ""
		for _, cid := range applyingNow {
			if s.dev.Sim.MonitorStatus(cid, mon.Name) == sim.StatusOK {
				target = cid
				break
			}
		}
		require.NotEmpty(b, target)
		t0 = time.Now()
		code, body := latPost(b, s.dev.Config.HTTPAddr, map[string]string{
			"transition": "Triggered", "status": "Alert", "monitorId": fmt.Sprint(mon.ID),
			"title": "[Triggered on {cluster:" + target + "}] " + mon.Name, "scope": "cluster:" + target,
		})
		require.Equal(b, http.StatusAccepted, code, "%s", body)
		require.Contains(b, body, `"batches":1`, "the webhook reached the batch")
	case "polling":
		// Every Kafka cluster that restarts its first broker or completes
		// on this version from now on alerts: the flip is the first one.
		fault := sim.Fault{Version: version, Product: fleet.ProductKafka, Monitor: mon.Name, Fraction: 1}
		require.NoError(b, s.dev.Sim.SetFaults([]sim.Fault{fault}))
		defer func() { require.NoError(b, s.dev.Sim.SetFaults(nil)) }()
		flipDeadline := time.Now().Add(3 * time.Minute)
	flip:
		for {
			for _, cid := range applyingNow {
				if s.dev.Sim.MonitorStatus(cid, mon.Name) == sim.StatusAlert {
					t0 = time.Now()
					break flip
				}
			}
			require.True(b, time.Now().Before(flipDeadline), "no monitor flipped")
			time.Sleep(2 * time.Millisecond)
		}
	default:
		b.Fatalf("unknown mode %q", mode)
	}
	// The in-flight set at t0, as the data plane's topics tell it.
	time.Sleep(time.Second) // let the observer catch up to t0
	inFlight := obs.inFlightAt(id, t0)
	require.NotEmpty(b, inFlight)

	// Every cluster applying at t0 holds (or stops) on the data plane.
	var stops map[string]time.Time
	held := 0
	waitUntil := time.Now().Add(3 * time.Minute)
	for {
		var ok bool
		if stops, held, ok = obs.stops(id, inFlight); ok {
			break
		}
		require.True(b, time.Now().Before(waitUntil), "%s: in-flight clusters never all held", id)
		time.Sleep(20 * time.Millisecond)
	}
	paused := latWait(b, s, id, "the pause", time.Minute, func(st *workflows.RolloutStatus) bool { return st.Paused != nil })
	lastCmd, cmds := obs.lastHoldCmd(id, inFlight)

	var per []time.Duration
	var all time.Duration
	for _, at := range stops {
		d := max(0, at.Sub(t0))
		per = append(per, d)
		all = max(all, d)
	}
	r := latRun{
		mode: mode, rollout: name, inFlight: len(inFlight), held: held,
		detect:  paused.Paused.At.Sub(t0),
		holdCmd: max(0, lastCmd.Sub(t0)), holdCmds: cmds,
		heldP50: latPct(per, 50), allHeld: all,
	}
	fmt.Printf("%s: %d in flight, %d held (%d hold commands), detect %s, last hold command %s, all held %s; pause: %s\n",
		name, r.inFlight, r.held, cmds, r.detect.Round(time.Millisecond), r.holdCmd.Round(time.Millisecond),
		r.allHeld.Round(time.Millisecond), paused.Paused.Reason)

	_, err = s.client.Abort(ctx, id, workflows.ActionRequest{Actor: "bench", Reason: "measured"})
	require.NoError(b, err)
	latWait(b, s, id, "the end", 3*time.Minute, func(st *workflows.RolloutStatus) bool { return st.State.Terminal() })
	return r
}

func latParseSpec(tb testing.TB, y string) *spec.Rollout {
	tb.Helper()
	r, err := spec.Parse("bench.yaml", []byte(y))
	require.NoError(tb, err)
	return r
}

func latPost(tb testing.TB, addr string, payload map[string]string) (int, string) {
	tb.Helper()
	body, err := json.Marshal(payload)
	require.NoError(tb, err)
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/webhooks/datadog", bytes.NewReader(body))
	require.NoError(tb, err)
	req.Header.Set(app.WebhookSecretHeader, latSecret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	return resp.StatusCode, strings.TrimSpace(string(raw))
}
