package sim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/fleet"
)

func TestHTTP(t *testing.T) {
	clusters := GenerateFleet(200, 3)
	s := newSim(t, Config{Clusters: clusters})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	do := func(t *testing.T, method, path, body string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		if resp.StatusCode != http.StatusMethodNotAllowed {
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		}
		return resp.StatusCode, b
	}
	countWhere := func(pred func(fleet.Cluster) bool) int {
		n := 0
		for _, c := range clusters {
			if pred(c) {
				n++
			}
		}
		return n
	}

	t.Run("clusters", func(t *testing.T) {
		tests := []struct {
			query string
			want  int
		}{
			{"", len(clusters)},
			{"?product=kafka", countWhere(func(c fleet.Cluster) bool { return c.Product == fleet.ProductKafka })},
			{"?cloud=gcp&environment=prod", countWhere(func(c fleet.Cluster) bool {
				return c.Cloud == fleet.CloudGCP && c.Environment == fleet.EnvProd
			})},
			{"?product=schema-registry&cloud=azure&environment=internal", countWhere(func(c fleet.Cluster) bool {
				return c.Product == fleet.ProductSchemaRegistry && c.Cloud == fleet.CloudAzure && c.Environment == fleet.EnvInternal
			})},
		}
		for _, tt := range tests {
			t.Run(tt.query, func(t *testing.T) {
				code, body := do(t, http.MethodGet, "/v1/clusters"+tt.query, "")
				require.Equal(t, http.StatusOK, code, string(body))
				var got []fleet.Cluster
				require.NoError(t, json.Unmarshal(body, &got))
				assert.Len(t, got, tt.want)
				for i := 1; i < len(got); i++ {
					assert.Less(t, got[i-1].ID, got[i].ID)
				}
			})
		}
	})

	t.Run("one cluster", func(t *testing.T) {
		code, body := do(t, http.MethodGet, "/v1/clusters/"+clusters[7].ID, "")
		require.Equal(t, http.StatusOK, code)
		var got fleet.Cluster
		require.NoError(t, json.Unmarshal(body, &got))
		assert.Equal(t, clusters[7], got)
	})

	errorsCases := []struct {
		name, method, path, body string
		code                     int
		message                  string
	}{
		{"unknown product filter", http.MethodGet, "/v1/clusters?product=redis", "", 400, `unknown product "redis"`},
		{"unknown cluster", http.MethodGet, "/v1/clusters/lkc-99999", "", 404, `cluster "lkc-99999" not found`},
		{"faults not json", http.MethodPut, "/v1/faults", "{", 400, "JSON array of faults"},
		{"faults object", http.MethodPut, "/v1/faults", `{"monitor":"kafka-cpu-high"}`, 400, "JSON array of faults"},
		{"faults unknown field", http.MethodPut, "/v1/faults", `[{"monitr":"kafka-cpu-high","fraction":1}]`, 400, "unknown field"},
		{"faults trailing data", http.MethodPut, "/v1/faults", `[] []`, 400, "exactly one JSON array"},
		{"faults invalid", http.MethodPut, "/v1/faults", `[{"monitor":"kafka-nope","fraction":1}]`, 400, `fault 0: unknown monitor "kafka-nope"`},
		{"faults bad fraction", http.MethodPut, "/v1/faults", `[{"failApply":true,"fraction":2}]`, 400, "fraction must be in (0, 1]"},
	}
	for _, tt := range errorsCases {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, tt.method, tt.path, tt.body)
			assert.Equal(t, tt.code, code)
			var e struct{ Error string }
			require.NoError(t, json.Unmarshal(body, &e), string(body))
			assert.Contains(t, e.Error, tt.message)
		})
	}

	t.Run("faults round trip", func(t *testing.T) {
		code, body := do(t, http.MethodGet, "/v1/faults", "")
		require.Equal(t, http.StatusOK, code)
		assert.JSONEq(t, `[]`, string(body))

		in := `[{"version":"3.7.0","product":"kafka","cloud":"aws","region":"us-east-1","monitor":"kafka-cpu-high","fraction":0.25},
		        {"version":"3.7.0","failApply":true,"fraction":1}]`
		code, body = do(t, http.MethodPut, "/v1/faults", in)
		require.Equal(t, http.StatusOK, code, string(body))
		assert.JSONEq(t, in, string(body))
		assert.Len(t, s.Faults(), 2)

		code, body = do(t, http.MethodGet, "/v1/faults", "")
		require.Equal(t, http.StatusOK, code)
		assert.JSONEq(t, in, string(body))

		code, _ = do(t, http.MethodPut, "/v1/faults", `[]`)
		require.Equal(t, http.StatusOK, code)
		assert.Empty(t, s.Faults())
	})

	t.Run("healthz", func(t *testing.T) {
		code, body := do(t, http.MethodGet, "/healthz", "")
		assert.Equal(t, http.StatusOK, code)
		assert.JSONEq(t, `{"status":"ok"}`, string(body))
	})

	t.Run("method not allowed", func(t *testing.T) {
		code, _ := do(t, http.MethodDelete, "/v1/faults", "")
		assert.Equal(t, http.StatusMethodNotAllowed, code)
	})
}
