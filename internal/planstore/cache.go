package planstore

import (
	"context"
	"sync"

	"github.com/fleet-rollout/fleet/internal/plan"
)

// Cache keeps the last plans loaded from a store in memory: a plan under a
// key never changes, so every batch of a rollout reads it from the store
// once per worker, not once per batch. Plans it returns are shared: read
// them, do not change them.
type Cache struct {
	Store Store
	// Max is how many plans it keeps (default 4).
	Max int

	mu    sync.Mutex
	plans map[string]*plan.Plan
	order []string // oldest first
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
	p, err := GetPlan(ctx, c.Store, key)
	if err != nil {
		return nil, err
	}
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
	return p, nil
}

// Put stores p (PutPlan) and keeps it in memory.
func (c *Cache) Put(ctx context.Context, p *plan.Plan) (string, error) {
	return PutPlan(ctx, c.Store, p)
}
