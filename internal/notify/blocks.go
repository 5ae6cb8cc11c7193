package notify

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"
	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/workflows"
)

// Button action IDs. Each button's value is an ActionValue as JSON.
const (
	ActionApprovePlan  = "approve-plan"
	ActionApprovePhase = "approve-phase"
	ActionPause        = "pause"
	ActionResume       = "resume"
	ActionAbort        = "abort"
)

// ActionValue is what a button carries: the rollout it acts on and, for the
// approvals, the plan hash or the phase being approved.
type ActionValue struct {
	Rollout  string `json:"rollout"`
	PlanHash string `json:"planHash,omitempty"`
	Phase    string `json:"phase,omitempty"`
}

// Block Kit limits (https://docs.slack.dev/reference/block-kit/blocks).
const (
	maxSectionText = 3000
	maxFieldText   = 2000
	maxFields      = 10
	maxButtonText  = 75
	maxButtonValue = 2000
	maxConfirmText = 300
)

// actionsBlockID names the buttons' block.
const actionsBlockID = "fleet-actions"

type message struct {
	fallback string
	blocks   []slack.Block
}

// render builds the Block Kit message for n. It never fails: detail that is
// missing is left out, and n.Text always carries the message.
func render(n workflows.Notification, log *zap.Logger) message {
	name := n.Name
	if name == "" {
		name = workflows.RolloutName(n.RolloutID)
	}
	title := headline(n, name)

	var blocks []slack.Block
	body := title
	switch {
	case n.Event == workflows.NotifyPaused && n.Paused != nil && n.Paused.Reason != "":
		// The text repeats who and why; the fields below say who.
		body += "\n*Reason:* " + escape(n.Paused.Reason)
	case n.Text != "":
		body += "\n" + escape(n.Text)
	}
	blocks = append(blocks, section(body))

	if fields := detailFields(n); len(fields) > 0 {
		blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil))
	}
	if n.Counts != nil {
		blocks = append(blocks, section("*Progress:* "+escape(countsSummary(*n.Counts, n.Total))))
	}
	blocks = append(blocks, contextLine(n))
	if buttons := buttons(n, name, log); len(buttons) > 0 {
		blocks = append(blocks, slack.NewActionBlock(actionsBlockID, buttons...))
	}

	fallback := n.Text
	if fallback == "" {
		fallback = fmt.Sprintf("%s: %s", name, n.Event)
	}
	return message{fallback: escape(fallback), blocks: blocks}
}

func headline(n workflows.Notification, name string) string {
	r := "*" + escape(name) + "*"
	switch n.Event {
	case workflows.NotifyStarted:
		return ":rocket: Rollout " + r + " started"
	case workflows.NotifyApproval:
		switch {
		case n.Phase != "":
			return fmt.Sprintf(":raised_hand: Rollout %s waits for approval of phase *%s*", r, escape(n.Phase))
		case n.PlanHash != "":
			return fmt.Sprintf(":raised_hand: Rollout %s waits for approval of plan `%s`", r, escape(n.PlanHash))
		}
		return ":raised_hand: Rollout " + r + " waits for approval"
	case workflows.NotifyPaused:
		return ":double_vertical_bar: Rollout " + r + " paused"
	case workflows.NotifyResumed:
		return ":arrow_forward: Rollout " + r + " resumed"
	case workflows.NotifyPhaseDone:
		if n.Phase != "" {
			return fmt.Sprintf(":white_check_mark: Rollout %s: phase *%s* done", r, escape(n.Phase))
		}
		return ":white_check_mark: Rollout " + r + ": phase done"
	case workflows.NotifyFinished:
		switch n.State {
		case workflows.StateCompleted:
			return ":tada: Rollout " + r + " completed"
		case workflows.StateAborted:
			return ":no_entry: Rollout " + r + " aborted"
		case workflows.StateFailed:
			return ":x: Rollout " + r + " failed"
		case workflows.StateSuperseded:
			return ":twisted_rightwards_arrows: Rollout " + r + " superseded"
		}
		return ":checkered_flag: Rollout " + r + " finished"
	}
	return ":information_source: Rollout " + r + ": " + escape(string(n.Event))
}

// detailFields are the two-column facts under the headline.
func detailFields(n workflows.Notification) []*slack.TextBlockObject {
	var f []*slack.TextBlockObject
	add := func(label, value string) {
		if value != "" && len(f) < maxFields {
			f = append(f, mrkdwn(truncate("*"+label+"*\n"+value, maxFieldText)))
		}
	}
	switch n.Event {
	case workflows.NotifyStarted:
		add("Version", code(n.Version))
		if n.Total > 0 {
			add("Clusters", fmt.Sprint(n.Total))
		}
		add("Plan", code(n.PlanHash))
	case workflows.NotifyApproval:
		add("Phase", escape(n.Phase))
		add("Plan", code(n.PlanHash))
	case workflows.NotifyPaused:
		if p := n.Paused; p != nil {
			add("Paused by", escape(p.Actor))
			add("Since", slackDate(p.At))
			if inc := p.Incident; inc != nil {
				add("Cluster", code(inc.ClusterID))
				add("Monitor", code(inc.Monitor))
				if inc.Batch > 0 {
					add("Batch", fmt.Sprint(inc.Batch))
				}
				add("Incident", escape(string(inc.Kind)))
			}
		}
		add("Phase", escape(n.Phase))
	case workflows.NotifyResumed, workflows.NotifyPhaseDone:
		add("Phase", escape(n.Phase))
	case workflows.NotifyFinished:
		add("State", escape(string(n.State)))
		add("Version", code(n.Version))
	}
	return f
}

// contextLine is the small print: the rollout ID, version and plan.
func contextLine(n workflows.Notification) *slack.ContextBlock {
	parts := []string{code(n.RolloutID)}
	if n.Version != "" {
		parts = append(parts, "version "+code(n.Version))
	}
	if n.PlanHash != "" {
		parts = append(parts, "plan "+code(n.PlanHash))
	}
	if n.State != "" {
		parts = append(parts, "state "+escape(string(n.State)))
	}
	return slack.NewContextBlock("", mrkdwn(truncate(strings.Join(parts, " · "), maxFieldText)))
}

// defaultActions are the buttons offered when the notification names none.
func defaultActions(n workflows.Notification) []string {
	if n.State.Terminal() {
		return nil
	}
	switch n.Event {
	case workflows.NotifyStarted, workflows.NotifyResumed, workflows.NotifyPhaseDone:
		return []string{ActionPause}
	case workflows.NotifyApproval:
		if n.Phase != "" {
			return []string{ActionApprovePhase, ActionAbort}
		}
		return []string{ActionApprovePlan, ActionAbort}
	case workflows.NotifyPaused:
		return []string{ActionResume, ActionAbort}
	}
	return nil
}

// buttons builds the buttons for n.Actions (or the event's defaults), in
// order, each once. A button that cannot be built (an approve-plan without a
// plan hash, an unknown action) is left out and logged.
func buttons(n workflows.Notification, name string, log *zap.Logger) []slack.BlockElement {
	if n.RolloutID == "" {
		return nil
	}
	ids := n.Actions
	if len(ids) == 0 {
		ids = defaultActions(n)
	}
	seen := map[string]bool{}
	var out []slack.BlockElement
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		b, err := button(id, n, name)
		if err != nil {
			if len(n.Actions) > 0 { // asked for explicitly: worth a warning
				log.Warn("slack button left out", zap.String("rollout", n.RolloutID),
					zap.String("event", string(n.Event)), zap.String("action", id), zap.Error(err))
			}
			continue
		}
		out = append(out, b)
	}
	return out
}

func button(id string, n workflows.Notification, name string) (*slack.ButtonBlockElement, error) {
	v := ActionValue{Rollout: n.RolloutID}
	var label string
	style := slack.StyleDefault
	var confirm *slack.ConfirmationBlockObject
	switch id {
	case ActionApprovePlan:
		if n.PlanHash == "" {
			return nil, fmt.Errorf("%s needs the plan hash", id)
		}
		v.PlanHash = n.PlanHash
		label, style = "Approve plan", slack.StylePrimary
		confirm = confirmation("Approve the plan?",
			fmt.Sprintf("Approve plan `%s` of *%s*? The rollout starts changing clusters.", escape(n.PlanHash), escape(name)),
			"Approve", slack.StylePrimary)
	case ActionApprovePhase:
		if n.Phase == "" {
			return nil, fmt.Errorf("%s needs the phase", id)
		}
		v.Phase = n.Phase
		label, style = "Approve phase "+n.Phase, slack.StylePrimary
		confirm = confirmation("Approve the phase?",
			fmt.Sprintf("Approve phase *%s* of *%s*?", escape(n.Phase), escape(name)),
			"Approve", slack.StylePrimary)
	case ActionPause:
		label = "Pause"
	case ActionResume:
		label, style = "Resume", slack.StylePrimary
	case ActionAbort:
		label, style = "Abort", slack.StyleDanger
		confirm = confirmation("Abort the rollout?",
			fmt.Sprintf("Abort *%s*? Clusters in flight stop and nothing new starts. This cannot be undone.", escape(name)),
			"Abort", slack.StyleDanger)
	default:
		return nil, fmt.Errorf("unknown action %q", id)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s value: %w", id, err)
	}
	if len(raw) > maxButtonValue {
		return nil, fmt.Errorf("%s value is %d bytes, Slack takes %d", id, len(raw), maxButtonValue)
	}
	b := slack.NewButtonBlockElement(id, string(raw), plain(truncate(label, maxButtonText)))
	if style != slack.StyleDefault {
		b = b.WithStyle(style)
	}
	if confirm != nil {
		b = b.WithConfirm(confirm)
	}
	return b, nil
}

func confirmation(title, text, yes string, style slack.Style) *slack.ConfirmationBlockObject {
	return slack.NewConfirmationBlockObject(plain(title), mrkdwn(truncate(text, maxConfirmText)),
		plain(yes), plain("Cancel")).WithStyle(style)
}

// countsSummary reads like "120 done, 3 in flight, 1 failed, 300 pending of 431".
func countsSummary(c workflows.Counts, total int) string {
	parts := []string{fmt.Sprintf("%d done", c.Done)}
	for _, p := range []struct {
		n    int
		what string
	}{
		{c.InFlight, "in flight"}, {c.Held, "held"}, {c.Verifying, "verifying"}, {c.Failed, "failed"},
		{c.Aborted, "aborted"}, {c.Skipped, "skipped"}, {c.Pending, "pending"},
	} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
		}
	}
	s := strings.Join(parts, ", ")
	if total > 0 {
		s += fmt.Sprintf(" of %d", total)
	}
	return s
}

// slackDate renders t in each reader's own time zone, with a UTC fallback.
func slackDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time_secs}|%s>", t.Unix(), t.UTC().Format(time.RFC3339))
}

func section(text string) *slack.SectionBlock {
	return slack.NewSectionBlock(mrkdwn(truncate(text, maxSectionText)), nil, nil)
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, true, false)
}

func code(s string) string {
	if s == "" {
		return ""
	}
	return "`" + escape(strings.ReplaceAll(s, "`", "'")) + "`"
}

// escape makes text safe for Slack's mrkdwn: &, < and > are control
// characters there (links, mentions).
var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func escape(s string) string { return escaper.Replace(s) }

// truncate cuts s to at most max characters (Slack counts characters),
// marking the cut with an ellipsis.
func truncate(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}
