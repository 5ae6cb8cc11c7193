package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/internal/fleet"
)

// maxFaultsBody bounds a PUT /v1/faults body.
const maxFaultsBody = 1 << 20

// Handler serves the simulator's inventory and fault injection as JSON:
//
//	GET /v1/clusters               the inventory, sorted by ID; optional
//	                               filters ?product=&cloud=&environment=
//	GET /v1/clusters/{id}          one cluster
//	POST /v1/clusters/lookup       the clusters of {"ids": [...]} that
//	                               exist (inventory.LookupRequest)
//	GET /v1/state                  every cluster's version, generation and
//	                               the applies it started (ClusterStates)
//	GET /v1/faults                 the injected faults
//	PUT /v1/faults                 replace the faults (a JSON array)
//	GET /healthz                   liveness
//
// Errors are {"error": "..."} with a 4xx status.
func (s *Simulator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/clusters", s.serveClusters)
	mux.HandleFunc("GET /v1/clusters/{id}", s.serveCluster)
	mux.HandleFunc("POST /v1/clusters/lookup", s.serveLookup)
	mux.HandleFunc("GET /v1/state", func(w http.ResponseWriter, _ *http.Request) {
		s.writeJSON(w, http.StatusOK, s.ClusterStates())
	})
	mux.HandleFunc("GET /v1/faults", func(w http.ResponseWriter, _ *http.Request) {
		s.writeJSON(w, http.StatusOK, s.Faults())
	})
	mux.HandleFunc("PUT /v1/faults", s.putFaults)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		s.writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return mux
}

func (s *Simulator) serveClusters(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	filters := []struct {
		name  string
		known []string
		field func(fleet.Cluster) string
	}{
		{"product", fleet.Products, func(c fleet.Cluster) string { return c.Product }},
		{"cloud", fleet.Clouds, func(c fleet.Cluster) string { return c.Cloud }},
		{"environment", fleet.Environments, func(c fleet.Cluster) string { return c.Environment }},
	}
	for _, f := range filters {
		if v := q.Get(f.name); v != "" && !slices.Contains(f.known, v) {
			s.writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown %s %q (want one of %v)", f.name, v, f.known))
			return
		}
	}
	out := make([]fleet.Cluster, 0)
	for _, c := range s.Clusters() {
		keep := true
		for _, f := range filters {
			if v := q.Get(f.name); v != "" && f.field(c) != v {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, c)
		}
	}
	s.writeJSON(w, http.StatusOK, out)
}

// maxLookupBody bounds a lookup request body.
const maxLookupBody = 8 << 20

func (s *Simulator) serveLookup(w http.ResponseWriter, r *http.Request) {
	var req struct {
		IDs []string `json:"ids"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxLookupBody)).Decode(&req); err != nil {
		s.writeError(w, http.StatusBadRequest, "lookup: want {\"ids\": [...]}: "+err.Error())
		return
	}
	out := make([]fleet.Cluster, 0, len(req.IDs))
	for _, id := range req.IDs {
		if c, ok := s.Cluster(id); ok {
			out = append(out, c)
		}
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *Simulator) serveCluster(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c, ok := s.Cluster(id)
	if !ok {
		s.writeError(w, http.StatusNotFound, fmt.Sprintf("cluster %q not found", id))
		return
	}
	s.writeJSON(w, http.StatusOK, c)
}

func (s *Simulator) putFaults(w http.ResponseWriter, r *http.Request) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxFaultsBody))
	dec.DisallowUnknownFields()
	var faults []Fault
	if err := dec.Decode(&faults); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", tooBig.Limit))
			return
		}
		s.writeError(w, http.StatusBadRequest, fmt.Sprintf("body must be a JSON array of faults: %v", err))
		return
	}
	if err := dec.Decode(new(json.RawMessage)); !errors.Is(err, io.EOF) {
		s.writeError(w, http.StatusBadRequest, "body must hold exactly one JSON array of faults")
		return
	}
	if faults == nil {
		faults = []Fault{}
	}
	if err := s.SetFaults(faults); err != nil {
		s.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.writeJSON(w, http.StatusOK, s.Faults())
}

func (s *Simulator) writeError(w http.ResponseWriter, code int, msg string) {
	s.writeJSON(w, code, map[string]string{"error": msg})
}

func (s *Simulator) writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.log.Debug("write response", zap.Error(err))
	}
}
