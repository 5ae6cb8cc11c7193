// Package devservertest starts an in-process Temporal server that accepts
// mutual TLS only, for the connection tests of the worker and the CLI.
package devservertest

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/fleet-rollout/fleet/internal/connect/connecttest"
	"github.com/fleet-rollout/fleet/internal/devserver"
)

// Headers records the "authorization" header of every frontend call.
type Headers struct {
	mu   sync.Mutex
	auth []string
}

// Authorization returns the authorization headers seen so far.
func (h *Headers) Authorization() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.auth...)
}

func (h *Headers) intercept(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			h.mu.Lock()
			h.auth = append(h.auth, v...)
			h.mu.Unlock()
		}
	}
	return next(ctx, req)
}

// StartMTLS starts a server on a free port whose frontend requires a client
// certificate signed by certs' CA; it stops with the test.
func StartMTLS(t testing.TB, certs connecttest.Certs) (*devserver.Server, *Headers) {
	t.Helper()
	port, err := devserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	h := &Headers{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{
		DataDir:          t.TempDir(),
		Port:             port,
		SearchAttributes: devserver.DefaultSearchAttributes(),
		Log:              zap.NewNop(),
		TLS: &devserver.TLS{
			CertFile: certs.ServerCert, KeyFile: certs.ServerKey, ClientCAFile: certs.CAFile,
			ClientCertFile: certs.ClientCert, ClientKeyFile: certs.ClientKey,
			RootCAFile: certs.CAFile, ServerName: certs.ServerName,
		},
		FrontendInterceptors: []grpc.UnaryServerInterceptor{h.intercept},
	})
	if err != nil {
		t.Fatalf("start the mTLS Temporal server: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	return srv, h
}
