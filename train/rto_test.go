package train

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polo-rl/polo/metrics"
	"github.com/polo-rl/polo/objective"
)

// dpoModelDir trains a short DPO run (same seed and SFT as smallRun's, so its reference is the RTO
// run's post-SFT policy) and returns its final model folder: RTO's DPO model.
func dpoModelDir(t *testing.T, sftSteps string) string {
	t.Helper()
	cfg := smallRun(t, filepath.Join(t.TempDir(), "dpo"), "algo.name=dpo", "sft.steps="+sftSteps, "rl.steps=4",
		"preference.batch_size=16", "optim.lr=0.001", "checkpoint.every=0", "task.test_size=8")
	if _, err := Run(cfg, Options{}); err != nil {
		t.Fatal(err)
	}
	latest, err := os.ReadFile(filepath.Join(cfg.RunDir, "checkpoints", latestFile))
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(cfg.RunDir, "checkpoints", strings.TrimSpace(string(latest)), "model")
}

// TestRTOTokenRewardsFromDPOModel: with reward.dpo_model, rto's token_rewards are
// clip(β1·(log π_dpo − log π_ref), ±c) of the sampled tokens (β1 = c = 0.05), computed here directly
// from the two models; they change the advantages; a DPO model with another objective is refused.
func TestRTOTokenRewardsFromDPOModel(t *testing.T) {
	dir := dpoModelDir(t, "6")
	r := testRunner(t, "algo.name=rto", "reward.dpo_model="+dir)
	var err error
	if r.ref, err = r.policy.Clone(); err != nil {
		t.Fatal(err)
	}
	b, _, _, err := r.collect("rollout", 1, r.cfg.Sampling.PromptsPerStep)
	if err != nil {
		t.Fatal(err)
	}
	ob, _, err := r.scoreBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	ids, mask := sequences(b.prompts, b.resps, r.codec.pad)
	dpoLP, _, _ := r.dpo.LogProbs(ids, mask)
	refLP, _, _ := r.ref.LogProbs(ids, mask)
	worst, clipped, n := 0.0, 0, 0
	for i := range b.resps {
		off := len(b.prompts[i]) - 1
		for j := range b.resps[i] {
			x := 0.05 * float64(dpoLP[i][off+j]-refLP[i][off+j])
			if math.Abs(x) >= 0.05 {
				clipped++
			}
			want := math.Max(-0.05, math.Min(0.05, x))
			worst = math.Max(worst, math.Abs(ob.TokenRewards[i][j]-want))
			n++
		}
	}
	t.Logf("rto: %d tokens, %d at the clip, max |token_rewards - direct| = %.3g", n, clipped, worst)
	if worst > 1e-12 || clipped == n {
		t.Errorf("token rewards off by %.3g (%d of %d clipped)", worst, clipped, n)
	}
	adv, err := r.obj.Advantages(ob)
	if err != nil {
		t.Fatal(err)
	}
	none := *ob
	none.TokenRewards = make([][]float64, len(ob.TokenRewards))
	for i, row := range ob.TokenRewards {
		none.TokenRewards[i] = make([]float64, len(row))
	}
	adv0, _ := r.obj.Advantages(&none)
	if maxAbsDiff(adv, adv0) == 0 {
		t.Error("token_rewards did not change the advantages")
	}
	// With critic=true, rto trains the value head as ppo does (GAE over the values instead of
	// Monte-Carlo returns): values are scored and a value loss is logged at every step.
	run := smallRun(t, filepath.Join(t.TempDir(), "critic"), "algo.name=rto", "reward.dpo_model="+dir, "algo.set.critic=true",
		"sft.steps=6", "rl.steps=2", "checkpoint.every=0", "task.test_size=8")
	if _, err := Run(run, Options{}); err != nil {
		t.Fatal(err)
	}
	for k, v := range rlSeries(t, run.RunDir, "value_loss") {
		if !(v > 0) {
			t.Errorf("rto with a critic: step %d value_loss %v", k+1, v)
		}
	}
	cfg := smallRun(t, filepath.Join(t.TempDir(), "x"), "algo.name=grpo", "reward.dpo_model="+dir)
	if err := Check(cfg); err == nil || !strings.Contains(err.Error(), "reward.dpo_model") {
		t.Errorf("grpo with a DPO model: got %v", err)
	}
}

func maxAbsDiff(a, b [][]float64) float64 {
	d := 0.0
	for i := range a {
		for j := range a[i] {
			d = math.Max(d, math.Abs(a[i][j]-b[i][j]))
		}
	}
	return d
}

// TestModelInputsNeedTheirModelFolder: the presets that read another model are refused up front,
// in one line naming the config field, when it is not set.
func TestModelInputsNeedTheirModelFolder(t *testing.T) {
	for name, field := range map[string]string{"rto": "reward.dpo_model", "distill": "distill.teacher"} {
		cfg := smallRun(t, filepath.Join(t.TempDir(), name), "algo.name="+name)
		err := Check(cfg)
		if err == nil || !strings.Contains(err.Error(), field) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s without %s: got %v", name, field, err)
		}
	}
}

// TestRTODPOPhaseInTheSameRun: with reward.dpo_steps = 3 an rto run first trains its DPO model
// itself, and that model is byte for byte the final model of a separate 3-step DPO run with the
// same seed and SFT (same pairs, learning-rate schedule and optimizer; the phase's logged losses
// equal that run's, ln 2 at step 1); RL then trains on its token rewards, and a resume after the first RL step
// (which reloads checkpoints/dpo_model) repeats the run exactly.
func TestRTODPOPhaseInTheSameRun(t *testing.T) {
	if testing.Short() {
		t.Skip("trains small runs")
	}
	common := []string{"sft.steps=2", "preference.batch_size=16", "optim.lr=0.001", "task.test_size=8"}
	sep := smallRun(t, filepath.Join(t.TempDir(), "dpo"), append([]string{"algo.name=dpo", "rl.steps=3", "checkpoint.every=0"}, common...)...)
	if _, err := Run(sep, Options{}); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	cfg := smallRun(t, filepath.Join(root, "rto"), append([]string{"algo.name=rto", "reward.dpo_steps=3", "rl.steps=2", "checkpoint.every=1", "checkpoint.keep=5",
		"sampling.prompts_per_step=4"}, common...)...)
	nonzero := 0
	opts := Options{observe: func(stage string, b *objective.Batch) {
		for _, row := range b.TokenRewards {
			for _, x := range row {
				if x != 0 {
					nonzero++
				}
			}
		}
	}}
	if _, err := Run(cfg, opts); err != nil {
		t.Fatal(err)
	}
	if nonzero == 0 {
		t.Errorf("RL saw no non-zero token reward from the DPO phase's model")
	}
	latest, _ := os.ReadFile(filepath.Join(sep.RunDir, "checkpoints", latestFile))
	want, _ := os.ReadFile(filepath.Join(sep.RunDir, "checkpoints", strings.TrimSpace(string(latest)), "model", "model.safetensors"))
	got, _ := os.ReadFile(filepath.Join(cfg.RunDir, "checkpoints", dpoModelFolder, "model", "model.safetensors"))
	if len(want) == 0 || !bytes.Equal(got, want) {
		t.Fatalf("the in-run DPO model (%d bytes) differs from the separate DPO run's (%d bytes)", len(got), len(want))
	}
	sepLoss, phaseLoss := rlSeries(t, sep.RunDir, "loss"), phaseSeries(t, cfg.RunDir, "dpo", "loss")
	t.Logf("DPO losses: separate run %v, in-run phase %v", sepLoss, phaseLoss)
	// Step 1: the DPO model is still the reference, so the loss is −log σ(0) = ln 2.
	if len(phaseLoss) != 3 || !equalFloats(sepLoss, phaseLoss) || math.Abs(phaseLoss[0]-math.Ln2) > 1e-12 {
		t.Errorf("DPO phase losses %v, separate run %v: want equal, ln 2 at step 1", phaseLoss, sepLoss)
	}
	t.Logf("%d non-zero token rewards in the RL mini-batches", nonzero)
	whole := comparableMetrics(t, cfg.RunDir)
	dir := filepath.Join(root, "resumed")
	if err := os.CopyFS(dir, os.DirFS(cfg.RunDir)); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(dir, "checkpoints", "rl-000002"))
	os.WriteFile(filepath.Join(dir, "checkpoints", latestFile), []byte("rl-000001\n"), 0o644)
	if _, err := Resume(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	sameMetrics(t, whole, comparableMetrics(t, dir))
}

// phaseSeries is rlSeries for another phase.
func phaseSeries(t *testing.T, dir, phase, key string) []float64 {
	t.Helper()
	recs, err := metrics.Read(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []float64
	for _, r := range recs {
		if r.Phase == phase {
			out = append(out, r.Values[key])
		}
	}
	return out
}

// TestRTODPOStepsRefusals: reward.dpo_steps needs an objective that reads token rewards, and
// excludes reward.dpo_model.
func TestRTODPOStepsRefusals(t *testing.T) {
	for _, c := range []struct {
		sets []string
		want string
	}{
		{[]string{"algo.name=grpo", "reward.dpo_steps=3"}, "reads no token rewards"},
		{[]string{"algo.name=rto", "reward.dpo_steps=3", "reward.dpo_model=x"}, "set one"},
		{[]string{"algo.name=rto", "reward.dpo_steps=-1"}, "reward.dpo_steps"},
		{[]string{"algo.name=rto"}, "reward.dpo_steps to train one"},
	} {
		cfg := smallRun(t, filepath.Join(t.TempDir(), "x"), c.sets...)
		if err := Check(cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error with %q", c.sets, err, c.want)
		}
	}
}
