package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/starter/client"
)

func (f *fakeAPI) ScheduleStart(_ context.Context, r *spec.Rollout, requester string, at time.Time) (*client.Scheduled, error) {
	f.calls = append(f.calls, fmt.Sprintf("schedule %s by %s at %s", r.Name, requester, at.Format(time.RFC3339)))
	if f.err != nil {
		return nil, f.err
	}
	return &client.Scheduled{ID: client.ScheduleID(r.Name), Rollout: r.Name, At: at, Zone: at.Location().String(),
		Requester: requester, CreatedAt: fixedNow, State: client.ScheduleWaiting}, nil
}

func (f *fakeAPI) Schedules(context.Context) ([]client.Scheduled, error) {
	f.calls = append(f.calls, "schedules")
	return f.schedules, nil
}

func (f *fakeAPI) CancelSchedule(_ context.Context, id string) (*client.Scheduled, error) {
	f.calls = append(f.calls, "cancel schedule "+id)
	for _, s := range f.schedules {
		if s.ID == client.ScheduleID(id) {
			return &s, nil
		}
	}
	return nil, &client.ScheduleNotFoundError{ID: client.ScheduleID(id)}
}

func TestParseAt(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	good := []struct {
		in   string
		want time.Time
	}{
		{"2026-12-07T09:00 Europe/Berlin", time.Date(2026, 12, 7, 9, 0, 0, 0, berlin)},
		{"2026-12-07T09:00:30 Europe/Berlin", time.Date(2026, 12, 7, 9, 0, 30, 0, berlin)},
		{"2026-12-07 09:00 America/New_York", time.Date(2026, 12, 7, 9, 0, 0, 0, ny)},
		{"  2026-12-07T08:00 UTC ", time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)},
		{"2026-12-07T09:00:00+01:00", time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)},
	}
	for _, tt := range good {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseAt(tt.in, now)
			require.NoError(t, err)
			assert.True(t, got.Equal(tt.want), "%s != %s", got, tt.want)
		})
	}
	got, _ := parseAt("2026-12-07T09:00 Europe/Berlin", now)
	assert.Equal(t, "Europe/Berlin", got.Location().String(), "the zone is kept for the schedule")
	assert.Equal(t, "2026-12-07T08:00:00Z", got.UTC().Format(time.RFC3339))

	bad := []struct{ in, want string }{
		{"2026-12-07T09:00 Mars/Olympus", `unknown time zone "Mars/Olympus"`},
		{"2026-12-07T09:00 Local", "name the time zone"},
		{"2026-12-07T09:00", "want a local time and a time zone"},
		{"tomorrow Europe/Berlin", `"tomorrow" is not a time like 2026-12-07T09:00`},
		{"2026-11-30T09:00 Europe/Berlin", "is in the past"},
		{"2026-12-01T12:00 UTC", "is in the past"}, // now is not ahead
		{"2026-01-01T00:00:00Z", "is in the past"},
		{"2027-03-28T02:30 Europe/Berlin", "does not exist in Europe/Berlin"}, // DST gap
	}
	for _, tt := range bad {
		t.Run(tt.in, func(t *testing.T) {
			_, err := parseAt(tt.in, now)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestStartAtSchedules(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rollout.yaml")
	doc := "name: kafka-3-7-1\ntarget:\n  version: 3.7.1\nselector: product=kafka\nstrategy:\n  preset: canary-then-waves\n"
	require.NoError(t, os.WriteFile(path, []byte(doc), 0o644))

	api := &fakeAPI{}
	e, out, _ := testEnv(t, api)
	require.NoError(t, run(context.Background(), []string{"start", "-f", path, "--at", "2026-03-02T09:00 Europe/Berlin"}, e))
	assert.Equal(t, []string{"schedule kafka-3-7-1 by alice at 2026-03-02T09:00:00+01:00"}, api.calls)
	assert.Contains(t, out.String(), `Scheduled rollout "kafka-3-7-1" to start at 2026-03-02 09:00:00 CET Europe/Berlin (2026-03-02T08:00:00Z`)
	assert.Contains(t, out.String(), "fleet schedule cancel kafka-3-7-1")

	e, out, _ = testEnv(t, api)
	require.NoError(t, run(context.Background(), []string{"start", "-f", path, "--at", "2026-03-02T09:00 Europe/Berlin", "-o", "json"}, e))
	assert.Contains(t, out.String(), `"id": "scheduled/kafka-3-7-1"`)
	assert.Contains(t, out.String(), `"zone": "Europe/Berlin"`)

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"start", "-f", path, "--at", "2026-02-01T09:00 Europe/Berlin"}, "start: --at: 2026-02-01 09:00:00 CET is in the past"},
		{[]string{"start", "-f", path, "--at", "2026-03-02T09:00 Nowhere/City"}, `start: --at: unknown time zone "Nowhere/City"`},
		{[]string{"start", "-f", path, "--at", "2026-03-02T09:00 UTC", "--wait"}, "start: --at schedules the start for later"},
		{[]string{"start", "-f", path, "--timeout", "5m"}, "start: --timeout bounds --watch or --wait"},
		{[]string{"schedule"}, "schedule: list or cancel?"},
		{[]string{"schedule", "cancel"}, "schedule cancel: missing NAME"},
		{[]string{"schedule", "pause", "x"}, `schedule: unknown subcommand "pause"`},
	} {
		t.Run(strings.Join(tt.args[1:], " "), func(t *testing.T) {
			e, _, _ := testEnv(t, nil) // nothing contacts Temporal
			err := run(context.Background(), tt.args, e)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Equal(t, exitUsage, exitCode(err))
		})
	}
}

func TestScheduleListAndCancel(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	api := &fakeAPI{schedules: []client.Scheduled{{ID: "scheduled/x", Rollout: "x", At: at, Zone: "UTC", Requester: "bob",
		CreatedAt: fixedNow.Add(-time.Hour), State: client.ScheduleWaiting}}}
	e, out, _ := testEnv(t, api)
	require.NoError(t, run(context.Background(), []string{"schedule", "list"}, e))
	assert.Contains(t, out.String(), "ROLLOUT")
	assert.Contains(t, out.String(), "waiting (in 21h0m")
	assert.Contains(t, out.String(), "scheduled/x")

	e, out, _ = testEnv(t, api)
	require.NoError(t, run(context.Background(), []string{"schedule", "cancel", "x", "--reason", "moved to Tuesday"}, e))
	assert.Contains(t, out.String(), `Canceled schedule scheduled/x (rollout "x" at 2026-03-02 09:00:00 UTC UTC, created by bob at 2026-03-01T11:00:00Z): deleted by alice at 2026-03-01T12:00:00Z: moved to Tuesday.`)

	e, out, _ = testEnv(t, api)
	require.NoError(t, run(context.Background(), []string{"schedule", "cancel", "x", "--json"}, e))
	assert.Contains(t, out.String(), `"canceledBy": "alice"`)

	e, _, _ = testEnv(t, api)
	err := run(context.Background(), []string{"schedule", "cancel", "ghost"}, e)
	require.EqualError(t, err, "schedule scheduled/ghost not found")
	assert.Equal(t, exitNotFound, exitCode(err))
}
