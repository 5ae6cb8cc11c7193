package sim

import (
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/monitors"
)

// requireIndexAgrees checks the group index against the simulator read a
// cluster at a time: ProductClusters against Clusters, MonitorStatuses and
// NotOKGroups against MonitorStatus, for every catalog monitor. It returns
// the non-OK groups, monitor -> cluster -> status.
func requireIndexAgrees(t *testing.T, s *Simulator) map[string]map[string]string {
	t.Helper()
	want := map[string][]string{}
	for _, c := range s.Clusters() {
		want[c.Product] = append(want[c.Product], c.ID)
	}
	for p := range want {
		sort.Strings(want[p])
	}
	for _, p := range fleet.Products {
		assert.Equal(t, want[p], s.ProductClusters(p), "clusters of %s", p)
	}
	notOK := map[string]map[string]string{}
	for _, m := range monitors.Default() {
		ids := s.ProductClusters(m.Product)
		statuses := s.MonitorStatuses(m.Name, ids)
		require.Len(t, statuses, len(ids))
		wantNotOK := map[string]string{}
		for i, id := range ids {
			st := s.MonitorStatus(id, m.Name)
			assert.Equal(t, st, statuses[i], "%s on %s", m.Name, id)
			if st != StatusOK {
				wantNotOK[id] = st
			}
		}
		got, ok := s.NotOKGroups(m.Name, m.Product)
		require.True(t, ok, m.Name)
		assert.Equal(t, wantNotOK, got, "non-OK groups of %s", m.Name)
		if len(got) > 0 {
			notOK[m.Name] = got
		}
	}
	_, ok := s.NotOKGroups("no-such-monitor", fleet.ProductKafka)
	assert.False(t, ok, "unknown monitor")
	_, ok = s.NotOKGroups("kafka-cpu-high", fleet.ProductKsqlDB)
	assert.False(t, ok, "monitor of another product")
	assert.Equal(t, []string{StatusNoData, StatusNoData}, s.MonitorStatuses("kafka-cpu-high", []string{"lkc-77777", "ksql-77777"}))
	return notOK
}

func TestGroupIndexOwner(t *testing.T) {
	s := newSim(t, Config{Clusters: GenerateFleet(10, 1)})
	assert.Equal(t, any(s), s.GroupIndexOwner())
	assert.Empty(t, requireIndexAgrees(t, s))
}
