// Package srcerr is the error a configuration file (a rollout spec, the
// policy file) reports: located in its file, naming the field at fault.
//
//	rollout.yaml:12: strategy.phases[1].batchSize: must be a count like 25 or a percentage like 10%
package srcerr

import (
	"strconv"
	"strings"
)

// Error is one problem in a file. Line and Column are 1-based and 0 when
// unknown (a value built in code). Field is the path to the value at fault,
// in the file's YAML names, with 0-based list indexes.
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

// List is every problem found in one file, in file order; errors.As finds
// the first *Error in it.
type List []*Error

// Error joins the errors one per line.
func (v List) Error() string {
	lines := make([]string, len(v))
	for i, e := range v {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes each *Error to errors.Is and errors.As.
func (v List) Unwrap() []error {
	out := make([]error, len(v))
	for i, e := range v {
		out[i] = e
	}
	return out
}
