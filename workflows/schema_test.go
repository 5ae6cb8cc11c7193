package workflows_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"testing"

	"github.com/invopop/jsonschema"
	validator "github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/workflows"
)

var updateSchema = flag.Bool("update-schema", false, "rewrite docs/rollout-input.schema.json and docs/rollout-spec.schema.json")

const (
	schemaPath     = "../docs/rollout-input.schema.json"
	specSchemaPath = "../docs/rollout-spec.schema.json"
)

// durationPattern is a Go duration ("90s", "1h30m") or a number of seconds
// as text ("90"): what spec.ParseDuration reads.
const durationPattern = `^(([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+|[0-9]+(\.[0-9]+)?)$`

// reflector builds schemas with the Go doc comments of the workflows and
// spec packages as descriptions, durations as strings or numbers of seconds
// and counts as numbers or strings, as the decoders read them.
func reflector(t *testing.T) *jsonschema.Reflector {
	t.Helper()
	r := &jsonschema.Reflector{
		ExpandedStruct: true,
		Mapper: func(t reflect.Type) *jsonschema.Schema {
			if t == reflect.TypeOf(spec.Duration(0)) {
				return &jsonschema.Schema{
					Description: "a Go duration such as 90s, 5m or 2h, or a number of seconds",
					OneOf: []*jsonschema.Schema{
						{Type: "string", Pattern: durationPattern},
						{Type: "number", Minimum: "0"},
					},
				}
			}
			return nil
		},
	}
	// Run from ./workflows: the base names this directory's import path.
	const base = "github.com/fleet-rollout/fleet/workflows"
	require.NoError(t, r.AddGoComments(base, "."))
	require.NoError(t, r.AddGoComments(base, "../internal/spec"))
	return r
}

// counts makes the spec's count fields take numbers and strings, as
// spec.Phase and spec.ErrorBudget decode them.
func counts(t *testing.T, defs jsonschema.Definitions) {
	t.Helper()
	set := func(def, field string, minimum string, pattern string) {
		d, ok := defs[def]
		require.True(t, ok, def)
		p, ok := d.Properties.Get(field)
		require.True(t, ok, def+"."+field)
		p.Type = ""
		p.OneOf = []*jsonschema.Schema{{Type: "integer", Minimum: json.Number(minimum)}, {Type: "string", Pattern: pattern}}
	}
	set("Phase", "batchSize", "1", `^\s*[0-9]+(\.[0-9]{1,2})?\s*%?\s*$`)
	set("Phase", "concurrency", "0", `^\s*[0-9]+\s*$`)
	set("ErrorBudget", "max", "0", `^\s*[0-9]+(\.[0-9]+)?\s*%?\s*$`)
}

// rolloutInputSchema is the JSON Schema of the Rollout workflow's input, for
// services that start rollouts from other SDKs.
func rolloutInputSchema(t *testing.T) []byte {
	t.Helper()
	s := reflector(t).Reflect(&workflows.RolloutInput{})
	counts(t, s.Definitions)
	s.ID = "https://github.com/fleet-rollout/fleet/docs/rollout-input.schema.json"
	s.Title = "Rollout workflow input"
	s.Description = "Input of the Rollout workflow (task queue fleet-rollouts, workflow ID rollout/<spec.name>). The worker validates the spec with the same parser as `fleet start` before planning. Durations are strings like \"90s\" or numbers of seconds; counts are numbers or strings."
	b, err := json.MarshalIndent(s, "", "  ")
	require.NoError(t, err)
	return append(b, '\n')
}

// rolloutSpecSchema is the JSON Schema of a rollout spec file (YAML), for
// editors: examples/rollout.yaml names it with a yaml-language-server
// comment.
func rolloutSpecSchema(t *testing.T) []byte {
	t.Helper()
	s := reflector(t).Reflect(&spec.Rollout{})
	counts(t, s.Definitions)
	s.ID = "https://github.com/fleet-rollout/fleet/docs/rollout-spec.schema.json"
	s.Title = "Rollout spec"
	s.Description = "A rollout spec file (fleet plan -f, fleet start -f). Durations are strings like 90s or numbers of seconds; counts are numbers or strings. The README's \"The rollout spec\" explains each field."
	b, err := json.MarshalIndent(s, "", "  ")
	require.NoError(t, err)
	return append(b, '\n')
}

func TestRolloutSpecSchemaIsCurrent(t *testing.T) {
	got := rolloutSpecSchema(t)
	if *updateSchema {
		require.NoError(t, os.WriteFile(specSchemaPath, got, 0o644))
	}
	want, err := os.ReadFile(specSchemaPath)
	require.NoError(t, err, "run: go test ./workflows -run Schema -update-schema")
	if string(want) != string(got) {
		t.Fatal("docs/rollout-spec.schema.json is stale: go test ./workflows -run Schema -update-schema")
	}
}

func TestRolloutInputSchemaIsCurrent(t *testing.T) {
	got := rolloutInputSchema(t)
	if *updateSchema {
		require.NoError(t, os.WriteFile(schemaPath, got, 0o644))
	}
	want, err := os.ReadFile(schemaPath)
	require.NoError(t, err, "run: go test ./workflows -run Schema -update-schema")
	if string(want) != string(got) {
		t.Fatal("docs/rollout-input.schema.json is stale: go test ./workflows -run Schema -update-schema")
	}

	// The schema describes what a service sends: an example input validates
	// against the Go types it was made from.
	var in workflows.RolloutInput
	require.NoError(t, json.Unmarshal([]byte(`{"requester":"svc-deployer","spec":{"name":"kafka-3-7-1","target":{"version":"3.7.1"},
		"selector":"product=kafka","strategy":{"preset":"canary-then-waves"},"monitoring":{"interval":"10s"},"errorBudget":{"max":"2%"}}}`), &in))
	require.Equal(t, "kafka-3-7-1", in.Spec.Name)
	require.NoError(t, in.Spec.Validate())
}

// compileSchema compiles a generated schema for validation.
func compileSchema(t *testing.T, name string, b []byte) *validator.Schema {
	t.Helper()
	doc, err := validator.UnmarshalJSON(bytes.NewReader(b))
	require.NoError(t, err)
	c := validator.NewCompiler()
	require.NoError(t, c.AddResource(name, doc))
	s, err := c.Compile(name)
	require.NoError(t, err)
	return s
}

// instance turns YAML or JSON into a value to validate, as an editor sees it.
func instance(t *testing.T, data string) any {
	t.Helper()
	var v any
	require.NoError(t, yaml.Unmarshal([]byte(data), &v))
	b, err := json.Marshal(v)
	require.NoError(t, err)
	inst, err := validator.UnmarshalJSON(bytes.NewReader(b))
	require.NoError(t, err)
	return inst
}

// TestSchemasAcceptWhatTheParserAccepts validates the example spec (as a
// YAML editor does with the spec schema), YAML and JSON specs with counts
// and durations in every form the decoders take, and rejects what they
// refuse.
func TestSchemasAcceptWhatTheParserAccepts(t *testing.T) {
	specSchema := compileSchema(t, "rollout-spec.schema.json", rolloutSpecSchema(t))
	inputSchema := compileSchema(t, "rollout-input.schema.json", rolloutInputSchema(t))

	example, err := os.ReadFile("../examples/rollout.yaml")
	require.NoError(t, err)
	require.Contains(t, string(example), "# yaml-language-server: $schema=../docs/rollout-spec.schema.json")
	_, err = spec.Parse("rollout.yaml", example)
	require.NoError(t, err)
	require.NoError(t, specSchema.Validate(instance(t, string(example))), "examples/rollout.yaml")

	good := []string{
		`{name: a, target: {version: 3.7.1}, selector: product=kafka, strategy: {phases: [{name: p, batchSize: 25, concurrency: 100, bake: 1m}]}}`,
		`{name: a, target: {version: 3.7.1}, selector: product=kafka, strategy: {phases: [{name: p, batchSize: "10%", concurrency: "100", bake: 90}]}, errorBudget: {max: 3}}`,
		`{"name":"a","target":{"version":"3.7.1"},"selector":"product=kafka","strategy":{"phases":[{"name":"p","batchSize":"2.5%","bake":"90"}]},"errorBudget":{"max":"2%"},"monitoring":{"interval":10,"unknownGrace":"30s"},"applyTimeout":1800}`,
	}
	for _, y := range good {
		// JSON is YAML: the parser takes each, and so does the schema.
		_, err := spec.Parse("s.yaml", []byte(y))
		require.NoError(t, err, y)
		var r spec.Rollout
		b, _ := json.Marshal(instanceValue(t, y))
		require.NoError(t, json.Unmarshal(b, &r), y)
		require.NoError(t, r.Validate(), y)
		require.NoError(t, specSchema.Validate(instance(t, y)), y)
		in := `{"requester": "svc", "spec": ` + string(b) + `}`
		require.NoError(t, inputSchema.Validate(instance(t, in)), in)
	}
	bad := []string{
		`{name: a, target: {version: 3.7.1}, strategy: {phases: [{name: p, batchSize: ten}]}}`,
		`{name: a, target: {version: 3.7.1}, strategy: {phases: [{name: p, bake: soon}]}}`,
		`{name: a, target: {version: 3.7.1}, strategy: {phases: [{name: p, concurrency: lots}]}}`,
		`{name: a, target: {version: 3.7.1}, strategy: {phases: [{name: p}]}, errorBudget: {max: -1}}`,
		`{name: a, target: {version: 3.7.1}, strategy: {phases: [{name: p, batchSize: 5, speed: 3}]}}`,
	}
	for _, y := range bad {
		_, err := spec.Parse("s.yaml", []byte(y))
		require.Error(t, err, y)
		require.Error(t, specSchema.Validate(instance(t, y)), y)
	}
}

func instanceValue(t *testing.T, data string) any {
	t.Helper()
	var v any
	require.NoError(t, yaml.Unmarshal([]byte(data), &v))
	return v
}
