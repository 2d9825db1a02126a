package model

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
)

// TestValueHeadGradients: Values is affine in the head (B shifts every valid value by exactly B's
// change); the head gradient of Σ coef·V equals a central difference of Values (exact up to float32,
// V is linear in W); the trunk gradient added to the accumulators matches a central difference of
// Σ coef·V in one trunk weight; and the value pass adds to (does not replace) the policy gradient.
func TestValueHeadGradients(t *testing.T) {
	m := tinyModel(t, 2)
	tr, err := NewTrainer(m, DefaultOptimConfig())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	ids, mask, coef := randomBatch(rng, 3, 8, 40)
	head := NewValueHead(m.Config().HiddenSize)
	for i := range head.W {
		head.W[i] = float32(0.3 * rng.NormFloat64())
	}
	head.B = 0.25
	surrogate := func(h *ValueHead) float64 {
		v, err := m.Values(ids, mask, h)
		if err != nil {
			t.Fatal(err)
		}
		s := 0.0
		for i := range v {
			for j := range v[i] {
				s += float64(coef[i][j]) * float64(v[i][j]) * float64(mask[i][j]*mask[i][j+1])
			}
		}
		return s
	}
	v0, err := m.Values(ids, mask, head)
	if err != nil {
		t.Fatal(err)
	}
	shifted := *head
	shifted.B += 1
	v1, _ := m.Values(ids, mask, &shifted)
	for i := range v0 {
		for j := range v0[i] {
			want := float32(0)
			if mask[i][j] == 1 && mask[i][j+1] == 1 {
				want = 1
			}
			if d := v1[i][j] - v0[i][j]; math.Abs(float64(d-want)) > 1e-5 {
				t.Fatalf("V[%d][%d] moved by %v when B moved by 1 (want %v)", i, j, d, want)
			}
		}
	}

	// Policy gradient first, then the value pass on top.
	if _, _, err := tr.Accumulate(ids, mask, coef, nil); err != nil {
		t.Fatal(err)
	}
	const probe = "model.layers.0.mlp.down_proj.weight"
	policyOnly, _ := tr.gradients(probe)
	vals, err := tr.AccumulateValue(ids, mask, head, coef)
	if err != nil {
		t.Fatal(err)
	}
	for i := range vals {
		for j := range vals[i] {
			if vals[i][j] != v0[i][j] {
				t.Fatalf("AccumulateValue's values differ from Values at [%d][%d]", i, j)
			}
		}
	}
	both, _ := tr.gradients(probe)

	// Head gradient vs central differences (V is linear in W and B).
	const eps = 1e-2
	worst := 0.0
	for _, k := range []int{0, 7, len(head.W) - 1, len(head.W)} {
		plus, minus := *head, *head
		plus.W, minus.W = append([]float32(nil), head.W...), append([]float32(nil), head.W...)
		if k < len(head.W) {
			plus.W[k] += eps
			minus.W[k] -= eps
		} else {
			plus.B += eps
			minus.B -= eps
		}
		fd := (surrogate(&plus) - surrogate(&minus)) / (2 * eps)
		worst = math.Max(worst, math.Abs(fd-float64(head.grad[k]))/math.Max(1e-3, math.Abs(fd)))
	}
	t.Logf("head gradient vs central difference: max rel. error %.3g", worst)
	if worst > 2e-3 {
		t.Errorf("head gradient off by %.3g", worst)
	}

	// Trunk gradient of the value pass alone = both − policyOnly, vs a central difference.
	w, _, _ := m.Weights(probe)
	const we = 3e-3
	for _, k := range []int{3, 100} {
		orig := w[k]
		w[k] = orig + we
		_ = m.setWeights(probe, w)
		up := surrogate(head)
		w[k] = orig - we
		_ = m.setWeights(probe, w)
		down := surrogate(head)
		w[k] = orig
		_ = m.setWeights(probe, w)
		fd := (up - down) / (2 * we)
		got := float64(both[k] - policyOnly[k])
		t.Logf("trunk %s[%d]: graph %.6g, central difference %.6g", probe, k, got, fd)
		if math.Abs(got-fd) > 2e-3*math.Max(1, math.Abs(fd)) {
			t.Errorf("trunk gradient [%d] = %g, central difference %g", k, got, fd)
		}
	}
}

// TestValueHeadStepAndRoundTrip: the head's AdamW step equals a float64 hand computation, and a
// head saved as JSON loads back bit-identically (resume), while a head of another size is refused.
func TestValueHeadStepAndRoundTrip(t *testing.T) {
	h := NewValueHead(3)
	h.W = []float32{0.5, -1, 2}
	cfg := OptimConfig{LR: 0.1, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.1, ClipNorm: 1}
	g := []float64{3, 0, -4, 0} // norm 5 → clipped to 1
	h.grad = []float32{3, 0, -4, 0}
	norm, err := h.Step(cfg, cfg.LR)
	if err != nil || math.Abs(norm-5) > 1e-6 {
		t.Fatalf("norm %v err %v", norm, err)
	}
	// First step: m = 0.1·g', v = 0.01·g'², update lr·g'/|g'| = ±lr (eps negligible).
	want := []float64{0.5*(1-0.01) - 0.1*sign(g[0]), -1 * (1 - 0.01), 2*(1-0.01) + 0.1}
	for i, w := range want {
		if math.Abs(float64(h.W[i])-w) > 1e-6 {
			t.Errorf("W[%d] = %v, want %v", i, h.W[i], w)
		}
	}
	if h.B != 0 {
		t.Errorf("B = %v with zero gradient and no decay", h.B)
	}
	data, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	back, err := LoadValueHead(data, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range h.W {
		if math.Float32bits(back.W[i]) != math.Float32bits(h.W[i]) || math.Float32bits(back.Mom[i]) != math.Float32bits(h.Mom[i]) ||
			math.Float32bits(back.Vel[i]) != math.Float32bits(h.Vel[i]) {
			t.Fatalf("round trip changed entry %d", i)
		}
	}
	if back.Steps != 1 {
		t.Errorf("steps %d after round trip", back.Steps)
	}
	if _, err := LoadValueHead(data, 4); err == nil {
		t.Error("a head of hidden size 3 must be refused for a model of 4")
	}
}

func sign(x float64) float64 {
	if x < 0 {
		return -1
	}
	return 1
}
