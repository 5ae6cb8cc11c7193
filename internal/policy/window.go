package policy

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // windows name IANA zones; work on machines without zoneinfo

	"github.com/fleet-rollout/fleet/internal/fleet"
)

// MaxWindowDuration is the longest a maintenance window may stay open.
const MaxWindowDuration = 7 * 24 * time.Hour

// dayNames are the weekday names a window accepts, indexed by time.Weekday.
var dayNames = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// windowHorizon is how many local days WindowAt looks ahead while merging
// overlapping occurrences; a window still open at the end of it is
// reported as never closing (zero closesAt).
const windowHorizon = 400

// WindowIsSet reports whether w defines a window. A window is unset (the
// cluster may be changed at any time) when it has no days, no start and no
// duration; a time zone alone defines nothing.
func WindowIsSet(w fleet.Window) bool {
	return len(w.Days) > 0 || w.Start != "" || w.Duration != ""
}

// Validate reports the first problem with w, naming the field: an unknown
// day name, a start that is not HH:MM, a duration that does not parse, is
// not positive or exceeds seven days, or an unknown time zone. The zero
// window is valid (always open).
func Validate(w fleet.Window) error {
	_, err := compileWindow(w)
	return err
}

// WindowAt reports whether t lies inside the weekly window w.
//
// When open, opensAt is when the current opening began (looking back at
// most 8 days) and closesAt when it ends. When closed, opensAt is when the next opening begins and closesAt
// when that one ends. Overlapping or touching occurrences (two days whose
// windows run into each other) count as one opening. A zero closesAt means
// the window does not close within about a year of t (it covers the whole
// week). The times are in the window's zone.
//
// The unset window (see WindowIsSet) is always open: open is true and
// opensAt and closesAt are zero.
//
// Semantics, in the window's IANA zone:
//
//   - An occurrence starts on each listed weekday at Start local time, and
//     lasts Duration of elapsed time (a "2h" window is open two real hours
//     even across a clock change). Its end is start+Duration, so a window
//     may run past midnight (Start 23:00, Duration 3h closes at 02:00 the
//     next day). No Days means every day.
//   - When Start does not exist that day (spring forward: 02:00-02:59 in
//     Europe/Berlin on 2026-03-29), the window opens at the first valid
//     instant after it, the moment the clocks jump (03:00 local), and lasts
//     Duration from there.
//   - When Start occurs twice (fall back: 02:00-02:59 in Europe/Berlin on
//     2026-10-25), the window opens at the first of them and lasts Duration
//     from there: a 02:00 2h window opens at 02:00 CEST and closes at
//     03:00 CET, two real hours (one hour of wall clock) later.
//   - The window is the half-open interval [start, start+Duration): open at
//     its start instant, closed at its end instant.
//   - An empty TimeZone is UTC; "Local" is rejected (it differs by machine).
func WindowAt(w fleet.Window, t time.Time) (open bool, opensAt, closesAt time.Time, err error) {
	cw, err := compileWindow(w)
	if err != nil {
		return false, time.Time{}, time.Time{}, err
	}
	if cw == nil {
		return true, time.Time{}, time.Time{}, nil
	}
	open, opensAt, closesAt = cw.at(t)
	return open, opensAt, closesAt, nil
}

// compiledWindow is a validated window.
type compiledWindow struct {
	loc    *time.Location
	zone   string
	days   [7]bool
	hh, mm int
	dur    time.Duration
}

// compileWindow validates w; it returns nil for the unset window.
func compileWindow(w fleet.Window) (*compiledWindow, error) {
	if !WindowIsSet(w) {
		return nil, nil
	}
	cw := &compiledWindow{zone: w.TimeZone}
	if cw.zone == "" {
		cw.zone = "UTC"
	}
	if len(w.Days) == 0 {
		for i := range cw.days {
			cw.days[i] = true
		}
	}
	for i, d := range w.Days {
		found := false
		for wd, name := range dayNames {
			if strings.EqualFold(strings.TrimSpace(d), name) {
				cw.days[wd], found = true, true
			}
		}
		if !found {
			return nil, fmt.Errorf("maintenance window: days[%d]: unknown day %q (want mon, tue, wed, thu, fri, sat or sun)", i, d)
		}
	}
	hh, mm, ok := parseHHMM(w.Start)
	if !ok {
		return nil, fmt.Errorf("maintenance window: start: must be a local time HH:MM from 00:00 to 23:59, got %q", w.Start)
	}
	cw.hh, cw.mm = hh, mm
	d, err := time.ParseDuration(w.Duration)
	if err != nil {
		return nil, fmt.Errorf("maintenance window: duration: must be a duration like 2h or 90m, got %q", w.Duration)
	}
	if d <= 0 || d > MaxWindowDuration {
		return nil, fmt.Errorf("maintenance window: duration: must be more than 0 and at most 7 days (168h), got %q", w.Duration)
	}
	cw.dur = d
	if strings.EqualFold(w.TimeZone, "Local") {
		return nil, fmt.Errorf("maintenance window: timeZone: %q depends on the machine; name an IANA zone like Europe/Berlin", w.TimeZone)
	}
	loc, err := loadLocation(w.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("maintenance window: timeZone: unknown IANA time zone %q", w.TimeZone)
	}
	cw.loc = loc
	return cw, nil
}

// locations caches loaded zones: a zone is read once per process, not on
// every call from workflow code. Failures are not cached.
var locations struct {
	sync.Mutex
	m map[string]*time.Location
}

func loadLocation(name string) (*time.Location, error) {
	locations.Lock()
	defer locations.Unlock()
	if loc, ok := locations.m[name]; ok {
		return loc, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	if locations.m == nil {
		locations.m = map[string]*time.Location{}
	}
	locations.m[name] = loc
	return loc, nil
}

// parseHHMM parses "HH:MM" (two digits each) from 00:00 to 23:59.
func parseHHMM(s string) (hh, mm int, ok bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, 0, false
	}
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return 0, 0, false
		}
	}
	hh, _ = strconv.Atoi(s[:2])
	mm, _ = strconv.Atoi(s[3:])
	if hh > 23 || mm > 59 {
		return 0, 0, false
	}
	return hh, mm, true
}

type span struct{ start, end time.Time }

// occurrence returns the window's occurrence on the local calendar date
// given as midnight UTC, if the date's weekday is listed.
func (cw *compiledWindow) occurrence(date time.Time) (span, bool) {
	if !cw.days[date.Weekday()] {
		return span{}, false
	}
	naive := time.Date(date.Year(), date.Month(), date.Day(), cw.hh, cw.mm, 0, 0, time.UTC)
	s := localInstant(cw.loc, naive)
	return span{s, s.Add(cw.dur)}, true
}

// at implements WindowAt for a compiled window.
func (cw *compiledWindow) at(t time.Time) (open bool, opensAt, closesAt time.Time) {
	lt := t.In(cw.loc)
	// Start a week and a day back: an occurrence lasts at most 7 days.
	base := time.Date(lt.Year(), lt.Month(), lt.Day()-8, 0, 0, 0, 0, time.UTC)
	var cur span
	have := false
	for k := 0; k < windowHorizon; k++ {
		o, ok := cw.occurrence(base.AddDate(0, 0, k))
		if !ok {
			continue
		}
		if have && !o.start.After(cur.end) { // overlaps or touches: one opening
			if o.end.After(cur.end) {
				cur.end = o.end
			}
			continue
		}
		if have && cur.end.After(t) { // cur is final and not yet over at t
			return !cur.start.After(t), cur.start.In(cw.loc), cur.end.In(cw.loc)
		}
		cur, have = o, true
	}
	// Still merging at the horizon: the opening does not end within it.
	if have && cur.end.After(t) {
		return !cur.start.After(t), cur.start.In(cw.loc), time.Time{}
	}
	// Unreachable for a valid window (every week has an occurrence).
	return false, time.Time{}, time.Time{}
}

// localInstant returns the first instant whose wall clock in loc reaches
// naive (a wall-clock time written in UTC): the instant itself when it
// exists once, the first of the two when the clocks fall back over it, and
// the moment the clocks jump when it falls in a spring-forward gap.
func localInstant(loc *time.Location, naive time.Time) time.Time {
	g := time.Date(naive.Year(), naive.Month(), naive.Day(), naive.Hour(), naive.Minute(), naive.Second(), naive.Nanosecond(), loc)
	switch c := wallClock(g, loc).Compare(naive); {
	case c == 0:
		// It may also exist earlier, in the zone period before g's.
		if start, _ := g.ZoneBounds(); !start.IsZero() {
			_, prevOffset := start.Add(-time.Nanosecond).In(loc).Zone()
			cand := naive.Add(-time.Duration(prevOffset) * time.Second)
			if cand.Before(g) && wallClock(cand, loc).Equal(naive) {
				return cand.In(loc)
			}
		}
		return g
	case c < 0:
		// g lies before the gap: the clocks jump at the end of its period.
		if _, end := g.ZoneBounds(); !end.IsZero() {
			return end.In(loc)
		}
	default:
		// g lies after the gap: the clocks jumped at the start of its period.
		if start, _ := g.ZoneBounds(); !start.IsZero() {
			return start.In(loc)
		}
	}
	return g
}

// wallClock returns t's wall clock in loc, written as a UTC time.
func wallClock(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
}

// describeOpening formats an opening for reasons:
// "Sat 02:00 Europe/Berlin (2026-03-28T01:00:00Z)".
func (cw *compiledWindow) describeOpening(at time.Time) string {
	return at.In(cw.loc).Format("Mon 15:04") + " " + cw.zone + " (" + at.UTC().Format(time.RFC3339) + ")"
}
