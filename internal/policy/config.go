package policy

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/selector"
)

// Config is the worker's policy: blackouts, protected clusters and access
// control. It is plain data, serialisable to JSON (and YAML) and back
// without loss, so a workflow can carry it in its state (see Snapshot).
//
// A nil *Config means no policy is configured: no blackouts, nothing
// protected, and every identity may take every action.
type Config struct {
	Blackouts   []Blackout   `json:"blackouts,omitempty" yaml:"blackouts,omitempty"`
	Protections []Protection `json:"protected,omitempty" yaml:"protected,omitempty"`
	// Access is nil when the policy file has no access section: access
	// control is then off, as for a nil Config.
	Access *Access `json:"access,omitempty" yaml:"access,omitempty"`
	// OpenAccess is set by "access: open": the file says explicitly that
	// there is no access control (Access is nil). A production worker
	// refuses a policy that has neither.
	OpenAccess bool `json:"openAccess,omitempty" yaml:"-"`
	// Stale is set on a Snapshot served in place of a policy file that no
	// longer loads: it is the last good policy, and Stale says why the
	// file was not read (file:line: reason). Never read from the file.
	Stale string `json:"stale,omitempty" yaml:"-"`
}

// Snapshot is the name under which workflows carry a Config: the same
// plain, JSON-serialisable value, with the same methods. Get one with
// (*Config).Snapshot, return it from an activity, and call Authorize,
// Blackout and Protected on it, or pass its address to NextStart.
type Snapshot = Config

// Blackout is a period in which no cluster it applies to may start.
//
// It applies to every cluster when it names no customers, clusters or
// selector (a global blackout); otherwise to the clusters named by any of
// them (customer in Customers, ID in Clusters, or matching Selector).
type Blackout struct {
	Name      string    `json:"name" yaml:"name"`
	Customers []string  `json:"customers,omitempty" yaml:"customers,omitempty"`
	Clusters  []string  `json:"clusters,omitempty" yaml:"clusters,omitempty"`
	Selector  string    `json:"selector,omitempty" yaml:"selector,omitempty"`
	Start     time.Time `json:"start" yaml:"start"`
	End       time.Time `json:"end" yaml:"end"`
	Reason    string    `json:"reason,omitempty" yaml:"reason,omitempty"`

	sel *selector.Selector // compiled Selector, when prepared
}

// Global reports whether the blackout applies to every cluster.
func (b *Blackout) Global() bool {
	return len(b.Customers) == 0 && len(b.Clusters) == 0 && b.Selector == ""
}

// AppliesTo reports whether the blackout covers cluster c (at any time).
func (b *Blackout) AppliesTo(c *fleet.Cluster) bool {
	return b.Global() || scopeMatches(b.Customers, b.Clusters, b.Selector, b.sel, c)
}

// ActiveAt reports whether t lies in [Start, End).
func (b *Blackout) ActiveAt(t time.Time) bool {
	return !t.Before(b.Start) && t.Before(b.End)
}

// describe is "black-friday (peak retail traffic)".
func (b *Blackout) describe() string {
	if b.Reason == "" {
		return b.Name
	}
	return b.Name + " (" + b.Reason + ")"
}

// Protection marks clusters that no rollout may touch unless an admin
// forces it (ActionForceProtected). It covers the clusters named by any of
// Clusters (IDs), Customers or Selector; it must name at least one.
type Protection struct {
	Clusters  []string `json:"clusters,omitempty" yaml:"clusters,omitempty"`
	Customers []string `json:"customers,omitempty" yaml:"customers,omitempty"`
	Selector  string   `json:"selector,omitempty" yaml:"selector,omitempty"`
	Reason    string   `json:"reason,omitempty" yaml:"reason,omitempty"`

	sel *selector.Selector
}

// Covers reports whether the protection covers cluster c.
func (p *Protection) Covers(c *fleet.Cluster) bool {
	return scopeMatches(p.Customers, p.Clusters, p.Selector, p.sel, c)
}

// scopeMatches reports whether c is named by customers, cluster IDs or the
// selector. A selector that does not parse (a Config built by hand or
// decoded without Prepare) matches everything: the policy fails closed.
func scopeMatches(customers, clusters []string, src string, sel *selector.Selector, c *fleet.Cluster) bool {
	if slices.Contains(clusters, c.ID) || (c.Customer != "" && slices.Contains(customers, c.Customer)) {
		return true
	}
	if src == "" {
		return false
	}
	if sel == nil {
		s, err := selector.Parse(src)
		if err != nil {
			return true
		}
		sel = s
	}
	return sel.MatchPtr(c)
}

// Blackout reports whether a blackout that applies to c is active at t.
// until is when c is next free of blackouts: the end of the active
// blackouts, followed through any that overlap or touch them (so two
// back-to-back blackouts give the end of the second). reason lists the
// blackouts involved, by start then name: "black-friday (peak retail
// traffic), acme-launch (customer launch)". A nil Config has no blackouts.
func (cfg *Config) Blackout(c fleet.Cluster, t time.Time) (active bool, until time.Time, reason string) {
	if cfg == nil {
		return false, time.Time{}, ""
	}
	var apply []*Blackout
	for i := range cfg.Blackouts {
		if b := &cfg.Blackouts[i]; b.End.After(b.Start) && b.AppliesTo(&c) {
			apply = append(apply, b)
		}
	}
	var involved []*Blackout
	for _, b := range apply {
		if b.ActiveAt(t) {
			involved = append(involved, b)
			if b.End.After(until) {
				until = b.End
			}
		}
	}
	if len(involved) == 0 {
		return false, time.Time{}, ""
	}
	for changed := true; changed; {
		changed = false
		for _, b := range apply {
			if !slices.Contains(involved, b) && !b.Start.After(until) && b.End.After(until) {
				involved = append(involved, b)
				until = b.End
				changed = true
			}
		}
	}
	slices.SortStableFunc(involved, func(a, b *Blackout) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	parts := make([]string, len(involved))
	for i, b := range involved {
		parts[i] = b.describe()
	}
	return true, until.UTC(), strings.Join(parts, ", ")
}

// Protected reports whether c is protected, with the reason of the first
// protection (in file order) that covers it. A protection without a
// reason gives "protected by policy (protected[N])". A nil Config protects
// nothing.
func (cfg *Config) Protected(c fleet.Cluster) (reason string, ok bool) {
	if cfg == nil {
		return "", false
	}
	for i := range cfg.Protections {
		if p := &cfg.Protections[i]; p.Covers(&c) {
			if p.Reason == "" {
				return fmt.Sprintf("protected by policy (protected[%d])", i), true
			}
			return p.Reason, true
		}
	}
	return "", false
}

// Prepare checks a Config built in code or decoded from JSON (Parse does
// this itself) and compiles its selectors, so matching need not parse them
// on every call. Without Prepare a decoded Config still works: selectors
// are parsed on each call, and one that does not parse matches every
// cluster. Prepare modifies cfg: call it before sharing cfg. The error is
// ValidationErrors without file positions.
func (cfg *Config) Prepare() error {
	if cfg == nil {
		return nil
	}
	errs := cfg.check(nil)
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// Snapshot returns a deep copy of the policy for a workflow to carry: the
// same plain, JSON-serialisable value, with list fields in a canonical
// order (identities' roles sorted, approver lists and scope lists sorted;
// blackouts and protections keep file order, which only affects which
// protection's reason is reported). A nil Config gives the zero Snapshot,
// which like nil allows everything.
func (cfg *Config) Snapshot() Snapshot {
	if cfg == nil {
		return Snapshot{}
	}
	out := Snapshot{OpenAccess: cfg.OpenAccess}
	if cfg.Blackouts != nil {
		out.Blackouts = make([]Blackout, len(cfg.Blackouts))
		for i, b := range cfg.Blackouts {
			b.Customers = sortedCopy(b.Customers)
			b.Clusters = sortedCopy(b.Clusters)
			out.Blackouts[i] = b
		}
	}
	if cfg.Protections != nil {
		out.Protections = make([]Protection, len(cfg.Protections))
		for i, p := range cfg.Protections {
			p.Customers = sortedCopy(p.Customers)
			p.Clusters = sortedCopy(p.Clusters)
			out.Protections[i] = p
		}
	}
	if a := cfg.Access; a != nil {
		ac := &Access{Default: a.Default, Identity: a.Identity}
		if a.People != nil {
			ac.People = make([]Person, len(a.People))
			for i, p := range a.People {
				ac.People[i] = Person{Name: p.Name, Keys: sortedCopy(p.Keys), Aliases: sortedCopy(p.Aliases)}
			}
			slices.SortFunc(ac.People, func(x, y Person) int { return strings.Compare(x.Name, y.Name) })
		}
		if a.Services != nil {
			ac.Services = make(map[string]Service, len(a.Services))
			for name, s := range a.Services {
				ac.Services[name] = Service{Keys: sortedCopy(s.Keys), Vouch: sortedCopy(s.Vouch)}
			}
		}
		if a.Roles != nil {
			ac.Roles = make(map[string][]Role, len(a.Roles))
			for id, rs := range a.Roles {
				rs = slices.Clone(rs)
				slices.SortFunc(rs, func(x, y Role) int { return cmp.Compare(x.rank(), y.rank()) })
				ac.Roles[id] = slices.Compact(rs)
			}
		}
		if a.Approvers != nil {
			ac.Approvers = make(map[string][]string, len(a.Approvers))
			for env, ids := range a.Approvers {
				ac.Approvers[env] = sortedCopy(ids)
				if ac.Approvers[env] == nil {
					ac.Approvers[env] = []string{}
				}
			}
		}
		out.Access = ac
	}
	return out
}

func sortedCopy(s []string) []string {
	if s == nil {
		return nil
	}
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
