package selector_test

import (
	"fmt"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/selector"
)

func ExampleParse() {
	s, err := selector.Parse("product = kafka, environment in (internal,non-prod), version < v3.7, label.team")
	if err != nil {
		fmt.Println(err)
		return
	}
	c := fleet.Cluster{ID: "lkc-1", Product: "kafka", Environment: "non-prod", Version: "3.6.2",
		Labels: map[string]string{"team": "payments"}}
	fmt.Println(s.String())
	fmt.Println(s.Match(c))

	_, err = selector.Parse("product=kafka, verison<3.7.0")
	fmt.Println(err)
	// Output:
	// product=kafka, env in (internal, non-prod), version<3.7.0, label.team
	// true
	// column 16: unknown field "verison" (did you mean "version"?)
}
