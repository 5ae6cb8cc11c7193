package fresh

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newGroup() (*Group[string, int], *clock) {
	c := &clock{t: time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)}
	return &Group[string, int]{Now: c.now}, c
}

// counter is a read that counts its calls and answers the count.
func counter(n *atomic.Int64) func() (int, error) {
	return func() (int, error) { return int(n.Add(1)), nil }
}

func TestReuseOnlyWithinNotBefore(t *testing.T) {
	g, clk := newGroup()
	ctx := context.Background()
	var n atomic.Int64
	read := counter(&n)

	v, began, how, err := g.Do(ctx, "kafka", clk.now().Add(-time.Second), read)
	require.NoError(t, err)
	assert.Equal(t, 1, v)
	assert.Equal(t, Started, how)
	assert.Equal(t, clk.now(), began)

	clk.add(time.Second) // exactly at the bound: still fresh enough
	v, _, how, err = g.Do(ctx, "kafka", clk.now().Add(-time.Second), read)
	require.NoError(t, err)
	assert.Equal(t, 1, v)
	assert.Equal(t, Reused, how)

	clk.add(time.Nanosecond) // one tick past it: read anew
	v, _, how, err = g.Do(ctx, "kafka", clk.now().Add(-time.Second), read)
	require.NoError(t, err)
	assert.Equal(t, 2, v)
	assert.Equal(t, Started, how)

	v, _, how, err = g.Do(ctx, "ksqldb", clk.now().Add(-time.Second), read)
	require.NoError(t, err)
	assert.Equal(t, 3, v, "keys are read apart")
	assert.Equal(t, Started, how)

	// notBefore == now: never reuse a finished read.
	v, _, how, err = g.Do(ctx, "kafka", clk.now().Add(time.Nanosecond), read)
	require.NoError(t, err)
	assert.Equal(t, 4, v)
	assert.Equal(t, Started, how)
	assert.EqualValues(t, 4, n.Load())
}

// Concurrent callers join the read in flight; one asking for a read newer
// than the one in flight gets the next read, which (no spacing here) starts
// at once, the first still in flight.
func TestJoinInFlight(t *testing.T) {
	g, clk := newGroup()
	ctx := context.Background()
	release := make(chan struct{})
	var n atomic.Int64
	slow := func() (int, error) {
		v := int(n.Add(1))
		<-release
		return v, nil
	}

	const callers = 50
	var wg sync.WaitGroup
	got := make([]int, callers)
	hows := make([]Result, callers)
	start := clk.now()
	// The first caller starts the read; wait until it is in flight.
	first := make(chan int)
	go func() {
		v, _, how, err := g.Do(ctx, "kafka", start.Add(-time.Second), slow)
		assert.NoError(t, err)
		assert.Equal(t, Started, how)
		first <- v
	}()
	require.Eventually(t, func() bool { return n.Load() == 1 }, 5*time.Second, time.Millisecond)
	clk.add(500 * time.Millisecond)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, _, how, err := g.Do(ctx, "kafka", clk.now().Add(-time.Second), slow)
			assert.NoError(t, err)
			got[i], hows[i] = v, how
		}()
	}
	// One caller wants a read newer than the one in flight.
	newer := make(chan int)
	go func() {
		v, _, how, err := g.Do(ctx, "kafka", clk.now().Add(-100*time.Millisecond), slow)
		assert.NoError(t, err)
		assert.Equal(t, Started, how)
		newer <- v
	}()
	require.Eventually(t, func() bool { return n.Load() == 2 }, 5*time.Second, time.Millisecond)
	close(release)
	wg.Wait()
	assert.Equal(t, 1, <-first)
	assert.Equal(t, 2, <-newer)
	for i := range callers {
		// The first read, or the newer one when it was in flight first
		// (or done, for a caller scheduled late).
		assert.Contains(t, []int{1, 2}, got[i])
		assert.NotEqual(t, Started, hows[i])
	}
	assert.EqualValues(t, 2, n.Load(), "52 callers, 2 reads")

	// The newer read is the one kept.
	v, began, how, err := g.Do(ctx, "kafka", clk.now().Add(-time.Second), slow)
	require.NoError(t, err)
	assert.Equal(t, 2, v)
	assert.Equal(t, Reused, how)
	assert.Equal(t, clk.now(), began)
}

// Callers that ask while a read is in flight, each wanting one newer than
// it, share the next read; reads of a key start at least the spacing apart.
func TestNextReadIsSharedAndSpaced(t *testing.T) {
	const spacing = 100 * time.Millisecond
	g := &Group[string, int]{Spacing: spacing}
	ctx := context.Background()
	release := make(chan struct{})
	var n atomic.Int64
	var mu sync.Mutex
	var starts []time.Time
	read := func() (int, error) {
		mu.Lock()
		starts = append(starts, time.Now())
		mu.Unlock()
		v := int(n.Add(1))
		if v == 1 {
			<-release
		}
		return v, nil
	}
	first := make(chan int)
	go func() {
		v, _, _, err := g.Do(ctx, "kafka", time.Now(), read)
		assert.NoError(t, err)
		first <- v
	}()
	require.Eventually(t, func() bool { return n.Load() == 1 }, 5*time.Second, time.Millisecond)

	const callers = 20
	var wg sync.WaitGroup
	got := make([]int, callers)
	started := 0
	var smu sync.Mutex
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, began, how, err := g.Do(ctx, "kafka", time.Now(), read)
			assert.NoError(t, err)
			assert.False(t, began.IsZero())
			got[i] = v
			if how == Started {
				smu.Lock()
				started++
				smu.Unlock()
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	assert.Equal(t, 1, <-first)
	for i := range callers {
		assert.Equal(t, 2, got[i], "every caller asked after the first read began: the next read answers")
	}
	assert.Equal(t, 1, started, "one caller started it, the others joined")
	assert.EqualValues(t, 2, n.Load())
	mu.Lock()
	defer mu.Unlock()
	assert.GreaterOrEqual(t, starts[1].Sub(starts[0]), spacing, "the reads start at least the spacing apart")
}

// A failed read goes to its callers and is not kept.
func TestFailuresAreNotKept(t *testing.T) {
	g, clk := newGroup()
	ctx := context.Background()
	boom := errors.New("HTTP 500")
	_, _, _, err := g.Do(ctx, "kafka", clk.now().Add(-time.Second), func() (int, error) { return 0, boom })
	require.ErrorIs(t, err, boom)
	v, _, how, err := g.Do(ctx, "kafka", clk.now().Add(-time.Second), func() (int, error) { return 7, nil })
	require.NoError(t, err)
	assert.Equal(t, 7, v)
	assert.Equal(t, Started, how)
}

// A caller that gives up returns at once; the read goes on for the others
// and is kept.
func TestCallerGivingUpDoesNotEndTheRead(t *testing.T) {
	g, clk := newGroup()
	release := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, _, _, err := g.Do(ctx, "kafka", clk.now(), func() (int, error) { <-release; return 9, nil })
		done <- err
	}()
	require.Eventually(t, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.entries["kafka"] != nil && g.entries["kafka"].inflight != nil
	}, 5*time.Second, time.Millisecond)
	joined := make(chan int)
	go func() {
		v, _, how, err := g.Do(context.Background(), "kafka", clk.now(), func() (int, error) { return -1, nil })
		assert.NoError(t, err)
		assert.NotEqual(t, Started, how, "the read in flight (or its result) answers")
		joined <- v
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	close(release)
	assert.Equal(t, 9, <-joined)
	v, _, how, err := g.Do(context.Background(), "kafka", clk.now(), func() (int, error) { return -1, nil })
	require.NoError(t, err)
	assert.Equal(t, 9, v)
	assert.Equal(t, Reused, how)
}
