// Package connect builds the worker's and the CLI's connections the way the
// ecosystem configures them: Temporal from the temporal CLI's profiles
// (its TOML config file) and the TEMPORAL_* variables, via
// go.temporal.io/sdk/contrib/envconfig; Kafka with TLS and SASL from
// KAFKA_* variables. It imports no workflow code.
//
// Credentials (API keys, passwords, tokens, key material) never appear in
// what Fields returns nor in the errors of this package.
package connect

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/BurntSushi/toml"
	sdkclient "go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	"go.uber.org/zap"
)

// DefaultNamespace is the namespace when neither flag, variable nor profile
// names one.
const DefaultNamespace = "default"

// Getenv reads one environment variable; os.Getenv in production, a map in
// tests. An empty value counts as unset.
type Getenv func(string) string

// Overrides are the command line's: each non-empty field wins over the
// environment and the profile.
type Overrides struct {
	Address   string
	Namespace string
	// Profile selects the profile of the config file (as TEMPORAL_PROFILE).
	Profile string
	// ConfigFile is the TOML file (as TEMPORAL_CONFIG_FILE).
	ConfigFile string
}

// Temporal is how to reach Temporal. Build it with LoadTemporal; a zero
// Temporal (or one given only an Address) is a plaintext connection.
type Temporal struct {
	// Profile is the name of the profile the settings started from and
	// ConfigFile the file it was read from ("" when no file was found).
	Profile    string
	ConfigFile string
	// Address and Namespace are the resolved frontend and namespace.
	Address   string
	Namespace string

	prof envconfig.ClientConfigProfile
}

// LoadTemporal resolves the connection: the profile of the temporal CLI's
// config file (TEMPORAL_CONFIG_FILE, default
// $XDG_CONFIG_HOME/temporalio/temporal.toml; profile TEMPORAL_PROFILE or
// "default"), then the TEMPORAL_* variables (TEMPORAL_ADDRESS,
// TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS,
// TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH,
// TEMPORAL_TLS_SERVER_CA_CERT_PATH, TEMPORAL_TLS_SERVER_NAME, ...), then
// ov. defaultAddress is used when none of them names an address.
//
// A named profile that is missing, an unreadable or malformed file and a
// malformed TEMPORAL_TLS are errors; errors never carry credentials.
func LoadTemporal(getenv Getenv, ov Overrides, defaultAddress string) (Temporal, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	lookup := envLookup(getenv)
	for _, key := range []string{"TEMPORAL_TLS", "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION"} {
		if v := getenv(key); v != "" {
			if _, ok := parseBool(v); !ok {
				return Temporal{}, fmt.Errorf("%s=%q: want true or false", key, v)
			}
		}
	}
	file := firstNonEmpty(ov.ConfigFile, getenv("TEMPORAL_CONFIG_FILE"))
	profile := firstNonEmpty(ov.Profile, getenv("TEMPORAL_PROFILE"))
	path := file
	if path == "" {
		path = envconfig.DefaultConfigFilePath()
	}
	t := Temporal{Profile: firstNonEmpty(profile, envconfig.DefaultConfigFileProfile)}
	if path != "" {
		if _, err := os.Stat(path); err == nil {
			t.ConfigFile = path
		} else if file != "" {
			return Temporal{}, fmt.Errorf("temporal config file %s (TEMPORAL_CONFIG_FILE): %w", file, err)
		}
	}
	prof, err := envconfig.LoadClientConfigProfile(envconfig.LoadClientConfigProfileOptions{
		ConfigFilePath:    file,
		ConfigFileProfile: profile,
		EnvLookup:         lookup,
	})
	if err != nil {
		return Temporal{}, cleanLoadError(err, t.ConfigFile, profile)
	}
	if ov.Address != "" {
		prof.Address = ov.Address
	}
	if ov.Namespace != "" {
		prof.Namespace = ov.Namespace
	}
	if prof.Address == "" {
		prof.Address = defaultAddress
	}
	if prof.Namespace == "" {
		prof.Namespace = DefaultNamespace
	}
	t.Address, t.Namespace, t.prof = prof.Address, prof.Namespace, prof
	return t, nil
}

// cleanLoadError says which file and profile failed without repeating the
// file's content: a TOML error may quote a line, and the line an API key.
func cleanLoadError(err error, file, profile string) error {
	var perr toml.ParseError
	if errors.As(err, &perr) {
		return fmt.Errorf("temporal config file %s: malformed TOML at line %d", file, perr.Position.Line)
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "unable to find profile"):
		return fmt.Errorf("temporal profile %q not found in %s (--profile, TEMPORAL_PROFILE)", profile, firstNonEmpty(file, "the temporal config file (none found)"))
	case strings.Contains(msg, "failed parsing config"):
		return fmt.Errorf("temporal config file %s: malformed (check the types of its values)", file)
	}
	return fmt.Errorf("temporal config: %w", err)
}

// APIKey says whether an API key is configured (its value is never shown).
func (t Temporal) APIKey() bool { return t.prof.APIKey != "" }

// TLS says whether the connection uses TLS.
func (t Temporal) TLS() bool {
	if t.prof.TLS != nil {
		return !t.prof.TLS.Disabled
	}
	return t.prof.APIKey != ""
}

// ClientOptions are the SDK client options for this connection: address,
// namespace, TLS (client certificate, server CA, server name), API key and
// gRPC metadata. The caller adds Logger, Identity and the rest. Certificate
// files are read here.
func (t Temporal) ClientOptions() (sdkclient.Options, error) {
	prof := t.prof
	prof.Address, prof.Namespace = t.Address, t.Namespace
	if prof.Namespace == "" {
		prof.Namespace = DefaultNamespace
	}
	opts, err := prof.ToClientOptions(envconfig.ToClientOptionsRequest{})
	if err != nil {
		// Errors name paths, never key material (envconfig's do not either).
		return sdkclient.Options{}, fmt.Errorf("temporal TLS settings: %w", err)
	}
	if opts.ConnectionOptions.TLS != nil && opts.ConnectionOptions.TLS.MinVersion == 0 {
		opts.ConnectionOptions.TLS.MinVersion = tls.VersionTLS12
	}
	return opts, nil
}

// Fields describe the connection for a log line: paths and booleans for
// the credentials, never their values.
func (t Temporal) Fields() []zap.Field {
	f := []zap.Field{
		zap.String("temporal", t.Address),
		zap.String("namespace", t.Namespace),
		zap.Bool("temporalTLS", t.TLS()),
		zap.Bool("temporalAPIKey", t.APIKey()),
	}
	if t.ConfigFile != "" {
		f = append(f, zap.String("temporalConfigFile", t.ConfigFile), zap.String("temporalProfile", t.Profile))
	}
	if tl := t.prof.TLS; tl != nil && !tl.Disabled {
		if tl.ClientCertPath != "" || len(tl.ClientCertData) > 0 {
			f = append(f, zap.String("temporalClientCert", firstNonEmpty(tl.ClientCertPath, "(inline)")))
		}
		if tl.ServerCACertPath != "" || len(tl.ServerCACertData) > 0 {
			f = append(f, zap.String("temporalServerCA", firstNonEmpty(tl.ServerCACertPath, "(inline)")))
		}
		if tl.ServerName != "" {
			f = append(f, zap.String("temporalServerName", tl.ServerName))
		}
		if tl.DisableHostVerification {
			f = append(f, zap.Bool("temporalHostVerification", false))
		}
	}
	if len(t.prof.GRPCMeta) > 0 {
		keys := make([]string, 0, len(t.prof.GRPCMeta))
		for k := range t.prof.GRPCMeta {
			keys = append(keys, k)
		}
		f = append(f, zap.Strings("temporalGRPCMetaKeys", keys))
	}
	return f
}

// envLookup adapts a Getenv to envconfig: empty counts as unset, and the
// TEMPORAL_GRPC_META_* variables come from the process environment when
// getenv is os.Getenv-backed (they are listed from os.Environ and read
// through getenv).
type envLookup Getenv

func (e envLookup) LookupEnv(key string) (string, bool) {
	v := e(key)
	if key == "TEMPORAL_TLS" || key == "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION" {
		if b, ok := parseBool(v); ok {
			return b, true
		}
	}
	return v, v != ""
}

func (e envLookup) Environ() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "TEMPORAL_GRPC_META_") {
			if v := e(k); v != "" {
				out = append(out, k+"="+v)
			}
		}
	}
	return out
}

// parseBool accepts what people write for a switch; it returns "true" or
// "false" as envconfig expects.
func parseBool(v string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on":
		return "true", true
	case "0", "false", "no", "off":
		return "false", true
	}
	return "", false
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// String and GoString keep the API key and key material out of %v and %#v.
func (t Temporal) String() string {
	return fmt.Sprintf("temporal{address:%q namespace:%q profile:%q configFile:%q tls:%t apiKey:%t}",
		t.Address, t.Namespace, t.Profile, t.ConfigFile, t.TLS(), t.APIKey())
}

// GoString is String.
func (t Temporal) GoString() string { return t.String() }
