package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	sdkclient "go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/workflows"
)

// schedulePrefix starts the ID of every fleet schedule: scheduled/<name>.
const schedulePrefix = "scheduled/"

// memoKey is the schedule memo entry that describes a fleet schedule.
const memoKey = "fleet"

// ScheduleID is the ID of the Temporal Schedule that starts the rollout
// name; an ID is returned as it is.
func ScheduleID(name string) string {
	if strings.HasPrefix(name, schedulePrefix) {
		return name
	}
	return schedulePrefix + workflows.RolloutName(name)
}

// Scheduled is a rollout start a Temporal Schedule will make (fleet start
// --at), as the schedule's memo and state tell it.
type Scheduled struct {
	// ID is the schedule's ID (scheduled/<name>).
	ID string `json:"id"`
	// Rollout is the name of the rollout it starts.
	Rollout string `json:"rollout"`
	// At is when it starts the rollout; Zone the time zone it was given in.
	At   time.Time `json:"at"`
	Zone string    `json:"zone,omitempty"`
	// Requester is who created the schedule, at CreatedAt.
	Requester string    `json:"requester"`
	CreatedAt time.Time `json:"createdAt"`
	// State is "waiting" (before At), "started" (the rollout was started,
	// StartedAt) or "missed" (At passed beyond the catch-up window, or the
	// schedule was paused).
	State     string     `json:"state,omitempty"`
	StartedAt *time.Time `json:"startedAt,omitempty"`
}

// Schedule states.
const (
	ScheduleWaiting = "waiting"
	ScheduleStarted = "started"
	ScheduleMissed  = "missed"
)

// ScheduleExistsError is a schedule for the rollout's name that exists.
type ScheduleExistsError struct {
	ID  string
	Err error
}

func (e *ScheduleExistsError) Error() string {
	return fmt.Sprintf("schedule %s already exists: cancel it first (fleet schedule cancel %s)", e.ID, strings.TrimPrefix(e.ID, schedulePrefix))
}

func (e *ScheduleExistsError) Unwrap() error { return e.Err }

// ScheduleNotFoundError is a schedule that does not exist (any more).
type ScheduleNotFoundError struct {
	ID  string
	Err error
}

func (e *ScheduleNotFoundError) Error() string { return fmt.Sprintf("schedule %s not found", e.ID) }
func (e *ScheduleNotFoundError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotFound) true.
func (e *ScheduleNotFoundError) Is(target error) bool { return target == ErrNotFound }

// ScheduleStart creates a Temporal Schedule that starts the rollout r once,
// at at, in at's time zone (visible on the Web UI's Schedules page). The
// spec is checked first; the start is signed now, and the rollout verifies
// that proof at the schedule's creation for a start at at (see
// workflows.ScheduledStart). Whether the fleet is frozen is the rollout's
// business when it starts: frozen, it waits paused and applies nothing.
func (c *Client) ScheduleStart(ctx context.Context, r *spec.Rollout, requester string, at time.Time) (*Scheduled, error) {
	if r == nil {
		return nil, errors.New("schedule rollout: no spec")
	}
	in := workflows.RolloutInput{Spec: *r, Requester: requester}
	name := in.Spec.Name
	in.Spec.Normalize()
	if err := in.Spec.Validate(); err != nil {
		return nil, fmt.Errorf("schedule rollout %q: invalid spec: %w", name, err)
	}
	now := time.Now()
	if !at.After(c.clock()) {
		return nil, fmt.Errorf("schedule rollout %q: %s is not in the future", name, at.Format(time.RFC3339))
	}
	if in.Spec.Requester == "" {
		in.Spec.Requester = in.Requester
	}
	id := ScheduleID(name)
	in.Scheduled = &workflows.ScheduledStart{Schedule: id, CreatedAt: now.UTC(), At: at.UTC(), Zone: at.Location().String()}
	in.Auth = c.proof(workflows.RolloutID(name), "start", workflows.StartArgs(in), &in.Requester)
	s := &Scheduled{ID: id, Rollout: name, At: at, Zone: at.Location().String(), Requester: in.Requester,
		CreatedAt: in.Scheduled.CreatedAt, State: ScheduleWaiting}
	_, err := c.c.ScheduleClient().Create(ctx, sdkclient.ScheduleOptions{
		ID: id,
		Spec: sdkclient.ScheduleSpec{
			Calendars: []sdkclient.ScheduleCalendarSpec{once(at)},
			// The bounds keep an hour a DST change repeats from matching twice.
			StartAt:      at.Add(-time.Second),
			EndAt:        at.Add(time.Second),
			TimeZoneName: at.Location().String(),
		},
		Action: &sdkclient.ScheduleWorkflowAction{
			// Temporal appends the time; ScheduledRollout starts rollout/<name>.
			ID:        id,
			Workflow:  workflows.WorkflowScheduledRollout,
			Args:      []any{in},
			TaskQueue: workflows.TaskQueue,
		},
		Overlap:          enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow:    workflows.ScheduleLateness,
		RemainingActions: 1,
		Note:             fmt.Sprintf("fleet start --at: rollout %s by %s", name, in.Requester),
		Memo:             map[string]any{memoKey: s},
	})
	if err != nil {
		if errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
			return nil, &ScheduleExistsError{ID: id, Err: err}
		}
		return nil, fmt.Errorf("schedule rollout %q (schedule %s): %w", name, id, err)
	}
	return s, nil
}

// once is the calendar that matches at only, in at's time zone.
func once(at time.Time) sdkclient.ScheduleCalendarSpec {
	one := func(v int) []sdkclient.ScheduleRange { return []sdkclient.ScheduleRange{{Start: v}} }
	return sdkclient.ScheduleCalendarSpec{
		Second: one(at.Second()), Minute: one(at.Minute()), Hour: one(at.Hour()),
		DayOfMonth: one(at.Day()), Month: one(int(at.Month())), Year: one(at.Year()),
		DayOfWeek: []sdkclient.ScheduleRange{{Start: 0, End: 6}},
		Comment:   "fleet start --at " + at.Format("2006-01-02T15:04:05 ") + at.Location().String(),
	}
}

// Schedules lists the fleet's scheduled starts, soonest first.
func (c *Client) Schedules(ctx context.Context) ([]Scheduled, error) {
	it, err := c.c.ScheduleClient().List(ctx, sdkclient.ScheduleListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	var out []Scheduled
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("list schedules: %w", err)
		}
		if !strings.HasPrefix(e.ID, schedulePrefix) {
			continue
		}
		s, err := c.Schedule(ctx, e.ID)
		if errors.Is(err, ErrNotFound) {
			continue // deleted since the (eventually consistent) list
		}
		if err != nil {
			return nil, err
		}
		out = append(out, *s)
	}
	slices.SortStableFunc(out, func(a, b Scheduled) int { return a.At.Compare(b.At) })
	return out, nil
}

// Schedule describes the fleet schedule id (or rollout name).
func (c *Client) Schedule(ctx context.Context, id string) (*Scheduled, error) {
	id = ScheduleID(id)
	d, err := c.c.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return nil, &ScheduleNotFoundError{ID: id, Err: err}
		}
		return nil, fmt.Errorf("describe schedule %s: %w", id, err)
	}
	s := &Scheduled{ID: id, Rollout: strings.TrimPrefix(id, schedulePrefix)}
	if p, ok := d.Memo.GetFields()[memoKey]; ok {
		if err := converter.GetDefaultDataConverter().FromPayload(p, s); err != nil {
			return nil, fmt.Errorf("schedule %s: memo: %w", id, err)
		}
		if loc, err := time.LoadLocation(s.Zone); err == nil {
			s.At = s.At.In(loc)
		}
	}
	switch {
	case len(d.Info.RecentActions) > 0:
		s.State = ScheduleStarted
		t := d.Info.RecentActions[len(d.Info.RecentActions)-1].ActualTime
		s.StartedAt = &t
	case len(d.Info.NextActionTimes) > 0 && !d.Schedule.State.Paused:
		s.State = ScheduleWaiting
	default:
		s.State = ScheduleMissed
	}
	return s, nil
}

// CancelSchedule deletes the fleet schedule id (or rollout name) and
// returns what it was. A rollout it already started goes on.
func (c *Client) CancelSchedule(ctx context.Context, id string) (*Scheduled, error) {
	s, err := c.Schedule(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := c.c.ScheduleClient().GetHandle(ctx, s.ID).Delete(ctx); err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return nil, &ScheduleNotFoundError{ID: s.ID, Err: err}
		}
		return nil, fmt.Errorf("delete schedule %s: %w", s.ID, err)
	}
	return s, nil
}
