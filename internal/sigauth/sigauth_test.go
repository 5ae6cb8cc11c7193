package sigauth

import (
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/fleet-rollout/fleet/workflows"
)

var (
	keyA = strings.Repeat("ab", 32)
	keyB = strings.Repeat("cd", 32)
)

// payloads is what the SDK hands the inbound interceptor for arg.
func payloads(t *testing.T, arg any) *commonpb.Payloads {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayloads(arg)
	require.NoError(t, err)
	return p
}

func TestSealOpens(t *testing.T) {
	k, err := NewKeys(keyA)
	require.NoError(t, err)
	const batch = "rollout/r/batch-2"
	req := workflows.ActionRequest{Actor: "fleet", Reason: "hold"}
	sealed, err := k.Seal(batch, workflows.Pause, req)
	require.NoError(t, err)

	got, why := k.open(batch, workflows.Pause, payloads(t, sealed))
	require.Empty(t, why)
	var back workflows.ActionRequest
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(got, &back))
	require.Equal(t, req, back)

	for name, tc := range map[string]struct {
		keys   string
		target string
		signal string
		arg    *commonpb.Payloads
		why    string
	}{
		"unsealed":           {keyA, batch, workflows.Pause, payloads(t, req), "not sealed"},
		"other key":          {keyB, batch, workflows.Pause, payloads(t, sealed), "seal does not verify"},
		"other batch":        {keyA, "rollout/r/batch-3", workflows.Pause, payloads(t, sealed), "seal does not verify"},
		"other rollout":      {keyA, "rollout/s/batch-2", workflows.Pause, payloads(t, sealed), "seal does not verify"},
		"other signal":       {keyA, batch, workflows.Resume, payloads(t, sealed), "seal does not verify"},
		"no argument":        {keyA, batch, workflows.Pause, nil, "not sealed"},
		"tampered arguments": {keyA, batch, workflows.Pause, tamper(t, sealed), "seal does not verify"},
	} {
		t.Run(name, func(t *testing.T) {
			kk, err := NewKeys(tc.keys)
			require.NoError(t, err)
			_, why := kk.open(tc.target, tc.signal, tc.arg)
			require.Equal(t, tc.why, why)
		})
	}

	// Rotation: a seal made with the old key opens while the old key is listed.
	rotated, err := NewKeys(keyB, keyA)
	require.NoError(t, err)
	_, why = rotated.open(batch, workflows.Pause, payloads(t, sealed))
	require.Empty(t, why)
}

func tamper(t *testing.T, sealed any) *commonpb.Payloads {
	env := sealed.(envelope)
	cp := *env.Sealed
	cp.Data = []byte(strings.Replace(string(cp.Data), "hold", "go!!", 1))
	return payloads(t, envelope{Sealed: &cp})
}

func TestCommandToken(t *testing.T) {
	k, err := NewKeys(keyA)
	require.NoError(t, err)
	tok := k.CommandToken("rollout/r/batch-1", "lkc-1", 7)
	require.True(t, k.CheckCommandToken(tok, "rollout/r/batch-1", "lkc-1", 7))
	require.False(t, k.CheckCommandToken(tok, "rollout/r/batch-1", "lkc-1", 8), "another generation")
	require.False(t, k.CheckCommandToken(tok, "rollout/r/batch-1", "lkc-2", 7), "another cluster")
	require.False(t, k.CheckCommandToken(tok, "rollout/r/batch-2", "lkc-1", 7), "another batch")
	require.False(t, k.CheckCommandToken("", "rollout/r/batch-1", "lkc-1", 7))
	other, err := NewKeys(keyB)
	require.NoError(t, err)
	require.False(t, other.CheckCommandToken(tok, "rollout/r/batch-1", "lkc-1", 7))
}

func TestParseKey(t *testing.T) {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(i)
	}
	for _, s := range []string{hex.EncodeToString(raw), "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"} {
		b, err := ParseKey(s)
		require.NoError(t, err, s)
		require.Equal(t, raw, b)
	}
	_, err := ParseKey("abcd")
	require.ErrorContains(t, err, "2 bytes, want at least 32")
	_, err = NewKeys("not a key at all !!")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "not a key at all", "errors never echo key material")
}

func TestInternal(t *testing.T) {
	require.True(t, Internal(workflows.WorkflowBatch, workflows.Resume), "every signal to a batch")
	require.True(t, Internal(workflows.WorkflowRollout, workflows.SignalIncident))
	require.True(t, Internal(workflows.WorkflowRollout, workflows.SignalFreezeState))
	require.False(t, Internal(workflows.WorkflowRollout, workflows.Pause), "a person's action, proved by its own signature")
	require.False(t, Internal(workflows.WorkflowFreeze, workflows.UnfreezeUpdate))
	require.True(t, internalTo("rollout/r/batch-1", workflows.Pause))
	require.False(t, internalTo("rollout/r", workflows.Pause))
	require.True(t, internalTo("rollout/r", workflows.SignalLaneReturn))
	b, _ := json.Marshal(envelope{})
	require.JSONEq(t, `{"fleetSealed":null}`, string(b))
}
