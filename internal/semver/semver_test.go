package semver

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    string // canonical String(); "" when an error is expected
		wantErr string
	}{
		{in: "3.7.0", want: "3.7.0"},
		{in: "v3.7", want: "3.7.0"},
		{in: "V3", want: "3.0.0"},
		{in: "7.6.0-rc1", want: "7.6.0-rc1"},
		{in: "3.7.1+build.5", want: "3.7.1+build.5"},
		{in: "1.2.3-beta.2+exp.sha.5114f85", want: "1.2.3-beta.2+exp.sha.5114f85"},
		{in: "3.07.0", want: "3.7.0"},
		{in: "", wantErr: "empty"},
		{in: "v", wantErr: "missing major number"},
		{in: "3.", wantErr: "missing minor number"},
		{in: "3..1", wantErr: "missing minor number"},
		{in: "3.x", wantErr: `minor "x" is not a number`},
		{in: "3.7.0.1", wantErr: "more than three numbers"},
		{in: "3.7.0-", wantErr: "pre-release is empty"},
		{in: "3.7.0-rc..1", wantErr: "pre-release has an empty identifier"},
		{in: "3.7.0-rc_1", wantErr: "pre-release has invalid character '_'"},
		{in: "3.7.0+", wantErr: "build metadata is empty"},
		{in: "99999999999999999999.0.0", wantErr: "major number is too large"},
		{in: "latest", wantErr: `major "latest" is not a number`},
		{in: "-1.0.0", wantErr: "missing major number"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			v, err := Parse(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
				}
				if Valid(tt.in) {
					t.Fatalf("Valid(%q) = true", tt.in)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got := v.String(); got != tt.want {
				t.Fatalf("Parse(%q).String() = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"3.7.0", "3.7.0", 0},
		{"v3.7", "3.7.0", 0},
		{"3.10.0", "3.9.2", 1},
		{"3.9.2", "3.10.0", -1},
		{"4", "3.99.99", 1},
		{"7.6.0-rc1", "7.6.0", -1},
		{"7.6.0", "7.6.0-rc1", 1},
		{"7.6.0-rc1", "7.6.0-rc2", -1},
		{"7.6.0-rc9", "7.6.0-rc10", -1},
		{"1.0.0-alpha", "1.0.0-alpha.1", -1},
		{"1.0.0-alpha.1", "1.0.0-alpha.beta", -1},
		{"1.0.0-alpha.beta", "1.0.0-beta", -1},
		{"1.0.0-beta.2", "1.0.0-beta.11", -1},
		{"1.0.0-beta.11", "1.0.0-rc.1", -1},
		{"1.0.0-2", "1.0.0-10", -1},
		{"1.0.0-10", "1.0.0-a", -1},
		{"1.0.0-00012345678901234567890", "1.0.0-12345678901234567891", -1},
		{"3.7.0+a", "3.7.0+b", 0},
	}
	for _, tt := range tests {
		got, err := Compare(tt.a, tt.b)
		if err != nil {
			t.Fatalf("Compare(%q, %q): %v", tt.a, tt.b, err)
		}
		if got != tt.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if back, _ := Compare(tt.b, tt.a); back != -tt.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tt.b, tt.a, back, -tt.want)
		}
	}
	if _, err := Compare("3.7.0", "nope"); err == nil {
		t.Error("Compare with an invalid version: no error")
	}
	if _, err := Compare("nope", "3.7.0"); err == nil {
		t.Error("Compare with an invalid version: no error")
	}
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("MustParse(\"x\") did not panic")
		}
	}()
	MustParse("x")
}

func TestParseDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		v, _ := Parse("7.6.0-rc1+b.2")
		_ = v.Compare(Version{Major: 7, Minor: 6})
	})
	if allocs != 0 {
		t.Fatalf("Parse+Compare allocates %v times, want 0", allocs)
	}
}

// FuzzCompare checks that Compare is a total order on what Parse accepts and
// that String round-trips.
func FuzzCompare(f *testing.F) {
	for _, s := range []string{"3.7.0", "v3.7", "7.6.0-rc1", "1.0.0-alpha.1", "1.0.0-rc10+b", "1.0.0-a1b-2"} {
		f.Add(s, "3.7.0", "1.0.0-rc9")
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		va, ea := Parse(a)
		vb, eb := Parse(b)
		vc, ec := Parse(c)
		if ea != nil || eb != nil {
			return
		}
		back, err := Parse(va.String())
		if err != nil || back.Compare(va) != 0 || back.String() != va.String() {
			t.Fatalf("String round trip of %q: %q, %v", a, va.String(), err)
		}
		if va.Compare(vb) != -vb.Compare(va) {
			t.Fatalf("not antisymmetric: %q vs %q", a, b)
		}
		if va.Compare(va) != 0 {
			t.Fatalf("not reflexive: %q", a)
		}
		if ec == nil && va.Compare(vb) <= 0 && vb.Compare(vc) <= 0 && va.Compare(vc) > 0 {
			t.Fatalf("not transitive: %q <= %q <= %q but %q > %q", a, b, c, a, c)
		}
	})
}
