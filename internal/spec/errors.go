package spec

import "github.com/fleet-rollout/fleet/internal/srcerr"

// Error is one problem in a spec, located in its file:
//
//	rollout.yaml:12: strategy.phases[1].batchSize: must be a count like 25 or a percentage like 10%
//
// Line and Column are 0 for a spec built in code and checked with Validate.
type Error = srcerr.Error

// ValidationErrors is every problem found in one spec, in file order.
// Parse, Load and Validate return it (never empty) on failure; errors.As
// also finds the first *Error in it.
type ValidationErrors = srcerr.List
