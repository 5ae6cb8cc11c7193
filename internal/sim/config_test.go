package sim

import (
	"maps"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMergeConfig: an apply's config merges into the cluster's; "" unsets a
// key. The cluster's map is not modified in place (statuses and snapshots
// may share it).
func TestMergeConfig(t *testing.T) {
	tests := []struct {
		name      string
		have, set map[string]string
		want      map[string]string
	}{
		{name: "nothing set keeps the cluster's", have: map[string]string{"a": "1"}, want: map[string]string{"a": "1"}},
		{name: "empty set keeps the cluster's", have: map[string]string{"a": "1"}, set: map[string]string{}, want: map[string]string{"a": "1"}},
		{name: "nothing anywhere", want: nil},
		{name: "set on a cluster without config", set: map[string]string{"a": "1"}, want: map[string]string{"a": "1"}},
		{name: "overwrite one, keep the others", have: map[string]string{"a": "1", "b": "2"}, set: map[string]string{"a": "9"},
			want: map[string]string{"a": "9", "b": "2"}},
		{name: "empty value deletes", have: map[string]string{"a": "1", "b": "2"}, set: map[string]string{"a": ""},
			want: map[string]string{"b": "2"}},
		{name: "deleting the last key leaves none", have: map[string]string{"a": "1"}, set: map[string]string{"a": ""}, want: nil},
		{name: "deleting a key the cluster lacks", have: map[string]string{"b": "2"}, set: map[string]string{"a": ""},
			want: map[string]string{"b": "2"}},
		{name: "deleting on a cluster without config", set: map[string]string{"a": ""}, want: nil},
		{name: "set and delete at once (a rollback)", have: map[string]string{"a": "1", "b": "2", "c": "3"},
			set: map[string]string{"a": "0", "b": "", "d": "4"}, want: map[string]string{"a": "0", "c": "3", "d": "4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := maps.Clone(tt.have)
			got := mergeConfig(tt.have, tt.set)
			require.Equal(t, tt.want, got)
			require.Equal(t, before, tt.have, "mergeConfig modified the cluster's map")
			if len(tt.set) > 0 && got != nil {
				got["zz"] = "x"
				require.NotContains(t, tt.have, "zz", "the result shares the cluster's map")
			}
		})
	}
}
