package inventory

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/redact"
)

// Finder looks clusters up by ID without listing the fleet: a batch reads
// the records of its own clusters only.
type Finder interface {
	// Find returns the clusters with the given IDs that exist, in no
	// particular order; an ID the inventory does not know is left out.
	Find(ctx context.Context, ids []string) ([]fleet.Cluster, error)
}

// Find looks ids up in src: through its Finder when it has one, else by
// listing the fleet and keeping ids.
func Find(ctx context.Context, src Source, ids []string) ([]fleet.Cluster, error) {
	if f, ok := src.(Finder); ok {
		return f.Find(ctx, ids)
	}
	all, err := src.List(ctx)
	if err != nil {
		return nil, err
	}
	return pick(all, ids), nil
}

func pick(all []fleet.Cluster, ids []string) []fleet.Cluster {
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	var out []fleet.Cluster
	for _, c := range all {
		if want[c.ID] {
			out = append(out, c)
		}
	}
	return out
}

// LookupPath is appended to an HTTP inventory's URL path for a lookup:
// POST {"ids": [...]} answers the clusters found as the list does (the
// simulator serves it at /v1/clusters/lookup). An inventory that answers
// 404, 405 or 501 has no lookup: Find then lists, and remembers.
const LookupPath = "/lookup"

// LookupRequest is the body of a lookup.
type LookupRequest struct {
	IDs []string `json:"ids"`
}

// MaxLookup bounds the IDs of one lookup request; larger lookups are split.
const MaxLookup = 2000

func (h *httpSource) lookupURL() string {
	u := h.url
	q := ""
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u, q = u[:i], u[i:]
	}
	return strings.TrimRight(u, "/") + LookupPath + q
}

// Find looks ids up with one POST per MaxLookup IDs, or lists when the
// inventory has no lookup.
func (h *httpSource) Find(ctx context.Context, ids []string) ([]fleet.Cluster, error) {
	if h.noLookup.Load() {
		all, err := h.List(ctx)
		if err != nil {
			return nil, err
		}
		return pick(all, ids), nil
	}
	var out []fleet.Cluster
	for start := 0; start < len(ids); start += MaxLookup {
		part := ids[start:min(start+MaxLookup, len(ids))]
		cs, supported, err := h.lookup(ctx, part)
		if err != nil {
			return nil, err
		}
		if !supported {
			h.noLookup.Store(true)
			return h.Find(ctx, ids)
		}
		out = append(out, cs...)
	}
	return out, nil
}

func (h *httpSource) lookup(ctx context.Context, ids []string) ([]fleet.Cluster, bool, error) {
	body, err := json.Marshal(LookupRequest{IDs: ids})
	if err != nil {
		return nil, false, fmt.Errorf("inventory: encode lookup: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.lookupURL(), bytes.NewReader(body))
	if err != nil {
		return nil, false, redact.Error(fmt.Errorf("inventory: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, false, redact.Error(fmt.Errorf("inventory: %w", err))
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return nil, false, nil
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, true, fmt.Errorf("inventory %s lookup: %s: %s", h.String(), resp.Status, strings.Join(strings.Fields(string(snippet)), " "))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return nil, true, fmt.Errorf("inventory %s lookup: read body: %w", h.String(), err)
	}
	cs, err := decodeJSON(data)
	if err == nil {
		err = Validate(cs)
	}
	if err != nil {
		return nil, true, fmt.Errorf("inventory %s lookup: %w", h.String(), err)
	}
	return cs, true, nil
}

// Indexed wraps a file source so the file is parsed and indexed once per
// change (its size and modification time), not on every List or Find.
func Indexed(path string) Source { return &indexedFile{path: path} }

type indexedFile struct {
	path string
	mu   sync.Mutex
	// size and mod identify the version of the file indexed.
	size int64
	mod  time.Time
	all  []fleet.Cluster
	byID map[string]int
}

func (f *indexedFile) String() string { return f.path }

// load returns the indexed fleet, reading the file again if it changed.
func (f *indexedFile) load(ctx context.Context) ([]fleet.Cluster, map[string]int, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	st, err := os.Stat(f.path)
	if err != nil {
		return nil, nil, fmt.Errorf("inventory: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byID != nil && st.Size() == f.size && st.ModTime().Equal(f.mod) {
		return f.all, f.byID, nil
	}
	cs, err := fileSource(f.path).List(ctx)
	if err != nil {
		return nil, nil, err
	}
	byID := make(map[string]int, len(cs))
	for i, c := range cs {
		byID[c.ID] = i
	}
	f.all, f.byID, f.size, f.mod = cs, byID, st.Size(), st.ModTime()
	return cs, byID, nil
}

// List returns a copy of the fleet (callers may modify it).
func (f *indexedFile) List(ctx context.Context) ([]fleet.Cluster, error) {
	all, _, err := f.load(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]fleet.Cluster, len(all))
	copy(out, all)
	return out, nil
}

// Find looks ids up in the index.
func (f *indexedFile) Find(ctx context.Context, ids []string) ([]fleet.Cluster, error) {
	all, byID, err := f.load(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]fleet.Cluster, 0, len(ids))
	for _, id := range ids {
		if i, ok := byID[id]; ok {
			out = append(out, all[i])
		}
	}
	return out, nil
}
