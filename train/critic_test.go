package train

import (
	"math"
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
