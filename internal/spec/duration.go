package spec

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as a Go duration string ("90s", "2h")
// or a number of seconds (90, 1.5) in YAML and JSON. It is always written
// back as a string, which is what histories of started rollouts hold.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats the duration like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// durationHelp is the message of every malformed duration.
const durationHelp = "want a duration like \"90s\" or a number of seconds like 90"

// UnmarshalJSON reads a duration string ("90s") or a number of seconds (90,
// also as a string "90"). Before numbers of seconds were accepted a bare
// number meant nanoseconds; the fleet itself always wrote strings, so no
// stored input held one.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n json.Number
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return fmt.Errorf("duration: %s: %w", durationHelp, err)
		}
		s = n.String()
	}
	return d.parse(s)
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads a duration string or a number of seconds.
func (d *Duration) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return fmt.Errorf("duration: %s: %w", durationHelp, err)
	}
	return d.parse(s)
}

func (d *Duration) parse(s string) error {
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ParseDuration reads a Go duration ("90s", "1h30m") or a number of seconds
// ("90", "1.5"); empty is zero. Negative durations are refused.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if secs, ok := parseSeconds(s); ok {
		if secs < 0 {
			return 0, fmt.Errorf("duration %q: must not be negative", s)
		}
		if secs > math.MaxInt64/float64(time.Second) {
			return 0, fmt.Errorf("duration %q: too large", s)
		}
		return time.Duration(math.Round(secs * float64(time.Second))), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: %s", s, durationHelp)
	}
	if v < 0 {
		return 0, fmt.Errorf("duration %q: must not be negative", s)
	}
	return v, nil
}

// parseSeconds reads a plain decimal number (no unit, no exponent).
func parseSeconds(s string) (float64, bool) {
	t := strings.TrimPrefix(s, "-")
	if t == "" || strings.Trim(t, "0123456789.") != "" || strings.Count(t, ".") > 1 || t == "." {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}
