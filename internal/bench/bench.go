// Package bench measures the whole system on the in-process stack: a rollout
// over every simulated cluster, compared with the ideal makespan and with a
// bare Temporal fan-out of the same size on the same server; the largest
// workflow history and the largest payload in any of its histories; the
// peak memory of the bench process (the stack) and of the worker, run as
// its own process (Options.WorkerBinary); how fast a pause holds every
// in-flight cluster; and how many history events a paused rollout's
// workflows add while idle. cmd/fleetbench is its command line.
package bench

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	sdkclient "go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/internal/bench/stack"
	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/workflows"
)

// BatchSize is the rollout's batch size (clusters per Batch workflow).
const BatchSize = 25

// Options configure Run.
type Options struct {
	Ns          []int
	Concurrency int
	// Cases, when set, are the runs instead of every N in Ns at
	// Concurrency: one fresh stack each, in order (ParseCases).
	Cases      []Case
	BrokerTime time.Duration
	// MonitorInterval is the rollout's monitoring.interval (monitoring is on).
	MonitorInterval time.Duration
	// Pauses is how many pauses the pause-latency rollout takes (0: skip).
	Pauses int
	// Idle is the window over which the history growth of a paused rollout
	// (every in-flight cluster held) is measured (0: skip).
	Idle time.Duration
	// SkipBare leaves out the bare no-op fan-out (at N=100,000 it takes
	// minutes of a run's budget).
	SkipBare bool
	// BareApply also runs a bare fan-out whose activities each sleep the
	// mean apply time (the rollout's work with no rollout logic).
	BareApply bool
	// OrderBy orders the rollout's clusters (a spec orderBy metric, e.g.
	// "brokers"); "" keeps the planner's order.
	OrderBy string
	// Seed of the simulated fleet.
	Seed int64
	// Timeout bounds one N's main rollout.
	Timeout time.Duration
	// TempDir is where each N's stack keeps its data (a fresh directory
	// under it, removed afterwards); "" is the system's.
	TempDir string
	// WorkerBinary runs the fleet worker as its own process, this binary
	// (BuildWorker) configured by environment variables as a deployment
	// configures it (stack.Options.WorkerBinary), so its memory is measured
	// apart from the stack's; "" runs it inside this process (app.Run).
	WorkerBinary string
	// WorkerCPUProfile, with WorkerBinary, has each worker process write a
	// CPU profile (FLEET_CPUPROFILE) to this path with ".worker-n<N>-c<C>"
	// before its extension.
	WorkerCPUProfile string
	// WorkerLogDir keeps each worker process's output as
	// worker-n<N>-c<C>.log ("": in the run's temporary directory).
	WorkerLogDir string
	Log          *zap.Logger
	// Progress receives a line now and then (nil: quiet).
	Progress func(format string, args ...any)
}

// Case is one run: a fleet of N clusters rolled out at Concurrency.
type Case struct {
	N           int `json:"n"`
	Concurrency int `json:"concurrency"`
}

// ParseCases combines fleet sizes with a comma-separated list of
// concurrencies: each item is C (at every N) or C@N (at that N only; an N
// not in ns is ignored). For every N in order, its concurrencies in the
// list's order: "250,25@2000" over 2000,20000 is 2000@250, 2000@25,
// 20000@250.
func ParseCases(ns []int, list string) ([]Case, error) {
	type item struct{ c, n int }
	var items []item
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		cs, nstr, at := strings.Cut(f, "@")
		c, err := strconv.Atoi(cs)
		if err != nil || c <= 0 {
			return nil, fmt.Errorf("concurrency %q: want a positive count, or count@N", f)
		}
		it := item{c: c}
		if at {
			if it.n, err = strconv.Atoi(nstr); err != nil || it.n <= 0 {
				return nil, fmt.Errorf("concurrency %q: %q is not a fleet size", f, nstr)
			}
		}
		items = append(items, it)
	}
	var out []Case
	for _, n := range ns {
		seen := map[int]bool{}
		for _, it := range items {
			if (it.n == 0 || it.n == n) && !seen[it.c] {
				seen[it.c] = true
				out = append(out, Case{N: n, Concurrency: it.c})
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no run: no concurrency in %q applies to any of the fleet sizes %v", list, ns)
	}
	return out, nil
}

// Seconds is a duration that marshals as seconds.
type Seconds float64

func secs(d time.Duration) Seconds { return Seconds(math.Round(d.Seconds()*1000) / 1000) }

// Result is one N's measurements.
type Result struct {
	N               int     `json:"n"`
	Concurrency     int     `json:"concurrency"`
	OrderBy         string  `json:"orderBy,omitempty"`
	BatchSize       int     `json:"batchSize"`
	BrokerTime      Seconds `json:"brokerTimeSeconds"`
	MonitorInterval Seconds `json:"monitorIntervalSeconds"`
	Selected        int     `json:"selected"`
	Batches         int     `json:"batches"`
	RolloutState    string  `json:"rolloutState"`
	// MeanBrokers is the mean broker count of the selected clusters;
	// MeanApply = MeanBrokers × BrokerTime is the mean per-cluster apply
	// time t. Ideal = Selected / Concurrency × t (+ bakes, none here).
	MeanBrokers float64 `json:"meanBrokers"`
	MeanApply   Seconds `json:"meanApplySeconds"`
	Ideal       Seconds `json:"idealSeconds"`
	// BatchBound is the makespan of the plan's batches on the rollout's
	// sliding window (Concurrency/BatchSize batches side by side) when each
	// batch lasts exactly its slowest cluster's apply: the best this design
	// can do, with zero overhead.
	BatchBound Seconds `json:"batchBoundSeconds"`
	// WindowBound is the makespan of one window of Concurrency clusters
	// over every cluster in the plan's order, with zero overhead: what a
	// cluster-level window (the rollout's lanes, see workflows.BatchLane)
	// can do on this plan. Ideal assumes perfect packing.
	WindowBound Seconds `json:"windowBoundSeconds"`
	Makespan    Seconds `json:"makespanSeconds"`
	// RatioIdeal = Makespan / Ideal; RatioBatchBound = Makespan / BatchBound.
	RatioIdeal       float64 `json:"ratioIdeal"`
	RatioBatchBound  float64 `json:"ratioBatchBound"`
	RatioWindowBound float64 `json:"ratioWindowBound"`
	// MeanInFlight and MaxInFlight are the clusters the data plane had in
	// flight, sampled every 250 ms from the rollout's start to its end.
	MeanInFlight float64 `json:"meanInFlight"`
	MaxInFlight  int     `json:"maxInFlight"`
	// FirstApply is when, after the start, the data plane first had a
	// cluster in flight; Ramp when it first had 90 % of Concurrency in
	// flight; InFlight holds the in-flight count once a second (where a
	// rollout loses its window: the start, a drain, the tail).
	FirstApply Seconds `json:"firstApplySeconds"`
	Ramp       Seconds `json:"rampSeconds"`
	InFlight   []int   `json:"inFlightPerSecond,omitempty"`
	// Turnover is how long a freed slot stayed empty (see Turnover).
	Turnover Turnover `json:"turnover"`
	// ExactlyOnce counts selected clusters applied exactly once and now on
	// the target; Violations lists the others (first few).
	ExactlyOnce int      `json:"exactlyOnce"`
	Violations  []string `json:"violations,omitempty"`
	// BareNoop is the bare fan-out of N no-op activities at the same
	// concurrency; BareApply the same with activities that each sleep
	// MeanApply. The overhead ratios are Makespan over each.
	BareNoop         Seconds `json:"bareNoopSeconds"`
	BareApply        Seconds `json:"bareApplySeconds,omitempty"`
	OverheadVsNoop   float64 `json:"overheadVsBareNoop"`
	OverheadVsApply  float64 `json:"overheadVsBareApply,omitempty"`
	MaxHistoryEvents int64   `json:"maxHistoryEvents"`
	MaxHistoryWF     string  `json:"maxHistoryWorkflow"`
	RolloutHistory   int64   `json:"rolloutHistoryEvents"`
	MaxBatchHistory  int64   `json:"maxBatchHistoryEvents"`
	MaxHistoryBytes  int64   `json:"maxHistoryBytes"`
	// MaxPayloadBytes is the largest single payload (common.Payload,
	// metadata included, as serialized) in any event of the rollout's and
	// its batches' histories, every run; MaxPayloadAt says where (workflow,
	// event type). HistoriesScanned counts the histories read.
	MaxPayloadBytes  int64  `json:"maxPayloadBytes"`
	MaxPayloadAt     string `json:"maxPayloadAt,omitempty"`
	HistoriesScanned int    `json:"historiesScanned"`
	// EventTypes counts the events of the histories scanned by type (what
	// the server wrote per cluster: divide by Selected).
	EventTypes        map[string]int `json:"eventTypes,omitempty"`
	BareHistoryEvents int64          `json:"bareMaxHistoryEvents"`
	// RolloutEvents counts the rollout's history events by type.
	RolloutEvents map[string]int `json:"rolloutEvents,omitempty"`
	// PeakRSSMB is VmHWM of this process over this run (reset before each
	// run when the kernel allows): the stack (Temporal server, kfake, the
	// simulator, the Datadog-compatible endpoint, the bare fan-out's
	// worker), and the fleet worker too unless WorkerProcess. PeakHeapMB
	// is the highest Go HeapInuse sampled.
	PeakRSSMB      float64 `json:"peakRssMB"`
	PeakRSSReset   bool    `json:"peakRssReset"`
	PeakHeapMB     float64 `json:"peakHeapMB"`
	PeakGoroutines int     `json:"peakGoroutines"`
	// WorkerProcess: the fleet worker ran as its own process, its peak
	// resident set size (VmHWM, sampled every second and read before it
	// stopped) WorkerPeakRSSMB over the whole run, WorkerRolloutRSSMB
	// when the main rollout ended. WorkerCPUProfile is its CPU profile.
	WorkerProcess      bool    `json:"workerProcess"`
	WorkerPeakRSSMB    float64 `json:"workerPeakRssMB,omitempty"`
	WorkerRolloutRSSMB float64 `json:"workerPeakRssAtRolloutEndMB,omitempty"`
	WorkerCPUProfile   string  `json:"workerCpuProfile,omitempty"`
	// Pause latency: from the pause call until the rollout's status shows
	// no cluster in flight and some held; milliseconds.
	PauseSamplesMS []float64 `json:"pauseSamplesMs,omitempty"`
	PauseP50MS     float64   `json:"pauseP50Ms,omitempty"`
	PauseP99MS     float64   `json:"pauseP99Ms,omitempty"`
	PauseUpdateMS  float64   `json:"pauseUpdateP50Ms,omitempty"`
	HeldAtPause    []int     `json:"heldAtPause,omitempty"`
	// StatusQueryMS is the median time of one client.Status call during
	// the pause measurement; StatusBytes is not measured.
	StatusQueryMS float64 `json:"statusQueryP50Ms,omitempty"`
	// Idle history: a third rollout paused with every in-flight cluster
	// held (IdleHeld of them); after idleSettle, the history lengths of its
	// open workflows (the rollout and every running batch; IdleWorkflows in
	// all) are sampled at the start and the end of IdleWindow. IdleEvents
	// is the events they added; the per-hour figures are each workflow's
	// growth scaled from its own sampling interval to an hour, mean and max
	// (IdleMaxWorkflow). IdleWindow is absent when not measured.
	IdleWindow            Seconds `json:"idleWindowSeconds,omitempty"`
	IdleHeld              int     `json:"idleHeld,omitempty"`
	IdleWorkflows         int     `json:"idleOpenWorkflows,omitempty"`
	IdleEvents            int64   `json:"idleEvents"`
	IdleEventsPerHourMean float64 `json:"idleEventsPerHourMean"`
	IdleEventsPerHourMax  float64 `json:"idleEventsPerHourMax"`
	IdleMaxWorkflow       string  `json:"idleMaxWorkflow,omitempty"`
	// FinalStatusError is set when the rollout's status could not be read
	// once it finished (e.g. a query answer too large).
	FinalStatusError string `json:"finalStatusError,omitempty"`
	// Errors say what failed at this N and where.
	Errors []string `json:"errors,omitempty"`
	// Took is this N's wall time, everything included.
	Took Seconds `json:"tookSeconds"`
}

// RolloutSpec is the benchmark's rollout: every cluster, one phase, in the
// planner's order or ordered by orderBy (e.g. "brokers": largest first).
func RolloutSpec(name, version string, concurrency int, interval time.Duration, orderBy string) (*spec.Rollout, error) {
	order := ""
	if orderBy != "" {
		order = "      orderBy: {metric: " + orderBy + "}\n"
	}
	y := fmt.Sprintf(`
name: %s
description: fleetbench
target:
  version: %s
strategy:
  phases:
    - name: all
      batchSize: %d
      concurrency: %d
%sschedule:
  windows: ignore
monitoring:
  interval: %s
`, name, version, BatchSize, concurrency, order, interval)
	return spec.Parse(name+".yaml", []byte(y))
}

// Run measures every case (o.Cases, else every N in o.Ns at
// o.Concurrency) in turn, each on a fresh stack.
func Run(ctx context.Context, o Options) ([]Result, error) {
	cases := o.Cases
	if len(cases) == 0 {
		for _, n := range o.Ns {
			cases = append(cases, Case{N: n, Concurrency: o.Concurrency})
		}
	}
	var out []Result
	for _, c := range cases {
		oc := o
		oc.Concurrency = c.Concurrency
		r, err := RunOne(ctx, oc, c.N)
		if err != nil {
			r.Errors = append(r.Errors, err.Error())
		}
		out = append(out, r)
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
	}
	return out, nil
}

func (o Options) progress(format string, args ...any) {
	if o.Progress != nil {
		o.Progress(format, args...)
	}
}

// RunOne measures one N. The returned Result carries what was measured
// even when err is set.
func RunOne(ctx context.Context, o Options, n int) (res Result, err error) {
	began := time.Now()
	log := o.Log
	if log == nil {
		log = zap.NewNop()
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 250
	}
	if o.BrokerTime <= 0 {
		o.BrokerTime = time.Second
	}
	if o.MonitorInterval <= 0 {
		o.MonitorInterval = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Hour
	}
	res = Result{N: n, Concurrency: o.Concurrency, OrderBy: o.OrderBy, BatchSize: BatchSize, BrokerTime: secs(o.BrokerTime), MonitorInterval: secs(o.MonitorInterval),
		WorkerProcess: o.WorkerBinary != ""}
	lbl := fmt.Sprintf("N=%d c=%d", n, o.Concurrency)
	defer func() { res.Took = secs(time.Since(began)) }()

	res.PeakRSSReset = resetPeakRSS()
	mem := startMemSampler()
	defer func() {
		heapB, gor := mem.stop()
		res.PeakHeapMB = round1(float64(heapB) / (1 << 20))
		res.PeakGoroutines = gor
		if kb, err := vmHWM(); err == nil {
			res.PeakRSSMB = round1(float64(kb) / 1024)
		}
	}()

	dir, err := os.MkdirTemp(o.TempDir, fmt.Sprintf("fleetbench-%d-%d-", n, o.Concurrency))
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)

	so := stack.Options{DataDir: filepath.Join(dir, "stack"), Clusters: n, Seed: o.Seed, BrokerTime: o.BrokerTime, Log: log,
		WorkerBinary: o.WorkerBinary}
	var workerProfile string
	if o.WorkerBinary != "" {
		suffix := fmt.Sprintf("worker-n%d-c%d", n, o.Concurrency)
		if o.WorkerLogDir != "" {
			if err := os.MkdirAll(o.WorkerLogDir, 0o755); err != nil {
				return res, fmt.Errorf("worker log dir: %w", err)
			}
			so.WorkerLog = filepath.Join(o.WorkerLogDir, suffix+".log")
			_ = os.Remove(so.WorkerLog) // this run's output only
		}
		if o.WorkerCPUProfile != "" {
			ext := filepath.Ext(o.WorkerCPUProfile)
			workerProfile = strings.TrimSuffix(o.WorkerCPUProfile, ext) + "." + suffix + ext
			_ = os.Remove(workerProfile)
			so.WorkerEnvExtra = append(so.WorkerEnvExtra, WorkerCPUProfileEnv+"="+workerProfile)
		}
	}
	where := "in this process"
	if o.WorkerBinary != "" {
		where = "as its own process"
	}
	o.progress("%s: starting the stack (%d clusters), the worker %s", lbl, n, where)
	s, err := stack.Start(ctx, so)
	if err != nil {
		return res, fmt.Errorf("start stack: %w", err)
	}
	defer s.Close()
	if s.WorkerProcess() {
		// Before the stack closes: stop the worker (it writes its CPU
		// profile as it exits) and keep its peak memory.
		defer func() {
			res.WorkerPeakRSSMB = round1(float64(s.WorkerPeakRSSKB()) / 1024)
			if err := s.StopWorker(); err != nil {
				res.Errors = append(res.Errors, "worker process: "+err.Error())
			}
			res.WorkerPeakRSSMB = max(res.WorkerPeakRSSMB, round1(float64(s.WorkerPeakRSSKB())/1024))
			if workerProfile != "" {
				if st, err := os.Stat(workerProfile); err != nil || st.Size() == 0 {
					res.Errors = append(res.Errors, fmt.Sprintf("worker CPU profile %s not written (%v)", workerProfile, err))
				} else {
					res.WorkerCPUProfile = workerProfile
				}
			}
		}()
	}

	// The bench's own worker for the bare fan-out, on its own task queue.
	bw := worker.New(s.Temporal, BareTaskQueue, worker.Options{MaxConcurrentActivityExecutionSize: o.Concurrency})
	RegisterBare(bw)
	if err := bw.Start(); err != nil {
		return res, fmt.Errorf("start bare worker: %w", err)
	}
	defer bw.Stop()

	name := fmt.Sprintf("bench-%d", n)
	r, err := RolloutSpec(name, "99.0.0", o.Concurrency, o.MonitorInterval, o.OrderBy)
	if err != nil {
		return res, fmt.Errorf("bench spec: %w", err)
	}

	// The plan the rollout will make (the planner is pure): selection, mean
	// apply time, and the batch-gated bound.
	norm := *r
	norm.Normalize()
	p, err := plan.Build(&norm, s.Dev.Sim.Clusters(), plan.Options{Outline: true})
	if err != nil {
		return res, fmt.Errorf("plan: %w", err)
	}
	res.Selected = p.Total
	res.Batches = p.Batches()
	totalBrokers := 0
	var batchDur []time.Duration
	var jobs []time.Duration
	for _, ph := range p.Phases {
		for _, b := range ph.Batches {
			mx := 0
			for _, t := range b.Clusters {
				br := s.Before[t.ClusterID].Brokers
				totalBrokers += br
				mx = max(mx, br)
				jobs = append(jobs, time.Duration(br)*o.BrokerTime)
			}
			batchDur = append(batchDur, time.Duration(mx)*o.BrokerTime)
		}
	}
	if p.Total > 0 {
		res.MeanBrokers = round3(float64(totalBrokers) / float64(p.Total))
	}
	meanApply := time.Duration(res.MeanBrokers * float64(o.BrokerTime))
	res.MeanApply = secs(meanApply)
	res.Ideal = secs(time.Duration(float64(p.Total) / float64(o.Concurrency) * float64(meanApply)))
	res.BatchBound = secs(slidingWindow(batchDur, max(1, o.Concurrency/BatchSize)))
	res.WindowBound = secs(slidingWindow(jobs, o.Concurrency))

	// The rollout.
	o.progress("%s: rollout of %d clusters in %d batches, concurrency %d, broker time %s (ideal %.1fs, window bound %.1fs)",
		lbl, p.Total, res.Batches, o.Concurrency, o.BrokerTime, float64(res.Ideal), float64(res.WindowBound))
	rctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	stopObserving := observeApplies(s.Dev.Sim)
	t0 := time.Now()
	id, err := s.Fleet.Start(rctx, r, "fleetbench")
	if err != nil {
		stopObserving()
		return res, fmt.Errorf("start rollout: %w", err)
	}
	stopProgress := o.watchVersions(s, lbl, n, "99.0.0", t0)
	stopSampling := sampleInFlight(s, &res, t0, o.Concurrency)
	var final workflows.RolloutStatus
	werr := s.Temporal.GetWorkflow(rctx, id, "").Get(rctx, &final)
	stopSampling()
	res.Turnover = turnover(stopObserving(), o.Concurrency)
	stopProgress()
	res.Makespan = secs(time.Since(t0))
	if s.WorkerProcess() {
		res.WorkerRolloutRSSMB = round1(float64(s.WorkerPeakRSSKB()) / 1024)
	}
	if d, derr := s.Temporal.DescribeWorkflowExecution(ctx, id, ""); derr == nil {
		info := d.GetWorkflowExecutionInfo()
		st := info.GetStartTime()
		if first := info.GetFirstRunId(); first != "" && first != info.GetExecution().GetRunId() {
			// The rollout continued as new: its makespan runs from its
			// first run's start, not from the last run's.
			st = nil
			if fd, ferr := s.Temporal.DescribeWorkflowExecution(ctx, id, first); ferr == nil {
				st = fd.GetWorkflowExecutionInfo().GetStartTime()
			}
		}
		if ct := info.GetCloseTime(); st != nil && ct != nil && ct.AsTime().After(st.AsTime()) {
			// Temporal's own start and close times: the workflow's makespan.
			res.Makespan = secs(ct.AsTime().Sub(st.AsTime()))
		}
		res.RolloutState = strings.ToLower(strings.TrimPrefix(info.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_"))
	}
	if werr != nil {
		res.Errors = append(res.Errors, fmt.Sprintf("rollout %s did not complete: %v", id, werr))
	} else {
		res.RolloutState = string(final.State)
	}
	if res.Ideal > 0 {
		res.RatioIdeal = round3(float64(res.Makespan) / float64(res.Ideal))
	}
	if res.BatchBound > 0 {
		res.RatioBatchBound = round3(float64(res.Makespan) / float64(res.BatchBound))
	}
	if res.WindowBound > 0 {
		res.RatioWindowBound = round3(float64(res.Makespan) / float64(res.WindowBound))
	}
	// Exactly once, from the data plane's own counters.
	for _, ph := range p.Phases {
		for _, b := range ph.Batches {
			for _, t := range b.Clusters {
				c, _ := s.Dev.Sim.Cluster(t.ClusterID)
				starts := s.Dev.Sim.ApplyStarts(t.ClusterID)
				if starts == 1 && c.Version == "99.0.0" {
					res.ExactlyOnce++
				} else if len(res.Violations) < 10 {
					res.Violations = append(res.Violations, fmt.Sprintf("%s: %d applies, version %s", t.ClusterID, starts, c.Version))
				}
			}
		}
	}
	// The status query on the finished rollout (what `fleet status` reads).
	sctx, scancel := context.WithTimeout(ctx, time.Minute)
	if _, err := s.Fleet.Status(sctx, id); err != nil {
		res.FinalStatusError = err.Error()
	}
	scancel()
	o.progress("%s: rollout %s in %.1fs (ideal %.1fs, window bound %.1fs, ratio %.2f); exactly once: %d/%d",
		lbl, res.RolloutState, float64(res.Makespan), float64(res.Ideal), float64(res.WindowBound), res.RatioWindowBound, res.ExactlyOnce, res.Selected)

	// History lengths of the rollout and every batch, and the largest
	// payload in any of their events.
	o.progress("%s: reading the histories", lbl)
	if err := histories(ctx, s.Temporal, fmt.Sprintf("RolloutName = '%s'", name), &res, true); err != nil {
		res.Errors = append(res.Errors, "histories: "+err.Error())
	}
	if res.RolloutEvents, err = eventTypes(ctx, s.Temporal, id); err != nil {
		res.Errors = append(res.Errors, "rollout history: "+err.Error())
	}

	// The bare fan-outs on the same server (SkipBare: neither).
	if !o.SkipBare {
		o.progress("%s: bare fan-out of %d no-op activities", lbl, n)
		if d, h, err := bare(ctx, s.Temporal, fmt.Sprintf("bench/bare-noop-%d", n), BareInput{N: n, Concurrency: o.Concurrency}); err != nil {
			res.Errors = append(res.Errors, "bare no-op fan-out: "+err.Error())
		} else {
			res.BareNoop = secs(d)
			res.BareHistoryEvents = h
			if d > 0 {
				res.OverheadVsNoop = round3(float64(res.Makespan) / d.Seconds())
			}
		}
		if o.BareApply {
			o.progress("%s: bare fan-out of %d activities of %s each", lbl, n, meanApply)
			if d, h, err := bare(ctx, s.Temporal, fmt.Sprintf("bench/bare-apply-%d", n), BareInput{N: n, Concurrency: o.Concurrency, Sleep: meanApply}); err != nil {
				res.Errors = append(res.Errors, "bare apply-shaped fan-out: "+err.Error())
			} else {
				res.BareApply = secs(d)
				res.BareHistoryEvents = max(res.BareHistoryEvents, h)
				if d > 0 {
					res.OverheadVsApply = round3(float64(res.Makespan) / d.Seconds())
				}
			}
		}
	}

	// Pause latency on a second rollout.
	if o.Pauses > 0 {
		o.progress("%s: pause latency, %d pauses", lbl, o.Pauses)
		if err := pauseLatency(ctx, s, o, n, &res); err != nil {
			res.Errors = append(res.Errors, "pause latency: "+err.Error())
		}
	}

	// History growth of a paused rollout, on a third rollout.
	if o.Idle > 0 {
		o.progress("%s: idle history of a paused rollout, %s window", lbl, o.Idle)
		if err := idleHistory(ctx, s, o, n, &res); err != nil {
			res.Errors = append(res.Errors, "idle history: "+err.Error())
		}
	}
	return res, nil
}

// progressEvery is how often a rollout's progress is reported.
const progressEvery = 10 * time.Second

// every calls f every d in a goroutine until the returned function is
// called (which waits for f to return).
func every(d time.Duration, f func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(d)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				f()
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// watchVersions reports, every progressEvery, how many clusters run the
// version and how many are in flight.
func (o Options) watchVersions(s *stack.Stack, lbl string, n int, version string, t0 time.Time) func() {
	if o.Progress == nil {
		return func() {}
	}
	return every(progressEvery, func() {
		at := 0
		for _, c := range s.Dev.Sim.Clusters() {
			if c.Version == version {
				at++
			}
		}
		o.progress("%s: %5.0fs  %d/%d clusters on %s, %d in flight", lbl, time.Since(t0).Seconds(), at, n, version, s.Dev.Sim.InFlight())
	})
}

// sampleInFlight samples the data plane's clusters in flight every 250 ms
// until the returned function is called, which records mean and max in res.
func sampleInFlight(s *stack.Stack, res *Result, t0 time.Time, concurrency int) func() {
	var sum, samples, most int
	stop := every(250*time.Millisecond, func() {
		n := s.Dev.Sim.InFlight()
		sum, samples, most = sum+n, samples+1, max(most, n)
		if n > 0 && res.FirstApply == 0 {
			res.FirstApply = secs(time.Since(t0))
		}
		if n*10 >= concurrency*9 && res.Ramp == 0 {
			res.Ramp = secs(time.Since(t0))
		}
		if samples%4 == 1 {
			res.InFlight = append(res.InFlight, n)
		}
	})
	return func() {
		stop()
		if samples > 0 {
			res.MeanInFlight = round1(float64(sum) / float64(samples))
		}
		res.MaxInFlight = most
	}
}

// bare runs the bare fan-out and returns its makespan and its largest
// run's history length.
func bare(ctx context.Context, c sdkclient.Client, id string, in BareInput) (time.Duration, int64, error) {
	t0 := time.Now()
	run, err := c.ExecuteWorkflow(ctx, sdkclient.StartWorkflowOptions{ID: id, TaskQueue: BareTaskQueue}, BareWorkflowName, in)
	if err != nil {
		return 0, 0, err
	}
	var n int
	if err := run.Get(ctx, &n); err != nil {
		return 0, 0, err
	}
	d := time.Since(t0)
	var res Result
	if err := histories(ctx, c, fmt.Sprintf("WorkflowId = '%s'", id), &res, false); err != nil {
		return d, 0, err
	}
	return d, res.MaxHistoryEvents, nil
}

// histories describes every execution the visibility query finds (every
// run, continued-as-new ones included) and records the largest histories;
// with scan, it also reads each history and records the largest payload.
func histories(ctx context.Context, c sdkclient.Client, query string, res *Result, scan bool) error {
	var token []byte
	seen := 0
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token, PageSize: 1000})
		if err != nil {
			return fmt.Errorf("list %q: %w", query, err)
		}
		for _, e := range resp.GetExecutions() {
			seen++
			wid, rid := e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()
			d, err := c.DescribeWorkflowExecution(ctx, wid, rid)
			if err != nil {
				return fmt.Errorf("describe %s: %w", wid, err)
			}
			info := d.GetWorkflowExecutionInfo()
			h := info.GetHistoryLength()
			if h > res.MaxHistoryEvents {
				res.MaxHistoryEvents, res.MaxHistoryWF = h, wid
			}
			res.MaxHistoryBytes = max(res.MaxHistoryBytes, info.GetHistorySizeBytes())
			switch info.GetType().GetName() {
			case workflows.WorkflowRollout:
				res.RolloutHistory = max(res.RolloutHistory, h)
			case workflows.WorkflowBatch:
				res.MaxBatchHistory = max(res.MaxBatchHistory, h)
			}
			if scan {
				if res.EventTypes == nil {
					res.EventTypes = map[string]int{}
				}
				size, typ, err := largestPayload(ctx, c, wid, rid, res.EventTypes)
				if err != nil {
					return fmt.Errorf("history of %s: %w", wid, err)
				}
				res.HistoriesScanned++
				if int64(size) > res.MaxPayloadBytes {
					res.MaxPayloadBytes, res.MaxPayloadAt = int64(size), wid+" "+typ
				}
			}
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			break
		}
	}
	if seen == 0 {
		return fmt.Errorf("no workflow matches %q", query)
	}
	return nil
}

// eventTypes counts a workflow's (latest run's) history events by type.
func eventTypes(ctx context.Context, c sdkclient.Client, id string) (map[string]int, error) {
	out := map[string]int{}
	it := c.GetWorkflowHistory(ctx, id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return out, err
		}
		out[strings.TrimPrefix(e.GetEventType().String(), "EVENT_TYPE_")]++
	}
	return out, nil
}

// sideRollout starts a rollout beside the measured one; stop aborts it and
// waits for its end.
func sideRollout(ctx context.Context, s *stack.Stack, o Options, name, version string) (string, func(), error) {
	r, err := RolloutSpec(name, version, o.Concurrency, o.MonitorInterval, o.OrderBy)
	if err != nil {
		return "", nil, err
	}
	id, err := s.Fleet.Start(ctx, r, "fleetbench")
	if err != nil {
		return "", nil, fmt.Errorf("start %s: %w", name, err)
	}
	stop := func() {
		actx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		_, _ = s.Fleet.Abort(actx, id, workflows.ActionRequest{Actor: "fleetbench", Reason: "benchmark over"})
		_ = s.Temporal.GetWorkflow(actx, id, "").Get(actx, nil)
	}
	return id, stop, nil
}

// pauseLatency starts a second rollout and pauses it o.Pauses times while
// clusters are in flight, timing each pause until the status shows every
// in-flight cluster held; then it aborts the rollout.
func pauseLatency(ctx context.Context, s *stack.Stack, o Options, n int, res *Result) error {
	id, stop, err := sideRollout(ctx, s, o, fmt.Sprintf("bench-%d-pause", n), "99.0.1")
	if err != nil {
		return err
	}
	defer stop()
	var statusTimes []float64
	wait := func(what string, limit time.Duration, cond func(*workflows.RolloutStatus) bool) (*workflows.RolloutStatus, error) {
		return waitStatus(ctx, s, id, what, limit, cond, func(d time.Duration) {
			statusTimes = append(statusTimes, float64(d.Microseconds())/1000)
		})
	}
	want := max(1, min(o.Concurrency, n)/2)
	var updates []float64
	defer func() {
		res.PauseP50MS = round1(percentile(res.PauseSamplesMS, 50))
		res.PauseP99MS = round1(percentile(res.PauseSamplesMS, 99))
		res.PauseUpdateMS = round1(percentile(updates, 50))
		res.StatusQueryMS = round1(percentile(statusTimes, 50))
	}()
	for i := 0; i < o.Pauses; i++ {
		if _, err := wait("clusters in flight", 5*time.Minute, func(st *workflows.RolloutStatus) bool {
			return st.State == workflows.StateRunning && st.Counts.InFlight >= want
		}); err != nil {
			return err
		}
		t0 := time.Now()
		if _, err := s.Fleet.Pause(ctx, id, workflows.ActionRequest{Actor: "fleetbench", Reason: fmt.Sprintf("pause %d", i+1)}); err != nil {
			return fmt.Errorf("pause %d: %w", i+1, err)
		}
		updates = append(updates, float64(time.Since(t0).Microseconds())/1000)
		st, err := wait("every in-flight cluster held", 5*time.Minute, func(st *workflows.RolloutStatus) bool {
			return st.Counts.InFlight == 0 && st.Counts.Held > 0
		})
		if err != nil {
			return fmt.Errorf("pause %d: %w", i+1, err)
		}
		res.PauseSamplesMS = append(res.PauseSamplesMS, float64(time.Since(t0).Microseconds())/1000)
		res.HeldAtPause = append(res.HeldAtPause, st.Counts.Held)
		if _, err := s.Fleet.Resume(ctx, id, workflows.ActionRequest{Actor: "fleetbench", Reason: fmt.Sprintf("resume %d", i+1)}); err != nil {
			return fmt.Errorf("resume %d: %w", i+1, err)
		}
	}
	return nil
}

// waitStatus polls the rollout's status every 50 ms until cond holds (and
// returns that status), the rollout ends, or limit passes. took, if not
// nil, receives the time of each status call.
func waitStatus(ctx context.Context, s *stack.Stack, id, what string, limit time.Duration, cond func(*workflows.RolloutStatus) bool, took func(time.Duration)) (*workflows.RolloutStatus, error) {
	deadline := time.Now().Add(limit)
	var last *workflows.RolloutStatus
	var lastErr error
	for time.Now().Before(deadline) {
		t := time.Now()
		st, err := s.Fleet.Status(ctx, id)
		if took != nil {
			took(time.Since(t))
		}
		if err == nil {
			last = st
			if cond(st) {
				return st, nil
			}
			if st.State.Terminal() {
				return nil, fmt.Errorf("%s: the rollout ended (%s) first; counts %+v", what, st.State, st.Counts)
			}
		} else {
			lastErr = err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", what, ctx.Err())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if last != nil {
		return nil, fmt.Errorf("%s: timed out after %s; last counts %+v", what, limit, last.Counts)
	}
	return nil, fmt.Errorf("%s: timed out after %s: %v", what, limit, lastErr)
}

// idleSettle is how long a paused rollout is left, once every in-flight
// cluster is held, before its idle history growth is sampled.
const idleSettle = 3 * time.Second

// idleHistory starts a third rollout, pauses it while clusters are in
// flight, waits until every in-flight cluster is held and idleSettle more,
// and samples the history length of the rollout workflow and of every
// running batch workflow at the start and the end of o.Idle; then it
// aborts the rollout.
func idleHistory(ctx context.Context, s *stack.Stack, o Options, n int, res *Result) error {
	id, stop, err := sideRollout(ctx, s, o, fmt.Sprintf("bench-%d-idle", n), "99.0.2")
	if err != nil {
		return err
	}
	defer stop()
	want := max(1, min(o.Concurrency, n)/2)
	if _, err := waitStatus(ctx, s, id, "clusters in flight", 5*time.Minute, func(st *workflows.RolloutStatus) bool {
		return st.State == workflows.StateRunning && st.Counts.InFlight >= want
	}, nil); err != nil {
		return err
	}
	if _, err := s.Fleet.Pause(ctx, id, workflows.ActionRequest{Actor: "fleetbench", Reason: "idle history"}); err != nil {
		return fmt.Errorf("pause: %w", err)
	}
	st, err := waitStatus(ctx, s, id, "every in-flight cluster held", 5*time.Minute, func(st *workflows.RolloutStatus) bool {
		return st.Counts.InFlight == 0 && st.Counts.Held > 0
	}, nil)
	if err != nil {
		return err
	}
	res.IdleHeld = st.Counts.Held
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(idleSettle):
	}

	// The open workflows: the rollout and every batch of the plan whose
	// workflow is running (pending batches have none yet).
	ids := []string{id}
	for _, ph := range st.Phases {
		for _, b := range ph.Batches {
			ids = append(ids, workflows.BatchID(id, b.Number))
		}
	}
	type sample struct {
		id, run string
		at      time.Time
		length  int64
	}
	var t0 []sample
	for _, wid := range ids {
		at := time.Now()
		d, err := s.Temporal.DescribeWorkflowExecution(ctx, wid, "")
		if err != nil {
			var nf *serviceerror.NotFound
			if errors.As(err, &nf) {
				continue
			}
			return fmt.Errorf("describe %s: %w", wid, err)
		}
		info := d.GetWorkflowExecutionInfo()
		if info.GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
			continue
		}
		t0 = append(t0, sample{id: wid, run: info.GetExecution().GetRunId(), at: at, length: info.GetHistoryLength()})
	}
	res.IdleWorkflows = len(t0)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(o.Idle):
	}
	var sum, most float64
	for _, a := range t0 {
		at := time.Now()
		d, err := s.Temporal.DescribeWorkflowExecution(ctx, a.id, a.run)
		if err != nil {
			return fmt.Errorf("describe %s: %w", a.id, err)
		}
		info := d.GetWorkflowExecutionInfo()
		added := info.GetHistoryLength() - a.length
		if info.GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
			// Closed (or continued as new) in the window: add the latest
			// run's history.
			if d, err := s.Temporal.DescribeWorkflowExecution(ctx, a.id, ""); err == nil && d.GetWorkflowExecutionInfo().GetExecution().GetRunId() != a.run {
				added += d.GetWorkflowExecutionInfo().GetHistoryLength()
			}
		}
		res.IdleEvents += added
		perHour := float64(added) / at.Sub(a.at).Hours()
		sum += perHour
		if perHour > most {
			most, res.IdleMaxWorkflow = perHour, a.id
		}
	}
	if len(t0) > 0 {
		res.IdleEventsPerHourMean = round1(sum / float64(len(t0)))
	}
	res.IdleEventsPerHourMax = round1(most)
	res.IdleWindow = secs(o.Idle)
	return nil
}

// slidingWindow is the makespan of jobs run in order on k slots, each job
// taking the first free slot.
func slidingWindow(jobs []time.Duration, k int) time.Duration {
	h := &durHeap{}
	for i := 0; i < k; i++ {
		heap.Push(h, time.Duration(0))
	}
	var end time.Duration
	for _, d := range jobs {
		start := heap.Pop(h).(time.Duration)
		heap.Push(h, start+d)
		end = max(end, start+d)
	}
	return end
}

type durHeap []time.Duration

func (h durHeap) Len() int           { return len(h) }
func (h durHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h durHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *durHeap) Push(x any)        { *h = append(*h, x.(time.Duration)) }
func (h *durHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// percentile is the nearest-rank percentile of xs (0 for none).
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

func round1(x float64) float64 { return math.Round(x*10) / 10 }
func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// --- memory ---

// vmHWM is the process's peak resident set size in kB (/proc/self/status).
func vmHWM() (int64, error) { return stack.VmHWM(0) }

// resetPeakRSS resets VmHWM to the current RSS (Linux: "5" to clear_refs).
func resetPeakRSS() bool {
	runtime.GC()
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

type memSampler struct {
	done     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	heap     uint64
	routines int
}

func startMemSampler() *memSampler {
	m := &memSampler{done: make(chan struct{})}
	m.sample()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for {
			select {
			case <-m.done:
				return
			case <-tk.C:
				m.sample()
			}
		}
	}()
	return m
}

func (m *memSampler) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	g := runtime.NumGoroutine()
	m.mu.Lock()
	m.heap = max(m.heap, ms.HeapInuse)
	m.routines = max(m.routines, g)
	m.mu.Unlock()
}

func (m *memSampler) stop() (uint64, int) {
	close(m.done)
	m.wg.Wait()
	m.sample()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.heap, m.routines
}

// --- the worker binary ---

// WorkerPackage is the worker command's package.
const WorkerPackage = "github.com/fleet-rollout/fleet/worker"

// WorkerCPUProfileEnv is the worker command's CPU profile variable
// (worker/main.go).
const WorkerCPUProfileEnv = "FLEET_CPUPROFILE"

// BuildWorker builds the worker command into out with the go command on
// PATH (its GOTOOLCHAIN applies), from this source tree's module.
func BuildWorker(ctx context.Context, out string) error {
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.CommandContext(ctx, gobin, "build", "-o", out, WorkerPackage)
	if _, file, _, ok := runtime.Caller(0); ok {
		// internal/bench/bench.go -> the module's root, when the source
		// is there (not with -trimpath: then the working directory).
		if root := filepath.Join(filepath.Dir(file), "..", ".."); fileExists(filepath.Join(root, "go.mod")) {
			cmd.Dir = root
		}
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", WorkerPackage, err, b)
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
