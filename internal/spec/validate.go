package spec

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/fleet-rollout/fleet/internal/selector"
	"github.com/fleet-rollout/fleet/internal/semver"
)

// Defaults applied by Normalize.
const (
	DefaultMonitoringInterval = 10 * time.Second
	DefaultApplyTimeout       = 30 * time.Minute
)

// Normalize fills in defaults: monitoring.interval 10s, applyTimeout 30m,
// and the preset's phases when the strategy lists none. It is idempotent.
func (r *Rollout) Normalize() {
	if r.Monitoring.Interval == 0 {
		r.Monitoring.Interval = Duration(DefaultMonitoringInterval)
	}
	if r.ApplyTimeout == 0 {
		r.ApplyTimeout = Duration(DefaultApplyTimeout)
	}
	if r.Monitoring.UnknownGrace == 0 {
		r.Monitoring.UnknownGrace = Duration(DefaultUnknownGrace)
	}
	if r.Schedule.Windows == "" {
		r.Schedule.Windows = WindowsRespect
	}
	if r.Schedule.MaxWait == 0 {
		r.Schedule.MaxWait = Duration(DefaultMaxWait)
	}
	if len(r.Strategy.Phases) == 0 {
		if phases, ok := Preset(r.Strategy.Preset); ok {
			r.Strategy.Phases = phases
		}
	}
}

// Validate runs the semantic checks Parse runs, for a spec built in code or
// received as JSON. Errors carry field paths but no lines. It returns nil
// or ValidationErrors.
func (r *Rollout) Validate() error {
	if errs := validate(r, nil); len(errs) > 0 {
		return errs
	}
	return nil
}

var nameRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// validate checks r; w (nil for Validate) locates fields in the source and
// knows which already had structural errors.
func validate(r *Rollout, w *walker) ValidationErrors {
	var errs ValidationErrors
	add := func(path, format string, args ...any) {
		if w.broken(path) {
			return
		}
		line, col := w.at(path)
		errs = append(errs, &Error{File: fileOf(w), Line: line, Column: col, Field: path, Msg: fmt.Sprintf(format, args...)})
	}
	checkSelector := func(path, src string) {
		if _, err := selector.Parse(src); err != nil {
			if w.broken(path) {
				return
			}
			line, col := w.at(path)
			var se *selector.SyntaxError
			if errors.As(err, &se) {
				line, col = w.column(path, se.Column)
			}
			errs = append(errs, &Error{File: fileOf(w), Line: line, Column: col, Field: path, Msg: err.Error()})
		}
	}

	switch {
	case r.Name == "":
		add("name", "required: the rollout's name, like kafka-3-7-1")
	case len(r.Name) > 63 || !nameRe.MatchString(r.Name):
		add("name", "must be lowercase letters, digits and dashes, starting and ending with a letter or digit, at most 63 characters; got %q", r.Name)
	}

	if r.Target.Version == "" {
		add("target.version", "required: the version to roll out, like 3.7.1")
	} else if _, err := semver.Parse(r.Target.Version); err != nil {
		add("target.version", "%v", err)
	}
	for k := range r.Target.Config {
		if strings.TrimSpace(k) == "" {
			add("target.config", "keys must not be empty")
			break
		}
	}

	checkSelector("selector", r.Selector)

	included := map[string]string{}
	checkIDs := func(field string, ids []string, seen map[string]string) {
		for i, id := range ids {
			path := field + "[" + strconv.Itoa(i) + "]"
			switch {
			case strings.TrimSpace(id) == "":
				add(path, "must be a cluster id, got an empty string")
			case seen[id] != "":
				add(path, "cluster %q is listed twice (also %s)", id, seen[id])
			default:
				if field == "exclude" && included[id] != "" {
					add(path, "cluster %q is also in %s", id, included[id])
				}
				seen[id] = path
			}
		}
	}
	checkIDs("include", r.Include, included)
	checkIDs("exclude", r.Exclude, map[string]string{})

	if r.ApplyTimeout < 0 {
		add("applyTimeout", "must not be negative")
	}
	if r.Monitoring.Interval < 0 {
		add("monitoring.interval", "must not be negative")
	}
	if r.Monitoring.UnknownGrace < 0 {
		add("monitoring.unknownGrace", "must not be negative")
	}
	checkBudget := func(path string, b *ErrorBudget) {
		if b == nil {
			return
		}
		if field, msg := b.validate(); field != "" {
			add(path+"."+field, "%s", msg)
		}
	}
	checkBudget("errorBudget", r.ErrorBudget)
	switch r.Schedule.Windows {
	case "", WindowsRespect, WindowsIgnore:
	default:
		add("schedule.windows", "must be respect or ignore, got %q", r.Schedule.Windows)
	}
	if r.Schedule.MaxWait < 0 {
		add("schedule.maxWait", "must not be negative")
	}
	if r.Emergency != nil && len(strings.TrimSpace(r.Emergency.Justification)) < 10 {
		add("emergency.justification", "required: say why this rollout may run through windows and blackouts (at least 10 characters)")
	}
	checkOrderBy := func(path string, o *OrderBy) {
		if o == nil {
			return
		}
		if field, msg := o.validate(); field != "" {
			add(path+"."+field, "%s", msg)
		}
	}
	checkOrderBy("orderBy", r.OrderBy)

	if r.Strategy.Preset != "" {
		if _, ok := Preset(r.Strategy.Preset); !ok {
			add("strategy.preset", "unknown preset %q (known: %s)", r.Strategy.Preset, strings.Join(PresetNames(), ", "))
		}
	} else if len(r.Strategy.Phases) == 0 {
		add("strategy", "must name a preset (%s) or list phases", strings.Join(PresetNames(), ", "))
	}

	names := map[string]string{}
	for i, p := range r.Strategy.Phases {
		base := "strategy.phases[" + strconv.Itoa(i) + "]"
		switch {
		case strings.TrimSpace(p.Name) == "":
			add(base+".name", "required: a name for the phase, like prod-aws")
		case names[p.Name] != "":
			add(base+".name", "duplicate phase name %q (also %s)", p.Name, names[p.Name])
		default:
			names[p.Name] = base
		}
		checkSelector(base+".selector", p.Selector)
		if p.BatchSize == "" {
			add(base+".batchSize", "required: %s", batchSizeHelp)
		} else if _, err := ParseBatchSize(p.BatchSize); err != nil {
			add(base+".batchSize", "%v", err)
		}
		if p.Concurrency < 0 {
			add(base+".concurrency", "must not be negative, got %d", p.Concurrency)
		}
		if p.Bake < 0 {
			add(base+".bake", "must not be negative")
		}
		checkBudget(base+".errorBudget", p.ErrorBudget)
		if p.ApprovalTimeout < 0 {
			add(base+".approvalTimeout", "must not be negative")
		}
		switch p.OnApprovalTimeout {
		case "", OnApprovalTimeoutRemind, OnApprovalTimeoutAbort:
		default:
			add(base+".onApprovalTimeout", "must be remind or abort, got %q", p.OnApprovalTimeout)
		}
		checkOrderBy(base+".orderBy", p.OrderBy)
	}
	return errs
}

func fileOf(w *walker) string {
	if w == nil {
		return ""
	}
	return w.file
}
