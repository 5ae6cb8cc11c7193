package workflows_test

import (
	"errors"
	"sort"
	"sync"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/workflows"
)

// stepPlane is a deterministic stand-in for the data plane inside the
// Temporal test environment (where no Kafka runs): it records the commands
// the Publish activity receives and, on each step, moves every applying
// cluster one broker forward and answers with status signals, following the
// same rules as internal/sim (hold before the next broker, resume where it
// stopped, one apply per generation). The real simulator is exercised by the
// integration test in internal/app.
type stepPlane struct {
	mu sync.Mutex
	// quiet: statuses go without a workflow task (stepQuietly).
	quiet    bool
	brokers  int
	clusters map[string]*planeCluster
	log      []dataplane.Command
	pending  []dataplane.Command
	// silent clusters take commands but never answer (a lost status stream).
	silent map[string]bool
	// starts counts applies begun per cluster.
	starts map[string]int
	// brokersOf overrides brokers for single clusters.
	brokersOf map[string]int
	// inFlight is, per step, how many clusters were applying or held, and
	// steps counts the steps taken.
	inFlight []int
	steps    int
	// signals counts the status signals sent.
	signals int
	// failAt fails a cluster's apply once it has restarted that many
	// brokers (a failure mid-way), on its first apply only.
	failAt map[string]int
	// down is Kafka being unavailable: publishes fail and no status
	// arrives (the clusters stand still).
	down bool
}

// size is a cluster's broker count.
func (p *stepPlane) size(id string) int {
	if n, ok := p.brokersOf[id]; ok {
		return n
	}
	return p.brokers
}

type planeCluster struct {
	gen     int64
	broker  int
	state   dataplane.State
	replyTo string
	active  bool
	held    bool
}

func newStepPlane(brokers int) *stepPlane {
	return &stepPlane{brokers: brokers, clusters: map[string]*planeCluster{}, silent: map[string]bool{}, starts: map[string]int{}, brokersOf: map[string]int{}, failAt: map[string]int{}}
}

// publish is the Publish activity's test implementation.
func (p *stepPlane) publish(in workflows.PublishInput) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return errors.New("publish: kafka is unavailable")
	}
	p.log = append(p.log, in.Commands...)
	p.pending = append(p.pending, in.Commands...)
	return nil
}

func (p *stepPlane) commands(kind dataplane.CommandKind) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for _, c := range p.log {
		if c.Kind == kind {
			ids = append(ids, c.ClusterID)
		}
	}
	return ids
}

// run steps the plane every interval until the given horizon; each step
// schedules the next, so a long horizon does not queue thousands of timers.
func (p *stepPlane) run(env *testsuite.TestWorkflowEnvironment, every, horizon time.Duration) {
	var next func(left time.Duration)
	next = func(left time.Duration) {
		if left <= 0 {
			return
		}
		env.RegisterDelayedCallback(func() {
			p.step(env)
			next(left - every)
		}, every)
	}
	next(horizon)
}

func (p *stepPlane) step(env *testsuite.TestWorkflowEnvironment) {
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		return
	}
	var out []dataplane.Status
	emit := func(id string, c *planeCluster, s dataplane.State) {
		if p.silent[id] {
			return
		}
		out = append(out, dataplane.Status{ClusterID: id, Generation: c.gen, State: s, Broker: c.broker, Brokers: p.size(id), ReplyTo: c.replyTo})
	}
	for _, cmd := range p.pending {
		c := p.clusters[cmd.ClusterID]
		switch cmd.Kind {
		case dataplane.Apply:
			if c != nil && c.gen == cmd.Generation {
				emit(cmd.ClusterID, c, c.state) // duplicate: answer, do not re-apply
				continue
			}
			c = &planeCluster{gen: cmd.Generation, replyTo: cmd.ReplyTo, active: true, state: dataplane.Progress}
			p.clusters[cmd.ClusterID] = c
			p.starts[cmd.ClusterID]++
		case dataplane.Hold:
			if c != nil && c.active {
				c.held, c.state = true, dataplane.Held
				emit(cmd.ClusterID, c, dataplane.Held)
			}
		case dataplane.Resume:
			if c != nil && c.active && c.held {
				c.held, c.state = false, dataplane.Resumed
				emit(cmd.ClusterID, c, dataplane.Resumed)
			}
		case dataplane.Abort:
			if c != nil && c.active {
				c.active, c.state = false, dataplane.Aborted
				emit(cmd.ClusterID, c, dataplane.Aborted)
			}
		case dataplane.Report:
			if c != nil {
				emit(cmd.ClusterID, c, c.state)
			}
		}
	}
	p.pending = nil
	ids := make([]string, 0, len(p.clusters))
	for id := range p.clusters {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	active := 0
	for _, id := range ids {
		if p.clusters[id].active {
			active++
		}
	}
	p.inFlight = append(p.inFlight, active)
	p.steps++
	for _, id := range ids {
		c := p.clusters[id]
		if !c.active || c.held {
			continue
		}
		c.broker++
		c.state = dataplane.Progress
		if n, ok := p.failAt[id]; ok && c.broker == n && p.starts[id] == 1 {
			c.active, c.state = false, dataplane.Failed
		} else if c.broker >= p.size(id) {
			c.active, c.state = false, dataplane.Completed
		}
		emit(id, c, c.state)
	}
	p.signals += len(out)
	quiet := p.quiet
	p.mu.Unlock()
	for _, s := range out {
		if quiet {
			env.SignalWorkflowSkippingWorkflowTask(workflows.SignalClusterStatus, s)
			continue
		}
		env.SignalWorkflowByID(s.ReplyTo, workflows.SignalClusterStatus, s)
	}
}

// stepQuietly is step for a test whose workflow is the batch itself: the
// statuses are delivered without running a workflow task, so the next
// signal's task sees them all at once (the server delivers signals that
// arrive together in one task; the test environment runs one per signal).
func (p *stepPlane) stepQuietly(env *testsuite.TestWorkflowEnvironment) {
	p.mu.Lock()
	p.quiet = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.quiet = false
		p.mu.Unlock()
	}()
	p.step(env)
}

// brokersRestarted reports how far each cluster got.
func (p *stepPlane) brokersRestarted(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.clusters[id]; c != nil {
		return c.broker
	}
	return 0
}

// maxInFlight is the most clusters in flight at one step, over steps [from, to).
func (p *stepPlane) maxInFlight(from, to int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := 0
	for i := from; i < min(to, len(p.inFlight)); i++ {
		m = max(m, p.inFlight[i])
	}
	return m
}

// applies is how many applies each cluster received, and the step count.
func (p *stepPlane) applies(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts[id]
}
