package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/fleet-rollout/fleet/internal/identity"
)

// defaultKeyFile is where keygen writes and where the CLI looks when
// FLEET_KEY is unset: ~/.config/fleet/key.pem.
func (e *env) defaultKeyFile() string {
	home := e.getenv("HOME")
	if home == "" {
		return ""
	}
	return filepath.Join(home, ".config", "fleet", "key.pem")
}

// signer loads the user's signing key: FLEET_KEY, or the default key file
// when it exists. No key means unsigned requests (a policy with identity:
// signed refuses them, saying so).
func (e *env) signer(user string) (*identity.Signer, error) {
	path := e.getenv("FLEET_KEY")
	if path == "" {
		path = e.defaultKeyFile()
		if path == "" {
			return nil, nil
		}
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	}
	k, err := identity.LoadPrivateKey(path)
	if err != nil {
		return nil, fmt.Errorf("FLEET_KEY: %w", err)
	}
	return &identity.Signer{Name: user, Key: k}, nil
}

func cmdKeygen(e *env, cmd *command, fs *pflag.FlagSet) runFunc {
	out := fs.String("out", "", "private key file to write (default ~/.config/fleet/key.pem)")
	return func(ctx context.Context, pos []string) error {
		if err := noArgs(cmd, pos); err != nil {
			return err
		}
		path := *out
		if path == "" {
			if path = e.defaultKeyFile(); path == "" {
				return usagef(cmd.name, "keygen: no HOME; give --out FILE")
			}
		}
		pemBytes, pub, err := identity.GenerateKey()
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("keygen: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("keygen: %w (an existing key is never overwritten)", err)
		}
		if _, err := f.Write(pemBytes); err != nil {
			f.Close()
			return fmt.Errorf("keygen: write %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("keygen: write %s: %w", path, err)
		}
		user := e.config().User
		if e.asJSON() {
			return writeJSON(e.stdout, keygenOutput{Path: path, User: user, PublicKey: pub})
		}
		fmt.Fprintf(e.stdout, "Private key written to %s (keep it; FLEET_KEY points the CLI at it).\n", path)
		fmt.Fprintf(e.stdout, "Public key, for the policy:\n\n  access:\n    people:\n      %s: {keys: [\"%s\"]}\n", user, pub)
		return nil
	}
}

// keygenOutput is what keygen prints with -o json.
type keygenOutput struct {
	// Path is the private key file written.
	Path string `json:"path"`
	// User and PublicKey go under access.people in the policy.
	User      string `json:"user"`
	PublicKey string `json:"publicKey"`
}
