package metrics_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/fleet-rollout/fleet/internal/metrics"
	"github.com/fleet-rollout/fleet/internal/sigauth"
	"github.com/fleet-rollout/fleet/workflows"
)

// TestDocsNameExportedMetrics checks that the alert rules, the dashboard and
// the README name only fleet metrics the worker exports, and that the rule
// and dashboard files parse.
func TestDocsNameExportedMetrics(t *testing.T) {
	known := map[string]bool{}
	for _, n := range []string{
		metrics.HealthReadSeconds, metrics.HealthReadFailures, metrics.BridgeLagSeconds, metrics.BridgeDelivered,
		metrics.BridgeDeadLetters, metrics.RolloutClusters, metrics.RolloutPaused, metrics.RolloutPausedSince,
		metrics.RolloutFailures, metrics.RolloutBudget, metrics.RolloutOutbox, metrics.RolloutsRunning, metrics.RolloutScrapeErrors,
	} {
		known[n] = true
	}
	// Counters recorded through the SDK's handler get _total on /metrics.
	for _, n := range []string{workflows.MetricPauses, workflows.MetricIncidents, workflows.MetricNotificationsDropped,
		workflows.MetricRefused, sigauth.MetricDropped} {
		known[n+"_total"] = true
	}
	name := regexp.MustCompile(`fleet_[a-z_]+`)
	for _, f := range []string{"../../docs/alerts.yaml", "../../docs/grafana-dashboard.json", "../../README.md"} {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		switch {
		case strings.HasSuffix(f, ".yaml"):
			var rules struct {
				Groups []struct {
					Rules []struct {
						Alert string `yaml:"alert"`
						Expr  string `yaml:"expr"`
					} `yaml:"rules"`
				} `yaml:"groups"`
			}
			require.NoError(t, yaml.Unmarshal(b, &rules), f)
			require.NotEmpty(t, rules.Groups, f)
		case strings.HasSuffix(f, ".json"):
			var d map[string]any
			require.NoError(t, json.Unmarshal(b, &d), f)
		}
		for _, n := range name.FindAllString(string(b), -1) {
			base := n
			for _, suf := range []string{"_bucket", "_count", "_sum"} {
				if strings.HasSuffix(n, suf) && known[strings.TrimSuffix(n, suf)] {
					base = strings.TrimSuffix(n, suf)
				}
			}
			if strings.HasSuffix(f, "README.md") && !known[base] && !strings.Contains(string(b), "`"+n+"`") {
				continue // prose, not a metric name
			}
			require.True(t, known[base], "%s names %s, which the worker does not export", f, n)
		}
	}
}
