// Package chaos breaks the fleet system while a rollout runs and checks what
// must hold afterwards: the rollout completed (or paused with a clear
// reason), every selected cluster's change was applied exactly once and the
// cluster runs the target version, no cluster was skipped, and clusters
// outside the selection were not touched, and the rollout's Slack thread
// lost no message.
//
// The Go tests here do it on the in-process stack (internal/bench/stack);
// cmd/fleetchaos does it with real processes (bin/worker stack and
// bin/worker), killing and restarting them.
package chaos

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/workflows"
)

// Target is the version the chaos rollouts push.
const Target = "3.9.0"

// Selected is the chaos rollouts' selection: the Kafka clusters.
func Selected(c fleet.Cluster) bool { return c.Product == fleet.ProductKafka }

// SpecOptions shape a chaos rollout.
type SpecOptions struct {
	Name         string
	BatchSize    int
	Concurrency  int
	Interval     time.Duration
	UnknownGrace time.Duration
}

// Spec is a chaos rollout: every Kafka cluster, one phase, no bake,
// maintenance windows ignored, monitoring on.
func Spec(o SpecOptions) (*spec.Rollout, error) {
	if o.BatchSize <= 0 {
		o.BatchSize = 10
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 30
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.UnknownGrace <= 0 {
		o.UnknownGrace = 30 * time.Second
	}
	y := fmt.Sprintf(`
name: %s
description: chaos
target:
  version: %s
selector: product=kafka
strategy:
  phases:
    - name: all
      batchSize: %d
      concurrency: %d
schedule:
  windows: ignore
monitoring:
  interval: %s
  unknownGrace: %s
`, o.Name, Target, o.BatchSize, o.Concurrency, o.Interval, o.UnknownGrace)
	return spec.Parse(o.Name+".yaml", []byte(y))
}

// Cluster is one cluster's state as the data plane reports it.
type Cluster struct {
	ID          string `json:"id"`
	Product     string `json:"product"`
	Version     string `json:"version"`
	Generation  int64  `json:"generation"`
	ApplyStarts int    `json:"applyStarts"`
}

// Check is the exactly-once verdict.
type Check struct {
	Selected int
	// Once counts selected clusters applied exactly once, now on Target at
	// the next generation.
	Once int
	// Problems names every violation (selected clusters applied zero or
	// several times, or not on the target; others touched; skipped ones).
	Problems []string
}

// OK reports whether nothing was violated.
func (c Check) OK() bool { return len(c.Problems) == 0 && c.Once == c.Selected && c.Selected > 0 }

func (c Check) String() string {
	if c.OK() {
		return fmt.Sprintf("ok: %d/%d applied exactly once", c.Once, c.Selected)
	}
	s := fmt.Sprintf("FAILED: %d/%d applied exactly once; %d problems", c.Once, c.Selected, len(c.Problems))
	for i, p := range c.Problems {
		if i == 5 {
			s += fmt.Sprintf("; ... %d more", len(c.Problems)-5)
			break
		}
		s += "; " + p
	}
	return s
}

// Verify compares the fleet before the rollout with the data plane's state
// after it, and the rollout's final status (nil: not checked).
func Verify(before map[string]fleet.Cluster, after map[string]Cluster, final *workflows.RolloutStatus) Check {
	var ch Check
	ids := make([]string, 0, len(before))
	for id := range before {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		b := before[id]
		a, ok := after[id]
		if !ok {
			ch.Problems = append(ch.Problems, id+": missing from the data plane")
			continue
		}
		if Selected(b) {
			ch.Selected++
			if a.ApplyStarts == 1 && a.Version == Target && a.Generation == b.Generation+1 {
				ch.Once++
				continue
			}
			ch.Problems = append(ch.Problems, fmt.Sprintf("%s: %d applies, version %s, generation %d (was %d)", id, a.ApplyStarts, a.Version, a.Generation, b.Generation))
			continue
		}
		if a.ApplyStarts != 0 || a.Version != b.Version {
			ch.Problems = append(ch.Problems, fmt.Sprintf("%s: outside the selection but touched: %d applies, version %s", id, a.ApplyStarts, a.Version))
		}
	}
	if final != nil {
		if final.Total != ch.Selected {
			ch.Problems = append(ch.Problems, fmt.Sprintf("the rollout planned %d clusters, the selection has %d", final.Total, ch.Selected))
		}
		if n := final.Counts.Skipped; n > 0 {
			ch.Problems = append(ch.Problems, fmt.Sprintf("%d clusters skipped", n))
		}
		if n := final.Counts.Failed + final.Counts.Aborted; n > 0 {
			ch.Problems = append(ch.Problems, fmt.Sprintf("%d clusters failed or aborted", n))
		}
	}
	return ch
}

// Outcome describes a rollout's end state in one line: the state, and the
// pause reason when paused.
func Outcome(st *workflows.RolloutStatus) string {
	if st == nil {
		return "unknown"
	}
	s := fmt.Sprintf("%s (%d/%d done)", st.State, st.Counts.Done, st.Total)
	if st.Paused != nil {
		s += fmt.Sprintf(", paused by %s: %s", st.Paused.Actor, st.Paused.Reason)
	}
	return s
}

// Posted is one chat.postMessage a Slack-compatible server received.
type Posted struct {
	TS, Channel, Text, ThreadTS string
}

// SlackRecorder is a chat.postMessage handler for a Slack-compatible test
// server (slacktest): it records every message and answers each with a
// distinct ts (slacktest's own handler stamps them all alike).
type SlackRecorder struct {
	mu   sync.Mutex
	msgs []Posted
}

// PostMessage handles chat.postMessage.
func (rc *SlackRecorder) PostMessage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if err := r.ParseForm(); err != nil {
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "invalid_form_data"})
		return
	}
	rc.mu.Lock()
	p := Posted{
		TS:       fmt.Sprintf("1700000000.%06d", 100*(len(rc.msgs)+1)),
		Channel:  r.PostForm.Get("channel"),
		Text:     r.PostForm.Get("text"),
		ThreadTS: r.PostForm.Get("thread_ts"),
	}
	rc.msgs = append(rc.msgs, p)
	rc.mu.Unlock()
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": p.Channel, "ts": p.TS})
}

// Messages returns the messages so far, in the order they arrived.
func (rc *SlackRecorder) Messages() []Posted {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Posted(nil), rc.msgs...)
}

// CheckThread checks a chaos rollout's Slack thread once its workflow has
// closed (it closes after its last message is out). Problems are lost or
// misplaced messages: the thread must open with the start message and hold
// the phase's and the rollout's completion, every later message in the
// thread. Repeated lists messages that arrived more than once (a Notify
// activity is at-least-once: one cut off after Slack took the message runs
// again).
func CheckThread(msgs []Posted) (problems, repeated []string) {
	if len(msgs) == 0 {
		return []string{"no Slack message at all"}, nil
	}
	if !strings.Contains(msgs[0].Text, "started by") {
		problems = append(problems, fmt.Sprintf("the thread does not open with the start message: %q", msgs[0].Text))
	}
	if msgs[0].ThreadTS != "" {
		problems = append(problems, fmt.Sprintf("the first message is itself in a thread (%s)", msgs[0].ThreadTS))
	}
	seen := map[string]int{}
	var phaseDone, finished bool
	for i, m := range msgs {
		if i > 0 && m.ThreadTS != msgs[0].TS {
			problems = append(problems, fmt.Sprintf("message %d is outside the rollout's thread (thread_ts %q): %q", i+1, m.ThreadTS, m.Text))
		}
		seen[m.Text]++
		if seen[m.Text] == 2 {
			repeated = append(repeated, m.Text)
		}
		phaseDone = phaseDone || strings.Contains(m.Text, "Phase all done")
		finished = finished || strings.Contains(m.Text, " completed: ")
	}
	if !phaseDone {
		problems = append(problems, `no "Phase all done" message`)
	}
	if !finished {
		problems = append(problems, `no "Rollout ... completed: ..." message`)
	}
	return problems, repeated
}
