package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/fleet-rollout/fleet/internal/drift"
)

// defaultBy is what `fleet status` (no ID) breaks versions down by.
const defaultBy = "cloud,region,environment"

// countsLegend defines the counts status and watch print.
const countsLegend = "Counts: in flight = being changed now (applying, or holding: finishing its\n" +
	"current broker); held (paused, or stopped by an incident) and verifying (every\n" +
	"broker done, waiting for a healthy monitor read) are counted apart. In flight\n" +
	"plus held stay within the phase's concurrency; the counts add up to the total.\n" +
	"Relative times (\"21s ago\") are from this machine's clock."

const statusDetail = "With a rollout ID: the rollout's state from Temporal: one consistent snapshot\n" +
	"of the rollout and its running batches, and the workflow's execution status.\n" +
	"A rollout whose workflow was terminated, timed out or canceled before it ended\n" +
	"shows that status and the server's reason; its counts are the last recorded,\n" +
	"marked not live. --json adds \"execution\" (status, reason, identity) and \"stale\".\n" +
	countsLegend + "\n" +
	"Without one: the fleet's version distribution per product, and per product\n" +
	"within each cloud, region and environment (--by), from the inventory at\n" +
	"FLEET_INVENTORY; Temporal is not asked."

// parseBy splits "cloud, region,env" into canonical dimensions; "" and
// "none" mean none.
func parseBy(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return nil, nil
	}
	var out []string
	for _, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		d, err := drift.CanonicalDimension(part)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// fleetStatus is `fleet status` without a rollout ID.
func fleetStatus(ctx context.Context, e *env, cmd *command, by string, asJSON bool) error {
	dims, err := parseBy(by)
	if err != nil {
		return usagef(cmd.name, "status: --by: %v", err)
	}
	inv, err := e.loadInventory(ctx, e.config().Inventory)
	if err != nil {
		return err
	}
	dist, err := drift.Distribution(inv, dims...)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(e.stdout, dist)
	}
	renderFleet(e.stdout, dist)
	return nil
}

// versionsText is "3.6.1: 250 (90%), 3.5.2: 19 (7%)".
func versionsText(vs []drift.VersionCount, total int) string {
	parts := make([]string, 0, len(vs))
	for _, v := range vs {
		parts = append(parts, fmt.Sprintf("%s: %d (%s)", v.Version, v.Clusters, percent(v.Clusters, total)))
	}
	return strings.Join(parts, ", ")
}

// percent is n of total as a whole percentage; "<1%" for a few, never
// "100%" unless all.
func percent(n, total int) string {
	if total <= 0 || n <= 0 {
		return "0%"
	}
	if n == total {
		return "100%"
	}
	p := (n*100 + total/2) / total
	switch {
	case p < 1:
		return "<1%"
	case p >= 100:
		return ">99%"
	}
	return fmt.Sprintf("%d%%", p)
}

// renderFleet prints the fleet's version distribution.
func renderFleet(w io.Writer, d drift.VersionDistribution) {
	if d.Clusters == 0 {
		fmt.Fprintln(w, "Fleet: no clusters in the inventory.")
		return
	}
	fmt.Fprintf(w, "Fleet: %d %s, %d %s\n", d.Clusters, pluralize(d.Clusters, "cluster", "clusters"),
		len(d.Products), pluralize(len(d.Products), "product", "products"))
	fmt.Fprintf(w, "\nVersions by product (newest first):\n")
	tw := newTable(w, 2)
	fmt.Fprintln(tw, "  PRODUCT\tCLUSTERS\tVERSIONS")
	for _, g := range d.Products {
		fmt.Fprintf(tw, "  %s\t%d\t%s\n", g.Product, g.Clusters, versionsText(g.Versions, g.Clusters))
	}
	tw.Flush()
	for _, b := range d.By {
		fmt.Fprintf(w, "\nBy %s:\n", b.By)
		tw := newTable(w, 2)
		fmt.Fprintf(tw, "  %s\tPRODUCT\tCLUSTERS\tVERSIONS\n", strings.ToUpper(b.By))
		for _, g := range b.Groups {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\n", orDash(g.Value), g.Product, g.Clusters, versionsText(g.Versions, g.Clusters))
		}
		tw.Flush()
	}
}
