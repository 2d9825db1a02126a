package train

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
