package sim

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/internal/fleet"
)

func TestStateFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	cfg := Config{Clusters: GenerateFleet(50, 1), StatePath: path}

	s1 := newSim(t, cfg)
	// Change state the way a completed apply and a held one would.
	s1.mu.Lock()
	id := cfg.Clusters[3].ID
	cs := s1.clusters[id]
	cs.c.Version, cs.c.Generation, cs.starts = "9.9.9", 7, 2
	cs.alerts["x"] = true
	held := cfg.Clusters[4].ID
	a := &apply{Generation: 2, Spec: dataplane.Spec{Version: "9.9.9"}, RolloutID: "r", ReplyTo: "w", Brokers: 3, Done: 1, Held: true, wake: make(chan struct{}, 1)}
	a.Last = s1.statusOf(s1.clusters[held], a, dataplane.Held, "")
	s1.clusters[held].inflight = a
	s1.clusters[held].starts = 1
	s1.mu.Unlock()
	s1.markDirty()
	require.NoError(t, s1.Close())
	require.NoError(t, s1.Close(), "Close is idempotent")

	s2 := newSim(t, cfg)
	defer func() { require.NoError(t, s2.Close()) }()
	assert.Equal(t, s1.Clusters(), s2.Clusters())
	c, ok := s2.Cluster(id)
	require.True(t, ok)
	assert.Equal(t, "9.9.9", c.Version)
	assert.Equal(t, int64(7), c.Generation)
	assert.Equal(t, 2, s2.ApplyStarts(id))
	assert.Equal(t, 1, s2.ApplyStarts(held))

	s2.mu.Lock()
	got := s2.clusters[held].inflight
	require.NotNil(t, got)
	assert.True(t, got.Held)
	assert.Equal(t, 1, got.Done)
	assert.Equal(t, "w", got.ReplyTo)
	assert.Equal(t, dataplane.Held, got.Last.State)
	assert.NotNil(t, got.wake)
	s2.mu.Unlock()
}

func TestStateMergesNewClusters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s1 := newSim(t, Config{Clusters: GenerateFleet(10, 1), StatePath: path})
	require.NoError(t, s1.Close())

	// No clusters configured: the saved fleet comes back as is.
	s2 := newSim(t, Config{StatePath: path})
	assert.Equal(t, s1.Clusters(), s2.Clusters())
	require.NoError(t, s2.Close())

	// More clusters configured: the new ones are added.
	s3 := newSim(t, Config{Clusters: GenerateFleet(20, 1), StatePath: path})
	assert.Len(t, s3.Clusters(), 20)
	require.NoError(t, s3.Close())
}

func TestStateSavedWhileRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := newSim(t, Config{Clusters: GenerateFleet(5, 1), StatePath: path})
	defer s.Close()
	s.mu.Lock()
	for _, cs := range s.clusters {
		cs.c.Generation = 42
	}
	s.mu.Unlock()
	s.markDirty()
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		var st stateFile
		return json.Unmarshal(b, &st) == nil && len(st.Clusters) == 5 && st.Clusters[0].Cluster.Generation == 42
	}, waitTimeout, waitTick)
}

func TestLoadErrors(t *testing.T) {
	good := kafkaCluster("lkc-00001", 3)
	tests := []struct {
		name    string
		content string
		err     string
	}{
		{"corrupt", "{not json", "load state"},
		{"format", `{"format": 99, "clusters": []}`, "unsupported format 99"},
		{"invalid cluster", `{"format": 1, "clusters": [{"cluster": {"id": "x"}}]}`, "unknown product"},
		{"inconsistent apply", mustJSON(t, stateFile{Format: 1, Clusters: []clusterEntry{{
			Cluster: good, InFlight: &apply{Generation: 1, Brokers: 3},
		}}}), "inconsistent apply in flight"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			require.NoError(t, os.WriteFile(path, []byte(tt.content), 0o600))
			_, err := New(Config{StatePath: path}, zaptest.NewLogger(t))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
		})
	}
}

func TestNewValidates(t *testing.T) {
	c := kafkaCluster("lkc-00001", 3)
	bad := c
	bad.Brokers = 0
	tests := []struct {
		name string
		cfg  Config
		err  string
	}{
		{"duplicate cluster", Config{Clusters: []fleet.Cluster{c, c}}, "duplicate cluster id lkc-00001"},
		{"invalid cluster", Config{Clusters: []fleet.Cluster{bad}}, "brokers must be positive"},
		{"invalid fault", Config{Faults: []Fault{{Fraction: 1}}}, "fault 0"},
		{"negative broker time", Config{BrokerTime: -time.Second}, "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
		})
	}
	s, err := New(Config{}, nil)
	require.NoError(t, err)
	assert.Equal(t, DefaultBrokerTime, s.brokerTime)
	assert.Equal(t, DefaultGroup, s.group)
	require.NoError(t, s.Close())
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestSaveWaitKeepsSavingUnderATenthOfTheTime(t *testing.T) {
	for _, tc := range []struct{ took, want time.Duration }{
		{0, saveInterval},
		{10 * time.Millisecond, saveInterval},
		{200 * time.Millisecond, 1800 * time.Millisecond},
		{time.Second, 9 * time.Second},
	} {
		assert.Equal(t, tc.want, saveWait(tc.took), "after a save of %s", tc.took)
	}
}
