package spec_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/spec"
)

func TestDurationDecoding(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{`"10s"`, 10 * time.Second, ""},
		{`"1h30m"`, 90 * time.Minute, ""},
		{`10`, 10 * time.Second, ""},
		{`1.5`, 1500 * time.Millisecond, ""},
		{`"90"`, 90 * time.Second, ""},
		{`0`, 0, ""},
		{`""`, 0, ""},
		{`-1`, 0, "must not be negative"},
		{`"-5s"`, 0, "must not be negative"},
		{`"ten seconds"`, 0, "number of seconds"},
		{`true`, 0, "number of seconds"},
		{`1e3`, 0, "number of seconds"},
	} {
		var d spec.Duration
		err := json.Unmarshal([]byte(tc.in), &d)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, d.D(), tc.in)
		// Written back as a string, read back the same.
		b, err := json.Marshal(d)
		require.NoError(t, err)
		var again spec.Duration
		require.NoError(t, json.Unmarshal(b, &again))
		require.Equal(t, d, again)
	}
}

func TestCountDecoding(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want spec.Phase
		err  string
	}{
		{`{"name":"a","batchSize":25,"concurrency":100}`, spec.Phase{Name: "a", BatchSize: "25", Concurrency: 100}, ""},
		{`{"name":"a","batchSize":"25","concurrency":"100"}`, spec.Phase{Name: "a", BatchSize: "25", Concurrency: 100}, ""},
		{`{"name":"a","batchSize":"10%"}`, spec.Phase{Name: "a", BatchSize: "10%"}, ""},
		{`{"name":"a","bake":"1m","strict":true}`, spec.Phase{Name: "a", Bake: spec.Duration(time.Minute), Strict: true}, ""},
		{`{"name":"a","bake":60}`, spec.Phase{Name: "a", Bake: spec.Duration(time.Minute)}, ""},
		{`{"name":"a","errorBudget":{"max":3,"onExceeded":"abort"}}`, spec.Phase{Name: "a", ErrorBudget: &spec.ErrorBudget{Max: "3", OnExceeded: "abort"}}, ""},
		{`{"name":"a","errorBudget":{"max":"2%"}}`, spec.Phase{Name: "a", ErrorBudget: &spec.ErrorBudget{Max: "2%"}}, ""},
		{`{"name":"a","concurrency":"many"}`, spec.Phase{}, "whole number"},
		{`{"name":"a","concurrency":1.5}`, spec.Phase{}, "whole number"},
		{`{"name":"a","batchSize":[1]}`, spec.Phase{}, "count like 25"},
	} {
		var p spec.Phase
		err := json.Unmarshal([]byte(tc.in), &p)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, p, tc.in)
		// What the fleet writes (strings for batchSize and max, a number for
		// concurrency) reads back the same.
		b, err := json.Marshal(p)
		require.NoError(t, err)
		var again spec.Phase
		require.NoError(t, json.Unmarshal(b, &again))
		require.Equal(t, p, again)
	}
}

// TestSpecJSONFromOtherSDKs: a whole spec as another SDK sends it, numbers
// where the README's YAML has numbers, validates like the YAML.
func TestSpecJSONFromOtherSDKs(t *testing.T) {
	var r spec.Rollout
	require.NoError(t, json.Unmarshal([]byte(`{"name":"kafka-3-7-1","target":{"version":"3.7.1"},"selector":"product=kafka",
		"strategy":{"phases":[{"name":"canary","selector":"env=internal","batchSize":25,"strict":true,"bake":60},
		{"name":"prod","selector":"env=prod","batchSize":"10%","concurrency":"200","bake":"5m","errorBudget":{"max":1}}]},
		"errorBudget":{"max":3,"onExceeded":"pause"},"monitoring":{"interval":10,"unknownGrace":"30s"},"applyTimeout":1800}`), &r))
	require.NoError(t, r.Validate())
	require.Equal(t, "25", r.Strategy.Phases[0].BatchSize)
	require.Equal(t, time.Minute, r.Strategy.Phases[0].Bake.D())
	require.Equal(t, 200, r.Strategy.Phases[1].Concurrency)
	require.Equal(t, "3", r.ErrorBudget.Max)
	require.Equal(t, 10*time.Second, r.Monitoring.Interval.D())
	require.Equal(t, 30*time.Minute, r.ApplyTimeout.D())
}

// TestYAMLDurationsInSeconds: the YAML parser takes numbers of seconds too.
func TestYAMLDurationsInSeconds(t *testing.T) {
	r, err := spec.Parse("s.yaml", []byte(`
name: x
target: {version: 3.7.1}
selector: product=kafka
strategy:
  phases:
    - {name: all, batchSize: 5, bake: 90}
monitoring: {interval: 2.5}
`))
	require.NoError(t, err)
	require.Equal(t, 90*time.Second, r.Strategy.Phases[0].Bake.D())
	require.Equal(t, 2500*time.Millisecond, r.Monitoring.Interval.D())
}
