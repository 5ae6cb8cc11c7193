package app_test

import (
	"fmt"
	"testing"

	"github.com/fleet-rollout/fleet/internal/sim"
)

func TestScratchFleet(t *testing.T) {
	for _, n := range []int{300, 1000, 1200} {
		cs := sim.GenerateFleet(n, 7)
		cnt := map[string]int{}
		trips := 0
		f := sim.Fault{Version: "3.7.1", Monitor: "kafka-under-replicated-partitions", Fraction: 0.05}
		for _, c := range cs {
			cnt[c.Product+"/"+c.Environment+"/"+c.Cloud]++
			cnt[c.Product]++
			if c.Product == "kafka" && c.Environment == "prod" {
				cnt["kafka-prod"]++
				if f.Trips(c, "3.7.1") {
					trips++
					fmt.Println("trip", c.ID, c.Cloud, c.Brokers)
				}
			}
		}
		fmt.Println(n, cnt, "trips", trips)
	}
}
