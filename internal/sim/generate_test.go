package sim

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // zone names resolve even where the OS has no zoneinfo

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/fleet"
)

func TestGenerateFleetDeterministic(t *testing.T) {
	a := GenerateFleet(500, 42)
	b := GenerateFleet(500, 42)
	require.Equal(t, a, b, "same seed, same fleet")
	assert.NotEqual(t, a, GenerateFleet(500, 43), "another seed, another fleet")
	assert.Empty(t, GenerateFleet(0, 1))
	assert.Empty(t, GenerateFleet(-3, 1))
}

func TestGenerateFleetIDs(t *testing.T) {
	tests := []struct {
		n     int
		width int
	}{
		{1, 5}, {10, 5}, {2000, 5}, {100001, 6},
	}
	for _, tt := range tests {
		t.Run(strings.Repeat("0", tt.width), func(t *testing.T) {
			cs := GenerateFleet(tt.n, 7)
			require.Len(t, cs, tt.n)
			re := regexp.MustCompile(`^(lkc|ksql|conn|sr)-\d{` + strconv.Itoa(tt.width) + `}$`)
			seen := make(map[string]bool, tt.n)
			for _, c := range cs {
				if !re.MatchString(c.ID) || !strings.HasPrefix(c.ID, IDPrefix(c.Product)+"-") || seen[c.ID] {
					t.Fatalf("bad or duplicate id %q for product %s", c.ID, c.Product)
				}
				seen[c.ID] = true
			}
		})
	}
}

func TestGenerateFleetDistribution(t *testing.T) {
	const n = 4000
	cs := GenerateFleet(n, 2024)

	count := func(field func(fleet.Cluster) string) map[string]int {
		m := map[string]int{}
		for _, c := range cs {
			m[field(c)]++
		}
		return m
	}
	share := func(m map[string]int, k string) float64 { return float64(m[k]) / n }

	products := count(func(c fleet.Cluster) string { return c.Product })
	envs := count(func(c fleet.Cluster) string { return c.Environment })
	clouds := count(func(c fleet.Cluster) string { return c.Cloud })
	tiers := count(func(c fleet.Cluster) string { return c.Tier })

	for _, p := range fleet.Products {
		assert.Positive(t, products[p], p)
		if p != fleet.ProductKafka {
			assert.Greater(t, products[fleet.ProductKafka], products[p], "kafka is the most common product")
		}
	}
	ranges := []struct {
		name   string
		got    float64
		lo, hi float64
	}{
		{"internal", share(envs, fleet.EnvInternal), 0.03, 0.07},
		{"non-prod", share(envs, fleet.EnvNonProd), 0.26, 0.34},
		{"prod", share(envs, fleet.EnvProd), 0.60, 0.70},
		{"aws", share(clouds, fleet.CloudAWS), 0.45, 0.55},
		{"gcp", share(clouds, fleet.CloudGCP), 0.20, 0.30},
		{"azure", share(clouds, fleet.CloudAzure), 0.20, 0.30},
		{"kafka", share(products, fleet.ProductKafka), 0.50, 0.60},
	}
	for _, r := range ranges {
		assert.GreaterOrEqual(t, r.got, r.lo, r.name)
		assert.LessOrEqual(t, r.got, r.hi, r.name)
	}
	for _, tier := range Tiers {
		assert.Positive(t, tiers[tier], tier)
	}

	custRE := regexp.MustCompile(`^cust-\d{3,}$`)
	startRE := regexp.MustCompile(`^([01]\d|2[0-3]):[0-5]\d$`)
	drift := map[string]int{}
	for _, c := range cs {
		require.NoError(t, c.Validate())
		assert.Equal(t, int64(1), c.Generation)
		assert.Contains(t, fleet.Regions[c.Cloud], c.Region)
		if c.Environment == fleet.EnvInternal {
			assert.Equal(t, "internal", c.Customer)
		} else {
			assert.Regexp(t, custRE, c.Customer)
		}
		if c.Product == fleet.ProductKafka {
			assert.GreaterOrEqual(t, c.Brokers, 3)
			assert.LessOrEqual(t, c.Brokers, 12)
		} else {
			assert.GreaterOrEqual(t, c.Brokers, 1)
			assert.LessOrEqual(t, c.Brokers, 12)
		}
		assert.Equal(t, c.Tier, c.Labels["tier"])
		assert.NotEmpty(t, c.Labels["team"])
		if c.Version != CurrentVersion(c.Product) {
			drift[c.Product]++
		}

		w := c.Window
		require.NotNil(t, w)
		assert.Equal(t, TimeZone(c.Region), w.TimeZone)
		_, err := time.LoadLocation(w.TimeZone)
		assert.NoError(t, err)
		d, err := time.ParseDuration(w.Duration)
		assert.NoError(t, err)
		assert.Positive(t, d)
		assert.Regexp(t, startRE, w.Start)
		assert.NotEmpty(t, w.Days)
		for _, day := range w.Days {
			assert.Contains(t, weekdays, day)
		}
		assert.True(t, slices.IsSortedFunc(w.Days, func(a, b string) int {
			return slices.Index(weekdays, a) - slices.Index(weekdays, b)
		}), "days in week order: %v", w.Days)
	}
	kafka := products[fleet.ProductKafka]
	assert.Positive(t, drift[fleet.ProductKafka], "some kafka clusters lag behind")
	assert.Less(t, drift[fleet.ProductKafka], kafka/4, "most kafka clusters run the current version")
}

func TestTimeZonesCoverEveryRegion(t *testing.T) {
	for cloud, regions := range fleet.Regions {
		for _, r := range regions {
			z := TimeZone(r)
			assert.NotEqual(t, "UTC", z, "%s/%s has no zone", cloud, r)
			_, err := time.LoadLocation(z)
			assert.NoError(t, err, z)
		}
	}
	assert.Equal(t, "UTC", TimeZone("mars-north-1"))
	assert.Equal(t, "3.6.1", CurrentVersion(fleet.ProductKafka))
	assert.Empty(t, CurrentVersion("nope"))
}
