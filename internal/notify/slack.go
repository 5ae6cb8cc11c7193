package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/slack-go/slack"
	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/workflows"
)

// Slack posts notifications to one channel, one thread per rollout.
type Slack struct {
	client  *slack.Client
	channel string
	log     *zap.Logger
}

// NewSlack returns a Notifier posting to channel (an ID like C0123 or a name
// like #fleet-rollouts) with client. A nil logger discards.
func NewSlack(client *slack.Client, channel string, log *zap.Logger) *Slack {
	if log == nil {
		log = zap.NewNop()
	}
	return &Slack{client: client, channel: channel, log: log}
}

// Post sends n. Without n.ThreadTS the message starts the rollout's thread and
// its ts is returned; otherwise it replies in the thread (paused, finished and
// approval-needed replies are also broadcast to the channel) and n.ThreadTS is
// returned.
//
// Errors: Slack's answers that retrying cannot fix (channel_not_found,
// invalid_auth, missing_scope, invalid_blocks, a 4xx status...) come back as
// *PermanentError; a rate limit comes back as the *slack.RateLimitedError
// itself (retryable, see RetryAfter); anything else is wrapped with context
// and is worth retrying.
func (s *Slack) Post(ctx context.Context, n workflows.Notification) (string, error) {
	op := fmt.Sprintf("slack: post %s notification for %s to %s", n.Event, n.RolloutID, s.channel)
	if s.client == nil || s.channel == "" {
		return "", &PermanentError{Op: op, Code: "not_configured", Err: errors.New("no Slack client or channel configured")}
	}
	m := render(n, s.log)
	opts := []slack.MsgOption{
		slack.MsgOptionText(m.fallback, false),
		slack.MsgOptionBlocks(m.blocks...),
		slack.MsgOptionDisableLinkUnfurl(),
		slack.MsgOptionDisableMediaUnfurl(),
	}
	if n.ThreadTS != "" {
		opts = append(opts, slack.MsgOptionTS(n.ThreadTS))
		if broadcast(n.Event) {
			opts = append(opts, slack.MsgOptionBroadcast())
		}
	}
	_, ts, err := s.client.PostMessageContext(ctx, s.channel, opts...)
	if err != nil {
		err = classify(op, err)
		s.log.Warn("slack notification failed", zap.String("rollout", n.RolloutID),
			zap.String("event", string(n.Event)), zap.Bool("permanent", IsPermanent(err)), zap.Error(err))
		return "", err
	}
	if n.ThreadTS != "" {
		return n.ThreadTS, nil
	}
	if ts == "" {
		// Slack always answers with the message's ts; without it the next
		// message would start a second thread.
		return "", fmt.Errorf("%s: Slack answered without a message ts", op)
	}
	return ts, nil
}

// broadcast says which thread replies are also shown in the channel.
func broadcast(e workflows.NotifyEvent) bool {
	switch e {
	case workflows.NotifyPaused, workflows.NotifyFinished, workflows.NotifyApproval:
		return true
	}
	return false
}

// permanentCodes are Slack error codes that the same request will get again:
// authentication, authorization, channel and message-content errors.
var permanentCodes = setOf(
	// authentication and the app's installation
	"not_authed", "invalid_auth", "account_inactive", "token_revoked", "token_expired",
	"no_permission", "missing_scope", "not_allowed_token_type", "access_denied",
	"ekm_access_denied", "team_access_not_granted", "org_login_required",
	"two_factor_setup_required", "enterprise_is_restricted",
	// the channel
	"channel_not_found", "not_in_channel", "is_archived", "restricted_action",
	"restricted_action_read_only_channel", "restricted_action_thread_only_channel",
	"restricted_action_non_threadable_channel", "posting_to_general_channel_denied",
	"cannot_reply_to_message", "messages_tab_disabled", "as_user_not_supported",
	// the message itself
	"invalid_blocks", "invalid_blocks_format", "msg_too_long", "no_text",
	"too_many_attachments", "too_many_contact_cards", "attachment_payload_limit_exceeded",
	"invalid_metadata_format", "invalid_metadata_schema", "metadata_too_large",
	"metadata_must_be_sent_from_app",
	// the request
	"invalid_arguments", "invalid_arg_name", "invalid_array_arg", "invalid_charset",
	"invalid_form_data", "invalid_post_type", "missing_post_type", "deprecated_endpoint",
	"method_deprecated",
)

func setOf(s ...string) map[string]bool {
	m := make(map[string]bool, len(s))
	for _, v := range s {
		m[v] = true
	}
	return m
}

// classify turns a slack-go error into this package's error contract.
func classify(op string, err error) error {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return rl
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) && permanentCodes[se.Err] {
		return &PermanentError{Op: op, Code: se.Err, Err: err}
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) && !sc.Retryable() && sc.Code >= 400 && sc.Code < 500 &&
		sc.Code != http.StatusRequestTimeout {
		return &PermanentError{Op: op, Code: strconv.Itoa(sc.Code), Err: err}
	}
	return fmt.Errorf("%s: %w", op, err)
}
