// Package identity proves who asks for an action. A request to a rollout
// (pause, resume, abort, approve, pacing, start) or to the fleet freeze carries
// a Proof: the actor, who signed, when, a nonce, and an ed25519 signature over
// the canonical Message of (target workflow, action, arguments, actor, signer,
// time, nonce). The fleet CLI signs with the user's key file; the worker
// signs, as a service, for the Slack users whose requests it verified.
//
// The package is pure: no Temporal, no network. The policy lists the public
// keys (internal/policy) and the workflows verify proofs deterministically
// against the policy snapshot they carry.
package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Proof authenticates one request. It travels in the request's "auth" field.
type Proof struct {
	// Actor is the identity the request acts for: a person ("alice"), or an
	// alias a service vouches for ("slack:U024BE7LH").
	Actor string `json:"actor"`
	// Signer is whose key signed: the actor itself (empty), or a service
	// listed in the policy that may vouch for the actor.
	Signer string `json:"signer,omitempty"`
	// IssuedAt is when the request was signed; requests older or newer than
	// MaxSkew are refused.
	IssuedAt time.Time `json:"issuedAt"`
	// Nonce makes every request unique; a nonce seen before is a replay.
	Nonce string `json:"nonce"`
	// Signature is ed25519 over Message (base64 in JSON).
	Signature []byte `json:"sig"`
}

// MaxSkew is how far a proof's IssuedAt may lie from the verifier's clock,
// either way: the lifetime of a signed request, and how long a verifier
// must remember its nonce.
const MaxSkew = 10 * time.Minute

// KeyPrefix starts a public key as written in the policy.
const KeyPrefix = "ed25519:"

// SignerOf is who signed p: p.Signer, or the actor when empty.
func (p *Proof) SignerOf() string {
	if p.Signer != "" {
		return p.Signer
	}
	return p.Actor
}

// Message is the exact byte string a proof signs. Arguments are hashed
// (SHA-256 of the request's JSON without its auth field), so the message
// stays small whatever the request carries:
//
//	fleet-request-v1
//	target: rollout/kafka-3-7-1
//	action: pause
//	args: <hex sha256>
//	actor: alice
//	signer: alice
//	issued: 2026-11-30T23:00:00Z
//	nonce: 3q2+7w...
func Message(target, action string, args []byte, p Proof) []byte {
	sum := sha256.Sum256(args)
	var b strings.Builder
	b.WriteString("fleet-request-v1\n")
	b.WriteString("target: " + target + "\n")
	b.WriteString("action: " + action + "\n")
	b.WriteString("args: " + hex.EncodeToString(sum[:]) + "\n")
	b.WriteString("actor: " + p.Actor + "\n")
	b.WriteString("signer: " + p.SignerOf() + "\n")
	b.WriteString("issued: " + p.IssuedAt.UTC().Format(time.RFC3339Nano) + "\n")
	b.WriteString("nonce: " + p.Nonce + "\n")
	return []byte(b.String())
}

// Signer signs requests with one private key.
type Signer struct {
	// Name is whose key this is: a person, or a service.
	Name string
	Key  ed25519.PrivateKey
	// Now and Nonce default to the clock and crypto/rand.
	Now   func() time.Time
	Nonce func() string
}

// Sign returns the proof for actor asking action on target with args (the
// request's JSON without auth). actor is s.Name when empty.
func (s *Signer) Sign(target, action string, args []byte, actor string) Proof {
	if actor == "" {
		actor = s.Name
	}
	now, nonce := time.Now, NewNonce
	if s.Now != nil {
		now = s.Now
	}
	if s.Nonce != nil {
		nonce = s.Nonce
	}
	p := Proof{Actor: actor, IssuedAt: now().UTC(), Nonce: nonce()}
	if actor != s.Name {
		p.Signer = s.Name
	}
	p.Signature = ed25519.Sign(s.Key, Message(target, action, args, p))
	return p
}

// NewNonce is 16 random bytes, base64url.
func NewNonce() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Errors Verify wraps, for errors.Is.
var (
	ErrBadSignature = errors.New("signature does not verify")
	ErrExpired      = errors.New("request expired")
)

// Verify checks p's signature with any of keys, and that p.IssuedAt lies
// within MaxSkew of now.
func Verify(keys []ed25519.PublicKey, target, action string, args []byte, p Proof, now time.Time) error {
	if d := now.Sub(p.IssuedAt); d > MaxSkew || d < -MaxSkew {
		return fmt.Errorf("%w: signed at %s, %s from now (a request lives %s)", ErrExpired,
			p.IssuedAt.UTC().Format(time.RFC3339), d.Round(time.Second), MaxSkew)
	}
	msg := Message(target, action, args, p)
	for _, k := range keys {
		if len(k) == ed25519.PublicKeySize && ed25519.Verify(k, msg, p.Signature) {
			return nil
		}
	}
	return fmt.Errorf("%w with any key of %s", ErrBadSignature, p.SignerOf())
}

// ParsePublicKey reads "ed25519:<base64 of the 32-byte key>".
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), KeyPrefix)
	if !ok {
		return nil, fmt.Errorf("public key must start with %q", KeyPrefix)
	}
	b, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key: %d bytes, want %d", len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// FormatPublicKey writes k as the policy lists it.
func FormatPublicKey(k ed25519.PublicKey) string {
	return KeyPrefix + base64.StdEncoding.EncodeToString(k)
}

// GenerateKey makes a key pair: the PEM (PKCS #8) private key file's
// contents and the public key as the policy lists it.
func GenerateKey() (privatePEM []byte, public string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, "", fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), FormatPublicKey(pub), nil
}

// ParsePrivateKey reads a PEM (PKCS #8) ed25519 private key.
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM \"PRIVATE KEY\" block (make one with `fleet keygen`)")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key is %T, want ed25519", k)
	}
	return ek, nil
}

// LoadPrivateKey reads a key file. The file must not be readable by group
// or others (like ssh's keys).
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key file %s is readable by others (mode %o): chmod 600 it", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	k, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return k, nil
}

// PublicOf is the public key of k, as the policy lists it.
func PublicOf(k ed25519.PrivateKey) string {
	return FormatPublicKey(k.Public().(ed25519.PublicKey))
}
