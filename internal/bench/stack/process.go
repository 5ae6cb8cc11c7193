package stack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/internal/app"
	"github.com/fleet-rollout/fleet/internal/planstore"
)

// WorkerEnv is the environment a production worker (`worker`, no dev mode)
// needs to run against cfg: the addresses, the keys and the policy, under
// the names app.FromEnv reads. policyPath replaces an empty cfg.PolicyPath
// (a production worker refuses to start without a policy). The dev stack's
// Temporal and Kafka are plaintext: TLS and SASL are not carried over.
func WorkerEnv(cfg app.Config, policyPath string) []string {
	env := []string{
		"TEMPORAL_ADDRESS=" + cfg.TemporalAddress,
		"TEMPORAL_NAMESPACE=" + cfg.Namespace,
		"KAFKA_BROKERS=" + strings.Join(cfg.KafkaBrokers, ","),
		"FLEET_INVENTORY=" + cfg.Inventory,
		"FLEET_HTTP_ADDR=" + cfg.HTTPAddr,
		"FLEET_POLICY=" + firstNonEmpty(cfg.PolicyPath, policyPath),
		"SLACK_CHANNEL=" + cfg.SlackChannel,
	}
	add := func(name, v string) {
		if v != "" {
			env = append(env, name+"="+v)
		}
	}
	// The same plan store as the stack's (a production worker refuses to
	// start without one).
	add(planstore.EnvStore, cfg.PlanStore)
	add("FLEET_SIGNAL_KEY", cfg.SignalKey)
	add("FLEET_SIGNAL_KEYS_OLD", strings.Join(cfg.SignalKeysOld, ","))
	add("DD_API_KEY", cfg.Datadog.APIKey)
	add("DD_APP_KEY", cfg.Datadog.AppKey)
	add("DD_SITE", cfg.Datadog.Site)
	add("DD_URL", cfg.Datadog.URL)
	if cfg.Datadog.RequestTimeout > 0 {
		add("DD_REQUEST_TIMEOUT", cfg.Datadog.RequestTimeout.String())
	}
	add(app.MonitoringEnv, cfg.Monitoring)
	add("SLACK_TOKEN", cfg.SlackToken)
	add("SLACK_API_URL", cfg.SlackAPIURL)
	add("SLACK_SIGNING_SECRET", cfg.SlackSigningSecret)
	add("SLACK_TEAM_ID", cfg.SlackTeamID)
	add("FLEET_WEBHOOK_SECRET", cfg.WebhookSecret)
	add("FLEET_WORKER_KEY", cfg.WorkerKeyFile)
	add("FLEET_WORKER_NAME", cfg.WorkerName)
	add("FLEET_DASHBOARD_USER_HEADER", cfg.DashboardUserHeader)
	return env
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// passEnv are the variables of this process a worker process inherits: the
// rest of its environment is WorkerEnv's, so Temporal or Kafka settings of
// the machine (TEMPORAL_*, KAFKA_*, a temporal CLI profile) do not leak in.
var passEnv = []string{"PATH", "TMPDIR", "GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GODEBUG", "GOTRACEBACK"}

// workerProc is the worker run as its own process.
type workerProc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // cmd.Wait's, once done is closed

	stopSampling func()
	mu           sync.Mutex
	hwmKB        int64
	stopped      bool
}

// startProcess starts the worker binary and waits until it serves /healthz.
func (s *Stack) startProcess() (*workerProc, error) {
	policy := filepath.Join(s.dataDir, "worker-policy.yaml")
	if s.Config.PolicyPath == "" {
		// What the in-process worker runs without (dev: access control
		// off), said explicitly as production requires.
		if err := os.WriteFile(policy, []byte("access: open\n"), 0o644); err != nil {
			return nil, fmt.Errorf("worker policy: %w", err)
		}
	}
	env := WorkerEnv(s.Config, policy)
	for _, k := range passEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	// HOME is the data dir: no temporal CLI profile of the user's applies.
	env = append(env, "HOME="+s.dataDir)
	if os.Getenv("FLEET_LOG_LEVEL") == "" {
		env = append(env, "FLEET_LOG_LEVEL=warn")
	}
	env = append(env, s.opts.WorkerEnvExtra...)

	logPath := firstNonEmpty(s.opts.WorkerLog, filepath.Join(s.dataDir, "worker.log"))
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("worker log: %w", err)
	}
	cmd := exec.Command(s.opts.WorkerBinary)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start worker process %s: %w", s.opts.WorkerBinary, err)
	}
	p := &workerProc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	p.stopSampling = p.sample(time.Second)
	s.log.Info("worker process started", zap.Int("pid", cmd.Process.Pid), zap.String("binary", s.opts.WorkerBinary), zap.String("log", logPath))
	if err := p.waitReady("http://"+s.Config.HTTPAddr+"/healthz", 2*time.Minute); err != nil {
		_ = p.stop(10 * time.Second)
		return nil, err
	}
	return p, nil
}

func (p *workerProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// waitReady polls url until it answers 200, the process exits or within passes.
func (p *workerProc) waitReady(url string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	var lastErr error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		lastErr = err
		select {
		case <-p.done:
			return fmt.Errorf("the worker process exited (%v) before it served %s; its log ends:\n%s", p.err, url, tail(p.log, 3000))
		case <-ctx.Done():
			return fmt.Errorf("the worker process did not serve %s within %s (%v); its log ends:\n%s", url, within, lastErr, tail(p.log, 3000))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// sample reads the process's VmHWM every d until the returned function is
// called; PeakRSSKB reads it once more while the process runs.
func (p *workerProc) sample(d time.Duration) func() {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(d)
		defer tk.Stop()
		for {
			p.readHWM()
			select {
			case <-stop:
				return
			case <-p.done:
				return
			case <-tk.C:
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(stop); wg.Wait() }) }
}

func (p *workerProc) readHWM() {
	if !p.running() {
		return
	}
	kb, err := VmHWM(p.cmd.Process.Pid)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.hwmKB = max(p.hwmKB, kb)
	p.mu.Unlock()
}

// peakRSSKB is the process's peak resident set size (VmHWM) in kB: read now
// while it runs, else the last value sampled before it stopped.
func (p *workerProc) peakRSSKB() int64 {
	p.readHWM()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hwmKB
}

// stop reads VmHWM a last time, interrupts the process and waits, killing
// it past wait. A stopped process stops again without error.
func (p *workerProc) stop(wait time.Duration) error {
	p.mu.Lock()
	already := p.stopped
	p.stopped = true
	p.mu.Unlock()
	if already {
		return nil
	}
	p.readHWM()
	p.stopSampling()
	if !p.running() {
		return fmt.Errorf("the worker process had exited (%v); its log ends:\n%s", p.err, tail(p.log, 3000))
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(wait):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("the worker process did not exit within %s of SIGINT: killed", wait)
	}
	var exit *exec.ExitError
	if errors.As(p.err, &exit) {
		return fmt.Errorf("the worker process exited with %v; its log ends:\n%s", p.err, tail(p.log, 3000))
	}
	return nil
}

// WorkerProcess reports whether the worker runs as its own process.
func (s *Stack) WorkerProcess() bool { return s.opts.WorkerBinary != "" }

// WorkerPID is the worker process's id (0 without one).
func (s *Stack) WorkerPID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// WorkerPeakRSSKB is the worker process's peak resident set size (VmHWM,
// kB), the current or the last one's (0 without a worker process).
func (s *Stack) WorkerPeakRSSKB() int64 {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		return 0
	}
	return p.peakRSSKB()
}

// VmHWM is a process's peak resident set size in kB, from
// /proc/<pid>/status (Linux); pid 0 is this process.
func VmHWM(pid int) (int64, error) {
	path := "/proc/self/status"
	if pid != 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM in %s", path)
}

// tail is the end of a file, at most n bytes.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
