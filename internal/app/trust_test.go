package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	sdkclient "go.temporal.io/sdk/client"

	"github.com/fleet-rollout/fleet/internal/app"
	"github.com/fleet-rollout/fleet/internal/bridge"
	"github.com/fleet-rollout/fleet/internal/dataplane"
	"github.com/fleet-rollout/fleet/internal/identity"
	"github.com/fleet-rollout/fleet/internal/policy"
	"github.com/fleet-rollout/fleet/internal/sigauth"
	"github.com/fleet-rollout/fleet/starter/client"
	"github.com/fleet-rollout/fleet/workflows"
)

const trustRollout = `
name: it-trust
target:
  version: 3.7.1
selector: product=kafka
strategy:
  phases:
    - name: all
      batchSize: 40
      concurrency: 4
monitoring:
  interval: 1s
schedule:
  windows: ignore
`

// TestForgedMessagesChangeNothing: with the worker's signal key, signals
// forged by a client without it (the Web UI, the temporal CLI, a script with
// namespace access) and statuses forged on fleet.status are refused,
// recorded and change nothing; the real ones still get through.
func TestForgedMessagesChangeNothing(t *testing.T) {
	s := startStack(t, 80, 150*time.Millisecond, nil)
	ctx := context.Background()
	id, err := s.client.Start(ctx, parseSpec(t, trustRollout), "integration-test")
	require.NoError(t, err)
	s.waitFor(t, id, "clusters in flight", func(st *workflows.RolloutStatus) bool { return st.Counts.InFlight > 0 })
	_, err = s.client.Pause(ctx, id, workflows.ActionRequest{Actor: "alice", Reason: "hold still"})
	require.NoError(t, err)
	paused := s.waitFor(t, id, "every cluster held", func(st *workflows.RolloutStatus) bool {
		return st.State == workflows.StatePaused && st.Counts.InFlight == 0
	})
	doneBefore := paused.Counts.Done
	batch := workflows.BatchID(id, 1)
	var pending string
	for _, ph := range paused.Phases {
		for _, b := range ph.Batches {
			for _, c := range b.Clusters {
				if c.State == workflows.ClusterPending && pending == "" {
					pending = c.ID
				}
			}
		}
	}
	require.NotEmpty(t, pending, "a pending cluster to fake a completion for")
	gen := s.before[pending].Generation + 1

	// A client without the key: what anyone with namespace access has.
	raw, err := sdkclient.Dial(sdkclient.Options{HostPort: s.dev.Config.TemporalAddress})
	require.NoError(t, err)
	defer raw.Close()
	fake := []dataplane.Status{{ClusterID: pending, Generation: gen, State: dataplane.Completed, ReplyTo: batch, At: time.Now()}}
	require.NoError(t, raw.SignalWorkflow(ctx, batch, "", workflows.SignalClusterStatuses, fake))
	require.NoError(t, raw.SignalWorkflow(ctx, batch, "", workflows.Resume, workflows.ActionRequest{Actor: "mallory", Reason: "go"}))
	require.NoError(t, raw.SignalWorkflow(ctx, id, "", workflows.SignalIncident, workflows.Incident{ClusterID: pending, Monitor: "fake", Batch: 1}))
	// A seal made with another key is no better.
	other, err := sigauth.NewKeys(strings.Repeat("cd", 32))
	require.NoError(t, err)
	sealed, err := other.Seal(batch, workflows.Resume, workflows.ActionRequest{Actor: "mallory", Reason: "go"})
	require.NoError(t, err)
	require.NoError(t, raw.SignalWorkflow(ctx, batch, "", workflows.Resume, sealed))

	// Statuses written to fleet.status by someone who cannot read commands.
	kc, err := kgo.NewClient(kgo.SeedBrokers(s.dev.Config.KafkaBrokers...))
	require.NoError(t, err)
	defer kc.Close()
	for _, st := range []dataplane.Status{
		{ClusterID: pending, Generation: gen, State: dataplane.Completed, ReplyTo: batch, At: time.Now()},
		{ClusterID: pending, Generation: gen, State: dataplane.Completed, ReplyTo: batch, ReplyToken: "AAAAAAAAAAAAAAAAAAAAAA", At: time.Now()},
		{ClusterID: pending, Generation: gen, State: dataplane.Completed, ReplyTo: "payments/refund-42", At: time.Now()},
	} {
		v, err := dataplane.Encode(st)
		require.NoError(t, err)
		require.NoError(t, kc.ProduceSync(ctx, &kgo.Record{Topic: dataplane.StatusTopic, Key: []byte(pending), Value: v}).FirstErr())
	}

	// Recorded: the workflows list what they dropped; the bridge dead-letters.
	require.Eventually(t, func() bool {
		return len(rejected(t, raw, batch)) == 3 && len(rejected(t, raw, id)) == 1
	}, time.Minute, 200*time.Millisecond)
	got := rejected(t, raw, batch)
	require.Equal(t, []sigauth.Dropped{
		{Signal: workflows.SignalClusterStatuses, Reason: "not sealed"},
		{Signal: workflows.Resume, Reason: "not sealed"},
		{Signal: workflows.Resume, Reason: "seal does not verify"},
	}, got)
	require.Equal(t, []sigauth.Dropped{{Signal: workflows.SignalIncident, Reason: "not sealed"}}, rejected(t, raw, id))
	dead := readDead(t, s.dev.Config.KafkaBrokers, 3)
	for _, d := range dead {
		require.Equal(t, bridge.ReasonUnauthenticated, d.Reason, "%+v", d)
	}
	require.Contains(t, dead[0].Error, "no reply token")
	require.Contains(t, dead[1].Error, "does not match")
	require.Contains(t, dead[2].Error, "not a batch of this system")

	// Changed nothing: still paused, the cluster still pending, no incident.
	time.Sleep(2 * time.Second)
	st, err := s.client.Status(ctx, id)
	require.NoError(t, err)
	require.Equal(t, workflows.StatePaused, st.State)
	require.Equal(t, doneBefore, st.Counts.Done)
	require.Empty(t, st.Incidents)
	require.Equal(t, 0, s.dev.Sim.ApplyStarts(pending))

	// The real resume (through the rollout) finishes the rollout, each
	// cluster applied once.
	_, err = s.client.Resume(ctx, id, workflows.ActionRequest{Actor: "alice", Reason: "ok"})
	require.NoError(t, err)
	st = s.waitFor(t, id, "the end", terminal)
	require.Equal(t, workflows.StateCompleted, st.State)
	require.Equal(t, st.Total, st.Counts.Done)
	require.Equal(t, 1, s.dev.Sim.ApplyStarts(pending))
}

func rejected(t *testing.T, c sdkclient.Client, id string) []sigauth.Dropped {
	t.Helper()
	v, err := c.QueryWorkflow(context.Background(), id, "", sigauth.QueryRejected)
	require.NoError(t, err)
	var out []sigauth.Dropped
	require.NoError(t, v.Get(&out))
	return out
}

func readDead(t *testing.T, brokers []string, n int) []bridge.DeadLetter {
	t.Helper()
	kc, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(dataplane.StatusDeadTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer kc.Close()
	var out []bridge.DeadLetter
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(out) < n && ctx.Err() == nil {
		kc.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			var d bridge.DeadLetter
			require.NoError(t, json.Unmarshal(r.Value, &d))
			out = append(out, d)
		})
	}
	require.Len(t, out, n)
	return out
}

// TestSignedIdentityEndToEnd: with identity: signed, the start and every
// action go through only signed, by a person whose key the policy lists.
func TestSignedIdentityEndToEnd(t *testing.T) {
	dir := t.TempDir()
	keyFile := func(name string) (*identity.Signer, string) {
		pemBytes, pub, err := identity.GenerateKey()
		require.NoError(t, err)
		p := filepath.Join(dir, name+".pem")
		require.NoError(t, os.WriteFile(p, pemBytes, 0o600))
		k, err := identity.LoadPrivateKey(p)
		require.NoError(t, err)
		return &identity.Signer{Name: name, Key: k}, pub
	}
	alice, alicePub := keyFile("alice")
	mallory, _ := keyFile("mallory")
	pol := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(pol, []byte("access:\n  people:\n    alice: {keys: [\""+alicePub+"\"]}\n  roles: {alice: [operator]}\n"), 0o644))
	cfg, err := policy.Load(pol)
	require.NoError(t, err)
	require.True(t, cfg.SignedIdentity(), "signed is the default")

	s := startStackWith(t, stackOptions{Clusters: 60, BrokerTime: 100 * time.Millisecond,
		Configure: func(c *app.Config) { c.PolicyPath = pol }})
	ctx := context.Background()
	spec := strings.Replace(trustRollout, "it-trust", "it-signed", 1)

	// Unsigned, and signed by someone else's key: planning refuses the start.
	for _, c := range []*client.Client{s.client, s.client.WithSigner(&identity.Signer{Name: "alice", Key: mallory.Key})} {
		id, err := c.Start(ctx, parseSpec(t, spec), "alice")
		require.NoError(t, err)
		st := s.waitFor(t, id, "the refusal", terminal)
		require.Equal(t, workflows.StateFailed, st.State)
		last := st.Audit[len(st.Audit)-1]
		require.Equal(t, "finish", last.Action)
		require.Contains(t, last.Reason, "start: ")
		require.Zero(t, st.Counts.Done)
		// The status reads failed as the rollout finishes; the next start
		// under its ID waits for its workflow to close.
		waitClosed(t, s, id)
	}

	signed := s.client.WithSigner(alice)
	id, err := signed.Start(ctx, parseSpec(t, spec), "alice")
	require.NoError(t, err)
	s.waitFor(t, id, "clusters in flight", func(st *workflows.RolloutStatus) bool { return st.Counts.InFlight > 0 })
	_, err = s.client.Pause(ctx, id, workflows.ActionRequest{Actor: "alice", Reason: "unsigned"})
	require.ErrorContains(t, err, "unsigned request")
	_, err = s.client.WithSigner(mallory).Pause(ctx, id, workflows.ActionRequest{Actor: "mallory", Reason: "not in the policy"})
	require.ErrorContains(t, err, "mallory has no key")
	_, err = signed.Pause(ctx, id, workflows.ActionRequest{Reason: "look"})
	require.NoError(t, err)
	_, err = signed.Resume(ctx, id, workflows.ActionRequest{Reason: "fine"})
	require.NoError(t, err)
	st := s.waitFor(t, id, "the end", terminal)
	require.Equal(t, workflows.StateCompleted, st.State)
	var who []string
	for _, a := range st.Audit {
		who = append(who, a.Actor+" "+a.Action+" "+a.Outcome)
	}
	require.Contains(t, who, "alice pause applied")
	require.Contains(t, who, "alice resume applied")
}

// TestDashboardSignedIdentity: with identity: signed, the dashboard acts
// only for the person the proxy's header names, as web:<email>, signed by
// the worker's key vouching for "web:"; the actor recorded is the person
// that alias belongs to. No header, or an e-mail no person has, changes
// nothing.
func TestDashboardSignedIdentity(t *testing.T) {
	dir := t.TempDir()
	keyFile := func(name string) (*identity.Signer, string, string) {
		pemBytes, pub, err := identity.GenerateKey()
		require.NoError(t, err)
		p := filepath.Join(dir, name+".pem")
		require.NoError(t, os.WriteFile(p, pemBytes, 0o600))
		k, err := identity.LoadPrivateKey(p)
		require.NoError(t, err)
		return &identity.Signer{Name: name, Key: k}, pub, p
	}
	alice, alicePub, _ := keyFile("alice")
	_, workerPub, workerKey := keyFile("fleet-worker")
	pol := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(pol, []byte("access:\n  people:\n    alice: {keys: [\""+alicePub+"\"], aliases: [\"web:alice@example.com\"]}\n"+
		"  services:\n    fleet-worker: {keys: [\""+workerPub+"\"], vouch: [\"web:\"]}\n  roles: {alice: [operator]}\n"), 0o644))
	s := startStackWith(t, stackOptions{Clusters: 60, BrokerTime: 100 * time.Millisecond, Configure: func(c *app.Config) {
		c.PolicyPath, c.WorkerKeyFile, c.WorkerName = pol, workerKey, "fleet-worker"
		c.DashboardUserHeader = "X-Forwarded-Email"
	}})
	ctx := context.Background()
	id, err := s.client.WithSigner(alice).Start(ctx, parseSpec(t, strings.Replace(trustRollout, "it-trust", "it-web", 1)), "alice")
	require.NoError(t, err)
	s.waitFor(t, id, "clusters in flight", func(st *workflows.RolloutStatus) bool { return st.Counts.InFlight > 0 })

	act := func(action, email, body string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, "http://"+s.dev.Config.HTTPAddr+"/api/rollouts/it-web/"+action, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("X-Fleet-Dashboard", "1")
		if email != "" {
			req.Header.Set("X-Forwarded-Email", email)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	code, body := act("pause", "", `{"reason":"no proxy"}`)
	require.Equal(t, http.StatusForbidden, code, body)
	require.Contains(t, body, "X-Forwarded-Email is missing")
	code, body = act("pause", "mallory@example.com", `{"reason":"not a person of the policy"}`)
	require.Equal(t, http.StatusConflict, code, body)
	require.Contains(t, body, "refused: ")
	st, err := s.client.Status(ctx, id)
	require.NoError(t, err)
	require.NotEqual(t, workflows.StatePaused, st.State)

	code, body = act("pause", "alice@example.com", `{"reason":"from the dashboard","actor":"carol"}`)
	require.Equal(t, http.StatusOK, code, body)
	st, err = s.client.Status(ctx, id)
	require.NoError(t, err)
	require.Equal(t, workflows.StatePaused, st.State)
	require.Equal(t, "alice", st.Paused.Actor, "the person, not the typed actor")
	code, body = act("resume", "alice@example.com", `{}`)
	require.Equal(t, http.StatusOK, code, body)
	st = s.waitFor(t, id, "the end", terminal)
	require.Equal(t, workflows.StateCompleted, st.State)
}

// waitClosed waits until the rollout's workflow has closed, however it ended.
func waitClosed(t *testing.T, s *stack, id string) {
	t.Helper()
	raw, err := sdkclient.Dial(sdkclient.Options{HostPort: s.dev.Config.TemporalAddress})
	require.NoError(t, err)
	defer raw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = raw.GetWorkflow(ctx, id, "").Get(ctx, nil)
	require.NoError(t, ctx.Err(), "%s closes (it ended: %v)", id, err)
}
