// Package ddsim serves a Datadog-API-compatible slice of the Monitors and
// Metrics APIs, fed by the simulated data plane, so that the official
// datadog-api-client-go code path runs end to end without Datadog.
//
// It serves:
//
//	GET /api/v1/validate        API key check ({"valid": true})
//	GET /api/v1/monitor         MonitorsApi.ListMonitors
//	GET /api/v1/monitor/{id}    MonitorsApi.GetMonitor
//	GET /api/v1/query           MetricsApi.QueryMetrics
//
// Requests counts what it was asked, by endpoint.
//
// Monitors come from a catalog (monitors.Default()); each is a multi-alert
// grouped by cluster, with one group "cluster:<id>" per cluster of the
// monitor's product, whose status the Source reports. A monitor that
// accepts no data (monitors.Monitor.NoDataOK) is served with
// notify_no_data false. A ListMonitors read selects its monitors and pages
// them before rendering any group. A Source that keeps a group index
// (GroupIndex, as *sim.Simulator does) serves a read that keeps no OK group
// (the worker's frequent read) in the cost of its non-OK groups, and a read
// of every group (the roster) with one source call and one history lock
// per monitor; other sources are read a group at a time.
//
// Metrics are the ordering metrics of monitors.Metrics(), each product's
// under its own Datadog metric name, valued by Source.Metric. The query
// language is the subset the fleet uses (see queryMetrics):
// "<aggr>:<metric>{<tag filters>}", optionally "by {cluster}" for one
// series per cluster (scope "cluster:<id>").
//
// Like Datadog, requests need the DD-API-KEY and DD-APPLICATION-KEY headers
// (validate needs the API key only), answers carry the X-RateLimit-* headers,
// and errors are {"errors": ["..."]}. SetFailure makes the endpoint itself
// fail, for fail-closed tests.
package ddsim

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/internal/monitors"
)

// Source reports the fleet and its health; *sim.Simulator implements it.
type Source interface {
	// ClusterProduct returns the product a cluster runs.
	ClusterProduct(id string) (string, bool)
	// MonitorStatus is the Datadog status ("OK", "Alert", "Warn",
	// "No Data") of the monitor's group for the cluster.
	MonitorStatus(clusterID, monitorName string) string
	// ClusterIDs lists every cluster.
	ClusterIDs() []string
	// Metric is the cluster's current value of an ordering metric
	// (monitors.MetricNames: "cpu", "throughput", ...), false when the
	// cluster does not report it. The metrics query API serves it.
	Metric(clusterID, name string) (float64, bool)
}

// GroupIndex is an optional extension of Source (*sim.Simulator implements
// it) that lets a read cost what it returns rather than the whole fleet:
// the frequent bulk read (non-OK groups of a product's monitors) is served
// from NotOKGroups, and a read of every group takes one MonitorStatuses
// call per monitor instead of one MonitorStatus per group. Its answers must
// agree with ClusterIDs, ClusterProduct and MonitorStatus.
type GroupIndex interface {
	// GroupIndexOwner returns the source the index belongs to. The server
	// uses the index only if that is the Source it was given: a type that
	// embeds an indexed source and overrides MonitorStatus or
	// ClusterProduct would otherwise get the embedded index by promotion,
	// which ignores its overrides (such a type overrides these methods
	// too, or is read group by group).
	GroupIndexOwner() any
	// ProductClusters returns the IDs of the product's clusters (those
	// ClusterProduct places in it), sorted. The caller does not modify it.
	ProductClusters(product string) []string
	// MonitorStatuses is MonitorStatus for each cluster, in order.
	MonitorStatuses(monitorName string, clusterIDs []string) []string
	// NotOKGroups returns the clusters of the product whose group of the
	// monitor is not OK, with their status; false when it cannot tell (the
	// server then reads every group).
	NotOKGroups(monitorName, product string) (map[string]string, bool)
}

// Monitor group statuses.
const (
	StatusOK     = "OK"
	StatusWarn   = "Warn"
	StatusAlert  = "Alert"
	StatusNoData = "No Data"
)

// Rate limit defaults: generous for a dev fleet (the worker reads monitors
// in bulk, about a request per product per interval; tests poll more).
const (
	DefaultRateLimit       = 10000
	DefaultRateLimitPeriod = 10 * time.Second
)

// Paging limits, as Datadog documents them for ListMonitors.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// Options configures a Server.
type Options struct {
	// APIKey and AppKey are the keys requests must carry. When one is
	// empty, any non-empty value of that header is accepted.
	APIKey, AppKey string
	Log            *zap.Logger
	// RateLimit requests are allowed per RateLimitPeriod; beyond it the
	// server answers 429 like Datadog (defaults DefaultRateLimit per
	// DefaultRateLimitPeriod).
	RateLimit       int
	RateLimitPeriod time.Duration
}

// Server is the Datadog-compatible endpoint. Its methods are safe for
// concurrent use.
type Server struct {
	catalog []monitors.Monitor
	src     Source
	idx     GroupIndex // nil: src keeps no index (or not its own)
	opts    Options
	log     *zap.Logger
	created time.Time

	mu          sync.Mutex
	failCode    int
	failLeft    int  // < 0: until cleared
	hang        bool // every request waits for the client to give up
	windowStart time.Time
	windowCount int
	history     map[groupKey]*groupHistory
	// notOK remembers, by monitor ID, the clusters whose group history
	// last saw not OK: a read served from the source's index of non-OK
	// groups also observes these, so a group that resolved is observed OK
	// (last_resolved_ts) although the index no longer lists it.
	notOK      map[int64]map[string]bool
	now        func() time.Time
	requests   map[string]int // by endpoint (see Requests)
	groupsSent map[string]int // by endpoint (see GroupsSent)
	bytesSent  map[string]int // by endpoint (see BytesSent)
}

type groupKey struct {
	monitor int64
	cluster string
}

// groupHistory remembers a group's transitions, for the *_ts fields.
type groupHistory struct {
	status        string
	lastTriggered int64
	lastResolved  int64
	lastNoData    int64
}

// New builds a server over the catalog, reading health from src.
func New(catalog []monitors.Monitor, src Source, opts Options) *Server {
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if opts.RateLimit <= 0 {
		opts.RateLimit = DefaultRateLimit
	}
	if opts.RateLimitPeriod <= 0 {
		opts.RateLimitPeriod = DefaultRateLimitPeriod
	}
	cat := make([]monitors.Monitor, len(catalog))
	copy(cat, catalog)
	sort.Slice(cat, func(i, j int) bool { return cat[i].ID < cat[j].ID })
	idx, _ := src.(GroupIndex)
	if idx != nil && idx.GroupIndexOwner() != any(src) {
		opts.Log.Info("the source's group index belongs to another source (an embedded one): reading groups one at a time")
		idx = nil
	}
	return &Server{
		catalog:    cat,
		src:        src,
		idx:        idx,
		opts:       opts,
		log:        opts.Log,
		created:    time.Now().UTC().Truncate(time.Second),
		history:    map[groupKey]*groupHistory{},
		notOK:      map[int64]map[string]bool{},
		now:        time.Now,
		requests:   map[string]int{},
		groupsSent: map[string]int{},
		bytesSent:  map[string]int{},
	}
}

// Endpoints, as Requests counts them: the official client's method names.
const (
	EndpointListMonitors = "ListMonitors"
	EndpointGetMonitor   = "GetMonitor"
	EndpointQueryMetrics = "QueryMetrics"
	EndpointValidate     = "Validate"
	EndpointOther        = "other"
)

func endpoint(r *http.Request) string {
	switch p := strings.TrimSuffix(r.URL.Path, "/"); {
	case p == "/api/v1/monitor":
		return EndpointListMonitors
	case strings.HasPrefix(p, "/api/v1/monitor/"):
		return EndpointGetMonitor
	case p == "/api/v1/query":
		return EndpointQueryMetrics
	case p == "/api/v1/validate":
		return EndpointValidate
	}
	return EndpointOther
}

// Requests counts the requests received since the server started, by
// endpoint (EndpointListMonitors, ...): every request, answered or failed
// (injected failures, 429s, hangs, bad keys and bad parameters included).
func (s *Server) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.requests))
	for k, v := range s.requests {
		out[k] = v
	}
	return out
}

// GroupsSent counts the monitor groups (state.groups entries) answered
// since the server started, by endpoint: what a client decodes grows with
// it.
func (s *Server) GroupsSent() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.groupsSent)
}

// BytesSent counts the bytes of the response bodies written since the
// server started, by endpoint (errors included).
func (s *Server) BytesSent() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.bytesSent)
}

func (s *Server) countGroups(ep string, n int) {
	s.mu.Lock()
	s.groupsSent[ep] += n
	s.mu.Unlock()
}

// countingWriter counts the body bytes written through it.
type countingWriter struct {
	http.ResponseWriter
	n int
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += n
	return n, err
}

// SetFailure makes the next n requests (n < 0: every request until
// ClearFailure) fail with the HTTP status code; n == 0 clears. A 429 carries
// Datadog's rate-limit headers with nothing remaining. Codes outside 400-599
// are ignored.
func (s *Server) SetFailure(code int, n int) {
	if code < 400 || code > 599 {
		s.log.Warn("ignoring failure injection with a non-error status", zap.Int("code", code))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n == 0 {
		s.failCode, s.failLeft = 0, 0
		return
	}
	s.failCode, s.failLeft = code, n
	s.log.Info("failure injection set", zap.Int("code", code), zap.Int("requests", n))
}

// SetHang makes every request hang (on) — the connection is accepted and
// nothing is answered until the client gives up — or answer again (off): a
// Datadog that is up but stuck.
func (s *Server) SetHang(on bool) {
	s.mu.Lock()
	s.hang = on
	s.mu.Unlock()
	s.log.Info("hang injection", zap.Bool("on", on))
}

// ClearFailure stops failure injection.
func (s *Server) ClearFailure() {
	s.mu.Lock()
	s.failCode, s.failLeft = 0, 0
	s.mu.Unlock()
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/validate", s.validate)
	mux.HandleFunc("GET /api/v1/monitor", s.requireKeys(s.listMonitors))
	mux.HandleFunc("GET /api/v1/monitor/{id}", s.requireKeys(s.getMonitor))
	mux.HandleFunc("GET /api/v1/query", s.requireKeys(s.queryMetrics))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErrors(w, http.StatusNotFound, "Not found")
	})
	return s.gate(mux)
}

// gate applies failure injection and rate limiting to every request.
func (s *Server) gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		ep := endpoint(r)
		s.mu.Lock()
		hang := s.hang
		s.requests[ep]++
		s.mu.Unlock()
		w := &countingWriter{ResponseWriter: rw}
		defer func() {
			s.mu.Lock()
			s.bytesSent[ep] += w.n
			s.mu.Unlock()
		}()
		if hang {
			<-r.Context().Done()
			return
		}
		now := s.now()
		s.mu.Lock()
		if now.Sub(s.windowStart) >= s.opts.RateLimitPeriod || now.Before(s.windowStart) {
			s.windowStart, s.windowCount = now, 0
		}
		s.windowCount++
		remaining := s.opts.RateLimit - s.windowCount
		reset := s.windowStart.Add(s.opts.RateLimitPeriod).Sub(now)
		code := 0
		if s.failLeft != 0 {
			code = s.failCode
			if s.failLeft > 0 {
				s.failLeft--
			}
		}
		s.mu.Unlock()

		if code == 0 && remaining < 0 {
			code = http.StatusTooManyRequests
		}
		if code == http.StatusTooManyRequests {
			remaining = 0
		}
		s.rateHeaders(w, max(remaining, 0), reset)
		if code != 0 {
			s.log.Debug("request failed on purpose", zap.String("path", r.URL.Path), zap.Int("code", code))
			msg := http.StatusText(code)
			if code == http.StatusTooManyRequests {
				msg = "Rate limit of " + strconv.Itoa(s.opts.RateLimit) + " requests in " +
					strconv.Itoa(periodSeconds(s.opts.RateLimitPeriod)) + " seconds reached. Please try again later."
			}
			writeErrors(w, code, msg)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) rateHeaders(w http.ResponseWriter, remaining int, reset time.Duration) {
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(s.opts.RateLimit))
	h.Set("X-RateLimit-Period", strconv.Itoa(periodSeconds(s.opts.RateLimitPeriod)))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Reset", strconv.Itoa(max(1, int((reset+time.Second-1)/time.Second))))
	h.Set("X-RateLimit-Name", "monitors")
}

func periodSeconds(d time.Duration) int { return max(1, int(d/time.Second)) }

func keyOK(got, want string) bool {
	if got == "" {
		return false
	}
	if want == "" {
		return true
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func (s *Server) forbidden(w http.ResponseWriter, r *http.Request, why string) {
	// Never log the keys themselves.
	s.log.Warn("forbidden", zap.String("path", r.URL.Path), zap.String("reason", why))
	writeErrors(w, http.StatusForbidden, "Forbidden")
}

// requireKeys checks both keys, as Datadog does for the Monitors API.
func (s *Server) requireKeys(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !keyOK(r.Header.Get("DD-API-KEY"), s.opts.APIKey) {
			s.forbidden(w, r, "missing or wrong API key")
			return
		}
		if !keyOK(r.Header.Get("DD-APPLICATION-KEY"), s.opts.AppKey) {
			s.forbidden(w, r, "missing or wrong application key")
			return
		}
		next(w, r)
	}
}

func (s *Server) validate(w http.ResponseWriter, r *http.Request) {
	if !keyOK(r.Header.Get("DD-API-KEY"), s.opts.APIKey) {
		s.forbidden(w, r, "missing or wrong API key")
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"valid": true})
}

// listQuery is a parsed ListMonitors request.
type listQuery struct {
	groups      groupFilter
	name        string
	scoped      bool
	clusters    map[string]bool // scope: cluster IDs (nil: any)
	product     string          // scope: product ("" any)
	noMatch     bool            // a scope tag nothing can match
	monitorTags []string
	idOffset    int64
	page        int64 // -1: no paging
	pageSize    int64
}

// groupFilter says which groups go into state.groups; nil means none
// (Datadog omits group states unless group_states is given).
type groupFilter map[string]bool

func (g groupFilter) keep(status string) bool {
	return g != nil && (g["all"] || g[strings.ToLower(status)])
}

func parseGroupStates(v string) (groupFilter, error) {
	if v == "" {
		return nil, nil
	}
	g := groupFilter{}
	for _, part := range strings.Split(v, ",") {
		p := strings.ToLower(strings.TrimSpace(part))
		switch p {
		case "all", "alert", "warn", "no data", "ok":
			g[p] = true
		case "":
		default:
			return nil, fmt.Errorf("invalid group_states value %q: want all or a comma list of alert, warn, no data, ok", part)
		}
	}
	return g, nil
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseList(r *http.Request) (listQuery, error) {
	q := r.URL.Query()
	lq := listQuery{page: -1, pageSize: defaultPageSize, name: q.Get("name")}
	var err error
	if lq.groups, err = parseGroupStates(q.Get("group_states")); err != nil {
		return lq, err
	}
	for _, tag := range splitList(q.Get("tags")) {
		lq.scoped = true
		key, val, _ := strings.Cut(tag, ":")
		switch key {
		case "cluster":
			if lq.clusters == nil {
				lq.clusters = map[string]bool{}
			}
			lq.clusters[val] = true
		case "product":
			if lq.product != "" && lq.product != val {
				lq.noMatch = true
			}
			lq.product = val
		default:
			// The catalog's monitors are scoped by product and cluster
			// only: any other scope matches nothing.
			lq.noMatch = true
		}
	}
	lq.monitorTags = splitList(q.Get("monitor_tags"))
	if v := q.Get("id_offset"); v != "" {
		if lq.idOffset, err = strconv.ParseInt(v, 10, 64); err != nil || lq.idOffset < 0 {
			return lq, fmt.Errorf("invalid id_offset %q: want a non-negative integer", v)
		}
	}
	if v := q.Get("page"); v != "" {
		if lq.page, err = strconv.ParseInt(v, 10, 64); err != nil || lq.page < 0 {
			return lq, fmt.Errorf("invalid page %q: want a non-negative integer", v)
		}
	}
	if v := q.Get("page_size"); v != "" {
		if lq.pageSize, err = strconv.ParseInt(v, 10, 64); err != nil || lq.pageSize <= 0 || lq.pageSize > maxPageSize {
			return lq, fmt.Errorf("invalid page_size %q: want an integer from 1 to %d", v, maxPageSize)
		}
	}
	if v := q.Get("with_downtimes"); v != "" {
		if _, err := strconv.ParseBool(v); err != nil {
			return lq, fmt.Errorf("invalid with_downtimes %q: want true or false", v)
		}
	}
	return lq, nil
}

func (s *Server) listMonitors(w http.ResponseWriter, r *http.Request) {
	lq, err := parseList(r)
	if err != nil {
		writeErrors(w, http.StatusBadRequest, err.Error())
		return
	}
	// Select the monitors and slice the page first, then render only the
	// page's monitors: a group costs a status read and a history update.
	sel := []monitors.Monitor{}
	sc := s.newScope(lq)
	if !lq.noMatch {
		for _, m := range s.catalog {
			if m.ID <= lq.idOffset || !lq.matches(m) {
				continue
			}
			if lq.scoped && sc.count(m.Product) == 0 {
				continue // the scope names no cluster this monitor watches
			}
			sel = append(sel, m)
		}
	}
	if lq.page >= 0 {
		start := min(lq.page*lq.pageSize, int64(len(sel)))
		end := min(start+lq.pageSize, int64(len(sel)))
		sel = sel[start:end]
	}
	out := make([]monitorJSON, 0, len(sel))
	n := 0
	for _, m := range sel {
		mj := s.render(m, sc, lq.groups)
		if mj.State != nil {
			n += len(mj.State.Groups)
		}
		out = append(out, mj)
	}
	s.countGroups(EndpointListMonitors, n)
	writeJSON(w, http.StatusOK, out)
}

func (lq listQuery) matches(m monitors.Monitor) bool {
	if lq.product != "" && m.Product != lq.product {
		return false
	}
	if lq.name != "" && !strings.Contains(strings.ToLower(m.Name), strings.ToLower(lq.name)) {
		return false
	}
	for _, t := range lq.monitorTags {
		if !m.HasTag(t) {
			return false
		}
	}
	return true
}

// scope is the clusters one request reads, by product: from the source's
// index when it keeps one and the request names no clusters, else listed
// once per request (clustersByProduct), when first needed.
type scope struct {
	s         *Server
	lq        listQuery
	byProduct map[string][]string
}

func (s *Server) newScope(lq listQuery) *scope { return &scope{s: s, lq: lq} }

// indexed reports whether the scope's clusters come from the index: the
// whole fleet (a product tag only narrows the monitors) and an index.
func (sc *scope) indexed() bool { return sc.s.idx != nil && sc.lq.clusters == nil }

// clusters lists the product's clusters in scope, sorted; not modified by
// the caller.
func (sc *scope) clusters(product string) []string {
	if sc.indexed() {
		return sc.s.idx.ProductClusters(product)
	}
	if sc.byProduct == nil {
		sc.byProduct = sc.s.clustersByProduct(sc.lq)
	}
	return sc.byProduct[product]
}

func (sc *scope) count(product string) int { return len(sc.clusters(product)) }

// clustersByProduct lists the clusters in scope, by product, sorted.
func (s *Server) clustersByProduct(lq listQuery) map[string][]string {
	out := map[string][]string{}
	if lq.clusters != nil {
		for id := range lq.clusters {
			if p, ok := s.src.ClusterProduct(id); ok && (lq.product == "" || p == lq.product) {
				out[p] = append(out[p], id)
			}
		}
		for p := range out {
			sort.Strings(out[p])
		}
		return out
	}
	for _, id := range s.src.ClusterIDs() {
		if p, ok := s.src.ClusterProduct(id); ok {
			out[p] = append(out[p], id)
		}
	}
	return out
}

var idPattern = regexp.MustCompile(`^[0-9]+$`)

func (s *Server) getMonitor(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if !idPattern.MatchString(raw) || err != nil {
		writeErrors(w, http.StatusBadRequest, fmt.Sprintf("invalid monitor_id %q", raw))
		return
	}
	groups, err := parseGroupStates(r.URL.Query().Get("group_states"))
	if err != nil {
		writeErrors(w, http.StatusBadRequest, err.Error())
		return
	}
	i := sort.Search(len(s.catalog), func(i int) bool { return s.catalog[i].ID >= id })
	if i == len(s.catalog) || s.catalog[i].ID != id {
		writeErrors(w, http.StatusNotFound, "Monitor not found")
		return
	}
	mj := s.render(s.catalog[i], s.newScope(listQuery{}), groups)
	if mj.State != nil {
		s.countGroups(EndpointGetMonitor, len(mj.State.Groups))
	}
	writeJSON(w, http.StatusOK, mj)
}

// severity orders statuses for overall_state: Alert > No Data > Warn > OK.
func severity(status string) int {
	switch status {
	case StatusAlert:
		return 3
	case StatusNoData:
		return 2
	case StatusWarn:
		return 1
	default:
		return 0
	}
}

func normalize(status string) string {
	switch status {
	case StatusOK, StatusWarn, StatusAlert, StatusNoData:
		return status
	}
	return StatusNoData
}

// keepsOK reports whether the filter keeps OK groups; a read whose filter
// does not needs only the groups that are not OK (overall_state is OK
// unless one is not).
func (g groupFilter) keepsOK() bool { return g.keep(StatusOK) }

// render builds the Datadog JSON of monitor m over the groups of the
// scope's clusters of its product. overall_state is the worst status of
// those groups ("No Data" when there are none); state.groups holds the
// groups the filter keeps. Every group read is observed (its history
// updated), except that a read keeping no OK group, over the whole fleet
// of an indexed source, reads only the groups not OK and those the history
// last saw not OK: an OK group's history changes only when it was not OK
// before (or on its first sight, which sets no timestamp), so what is
// answered is the same.
func (s *Server) render(m monitors.Monitor, sc *scope, filter groupFilter) monitorJSON {
	now := s.now().Unix()
	clusters := sc.clusters(m.Product)
	overall := StatusOK
	if len(clusters) == 0 {
		overall = StatusNoData
	}
	ids, statuses, ok := s.notOKGroups(m, sc, filter)
	if !ok {
		ids, statuses = clusters, s.statuses(m.Name, clusters)
	}
	for _, status := range statuses {
		if severity(status) > severity(overall) {
			overall = status
		}
	}
	hist := s.observeAll(m.ID, ids, statuses, now)
	var groups map[string]groupJSON
	if filter != nil {
		groups = map[string]groupJSON{}
	}
	for i, id := range ids {
		status := statuses[i]
		if !filter.keep(status) {
			continue
		}
		h := hist[i]
		name := monitors.GroupName(id)
		groups[name] = groupJSON{
			Name: name, Status: status,
			LastTriggeredTs: h.lastTriggered, LastNotifiedTs: h.lastTriggered,
			LastResolvedTs: h.lastResolved, LastNodataTs: h.lastNoData,
		}
	}
	mj := monitorJSON{
		ID: m.ID, Name: m.Name, Type: m.Type, Query: m.Query, Message: m.Message,
		Tags:         append([]string{}, m.Tags...),
		Options:      optionsFor(m),
		Multi:        true,
		Created:      s.created,
		Modified:     s.created,
		Creator:      creatorJSON{Email: "fleet-platform@example.com", Handle: "fleet-platform@example.com", Name: "Fleet Platform"},
		OverallState: overall,
		DraftStatus:  "published",
	}
	if groups != nil {
		mj.State = &stateJSON{Groups: groups}
	}
	return mj
}

// notOKGroups reads, from the source's index, the groups of m that are not
// OK and those the history last saw not OK (now OK unless the index lists
// them), with their (normalized) statuses; false when the read needs every
// group: the filter keeps OK groups, the scope names clusters, or there is
// no index that can answer.
func (s *Server) notOKGroups(m monitors.Monitor, sc *scope, filter groupFilter) ([]string, []string, bool) {
	if filter.keepsOK() || !sc.indexed() {
		return nil, nil, false
	}
	idx, ok := s.idx.NotOKGroups(m.Name, m.Product)
	if !ok {
		return nil, nil, false
	}
	byID := make(map[string]string, len(idx))
	for id, status := range idx {
		if status = normalize(status); status != StatusOK {
			byID[id] = status
		}
	}
	s.mu.Lock()
	for id := range s.notOK[m.ID] {
		if _, ok := byID[id]; !ok {
			byID[id] = StatusOK
		}
	}
	s.mu.Unlock()
	ids := make([]string, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	statuses := make([]string, len(ids))
	for i, id := range ids {
		statuses[i] = byID[id]
	}
	return ids, statuses, true
}

// statuses reads the monitor's (normalized) status for each cluster: one
// source call with an index, else one per cluster.
func (s *Server) statuses(monitorName string, clusters []string) []string {
	var out []string
	if s.idx != nil {
		out = s.idx.MonitorStatuses(monitorName, clusters)
	}
	if len(out) != len(clusters) {
		out = make([]string, len(clusters))
		for i, id := range clusters {
			out[i] = s.src.MonitorStatus(id, monitorName)
		}
	}
	for i := range out {
		out[i] = normalize(out[i])
	}
	return out
}

// observeAll records the statuses of monitor m's groups for the clusters
// and returns their histories, in order, under one lock.
func (s *Server) observeAll(monitorID int64, clusters, statuses []string, now int64) []groupHistory {
	out := make([]groupHistory, len(clusters))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, id := range clusters {
		out[i] = s.observeLocked(groupKey{monitorID, id}, statuses[i], now)
	}
	return out
}

// observeLocked records the group's status and returns its history. Called
// with s.mu held.
func (s *Server) observeLocked(k groupKey, status string, now int64) groupHistory {
	h := s.history[k]
	if h == nil {
		h = &groupHistory{}
		s.history[k] = h
	}
	if h.status != status {
		switch status {
		case StatusAlert, StatusWarn:
			h.lastTriggered = now
		case StatusNoData:
			h.lastNoData = now
		case StatusOK:
			if h.status != "" {
				h.lastResolved = now
			}
		}
		h.status = status
		set := s.notOK[k.monitor]
		switch {
		case status != StatusOK && set == nil:
			s.notOK[k.monitor] = map[string]bool{k.cluster: true}
		case status != StatusOK:
			set[k.cluster] = true
		default:
			delete(set, k.cluster)
		}
	}
	return *h
}

var thresholdRE = regexp.MustCompile(`(?:>=|<=|>|<)\s*(-?[0-9]+(?:\.[0-9]+)?)\s*$`)

func optionsFor(m monitors.Monitor) optionsJSON {
	o := optionsJSON{
		NotifyNoData:      !m.NoDataOK,
		NoDataTimeframe:   10,
		NotifyAudit:       false,
		RequireFullWindow: false,
		IncludeTags:       true,
		NewGroupDelay:     60,
		RenotifyInterval:  0,
		Silenced:          map[string]int64{},
	}
	if sub := thresholdRE.FindStringSubmatch(m.Query); sub != nil {
		if v, err := strconv.ParseFloat(sub[1], 64); err == nil {
			o.Thresholds = &thresholdsJSON{Critical: v}
		}
	}
	return o
}

// The JSON shapes below use only fields of datadog-api-client-go's Monitor
// model, so the client decodes them with no unparsed or additional fields.

type monitorJSON struct {
	ID              int64       `json:"id"`
	Name            string      `json:"name"`
	Type            string      `json:"type"`
	Query           string      `json:"query"`
	Message         string      `json:"message"`
	Tags            []string    `json:"tags"`
	Options         optionsJSON `json:"options"`
	Multi           bool        `json:"multi"`
	Created         time.Time   `json:"created"`
	Modified        time.Time   `json:"modified"`
	Creator         creatorJSON `json:"creator"`
	Deleted         *time.Time  `json:"deleted"`
	Priority        *int64      `json:"priority"`
	RestrictedRoles []string    `json:"restricted_roles"`
	OverallState    string      `json:"overall_state"`
	State           *stateJSON  `json:"state,omitempty"`
	DraftStatus     string      `json:"draft_status"`
}

type optionsJSON struct {
	Thresholds        *thresholdsJSON  `json:"thresholds,omitempty"`
	NotifyNoData      bool             `json:"notify_no_data"`
	NoDataTimeframe   int64            `json:"no_data_timeframe"`
	NotifyAudit       bool             `json:"notify_audit"`
	RequireFullWindow bool             `json:"require_full_window"`
	IncludeTags       bool             `json:"include_tags"`
	NewGroupDelay     int64            `json:"new_group_delay"`
	RenotifyInterval  int64            `json:"renotify_interval"`
	Silenced          map[string]int64 `json:"silenced"`
}

type thresholdsJSON struct {
	Critical float64 `json:"critical"`
}

type creatorJSON struct {
	Email  string `json:"email"`
	Handle string `json:"handle"`
	Name   string `json:"name"`
}

type stateJSON struct {
	Groups map[string]groupJSON `json:"groups"`
}

type groupJSON struct {
	Name            string `json:"name"`
	Status          string `json:"status"`
	LastTriggeredTs int64  `json:"last_triggered_ts"`
	LastNotifiedTs  int64  `json:"last_notified_ts"`
	LastResolvedTs  int64  `json:"last_resolved_ts"`
	LastNodataTs    int64  `json:"last_nodata_ts"`
}

type errorsJSON struct {
	Errors []string `json:"errors"`
}

func writeErrors(w http.ResponseWriter, code int, msgs ...string) {
	writeJSON(w, code, errorsJSON{Errors: msgs})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}
