package policy

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fleet-rollout/fleet/internal/identity"
)

func keyPair(t *testing.T) (string, ed25519.PrivateKey) {
	t.Helper()
	pemBytes, pub, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	k, err := identity.ParsePrivateKey(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	return pub, k
}

func TestVerifyRequest(t *testing.T) {
	alicePub, aliceKey := keyPair(t)
	_, malloryKey := keyPair(t)
	workerPub, workerKey := keyPair(t)
	src := "access:\n" +
		"  people:\n" +
		"    alice: {keys: [\"" + alicePub + "\"], aliases: [\"slack:UALICE\", alice@example.com]}\n" +
		"    bob: {aliases: [\"slack:UBOB\"]}\n" +
		"  services:\n" +
		"    fleet-worker: {keys: [\"" + workerPub + "\"], vouch: [\"slack:\"]}\n" +
		"  roles: {alice: [approver], \"slack:UBOB\": [operator]}\n" +
		"  approvers: {prod: [\"slack:UALICE\"]}\n"
	cfg, err := Parse("p.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Access.Identity != IdentitySigned {
		t.Fatalf("default identity = %q, want signed", cfg.Access.Identity)
	}
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) func() time.Time { return func() time.Time { return now.Add(d) } }
	args := []byte(`{"reason":"x"}`)
	sign := func(name string, k ed25519.PrivateKey, actor string, skew time.Duration) *identity.Proof {
		s := identity.Signer{Name: name, Key: k, Now: at(skew)}
		p := s.Sign("rollout/r", "pause", args, actor)
		return &p
	}
	cases := []struct {
		name   string
		actor  string
		proof  *identity.Proof
		args   []byte
		want   string
		target error
	}{
		{"alice signs for herself", "alice", sign("alice", aliceKey, "", 0), args, "alice", nil},
		{"actor field may be empty", "", sign("alice", aliceKey, "", time.Minute), args, "alice", nil},
		{"unsigned", "alice", nil, args, "", ErrUnsigned},
		{"forged actor field", "carol", sign("alice", aliceKey, "", 0), args, "", ErrForgedActor},
		{"mallory claims alice", "alice", sign("alice", malloryKey, "", 0), args, "", identity.ErrBadSignature},
		{"arguments changed", "alice", sign("alice", aliceKey, "", 0), []byte(`{"reason":"y"}`), "", identity.ErrBadSignature},
		{"expired", "alice", sign("alice", aliceKey, "", -identity.MaxSkew-time.Second), args, "", identity.ErrExpired},
		{"from the future", "alice", sign("alice", aliceKey, "", identity.MaxSkew+time.Second), args, "", identity.ErrExpired},
		{"bob has no key", "bob", sign("bob", malloryKey, "", 0), args, "", ErrUnknownSigner},
		{"worker vouches for a Slack user: the person", "slack:UALICE", sign("fleet-worker", workerKey, "slack:UALICE", 0), args, "alice", nil},
		{"worker may not vouch for a CLI name", "alice", sign("fleet-worker", workerKey, "alice", 0), args, "", ErrForgedActor},
		{"unknown service", "slack:UBOB", sign("other-svc", workerKey, "slack:UBOB", 0), args, "", ErrUnknownSigner},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cfg.VerifyRequest("rollout/r", "pause", tc.args, tc.actor, tc.proof, now)
			if tc.target != nil {
				if !errors.Is(err, tc.target) {
					t.Fatalf("err = %v, want %v", err, tc.target)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	// Another target or action does not verify with the same proof.
	p := sign("alice", aliceKey, "", 0)
	if _, err := cfg.VerifyRequest("rollout/other", "pause", args, "alice", p, now); !errors.Is(err, identity.ErrBadSignature) {
		t.Fatalf("other target: %v", err)
	}
	if _, err := cfg.VerifyRequest("rollout/r", "abort", args, "alice", p, now); !errors.Is(err, identity.ErrBadSignature) {
		t.Fatalf("other action: %v", err)
	}

	// One person, every name: roles, approver lists, the two-person rule.
	if got := cfg.Access.RoleOf("slack:UALICE"); got != RoleApprover {
		t.Fatalf("alice via Slack holds %s, want approver", got)
	}
	if got := cfg.Access.RoleOf("bob"); got != RoleOperator {
		t.Fatalf("bob (role listed under his Slack alias) holds %s", got)
	}
	if err := cfg.Authorize("alice", ActionApprove, "prod"); err != nil {
		t.Fatalf("alice is on the prod list by her alias: %v", err)
	}
	if !cfg.SamePerson("alice", "slack:UALICE") || !cfg.SamePerson("ALICE@example.com", "alice") || cfg.SamePerson("alice", "bob") {
		t.Fatal("SamePerson")
	}
	if err := TwoPersonRule(cfg.Person("alice"), cfg.Person("slack:UALICE"), "prod"); !errors.Is(err, ErrSelfApproval) {
		t.Fatalf("alice from the CLI and from Slack is one person: %v", err)
	}

	// Asserted identities: no proof needed, aliases still resolve.
	cfg.Access.Identity = IdentityAsserted
	if got, err := cfg.VerifyRequest("rollout/r", "pause", args, "slack:UALICE", nil, now); err != nil || got != "alice" {
		t.Fatalf("asserted: %q %v", got, err)
	}
}

func TestParseIdentityErrors(t *testing.T) {
	_, err := Parse("p.yaml", []byte(`access:
  identity: trusted
  people:
    alice: {keys: ["rsa:abc"], aliases: [x]}
    bob: {aliases: [x]}
  services:
    w: {keys: [], vouch: [""]}
`))
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{
		`p.yaml:2: access.identity: unknown mode "trusted"`,
		`access.people.alice.keys[0]: public key must start with "ed25519:"`,
		`access.people.bob.aliases[0]: "x" already names alice`,
		`access.services.w.keys: give at least one key`,
		`access.services.w.vouch[0]: must not be empty`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}
