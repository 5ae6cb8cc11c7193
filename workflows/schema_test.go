package workflows_test

import (
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"testing"

	"github.com/invopop/jsonschema"
	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/workflows"
)

var updateSchema = flag.Bool("update-schema", false, "rewrite docs/rollout-input.schema.json")

const schemaPath = "../docs/rollout-input.schema.json"

// rolloutInputSchema is the JSON Schema of the Rollout workflow's input, for
// services that start rollouts from other SDKs.
func rolloutInputSchema(t *testing.T) []byte {
	t.Helper()
	r := &jsonschema.Reflector{
		ExpandedStruct: true,
		Mapper: func(t reflect.Type) *jsonschema.Schema {
			if t == reflect.TypeOf(spec.Duration(0)) {
				return &jsonschema.Schema{Type: "string", Pattern: `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`, Description: "a Go duration such as 90s, 5m or 2h"}
			}
			return nil
		},
	}
	s := r.Reflect(&workflows.RolloutInput{})
	s.ID = "https://github.com/fleet-rollout/fleet/docs/rollout-input.schema.json"
	s.Title = "Rollout workflow input"
	s.Description = "Input of the Rollout workflow (task queue fleet-rollouts, workflow ID rollout/<spec.name>). The worker validates the spec with the same parser as `fleet start` before planning."
	b, err := json.MarshalIndent(s, "", "  ")
	require.NoError(t, err)
	return append(b, '\n')
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
