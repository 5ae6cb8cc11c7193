package planstore

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/plan"
)

// testPlan is a small full plan with its hash.
func testPlan(n int) *plan.Plan {
	p := &plan.Plan{Version: "3.7.0", Config: map[string]string{"k": "v"}}
	ph := plan.Phase{Name: "prod", Concurrency: 2}
	for b := 1; b <= 3; b++ {
		batch := plan.Batch{Number: b}
		for i := 0; i < n; i++ {
			batch.Clusters = append(batch.Clusters, plan.Target{
				ClusterID: "c-" + string(rune('a'+b)) + "-" + string(rune('a'+i)), Product: "kafka", Generation: int64(i + 1), FromVersion: "3.6.0"})
		}
		ph.Batches = append(ph.Batches, batch)
	}
	p.Phases = []plan.Phase{ph}
	p.Total = 3 * n
	p.Hash = p.ComputeHash()
	return p
}

// exercise runs the same checks on any store: round trip, idempotent put,
// missing and corrupt documents are errors naming the key.
func exercise(t *testing.T, s Store, corrupt func(key string)) {
	ctx := context.Background()
	p := testPlan(4)
	key, err := PutPlan(ctx, s, p)
	require.NoError(t, err)
	require.Len(t, key, 64)
	again, err := PutPlan(ctx, s, p)
	require.NoError(t, err)
	require.Equal(t, key, again, "the same plan has the same key")

	got, err := GetPlan(ctx, s, key)
	require.NoError(t, err)
	require.Equal(t, p, got)

	full, err := Load(ctx, s, p.Outline(key))
	require.NoError(t, err)
	require.Equal(t, p, full)

	missing := Key([]byte("no such plan"))
	_, err = GetPlan(ctx, s, missing)
	require.ErrorIs(t, err, ErrNotFound)
	require.Contains(t, err.Error(), missing)

	_, err = GetPlan(ctx, s, "../../etc/passwd")
	require.Error(t, err)

	corrupt(key)
	_, err = GetPlan(ctx, s, key)
	require.ErrorIs(t, err, ErrCorrupt)
	require.Contains(t, err.Error(), key)
}

func TestDir(t *testing.T) {
	dir := t.TempDir()
	s, err := NewDir(filepath.Join(dir, "plans"))
	require.NoError(t, err)
	exercise(t, s, func(key string) {
		require.NoError(t, os.WriteFile(s.file(key), []byte(`{"hash":"x"}`), 0o644))
	})
	// No temporary file is left behind.
	var tmp []string
	require.NoError(t, filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if strings.HasSuffix(p, ".tmp") {
			tmp = append(tmp, p)
		}
		return err
	}))
	require.Empty(t, tmp)
}

// The S3 store against an in-process S3 server over real HTTP, with the
// real minio client.
func TestS3(t *testing.T) {
	backend := s3mem.New()
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	defer srv.Close()
	require.NoError(t, backend.CreateBucket("fleet"))

	env := map[string]string{
		EnvS3Endpoint:  srv.URL,
		EnvS3AccessKey: "AKIAFLEET",
		EnvS3SecretKey: "very-secret-value",
		EnvS3Region:    "us-east-1",
	}
	st, err := Open("s3://fleet/prod/plans", func(k string) string { return env[k] })
	require.NoError(t, err)
	s := st.(*S3)
	require.NotContains(t, s.String(), "very-secret-value")
	require.NotContains(t, s.String(), "AKIAFLEET")
	exercise(t, s, func(key string) {
		_, err := backend.PutObject("fleet", "prod/plans/"+key+".json", map[string]string{}, bytes.NewReader([]byte(`{"hash":"x"}`)), 12, nil)
		require.NoError(t, err)
	})

	// A bucket that does not exist: not found, naming the key.
	env2 := map[string]string{EnvS3Endpoint: srv.URL, EnvS3AccessKey: "a", EnvS3SecretKey: "b"}
	none, err := Open("s3://nobucket", func(k string) string { return env2[k] })
	require.NoError(t, err)
	k := Key([]byte("x"))
	_, err = GetPlan(context.Background(), none, k)
	require.Error(t, err)
	require.Contains(t, err.Error(), k)
}

func TestOpen(t *testing.T) {
	none := func(string) string { return "" }
	dir := t.TempDir()
	for _, spec := range []string{"dir:" + dir, dir} {
		s, err := Open(spec, none)
		require.NoError(t, err, spec)
		require.Equal(t, "dir:"+dir, s.String())
	}
	for _, bad := range []string{"", "dir:relative/path", "relative", "s3://", "ftp://x", "s3://user:pw@bucket"} {
		_, err := Open(bad, none)
		require.Error(t, err, bad)
		require.NotContains(t, err.Error(), "pw@", bad)
	}
}

func TestCache(t *testing.T) {
	s, err := NewDir(t.TempDir())
	require.NoError(t, err)
	c := &Cache{Store: s, Max: 1}
	ctx := context.Background()
	a, b := testPlan(1), testPlan(2)
	ka, err := c.Put(ctx, a)
	require.NoError(t, err)
	kb, err := c.Put(ctx, b)
	require.NoError(t, err)
	got, err := c.Plan(ctx, ka)
	require.NoError(t, err)
	require.Equal(t, a, got)
	again, err := c.Plan(ctx, ka)
	require.NoError(t, err)
	require.Same(t, got, again, "read once, then from memory")
	_, err = c.Plan(ctx, kb)
	require.NoError(t, err)
	require.Len(t, c.plans, 1, "Max plans kept")
	// Gone from the store: the cache of an evicted plan reads it again and fails.
	require.NoError(t, os.Remove(s.file(ka)))
	_, err = c.Plan(ctx, ka)
	require.True(t, errors.Is(err, ErrNotFound), "%v", err)
}

// countingStore counts reads and lets them wait on release.
type countingStore struct {
	Store
	mu      sync.Mutex
	gets    int
	release chan struct{}
}

func (s *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	s.gets++
	s.mu.Unlock()
	if s.release != nil {
		<-s.release
	}
	return s.Store.Get(ctx, key)
}

func TestCacheKeepsWhatItStoresAndSharesConcurrentReads(t *testing.T) {
	dir, err := NewDir(t.TempDir())
	require.NoError(t, err)
	ctx := context.Background()

	// The worker that stores a plan reads it from memory.
	s := &countingStore{Store: dir}
	c := NewCache(s)
	p := testPlan(3)
	key, err := c.Put(ctx, p)
	require.NoError(t, err)
	got, err := c.Plan(ctx, key)
	require.NoError(t, err)
	require.Equal(t, p, got, "what a read of the key decodes to")
	require.Zero(t, s.gets, "kept as stored, never read back")

	// Another worker: 30 batches ask at once, one read.
	s2 := &countingStore{Store: dir, release: make(chan struct{})}
	c2 := NewCache(s2)
	var wg sync.WaitGroup
	plans := make([]*plan.Plan, 30)
	for i := range plans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			plans[i], _ = c2.Plan(ctx, key)
		}()
	}
	require.Eventually(t, func() bool { s2.mu.Lock(); defer s2.mu.Unlock(); return s2.gets == 1 }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(50 * time.Millisecond) // the others ask meanwhile
	close(s2.release)
	wg.Wait()
	require.Equal(t, 1, s2.gets, "one read shared by every batch that asked while it ran")
	for _, q := range plans {
		require.Same(t, plans[0], q)
	}
	require.Equal(t, p, plans[0])
}
