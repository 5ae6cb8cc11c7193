package policy

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fleet-rollout/fleet/internal/identity"
)

// Identity modes (Access.Identity).
const (
	// IdentitySigned: every action request must carry a proof (an ed25519
	// signature by the actor's key, or by a service that may vouch for
	// the actor), fresh and never seen before. The default of a policy
	// file with an access section.
	IdentitySigned = "signed"
	// IdentityAsserted: the actor named in a request is trusted as typed.
	// For a trusted network only; a production worker says so in its log.
	// A snapshot without the field (carried by a rollout started before
	// signed identities existed) is asserted.
	IdentityAsserted = "asserted"
)

// Person is one human: the keys that sign for them and the other names they
// act under (a Slack user ID "slack:U024BE7LH", an e-mail address). Roles and
// approver lists may name the person or any alias; the two-person rule
// compares people, not names.
type Person struct {
	Name    string   `json:"name" yaml:"name"`
	Keys    []string `json:"keys,omitempty" yaml:"keys,omitempty"`
	Aliases []string `json:"aliases,omitempty" yaml:"aliases,omitempty"`
}

// Service is a signer that vouches for others: the worker signs for the Slack
// users whose requests it verified (Slack's signature and team ID). Vouch
// lists the actor prefixes it may sign for ("slack:").
type Service struct {
	Keys  []string `json:"keys,omitempty" yaml:"keys,omitempty"`
	Vouch []string `json:"vouch,omitempty" yaml:"vouch,omitempty"`
}

// Errors of VerifyRequest, for errors.Is.
var (
	ErrUnsigned      = errors.New("unsigned request")
	ErrUnknownSigner = errors.New("unknown signer")
	ErrForgedActor   = errors.New("forged actor")
)

// SignedIdentity reports whether requests must carry proofs.
func (cfg *Config) SignedIdentity() bool {
	return cfg != nil && cfg.Access != nil && cfg.Access.Identity == IdentitySigned
}

// Person returns the person behind name: name itself when it is a person or
// nobody's alias, else the person whose alias it is. Nil-safe.
func (cfg *Config) Person(name string) string {
	if cfg == nil || cfg.Access == nil {
		return name
	}
	return cfg.Access.Person(name)
}

// Person returns the person behind name (see Config.Person).
func (a *Access) Person(name string) string {
	if p := a.person(name); p != nil {
		return p.Name
	}
	return name
}

// person finds the person going by name (aliases, Slack IDs and e-mail
// addresses, match ignoring case), nil if nobody does.
func (a *Access) person(name string) *Person {
	if a == nil || name == "" {
		return nil
	}
	for i := range a.People {
		if a.People[i].Name == name {
			return &a.People[i]
		}
	}
	for i := range a.People {
		p := &a.People[i]
		if strings.EqualFold(p.Name, name) || slices.ContainsFunc(p.Aliases, func(al string) bool { return strings.EqualFold(al, name) }) {
			return p
		}
	}
	return nil
}

// names returns every name person goes by: the person and its aliases.
func (a *Access) names(person string) []string {
	out := []string{person}
	if p := a.person(person); p != nil {
		out = append(out, p.Aliases...)
	}
	return out
}

// SamePerson reports whether a and b are one person (ignoring case and
// surrounding spaces).
func (cfg *Config) SamePerson(a, b string) bool {
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	return strings.EqualFold(cfg.Person(a), cfg.Person(b))
}

// VerifyRequest checks the proof of a request: actor (the request's own
// actor field, may be empty) asking action on target with args (the
// request's JSON without its auth field), at now. It returns the person
// the request acts for. With asserted identities it returns the person
// behind actor without looking at the proof. Nonces are the caller's
// business: remember each one for identity.MaxSkew and refuse repeats.
func (cfg *Config) VerifyRequest(target, action string, args []byte, actor string, p *identity.Proof, now time.Time) (string, error) {
	if !cfg.SignedIdentity() {
		return cfg.Person(actor), nil
	}
	a := cfg.Access
	if p == nil {
		return "", fmt.Errorf("%w: this policy requires signed requests (the fleet CLI signs with FLEET_KEY; make a key with `fleet keygen`)", ErrUnsigned)
	}
	if actor != "" && actor != p.Actor {
		return "", fmt.Errorf("%w: the request names %q but its proof was signed for %q", ErrForgedActor, actor, p.Actor)
	}
	if p.Actor == "" || p.Nonce == "" {
		return "", fmt.Errorf("%w: the proof names no actor or nonce", ErrUnsigned)
	}
	var keys []string
	signer := p.SignerOf()
	if signer == p.Actor {
		pp := a.person(p.Actor)
		if pp == nil || len(pp.Keys) == 0 {
			return "", fmt.Errorf("%w: %s has no key in the policy (access.people)", ErrUnknownSigner, p.Actor)
		}
		keys = pp.Keys
	} else {
		s, ok := a.Services[signer]
		if !ok || len(s.Keys) == 0 {
			return "", fmt.Errorf("%w: no service %q with keys in the policy (access.services)", ErrUnknownSigner, signer)
		}
		if !slices.ContainsFunc(s.Vouch, func(pre string) bool { return strings.HasPrefix(p.Actor, pre) }) {
			return "", fmt.Errorf("%w: service %s may not act for %q (it vouches for %s)", ErrForgedActor, signer, p.Actor, strings.Join(s.Vouch, ", "))
		}
		keys = s.Keys
	}
	pubs := make([]ed25519.PublicKey, 0, len(keys))
	for _, k := range keys {
		if pk, err := identity.ParsePublicKey(k); err == nil {
			pubs = append(pubs, pk)
		}
	}
	if err := identity.Verify(pubs, target, action, args, *p, now); err != nil {
		return "", err
	}
	return a.Person(p.Actor), nil
}

var identityModes = []string{IdentitySigned, IdentityAsserted}

// checkIdentity validates the people and services sections.
func (a *Access) checkIdentity(d *decoder, errs *ValidationErrors) {
	if a.Identity != "" && !slices.Contains(identityModes, a.Identity) {
		failAt(d, errs, "access.identity", "unknown mode %q (want signed or asserted)", a.Identity)
	}
	owner := map[string]string{}
	for _, per := range a.People {
		owner[per.Name] = per.Name
	}
	for _, per := range a.People {
		name := per.Name
		p := "access.people." + name
		if strings.TrimSpace(name) == "" {
			failAt(d, errs, p, "person must have a name")
		}
		for i, k := range per.Keys {
			if _, err := identity.ParsePublicKey(k); err != nil {
				failAt(d, errs, fmt.Sprintf("%s.keys[%d]", p, i), "%v", err)
			}
		}
		for i, al := range per.Aliases {
			if o, ok := owner[al]; ok && o != name {
				failAt(d, errs, fmt.Sprintf("%s.aliases[%d]", p, i), "%q already names %s: one name, one person", al, o)
			}
			owner[al] = name
		}
	}
	for _, name := range sortedKeys(a.Services) {
		p := "access.services." + name
		s := a.Services[name]
		if _, ok := owner[name]; ok {
			failAt(d, errs, p, "%q is also a person or alias", name)
		}
		if len(s.Keys) == 0 {
			failAt(d, errs, p+".keys", "give at least one key (ed25519:...)")
		}
		for i, k := range s.Keys {
			if _, err := identity.ParsePublicKey(k); err != nil {
				failAt(d, errs, fmt.Sprintf("%s.keys[%d]", p, i), "%v", err)
			}
		}
		if len(s.Vouch) == 0 {
			failAt(d, errs, p+".vouch", "give the actor prefixes it may act for, like \"slack:\"")
		}
		for i, v := range s.Vouch {
			if strings.TrimSpace(v) == "" {
				failAt(d, errs, fmt.Sprintf("%s.vouch[%d]", p, i), "empty prefix would vouch for everyone")
			}
		}
	}
}
