package monitors

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/fleet"
)

var (
	slugRE      = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	thresholdRE = regexp.MustCompile(`(>=|<=|>|<)\s*-?[0-9.]+$`)
)

func TestDefaultCatalogIsWellFormed(t *testing.T) {
	all := Default()
	require.NotEmpty(t, all)

	ids := map[int64]string{}
	names := map[string]bool{}
	for i, m := range all {
		t.Run(m.Name, func(t *testing.T) {
			assert.NotZero(t, m.ID)
			assert.NotContains(t, ids, m.ID, "duplicate id")
			ids[m.ID] = m.Name
			assert.False(t, names[m.Name], "duplicate name")
			names[m.Name] = true
			if i > 0 {
				assert.Less(t, all[i-1].ID, m.ID, "sorted by id")
			}

			assert.Regexp(t, slugRE, m.Name)
			assert.True(t, strings.HasPrefix(m.Name, m.Product+"-"), "name starts with its product")
			assert.Contains(t, fleet.Products, m.Product)
			assert.Equal(t, TypeQueryAlert, m.Type)
			assert.Equal(t, []string{ProductTag(m.Product), TagRolloutCritical}, m.Tags)
			assert.True(t, m.HasTag(TagRolloutCritical))

			assert.Contains(t, m.Query, "{product:"+m.Product, "query scoped to its product")
			assert.Contains(t, m.Query, "by {cluster}", "query grouped by cluster")
			assert.Regexp(t, thresholdRE, m.Query, "query ends with a threshold")
			assert.Contains(t, m.Message, "{{#is_alert}}")
			assert.Contains(t, m.Message, "@slack-")
		})
	}
}

func TestForProduct(t *testing.T) {
	tests := []struct {
		product  string
		min, max int
		must     []string
	}{
		{fleet.ProductKafka, 10, 14, []string{
			"kafka-cpu-high", "kafka-throughput-zero", "kafka-produce-latency-p99",
			"kafka-request-error-rate", "kafka-under-replicated-partitions",
			"kafka-offline-partitions", "kafka-storage-usage", "kafka-consumer-lag",
			"kafka-jvm-gc-pause", "kafka-broker-restarts",
		}},
		{fleet.ProductKsqlDB, 8, 12, []string{"ksqldb-cpu-high", "ksqldb-throughput-zero", "ksqldb-restarts"}},
		{fleet.ProductConnect, 8, 12, []string{"connect-cpu-high", "connect-throughput-zero", "connect-failed-tasks"}},
		{fleet.ProductSchemaRegistry, 8, 12, []string{"schema-registry-cpu-high", "schema-registry-request-latency-p99"}},
		{"nope", 0, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.product, func(t *testing.T) {
			got := ForProduct(tt.product)
			assert.GreaterOrEqual(t, len(got), tt.min)
			assert.LessOrEqual(t, len(got), tt.max)
			have := map[string]bool{}
			for _, m := range got {
				assert.Equal(t, tt.product, m.Product)
				have[m.Name] = true
			}
			for _, n := range tt.must {
				assert.True(t, have[n], "missing %s", n)
			}
		})
	}
}

func TestByName(t *testing.T) {
	tests := []struct {
		name    string
		ok      bool
		id      int64
		product string
	}{
		{"kafka-under-replicated-partitions", true, 1006, fleet.ProductKafka},
		{"kafka-cpu-high", true, 1001, fleet.ProductKafka},
		{"ksqldb-throughput-zero", true, 2002, fleet.ProductKsqlDB},
		{"connect-consumer-lag", true, 3007, fleet.ProductConnect},
		{"schema-registry-no-primary", true, 4005, fleet.ProductSchemaRegistry},
		{"", false, 0, ""},
		{"kafka-unknown", false, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, ok := ByName(tt.name)
			require.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.id, m.ID)
			assert.Equal(t, tt.product, m.Product)
		})
	}
}

func TestCopiesAreIndependent(t *testing.T) {
	a := Default()
	a[0].Tags[0] = "mutated"
	a[0].Name = "mutated"
	b := Default()
	assert.NotEqual(t, "mutated", b[0].Tags[0])
	assert.NotEqual(t, "mutated", b[0].Name)

	m, _ := ByName("kafka-cpu-high")
	m.Tags[0] = "mutated"
	m2, _ := ByName("kafka-cpu-high")
	assert.Equal(t, ProductTag(fleet.ProductKafka), m2.Tags[0])
}

func TestJSONShape(t *testing.T) {
	m, ok := ByName("kafka-offline-partitions")
	require.True(t, ok)
	b, err := json.Marshal(m)
	require.NoError(t, err)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(b, &raw))
	for _, k := range []string{"id", "name", "product", "type", "query", "message", "tags", "noDataOk"} {
		assert.Contains(t, raw, k)
	}
	var back Monitor
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, m, back)
}

func TestGroupName(t *testing.T) {
	assert.Equal(t, "cluster:lkc-00042", GroupName("lkc-00042"))
	assert.Equal(t, "product:kafka", ProductTag("kafka"))
}
