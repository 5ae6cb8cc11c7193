package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/identity"
)

func TestKeygenWritesAKeyTheCLISignsWith(t *testing.T) {
	dir := t.TempDir()
	e, out, _ := envWith(t, map[string]string{"HOME": dir})
	require.NoError(t, run(context.Background(), []string{"keygen"}, e))
	path := filepath.Join(dir, ".config", "fleet", "key.pem")
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	k, err := identity.LoadPrivateKey(path)
	require.NoError(t, err)
	require.Contains(t, out.String(), "alice: {keys: [\""+identity.PublicOf(k)+"\"]}", "the policy line names FLEET_USER and the public key")

	// Never overwritten.
	err = run(context.Background(), []string{"keygen"}, e)
	require.ErrorContains(t, err, "never overwritten")

	// The default key file is found without FLEET_KEY; the signer is the user.
	s, err := e.signer("alice")
	require.NoError(t, err)
	require.Equal(t, "alice", s.Name)
	require.True(t, s.Key.Equal(k))

	// A key readable by others stops the command before Temporal is asked.
	loose := filepath.Join(dir, "loose.pem")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(loose, b, 0o644))
	e2, _, _ := envWith(t, map[string]string{"HOME": dir, "FLEET_KEY": loose})
	err = run(context.Background(), []string{"pause", "r", "--reason", "x"}, e2)
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "FLEET_KEY") && strings.Contains(err.Error(), "chmod 600"), err.Error())
}
