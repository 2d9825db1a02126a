package train

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polo-rl/polo/metrics"
	"github.com/polo-rl/polo/model"
)

// divergingRun is the repro: SFT at lr 1e9 without clipping turns the loss NaN at step 10
// of the demo model; checkpoints every 2 steps, 2 kept.
func divergingRun(t *testing.T, dir string, sets ...string) Config {
	return smallRun(t, dir, append([]string{"model.preset=small", "sft.lr=1e9", "optim.clip_norm=0", "sft.steps=30",
		"rl.steps=0", "task.test_size=8", "checkpoint.every=2", "checkpoint.keep=2", "eval.every=0"}, sets...)...)
}

// checkFiniteCheckpoints asserts that latest names a checkpoint and that every step checkpoint left
// loads (model.Load rejects NaN/Inf weights).
func checkFiniteCheckpoints(t *testing.T, dir string) string {
	t.Helper()
	ck := filepath.Join(dir, "checkpoints")
	latest, err := latestCheckpoint(ck)
	if err != nil {
		t.Fatalf("no usable latest checkpoint: %v", err)
	}
	entries, _ := os.ReadDir(ck)
	n := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "sft-") || strings.HasPrefix(e.Name(), "rl-") {
			n++
			if _, err := model.Load(filepath.Join(ck, e.Name(), "model")); err != nil {
				t.Errorf("checkpoint %s: %v", e.Name(), err)
			}
		}
	}
	if n == 0 {
		t.Fatal("no step checkpoint left")
	}
	recs, err := metrics.Read(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Values["nonfinite_values"] > 0 && r.Values["skipped"] == 0 { // a dropped step's NaN loss is not logged
			t.Errorf("metrics record %s/%d holds non-finite values: %v", r.Phase, r.Step, r.Values)
		}
	}
	return filepath.Base(latest)
}

// TestNonFiniteSFTStops: a diverging SFT run stops with an error naming the step and the last good
// checkpoint, writes no checkpoint after the divergence and keeps the last finite ones (issue 14,
// item 2). Before, it trained on with NaN weights and rotated every finite checkpoint away.
func TestNonFiniteSFTStops(t *testing.T) {
	dir := t.TempDir()
	_, err := Run(divergingRun(t, dir), Options{})
	if err == nil || !strings.Contains(err.Error(), "training diverged at sft step") || !strings.Contains(err.Error(), "optim.on_nonfinite=skip") {
		t.Fatalf("err = %v, want a divergence error", err)
	}
	latest := checkFiniteCheckpoints(t, dir)
	if !strings.Contains(err.Error(), "last checkpoint: "+filepath.Join("checkpoints", latest)) {
		t.Errorf("error %q does not name the last checkpoint %s", err, latest)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error spans several lines: %q", err)
	}
}

// TestNonFiniteSFTSkip: with optim.on_nonfinite=skip the NaN steps are dropped and logged, the
// weights stay finite, and since these weights never recover the run stops after 10 in a row.
func TestNonFiniteSFTSkip(t *testing.T) {
	dir := t.TempDir()
	var log bytes.Buffer
	_, err := Run(divergingRun(t, dir, "optim.on_nonfinite=skip"), Options{Log: &log})
	if err == nil || !strings.Contains(err.Error(), "10 steps in a row were dropped") {
		t.Fatalf("err = %v, want a stop after 10 dropped steps", err)
	}
	if !strings.Contains(log.String(), "step dropped (optim.on_nonfinite=skip, 10 in a row)") {
		t.Errorf("log does not report the dropped steps:\n%s", log.String())
	}
	checkFiniteCheckpoints(t, dir)
	recs, _ := metrics.Read(filepath.Join(dir, "metrics.jsonl"))
	skipped := 0
	for _, r := range recs {
		if r.Values["skipped"] == 1 {
			skipped++
		}
	}
	if skipped < 10 {
		t.Errorf("%d metrics records marked skipped, want >= 10", skipped)
	}
	if _, err := LoadConfig("", []string{"optim.on_nonfinite=ignore"}); err == nil || !strings.Contains(err.Error(), "optim.on_nonfinite: want stop or skip") {
		t.Errorf("bad on_nonfinite: %v", err)
	}
}

// TestNonFiniteRLStops: the same for an RL phase at lr 1e9: the run stops with a clear error and the
// checkpoints left are finite.
func TestNonFiniteRLStops(t *testing.T) {
	dir := t.TempDir()
	_, err := Run(divergingRun(t, dir, "sft.steps=0", "rl.steps=30", "optim.lr=1e9", "optim.warmup_steps=0"), Options{})
	if err == nil || !strings.Contains(err.Error(), "rl step") || !strings.Contains(err.Error(), "non-finite") {
		t.Fatalf("err = %v, want a divergence error", err)
	}
	checkFiniteCheckpoints(t, dir)
}
