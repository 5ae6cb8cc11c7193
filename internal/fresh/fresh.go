// Package fresh shares reads between concurrent callers without serving
// stale answers: a caller states how old a read may be (notBefore: the read
// must have begun at or after it) and gets the last successful read when it
// qualifies, joins the read in flight when that one qualifies, and otherwise
// joins the next read, which starts once the key's spacing since the last
// start has passed (not waiting for the read in flight, which may hang until
// its deadline). Every caller that asks within one spacing so shares one
// read, and a key's reads start at most once per spacing. Failed reads are handed to the callers that waited
// for them and never kept.
//
// It is what lets every batch on a worker read a product's monitors with a
// few Datadog requests per interval, where each used to read its own.
//
// The package is pure: no network, no Temporal.
package fresh

import (
	"context"
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

// Group coalesces reads by key. The zero value is ready to use; a Group
// must not be copied after first use.
type Group[K comparable, V any] struct {
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Spacing is the least time between the starts of two reads of a key
	// (0: a read starts as soon as the one before it has ended).
	Spacing time.Duration

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
}

func (g *Group[K, V]) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

// Do returns the value of a read of key that began at or after notBefore:
// the last successful read if it qualifies, else the read in flight if it
// qualifies, else the next read (started by the first caller that needs it,
// once the spacing since the key's last start has passed), which runs
// read in a goroutine of its own (so that a caller giving up does not end it
// for the others). began is when the read that answered began.
//
// Do waits for the read until ctx is done, then returns ctx's error. read
// must end by itself (bound it with a deadline).
func (g *Group[K, V]) Do(ctx context.Context, key K, notBefore time.Time, read func() (V, error)) (v V, began time.Time, how Result, err error) {
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
	if c == nil || c.began.Before(notBefore) {
		// The next read begins after this call asked, whenever it starts.
		c = e.next
		if c == nil {
			c, how = &call[V]{done: make(chan struct{}), started: make(chan struct{})}, Started
			e.next = c
			go g.start(e, c, read)
		}
	}
	g.mu.Unlock()

	select {
	case <-c.done:
		return c.val, c.began, how, c.err
	case <-ctx.Done():
		var zero V
		began := time.Time{}
		select {
		case <-c.started:
			began = c.began
		default:
		}
		return zero, began, how, ctx.Err()
	}
}

// start runs c once the spacing since the key's last start has passed.
func (g *Group[K, V]) start(e *entry[V], c *call[V], read func() (V, error)) {
	g.mu.Lock()
	wait := e.started.Add(g.Spacing).Sub(g.now())
	g.mu.Unlock()
	if wait > 0 {
		time.Sleep(wait)
	}
	g.mu.Lock()
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

func (g *Group[K, V]) run(e *entry[V], c *call[V], read func() (V, error)) {
	val, err := read()
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
