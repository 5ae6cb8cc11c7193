package app_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/workflows"
)

// chromium is Debian's Chromium (apt-get install -y chromium; .ci/run
// installs it).
const chromium = "/usr/bin/chromium"

// newBrowser starts a headless Chromium for the test. A missing Chromium
// fails the test, unless FLEET_SKIP_BROWSER=1 says to skip it.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("FLEET_SKIP_BROWSER") == "1" {
			t.Skipf("FLEET_SKIP_BROWSER=1 and no %s", chromium)
		}
		t.Fatalf("the dashboard's browser test needs Debian's Chromium at %s (apt-get install -y chromium; .ci/run installs it), or FLEET_SKIP_BROWSER=1 to skip it: %v", chromium, err)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	require.NoError(t, chromedp.Do(ctx), "start %s", chromium)
	return ctx
}

// pageCounts reads the rollout page's state and numbers.
const pageCounts = `(() => {
  const g = id => document.getElementById(id).textContent;
  return {state: document.getElementById("rollout").dataset.state || "",
    total: g("c-total"), done: g("c-done"), pending: g("c-pending"), inFlight: g("c-inFlight"),
    held: g("c-held"), verifying: g("c-verifying"), failed: g("c-failed"), aborted: g("c-aborted"),
    skipped: g("c-skipped"), paused: g("st-paused"), result: g("act-result")};
})()`

func statusCounts(st *workflows.RolloutStatus) map[string]string {
	c := st.Counts
	n := strconv.Itoa
	return map[string]string{"state": string(st.State), "total": n(st.Total), "done": n(c.Done), "pending": n(c.Pending),
		"inFlight": n(c.InFlight), "held": n(c.Held), "verifying": n(c.Verifying), "failed": n(c.Failed),
		"aborted": n(c.Aborted), "skipped": n(c.Skipped)}
}

// readPage evaluates pageCounts.
func readPage(t *testing.T, ctx context.Context) map[string]string {
	t.Helper()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](pageCounts))
	require.NoError(t, err)
	return got
}

// waitPage polls the page until cond holds.
func waitPage(t *testing.T, ctx context.Context, what string, cond func(map[string]string) bool) map[string]string {
	t.Helper()
	var last map[string]string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if last = readPage(t, ctx); cond(last) {
			return last
		}
	}
	t.Fatalf("page: timed out waiting for %s; last %v", what, last)
	return nil
}

// agree waits until the page shows exactly what a status read right after
// it says: the page may lag by its refresh, never by a tolerance.
func (s *stack) agree(t *testing.T, ctx context.Context, id string) map[string]string {
	t.Helper()
	var page, want map[string]string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		page = readPage(t, ctx)
		st, err := s.client.Status(context.Background(), id)
		require.NoError(t, err)
		want = statusCounts(st)
		same := true
		for k, v := range want {
			same = same && page[k] == v
		}
		if same {
			return want
		}
	}
	t.Fatalf("the page never agreed with the status: page %v, status %v", page, want)
	return nil
}

const dashRollout = `
name: it-dash
target:
  version: 3.7.1
selector: product=kafka
strategy:
  phases:
    - name: canary
      selector: env=internal
      batchSize: 10
      strict: true
      bake: 1s
    - name: everything-else
      selector: env in (non-prod, prod)
      batchSize: 25
      concurrency: 40
monitoring:
  interval: 1s
schedule:
  windows: ignore
`

// TestDashboardBrowser drives the dashboard in a real Chromium against the
// whole stack: a rollout paused and resumed from its page, the page's
// numbers equal to the rollout's status.
func TestDashboardBrowser(t *testing.T) {
	s := startStackWith(t, stackOptions{Clusters: 500, BrokerTime: 400 * time.Millisecond})
	ctx := newBrowser(t)
	base := "http://" + s.dev.Config.HTTPAddr

	// The fleet and plan pages render from the inventory.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/")))
	fleetTotal, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("fleet-total")))
	require.NoError(t, err)
	require.Equal(t, "500 clusters", fleetTotal)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/plan"),
		chromedp.SetValue(chromedp.ID("spec"), dashRollout),
		chromedp.Click(chromedp.ID("btn-plan")),
	))
	planOut, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("plan-out")))
	require.NoError(t, err)
	require.Regexp(t, `^Plan [0-9a-f]+: \d+ clusters to version 3.7.1 in 2 phases`, planOut)

	id, err := s.client.Start(context.Background(), parseSpec(t, dashRollout), "tester")
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/rollouts/it-dash")))
	waitPage(t, ctx, "running", func(p map[string]string) bool { return p["state"] == "running" })

	const reason = "lag on lkc-00042 (browser test)"
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("reason"), reason),
		chromedp.Click(chromedp.ID("btn-pause")),
	))
	p := waitPage(t, ctx, "paused", func(p map[string]string) bool { return p["state"] == "paused" })
	require.Contains(t, p["paused"], reason)
	require.Contains(t, p["paused"], "Paused by dashboard")
	st, err := s.client.Status(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, workflows.StatePaused, st.State)
	require.NotNil(t, st.Paused)
	require.Equal(t, reason, st.Paused.Reason)
	require.Equal(t, "dashboard", st.Paused.Actor)
	paused := s.agree(t, ctx, id)
	require.Equal(t, "paused", paused["state"])
	t.Logf("paused: page and status agree: %v", paused)

	// A refused update shows its rejection message on the page.
	require.NoError(t, chromedp.Do(ctx, chromedp.Clear(chromedp.ID("reason")), chromedp.Click(chromedp.ID("btn-pause"))))
	waitPage(t, ctx, "the rejection", func(p map[string]string) bool { return p["result"] != "" && p["result"] != "pause…" })
	require.Contains(t, readPage(t, ctx)["result"], "refused:")

	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.ID("btn-resume"))))
	waitPage(t, ctx, "resumed", func(p map[string]string) bool { return p["state"] != "paused" })
	st, err = s.client.Status(context.Background(), id)
	require.NoError(t, err)
	require.NotEqual(t, workflows.StatePaused, st.State)
	t.Logf("after resume: page and status agree: %v", s.agree(t, ctx, id))

	s.waitFor(t, id, "the end", terminal)
	done := s.agree(t, ctx, id)
	require.Equal(t, "completed", done["state"])
	require.Equal(t, done["total"], done["done"])

	// A batch's clusters, a page at a time.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`span.batch[data-batch="1"]`)),
		chromedp.WaitVisible(chromedp.ID("batch")),
	))
	title, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("batch-title")))
	require.NoError(t, err)
	require.Contains(t, title, "Batch 1 (canary")
}

// TestDashboardScreenshots writes screenshots of the dashboard's main pages
// into $FLEET_SCREENSHOTS (docs/screenshots in the repository):
//
//	FLEET_SCREENSHOTS=$PWD/docs/screenshots go test -run TestDashboardScreenshots ./internal/app/
func TestDashboardScreenshots(t *testing.T) {
	dir := os.Getenv("FLEET_SCREENSHOTS")
	if dir == "" {
		t.Skip("set FLEET_SCREENSHOTS to a directory to write the dashboard's screenshots")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	s := startStackWith(t, stackOptions{Clusters: 3000, BrokerTime: 300 * time.Millisecond})
	ctx := newBrowser(t)
	base := "http://" + s.dev.Config.HTTPAddr
	example, err := os.ReadFile(filepath.Join("..", "..", "examples", "rollout.yaml"))
	require.NoError(t, err)
	shot := func(name string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		require.NoError(t, chromedp.Do(ctx, append(steps, chromedp.Sleep(300*time.Millisecond))...))
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644))
		t.Logf("wrote %s.png", name)
	}
	shot("plan", chromedp.Navigate(base+"/plan"), chromedp.SetValue(chromedp.ID("spec"), string(example)),
		chromedp.Click(chromedp.ID("btn-plan")), chromedp.WaitVisible(chromedp.ID("plan-out")))

	id, err := s.client.Start(context.Background(), parseSpec(t, string(example)), "alice")
	require.NoError(t, err)
	s.waitFor(t, id, "progress", func(st *workflows.RolloutStatus) bool { return st.Counts.Done >= 100 })
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/rollouts/"+workflows.RolloutName(id))))
	waitPage(t, ctx, "running", func(p map[string]string) bool { return p["state"] == "running" })
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("reason"), "consumer lag on lkc-00042"),
		chromedp.SetValue(chromedp.ID("actor"), "alice"),
		chromedp.Click(chromedp.ID("btn-pause"))))
	waitPage(t, ctx, "paused", func(p map[string]string) bool { return p["state"] == "paused" })
	s.agree(t, ctx, id)
	shot("rollout", chromedp.Click(chromedp.CSS(`span.batch[data-batch="5"]`)), chromedp.WaitVisible(chromedp.ID("batch")))
	shot("rollouts", chromedp.Navigate(base+"/rollouts"), chromedp.WaitVisible(chromedp.ID("rollouts")))
	shot("fleet", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("fleet-total")))
}
