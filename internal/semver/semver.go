// Package semver parses and orders the version strings clusters run and
// rollouts target: "3.7.0", "v3.7", "7.6.0-rc1", "3.7.1+build.5".
//
// The rules are those of Semantic Versioning 2.0.0 with three relaxations
// that match how versions are written in the fleet:
//
//   - a leading "v" or "V" is accepted ("v3.7.0" equals "3.7.0");
//   - the minor and patch numbers may be left out and count as 0
//     ("3.7" equals "3.7.0", "3" equals "3.0.0");
//   - alphanumeric pre-release identifiers compare their digit runs as
//     numbers ("rc9" < "rc10"), where strict SemVer compares them as ASCII.
//
// A pre-release sorts before its release (7.6.0-rc1 < 7.6.0); build
// metadata ("+...") is kept but ignored in comparisons. Parsing does not
// allocate, so matching a selector over a large fleet stays cheap.
package semver

import (
	"fmt"
	"strconv"
)

// Version is one parsed version.
type Version struct {
	Major, Minor, Patch uint64
	// Pre is the pre-release part without its leading "-" ("rc1", "beta.2");
	// empty for a release.
	Pre string
	// Build is the build metadata without its leading "+"; ignored by Compare.
	Build string
}

// Error reports a string that is not a version.
type Error struct {
	Input string
	Msg   string
}

func (e *Error) Error() string { return fmt.Sprintf("invalid version %q: %s", e.Input, e.Msg) }

// Parse parses s. It accepts an optional leading "v", one to three
// dot-separated numbers, an optional "-pre.release" and an optional
// "+build.metadata".
func Parse(s string) (Version, error) {
	var v Version
	in := s
	if s == "" {
		return v, &Error{in, "empty"}
	}
	if s[0] == 'v' || s[0] == 'V' {
		s = s[1:]
	}
	// Split off build metadata, then the pre-release.
	core := s
	for i := 0; i < len(s); i++ {
		if s[i] == '+' {
			core, v.Build = s[:i], s[i+1:]
			if err := checkIdents(v.Build); err != "" {
				return Version{}, &Error{in, "build metadata " + err}
			}
			break
		}
	}
	for i := 0; i < len(core); i++ {
		if core[i] == '-' {
			core, v.Pre = core[:i], core[i+1:]
			if err := checkIdents(v.Pre); err != "" {
				return Version{}, &Error{in, "pre-release " + err}
			}
			break
		}
	}
	nums := [3]*uint64{&v.Major, &v.Minor, &v.Patch}
	names := [3]string{"major", "minor", "patch"}
	n := 0
	start := 0
	for i := 0; i <= len(core); i++ {
		if i < len(core) && core[i] != '.' {
			continue
		}
		if n == 3 {
			return Version{}, &Error{in, "more than three numbers"}
		}
		part := core[start:i]
		if part == "" {
			return Version{}, &Error{in, "missing " + names[n] + " number"}
		}
		for j := 0; j < len(part); j++ {
			if part[j] < '0' || part[j] > '9' {
				return Version{}, &Error{in, names[n] + " " + strconv.Quote(part) + " is not a number"}
			}
		}
		x, err := strconv.ParseUint(part, 10, 64)
		if err != nil {
			return Version{}, &Error{in, names[n] + " number is too large"}
		}
		*nums[n] = x
		n++
		start = i + 1
	}
	return v, nil
}

// checkIdents checks dot-separated identifiers of [0-9A-Za-z-]. It returns
// a description of the problem, or "".
func checkIdents(s string) string {
	if s == "" {
		return "is empty"
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			c := s[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
				return fmt.Sprintf("has invalid character %q", c)
			}
			continue
		}
		if i == start {
			return "has an empty identifier"
		}
		start = i + 1
	}
	return ""
}

// MustParse is Parse that panics on error, for constants in code and tests.
func MustParse(s string) Version {
	v, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return v
}

// Valid reports whether s parses.
func Valid(s string) bool {
	_, err := Parse(s)
	return err == nil
}

// Compare parses a and b and returns -1, 0 or +1 as a is older than, equal
// to (ignoring build metadata) or newer than b.
func Compare(a, b string) (int, error) {
	va, err := Parse(a)
	if err != nil {
		return 0, err
	}
	vb, err := Parse(b)
	if err != nil {
		return 0, err
	}
	return va.Compare(vb), nil
}

// Compare returns -1, 0 or +1 as v is older than, equal to or newer than w.
// Build metadata is ignored.
func (v Version) Compare(w Version) int {
	if c := cmpUint(v.Major, w.Major); c != 0 {
		return c
	}
	if c := cmpUint(v.Minor, w.Minor); c != 0 {
		return c
	}
	if c := cmpUint(v.Patch, w.Patch); c != 0 {
		return c
	}
	return comparePre(v.Pre, w.Pre)
}

// Equal reports whether v and w have the same precedence.
func (v Version) Equal(w Version) bool { return v.Compare(w) == 0 }

// String formats v canonically: "3.7.0", "7.6.0-rc1", "3.7.1+build.5".
func (v Version) String() string {
	b := make([]byte, 0, 16+len(v.Pre)+len(v.Build))
	b = strconv.AppendUint(b, v.Major, 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, v.Minor, 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, v.Patch, 10)
	if v.Pre != "" {
		b = append(b, '-')
		b = append(b, v.Pre...)
	}
	if v.Build != "" {
		b = append(b, '+')
		b = append(b, v.Build...)
	}
	return string(b)
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// comparePre orders pre-release strings: none sorts after any; otherwise
// identifier by identifier, numeric < alphanumeric, and a shorter list of
// equal identifiers first.
func comparePre(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == "":
		return 1
	case b == "":
		return -1
	}
	for {
		var x, y string
		x, a = cut(a)
		y, b = cut(b)
		if c := compareIdent(x, y); c != 0 {
			return c
		}
		switch {
		case a == "" && b == "":
			return 0
		case a == "":
			return -1
		case b == "":
			return 1
		}
	}
}

func cut(s string) (head, rest string) {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

func isNum(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func compareIdent(x, y string) int {
	nx, ny := isNum(x), isNum(y)
	switch {
	case nx && ny:
		return compareDigits(x, y)
	case nx:
		return -1
	case ny:
		return 1
	}
	return compareNatural(x, y)
}

// compareDigits compares two digit strings as numbers of any size.
func compareDigits(x, y string) int {
	x, y = trimZeros(x), trimZeros(y)
	if len(x) != len(y) {
		if len(x) < len(y) {
			return -1
		}
		return 1
	}
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

func trimZeros(s string) string {
	for len(s) > 1 && s[0] == '0' {
		s = s[1:]
	}
	return s
}

// compareNatural compares strings chunk by chunk, digit runs as numbers
// ("rc9" < "rc10"), and falls back to plain order when they tie.
func compareNatural(x, y string) int {
	i, j := 0, 0
	for i < len(x) && j < len(y) {
		dx, dy := isDigit(x[i]), isDigit(y[j])
		if dx && dy {
			si, sj := i, j
			for i < len(x) && isDigit(x[i]) {
				i++
			}
			for j < len(y) && isDigit(y[j]) {
				j++
			}
			if c := compareDigits(x[si:i], y[sj:j]); c != 0 {
				return c
			}
			continue
		}
		if x[i] != y[j] {
			if x[i] < y[j] {
				return -1
			}
			return 1
		}
		i++
		j++
	}
	switch {
	case len(x)-i < len(y)-j:
		return -1
	case len(x)-i > len(y)-j:
		return 1
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
