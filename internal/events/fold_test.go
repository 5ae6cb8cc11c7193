package events

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/workflows"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

func started(id, version string, min int) workflows.Event {
	return workflows.Event{Kind: workflows.EventRolloutStarted, RolloutID: id, Version: version, At: at(min)}
}

func finished(id, state string, min int) workflows.Event {
	return workflows.Event{Kind: workflows.EventRolloutFinished, RolloutID: id, State: state, At: at(min)}
}

func state(id, cluster string, s workflows.ClusterState, min int) workflows.Event {
	return workflows.Event{Kind: workflows.EventClusterState, RolloutID: id, ClusterID: cluster, State: string(s), At: at(min)}
}

func alert(id, cluster, monitor, msg string, min int) workflows.Event {
	return workflows.Event{Kind: workflows.EventClusterAlert, RolloutID: id, ClusterID: cluster, Monitor: monitor, Message: msg, At: at(min)}
}

func TestFold(t *testing.T) {
	const (
		a = "rollout/kafka-3-7-0"
		b = "rollout/kafka-3-7-1"
		c = "lkc-00001"
	)
	tests := []struct {
		name   string
		events []workflows.Event
		want   []Entry
	}{
		{name: "no events", events: nil, want: nil},
		{
			name: "other clusters only",
			events: []workflows.Event{
				started(a, "3.7.0", 0),
				state(a, "lkc-00002", workflows.ClusterDone, 1),
				alert(a, "lkc-00002", "cpu", "high", 1),
			},
			want: nil,
		},
		{
			name: "one rollout: final state, version from rollout-started, phase and batch",
			events: []workflows.Event{
				started(a, "3.7.0", 0),
				{Kind: workflows.EventPhaseStarted, RolloutID: a, Phase: "prod", At: at(1)},
				{Kind: workflows.EventClusterState, RolloutID: a, ClusterID: c, Phase: "prod", Batch: 3, State: "applying", At: at(2)},
				state(a, c, workflows.ClusterVerifying, 5),
				state(a, c, workflows.ClusterDone, 8),
				finished(a, "completed", 20),
			},
			want: []Entry{{RolloutID: a, Version: "3.7.0", Phase: "prod", Batch: 3, First: at(2), Last: at(8),
				State: workflows.ClusterDone, RolloutState: "completed"}},
		},
		{
			name: "log order decides the last state, not times",
			events: []workflows.Event{
				started(a, "3.7.0", 0),
				state(a, c, workflows.ClusterHeld, 5),
				state(a, c, workflows.ClusterAborted, 5),
			},
			want: []Entry{{RolloutID: a, Version: "3.7.0", First: at(5), Last: at(5), State: workflows.ClusterAborted}},
		},
		{
			name: "two rollouts, alerts sorted and deduplicated, entries by first time",
			events: []workflows.Event{
				// the cluster's partition first, then the rollouts' partitions
				state(b, c, workflows.ClusterApplying, 40),
				alert(b, c, "kafka-under-replicated-partitions", "URP 12", 43),
				alert(b, c, "kafka-cpu", "CPU 97%", 42),
				alert(b, c, "kafka-cpu", "CPU 97%", 42), // published twice
				{Kind: workflows.EventClusterState, RolloutID: b, ClusterID: c, State: "failed", Message: "broker 2 did not come back", At: at(50)},
				state(a, c, workflows.ClusterApplying, 2),
				state(a, c, workflows.ClusterDone, 9),
				started(b, "3.7.1", 30),
				{Kind: workflows.EventRolloutPaused, RolloutID: b, Actor: "monitor", At: at(43)},
				finished(b, "aborted", 60),
				started(a, "3.7.0", 0),
				finished(a, "completed", 10),
			},
			want: []Entry{
				{RolloutID: a, Version: "3.7.0", First: at(2), Last: at(9), State: workflows.ClusterDone, RolloutState: "completed"},
				{RolloutID: b, Version: "3.7.1", First: at(40), Last: at(50), State: workflows.ClusterFailed,
					Message: "broker 2 did not come back", RolloutState: "aborted",
					Alerts: []Alert{{Monitor: "kafka-cpu", Message: "CPU 97%", At: at(42)},
						{Monitor: "kafka-under-replicated-partitions", Message: "URP 12", At: at(43)}}},
			},
		},
		{
			name: "a rollout name started again after it finished is a second entry",
			events: []workflows.Event{
				started(a, "3.7.0", 0),
				state(a, c, workflows.ClusterFailed, 5),
				finished(a, "failed", 6),
				started(a, "3.7.0-hotfix", 100),
				started(a, "3.7.0-hotfix", 150), // continue-as-new: same run
				state(a, c, workflows.ClusterDone, 160),
			},
			want: []Entry{
				{RolloutID: a, Version: "3.7.0", First: at(5), Last: at(5), State: workflows.ClusterFailed, RolloutState: "failed"},
				{RolloutID: a, Version: "3.7.0-hotfix", First: at(160), Last: at(160), State: workflows.ClusterDone},
			},
		},
		{
			name: "rollout-started outside the log: version from another event, alert-only entry",
			events: []workflows.Event{
				{Kind: workflows.EventClusterAlert, RolloutID: a, ClusterID: c, Version: "3.7.0", Monitor: "lag", At: at(3)},
			},
			want: []Entry{{RolloutID: a, Version: "3.7.0", First: at(3), Last: at(3), Alerts: []Alert{{Monitor: "lag", At: at(3)}}}},
		},
		{
			name: "events without rollout ID are ignored",
			events: []workflows.Event{
				{Kind: workflows.EventClusterState, ClusterID: c, State: "done", At: at(1)},
			},
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Fold(tt.events, c))
		})
	}
}

func TestFoldEmptyClusterID(t *testing.T) {
	assert.Nil(t, Fold([]workflows.Event{state("r", "", workflows.ClusterDone, 1)}, ""))
}

func TestKeyAndCheck(t *testing.T) {
	tests := []struct {
		ev      workflows.Event
		key     string
		invalid string
	}{
		{workflows.Event{Kind: workflows.EventClusterState, RolloutID: "rollout/x", ClusterID: "lkc-1"}, "lkc-1", ""},
		{workflows.Event{Kind: workflows.EventClusterAlert, RolloutID: "rollout/x", ClusterID: "lkc-1"}, "lkc-1", ""},
		// a rollout event naming the cluster that paused it stays on the rollout's key
		{workflows.Event{Kind: workflows.EventRolloutPaused, RolloutID: "rollout/x", ClusterID: "lkc-1"}, "rollout/x", ""},
		{workflows.Event{Kind: workflows.EventPhaseStarted, RolloutID: "rollout/x"}, "rollout/x", ""},
		{workflows.Event{Kind: workflows.EventClusterState, RolloutID: "rollout/x"}, "", "has no cluster ID"},
		{workflows.Event{Kind: workflows.EventAction}, "", "has no rollout ID"},
		{workflows.Event{RolloutID: "rollout/x"}, "rollout/x", "no kind"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.key, Key(tt.ev), "%+v", tt.ev)
		err := Check(tt.ev)
		if tt.invalid == "" {
			require.NoError(t, err)
		} else {
			require.ErrorContains(t, err, tt.invalid)
		}
	}
}
