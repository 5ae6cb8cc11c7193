// Package dashboard serves the fleet dashboard: the fleet's versions, the
// rollouts, each rollout's live progress with its batches' clusters on
// demand, a plan preview, and the pause, resume, abort and approve buttons.
// Pages are server-rendered html/template with a little vanilla JavaScript;
// nothing renders every cluster of a rollout or of the fleet at once.
//
// Identity: the dashboard acts only for a person an authenticating proxy in
// front of the worker names in a header (Options.UserHeader), as the actor
// "web:<user>", signed by the worker's key as a service that the policy
// lets vouch for "web:". Without that header the buttons are off, except on
// the open dev stack (Options.Open), where the actor is typed or
// "dashboard".
package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/internal/drift"
	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/starter/client"
	"github.com/fleet-rollout/fleet/workflows"
)

// ActorPrefix is the prefix of the actors the dashboard acts for: the
// policy lets the worker's key vouch for it (access.services vouch).
const ActorPrefix = "web:"

// DefaultActor is the actor on the open dev stack when none is typed.
const DefaultActor = "dashboard"

// CSRFHeader must be on every request that changes something: the page's
// JavaScript sets it, and a browser does not let another site set it
// without a CORS preflight the worker never grants.
const CSRFHeader = "X-Fleet-Dashboard"

// PageSize is how many clusters a batch page shows.
const PageSize = 100

// auditTail and incidentTail bound what the rollout page shows.
const (
	auditTail    = 20
	incidentTail = 20
)

// Rollouts is what the dashboard needs of the rollouts client
// (starter/client.Client).
type Rollouts interface {
	List(ctx context.Context, open bool) ([]client.Summary, error)
	Snapshot(ctx context.Context, id string) (*client.Status, error)
	Pause(ctx context.Context, id string, req workflows.ActionRequest) (workflows.ActionResult, error)
	Resume(ctx context.Context, id string, req workflows.ActionRequest) (workflows.ActionResult, error)
	Abort(ctx context.Context, id string, req workflows.ActionRequest) (workflows.ActionResult, error)
	Approve(ctx context.Context, id string, req workflows.ApproveRequest) (workflows.ActionResult, error)
}

// Options configure the dashboard.
type Options struct {
	// Rollouts reads and acts on rollouts; it signs requests with the
	// worker's key when one is configured.
	Rollouts Rollouts
	// Inventory lists the fleet's clusters.
	Inventory func(ctx context.Context) ([]fleet.Cluster, error)
	// PlanOptions are the options the worker plans a spec with (protected
	// clusters of the policy); nil plans with none.
	PlanOptions func(r *spec.Rollout, inv []fleet.Cluster) (plan.Options, error)
	// UserHeader names the header an authenticating proxy sets to the
	// person's identity (FLEET_DASHBOARD_USER_HEADER, e.g.
	// X-Forwarded-Email). Empty: no person is known.
	UserHeader string
	// Open is the dev stack: without UserHeader the actor is typed on the
	// page (default DefaultActor).
	Open bool
	// Log; nil logs nothing.
	Log *zap.Logger
	// Timeout bounds each call to Temporal or the inventory (default 20s).
	Timeout time.Duration
}

//go:embed assets
var assets embed.FS

// static is assets/ itself, so /static/x is assets/static/x.
var static, _ = fs.Sub(assets, "assets")

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"pct": percent,
}).ParseFS(assets, "assets/*.html"))

type server struct {
	o Options
	// fleet caches the inventory's distribution for a few seconds: the
	// fleet page aggregates tens of thousands of clusters.
	mu      sync.Mutex
	dist    drift.VersionDistribution
	distAt  time.Time
	distTTL time.Duration
}

// New returns the dashboard's handler; mount it at "/".
func New(o Options) http.Handler {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Timeout <= 0 {
		o.Timeout = 20 * time.Second
	}
	s := &server{o: o, distTTL: 5 * time.Second}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.fleetPage)
	mux.HandleFunc("GET /rollouts", s.rolloutsPage)
	mux.HandleFunc("GET /rollouts/{name}", s.rolloutPage)
	mux.HandleFunc("GET /plan", s.planPage)
	mux.HandleFunc("POST /plan", s.planPage)
	mux.HandleFunc("GET /api/rollouts/{name}", s.statusJSON)
	mux.HandleFunc("GET /api/rollouts/{name}/batches/{n}", s.batchJSON)
	mux.HandleFunc("POST /api/rollouts/{name}/{action}", s.act)
	mux.Handle("GET /static/", http.FileServerFS(static))
	return securityHeaders(mux)
}

// securityHeaders keeps the pages out of frames and sniffing.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "same-origin")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; frame-ancestors 'none'")
		h.ServeHTTP(w, r)
	})
}

// identity is who the dashboard acts for, or why it acts for no one.
type identity struct {
	Actor string
	// Typed: the actor is typed on the page (open dev stack).
	Typed bool
	// Disabled says why the buttons are off ("" when on).
	Disabled string
}

func (s *server) identity(r *http.Request) identity {
	if h := s.o.UserHeader; h != "" {
		user := strings.TrimSpace(r.Header.Get(h))
		if err := validUser(user); err != nil {
			return identity{Disabled: fmt.Sprintf("no person: header %s %v (is the authenticating proxy in front of the worker?)", h, err)}
		}
		return identity{Actor: ActorPrefix + user}
	}
	if s.o.Open {
		return identity{Actor: DefaultActor, Typed: true}
	}
	return identity{Disabled: "read-only: set FLEET_DASHBOARD_USER_HEADER to the header your authenticating proxy puts the person's e-mail in, and let the worker's key vouch for \"web:\" in the policy"}
}

// validUser accepts a proxy's user value: printable, no spaces, bounded.
func validUser(u string) error {
	if u == "" {
		return errors.New("is missing")
	}
	if len(u) > 254 {
		return errors.New("is too long")
	}
	for _, r := range u {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return errors.New("has spaces or control characters")
		}
	}
	return nil
}

// sameOrigin is the CSRF check of a request that changes something: the
// page's custom header, and an Origin (or Sec-Fetch-Site) that is this
// host when the browser sends one.
func sameOrigin(r *http.Request) error {
	if r.Header.Get(CSRFHeader) == "" {
		return fmt.Errorf("missing %s header (requests that change something come from the dashboard's page)", CSRFHeader)
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return fmt.Errorf("cross-site request (%s)", site)
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return errors.New("cross-origin request")
		}
	}
	return nil
}

func (s *server) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.o.Timeout)
}

func (s *server) render(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pages.ExecuteTemplate(w, name, data); err != nil {
		s.o.Log.Error("render page", zap.String("page", name), zap.Error(err))
	}
}

func (s *server) fail(w http.ResponseWriter, r *http.Request, code int, what string, err error) {
	s.o.Log.Warn("dashboard request failed", zap.String("path", r.URL.Path), zap.String("what", what), zap.Error(err))
	w.WriteHeader(code)
	s.render(w, "error.html", map[string]any{"Title": what, "Error": err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// distribution is the fleet's version distribution by cloud, region and
// environment, cached for distTTL.
func (s *server) distribution(ctx context.Context) (drift.VersionDistribution, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.distAt.IsZero() && time.Since(s.distAt) < s.distTTL {
		return s.dist, nil
	}
	inv, err := s.o.Inventory(ctx)
	if err != nil {
		return drift.VersionDistribution{}, fmt.Errorf("inventory: %w", err)
	}
	d, err := drift.Distribution(inv, drift.ByCloud, drift.ByRegion, drift.ByEnvironment)
	if err != nil {
		return drift.VersionDistribution{}, fmt.Errorf("distribution: %w", err)
	}
	s.dist, s.distAt = d, time.Now()
	return d, nil
}

func (s *server) fleetPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	d, err := s.distribution(ctx)
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, "Fleet", err)
		return
	}
	s.render(w, "fleet.html", map[string]any{"Title": "Fleet", "Nav": "fleet", "D": d})
}

// row is one rollout on the rollouts page.
type row struct {
	client.Summary
	State    string
	Done     int
	Total    int
	Paused   string
	Progress int
	Err      string
}

// listStatuses bounds how many rollouts' statuses the list reads.
const listStatuses = 50

func (s *server) rolloutsPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	list, err := s.o.Rollouts.List(ctx, r.URL.Query().Get("all") == "")
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, "Rollouts", err)
		return
	}
	rows := make([]row, len(list))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, sum := range list {
		rows[i] = row{Summary: sum, State: string(sum.Status)}
		if i >= listStatuses {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			st, err := s.o.Rollouts.Snapshot(ctx, sum.ID)
			if err != nil {
				rows[i].Err = err.Error()
				return
			}
			rows[i].State = string(st.State)
			if st.Execution.Status.Abnormal() {
				rows[i].State = string(st.Execution.Status)
			}
			rows[i].Done, rows[i].Total = st.Counts.Done, st.Total
			rows[i].Progress = percentInt(st.Counts.Done, st.Total)
			if st.Paused != nil {
				rows[i].Paused = st.Paused.Reason
			}
		}()
	}
	wg.Wait()
	s.render(w, "rollouts.html", map[string]any{"Title": "Rollouts", "Nav": "rollouts", "Rows": rows, "All": r.URL.Query().Get("all") != ""})
}

func (s *server) rolloutPage(w http.ResponseWriter, r *http.Request) {
	name := workflows.RolloutName(r.PathValue("name"))
	s.render(w, "rollout.html", map[string]any{"Title": name, "Nav": "rollouts", "Name": name, "ID": s.identity(r)})
}

// view is the rollout page's JSON: the status without cluster detail,
// with the audit and incidents cut to their tails.
type view struct {
	*client.Status
	Incidents     []workflows.Incident   `json:"incidents"`
	IncidentCount int                    `json:"incidentCount"`
	Audit         []workflows.AuditEntry `json:"audit"`
	AuditCount    int                    `json:"auditCount"`
	ReadAt        time.Time              `json:"readAt"`
}

func (s *server) statusJSON(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	st, err := s.o.Rollouts.Snapshot(ctx, r.PathValue("name"))
	if err != nil {
		writeJSON(w, errCode(err), map[string]string{"error": err.Error()})
		return
	}
	for i := range st.Phases {
		for j := range st.Phases[i].Batches {
			st.Phases[i].Batches[j].Clusters = nil
		}
	}
	v := view{Status: st, Incidents: tail(st.Incidents, incidentTail), IncidentCount: len(st.Incidents),
		Audit: tail(st.Audit, auditTail), AuditCount: len(st.Audit), ReadAt: time.Now().UTC()}
	writeJSON(w, http.StatusOK, v)
}

func tail[T any](s []T, n int) []T {
	if len(s) > n {
		s = s[len(s)-n:]
	}
	if s == nil {
		return []T{}
	}
	return s
}

// batchPage is one page of a batch's clusters.
type batchPage struct {
	Number   int                       `json:"number"`
	Phase    string                    `json:"phase"`
	State    workflows.BatchState      `json:"state"`
	Counts   workflows.Counts          `json:"counts"`
	Listed   int                       `json:"listed"`
	Page     int                       `json:"page"`
	Pages    int                       `json:"pages"`
	Clusters []workflows.ClusterStatus `json:"clusters"`
}

func (s *server) batchJSON(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "batch: want a number"})
		return
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	ctx, cancel := s.ctx(r)
	defer cancel()
	st, err := s.o.Rollouts.Snapshot(ctx, r.PathValue("name"))
	if err != nil {
		writeJSON(w, errCode(err), map[string]string{"error": err.Error()})
		return
	}
	for _, ph := range st.Phases {
		for _, b := range ph.Batches {
			if b.Number != n {
				continue
			}
			pages := max(1, (len(b.Clusters)+PageSize-1)/PageSize)
			page = min(max(page, 0), pages-1)
			lo, hi := page*PageSize, min((page+1)*PageSize, len(b.Clusters))
			writeJSON(w, http.StatusOK, batchPage{Number: b.Number, Phase: b.Phase, State: b.State, Counts: b.Counts,
				Listed: len(b.Clusters), Page: page, Pages: pages, Clusters: b.Clusters[lo:hi]})
			return
		}
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no batch %d", n)})
}

// actionBody is what the page posts.
type actionBody struct {
	Reason   string `json:"reason"`
	PlanHash string `json:"planHash"`
	Phase    string `json:"phase"`
	// Actor is taken only on the open dev stack.
	Actor string `json:"actor"`
}

func (s *server) act(w http.ResponseWriter, r *http.Request) {
	if err := sameOrigin(r); err != nil {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": err.Error()})
		return
	}
	id := s.identity(r)
	if id.Disabled != "" {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": id.Disabled})
		return
	}
	var b actionBody
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&b); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad JSON: " + err.Error()})
		return
	}
	actor := id.Actor
	if id.Typed && strings.TrimSpace(b.Actor) != "" {
		actor = strings.TrimSpace(b.Actor)
	}
	name := r.PathValue("name")
	action := r.PathValue("action")
	ctx, cancel := s.ctx(r)
	defer cancel()
	req := workflows.ActionRequest{Actor: actor, Reason: strings.TrimSpace(b.Reason)}
	var res workflows.ActionResult
	var err error
	switch action {
	case workflows.Pause:
		res, err = s.o.Rollouts.Pause(ctx, name, req)
	case workflows.Resume:
		res, err = s.o.Rollouts.Resume(ctx, name, req)
	case workflows.Abort:
		res, err = s.o.Rollouts.Abort(ctx, name, req)
	case workflows.Approve:
		res, err = s.o.Rollouts.Approve(ctx, name, workflows.ApproveRequest{Actor: actor,
			PlanHash: strings.TrimSpace(b.PlanHash), Phase: strings.TrimSpace(b.Phase), Comment: req.Reason})
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown action " + strconv.Quote(action)})
		return
	}
	log := s.o.Log.With(zap.String("rollout", name), zap.String("action", action), zap.String("actor", actor))
	if err != nil {
		log.Info("dashboard action refused", zap.Error(err))
		writeJSON(w, errCode(err), map[string]string{"error": message(err)})
		return
	}
	log.Info("dashboard action", zap.String("state", string(res.State)))
	writeJSON(w, http.StatusOK, res)
}

// message is what the page shows of a failed action: the update's
// rejection message when the workflow refused it.
func message(err error) string {
	var rej *client.RejectedError
	if errors.As(err, &rej) {
		return "refused: " + rej.Message
	}
	return err.Error()
}

func errCode(err error) int {
	var rej *client.RejectedError
	var fin *client.FinishedError
	switch {
	case errors.As(err, &rej), errors.As(err, &fin):
		return http.StatusConflict
	case errors.Is(err, client.ErrNotFound):
		return http.StatusNotFound
	}
	return http.StatusBadGateway
}

// MaxSpec bounds a pasted spec.
const MaxSpec = 1 << 20

func (s *server) planPage(w http.ResponseWriter, r *http.Request) {
	data := map[string]any{"Title": "Plan preview", "Nav": "plan"}
	if r.Method != http.MethodPost {
		s.render(w, "plan.html", data)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxSpec)
	text := r.PostFormValue("spec")
	data["Spec"] = text
	out, err := s.plan(r, text)
	if err != nil {
		data["Error"] = err.Error()
	} else {
		data["Plan"] = out
	}
	s.render(w, "plan.html", data)
}

// plan renders a spec's plan as `fleet plan` does.
func (s *server) plan(r *http.Request, text string) (string, error) {
	if strings.TrimSpace(text) == "" {
		return "", errors.New("paste a rollout spec (YAML)")
	}
	rs, err := spec.Parse("spec.yaml", []byte(text))
	if err != nil {
		return "", err
	}
	rs.Normalize()
	ctx, cancel := s.ctx(r)
	defer cancel()
	inv, err := s.o.Inventory(ctx)
	if err != nil {
		return "", fmt.Errorf("inventory: %w", err)
	}
	var opts plan.Options
	if s.o.PlanOptions != nil {
		if opts, err = s.o.PlanOptions(rs, inv); err != nil {
			return "", err
		}
	}
	p, err := plan.Build(rs, inv, opts)
	if err != nil {
		return "", fmt.Errorf("spec.yaml: %w", err)
	}
	var b strings.Builder
	if err := plan.Render(&b, p); err != nil {
		return "", fmt.Errorf("render plan: %w", err)
	}
	return b.String(), nil
}

func percentInt(n, total int) int {
	if total <= 0 {
		return 0
	}
	return n * 100 / total
}

// percent is n of total as "42%" for the templates.
func percent(n, total int) string {
	if total <= 0 {
		return "0%"
	}
	return fmt.Sprintf("%.0f%%", float64(n)*100/float64(total))
}
