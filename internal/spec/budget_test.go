package spec

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestErrorBudgetLimit(t *testing.T) {
	cases := []struct {
		max     string
		n       int
		want    int
		wantErr bool
	}{
		{"", 100, 0, false},
		{"0", 100, 0, false},
		{"3", 100, 3, false},
		{"2%", 100, 2, false},
		{"2%", 2034, 40, false},
		{"2.5%", 100, 2, false},
		{"100%", 7, 7, false},
		{"-1", 10, 0, true},
		{"101%", 10, 0, true},
		{"three", 10, 0, true},
	}
	for _, c := range cases {
		got, err := ErrorBudget{Max: c.max}.Limit(c.n)
		if c.wantErr {
			require.Error(t, err, c.max)
			continue
		}
		require.NoError(t, err, c.max)
		require.Equal(t, c.want, got, c.max)
	}
}

func TestErrorBudgetInSpec(t *testing.T) {
	good := `
name: x
target: {version: 3.7.1}
errorBudget: {max: 3, onExceeded: abort}
strategy:
  phases:
    - {name: a, batchSize: 5, errorBudget: {max: 1%}}
`
	r, err := Parse("r.yaml", []byte(good))
	require.NoError(t, err)
	require.Equal(t, "abort", r.ErrorBudget.Action())
	require.Equal(t, "pause", r.Strategy.Phases[0].ErrorBudget.Action())

	bad := strings.Replace(good, "onExceeded: abort", "onExceeded: explode", 1)
	_, err = Parse("r.yaml", []byte(bad))
	require.ErrorContains(t, err, "r.yaml:4: errorBudget.onExceeded: must be pause, abort or rollback")

	bad = strings.Replace(good, "max: 1%", "max: lots", 1)
	_, err = Parse("r.yaml", []byte(bad))
	require.ErrorContains(t, err, "strategy.phases[0].errorBudget.max: must be a count like 3 or a percentage like 2%")
}

// TestErrorBudgetRollback: onExceeded: rollback parses, at the rollout and
// phase level.
func TestErrorBudgetRollback(t *testing.T) {
	in := `
name: x
target: {version: 3.7.1}
errorBudget: {max: 2%, onExceeded: rollback}
strategy:
  phases:
    - {name: a, batchSize: 5, errorBudget: {max: 1, onExceeded: rollback}}
`
	r, err := Parse("r.yaml", []byte(in))
	require.NoError(t, err)
	require.Equal(t, OnExceededRollback, r.ErrorBudget.Action())
	require.Equal(t, OnExceededRollback, r.Strategy.Phases[0].ErrorBudget.Action())
	require.NoError(t, r.Validate())

	for _, bad := range []string{"Rollback", "roll back", "revert"} {
		_, err := Parse("r.yaml", []byte(strings.Replace(in, "max: 1, onExceeded: rollback", "max: 1, onExceeded: "+bad, 1)))
		require.ErrorContains(t, err, `strategy.phases[0].errorBudget.onExceeded: must be pause, abort or rollback, got "`+bad+`"`)
	}
}
