package bench

import (
	"sort"
	"time"

	"github.com/fleet-rollout/fleet/internal/sim"
)

// Turnover is how long a slot of the window stays empty between one apply
// ending and the next starting on the data plane, in milliseconds: each
// apply start after the first Concurrency is paired with the earliest end not
// yet paired (the slot that freed first). Issue is the part until the
// workflow issued the next apply command (its IssuedAt, the workflow task's
// time: status over Kafka, the bridge's signal, the workflow task), Transit
// the rest (the publish and the command over Kafka). SameBatch counts the
// pairs whose two applies came from the same batch workflow; the others
// crossed a lane grant or a new batch. FillMS is how long after the first
// apply started the Concurrency-th did (the window's first fill).
type Turnover struct {
	FillMS       float64 `json:"fillMs"`
	Pairs        int     `json:"pairs"`
	MeanMS       float64 `json:"meanMs"`
	P50MS        float64 `json:"p50Ms"`
	P90MS        float64 `json:"p90Ms"`
	IssueP50MS   float64 `json:"issueP50Ms"`
	TransitP50MS float64 `json:"transitP50Ms"`
	SameBatch    int     `json:"sameBatch"`
	SameP50MS    float64 `json:"sameBatchP50Ms"`
	CrossP50MS   float64 `json:"crossBatchP50Ms"`
}

// turnover pairs the applies' ends with the next starts (see Turnover).
func turnover(events []sim.ApplyEvent, concurrency int) Turnover {
	evs := append([]sim.ApplyEvent(nil), events...)
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].At.Before(evs[j].At) })
	var (
		ends                         []sim.ApplyEvent
		starts                       int
		all, issue, transit, same, x []float64
		t                            Turnover
		first                        time.Time
	)
	for _, e := range evs {
		if !e.Start {
			ends = append(ends, e)
			continue
		}
		starts++
		if starts == 1 {
			first = e.At
		}
		if starts == concurrency {
			t.FillMS = round1(ms(e.At.Sub(first)))
		}
		if starts <= concurrency || len(ends) == 0 {
			continue
		}
		end := ends[0]
		ends = ends[1:]
		gap := ms(e.At.Sub(end.At))
		all = append(all, gap)
		if !e.IssuedAt.IsZero() {
			issue = append(issue, ms(e.IssuedAt.Sub(end.At)))
			transit = append(transit, ms(e.At.Sub(e.IssuedAt)))
		}
		if e.ReplyTo == end.ReplyTo {
			same = append(same, gap)
		} else {
			x = append(x, gap)
		}
	}
	t.Pairs, t.SameBatch = len(all), len(same)
	if len(all) == 0 {
		return t
	}
	sum := 0.0
	for _, v := range all {
		sum += v
	}
	t.MeanMS = round1(sum / float64(len(all)))
	t.P50MS, t.P90MS = round1(percentile(all, 50)), round1(percentile(all, 90))
	t.IssueP50MS, t.TransitP50MS = round1(percentile(issue, 50)), round1(percentile(transit, 50))
	t.SameP50MS, t.CrossP50MS = round1(percentile(same, 50)), round1(percentile(x, 50))
	return t
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// observeApplies records the simulator's apply starts and ends until the
// returned function is called, which returns them.
func observeApplies(s *sim.Simulator) func() []sim.ApplyEvent {
	var evs []sim.ApplyEvent
	s.Observe(func(e sim.ApplyEvent) { evs = append(evs, e) })
	return func() []sim.ApplyEvent {
		s.Observe(nil)
		return evs
	}
}
