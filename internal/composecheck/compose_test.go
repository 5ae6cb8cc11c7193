// Package composecheck checks docker-compose.yml and the Dockerfile, which
// cannot run here (no Docker engine): the file parses, and the stack is wired
// the way the rest of the project expects.
package composecheck

import (
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/composefile"
)

type (
	compose = composefile.File
	service = composefile.Service
)

func repoRoot(t *testing.T) string {
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func load(t *testing.T) compose {
	t.Helper()
	c, err := composefile.Load(filepath.Join(repoRoot(t), "docker-compose.yml"))
	require.NoError(t, err, "docker-compose.yml is not valid YAML")
	return *c
}

func TestComposeServices(t *testing.T) {
	c := load(t)
	for _, name := range []string{"temporal", "temporal-ui", "postgresql", "kafka", "worker"} {
		require.Contains(t, c.Services, name, "service %s", name)
	}

	// Every dependency names a service, with a condition compose knows.
	for name, svc := range c.Services {
		for dep, d := range svc.DependsOn {
			cond := d.Condition
			require.Contains(t, c.Services, dep, "%s depends on unknown service %s", name, dep)
			require.Contains(t, []string{"service_started", "service_healthy", "service_completed_successfully"}, cond,
				"%s -> %s", name, dep)
			if cond == "service_healthy" {
				require.NotNil(t, c.Services[dep].Healthcheck, "%s waits for %s to be healthy but it has no healthcheck", name, dep)
			}
		}
		require.True(t, svc.Image != "" || svc.Build != nil, "service %s has neither image nor build", name)
		for _, v := range svc.Volumes {
			src, _, ok := strings.Cut(v, ":")
			require.True(t, ok, "volume %q of %s", v, name)
			if !strings.HasPrefix(src, ".") && !strings.HasPrefix(src, "/") {
				require.Contains(t, c.Volumes, src, "named volume %s of %s is not declared", src, name)
			}
		}
		for _, cfg := range svc.Configs {
			require.Contains(t, c.Configs, cfg.Source, "config %s of %s is not declared", cfg.Source, name)
		}
	}
	requireNoCycle(t, c)
}

func TestComposeWorker(t *testing.T) {
	c := load(t)
	w := c.Services["worker"]
	require.Contains(t, w.DependsOn, "temporal")
	require.Contains(t, w.DependsOn, "kafka")
	require.NotNil(t, w.Build, "worker is built from the repo")
	for _, key := range []string{"TEMPORAL_ADDRESS", "KAFKA_BROKERS", "DD_API_KEY", "DD_APP_KEY", "DD_SITE", "SLACK_TOKEN", "SLACK_CHANNEL"} {
		require.Contains(t, w.Environment, key)
	}
	require.Equal(t, "temporal:7233", w.Environment["TEMPORAL_ADDRESS"])
	require.Equal(t, "kafka:9092", w.Environment["KAFKA_BROKERS"])

	dockerfile := w.Build.Dockerfile
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	b, err := os.ReadFile(filepath.Join(repoRoot(t), w.Build.Context, dockerfile))
	require.NoError(t, err, "worker's Dockerfile")
	require.Contains(t, string(b), "./worker", "Dockerfile builds ./worker")
	require.Contains(t, string(b), "FROM golang:")
}

func TestComposeKafkaTopics(t *testing.T) {
	c := load(t)
	require.Contains(t, c.Services["worker"].DependsOn, "kafka-init")
	init, ok := c.Services["kafka-init"]
	require.True(t, ok)
	script := init.Script()
	for _, want := range []string{"fleet.commands", "fleet.status", "fleet.status.dead", "--partitions 12"} {
		require.Contains(t, script, want)
	}
	require.Equal(t, "false", c.Services["kafka"].Environment["KAFKA_AUTO_CREATE_TOPICS_ENABLE"])
	require.Equal(t, "broker,controller", c.Services["kafka"].Environment["KAFKA_PROCESS_ROLES"], "KRaft mode")
}

func TestComposeTemporal(t *testing.T) {
	c := load(t)
	temporal := c.Services["temporal"]
	require.Equal(t, "postgres12", temporal.Environment["DB"])
	require.Equal(t, "postgresql", temporal.Environment["POSTGRES_SEEDS"])
	require.Contains(t, temporal.Ports, "127.0.0.1:7233:7233")
	require.Contains(t, c.Services["temporal-ui"].Ports, "127.0.0.1:8080:8080")
	require.Equal(t, "temporal:7233", c.Services["temporal-ui"].Environment["TEMPORAL_ADDRESS"])

	script := c.Services["temporal-init"].Script()
	for _, sa := range []string{"RolloutName", "Product", "TargetVersion", "Phase", "Paused", "RolloutState", "Clusters"} {
		require.Contains(t, script, "--name "+sa+" ", "search attribute %s", sa)
	}
}

func requireNoCycle(t *testing.T, c compose) {
	t.Helper()
	state := map[string]int{} // 0 new, 1 visiting, 2 done
	var visit func(string, []string)
	visit = func(name string, path []string) {
		switch state[name] {
		case 1:
			require.Failf(t, "depends_on cycle", "%v -> %s", path, name)
		case 2:
			return
		}
		state[name] = 1
		deps := make([]string, 0, len(c.Services[name].DependsOn))
		for d := range c.Services[name].DependsOn {
			deps = append(deps, d)
		}
		sort.Strings(deps)
		for _, d := range deps {
			visit(d, append(path, name))
		}
		state[name] = 2
	}
	for name := range c.Services {
		visit(name, nil)
	}
}
