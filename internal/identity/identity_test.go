package identity

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSignVerifyAndKeyFiles(t *testing.T) {
	pemBytes, pub, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(path, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPrivateKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a key readable by others: %v", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := LoadPrivateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if PublicOf(key) != pub {
		t.Fatal("public key of the file differs from the one printed")
	}
	pk, err := ParsePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	s := Signer{Name: "alice", Key: key, Now: func() time.Time { return now }, Nonce: func() string { return "n1" }}
	p := s.Sign("rollout/r", "pause", []byte("reason=\"x\"\n"), "")
	if p.Actor != "alice" || p.Signer != "" || p.Nonce != "n1" {
		t.Fatalf("proof %+v", p)
	}
	if err := Verify(keysOf(pk), "rollout/r", "pause", []byte("reason=\"x\"\n"), p, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := Verify(keysOf(pk), "rollout/r", "pause", []byte("reason=\"y\"\n"), p, now); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("other args: %v", err)
	}
	if err := Verify(keysOf(pk), "rollout/r", "pause", []byte("reason=\"x\"\n"), p, now.Add(MaxSkew+time.Second)); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired: %v", err)
	}
	vouched := s.Sign("rollout/r", "approve", nil, "slack:U1")
	if vouched.Signer != "alice" || vouched.SignerOf() != "alice" {
		t.Fatalf("a proof for someone else names its signer: %+v", vouched)
	}
	msg := string(Message("rollout/r", "pause", nil, p))
	for _, want := range []string{"fleet-request-v1\n", "target: rollout/r\n", "actor: alice\n", "signer: alice\n", "issued: 2026-11-30T12:00:00Z\n", "nonce: n1\n"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	for _, bad := range []string{"rsa:AAAA", "ed25519:!!", "ed25519:AAAA"} {
		if _, err := ParsePublicKey(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if _, err := ParsePrivateKey([]byte("not pem")); err == nil {
		t.Error("not PEM parsed")
	}
}

func keysOf(k ed25519.PublicKey) []ed25519.PublicKey { return []ed25519.PublicKey{k} }
