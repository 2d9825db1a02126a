package train

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/objective"
)

// TestPPOCriticFitsReturns: repeated ppo updates on one batch drive the value head's values toward
// the returns, which with γ = λ = 1 and no KL in the reward are the outcome reward at every token.
func TestPPOCriticFitsReturns(t *testing.T) {
	r := testRunner(t, "algo.name=ppo", "optim.lr=0.003", "optim.warmup_steps=0", "algo.set.beta=0")
	var err error
	if r.trainer, err = model.NewTrainer(r.policy, r.optimConfig("rl")); err != nil {
		t.Fatal(err)
	}
	b, _, _, err := r.collect("rollout", 1, r.cfg.Sampling.PromptsPerStep)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b.rewards {
		b.rewards[i] = 0.8 // a return the head can fit from any state
	}
	crit, _, ok := criticOf(r.obj)
	if !ok {
		t.Fatal("ppo has no critic")
	}
	gap := func(ob *objective.Batch) float64 {
		ret, err := crit.Returns(ob)
		if err != nil {
			t.Fatal(err)
		}
		var s, n float64
		for i, row := range ob.Mask {
			for j, m := range row {
				if m != 0 {
					// γ = λ = 1 and no KL in the reward: the return is the outcome reward.
					if math.Abs(ret[i][j]-b.rewards[i]) > 1e-12 {
						t.Fatalf("return [%d][%d] = %v, want the outcome %v", i, j, ret[i][j], b.rewards[i])
					}
					s += math.Abs(ob.Values[i][j] - ret[i][j])
					n++
				}
			}
		}
		return s / n
	}
	var first, last float64
	rows := make([]int, b.rows())
	for i := range rows {
		rows[i] = i
	}
	for it := range 25 {
		ob, posLogp, err := r.scoreBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.prepare(ob); err != nil {
			t.Fatal(err)
		}
		g := gap(ob)
		if it == 0 {
			first = g
		}
		last = g
		vals, err := r.update(it+1, 1000, b, ob, posLogp, rows)
		if err != nil {
			t.Fatal(err)
		}
		if !(vals["value_loss"] > 0) {
			t.Fatalf("iteration %d: value_loss %v", it, vals["value_loss"])
		}
	}
	t.Logf("mean |V - R| over response tokens: %.4f before, %.4f after 25 updates", first, last)
	if !(last < 0.5*first) {
		t.Errorf("critic did not fit the returns: |V - R| %.4f → %.4f", first, last)
	}
}

// TestSeparateCriticModelResumesBitIdentical: with rl.critic_model the values come from a separate
// model, which trains (its checkpointed weights differ from the loaded ones), and a run resumed from
// its step-2 checkpoint repeats steps 3 and 4 exactly (metrics, policy, value model and its
// optimizer, state with the value head).
func TestSeparateCriticModelResumesBitIdentical(t *testing.T) {
	if testing.Short() {
		t.Skip("trains small runs")
	}
	critic := dpoModelDir(t, "2")
	root := t.TempDir()
	sets := []string{"algo.name=ppo", "sft.steps=4", "rl.steps=4", "checkpoint.every=2", "checkpoint.keep=3",
		"task.test_size=8", "sampling.prompts_per_step=4", "rl.critic_model=" + critic}
	whole := smallRun(t, filepath.Join(root, "whole"), sets...)
	if _, err := Run(whole, Options{}); err != nil {
		t.Fatal(err)
	}
	read := func(dir, file string) []byte {
		data, err := os.ReadFile(filepath.Join(dir, "checkpoints", "rl-000004", file))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	loaded, _ := os.ReadFile(filepath.Join(critic, "model.safetensors"))
	if bytes.Equal(loaded, read(whole.RunDir, "value_model/model.safetensors")) {
		t.Error("the value model did not train")
	}
	dir := filepath.Join(root, "resumed")
	if err := os.CopyFS(dir, os.DirFS(whole.RunDir)); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(dir, "checkpoints", "rl-000004"))
	os.WriteFile(filepath.Join(dir, "checkpoints", "latest"), []byte("rl-000002\n"), 0o644)
	if _, err := Resume(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	sameMetrics(t, comparableMetrics(t, whole.RunDir), comparableMetrics(t, dir))
	for _, f := range []string{"model/model.safetensors", "value_model/model.safetensors", "value_optimizer.bin", "state.json"} {
		if !bytes.Equal(read(whole.RunDir, f), read(dir, f)) {
			t.Errorf("%s differs after resume", f)
		}
	}
	cfg := smallRun(t, filepath.Join(root, "grpo"), "algo.name=grpo", "rl.critic_model="+critic)
	if err := Check(cfg); err == nil || !strings.Contains(err.Error(), "rl.critic_model") {
		t.Errorf("grpo with a critic model: got %v", err)
	}
}
