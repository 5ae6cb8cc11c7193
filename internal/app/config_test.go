package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fleet-rollout/fleet/activities"
	"github.com/fleet-rollout/fleet/internal/identity"
)

func writePolicy(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

func TestValidateFailsClosed(t *testing.T) {
	open := writePolicy(t, "access: open\n")
	roles := writePolicy(t, "access:\n  roles: {alice: [admin]}\n  default: viewer\n")
	noAccess := writePolicy(t, "protected:\n  - {clusters: [lkc-00007], reason: audit}\n")
	broken := writePolicy(t, "access: closed\n")
	dd := activities.DatadogConfig{APIKey: "k", AppKey: "a"}

	key := strings.Repeat("ab", 32)
	store := "dir:/var/lib/fleet/plans" // checked, not created
	workerKey := filepath.Join(t.TempDir(), "worker.pem")
	pemBytes, _, err := identity.GenerateKey()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(workerKey, pemBytes, 0o600))
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // substrings of the error; none: valid
	}{
		{"nothing set", Config{}, []string{"DD_API_KEY is not set", "DD_APP_KEY is not set", "FLEET_MONITORING=off", "FLEET_POLICY is not set", "access: open", "worker dev", "FLEET_SIGNAL_KEY is not set", "FLEET_PLAN_STORE is not set"}},
		{"no plan store", Config{Datadog: dd, PolicyPath: roles, SignalKey: key}, []string{"FLEET_PLAN_STORE is not set", "s3://bucket/prefix"}},
		{"a relative plan store", Config{Datadog: dd, PolicyPath: roles, SignalKey: key, PlanStore: "dir:plans"}, []string{"FLEET_PLAN_STORE=dir:plans: the directory must be an absolute path"}},
		{"an S3 plan store", Config{Datadog: dd, PolicyPath: roles, SignalKey: key, PlanStore: "s3://fleet/plans"}, nil},
		{"keys and roles", Config{Datadog: dd, PolicyPath: roles, SignalKey: key, PlanStore: store}, nil},
		{"keys and access: open", Config{Datadog: dd, PolicyPath: open, SignalKey: key, PlanStore: store}, nil},
		{"no signal key", Config{Datadog: dd, PolicyPath: roles}, []string{"FLEET_SIGNAL_KEY is not set", "openssl rand -hex 32"}},
		{"short signal key", Config{Datadog: dd, PolicyPath: roles, SignalKey: "abcd"}, []string{"FLEET_SIGNAL_KEY: signal key: key is 2 bytes"}},
		{"one key", Config{Datadog: activities.DatadogConfig{APIKey: "k"}, PolicyPath: roles, SignalKey: key}, []string{"DD_APP_KEY is not set"}},
		{"monitoring off", Config{Monitoring: "off", PolicyPath: roles, SignalKey: key, PlanStore: store}, nil},
		{"monitoring OFF", Config{Monitoring: "OFF", PolicyPath: roles, SignalKey: key, PlanStore: store}, nil},
		{"monitoring on without keys", Config{Monitoring: "on", PolicyPath: roles, SignalKey: key}, []string{"DD_API_KEY is not set"}},
		{"monitoring bogus", Config{Monitoring: "maybe", Datadog: dd, PolicyPath: roles, SignalKey: key}, []string{`FLEET_MONITORING="maybe"`}},
		{"policy without access", Config{Datadog: dd, PolicyPath: noAccess, SignalKey: key}, []string{"has no access section", "access: open"}},
		{"policy broken", Config{Datadog: dd, PolicyPath: broken, SignalKey: key}, []string{"does not load", "policy.yaml:1"}},
		{"policy missing", Config{Datadog: dd, PolicyPath: filepath.Join(t.TempDir(), "nope.yaml"), SignalKey: key}, []string{"does not load"}},
		{"slack buttons with signed identity need the worker's key", Config{Datadog: dd, PolicyPath: roles, SignalKey: key, SlackSigningSecret: "s", SlackTeamID: "T1"}, []string{"set FLEET_WORKER_KEY"}},
		{"slack buttons need the team", Config{Datadog: dd, PolicyPath: roles, SignalKey: key, SlackSigningSecret: "s", WorkerKeyFile: workerKey}, []string{"without SLACK_TEAM_ID"}},
		{"slack buttons with the worker's key and team", Config{Datadog: dd, PolicyPath: roles, SignalKey: key, PlanStore: store, SlackSigningSecret: "s", SlackTeamID: "T1", WorkerKeyFile: workerKey}, nil},
		{"worker key missing", Config{Datadog: dd, PolicyPath: roles, SignalKey: key, WorkerKeyFile: workerKey + ".gone"}, []string{"FLEET_WORKER_KEY: key file"}},
		{"dev without anything", Config{Dev: true}, nil},
		{"dev with a broken policy", Config{Dev: true, PolicyPath: broken}, []string{"policy.yaml:1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

// RequiredEnv is what Validate reports: each variable, unset, is named.
func TestRequiredEnvMatchesValidate(t *testing.T) {
	err := Config{}.Validate()
	require.Error(t, err)
	for _, r := range RequiredEnv() {
		require.Contains(t, err.Error(), r.Var+" is not set", r.Var)
	}
}

func TestLogMode(t *testing.T) {
	lines := func(cfg Config) []string {
		core, logs := observer.New(zap.InfoLevel)
		cfg.LogMode(zap.New(core))
		var out []string
		for _, e := range logs.All() {
			out = append(out, e.Message)
		}
		return out
	}
	dev := lines(Config{Dev: true, Datadog: activities.DatadogConfig{APIKey: DevDatadogAPIKey, AppKey: DevDatadogAppKey, URL: "http://127.0.0.1:1"}})
	require.Contains(t, dev, "dev: no Datadog keys, health checks read the simulated monitors")
	require.Contains(t, dev, "dev: no FLEET_POLICY, access control is off (everyone is admin)")
	for _, l := range dev {
		require.True(t, strings.HasPrefix(l, "dev: "), l)
	}
	off := lines(Config{Monitoring: "off"})
	require.Len(t, off, 1)
	require.Contains(t, off[0], "monitoring is off")
	require.Empty(t, lines(Config{Datadog: activities.DatadogConfig{APIKey: "k", AppKey: "a"}, PolicyPath: "p"}))
}
