// Package sigauth authenticates the system's internal messages: the signals
// its own workflows and worker send each other (bridge statuses, lane slots,
// incidents, acks, pacing, holds, freeze state) and the reply tokens of the
// data-plane commands.
//
// Every worker holds the same master key (FLEET_SIGNAL_KEY). Each rollout has
// its own key, HMAC(master, rollout ID), used to seal the signals to the
// rollout and its batches: a sealed signal is an envelope carrying the
// original payload and an HMAC over (target workflow, signal name, payload).
// The worker's interceptors seal on the way out (workflow and client
// outbound) and check and unwrap on the way in, so workflow code neither
// sees a key nor changes: a signal without a valid seal never reaches it; it
// is dropped, logged, counted (metric fleet_signals_dropped) and listed by the
// workflow's "rejected-signals" query.
//
// The outside (the Web UI, the temporal CLI, anyone with write access to the
// namespace but not the worker's environment) can still send the person
// actions (pause, resume, abort, approve ... to a rollout), which carry
// their own proof (internal/identity); it cannot forge an internal signal.
package sigauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MinKeyBytes is the shortest master key accepted.
const MinKeyBytes = 32

// Keys is the master key, and older ones still accepted on the way in (for
// rotation: deploy the new key as current with the old one in Old, then drop
// Old once no rollout started before the change runs).
type Keys struct {
	current []byte
	old     [][]byte
}

// ParseKey reads a master key written as hex or base64 (std or URL), at least
// MinKeyBytes long.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty key")
	}
	var b []byte
	if h, err := hex.DecodeString(s); err == nil {
		b = h
	} else if d, err := base64.StdEncoding.DecodeString(s); err == nil {
		b = d
	} else if d, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "=")); err == nil {
		b = d
	} else {
		return nil, errors.New("key is neither hex nor base64")
	}
	if len(b) < MinKeyBytes {
		return nil, fmt.Errorf("key is %d bytes, want at least %d (openssl rand -hex 32)", len(b), MinKeyBytes)
	}
	return b, nil
}

// NewKeys parses the current key and any old ones (see ParseKey). Errors
// never contain key material.
func NewKeys(current string, old ...string) (*Keys, error) {
	c, err := ParseKey(current)
	if err != nil {
		return nil, fmt.Errorf("signal key: %w", err)
	}
	k := &Keys{current: c}
	for i, o := range old {
		if strings.TrimSpace(o) == "" {
			continue
		}
		b, err := ParseKey(o)
		if err != nil {
			return nil, fmt.Errorf("old signal key %d: %w", i+1, err)
		}
		k.old = append(k.old, b)
	}
	return k, nil
}

// Root is the rollout a workflow ID belongs to: "rollout/x" for
// "rollout/x/batch-3"; other IDs are their own root.
func Root(workflowID string) string {
	if i := strings.Index(workflowID, "/batch-"); i >= 0 {
		return workflowID[:i]
	}
	return workflowID
}

func rolloutKey(master []byte, workflowID string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("fleet-rollout-key/v1\n" + Root(workflowID)))
	return m.Sum(nil)
}

func mac(key []byte, parts ...string) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write([]byte(strconv.Itoa(len(p)) + ":" + p))
	}
	return m.Sum(nil)
}

// sign is the MAC of parts under the current key of target's rollout.
func (k *Keys) sign(target string, parts ...string) []byte {
	return mac(rolloutKey(k.current, target), append([]string{target}, parts...)...)
}

// masters are the current key, then the old ones still accepted.
func (k *Keys) masters() [][]byte { return append([][]byte{k.current}, k.old...) }

// verify checks sum against every key.
func (k *Keys) verify(sum []byte, target string, parts ...string) bool {
	for _, master := range k.masters() {
		if hmac.Equal(sum, mac(rolloutKey(master, target), append([]string{target}, parts...)...)) {
			return true
		}
	}
	return false
}

// CommandToken is the reply token of a data-plane command: the data plane
// echoes it on every status for that command, and the status bridge signals
// a workflow only for statuses whose token verifies (someone who can write
// to the status topic but not read the commands cannot fake a completion).
func (k *Keys) CommandToken(replyTo, cluster string, generation int64) string {
	return base64.RawURLEncoding.EncodeToString(k.sign(replyTo, "reply", cluster, strconv.FormatInt(generation, 10))[:16])
}

// CheckCommandToken reports whether token is the reply token of the
// command (replyTo, cluster, generation).
func (k *Keys) CheckCommandToken(token, replyTo, cluster string, generation int64) bool {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != 16 {
		return false
	}
	for _, master := range k.masters() {
		sum := mac(rolloutKey(master, replyTo), replyTo, "reply", cluster, strconv.FormatInt(generation, 10))
		if hmac.Equal(b, sum[:16]) {
			return true
		}
	}
	return false
}
