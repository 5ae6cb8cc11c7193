package activities

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/internal/ddsim"
	"github.com/fleet-rollout/fleet/internal/monitors"
	"github.com/fleet-rollout/fleet/internal/sim"
	"github.com/fleet-rollout/fleet/workflows"
)

// batchesOf splits the targets into batches of size n, as the workflows run them.
func batchesOf(ts []workflows.HealthTarget, n int) [][]workflows.HealthTarget {
	var out [][]workflows.HealthTarget
	for len(ts) > 0 {
		k := min(n, len(ts))
		out = append(out, ts[:k])
		ts = ts[k:]
	}
	return out
}

// BenchmarkHealthInterval is one monitoring interval of a worker with n
// clusters in flight in batches of 25: every batch reads its clusters'
// health at once (one CheckHealth each); 1% of the clusters alert. It reports the Datadog requests
// the interval made, and the monitor groups and bytes they answered (what
// the worker decodes) (run with -benchtime=5x: intervals are 1.1 s apart).
func BenchmarkHealthInterval(b *testing.B) {
	for _, n := range []int{500, 2000} {
		b.Run(fmt.Sprintf("clusters=%d", n), func(b *testing.B) {
			clusters := sim.GenerateFleet(n, 3)
			s, err := sim.New(sim.Config{Clusters: clusters}, zap.NewNop())
			require.NoError(b, err)
			b.Cleanup(func() { _ = s.Close() })
			// 1% of the clusters alert on a monitor (what the frequent
			// read carries).
			src := &overrideSource{Simulator: s, status: map[[2]string]string{}, added: map[string]string{}}
			for i, c := range clusters {
				if i%100 == 0 {
					src.set(c.ID, forProduct(monitors.Default(), c.Product)[0].Name, ddsim.StatusAlert)
				}
			}
			srv := ddsim.New(monitors.Default(), src, ddsim.Options{APIKey: testAPIKey, AppKey: testAppKey, RateLimit: 1 << 30})
			hs := httptest.NewServer(srv.Handler())
			b.Cleanup(hs.Close)
			d, err := NewDatadog(DatadogConfig{APIKey: testAPIKey, AppKey: testAppKey, URL: hs.URL})
			require.NoError(b, err)
			a := &Activities{Datadog: d, Catalog: monitors.Default(), Log: zap.NewNop()}
			var targets []workflows.HealthTarget
			for _, c := range clusters {
				targets = append(targets, workflows.HealthTarget{ClusterID: c.ID, Product: c.Product})
			}
			batches := batchesOf(targets, 25)
			interval := func() {
				var wg sync.WaitGroup
				for _, bt := range batches {
					wg.Add(1)
					go func() {
						defer wg.Done()
						_, err := a.CheckHealth(context.Background(), workflows.HealthInput{Clusters: bt})
						if err != nil {
							b.Error(err)
						}
					}()
				}
				wg.Wait()
			}
			// A first interval, not counted, reads the rosters (every group,
			// once per DatadogConfig.HealthRosterMaxAge, a minute).
			interval()
			time.Sleep(1100 * time.Millisecond)
			before := srv.Requests()[ddsim.EndpointListMonitors]
			groupsBefore := srv.GroupsSent()[ddsim.EndpointListMonitors]
			bytesBefore := srv.BytesSent()[ddsim.EndpointListMonitors]
			b.ResetTimer()
			for i := range b.N {
				if i > 0 {
					// Intervals apart (a check is answered only by a read
					// begun after it asked, so none of the last is reused).
					b.StopTimer()
					time.Sleep(1100 * time.Millisecond)
					b.StartTimer()
				}
				interval()
			}
			b.StopTimer()
			reqs := srv.Requests()[ddsim.EndpointListMonitors] - before
			b.ReportMetric(float64(reqs)/float64(b.N), "requests/interval")
			groups := srv.GroupsSent()[ddsim.EndpointListMonitors] - groupsBefore
			b.ReportMetric(float64(groups)/float64(b.N), "groups/interval")
			bytes := srv.BytesSent()[ddsim.EndpointListMonitors] - bytesBefore
			b.ReportMetric(float64(bytes)/float64(b.N), "bytes/interval")
			b.ReportMetric(float64(len(batches)), "batches")
		})
	}
}
