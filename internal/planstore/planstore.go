// Package planstore keeps rollout plans outside workflow history, addressed
// by content: a plan is stored once, under the SHA-256 of its encoding, and
// the rollout's history holds only that key and the plan's outline
// (plan.Plan.Outline). A batch, the recovery planner and the busy-cluster
// check load what they need from the store through an activity.
//
// Two stores: a directory (the dev stack's default, or a volume every worker
// shares) and an S3-compatible bucket. A plan that cannot be loaded (missing,
// corrupt, its content not matching its key) is an error naming the key: the
// caller never plans again in its place.
//
// The package has no Temporal or network imports beyond the S3 client.
package planstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/fleet-rollout/fleet/internal/plan"
)

// Store keeps documents by the hex SHA-256 of their bytes.
type Store interface {
	// Put stores data and returns its key (Key(data)). Storing the same
	// bytes again is a no-op that returns the same key.
	Put(ctx context.Context, data []byte) (string, error)
	// Get returns the bytes stored under key, checked against it: a
	// missing document is an error wrapping ErrNotFound, one whose bytes
	// do not hash to key wraps ErrCorrupt.
	Get(ctx context.Context, key string) ([]byte, error)
	// String describes the store for logs and errors, without credentials.
	String() string
}

// Errors a load wraps (errors.Is).
var (
	ErrNotFound = errors.New("not in the plan store")
	ErrCorrupt  = errors.New("corrupt in the plan store")
)

// Key is the key of data: the hex SHA-256 of its bytes.
func Key(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// validKey reports whether key has the form of Key's results (so it can
// name a file or an object without escaping anything).
func validKey(key string) error {
	if len(key) != sha256.Size*2 {
		return fmt.Errorf("plan store: key %q is not a SHA-256 (64 hex digits)", key)
	}
	if _, err := hex.DecodeString(key); err != nil || strings.ToLower(key) != key {
		return fmt.Errorf("plan store: key %q is not a SHA-256 (64 lowercase hex digits)", key)
	}
	return nil
}

// verify checks that data is what key names.
func verify(s Store, key string, data []byte) error {
	if got := Key(data); got != key {
		return fmt.Errorf("plan %s in %s: %w: its content hashes to %s", key, s, ErrCorrupt, got)
	}
	return nil
}

// PutPlan stores the full plan p and returns its key.
func PutPlan(ctx context.Context, s Store, p *plan.Plan) (string, error) {
	key, _, err := putPlan(ctx, s, p)
	return key, err
}

// putPlan is PutPlan, returning the bytes stored too.
func putPlan(ctx context.Context, s Store, p *plan.Plan) (string, []byte, error) {
	data, err := json.Marshal(p)
	if err != nil {
		return "", nil, fmt.Errorf("encode plan %s: %w", p.Hash, err)
	}
	key, err := s.Put(ctx, data)
	if err != nil {
		return "", nil, fmt.Errorf("store plan %s in %s: %w", p.Hash, s, err)
	}
	return key, data, nil
}

// GetPlan loads the plan stored under key and checks it: its bytes hash to
// key and it decodes. Every failure names the key. (Who loads a plan by key
// checks its Hash is the plan it expects: see plan.Plan.Expand.)
func GetPlan(ctx context.Context, s Store, key string) (*plan.Plan, error) {
	if s == nil {
		return nil, fmt.Errorf("load plan %s: no plan store configured", key)
	}
	data, err := s.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("load plan %s: %w", key, err)
	}
	var p plan.Plan
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("load plan %s from %s: %w: %v", key, s, ErrCorrupt, err)
	}
	return &p, nil
}

// Load returns the full plan of outline (plan.Plan.Outline): its batches
// filled from the plan stored under outline.Stored. A plan that is not an
// outline is returned as it is.
func Load(ctx context.Context, s Store, outline *plan.Plan) (*plan.Plan, error) {
	if outline == nil || outline.Stored == "" {
		return outline, nil
	}
	full, err := GetPlan(ctx, s, outline.Stored)
	if err != nil {
		return nil, err
	}
	out, err := outline.Expand(full)
	if err != nil {
		return nil, fmt.Errorf("load plan %s: %w", outline.Stored, err)
	}
	return out, nil
}
