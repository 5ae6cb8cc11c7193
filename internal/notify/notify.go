// Package notify tells people about rollouts and lets them act on them.
//
// Outbound, a Notifier posts one workflows.Notification per rollout event:
// Slack posts Block Kit messages in one thread per rollout (the first message
// is the thread's parent, later ones reply in it, and the important ones are
// also broadcast to the channel); Log writes them to the log when no Slack
// token is configured.
//
// Inbound, NewInteractionHandler serves Slack's interactivity requests (the
// buttons on those messages): it checks Slack's request signature, decodes the
// button, calls Actions (pause, resume, abort, approve) and answers the person
// who clicked with an ephemeral message through the payload's response_url.
package notify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slack-go/slack"
	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/workflows"
)

// Notifier posts one notification to a rollout's thread and returns the
// thread's ID (Slack: the parent message's ts) for the next notifications.
type Notifier interface {
	Post(ctx context.Context, n workflows.Notification) (threadTS string, err error)
}

var (
	_ Notifier = (*Slack)(nil)
	_ Notifier = (*Log)(nil)
)

// Log is the Notifier used when no Slack token is set: it writes each
// notification to the log.
type Log struct {
	log *zap.Logger
}

// NewLog returns a Notifier that logs; a nil logger discards.
func NewLog(log *zap.Logger) *Log {
	if log == nil {
		log = zap.NewNop()
	}
	return &Log{log: log}
}

// Post logs the notification and returns n.ThreadTS unchanged (a log has no
// threads).
func (l *Log) Post(_ context.Context, n workflows.Notification) (string, error) {
	fields := []zap.Field{
		zap.String("rollout", n.RolloutID),
		zap.String("event", string(n.Event)),
		zap.String("text", n.Text),
	}
	if n.Phase != "" {
		fields = append(fields, zap.String("phase", n.Phase))
	}
	if n.State != "" {
		fields = append(fields, zap.String("state", string(n.State)))
	}
	if n.PlanHash != "" {
		fields = append(fields, zap.String("plan", n.PlanHash))
	}
	if n.Counts != nil {
		fields = append(fields, zap.String("counts", countsSummary(*n.Counts, n.Total)))
	}
	if p := n.Paused; p != nil {
		fields = append(fields, zap.String("pausedBy", p.Actor), zap.String("reason", p.Reason))
		if inc := p.Incident; inc != nil {
			fields = append(fields, zap.String("cluster", inc.ClusterID), zap.String("monitor", inc.Monitor))
		}
	}
	if len(n.Actions) > 0 {
		fields = append(fields, zap.Strings("actions", n.Actions))
	}
	l.log.Info("notification", fields...)
	return n.ThreadTS, nil
}

// PermanentError is a failure that retrying cannot fix: bad credentials, a
// missing channel or permission, a message Slack refuses. The Notify activity
// should stop retrying on it (see IsPermanent).
type PermanentError struct {
	// Op says what failed, e.g. `slack: post paused notification for rollout/x to #fleet`.
	Op string
	// Code is Slack's error code (channel_not_found, invalid_auth...) or the
	// HTTP status when Slack answered with one.
	Code string
	// Err is the underlying error.
	Err error
}

func (e *PermanentError) Error() string {
	return fmt.Sprintf("%s: %v (permanent)", e.Op, e.Err)
}

func (e *PermanentError) Unwrap() error { return e.Err }

// IsPermanent reports whether err (or an error it wraps) is a *PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// RetryAfter reports how long Slack asked to wait when err is (or wraps) a
// *slack.RateLimitedError.
func RetryAfter(err error) (time.Duration, bool) {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return rl.RetryAfter, true
	}
	return 0, false
}
