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
func counter(n *atomic.Int64) func(context.Context) (int, error) {
	return func(context.Context) (int, error) { return int(n.Add(1)), nil }
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
	slow := func(context.Context) (int, error) {
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
	read := func(context.Context) (int, error) {
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
	_, _, _, err := g.Do(ctx, "kafka", clk.now().Add(-time.Second), func(context.Context) (int, error) { return 0, boom })
	require.ErrorIs(t, err, boom)
	v, _, how, err := g.Do(ctx, "kafka", clk.now().Add(-time.Second), func(context.Context) (int, error) { return 7, nil })
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
		_, _, _, err := g.Do(ctx, "kafka", clk.now(), func(context.Context) (int, error) { <-release; return 9, nil })
		done <- err
	}()
	require.Eventually(t, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.entries["kafka"] != nil && g.entries["kafka"].inflight != nil
	}, 5*time.Second, time.Millisecond)
	joined := make(chan int)
	go func() {
		v, _, how, err := g.Do(context.Background(), "kafka", clk.now(), func(context.Context) (int, error) { return -1, nil })
		assert.NoError(t, err)
		assert.NotEqual(t, Started, how, "the read in flight (or its result) answers")
		joined <- v
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	close(release)
	assert.Equal(t, 9, <-joined)
	v, _, how, err := g.Do(context.Background(), "kafka", clk.now(), func(context.Context) (int, error) { return -1, nil })
	require.NoError(t, err)
	assert.Equal(t, 9, v)
	assert.Equal(t, Reused, how)
}

// A read runs under a context of its own: the deadline of the caller that
// happened to start it does not end it for a caller that joined it with
// more time, and the read has its own deadline, the group's Timeout.
func TestReadOutlivesItsStartersDeadline(t *testing.T) {
	g := &Group[string, int]{Timeout: 5 * time.Second}
	release := make(chan struct{})
	var readCtx atomic.Pointer[context.Context]
	read := func(ctx context.Context) (int, error) {
		readCtx.Store(&ctx)
		select {
		case <-release:
			return 7, nil
		case <-ctx.Done():
			return 0, context.Cause(ctx)
		}
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	asked := time.Now()
	starter := make(chan error)
	go func() {
		_, _, how, err := g.Do(short, "kafka", asked, read)
		assert.Equal(t, Started, how)
		starter <- err
	}()
	require.Eventually(t, func() bool { return readCtx.Load() != nil }, 5*time.Second, time.Millisecond)
	dl, ok := (*readCtx.Load()).Deadline()
	require.True(t, ok, "the read has a deadline of its own")
	assert.WithinDuration(t, time.Now().Add(5*time.Second), dl, time.Second)

	joined := make(chan int)
	go func() {
		v, _, how, err := g.Do(context.Background(), "kafka", asked, read)
		assert.NoError(t, err)
		assert.Equal(t, Joined, how)
		joined <- v
	}()
	require.Eventually(t, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.entries["kafka"].inflight.waiters == 2
	}, 5*time.Second, time.Millisecond)
	start := time.Now()
	require.ErrorIs(t, <-starter, context.DeadlineExceeded, "the starter stops at its own deadline")
	assert.Less(t, time.Since(start), time.Second)
	time.Sleep(100 * time.Millisecond) // well past the starter's deadline
	require.NoError(t, (*readCtx.Load()).Err(), "the starter's deadline does not end the read")
	close(release)
	assert.Equal(t, 7, <-joined)
}

// A read that hangs ends at the group's Timeout, and every caller waiting
// for it gets that error (not kept: the next caller reads anew).
func TestReadIsBoundedByTheTimeout(t *testing.T) {
	g := &Group[string, int]{Timeout: 100 * time.Millisecond}
	hang := func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, context.Cause(ctx) }
	start := time.Now()
	_, _, _, err := g.Do(context.Background(), "kafka", start, hang)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Contains(t, err.Error(), "timeout 100ms")
	took := time.Since(start)
	assert.GreaterOrEqual(t, took, 100*time.Millisecond)
	assert.Less(t, took, 2*time.Second)
	v, _, how, err := g.Do(context.Background(), "kafka", start, func(context.Context) (int, error) { return 3, nil })
	require.NoError(t, err)
	assert.Equal(t, 3, v)
	assert.Equal(t, Started, how)
}

// When every caller waiting for a read gives up, the read is canceled, and
// one not started yet (waiting for the spacing) never starts: the next
// caller gets a read of its own.
func TestAbandonedReadIsCanceled(t *testing.T) {
	g := &Group[string, int]{Spacing: 300 * time.Millisecond}
	var n atomic.Int64
	canceled := make(chan error, 1)
	hang := func(ctx context.Context) (int, error) {
		n.Add(1)
		<-ctx.Done()
		canceled <- context.Cause(ctx)
		return 0, context.Cause(ctx)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, _, _, err := g.Do(ctx, "kafka", time.Now(), hang); done <- err }()
	require.Eventually(t, func() bool { return n.Load() == 1 }, 5*time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	select {
	case err := <-canceled:
		require.ErrorIs(t, err, ErrAbandoned)
	case <-time.After(5 * time.Second):
		t.Fatal("the abandoned read was not canceled")
	}

	// The next read waits for the spacing; its only caller leaves first.
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	_, began, how, err := g.Do(short, "kafka", time.Now(), hang)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, Started, how)
	assert.True(t, began.IsZero(), "it had not started")
	time.Sleep(400 * time.Millisecond) // past the spacing
	assert.EqualValues(t, 1, n.Load(), "an abandoned read that had not started never starts")

	v, _, how, err := g.Do(context.Background(), "kafka", time.Now(), func(context.Context) (int, error) { return 5, nil })
	require.NoError(t, err)
	assert.Equal(t, 5, v)
	assert.Equal(t, Started, how, "a new read, not the abandoned one")
}

// Last is the newest successful read, never a failed one nor one in flight.
func TestLast(t *testing.T) {
	g, clk := newGroup()
	ctx := context.Background()
	_, _, ok := g.Last("kafka")
	assert.False(t, ok, "nothing read yet")

	var n atomic.Int64
	_, began, _, err := g.Do(ctx, "kafka", clk.now(), counter(&n))
	require.NoError(t, err)
	v, at, ok := g.Last("kafka")
	require.True(t, ok)
	assert.Equal(t, 1, v)
	assert.Equal(t, began, at)

	clk.add(time.Second)
	_, _, _, err = g.Do(ctx, "kafka", clk.now(), func(context.Context) (int, error) { return 0, errors.New("boom") })
	require.Error(t, err)
	v, at, ok = g.Last("kafka")
	require.True(t, ok)
	assert.Equal(t, 1, v, "a failed read is not kept")
	assert.Equal(t, began, at)

	release := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _, _, _ = g.Do(ctx, "kafka", clk.now().Add(time.Nanosecond), func(context.Context) (int, error) { <-release; return 7, nil })
	}()
	time.Sleep(20 * time.Millisecond)
	v, _, _ = g.Last("kafka")
	assert.Equal(t, 1, v, "a read in flight is not the last")
	close(release)
	<-done
	v, _, _ = g.Last("kafka")
	assert.Equal(t, 7, v)
	_, _, ok = g.Last("ksqldb")
	assert.False(t, ok, "keys apart")
}
