package spec_test

import (
	"fmt"

	"github.com/fleet-rollout/fleet/internal/spec"
)

// A complete rollout spec. Only name, target.version and a strategy (a
// preset or phases) are required.
const exampleSpec = `
name: kafka-3-7-1                  # DNS-label slug; the workflow ID is rollout/<name>
description: Kafka 3.7.1 with the fetch-session fix
requester: jane@example.com        # optional; the CLI fills in the user
target:
  version: 3.7.1                   # semantic version
  config:                          # optional key/values pushed with it
    log.retention.hours: "72"
selector: product=kafka, version<3.7.1, label.team!=frozen
include: [lkc-special]             # added even if the selector misses them
exclude: [lkc-fragile]             # never touched
strategy:
  preset: canary-then-waves        # or emergency, all-at-once-nonprod; phases below override
  phases:
    - name: canary
      selector: env=internal       # narrows the rollout's selection; phases must not overlap
      batchSize: 5                 # a count, or a percentage of the phase: 10%, 2.5%
      strict: true                 # waves instead of a sliding window
      bake: 1m                     # watch each batch this long after it applies
    - name: non-prod
      selector: env=non-prod
      batchSize: 10%
      concurrency: 20              # default: one batch's size
      bake: 2m
    - name: prod
      selector: env=prod
      batchSize: 5%
      bake: 10m
      requireApproval: true        # gate the phase on an approval
requirePlanApproval: true          # approve the plan's hash before anything starts
allowDowngrade: false              # true lets it move clusters on a newer version down to the
                                   # target; planning refuses a downgrade without it
monitoring:
  interval: 15s                    # default 10s
  disabled: false
applyTimeout: 45m                  # one cluster's apply; default 30m
orderBy: {metric: cpu, direction: desc}  # optional: each phase's clusters by a Datadog metric
                                   # (cpu, throughput, storage, partitions) before batching;
                                   # desc (default) or asc; a phase's own orderBy replaces it
`

func ExampleParse() {
	r, err := spec.Parse("rollout.yaml", []byte(exampleSpec))
	if err != nil {
		fmt.Println(err)
		return
	}
	r.Normalize()
	fmt.Println(r.Name, r.Target.Version, len(r.Strategy.Phases), "phases,", r.Monitoring.Interval, r.ApplyTimeout)

	_, err = spec.Parse("rollout.yaml", []byte("name: r1\ntarget: {version: 3.7.1}\nstrategy:\n  phases:\n    - name: prod\n      batchSize: ten\n"))
	fmt.Println(err)
	// Output:
	// kafka-3-7-1 3.7.1 3 phases, 15s 45m0s
	// rollout.yaml:6: strategy.phases[0].batchSize: must be a count like 25 or a percentage like 10%
}
