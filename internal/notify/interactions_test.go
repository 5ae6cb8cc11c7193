package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
)

const secret = "8f742231b10e8888abcd99yyyzzz85a5"

// actionCall is one call to fakeActions.
type actionCall struct {
	Method, Rollout, Actor, Reason, PlanHash, Phase string
}

// fakeActions records calls and answers with msg or err.
type fakeActions struct {
	mu    sync.Mutex
	calls []actionCall
	msg   string
	err   error
}

func (f *fakeActions) record(c actionCall) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
	return f.msg, f.err
}

func (f *fakeActions) Pause(_ context.Context, id, actor, reason string) (string, error) {
	return f.record(actionCall{Method: "Pause", Rollout: id, Actor: actor, Reason: reason})
}

func (f *fakeActions) Resume(_ context.Context, id, actor, reason string) (string, error) {
	return f.record(actionCall{Method: "Resume", Rollout: id, Actor: actor, Reason: reason})
}

func (f *fakeActions) Abort(_ context.Context, id, actor, reason string) (string, error) {
	return f.record(actionCall{Method: "Abort", Rollout: id, Actor: actor, Reason: reason})
}

func (f *fakeActions) Approve(_ context.Context, id, actor, planHash, phase string) (string, error) {
	return f.record(actionCall{Method: "Approve", Rollout: id, Actor: actor, PlanHash: planHash, Phase: phase})
}

func (f *fakeActions) Calls() []actionCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]actionCall(nil), f.calls...)
}

// responseURL captures what the handler posts to a payload's response_url.
type responseURL struct {
	srv  *httptest.Server
	mu   sync.Mutex
	msgs []map[string]any
}

func newResponseURL(t *testing.T) *responseURL {
	r := &responseURL{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var m map[string]any
		if err := json.NewDecoder(req.Body).Decode(&m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if req.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "want JSON", http.StatusUnsupportedMediaType)
			return
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, m)
		r.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *responseURL) Messages() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.msgs...)
}

// blockActions is a block_actions payload as Slack sends it for a button.
func blockActions(actionID, value, responseURL string) string {
	p := map[string]any{
		"type":         "block_actions",
		"user":         map[string]any{"id": "U024BE7LH", "username": "alice", "name": "alice", "team_id": "T1"},
		"api_app_id":   "A1",
		"team":         map[string]any{"id": "T1", "domain": "fleet"},
		"channel":      map[string]any{"id": "C0FLEET", "name": "fleet-rollouts"},
		"container":    map[string]any{"type": "message", "message_ts": "1700000000.000200", "channel_id": "C0FLEET"},
		"trigger_id":   "123.456.abc",
		"response_url": responseURL,
		"message":      map[string]any{"type": "message", "ts": "1700000000.000200", "text": "Paused"},
		"actions": []map[string]any{{
			"type": "button", "action_id": actionID, "block_id": actionsBlockID, "value": value,
			"text": map[string]any{"type": "plain_text", "text": "Resume"}, "action_ts": "1700000001.000000",
		}},
	}
	b, err := json.Marshal(p)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func formBody(payload string) []byte {
	return []byte(url.Values{"payload": {payload}}.Encode())
}

type sendOpts struct {
	secret string // "" leaves the request unsigned
	now    time.Time
	tamper func(req *http.Request)
}

// send serves one request with h and waits for the actions it started.
func send(t *testing.T, h http.Handler, body []byte, o sendOpts) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/slack/interactions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if o.secret != "" {
		now := o.now
		if now.IsZero() {
			now = time.Now()
		}
		SignRequest(req, body, o.secret, now)
	}
	if o.tamper != nil {
		o.tamper(req)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	h.(*interactionHandler).inflight.Wait()
	return rec
}

func TestInteractionResumeCallsActions(t *testing.T) {
	acts := &fakeActions{msg: "resumed; 3 batches continuing"}
	resp := newResponseURL(t)
	h := NewInteractionHandler(secret, acts, zaptest.NewLogger(t))

	body := formBody(blockActions(ActionResume, `{"rollout":"rollout/kafka-3-7-1"}`, resp.srv.URL+"/actions/T1/1/abc"))
	start := time.Now()
	rec := send(t, h, body, sendOpts{secret: secret})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Less(t, time.Since(start), 3*time.Second)

	assert.Equal(t, []actionCall{{Method: "Resume", Rollout: "rollout/kafka-3-7-1",
		Actor: "slack:U024BE7LH", Reason: "via Slack"}}, acts.Calls())

	msgs := resp.Messages()
	require.Len(t, msgs, 1)
	assert.Equal(t, "ephemeral", msgs[0]["response_type"])
	assert.Equal(t, false, msgs[0]["replace_original"])
	assert.Contains(t, msgs[0]["text"], "Resume `rollout/kafka-3-7-1`: resumed; 3 batches continuing")
}

func TestInteractionRejectionReachesResponseURL(t *testing.T) {
	acts := &fakeActions{err: errors.New("rollout is already paused (by fleet-safety: monitor fired)")}
	resp := newResponseURL(t)
	h := NewInteractionHandler(secret, acts, zaptest.NewLogger(t))

	rec := send(t, h, formBody(blockActions(ActionPause, `{"rollout":"rollout/kafka-3-7-1"}`, resp.srv.URL)), sendOpts{secret: secret})
	require.Equal(t, http.StatusOK, rec.Code)
	require.Len(t, acts.Calls(), 1)
	assert.Equal(t, "Pause", acts.Calls()[0].Method)

	msgs := resp.Messages()
	require.Len(t, msgs, 1)
	assert.Equal(t, "ephemeral", msgs[0]["response_type"])
	assert.Contains(t, msgs[0]["text"], "Could not pause `rollout/kafka-3-7-1`: rollout is already paused (by fleet-safety: monitor fired)")
}

func TestInteractionDispatch(t *testing.T) {
	for _, tc := range []struct {
		action, value string
		want          actionCall
	}{
		{ActionPause, `{"rollout":"rollout/a"}`, actionCall{Method: "Pause", Rollout: "rollout/a", Reason: SlackReason}},
		{ActionAbort, `{"rollout":"rollout/a"}`, actionCall{Method: "Abort", Rollout: "rollout/a", Reason: SlackReason}},
		{ActionApprovePlan, `{"rollout":"rollout/a","planHash":"2105aa93f4a0"}`,
			actionCall{Method: "Approve", Rollout: "rollout/a", PlanHash: "2105aa93f4a0"}},
		{ActionApprovePhase, `{"rollout":"rollout/a","phase":"prod"}`,
			actionCall{Method: "Approve", Rollout: "rollout/a", Phase: "prod"}},
	} {
		t.Run(tc.action, func(t *testing.T) {
			acts := &fakeActions{msg: "ok"}
			h := NewInteractionHandler(secret, acts, zaptest.NewLogger(t))
			rec := send(t, h, formBody(blockActions(tc.action, tc.value, "")), sendOpts{secret: secret})
			require.Equal(t, http.StatusOK, rec.Code)
			tc.want.Actor = "slack:U024BE7LH"
			assert.Equal(t, []actionCall{tc.want}, acts.Calls())
		})
	}
}

func TestInteractionRejectsBadSignatures(t *testing.T) {
	body := formBody(blockActions(ActionAbort, `{"rollout":"rollout/kafka-3-7-1"}`, "http://127.0.0.1:1/never"))
	for _, tc := range []struct {
		name string
		o    sendOpts
	}{
		{"unsigned", sendOpts{}},
		{"wrong secret", sendOpts{secret: "not-the-secret"}},
		{"stale timestamp", sendOpts{secret: secret, now: time.Now().Add(-10 * time.Minute)}},
		{"future timestamp", sendOpts{secret: secret, now: time.Now().Add(10 * time.Minute)}},
		{"signature without timestamp", sendOpts{secret: secret, tamper: func(r *http.Request) {
			r.Header.Del("X-Slack-Request-Timestamp")
		}}},
		{"timestamp replaced", sendOpts{secret: secret, tamper: func(r *http.Request) {
			r.Header.Set("X-Slack-Request-Timestamp", "1700000000")
		}}},
		{"body tampered", sendOpts{secret: secret, tamper: func(r *http.Request) {
			tampered := formBody(blockActions(ActionAbort, `{"rollout":"rollout/other"}`, ""))
			r.Body = io.NopCloser(bytes.NewReader(tampered))
			r.ContentLength = int64(len(tampered))
		}}},
		{"garbage signature", sendOpts{secret: secret, tamper: func(r *http.Request) {
			r.Header.Set("X-Slack-Signature", "v0=zz")
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acts := &fakeActions{}
			h := NewInteractionHandler(secret, acts, zaptest.NewLogger(t))
			rec := send(t, h, body, tc.o)
			assert.Equal(t, http.StatusUnauthorized, rec.Code)
			assert.Empty(t, acts.Calls(), "nothing is called without a valid signature")
		})
	}
	t.Run("no secret configured", func(t *testing.T) {
		acts := &fakeActions{}
		h := NewInteractionHandler("", acts, zaptest.NewLogger(t))
		rec := send(t, h, body, sendOpts{secret: "anything"})
		assert.Equal(t, http.StatusUnauthorized, rec.Code)
		assert.Empty(t, acts.Calls())
	})
}

func TestInteractionMalformed(t *testing.T) {
	for _, tc := range []struct {
		name string
		body []byte
		code int
	}{
		{"no payload", []byte("token=x"), http.StatusBadRequest},
		{"payload not JSON", formBody("{not json"), http.StatusBadRequest},
		{"payload without type", formBody(`{"user":{"id":"U1"}}`), http.StatusBadRequest},
		{"bad form encoding", []byte("payload=%zz"), http.StatusBadRequest},
		{"button value not JSON", formBody(blockActions(ActionResume, "rollout/x", "")), http.StatusBadRequest},
		{"button value without rollout", formBody(blockActions(ActionResume, `{}`, "")), http.StatusBadRequest},
		{"approve-plan without hash", formBody(blockActions(ActionApprovePlan, `{"rollout":"rollout/x"}`, "")), http.StatusBadRequest},
		{"approve-phase without phase", formBody(blockActions(ActionApprovePhase, `{"rollout":"rollout/x"}`, "")), http.StatusBadRequest},
		{"someone else's button", formBody(blockActions("open-runbook", "https://runbooks", "")), http.StatusOK},
		{"other interaction type", formBody(`{"type":"view_closed","user":{"id":"U1"}}`), http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acts := &fakeActions{}
			h := NewInteractionHandler(secret, acts, zaptest.NewLogger(t))
			rec := send(t, h, tc.body, sendOpts{secret: secret})
			assert.Equal(t, tc.code, rec.Code, rec.Body.String())
			assert.Empty(t, acts.Calls())
		})
	}
	t.Run("GET", func(t *testing.T) {
		h := NewInteractionHandler(secret, &fakeActions{}, zaptest.NewLogger(t))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	})
}

func TestInteractionAnswersBeforeSlowActions(t *testing.T) {
	release := make(chan struct{})
	acts := &blockingActions{fakeActions: &fakeActions{msg: "paused"}, release: release}
	resp := newResponseURL(t)
	h := NewInteractionHandler(secret, acts, zaptest.NewLogger(t))
	body := formBody(blockActions(ActionPause, `{"rollout":"rollout/a"}`, resp.srv.URL))
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	SignRequest(req, body, secret, time.Now())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req) // returns while Pause is still blocked
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Empty(t, resp.Messages())
	close(release)
	h.(*interactionHandler).inflight.Wait()
	require.Len(t, resp.Messages(), 1)
	assert.Contains(t, resp.Messages()[0]["text"], "paused")
}

type blockingActions struct {
	*fakeActions
	release chan struct{}
}

func (b *blockingActions) Pause(ctx context.Context, id, actor, reason string) (string, error) {
	select {
	case <-b.release:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return b.fakeActions.Pause(ctx, id, actor, reason)
}

func TestSignRequestMatchesSlack(t *testing.T) {
	// Slack's documented example (docs.slack.dev, "Verifying requests from
	// Slack"), as used by slack-go's own tests.
	body := []byte(`{"token":"aF5ynEYQH0dFN9imlgcADxDB","team_id":"XXXXXXXXX","api_app_id":"YYYYYYYYY","event":{"type":"app_mention","user":"AAAAAAAAA","text":"<@EEEEEEEEE> hello world","client_msg_id":"477cc591-ch73-a14z-4db8-g0cd76321bec","ts":"1531431954.000073","channel":"TTTTTTTTT","event_ts":"1531431954.000073"},"type":"event_callback","event_id":"TvBP7LRED7","event_time":1531431954,"authed_users":["EEEEEEEEE"]}`)
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	SignRequest(req, body, "e6b19c573432dcc6b075501d51b51bb8", time.Unix(1531431954, 0))
	assert.Equal(t, "1531431954", req.Header.Get("X-Slack-Request-Timestamp"))
	assert.Equal(t, "v0=adada4ed31709aef585c2580ca3267678c6a8eaeb7e0c1aca3ee57b656886b2c", req.Header.Get("X-Slack-Signature"))

	// And slack-go's verifier accepts a fresh one.
	req = httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	SignRequest(req, body, secret, time.Now())
	sv, err := slack.NewSecretsVerifier(req.Header, secret)
	require.NoError(t, err)
	_, _ = sv.Write(body)
	assert.NoError(t, sv.Ensure())
}

func TestSlackActor(t *testing.T) {
	assert.Equal(t, "slack:U1", SlackActor(slack.User{ID: "U1", Name: "alice"}))
	assert.Equal(t, "slack:U1", SlackActor(slack.User{ID: "U1", Name: "alice", Username: "al"}))
	assert.Equal(t, "slack:U1", SlackActor(slack.User{ID: "U1"}))
	assert.Equal(t, "slack:unknown", SlackActor(slack.User{Name: "alice"}), "a handle is not an identity")
	assert.True(t, strings.HasPrefix(SlackActor(slack.User{}), "slack:"))
}

// TestInteractionOtherWorkspaceRefused: a correctly signed request from a
// workspace other than the configured one calls nothing.
func TestInteractionOtherWorkspaceRefused(t *testing.T) {
	acts := &fakeActions{msg: "ok"}
	resp := newResponseURL(t)
	body := formBody(blockActions(ActionResume, `{"rollout":"rollout/a"}`, resp.srv.URL+"/r"))

	h := NewInteractionHandler(secret, acts, zaptest.NewLogger(t), WithTeamID("T-OTHER"))
	rec := send(t, h, body, sendOpts{secret: secret})
	require.Equal(t, http.StatusForbidden, rec.Code, rec.Body.String())
	assert.Empty(t, acts.Calls())

	h = NewInteractionHandler(secret, acts, zaptest.NewLogger(t), WithTeamID("T1"))
	rec = send(t, h, body, sendOpts{secret: secret})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Len(t, acts.Calls(), 1)
}
