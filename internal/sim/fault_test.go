package sim

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/fleet"
)

func TestFaultTrips(t *testing.T) {
	c := kafkaCluster("lkc-00001", 3) // aws us-east-1
	ksql := c
	ksql.ID, ksql.Product = "ksql-00001", fleet.ProductKsqlDB

	tests := []struct {
		name    string
		f       Fault
		c       fleet.Cluster
		version string
		want    bool
	}{
		{"matching version", Fault{Version: "3.7.0", FailApply: true, Fraction: 1}, c, "3.7.0", true},
		{"other version", Fault{Version: "3.7.0", FailApply: true, Fraction: 1}, c, "3.6.2", false},
		{"any version", Fault{FailApply: true, Fraction: 1}, c, "9.9.9", true},
		{"product matches", Fault{Product: fleet.ProductKafka, FailApply: true, Fraction: 1}, c, "3.7.0", true},
		{"product differs", Fault{Product: fleet.ProductConnect, FailApply: true, Fraction: 1}, c, "3.7.0", false},
		{"monitor implies product", Fault{Monitor: "kafka-cpu-high", Fraction: 1}, ksql, "3.7.0", false},
		{"monitor of the product", Fault{Monitor: "ksqldb-cpu-high", Fraction: 1}, ksql, "3.7.0", true},
		{"cloud differs", Fault{Cloud: fleet.CloudGCP, FailApply: true, Fraction: 1}, c, "3.7.0", false},
		{"cloud and region match", Fault{Cloud: fleet.CloudAWS, Region: "us-east-1", FailApply: true, Fraction: 1}, c, "3.7.0", true},
		{"region differs", Fault{Region: "eu-west-1", FailApply: true, Fraction: 1}, c, "3.7.0", false},
		{"unknown monitor never trips", Fault{Monitor: "nope", Fraction: 1}, c, "3.7.0", false},
		{"outside the fraction", Fault{FailApply: true, Fraction: Bucket(c.ID)}, c, "3.7.0", false},
		{"inside the fraction", Fault{FailApply: true, Fraction: Bucket(c.ID) + 0.0001}, c, "3.7.0", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.f.Trips(tt.c, tt.version))
		})
	}
}

func TestFaultFractionIsDeterministicAndProportional(t *testing.T) {
	f := Fault{Monitor: "kafka-consumer-lag", Fraction: 0.2}
	hits := 0
	const n = 5000
	for i := 0; i < n; i++ {
		c := kafkaCluster(fmt.Sprintf("lkc-%05d", i), 3)
		got := f.Trips(c, "3.7.0")
		require.Equal(t, got, f.Trips(c, "3.7.0"))
		if got {
			hits++
		}
	}
	assert.InDelta(t, 0.2, float64(hits)/n, 0.03)
}

func TestFaultValidate(t *testing.T) {
	tests := []struct {
		name string
		f    Fault
		err  string
	}{
		{"monitor", Fault{Version: "3.7.0", Monitor: "kafka-cpu-high", Fraction: 0.1}, ""},
		{"fail apply", Fault{Product: fleet.ProductConnect, FailApply: true, Fraction: 1}, ""},
		{"both", Fault{Monitor: "connect-restarts", Product: fleet.ProductConnect, FailApply: true, Fraction: 0.5}, ""},
		{"region of cloud", Fault{Cloud: fleet.CloudGCP, Region: "asia-east1", FailApply: true, Fraction: 1}, ""},
		{"region any cloud", Fault{Region: "westeurope", FailApply: true, Fraction: 1}, ""},
		{"zero fraction", Fault{Monitor: "kafka-cpu-high"}, "fraction must be in (0, 1]"},
		{"fraction above one", Fault{Monitor: "kafka-cpu-high", Fraction: 1.5}, "fraction must be in (0, 1]"},
		{"no effect", Fault{Version: "3.7.0", Fraction: 1}, "no effect"},
		{"unknown monitor", Fault{Monitor: "kafka-nope", Fraction: 1}, `unknown monitor "kafka-nope"`},
		{"monitor of another product", Fault{Product: fleet.ProductKsqlDB, Monitor: "kafka-cpu-high", Fraction: 1}, "watches product kafka"},
		{"unknown product", Fault{Product: "redis", FailApply: true, Fraction: 1}, `unknown product "redis"`},
		{"unknown cloud", Fault{Cloud: "ibm", FailApply: true, Fraction: 1}, `unknown cloud "ibm"`},
		{"region of another cloud", Fault{Cloud: fleet.CloudAWS, Region: "eastus", FailApply: true, Fraction: 1}, `unknown region "eastus"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.f.Validate()
			if tt.err == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
		})
	}
	err := ValidateFaults([]Fault{{FailApply: true, Fraction: 1}, {Fraction: 1}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "fault 1:")
}
