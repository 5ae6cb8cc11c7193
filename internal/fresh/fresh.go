// Package fresh shares reads between concurrent callers without serving
// stale answers: a caller states how old a read may be (notBefore: the read
// must have begun at or after it) and gets the last successful read when it
// qualifies, joins the read in flight when that one qualifies, and otherwise
// joins the next read, which starts once the key's spacing since the last
// start has passed (not waiting for the read in flight, which may hang until
// its deadline). Every caller that asks within one spacing so shares one
// read, and a key's reads start at most once per spacing. Failed reads are
// handed to the callers that waited for them and never kept.
//
// A read belongs to no caller: it runs under a context of its own, bounded
// by the group's Timeout from its start (never by the deadline of whichever
// caller happened to start it), and canceled once every caller waiting for
// it has given up. A caller waits only until its own context ends.
//
// It is what lets every batch on a worker read a product's monitors with a
// few Datadog requests per interval, where each used to read its own.
//
// The package is pure: no network, no Temporal.
package fresh

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Result says how a caller got its value.
type Result int

const (
	// Started: the caller's Do started the read.
	Started Result = iota
	// Joined: the caller waited for a read another caller started.
	Joined
	// Reused: the caller got the last read, already done.
	Reused
)

func (r Result) String() string {
	switch r {
	case Started:
		return "started"
	case Joined:
		return "joined"
	case Reused:
		return "reused"
	}
	return "unknown"
}

// DefaultTimeout bounds a read when the Group's Timeout is not set.
const DefaultTimeout = 30 * time.Second

// ErrAbandoned is the error of a read that ended (or never started)
// because every caller waiting for it gave up.
var ErrAbandoned = errors.New("fresh: every caller waiting for the read gave up")

// Group coalesces reads by key. The zero value is ready to use; a Group
// must not be copied after first use.
type Group[K comparable, V any] struct {
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Spacing is the least time between the starts of two reads of a key
	// (0: a read starts as soon as it is asked for).
	Spacing time.Duration
	// Timeout bounds each read from its start: the deadline of the
	// context it runs under (0: DefaultTimeout).
	Timeout time.Duration

	mu      sync.Mutex
	entries map[K]*entry[V]
}

type entry[V any] struct {
	inflight *call[V] // the newest read in flight, nil when none
	next     *call[V] // the read callers wait for, not started yet
	last     *call[V] // the newest successful read, nil when none
	started  time.Time
}

type call[V any] struct {
	began   time.Time     // set when it starts (closing started)
	started chan struct{} // closed when the read starts
	done    chan struct{}
	val     V
	err     error

	// ctx is the read's own context (canceled by cancel once waiters
	// drops to 0); waiters counts the callers waiting for it.
	ctx     context.Context
	cancel  context.CancelCauseFunc
	waiters int
}

func (g *Group[K, V]) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

func (g *Group[K, V]) timeout() time.Duration {
	if g.Timeout > 0 {
		return g.Timeout
	}
	return DefaultTimeout
}

// Do returns the value of a read of key that began at or after notBefore:
// the last successful read if it qualifies, else the read in flight if it
// qualifies, else the next read (started by the first caller that needs it,
// once the spacing since the key's last start has passed). began is when
// the read that answered began.
//
// read runs in a goroutine of its own under a context of its own: bounded
// by Timeout from its start, canceled when every caller waiting for it has
// given up, never by the context of the caller that started it. read must
// return once its context ends.
//
// Do waits for the read until ctx is done, then returns ctx's cause.
func (g *Group[K, V]) Do(ctx context.Context, key K, notBefore time.Time, read func(context.Context) (V, error)) (v V, began time.Time, how Result, err error) {
	if err := context.Cause(ctx); err != nil {
		return v, began, Joined, err
	}
	g.mu.Lock()
	if g.entries == nil {
		g.entries = map[K]*entry[V]{}
	}
	e := g.entries[key]
	if e == nil {
		e = &entry[V]{}
		g.entries[key] = e
	}
	if l := e.last; l != nil && !l.began.Before(notBefore) {
		g.mu.Unlock()
		return l.val, l.began, Reused, nil
	}
	c, how := e.inflight, Joined
	if c == nil || c.began.Before(notBefore) || c.waiters == 0 {
		// The next read begins after this call asked, whenever it starts.
		// (A read in flight that every caller gave up is ending.)
		c = e.next
		if c == nil {
			c, how = &call[V]{done: make(chan struct{}), started: make(chan struct{})}, Started
			c.ctx, c.cancel = context.WithCancelCause(context.Background())
			e.next = c
			go g.start(e, c, read)
		}
	}
	c.waiters++
	g.mu.Unlock()

	select {
	case <-c.done:
		return c.val, c.began, how, c.err
	case <-ctx.Done():
	}
	g.mu.Lock()
	c.waiters--
	if c.waiters == 0 {
		// Nobody waits for it: a read not started is dropped (the next
		// caller asks for a new one), one in flight is canceled.
		if e.next == c {
			e.next = nil
		}
		c.cancel(ErrAbandoned)
	}
	select {
	case <-c.started:
		began = c.began
	default:
	}
	g.mu.Unlock()
	return v, began, how, context.Cause(ctx)
}

// Last returns the key's newest successful read and when it began (ok
// false when none): for a caller that may use a read up to some age but
// would rather not join one in flight, which may hang until its Timeout
// (it then calls Do with a notBefore of its own).
func (g *Group[K, V]) Last(key K) (v V, began time.Time, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e := g.entries[key]; e != nil && e.last != nil {
		return e.last.val, e.last.began, true
	}
	return v, began, false
}

// start runs c once the spacing since the key's last start has passed,
// unless every caller waiting for it has given up meanwhile.
func (g *Group[K, V]) start(e *entry[V], c *call[V], read func(context.Context) (V, error)) {
	g.mu.Lock()
	wait := e.started.Add(g.Spacing).Sub(g.now())
	g.mu.Unlock()
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
		}
	}
	g.mu.Lock()
	if c.ctx.Err() != nil {
		// Abandoned before it started: no request, no start recorded.
		if e.next == c {
			e.next = nil
		}
		c.err = context.Cause(c.ctx)
		g.mu.Unlock()
		close(c.done)
		return
	}
	c.began = g.now()
	e.started = c.began
	e.inflight = c
	if e.next == c {
		e.next = nil
	}
	close(c.started)
	g.mu.Unlock()
	g.run(e, c, read)
}

func (g *Group[K, V]) run(e *entry[V], c *call[V], read func(context.Context) (V, error)) {
	timeout := g.timeout()
	ctx, cancel := context.WithTimeoutCause(c.ctx, timeout, fmt.Errorf("fresh: read not done within its timeout %s: %w", timeout, context.DeadlineExceeded))
	val, err := read(ctx)
	cancel()
	c.cancel(nil) // release the read's context
	g.mu.Lock()
	c.val, c.err = val, err
	if err == nil && (e.last == nil || c.began.After(e.last.began)) {
		e.last = c
	}
	if e.inflight == c {
		e.inflight = nil
	}
	g.mu.Unlock()
	close(c.done)
}
