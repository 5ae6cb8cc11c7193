package spec

import (
	"reflect"
	"slices"
	"time"
)

// Shipped strategy presets, named by Strategy.Preset.
//
// Each preset phase narrows by environment (and cloud); a selected cluster
// that no phase of the strategy matches is left out of the plan with
// plan.ReasonNoPhase. Phases of a preset that select no clusters are skipped
// by the planner (an explicit phase that selects none is an error), and a
// skipped phase's approval gate moves to the next phase that runs.
const (
	// PresetCanaryThenWaves is the default shape of a rollout:
	//
	//	internal-canary  env=internal              batch 5,   bake 1m, strict
	//	non-prod         env=non-prod              batch 10%, bake 2m
	//	prod-azure       env=prod, cloud=azure     batch 5%,  bake 5m, requires approval
	//	prod-aws         env=prod, cloud=aws       batch 5%,  bake 5m
	//	prod-gcp         env=prod, cloud=gcp       batch 5%,  bake 5m
	//
	// Concurrency is left at its default, one batch's size.
	PresetCanaryThenWaves = "canary-then-waves"

	// PresetEmergency is for security patches: internal clusters first, then
	// everything else, in big batches with short bakes. Health checks still
	// run (unless the spec turns monitoring off, which it should not).
	//
	//	internal         env=internal              batch 25%, bake 30s
	//	everything-else  env!=internal             batch 25%, bake 30s
	PresetEmergency = "emergency"

	// PresetAllAtOnceNonProd changes every internal and non-prod cluster in
	// one batch; prod clusters match no phase and are left out.
	//
	//	non-prod         env in (internal, non-prod)  batch 100%, bake 1m
	PresetAllAtOnceNonProd = "all-at-once-nonprod"
)

func presets() map[string][]Phase {
	return map[string][]Phase{
		PresetCanaryThenWaves: {
			{Name: "internal-canary", Selector: "env=internal", BatchSize: "5", Strict: true, Bake: Duration(time.Minute)},
			{Name: "non-prod", Selector: "env=non-prod", BatchSize: "10%", Bake: Duration(2 * time.Minute)},
			{Name: "prod-azure", Selector: "env=prod, cloud=azure", BatchSize: "5%", Bake: Duration(5 * time.Minute), RequireApproval: true},
			{Name: "prod-aws", Selector: "env=prod, cloud=aws", BatchSize: "5%", Bake: Duration(5 * time.Minute)},
			{Name: "prod-gcp", Selector: "env=prod, cloud=gcp", BatchSize: "5%", Bake: Duration(5 * time.Minute)},
		},
		PresetEmergency: {
			{Name: "internal", Selector: "env=internal", BatchSize: "25%", Bake: Duration(30 * time.Second)},
			{Name: "everything-else", Selector: "env!=internal", BatchSize: "25%", Bake: Duration(30 * time.Second)},
		},
		PresetAllAtOnceNonProd: {
			{Name: "non-prod", Selector: "env in (internal, non-prod)", BatchSize: "100%", Bake: Duration(time.Minute)},
		},
	}
}

// Presets returns every shipped preset's phases by name (a fresh copy).
func Presets() map[string][]Phase { return presets() }

// Preset returns the named preset's phases (a fresh copy).
func Preset(name string) ([]Phase, bool) {
	p, ok := presets()[name]
	return p, ok
}

// PresetNames lists the shipped presets, sorted.
func PresetNames() []string {
	var names []string
	for n := range presets() {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// EffectivePhases returns the phases the strategy runs and whether they are
// a preset's: the explicit Phases when given, else the preset's. Phases
// equal to the named preset's (as after Normalize) count as the preset's,
// so the answer survives Normalize and a JSON round trip.
func (s Strategy) EffectivePhases() (phases []Phase, fromPreset bool) {
	preset, known := Preset(s.Preset)
	switch {
	case len(s.Phases) == 0 && known:
		return preset, true
	case len(s.Phases) > 0 && known && reflect.DeepEqual(s.Phases, preset):
		return s.Phases, true
	}
	return s.Phases, false
}
