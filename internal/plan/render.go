package plan

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// RenderOptions tune Render's text.
type RenderOptions struct {
	// Clusters lists each batch's cluster IDs.
	Clusters bool
	// ExcludedIDs lists up to this many excluded cluster IDs per reason
	// (0: counts only).
	ExcludedIDs int
}

// Render writes the plan as text for `fleet plan`: a headline with the
// hash, the downgrades (clusters on a newer version than the target), each phase with its settings (and metric ordering), batch count and counts by product,
// cloud, region and environment, the skipped phases, and the exclusions
// by reason. For JSON, encode the Plan itself.
func Render(w io.Writer, p *Plan, opts ...RenderOptions) error {
	var o RenderOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "Plan %s: %s to version %s in %s, %s\n",
		p.Hash, plural(p.Total, "cluster"), p.Version, plural(len(p.Phases), "phase"), plural(p.Batches(), "batch"))
	if len(p.Config) > 0 {
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(p.Config)) {
			kv = append(kv, k+"="+p.Config[k])
		}
		fmt.Fprintf(bw, "Config: %s\n", strings.Join(kv, ", "))
	}
	if p.Downgrades > 0 {
		verb := "run"
		if p.Downgrades == 1 {
			verb = "runs"
		}
		fmt.Fprintf(bw, "Downgrades: %s %s a newer version and will go down to %s (allowDowngrade)\n",
			plural(p.Downgrades, "cluster"), verb, p.Version)
	}
	for i, ph := range p.Phases {
		n, largest, down := 0, 0, 0
		for _, b := range ph.Batches {
			n += len(b.Clusters)
			largest = max(largest, len(b.Clusters))
			for _, t := range b.Clusters {
				if t.Downgrade {
					down++
				}
			}
		}
		var notes []string
		notes = append(notes, fmt.Sprintf("%s of up to %d", plural(len(ph.Batches), "batch"), largest))
		notes = append(notes, fmt.Sprintf("concurrency %d", ph.Concurrency))
		if ph.Strict {
			notes = append(notes, "strict")
		}
		if ph.Bake > 0 {
			notes = append(notes, "bake "+ph.Bake.String())
		}
		if ph.RequireApproval {
			notes = append(notes, "requires approval")
		}
		if ph.OrderBy != "" {
			note := "ordered by " + ph.OrderBy
			if ph.Unordered > 0 {
				note += fmt.Sprintf(" (%d without a value, last)", ph.Unordered)
			}
			notes = append(notes, note)
		}
		if down > 0 {
			notes = append(notes, plural(down, "downgrade"))
		}
		fmt.Fprintf(bw, "\nPhase %d %s: %s, %s\n", i+1, ph.Name, plural(n, "cluster"), strings.Join(notes, ", "))
		if b := ph.Breakdown; b != nil {
			tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
			for _, row := range []struct {
				name   string
				counts map[string]int
			}{{"product", b.Product}, {"cloud", b.Cloud}, {"region", b.Region}, {"environment", b.Environment}} {
				if len(row.counts) > 0 {
					fmt.Fprintf(tw, "  %s\t%s\n", row.name, counts(row.counts))
				}
			}
			tw.Flush()
		}
		if o.Clusters {
			for _, b := range ph.Batches {
				ids := make([]string, len(b.Clusters))
				for j, t := range b.Clusters {
					ids[j] = t.ClusterID
					if t.Downgrade {
						ids[j] += " (downgrade from " + t.FromVersion + ")"
					}
				}
				fmt.Fprintf(bw, "  batch %d: %s\n", b.Number, strings.Join(ids, " "))
			}
		}
	}
	if len(p.Skipped) > 0 {
		fmt.Fprintf(bw, "\nSkipped phases (no cluster to change): %s\n", strings.Join(p.Skipped, ", "))
	}
	excluded := 0
	for _, n := range p.ExcludedCounts {
		excluded += n
	}
	if excluded > 0 {
		fmt.Fprintf(bw, "\nExcluded: %s\n", plural(excluded, "cluster"))
		byReason := map[string][]string{}
		for _, e := range p.Excluded {
			id := e.ClusterID
			if e.Detail != "" {
				id += " (" + e.Detail + ")"
			}
			byReason[e.Reason] = append(byReason[e.Reason], id)
		}
		reasons := sortedByCount(p.ExcludedCounts)
		rw, nw := 0, 0
		for _, reason := range reasons {
			rw = max(rw, len(reason))
			nw = max(nw, len(thousands(p.ExcludedCounts[reason])))
		}
		for _, reason := range reasons {
			line := fmt.Sprintf("  %-*s  %*s", rw, reason, nw, thousands(p.ExcludedCounts[reason]))
			if ids := byReason[reason]; o.ExcludedIDs > 0 && len(ids) > 0 {
				more := ""
				if len(ids) > o.ExcludedIDs {
					ids, more = ids[:o.ExcludedIDs], fmt.Sprintf(" and %d more", len(ids)-o.ExcludedIDs)
				}
				line += "  " + strings.Join(ids, ", ") + more
			}
			fmt.Fprintln(bw, line)
		}
	}
	return bw.Flush()
}

// counts formats "kafka 8, connect 4": largest first, then by name.
func counts(m map[string]int) string {
	var parts []string
	for _, k := range sortedByCount(m) {
		name := k
		if name == "" {
			name = "(none)"
		}
		parts = append(parts, name+" "+thousands(m[k]))
	}
	return strings.Join(parts, ", ")
}

func sortedByCount(m map[string]int) []string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if c := cmp.Compare(m[b], m[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return keys
}

func plural(n int, noun string) string {
	if n != 1 {
		if strings.HasSuffix(noun, "ch") {
			noun += "e"
		}
		noun += "s"
	}
	return thousands(n) + " " + noun
}

// thousands formats 1234567 as "1,234,567".
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}
