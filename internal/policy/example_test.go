package policy_test

import (
	"fmt"
	"time"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/policy"
)

// A workflow receives a Snapshot from an activity that loaded the policy
// file, then asks it who may act and when a cluster may start.
func Example() {
	cfg, err := policy.Parse("policy.yaml", []byte(`
blackouts:
  - {name: black-friday, start: 2026-11-27T00:00:00Z, end: 2026-11-30T00:00:00Z, reason: "peak retail traffic"}
protected:
  - {selector: "label.tier=critical-bank", reason: "never touch without an admin"}
access:
  roles: {alice: [operator], bob: [approver], carol: [admin]}
  approvers: {prod: [bob, carol]}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	snap := cfg.Snapshot() // returned by the activity, JSON in between

	fmt.Println(snap.Authorize("alice", policy.ActionApprove, fleet.EnvProd))
	fmt.Println(snap.Authorize("bob", policy.ActionApprove, fleet.EnvProd))
	fmt.Println(policy.TwoPersonRule("bob", "bob", fleet.EnvProd))

	c := fleet.Cluster{ID: "lkc-00042", Customer: "cust-042", Environment: fleet.EnvProd,
		Labels: map[string]string{"tier": "critical-bank"},
		Window: &fleet.Window{Days: []string{"sat"}, Start: "02:00", Duration: "4h", TimeZone: "Europe/Berlin"}}
	fmt.Println(snap.Protected(c))

	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC) // workflow.Now(ctx)
	at, reason, err := policy.NextStart(c, now, &snap, false)
	fmt.Println(at.UTC(), err)
	fmt.Println(reason)
	// Output:
	// alice holds operator; approve in prod needs approver
	// <nil>
	// two-person rule: bob started this rollout and cannot also approve it in prod; a second person must approve
	// never touch without an admin true
	// 2026-12-05 01:00:00 +0000 UTC <nil>
	// blackout black-friday (peak retail traffic) until 2026-11-30T00:00:00Z, then maintenance window opens Sat 02:00 Europe/Berlin (2026-12-05T01:00:00Z)
}

// WindowAt in the week Europe/Berlin springs forward: 02:00 does not exist
// on 2026-03-29, so the window opens at 03:00, the first valid instant, and
// stays open its full two hours.
func ExampleWindowAt() {
	w := fleet.Window{Days: []string{"sun"}, Start: "02:00", Duration: "2h", TimeZone: "Europe/Berlin"}
	open, opens, closes, err := policy.WindowAt(w, time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC))
	fmt.Println(open, opens.Format("Mon Jan 2 15:04 MST"), closes.Format("15:04 MST"), err)
	// Output: false Sun Mar 29 03:00 CEST 05:00 CEST <nil>
}
