package workflows_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/workflows"
)

func TestPacingRequestDecoding(t *testing.T) {
	dur := func(d time.Duration) *time.Duration { return &d }
	for _, tc := range []struct {
		in   string
		want workflows.PacingRequest
		err  string
	}{
		// What the Go client writes, and histories hold: nanoseconds.
		{`{"actor":"alice","concurrency":300,"bake":10000000000}`, workflows.PacingRequest{Actor: "alice", Concurrency: 300, Bake: dur(10 * time.Second)}, ""},
		{`{"actor":"alice","bake":0}`, workflows.PacingRequest{Actor: "alice", Bake: dur(0)}, ""},
		// Other SDKs: duration strings, numbers as strings.
		{`{"actor":"alice","concurrency":"300","bake":"10s"}`, workflows.PacingRequest{Actor: "alice", Concurrency: 300, Bake: dur(10 * time.Second)}, ""},
		{`{"actor":"alice","bake":"2m30s","reason":"quiet"}`, workflows.PacingRequest{Actor: "alice", Bake: dur(150 * time.Second), Reason: "quiet"}, ""},
		{`{"actor":"alice","bake":"90"}`, workflows.PacingRequest{Actor: "alice", Bake: dur(90 * time.Second)}, ""},
		{`{"actor":"alice","concurrency":50}`, workflows.PacingRequest{Actor: "alice", Concurrency: 50}, ""},
		{`{"actor":"alice","bake":null}`, workflows.PacingRequest{Actor: "alice"}, ""},
		{`{"actor":"alice","bake":"soon"}`, workflows.PacingRequest{}, "number of seconds"},
		{`{"actor":"alice","bake":"-5s"}`, workflows.PacingRequest{}, "must not be negative"},
		{`{"actor":"alice","bake":1.5}`, workflows.PacingRequest{}, "nanoseconds"},
		{`{"actor":"alice","concurrency":"lots"}`, workflows.PacingRequest{}, "whole number"},
	} {
		var got workflows.PacingRequest
		err := json.Unmarshal([]byte(tc.in), &got)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
		// The Go encoding (nanoseconds) reads back the same.
		b, err := json.Marshal(got)
		require.NoError(t, err)
		var again workflows.PacingRequest
		require.NoError(t, json.Unmarshal(b, &again))
		require.Equal(t, got, again)
	}
}
