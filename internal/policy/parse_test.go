package policy

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // every error, in order
	}{
		{"unknown top-level field", "blackout: []\n",
			[]string{`p.yaml:1: blackout: unknown field; did you mean "blackouts"?`}},
		{"unknown blackout field", `blackouts:
  - name: x
    start: 2026-11-27T00:00:00Z
    end: 2026-11-30T00:00:00Z
    reasn: typo
`, []string{`p.yaml:5: blackouts[0].reasn: unknown field; did you mean "reason"?`}},
		{"end before start", `blackouts:
  - {name: a, start: 2026-11-27T00:00:00Z, end: 2026-11-30T00:00:00Z}
  - name: b
    start: 2026-11-30T00:00:00Z
    end: 2026-11-27T00:00:00Z
`, []string{`p.yaml:5: blackouts[1].end: must be after start (2026-11-30T00:00:00Z), got 2026-11-27T00:00:00Z`}},
		{"end equal to start", "blackouts:\n  - {name: a, start: 2026-11-27T00:00:00Z, end: 2026-11-27T00:00:00Z}\n",
			[]string{`p.yaml:2: blackouts[0].end: must be after start (2026-11-27T00:00:00Z), got 2026-11-27T00:00:00Z`}},
		{"missing name, start and end", "blackouts:\n  - reason: why\n",
			[]string{
				`p.yaml:2: blackouts[0].name: required: name the blackout (it appears in reasons)`,
				`p.yaml:2: blackouts[0].start: required: when the blackout begins, like 2026-11-27T00:00:00Z`,
				`p.yaml:2: blackouts[0].end: required: when the blackout ends, like 2026-11-30T00:00:00Z`,
			}},
		{"duplicate blackout name", `blackouts:
  - {name: a, start: 2026-11-27T00:00:00Z, end: 2026-11-30T00:00:00Z}
  - {name: a, start: 2026-12-27T00:00:00Z, end: 2026-12-30T00:00:00Z}
`, []string{`p.yaml:3: blackouts[1].name: blackout "a" is already defined at blackouts[0]`}},
		{"time without zone", "blackouts:\n  - {name: a, start: 2026-11-27T00:00:00, end: 2026-11-30}\n",
			[]string{`p.yaml:2: blackouts[0].start: "2026-11-27T00:00:00" has no time zone: add an offset like Z or +01:00`}},
		{"bad time", "blackouts:\n  - {name: a, start: next friday, end: 2026-11-30}\n",
			[]string{`p.yaml:2: blackouts[0].start: must be a time like 2026-11-27T00:00:00Z (RFC 3339) or a date like 2026-11-27, got "next friday"`}},
		{"bad blackout selector", "blackouts:\n  - {name: a, selector: \"env=prd\", start: 2026-11-27, end: 2026-11-30}\n",
			[]string{`p.yaml:2: blackouts[0].selector: column 5: unknown env "prd" (want one of internal, non-prod, prod)`}},
		{"bad protected selector", `protected:
  - {clusters: [lkc-00007], reason: audit}
  - selector: "labels.tier=critical-bank"
    reason: bank
`, []string{`p.yaml:3: protected[1].selector: column 1: unknown field "labels.tier" (did you mean "label.tier"?)`}},
		{"protection naming nothing", "protected:\n  - reason: why\n",
			[]string{`p.yaml:2: protected[0]: names no clusters: give clusters, customers or selector`}},
		{"clusters not a list of text", "protected:\n  - clusters: [{id: x}]\n",
			[]string{`p.yaml:2: protected[0].clusters[0]: must be text, got a mapping`}},
		{"unknown role", `access:
  roles:
    alice: [operator]
    bob: [aprover]
`, []string{`p.yaml:4: access.roles.bob[0]: unknown role "aprover" (want viewer, operator, approver, admin)`}},
		{"no roles for an identity", "access:\n  roles:\n    alice: []\n",
			[]string{`p.yaml:3: access.roles.alice: give at least one role (viewer, operator, approver, admin)`}},
		{"unknown environment", "access:\n  approvers:\n    production: [bob]\n",
			[]string{`p.yaml:3: access.approvers.production: unknown environment "production" (want internal, non-prod, prod)`}},
		{"unknown default role", "access:\n  default: guest\n",
			[]string{`p.yaml:2: access.default: unknown role "guest" (want viewer, operator, approver, admin)`}},
		{"unknown access field", "access:\n  role: {alice: operator}\n",
			[]string{`p.yaml:2: access.role: unknown field; did you mean "roles"?`}},
		{"duplicate key", "access:\n  roles:\n    alice: [operator]\n    alice: [admin]\n",
			[]string{`p.yaml:4: access.roles.alice: defined twice (first at line 3)`}},
		{"wrong shapes", "blackouts: {name: a}\nprotected: yes\naccess: [alice]\n",
			[]string{
				`p.yaml:1: blackouts: must be a list, got a mapping`,
				`p.yaml:2: protected: must be a list, got "yes"`,
				`p.yaml:3: access: must be a mapping of identity, people, services, roles, approvers, default, got a list`,
			}},
		{"not a mapping", "- a\n- b\n",
			[]string{`p.yaml:1: a policy must be a mapping with blackouts, protected and access, got a list`}},
		// yaml.v3 reports the line before the construct it was parsing (as
		// in internal/spec).
		{"yaml syntax", "blackouts:\n  - {name: a\nprotected: []\n",
			[]string{`p.yaml:1: did not find expected ',' or '}'`}},
		{"two documents", "blackouts: []\n---\nprotected: []\n",
			[]string{`p.yaml:2: a policy file holds one YAML document, found a second`}},
		{"errors in file order", `access:
  default: guest
blackouts:
  - {name: a, start: 2026-11-30, end: 2026-11-27}
protected:
  - {reason: x}
`, []string{
			`p.yaml:2: access.default: unknown role "guest" (want viewer, operator, approver, admin)`,
			`p.yaml:4: blackouts[0].end: must be after start (2026-11-30T00:00:00Z), got 2026-11-27T00:00:00Z`,
			`p.yaml:6: protected[0]: names no clusters: give clusters, customers or selector`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("p.yaml", []byte(tt.src))
			if err == nil {
				t.Fatalf("parsed: %+v", cfg)
			}
			var verrs ValidationErrors
			if !errors.As(err, &verrs) {
				t.Fatalf("error %T: %v", err, err)
			}
			got := strings.Split(err.Error(), "\n")
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
			var e *Error
			if !errors.As(err, &e) || e.File != "p.yaml" || e.Line == 0 {
				t.Errorf("first *Error = %+v", e)
			}
		})
	}
}

func TestParseValid(t *testing.T) {
	t.Run("empty file is an empty policy", func(t *testing.T) {
		for _, src := range []string{"", "# nothing yet\n", "~\n"} {
			cfg, err := Parse("p.yaml", []byte(src))
			if err != nil || cfg == nil || cfg.Access != nil || len(cfg.Blackouts)+len(cfg.Protections) != 0 {
				t.Errorf("%q: %+v, %v", src, cfg, err)
			}
			if err := cfg.Authorize("anyone", ActionFreeze, "prod"); err != nil {
				t.Errorf("%q: %v", src, err)
			}
		}
	})
	t.Run("empty access section turns access control on", func(t *testing.T) {
		cfg, err := Parse("p.yaml", []byte("access:\n"))
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Authorize("anyone", ActionStart, "prod"); err == nil || err.Error() != "anyone holds viewer; start in prod needs operator" {
			t.Errorf("Authorize = %v", err)
		}
	})
	t.Run("single values, dates and offsets", func(t *testing.T) {
		cfg, err := Parse("p.yaml", []byte(`blackouts:
  - {name: a, customers: cust-1, start: 2026-11-27, end: "2026-11-28T01:00:00+01:00"}
access:
  roles: {bob: approver, "slack:U1": [operator, approver]}
  approvers: {prod: bob}
  default: operator
`))
		if err != nil {
			t.Fatal(err)
		}
		b := cfg.Blackouts[0]
		if !reflect.DeepEqual(b.Customers, []string{"cust-1"}) || !b.Start.Equal(ts(t, "2026-11-27T00:00:00Z")) || !b.End.Equal(ts(t, "2026-11-28T00:00:00Z")) {
			t.Errorf("blackout %+v", b)
		}
		a := cfg.Access
		if a.RoleOf("bob") != RoleApprover || a.RoleOf("slack:U1") != RoleApprover || a.RoleOf("x") != RoleOperator {
			t.Errorf("roles %+v", a)
		}
		if ids, ok := a.ApproversFor("prod"); !ok || !reflect.DeepEqual(ids, []string{"bob"}) {
			t.Errorf("approvers %v %v", ids, ok)
		}
	})
	t.Run("load", func(t *testing.T) {
		if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("missing file: %v", err)
		}
		path := filepath.Join(t.TempDir(), "policy.yaml")
		if err := os.WriteFile(path, []byte("protected:\n  - {}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); err == nil || err.Error() != path+":2: protected[0]: names no clusters: give clusters, customers or selector" {
			t.Errorf("Load = %v", err)
		}
	})
}

func TestParseAccessOpen(t *testing.T) {
	cfg, err := Parse("p.yaml", []byte("access: open\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.OpenAccess || cfg.Access != nil {
		t.Fatalf("access: open gave OpenAccess=%v Access=%v", cfg.OpenAccess, cfg.Access)
	}
	if err := cfg.Authorize("anyone", ActionUnfreeze, ""); err != nil {
		t.Fatalf("open access denied: %v", err)
	}
	if !cfg.Snapshot().OpenAccess {
		t.Fatal("snapshot lost OpenAccess")
	}
	_, err = Parse("p.yaml", []byte("access: closed\n"))
	if err == nil || !strings.Contains(err.Error(), "p.yaml:1") || !strings.Contains(err.Error(), "open") {
		t.Fatalf("access: closed: got %v", err)
	}
	cfg, err = Parse("p.yaml", []byte("access:\n"))
	if err != nil || cfg.Access == nil || cfg.OpenAccess {
		t.Fatalf("empty access: %v %+v", err, cfg)
	}
}
