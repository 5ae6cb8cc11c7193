package connect

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"go.uber.org/zap"
)

// SASL mechanisms KAFKA_SASL_MECHANISM accepts.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
	SASLOAuthBearer = "OAUTHBEARER"
)

// Kafka is how to reach Kafka beyond the seed brokers: TLS and SASL. The
// zero Kafka is plaintext without authentication (the dev stack).
type Kafka struct {
	// TLS turns TLS on (KAFKA_TLS, or implied by any KAFKA_TLS_* file or
	// name). CAFile is a PEM bundle of the CAs to trust instead of the
	// system's; CertFile and KeyFile a client certificate (mutual TLS);
	// ServerName overrides the name verified (SNI).
	TLS        bool
	CAFile     string
	CertFile   string
	KeyFile    string
	ServerName string
	// SASLMechanism is "" (none), PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or
	// OAUTHBEARER. Username and Password serve PLAIN and SCRAM; Token
	// OAUTHBEARER. Password and Token are never logged.
	SASLMechanism string
	Username      string
	Password      string
	Token         string
}

// KafkaFromEnv reads KAFKA_TLS, KAFKA_TLS_CA_FILE, KAFKA_TLS_CERT_FILE,
// KAFKA_TLS_KEY_FILE, KAFKA_TLS_SERVER_NAME, KAFKA_SASL_MECHANISM,
// KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD and KAFKA_SASL_TOKEN, and checks
// them (Validate). Errors name the variable, never a secret's value.
func KafkaFromEnv(getenv Getenv) (Kafka, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	k := Kafka{
		CAFile:        getenv("KAFKA_TLS_CA_FILE"),
		CertFile:      getenv("KAFKA_TLS_CERT_FILE"),
		KeyFile:       getenv("KAFKA_TLS_KEY_FILE"),
		ServerName:    getenv("KAFKA_TLS_SERVER_NAME"),
		SASLMechanism: strings.ToUpper(strings.TrimSpace(getenv("KAFKA_SASL_MECHANISM"))),
		Username:      getenv("KAFKA_SASL_USERNAME"),
		Password:      getenv("KAFKA_SASL_PASSWORD"),
		Token:         getenv("KAFKA_SASL_TOKEN"),
	}
	if v := getenv("KAFKA_TLS"); v != "" {
		b, ok := parseBool(v)
		if !ok {
			return Kafka{}, fmt.Errorf("KAFKA_TLS=%q: want true or false", v)
		}
		k.TLS = b == "true"
		if !k.TLS && (k.CAFile != "" || k.CertFile != "" || k.KeyFile != "" || k.ServerName != "") {
			return Kafka{}, fmt.Errorf("KAFKA_TLS=%s but KAFKA_TLS_* files or name are set", v)
		}
	} else {
		k.TLS = k.CAFile != "" || k.CertFile != "" || k.KeyFile != "" || k.ServerName != ""
	}
	if err := k.Validate(); err != nil {
		return Kafka{}, err
	}
	return k, nil
}

// Validate checks the settings without reading any file.
func (k Kafka) Validate() error {
	if (k.CertFile == "") != (k.KeyFile == "") {
		return fmt.Errorf("KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE go together (client certificate): set both or neither")
	}
	switch k.SASLMechanism {
	case "":
		for _, v := range []struct{ name, val string }{
			{"KAFKA_SASL_USERNAME", k.Username}, {"KAFKA_SASL_PASSWORD", k.Password}, {"KAFKA_SASL_TOKEN", k.Token},
		} {
			if v.val != "" {
				return fmt.Errorf("%s is set but KAFKA_SASL_MECHANISM is not (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER)", v.name)
			}
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if k.Username == "" {
			return fmt.Errorf("KAFKA_SASL_MECHANISM=%s needs KAFKA_SASL_USERNAME", k.SASLMechanism)
		}
		if k.Password == "" {
			return fmt.Errorf("KAFKA_SASL_MECHANISM=%s needs KAFKA_SASL_PASSWORD", k.SASLMechanism)
		}
		if k.Token != "" {
			return fmt.Errorf("KAFKA_SASL_TOKEN is for KAFKA_SASL_MECHANISM=OAUTHBEARER, not %s", k.SASLMechanism)
		}
	case SASLOAuthBearer:
		if k.Token == "" {
			return fmt.Errorf("KAFKA_SASL_MECHANISM=OAUTHBEARER needs KAFKA_SASL_TOKEN")
		}
		if k.Password != "" {
			return fmt.Errorf("KAFKA_SASL_PASSWORD is not used with KAFKA_SASL_MECHANISM=OAUTHBEARER (KAFKA_SASL_TOKEN is)")
		}
	default:
		return fmt.Errorf("KAFKA_SASL_MECHANISM=%q: unknown mechanism (want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER)", k.SASLMechanism)
	}
	return nil
}

// Opts are the franz-go options for TLS and SASL, to append to every Kafka
// client's options. The files are read here; nil for the zero Kafka.
func (k Kafka) Opts() ([]kgo.Opt, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	var opts []kgo.Opt
	if k.TLS {
		cfg, err := k.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if m := k.mechanism(); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

func (k Kafka) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: k.ServerName}
	if k.CAFile != "" {
		pem, err := os.ReadFile(k.CAFile)
		if err != nil {
			return nil, fmt.Errorf("KAFKA_TLS_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("KAFKA_TLS_CA_FILE %s: no PEM certificate found", k.CAFile)
		}
		cfg.RootCAs = pool
	}
	if k.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(k.CertFile, k.KeyFile)
		if err != nil {
			// crypto/tls's errors do not quote the key.
			return nil, fmt.Errorf("KAFKA_TLS_CERT_FILE/KAFKA_TLS_KEY_FILE (%s, %s): %w", k.CertFile, k.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func (k Kafka) mechanism() sasl.Mechanism {
	switch k.SASLMechanism {
	case SASLPlain:
		return plain.Auth{User: k.Username, Pass: k.Password}.AsMechanism()
	case SASLScramSHA256:
		return scram.Auth{User: k.Username, Pass: k.Password}.AsSha256Mechanism()
	case SASLScramSHA512:
		return scram.Auth{User: k.Username, Pass: k.Password}.AsSha512Mechanism()
	case SASLOAuthBearer:
		return oauth.Auth{Token: k.Token}.AsMechanism()
	}
	return nil
}

// Fields describe the settings for a log line, without the password or
// token.
func (k Kafka) Fields() []zap.Field {
	f := []zap.Field{zap.Bool("kafkaTLS", k.TLS)}
	if k.CAFile != "" {
		f = append(f, zap.String("kafkaCA", k.CAFile))
	}
	if k.CertFile != "" {
		f = append(f, zap.String("kafkaClientCert", k.CertFile))
	}
	if k.ServerName != "" {
		f = append(f, zap.String("kafkaServerName", k.ServerName))
	}
	if k.SASLMechanism != "" {
		f = append(f, zap.String("kafkaSASL", k.SASLMechanism))
		if k.Username != "" {
			f = append(f, zap.String("kafkaSASLUser", k.Username))
		}
	}
	return f
}

// KafkaOpts reads the environment (KafkaFromEnv) and returns the options
// to append to a Kafka client's: the one call the worker and the CLI make.
func KafkaOpts(getenv Getenv) ([]kgo.Opt, error) {
	k, err := KafkaFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	return k.Opts()
}

// String and GoString keep the password and the token out of %v and %#v.
func (k Kafka) String() string {
	return fmt.Sprintf("kafka{tls:%t ca:%q cert:%q serverName:%q sasl:%q user:%q password:%t token:%t}",
		k.TLS, k.CAFile, k.CertFile, k.ServerName, k.SASLMechanism, k.Username, k.Password != "", k.Token != "")
}

// GoString is String.
func (k Kafka) GoString() string { return k.String() }
