package connect

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func mapEnv(m map[string]string) Getenv { return func(k string) string { return m[k] } }

// noFile points TEMPORAL_CONFIG_FILE away from the developer's own file.
func noFile(t *testing.T, m map[string]string) map[string]string {
	if _, ok := m["TEMPORAL_CONFIG_FILE"]; !ok {
		p := filepath.Join(t.TempDir(), "none.toml")
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		m["TEMPORAL_CONFIG_FILE"] = p
	}
	return m
}

const profiles = `
[profile.default]
address = "default.example.com:7233"
namespace = "ns-default"

[profile.prod]
address = "prod.example.com:7233"
namespace = "ns-prod"
api_key = "profile-key-SECRET"
`

func writeProfiles(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "temporal.toml")
	if err := os.WriteFile(p, []byte(profiles), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadTemporalDefaults(t *testing.T) {
	tc, err := LoadTemporal(mapEnv(noFile(t, map[string]string{})), Overrides{}, "127.0.0.1:7233")
	if err != nil {
		t.Fatal(err)
	}
	if tc.Address != "127.0.0.1:7233" || tc.Namespace != "default" || tc.TLS() || tc.APIKey() {
		t.Fatalf("got %v", tc)
	}
	opts, err := tc.ClientOptions()
	if err != nil {
		t.Fatal(err)
	}
	if opts.HostPort != "127.0.0.1:7233" || opts.Namespace != "default" || opts.ConnectionOptions.TLS != nil || opts.Credentials != nil {
		t.Fatalf("options %+v", opts)
	}
}

// Flags override the environment, which overrides the profile.
func TestLoadTemporalPrecedence(t *testing.T) {
	file := writeProfiles(t)
	env := map[string]string{"TEMPORAL_CONFIG_FILE": file}

	tc, err := LoadTemporal(mapEnv(env), Overrides{}, "127.0.0.1:7233")
	if err != nil {
		t.Fatal(err)
	}
	if tc.Address != "default.example.com:7233" || tc.Namespace != "ns-default" || tc.ConfigFile != file || tc.Profile != "default" {
		t.Fatalf("default profile: %v", tc)
	}

	env["TEMPORAL_PROFILE"] = "prod"
	tc, err = LoadTemporal(mapEnv(env), Overrides{}, "127.0.0.1:7233")
	if err != nil {
		t.Fatal(err)
	}
	if tc.Address != "prod.example.com:7233" || tc.Namespace != "ns-prod" || !tc.APIKey() || !tc.TLS() {
		t.Fatalf("prod profile: %v", tc)
	}

	env["TEMPORAL_ADDRESS"] = "env.example.com:7233"
	tc, err = LoadTemporal(mapEnv(env), Overrides{}, "127.0.0.1:7233")
	if err != nil {
		t.Fatal(err)
	}
	if tc.Address != "env.example.com:7233" || tc.Namespace != "ns-prod" {
		t.Fatalf("env over profile: %v", tc)
	}

	tc, err = LoadTemporal(mapEnv(env), Overrides{Address: "flag.example.com:7233", Namespace: "ns-flag", Profile: "default"}, "127.0.0.1:7233")
	if err != nil {
		t.Fatal(err)
	}
	if tc.Address != "flag.example.com:7233" || tc.Namespace != "ns-flag" || tc.Profile != "default" || tc.APIKey() {
		t.Fatalf("flags over env: %v", tc)
	}

	// TEMPORAL_TLS=false turns TLS off even with an API key.
	env["TEMPORAL_TLS"] = "false"
	tc, err = LoadTemporal(mapEnv(env), Overrides{}, "")
	if err != nil {
		t.Fatal(err)
	}
	if tc.TLS() || !tc.APIKey() {
		t.Fatalf("TLS off: %v", tc)
	}
}

func TestLoadTemporalErrorsAndLogsShowNoSecret(t *testing.T) {
	file := writeProfiles(t)
	_, err := LoadTemporal(mapEnv(map[string]string{"TEMPORAL_CONFIG_FILE": file}), Overrides{Profile: "staging"}, "")
	if err == nil || !strings.Contains(err.Error(), `"staging"`) {
		t.Fatalf("missing profile: %v", err)
	}
	_, err = LoadTemporal(mapEnv(noFile(t, map[string]string{"TEMPORAL_TLS": "maybe"})), Overrides{}, "")
	if err == nil || !strings.Contains(err.Error(), "TEMPORAL_TLS") {
		t.Fatalf("bad TEMPORAL_TLS: %v", err)
	}
	_, err = LoadTemporal(mapEnv(map[string]string{"TEMPORAL_CONFIG_FILE": filepath.Join(t.TempDir(), "missing.toml")}), Overrides{}, "")
	if err == nil || !strings.Contains(err.Error(), "TEMPORAL_CONFIG_FILE") {
		t.Fatalf("missing file: %v", err)
	}

	broken := filepath.Join(t.TempDir(), "broken.toml")
	if err := os.WriteFile(broken, []byte("[profile.default]\napi_key = \"key-SECRET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadTemporal(mapEnv(map[string]string{"TEMPORAL_CONFIG_FILE": broken}), Overrides{}, "")
	if err == nil || strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), "line") {
		t.Fatalf("broken file: %v", err)
	}

	env := noFile(t, map[string]string{
		"TEMPORAL_API_KEY":              "env-key-SECRET",
		"TEMPORAL_TLS_CLIENT_CERT_PATH": "/nonexistent/client.pem",
		"TEMPORAL_TLS_CLIENT_KEY_PATH":  "/nonexistent/client.key",
	})
	tc, err := LoadTemporal(mapEnv(env), Overrides{}, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = tc.ClientOptions()
	if err == nil || strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), "/nonexistent/client.pem") {
		t.Fatalf("unreadable cert: %v", err)
	}
	core, logs := observer.New(zap.DebugLevel)
	zap.New(core).Info("x", tc.Fields()...)
	for _, e := range logs.All() {
		for k, v := range e.ContextMap() {
			if strings.Contains(k+" "+toString(v), "SECRET") {
				t.Fatalf("field %s=%v shows the key", k, v)
			}
		}
		if e.ContextMap()["temporalAPIKey"] != true || e.ContextMap()["temporalClientCert"] != "/nonexistent/client.pem" {
			t.Fatalf("fields %v", e.ContextMap())
		}
	}
	for _, s := range []string{tc.String(), tc.GoString()} {
		if strings.Contains(s, "SECRET") {
			t.Fatalf("String shows the key: %s", s)
		}
	}
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}
