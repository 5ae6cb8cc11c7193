package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/starter/client"
	"github.com/fleet-rollout/fleet/workflows"
)

func (f *fakeAPI) Pace(_ context.Context, id string, req workflows.PacingRequest) (workflows.ActionResult, error) {
	bake := "nil"
	if req.Bake != nil {
		bake = req.Bake.String()
	}
	f.calls = append(f.calls, fmt.Sprintf("pace %s actor=%s concurrency=%d bake=%s reason=%q", id, req.Actor, req.Concurrency, bake, req.Reason))
	if f.err != nil {
		return workflows.ActionResult{}, f.err
	}
	return workflows.ActionResult{State: workflows.StateRunning, Message: "pacing set"}, nil
}

func (f *fakeAPI) Freeze(_ context.Context, req workflows.FreezeRequest) (workflows.FreezeState, error) {
	f.calls = append(f.calls, fmt.Sprintf("freeze actor=%s reason=%q until=%s", req.Actor, req.Reason, req.Until.Format(time.RFC3339)))
	if f.err != nil {
		return workflows.FreezeState{}, f.err
	}
	st := f.freeze
	st.Freeze = &workflows.FreezeInfo{Actor: req.Actor, Reason: req.Reason, Since: fixedNow, Until: req.Until}
	return st, nil
}

func (f *fakeAPI) Unfreeze(_ context.Context, actor, reason string) (workflows.FreezeState, error) {
	f.calls = append(f.calls, fmt.Sprintf("unfreeze actor=%s reason=%q", actor, reason))
	if f.err != nil {
		return workflows.FreezeState{}, f.err
	}
	return f.freeze, nil
}

func (f *fakeAPI) FreezeStatus(context.Context) (workflows.FreezeState, error) {
	f.calls = append(f.calls, "freeze status")
	return f.freeze, nil
}

func TestFreezeAndPaceUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"freeze"}, "freeze: --reason is required (usage: fleet freeze --reason R --until T)"},
		{[]string{"freeze", "--until", "48h"}, "freeze: --reason is required"},
		{[]string{"freeze", "--reason", " ", "--until", "48h"}, "freeze: --reason is required"},
		{[]string{"freeze", "--reason", "incident"}, "freeze: --until is required"},
		{[]string{"freeze", "--reason", "incident", "--until", "tomorrow"},
			`freeze: --until: "tomorrow" is neither an RFC 3339 time like 2026-03-02T18:00:00Z nor a duration from now like 48h`},
		{[]string{"freeze", "--reason", "incident", "--until", "2026-03-02"}, `freeze: --until: "2026-03-02" is neither an RFC 3339 time`},
		{[]string{"freeze", "--reason", "incident", "--until", "-2h"}, "freeze: --until: duration -2h must be positive"},
		{[]string{"freeze", "--reason", "incident", "--until", "0s"}, "freeze: --until: duration 0s must be positive"},
		{[]string{"freeze", "--reason", "incident", "--until", "2026-03-01T11:00:00Z"},
			"freeze: --until: 2026-03-01T11:00:00Z is not in the future (now 2026-03-01T12:00:00Z)"},
		{[]string{"freeze", "--reason", "incident", "--until", "31d"},
			"freeze: --until: 2026-04-01T12:00:00Z is more than 30 days ahead (latest 2026-03-31T12:00:00Z)"},
		{[]string{"freeze", "--reason", "incident", "--until"}, "freeze: flag needs an argument: -until"},
		{[]string{"freeze", "now", "--reason", "incident", "--until", "1h"}, `freeze: unexpected argument "now"`},
		{[]string{"freeze", "--reason", "incident", "status"}, "freeze: 'status' takes no --reason or --until"},
		{[]string{"freeze", "status", "extra"}, `freeze status: unexpected argument "extra" (usage: fleet freeze status [--json])`},
		{[]string{"freeze", "status", "--reason", "x"}, "freeze: flag provided but not defined: -reason"},
		{[]string{"unfreeze", "now"}, `unfreeze: unexpected argument "now"`},
		{[]string{"pace"}, "pace: missing rollout ID"},
		{[]string{"pace", "x"}, "pace: give --concurrency N, --bake D, or both (usage: fleet pace ID [--concurrency N] [--bake D] [--reason R])"},
		{[]string{"pace", "x", "--reason", "slower"}, "pace: give --concurrency N, --bake D, or both"},
		{[]string{"pace", "x", "--concurrency", "0"}, "pace: --concurrency must be at least 1, got 0"},
		{[]string{"pace", "x", "--concurrency", "-5"}, "pace: --concurrency must be at least 1, got -5"},
		{[]string{"pace", "x", "--concurrency", "lots"}, `pace: invalid value "lots" for flag -concurrency`},
		{[]string{"pace", "x", "--bake", "soon"}, `pace: --bake: "soon" is not a duration like 5m or 90s`},
		{[]string{"pace", "x", "--bake", "-1m"}, "pace: --bake must not be negative, got -1m0s"},
		{[]string{"pace", "x", "y", "--bake", "1m"}, `pace: unexpected argument "y"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			e, out, _ := testEnv(t, nil) // connecting fails the test
			err := run(context.Background(), tt.args, e)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			var stderr bytes.Buffer
			assert.Equal(t, 2, report(&stderr, err))
			assert.Contains(t, stderr.String(), "Run 'fleet "+tt.args[0]+" -h' for usage.")
			assert.Empty(t, out.String())
		})
	}
}

func TestParseUntil(t *testing.T) {
	for in, want := range map[string]time.Time{
		"48h":                       fixedNow.Add(48 * time.Hour),
		" 90m ":                     fixedNow.Add(90 * time.Minute),
		"3d":                        fixedNow.Add(72 * time.Hour),
		"30d":                       fixedNow.Add(workflows.MaxFreezeDuration),
		"2026-03-02T18:00:00Z":      time.Date(2026, 3, 2, 18, 0, 0, 0, time.UTC),
		"2026-03-02T18:00:00+02:00": time.Date(2026, 3, 2, 16, 0, 0, 0, time.UTC),
	} {
		got, err := parseUntil(in, fixedNow)
		require.NoError(t, err, in)
		assert.True(t, want.Equal(got), "%s: got %s, want %s", in, got, want)
		assert.Equal(t, time.UTC, got.Location(), in)
	}
	for _, in := range []string{"", "d", "1.5d", "99999999d", "next week", "2026-03-01T12:00:00Z"} {
		_, err := parseUntil(in, fixedNow)
		assert.Error(t, err, in)
	}
}

func TestFreezeCommandsCallTheClient(t *testing.T) {
	until := time.Date(2026, 3, 2, 18, 0, 0, 0, time.UTC)
	frozen := workflows.FreezeState{Freeze: &workflows.FreezeInfo{Actor: "bob", Reason: "incident 4711", Since: fixedNow.Add(-time.Hour), Until: until}}
	lifted := workflows.FreezeState{History: []workflows.FreezeInfo{{Actor: "bob", Reason: "incident 4711", Since: fixedNow.Add(-time.Hour), Until: fixedNow}}}
	tests := []struct {
		args  []string
		state workflows.FreezeState
		call  string
		out   []string
	}{
		{[]string{"freeze", "--reason", "incident 4711", "--until", "48h"}, workflows.FreezeState{},
			`freeze actor=alice reason="incident 4711" until=2026-03-03T12:00:00Z`,
			[]string{"The fleet is frozen until 2026-03-03 12:00:00 UTC (in 48h0m0s) by alice: incident 4711", "fleet unfreeze"}},
		{[]string{"freeze", "--until=2026-03-02T18:00:00Z", "--reason=db migration"}, workflows.FreezeState{},
			`freeze actor=alice reason="db migration" until=2026-03-02T18:00:00Z`,
			[]string{"frozen until 2026-03-02 18:00:00 UTC (in 30h0m0s) by alice: db migration"}},
		{[]string{"freeze", "status"}, frozen, "freeze status",
			[]string{"Frozen:  yes, by bob", "Reason:  incident 4711", "Until:   2026-03-02 18:00:00 UTC (in 30h0m0s)"}},
		{[]string{"freeze", "status", "--json"}, frozen, "freeze status",
			[]string{`"actor": "bob"`, `"until": "2026-03-02T18:00:00Z"`}},
		{[]string{"freeze", "status"}, workflows.FreezeState{}, "freeze status", []string{"Frozen:  no", "No past freezes."}},
		{[]string{"unfreeze", "--reason", "fixed"}, lifted, `unfreeze actor=alice reason="fixed"`,
			[]string{`The fleet freeze set by bob ("incident 4711") is lifted after 1h0m0s.`, "fleet resume ID"}},
		{[]string{"unfreeze"}, lifted, `unfreeze actor=alice reason=""`, []string{"is lifted"}},
		{[]string{"pace", "x", "--concurrency", "50"}, workflows.FreezeState{},
			`pace x actor=alice concurrency=50 bake=nil reason=""`, []string{"rollout/x is now running: pacing set"}},
		{[]string{"pace", "--bake", "0", "rollout/x"}, workflows.FreezeState{},
			`pace rollout/x actor=alice concurrency=0 bake=0s reason=""`, nil},
		{[]string{"pace", "x", "--concurrency", "5", "--bake", "90s", "--reason", "quiet hours"}, workflows.FreezeState{},
			`pace x actor=alice concurrency=5 bake=1m30s reason="quiet hours"`, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			api := &fakeAPI{freeze: tt.state}
			e, out, _ := testEnv(t, api)
			require.NoError(t, run(context.Background(), tt.args, e))
			assert.Equal(t, []string{tt.call}, api.calls)
			for _, w := range tt.out {
				assert.Contains(t, out.String(), w)
			}
		})
	}
}

func TestUnfreezeWhenNotFrozen(t *testing.T) {
	api := &fakeAPI{err: fmt.Errorf("%w: unfreeze fleet/freeze: rejected: no freeze is in force", client.ErrNotFrozen)}
	e, out, _ := testEnv(t, api)
	err := run(context.Background(), []string{"unfreeze"}, e)
	require.EqualError(t, err, "unfreeze: the fleet is not frozen: nothing to lift ('fleet freeze status' shows past freezes)")
	assert.Equal(t, 1, report(&bytes.Buffer{}, err))
	assert.Empty(t, out.String())
}

func TestPaceRejectedKeepsTheWorkflowsMessage(t *testing.T) {
	api := &fakeAPI{err: &client.RejectedError{Action: workflows.UpdatePacing, WorkflowID: "rollout/x", Message: "rollout is completed"}}
	e, _, _ := testEnv(t, api)
	err := run(context.Background(), []string{"pace", "x", "--concurrency", "10"}, e)
	require.EqualError(t, err, "pacing rollout/x: rejected: rollout is completed")
	assert.Equal(t, exitRejected, report(&bytes.Buffer{}, err))
}

func TestStartDuringFreezeSaysWhoWhyUntil(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rollout.yaml")
	doc := "name: kafka-3-7-1\ntarget:\n  version: 3.7.1\nselector: product=kafka\nstrategy:\n  preset: canary-then-waves\n"
	require.NoError(t, os.WriteFile(path, []byte(doc), 0o644))
	api := &fakeAPI{err: &client.FrozenError{Name: "kafka-3-7-1", Freeze: workflows.FreezeInfo{
		Actor: "bob", Reason: "incident 4711", Since: fixedNow.Add(-time.Hour), Until: time.Date(2026, 3, 2, 18, 0, 0, 0, time.UTC)}}}
	e, out, _ := testEnv(t, api)
	err := run(context.Background(), []string{"start", "-f", path, "--watch"}, e)
	require.Error(t, err)
	var stderr bytes.Buffer
	assert.Equal(t, exitRefused, report(&stderr, err))
	assert.Equal(t, "fleet: start rollout \"kafka-3-7-1\": the fleet is frozen by bob until 2026-03-02T18:00:00Z (since 2026-03-01T11:00:00Z): "+
		"incident 4711; no rollout starts until the freeze ends or is lifted (fleet unfreeze)\n", stderr.String())
	assert.Empty(t, out.String(), "nothing started, nothing watched")
	assert.Equal(t, []string{"start kafka-3-7-1 by alice"}, api.calls)
}

func TestRenderFreezeStatus(t *testing.T) {
	var hist []workflows.FreezeInfo
	for i := range 7 {
		since := fixedNow.Add(-time.Duration(10-i) * 24 * time.Hour)
		hist = append(hist, workflows.FreezeInfo{Actor: fmt.Sprintf("user%d", i), Reason: fmt.Sprintf("reason %d", i),
			Since: since, Until: since.Add(2 * time.Hour)})
	}
	st := workflows.FreezeState{
		Freeze: &workflows.FreezeInfo{Actor: "alice", Reason: "incident 4711", Since: fixedNow.Add(-3 * time.Hour),
			Until: fixedNow.Add(6 * time.Hour)},
		History: hist,
	}
	var b bytes.Buffer
	renderFreezeStatus(&b, st, fixedNow)
	t.Log("\n" + b.String())
	want := `Frozen:  yes, by alice
Reason:  incident 4711
Since:   2026-03-01 09:00:00 UTC (3h0m0s ago)
Until:   2026-03-01 18:00:00 UTC (in 6h0m0s)

Running rollouts are paused; none starts or resumes until the freeze ends.
Lift it with: fleet unfreeze --reason '...'

Past freezes (last 5 of 7, newest first):
  SINCE                    ENDED                    LASTED  BY     REASON
  2026-02-25 12:00:00 UTC  2026-02-25 14:00:00 UTC  2h0m0s  user6  reason 6
  2026-02-24 12:00:00 UTC  2026-02-24 14:00:00 UTC  2h0m0s  user5  reason 5
  2026-02-23 12:00:00 UTC  2026-02-23 14:00:00 UTC  2h0m0s  user4  reason 4
  2026-02-22 12:00:00 UTC  2026-02-22 14:00:00 UTC  2h0m0s  user3  reason 3
  2026-02-21 12:00:00 UTC  2026-02-21 14:00:00 UTC  2h0m0s  user2  reason 2
`
	assert.Equal(t, want, b.String())

	b.Reset()
	renderFreezeStatus(&b, workflows.FreezeState{History: hist[:1]}, fixedNow)
	assert.Equal(t, `Frozen:  no

Past freezes (newest first):
  SINCE                    ENDED                    LASTED  BY     REASON
  2026-02-19 12:00:00 UTC  2026-02-19 14:00:00 UTC  2h0m0s  user0  reason 0
`, b.String())

	// The end has passed but the freeze workflow's timer has not lifted it yet.
	b.Reset()
	renderFreezeStatus(&b, workflows.FreezeState{Freeze: &workflows.FreezeInfo{Actor: "alice", Reason: "r", Until: fixedNow.Add(-2 * time.Second)}}, fixedNow)
	assert.Contains(t, b.String(), "Until:   2026-03-01 11:59:58 UTC (2s ago), being lifted\n")
}

func TestRenderFrozenAndUnfrozen(t *testing.T) {
	var b bytes.Buffer
	renderFrozen(&b, workflows.FreezeState{Freeze: &workflows.FreezeInfo{Actor: "alice", Reason: "incident 4711",
		Since: fixedNow, Until: fixedNow.Add(48 * time.Hour)}}, fixedNow)
	assert.Equal(t, `The fleet is frozen until 2026-03-03 12:00:00 UTC (in 48h0m0s) by alice: incident 4711
Running rollouts pause (clusters in flight are held before their next broker);
none starts or resumes until the freeze ends or 'fleet unfreeze' lifts it.
`, b.String())

	b.Reset()
	renderUnfrozen(&b, workflows.FreezeState{History: []workflows.FreezeInfo{{Actor: "alice", Reason: "incident 4711",
		Since: fixedNow.Add(-90 * time.Minute), Until: fixedNow}}}, fixedNow)
	assert.Equal(t, `The fleet freeze set by alice ("incident 4711") is lifted after 1h30m0s.
Rollouts it paused stay paused: resume each with 'fleet resume ID' ('fleet list' shows them).
`, b.String())
}

func TestRenderStatusBudgetIncidentsAndPauseReason(t *testing.T) {
	pausedAt := fixedNow.Add(-5 * time.Minute)
	var incidents []workflows.Incident
	for i := range 5 {
		incidents = append(incidents, workflows.Incident{Kind: workflows.IncidentApplyFailed, Batch: 3, ClusterID: fmt.Sprintf("lkc-%d", i),
			Message: fmt.Sprintf("broker %d did not come back", i), At: pausedAt.Add(-time.Duration(5-i) * time.Minute)})
	}
	incidents[4] = workflows.Incident{Kind: workflows.IncidentMonitorAlert, Batch: 4, ClusterID: "lkc-4",
		Monitor: "kafka-under-replicated-partitions", Message: "URP 12", At: pausedAt}
	reason := "error budget exceeded: 4 failed, rollout budget 3; last: monitor kafka-under-replicated-partitions fired on cluster lkc-4 (batch 4): URP 12"
	st := &workflows.RolloutStatus{
		ID: "rollout/x", Name: "x", State: workflows.StatePaused, TargetVersion: "3.7.1", Total: 40,
		Paused:    &workflows.PauseReason{Actor: "fleet-safety", Reason: reason, At: pausedAt, Incident: &incidents[4]},
		Counts:    workflows.Counts{Done: 10, Failed: 4, Held: 2, Pending: 24},
		Incidents: incidents, Failures: 4, FailureBudget: 3,
	}
	var b bytes.Buffer
	renderStatus(&b, live(st), fixedNow)
	out := b.String()
	t.Log("\n" + out)
	lines := strings.Split(out, "\n")
	assert.Equal(t, "PAUSED by fleet-safety, 5m0s ago: "+reason, lines[0], "the pause reason comes first")
	assert.Equal(t, "", lines[1])
	assert.Contains(t, out, "\nError budget:    failures 4 / budget 3 (exceeded)\n")
	assert.Contains(t, out, "\nPaused:          by fleet-safety: "+reason+" at 2026-03-01 11:55:00 UTC\n", "the Paused row stays")
	assert.Contains(t, out, `
Incidents (last 3 of 5):
  TIME                     KIND           CLUSTER  BATCH  MONITOR                            MESSAGE
  2026-03-01 11:52:00 UTC  apply-failed   lkc-2    3      -                                  broker 2 did not come back
  2026-03-01 11:53:00 UTC  apply-failed   lkc-3    3      -                                  broker 3 did not come back
  2026-03-01 11:55:00 UTC  monitor-alert  lkc-4    4      kafka-under-replicated-partitions  URP 12
`)
	assert.NotContains(t, out, "lkc-1 ")

	for _, tt := range []struct {
		st   workflows.RolloutStatus
		want string
	}{
		{workflows.RolloutStatus{State: workflows.StateRunning, Failures: 2, FailureBudget: 3}, "failures 2 / budget 3\n"},
		{workflows.RolloutStatus{State: workflows.StateRunning, Failures: 3, FailureBudget: 3}, "failures 3 / budget 3 (the next failure exceeds it)\n"},
		{workflows.RolloutStatus{State: workflows.StateCompleted, Failures: 3, FailureBudget: 3}, "failures 3 / budget 3\n"},
	} {
		b.Reset()
		renderStatus(&b, live(&tt.st), fixedNow)
		assert.Contains(t, b.String(), "Error budget:    "+tt.want)
		assert.NotContains(t, b.String(), "PAUSED")
		assert.NotContains(t, b.String(), "Incidents")
	}
}

func TestFreezeAndPaceHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"help"}, []string{
			"  fleet pace ID [--concurrency N] [--bake D] [--reason R]\n",
			"  fleet freeze --reason R --until T\n  fleet freeze status [--json]\n",
			"  fleet unfreeze [--reason R]\n",
		}},
		{[]string{"freeze", "-h"}, []string{"Usage: fleet freeze --reason R --until T\n       fleet freeze status [--json]", "--reason REASON", "--until T", "RFC 3339", "30 days"}},
		{[]string{"freeze", "status", "-h"}, []string{"Usage: fleet freeze --reason R --until T", "--json"}},
		{[]string{"help", "unfreeze"}, []string{"Usage: fleet unfreeze [--reason R]", "stay paused", "--reason REASON"}},
		{[]string{"help", "pace"}, []string{"Usage: fleet pace ID [--concurrency N] [--bake D] [--reason R]", "--concurrency N", "--bake D", "--reason REASON"}},
		{[]string{"help", "start"}, []string{"frozen", "who froze it, why and until when"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			e, out, _ := testEnv(t, nil)
			require.NoError(t, run(context.Background(), tt.args, e))
			for _, w := range tt.want {
				assert.Contains(t, out.String(), w)
			}
		})
	}
}
