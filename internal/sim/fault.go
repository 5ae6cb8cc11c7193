package sim

import (
	"errors"
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/monitors"
)

// Fault makes applies of a version misbehave on some clusters. Empty
// attributes match anything. Which clusters within Fraction are hit is fixed
// by a hash of the cluster ID, so tests can predict it with Trips.
type Fault struct {
	// Version is the version being applied that carries the fault.
	Version string `json:"version,omitempty"`
	Product string `json:"product,omitempty"`
	Cloud   string `json:"cloud,omitempty"`
	Region  string `json:"region,omitempty"`
	// Monitor is the catalog monitor (monitors.ByName) that goes to Alert on
	// a hit cluster from its first broker restart on Version. It also
	// restricts the fault to the monitor's product.
	Monitor string `json:"monitor,omitempty"`
	// Fraction of the matching clusters that are hit, in (0, 1].
	Fraction float64 `json:"fraction"`
	// FailApply makes the apply fail after its first broker.
	FailApply bool `json:"failApply,omitempty"`
}

// Trips reports whether applying version to cluster c hits this fault.
func (f Fault) Trips(c fleet.Cluster, version string) bool {
	if f.Version != "" && f.Version != version {
		return false
	}
	product := f.Product
	if f.Monitor != "" {
		mp, ok := monitorProduct[f.Monitor]
		if !ok || (product != "" && product != mp) {
			return false
		}
		product = mp
	}
	switch {
	case product != "" && product != c.Product,
		f.Cloud != "" && f.Cloud != c.Cloud,
		f.Region != "" && f.Region != c.Region:
		return false
	}
	return Bucket(c.ID) < f.Fraction
}

// monitorProduct maps each catalog monitor to the product it watches.
var monitorProduct = func() map[string]string {
	m := map[string]string{}
	for _, mon := range monitors.Default() {
		m[mon.Name] = mon.Product
	}
	return m
}()

// Bucket places a cluster ID in [0, 1): a fault with Fraction x hits the
// matching clusters whose bucket is below x.
func Bucket(clusterID string) float64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(clusterID))
	return float64(h.Sum64()%10000) / 10000
}

// Validate reports whether the fault is well formed.
func (f Fault) Validate() error {
	if !(f.Fraction > 0 && f.Fraction <= 1) {
		return fmt.Errorf("fraction must be in (0, 1], got %v", f.Fraction)
	}
	if f.Monitor == "" && !f.FailApply {
		return errors.New("fault has no effect: set monitor, failApply or both")
	}
	if f.Product != "" && !slices.Contains(fleet.Products, f.Product) {
		return fmt.Errorf("unknown product %q (want one of %v)", f.Product, fleet.Products)
	}
	if f.Monitor != "" {
		m, ok := monitors.ByName(f.Monitor)
		if !ok {
			return fmt.Errorf("unknown monitor %q", f.Monitor)
		}
		if f.Product != "" && f.Product != m.Product {
			return fmt.Errorf("monitor %q watches product %s, not %s", f.Monitor, m.Product, f.Product)
		}
	}
	if f.Cloud != "" && !slices.Contains(fleet.Clouds, f.Cloud) {
		return fmt.Errorf("unknown cloud %q (want one of %v)", f.Cloud, fleet.Clouds)
	}
	if f.Region != "" {
		known := false
		for cloud, regions := range fleet.Regions {
			if (f.Cloud == "" || f.Cloud == cloud) && slices.Contains(regions, f.Region) {
				known = true
			}
		}
		if !known {
			return fmt.Errorf("unknown region %q for cloud %q", f.Region, f.Cloud)
		}
	}
	return nil
}

// ValidateFaults checks every fault and names the first bad one.
func ValidateFaults(faults []Fault) error {
	for i, f := range faults {
		if err := f.Validate(); err != nil {
			return fmt.Errorf("fault %d: %w", i, err)
		}
	}
	return nil
}
