package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/connect/connecttest"
	"github.com/fleet-rollout/fleet/internal/devserver/devservertest"
)

// fleetCLI runs the CLI with the real Temporal dialer and vars as its
// whole environment; it returns stdout, stderr and the exit code.
func fleetCLI(t *testing.T, vars map[string]string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := defaultEnv()
	e.stdout, e.stderr, e.tty = &out, &errOut, false
	e.getenv = func(k string) string { return vars[k] }
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := report(&errOut, run(ctx, args, e))
	return out.String(), errOut.String(), code
}

// The CLI reaches a Temporal server that accepts mutual TLS only: with the
// client certificate from TEMPORAL_TLS_* or from a profile of the temporal
// CLI's config file (--profile), and not without it.
func TestFleetOverMutualTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	certs := connecttest.New(t)
	srv, headers := devservertest.StartMTLS(t, certs)
	dir := t.TempDir()
	emptyConfig := filepath.Join(dir, "empty.toml")
	require.NoError(t, os.WriteFile(emptyConfig, nil, 0o600))
	base := func(extra map[string]string) map[string]string {
		m := map[string]string{"FLEET_USER": "alice", "TEMPORAL_CONFIG_FILE": emptyConfig, "TEMPORAL_ADDRESS": srv.Address()}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	withCert := map[string]string{
		"TEMPORAL_TLS_CLIENT_CERT_PATH":    certs.ClientCert,
		"TEMPORAL_TLS_CLIENT_KEY_PATH":     certs.ClientKey,
		"TEMPORAL_TLS_SERVER_CA_CERT_PATH": certs.CAFile,
	}

	t.Run("plaintext fails", func(t *testing.T) {
		_, stderr, code := fleetCLI(t, base(nil), "list")
		assert.Equal(t, exitUnreachable, code, stderr)
		t.Log(stderr)
		assert.Contains(t, stderr, "connect to Temporal at "+srv.Address())
	})
	t.Run("TLS without a client certificate fails", func(t *testing.T) {
		_, stderr, code := fleetCLI(t, base(map[string]string{"TEMPORAL_TLS": "true", "TEMPORAL_TLS_SERVER_CA_CERT_PATH": certs.CAFile}), "list")
		assert.Equal(t, exitUnreachable, code, stderr)
		t.Log(stderr)
		assert.Contains(t, stderr, "TLS true")
	})
	t.Run("a server not signed by the trusted CA fails", func(t *testing.T) {
		vars := base(withCert)
		vars["TEMPORAL_TLS_SERVER_CA_CERT_PATH"] = certs.OtherCAFile
		_, stderr, code := fleetCLI(t, vars, "list")
		assert.Equal(t, exitUnreachable, code, stderr)
		t.Log(stderr)
	})
	t.Run("client certificate from the environment", func(t *testing.T) {
		stdout, stderr, code := fleetCLI(t, base(withCert), "list")
		require.Equal(t, 0, code, stderr)
		t.Log(stdout)
	})
	t.Run("--address wins over TEMPORAL_ADDRESS", func(t *testing.T) {
		vars := base(withCert)
		vars["TEMPORAL_ADDRESS"] = "127.0.0.1:1"
		_, stderr, code := fleetCLI(t, vars, "--address", srv.Address(), "list")
		require.Equal(t, 0, code, stderr)
		_, stderr, code = fleetCLI(t, vars, "list")
		assert.Equal(t, exitUnreachable, code, stderr)
		t.Log(stderr)
		assert.Contains(t, stderr, "127.0.0.1:1")
	})
	t.Run("profile file and --profile", func(t *testing.T) {
		file := filepath.Join(dir, "temporal.toml")
		require.NoError(t, os.WriteFile(file, []byte(fmt.Sprintf(`
[profile.default]
address = "127.0.0.1:1"

[profile.fleet-mtls]
address = %q
namespace = "default"
[profile.fleet-mtls.tls]
client_cert_path = %q
client_key_path = %q
server_ca_cert_path = %q
server_name = %q
`, srv.Address(), certs.ClientCert, certs.ClientKey, certs.CAFile, certs.ServerName)), 0o600))
		vars := map[string]string{"FLEET_USER": "alice", "TEMPORAL_CONFIG_FILE": file}

		_, stderr, code := fleetCLI(t, vars, "--profile", "fleet-mtls", "list")
		require.Equal(t, 0, code, stderr)
		// Global flags may follow the command too.
		_, stderr, code = fleetCLI(t, vars, "list", "--profile=fleet-mtls")
		require.Equal(t, 0, code, stderr)
		vars["TEMPORAL_PROFILE"] = "fleet-mtls"
		_, stderr, code = fleetCLI(t, vars, "list")
		require.Equal(t, 0, code, stderr)

		// The default profile points elsewhere; a missing profile is named.
		delete(vars, "TEMPORAL_PROFILE")
		_, stderr, code = fleetCLI(t, vars, "list")
		assert.Equal(t, exitUnreachable, code, stderr)
		t.Log(stderr)
		assert.Contains(t, stderr, "127.0.0.1:1")
		_, stderr, code = fleetCLI(t, vars, "--profile", "staging", "list")
		assert.Equal(t, 1, code, stderr)
		t.Log(stderr)
		assert.Contains(t, stderr, `temporal profile "staging" not found in `+file)
	})
	t.Run("API key arrives as a bearer token over TLS", func(t *testing.T) {
		const key = "fleet-test-key-SECRET"
		vars := base(withCert)
		vars["TEMPORAL_API_KEY"] = key
		_, stderr, code := fleetCLI(t, vars, "list")
		require.Equal(t, 0, code, stderr)
		assert.Contains(t, headers.Authorization(), "Bearer "+key)

		// A failing connection does not show the key.
		vars["TEMPORAL_TLS_SERVER_CA_CERT_PATH"] = certs.OtherCAFile
		_, stderr, code = fleetCLI(t, vars, "list")
		assert.Equal(t, exitUnreachable, code, stderr)
		t.Log(stderr)
		assert.NotContains(t, stderr, key)
	})
	t.Run("no header without an API key", func(t *testing.T) {
		before := len(headers.Authorization())
		_, stderr, code := fleetCLI(t, base(withCert), "list")
		require.Equal(t, 0, code, stderr)
		assert.Len(t, headers.Authorization(), before)
	})
	assert.False(t, strings.Contains(strings.Join(headers.Authorization(), ","), "Bearer \n"))
}

func TestGlobalFlags(t *testing.T) {
	e, _, _ := testEnv(t, nil)
	require.NoError(t, run(context.Background(), []string{"--address", "a:1", "--namespace=ns", "version", "-profile", "p"}, e))
	assert.Equal(t, "a:1", e.global.Address)
	assert.Equal(t, "ns", e.global.Namespace)
	assert.Equal(t, "p", e.global.Profile)
	cfg := e.config()
	assert.Equal(t, "a:1", cfg.Address)
	assert.Equal(t, "ns", cfg.Namespace)

	for _, args := range [][]string{{"--address"}, {"--bogus", "list"}, {"--profile=", "list"}} {
		e, _, _ := testEnv(t, nil)
		err := run(context.Background(), args, e)
		var ue *usageError
		assert.ErrorAs(t, err, &ue, "%v", args)
	}
	e, out, _ := testEnv(t, nil)
	require.NoError(t, run(context.Background(), []string{"--help"}, e))
	assert.Contains(t, out.String(), "--profile NAME")
	assert.Contains(t, out.String(), "KAFKA_SASL_MECHANISM")
}
