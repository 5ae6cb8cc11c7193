// Package drift describes what the fleet runs and where it departs from
// what it should run: version distributions by product and by cloud,
// region or environment; clusters whose version or config differs from
// the desired state; and a conservative rollout spec that brings the
// clusters left behind up to the desired version.
//
// It is pure: no Temporal, no network. Every result is sorted, so the same
// inventory gives the same output.
package drift

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/semver"
)

// Dimensions Distribution can break the fleet down by.
const (
	ByCloud       = "cloud"
	ByRegion      = "region"
	ByEnvironment = "environment"
	ByTier        = "tier"
)

// Dimensions lists the accepted dimension names ("env" is accepted for
// environment too).
var Dimensions = []string{ByCloud, ByRegion, ByEnvironment, ByTier}

// VersionCount is how many clusters run one version.
type VersionCount struct {
	Version  string `json:"version"`
	Clusters int    `json:"clusters"`
}

// Group is the version distribution of one product's clusters, within one
// value of a dimension (Value is empty for the whole product).
type Group struct {
	Value    string `json:"value,omitempty"`
	Product  string `json:"product"`
	Clusters int    `json:"clusters"`
	// Versions, newest first (versions that do not parse last, by name;
	// spellings of one version, like "v3.7" and "3.7.0", by count).
	Versions []VersionCount `json:"versions"`
}

// Breakdown is the distribution by one dimension.
type Breakdown struct {
	By     string  `json:"by"`
	Groups []Group `json:"groups"`
}

// VersionDistribution is what Distribution returns.
type VersionDistribution struct {
	Clusters int `json:"clusters"`
	// Products holds one Group per product (no Value), by product name.
	Products []Group `json:"products"`
	// By holds one Breakdown per requested dimension, in the order asked.
	By []Breakdown `json:"by,omitempty"`
}

// CanonicalDimension returns the canonical name of a dimension ("env" is
// environment) or an error naming the accepted ones.
func CanonicalDimension(by string) (string, error) {
	d := strings.ToLower(strings.TrimSpace(by))
	if d == "env" {
		d = ByEnvironment
	}
	if !slices.Contains(Dimensions, d) {
		return "", fmt.Errorf("unknown dimension %q (want one of %s)", by, strings.Join(Dimensions, ", "))
	}
	return d, nil
}

func dimensionValue(c *fleet.Cluster, by string) string {
	switch by {
	case ByCloud:
		return c.Cloud
	case ByRegion:
		return c.Region
	case ByEnvironment:
		return c.Environment
	case ByTier:
		return c.Tier
	}
	return ""
}

// compareValues orders a dimension's values: environments in rollout order
// (fleet.Environments), everything else by name.
func compareValues(by, a, b string) int {
	if by == ByEnvironment {
		ia, ib := slices.Index(fleet.Environments, a), slices.Index(fleet.Environments, b)
		if ia < 0 {
			ia = len(fleet.Environments)
		}
		if ib < 0 {
			ib = len(fleet.Environments)
		}
		if c := cmp.Compare(ia, ib); c != 0 {
			return c
		}
	}
	return cmp.Compare(a, b)
}

// Distribution counts the versions clusters run, per product and, for
// each dimension in by (cloud, region, environment, tier; duplicates are
// ignored), per product within each value of the dimension.
func Distribution(clusters []fleet.Cluster, by ...string) (VersionDistribution, error) {
	var dims []string
	for _, b := range by {
		d, err := CanonicalDimension(b)
		if err != nil {
			return VersionDistribution{}, err
		}
		if !slices.Contains(dims, d) {
			dims = append(dims, d)
		}
	}
	out := VersionDistribution{Clusters: len(clusters), Products: groups(clusters, "")}
	for _, d := range dims {
		out.By = append(out.By, Breakdown{By: d, Groups: groups(clusters, d)})
	}
	return out, nil
}

// groups counts versions per (dimension value, product); by "" is per
// product only.
func groups(clusters []fleet.Cluster, by string) []Group {
	type key struct{ value, product string }
	counts := map[key]map[string]int{}
	for i := range clusters {
		c := &clusters[i]
		k := key{product: c.Product}
		if by != "" {
			k.value = dimensionValue(c, by)
		}
		if counts[k] == nil {
			counts[k] = map[string]int{}
		}
		counts[k][c.Version]++
	}
	out := make([]Group, 0, len(counts))
	for k, vs := range counts {
		g := Group{Value: k.value, Product: k.product}
		for v, n := range vs {
			g.Clusters += n
			g.Versions = append(g.Versions, VersionCount{Version: v, Clusters: n})
		}
		slices.SortFunc(g.Versions, func(a, b VersionCount) int {
			return cmp.Or(semverOrder(b.Version, a.Version), cmp.Compare(b.Clusters, a.Clusters), cmp.Compare(a.Version, b.Version))
		})
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b Group) int {
		return cmp.Or(compareValues(by, a.Value, b.Value), cmp.Compare(a.Product, b.Product))
	})
	return out
}

// semverOrder is compareVersions without its final tie-break by name:
// "v3.7" and "3.7.0" are equal.
func semverOrder(a, b string) int {
	va, ea := semver.Parse(a)
	vb, eb := semver.Parse(b)
	if ea == nil && eb == nil {
		return va.Compare(vb)
	}
	return compareVersions(a, b)
}

// compareVersions orders versions semantically; a version that does not
// parse sorts before every one that does, and such versions by name.
func compareVersions(a, b string) int {
	va, ea := semver.Parse(a)
	vb, eb := semver.Parse(b)
	switch {
	case ea == nil && eb == nil:
		if c := va.Compare(vb); c != 0 {
			return c
		}
		return cmp.Compare(a, b) // "v3.7" and "3.7.0": still a fixed order
	case ea != nil && eb != nil:
		return cmp.Compare(a, b)
	case ea != nil:
		return -1
	}
	return 1
}

// Majority returns the version most of product's clusters run, how many
// run it and how many clusters the product has. A tie goes to the newest
// version. It returns "" when the product has no clusters.
func Majority(clusters []fleet.Cluster, product string) (version string, n, total int) {
	counts := map[string]int{}
	for i := range clusters {
		if clusters[i].Product == product {
			counts[clusters[i].Version]++
			total++
		}
	}
	for v, c := range counts {
		if c > n || (c == n && compareVersions(v, version) > 0) {
			version, n = v, c
		}
	}
	return version, n, total
}
