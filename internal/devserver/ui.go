package devserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// UIBuildHint is how to build the Temporal Web UI binary StartUI launches. The
// UI server lives in its own module (tools/ui) because it cannot share go.mod
// with go.temporal.io/server.
const UIBuildHint = "cd tools/ui && go build -o /tmp/fleet-ui ."

// StartUI launches the Temporal Web UI binary built from tools/ui as a child
// process, serving http://127.0.0.1:port against the Temporal frontend at
// temporalAddr. It returns once the UI answers its health check. ctx bounds
// that wait only; the UI runs until stop is called (or this process exits: the
// child is started with -exit-with-parent). The child's output goes to log at
// info level. stop is safe to call more than once.
func StartUI(ctx context.Context, binPath, temporalAddr string, port int, log *zap.Logger) (stop func(), err error) {
	if log == nil {
		log = zap.NewNop()
	}
	if binPath == "" {
		return nil, fmt.Errorf("devserver: no Temporal Web UI binary given; build one with `%s`", UIBuildHint)
	}
	st, err := os.Stat(binPath)
	if err != nil {
		return nil, fmt.Errorf("devserver: Temporal Web UI binary %s not found (build it with `%s`): %w", binPath, UIBuildHint, err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("devserver: Temporal Web UI binary %s is not an executable file (build it with `%s`)", binPath, UIBuildHint)
	}
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("devserver: invalid UI port %d", port)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := checkPortFree(addr); err != nil {
		return nil, fmt.Errorf("devserver: UI address %s is not free: %w", addr, err)
	}

	cmd := exec.Command(binPath,
		"-temporal", temporalAddr,
		"-host", "127.0.0.1",
		"-port", strconv.Itoa(port),
		"-exit-with-parent",
	)
	cmd.Env = os.Environ()
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("devserver: starting %s: %w", binPath, err)
	}
	go logLines(pr, log)

	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait() // returns once the output is copied
		_ = pw.Close()
		close(exited)
	}()

	var once sync.Once
	stop = func() {
		once.Do(func() {
			select {
			case <-exited:
				return
			default:
			}
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				_ = cmd.Process.Kill()
			}
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		})
	}

	// Wait for the health endpoint, the child's exit, or the caller giving up.
	waitCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	url := "http://" + addr + "/healthz"
	hc := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(waitCtx, http.MethodGet, url, nil)
		if resp, err := hc.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				log.Info("Temporal Web UI ready", zap.String("url", "http://"+addr), zap.String("temporal", temporalAddr))
				return stop, nil
			}
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("devserver: Temporal Web UI exited during startup: %v", waitErr)
		case <-waitCtx.Done():
			stop()
			return nil, fmt.Errorf("devserver: Temporal Web UI did not become ready on %s: %w", addr, waitCtx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func logLines(r io.Reader, log *zap.Logger) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		log.Info(sc.Text())
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.ErrClosedPipe) {
		log.Debug("ui output", zap.Error(err))
	}
	_, _ = io.Copy(io.Discard, r) // never block the child on a full pipe
}
