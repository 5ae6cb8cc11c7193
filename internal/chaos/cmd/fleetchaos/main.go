// Command fleetchaos breaks the fleet system with real processes while a
// rollout runs, and checks afterwards that every selected cluster was applied
// exactly once. It builds bin/worker, runs `bin/worker stack` (the dev stack,
// with its admin endpoints on for fault injection) and `bin/worker` (the
// worker) as separate processes, and for each case starts a fresh stack and
// a rollout of the fleet's Kafka clusters:
//
//	worker-kill      kill -9 the worker three times at random points, restart it
//	stack-restart    stop the stack process mid-rollout, start it on the same data dir
//	kafka-down       Kafka drops every request for 30 s (admin endpoint; -kafka-down)
//	monitors-down    the monitors endpoint answers 500 then 429 past the grace
//	                 period: expect a "health unknown" pause; then resume
//
// The worker posts its notifications to a Slack-compatible server (slacktest)
// in this process; once the rollout's workflow has closed, its Slack thread
// must hold every message (the start, the phase's and the rollout's
// completion, each later message in the thread). A message posted twice is
// noted, not failed: a Notify cut off by a kill -9 after Slack took the
// message runs again.
//
// It prints a table: fault, outcome, exactly-once check, Slack thread,
// duration.
//
//	go run ./internal/chaos/cmd/fleetchaos [-cases worker-kill,stack-restart,...] [-dir bench-results/chaos]
package main

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"

	"github.com/slack-go/slack/slacktest"
	sdkclient "go.temporal.io/sdk/client"

	"github.com/fleet-rollout/fleet/internal/app"
	"github.com/fleet-rollout/fleet/internal/chaos"
	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/starter/client"
	"github.com/fleet-rollout/fleet/workflows"
)

var allCases = []string{"worker-kill", "stack-restart", "kafka-down", "monitors-down"}

type options struct {
	dir        string
	workerBin  string
	build      bool
	clusters   int
	brokerTime time.Duration
	timeout    time.Duration
	seed       int64
	logLevel   string
	kafkaDown  time.Duration
}

func main() {
	var o options
	cases := flag.String("cases", strings.Join(allCases, ","), "comma-separated cases to run")
	flag.StringVar(&o.dir, "dir", "bench-results/chaos", "working directory (data dirs and process logs; emptied first)")
	flag.StringVar(&o.workerBin, "worker", "bin/worker", "the worker binary")
	flag.BoolVar(&o.build, "build", true, "build the worker binary first (go build -o BIN ./worker)")
	flag.IntVar(&o.clusters, "clusters", 260, "simulated clusters (about 55% are Kafka, which the rollout selects)")
	flag.DurationVar(&o.brokerTime, "broker-time", 150*time.Millisecond, "simulated broker restart time")
	flag.DurationVar(&o.timeout, "timeout", 4*time.Minute, "bound on one case")
	flag.Int64Var(&o.seed, "seed", time.Now().UnixNano(), "seed of the random kill points")
	flag.StringVar(&o.logLevel, "log-level", "warn", "FLEET_LOG_LEVEL of the stack and worker processes (logs in -dir)")
	flag.DurationVar(&o.kafkaDown, "kafka-down", 30*time.Second, "how long Kafka stays down in the kafka-down case")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, strings.Split(*cases, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "fleetchaos:", err)
		os.Exit(1)
	}
}

type result struct {
	fault    string
	outcome  string
	check    string
	slack    string
	ok       bool
	duration time.Duration
	notes    []string
}

func run(ctx context.Context, o options, cases []string) error {
	for _, c := range cases {
		known := false
		for _, k := range allCases {
			known = known || c == k
		}
		if !known {
			return fmt.Errorf("unknown case %q (cases: %s)", c, strings.Join(allCases, ", "))
		}
	}
	if err := os.RemoveAll(o.dir); err != nil {
		return err
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	if o.build {
		say("building %s", o.workerBin)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", o.workerBin, "./worker")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build the worker: %w", err)
		}
	}
	bin, err := filepath.Abs(o.workerBin)
	if err != nil {
		return err
	}
	o.workerBin = bin
	say("seed %d", o.seed)
	rng := rand.New(rand.NewPCG(uint64(o.seed), 7))
	var results []result
	for _, name := range cases {
		say("case %s", name)
		r := runCase(ctx, o, name, rng)
		say("case %s: %s; %s; slack: %s (%s)", name, r.outcome, r.check, r.slack, r.duration.Round(100*time.Millisecond))
		results = append(results, r)
		if ctx.Err() != nil {
			break
		}
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "fault\toutcome\texactly once\tslack thread\tduration")
	failed := 0
	for _, r := range results {
		if !r.ok {
			failed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.fault, r.outcome, r.check, r.slack, r.duration.Round(100*time.Millisecond))
	}
	tw.Flush()
	for _, r := range results {
		for _, n := range r.notes {
			fmt.Printf("%s: %s\n", r.fault, n)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d cases failed (logs in %s)", failed, len(results), o.dir)
	}
	return nil
}

func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// --- processes ---

type ports struct{ temporal, kafka, inventory, datadog, stackWorker, admin, worker int }

func freePorts() (ports, error) {
	var ps []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			_ = l.Close()
		}
	}()
	for i := 0; i < 7; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return ports{}, err
		}
		lns = append(lns, l)
		ps = append(ps, l.Addr().(*net.TCPAddr).Port)
	}
	return ports{ps[0], ps[1], ps[2], ps[3], ps[4], ps[5], ps[6]}, nil
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan error
	log  *os.File
}

func startProc(o options, name string, logPath string, env []string, args ...string) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(o.workerBin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan error, 1), log: f}
	go func() { p.done <- cmd.Wait(); f.Close() }()
	return p, nil
}

// stop sends sig and waits (bounded); past the bound it kills.
func (p *proc) stop(sig syscall.Signal, wait time.Duration) error {
	if p == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return nil
	case <-time.After(wait):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not exit within %s after %s: killed", p.name, wait, sig)
	}
}

type env struct {
	o        options
	dir      string
	ports    ports
	stack    *proc
	worker   *proc
	workerN  int
	stackN   int
	temporal *client.Client
	tc       sdkclient.Client
	closeTC  func()
	slackURL string
	// signalKey is the worker's FLEET_SIGNAL_KEY, kept across its restarts.
	signalKey string
	before    map[string]fleet.Cluster
	selected  int
	http      *http.Client
}

func (e *env) startStack() error {
	e.stackN++
	p := e.ports
	var err error
	e.stack, err = startProc(e.o, "stack", filepath.Join(e.dir, "stack.log"),
		[]string{app.AdminPortEnv + "=" + strconv.Itoa(p.admin), "FLEET_LOG_LEVEL=" + e.o.logLevel},
		"stack", "-data", filepath.Join(e.dir, "data"), "-clusters", strconv.Itoa(e.o.clusters), "-seed", "11",
		"-broker-time", e.o.brokerTime.String(), "-ui", "",
		"-temporal-port", strconv.Itoa(p.temporal), "-kafka-port", strconv.Itoa(p.kafka),
		"-inventory-port", strconv.Itoa(p.inventory), "-datadog-port", strconv.Itoa(p.datadog),
		"-worker-port", strconv.Itoa(p.stackWorker))
	if err != nil {
		return err
	}
	// Ready when the admin endpoint answers (it starts after Temporal and Kafka).
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case err := <-e.stack.done:
			return fmt.Errorf("the stack process exited: %v (see %s)", err, filepath.Join(e.dir, "stack.log"))
		default:
		}
		if resp, err := e.http.Get(e.admin("/admin/healthz")); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("the stack did not become ready within 90s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (e *env) startWorker() error {
	e.workerN++
	p := e.ports
	// A production worker refuses to start without a policy whose access
	// control is explicit; the chaos runs need none.
	policyPath := filepath.Join(e.dir, "policy.yaml")
	if err := os.WriteFile(policyPath, []byte("access: open\n"), 0o644); err != nil {
		return err
	}
	// One signal key across the worker's restarts: the seals of the
	// signals sent before a kill -9 still open after it.
	if e.signalKey == "" {
		b := make([]byte, 32)
		if _, err := crand.Read(b); err != nil {
			return err
		}
		e.signalKey = hex.EncodeToString(b)
	}
	var err error
	e.worker, err = startProc(e.o, "worker", filepath.Join(e.dir, "worker.log"), []string{
		"FLEET_POLICY=" + policyPath,
		"FLEET_SIGNAL_KEY=" + e.signalKey,
		fmt.Sprintf("TEMPORAL_ADDRESS=127.0.0.1:%d", p.temporal),
		fmt.Sprintf("KAFKA_BROKERS=127.0.0.1:%d", p.kafka),
		fmt.Sprintf("FLEET_INVENTORY=http://127.0.0.1:%d/v1/clusters", p.inventory),
		"DD_API_KEY=" + app.DevDatadogAPIKey, "DD_APP_KEY=" + app.DevDatadogAppKey,
		fmt.Sprintf("DD_URL=http://127.0.0.1:%d", p.datadog),
		fmt.Sprintf("FLEET_HTTP_ADDR=127.0.0.1:%d", p.worker),
		"SLACK_TOKEN=xoxb-fleetchaos", "SLACK_CHANNEL=#fleetchaos", "SLACK_API_URL=" + e.slackURL,
		"FLEET_LOG_LEVEL=" + e.o.logLevel,
	})
	return err
}

func (e *env) admin(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", e.ports.admin, path)
}

func (e *env) post(method, path string) error {
	req, err := http.NewRequest(method, e.admin(path), nil)
	if err != nil {
		return err
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return nil
}

func (e *env) clusters() (map[string]chaos.Cluster, error) {
	resp, err := e.http.Get(e.admin("/admin/clusters"))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /admin/clusters: %s", resp.Status)
	}
	var cs []app.AdminCluster
	if err := json.NewDecoder(resp.Body).Decode(&cs); err != nil {
		return nil, err
	}
	out := make(map[string]chaos.Cluster, len(cs))
	for _, c := range cs {
		out[c.ID] = chaos.Cluster{ID: c.ID, Product: c.Product, Version: c.Version, Generation: c.Generation, ApplyStarts: c.ApplyStarts}
	}
	return out, nil
}

// done counts the selected clusters on the target (-1 when unknown).
func (e *env) done() int {
	cs, err := e.clusters()
	if err != nil {
		return -1
	}
	n := 0
	for _, c := range cs {
		if c.Product == fleet.ProductKafka && c.Version == chaos.Target {
			n++
		}
	}
	return n
}

// starts sums the applies the data plane began (-1 when unknown).
func (e *env) starts() int {
	cs, err := e.clusters()
	if err != nil {
		return -1
	}
	n := 0
	for _, c := range cs {
		n += c.ApplyStarts
	}
	return n
}

// stall waits until the data plane begins another apply than the ones it
// had begun before (from = starts() then) and says how long that took: how
// long the fault kept new clusters from starting, measured from t0.
func (e *env) stall(ctx context.Context, from int, t0 time.Time) string {
	for {
		if n := e.starts(); n > from {
			return time.Since(t0).Round(100 * time.Millisecond).String()
		}
		if e.done() >= e.selected {
			return "n/a (nothing left to start)"
		}
		select {
		case <-ctx.Done():
			return "no new apply before the case's time ran out"
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (e *env) waitDone(ctx context.Context, n int) error {
	for {
		if d := e.done(); d >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d clusters on %s: %w (%d now)", n, chaos.Target, ctx.Err(), e.done())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (e *env) status(ctx context.Context, id string, what string, cond func(*workflows.RolloutStatus) bool) (*workflows.RolloutStatus, error) {
	var last *workflows.RolloutStatus
	var lastErr error
	for {
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		st, err := e.temporal.Status(qctx, id)
		cancel()
		if err == nil {
			last = st
			if cond(st) {
				return st, nil
			}
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("%s not reached: %w; last: %s; last error: %v", what, ctx.Err(), chaos.Outcome(last), lastErr)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (e *env) close() {
	if e.closeTC != nil {
		e.closeTC()
	}
	if e.worker != nil {
		_ = e.worker.stop(syscall.SIGTERM, 30*time.Second)
	}
	if e.stack != nil {
		_ = e.stack.stop(syscall.SIGTERM, 30*time.Second)
	}
}

func runCase(ctx context.Context, o options, name string, rng *rand.Rand) (res result) {
	began := time.Now()
	res = result{fault: name, outcome: "not started", check: "-", slack: "-"}
	defer func() { res.duration = time.Since(began) }()
	fail := func(err error) result {
		res.ok = false
		res.notes = append(res.notes, err.Error())
		return res
	}
	ps, err := freePorts()
	if err != nil {
		return fail(err)
	}
	rec := &chaos.SlackRecorder{}
	slackSrv := slacktest.NewTestServer(func(c slacktest.Customize) { c.Handle("/chat.postMessage", rec.PostMessage) })
	slackSrv.Start()
	defer slackSrv.Stop()
	e := &env{o: o, dir: filepath.Join(o.dir, name), ports: ps, http: &http.Client{Timeout: 10 * time.Second}, slackURL: slackSrv.GetAPIURL()}
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		return fail(err)
	}
	defer e.close()
	if err := e.startStack(); err != nil {
		return fail(err)
	}
	if err := e.startWorker(); err != nil {
		return fail(err)
	}
	tc, err := app.Dial(app.Config{TemporalAddress: fmt.Sprintf("127.0.0.1:%d", ps.temporal), Namespace: "default"}, zap.NewNop())
	if err != nil {
		return fail(err)
	}
	e.closeTC = tc.Close
	e.tc = tc
	e.temporal = client.New(tc)
	cs, err := e.clusters()
	if err != nil {
		return fail(err)
	}
	e.before = map[string]fleet.Cluster{}
	for id, c := range cs {
		e.before[id] = fleet.Cluster{ID: id, Product: c.Product, Version: c.Version, Generation: c.Generation}
		if c.Product == fleet.ProductKafka {
			e.selected++
		}
	}

	cctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	so := chaos.SpecOptions{Name: "chaos-" + name}
	if name == "monitors-down" {
		so.Interval, so.UnknownGrace = 500*time.Millisecond, 3*time.Second
	}
	r, err := chaos.Spec(so)
	if err != nil {
		return fail(err)
	}
	id, err := e.temporal.Start(cctx, r, "fleetchaos")
	if err != nil {
		return fail(fmt.Errorf("start rollout: %w", err))
	}
	res.outcome = "running"

	note := func(format string, args ...any) { res.notes = append(res.notes, fmt.Sprintf(format, args...)) }
	switch name {
	case "worker-kill":
		points := []float64{0.05 + 0.25*rng.Float64(), 0.30 + 0.25*rng.Float64(), 0.55 + 0.30*rng.Float64()}
		for i, p := range points {
			if err := e.waitDone(cctx, int(p*float64(e.selected))); err != nil {
				return fail(err)
			}
			time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
			at := e.done()
			_ = e.worker.stop(syscall.SIGKILL, 10*time.Second)
			killed, begun := time.Now(), e.starts()
			down := time.Duration(200+rng.IntN(1800)) * time.Millisecond
			time.Sleep(down)
			if err := e.startWorker(); err != nil {
				return fail(err)
			}
			note("kill -9 %d at %d/%d clusters done, worker down %s; next new apply %s after the kill",
				i+1, at, e.selected, down, e.stall(cctx, begun, killed))
		}
	case "stack-restart":
		if err := e.waitDone(cctx, e.selected/3); err != nil {
			return fail(err)
		}
		at, begun := e.done(), e.starts()
		t0 := time.Now()
		if err := e.stack.stop(syscall.SIGTERM, 60*time.Second); err != nil {
			note("%v", err)
		}
		time.Sleep(2 * time.Second)
		if err := e.startStack(); err != nil {
			return fail(err)
		}
		note("stack stopped at %d/%d clusters done, back after %s; next new apply %s after the stop",
			at, e.selected, time.Since(t0).Round(100*time.Millisecond), e.stall(cctx, begun, t0))
	case "kafka-down":
		if err := e.waitDone(cctx, e.selected/4); err != nil {
			return fail(err)
		}
		at := e.done()
		if err := e.post(http.MethodPost, "/admin/kafka?down=true"); err != nil {
			return fail(err)
		}
		time.Sleep(o.kafkaDown)
		during := e.done()
		if err := e.post(http.MethodPost, "/admin/kafka?down=false"); err != nil {
			return fail(err)
		}
		up, begun := time.Now(), e.starts()
		note("kafka down for %s from %d to %d/%d clusters done; next new apply %s after Kafka was back",
			o.kafkaDown, at, during, e.selected, e.stall(cctx, begun, up))
	case "monitors-down":
		if err := e.waitDone(cctx, e.selected/4); err != nil {
			return fail(err)
		}
		if err := e.post(http.MethodPost, "/admin/datadog/failure?code=500"); err != nil {
			return fail(err)
		}
		time.Sleep(4 * time.Second)
		if err := e.post(http.MethodPost, "/admin/datadog/failure?code=429"); err != nil {
			return fail(err)
		}
		st, err := e.status(cctx, id, "a health-unknown pause", func(st *workflows.RolloutStatus) bool { return st.Paused != nil })
		_ = e.post(http.MethodDelete, "/admin/datadog/failure")
		if err != nil {
			return fail(err)
		}
		if st.Paused.Incident == nil || st.Paused.Incident.Kind != workflows.IncidentHealthUnknown {
			return fail(fmt.Errorf("paused, but not for unknown health: %s", chaos.Outcome(st)))
		}
		note("paused as expected: %s", st.Paused.Reason)
		if _, err := e.status(cctx, id, "every in-flight cluster held", func(st *workflows.RolloutStatus) bool { return st.Counts.InFlight == 0 }); err != nil {
			return fail(err)
		}
		if _, err := e.temporal.Resume(cctx, id, workflows.ActionRequest{Actor: "fleetchaos", Reason: "monitors are back"}); err != nil {
			return fail(fmt.Errorf("resume: %w", err))
		}
		note("resumed by fleetchaos")
	}

	final, err := e.status(cctx, id, "the end", func(st *workflows.RolloutStatus) bool { return st.State.Terminal() })
	res.outcome = chaos.Outcome(final)
	if err != nil {
		return fail(err)
	}
	after, err := e.clusters()
	if err != nil {
		return fail(err)
	}
	check := chaos.Verify(e.before, after, final)
	res.check = check.String()
	res.ok = check.OK() && final.State == workflows.StateCompleted
	note("worker started %d times, stack %d times", e.workerN, e.stackN)

	// The workflow closes once its last message is out (its status says
	// completed before that).
	if err := e.tc.GetWorkflow(cctx, id, "").Get(cctx, nil); err != nil {
		res.slack = "workflow not closed"
		return fail(fmt.Errorf("the rollout workflow did not close: %w", err))
	}
	msgs := rec.Messages()
	problems, repeated := chaos.CheckThread(msgs)
	if len(problems) > 0 {
		res.slack = fmt.Sprintf("FAILED: %d messages; %s", len(msgs), strings.Join(problems, "; "))
		res.ok = false
	} else {
		res.slack = fmt.Sprintf("ok: %d messages, one thread", len(msgs))
	}
	for _, r := range repeated {
		note("Slack message posted more than once: %q", r)
	}
	return res
}
