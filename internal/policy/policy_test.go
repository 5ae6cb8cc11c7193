package policy

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fleet-rollout/fleet/internal/fleet"
)

func loadExample(t *testing.T) *Config {
	t.Helper()
	cfg, err := Load("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func cluster(id, customer, env, region string, labels map[string]string, w *fleet.Window) fleet.Cluster {
	return fleet.Cluster{ID: id, Product: fleet.ProductKafka, Cloud: fleet.CloudGCP, Region: region,
		Environment: env, Customer: customer, Tier: "standard", Version: "3.6.1", Brokers: 3,
		Generation: 1, Labels: labels, Window: w}
}

func TestLoadExample(t *testing.T) {
	cfg := loadExample(t)
	if len(cfg.Blackouts) != 3 || len(cfg.Protections) != 2 || cfg.Access == nil {
		t.Fatalf("loaded %+v", cfg)
	}
	b := cfg.Blackouts[2]
	if !b.Start.Equal(ts(t, "2026-12-30T23:00:00Z")) || b.sel == nil {
		t.Errorf("eu-bank-close = %+v", b)
	}
	if got := cfg.Access.Identities(); !reflect.DeepEqual(got, []string{"alice", "bob", "carol", "dave", "erin", "slack:U024BE7LH"}) {
		t.Errorf("Identities = %v", got)
	}
	if got := cfg.Access.ApproverEnvironments(); !reflect.DeepEqual(got, []string{"prod"}) {
		t.Errorf("ApproverEnvironments = %v", got)
	}
}

func TestBlackout(t *testing.T) {
	cfg := loadExample(t)
	// Back-to-back and overlapping blackouts for cust-007.
	cfg.Blackouts = append(cfg.Blackouts,
		Blackout{Name: "b1", Customers: []string{"cust-007"}, Start: ts(t, "2026-08-01T00:00:00Z"), End: ts(t, "2026-08-05T00:00:00Z"), Reason: "one"},
		Blackout{Name: "b2", Clusters: []string{"lkc-00099"}, Start: ts(t, "2026-08-04T00:00:00Z"), End: ts(t, "2026-08-08T00:00:00Z")},
		Blackout{Name: "b3", Customers: []string{"cust-007"}, Start: ts(t, "2026-08-08T00:00:00Z"), End: ts(t, "2026-08-09T00:00:00Z"), Reason: "three"},
	)
	plain := cluster("lkc-00001", "cust-001", fleet.EnvProd, "us-central1", nil, nil)
	acme := cluster("lkc-00042", "cust-042", fleet.EnvProd, "us-central1", nil, nil)
	euProd := cluster("lkc-00050", "cust-050", fleet.EnvProd, "europe-west1", nil, nil)
	euDev := cluster("lkc-00051", "cust-050", fleet.EnvNonProd, "europe-west1", nil, nil)
	chained := cluster("lkc-00099", "cust-007", fleet.EnvProd, "us-central1", nil, nil)
	tests := []struct {
		name   string
		c      fleet.Cluster
		at     string
		active bool
		until  string
		reason string
	}{
		{"global before", plain, "2026-11-26T23:59:59Z", false, "", ""},
		{"global at start", plain, "2026-11-27T00:00:00Z", true, "2026-11-30T00:00:00Z", "black-friday (peak retail traffic)"},
		{"global at end is over", plain, "2026-11-30T00:00:00Z", false, "", ""},
		{"customer blackout applies", acme, "2026-07-02T12:00:00Z", true, "2026-07-03T00:00:00Z", "acme-launch (customer launch)"},
		{"customer blackout not for others", plain, "2026-07-02T12:00:00Z", false, "", ""},
		{"global applies to the customer too", acme, "2026-11-28T00:00:00Z", true, "2026-11-30T00:00:00Z", "black-friday (peak retail traffic)"},
		{"selector blackout matches", euProd, "2027-01-01T12:00:00Z", true, "2027-01-01T23:00:00Z", "eu-bank-close (year-end close)"},
		{"selector blackout skips non-prod", euDev, "2027-01-01T12:00:00Z", false, "", ""},
		{"chain through overlap and touch", chained, "2026-08-02T00:00:00Z", true, "2026-08-09T00:00:00Z", "b1 (one), b2, b3 (three)"},
		{"chain from the middle", chained, "2026-08-06T00:00:00Z", true, "2026-08-09T00:00:00Z", "b2, b3 (three)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			active, until, reason := cfg.Blackout(tt.c, ts(t, tt.at))
			if active != tt.active || !until.Equal(ts(t, tt.until)) || reason != tt.reason {
				t.Errorf("Blackout = %v, %s, %q; want %v, %s, %q", active, fmtT(until), reason, tt.active, tt.until, tt.reason)
			}
		})
	}
	var nilCfg *Config
	if active, _, _ := nilCfg.Blackout(plain, ts(t, "2026-11-28T00:00:00Z")); active {
		t.Error("nil Config has a blackout")
	}
}

func TestProtected(t *testing.T) {
	cfg := loadExample(t)
	cfg.Protections = append(cfg.Protections, Protection{Customers: []string{"cust-900"}})
	bank := map[string]string{"tier": "critical-bank"}
	tests := []struct {
		name   string
		c      fleet.Cluster
		reason string
		ok     bool
	}{
		{"by id", cluster("lkc-00007", "cust-001", fleet.EnvProd, "us-central1", nil, nil), "regulator audit in progress", true},
		{"by selector", cluster("lkc-00008", "cust-001", fleet.EnvProd, "us-central1", bank, nil), "never touch without an admin", true},
		{"first match wins", cluster("lkc-00007", "cust-001", fleet.EnvProd, "us-central1", bank, nil), "regulator audit in progress", true},
		{"by customer, default reason", cluster("lkc-00009", "cust-900", fleet.EnvProd, "us-central1", nil, nil), "protected by policy (protected[2])", true},
		{"other label value", cluster("lkc-00010", "cust-001", fleet.EnvProd, "us-central1", map[string]string{"tier": "gold"}, nil), "", false},
		{"not protected", cluster("lkc-00011", "", fleet.EnvProd, "us-central1", nil, nil), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason, ok := cfg.Protected(tt.c)
			if reason != tt.reason || ok != tt.ok {
				t.Errorf("Protected = %q, %v; want %q, %v", reason, ok, tt.reason, tt.ok)
			}
		})
	}
	var nilCfg *Config
	if _, ok := nilCfg.Protected(tests[0].c); ok {
		t.Error("nil Config protects")
	}
	// A selector that does not parse (a hand-built Config) fails closed.
	bad := &Config{Protections: []Protection{{Selector: "tier==(", Reason: "bad"}}}
	if _, ok := bad.Protected(tests[5].c); !ok {
		t.Error("unparseable selector did not protect")
	}
	if err := bad.Prepare(); err == nil || !strings.Contains(err.Error(), "protected[0].selector: column") {
		t.Errorf("Prepare = %v", err)
	}
}

func TestAuthorize(t *testing.T) {
	cfg := loadExample(t)
	tests := []struct {
		id     string
		action Action
		env    string
		err    string // "" = allowed
	}{
		{"zed", ActionView, "prod", ""},
		{"zed", ActionStart, "prod", "zed holds viewer; start in prod needs operator"},
		{"", ActionPause, "", "(anonymous) holds viewer; pause needs operator"},
		{"alice", ActionStart, "prod", ""},
		{"alice", ActionPause, "prod", ""},
		{"alice", ActionResume, "prod", ""},
		{"alice", ActionAbort, "prod", ""},
		{"alice", ActionPace, "prod", ""},
		{"alice", ActionApprove, "non-prod", "alice holds operator; approve in non-prod needs approver"},
		{"alice", ActionFreeze, "", "alice holds operator; freeze needs admin"},
		{"bob", ActionApprove, "prod", ""},
		{"bob", ActionApprove, "non-prod", ""},
		{"bob", ActionStart, "prod", ""},
		{"bob", ActionUnfreeze, "", "bob holds approver; unfreeze needs admin"},
		{"bob", ActionForceProtected, "prod", "bob holds approver; force-protected in prod needs admin"},
		{"dave", ActionApprove, "non-prod", ""},
		{"dave", ActionApprove, "prod", "dave holds approver; approve in prod needs approver and a place on the prod approver list (bob, carol, erin)"},
		{"erin", ActionApprove, "prod", ""}, // highest of operator, approver
		{"slack:U024BE7LH", ActionApprove, "internal", ""},
		{"slack:U024BE7LH", ActionApprove, "prod", "slack:U024BE7LH holds approver; approve in prod needs approver and a place on the prod approver list (bob, carol, erin)"},
		{"Bob", ActionApprove, "prod", "Bob holds viewer; approve in prod needs approver"}, // identities match exactly
		{"carol", ActionFreeze, "", ""},
		{"carol", ActionUnfreeze, "", ""},
		{"carol", ActionForceProtected, "prod", ""},
		{"carol", ActionApprove, "prod", ""},
		{"carol", ActionStart, "prod", ""},
	}
	for _, tt := range tests {
		t.Run(tt.id+"/"+string(tt.action)+"/"+tt.env, func(t *testing.T) {
			err := cfg.Authorize(tt.id, tt.action, tt.env)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("denied: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.err {
				t.Fatalf("Authorize = %v, want %q", err, tt.err)
			}
			var d *DeniedError
			if !errors.As(err, &d) || !errors.Is(err, ErrDenied) || d.Identity != tt.id || d.Action != tt.action || d.Env != tt.env {
				t.Errorf("error %#v", err)
			}
		})
	}

	t.Run("fields", func(t *testing.T) {
		var d *DeniedError
		if err := cfg.Authorize("bob", ActionFreeze, ""); !errors.As(err, &d) || d.Need != RoleAdmin || d.Have != RoleApprover || d.NotListed {
			t.Errorf("%#v", d)
		}
	})
	t.Run("default role", func(t *testing.T) {
		c := &Config{Access: &Access{Roles: map[string][]Role{"vic": {RoleViewer}}, Default: RoleOperator}}
		if err := c.Authorize("stranger", ActionStart, "prod"); err != nil {
			t.Errorf("default operator: %v", err)
		}
		if err := c.Authorize("vic", ActionStart, "prod"); err == nil || err.Error() != "vic holds viewer; start in prod needs operator" {
			t.Errorf("listed viewer: %v", err)
		}
		if err := c.Authorize("stranger", ActionApprove, "prod"); err == nil || err.Error() != "stranger holds operator; approve in prod needs approver" {
			t.Errorf("default operator approving: %v", err)
		}
	})
	t.Run("empty approver list leaves approval to admins", func(t *testing.T) {
		c := &Config{Access: &Access{Roles: map[string][]Role{"bob": {RoleApprover}, "carol": {RoleAdmin}}, Approvers: map[string][]string{"prod": {}}}}
		if err := c.Authorize("bob", ActionApprove, "prod"); err == nil || !strings.Contains(err.Error(), "(empty: only admins approve there)") {
			t.Errorf("bob: %v", err)
		}
		if err := c.Authorize("carol", ActionApprove, "prod"); err != nil {
			t.Errorf("carol: %v", err)
		}
	})
	t.Run("no policy allows everything", func(t *testing.T) {
		var nilCfg *Config
		for _, c := range []*Config{nilCfg, {}} {
			for _, a := range Actions {
				if err := c.Authorize("anyone", a, "prod"); err != nil {
					t.Errorf("%v: %v", a, err)
				}
			}
		}
	})
	t.Run("unknown action", func(t *testing.T) {
		var nilCfg *Config
		for _, c := range []*Config{nilCfg, cfg} {
			if err := c.Authorize("carol", Action("delete"), "prod"); err == nil || errors.Is(err, ErrDenied) {
				t.Errorf("unknown action: %v", err)
			}
		}
	})
	t.Run("every action needs a role", func(t *testing.T) {
		for _, a := range Actions {
			if r, ok := a.Needs(); !ok || !r.Valid() {
				t.Errorf("%s needs %q", a, r)
			}
		}
	})
}

func TestTwoPersonRule(t *testing.T) {
	tests := []struct {
		requester, approver, env string
		err                      string
	}{
		{"alice", "bob", "prod", ""},
		{"alice", "alice", "prod", "two-person rule: alice started this rollout and cannot also approve it in prod; a second person must approve"},
		{"alice", " Alice ", "prod", "two-person rule:  Alice  started this rollout"},
		{"alice", "alice", "non-prod", ""},
		{"alice", "alice", "internal", ""},
		{"", "bob", "prod", ""},
		{"alice", "", "prod", "two-person rule: approval in prod needs a named approver"},
	}
	for _, tt := range tests {
		t.Run(tt.requester+"/"+tt.approver+"/"+tt.env, func(t *testing.T) {
			err := TwoPersonRule(tt.requester, tt.approver, tt.env)
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.err) || !errors.Is(err, ErrSelfApproval) {
				t.Fatalf("TwoPersonRule = %v, want %q", err, tt.err)
			}
		})
	}
}

// TestSnapshotJSON checks a Snapshot survives the JSON round trip an
// activity result takes, encodes deterministically, and answers the same.
func TestSnapshotJSON(t *testing.T) {
	cfg := loadExample(t)
	snap := cfg.Snapshot()
	a, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	var back Snapshot
	if err := json.Unmarshal(a, &back); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(back)
	c, _ := json.Marshal(cfg.Snapshot())
	if string(a) != string(b) || string(a) != string(c) {
		t.Errorf("JSON differs:\n%s\n%s\n%s", a, b, c)
	}
	if !strings.Contains(string(a), `"protected":[{"clusters":["lkc-00007"]`) {
		t.Errorf("JSON: %s", a)
	}

	clusters := []fleet.Cluster{
		cluster("lkc-00007", "cust-001", fleet.EnvProd, "us-central1", nil, nil),
		cluster("lkc-00008", "cust-042", fleet.EnvProd, "europe-west1", map[string]string{"tier": "critical-bank"}, nil),
		cluster("lkc-00009", "cust-042", fleet.EnvNonProd, "europe-west1", nil, &fleet.Window{Days: []string{"sat"}, Start: "02:00", Duration: "4h", TimeZone: "Europe/Berlin"}),
	}
	times := []time.Time{ts(t, "2026-07-02T00:00:00Z"), ts(t, "2026-11-28T00:00:00Z"), ts(t, "2027-01-01T00:00:00Z")}
	for _, cl := range clusters {
		r1, ok1 := cfg.Protected(cl)
		r2, ok2 := back.Protected(cl)
		if r1 != r2 || ok1 != ok2 {
			t.Errorf("%s: Protected %q %v vs %q %v", cl.ID, r1, ok1, r2, ok2)
		}
		for _, at := range times {
			a1, u1, w1 := cfg.Blackout(cl, at)
			a2, u2, w2 := back.Blackout(cl, at)
			if a1 != a2 || !u1.Equal(u2) || w1 != w2 {
				t.Errorf("%s at %s: Blackout differs", cl.ID, at)
			}
			s1, why1, err1 := NextStart(cl, at, cfg, false)
			s2, why2, err2 := NextStart(cl, at, &back, false)
			if !s1.Equal(s2) || why1 != why2 || (err1 == nil) != (err2 == nil) {
				t.Errorf("%s at %s: NextStart %s %q vs %s %q", cl.ID, at, s1, why1, s2, why2)
			}
		}
	}
	for _, id := range []string{"alice", "bob", "dave", "nobody"} {
		for _, act := range Actions {
			e1, e2 := cfg.Authorize(id, act, "prod"), back.Authorize(id, act, "prod")
			if (e1 == nil) != (e2 == nil) || e1 != nil && e1.Error() != e2.Error() {
				t.Errorf("%s %s: %v vs %v", id, act, e1, e2)
			}
		}
	}
	if err := back.Prepare(); err != nil {
		t.Errorf("Prepare on a decoded snapshot: %v", err)
	}

	var nilCfg *Config
	zero := nilCfg.Snapshot()
	if zero.Access != nil || zero.Authorize("x", ActionFreeze, "prod") != nil {
		t.Error("nil Config's snapshot is not permissive")
	}
}

// TestSnapshotIsACopy checks the snapshot shares no slices or maps with
// the Config.
func TestSnapshotIsACopy(t *testing.T) {
	cfg := loadExample(t)
	snap := cfg.Snapshot()
	cfg.Blackouts[0].Name = "changed"
	cfg.Access.Roles["alice"][0] = RoleAdmin
	cfg.Access.Approvers["prod"][0] = "mallory"
	cfg.Protections[0].Clusters[0] = "lkc-x"
	if snap.Blackouts[0].Name != "black-friday" || snap.Access.Roles["alice"][0] != RoleOperator ||
		snap.Access.Approvers["prod"][0] != "bob" || snap.Protections[0].Clusters[0] != "lkc-00007" {
		t.Errorf("snapshot changed with its Config: %+v", snap)
	}
}
