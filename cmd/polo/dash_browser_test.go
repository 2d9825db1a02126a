package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/polo-rl/polo/metrics"
)

const chromiumPath = "/usr/bin/chromium"

// TestDashBrowser opens `polo dash` in headless Chromium (the Debian package) on a finished small
// run and on a run that is still writing: every metric of metrics.jsonl has a drawn panel, the
// samples table holds the run's logged samples, a sample's token heat map has one cell per token,
// and points appended to the live run's metrics.jsonl appear without a reload. Screenshots go to
// $POLO_DASH_SCREENSHOTS (docs/ for the README) or the test's temporary folder.
func TestDashBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("POLO_REQUIRE_BROWSER") == "" {
			t.Skip("no " + chromiumPath + " (apt-get install chromium); set POLO_REQUIRE_BROWSER=1 to make this a failure")
		}
		t.Fatalf("POLO_REQUIRE_BROWSER is set but %s is missing: %v", chromiumPath, err)
	}
	start := time.Now()
	dir := t.TempDir()

	// A finished run: SFT, RL with evaluations, checkpoints, samples, TensorBoard events.
	done := filepath.Join(dir, "grpo-seed3") // named as polo compare names runs: one group over seeds
	var out, errb bytes.Buffer
	args := []string{"train", "--quiet", "--set", "run_dir=" + done, "--set", "model.preset=tiny", "--set", "task.options.digits=1",
		"--set", "task.test_size=8", "--set", "sft.steps=4", "--set", "rl.steps=6", "--set", "eval.every=2", "--set", "log.plots=false",
		"--set", "sampling.prompts_per_step=2", "--set", "sampling.group_size=4", "--set", "log.samples=6"}
	if code := run(args, nil, &out, &errb); code != 0 {
		t.Fatalf("train: exit %d: %s", code, errb.String())
	}
	t.Logf("trained the finished run in %.1f s", time.Since(start).Seconds())
	recs, err := metrics.Read(filepath.Join(done, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	samples, err := metrics.ReadSamples(filepath.Join(done, "samples"))
	if err != nil {
		t.Fatal(err)
	}
	wantPanels := map[string]bool{}
	for _, r := range recs {
		fam := r.Phase
		if strings.HasPrefix(fam, "eval") {
			fam = "eval"
		}
		for k := range r.Values {
			wantPanels[fam+"/"+k] = true
		}
	}

	// A run still writing: its first RL lines now, more while the page is open.
	live := filepath.Join(dir, "grpo-seed4")
	os.MkdirAll(live, 0o755)
	cfgYAML, _ := os.ReadFile(filepath.Join(done, "config.yaml"))
	cfgYAML = bytes.Replace(bytes.Replace(cfgYAML, []byte("seed: 3"), []byte("seed: 4"), 1), []byte(done), []byte(live), -1)
	os.WriteFile(filepath.Join(live, "config.yaml"), cfgYAML, 0o644)
	var rl []metrics.Record
	for _, r := range recs {
		if r.Phase == "rl" {
			rl = append(rl, r)
		}
	}
	ml, err := metrics.Open(filepath.Join(live, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer ml.Close()
	for _, r := range rl[:3] {
		ml.Write(r)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url, line, served, bctx := openDash(t, ctx, []string{done, live}, 1000)
	if !strings.Contains(line, " 2 run(s)") {
		t.Fatalf("polo dash said %q", line)
	}
	shots := os.Getenv("POLO_DASH_SCREENSHOTS")
	if shots == "" {
		shots = dir
	}

	// Charts: every metric has a panel with points and a drawn line or marker.
	if err := chromedp.Do(bctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	t.Logf("browser started and page loaded at %.1f s", time.Since(start).Seconds())
	waitFor(t, bctx, `document.querySelector('.panel[data-metric="rl/reward_mean"] path.line') !== null`)
	panels := jsEval[[]map[string]any](t, bctx, `[...document.querySelectorAll('.panel')].map(p => ({metric: p.dataset.metric, points: +p.dataset.points,
			marks: p.querySelectorAll('path.line, circle').length}))`)
	loadedAt := jsEval[float64](t, bctx, `window.__dashLoadedAt`)
	got := map[string]bool{}
	for _, p := range panels {
		m := p["metric"].(string)
		got[m] = true
		if wantPanels[m] && (p["points"].(float64) < 1 || p["marks"].(float64) < 1) {
			t.Errorf("panel %s: %v points, %v lines/markers drawn", m, p["points"], p["marks"])
		}
	}
	var missing []string
	for m := range wantPanels {
		if !got[m] {
			missing = append(missing, m)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 || len(got) != len(wantPanels) {
		t.Fatalf("%d panels for %d metrics; missing %v", len(got), len(wantPanels), missing)
	}
	// rl/reward_mean has the finished run's 6 points and the live run's 3.
	if n := pointsOf(t, bctx, "rl/reward_mean"); n != len(rl)+3 {
		t.Fatalf("rl/reward_mean: %d points, want %d", n, len(rl)+3)
	}
	screenshot(t, bctx, filepath.Join(shots, "dashboard.png"))

	// Bands over seeds: the two grpo runs become one mean line with a min–max band on the steps
	// both have; the wall-time axis redraws every panel.
	click := func(sel string) {
		t.Helper()
		if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
			t.Fatal(err)
		}
	}
	click(`#bands`)
	waitFor(t, bctx, `(() => { const p = document.querySelector('.panel[data-metric="rl/reward_mean"]');
		return p.querySelectorAll('path.band').length === 1 && p.querySelectorAll('path.line').length === 1 &&
			p.querySelector('path.line').dataset.run === 'grpo (mean of 2)'; })()`)
	click(`#bands`)
	jsEval[bool](t, bctx, `(() => { const s = document.getElementById('xaxis'); s.value = 'wall'; return s.dispatchEvent(new Event('change')); })()`)
	waitFor(t, bctx, `[...document.querySelectorAll('.panel')].every(p => +p.dataset.points > 0 && p.querySelector('path.line, circle'))`)
	jsEval[bool](t, bctx, `(() => { const s = document.getElementById('xaxis'); s.value = 'step'; return s.dispatchEvent(new Event('change')); })()`)

	// Live: append to the still-running run; the page picks the lines up without reloading.
	for _, r := range rl[3:5] {
		ml.Write(r)
	}
	deadline := time.Now().Add(10 * time.Second)
	for pointsOf(t, bctx, "rl/reward_mean") != len(rl)+5 {
		if time.Now().After(deadline) {
			t.Fatalf("rl/reward_mean still has %d points 10 s after two lines were appended", pointsOf(t, bctx, "rl/reward_mean"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if loadedAfter := jsEval[float64](t, bctx, `window.__dashLoadedAt`); loadedAfter != loadedAt {
		t.Fatalf("the page reloaded (%v → %v)", loadedAt, loadedAfter)
	}

	// Samples: the finished run's table holds every logged sample (newest first); a row's heat map
	// has a cell per token; the text search narrows the table.
	err = chromedp.Do(bctx,
		chromedp.Click(chromedp.CSS(`#tabs button[data-tab="samples"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#samples-table tbody tr`)),
	)
	if err != nil {
		t.Fatalf("samples: %v", err)
	}
	rows := jsEval[int](t, bctx, `document.querySelectorAll('#samples-table tbody tr').length`)
	firstStep := jsEval[string](t, bctx, `document.querySelector('#samples-table tbody tr td').textContent`)
	if rows != len(samples) || firstStep != fmt.Sprint(samples[len(samples)-1].Step) {
		t.Fatalf("samples table: %d rows, first step %s; the log has %d, newest step %d", rows, firstStep, len(samples), samples[len(samples)-1].Step)
	}
	newest := samples[len(samples)-1]
	err = chromedp.Do(bctx,
		chromedp.Click(chromedp.CSS(`#samples-table tbody tr`)),
		chromedp.WaitVisible(chromedp.CSS(`#heatmap span`)),
	)
	cells := jsEval[int](t, bctx, `document.querySelectorAll('#heatmap span').length`)
	if err != nil || cells != len(newest.Tokens) || cells == 0 {
		t.Fatalf("heat map: %d cells for %d tokens (%v)", cells, len(newest.Tokens), err)
	}
	screenshot(t, bctx, filepath.Join(shots, "dashboard-samples.png"))
	wantKind := 0
	for _, s := range samples {
		if s.Kind == "eval-greedy" {
			wantKind++
		}
	}
	jsEval[bool](t, bctx, `(() => { const s = document.getElementById('s-kind'); s.value = 'eval-greedy'; return s.dispatchEvent(new Event('change')); })()`)
	waitFor(t, bctx, fmt.Sprintf(`document.querySelectorAll('#samples-table tbody tr').length === %d && [...document.querySelectorAll('#samples-table tbody tr td:nth-child(2)')].every(td => td.textContent === 'eval-greedy')`, wantKind))

	// Config diff between the two runs names the seed.
	err = chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`#tabs button[data-tab="config"]`)), chromedp.WaitVisible(chromedp.CSS(`#config-diff tbody tr`)))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, bctx, `document.querySelector('#config-diff tbody').textContent === 'run_dir`+done+live+`seed34'`)
	err = chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`#tabs button[data-tab="checkpoints"]`)))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, bctx, `[...document.querySelectorAll('#checkpoints td')].some(td => td.textContent === 'rl-000006')`)

	cancel()
	if err := <-served; err != nil {
		t.Fatalf("polo dash: %v", err)
	}
	t.Logf("browser test took %.1f s", time.Since(start).Seconds())
}

func pointsOf(t *testing.T, ctx context.Context, metric string) int {
	t.Helper()
	return jsEval[int](t, ctx, fmt.Sprintf(`+document.querySelector('.panel[data-metric=%q]').dataset.points`, metric))
}

// jsEval evaluates a JavaScript expression in the page.
func jsEval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript condition for up to 10 s.
func waitFor(t *testing.T, ctx context.Context, cond string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if jsEval[bool](t, ctx, cond) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still false after 10 s: %s (page status: %s)", cond, jsEval[string](t, ctx, `document.getElementById('status').textContent`))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func screenshot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 1000 || b.Dy() < 600 {
		t.Fatalf("screenshot %v", b)
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDashScreenshots makes the README's screenshots from real runs (it does nothing unless asked):
//
//	polo compare --algos grpo,dapo --seeds 2 --out runs/compare --set rl.steps=80 --set eval.every=20 --set task.test_size=128
//	POLO_DASH_SCREENSHOT_RUNS=runs/compare POLO_DASH_SCREENSHOTS=docs go test ./cmd/polo -run TestDashScreenshots
func TestDashScreenshots(t *testing.T) {
	runs, shots := os.Getenv("POLO_DASH_SCREENSHOT_RUNS"), os.Getenv("POLO_DASH_SCREENSHOTS")
	if runs == "" || shots == "" {
		t.Skip("set POLO_DASH_SCREENSHOT_RUNS and POLO_DASH_SCREENSHOTS to make the documentation's screenshots")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url, _, served, bctx := openDash(t, ctx, []string{runs}, 900)
	if err := chromedp.Do(bctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, bctx, `document.body.dataset.ready === '1' && document.querySelector('.panel path.line') !== null`)
	jsEval[bool](t, bctx, `(() => { document.getElementById('bands').click(); return true; })()`)
	time.Sleep(500 * time.Millisecond)
	viewportShot(t, bctx, filepath.Join(shots, "dashboard.png"))
	jsEval[bool](t, bctx, `(() => { document.querySelector('#tabs button[data-tab="samples"]').click(); return true; })()`)
	waitFor(t, bctx, `document.querySelectorAll('#samples-table tbody tr').length > 0`)
	jsEval[bool](t, bctx, `(() => { const s = document.getElementById('s-kind'); s.value = 'rollout'; s.dispatchEvent(new Event('change')); return true; })()`)
	time.Sleep(500 * time.Millisecond)
	jsEval[bool](t, bctx, `(() => { const r = [...document.querySelectorAll('#samples-table tbody tr')].find(tr => tr.children[2].classList.contains('good')) ||
		document.querySelector('#samples-table tbody tr'); r.click(); return true; })()`)
	waitFor(t, bctx, `document.querySelector('#heatmap span') !== null`)
	viewportShot(t, bctx, filepath.Join(shots, "dashboard-samples.png"))
	cancel()
	<-served
}

// openDash starts `polo dash` on runs at a free port and a headless Chromium window 1400 wide and
// height tall; both stop when ctx ends. It returns the dashboard's URL, the first line polo dash
// printed, the channel that receives serveDash's result, and the browser's context.
func openDash(t *testing.T, ctx context.Context, runs []string, height int) (url, line string, served chan error, browser context.Context) {
	t.Helper()
	pr, pw := io.Pipe()
	served = make(chan error, 1)
	go func() { served <- serveDash(ctx, append(runs, "--port", "0"), pw, io.Discard); pw.Close() }()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("polo dash printed no address: %v (%v)", err, <-served)
	}
	go io.Copy(io.Discard, pr)
	url = regexp.MustCompile(`http://127\.0\.0\.1:\d+/`).FindString(line)
	if url == "" {
		t.Fatalf("polo dash said %q", line)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromiumPath), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1400, height))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(func() { bcancel(); acancel() })
	return url, line, served, bctx
}

// viewportShot saves what a user sees in the window (the documentation's screenshots).
func viewportShot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
}
