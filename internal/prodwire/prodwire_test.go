package prodwire

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	enumspb "go.temporal.io/api/enums/v1"
	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/internal/composefile"
	"github.com/fleet-rollout/fleet/internal/devserver"
	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/sim"
	"github.com/fleet-rollout/fleet/workflows"
)

const (
	rolloutName = "prodwire"
	target      = "3.9.0"
	// The test's rollout: the non-prod Kafka clusters of compose's fleet
	// (323 of the 2,000 that FLEET_SIM_CLUSTERS and FLEET_SIM_SEED give).
	rolloutSpec = `name: prodwire
description: the production wiring test (internal/prodwire)
target:
  version: 3.9.0
selector: product=kafka, env=non-prod
strategy:
  phases:
    - name: non-prod
      batchSize: 25
      concurrency: 200
schedule:
  windows: ignore
monitoring:
  interval: 1s
applyTimeout: 5m
`
	minClusters = 200
)

func repoRoot(t *testing.T) string {
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// stack is the compose file's services, with this test's local addresses.
type stack struct {
	t     *testing.T
	root  string
	file  *composefile.File
	addrs map[string]string // "service:port" (and per service "0.0.0.0:port") -> 127.0.0.1:N
	bin   string
	dir   string
}

// lookup interpolates compose's ${VAR...} forms as on a machine with no .env
// and nothing exported: every default applies, and a variable compose
// requires (${VAR:?...}) gets a value made up for this test.
func (s *stack) lookup(name string) (string, bool) { return "", false }

// env returns the service's environment as compose sets it, with the
// service host names, its own listen addresses and its bind mounts replaced
// by this test's.
func (s *stack) env(service string) map[string]string {
	t := s.t
	svc, ok := s.file.Services[service]
	require.True(t, ok, "compose has no service %s", service)
	made := map[string]string{}
	lookup := func(name string) (string, bool) {
		if v, ok := made[name]; ok {
			return v, true
		}
		return s.lookup(name)
	}
	var env map[string]string
	for {
		var err error
		env, err = svc.Env(lookup)
		var req *composefile.RequiredError
		if errors.As(err, &req) {
			b := make([]byte, 32)
			_, _ = rand.Read(b)
			made[req.Var] = hex.EncodeToString(b)
			t.Logf("%s: compose requires %s (%s): the test makes one up", service, req.Var, req.Message)
			continue
		}
		require.NoError(t, err)
		break
	}
	hostPort := regexp.MustCompile(`\b([a-z0-9][a-z0-9.-]*):(\d+)\b`)
	mounts := svc.BindMounts(s.root)
	for k, v := range env {
		v = hostPort.ReplaceAllStringFunc(v, func(m string) string {
			host, port, _ := strings.Cut(m, ":")
			if host == "0.0.0.0" {
				if a, ok := s.addrs[service+":"+port]; ok {
					return a
				}
				t.Fatalf("%s: %s=%s: listens on port %s, which compose does not publish", service, k, v, port)
			}
			if a, ok := s.addrs[m]; ok {
				return a
			}
			if _, isService := s.file.Services[host]; isService {
				t.Fatalf("%s: %s=%s names %s, which this test does not run", service, k, v, m)
			}
			return m
		})
		for _, mt := range mounts {
			v = strings.ReplaceAll(v, mt.Target, mt.Source)
		}
		env[k] = v
	}
	return env
}

func environ(env map[string]string, extra ...string) []string {
	out := make([]string, 0, len(env)+len(extra))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return append(out, extra...)
}

// proc is a binary run in the background, its output in a file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func (s *stack) start(name, binary string, env []string, args ...string) *proc {
	t := s.t
	logPath := filepath.Join(s.dir, name+".log")
	f, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(filepath.Join(s.bin, binary), args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	require.NoError(t, cmd.Start())
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("--- %s log (tail) ---\n%s", name, b)
		}
	})
	return p
}

// run runs the CLI and returns its stdout.
func (s *stack) run(ctx context.Context, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, "fleet"), args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("fleet %s: %w\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), nil
}

func buildBinaries(t *testing.T, root, bin string) {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, b := range [][2]string{{"worker", "./worker"}, {"fleet", "./starter"}, {"fleet-sim", "./internal/sim/cmd/fleetsim"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(gobin, "build", "-o", filepath.Join(bin, b[0]), b[1])
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("go build %s: %w\n%s", b[1], err, out)
			}
		}()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
}

func waitHTTP(t *testing.T, p *proc, url string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	hc := &http.Client{Timeout: time.Second}
	for {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.done:
			b, _ := os.ReadFile(p.log)
			t.Fatalf("%s exited (%v) before %s answered:\n%s", p.name, p.err, url, b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s did not answer within %s (last error %v)", p.name, url, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func clusterStates(t *testing.T, url string) map[string]sim.ClusterState {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var list []sim.ClusterState
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&list))
	out := make(map[string]sim.ClusterState, len(list))
	for _, c := range list {
		out[c.ID] = c
	}
	return out
}

func saType(t *testing.T, name string) enumspb.IndexedValueType {
	v, ok := enumspb.IndexedValueType_shorthandValue[name]
	require.True(t, ok, "search attribute type %q", name)
	return enumspb.IndexedValueType(v)
}

// TestComposeWiring runs the production binaries wired exactly as
// docker-compose.yml wires them and completes a rollout of the non-prod
// Kafka clusters, each applied exactly once.
func TestComposeWiring(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the production binaries (about a minute)")
	}
	began := time.Now()
	root, err := filepath.Abs(repoRoot(t))
	require.NoError(t, err)
	file, err := composefile.Load(filepath.Join(root, "docker-compose.yml"))
	require.NoError(t, err)
	s := &stack{t: t, root: root, file: file, addrs: map[string]string{}, bin: t.TempDir(), dir: t.TempDir()}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	buildDone := make(chan struct{})
	go func() { defer close(buildDone); buildBinaries(t, root, s.bin) }()

	// Temporal: the in-process server with what temporal-init registers.
	attrs, ns := composefile.SearchAttributes(file.Services["temporal-init"].Script())
	require.NotEmpty(t, attrs)
	require.NotEmpty(t, ns)
	sa := map[string]enumspb.IndexedValueType{}
	for name, typ := range attrs {
		sa[name] = saType(t, typ)
	}
	var ts *devserver.Server
	for attempt := 0; ; attempt++ {
		// A free port can be taken between FreePort and the listen: retry.
		tport, err := devserver.FreePort()
		require.NoError(t, err)
		ts, err = devserver.Start(ctx, devserver.Options{DataDir: t.TempDir(), Port: tport, Namespace: ns, SearchAttributes: sa, Log: zap.NewNop()})
		if err != nil && attempt < 3 && strings.Contains(err.Error(), "not free") {
			continue
		}
		require.NoError(t, err)
		break
	}
	t.Cleanup(func() { _ = ts.Stop() })
	s.addrs["temporal:7233"] = ts.Address()

	// Kafka: the topics kafka-init creates, and no automatic creation (as
	// KAFKA_AUTO_CREATE_TOPICS_ENABLE=false): a topic compose forgets is
	// missing here too.
	require.Equal(t, "false", file.Services["kafka"].Environment["KAFKA_AUTO_CREATE_TOPICS_ENABLE"])
	topics, parts, err := composefile.Topics(file.Services["kafka-init"].Script())
	require.NoError(t, err)
	kf, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(parts), topics...))
	require.NoError(t, err)
	t.Cleanup(kf.Close)
	s.addrs["kafka:9092"] = kf.ListenAddrs()[0]
	requireNoAutoCreate(t, ctx, kf.ListenAddrs())

	// The services' published ports get local addresses.
	for _, name := range []string{"fleet-sim", "worker"} {
		ports, err := file.Services[name].ContainerPorts()
		require.NoError(t, err)
		for _, p := range ports {
			lp, err := devserver.FreePort()
			require.NoError(t, err)
			s.addrs[name+":"+strconv.Itoa(p)] = fmt.Sprintf("127.0.0.1:%d", lp)
		}
	}
	<-buildDone
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("stack ready and binaries built in %s", time.Since(began).Round(time.Millisecond))

	// The worker fails closed: compose's environment without the Datadog
	// keys and the policy is refused, with what to set.
	t.Run("fails closed", func(t *testing.T) {
		env := s.env("worker")
		delete(env, "DD_API_KEY")
		delete(env, "DD_APP_KEY")
		delete(env, "FLEET_POLICY")
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		defer ccancel()
		cmd := exec.CommandContext(cctx, filepath.Join(s.bin, "worker"))
		cmd.Env = environ(env)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "%s", out)
		for _, want := range []string{"refusing to start", "DD_API_KEY is not set", "DD_APP_KEY is not set", "FLEET_MONITORING=off", "FLEET_POLICY is not set", "access: open"} {
			require.Contains(t, string(out), want)
		}
	})

	// Monitoring off, said explicitly: the same worker starts without the
	// Datadog keys, and says so.
	t.Run("starts with monitoring off", func(t *testing.T) {
		env := s.env("worker")
		delete(env, "DD_API_KEY")
		delete(env, "DD_APP_KEY")
		env["FLEET_MONITORING"] = "off"
		env["FLEET_HTTP_ADDR"] = "127.0.0.1:0"
		cmd := exec.Command(filepath.Join(s.bin, "worker"))
		cmd.Env = environ(env)
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		require.NoError(t, cmd.Start())
		defer func() {
			_ = cmd.Process.Signal(os.Interrupt) // leaves the consumer group cleanly
			_ = cmd.Wait()
		}()
		require.Eventually(t, func() bool { return strings.Contains(out.String(), "worker ready") },
			60*time.Second, 100*time.Millisecond, "the worker did not start: %s", out.String())
		require.Contains(t, out.String(), "monitoring is off")
	})

	simEnv := s.env("fleet-sim")
	simProc := s.start("fleet-sim", "fleet-sim", environ(simEnv))
	inventory := "http://" + s.addrs["fleet-sim:8089"]
	waitHTTP(t, simProc, inventory+"/healthz", 30*time.Second)

	workerEnv := s.env("worker")
	t.Logf("worker environment (from compose): %s", strings.Join(keys(workerEnv), " "))
	workerProc := s.start("worker", "worker", environ(workerEnv))
	waitHTTP(t, workerProc, "http://"+s.addrs["worker:8088"]+"/healthz", 60*time.Second)
	b, _ := os.ReadFile(workerProc.log)
	require.NotContains(t, string(b), "dev:", "the worker runs in production mode")

	cliEnv := environ(s.env("fleet"))
	specPath := filepath.Join(s.dir, "prodwire.yaml")
	require.NoError(t, os.WriteFile(specPath, []byte(rolloutSpec), 0o644))

	out, err := s.run(ctx, cliEnv, "plan", "-f", specPath, "--json")
	require.NoError(t, err)
	var p plan.Plan
	require.NoError(t, json.Unmarshal([]byte(out), &p))
	planned := map[string]bool{}
	for _, ph := range p.Phases {
		for _, b := range ph.Batches {
			for _, c := range b.Clusters {
				planned[c.ClusterID] = true
			}
		}
	}
	require.Equal(t, p.Total, len(planned))
	require.GreaterOrEqual(t, len(planned), minClusters, "the rollout is too small to say much")
	before := clusterStates(t, inventory+"/v1/state")

	start := time.Now()
	_, err = s.run(ctx, cliEnv, "start", "-f", specPath, "--wait")
	require.NoError(t, err)
	took := time.Since(start)

	out, err = s.run(ctx, cliEnv, "status", rolloutName, "--json")
	require.NoError(t, err)
	var st workflows.RolloutStatus
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.Equal(t, workflows.StateCompleted, st.State, "%s", out)
	require.Equal(t, len(planned), st.Total)
	require.Equal(t, st.Total, st.Counts.Done, "counts %+v", st.Counts)

	// Exactly once: each planned cluster started one apply and runs the
	// target at its next generation; the others were not touched.
	after := clusterStates(t, inventory+"/v1/state")
	var problems []string
	for id, b := range before {
		a := after[id]
		if planned[id] {
			if a.ApplyStarts != 1 || a.Version != target || a.Generation != b.Generation+1 {
				problems = append(problems, fmt.Sprintf("%s: %d applies, version %s, generation %d (was %d)", id, a.ApplyStarts, a.Version, a.Generation, b.Generation))
			}
		} else if a.ApplyStarts != b.ApplyStarts || a.Version != b.Version {
			problems = append(problems, fmt.Sprintf("%s: not planned but touched: %d applies, version %s", id, a.ApplyStarts, a.Version))
		}
	}
	require.Empty(t, problems)

	// The topics the worker writes received messages.
	counts := topicCounts(t, ctx, kf.ListenAddrs(), topics)
	for _, topic := range []string{"fleet.commands", "fleet.status", workflows.EventsTopic, workflows.AuditTopic} {
		require.Positive(t, counts[topic], "nothing on %s", topic)
	}
	// The worker said nothing about topics it could not write.
	b, _ = os.ReadFile(workerProc.log)
	require.NotContains(t, string(b), "UNKNOWN_TOPIC_OR_PARTITION")
	// Health checks read fleet-sim's monitors through the Datadog client.
	require.NotContains(t, string(b), "health checks skipped")
	require.Contains(t, string(b), `"datadog":true`)

	t.Logf("rollout %q: %d clusters applied exactly once (of %d in the fleet) in %s; messages per topic %v; test %s",
		rolloutName, len(planned), len(before), took.Round(time.Millisecond), counts, time.Since(began).Round(time.Second))
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// requireNoAutoCreate checks that the broker refuses to create a topic on a
// metadata request that asks for it.
func requireNoAutoCreate(t *testing.T, ctx context.Context, brokers []string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("fleet.prodwire-not-created")
	req.Topics = append(req.Topics, mt)
	req.AllowAutoTopicCreation = true
	resp, err := req.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.Len(t, resp.Topics, 1)
	require.ErrorIs(t, kerr.ErrorForCode(resp.Topics[0].ErrorCode), kerr.UnknownTopicOrPartition, "the broker auto-creates topics")
}

// topicCounts counts each topic's records (the sum of its partitions' end
// offsets: nothing is deleted here).
func topicCounts(t *testing.T, ctx context.Context, brokers []string, topics []string) map[string]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	meta := kmsg.NewPtrMetadataRequest()
	for _, topic := range topics {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(topic)
		meta.Topics = append(meta.Topics, mt)
	}
	mresp, err := meta.RequestWith(ctx, cl)
	require.NoError(t, err)
	req := kmsg.NewPtrListOffsetsRequest()
	for _, mt := range mresp.Topics {
		require.NoError(t, kerr.ErrorForCode(mt.ErrorCode), "topic %v", mt.Topic)
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = *mt.Topic
		for _, p := range mt.Partitions {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition = p.Partition
			rp.Timestamp = -1 // latest
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	require.NoError(t, err)
	out := map[string]int64{}
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			require.NoError(t, kerr.ErrorForCode(p.ErrorCode))
			out[rt.Topic] += p.Offset
		}
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for a process's writes and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
