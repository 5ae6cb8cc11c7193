package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/fleet-rollout/fleet/internal/sim"
)

// AdminPortEnv names the environment variable that turns the dev stack's
// admin endpoints on when DevOptions.AdminPort is 0 (so `worker stack` and
// `worker dev` get them without a flag).
const AdminPortEnv = "FLEET_ADMIN_PORT"

// The admin endpoints are for fault injection and inspection in dev and
// chaos runs only: they are served on 127.0.0.1, and only when asked for.
//
//	GET    /admin/healthz                  "ok"
//	GET    /admin/clusters                 [{id, product, version, generation, applyStarts}]
//	POST   /admin/kafka?down=true|false    Kafka drops every request (the connection is closed) / serves again
//	POST   /admin/datadog/failure?code=500[&n=-1]   the monitors endpoint fails the next n requests (-1: until cleared)
//	DELETE /admin/datadog/failure          the monitors endpoint answers again

// AdminCluster is one cluster in GET /admin/clusters (the simulator's
// GET /v1/state, which fleet-sim serves, has the same shape).
type AdminCluster = sim.ClusterState

// kafkaSwitches holds each dev Kafka's down switch (the control function
// that drops requests is installed once per cluster).
var kafkaSwitches sync.Map // *kfake.Cluster -> *atomic.Bool

func kafkaSwitch(k *kfake.Cluster) *atomic.Bool {
	if v, ok := kafkaSwitches.Load(k); ok {
		return v.(*atomic.Bool)
	}
	sw := &atomic.Bool{}
	if v, loaded := kafkaSwitches.LoadOrStore(k, sw); loaded {
		return v.(*atomic.Bool)
	}
	k.Control(func(kmsg.Request) (kmsg.Response, error, bool) {
		k.KeepControl()
		if !sw.Load() {
			return nil, nil, false
		}
		return nil, errors.New("admin: kafka is down"), true
	})
	return sw
}

// SetKafkaDown makes the dev stack's Kafka drop every request (down) or
// serve again.
func (d *Dev) SetKafkaDown(down bool) {
	kafkaSwitch(d.Kafka).Store(down)
	d.log.Warn("admin: kafka availability changed", zap.Bool("down", down))
}

// AdminHandler serves the admin endpoints.
func (d *Dev) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /admin/clusters", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(d.Sim.ClusterStates())
	})
	mux.HandleFunc("POST /admin/kafka", func(w http.ResponseWriter, r *http.Request) {
		down, err := strconv.ParseBool(r.URL.Query().Get("down"))
		if err != nil {
			http.Error(w, "down must be true or false", http.StatusBadRequest)
			return
		}
		d.SetKafkaDown(down)
		_, _ = fmt.Fprintf(w, "kafka down=%t\n", down)
	})
	mux.HandleFunc("POST /admin/datadog/failure", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.URL.Query().Get("code"))
		if err != nil || code < 400 || code > 599 {
			http.Error(w, "code must be an HTTP error status (400-599)", http.StatusBadRequest)
			return
		}
		n := -1
		if s := r.URL.Query().Get("n"); s != "" {
			if n, err = strconv.Atoi(s); err != nil {
				http.Error(w, "n must be a count (-1: until cleared)", http.StatusBadRequest)
				return
			}
		}
		d.Datadog.SetFailure(code, n)
		_, _ = fmt.Fprintf(w, "monitors endpoint fails with %d (n=%d)\n", code, n)
	})
	mux.HandleFunc("DELETE /admin/datadog/failure", func(w http.ResponseWriter, _ *http.Request) {
		d.Datadog.ClearFailure()
		_, _ = w.Write([]byte("monitors endpoint answers again\n"))
	})
	return mux
}

// startAdmin serves the admin endpoints on 127.0.0.1:port (DevOptions.AdminPort,
// else FLEET_ADMIN_PORT) until ctx is done; neither set: nothing.
func (d *Dev) startAdmin(ctx context.Context, port int) error {
	if port == 0 {
		s := os.Getenv(AdminPortEnv)
		if s == "" {
			return nil
		}
		p, err := strconv.Atoi(s)
		if err != nil || p <= 0 || p > 65535 {
			return fmt.Errorf("dev: %s=%q is not a port", AdminPortEnv, s)
		}
		port = p
	}
	addr, err := serveBackground(ctx, port, d.AdminHandler(), d.log)
	if err != nil {
		return fmt.Errorf("dev: admin endpoints: %w", err)
	}
	d.AdminAddress = addr
	d.log.Info("admin endpoints (fault injection) listening", zap.String("addr", "http://"+addr))
	return nil
}
