// Package activities holds the rollout's side effects: planning against the
// inventory, publishing commands to the data plane over Kafka, reading
// cluster health from Datadog monitors, and telling people in Slack. Each is
// a method on Activities, a struct of dependencies built once by the worker.
package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadog"
	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/internal/events"
	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/fresh"
	"github.com/fleet-rollout/fleet/internal/inventory"
	"github.com/fleet-rollout/fleet/internal/metrics"
	"github.com/fleet-rollout/fleet/internal/monitors"
	"github.com/fleet-rollout/fleet/internal/notify"
	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/planstore"
	"github.com/fleet-rollout/fleet/internal/sigauth"
	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/workflows"
)

// MonitoringOffNotice ends every notification of a worker whose monitoring
// is off (FLEET_MONITORING=off).
const MonitoringOffNotice = "Monitoring is off (FLEET_MONITORING=off): no health check gates this rollout."

// CriticalTag marks the monitors that gate a rollout.
const CriticalTag = "fleet:rollout-critical"

// Activities are the rollout's side effects and their dependencies.
type Activities struct {
	// Kafka produces commands to dataplane.CommandsTopic.
	Kafka *kgo.Client
	// Inventory lists the fleet for planning.
	Inventory inventory.Source
	// Datadog reads monitors; nil disables health checks (every check passes
	// with a warning in the log), which only the dev stack may choose, or a
	// production worker with monitoring off explicitly (MonitoringOff).
	Datadog *Datadog
	// MonitoringOff says monitoring was turned off on purpose
	// (FLEET_MONITORING=off): health checks are skipped at once, and every
	// notification says monitoring is off.
	MonitoringOff bool
	// Catalog lists each product's critical monitors.
	Catalog []monitors.Monitor
	// Notifier posts notifications (Slack, or the log).
	Notifier notify.Notifier
	// Events publishes rollout state changes to fleet.events; Audit publishes
	// every action (who, when, what, why, outcome) to fleet.audit.
	Events *events.Publisher
	Audit  *events.Publisher
	// Temporal finds the clusters other running rollouts hold; nil skips that.
	Temporal client.Client
	// PolicyPath is the policy file (windows, blackouts, protection,
	// access); empty means no policy.
	PolicyPath string
	// Signals makes the commands' reply tokens (nil: none, the dev stack
	// without a signal key).
	Signals *sigauth.Keys
	Log     *zap.Logger
	// Metrics records the monitor reads' latency and failures (nil: none).
	Metrics *metrics.Metrics
	// InventoryTimeout bounds one inventory read (default
	// DefaultInventoryTimeout), within the activity's own deadline.
	InventoryTimeout time.Duration
	// NotifyTimeout bounds one notification (default DefaultNotifyTimeout),
	// below the Notify activity's 30 s StartToClose, so that a Slack that
	// does not answer fails the attempt and Temporal retries it.
	NotifyTimeout time.Duration

	// Plans is the plan store (with the plans recently read): the full plan
	// of every rollout planned through PlanOutline. Nil: PlanOutline and the
	// loads fail, naming the plan.
	Plans *planstore.Cache

	// policyCache keeps the last good policy (see loadPolicy).
	policyCache policyCache
}

// Deadlines of outside calls, each shorter than the activity it is made in.
const (
	// DefaultInventoryTimeout: the Clusters activity has a minute.
	DefaultInventoryTimeout = 20 * time.Second
	// DefaultNotifyTimeout: the Notify activity has 30 s.
	DefaultNotifyTimeout = 20 * time.Second
	// DefaultDatadogRequestTimeout bounds one Datadog request.
	DefaultDatadogRequestTimeout = 5 * time.Second
	// DefaultHealthReadTimeout bounds one shared monitors read (every
	// page): as long as the longest health check (30 s).
	DefaultHealthReadTimeout = 30 * time.Second
	// DefaultHealthRosterTimeout bounds one roster read (every group of a
	// product's monitors, page by page, each page under it too): a large
	// fleet's roster is megabytes a page (100,000 clusters: 658,000 kafka
	// groups, 11.5 s to read on an idle 2-core machine). It feeds no grace:
	// checks use the last roster meanwhile, and each waits only within
	// its own deadline.
	DefaultHealthRosterTimeout = 2 * time.Minute
)

// listInventory reads the inventory within InventoryTimeout.
func (a *Activities) listInventory(ctx context.Context) ([]fleet.Cluster, error) {
	return a.readInventory(ctx, a.Inventory.List)
}

// findInventory looks the clusters up by ID (inventory.Find: no batch reads
// the whole fleet when the inventory can look up) within InventoryTimeout.
func (a *Activities) findInventory(ctx context.Context, ids []string) ([]fleet.Cluster, error) {
	return a.readInventory(ctx, func(ctx context.Context) ([]fleet.Cluster, error) {
		return inventory.Find(ctx, a.Inventory, ids)
	})
}

// readInventory runs one inventory read within InventoryTimeout, naming the
// timeout when it ran out.
func (a *Activities) readInventory(ctx context.Context, read func(context.Context) ([]fleet.Cluster, error)) ([]fleet.Cluster, error) {
	d := a.InventoryTimeout
	if d <= 0 {
		d = DefaultInventoryTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	cs, err := read(ctx)
	if err != nil && errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("%w (inventory read timeout %s)", err, d)
	}
	return cs, err
}

// Register registers every activity on a worker under the names the
// workflows call.
func (a *Activities) Register(r interface {
	RegisterActivityWithOptions(any, activity.RegisterOptions)
}) {
	r.RegisterActivityWithOptions(a.Plan, activity.RegisterOptions{Name: workflows.ActivityPlan})
	r.RegisterActivityWithOptions(a.Publish, activity.RegisterOptions{Name: workflows.ActivityPublish})
	r.RegisterActivityWithOptions(a.CheckHealth, activity.RegisterOptions{Name: workflows.ActivityCheckHealth})
	r.RegisterActivityWithOptions(a.Notify, activity.RegisterOptions{Name: workflows.ActivityNotify})
	r.RegisterActivityWithOptions(a.Emit, activity.RegisterOptions{Name: workflows.ActivityEmit})
	r.RegisterActivityWithOptions(a.AwaitHandover, activity.RegisterOptions{Name: workflows.ActivityAwaitHandover})
	r.RegisterActivityWithOptions(a.GrantSlots, activity.RegisterOptions{Name: workflows.ActivityGrantSlots})
	a.registerPolicy(r)
	a.registerPlanStore(r)
}

// Plan validates the spec, reads the inventory and builds the plan. A spec
// that does not validate fails for good (error type InvalidSpec).
func (a *Activities) Plan(ctx context.Context, in workflows.PlanInput) (*plan.Plan, error) {
	return a.plan(ctx, in, false)
}

// plan builds the plan; outline says it goes to the plan store (its outline
// is what must fit in history: plan.Options.Outline).
func (a *Activities) plan(ctx context.Context, in workflows.PlanInput, outline bool) (*plan.Plan, error) {
	r, err := revalidate(in.Spec.Spec)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidSpec", err)
	}
	clusters, err := a.listInventory(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan %s: list inventory: %w", in.RolloutID, err)
	}
	opts := plan.Options{Outline: outline}
	force := r.Emergency != nil && r.Emergency.ForceProtected
	if opts.Protected, opts.ProtectedWhy, err = a.protections(in, force, clusters); err != nil {
		return nil, err
	}
	if opts.Busy, err = a.busyClusters(ctx, in.RolloutID); err != nil {
		return nil, fmt.Errorf("plan %s: %w", in.RolloutID, err)
	}
	if rec := in.Spec.Recovery; rec != nil {
		p, err := a.planRecovery(ctx, in, r, rec, clusters, opts)
		if err != nil {
			return nil, err
		}
		a.Log.Info("planned recovery", zap.String("rollout", in.RolloutID), zap.String("kind", string(rec.Kind)),
			zap.String("of", rec.Of), zap.String("plan", p.Hash), zap.Int("clusters", p.Total))
		return p, nil
	}
	if metrics := r.OrderMetrics(); len(metrics) > 0 {
		if a.Datadog == nil {
			return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("plan %s: orderBy %v needs Datadog metrics, and no Datadog is configured", in.RolloutID, metrics), "InvalidSpec", nil)
		}
		opts.MetricsByName = map[string]map[string]float64{}
		for _, m := range metrics {
			vals, err := a.Datadog.ClusterMetrics(ctx, m, "", nil)
			if err != nil {
				return nil, fmt.Errorf("plan %s: read metric %s: %w", in.RolloutID, m, err)
			}
			opts.MetricsByName[m] = vals
		}
	}
	p, err := plan.Build(r, clusters, opts)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("plan %s: %v", in.RolloutID, err), "InvalidSpec", err)
	}
	a.Log.Info("planned rollout", zap.String("rollout", in.RolloutID), zap.String("plan", p.Hash),
		zap.Int("clusters", p.Total), zap.Int("phases", len(p.Phases)), zap.Int("inventory", len(clusters)),
		zap.Int("busyElsewhere", len(opts.Busy)))
	return p, nil
}

// revalidate runs a spec that arrived as a workflow input (from any client,
// not only the fleet CLI) through the same parser and checks as a file.
func revalidate(r spec.Rollout) (*spec.Rollout, error) {
	b, err := yaml.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode spec: %w", err)
	}
	out, err := spec.Parse("input", b)
	if err != nil {
		return nil, err
	}
	out.Normalize()
	return out, nil
}

// ProducerOptions are the options of the worker's Kafka client, which
// Publish (and the events and audit publishers) produce with.
//
// The client is idempotent (franz-go's default), and by default franz-go
// refuses to fail a record that was written to a broker without an answer
// yet: its outcome is unknown. When Kafka goes away mid-request (the broker
// stops, drops the connection, or stops answering), ProduceSync then ignores
// its context and waits until Kafka answers again, so Publish outlived its
// StartToClose timeout and held a worker slot for the whole outage (for good,
// if that broker never came back).
// AllowIdempotentProduceCancellation lets the context (the activity's
// deadline, or its cancellation) fail such records, so Publish returns with
// an error and Temporal retries it. The cost is that a cancelled record may
// still land and a retry land again: commands are idempotent by generation
// (the data plane applies a generation at most once), and a retried activity
// produces its records again in any case.
//
// extra (TLS and SASL, see internal/connect) is appended.
func ProducerOptions(brokers []string, extra ...kgo.Opt) []kgo.Opt {
	return append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.DefaultProduceTopic(dataplane.CommandsTopic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.AllowIdempotentProduceCancellation(),
	}, extra...)
}

// publishCancelGrace bounds how long Publish waits, once its context is
// done, for the Kafka client to give up on the records it has not delivered.
const publishCancelGrace = 10 * time.Second

// Publish produces the commands to the data plane, keyed by cluster, and
// returns once Kafka acknowledged every one of them, or with an error once
// ctx is done (see ProducerOptions).
func (a *Activities) Publish(ctx context.Context, in workflows.PublishInput) error {
	records := make([]*kgo.Record, 0, len(in.Commands))
	for _, c := range in.Commands {
		if err := c.Validate(); err != nil {
			return temporal.NewNonRetryableApplicationError(err.Error(), "InvalidCommand", err)
		}
		if a.Signals != nil && c.ReplyTo != "" {
			// Made here, never in history: only this system can make it.
			c.ReplyToken = a.Signals.CommandToken(c.ReplyTo, c.ClusterID, c.Generation)
		}
		v, err := dataplane.Encode(c)
		if err != nil {
			return err
		}
		records = append(records, &kgo.Record{Topic: dataplane.CommandsTopic, Key: []byte(c.ClusterID), Value: v})
	}
	// ProduceSync, bounded: once ctx is done the client fails the records
	// (ProducerOptions), usually within seconds, at its next attempt to
	// reach Kafka. Publish waits for that, so that no record of this call is
	// left in the client's buffer to fail a retry's records behind it on the
	// same partition, but at most publishCancelGrace: it never hangs.
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		released = make(chan struct{})
	)
	wg.Add(len(records))
	for _, r := range records {
		a.Kafka.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
			wg.Done()
		})
	}
	go func() { wg.Wait(); close(released) }()
	select {
	case <-released:
	case <-ctx.Done():
		grace := time.NewTimer(publishCancelGrace)
		defer grace.Stop()
		select {
		case <-released:
		case <-grace.C:
			return fmt.Errorf("publish %d commands: Kafka did not acknowledge them before the deadline, and the client still holds them %s later: %w",
				len(records), publishCancelGrace, context.Cause(ctx))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		return fmt.Errorf("publish %d commands: %w", len(records), firstErr)
	}
	return nil
}

// Datadog reads monitors with the official client.
type Datadog struct {
	api    *datadogV1.MonitorsApi
	apiKey string
	appKey string
	site   string
	url    string
	// timeout bounds each request (DatadogConfig.RequestTimeout).
	timeout time.Duration

	// Datadog's rate-limit headers: once a window is used up (or a 429
	// arrives), no request goes out before the window resets.
	mu       sync.Mutex
	resumeAt time.Time
	// limitedBy says what set resumeAt ("HTTP 429", ...).
	limitedBy string

	// reads shares each product's monitors read between the health checks
	// on the worker (see productHealth), starting one at most every
	// DatadogConfig.HealthReadSpacing; pageSize is how many monitors a
	// page asks for (0: monitorsPageSize).
	reads    fresh.Group[string, productMonitors]
	pageSize int32
	// rosters shares each product's roster (which groups exist), reused
	// while at most rosterMaxAge old (DatadogConfig.HealthRosterMaxAge),
	// read anew for a check that meets a group it lacks.
	rosters      fresh.Group[string, productRoster]
	rosterMaxAge time.Duration
	// rosterPageSize is how many monitors a page of a roster read asks for.
	rosterPageSize int32
	// refreshing holds the products whose roster is being read in the
	// background (see refreshRoster); rosterTook how long each product's
	// last roster read took (see rosterAge).
	refreshing  map[string]bool
	rosterTook  map[string]time.Duration
	rosterShare int
}

// RateLimitedError is a monitor read that did not go out because Datadog's
// rate-limit window resets too late for the read's deadline. CheckHealth returns it
// as an ApplicationError of type "RateLimited" whose NextRetryDelay is Wait.
type RateLimitedError struct {
	// By says what Datadog answered ("HTTP 429", ...); Wait is how long
	// until the window resets.
	By   string
	Wait time.Duration
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("Datadog rate limit (%s) resets in %s, too late for this read's deadline", e.By, e.Wait.Round(time.Millisecond))
}

// rateLimit is how long until the rate-limit window allows a request (0:
// now), and what Datadog answered that closed it.
func (d *Datadog) rateLimit() (time.Duration, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return max(time.Until(d.resumeAt), 0), d.limitedBy
}

// waitForRateLimit blocks until the rate-limit window allows a request. A
// window that resets too late for a read to follow it within ctx's deadline
// (after the deadline less the time a read needs: the read spacing and one
// request timeout, at most half the time left) fails at once, saying what
// Datadog answered, rather than waiting out the deadline.
func (d *Datadog) waitForRateLimit(ctx context.Context) error {
	wait, by := d.rateLimit()
	if wait <= 0 {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if wait+min(d.reads.Spacing+d.timeout, left/2) > left {
			return &RateLimitedError{By: by, Wait: wait}
		}
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting %s for the Datadog rate limit (%s) to reset: %w", wait.Round(time.Millisecond), by, context.Cause(ctx))
	}
}

// observeRateLimit reads X-RateLimit-Remaining / X-RateLimit-Reset.
func (d *Datadog) observeRateLimit(resp *http.Response) {
	if resp == nil {
		return
	}
	if resp.StatusCode != http.StatusTooManyRequests && resp.Header.Get("X-RateLimit-Remaining") != "0" {
		return
	}
	secs, err := strconv.Atoi(resp.Header.Get("X-RateLimit-Reset"))
	if err != nil || secs < 0 {
		secs = 1
	}
	until := time.Now().Add(time.Duration(secs) * time.Second)
	by := fmt.Sprintf("HTTP %d", resp.StatusCode)
	if resp.StatusCode != http.StatusTooManyRequests {
		by += ", X-RateLimit-Remaining: 0"
	}
	d.mu.Lock()
	if until.After(d.resumeAt) {
		d.resumeAt, d.limitedBy = until, by
	}
	d.mu.Unlock()
}

// DatadogConfig says where Datadog is and how to authenticate.
type DatadogConfig struct {
	APIKey string
	AppKey string
	// Site is a Datadog site such as datadoghq.com or datadoghq.eu.
	Site string
	// URL overrides the site with a Datadog-compatible endpoint, e.g.
	// http://127.0.0.1:8090 (the dev stack's monitors endpoint).
	URL string
	// HTTPClient is optional; its Timeout, when zero, is set to
	// RequestTimeout (on a copy).
	HTTPClient *http.Client
	// RequestTimeout bounds each request to Datadog, from the connection to
	// the end of the answer (default DefaultDatadogRequestTimeout), and so
	// does the activity's deadline: an endpoint that accepts the connection
	// and never answers fails the read within it.
	RequestTimeout time.Duration
	// HealthReadSpacing is the least time between two reads of a
	// product's monitors: every health check is answered by a read that
	// began after it asked, and the checks that ask while one is in flight
	// (every batch on the worker) share the next (default
	// DefaultHealthReadSpacing; negative: none).
	HealthReadSpacing time.Duration
	// HealthReadTimeout bounds one shared read of a product's monitors
	// (every page of it), from its start: its own deadline, not that of
	// the check that happened to start it; each check waits for it only
	// within its own (default DefaultHealthReadTimeout).
	HealthReadTimeout time.Duration
	// HealthRosterMaxAge is how old a product's roster (the read of all
	// its monitors' groups, which tells which groups exist) may be when a
	// check uses it: the frequent read asks only the groups that are not
	// OK, and a group the roster has is OK when the frequent read lacks
	// it; a group the roster lacks makes the check read it anew (default
	// DefaultHealthRosterMaxAge; negative: a roster read per check, as
	// fresh as the frequent read). A roster read runs under
	// HealthReadTimeout and HealthReadSpacing like the frequent read.
	HealthRosterMaxAge time.Duration
	// HealthRosterPageSize is how many monitors a page of a roster read
	// asks for (default DefaultHealthRosterPageSize): a roster page holds
	// every group of its monitors, one per cluster of the product, so
	// small pages bound what one response holds in the worker's memory.
	HealthRosterPageSize int32
	// HealthRosterTimeout bounds one roster read, every page of it, and
	// each of its pages (default DefaultHealthRosterTimeout): a roster
	// page is megabytes in a large fleet, far past RequestTimeout.
	HealthRosterTimeout time.Duration
	// HealthRosterReadShare bounds the share of the time a product's
	// roster is read: a roster may be as old as this many times its last
	// read's duration when that is longer than HealthRosterMaxAge (default
	// DefaultHealthRosterReadShare; negative: HealthRosterMaxAge only).
	HealthRosterReadShare int
}

// DefaultHealthRosterReadShare is DatadogConfig.HealthRosterReadShare's
// default: a roster read at most a tenth of the time.
const DefaultHealthRosterReadShare = 10

// DefaultHealthRosterPageSize is DatadogConfig.HealthRosterPageSize's
// default: at 20,000 clusters a page of 2 monitors is about 2 MB of JSON.
const DefaultHealthRosterPageSize = 2

// NewDatadog builds a monitors reader.
func NewDatadog(cfg DatadogConfig) (*Datadog, error) {
	if cfg.APIKey == "" || cfg.AppKey == "" {
		return nil, errors.New("datadog: API key and application key are required")
	}
	timeout := cfg.RequestTimeout
	if timeout <= 0 {
		timeout = DefaultDatadogRequestTimeout
	}
	c := datadog.NewConfiguration()
	c.RetryConfiguration.EnableRetry = false // Temporal and the poll loop retry.
	hc := &http.Client{Timeout: timeout}
	if cfg.HTTPClient != nil {
		cp := *cfg.HTTPClient
		if cp.Timeout <= 0 {
			cp.Timeout = timeout
		}
		hc = &cp
	}
	c.HTTPClient = hc
	spacing := cfg.HealthReadSpacing
	switch {
	case spacing == 0:
		spacing = DefaultHealthReadSpacing
	case spacing < 0:
		spacing = 0
	}
	d := &Datadog{api: datadogV1.NewMonitorsApi(datadog.NewAPIClient(c)), apiKey: cfg.APIKey, appKey: cfg.AppKey, site: cfg.Site, url: cfg.URL,
		timeout: timeout}
	d.reads.Spacing = spacing
	d.reads.Timeout = cfg.HealthReadTimeout
	if d.reads.Timeout <= 0 {
		d.reads.Timeout = DefaultHealthReadTimeout
	}
	d.rosters.Spacing, d.rosters.Timeout = d.reads.Spacing, cfg.HealthRosterTimeout
	if d.rosters.Timeout <= 0 {
		d.rosters.Timeout = DefaultHealthRosterTimeout
	}
	if d.rosterPageSize = cfg.HealthRosterPageSize; d.rosterPageSize <= 0 {
		d.rosterPageSize = DefaultHealthRosterPageSize
	}
	switch d.rosterShare = cfg.HealthRosterReadShare; {
	case d.rosterShare == 0:
		d.rosterShare = DefaultHealthRosterReadShare
	case d.rosterShare < 0:
		d.rosterShare = 0
	}
	switch d.rosterMaxAge = cfg.HealthRosterMaxAge; {
	case d.rosterMaxAge == 0:
		d.rosterMaxAge = DefaultHealthRosterMaxAge
	case d.rosterMaxAge < 0:
		d.rosterMaxAge = 0
	}
	return d, nil
}

// request bounds one request by the request timeout (and ctx's deadline)
// and adds the keys and endpoint; call cancel once the answer is read.
func (d *Datadog) request(ctx context.Context) (context.Context, context.CancelFunc) {
	return d.requestWithin(ctx, d.timeout)
}

// requestWithin is request with a timeout of its own (0: the request
// timeout).
func (d *Datadog) requestWithin(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		timeout = d.timeout
	}
	if timeout <= 0 {
		timeout = DefaultDatadogRequestTimeout
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("datadog: no answer within the request timeout %s", timeout))
	return d.context(ctx), cancel
}

func (d *Datadog) context(ctx context.Context) context.Context {
	ctx = context.WithValue(ctx, datadog.ContextAPIKeys, map[string]datadog.APIKey{
		"apiKeyAuth": {Key: d.apiKey},
		"appKeyAuth": {Key: d.appKey},
	})
	if d.url != "" {
		protocol, host, ok := strings.Cut(d.url, "://")
		if !ok {
			protocol, host = "https", d.url
		}
		ctx = context.WithValue(ctx, datadog.ContextServerIndex, 1)
		ctx = context.WithValue(ctx, datadog.ContextServerVariables, map[string]string{"protocol": protocol, "name": strings.TrimSuffix(host, "/")})
	} else if d.site != "" {
		ctx = context.WithValue(ctx, datadog.ContextServerVariables, map[string]string{"site": d.site})
	}
	return ctx
}

// Notify posts one message to the rollout's thread (the first message starts
// it). Errors that retrying cannot fix (a bad token, an unknown channel) end
// the attempts.
func (a *Activities) Notify(ctx context.Context, n workflows.Notification) (workflows.NotifyResult, error) {
	timeout := a.NotifyTimeout
	if timeout <= 0 {
		timeout = DefaultNotifyTimeout
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if a.MonitoringOff {
		n.Text = strings.TrimSpace(n.Text + "\n" + MonitoringOffNotice)
	}
	ts, err := a.Notifier.Post(pctx, n)
	if err != nil {
		if notify.IsPermanent(err) {
			return workflows.NotifyResult{}, temporal.NewNonRetryableApplicationError(err.Error(), "PermanentNotifyError", err)
		}
		if d, ok := notify.RetryAfter(err); ok {
			return workflows.NotifyResult{}, temporal.NewApplicationErrorWithOptions(err.Error(), "RateLimited", temporal.ApplicationErrorOptions{NextRetryDelay: d, Cause: err})
		}
		return workflows.NotifyResult{}, err
	}
	return workflows.NotifyResult{ThreadTS: ts}, nil
}

// Emit publishes rollout state changes to fleet.events.
func (a *Activities) Emit(ctx context.Context, in workflows.EmitInput) error {
	if a.Events == nil {
		return nil
	}
	var log, audit []workflows.Event
	for _, e := range in.Events {
		if e.Kind == workflows.EventAction {
			audit = append(audit, e)
		} else {
			log = append(log, e)
		}
	}
	if err := a.Events.Publish(ctx, log); err != nil {
		return fmt.Errorf("emit %d events: %w", len(log), err)
	}
	if a.Audit != nil {
		if err := a.Audit.Publish(ctx, audit); err != nil {
			return fmt.Errorf("emit %d audit entries: %w", len(audit), err)
		}
	}
	return nil
}

// busyClusters maps the clusters other running rollouts still have to do (or
// are doing) to those rollouts, so a new plan leaves them out.
func (a *Activities) busyClusters(ctx context.Context, self string) (map[string]string, error) {
	if a.Temporal == nil {
		return nil, nil
	}
	busy := map[string]string{}
	var token []byte
	for {
		resp, err := a.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query:         "WorkflowType = '" + workflows.WorkflowRollout + "' AND ExecutionStatus = 'Running'",
			NextPageToken: token,
		})
		if err != nil {
			return nil, fmt.Errorf("list running rollouts: %w", err)
		}
		for _, e := range resp.Executions {
			id := e.GetExecution().GetWorkflowId()
			if id == self {
				continue
			}
			v, err := a.Temporal.QueryWorkflow(ctx, id, "", workflows.QueryClusters)
			if err != nil {
				var nf *serviceerror.NotFound
				if errors.As(err, &nf) {
					continue // finished meanwhile
				}
				return nil, fmt.Errorf("clusters of %s: %w", id, err)
			}
			var ids []string
			if err := v.Get(&ids); err != nil {
				return nil, fmt.Errorf("decode clusters of %s: %w", id, err)
			}
			for _, c := range ids {
				busy[c] = id
			}
			if err := a.openInStore(ctx, id, busy); err != nil {
				return nil, err
			}
		}
		token = resp.NextPageToken
		if len(token) == 0 {
			return busy, nil
		}
	}
}

func forProduct(catalog []monitors.Monitor, product string) []monitors.Monitor {
	var out []monitors.Monitor
	for _, m := range catalog {
		if m.Product == product {
			out = append(out, m)
		}
	}
	return out
}

// heartbeat records an activity heartbeat every interval until stop is
// called.
func heartbeat(ctx context.Context, every time.Duration) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return func() { close(done) }
}
