package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fleet-rollout/fleet/internal/drift"
	"github.com/fleet-rollout/fleet/internal/events"
	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/plan"
	"github.com/fleet-rollout/fleet/internal/sim"
	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/workflows"
)

// envWith is testEnv (Temporal fails the test) with more environment
// variables and the real inventory loader.
func envWith(t *testing.T, vars map[string]string) (*env, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	e, out, errOut := testEnv(t, nil)
	base := e.getenv
	e.getenv = func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		return base(k)
	}
	e.loadInventory = loadInventory
	e.history = func(context.Context, []string, string) ([]events.Entry, error) {
		t.Fatalf("the command read Kafka")
		return nil, nil
	}
	return e, out, errOut
}

// serveInventory serves clusters as the simulator's /v1/clusters does.
func serveInventory(t *testing.T, clusters []fleet.Cluster) string {
	t.Helper()
	body, err := json.Marshal(clusters)
	require.NoError(t, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/clusters" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v1/clusters"
}

func TestNewCommandsUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"status", "x", "--by", "cloud"}, "status: --by shows the fleet's versions: give it without a rollout ID"},
		{[]string{"status", "--by", "cloud,zone"}, `status: --by: unknown dimension "zone" (want one of cloud, region, environment, tier)`},
		{[]string{"drift", "extra"}, `drift: unexpected argument "extra"`},
		{[]string{"drift", "--product", "kafak"}, `drift: --product: unknown product "kafak" (want one of connect, kafka, ksqldb, schema-registry)`},
		{[]string{"drift", "--version", "3.6.1"}, "drift: --version needs --product"},
		{[]string{"drift", "--product", "kafka", "--version", "latest"}, `drift: --version: invalid version "latest"`},
		{[]string{"drift", "--write-spec"}, "drift: flag needs an argument: -write-spec"},
		{[]string{"history"}, "history: missing cluster ID"},
		{[]string{"history", "lkc-1", "lkc-2"}, `history: unexpected argument "lkc-2"`},
		{[]string{"history", " "}, "history: empty cluster ID"},
		{[]string{"history", "lkc-1", "--all"}, "history: flag provided but not defined: -all"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			e, out, _ := envWith(t, nil)
			e.loadInventory = func(context.Context, string) ([]fleet.Cluster, error) {
				t.Fatalf("the command read the inventory")
				return nil, nil
			}
			err := run(context.Background(), tt.args, e)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Equal(t, 2, report(&bytes.Buffer{}, err))
			assert.Empty(t, out.String())
		})
	}
}

func TestNewCommandsHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"help"}, []string{
			"fleet status ID [--json]\n  fleet status [--by cloud,region,environment] [--json]\n",
			"fleet drift [--product P] [--version V] [--json] [--write-spec FILE]",
			"fleet history CLUSTER [--json]",
			"KAFKA_BROKERS",
		}},
		{[]string{"status", "-h"}, []string{"Usage: fleet status ID [--json]\n       fleet status [--by cloud,region,environment] [--json]", "--by DIMS"}},
		{[]string{"help", "drift"}, []string{"--product PRODUCT", "--version VERSION", "--write-spec FILE", "fleet majority"}},
		{[]string{"history", "--help"}, []string{"Usage: fleet history CLUSTER [--json]", "fleet.events", "KAFKA_BROKERS"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			e, out, _ := envWith(t, nil)
			require.NoError(t, run(context.Background(), tt.args, e))
			for _, w := range tt.want {
				assert.Contains(t, out.String(), w)
			}
		})
	}
}

func TestParseBy(t *testing.T) {
	for in, want := range map[string][]string{
		"":                         nil,
		"none":                     nil,
		"cloud":                    {"cloud"},
		" cloud, env ,, region":    {"cloud", "environment", "region"},
		"cloud,region,environment": {"cloud", "region", "environment"},
	} {
		got, err := parseBy(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := parseBy("cloud,zone")
	require.Error(t, err)
}

func TestPercent(t *testing.T) {
	assert.Equal(t, "0%", percent(0, 10))
	assert.Equal(t, "0%", percent(1, 0))
	assert.Equal(t, "<1%", percent(1, 500))
	assert.Equal(t, "7%", percent(7, 100))
	assert.Equal(t, ">99%", percent(999, 1000))
	assert.Equal(t, "100%", percent(10, 10))
}

func TestRenderFleet(t *testing.T) {
	cs := []fleet.Cluster{
		{ID: "lkc-1", Product: "kafka", Cloud: "aws", Region: "us-east-1", Environment: "prod", Version: "3.6.1"},
		{ID: "lkc-2", Product: "kafka", Cloud: "aws", Region: "us-east-1", Environment: "non-prod", Version: "3.5.2"},
		{ID: "lkc-3", Product: "kafka", Cloud: "gcp", Region: "us-central1", Environment: "prod", Version: "3.6.1"},
		{ID: "sr-1", Product: "schema-registry", Cloud: "aws", Region: "us-east-1", Environment: "internal", Version: "7.6.0"},
	}
	d, err := drift.Distribution(cs, "cloud", "environment")
	require.NoError(t, err)
	var b bytes.Buffer
	renderFleet(&b, d)
	t.Log("\n" + b.String())
	want := `Fleet: 4 clusters, 2 products

Versions by product (newest first):
  PRODUCT          CLUSTERS  VERSIONS
  kafka            3         3.6.1: 2 (67%), 3.5.2: 1 (33%)
  schema-registry  1         7.6.0: 1 (100%)

By cloud:
  CLOUD  PRODUCT          CLUSTERS  VERSIONS
  aws    kafka            2         3.6.1: 1 (50%), 3.5.2: 1 (50%)
  aws    schema-registry  1         7.6.0: 1 (100%)
  gcp    kafka            1         3.6.1: 1 (100%)

By environment:
  ENVIRONMENT  PRODUCT          CLUSTERS  VERSIONS
  internal     schema-registry  1         7.6.0: 1 (100%)
  non-prod     kafka            1         3.5.2: 1 (100%)
  prod         kafka            2         3.6.1: 2 (100%)
`
	assert.Equal(t, want, b.String())

	b.Reset()
	renderFleet(&b, drift.VersionDistribution{})
	assert.Equal(t, "Fleet: no clusters in the inventory.\n", b.String())
}

func TestStatusWithoutIDShowsTheFleet(t *testing.T) {
	fl := sim.GenerateFleet(500, 1)
	url := serveInventory(t, fl)

	e, out, _ := envWith(t, map[string]string{"FLEET_INVENTORY": url})
	require.NoError(t, run(context.Background(), []string{"status"}, e))
	text := out.String()
	for _, want := range []string{"Fleet: 500 clusters, 4 products", "By cloud:", "By region:", "By environment:", "3.6.1: ", "3.4.1: "} {
		assert.Contains(t, text, want)
	}

	e, out, _ = envWith(t, map[string]string{"FLEET_INVENTORY": url})
	require.NoError(t, run(context.Background(), []string{"status", "--json", "--by", "env"}, e))
	var d drift.VersionDistribution
	require.NoError(t, json.Unmarshal(out.Bytes(), &d))
	assert.Equal(t, 500, d.Clusters)
	require.Len(t, d.By, 1)
	assert.Equal(t, "environment", d.By[0].By)
	sum := 0
	for _, g := range d.By[0].Groups {
		sum += g.Clusters
	}
	assert.Equal(t, 500, sum)

	e, out, _ = envWith(t, map[string]string{"FLEET_INVENTORY": url})
	require.NoError(t, run(context.Background(), []string{"status", "--by", ""}, e))
	assert.NotContains(t, out.String(), "By ")

	// With an ID it is still the rollout's status from Temporal.
	api := &fakeAPI{statuses: []*workflows.RolloutStatus{{Name: "x", State: workflows.StateRunning}}}
	e2, out2, _ := testEnv(t, api)
	require.NoError(t, run(context.Background(), []string{"status", "x"}, e2))
	assert.Equal(t, []string{"status x"}, api.calls)
	assert.Contains(t, out2.String(), "Rollout:")
}

// stragglers are the generated clusters not on their product's current version.
func stragglers(fl []fleet.Cluster, product string) []string {
	var ids []string
	for _, c := range fl {
		if (product == "" || c.Product == product) && c.Version != sim.CurrentVersion(c.Product) {
			ids = append(ids, c.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

func TestDriftFindsTheGeneratedStragglers(t *testing.T) {
	fl := sim.GenerateFleet(500, 1)
	url := serveInventory(t, fl)
	vars := map[string]string{"FLEET_INVENTORY": url}

	// --json: exactly the stragglers, each against its product's current version.
	e, out, _ := envWith(t, vars)
	require.NoError(t, run(context.Background(), []string{"drift", "--json"}, e))
	var rep driftReport
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep))
	var got []string
	for _, d := range rep.Drifts {
		got = append(got, d.ClusterID)
		assert.Equal(t, sim.CurrentVersion(d.Product), d.DesiredVersion, d.ClusterID)
		assert.Equal(t, drift.ReasonBehind, d.Reason)
		assert.Equal(t, drift.FromMajority, d.DesiredFrom)
	}
	slices.Sort(got)
	want := stragglers(fl, "")
	assert.Equal(t, want, got)
	assert.Equal(t, 500, rep.Clusters)
	assert.Equal(t, len(want), rep.Drifted)
	counted := 0
	for _, r := range rep.Reasons {
		counted += r.Clusters
	}
	assert.Equal(t, len(want), counted)

	// Text: the counts by reason, then the list.
	e, out, _ = envWith(t, vars)
	require.NoError(t, run(context.Background(), []string{"drift"}, e))
	text := out.String()
	t.Log("\n" + text)
	assert.Contains(t, text, "fleet majority")
	assert.Contains(t, text, "Drift: "+itoa(len(want))+" of 500 clusters")
	for _, id := range want {
		assert.Contains(t, text, "\n  "+id+" ")
	}
	assert.Less(t, strings.Index(text, "CLUSTERS  REASON"), strings.Index(text, "Drifted clusters:"))

	// --write-spec without --product: several products are behind.
	e, _, _ = envWith(t, vars)
	err := run(context.Background(), []string{"drift", "--write-spec", filepath.Join(t.TempDir(), "x.yaml")}, e)
	require.ErrorContains(t, err, "give --product (clusters are behind in connect, kafka, ksqldb, schema-registry)")

	// --product kafka --write-spec: a spec the parser and the planner take,
	// planning exactly the Kafka stragglers.
	path := filepath.Join(t.TempDir(), "remediate.yaml")
	e, out, _ = envWith(t, vars)
	require.NoError(t, run(context.Background(), []string{"drift", "--product", "kafka", "--write-spec", path}, e))
	kafka := stragglers(fl, "kafka")
	assert.Contains(t, out.String(), "Wrote "+path+`: rollout "remediate-kafka-3-6-1" brings `+itoa(len(kafka))+" kafka clusters up to 3.6.1.")
	assert.Contains(t, out.String(), "Next: fleet plan -f "+path)
	r, err := spec.Load(path)
	require.NoError(t, err)
	assert.Equal(t, "remediate-kafka-3-6-1", r.Name)
	assert.Equal(t, kafka, r.Include)
	p, err := plan.Build(r, fl, plan.Options{})
	require.NoError(t, err)
	assert.Equal(t, len(kafka), p.Total)

	// The spec is not overwritten.
	e, _, _ = envWith(t, vars)
	err = run(context.Background(), []string{"drift", "--product", "kafka", "--write-spec", path}, e)
	require.ErrorContains(t, err, "exists: not overwritten")

	// fleet plan takes the written file too.
	e, out, _ = envWith(t, vars)
	require.NoError(t, run(context.Background(), []string{"plan", "-f", path}, e))
	assert.Contains(t, out.String(), itoa(len(kafka))+" clusters to version 3.6.1")
}

func TestDriftWithAGivenVersion(t *testing.T) {
	fl := sim.GenerateFleet(500, 1)
	url := serveInventory(t, fl)
	e, out, errOut := envWith(t, map[string]string{"FLEET_INVENTORY": url})
	path := filepath.Join(t.TempDir(), "r.yaml")
	require.NoError(t, run(context.Background(),
		[]string{"drift", "--product", "kafka", "--version", "3.5.2", "--json", "--write-spec", path}, e))
	var rep driftReport
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep), "stdout is the JSON report only")
	kinds := map[string]int{}
	for _, d := range rep.Drifts {
		assert.Equal(t, "kafka", d.Product)
		assert.Equal(t, drift.FromDesired, d.DesiredFrom)
		kinds[d.Kind]++
	}
	assert.NotZero(t, kinds[drift.KindAhead], "the 3.6.1 clusters are ahead of 3.5.2")
	assert.NotZero(t, kinds[drift.KindBehind], "the 3.4.1 clusters are behind")
	assert.Contains(t, errOut.String(), "Left out "+itoa(kinds[drift.KindAhead])+" clusters ahead of 3.5.2: a remediation never downgrades.")
	r, err := spec.Load(path)
	require.NoError(t, err)
	assert.Len(t, r.Include, kinds[drift.KindBehind])
}

func TestDriftNoDrift(t *testing.T) {
	cs := []fleet.Cluster{
		{ID: "lkc-1", Product: "kafka", Cloud: "aws", Region: "us-east-1", Environment: "prod", Customer: "a", Version: "3.6.1", Brokers: 3},
	}
	e, out, _ := envWith(t, map[string]string{"FLEET_INVENTORY": serveInventory(t, cs)})
	err := run(context.Background(), []string{"drift", "--write-spec", filepath.Join(t.TempDir(), "x.yaml")}, e)
	require.ErrorContains(t, err, "nothing to remediate")
	assert.Contains(t, out.String(), "No drift: all 1 clusters run their product's desired version.")

	e, out, _ = envWith(t, map[string]string{"FLEET_INVENTORY": serveInventory(t, cs)})
	require.NoError(t, run(context.Background(), []string{"drift", "--product", "connect"}, e))
	assert.Equal(t, "No connect clusters in the inventory.\n", out.String())
}

func TestRenderDrift(t *testing.T) {
	cs := []fleet.Cluster{
		{ID: "lkc-1", Product: "kafka", Cloud: "aws", Region: "us-east-1", Environment: "prod", Version: "3.6.1"},
		{ID: "lkc-2", Product: "kafka", Cloud: "aws", Region: "us-east-1", Environment: "non-prod", Version: "3.5.2"},
		{ID: "lkc-3", Product: "kafka", Cloud: "gcp", Region: "us-central1", Environment: "prod", Version: "3.6.1"},
		{ID: "lkc-4", Product: "kafka", Cloud: "gcp", Region: "us-central1", Environment: "prod", Version: "3.5.2"},
		{ID: "lkc-5", Product: "kafka", Cloud: "gcp", Region: "us-central1", Environment: "prod", Version: "3.6.1"},
	}
	var b bytes.Buffer
	renderDrift(&b, buildDriftReport(cs, "", ""))
	t.Log("\n" + b.String())
	want := `Desired versions:
  PRODUCT  VERSION  FROM            RUNNING IT
  kafka    3.6.1    fleet majority  3 of 5 (60%)
A fleet-majority version is the one most of the product's clusters run; choose another with --product P --version V.

Drift: 2 of 5 clusters (40%): 2 behind the desired version
  CLUSTERS  REASON                      PRODUCT  VERSION  DESIRED
  2         behind the desired version  kafka    3.5.2    3.6.1

Drifted clusters:
  CLUSTER  PRODUCT  CLOUD  REGION       ENVIRONMENT  VERSION  DESIRED  REASON
  lkc-2    kafka    aws    us-east-1    non-prod     3.5.2    3.6.1    behind the desired version
  lkc-4    kafka    gcp    us-central1  prod         3.5.2    3.6.1    behind the desired version
`
	assert.Equal(t, want, b.String())

	b.Reset()
	renderDrift(&b, buildDriftReport(cs, "kafka", "3.7.0"))
	assert.Contains(t, b.String(), "kafka    3.7.0    given (--version)  0 of 5 (0%)")
	assert.NotContains(t, b.String(), "A fleet-majority version")

	b.Reset()
	renderDrift(&b, buildDriftReport(cs, "kafka", "3.5.2"))
	assert.Contains(t, b.String(), "Drift: 3 of 5 clusters (60%): 3 ahead of the desired version\n")
	assert.Contains(t, b.String(), "  3         ahead of the desired version  kafka    3.6.1    3.5.2\n")
}

var h0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func hAt(min int) time.Time { return h0.Add(time.Duration(min) * time.Minute) }

func TestRenderHistory(t *testing.T) {
	entries := []events.Entry{
		{RolloutID: "rollout/kafka-3-6-1", Version: "3.6.1", Phase: "prod", Batch: 3, First: hAt(2), Last: hAt(9),
			State: workflows.ClusterDone, RolloutState: "completed"},
		{RolloutID: "rollout/kafka-3-7-1", Version: "3.7.1", First: hAt(31), Last: hAt(41),
			State: workflows.ClusterAborted, Message: "aborted by alice", RolloutState: "aborted",
			Alerts: []events.Alert{{Monitor: "kafka-cpu", Message: "CPU 97% on broker 2", At: hAt(33)}}},
		{RolloutID: "rollout/kafka-3-8-0", Version: "3.8.0", First: hAt(60), Last: hAt(60), State: workflows.ClusterHeld},
	}
	var b bytes.Buffer
	renderHistory(&b, "lkc-00042", entries)
	t.Log("\n" + b.String())
	want := `lkc-00042: 3 rollouts touched it (oldest first).

kafka-3-6-1 -> 3.6.1
  Outcome:  done; the rollout completed
  When:     2026-03-01 09:02:00 UTC to 2026-03-01 09:09:00 UTC (7m0s)
  Where:    phase prod, batch 3
  Alerts:   none

kafka-3-7-1 -> 3.7.1
  Outcome:  aborted: aborted by alice; the rollout was aborted
  When:     2026-03-01 09:31:00 UTC to 2026-03-01 09:41:00 UTC (10m0s)
  Alerts (1):
    2026-03-01 09:33:00 UTC  kafka-cpu  CPU 97% on broker 2

kafka-3-8-0 -> 3.8.0
  Outcome:  held; the rollout has not finished
  When:     2026-03-01 10:00:00 UTC
  Alerts:   none
`
	assert.Equal(t, want, b.String())

	b.Reset()
	renderHistory(&b, "lkc-1", nil)
	assert.Equal(t, "No rollout in fleet.events touched lkc-1.\n", b.String())
}

func TestHistoryCommand(t *testing.T) {
	entries := []events.Entry{{RolloutID: "rollout/x", Version: "1.0.0", First: hAt(1), Last: hAt(2), State: workflows.ClusterDone, RolloutState: "completed"}}
	tests := []struct {
		name    string
		vars    map[string]string
		args    []string
		brokers []string
		answer  error
		want    string
		err     string
	}{
		{name: "default brokers", args: []string{"history", "lkc-1"}, brokers: []string{"127.0.0.1:9092"}, want: "x -> 1.0.0"},
		{name: "KAFKA_BROKERS", vars: map[string]string{"KAFKA_BROKERS": " k1:9092, k2:9092 ,"}, args: []string{"history", "--json", "lkc-1"},
			brokers: []string{"k1:9092", "k2:9092"}, want: `"rolloutId": "rollout/x"`},
		{name: "no topic", args: []string{"history", "lkc-1"}, brokers: []string{"127.0.0.1:9092"},
			answer: fmt.Errorf("events: fleet.events: %w", events.ErrNoTopic), err: "no history yet: topic fleet.events does not exist at 127.0.0.1:9092 (KAFKA_BROKERS chooses the brokers)"},
		{name: "kafka down", args: []string{"history", "lkc-1"}, brokers: []string{"127.0.0.1:9092"},
			answer: context.DeadlineExceeded, err: "history of lkc-1 from Kafka at 127.0.0.1:9092 (KAFKA_BROKERS chooses the brokers, KAFKA_TLS* and KAFKA_SASL_* the security): context deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, out, _ := envWith(t, tt.vars)
			var gotBrokers []string
			var gotID string
			e.history = func(ctx context.Context, brokers []string, id string) ([]events.Entry, error) {
				_, ok := ctx.Deadline()
				assert.True(t, ok, "reading is bounded")
				gotBrokers, gotID = brokers, id
				if tt.answer != nil {
					return nil, tt.answer
				}
				return entries, nil
			}
			err := run(context.Background(), tt.args, e)
			assert.Equal(t, tt.brokers, gotBrokers)
			assert.Equal(t, "lkc-1", gotID)
			if tt.err != "" {
				require.EqualError(t, err, tt.err)
				assert.Equal(t, 1, report(&bytes.Buffer{}, err))
				return
			}
			require.NoError(t, err)
			assert.Contains(t, out.String(), tt.want)
		})
	}

	// --json with no history is an empty list, not null.
	e, out, _ := envWith(t, nil)
	e.history = func(context.Context, []string, string) ([]events.Entry, error) { return nil, nil }
	require.NoError(t, run(context.Background(), []string{"history", "lkc-9", "--json"}, e))
	assert.JSONEq(t, `{"cluster": "lkc-9", "rollouts": []}`, out.String())
}

// TestHistoryFromKafka runs `fleet history` against an in-process Kafka
// holding events of two rollouts.
func TestHistoryFromKafka(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, workflows.EventsTopic))
	require.NoError(t, err)
	defer kc.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const a, b = "rollout/kafka-3-6-1", "rollout/kafka-3-7-1"
	require.NoError(t, events.NewPublisher(cl).Publish(ctx, []workflows.Event{
		{Kind: workflows.EventRolloutStarted, RolloutID: a, Version: "3.6.1", At: hAt(0)},
		{Kind: workflows.EventClusterState, RolloutID: a, ClusterID: "lkc-1", State: "applying", At: hAt(1)},
		{Kind: workflows.EventClusterState, RolloutID: a, ClusterID: "lkc-2", State: "done", At: hAt(2)},
		{Kind: workflows.EventClusterState, RolloutID: a, ClusterID: "lkc-1", State: "done", At: hAt(5)},
		{Kind: workflows.EventRolloutFinished, RolloutID: a, State: "completed", At: hAt(6)},
		{Kind: workflows.EventRolloutStarted, RolloutID: b, Version: "3.7.1", At: hAt(10)},
		{Kind: workflows.EventClusterAlert, RolloutID: b, ClusterID: "lkc-1", Monitor: "kafka-cpu", Message: "CPU 97%", At: hAt(12)},
		{Kind: workflows.EventClusterState, RolloutID: b, ClusterID: "lkc-1", State: "held", At: hAt(12)},
	}))

	e, out, _ := envWith(t, map[string]string{"KAFKA_BROKERS": strings.Join(kc.ListenAddrs(), ",")})
	e.history = nil // the real reader
	require.NoError(t, run(ctx, []string{"history", "lkc-1"}, e))
	text := out.String()
	t.Log("\n" + text)
	assert.Contains(t, text, "lkc-1: 2 rollouts touched it")
	assert.Contains(t, text, "kafka-3-6-1 -> 3.6.1\n  Outcome:  done; the rollout completed")
	assert.Contains(t, text, "kafka-3-7-1 -> 3.7.1\n  Outcome:  held; the rollout has not finished")
	assert.Contains(t, text, "kafka-cpu  CPU 97%")
	assert.Less(t, strings.Index(text, "kafka-3-6-1"), strings.Index(text, "kafka-3-7-1"))
}

func itoa(n int) string { return strconv.Itoa(n) }
