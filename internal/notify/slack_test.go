package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fleet-rollout/fleet/workflows"
)

// posted is one chat.postMessage request as the Slack test server saw it.
type posted struct {
	TS        string
	Channel   string
	Text      string
	ThreadTS  string
	Broadcast bool
	Blocks    slack.Blocks
	RawBlocks string
}

// recorder replaces slacktest's chat.postMessage handler. slacktest's own
// seen-messages facility only observes RTM websocket traffic, and its
// postMessage handler stamps messages with the Unix second (so messages within
// a second share a ts); this one records every request and gives each message
// a distinct ts.
type recorder struct {
	mu   sync.Mutex
	msgs []posted
}

func (rc *recorder) postMessage(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	p := posted{
		TS:        fmt.Sprintf("1700000000.%06d", 100*(len(rc.msgs)+1)),
		Channel:   r.PostForm.Get("channel"),
		Text:      r.PostForm.Get("text"),
		ThreadTS:  r.PostForm.Get("thread_ts"),
		Broadcast: r.PostForm.Get("reply_broadcast") == "true",
		RawBlocks: r.PostForm.Get("blocks"),
	}
	if p.RawBlocks != "" {
		if err := json.Unmarshal([]byte(p.RawBlocks), &p.Blocks); err != nil {
			rc.mu.Unlock()
			writeJSON(w, map[string]any{"ok": false, "error": "invalid_blocks"})
			return
		}
	}
	rc.msgs = append(rc.msgs, p)
	rc.mu.Unlock()
	writeJSON(w, map[string]any{"ok": true, "channel": p.Channel, "ts": p.TS})
}

func (rc *recorder) messages() []posted {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]posted(nil), rc.msgs...)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// slackServer starts slacktest's server with h as chat.postMessage and
// returns a client pointed at it.
func slackServer(t *testing.T, h http.HandlerFunc) *slack.Client {
	t.Helper()
	ts := slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", h)
	})
	ts.Start()
	t.Cleanup(ts.Stop)
	return slack.New("xoxb-test-token", slack.OptionAPIURL(ts.GetAPIURL()))
}

const rolloutID = "rollout/kafka-3-7-1"

func lifecycle() []workflows.Notification {
	pausedAt := time.Date(2026, 3, 4, 10, 15, 0, 0, time.UTC)
	return []workflows.Notification{
		{
			RolloutID: rolloutID, Event: workflows.NotifyStarted, Name: "kafka-3-7-1", Version: "3.7.1",
			Text:     "Rollout kafka-3-7-1 to 3.7.1 started by alice: 2034 clusters in 3 phases (plan 2105aa93f4a0).",
			PlanHash: "2105aa93f4a0", Total: 2034, State: workflows.StateRunning,
		},
		{
			RolloutID: rolloutID, Event: workflows.NotifyPaused, Name: "kafka-3-7-1", State: workflows.StatePaused,
			Text:   "Paused by fleet-safety: monitor kafka-under-replicated-partitions fired on cluster lkc-00042 (batch 7): URP > 0",
			Total:  2034,
			Counts: &workflows.Counts{Done: 140, InFlight: 0, Held: 12, Pending: 1882},
			Paused: &workflows.PauseReason{
				Actor:  "fleet-safety",
				Reason: "monitor kafka-under-replicated-partitions fired on cluster lkc-00042 (batch 7): URP > 0",
				At:     pausedAt,
				Incident: &workflows.Incident{
					Kind: workflows.IncidentMonitorAlert, Batch: 7, ClusterID: "lkc-00042",
					Monitor: "kafka-under-replicated-partitions", Message: "URP > 0", At: pausedAt,
				},
			},
		},
		{
			RolloutID: rolloutID, Event: workflows.NotifyResumed, Name: "kafka-3-7-1", State: workflows.StateRunning,
			Text: "Resumed by alice. lag recovered",
		},
		{
			RolloutID: rolloutID, Event: workflows.NotifyFinished, Name: "kafka-3-7-1", State: workflows.StateCompleted,
			Text:   "Rollout kafka-3-7-1 completed: 2030 done, 4 failed, 0 aborted, 0 skipped of 2034 in 1h2m3s.",
			Total:  2034,
			Counts: &workflows.Counts{Done: 2030, Failed: 4},
		},
	}
}

// postAll posts like the Rollout workflow's notifier does: the first answer
// becomes the thread of the rest.
func postAll(t *testing.T, n Notifier, notes []workflows.Notification) string {
	t.Helper()
	thread := ""
	for _, note := range notes {
		note.ThreadTS = thread
		got, err := n.Post(context.Background(), note)
		require.NoError(t, err, "post %s", note.Event)
		if thread == "" {
			thread = got
		} else {
			require.Equal(t, thread, got, "a reply returns the thread it replied in")
		}
	}
	return thread
}

func TestSlackPostsOneThreadPerRollout(t *testing.T) {
	rc := &recorder{}
	s := NewSlack(slackServer(t, rc.postMessage), "C0FLEET", zaptest.NewLogger(t))

	notes := lifecycle()
	thread := postAll(t, s, notes)

	msgs := rc.messages()
	require.Len(t, msgs, 4, "one message per event, never one per cluster")
	assert.Equal(t, msgs[0].TS, thread)
	assert.Empty(t, msgs[0].ThreadTS, "the first message is the thread's parent")
	for i, m := range msgs {
		assert.Equal(t, "C0FLEET", m.Channel)
		assert.Equal(t, escape(notes[i].Text), m.Text, "n.Text (escaped for mrkdwn) is the fallback text")
		assert.NotEmpty(t, m.Blocks.BlockSet, "Block Kit message")
		if i > 0 {
			assert.Equal(t, msgs[0].TS, m.ThreadTS, "message %d replies in the thread", i)
		}
	}
	assert.False(t, msgs[0].Broadcast)
	assert.True(t, msgs[1].Broadcast, "paused is broadcast to the channel")
	assert.False(t, msgs[2].Broadcast, "resumed stays in the thread")
	assert.True(t, msgs[3].Broadcast, "finished is broadcast to the channel")

	// started: version, total, plan hash; a pause button.
	started := blockText(msgs[0].Blocks)
	for _, want := range []string{"kafka-3-7-1", "3.7.1", "2034", "2105aa93f4a0", "started by alice"} {
		assert.Contains(t, started, want)
	}
	assert.Equal(t, []string{ActionPause}, actionIDs(msgs[0].Blocks))

	// paused: who, why, the incident's cluster and monitor, counts, Resume + Abort.
	paused := blockText(msgs[1].Blocks)
	for _, want := range []string{
		"fleet-safety",
		"monitor kafka-under-replicated-partitions fired on cluster lkc-00042 (batch 7): URP &gt; 0",
		"lkc-00042", "kafka-under-replicated-partitions", "<!date^1772619300^",
		"140 done", "12 held", "1882 pending of 2034",
	} {
		assert.Contains(t, paused, want)
	}
	btns := buttonsOf(msgs[1].Blocks)
	require.Len(t, btns, 2)
	assert.Equal(t, ActionResume, btns[0].ActionID)
	assert.Equal(t, ActionAbort, btns[1].ActionID)
	assert.Equal(t, slack.StyleDanger, btns[1].Style, "abort is styled danger")
	require.NotNil(t, btns[1].Confirm, "abort asks for confirmation")
	for _, b := range btns {
		var v ActionValue
		require.NoError(t, json.Unmarshal([]byte(b.Value), &v), b.Value)
		assert.Equal(t, ActionValue{Rollout: rolloutID}, v)
	}

	assert.Equal(t, []string{ActionPause}, actionIDs(msgs[2].Blocks))

	// finished: the state, the counts and the duration; no buttons.
	finished := blockText(msgs[3].Blocks)
	for _, want := range []string{"completed", "2030 done", "4 failed", "of 2034", "1h2m3s"} {
		assert.Contains(t, finished, want)
	}
	assert.Empty(t, actionIDs(msgs[3].Blocks))
}

func TestSlackApprovalButtons(t *testing.T) {
	rc := &recorder{}
	s := NewSlack(slackServer(t, rc.postMessage), "C0FLEET", zaptest.NewLogger(t))
	ctx := context.Background()

	_, err := s.Post(ctx, workflows.Notification{
		RolloutID: rolloutID, Event: workflows.NotifyApproval, ThreadTS: "1.000100",
		Text: "Waiting for plan approval", PlanHash: "2105aa93f4a0",
	})
	require.NoError(t, err)
	_, err = s.Post(ctx, workflows.Notification{
		RolloutID: rolloutID, Event: workflows.NotifyApproval, ThreadTS: "1.000100",
		Text: "Waiting for approval of phase prod", Phase: "prod", PlanHash: "2105aa93f4a0",
		Actions: []string{ActionApprovePhase},
	})
	require.NoError(t, err)

	msgs := rc.messages()
	require.Len(t, msgs, 2)
	assert.True(t, msgs[0].Broadcast && msgs[1].Broadcast, "approval-needed is broadcast")

	plan := buttonsOf(msgs[0].Blocks)
	require.Len(t, plan, 2)
	assert.Equal(t, ActionApprovePlan, plan[0].ActionID)
	assert.JSONEq(t, `{"rollout":"rollout/kafka-3-7-1","planHash":"2105aa93f4a0"}`, plan[0].Value)
	assert.Equal(t, ActionAbort, plan[1].ActionID)

	phase := buttonsOf(msgs[1].Blocks)
	require.Len(t, phase, 1, "only the actions the notification lists")
	assert.Equal(t, ActionApprovePhase, phase[0].ActionID)
	assert.JSONEq(t, `{"rollout":"rollout/kafka-3-7-1","phase":"prod"}`, phase[0].Value)
	assert.Contains(t, blockText(msgs[1].Blocks), "phase *prod*")
}

func TestSlackButtonsFollowActions(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	for _, tc := range []struct {
		name string
		n    workflows.Notification
		want []string
	}{
		{"explicit order, duplicates once", workflows.Notification{Event: workflows.NotifyPaused,
			Actions: []string{ActionAbort, ActionResume, ActionAbort}}, []string{ActionAbort, ActionResume}},
		{"unknown and unbuildable left out", workflows.Notification{Event: workflows.NotifyStarted,
			Actions: []string{"reboot", ActionApprovePlan, ActionPause}}, []string{ActionPause}},
		{"paused defaults", workflows.Notification{Event: workflows.NotifyPaused}, []string{ActionResume, ActionAbort}},
		{"approval without hash or phase offers abort only", workflows.Notification{Event: workflows.NotifyApproval},
			[]string{ActionAbort}},
		{"phase-done defaults", workflows.Notification{Event: workflows.NotifyPhaseDone, Phase: "canary"}, []string{ActionPause}},
		{"finished has none", workflows.Notification{Event: workflows.NotifyFinished, State: workflows.StateAborted}, nil},
		{"terminal state has none", workflows.Notification{Event: workflows.NotifyPaused, State: workflows.StateFailed}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.n.RolloutID = rolloutID
			m := render(tc.n, zap.New(core))
			assert.Equal(t, tc.want, actionIDs(slack.Blocks{BlockSet: m.blocks}))
		})
	}
	assert.Equal(t, 2, logs.FilterMessage("slack button left out").Len(), "explicitly requested buttons that cannot be built are logged")
}

func TestSlackRendersWithTextOnly(t *testing.T) {
	// The workflow may send only the event and the text: the message still
	// reads well, escapes Slack's control characters and survives a round trip
	// through Slack's block types.
	n := workflows.Notification{RolloutID: rolloutID, Event: workflows.NotifyPaused,
		Text: "Paused by bob: <!channel> lag & more"}
	m := render(n, zap.NewNop())
	assert.Equal(t, "Paused by bob: &lt;!channel&gt; lag &amp; more", m.fallback)
	raw, err := json.Marshal(slack.Blocks{BlockSet: m.blocks})
	require.NoError(t, err)
	var back slack.Blocks
	require.NoError(t, json.Unmarshal(raw, &back))
	text := blockText(back)
	assert.Contains(t, text, "*kafka-3-7-1* paused")
	assert.Contains(t, text, "&lt;!channel&gt;")
	assert.NotContains(t, text, "<!channel>")
	assert.Equal(t, []string{ActionResume, ActionAbort}, actionIDs(back))
}

func TestSlackErrors(t *testing.T) {
	answer := func(status int, header http.Header, body map[string]any) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			for k, v := range header {
				w.Header()[k] = v
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(body)
		}
	}
	n := workflows.Notification{RolloutID: rolloutID, Event: workflows.NotifyPaused, Text: "paused", ThreadTS: "1.1"}

	t.Run("channel_not_found is permanent", func(t *testing.T) {
		s := NewSlack(slackServer(t, answer(200, nil, map[string]any{"ok": false, "error": "channel_not_found"})), "C0GONE", zaptest.NewLogger(t))
		_, err := s.Post(context.Background(), n)
		require.Error(t, err)
		assert.True(t, IsPermanent(err))
		var p *PermanentError
		require.ErrorAs(t, err, &p)
		assert.Equal(t, "channel_not_found", p.Code)
		assert.Contains(t, err.Error(), "post paused notification for rollout/kafka-3-7-1 to C0GONE")
		var se slack.SlackErrorResponse
		assert.ErrorAs(t, err, &se, "the Slack error stays reachable")
	})
	t.Run("invalid_auth is permanent", func(t *testing.T) {
		s := NewSlack(slackServer(t, answer(200, nil, map[string]any{"ok": false, "error": "invalid_auth"})), "C0FLEET", zaptest.NewLogger(t))
		_, err := s.Post(context.Background(), n)
		assert.True(t, IsPermanent(err), "%v", err)
		assert.True(t, IsPermanent(fmt.Errorf("activity: %w", err)), "seen through wrapping")
	})
	t.Run("4xx status is permanent", func(t *testing.T) {
		s := NewSlack(slackServer(t, answer(http.StatusForbidden, nil, map[string]any{})), "C0FLEET", zaptest.NewLogger(t))
		_, err := s.Post(context.Background(), n)
		assert.True(t, IsPermanent(err), "%v", err)
	})
	t.Run("rate limit is returned as is", func(t *testing.T) {
		s := NewSlack(slackServer(t, answer(http.StatusTooManyRequests, http.Header{"Retry-After": {"3"}},
			map[string]any{"ok": false, "error": "ratelimited"})), "C0FLEET", zaptest.NewLogger(t))
		_, err := s.Post(context.Background(), n)
		rl, ok := err.(*slack.RateLimitedError)
		require.True(t, ok, "got %T %v", err, err)
		assert.Equal(t, 3*time.Second, rl.RetryAfter)
		assert.False(t, IsPermanent(err))
		d, ok := RetryAfter(err)
		assert.True(t, ok)
		assert.Equal(t, 3*time.Second, d)
	})
	t.Run("server trouble is retryable with context", func(t *testing.T) {
		s := NewSlack(slackServer(t, answer(200, nil, map[string]any{"ok": false, "error": "internal_error"})), "C0FLEET", zaptest.NewLogger(t))
		_, err := s.Post(context.Background(), n)
		require.Error(t, err)
		assert.False(t, IsPermanent(err))
		assert.Contains(t, err.Error(), "slack: post paused notification for rollout/kafka-3-7-1")
		assert.Contains(t, err.Error(), "internal_error")

		s = NewSlack(slackServer(t, answer(http.StatusServiceUnavailable, nil, map[string]any{})), "C0FLEET", zaptest.NewLogger(t))
		_, err = s.Post(context.Background(), n)
		require.Error(t, err)
		assert.False(t, IsPermanent(err), "%v", err)
	})
	t.Run("not configured is permanent", func(t *testing.T) {
		_, err := NewSlack(nil, "C0FLEET", nil).Post(context.Background(), n)
		assert.True(t, IsPermanent(err))
	})
}

func TestLogNotifier(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	var n Notifier = NewLog(zap.New(core))
	notes := lifecycle()
	thread := postAll(t, n, notes)
	assert.Empty(t, thread, "a log has no thread")
	entries := logs.FilterMessage("notification").All()
	require.Len(t, entries, 4)
	paused := entries[1].ContextMap()
	assert.Equal(t, rolloutID, paused["rollout"])
	assert.Equal(t, "paused", paused["event"])
	assert.Equal(t, "lkc-00042", paused["cluster"])
	assert.Equal(t, "kafka-under-replicated-partitions", paused["monitor"])
	assert.Equal(t, notes[1].Text, paused["text"])
}

// --- block helpers ---

// blockText is every text of sections (text and fields) and context blocks.
func blockText(b slack.Blocks) string {
	var sb strings.Builder
	for _, blk := range b.BlockSet {
		switch v := blk.(type) {
		case *slack.SectionBlock:
			if v.Text != nil {
				sb.WriteString(v.Text.Text + "\n")
			}
			for _, f := range v.Fields {
				sb.WriteString(f.Text + "\n")
			}
		case *slack.ContextBlock:
			for _, e := range v.ContextElements.Elements {
				if t, ok := e.(*slack.TextBlockObject); ok {
					sb.WriteString(t.Text + "\n")
				}
			}
		}
	}
	return sb.String()
}

func buttonsOf(b slack.Blocks) []*slack.ButtonBlockElement {
	var out []*slack.ButtonBlockElement
	for _, blk := range b.BlockSet {
		if a, ok := blk.(*slack.ActionBlock); ok && a.Elements != nil {
			for _, e := range a.Elements.ElementSet {
				if btn, ok := e.(*slack.ButtonBlockElement); ok {
					out = append(out, btn)
				}
			}
		}
	}
	return out
}

func actionIDs(b slack.Blocks) []string {
	var ids []string
	for _, btn := range buttonsOf(b) {
		ids = append(ids, btn.ActionID)
	}
	return ids
}
