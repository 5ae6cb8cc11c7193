package connect

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fleet-rollout/fleet/internal/connect/connecttest"
)

func TestKafkaFromEnvErrorsNameTheVariable(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"KAFKA_SASL_MECHANISM": "GSSAPI", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "pw-SECRET"}, "KAFKA_SASL_MECHANISM"},
		{map[string]string{"KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "KAFKA_SASL_PASSWORD": "pw-SECRET"}, "KAFKA_SASL_USERNAME"},
		{map[string]string{"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "u"}, "KAFKA_SASL_PASSWORD"},
		{map[string]string{"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "pw-SECRET"}, "KAFKA_SASL_MECHANISM"},
		{map[string]string{"KAFKA_SASL_MECHANISM": "OAUTHBEARER"}, "KAFKA_SASL_TOKEN"},
		{map[string]string{"KAFKA_TLS": "sure"}, "KAFKA_TLS"},
		{map[string]string{"KAFKA_TLS_CERT_FILE": "/c.pem"}, "KAFKA_TLS_KEY_FILE"},
		{map[string]string{"KAFKA_TLS": "false", "KAFKA_TLS_CA_FILE": "/ca.pem"}, "KAFKA_TLS"},
	} {
		_, err := KafkaOpts(mapEnv(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%v: error %v, want one naming %s", tc.env, err, tc.want)
		}
	}
	_, err := KafkaOpts(mapEnv(map[string]string{"KAFKA_TLS_CA_FILE": "/nonexistent/ca.pem"}))
	if err == nil || !strings.Contains(err.Error(), "KAFKA_TLS_CA_FILE") {
		t.Errorf("missing CA: %v", err)
	}
	opts, err := KafkaOpts(mapEnv(nil))
	if err != nil || len(opts) != 0 {
		t.Errorf("no settings: %v %v", opts, err)
	}
	k, err := KafkaFromEnv(mapEnv(map[string]string{"KAFKA_SASL_MECHANISM": "scram-sha-512", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "pw-SECRET", "KAFKA_TLS": "yes"}))
	if err != nil || k.SASLMechanism != SASLScramSHA512 || !k.TLS {
		t.Fatalf("%v %v", k, err)
	}
	if strings.Contains(k.String(), "SECRET") || strings.Contains(k.GoString(), "SECRET") {
		t.Fatalf("String shows the password: %s", k)
	}
}

// A kfake cluster over TLS with SASL/SCRAM-SHA-256: the credentials from
// the environment produce and consume; a wrong password fails.
func TestKafkaSCRAMOverTLSAgainstKfake(t *testing.T) {
	certs := connecttest.New(t)
	cluster, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.EnableSASL(),
		kfake.Superuser(SASLScramSHA256, "fleet", "right-SECRET"),
		kfake.TLS(certs.ServerTLS(t, false)),
		kfake.SeedTopics(1, "conn-test"),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	env := map[string]string{
		"KAFKA_TLS_CA_FILE":    certs.CAFile,
		"KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
		"KAFKA_SASL_USERNAME":  "fleet",
		"KAFKA_SASL_PASSWORD":  "right-SECRET",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	opts, err := KafkaOpts(mapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	prod, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic("conn-test")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("produce with the right password: %v", err)
	}
	cons, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics("conn-test"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	fs := cons.PollFetches(ctx)
	if err := fs.Err(); err != nil {
		t.Fatalf("consume: %v", err)
	}
	if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "hello" {
		t.Fatalf("consumed %v", recs)
	}

	// Wrong password: kfake drops the connection (EOF) after a failed SASL
	// exchange, as it does for any invalid SASL.
	env["KAFKA_SASL_PASSWORD"] = "wrong"
	bad, err := KafkaOpts(mapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic("conn-test"),
		kgo.RecordRetries(1), kgo.RetryTimeout(3 * time.Second)}, bad...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	defer pcancel()
	err = wrong.ProduceSync(pctx, &kgo.Record{Value: []byte("nope")}).FirstErr()
	if err == nil {
		t.Fatal("produce with a wrong password succeeded")
	}
	t.Logf("wrong password: %v", err)

	// Without the CA, the server's certificate is not trusted.
	delete(env, "KAFKA_TLS_CA_FILE")
	env["KAFKA_TLS"] = "true"
	env["KAFKA_SASL_PASSWORD"] = "right-SECRET"
	untrusted, err := KafkaOpts(mapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic("conn-test"),
		kgo.RecordRetries(1)}, untrusted...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	uctx, ucancel := context.WithTimeout(ctx, 5*time.Second)
	defer ucancel()
	if err := nc.ProduceSync(uctx, &kgo.Record{Value: []byte("nope")}).FirstErr(); err == nil {
		t.Fatal("produce trusting the system CAs only succeeded")
	}
}
