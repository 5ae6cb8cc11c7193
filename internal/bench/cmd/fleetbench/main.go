// Command fleetbench measures a rollout over every simulated cluster on the
// in-process stack, for each fleet size N and concurrency C: makespan
// against the ideal and the window bound, a bare Temporal fan-out of the
// same size on the same server, the largest workflow histories and payload,
// the peak memory of the stack and of the worker (its own process by
// default), pause latency, and the history events a paused rollout's
// workflows add per idle hour. It prints a table and writes JSON.
//
//	go run ./internal/bench/cmd/fleetbench [-n 2000,20000] [-concurrency 250,25@2000]
//	    [-broker-time 1s] [-monitor-interval 1s] [-pauses 5] [-idle 60s]
//	    [-worker-process=true] [-worker-bin bin/worker] [-cpuprofile cpu.pprof]
//	    [-json bench-results/bench.json] [-log bench-results/bench.log]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/fleet-rollout/fleet/internal/bench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fleetbench:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		ns       = flag.String("n", "2000,20000", "comma-separated fleet sizes")
		conc     = flag.String("concurrency", "250,25@2000", "rollout concurrencies (clusters applied at once), comma-separated: C at every N, C@N at that N only; one run each")
		bt       = flag.Duration("broker-time", time.Second, "simulated time to restart one broker")
		interval = flag.Duration("monitor-interval", time.Second, "the rollout's monitoring.interval (monitoring is on)")
		pauses   = flag.Int("pauses", 5, "pauses for the pause-latency measurement (0: skip)")
		idle     = flag.Duration("idle", time.Minute, "window of the idle-history measurement on a paused rollout, at every N (0: skip)")
		bareNo   = flag.Bool("bare", true, "run the bare no-op fan-out (the engine's floor on this server); false also skips -bare-apply")
		bareAp   = flag.Bool("bare-apply", true, "also run a bare fan-out whose activities sleep the mean apply time")
		seed     = flag.Int64("seed", 1, "seed of the simulated fleet")
		orderBy  = flag.String("order-by", "brokers", "the rollout's orderBy metric (brokers: largest clusters first); \"\" keeps the planner's order")
		jsonOut  = flag.String("json", "bench-results/bench.json", "write the results as JSON here (\"\" = don't)")
		logOut   = flag.String("log", "bench-results/bench.log", "the stack's log (\"\" = stderr, errors only)")
		timeout  = flag.Duration("timeout", 2*time.Hour, "bound on one N's rollout")
		cpuProf  = flag.String("cpuprofile", "", "write a CPU profile of this process here (go tool pprof), and each worker process's beside it (FILE.worker-n<N>-c<C>)")
		procW    = flag.Bool("worker-process", true, "run the fleet worker as its own process (the production binary wired by environment variables) and measure its memory apart; false: inside this process")
		workerB  = flag.String("worker-bin", "", "the worker binary for -worker-process (\"\": go build ./worker into a temporary directory)")
	)
	flag.Parse()
	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		if err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	var sizes []int
	for _, f := range strings.Split(*ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("-n: %q is not a positive count", f)
		}
		sizes = append(sizes, n)
	}
	cases, err := bench.ParseCases(sizes, *conc)
	if err != nil {
		return fmt.Errorf("-concurrency: %w", err)
	}
	log, closeLog, err := logger(*logOut)
	if err != nil {
		return err
	}
	defer closeLog()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	progress := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[%6.0fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	o := bench.Options{
		Ns: sizes, Cases: cases, BrokerTime: *bt, MonitorInterval: *interval,
		Pauses: *pauses, Idle: *idle, BareApply: *bareAp, SkipBare: !*bareNo, Seed: *seed, OrderBy: *orderBy, Timeout: *timeout, Log: log,
		Progress: progress,
	}
	if *procW {
		o.WorkerBinary = *workerB
		if o.WorkerBinary == "" {
			tmp, err := os.MkdirTemp("", "fleetbench-worker-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			o.WorkerBinary = filepath.Join(tmp, "worker")
			progress("building the worker (%s)", bench.WorkerPackage)
			if err := bench.BuildWorker(ctx, o.WorkerBinary); err != nil {
				return err
			}
		}
		o.WorkerCPUProfile = *cpuProf
		o.WorkerLogDir = "bench-results"
		if *logOut != "" {
			o.WorkerLogDir = filepath.Dir(*logOut)
		}
	}
	results, runErr := bench.Run(ctx, o)
	Print(os.Stdout, results)
	if *jsonOut != "" && len(results) > 0 {
		if err := os.MkdirAll(filepath.Dir(*jsonOut), 0o755); err != nil {
			return err
		}
		opts := map[string]any{
			"n": sizes, "concurrency": *conc, "runs": cases, "brokerTime": bt.String(), "monitorInterval": interval.String(),
			"pauses": *pauses, "idle": idle.String(), "bareApply": *bareAp, "seed": *seed, "orderBy": *orderBy, "workerProcess": *procW,
		}
		b, err := json.MarshalIndent(map[string]any{
			"when":    time.Now().UTC().Format(time.RFC3339),
			"options": opts,
			"results": results,
		}, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "wrote", *jsonOut)
	}
	return runErr
}

// Print writes the results as a table, one column per N.
func Print(w io.Writer, rs []bench.Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(name string, f func(r bench.Result) string) {
		fmt.Fprint(tw, name+"\t")
		for _, r := range rs {
			fmt.Fprint(tw, f(r)+"\t")
		}
		fmt.Fprintln(tw)
	}
	s := func(x bench.Seconds) string { return fmt.Sprintf("%.1fs", float64(x)) }
	row("N", func(r bench.Result) string { return strconv.Itoa(r.N) })
	row("concurrency / batch size", func(r bench.Result) string { return fmt.Sprintf("%d / %d", r.Concurrency, r.BatchSize) })
	row("cluster order", func(r bench.Result) string {
		if r.OrderBy == "" {
			return "planner's"
		}
		return "orderBy " + r.OrderBy
	})
	row("broker time / monitor interval", func(r bench.Result) string {
		return fmt.Sprintf("%.3gs / %.3gs", float64(r.BrokerTime), float64(r.MonitorInterval))
	})
	row("selected clusters / batches", func(r bench.Result) string { return fmt.Sprintf("%d / %d", r.Selected, r.Batches) })
	row("rollout outcome", func(r bench.Result) string { return r.RolloutState })
	row("mean brokers -> mean apply t", func(r bench.Result) string { return fmt.Sprintf("%.2f -> %s", r.MeanBrokers, s(r.MeanApply)) })
	row("ideal N/C x t", func(r bench.Result) string { return s(r.Ideal) })
	row("batch-gated bound", func(r bench.Result) string { return s(r.BatchBound) })
	row("window bound (C slots, plan order, zero overhead)", func(r bench.Result) string { return s(r.WindowBound) })
	row("makespan", func(r bench.Result) string { return s(r.Makespan) })
	row("clusters in flight mean / max", func(r bench.Result) string {
		return fmt.Sprintf("%.0f / %d", r.MeanInFlight, r.MaxInFlight)
	})
	row("first apply / 90 % of C in flight after", func(r bench.Result) string {
		return fmt.Sprintf("%s / %s", s(r.FirstApply), s(r.Ramp))
	})
	row("first apply to C started", func(r bench.Result) string { return fmt.Sprintf("%.0f ms", r.Turnover.FillMS) })
	row("slot empty after an apply ends p50 / p90 / mean", func(r bench.Result) string {
		t := r.Turnover
		return fmt.Sprintf("%.0f / %.0f / %.0f ms", t.P50MS, t.P90MS, t.MeanMS)
	})
	row("  of which until issued / in transit, p50", func(r bench.Result) string {
		return fmt.Sprintf("%.0f / %.0f ms", r.Turnover.IssueP50MS, r.Turnover.TransitP50MS)
	})
	row("  same batch (p50) / across batches (p50)", func(r bench.Result) string {
		t := r.Turnover
		return fmt.Sprintf("%d (%.0f ms) / %d (%.0f ms)", t.SameBatch, t.SameP50MS, t.Pairs-t.SameBatch, t.CrossP50MS)
	})
	row("makespan / ideal (target <= 1.10)", func(r bench.Result) string { return fmt.Sprintf("%.2f", r.RatioIdeal) })
	row("makespan / batch-gated bound", func(r bench.Result) string { return fmt.Sprintf("%.2f", r.RatioBatchBound) })
	row("makespan / window bound", func(r bench.Result) string { return fmt.Sprintf("%.2f", r.RatioWindowBound) })
	row("exactly once", func(r bench.Result) string { return fmt.Sprintf("%d/%d", r.ExactlyOnce, r.Selected) })
	row("bare fan-out, no-op activities", func(r bench.Result) string { return s(r.BareNoop) })
	row("rollout / bare no-op", func(r bench.Result) string { return fmt.Sprintf("%.1f", r.OverheadVsNoop) })
	row("bare fan-out, activities of t", func(r bench.Result) string { return s(r.BareApply) })
	row("rollout / bare of t", func(r bench.Result) string { return fmt.Sprintf("%.2f", r.OverheadVsApply) })
	row("largest history (target <= 10240)", func(r bench.Result) string {
		return fmt.Sprintf("%d (%s)", r.MaxHistoryEvents, r.MaxHistoryWF)
	})
	row("max history events: rollout / batch", func(r bench.Result) string {
		return fmt.Sprintf("%d / %d", r.RolloutHistory, r.MaxBatchHistory)
	})
	row("largest history bytes", func(r bench.Result) string { return fmt.Sprintf("%.2f MB", float64(r.MaxHistoryBytes)/(1<<20)) })
	row("largest payload in any history", func(r bench.Result) string {
		if r.HistoriesScanned == 0 {
			return "-"
		}
		return fmt.Sprintf("%d B (%d histories)", r.MaxPayloadBytes, r.HistoriesScanned)
	})
	row("worker", func(r bench.Result) string {
		if r.WorkerProcess {
			return "own process"
		}
		return "in the bench process"
	})
	row("worker peak RSS (VmHWM): run / rollout end", func(r bench.Result) string {
		if !r.WorkerProcess {
			return "-"
		}
		return fmt.Sprintf("%.0f / %.0f MB", r.WorkerPeakRSSMB, r.WorkerRolloutRSSMB)
	})
	row("bench process peak RSS / Go heap", func(r bench.Result) string {
		reset := ""
		if !r.PeakRSSReset {
			reset = "*"
		}
		return fmt.Sprintf("%.0f%s / %.0f MB", r.PeakRSSMB, reset, r.PeakHeapMB)
	})
	row("pause -> all held p50 / p99", func(r bench.Result) string {
		if len(r.PauseSamplesMS) == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f / %.0f ms (n=%d)", r.PauseP50MS, r.PauseP99MS, len(r.PauseSamplesMS))
	})
	row("pause update p50 / status query p50", func(r bench.Result) string {
		return fmt.Sprintf("%.0f / %.0f ms", r.PauseUpdateMS, r.StatusQueryMS)
	})
	row("paused rollout: held / open workflows", func(r bench.Result) string {
		if r.IdleWindow == 0 {
			return "-"
		}
		return fmt.Sprintf("%d / %d", r.IdleHeld, r.IdleWorkflows)
	})
	row("paused rollout: events added in window", func(r bench.Result) string {
		if r.IdleWindow == 0 {
			return "-"
		}
		return fmt.Sprintf("%d in %s", r.IdleEvents, s(r.IdleWindow))
	})
	row("history events per idle hour per wf mean / max", func(r bench.Result) string {
		if r.IdleWindow == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f / %.1f", r.IdleEventsPerHourMean, r.IdleEventsPerHourMax)
	})
	row("wall time", func(r bench.Result) string { return s(r.Took) })
	tw.Flush()
	for _, r := range rs {
		lbl := fmt.Sprintf("N=%d c=%d", r.N, r.Concurrency)
		for _, e := range r.Errors {
			fmt.Fprintf(w, "%s: error: %s\n", lbl, e)
		}
		if r.FinalStatusError != "" {
			fmt.Fprintf(w, "%s: status of the finished rollout failed: %s\n", lbl, r.FinalStatusError)
		}
		for _, v := range r.Violations {
			fmt.Fprintf(w, "%s: not exactly once: %s\n", lbl, v)
		}
		if r.MaxPayloadAt != "" {
			fmt.Fprintf(w, "%s: the largest payload (%d B) is in %s\n", lbl, r.MaxPayloadBytes, r.MaxPayloadAt)
		}
		if r.IdleWindow > 0 && r.IdleMaxWorkflow != "" {
			fmt.Fprintf(w, "%s: idle history: the most events per idle hour were added by %s\n", lbl, r.IdleMaxWorkflow)
		}
		if r.WorkerCPUProfile != "" {
			fmt.Fprintf(w, "%s: worker CPU profile: %s\n", lbl, r.WorkerCPUProfile)
		}
		if !r.PeakRSSReset {
			fmt.Fprintf(w, "%s: * peak RSS could not be reset before this run: it includes earlier runs\n", lbl)
		}
	}
}

func logger(path string) (*zap.Logger, func(), error) {
	if path == "" {
		cfg := zap.NewProductionConfig()
		cfg.Level = zap.NewAtomicLevelAt(zapcore.ErrorLevel)
		l, err := cfg.Build()
		return l, func() {}, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, nil, err
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, err
	}
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	l := zap.New(zapcore.NewCore(enc, zapcore.AddSync(f), zapcore.WarnLevel))
	return l, func() { _ = l.Sync(); _ = f.Close() }, nil
}
