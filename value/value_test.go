package value

import (
	"math"
	"strings"
	"testing"
)

func TestTDTarget(t *testing.T) {
	if got := TDTarget(0.5, false, 2, 0.5); got != 1.5 {
		t.Fatalf("r + γV = %v, want 1.5", got)
	}
	if got := TDTarget(0.5, true, 2, 0.5); got != 0.5 {
		t.Fatalf("done: %v, want 0.5", got)
	}
}

// Spec C2: Q = [0.2, 0.9, 0.5], V = 0.4 → candidate 1, imitate; V = 0.95 → no update.
func TestBestOfN(t *testing.T) {
	if i, ok := BestOfN([]float64{0.2, 0.9, 0.5}, 0.4); i != 1 || !ok {
		t.Fatalf("got %d %v", i, ok)
	}
	if i, ok := BestOfN([]float64{0.2, 0.9, 0.5}, 0.95); i != 1 || ok {
		t.Fatalf("got %d %v", i, ok)
	}
	if i, _ := BestOfN([]float64{0.3, 0.3}, 0); i != 0 {
		t.Fatalf("tie → %d, want 0", i)
	}
}

func onehot(i int) []float32 {
	x := make([]float32, 8)
	x[i] = 1
	return x
}

// A hand-worked MDP, γ = 0.5. Episode A: s0 −a0→ s1 −a1→ end, reward 1 at the end; episode B:
// s0 −b0→ s2 −b1→ end, reward 0. The conservative backup's fixed point: Q(s1,a1) = 1, V(s1) = 1,
// Q(s0,a0) = γ·V(s1) = 0.5; Q(s2,b1) = V(s2) = Q(s0,b0) = 0; V(s0) = the data-action average of
// Q(s0,·) = 0.25 (no max over actions).
func TestTrainHandWorkedMDP(t *testing.T) {
	var ts []Transition
	for range 40 {
		base := len(ts)
		ts = append(ts,
			Transition{SA: onehot(0), S: onehot(4), Reward: 0, Next: base + 1},
			Transition{SA: onehot(1), S: onehot(5), Reward: 1, Next: -1},
			Transition{SA: onehot(2), S: onehot(4), Reward: 0, Next: base + 3},
			Transition{SA: onehot(3), S: onehot(6), Reward: 0, Next: -1})
	}
	cfg := TrainConfig{Gamma: 0.5, Tau: 0.05, LR: 3e-3, Epochs: 300, BatchSize: 32, Hidden: 16, Seed: 1}
	c, losses, err := Train(ts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		name string
		got  float64
		want float64
	}{
		{"Q(s1,a1)", c.Q.Eval(onehot(1)), 1}, {"V(s1)", c.V.Eval(onehot(5)), 1},
		{"Q(s0,a0)", c.Q.Eval(onehot(0)), 0.5}, {"Q(s0,b0)", c.Q.Eval(onehot(2)), 0},
		{"Q(s2,b1)", c.Q.Eval(onehot(3)), 0}, {"V(s2)", c.V.Eval(onehot(6)), 0},
		{"V(s0)", c.V.Eval(onehot(4)), 0.25},
	} {
		if math.Abs(w.got-w.want) > 0.03 {
			t.Errorf("%s = %.4f, want %.2f", w.name, w.got, w.want)
		}
	}
	if losses[len(losses)-1] > 1e-3 {
		t.Errorf("final Q loss %v", losses[len(losses)-1])
	}
	path := t.TempDir() + "/c.json"
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	c2, err := Load(path)
	if err != nil || c2.Q.Eval(onehot(0)) != c.Q.Eval(onehot(0)) {
		t.Fatalf("round trip: %v", err)
	}
	if _, _, err := Train([]Transition{{SA: onehot(0), S: onehot(1)[:3], Next: -1}}, cfg); err == nil {
		t.Fatal("mismatched features accepted")
	}
}

// The Adam step's gradient: one step with a tiny learning rate moves the loss down by about
// lr·|g|₁ (Adam's first step is a sign step), checked against finite differences of the loss.
func TestHeadGradient(t *testing.T) {
	h := NewHead(3, 4, 2)
	x := [][]float32{{0.5, -1, 2}}
	y := []float64{0.7}
	loss := func(h *Head) float64 { d := h.Eval(x[0]) - y[0]; return 0.5 * d * d }
	// Numerical gradient of one weight vs the change Adam makes in its sign-step regime.
	const eps = 1e-6
	old := h.W1[5]
	h.W1[5] = old + eps
	up := loss(h)
	h.W1[5] = old - eps
	down := loss(h)
	h.W1[5] = old
	num := (up - down) / (2 * eps)
	c := h.clone()
	var st adam
	c.step(x, y, 1e-4, &st)
	if moved := c.W1[5] - h.W1[5]; num != 0 && math.Signbit(moved) == math.Signbit(num) {
		t.Fatalf("weight moved %v along the gradient %v", moved, num)
	}
	if loss(c) >= loss(h) {
		t.Fatalf("loss did not fall: %v → %v", loss(h), loss(c))
	}
}

// Score reads Q at each response's last token and V at the prompt's last token of the critic's
// layer; with one-hot features (feature k = 1 where the token is k) and linear-through-SiLU heads
// the scores are known in closed form.
func TestScore(t *testing.T) {
	const d = 4
	hidden := func(ids, mask [][]int32, layer int) ([][][]float32, error) {
		if layer != 2 {
			t.Fatalf("layer %d, want the critic's 2", layer)
		}
		out := make([][][]float32, len(ids))
		for b, row := range ids {
			for p, id := range row {
				x := make([]float32, d)
				if mask[b][p] == 1 {
					x[id] = 1
				}
				out[b] = append(out[b], x)
			}
		}
		return out, nil
	}
	// Q(x) = silu(2·x·[0,1,2,3]) so a response ending in token k scores silu(2k); V(x) = 5·x_0.
	q := &Head{In: d, Hidden: 1, W1: []float64{0, 2, 4, 6}, B1: []float64{0}, W2: []float64{1}}
	v := &Head{In: d, Hidden: 1, W1: []float64{1, 0, 0, 0}, B1: []float64{0}, W2: []float64{5}}
	c := &Critic{Q: q, V: v, Layer: 2}
	silu := func(z float64) float64 { return z / (1 + math.Exp(-z)) }
	prompts := [][]int32{{1, 0}, {2}}
	resps := [][][]int32{{{1, 3}, {2}, {3, 3, 1}}, {{}, {0}}}
	gotQ, gotV, err := c.Score(hidden, prompts, resps, 2) // batch 2 splits groups across calls
	if err != nil {
		t.Fatal(err)
	}
	wantQ := [][]float64{{silu(6), silu(4), silu(2)}, {silu(4), silu(0)}}
	wantV := []float64{5 * silu(1), 0}
	for i := range wantQ {
		for j := range wantQ[i] {
			if math.Abs(gotQ[i][j]-wantQ[i][j]) > 1e-12 {
				t.Errorf("q[%d][%d] = %v, want %v", i, j, gotQ[i][j], wantQ[i][j])
			}
		}
		if math.Abs(gotV[i]-wantV[i]) > 1e-12 {
			t.Errorf("v[%d] = %v, want %v", i, gotV[i], wantV[i])
		}
	}
	if best, _ := BestOfN(gotQ[0], gotV[0]); best != 0 {
		t.Errorf("best of prompt 0 = %d, want 0", best)
	}
	if err := c.Fits(3, 4); err == nil || !strings.Contains(err.Error(), "does not fit") {
		t.Errorf("Fits(3, 4) = %v, want a mismatch", err)
	}
	if err := c.Fits(d, 1); err == nil {
		t.Error("Fits accepted a model with fewer layers than the critic's layer")
	}
}
