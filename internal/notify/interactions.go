package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"go.uber.org/zap"
)

// Actions are what Slack's buttons do to a rollout. Each returns a short
// outcome for the person who clicked, or an error saying why the action does
// not apply (e.g. "rollout is already paused"), which is shown to them too.
type Actions interface {
	Pause(ctx context.Context, rolloutID, actor, reason string) (string, error)
	Resume(ctx context.Context, rolloutID, actor, reason string) (string, error)
	Abort(ctx context.Context, rolloutID, actor, reason string) (string, error)
	Approve(ctx context.Context, rolloutID, actor, planHash, phase string) (string, error)
}

// SlackReason is the reason recorded for actions taken from Slack.
const SlackReason = "via Slack"

// Defaults of the interaction handler.
const (
	// DefaultActionTimeout bounds one action and the answer to response_url.
	DefaultActionTimeout = 30 * time.Second
	// maxInteractionBody bounds a request body; Slack's payloads carry the
	// clicked message, a few tens of KB at most.
	maxInteractionBody = 1 << 20
)

// HandlerOption configures NewInteractionHandler.
type HandlerOption func(*interactionHandler)

// WithHTTPClient sets the client that posts to response_url (default: one
// with a 10 s timeout).
func WithHTTPClient(c *http.Client) HandlerOption {
	return func(h *interactionHandler) {
		if c != nil {
			h.http = c
		}
	}
}

// WithActionTimeout bounds each action and its answer (default DefaultActionTimeout).
func WithActionTimeout(d time.Duration) HandlerOption {
	return func(h *interactionHandler) {
		if d > 0 {
			h.timeout = d
		}
	}
}

// WithTeamID accepts requests from this Slack workspace (team ID) only; a
// request from another workspace is refused (403) even with a valid
// signature: a signing secret belongs to an app, which may be installed in
// several workspaces.
func WithTeamID(id string) HandlerOption {
	return func(h *interactionHandler) { h.team = id }
}

type interactionHandler struct {
	team    string
	secret  string
	actions Actions
	log     *zap.Logger
	http    *http.Client
	timeout time.Duration
	// inflight tracks actions still running after the request was answered.
	inflight sync.WaitGroup
}

// NewInteractionHandler serves Slack's interactivity requests (the Request URL
// of the Slack app's Interactivity settings). It answers:
//
//   - 405 to anything but POST;
//   - 401 when the X-Slack-Signature / X-Slack-Request-Timestamp headers are
//     missing, wrong, or more than five minutes off; nothing is called;
//   - 400 when the payload form field is missing or malformed, or a fleet
//     button carries a value that does not decode;
//   - 200 otherwise, at once: the actions run after the answer (Slack wants
//     one within 3 s) and their outcome, or the reason they were rejected,
//     goes back to the clicking user as an ephemeral message through the
//     payload's response_url.
//
// Only block_actions with the action IDs of this package's buttons are acted
// on; other interaction types and actions are acknowledged and ignored. The
// actor is SlackActor(user) and the reason SlackReason.
//
// A valid request can be replayed within the five-minute window (Slack's
// scheme has no nonce); the rollout's actions are idempotent in effect (a
// second pause is rejected as "already paused").
func NewInteractionHandler(signingSecret string, actions Actions, log *zap.Logger, opts ...HandlerOption) http.Handler {
	if actions == nil {
		panic("notify: NewInteractionHandler needs Actions")
	}
	if log == nil {
		log = zap.NewNop()
	}
	h := &interactionHandler{
		secret:  signingSecret,
		actions: actions,
		log:     log,
		http:    &http.Client{Timeout: 10 * time.Second},
		timeout: DefaultActionTimeout,
	}
	for _, o := range opts {
		o(h)
	}
	if signingSecret == "" {
		log.Error("slack interactivity: no signing secret configured; every request will be rejected")
	}
	return h
}

// call is one decoded button click.
type call struct {
	actionID string
	value    ActionValue
}

func (h *interactionHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxInteractionBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read request body", http.StatusBadRequest)
		return
	}
	if err := verify(r.Header, body, h.secret); err != nil {
		h.log.Warn("slack interactivity: request rejected", zap.String("remote", r.RemoteAddr), zap.Error(err))
		http.Error(w, "invalid Slack signature", http.StatusUnauthorized)
		return
	}
	cb, err := parsePayload(body)
	if err != nil {
		h.log.Warn("slack interactivity: malformed payload", zap.Error(err))
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if h.team != "" && cb.Team.ID != h.team {
		h.log.Warn("slack interactivity: request from another workspace rejected", zap.String("team", cb.Team.ID), zap.String("user", cb.User.ID))
		http.Error(w, "this Slack workspace may not act on fleet rollouts", http.StatusForbidden)
		return
	}
	if cb.Type != slack.InteractionTypeBlockActions {
		h.log.Debug("slack interactivity: ignored", zap.String("type", string(cb.Type)))
		w.WriteHeader(http.StatusOK)
		return
	}
	calls, err := decodeCalls(cb)
	if err != nil {
		h.log.Warn("slack interactivity: malformed action", zap.String("user", cb.User.ID), zap.Error(err))
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
	if len(calls) == 0 {
		return
	}
	actor := SlackActor(cb.User)
	h.inflight.Add(1)
	go func() {
		defer h.inflight.Done()
		for _, c := range calls {
			h.run(c, actor, cb.ResponseURL)
		}
	}()
}

// verify checks Slack's v0 signature of body and the freshness of its
// timestamp (slack.NewSecretsVerifier rejects more than five minutes off).
func verify(header http.Header, body []byte, secret string) error {
	sv, err := slack.NewSecretsVerifier(header, secret)
	if err != nil {
		return fmt.Errorf("verify slack signature: %w", err)
	}
	if _, err := sv.Write(body); err != nil {
		return fmt.Errorf("verify slack signature: %w", err)
	}
	if err := sv.Ensure(); err != nil {
		return fmt.Errorf("verify slack signature: %w", err)
	}
	return nil
}

func parsePayload(body []byte) (slack.InteractionCallback, error) {
	var cb slack.InteractionCallback
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return cb, fmt.Errorf("malformed form body: %w", err)
	}
	raw := form.Get("payload")
	if raw == "" {
		return cb, errors.New("missing payload")
	}
	if err := json.Unmarshal([]byte(raw), &cb); err != nil {
		return cb, fmt.Errorf("malformed payload: %w", err)
	}
	if cb.Type == "" {
		return cb, errors.New("malformed payload: no type")
	}
	return cb, nil
}

// decodeCalls picks this package's buttons out of a block_actions payload.
func decodeCalls(cb slack.InteractionCallback) ([]call, error) {
	var calls []call
	for _, a := range cb.ActionCallback.BlockActions {
		if a == nil {
			continue
		}
		switch a.ActionID {
		case ActionApprovePlan, ActionApprovePhase, ActionPause, ActionResume, ActionAbort:
		default:
			continue // not ours (a link button, another app's block)
		}
		var v ActionValue
		if err := json.Unmarshal([]byte(a.Value), &v); err != nil {
			return nil, fmt.Errorf("action %s: malformed value: %w", a.ActionID, err)
		}
		switch {
		case v.Rollout == "":
			return nil, fmt.Errorf("action %s: value names no rollout", a.ActionID)
		case a.ActionID == ActionApprovePlan && v.PlanHash == "":
			return nil, fmt.Errorf("action %s: value has no plan hash", a.ActionID)
		case a.ActionID == ActionApprovePhase && v.Phase == "":
			return nil, fmt.Errorf("action %s: value has no phase", a.ActionID)
		}
		calls = append(calls, call{actionID: a.ActionID, value: v})
	}
	if len(calls) > 0 && cb.User.ID == "" && cb.User.Name == "" && cb.User.Username == "" {
		return nil, errors.New("payload names no user")
	}
	return calls, nil
}

// SlackActor is the actor a Slack user acts as: "slack:<user ID>", the name
// a policy lists as a person's alias (access.people.<name>.aliases), so the
// person's roles and the two-person rule follow them into Slack. Handles
// are not part of it: they change, and anyone may pick one.
func SlackActor(u slack.User) string {
	if u.ID != "" {
		return "slack:" + u.ID
	}
	return "slack:unknown"
}

// run performs one action and tells the user how it went.
func (h *interactionHandler) run(c call, actor, responseURL string) {
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	v := c.value
	var (
		msg  string
		err  error
		verb string
	)
	switch c.actionID {
	case ActionPause:
		verb = "pause"
		msg, err = h.actions.Pause(ctx, v.Rollout, actor, SlackReason)
	case ActionResume:
		verb = "resume"
		msg, err = h.actions.Resume(ctx, v.Rollout, actor, SlackReason)
	case ActionAbort:
		verb = "abort"
		msg, err = h.actions.Abort(ctx, v.Rollout, actor, SlackReason)
	case ActionApprovePlan:
		verb = "approve plan " + v.PlanHash + " of"
		msg, err = h.actions.Approve(ctx, v.Rollout, actor, v.PlanHash, "")
	case ActionApprovePhase:
		verb = "approve phase " + v.Phase + " of"
		msg, err = h.actions.Approve(ctx, v.Rollout, actor, "", v.Phase)
	}
	fields := []zap.Field{zap.String("rollout", v.Rollout), zap.String("action", c.actionID), zap.String("actor", actor)}
	var text string
	if err != nil {
		h.log.Info("slack action rejected", append(fields, zap.Error(err))...)
		text = fmt.Sprintf(":warning: Could not %s `%s`: %s", verb, escape(v.Rollout), escape(err.Error()))
	} else {
		h.log.Info("slack action applied", append(fields, zap.String("outcome", msg))...)
		text = fmt.Sprintf(":white_check_mark: %s `%s`", capitalize(verb), escape(v.Rollout))
		if msg != "" {
			text += ": " + escape(msg)
		}
	}
	if responseURL == "" {
		return
	}
	reply := &slack.WebhookMessage{
		ResponseType:    slack.ResponseTypeEphemeral,
		ReplaceOriginal: false,
		Text:            truncate(text, maxSectionText),
	}
	if err := slack.PostWebhookCustomHTTPContext(ctx, responseURL, h.http, reply); err != nil {
		h.log.Warn("slack interactivity: answer to response_url failed", append(fields, zap.Error(err))...)
	}
}

func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// SignRequest signs req the way Slack does: X-Slack-Request-Timestamp is
// now's Unix time and X-Slack-Signature is
// "v0=" + hex(HMAC-SHA256(secret, "v0:" + timestamp + ":" + body)). The body
// must be the request's body, byte for byte.
func SignRequest(req *http.Request, body []byte, secret string, now time.Time) {
	ts := strconv.FormatInt(now.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + ts + ":"))
	mac.Write(body)
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
}
