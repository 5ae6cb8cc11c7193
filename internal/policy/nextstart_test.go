package policy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fleet-rollout/fleet/internal/fleet"
)

func TestNextStart(t *testing.T) {
	cfg := loadExample(t)
	cfg.Blackouts = append(cfg.Blackouts,
		// July 1st in Berlin, for customer cust-100.
		Blackout{Name: "july-first", Customers: []string{"cust-100"}, Start: ts(t, "2026-06-30T22:00:00Z"), End: ts(t, "2026-07-01T22:00:00Z"), Reason: "migration day"},
		// Ends in the middle of a Wednesday UTC window, for cust-200.
		Blackout{Name: "short", Customers: []string{"cust-200"}, Start: ts(t, "2026-06-16T00:00:00Z"), End: ts(t, "2026-06-17T03:00:00Z")},
		// 90 days, for cust-300.
		Blackout{Name: "long", Customers: []string{"cust-300"}, Start: ts(t, "2026-06-01T00:00:00Z"), End: ts(t, "2026-08-30T00:00:00Z")},
		// Nights of June 20-23 UTC, for cust-400: each lands on a window opening.
		Blackout{Name: "n1", Customers: []string{"cust-400"}, Start: ts(t, "2026-06-20T00:00:00Z"), End: ts(t, "2026-06-20T06:00:00Z")},
		Blackout{Name: "n2", Customers: []string{"cust-400"}, Start: ts(t, "2026-06-21T00:00:00Z"), End: ts(t, "2026-06-21T06:00:00Z")},
	)
	berlinSat := &fleet.Window{Days: []string{"sat"}, Start: "02:00", Duration: "4h", TimeZone: "Europe/Berlin"}
	berlinDaily := &fleet.Window{Start: "02:00", Duration: "4h", TimeZone: "Europe/Berlin"}
	utcWed := &fleet.Window{Days: []string{"wed"}, Start: "00:00", Duration: "6h", TimeZone: "UTC"}
	utcNightly := &fleet.Window{Start: "00:00", Duration: "4h", TimeZone: "UTC"}
	tests := []struct {
		name   string
		c      fleet.Cluster
		cfg    *Config
		at     string
		ignore bool
		want   string
		reason string
	}{
		{"no window, no policy", cluster("lkc-1", "c", "prod", "us-east1", nil, nil), nil, "2026-06-17T12:00:00Z", false,
			"2026-06-17T12:00:00Z", ""},
		{"inside the window: now", cluster("lkc-1", "c", "prod", "europe-west1", nil, berlinSat), cfg, "2026-06-13T01:00:00Z", false,
			"2026-06-13T01:00:00Z", ""},
		{"waits for the window", cluster("lkc-1", "c", "prod", "europe-west1", nil, berlinSat), cfg, "2026-06-10T12:00:00Z", false,
			"2026-06-13T00:00:00Z", "maintenance window opens Sat 02:00 Europe/Berlin (2026-06-13T00:00:00Z)"},
		{"window the week clocks spring forward", cluster("lkc-1", "c", "prod", "europe-west1", nil, &fleet.Window{Days: []string{"sun"}, Start: "02:00", Duration: "2h", TimeZone: "Europe/Berlin"}), nil, "2026-03-28T12:00:00Z", false,
			"2026-03-29T01:00:00Z", "maintenance window opens Sun 03:00 Europe/Berlin (2026-03-29T01:00:00Z)"},
		{"global blackout then next window", cluster("lkc-1", "c", "prod", "europe-west1", nil, berlinSat), cfg, "2026-11-27T12:00:00Z", false,
			"2026-12-05T01:00:00Z", "blackout black-friday (peak retail traffic) until 2026-11-30T00:00:00Z, then maintenance window opens Sat 02:00 Europe/Berlin (2026-12-05T01:00:00Z)"},
		{"blackout day moves the start to the next day's window", cluster("lkc-1", "cust-100", "prod", "europe-west1", nil, berlinDaily), cfg, "2026-06-30T23:30:00Z", false,
			"2026-07-02T00:00:00Z", "blackout july-first (migration day) until 2026-07-01T22:00:00Z, then maintenance window opens Thu 02:00 Europe/Berlin (2026-07-02T00:00:00Z)"},
		{"blackout day applies to its customer only", cluster("lkc-1", "cust-101", "prod", "europe-west1", nil, berlinDaily), cfg, "2026-06-30T23:30:00Z", false,
			"2026-07-01T00:00:00Z", "maintenance window opens Wed 02:00 Europe/Berlin (2026-07-01T00:00:00Z)"},
		{"blackout ends inside the window", cluster("lkc-1", "cust-200", "prod", "us-east1", nil, utcWed), cfg, "2026-06-16T12:00:00Z", false,
			"2026-06-17T03:00:00Z", "blackout short until 2026-06-17T03:00:00Z"},
		{"alternating blackouts and windows", cluster("lkc-1", "cust-400", "prod", "us-east1", nil, utcNightly), cfg, "2026-06-19T23:00:00Z", false,
			"2026-06-22T00:00:00Z", "maintenance window opens Sat 00:00 UTC (2026-06-20T00:00:00Z), then blackout n1 until 2026-06-20T06:00:00Z, then maintenance window opens Sun 00:00 UTC (2026-06-21T00:00:00Z), then blackout n2 until 2026-06-21T06:00:00Z, then 1 more"},
		{"no window, blackout only", cluster("lkc-1", "cust-042", "prod", "us-east1", nil, nil), cfg, "2026-07-01T10:00:00Z", false,
			"2026-07-03T00:00:00Z", "blackout acme-launch (customer launch) until 2026-07-03T00:00:00Z"},
		{"emergency ignores blackouts", cluster("lkc-1", "c", "prod", "europe-west1", nil, berlinSat), cfg, "2026-11-27T12:00:00Z", true,
			"2026-11-27T12:00:00Z", ""},
		{"emergency ignores an invalid window", cluster("lkc-1", "c", "prod", "europe-west1", nil, &fleet.Window{Start: "25:00"}), cfg, "2026-11-27T12:00:00Z", true,
			"2026-11-27T12:00:00Z", ""},
		{"zero window is always open", cluster("lkc-1", "c", "prod", "europe-west1", nil, &fleet.Window{}), nil, "2026-06-17T12:00:00Z", false,
			"2026-06-17T12:00:00Z", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at, reason, err := NextStart(tt.c, ts(t, tt.at), tt.cfg, tt.ignore)
			if err != nil {
				t.Fatal(err)
			}
			if !at.Equal(ts(t, tt.want)) || reason != tt.reason {
				t.Errorf("NextStart = %s, %q\nwant         %s, %q", fmtT(at), reason, tt.want, tt.reason)
			}
			if !tt.ignore {
				if open, _, _, _ := WindowAt(derefWindow(tt.c.Window), at); !open {
					t.Errorf("window closed at %s", at)
				}
				if active, _, _ := tt.cfg.Blackout(tt.c, at); active {
					t.Errorf("blackout active at %s", at)
				}
			}
		})
	}

	t.Run("no start within the horizon", func(t *testing.T) {
		c := cluster("lkc-1", "cust-300", "prod", "us-east1", nil, nil)
		_, _, err := NextStart(c, ts(t, "2026-06-02T00:00:00Z"), cfg, false)
		if !errors.Is(err, ErrNoStart) || !strings.Contains(err.Error(), "blackout long until 2026-08-30T00:00:00Z") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("invalid window", func(t *testing.T) {
		c := cluster("lkc-9", "c", "prod", "us-east1", nil, &fleet.Window{Days: []string{"mon"}, Start: "02:00", Duration: "2h", TimeZone: "Nowhere/City"})
		_, _, err := NextStart(c, ts(t, "2026-06-02T00:00:00Z"), nil, false)
		if err == nil || err.Error() != `cluster lkc-9: maintenance window: timeZone: unknown IANA time zone "Nowhere/City"` {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("deterministic", func(t *testing.T) {
		c := cluster("lkc-1", "cust-400", "prod", "us-east1", nil, utcNightly)
		a1, r1, _ := NextStart(c, ts(t, "2026-06-19T23:00:00Z"), cfg, false)
		for range 20 {
			snap := cfg.Snapshot()
			a2, r2, _ := NextStart(c, ts(t, "2026-06-19T23:00:00Z"), &snap, false)
			if !a1.Equal(a2) || r1 != r2 {
				t.Fatalf("%s %q vs %s %q", a1, r1, a2, r2)
			}
		}
	})
}

func derefWindow(w *fleet.Window) fleet.Window {
	if w == nil {
		return fleet.Window{}
	}
	return *w
}

// TestNextStartSpeed keeps NextStart cheap enough to call per cluster in
// a workflow over a large batch.
func TestNextStartSpeed(t *testing.T) {
	cfg := loadExample(t)
	c := cluster("lkc-1", "c", "prod", "europe-west1", nil, &fleet.Window{Days: []string{"sat"}, Start: "02:00", Duration: "4h", TimeZone: "Europe/Berlin"})
	start := time.Now()
	for range 1000 {
		if _, _, err := NextStart(c, ts(t, "2026-11-27T12:00:00Z"), cfg, false); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("1000 NextStart calls: %s", time.Since(start))
}
