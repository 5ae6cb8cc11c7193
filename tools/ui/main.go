// Command fleet-ui serves the Temporal Web UI (github.com/temporalio/ui-server)
// pointed at a Temporal frontend's gRPC address.
//
// It lives in a module of its own because ui-server and go.temporal.io/server pin
// different go.temporal.io/api versions and do not compile in one go.mod. The
// worker's dev mode launches the built binary as a child process
// (internal/devserver.StartUI).
//
//	cd tools/ui && go build -o /tmp/fleet-ui .
//	/tmp/fleet-ui -temporal 127.0.0.1:7233 -port 8233
//
// Flags fall back to the environment: TEMPORAL_ADDRESS, FLEET_UI_HOST, FLEET_UI_PORT,
// TEMPORAL_NAMESPACE.
package main

import (
	"flag"
	"log"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
)

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	log.SetFlags(log.LstdFlags)
	log.SetPrefix("fleet-ui: ")

	defPort, err := strconv.Atoi(envOr("FLEET_UI_PORT", "8233"))
	if err != nil {
		log.Fatalf("FLEET_UI_PORT: %v", err)
	}
	temporalAddr := flag.String("temporal", envOr("TEMPORAL_ADDRESS", "127.0.0.1:7233"), "Temporal frontend gRPC address (host:port)")
	host := flag.String("host", envOr("FLEET_UI_HOST", "127.0.0.1"), "address the UI binds to")
	port := flag.Int("port", defPort, "HTTP port the UI listens on")
	namespace := flag.String("namespace", envOr("TEMPORAL_NAMESPACE", "default"), "namespace the UI opens by default")
	exitWithParent := flag.Bool("exit-with-parent", false, "exit when the parent process goes away (set by the worker's dev mode)")
	flag.Parse()

	if *port <= 0 || *port > 65535 {
		log.Fatalf("invalid -port %d", *port)
	}

	srv := uiserver.NewServer(uioptions.WithConfigProvider(&uiconfig.Config{
		TemporalGRPCAddress: *temporalAddr,
		Host:                *host,
		Port:                *port,
		EnableUI:            true,
		DefaultNamespace:    *namespace,
		// Plain HTTP on loopback: the CSRF cookie must not require TLS.
		CORS:             uiconfig.CORS{CookieInsecure: true},
		HideLogs:         true,
		DisableNewsFetch: true, // no internet needed
	}))

	errc := make(chan error, 1)
	go func() { errc <- srv.Start() }()
	log.Printf("serving Temporal Web UI on http://%s:%d (Temporal at %s)", *host, *port, *temporalAddr)

	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)

	var parentGone <-chan struct{}
	if *exitWithParent {
		parentGone = watchParent(os.Getppid())
	}

	select {
	case err := <-errc:
		if err != nil {
			log.Fatalf("ui server: %v", err)
		}
		log.Fatal("ui server stopped")
	case s := <-sigc:
		log.Printf("received %v, stopping", s)
	case <-parentGone:
		log.Print("parent process exited, stopping")
	}
	srv.Stop()
}

// watchParent closes the returned channel once the process is re-parented,
// i.e. its original parent has exited.
func watchParent(ppid int) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for range t.C {
			if os.Getppid() != ppid {
				close(done)
				return
			}
		}
	}()
	return done
}
