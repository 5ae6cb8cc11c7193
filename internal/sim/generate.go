package sim

import (
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/fleet-rollout/fleet/internal/fleet"
)

// Tiers of service a cluster can be sold at.
var Tiers = []string{"basic", "standard", "dedicated", "enterprise"}

// idPrefix is the ID prefix of each product's clusters.
var idPrefix = map[string]string{
	fleet.ProductKafka:          "lkc",
	fleet.ProductKsqlDB:         "ksql",
	fleet.ProductConnect:        "conn",
	fleet.ProductSchemaRegistry: "sr",
}

// IDPrefix returns the cluster ID prefix GenerateFleet uses for a product
// ("lkc" for kafka), or "" for an unknown product.
func IDPrefix(product string) string { return idPrefix[product] }

// versions per product: the current version first, then stragglers with the
// share of the product's clusters still running them.
var versions = map[string][]weighted[string]{
	fleet.ProductKafka:          {{"3.6.1", 90}, {"3.5.2", 7}, {"3.4.1", 3}},
	fleet.ProductKsqlDB:         {{"0.29.0", 88}, {"0.28.2", 12}},
	fleet.ProductConnect:        {{"7.6.0", 90}, {"7.5.3", 10}},
	fleet.ProductSchemaRegistry: {{"7.6.0", 92}, {"7.5.3", 8}},
}

// CurrentVersion is the version most of a product's generated clusters run,
// or "" for an unknown product.
func CurrentVersion(product string) string {
	v := versions[product]
	if len(v) == 0 {
		return ""
	}
	return v[0].v
}

// regionZones maps every region in fleet.Regions to its IANA time zone.
var regionZones = map[string]string{
	"us-east-1":      "America/New_York",
	"us-west-2":      "America/Los_Angeles",
	"eu-west-1":      "Europe/Dublin",
	"ap-southeast-1": "Asia/Singapore",
	"us-central1":    "America/Chicago",
	"europe-west1":   "Europe/Brussels",
	"asia-east1":     "Asia/Taipei",
	"eastus":         "America/New_York",
	"westeurope":     "Europe/Amsterdam",
	"southeastasia":  "Asia/Singapore",
}

// TimeZone returns the IANA time zone of a region from fleet.Regions, or
// "UTC" for an unknown region.
func TimeZone(region string) string {
	if z, ok := regionZones[region]; ok {
		return z
	}
	return "UTC"
}

type weighted[T any] struct {
	v T
	w int
}

func pick[T any](r *rand.Rand, items []weighted[T]) T {
	total := 0
	for _, it := range items {
		total += it.w
	}
	n := r.IntN(total)
	for _, it := range items {
		if n < it.w {
			return it.v
		}
		n -= it.w
	}
	return items[len(items)-1].v
}

var (
	productMix = []weighted[string]{
		{fleet.ProductKafka, 55}, {fleet.ProductConnect, 20},
		{fleet.ProductSchemaRegistry, 13}, {fleet.ProductKsqlDB, 12},
	}
	cloudMix = []weighted[string]{{fleet.CloudAWS, 50}, {fleet.CloudGCP, 25}, {fleet.CloudAzure, 25}}
	envMix   = []weighted[string]{{fleet.EnvInternal, 5}, {fleet.EnvNonProd, 30}, {fleet.EnvProd, 65}}
	tierMix  = []weighted[string]{{"basic", 25}, {"standard", 35}, {"dedicated", 30}, {"enterprise", 10}}
	teams    = []string{"payments", "search", "ads", "identity", "data-platform", "observability", "risk", "growth", "logistics", "messaging"}
	weekdays = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

	prodStarts    = []string{"01:00", "02:00", "03:00", "04:00", "22:00", "23:00"}
	nonProdStarts = []string{"02:00", "09:00", "10:00", "13:00", "14:00", "16:00"}
	durations     = []string{"2h", "4h", "6h"}
)

// GenerateFleet returns n simulated clusters. The same n and seed always give
// the same fleet. IDs are the product's prefix and the zero-padded index
// ("lkc-00042", "ksql-00007", "conn-..", "sr-.."), unique across the fleet.
// Every cluster passes fleet.Cluster.Validate, starts at generation 1, and
// most run their product's CurrentVersion, with a few stragglers on older
// versions so that drift exists.
func GenerateFleet(n int, seed int64) []fleet.Cluster {
	if n <= 0 {
		return []fleet.Cluster{}
	}
	r := rand.New(rand.NewPCG(uint64(seed), 0x5eed_f1ee7))
	width := max(5, len(strconv.Itoa(n-1)))
	customers := max(10, n/8)

	out := make([]fleet.Cluster, 0, n)
	for i := 0; i < n; i++ {
		product := pick(r, productMix)
		cloud := pick(r, cloudMix)
		regions := fleet.Regions[cloud]
		region := regions[r.IntN(len(regions))]
		env := pick(r, envMix)
		tier := pick(r, tierMix)

		customer := fmt.Sprintf("cust-%03d", r.IntN(customers)+1)
		team := teams[r.IntN(len(teams))]
		if env == fleet.EnvInternal {
			customer = "internal"
			team = "fleet-platform"
		}

		c := fleet.Cluster{
			ID:          fmt.Sprintf("%s-%0*d", idPrefix[product], width, i),
			Product:     product,
			Cloud:       cloud,
			Region:      region,
			Environment: env,
			Customer:    customer,
			Tier:        tier,
			Version:     pick(r, versions[product]),
			Brokers:     brokers(r, product, tier),
			Generation:  1,
			Labels:      map[string]string{"team": team, "tier": tier},
			Window:      window(r, env, region),
		}
		out = append(out, c)
	}
	return out
}

// brokers sizes a cluster: Kafka runs 3..12 brokers by tier; the other
// products run fewer nodes.
func brokers(r *rand.Rand, product, tier string) int {
	between := func(lo, hi int) int { return lo + r.IntN(hi-lo+1) }
	switch product {
	case fleet.ProductKafka:
		switch tier {
		case "basic":
			return 3
		case "standard":
			return between(3, 6)
		case "dedicated":
			return between(3, 12)
		default:
			return between(6, 12)
		}
	case fleet.ProductConnect:
		return between(1, 6)
	case fleet.ProductKsqlDB:
		return between(1, 4)
	default:
		return between(1, 3)
	}
}

// window draws a weekly maintenance window: prod gets one or two weekday
// nights, the rest may also get daytime slots and weekends.
func window(r *rand.Rand, env, region string) *fleet.Window {
	var days []string
	starts := nonProdStarts
	if env == fleet.EnvProd {
		starts = prodStarts
		first := 1 + r.IntN(3) // tue..thu
		days = append(days, weekdays[first])
		if r.IntN(2) == 0 {
			days = append(days, weekdays[first+1])
		}
	} else {
		first := r.IntN(7)
		days = append(days, weekdays[first])
		if second := r.IntN(7); second != first {
			if second < first {
				days = []string{weekdays[second], weekdays[first]}
			} else {
				days = append(days, weekdays[second])
			}
		}
	}
	return &fleet.Window{
		Days:     days,
		Start:    starts[r.IntN(len(starts))],
		Duration: durations[r.IntN(len(durations))],
		TimeZone: TimeZone(region),
	}
}
