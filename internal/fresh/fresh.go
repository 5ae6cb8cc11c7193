// Package fresh shares reads between concurrent callers without serving
// stale answers: a caller states how old a read may be (notBefore: the read
// must have begun at or after it) and gets the last successful read when it
// qualifies, joins the read in flight when that one qualifies, and starts a
// read otherwise. Failed reads are handed to the callers that waited for
// them and never kept.
//
// It is what lets every batch on a worker read a product's monitors with
// one Datadog request per interval, where each used to read its own.
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

	mu      sync.Mutex
	entries map[K]*entry[V]
}

type entry[V any] struct {
	inflight *call[V] // the newest read in flight, nil when none
	last     *call[V] // the newest successful read, nil when none
}

type call[V any] struct {
	began time.Time
	done  chan struct{}
	val   V
	err   error
}

func (g *Group[K, V]) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

// Do returns the value of a read of key that began at or after notBefore:
// the last successful read if it qualifies, else the read in flight if it
// qualifies, else a new read, which runs read in a goroutine of its own
// (so that a caller giving up does not end it for the others). began is
// when the read that answered began.
//
// Do waits for the read until ctx is done, then returns ctx's error. read
// must end by itself (bound it with a deadline): a read that never ends
// keeps its key's later callers waiting for a newer read only if they ask
// for one (notBefore after its start).
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
		c, how = &call[V]{began: g.now(), done: make(chan struct{})}, Started
		e.inflight = c
		go g.run(e, c, read)
	}
	g.mu.Unlock()

	select {
	case <-c.done:
		return c.val, c.began, how, c.err
	case <-ctx.Done():
		var zero V
		return zero, c.began, how, ctx.Err()
	}
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
