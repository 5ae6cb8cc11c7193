package bench

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/sim"
)

func TestTurnoverPairsEachStartWithTheFirstFreedSlot(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	start := func(id, wf string, issued, ms int) sim.ApplyEvent {
		return sim.ApplyEvent{ClusterID: id, ReplyTo: wf, Start: true, IssuedAt: at(issued), At: at(ms)}
	}
	end := func(id, wf string, ms int) sim.ApplyEvent {
		return sim.ApplyEvent{ClusterID: id, ReplyTo: wf, At: at(ms)}
	}
	// Two slots: a and b fill them; a ends at 1000, c (same batch) starts
	// at 1100; b ends at 1500, d (another batch) starts at 1900, issued at
	// 1800. e starts with no slot freed since: not paired.
	evs := []sim.ApplyEvent{
		end("b", "batch-1", 1500),
		start("a", "batch-1", 0, 10),
		start("b", "batch-1", 0, 20),
		end("a", "batch-1", 1000),
		start("c", "batch-1", 1050, 1100),
		start("d", "batch-2", 1800, 1900),
		start("e", "batch-2", 1950, 2000),
	}
	got := turnover(evs, 2)
	require.Equal(t, 2, got.Pairs)
	require.Equal(t, 1, got.SameBatch)
	require.Equal(t, 100.0, got.SameP50MS)
	require.Equal(t, 400.0, got.CrossP50MS)
	require.Equal(t, 250.0, got.MeanMS)
	require.Equal(t, 100.0, got.P50MS)
	require.Equal(t, 400.0, got.P90MS)
	// Issued 50 ms and 300 ms after the slot freed; 50 and 100 ms in transit.
	require.Equal(t, 50.0, got.IssueP50MS)
	require.Equal(t, 50.0, got.TransitP50MS)

	require.Equal(t, 10.0, got.FillMS, "the second start came 10 ms after the first")
	require.Equal(t, Turnover{FillMS: 10}, turnover(evs[:3], 2), "the first Concurrency starts fill the window: nothing to pair")
}
