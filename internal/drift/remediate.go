package drift

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/semver"
	"github.com/fleet-rollout/fleet/internal/spec"
)

// The remediation strategy: small batches, non-prod first, prod behind an
// approval, long bakes.
const (
	remediationBatch       = "5"
	remediationNonProdBake = 5 * time.Minute
	remediationProdBake    = 10 * time.Minute
)

// Phase selectors of the remediation strategy; together they cover every
// environment, so each included cluster falls in exactly one.
const (
	nonProdSelector = "env in (internal, non-prod)"
	prodSelector    = "env=prod"
)

// RemediationName is the name of the rollout that remediates product to
// version: "remediate-kafka-3-6-1".
func RemediationName(product, version string) string {
	var b strings.Builder
	b.WriteString("remediate-")
	dash := true
	for _, r := range strings.ToLower(product + "-" + version) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	name := strings.TrimRight(b.String(), "-")
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	return name
}

// Remediable reports whether a cluster on version have would be brought to
// version want by a remediation: it is behind it, or its version does not
// parse. Clusters ahead of want are never downgraded.
func Remediable(have, want string) bool {
	if sameVersion(have, want) {
		return false
	}
	c, err := semver.Compare(have, want)
	return err != nil || c < 0
}

// RemediationSpec writes a rollout spec (YAML, accepted by spec.Parse) that
// brings product's drifted clusters up to version:
//
//	name: remediate-<product>-<version>
//	target: {version: <version>}
//	selector: product=<product>, version<<version>
//	include: [the drifted clusters behind version, by ID]
//	strategy: non-prod (env in (internal, non-prod)), then prod (env=prod,
//	          requires approval), batches of 5, bakes of 5m and 10m
//	requirePlanApproval: true
//
// Only drifts of product whose cluster is behind version (or runs a version
// that does not parse) are included: clusters ahead of it are left out
// (a remediation never downgrades) and so are config-only drifts (the
// planner skips clusters already at the target version). The selector's
// version guard keeps clusters that fall behind after the spec is written
// in scope and keeps every cluster ahead of version out. A phase none of
// the included clusters falls in is left out, since the planner rejects an
// explicit phase that selects no cluster. It is an error when no drifted
// cluster of product is behind version.
func RemediationSpec(drifts []Drift, product, version string) ([]byte, error) {
	if product == "" {
		return nil, errors.New("remediation spec: no product")
	}
	if !slices.Contains(fleet.Products, product) {
		return nil, fmt.Errorf("remediation spec: unknown product %q (want one of %s)", product, strings.Join(fleet.Products, ", "))
	}
	if _, err := semver.Parse(version); err != nil {
		return nil, fmt.Errorf("remediation spec: target version: %w", err)
	}
	var ids []string
	seen := map[string]bool{}
	nonProd, prod := false, false
	for _, d := range drifts {
		if d.Product != product || seen[d.ClusterID] || d.ClusterID == "" || !Remediable(d.Version, version) {
			continue
		}
		seen[d.ClusterID] = true
		ids = append(ids, d.ClusterID)
		switch d.Environment {
		case fleet.EnvProd:
			prod = true
		case fleet.EnvInternal, fleet.EnvNonProd:
			nonProd = true
		default: // unknown: keep both phases
			prod, nonProd = true, true
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("remediation spec: no drifted %s cluster is behind %s: nothing to remediate", product, version)
	}
	slices.Sort(ids)

	r := spec.Rollout{
		Name: RemediationName(product, version),
		Description: fmt.Sprintf("Drift remediation: bring %d %s %s up to %s",
			len(ids), product, plural(len(ids), "cluster", "clusters"), version),
		Target:   spec.Target{Version: version},
		Selector: fmt.Sprintf("product=%s, version<%s", product, version),
		Include:  ids,
	}
	if nonProd {
		r.Strategy.Phases = append(r.Strategy.Phases, spec.Phase{
			Name: "non-prod", Selector: nonProdSelector, BatchSize: remediationBatch,
			Bake: spec.Duration(remediationNonProdBake),
		})
	}
	if prod {
		r.Strategy.Phases = append(r.Strategy.Phases, spec.Phase{
			Name: "prod", Selector: prodSelector, BatchSize: remediationBatch,
			Bake: spec.Duration(remediationProdBake), RequireApproval: true,
		})
	}
	r.RequirePlanApproval = true

	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Written by 'fleet drift': %s clusters behind %s.\n", product, version)
	fmt.Fprintf(&buf, "# Review it, then: fleet plan -f FILE; fleet start -f FILE\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&r); err != nil {
		return nil, fmt.Errorf("remediation spec: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("remediation spec: %w", err)
	}
	// The spec must be one the CLI and the worker accept.
	if _, err := spec.Parse(r.Name+".yaml", buf.Bytes()); err != nil {
		return nil, fmt.Errorf("remediation spec: the written spec does not parse: %w", err)
	}
	return buf.Bytes(), nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
