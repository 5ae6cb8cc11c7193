package composecheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/app"
	"github.com/fleet-rollout/fleet/internal/composefile"
	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/workflows"
)

// codeTopics finds every Kafka topic the code names: each string constant
// whose name ends in Topic (dataplane.CommandsTopic, workflows.EventsTopic,
// ...), in the module's non-test Go files. A new topic constant is thereby
// a topic compose must create.
func codeTopics(t *testing.T) map[string]string {
	t.Helper()
	root := repoRoot(t)
	out := map[string]string{} // topic -> where
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "testdata", "node_modules", "bin", ".fleet-dev":
				return filepath.SkipDir
			}
			if path != root {
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir // another module (tools/ui)
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasSuffix(name.Name, "Topic") || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					v, err := strconv.Unquote(lit.Value)
					require.NoError(t, err)
					rel, _ := filepath.Rel(root, path)
					out[v] = rel + ": " + name.Name
				}
			}
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

func TestComposeCreatesEveryTopicTheCodeWrites(t *testing.T) {
	code := codeTopics(t)
	// The scan sees the constants the code writes with (a sanity check of
	// the scan, not the list compose is checked against).
	for _, known := range []string{dataplane.CommandsTopic, dataplane.StatusTopic, dataplane.StatusDeadTopic, workflows.EventsTopic, workflows.AuditTopic} {
		require.Contains(t, code, known)
	}
	c := load(t)
	created, parts, err := composefile.Topics(c.Services["kafka-init"].Script())
	require.NoError(t, err)
	require.Equal(t, 12, parts)
	for topic, where := range code {
		require.Contains(t, created, topic, "kafka-init does not create %s (%s); the broker does not auto-create topics", topic, where)
	}
	var extra []string
	for _, topic := range created {
		if _, ok := code[topic]; !ok {
			extra = append(extra, topic)
		}
	}
	require.Empty(t, extra, "kafka-init creates topics no code constant names")
	require.Equal(t, "false", c.Services["kafka"].Environment["KAFKA_AUTO_CREATE_TOPICS_ENABLE"])
}

// operatorEnv is the environment of a machine where the operator did only
// what compose requires (${VAR:?...}): FLEET_SIGNAL_KEY in .env. Every
// other default applies.
func operatorEnv(name string) (string, bool) {
	if name == "FLEET_SIGNAL_KEY" {
		return strings.Repeat("ab", 32), true
	}
	return "", false
}

// workerConfig is the worker's Config as compose sets it (every default of
// the ${VAR:-default} forms, nothing from this machine's environment), its
// mounted files read from the repository.
func workerConfig(t *testing.T, c compose) (app.Config, map[string]string) {
	t.Helper()
	w := c.Services["worker"]
	env, err := w.Env(operatorEnv)
	require.NoError(t, err)
	for k, v := range env {
		for _, m := range w.BindMounts(repoRoot(t)) {
			v = strings.ReplaceAll(v, m.Target, m.Source)
		}
		t.Setenv(k, v)
	}
	cfg, err := app.FromEnv()
	require.NoError(t, err)
	return cfg, env
}

func TestComposeWorkerSetsWhatTheWorkerRequires(t *testing.T) {
	c := load(t)
	w := c.Services["worker"]
	for _, r := range app.RequiredEnv() {
		require.Contains(t, w.Environment, r.Var, "the worker refuses to start without %s (%s)", r.Var, r.Why)
	}
	for _, v := range app.DeploymentEnv {
		require.Contains(t, w.Environment, v, "%s defaults to the dev stack on 127.0.0.1; compose must set it", v)
	}

	cfg, env := workerConfig(t, c)
	require.False(t, cfg.Dev)
	require.NoError(t, cfg.Validate(), "the worker as compose configures it refuses to start")
	require.False(t, cfg.MonitoringOff(), "compose runs with monitoring on by default")

	// The policy is a mounted file of the repository with explicit access.
	require.True(t, strings.HasPrefix(env["FLEET_POLICY"], "/"), "FLEET_POLICY is a path in the container")
	mounted := false
	for _, m := range w.BindMounts(repoRoot(t)) {
		if m.Target == env["FLEET_POLICY"] {
			mounted = true
			_, err := os.Stat(m.Source)
			require.NoError(t, err, "the policy file compose mounts")
		}
	}
	require.True(t, mounted, "FLEET_POLICY=%s is not mounted", env["FLEET_POLICY"])

	// The plan store is a named volume (it outlives the container; every
	// worker copy mounts the same), which the CLI mounts too.
	dir, ok := strings.CutPrefix(env["FLEET_PLAN_STORE"], "dir:")
	require.True(t, ok, "FLEET_PLAN_STORE=%s: compose keeps plans in a directory", env["FLEET_PLAN_STORE"])
	volumeAt := func(svc service, target string) string {
		for _, v := range svc.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) >= 2 && parts[1] == target {
				return parts[0]
			}
		}
		return ""
	}
	vol := volumeAt(w, dir)
	require.Contains(t, c.Volumes, vol, "the plan store %s is a named volume of the worker", dir)
	require.Equal(t, vol, volumeAt(c.Services["fleet"], dir), "the CLI reads the worker's plan store")

	// HTTP on every interface of the container, published on the host's
	// loopback only.
	require.Equal(t, "0.0.0.0:8088", env["FLEET_HTTP_ADDR"])
	require.Contains(t, w.Ports, "127.0.0.1:8088:8088")
}

// Every service host:port a fleet service's environment names is a
// service of the file, and the port is one the service listens on.
func TestComposeAddressesResolve(t *testing.T) {
	c := load(t)
	listens := map[string]bool{"temporal:7233": true, "kafka:9092": true}
	for name, svc := range c.Services {
		ports, err := svc.ContainerPorts()
		require.NoError(t, err)
		for _, p := range ports {
			listens[name+":"+strconv.Itoa(p)] = true
		}
	}
	hostPort := regexp.MustCompile(`([a-z][a-z0-9-]*):(\d+)`)
	for _, name := range []string{"worker", "fleet-sim", "fleet"} {
		svc, ok := c.Services[name]
		require.True(t, ok, "service %s", name)
		env, err := svc.Env(operatorEnv)
		require.NoError(t, err)
		keys := make([]string, 0, len(env))
		for k := range env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			for _, m := range hostPort.FindAllStringSubmatch(env[k], -1) {
				if _, isService := c.Services[m[1]]; isService {
					require.True(t, listens[m[0]], "%s: %s=%s: %s does not listen on %s", name, k, env[k], m[1], m[2])
				}
			}
		}
	}
}

func TestComposeFleetSim(t *testing.T) {
	c := load(t)
	s, ok := c.Services["fleet-sim"]
	require.True(t, ok)
	require.Equal(t, []any{"/fleet-sim"}, s.Entrypoint)
	require.NotNil(t, s.Healthcheck)
	require.Equal(t, []string{"CMD", "/fleet-sim", "healthcheck"}, s.Healthcheck.Test)
	require.Equal(t, "service_completed_successfully", s.DependsOn["kafka-init"].Condition)
	env, err := s.Env(operatorEnv)
	require.NoError(t, err)
	require.Equal(t, "kafka:9092", env["KAFKA_BROKERS"])

	// The worker reads the simulator's inventory and monitors with the keys
	// the simulator demands, and waits for it when it runs.
	w := c.Services["worker"]
	wenv, err := w.Env(operatorEnv)
	require.NoError(t, err)
	require.Equal(t, env["DD_API_KEY"], wenv["DD_API_KEY"])
	require.Equal(t, env["DD_APP_KEY"], wenv["DD_APP_KEY"])
	require.Equal(t, "http://fleet-sim:8090", wenv["DD_URL"])
	require.Equal(t, "http://fleet-sim:8089/v1/clusters", wenv["FLEET_INVENTORY"])
	dep, ok := w.DependsOn["fleet-sim"]
	require.True(t, ok)
	require.Equal(t, "service_healthy", dep.Condition)
	require.False(t, dep.Required, "the worker runs without the simulator against real systems")

	// The image holds the simulator and the CLI; make build builds them.
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	require.NoError(t, err)
	for _, want := range []string{"./internal/sim/cmd/fleetsim", "/out/fleet-sim", "./starter"} {
		require.Contains(t, string(b), want)
	}
	mk, err := os.ReadFile(filepath.Join(repoRoot(t), "Makefile"))
	require.NoError(t, err)
	require.Contains(t, string(mk), "$(BIN)/fleet-sim ./internal/sim/cmd/fleetsim")

	cli, ok := c.Services["fleet"]
	require.True(t, ok, "the fleet CLI service")
	require.Equal(t, []string{"cli"}, cli.Profiles)
	require.Equal(t, []any{"/fleet"}, cli.Entrypoint)
	cenv, err := cli.Env(operatorEnv)
	require.NoError(t, err)
	require.Equal(t, "temporal:7233", cenv["TEMPORAL_ADDRESS"])
	require.Equal(t, wenv["FLEET_INVENTORY"], cenv["FLEET_INVENTORY"])
}
