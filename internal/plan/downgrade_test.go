package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/spec"
)

// downgraded lists the targets marked Downgrade: "id<from".
func downgraded(p *Plan) string {
	var out []string
	for _, ph := range p.Phases {
		for _, b := range ph.Batches {
			for _, t := range b.Clusters {
				if t.Downgrade {
					out = append(out, t.ClusterID+"<"+t.FromVersion)
				}
			}
		}
	}
	return strings.Join(out, " ")
}

func TestDowngrades(t *testing.T) {
	// Target 3.7.0 (rollout's default); one phase takes every cluster.
	fleetOf := func(versions ...string) []fleet.Cluster {
		var inv []fleet.Cluster
		for i, v := range versions {
			inv = append(inv, cl(fmt.Sprintf("k-%d kafka aws us-east-1 prod acme %s", i+1, v)))
		}
		return inv
	}
	all := spec.Phase{Name: "all", BatchSize: "100%"}
	tests := []struct {
		name    string
		inv     []fleet.Cluster
		target  string // default 3.7.0
		change  func(*spec.Rollout)
		opts    Options
		wantErr string // refused without allowDowngrade (and planned with it)
		want    string // the downgrades, planned with or without allowDowngrade
		total   int
	}{
		{name: "upgrades only", inv: fleetOf("3.5.2", "3.6.0", "3.7.0"), total: 2},
		{name: "one newer patch", inv: fleetOf("3.6.0", "3.7.1"),
			wantErr: "plan: 1 cluster runs a newer version than the target 3.7.0 (k-2 on 3.7.1): set allowDowngrade: true to downgrade it",
			want:    "k-2<3.7.1", total: 2},
		{name: "three, listed in ID order", inv: fleetOf("4.0.0", "3.6.0", "3.8.0", "v3.7.1"),
			wantErr: "plan: 3 clusters run a newer version than the target 3.7.0 (k-1 on 4.0.0, k-3 on 3.8.0, k-4 on v3.7.1): set allowDowngrade: true to downgrade them",
			want:    "k-1<4.0.0 k-3<3.8.0 k-4<v3.7.1", total: 4},
		{name: "many: the first five and a count", inv: fleetOf("3.7.1", "3.7.2", "3.7.3", "3.7.4", "3.7.5", "3.7.6", "3.7.7", "3.6.0"),
			wantErr: "plan: 7 clusters run a newer version than the target 3.7.0 (k-1 on 3.7.1, k-2 on 3.7.2, k-3 on 3.7.3, k-4 on 3.7.4, k-5 on 3.7.5 and 2 more): set allowDowngrade: true to downgrade them",
			want:    "k-1<3.7.1 k-2<3.7.2 k-3<3.7.3 k-4<3.7.4 k-5<3.7.5 k-6<3.7.6 k-7<3.7.7", total: 8},
		{name: "semantic equality is at the target", inv: fleetOf("v3.7", "3.7.0+build.9", "3"), total: 1},
		{name: "a pre-release of the target is older", inv: fleetOf("3.7.0-rc1"), total: 1},
		{name: "a release is newer than its pre-release", inv: fleetOf("3.7.1", "3.7.1-rc2", "3.7.1-rc10"), target: "3.7.1-rc3",
			wantErr: "plan: 2 clusters run a newer version than the target 3.7.1-rc3 (k-1 on 3.7.1, k-3 on 3.7.1-rc10): set allowDowngrade: true to downgrade them",
			want:    "k-1<3.7.1 k-3<3.7.1-rc10", total: 3},
		{name: "an unparsable version is not compared", inv: fleetOf("latest", "3.6.0"), total: 2},
		{name: "a version selector leaves the newer out", inv: fleetOf("3.6.0", "3.8.0"),
			change: func(r *spec.Rollout) { r.Selector = "product=kafka, version<3.7.0" }, total: 1},
		{name: "include takes a newer cluster past the selector", inv: fleetOf("3.6.0", "3.8.0"),
			change:  func(r *spec.Rollout) { r.Selector = "product=kafka, version<3.7.0"; r.Include = []string{"k-2"} },
			wantErr: "plan: 1 cluster runs a newer version than the target 3.7.0 (k-2 on 3.8.0): set allowDowngrade: true to downgrade it",
			want:    "k-2<3.8.0", total: 2},
		{name: "clusters the rollout leaves alone are not checked", inv: fleetOf("3.8.0", "3.8.0", "3.8.0", "3.6.0", "3.8.0"),
			change:  func(r *spec.Rollout) { r.Exclude = []string{"k-1"} },
			opts:    Options{Busy: map[string]string{"k-2": "other"}, Protected: []string{"k-3"}},
			wantErr: "plan: 1 cluster runs a newer version than the target 3.7.0 (k-5 on 3.8.0): set allowDowngrade: true to downgrade it",
			want:    "k-5<3.8.0", total: 2},
		{name: "busy with this very rollout is planned, so checked", inv: fleetOf("3.8.0"),
			opts:    Options{Busy: map[string]string{"k-1": "r1"}},
			wantErr: "plan: 1 cluster runs a newer version than the target 3.7.0 (k-1 on 3.8.0): set allowDowngrade: true to downgrade it",
			want:    "k-1<3.8.0", total: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mk := func(allow bool) *spec.Rollout {
				r := rollout("product=kafka", all)
				if tt.target != "" {
					r.Target.Version = tt.target
				}
				if tt.change != nil {
					tt.change(r)
				}
				r.AllowDowngrade = allow
				return r
			}

			// Without allowDowngrade.
			p, err := Build(mk(false), tt.inv, tt.opts)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("planned %s, want a refusal", ids(p))
				}
				if err.Error() != tt.wantErr {
					t.Fatalf("error:\n%s\nwant:\n%s", err, tt.wantErr)
				}
				var de *DowngradeError
				if !errors.As(err, &de) || len(de.Clusters) != strings.Count(tt.want, "<") {
					t.Fatalf("errors.As DowngradeError: %+v", de)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if p.Downgrades != 0 || downgraded(p) != "" {
					t.Fatalf("downgrades %d: %s", p.Downgrades, downgraded(p))
				}
			}
			base := p

			// With allowDowngrade: planned and marked.
			p, err = Build(mk(true), tt.inv, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := downgraded(p); got != tt.want {
				t.Fatalf("downgrades = %q, want %q", got, tt.want)
			}
			if p.Downgrades != strings.Count(tt.want, "<") || p.Total != tt.total {
				t.Fatalf("Downgrades %d, Total %d, want %d", p.Downgrades, p.Total, tt.total)
			}
			// allowDowngrade alone changes nothing in a plan without one.
			if base != nil && (p.Hash != base.Hash || ids(p) != ids(base)) {
				t.Fatalf("allowDowngrade changed a plan without downgrades: %s %s vs %s %s", p.Hash, ids(p), base.Hash, ids(base))
			}
		})
	}
}

// TestDowngradeHashAndJSON: the marks are in the hash and the JSON (only
// on the clusters that have one), and survive a round trip.
func TestDowngradeHashAndJSON(t *testing.T) {
	inv := []fleet.Cluster{
		cl("k-1 kafka aws us-east-1 prod acme 3.6.0"),
		cl("k-2 kafka aws us-east-1 prod globex 3.8.0"),
	}
	r := rollout("product=kafka", spec.Phase{Name: "all", BatchSize: "1"})
	r.AllowDowngrade = true
	p, err := Build(r, inv, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Hash != p.ComputeHash() {
		t.Fatal("Hash is not ComputeHash")
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), `"downgrade":true`); n != 1 || !strings.Contains(string(b), `"downgrades":1`) {
		t.Fatalf("JSON marks %d downgrades:\n%s", n, b)
	}
	if !strings.Contains(string(b), `{"id":"k-2","product":"kafka","gen":4,"from":"3.8.0","downgrade":true}`) {
		t.Fatalf("JSON target:\n%s", b)
	}
	if size, _, _ := jsonSize(p); size != len(b) {
		t.Fatalf("jsonSize = %d, JSON is %d bytes", size, len(b))
	}
	var back Plan
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Phases, p.Phases) || back.Downgrades != p.Downgrades || back.ComputeHash() != p.Hash {
		t.Fatal("a JSON round trip changes the plan or its hash")
	}

	// Clearing or moving a mark changes the hash.
	cleared := back
	cleared.Phases = append([]Phase(nil), back.Phases...)
	for i := range cleared.Phases {
		cleared.Phases[i].Batches = append([]Batch(nil), back.Phases[i].Batches...)
		for j := range cleared.Phases[i].Batches {
			cleared.Phases[i].Batches[j].Clusters = append([]Target(nil), back.Phases[i].Batches[j].Clusters...)
		}
	}
	var marks []*Target
	for i := range cleared.Phases {
		for j := range cleared.Phases[i].Batches {
			for k := range cleared.Phases[i].Batches[j].Clusters {
				marks = append(marks, &cleared.Phases[i].Batches[j].Clusters[k])
			}
		}
	}
	hashes := map[string]string{p.Hash: "as planned"}
	for name, set := range map[string][2]bool{"cleared": {false, false}, "moved": {true, false}, "both": {true, true}} {
		marks[0].Downgrade, marks[1].Downgrade = set[0], set[1]
		h := cleared.ComputeHash()
		if prev, dup := hashes[h]; dup {
			t.Fatalf("marks %s hash like %s", name, prev)
		}
		hashes[h] = name
	}
	// A plan without downgrades hashes as before marks existed: the same
	// plan without k-2 (pinned: the encoding without marks must not move,
	// so approvals of such plans stay valid across versions).
	r.AllowDowngrade = false
	up, err := Build(r, inv[:1], Options{})
	if err != nil {
		t.Fatal(err)
	}
	if up.Hash != "f8195e1c097f" {
		t.Fatalf("a plan without downgrades hashes %s, was f8195e1c097f", up.Hash)
	}
}

func TestRenderDowngrades(t *testing.T) {
	inv := []fleet.Cluster{
		cl("i-1 kafka aws us-east-1 internal confluent 3.6.0"),
		cl("p-1 kafka aws us-east-1 prod acme 3.8.0"),
		cl("p-2 kafka aws us-east-1 prod globex 3.6.0"),
		cl("p-3 kafka aws us-east-1 prod initech 3.7.1"),
	}
	r := rollout("product=kafka",
		spec.Phase{Name: "internal", Selector: "env=internal", BatchSize: "1"},
		spec.Phase{Name: "prod", Selector: "env=prod", BatchSize: "2"})
	r.AllowDowngrade = true
	p, err := Build(r, inv, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Render(&buf, p, RenderOptions{Clusters: true}); err != nil {
		t.Fatal(err)
	}
	want := `Plan ` + p.Hash + `: 4 clusters to version 3.7.0 in 2 phases, 3 batches
Downgrades: 2 clusters run a newer version and will go down to 3.7.0 (allowDowngrade)

Phase 1 internal: 1 cluster, 1 batch of up to 1, concurrency 1
  product      kafka 1
  cloud        aws 1
  region       us-east-1 1
  environment  internal 1
  batch 1: i-1

Phase 2 prod: 3 clusters, 2 batches of up to 2, concurrency 2, 2 downgrades
  product      kafka 3
  cloud        aws 3
  region       us-east-1 3
  environment  prod 3
  batch 2: p-1 (downgrade from 3.8.0) p-2
  batch 3: p-3 (downgrade from 3.7.1)
`
	if buf.String() != want {
		t.Fatalf("Render:\n%s\nwant:\n%s", buf.String(), want)
	}

	// Without --clusters the headline and the phase still say it.
	buf.Reset()
	if err := Render(&buf, p); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "Downgrades: 2 clusters run") || !strings.Contains(buf.String(), ", 2 downgrades\n") {
		t.Fatalf("Render without clusters:\n%s", buf.String())
	}

	// One downgrade reads in the singular; none, not at all.
	p2, err := Build(r, inv[:2], Options{})
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	_ = Render(&buf, p2)
	if !strings.Contains(buf.String(), "Downgrades: 1 cluster runs a newer version") || !strings.Contains(buf.String(), ", 1 downgrade\n") {
		t.Fatalf("Render one downgrade:\n%s", buf.String())
	}
	p3, err := Build(r, []fleet.Cluster{inv[0], inv[2]}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	_ = Render(&buf, p3, RenderOptions{Clusters: true})
	if strings.Contains(buf.String(), "owngrade") {
		t.Fatalf("Render without downgrades mentions them:\n%s", buf.String())
	}
}
