package app

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	sdkclient "go.temporal.io/sdk/client"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/fleet-rollout/fleet/internal/dashboard"
	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/inventory"
	"github.com/fleet-rollout/fleet/internal/monitors"
	"github.com/fleet-rollout/fleet/internal/notify"
	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/planstore"
	"github.com/fleet-rollout/fleet/internal/policy"
	"github.com/fleet-rollout/fleet/internal/redact"
	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/starter/client"
	"github.com/fleet-rollout/fleet/workflows"
)

// WebhookSecretHeader carries the shared secret of the Datadog webhook
// (configure it as a custom header of the webhook in Datadog).
const WebhookSecretHeader = "X-Fleet-Webhook-Secret"

// handler serves the worker's HTTP endpoints: /healthz, the Datadog monitor
// webhook (push detection) and Slack's interactivity requests.
func handler(cfg Config, c sdkclient.Client, log *zap.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics.HTTPHandler())
	}
	if cfg.WebhookSecret != "" {
		plans, err := cfg.OpenPlanStore()
		if err != nil {
			log.Error("Datadog webhook: the plan store does not open; alerts reach only batches whose rollout keeps its plan in history", zap.Error(err))
		}
		mux.Handle("POST /webhooks/datadog", &datadogWebhook{secret: cfg.WebhookSecret, temporal: c, log: log.Named("webhook"), catalog: monitors.Default(), plans: plans})
	} else {
		log.Info("no FLEET_WEBHOOK_SECRET: the Datadog webhook endpoint is off (polling only)")
	}
	if cfg.SlackSigningSecret != "" {
		cl := client.New(c)
		if signer, err := cfg.workerSigner(); err != nil {
			log.Error("Slack buttons: the worker's key does not load; requests go unsigned", zap.Error(err))
		} else if signer != nil {
			// The worker vouches for the Slack users whose requests it
			// verified (signature, team): policy access.services.
			cl = cl.WithSigner(signer)
		}
		var opts []notify.HandlerOption
		if cfg.SlackTeamID != "" {
			opts = append(opts, notify.WithTeamID(cfg.SlackTeamID))
		}
		mux.Handle("POST /slack/interactions", notify.NewInteractionHandler(cfg.SlackSigningSecret, slackActions{cl}, log.Named("slack"), opts...))
	} else {
		log.Info("no SLACK_SIGNING_SECRET: Slack buttons are off")
	}
	mux.Handle("/", dashboardHandler(cfg, c, log.Named("dashboard")))
	return mux
}

// dashboardHandler is the fleet dashboard (internal/dashboard). It acts
// for the person the authenticating proxy names in
// cfg.DashboardUserHeader, signing with the worker's key as a service
// vouching for "web:"; without the header it is read-only, except on the
// dev stack (open access).
func dashboardHandler(cfg Config, c sdkclient.Client, log *zap.Logger) http.Handler {
	cl := client.New(c)
	if plans, err := cfg.OpenPlanStore(); err != nil {
		log.Error("dashboard: the plan store does not open; pending clusters of stored plans are counted, not listed", zap.Error(err))
	} else if plans != nil {
		// Lists the pending clusters of rollouts whose plan is in the store.
		cl = cl.WithPlans(plans)
	}
	signer, err := cfg.workerSigner()
	switch {
	case err != nil:
		log.Error("dashboard: the worker's key does not load; requests go unsigned", zap.Error(err))
	case signer != nil:
		cl = cl.WithSigner(signer)
	}
	switch {
	case cfg.DashboardUserHeader != "":
		log.Info("dashboard acts for the person in the proxy's header", zap.String("header", cfg.DashboardUserHeader),
			zap.String("actorPrefix", dashboard.ActorPrefix), zap.Bool("signed", signer != nil))
	case cfg.Dev:
		log.Info("dashboard: dev stack, open access (the actor is typed on the page)")
	default:
		log.Info("dashboard is read-only: no FLEET_DASHBOARD_USER_HEADER")
	}
	inv := func(ctx context.Context) ([]fleet.Cluster, error) {
		src, err := inventory.Open(cfg.Inventory)
		if err != nil {
			return nil, redact.Error(err)
		}
		if cl, ok := src.(io.Closer); ok {
			defer cl.Close()
		}
		cs, err := src.List(ctx)
		if err != nil {
			return nil, redact.Error(err)
		}
		return cs, nil
	}
	return dashboard.New(dashboard.Options{
		Rollouts:    cl,
		Inventory:   inv,
		PlanOptions: planOptions(cfg.PolicyPath),
		UserHeader:  cfg.DashboardUserHeader,
		Open:        cfg.Dev,
		Log:         log,
	})
}

// planOptions plans as the worker does: the policy's protected clusters
// are left out, with the reason (unless an emergency forces them).
func planOptions(path string) func(*spec.Rollout, []fleet.Cluster) (plan.Options, error) {
	return func(r *spec.Rollout, inv []fleet.Cluster) (plan.Options, error) {
		var opts plan.Options
		if path == "" || (r.Emergency != nil && r.Emergency.ForceProtected) {
			return opts, nil
		}
		pol, err := policy.Load(path)
		if err != nil {
			return opts, fmt.Errorf("policy: %w", err)
		}
		opts.ProtectedWhy = map[string]string{}
		for _, c := range inv {
			if why, ok := pol.Protected(c); ok {
				opts.Protected = append(opts.Protected, c.ID)
				opts.ProtectedWhy[c.ID] = why
			}
		}
		return opts, nil
	}
}

// datadogWebhook turns a Datadog monitor notification into a signal to the
// batches that have the cluster in flight, so a rollout pauses without
// waiting for the next poll. The webhook's payload (Datadog's template):
//
//	{"transition":"$ALERT_TRANSITION","status":"$ALERT_STATUS","monitorId":"$ALERT_ID",
//	 "title":"$ALERT_TITLE","scope":"$ALERT_SCOPE","tags":"$TAGS"}
type datadogWebhook struct {
	secret   string
	temporal sdkclient.Client
	log      *zap.Logger
	catalog  []monitors.Monitor
	// plans is the plan store, where a rollout planned with an outline
	// keeps its batches' clusters.
	plans *planstore.Cache
}

type webhookPayload struct {
	Transition string `json:"transition"`
	Status     string `json:"status"`
	MonitorID  string `json:"monitorId"`
	Title      string `json:"title"`
	Scope      string `json:"scope"`
	Tags       string `json:"tags"`
}

func (h *datadogWebhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	got := r.Header.Get(WebhookSecretHeader)
	if subtle.ConstantTimeCompare([]byte(got), []byte(h.secret)) != 1 {
		http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, `{"error":"read body"}`, http.StatusBadRequest)
		return
	}
	var p webhookPayload
	if err := json.Unmarshal(body, &p); err != nil {
		http.Error(w, fmt.Sprintf(`{"error":%q}`, "bad JSON: "+err.Error()), http.StatusBadRequest)
		return
	}
	reply := func(code int, v map[string]any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	if !alerting(p) {
		reply(http.StatusAccepted, map[string]any{"ignored": "not an alert: " + p.Transition + " " + p.Status})
		return
	}
	cluster := clusterOf(p.Scope)
	if cluster == "" {
		cluster = clusterOf(p.Tags)
	}
	if cluster == "" {
		http.Error(w, `{"error":"no cluster:<id> in scope or tags"}`, http.StatusBadRequest)
		return
	}
	name := p.Title
	if id, err := strconv.ParseInt(p.MonitorID, 10, 64); err == nil {
		found := false
		for _, m := range h.catalog {
			if m.ID == id {
				name, found = m.Name, true
			}
		}
		if !found {
			reply(http.StatusAccepted, map[string]any{"ignored": "monitor " + p.MonitorID + " is not rollout-critical"})
			return
		}
	}
	n, err := h.signal(r.Context(), cluster, workflows.MonitorAlert{ClusterID: cluster, Monitor: name, Status: "Alert", Message: p.Title, At: time.Now().UTC()})
	if err != nil {
		h.log.Error("signal batches", zap.String("cluster", cluster), zap.Error(err))
		http.Error(w, `{"error":"temporal unavailable"}`, http.StatusServiceUnavailable)
		return
	}
	h.log.Info("monitor alert pushed", zap.String("cluster", cluster), zap.String("monitor", name), zap.Int("batches", n))
	reply(http.StatusAccepted, map[string]any{"cluster": cluster, "monitor": name, "batches": n})
}

func alerting(p webhookPayload) bool {
	t := strings.ToLower(p.Transition)
	return strings.Contains(t, "triggered") || strings.EqualFold(p.Status, "alert") || t == "alert"
}

// clusterOf finds "cluster:<id>" in a comma-separated scope or tag list.
func clusterOf(s string) string {
	for _, part := range strings.Split(s, ",") {
		if id, ok := strings.CutPrefix(strings.TrimSpace(part), "cluster:"); ok && id != "" {
			return id
		}
	}
	return ""
}

const (
	// webhookTimeout bounds finding and signalling the batches of one alert
	// (on top of the request's own context): Datadog waits for the answer.
	webhookTimeout = 5 * time.Second
	// webhookQueries is how many rollouts are queried at once.
	webhookQueries = 8
)

// signal finds the running batches that hold the cluster and signals each.
// Batches do not list their clusters in a search attribute (a list of IDs
// breaks the 2 KB value limit above ~200 clusters), so it lists the running
// rollouts through visibility and asks each, with the QueryClusterBatch
// query, which of its running batches holds the cluster. Rollouts are asked
// concurrently (webhookQueries at a time), the whole within webhookTimeout.
//
// A rollout that cannot be asked (its worker is down, the deadline passed)
// is skipped with a warning; if no batch was found and some rollout could
// not be asked, signal fails (the webhook answers 503, Datadog retries): the
// cluster may be in that rollout.
func (h *datadogWebhook) signal(ctx context.Context, cluster string, al workflows.MonitorAlert) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, webhookTimeout)
	defer cancel()
	rollouts, err := h.runningRollouts(ctx)
	if err != nil {
		return 0, err
	}
	batches := make([]string, len(rollouts))
	failed := make([]error, len(rollouts))
	var g errgroup.Group
	g.SetLimit(webhookQueries)
	for i, id := range rollouts {
		g.Go(func() error {
			batches[i], failed[i] = h.batchOf(ctx, id, cluster)
			return nil
		})
	}
	_ = g.Wait()

	n, found := 0, 0
	var errs []error
	for i, id := range rollouts {
		if err := failed[i]; err != nil {
			h.log.Warn("ask rollout for the cluster's batch", zap.String("rollout", id), zap.String("cluster", cluster), zap.Error(err))
			errs = append(errs, err)
			continue
		}
		b := batches[i]
		if b == "" {
			continue
		}
		found++
		if err := h.temporal.SignalWorkflow(ctx, b, "", workflows.SignalMonitorAlert, al); err != nil {
			h.log.Warn("signal batch", zap.String("workflow", b), zap.Error(err))
			errs = append(errs, fmt.Errorf("signal %s: %w", b, err))
			continue
		}
		n++
	}
	if n == 0 && len(errs) > 0 {
		return 0, fmt.Errorf("batches of %s (%d rollouts running, %d batches found): %w", cluster, len(rollouts), found, errors.Join(errs...))
	}
	return n, nil
}

// runningRollouts lists the IDs of the running Rollout workflows, every page.
func (h *datadogWebhook) runningRollouts(ctx context.Context) ([]string, error) {
	return runningRollouts(ctx, h.temporal)
}

// batchOf asks rollout id which of its running batches holds cluster ("" if
// none). A rollout that ended meanwhile holds none.
func (h *datadogWebhook) batchOf(ctx context.Context, id, cluster string) (string, error) {
	return BatchHolding(ctx, h.temporal, h.plans, id, cluster)
}

// BatchHolding returns the workflow ID of rollout id's running batch that
// holds cluster ("" if none; a rollout that ended meanwhile holds none). It
// asks the rollout (QueryClusterBatch) and, for the batches whose clusters
// are in the plan store, reads them from plans (QueryOpenBatches).
func BatchHolding(ctx context.Context, c sdkclient.Client, plans *planstore.Cache, id, cluster string) (string, error) {
	v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryClusterBatch, cluster)
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return "", nil
		}
		return "", fmt.Errorf("query %s: %w", id, err)
	}
	var b string
	if err := v.Get(&b); err != nil {
		return "", fmt.Errorf("decode the answer of %s: %w", id, err)
	}
	if b != "" {
		return b, nil
	}
	return storedBatchOf(ctx, c, plans, id, cluster)
}

// storedBatchOf finds the cluster among rollout id's running batches whose
// clusters are in the plan store (QueryOpenBatches).
func storedBatchOf(ctx context.Context, c sdkclient.Client, plans *planstore.Cache, id, cluster string) (string, error) {
	v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryOpenBatches)
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return "", nil
		}
		return "", fmt.Errorf("query %s: %w", id, err)
	}
	var ob workflows.OpenBatches
	if err := v.Get(&ob); err != nil {
		return "", fmt.Errorf("decode the open batches of %s: %w", id, err)
	}
	if ob.Plan == "" || len(ob.Running) == 0 {
		return "", nil
	}
	if plans == nil {
		return "", fmt.Errorf("rollout %s keeps its plan %s in the plan store, and this worker has none", id, ob.Plan)
	}
	p, err := plans.Plan(ctx, ob.Plan)
	if err != nil {
		return "", fmt.Errorf("rollout %s: %w", id, err)
	}
	for _, n := range ob.Running {
		ts, _ := p.BatchTargets(n)
		for _, t := range ts {
			if t.ClusterID == cluster {
				return workflows.BatchID(id, n), nil
			}
		}
	}
	return "", nil
}

// slackActions carries Slack button presses to the rollout's updates.
type slackActions struct{ c *client.Client }

func (s slackActions) Pause(ctx context.Context, id, actor, reason string) (string, error) {
	res, err := s.c.Pause(ctx, id, workflows.ActionRequest{Actor: actor, Reason: reason})
	return res.Message, err
}

func (s slackActions) Resume(ctx context.Context, id, actor, reason string) (string, error) {
	res, err := s.c.Resume(ctx, id, workflows.ActionRequest{Actor: actor, Reason: reason})
	return res.Message, err
}

func (s slackActions) Abort(ctx context.Context, id, actor, reason string) (string, error) {
	res, err := s.c.Abort(ctx, id, workflows.ActionRequest{Actor: actor, Reason: reason})
	return res.Message, err
}

func (s slackActions) Approve(ctx context.Context, id, actor, planHash, phase string) (string, error) {
	res, err := s.c.Approve(ctx, id, workflows.ApproveRequest{Actor: actor, PlanHash: planHash, Phase: phase, Comment: "via Slack"})
	return res.Message, err
}
