package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/internal/fleet"
)

// stateFormat versions the state file layout.
const stateFormat = 1

type stateFile struct {
	Format   int            `json:"format"`
	SavedAt  time.Time      `json:"savedAt"`
	Clusters []clusterEntry `json:"clusters"`
}

type clusterEntry struct {
	Cluster     fleet.Cluster     `json:"cluster"`
	InFlight    *apply            `json:"inFlight,omitempty"`
	Last        *dataplane.Status `json:"last,omitempty"`
	Alerts      []string          `json:"alerts,omitempty"`
	ApplyStarts int               `json:"applyStarts,omitempty"`
}

// markDirty asks the saver to write the state soon.
func (s *Simulator) markDirty() {
	if s.statePath == "" {
		return
	}
	select {
	case s.dirty <- struct{}{}:
	default:
	}
}

// saver writes the state when it changes, at most once per saveInterval,
// and at most a tenth of the time: a large fleet's state takes long to
// write (20,000 clusters spent 12 % of the dev process's CPU saving every
// 500 ms), and a kill -9 only loses what a real data plane would resend.
func (s *Simulator) saver() {
	defer close(s.saverDone)
	for {
		select {
		case <-s.stopSaver:
			return
		case <-s.dirty:
		}
		began := time.Now()
		if err := s.save(); err != nil {
			s.log.Warn("save sim state", zap.String("path", s.statePath), zap.Error(err))
		}
		select {
		case <-s.stopSaver:
			return
		case <-time.After(saveWait(time.Since(began))):
		}
	}
}

// saveWait is how long the saver waits after a save that took took.
func saveWait(took time.Duration) time.Duration {
	return max(saveInterval, 9*took)
}

// snapshot captures the persistent state. Called with s.mu held.
func (s *Simulator) snapshot() stateFile {
	st := stateFile{Format: stateFormat, SavedAt: time.Now().UTC(), Clusters: make([]clusterEntry, 0, len(s.clusters))}
	for _, cs := range s.clusters {
		e := clusterEntry{Cluster: cloneCluster(cs.c), ApplyStarts: cs.starts}
		if a := cs.inflight; a != nil {
			cp := *a
			cp.Spec = cloneSpec(a.Spec)
			e.InFlight = &cp
		}
		if cs.last != nil {
			last := *cs.last
			e.Last = &last
		}
		for m, on := range cs.alerts {
			if on {
				e.Alerts = append(e.Alerts, m)
			}
		}
		sort.Strings(e.Alerts)
		st.Clusters = append(st.Clusters, e)
	}
	sort.Slice(st.Clusters, func(i, j int) bool { return st.Clusters[i].Cluster.ID < st.Clusters[j].Cluster.ID })
	return st
}

// save writes the state file atomically (temporary file, then rename).
func (s *Simulator) save() error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()

	s.mu.Lock()
	st := s.snapshot()
	s.mu.Unlock()

	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("sim: encode state: %w", err)
	}
	dir := filepath.Dir(s.statePath)
	tmp, err := os.CreateTemp(dir, filepath.Base(s.statePath)+".tmp-*")
	if err != nil {
		return fmt.Errorf("sim: save state: %w", err)
	}
	tmpName := tmp.Name()
	defer func() { _ = os.Remove(tmpName) }() // no-op after a successful rename
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("sim: save state %s: %w", tmpName, err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("sim: save state %s: %w", tmpName, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("sim: save state %s: %w", tmpName, err)
	}
	if err := os.Rename(tmpName, s.statePath); err != nil {
		return fmt.Errorf("sim: save state: %w", err)
	}
	return nil
}

// load merges the state file into the configured clusters: a saved cluster
// replaces the configured one with the same ID. A missing file is not an
// error; a corrupt one is. It returns how many clusters were loaded. Only
// New calls it, before it builds the indexes (buildIndexes) from the
// clusters and their alerts.
func (s *Simulator) load() (int, error) {
	b, err := os.ReadFile(s.statePath)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sim: load state: %w", err)
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return 0, fmt.Errorf("sim: load state %s: %w", s.statePath, err)
	}
	if st.Format != stateFormat {
		return 0, fmt.Errorf("sim: load state %s: unsupported format %d (want %d)", s.statePath, st.Format, stateFormat)
	}
	for _, e := range st.Clusters {
		if err := e.Cluster.Validate(); err != nil {
			return 0, fmt.Errorf("sim: load state %s: %w", s.statePath, err)
		}
		cs := &clusterState{c: e.Cluster, last: e.Last, starts: e.ApplyStarts, alerts: map[string]bool{}}
		for _, m := range e.Alerts {
			cs.alerts[m] = true
		}
		if a := e.InFlight; a != nil {
			if a.Brokers <= 0 || a.Done < 0 || a.Done >= a.Brokers || a.Generation <= e.Cluster.Generation {
				return 0, fmt.Errorf("sim: load state %s: cluster %s: inconsistent apply in flight (generation %d, broker %d of %d, applied %d)",
					s.statePath, e.Cluster.ID, a.Generation, a.Done, a.Brokers, e.Cluster.Generation)
			}
			a.wake = make(chan struct{}, 1)
			if a.Held && !a.AbortReq {
				// Keep a held apply held until it is resumed.
				a.HoldReq, a.ResumeReq = false, false
			}
			if a.AbortReq {
				wakeUp(a)
			}
			cs.inflight = a
		}
		s.clusters[e.Cluster.ID] = cs
	}
	return len(st.Clusters), nil
}
