package drift

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/semver"
)

// Desired is the state each product's clusters should be in.
type Desired struct {
	// Versions maps a product to the version its clusters should run. For
	// a product not listed, the desired version is the fleet's majority:
	// the version most of the product's clusters run (Majority).
	Versions map[string]string `json:"versions,omitempty"`
	// Config maps a product to the config entries its clusters should have.
	Config map[string]map[string]string `json:"config,omitempty"`
	// ConfigOf returns the config a cluster reports, or nil when it is not
	// known (the cluster's config is then not compared). The inventory
	// model (fleet.Cluster) carries no config, so with a nil ConfigOf
	// config is not compared at all.
	ConfigOf func(c fleet.Cluster) map[string]string `json:"-"`
}

// Where a desired version comes from.
const (
	FromDesired  = "desired"
	FromMajority = "fleet majority"
)

// Target is the desired version of one product and where it comes from.
type Target struct {
	Product string `json:"product"`
	Version string `json:"version"`
	// From is FromDesired or FromMajority.
	From string `json:"from"`
	// Clusters is how many clusters the product has; OnVersion how many of
	// them run Version already.
	Clusters  int `json:"clusters"`
	OnVersion int `json:"onVersion"`
}

// Targets resolves the desired version of every product that has clusters
// or a desired version, sorted by product. A product listed in
// desired.Versions with no clusters has Clusters 0.
func Targets(clusters []fleet.Cluster, desired Desired) []Target {
	products := map[string]bool{}
	for i := range clusters {
		products[clusters[i].Product] = true
	}
	for p := range desired.Versions {
		products[p] = true
	}
	out := make([]Target, 0, len(products))
	for _, p := range slices.Sorted(maps.Keys(products)) {
		t := Target{Product: p, From: FromDesired}
		if v, ok := desired.Versions[p]; ok && v != "" {
			t.Version = v
			for i := range clusters {
				if clusters[i].Product == p {
					t.Clusters++
					if sameVersion(clusters[i].Version, v) {
						t.OnVersion++
					}
				}
			}
		} else {
			t.From = FromMajority
			t.Version, t.OnVersion, t.Clusters = Majority(clusters, p)
		}
		out = append(out, t)
	}
	return out
}

// Kinds of drift.
const (
	KindBehind  = "behind"
	KindAhead   = "ahead"
	KindVersion = "version" // a version that does not parse differs
	KindConfig  = "config"
)

// Reasons, as Drift.Reason says them (config reasons add key=value).
const (
	ReasonBehind  = "behind the desired version"
	ReasonAhead   = "ahead of the desired version"
	ReasonDiffers = "differs from the desired version"
	ReasonConfig  = "config differs"
)

// Drift is one way one cluster departs from the desired state. A cluster
// may drift in several ways (its version and config keys).
type Drift struct {
	ClusterID   string `json:"clusterId"`
	Product     string `json:"product"`
	Cloud       string `json:"cloud"`
	Region      string `json:"region"`
	Environment string `json:"environment"`
	// Version is the version the cluster reports.
	Version string `json:"version"`
	// DesiredVersion is the product's desired version and DesiredFrom
	// where it comes from (FromDesired or FromMajority).
	DesiredVersion string `json:"desiredVersion"`
	DesiredFrom    string `json:"desiredFrom"`
	// Kind is KindBehind, KindAhead, KindVersion or KindConfig.
	Kind string `json:"kind"`
	// Reason says it in words: "behind the desired version", "ahead of the
	// desired version", "differs from the desired version" (a version that
	// does not parse) or "config differs: key=value (want value)".
	Reason string `json:"reason"`
	// Key, Have and Want are set for config drift; Have is "" when the
	// cluster does not set the key.
	Key  string `json:"key,omitempty"`
	Have string `json:"have,omitempty"`
	Want string `json:"want,omitempty"`
}

// Find lists every drift from desired in clusters, sorted by product,
// cluster ID, then version drift before config drift (config keys in
// order). See Desired for how desired versions and configs are found.
func Find(clusters []fleet.Cluster, desired Desired) []Drift {
	want := map[string]Target{}
	for _, t := range Targets(clusters, desired) {
		want[t.Product] = t
	}
	var out []Drift
	for i := range clusters {
		c := clusters[i]
		t := want[c.Product]
		base := Drift{
			ClusterID: c.ID, Product: c.Product, Cloud: c.Cloud, Region: c.Region, Environment: c.Environment,
			Version: c.Version, DesiredVersion: t.Version, DesiredFrom: t.From,
		}
		if t.Version != "" && !sameVersion(c.Version, t.Version) {
			d := base
			switch cmpVersion(c.Version, t.Version) {
			case -1:
				d.Kind, d.Reason = KindBehind, ReasonBehind
			case 1:
				d.Kind, d.Reason = KindAhead, ReasonAhead
			default:
				d.Kind, d.Reason = KindVersion, ReasonDiffers
			}
			out = append(out, d)
		}
		wantCfg := desired.Config[c.Product]
		if len(wantCfg) == 0 || desired.ConfigOf == nil {
			continue
		}
		have := desired.ConfigOf(c)
		if have == nil {
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(wantCfg)) {
			h, ok := have[k]
			if ok && h == wantCfg[k] {
				continue
			}
			d := base
			d.Kind, d.Key, d.Have, d.Want = KindConfig, k, h, wantCfg[k]
			shown := h
			if !ok {
				shown = "<unset>"
			}
			d.Reason = fmt.Sprintf("%s: %s=%s (want %s)", ReasonConfig, k, shown, wantCfg[k])
			out = append(out, d)
		}
	}
	slices.SortStableFunc(out, func(a, b Drift) int {
		return cmp.Or(
			cmp.Compare(a.Product, b.Product),
			cmp.Compare(a.ClusterID, b.ClusterID),
			cmp.Compare(kindOrder(a.Kind), kindOrder(b.Kind)),
			cmp.Compare(a.Key, b.Key),
		)
	})
	return out
}

func kindOrder(k string) int {
	if k == KindConfig {
		return 1
	}
	return 0
}

// sameVersion is semantic equality ("v3.7" = "3.7.0"), else string equality.
func sameVersion(a, b string) bool {
	if a == b {
		return true
	}
	c, err := semver.Compare(a, b)
	return err == nil && c == 0
}

// cmpVersion is -1 or +1 as a is older or newer than b, and 0 when either
// does not parse (or they are equal).
func cmpVersion(a, b string) int {
	c, err := semver.Compare(a, b)
	if err != nil {
		return 0
	}
	return c
}
