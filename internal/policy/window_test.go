package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/fleet-rollout/fleet/internal/fleet"
)

func ts(t *testing.T, s string) time.Time {
	t.Helper()
	if s == "" {
		return time.Time{}
	}
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("bad test time %q: %v", s, err)
	}
	return v
}

func win(zone, start, dur string, days ...string) fleet.Window {
	return fleet.Window{Days: days, Start: start, Duration: dur, TimeZone: zone}
}

func TestWindowAt(t *testing.T) {
	berlinSat := win("Europe/Berlin", "02:00", "2h", "sat")
	berlinSun := win("Europe/Berlin", "02:00", "2h", "sun")
	nySun2 := win("America/New_York", "02:00", "2h", "sun")
	nySun1 := win("America/New_York", "01:00", "2h", "sun")
	tests := []struct {
		name          string
		w             fleet.Window
		at            string
		open          bool
		opens, closes string // UTC; "" = zero
	}{
		// Plain weeks.
		{"utc before", win("UTC", "09:00", "1h", "wed"), "2026-06-17T08:59:59Z", false, "2026-06-17T09:00:00Z", "2026-06-17T10:00:00Z"},
		{"utc at start is open", win("UTC", "09:00", "1h", "wed"), "2026-06-17T09:00:00Z", true, "2026-06-17T09:00:00Z", "2026-06-17T10:00:00Z"},
		{"utc at end is closed", win("UTC", "09:00", "1h", "wed"), "2026-06-17T10:00:00Z", false, "2026-06-24T09:00:00Z", "2026-06-24T10:00:00Z"},
		{"empty zone is UTC", win("", "09:00", "1h", "wed"), "2026-06-17T09:30:00Z", true, "2026-06-17T09:00:00Z", "2026-06-17T10:00:00Z"},
		{"no days means every day", win("UTC", "09:00", "1h"), "2026-06-17T10:30:00Z", false, "2026-06-18T09:00:00Z", "2026-06-18T10:00:00Z"},
		{"day names ignore case", win("UTC", "09:00", "1h", "WED"), "2026-06-17T09:30:00Z", true, "2026-06-17T09:00:00Z", "2026-06-17T10:00:00Z"},
		{"t in another zone", win("UTC", "09:00", "1h", "wed"), "2026-06-17T18:30:00+09:00", true, "2026-06-17T09:00:00Z", "2026-06-17T10:00:00Z"},
		{"berlin summer", berlinSat, "2026-06-13T00:30:00Z", true, "2026-06-13T00:00:00Z", "2026-06-13T02:00:00Z"},
		{"berlin winter", berlinSat, "2026-01-10T00:30:00Z", false, "2026-01-10T01:00:00Z", "2026-01-10T03:00:00Z"},

		// Crossing midnight.
		{"23:00+3h before midnight", win("Europe/Berlin", "23:00", "3h", "sat"), "2026-06-13T21:30:00Z", true, "2026-06-13T21:00:00Z", "2026-06-14T00:00:00Z"},
		{"23:00+3h after midnight", win("Europe/Berlin", "23:00", "3h", "sat"), "2026-06-13T23:30:00Z", true, "2026-06-13T21:00:00Z", "2026-06-14T00:00:00Z"},
		{"23:00+3h closed at 02:00 local", win("Europe/Berlin", "23:00", "3h", "sat"), "2026-06-14T00:00:00Z", false, "2026-06-20T21:00:00Z", "2026-06-21T00:00:00Z"},
		{"sun 23:00+3h open monday (week wrap)", win("Europe/Berlin", "23:00", "3h", "sun"), "2026-06-14T23:00:00Z", true, "2026-06-14T21:00:00Z", "2026-06-15T00:00:00Z"},
		{"23:00+3h into spring forward", win("Europe/Berlin", "23:00", "3h", "sat"), "2026-03-29T00:30:00Z", true, "2026-03-28T22:00:00Z", "2026-03-29T01:00:00Z"},

		// Europe/Berlin spring forward: Sun 2026-03-29, 02:00 CET -> 03:00 CEST at 01:00Z.
		{"berlin sat window that weekend", berlinSat, "2026-03-27T12:00:00Z", false, "2026-03-28T01:00:00Z", "2026-03-28T03:00:00Z"},
		{"berlin sat window after change", berlinSat, "2026-03-28T03:00:00Z", false, "2026-04-04T00:00:00Z", "2026-04-04T02:00:00Z"},
		{"berlin spring: 02:00 missing, opens 03:00 CEST", berlinSun, "2026-03-29T00:30:00Z", false, "2026-03-29T01:00:00Z", "2026-03-29T03:00:00Z"},
		{"berlin spring: open 2h from 03:00", berlinSun, "2026-03-29T02:59:00Z", true, "2026-03-29T01:00:00Z", "2026-03-29T03:00:00Z"},
		{"berlin spring: closed at 05:00 CEST", berlinSun, "2026-03-29T03:00:00Z", false, "2026-04-05T00:00:00Z", "2026-04-05T02:00:00Z"},
		{"berlin spring: 02:30 in the gap opens 03:00", win("Europe/Berlin", "02:30", "1h", "sun"), "2026-03-28T12:00:00Z", false, "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"},
		{"berlin spring: 01:30 spans the jump", win("Europe/Berlin", "01:30", "1h", "sun"), "2026-03-29T01:15:00Z", true, "2026-03-29T00:30:00Z", "2026-03-29T01:30:00Z"},

		// Europe/Berlin fall back: Sun 2026-10-25, 03:00 CEST -> 02:00 CET at 01:00Z.
		{"berlin fall: opens at the first 02:00", berlinSun, "2026-10-24T12:00:00Z", false, "2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z"},
		{"berlin fall: open on the second 02:30", berlinSun, "2026-10-25T01:30:00Z", true, "2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z"},
		{"berlin fall: closed at 03:00 CET", berlinSun, "2026-10-25T02:00:00Z", false, "2026-11-01T01:00:00Z", "2026-11-01T03:00:00Z"},
		{"berlin fall: sat window that weekend", berlinSat, "2026-10-23T12:00:00Z", false, "2026-10-24T00:00:00Z", "2026-10-24T02:00:00Z"},

		// America/New_York spring forward: Sun 2026-03-08, 02:00 EST -> 03:00 EDT at 07:00Z.
		{"ny spring: 02:00 missing, opens 03:00 EDT", nySun2, "2026-03-07T12:00:00Z", false, "2026-03-08T07:00:00Z", "2026-03-08T09:00:00Z"},
		{"ny spring: 01:00 EST spans the jump", nySun1, "2026-03-08T07:30:00Z", true, "2026-03-08T06:00:00Z", "2026-03-08T08:00:00Z"},
		{"ny spring: 02:30 in the gap", win("America/New_York", "02:30", "30m", "sun"), "2026-03-08T06:59:00Z", false, "2026-03-08T07:00:00Z", "2026-03-08T07:30:00Z"},
		{"ny spring: next week in EDT", nySun2, "2026-03-08T09:00:00Z", false, "2026-03-15T06:00:00Z", "2026-03-15T08:00:00Z"},

		// America/New_York fall back: Sun 2026-11-01, 02:00 EDT -> 01:00 EST at 06:00Z.
		{"ny fall: opens at the first 01:00 (EDT)", nySun1, "2026-11-01T04:00:00Z", false, "2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z"},
		{"ny fall: open on the second 01:30 (EST)", nySun1, "2026-11-01T06:30:00Z", true, "2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z"},
		{"ny fall: 02:00 happens once (EST)", nySun2, "2026-11-01T06:30:00Z", false, "2026-11-01T07:00:00Z", "2026-11-01T09:00:00Z"},
		{"ny fall: monday before and after", win("America/New_York", "02:00", "2h", "mon"), "2026-10-27T00:00:00Z", false, "2026-11-02T07:00:00Z", "2026-11-02T09:00:00Z"},

		// Several days and long windows.
		{"overlapping days merge", win("UTC", "00:00", "48h", "mon", "tue"), "2026-06-16T12:00:00Z", true, "2026-06-15T00:00:00Z", "2026-06-18T00:00:00Z"},
		{"touching days merge", win("UTC", "00:00", "24h", "mon", "tue"), "2026-06-15T12:00:00Z", true, "2026-06-15T00:00:00Z", "2026-06-17T00:00:00Z"},
		{"closed: next opening merged", win("UTC", "00:00", "24h", "mon", "tue"), "2026-06-14T12:00:00Z", false, "2026-06-15T00:00:00Z", "2026-06-17T00:00:00Z"},
		{"whole week never closes", win("UTC", "00:00", "168h", "mon"), "2026-06-17T12:00:00Z", true, "2026-06-15T00:00:00Z", ""},
		{"daily 24h in UTC never closes", win("UTC", "00:00", "24h"), "2026-06-17T12:00:00Z", true, "2026-06-09T00:00:00Z", ""},
		// Elapsed-time semantics: a 24h daily window in Berlin leaves the
		// hour the clocks repeat on the fall-back day uncovered, once a year.
		{"daily 24h berlin gap on fall back", win("Europe/Berlin", "00:00", "24h"), "2026-10-25T22:30:00Z", false, "2026-10-25T23:00:00Z", "2027-10-31T22:00:00Z"},

		// Unset windows.
		{"zero window always open", fleet.Window{}, "2026-06-17T12:00:00Z", true, "", ""},
		{"zone alone is unset", fleet.Window{TimeZone: "Europe/Berlin"}, "2026-06-17T12:00:00Z", true, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			open, opens, closes, err := WindowAt(tt.w, ts(t, tt.at))
			if err != nil {
				t.Fatal(err)
			}
			if open != tt.open || !opens.Equal(ts(t, tt.opens)) || !closes.Equal(ts(t, tt.closes)) {
				t.Errorf("WindowAt(%s) = %v, %s, %s; want %v, %s, %s", tt.at,
					open, fmtT(opens), fmtT(closes), tt.open, tt.opens, tt.closes)
			}
			if tt.w.TimeZone != "" && !opens.IsZero() && opens.Location().String() != tt.w.TimeZone {
				t.Errorf("opensAt in %s, want the window's zone %s", opens.Location(), tt.w.TimeZone)
			}
		})
	}
}

func fmtT(t time.Time) string {
	if t.IsZero() {
		return `""`
	}
	return t.UTC().Format(time.RFC3339) + " (" + t.Format("Mon 15:04 MST") + ")"
}

// TestWindowAtLocalTimes checks the DST cases as people read them: local
// wall-clock times of the openings and closings.
func TestWindowAtLocalTimes(t *testing.T) {
	tests := []struct {
		name   string
		w      fleet.Window
		at     string
		opens  string // local "Mon 15:04 MST"
		closes string
	}{
		{"berlin spring", win("Europe/Berlin", "02:00", "2h", "sun"), "2026-03-28T12:00:00Z", "Sun 03:00 CEST", "Sun 05:00 CEST"},
		{"berlin fall", win("Europe/Berlin", "02:00", "2h", "sun"), "2026-10-24T12:00:00Z", "Sun 02:00 CEST", "Sun 03:00 CET"},
		{"ny spring", win("America/New_York", "02:00", "2h", "sun"), "2026-03-07T12:00:00Z", "Sun 03:00 EDT", "Sun 05:00 EDT"},
		{"ny fall", win("America/New_York", "01:00", "2h", "sun"), "2026-10-31T12:00:00Z", "Sun 01:00 EDT", "Sun 02:00 EST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, opens, closes, err := WindowAt(tt.w, ts(t, tt.at))
			if err != nil {
				t.Fatal(err)
			}
			if got := opens.Format("Mon 15:04 MST"); got != tt.opens {
				t.Errorf("opens %s, want %s", got, tt.opens)
			}
			if got := closes.Format("Mon 15:04 MST"); got != tt.closes {
				t.Errorf("closes %s, want %s", got, tt.closes)
			}
		})
	}
}

func TestValidateWindow(t *testing.T) {
	tests := []struct {
		name string
		w    fleet.Window
		err  string // substring; "" = valid
	}{
		{"zero", fleet.Window{}, ""},
		{"ok", win("Europe/Berlin", "02:00", "2h", "sat", "sun"), ""},
		{"seven days", win("UTC", "00:00", "168h", "mon"), ""},
		{"upper case day", win("UTC", "00:00", "1h", "Mon"), ""},
		{"bad day", win("UTC", "02:00", "2h", "mon", "mom"), `days[1]: unknown day "mom"`},
		{"full day name", win("UTC", "02:00", "2h", "monday"), `days[0]: unknown day "monday"`},
		{"hour 24", win("UTC", "24:00", "2h", "mon"), `start: must be a local time HH:MM from 00:00 to 23:59, got "24:00"`},
		{"one-digit hour", win("UTC", "2:00", "2h", "mon"), `start: must be a local time HH:MM`},
		{"minute 60", win("UTC", "02:60", "2h", "mon"), `start: must be a local time HH:MM`},
		{"seconds", win("UTC", "02:00:00", "2h", "mon"), `start: must be a local time HH:MM`},
		{"missing start", win("UTC", "", "2h", "mon"), `start: must be a local time HH:MM`},
		{"zero duration", win("UTC", "02:00", "0s", "mon"), `duration: must be more than 0 and at most 7 days (168h), got "0s"`},
		{"negative duration", win("UTC", "02:00", "-1h", "mon"), `duration: must be more than 0`},
		{"over a week", win("UTC", "02:00", "168h1m", "mon"), `duration: must be more than 0 and at most 7 days`},
		{"bad duration", win("UTC", "02:00", "2 hours", "mon"), `duration: must be a duration like 2h or 90m, got "2 hours"`},
		{"missing duration", win("UTC", "02:00", "", "mon"), `duration: must be a duration`},
		{"unknown zone", win("Mars/Olympus_Mons", "02:00", "2h", "mon"), `timeZone: unknown IANA time zone "Mars/Olympus_Mons"`},
		{"local zone", win("Local", "02:00", "2h", "mon"), `timeZone: "Local" depends on the machine`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.w)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.err)
			}
			if tt.err != "" {
				if _, _, _, err2 := WindowAt(tt.w, time.Now()); err2 == nil || err2.Error() != err.Error() {
					t.Errorf("WindowAt error %v, want %v", err2, err)
				}
			}
		})
	}
}

// TestSimulatorWindows checks every window shape the simulator generates
// (internal/sim: its starts, durations and region zones) is valid and
// opens within a week.
func TestSimulatorWindows(t *testing.T) {
	starts := []string{"01:00", "02:00", "03:00", "04:00", "22:00", "23:00", "09:00", "10:00", "13:00", "14:00", "16:00"}
	durations := []string{"2h", "4h", "6h"}
	zones := []string{"America/New_York", "America/Los_Angeles", "Europe/Dublin", "Asia/Singapore",
		"America/Chicago", "Europe/Brussels", "Asia/Taipei", "Europe/Amsterdam", "UTC"}
	at := ts(t, "2026-03-27T00:00:00Z") // the week of the EU clock change
	for _, z := range zones {
		for _, s := range starts {
			for _, d := range durations {
				w := win(z, s, d, "tue", "wed")
				open, opens, closes, err := WindowAt(w, at)
				if err != nil {
					t.Fatalf("%+v: %v", w, err)
				}
				if open || opens.Before(at) || opens.Sub(at) > 8*24*time.Hour || closes.Sub(opens) < 2*time.Hour {
					t.Errorf("%+v at %s: open=%v opens %s closes %s", w, at, open, fmtT(opens), fmtT(closes))
				}
			}
		}
	}
}
