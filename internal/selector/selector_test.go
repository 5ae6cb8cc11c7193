package selector

import (
	"errors"
	"fmt"
	"testing"

	"github.com/fleet-rollout/fleet/internal/fleet"
)

var (
	kafkaProd = fleet.Cluster{
		ID: "lkc-001", Product: "kafka", Cloud: "aws", Region: "us-east-1", Environment: "prod",
		Customer: "acme", Tier: "dedicated", Version: "3.6.1", Brokers: 6,
		Labels: map[string]string{"team": "payments", "pci": "true"},
	}
	connectInternal = fleet.Cluster{
		ID: "lcc-002", Product: "connect", Cloud: "azure", Region: "westeurope", Environment: "internal",
		Customer: "confluent", Tier: "standard", Version: "3.10.0", Brokers: 3,
	}
	ksqlNonProdRC = fleet.Cluster{
		ID: "lksqlc-003", Product: "ksqldb", Cloud: "gcp", Region: "us-central1", Environment: "non-prod",
		Customer: "globex", Tier: "basic", Version: "v7.6.0-rc1", Brokers: 1,
		Labels: map[string]string{"team": "search"},
	}
	badVersion = fleet.Cluster{
		ID: "lkc-004", Product: "kafka", Cloud: "gcp", Region: "asia-east1", Environment: "prod",
		Customer: "initech", Tier: "basic", Version: "latest", Brokers: 3,
	}
	clusters = []fleet.Cluster{kafkaProd, connectInternal, ksqlNonProdRC, badVersion}
)

func TestMatch(t *testing.T) {
	tests := []struct {
		sel  string
		want []string // IDs of clusters that match, in `clusters` order
	}{
		{"", []string{"lkc-001", "lcc-002", "lksqlc-003", "lkc-004"}},
		{"   ", []string{"lkc-001", "lcc-002", "lksqlc-003", "lkc-004"}},
		{"product=kafka", []string{"lkc-001", "lkc-004"}},
		{"product==kafka", []string{"lkc-001", "lkc-004"}},
		{"product!=kafka", []string{"lcc-002", "lksqlc-003"}},
		{"env in (internal, non-prod)", []string{"lcc-002", "lksqlc-003"}},
		{"environment notin (internal,non-prod)", []string{"lkc-001", "lkc-004"}},
		{"cloud!=azure, product=kafka", []string{"lkc-001", "lkc-004"}},
		{"id=lkc-001", []string{"lkc-001"}},
		{`id in ("lkc-001", lcc-002)`, []string{"lkc-001", "lcc-002"}},
		{"region=us-east-1", []string{"lkc-001"}},
		{"customer notin (acme, globex)", []string{"lcc-002", "lkc-004"}},
		{"tier=basic", []string{"lksqlc-003", "lkc-004"}},
		// Versions compare semantically; "latest" is unordered and unequal.
		{"version<3.7.0", []string{"lkc-001"}},
		{"version>3.9.2", []string{"lcc-002", "lksqlc-003"}},
		{"version>=3.10", []string{"lcc-002", "lksqlc-003"}},
		{"version<=3.6.1", []string{"lkc-001"}},
		{"version=v3.6.1", []string{"lkc-001"}},
		{"version!=3.6.1", []string{"lcc-002", "lksqlc-003", "lkc-004"}},
		{"version<7.6.0", []string{"lkc-001", "lcc-002", "lksqlc-003"}},
		{"version=7.6.0-rc1", []string{"lksqlc-003"}},
		{"version in (3.6.1, 3.10.0)", []string{"lkc-001", "lcc-002"}},
		{"version notin (3.6.1, 3.10.0)", []string{"lksqlc-003", "lkc-004"}},
		// Numbers.
		{"brokers>=3", []string{"lkc-001", "lcc-002", "lkc-004"}},
		{"brokers<3", []string{"lksqlc-003"}},
		{"brokers>3", []string{"lkc-001"}},
		{"brokers<=3", []string{"lcc-002", "lksqlc-003", "lkc-004"}},
		{"brokers=006", []string{"lkc-001"}},
		{"brokers!=6", []string{"lcc-002", "lksqlc-003", "lkc-004"}},
		{"brokers in (1, 6)", []string{"lkc-001", "lksqlc-003"}},
		{"brokers notin (1, 6)", []string{"lcc-002", "lkc-004"}},
		// Labels: absent is unequal to everything.
		{"label.team=payments", []string{"lkc-001"}},
		{"label.team!=payments", []string{"lcc-002", "lksqlc-003", "lkc-004"}},
		{"label.team in (payments, search)", []string{"lkc-001", "lksqlc-003"}},
		{"label.team notin (payments)", []string{"lcc-002", "lksqlc-003", "lkc-004"}},
		{"label.team", []string{"lkc-001", "lksqlc-003"}},
		{"!label.team", []string{"lcc-002", "lkc-004"}},
		{"! label.pci, product=kafka", []string{"lkc-004"}},
		{"label.pci=\"true\"", []string{"lkc-001"}},
		// Whitespace, newlines (folded YAML) and the full example.
		{"product = kafka ,\n env in ( prod ) ", []string{"lkc-001", "lkc-004"}},
		{"product=kafka, env in (internal, non-prod, prod), cloud!=azure, version<3.7.0, label.team=payments", []string{"lkc-001"}},
	}
	for _, tt := range tests {
		t.Run(tt.sel, func(t *testing.T) {
			s, err := Parse(tt.sel)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.sel, err)
			}
			var got []string
			for _, c := range clusters {
				if s.Match(c) {
					got = append(got, c.ID)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("Parse(%q) matches %v, want %v", tt.sel, got, tt.want)
			}
			// The canonical form selects the same clusters.
			back, err := Parse(s.String())
			if err != nil {
				t.Fatalf("Parse(String()=%q): %v", s.String(), err)
			}
			for _, c := range clusters {
				if back.Match(c) != s.Match(c) {
					t.Fatalf("String() %q matches %s differently", s.String(), c.ID)
				}
			}
		})
	}
}

func TestNilAndEmptySelectorMatchAll(t *testing.T) {
	var s *Selector
	if !s.Match(kafkaProd) || !s.Empty() || s.String() != "" || s.Requirements() != nil {
		t.Fatal("nil selector: want match-all, empty")
	}
	e := MustParse("")
	if !e.Match(kafkaProd) || !e.Empty() {
		t.Fatal("empty selector: want match-all, empty")
	}
	if MustParse("product=kafka").Empty() {
		t.Fatal("non-empty selector reports Empty")
	}
}

func TestString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"product = kafka", "product=kafka"},
		{"product==kafka", "product=kafka"},
		{"environment in (internal ,non-prod)", "env in (internal, non-prod)"},
		{"version < v3.7", "version<3.7.0"},
		{"version>=3.10.0-rc.1+b7", "version>=3.10.0-rc.1+b7"},
		{"brokers >= 003", "brokers>=3"},
		{"label.team", "label.team"},
		{"!  label.team", "!label.team"},
		{`label.owner="Jane Doe"`, `label.owner="Jane Doe"`},
		{`label.note="a,b"`, `label.note="a,b"`},
		{`label.x=""`, `label.x=""`},
		{`customer="acme"`, `customer=acme`},
		{"region notin (us-east-1,eu-west-1)", "region notin (us-east-1, eu-west-1)"},
		{"id=lkc-1,cloud!=azure", "id=lkc-1, cloud!=azure"},
	}
	for _, tt := range tests {
		if got := MustParse(tt.in).String(); got != tt.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRequirements(t *testing.T) {
	s := MustParse("env in (internal, non-prod), label.team=payments, !label.pci")
	got := s.Requirements()
	if len(got) != 3 {
		t.Fatalf("got %d requirements", len(got))
	}
	if got[0].Field != FieldEnv || got[0].Op != OpIn || fmt.Sprint(got[0].Values) != "[internal non-prod]" {
		t.Errorf("req 0 = %+v", got[0])
	}
	if got[1].Field != FieldLabel || got[1].Label != "team" || got[1].Op != OpEq || got[1].String() != "label.team=payments" {
		t.Errorf("req 1 = %+v", got[1])
	}
	if got[2].Op != OpNotExists || got[2].Label != "pci" {
		t.Errorf("req 2 = %+v", got[2])
	}
	got[0].Values[0] = "mutated"
	if s.String() != "env in (internal, non-prod), label.team=payments, !label.pci" {
		t.Error("Requirements() shares its Values with the selector")
	}
}

func TestSyntaxErrors(t *testing.T) {
	tests := []struct {
		sel string
		col int
		msg string
	}{
		{"prodct=kafka", 1, `unknown field "prodct" (did you mean "product"?)`},
		{"product=kafka, flavour=red", 16, `unknown field "flavour" (fields: id, product, cloud, region, env, environment, customer, tier, version, brokers, label.<key>)`},
		{"labels.team=x", 1, `unknown field "labels.team" (did you mean "label.team"?)`},
		{"label=x", 1, `unknown field "label" (write label.<key>, e.g. label.team=payments)`},
		{"label.=x", 7, `expected a label key after "label."`},
		{"product~kafka", 8, `unknown operator '~'`},
		{"product=>kafka", 8, `unknown operator "=>"`},
		{"product is kafka", 9, `unknown operator "is"`},
		{"env not in (prod)", 5, `unknown operator "not" (write notin)`},
		{"product", 8, `expected an operator after "product" (=, !=, in, notin, <, <=, >, >=)`},
		{"product=", 9, `expected a value, found end of selector`},
		{"product=,env=prod", 9, `expected a value, found ','`},
		{"version<3.x", 9, `bad version "3.x": minor "x" is not a number`},
		{"version in (3.7.0, banana)", 20, `bad version "banana": major "banana" is not a number`},
		{"brokers>three", 9, `bad number "three" for brokers`},
		{"region<us-east-1", 7, `operator < needs an ordered field (version or brokers), not region`},
		{"label.team>=a", 11, `operator >= needs an ordered field (version or brokers), not label.team`},
		{"env in (internal, non-prod", 8, `unterminated list: missing ')'`},
		{"env in (internal, ", 8, `unterminated list: missing ')'`},
		{"env in ()", 9, `empty list`},
		{"env in (internal,)", 18, `expected a value, found ')'`},
		{"env in (internal non-prod)", 18, `expected ',' or ')' in list, found "non-prod"`},
		{"env in internal", 8, `expected '(' after in, found "internal"`},
		{"env=production", 5, `unknown env "production" (want one of internal, non-prod, prod)`},
		{"product in (kafka, zookeeper)", 20, `unknown product "zookeeper" (want one of connect, kafka, ksqldb, schema-registry)`},
		{"cloud=oracle", 7, `unknown cloud "oracle" (want one of aws, azure, gcp)`},
		{"product=kafka env=prod", 15, `expected ',' between requirements, found "env"`},
		{"product=kafka,", 15, `expected a requirement after ','`},
		{"product=kafka, ,env=prod", 16, `expected a field name, found ','`},
		{",", 1, `expected a field name, found ','`},
		{"!product=kafka", 1, `'!' applies only to a label existence test like !label.product`},
		{"!label.team=x", 12, `expected ',' or end after !label.team, found '='`},
		{`label.x="abc`, 9, `unterminated string`},
		{`label.x="a\qb"`, 9, `bad quoted string: invalid syntax`},
		{"prodüct=kafka", 5, `unexpected character 'ü' in field name`},
		{"région=x", 2, `unexpected character 'é' in field name`},
		{"(product=kafka)", 1, `expected a field name, found '('`},
		{"product=kafka)", 14, `expected ',' between requirements, found ')'`},
		{"éé=x", 1, `unknown field "éé" (fields: id, product, cloud, region, env, environment, customer, tier, version, brokers, label.<key>)`},
	}
	for _, tt := range tests {
		t.Run(tt.sel, func(t *testing.T) {
			s, err := Parse(tt.sel)
			if err == nil {
				t.Fatalf("Parse(%q) = %q, want an error", tt.sel, s.String())
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error %T is not a *SyntaxError", tt.sel, err)
			}
			want := fmt.Sprintf("column %d: %s", tt.col, tt.msg)
			if err.Error() != want {
				t.Fatalf("Parse(%q) error\n got: %s\nwant: %s", tt.sel, err, want)
			}
		})
	}
}

func TestExcerpt(t *testing.T) {
	_, err := Parse("product=kafka,\tcolour=red")
	se := err.(*SyntaxError)
	want := "product=kafka, colour=red\n               ^"
	if got := se.Excerpt("product=kafka,\tcolour=red"); got != want {
		t.Fatalf("Excerpt:\n%s\nwant:\n%s", got, want)
	}
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("MustParse of a bad selector did not panic")
		}
	}()
	MustParse("nope")
}

func TestMatchDoesNotAllocate(t *testing.T) {
	s := MustParse("product=kafka, env in (prod, non-prod), version<3.7.0, brokers>=3, label.team=payments, !label.frozen")
	allocs := testing.AllocsPerRun(100, func() {
		if !s.MatchPtr(&kafkaProd) {
			t.Fatal("no match")
		}
	})
	if allocs != 0 {
		t.Fatalf("MatchPtr allocates %v times per call", allocs)
	}
}

// FuzzParse checks that Parse never panics, that errors carry a column
// inside the input, and that parse∘String round-trips: the canonical form
// parses, is a fixed point, and selects the same clusters.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"product=kafka, env in (internal, non-prod), cloud!=azure, version<3.7.0, label.team=payments",
		"!label.frozen, brokers>=3, tier notin (basic)",
		`label.owner="Jane \"JD\" Doe", id in (a, "b,c")`,
		"version>=v3.10.0-rc.1+b7, region=us-east-1",
		"env in (internal",
		"prodct=kafka",
		"customer=acme,label.x",
	} {
		f.Add(s)
	}
	probes := append([]fleet.Cluster{}, clusters...)
	probes = append(probes, fleet.Cluster{ID: "a", Customer: "Jane \"JD\" Doe", Labels: map[string]string{"owner": "Jane \"JD\" Doe", "x": ""}})
	f.Fuzz(func(t *testing.T, src string) {
		s, err := Parse(src)
		if err != nil {
			se, ok := err.(*SyntaxError)
			if !ok {
				t.Fatalf("error %T is not *SyntaxError", err)
			}
			if n := len([]rune(src)); se.Column < 1 || se.Column > n+1 {
				t.Fatalf("column %d outside 1..%d for %q", se.Column, n+1, src)
			}
			return
		}
		canon := s.String()
		back, err := Parse(canon)
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q does not parse: %v", src, canon, err)
		}
		if again := back.String(); again != canon {
			t.Fatalf("String not a fixed point: %q -> %q -> %q", src, canon, again)
		}
		for _, c := range probes {
			if s.Match(c) != back.Match(c) {
				t.Fatalf("%q and its canonical form %q disagree on %s", src, canon, c.ID)
			}
		}
	})
}
