package activities

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/workflows"
)

type recordingNotifier struct{ got []workflows.Notification }

func (r *recordingNotifier) Post(_ context.Context, n workflows.Notification) (string, error) {
	r.got = append(r.got, n)
	return "ts", nil
}

// With monitoring off, health checks return at once and every notification
// says monitoring is off; with it on, notifications are left alone.
func TestMonitoringOff(t *testing.T) {
	rec := &recordingNotifier{}
	a := &Activities{Notifier: rec, Log: zap.NewNop(), MonitoringOff: true}
	res, err := a.CheckHealth(context.Background(), workflows.HealthInput{Clusters: []workflows.HealthTarget{{ClusterID: "lkc-1", Product: "kafka"}}})
	require.NoError(t, err)
	require.Empty(t, res.Findings)

	for _, ev := range []workflows.NotifyEvent{workflows.NotifyStarted, workflows.NotifyPaused, workflows.NotifyFinished} {
		_, err := a.Notify(context.Background(), workflows.Notification{RolloutID: "rollout/x", Event: ev, Text: "hello"})
		require.NoError(t, err)
	}
	require.Len(t, rec.got, 3)
	for _, n := range rec.got {
		require.Equal(t, "hello\n"+MonitoringOffNotice, n.Text)
	}

	a.MonitoringOff = false
	_, err = a.Notify(context.Background(), workflows.Notification{RolloutID: "rollout/x", Event: workflows.NotifyStarted, Text: "hello"})
	require.NoError(t, err)
	require.Equal(t, "hello", rec.got[3].Text)
}
