package workflows

import (
	"encoding/json"
	"fmt"
)

// StartArgs is what a start request's proof covers besides target, action
// ("start") and actor: the RolloutInput's JSON without Carry and Auth. The
// Plan activity verifies it (outside workflow code); clients sign it.
func StartArgs(in RolloutInput) []byte {
	in.Auth, in.Carry = nil, nil
	b, err := json.Marshal(in)
	if err != nil {
		panic(fmt.Sprintf("StartArgs: %v", err)) // a plain struct always marshals
	}
	return b
}
