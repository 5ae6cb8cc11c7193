package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/fleet-rollout/fleet/internal/dashboard"
	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/starter/client"
	"github.com/fleet-rollout/fleet/workflows"
)

// fake records the actions it is asked for.
type fake struct {
	st      *client.Status
	actions []string
	actors  []string
}

func (f *fake) List(context.Context, bool) ([]client.Summary, error) {
	return []client.Summary{{ID: "rollout/r1", Name: "r1", Status: client.ExecRunning}}, nil
}

func (f *fake) Snapshot(context.Context, string) (*client.Status, error) {
	// A fresh copy, as each real read is.
	cp := *f.st
	cp.Phases = append([]workflows.PhaseStatus(nil), f.st.Phases...)
	for i := range cp.Phases {
		cp.Phases[i].Batches = append([]workflows.BatchStatus(nil), cp.Phases[i].Batches...)
	}
	return &cp, nil
}

func (f *fake) act(action string, req workflows.ActionRequest) (workflows.ActionResult, error) {
	if req.Reason == "" && action == workflows.Pause {
		return workflows.ActionResult{}, &client.RejectedError{Action: action, WorkflowID: "rollout/r1",
			Message: "a reason is required to pause", Err: temporal.NewApplicationError("a reason is required to pause", "rejected")}
	}
	f.actions, f.actors = append(f.actions, action), append(f.actors, req.Actor)
	return workflows.ActionResult{State: workflows.StatePaused, Message: action + "d"}, nil
}

func (f *fake) Pause(_ context.Context, _ string, r workflows.ActionRequest) (workflows.ActionResult, error) {
	return f.act(workflows.Pause, r)
}

func (f *fake) Resume(_ context.Context, _ string, r workflows.ActionRequest) (workflows.ActionResult, error) {
	return f.act(workflows.Resume, r)
}

func (f *fake) Abort(_ context.Context, _ string, r workflows.ActionRequest) (workflows.ActionResult, error) {
	return f.act(workflows.Abort, r)
}

func (f *fake) Approve(_ context.Context, _ string, r workflows.ApproveRequest) (workflows.ActionResult, error) {
	return f.act(workflows.Approve, workflows.ActionRequest{Actor: r.Actor, Reason: r.PlanHash})
}

// bigRollout has one batch of n clusters.
func bigRollout(n int) *client.Status {
	b := workflows.BatchStatus{Number: 1, Phase: "prod", State: workflows.BatchState("running")}
	for i := range n {
		b.Clusters = append(b.Clusters, workflows.ClusterStatus{ID: fmt.Sprintf("lkc-%05d", i), Product: "kafka", State: workflows.ClusterPending})
		b.Counts.Add(workflows.ClusterPending)
	}
	return &client.Status{RolloutStatus: workflows.RolloutStatus{ID: "rollout/r1", Name: "r1", State: workflows.StateRunning,
		Total: n, Counts: b.Counts, Phases: []workflows.PhaseStatus{{Name: "prod", State: "running", Batches: []workflows.BatchStatus{b}}}}}
}

func post(h http.Handler, path, body string, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestActionsIdentityAndCSRF(t *testing.T) {
	csrf := map[string]string{dashboard.CSRFHeader: "1"}
	for _, tc := range []struct {
		name   string
		opts   dashboard.Options
		hdr    map[string]string
		body   string
		code   int
		actor  string
		errSub string
	}{
		{name: "no CSRF header", opts: dashboard.Options{Open: true}, body: `{"reason":"x"}`, code: 403, errSub: "missing X-Fleet-Dashboard"},
		{name: "cross origin", opts: dashboard.Options{Open: true}, hdr: map[string]string{dashboard.CSRFHeader: "1", "Origin": "https://evil.example"}, body: `{"reason":"x"}`, code: 403, errSub: "cross-origin"},
		{name: "cross site", opts: dashboard.Options{Open: true}, hdr: map[string]string{dashboard.CSRFHeader: "1", "Sec-Fetch-Site": "cross-site"}, body: `{"reason":"x"}`, code: 403, errSub: "cross-site"},
		{name: "production without a header is read-only", opts: dashboard.Options{}, hdr: csrf, body: `{"reason":"x","actor":"alice"}`, code: 403, errSub: "FLEET_DASHBOARD_USER_HEADER"},
		{name: "proxy header missing", opts: dashboard.Options{UserHeader: "X-Forwarded-Email"}, hdr: csrf, body: `{"reason":"x"}`, code: 403, errSub: "X-Forwarded-Email is missing"},
		{name: "proxy header names the person; a typed actor is ignored", opts: dashboard.Options{UserHeader: "X-Forwarded-Email"},
			hdr: map[string]string{dashboard.CSRFHeader: "1", "X-Forwarded-Email": "alice@example.com"}, body: `{"reason":"x","actor":"bob"}`, code: 200, actor: "web:alice@example.com"},
		{name: "dev: typed actor", opts: dashboard.Options{Open: true}, hdr: csrf, body: `{"reason":"x","actor":"bob"}`, code: 200, actor: "bob"},
		{name: "dev: default actor", opts: dashboard.Options{Open: true}, hdr: csrf, body: `{"reason":"x"}`, code: 200, actor: dashboard.DefaultActor},
		{name: "rejection message", opts: dashboard.Options{Open: true}, hdr: csrf, body: `{"reason":""}`, code: 409, errSub: "refused: a reason is required to pause"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake{st: bigRollout(3)}
			tc.opts.Rollouts = f
			w := post(dashboard.New(tc.opts), "/api/rollouts/r1/pause", tc.body, tc.hdr)
			require.Equal(t, tc.code, w.Code, w.Body.String())
			if tc.errSub != "" {
				require.Contains(t, w.Body.String(), tc.errSub)
				require.Empty(t, f.actions, "nothing sent")
				return
			}
			require.Equal(t, []string{tc.actor}, f.actors)
		})
	}
	// GET never acts.
	f := &fake{st: bigRollout(3)}
	w := httptest.NewRecorder()
	dashboard.New(dashboard.Options{Rollouts: f, Open: true}).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/rollouts/r1/pause", nil))
	require.NotEqual(t, http.StatusOK, w.Code)
	require.Empty(t, f.actions)
}

// TestLargeRollout: 20,000 clusters; the status JSON carries no cluster and
// a batch's clusters come a page at a time.
func TestLargeRollout(t *testing.T) {
	f := &fake{st: bigRollout(20000)}
	h := dashboard.New(dashboard.Options{Rollouts: f})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/rollouts/r1", nil))
	require.Equal(t, 200, w.Code)
	require.NotContains(t, w.Body.String(), "lkc-")
	require.Less(t, w.Body.Len(), 4000)

	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/rollouts/r1/batches/1?page=3", nil))
	require.Equal(t, 200, w.Code)
	var p struct {
		Page, Pages, Listed int
		Clusters            []workflows.ClusterStatus
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
	require.Equal(t, 3, p.Page)
	require.Equal(t, 200, p.Pages)
	require.Equal(t, 20000, p.Listed)
	require.Len(t, p.Clusters, dashboard.PageSize)
	require.Equal(t, "lkc-00300", p.Clusters[0].ID)
}

func TestPagesRender(t *testing.T) {
	var inv []fleet.Cluster
	for i := range 20000 {
		inv = append(inv, fleet.Cluster{ID: fmt.Sprintf("lkc-%05d", i), Product: "kafka", Version: "3.6.1", Cloud: "aws", Region: "us-east-1", Environment: "prod"})
	}
	h := dashboard.New(dashboard.Options{Rollouts: &fake{st: bigRollout(10)}, Inventory: func(context.Context) ([]fleet.Cluster, error) { return inv, nil }})
	for path, want := range map[string]string{
		"/":                  "20000 clusters",
		"/rollouts":          `href="/rollouts/r1"`,
		"/rollouts/r1":       "FLEET_DASHBOARD_USER_HEADER",
		"/plan":              `name="spec"`,
		"/static/rollout.js": "X-Fleet-Dashboard",
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		require.Equal(t, 200, w.Code, path)
		require.Contains(t, w.Body.String(), want, path)
		require.NotContains(t, w.Body.String(), "lkc-", path)
	}
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/plan", strings.NewReader("spec=name%3A+r2%0Atarget%3A+%7Bversion%3A+3.7.1%7D%0Aselector%3A+product%3Dkafka%0Astrategy%3A+%7Bpreset%3A+canary-then-waves%7D%0A"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	h.ServeHTTP(w, r)
	require.Contains(t, w.Body.String(), "20,000 clusters to version 3.7.1")
}
