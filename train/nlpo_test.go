package train

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polo-rl/polo/objective"
)

// TestNLPOMasksAndSyncsOnSchedule: with mask_sync_every=2 the masking policy is replaced before RL
// steps 1, 3 and 5 and only then — it is the policy as the previous step left it (checkpointed
// weights byte for byte) —; rollouts are drawn inside its nucleus and π_old is normalised over
// the same recorded nuclei (the sampler's log-probs equal the training graph's).
func TestNLPOMasksAndSyncsOnSchedule(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a small run")
	}
	sets := append([]string{"algo.name=nlpo", "rl.steps=5", "checkpoint.every=1", "checkpoint.keep=10", "sampling.prompts_per_step=4"}, presetRunSets["nlpo"]...)
	cfg := smallRun(t, filepath.Join(t.TempDir(), "nlpo"), append(sets, "algo.set.mask_sync_every=2", "algo.set.mask_top_p=0.6")...)
	worst, tokens := 0.0, 0
	opts := Options{observe: func(stage string, b *objective.Batch) {
		if stage != "loss" {
			return
		}
		roll, _ := b.Extra[objective.InRolloutLogP].([][]float64)
		if roll == nil {
			t.Errorf("no rollout log-probs in the batch")
			return
		}
		for i, row := range b.Mask {
			for j, m := range row {
				if m != 0 {
					worst = math.Max(worst, math.Abs(b.OldLogP[i][j]-roll[i][j]))
					tokens++
				}
			}
		}
	}}
	if _, err := Run(cfg, opts); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d tokens: max |π_old (graph, nucleus) - sampler log-prob| = %.3g", tokens, worst)
	if tokens == 0 || worst > 1e-4 {
		t.Errorf("masked π_old off the sampler's masked log-probs by %.3g over %d tokens", worst, tokens)
	}
	synced := rlSeries(t, cfg.RunDir, "nlpo_mask_synced")
	if want := []float64{1, 0, 1, 0, 1}; len(synced) != 5 || !equalFloats(synced, want) {
		t.Errorf("nlpo_mask_synced = %v, want %v", synced, want)
	}
	nuc := rlSeries(t, cfg.RunDir, "nlpo_nucleus_mean")
	vocab := 0.0
	for _, n := range nuc {
		vocab = math.Max(vocab, n)
	}
	t.Logf("mean nucleus size per step: %v", nuc)
	if len(nuc) != 5 || !(nuc[0] >= 1) || !(nuc[0] < 10) {
		t.Errorf("nucleus sizes %v: want at least 1 and well below the vocabulary", nuc)
	}
	read := func(ck, file string) []byte {
		b, err := os.ReadFile(filepath.Join(cfg.RunDir, "checkpoints", ck, file))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	policy := func(step int) []byte { return read(checkpointName("rl", step), "model/model.safetensors") }
	maskAt := func(step int) []byte { return read(checkpointName("rl", step), "mask_model/model.safetensors") }
	// The masking policy of step s (saved after step s) is the policy after the last step before
	// the latest sync: steps 1-2 use the RL-start policy, 3-4 the one after step 2, 5 after step 4.
	for s, src := range map[int]int{1: 0, 2: 0, 3: 2, 4: 2, 5: 4} {
		if !bytes.Equal(maskAt(s), policy(src)) {
			t.Errorf("masking policy at step %d is not the policy after step %d", s, src)
		}
	}
	if bytes.Equal(policy(2), policy(0)) {
		t.Errorf("the policy did not move in two steps")
	}
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestNLPORefusesWhatCannotMask: remote servers and agent mode do not sample through the masking
// policy; both are refused before training, naming the field.
func TestNLPORefusesWhatCannotMask(t *testing.T) {
	for _, c := range []struct {
		sets []string
		want string
	}{
		{[]string{"rollout.engine=remote", "rollout.servers=[http://127.0.0.1:1]"}, "rollout.engine: local"},
		{[]string{"agent.enabled=true", "task.name=dataset", "task.path=x.jsonl"}, "agent.enabled: false"},
	} {
		cfg := smallRun(t, filepath.Join(t.TempDir(), "x"), append([]string{"algo.name=nlpo"}, c.sets...)...)
		if _, err := newObjective(cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error naming %q", c.sets, err, c.want)
		}
	}
}

// TestNLPOWithLoRA: NLPO trains a LoRA adapter: the masking policy is a copy of the adapted policy,
// checkpointed as its adapter on the shared base, so a run resumed after step 2 — step 3 masks with
// the checkpointed policy (mask_sync_every=3), step 4 syncs — repeats steps 3 and 4 bit-identically.
func TestNLPOWithLoRA(t *testing.T) {
	if testing.Short() {
		t.Skip("trains small runs")
	}
	root := t.TempDir()
	sets := append([]string{"algo.name=nlpo", "lora.enabled=true", "lora.phase=rl", "lora.r=2", "lora.alpha=4", "rl.steps=4",
		"checkpoint.every=2", "checkpoint.keep=5", "sampling.prompts_per_step=4"}, presetRunSets["nlpo"]...)
	whole := smallRun(t, filepath.Join(root, "whole"), sets...)
	if _, err := Run(whole, Options{}); err != nil {
		t.Fatal(err)
	}
	if synced := rlSeries(t, whole.RunDir, "nlpo_mask_synced"); !equalFloats(synced, []float64{1, 0, 0, 1}) {
		t.Errorf("synced %v, want 1 0 0 1", synced)
	}
	want := comparableMetrics(t, whole.RunDir)
	dir := filepath.Join(root, "resumed")
	if err := os.CopyFS(dir, os.DirFS(whole.RunDir)); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(dir, "checkpoints", "rl-000004"))
	os.WriteFile(filepath.Join(dir, "checkpoints", "latest"), []byte("rl-000002\n"), 0o644)
	if _, err := Resume(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	sameMetrics(t, want, comparableMetrics(t, dir))
}
