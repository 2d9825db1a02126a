package train

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polo-rl/polo/reward"
	"github.com/polo-rl/polo/task"
)

// TestShapingComponents: reward.drpo and reward.autorule add named components with the values of the
// spec's worked example (DRPO: correct lengths 100 and 300, C = 1000, λ = 0.1 → w = [0.880797,
// 0.119203], component |P|·w − 1), the fraction of satisfied rules, and enter the reward with their
// weights; both are logged under their names; bad settings are one-line config errors.
func TestShapingComponents(t *testing.T) {
	r := testRunner(t, "reward.drpo.weight=0.5", "reward.drpo.max_len=1000", "reward.autorule.weight=0.25",
		`reward.autorule.rules=[{name: starts1, kind: format, options: {pattern: "^1"}}, {name: short, kind: format, options: {pattern: "^.{0,2}$"}}]`)
	texts := []string{"12", "1234", "7", "789"}
	lengths := []int{100, 300, 5, 9}
	b := &rolloutBatch{group: []int{0, 0, 0, 0}}
	for i := range texts {
		b.examples = append(b.examples, task.Example{ID: "x", Prompt: "p", Answer: "1"})
		b.resps = append(b.resps, make([]int32, lengths[i]))
	}
	main := []reward.Score{{Value: 1, Correct: true}, {Value: 1, Correct: true}, {}, {}}
	if err := r.rewarder.components(r, b, texts, main); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.rewarder.names, ","); got != "verifier,drpo,autorule" {
		t.Fatalf("components %s", got)
	}
	wantDRPO := []float64{2*0.880797 - 1, 2*0.119203 - 1, 0, 0}
	wantRule := []float64{1, 0.5, 0.5, 0} // "12": both; "1234": starts1; "7": short; "789": none
	for i := range texts {
		if math.Abs(b.components[i][1]-wantDRPO[i]) > 1e-6 || b.components[i][2] != wantRule[i] {
			t.Errorf("row %d: drpo %v autorule %v, want %v %v", i, b.components[i][1], b.components[i][2], wantDRPO[i], wantRule[i])
		}
		want := main[i].Value + 0.5*b.components[i][1] + 0.25*wantRule[i]
		if math.Abs(b.rewards[i]-want) > 1e-12 {
			t.Errorf("row %d: reward %v, want %v", i, b.rewards[i], want)
		}
	}
	if b.rewards[1] <= b.rewards[2] && b.components[1][2] >= b.components[2][2] {
		t.Errorf("a long correct response must keep a reward above the incorrect ones' (weight 0.5 ≤ 1)")
	}
	vals := map[string]float64{}
	r.rewarder.componentStats(b, vals)
	if _, ok := vals["reward_drpo_mean"]; !ok || math.Abs(vals["reward_autorule_mean"]-0.5) > 1e-12 {
		t.Errorf("component metrics %v", vals)
	}
	// In a run: both components are logged at every RL step.
	cfg := smallRun(t, filepath.Join(t.TempDir(), "run"), "sft.steps=2", "rl.steps=2", "checkpoint.every=0", "task.test_size=8",
		"reward.drpo.weight=0.5", "reward.autorule.weight=0.25", `reward.autorule.rules=[{name: short, kind: format, options: {pattern: "^.{0,1}$"}}]`)
	if _, err := Run(cfg, Options{}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"reward_drpo_mean", "reward_autorule_mean"} {
		if s := rlSeries(t, cfg.RunDir, k); len(s) != 2 {
			t.Errorf("%s logged at %d of 2 steps", k, len(s))
		}
	}
	for _, c := range []struct{ set, msg string }{
		{"reward.autorule.weight=1", "reward.autorule.rules: empty"},
		{"reward.drpo.weight=1 reward.drpo.lambda=0", "reward.drpo"},
	} {
		cfg := smallRun(t, filepath.Join(t.TempDir(), "x"), strings.Fields(c.set)...)
		if err := Check(cfg); err == nil || !strings.Contains(err.Error(), c.msg) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: got %v, want one line naming %s", c.set, err, c.msg)
		}
	}
}
