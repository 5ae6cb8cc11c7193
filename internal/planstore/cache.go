package planstore

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"golang.org/x/sync/singleflight"

	"github.com/fleet-rollout/fleet/internal/plan"
)

// Cache keeps the last plans loaded from a store in memory: a plan under a
// key never changes, so every batch of a rollout reads it from the store
// once per worker, not once per batch: the batches that ask for a plan
// not in memory at the same time (a rollout starts dozens) share one read,
// and the worker that stores a plan keeps it. Plans it returns are shared:
// read them, do not change them.
type Cache struct {
	Store Store
	// Max is how many plans it keeps (default 4).
	Max int

	mu    sync.Mutex
	plans map[string]*plan.Plan
	order []string // oldest first
	loads singleflight.Group
}

// NewCache returns a cache of s.
func NewCache(s Store) *Cache { return &Cache{Store: s} }

// Plan returns the plan stored under key (GetPlan), from memory when it
// was loaded recently.
func (c *Cache) Plan(ctx context.Context, key string) (*plan.Plan, error) {
	c.mu.Lock()
	if p, ok := c.plans[key]; ok {
		c.mu.Unlock()
		return p, nil
	}
	c.mu.Unlock()
	v, err, _ := c.loads.Do(key, func() (any, error) {
		p, err := GetPlan(ctx, c.Store, key)
		if err != nil {
			return nil, err
		}
		c.keep(key, p)
		return p, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*plan.Plan), nil
}

// keep adds p under key, dropping the oldest past Max.
func (c *Cache) keep(key string, p *plan.Plan) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.plans == nil {
		c.plans = map[string]*plan.Plan{}
	}
	if _, ok := c.plans[key]; !ok {
		c.plans[key] = p
		c.order = append(c.order, key)
		limit := c.Max
		if limit <= 0 {
			limit = 4
		}
		for len(c.order) > limit {
			delete(c.plans, c.order[0])
			c.order = c.order[1:]
		}
	}
}

// Put stores p (PutPlan) and keeps in memory the plan its stored bytes
// decode to, what a read of the key returns.
func (c *Cache) Put(ctx context.Context, p *plan.Plan) (string, error) {
	key, data, err := putPlan(ctx, c.Store, p)
	if err != nil {
		return "", err
	}
	var kept plan.Plan
	if err := json.Unmarshal(data, &kept); err != nil {
		return "", fmt.Errorf("decode plan %s: %w", p.Hash, err)
	}
	c.keep(key, &kept)
	return key, nil
}
