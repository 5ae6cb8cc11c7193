package drift

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/sim"
	"github.com/fleet-rollout/fleet/internal/spec"
)

func cl(id, product, cloud, region, env, version string) fleet.Cluster {
	return fleet.Cluster{ID: id, Product: product, Cloud: cloud, Region: region, Environment: env,
		Customer: "c", Tier: "basic", Version: version, Brokers: 3}
}

var small = []fleet.Cluster{
	cl("lkc-1", "kafka", "aws", "us-east-1", "prod", "3.6.1"),
	cl("lkc-2", "kafka", "aws", "us-east-1", "prod", "3.6.1"),
	cl("lkc-3", "kafka", "gcp", "us-central1", "non-prod", "3.5.2"),
	cl("lkc-4", "kafka", "aws", "eu-west-1", "internal", "3.10.0"),
	cl("lkc-5", "kafka", "gcp", "us-central1", "prod", "v3.6.1"),
	cl("sr-1", "schema-registry", "azure", "eastus", "prod", "7.6.0"),
	cl("sr-2", "schema-registry", "azure", "eastus", "non-prod", "7.5.3"),
}

func TestDistribution(t *testing.T) {
	d, err := Distribution(small, "env", "cloud", "environment")
	require.NoError(t, err)
	assert.Equal(t, 7, d.Clusters)
	assert.Equal(t, []Group{
		{Product: "kafka", Clusters: 5, Versions: []VersionCount{{"3.10.0", 1}, {"3.6.1", 2}, {"v3.6.1", 1}, {"3.5.2", 1}}},
		{Product: "schema-registry", Clusters: 2, Versions: []VersionCount{{"7.6.0", 1}, {"7.5.3", 1}}},
	}, d.Products)
	require.Len(t, d.By, 2, "env and environment are one dimension")
	assert.Equal(t, "environment", d.By[0].By)
	assert.Equal(t, []Group{
		{Value: "internal", Product: "kafka", Clusters: 1, Versions: []VersionCount{{"3.10.0", 1}}},
		{Value: "non-prod", Product: "kafka", Clusters: 1, Versions: []VersionCount{{"3.5.2", 1}}},
		{Value: "non-prod", Product: "schema-registry", Clusters: 1, Versions: []VersionCount{{"7.5.3", 1}}},
		{Value: "prod", Product: "kafka", Clusters: 3, Versions: []VersionCount{{"3.6.1", 2}, {"v3.6.1", 1}}},
		{Value: "prod", Product: "schema-registry", Clusters: 1, Versions: []VersionCount{{"7.6.0", 1}}},
	}, d.By[0].Groups)
	assert.Equal(t, "cloud", d.By[1].By)
	var values []string
	for _, g := range d.By[1].Groups {
		values = append(values, g.Value+"/"+g.Product)
	}
	assert.Equal(t, []string{"aws/kafka", "azure/schema-registry", "gcp/kafka"}, values)

	_, err = Distribution(small, "zone")
	require.EqualError(t, err, `unknown dimension "zone" (want one of cloud, region, environment, tier)`)

	empty, err := Distribution(nil)
	require.NoError(t, err)
	assert.Equal(t, 0, empty.Clusters)
	assert.Empty(t, empty.Products)
}

func TestDistributionIsDeterministic(t *testing.T) {
	fl := sim.GenerateFleet(300, 7)
	want, err := Distribution(fl, "cloud", "region", "environment")
	require.NoError(t, err)
	rev := make([]fleet.Cluster, len(fl))
	for i := range fl {
		rev[len(fl)-1-i] = fl[i]
	}
	got, err := Distribution(rev, "cloud", "region", "environment")
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func TestMajority(t *testing.T) {
	tests := []struct {
		name     string
		versions []string
		want     string
		n        int
	}{
		{"none", nil, "", 0},
		{"most", []string{"1.0.0", "1.1.0", "1.0.0"}, "1.0.0", 2},
		{"tie goes to the newest", []string{"1.9.0", "1.10.0", "1.10.0", "1.9.0"}, "1.10.0", 2},
		{"tie with a version that does not parse", []string{"weird", "1.0.0"}, "1.0.0", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cs []fleet.Cluster
			for i, v := range tt.versions {
				cs = append(cs, cl("k"+string(rune('a'+i)), "kafka", "aws", "us-east-1", "prod", v))
			}
			cs = append(cs, cl("other", "connect", "aws", "us-east-1", "prod", "9.9.9"))
			v, n, total := Majority(cs, "kafka")
			assert.Equal(t, tt.want, v)
			assert.Equal(t, tt.n, n)
			assert.Equal(t, len(tt.versions), total)
		})
	}
}

func TestFind(t *testing.T) {
	type row struct{ id, kind, reason, want, from string }
	rows := func(ds []Drift) []row {
		var out []row
		for _, d := range ds {
			out = append(out, row{d.ClusterID, d.Kind, d.Reason, d.DesiredVersion, d.DesiredFrom})
		}
		return out
	}
	weird := append(append([]fleet.Cluster{}, small...), cl("sr-3", "schema-registry", "aws", "us-east-1", "prod", "latest"))
	configs := map[string]map[string]string{
		"lkc-1": {"log.retention.hours": "168", "auto.create.topics.enable": "false"},
		"lkc-2": {"log.retention.hours": "72"},
		"lkc-3": {"log.retention.hours": "168", "auto.create.topics.enable": "false"},
		// lkc-4, lkc-5: config unknown, not compared
	}
	tests := []struct {
		name     string
		clusters []fleet.Cluster
		desired  Desired
		want     []row
	}{
		{
			name:     "majority when nothing is desired",
			clusters: small,
			want: []row{
				{"lkc-3", KindBehind, "behind the desired version", "3.6.1", FromMajority},
				{"lkc-4", KindAhead, "ahead of the desired version", "3.6.1", FromMajority},
				// sr: a tie between 7.6.0 and 7.5.3 goes to the newest
				{"sr-2", KindBehind, "behind the desired version", "7.6.0", FromMajority},
			},
		},
		{
			name:     "desired version for one product, majority for the other",
			clusters: small,
			desired:  Desired{Versions: map[string]string{"kafka": "3.10.0"}},
			want: []row{
				{"lkc-1", KindBehind, ReasonBehind, "3.10.0", FromDesired},
				{"lkc-2", KindBehind, ReasonBehind, "3.10.0", FromDesired},
				{"lkc-3", KindBehind, ReasonBehind, "3.10.0", FromDesired},
				{"lkc-5", KindBehind, ReasonBehind, "3.10.0", FromDesired},
				{"sr-2", KindBehind, ReasonBehind, "7.6.0", FromMajority},
			},
		},
		{
			name:     "a version that does not parse differs",
			clusters: weird,
			desired:  Desired{Versions: map[string]string{"kafka": "3.6.1", "schema-registry": "7.6.0"}},
			want: []row{
				{"lkc-3", KindBehind, ReasonBehind, "3.6.1", FromDesired},
				{"lkc-4", KindAhead, ReasonAhead, "3.6.1", FromDesired},
				{"sr-2", KindBehind, ReasonBehind, "7.6.0", FromDesired},
				{"sr-3", KindVersion, ReasonDiffers, "7.6.0", FromDesired},
			},
		},
		{
			name:     "config differs",
			clusters: small,
			desired: Desired{
				Versions: map[string]string{"kafka": "3.6.1"},
				Config:   map[string]map[string]string{"kafka": {"log.retention.hours": "168", "auto.create.topics.enable": "false"}},
				ConfigOf: func(c fleet.Cluster) map[string]string { return configs[c.ID] },
			},
			want: []row{
				{"lkc-2", KindConfig, "config differs: auto.create.topics.enable=<unset> (want false)", "3.6.1", FromDesired},
				{"lkc-2", KindConfig, "config differs: log.retention.hours=72 (want 168)", "3.6.1", FromDesired},
				{"lkc-3", KindBehind, ReasonBehind, "3.6.1", FromDesired},
				{"lkc-4", KindAhead, ReasonAhead, "3.6.1", FromDesired},
				{"sr-2", KindBehind, ReasonBehind, "7.6.0", FromMajority},
			},
		},
		{
			name:     "config wanted but not reported: not compared",
			clusters: small,
			desired:  Desired{Config: map[string]map[string]string{"kafka": {"x": "y"}}},
			want: []row{
				{"lkc-3", KindBehind, ReasonBehind, "3.6.1", FromMajority},
				{"lkc-4", KindAhead, ReasonAhead, "3.6.1", FromMajority},
				{"sr-2", KindBehind, ReasonBehind, "7.6.0", FromMajority},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, rows(Find(tt.clusters, tt.desired)))
		})
	}
}

func TestFindCarriesWhereTheClusterIs(t *testing.T) {
	ds := Find(small, Desired{})
	require.NotEmpty(t, ds)
	assert.Equal(t, Drift{ClusterID: "lkc-3", Product: "kafka", Cloud: "gcp", Region: "us-central1", Environment: "non-prod",
		Version: "3.5.2", DesiredVersion: "3.6.1", DesiredFrom: FromMajority, Kind: KindBehind, Reason: ReasonBehind}, ds[0])
}

func TestTargets(t *testing.T) {
	got := Targets(small, Desired{Versions: map[string]string{"kafka": "3.6.1", "connect": "7.6.0"}})
	assert.Equal(t, []Target{
		{Product: "connect", Version: "7.6.0", From: FromDesired, Clusters: 0, OnVersion: 0},
		{Product: "kafka", Version: "3.6.1", From: FromDesired, Clusters: 5, OnVersion: 3},
		{Product: "schema-registry", Version: "7.6.0", From: FromMajority, Clusters: 2, OnVersion: 1},
	}, got)
}

// TestGeneratedFleetStragglers: against the simulated fleet, drift finds
// exactly the clusters not on their product's current version.
func TestGeneratedFleetStragglers(t *testing.T) {
	fl := sim.GenerateFleet(500, 1)
	want := map[string]bool{}
	for _, c := range fl {
		if c.Version != sim.CurrentVersion(c.Product) {
			want[c.ID] = true
		}
	}
	require.NotEmpty(t, want)
	got := map[string]bool{}
	for _, d := range Find(fl, Desired{}) {
		assert.Equal(t, KindBehind, d.Kind, d.ClusterID)
		assert.Equal(t, sim.CurrentVersion(d.Product), d.DesiredVersion)
		got[d.ClusterID] = true
	}
	assert.Equal(t, want, got)
}

func TestRemediationName(t *testing.T) {
	assert.Equal(t, "remediate-kafka-3-6-1", RemediationName("kafka", "3.6.1"))
	assert.Equal(t, "remediate-schema-registry-7-6-0-rc1-b-5", RemediationName("schema-registry", "7.6.0-rc1+b.5"))
	long := RemediationName("kafka", strings.Repeat("1.", 40)+"0")
	assert.LessOrEqual(t, len(long), 63)
	assert.False(t, strings.HasSuffix(long, "-"))
}

func TestRemediationSpec(t *testing.T) {
	fl := sim.GenerateFleet(500, 1)
	drifts := Find(fl, Desired{})
	data, err := RemediationSpec(drifts, "kafka", "3.6.1")
	require.NoError(t, err)
	t.Log("\n" + string(data))

	r, err := spec.Parse("remediate.yaml", data)
	require.NoError(t, err)
	assert.Equal(t, "remediate-kafka-3-6-1", r.Name)
	assert.Equal(t, "3.6.1", r.Target.Version)
	assert.Equal(t, "product=kafka, version<3.6.1", r.Selector)
	assert.True(t, r.RequirePlanApproval)
	var want []string
	for _, d := range drifts {
		if d.Product == "kafka" {
			want = append(want, d.ClusterID)
		}
	}
	assert.Equal(t, want, r.Include)
	require.Len(t, r.Strategy.Phases, 2)
	assert.Equal(t, "non-prod", r.Strategy.Phases[0].Name)
	assert.Equal(t, "prod", r.Strategy.Phases[1].Name)
	assert.True(t, r.Strategy.Phases[1].RequireApproval)
	for _, p := range r.Strategy.Phases {
		assert.Equal(t, "5", p.BatchSize)
	}

	// The planner takes it and plans exactly the stragglers.
	p, err := plan.Build(r, fl, plan.Options{})
	require.NoError(t, err)
	assert.Equal(t, len(want), p.Total)
	var planned []string
	for _, ph := range p.Phases {
		for _, b := range ph.Batches {
			assert.LessOrEqual(t, len(b.Clusters), 5)
			for _, tg := range b.Clusters {
				planned = append(planned, tg.ClusterID)
			}
		}
	}
	assert.ElementsMatch(t, want, planned)
}

func TestRemediationSpecLeavesOutAheadAndEmptyPhases(t *testing.T) {
	drifts := Find(small, Desired{Versions: map[string]string{"kafka": "3.6.1"}})
	data, err := RemediationSpec(drifts, "kafka", "3.6.1")
	require.NoError(t, err)
	r, err := spec.Parse("r.yaml", data)
	require.NoError(t, err)
	assert.Equal(t, []string{"lkc-3"}, r.Include, "lkc-4 is ahead: never downgraded")
	require.Len(t, r.Strategy.Phases, 1, "no prod cluster is behind: no prod phase")
	assert.Equal(t, "non-prod", r.Strategy.Phases[0].Name)
	p, err := plan.Build(r, small, plan.Options{})
	require.NoError(t, err)
	assert.Equal(t, 1, p.Total)

	_, err = RemediationSpec(drifts, "connect", "7.6.0")
	require.ErrorContains(t, err, "no drifted connect cluster is behind 7.6.0")
	_, err = RemediationSpec(drifts, "kafak", "3.6.1")
	require.ErrorContains(t, err, `unknown product "kafak"`)
	_, err = RemediationSpec(drifts, "kafka", "latest")
	require.ErrorContains(t, err, "target version")
}
