package sim

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/inventory"
)

// The simulator's lookup answers only the clusters asked for, and the HTTP
// inventory uses it instead of listing the fleet.
func TestLookupThroughTheHTTPInventory(t *testing.T) {
	clusters := GenerateFleet(500, 3)
	s := newSim(t, Config{Clusters: clusters})
	var lists, lookups atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/v1/clusters":
			lists.Add(1)
		case r.Method == http.MethodPost && r.URL.Path == "/v1/clusters/lookup":
			lookups.Add(1)
		}
		s.Handler().ServeHTTP(w, r)
	}))
	defer srv.Close()
	src := inventory.HTTP(srv.URL+"/v1/clusters", srv.Client())
	ids := []string{clusters[7].ID, "no-such-cluster", clusters[300].ID, clusters[42].ID}
	got, err := inventory.Find(context.Background(), src, ids)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{clusters[7].ID, clusters[300].ID, clusters[42].ID}, idsOf(got))
	for _, c := range got {
		want, _ := s.Cluster(c.ID)
		require.Equal(t, want, c)
	}
	require.Equal(t, int32(1), lookups.Load())
	require.Equal(t, int32(0), lists.Load(), "no listing of the fleet")

	// A bad body is a 400 naming the shape.
	resp, err := srv.Client().Post(srv.URL+"/v1/clusters/lookup", "application/json", strings.NewReader(`[1]`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

// An inventory without a lookup (404) is listed instead, and not asked for
// a lookup again.
func TestLookupFallsBackToListing(t *testing.T) {
	clusters := GenerateFleet(50, 3)
	s := newSim(t, Config{Clusters: clusters})
	var posts, lists atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
			http.NotFound(w, r)
			return
		}
		lists.Add(1)
		s.Handler().ServeHTTP(w, r)
	}))
	defer srv.Close()
	src := inventory.HTTP(srv.URL+"/v1/clusters", srv.Client())
	for range 3 {
		got, err := inventory.Find(context.Background(), src, []string{clusters[1].ID, clusters[2].ID})
		require.NoError(t, err)
		require.ElementsMatch(t, []string{clusters[1].ID, clusters[2].ID}, idsOf(got))
	}
	require.Equal(t, int32(1), posts.Load(), "the missing lookup is remembered")
	require.Equal(t, int32(3), lists.Load())
}

func idsOf(cs []fleet.Cluster) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}
