// Package policy decides when a cluster may be changed and who may do what:
// weekly maintenance windows in the cluster's own time zone (WindowAt),
// blackouts and protected clusters from the worker's policy file (Load,
// Parse, Config.Blackout, Config.Protected), the earliest allowed start
// (NextStart), and role-based access control (Config.Authorize,
// TwoPersonRule).
//
// The package is pure and deterministic, so workflow code may call it:
// no Temporal, no network, no clock (callers pass the time, e.g.
// workflow.Now), no goroutines, no randomness, and no result depends on
// map iteration order. Time zones come from the embedded tzdata, so
// results do not depend on the machine's zoneinfo.
//
// A Config is plain data that survives a JSON round trip: an activity can
// Load the policy file and return cfg.Snapshot(); the workflow then calls
// snap.Authorize, snap.Blackout, snap.Protected and NextStart(c, now,
// &snap, emergency) on the value it received. A nil *Config means no
// policy: nothing blacked out or protected, every action allowed.
package policy
