package spec

import (
	"strconv"
	"strings"
)

// Error is one problem in a spec, located in its file:
//
//	rollout.yaml:12: strategy.phases[1].batchSize: must be a count like 25 or a percentage like 10%
//
// Line and Column are 1-based and 0 when unknown (a spec built in code and
// checked with Validate). Field is the path to the value at fault, in the
// spec's YAML names, with 0-based list indexes.
type Error struct {
	File   string
	Line   int
	Column int
	Field  string
	Msg    string
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		b.WriteString(e.File + ":" + strconv.Itoa(e.Line) + ": ")
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ValidationErrors is every problem found in one spec, in file order.
// Parse, Load and Validate return it (never empty) on failure; errors.As
// also finds the first *Error in it.
type ValidationErrors []*Error

// Error joins the errors one per line.
func (v ValidationErrors) Error() string {
	lines := make([]string, len(v))
	for i, e := range v {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes each *Error to errors.Is and errors.As.
func (v ValidationErrors) Unwrap() []error {
	out := make([]error, len(v))
	for i, e := range v {
		out[i] = e
	}
	return out
}
