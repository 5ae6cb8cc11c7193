package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/fleet-rollout/fleet/internal/drift"
	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/semver"
)

const driftDetail = "Compares every cluster in the inventory (FLEET_INVENTORY) with its product's\n" +
	"desired version: the one given with --product P --version V, otherwise the\n" +
	"version most of the product's clusters run (the fleet majority), and says so.\n" +
	"Prints the drift grouped and counted by reason, then every drifted cluster.\n" +
	"--write-spec FILE writes a rollout spec that brings the product's clusters\n" +
	"that are behind up to the desired version (non-prod first, then prod behind\n" +
	"an approval, batches of 5; never a downgrade). It does not overwrite FILE.\n" +
	"Review it, then run 'fleet plan -f FILE' and 'fleet start -f FILE'."

// driftReason counts the clusters that drift one way.
type driftReason struct {
	Reason         string `json:"reason"`
	Product        string `json:"product"`
	Version        string `json:"version,omitempty"`
	DesiredVersion string `json:"desiredVersion"`
	Clusters       int    `json:"clusters"`
	kind           string
}

// driftReport is what `fleet drift` shows (and prints with --json).
type driftReport struct {
	// Product is the --product filter, if any.
	Product string `json:"product,omitempty"`
	// Clusters is how many clusters were compared; Drifted how many of them drift.
	Clusters int            `json:"clusters"`
	Drifted  int            `json:"drifted"`
	Targets  []drift.Target `json:"targets"`
	Reasons  []driftReason  `json:"reasons"`
	Drifts   []drift.Drift  `json:"drifts"`
}

// driftArgs are the parsed flags of `fleet drift`.
type driftArgs struct {
	product, version, specFile string
	asJSON                     bool
}

func cmdDrift(e *env, cmd *command, fs *pflag.FlagSet) runFunc {
	var a driftArgs
	fs.StringVar(&a.product, "product", "", "only this `PRODUCT`'s clusters ("+strings.Join(fleet.Products, ", ")+")")
	fs.StringVar(&a.version, "version", "", "the product's desired `VERSION` (default: the fleet majority); needs --product")
	fs.StringVar(&a.specFile, "write-spec", "", "write a remediation rollout spec to `FILE`")
	return func(ctx context.Context, pos []string) error {
		if err := noArgs(cmd, pos); err != nil {
			return err
		}
		a.asJSON = e.asJSON()
		if err := a.check(cmd); err != nil {
			return err
		}
		return runDrift(ctx, e, a)
	}
}

// check normalizes and checks drift's flags.
func (a *driftArgs) check(cmd *command) error {
	a.product, a.version, a.specFile = strings.TrimSpace(a.product), strings.TrimSpace(a.version), strings.TrimSpace(a.specFile)
	switch {
	case a.product != "" && !slices.Contains(fleet.Products, a.product):
		return usagef(cmd.name, "drift: --product: unknown product %q (want one of %s)", a.product, strings.Join(fleet.Products, ", "))
	case a.version != "" && a.product == "":
		return usagef(cmd.name, "drift: --version needs --product (each product has its own versions)")
	case a.version != "" && !semver.Valid(a.version):
		_, err := semver.Parse(a.version)
		return usagef(cmd.name, "drift: --version: %v", err)
	}
	return nil
}

func runDrift(ctx context.Context, e *env, a driftArgs) error {
	inv, err := e.loadInventory(ctx, e.config().Inventory)
	if err != nil {
		return err
	}
	rep := buildDriftReport(inv, a.product, a.version)
	if a.asJSON {
		if err := writeJSON(e.stdout, rep); err != nil {
			return err
		}
	} else {
		renderDrift(e.stdout, rep)
	}
	if a.specFile == "" {
		return nil
	}
	// In JSON mode stdout holds the report only.
	note := e.stdout
	if a.asJSON {
		note = e.stderr
	}
	return writeRemediationSpec(note, rep, a.specFile)
}

// buildDriftReport compares the clusters of product ("" for all) with the
// desired version ("" for the fleet majority).
func buildDriftReport(inv []fleet.Cluster, product, version string) driftReport {
	clusters := inv
	if product != "" {
		clusters = nil
		for _, c := range inv {
			if c.Product == product {
				clusters = append(clusters, c)
			}
		}
	}
	desired := drift.Desired{}
	if version != "" {
		desired.Versions = map[string]string{product: version}
	}
	rep := driftReport{
		Product:  product,
		Clusters: len(clusters),
		Targets:  drift.Targets(clusters, desired),
		Drifts:   drift.Find(clusters, desired),
	}
	if rep.Targets == nil {
		rep.Targets = []drift.Target{}
	}
	if rep.Drifts == nil {
		rep.Drifts = []drift.Drift{}
	}
	type key struct{ reason, product, version, desired string }
	counts := map[key]*driftReason{}
	drifted := map[string]bool{}
	for _, d := range rep.Drifts {
		drifted[d.ClusterID] = true
		k := key{d.Reason, d.Product, d.Version, d.DesiredVersion}
		if d.Kind == drift.KindConfig {
			k.version = "" // the key and value say it; the version does not matter
		}
		r := counts[k]
		if r == nil {
			r = &driftReason{Reason: k.reason, Product: k.product, Version: k.version, DesiredVersion: k.desired, kind: d.Kind}
			counts[k] = r
		}
		r.Clusters++
	}
	rep.Drifted = len(drifted)
	rep.Reasons = []driftReason{}
	for _, r := range counts {
		rep.Reasons = append(rep.Reasons, *r)
	}
	slices.SortFunc(rep.Reasons, func(a, b driftReason) int {
		return cmp.Or(
			cmp.Compare(kindRank(a.kind), kindRank(b.kind)),
			cmp.Compare(a.Reason, b.Reason),
			cmp.Compare(a.Product, b.Product),
			cmp.Compare(b.Clusters, a.Clusters),
			cmp.Compare(a.Version, b.Version),
		)
	})
	return rep
}

// kindCounts is "18 behind the desired version, 2 ahead of the desired
// version": clusters per kind of drift.
func kindCounts(ds []drift.Drift) string {
	clusters := map[string]map[string]bool{}
	for _, d := range ds {
		if clusters[d.Kind] == nil {
			clusters[d.Kind] = map[string]bool{}
		}
		clusters[d.Kind][d.ClusterID] = true
	}
	kinds := []struct{ kind, text string }{
		{drift.KindBehind, drift.ReasonBehind},
		{drift.KindAhead, drift.ReasonAhead},
		{drift.KindVersion, drift.ReasonDiffers},
		{drift.KindConfig, drift.ReasonConfig},
	}
	var parts []string
	for _, k := range kinds {
		if n := len(clusters[k.kind]); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, k.text))
		}
	}
	return strings.Join(parts, ", ")
}

func kindRank(k string) int {
	switch k {
	case drift.KindBehind:
		return 0
	case drift.KindAhead:
		return 1
	case drift.KindVersion:
		return 2
	}
	return 3
}

// fromText says where a desired version comes from.
func fromText(t drift.Target) string {
	if t.From == drift.FromMajority {
		return "fleet majority"
	}
	return "given (--version)"
}

// renderDrift prints a drift report: the desired versions, the drift by
// reason, then the drifted clusters.
func renderDrift(w io.Writer, rep driftReport) {
	if rep.Clusters == 0 {
		if rep.Product != "" {
			fmt.Fprintf(w, "No %s clusters in the inventory.\n", rep.Product)
		} else {
			fmt.Fprintln(w, "No clusters in the inventory.")
		}
		return
	}
	fmt.Fprintln(w, "Desired versions:")
	tw := newTable(w, 2)
	fmt.Fprintln(tw, "  PRODUCT\tVERSION\tFROM\tRUNNING IT")
	majority := false
	for _, t := range rep.Targets {
		majority = majority || t.From == drift.FromMajority
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d of %d (%s)\n", t.Product, orDash(t.Version), fromText(t),
			t.OnVersion, t.Clusters, percent(t.OnVersion, t.Clusters))
	}
	tw.Flush()
	if majority {
		fmt.Fprintln(w, "A fleet-majority version is the one most of the product's clusters run; choose another with --product P --version V.")
	}

	if len(rep.Drifts) == 0 {
		fmt.Fprintf(w, "\nNo drift: all %d clusters run their product's desired version.\n", rep.Clusters)
		return
	}
	fmt.Fprintf(w, "\nDrift: %d of %d clusters (%s): %s\n", rep.Drifted, rep.Clusters, percent(rep.Drifted, rep.Clusters), kindCounts(rep.Drifts))
	tw = newTable(w, 2)
	fmt.Fprintln(tw, "  CLUSTERS\tREASON\tPRODUCT\tVERSION\tDESIRED")
	for _, r := range rep.Reasons {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\n", r.Clusters, r.Reason, r.Product, orDash(r.Version), r.DesiredVersion)
	}
	tw.Flush()

	fmt.Fprintf(w, "\nDrifted clusters:\n")
	tw = newTable(w, 2)
	fmt.Fprintln(tw, "  CLUSTER\tPRODUCT\tCLOUD\tREGION\tENVIRONMENT\tVERSION\tDESIRED\tREASON")
	for _, d := range rep.Drifts {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ClusterID, d.Product, orDash(d.Cloud), orDash(d.Region),
			orDash(d.Environment), d.Version, d.DesiredVersion, d.Reason)
	}
	tw.Flush()
}

// writeRemediationSpec writes the remediation spec of the report's product
// (or of the only product with clusters behind) to path, which must not
// exist, and tells w what it wrote.
func writeRemediationSpec(w io.Writer, rep driftReport, path string) error {
	product := rep.Product
	if product == "" {
		var behind []string
		for _, d := range rep.Drifts {
			if drift.Remediable(d.Version, d.DesiredVersion) && !slices.Contains(behind, d.Product) {
				behind = append(behind, d.Product)
			}
		}
		switch len(behind) {
		case 0:
			return errors.New("drift: --write-spec: no cluster is behind its product's desired version: nothing to remediate")
		case 1:
			product = behind[0]
		default:
			slices.Sort(behind)
			return usagef("drift", "drift: --write-spec writes one product's spec: give --product (clusters are behind in %s)", strings.Join(behind, ", "))
		}
	}
	version := ""
	for _, t := range rep.Targets {
		if t.Product == product {
			version = t.Version
		}
	}
	if version == "" {
		return fmt.Errorf("drift: --write-spec: no %s clusters in the inventory", product)
	}
	data, err := drift.RemediationSpec(rep.Drifts, product, version)
	if err != nil {
		return fmt.Errorf("drift: --write-spec: %w", err)
	}
	included, ahead := 0, 0
	for _, d := range rep.Drifts {
		if d.Product != product || d.Kind == drift.KindConfig {
			continue
		}
		if drift.Remediable(d.Version, version) {
			included++
		} else {
			ahead++
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("drift: --write-spec: %s exists: not overwritten (remove it or choose another file)", path)
	}
	if err != nil {
		return fmt.Errorf("drift: --write-spec: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("drift: --write-spec: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("drift: --write-spec: %w", err)
	}
	name := drift.RemediationName(product, version)
	fmt.Fprintf(w, "\nWrote %s: rollout %q brings %d %s %s up to %s.\n", path, name, included, product,
		pluralize(included, "cluster", "clusters"), version)
	if ahead > 0 {
		fmt.Fprintf(w, "Left out %d %s ahead of %s: a remediation never downgrades.\n", ahead,
			pluralize(ahead, "cluster", "clusters"), version)
	}
	fmt.Fprintf(w, "Next: fleet plan -f %s   then: fleet start -f %s\n", shellQuote(path), shellQuote(path))
	return nil
}

func pluralize(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
