package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

// truncated builds, from m, the model made of its first k decoder layers (embeddings, final norm
// and head kept): its own policy is, by definition, m's internal policy of layer k-1 with the final
// norm applied.
func truncated(t *testing.T, m *Model, k int) *Model {
	t.Helper()
	cfg := m.cfg
	cfg.NumLayers = k
	lay := newLayout(cfg)
	host := make([][]float32, len(lay.names))
	for i, name := range lay.names {
		w, _, err := m.Weights(name)
		if err != nil {
			t.Fatal(err)
		}
		host[i] = w
	}
	tm, err := newModel(cfg, host)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func maxAbsDiff2(a, b [][]float32) float64 {
	d := 0.0
	for i := range a {
		for j := range a[i] {
			d = math.Max(d, math.Abs(float64(a[i][j]-b[i][j])))
		}
	}
	return d
}

// TestLayerPolicy: the internal policy of layer l (final norm applied) equals the policy of the model
// cut after layer l; the last layer's is the model's own; without the final norm it differs; and the
// gradient of Σ coef·logp_l reaches layers ≤ l only.
func TestLayerPolicy(t *testing.T) {
	m, err := Load(fixtureDir("llama"))
	if err != nil {
		t.Fatal(err)
	}
	n := m.cfg.NumLayers
	rng := rand.New(rand.NewPCG(7, 8))
	ids, mask, coef := randomBatch(rng, 3, 9, m.cfg.VocabSize)
	full, fullEnt, err := m.LogProbs(ids, mask)
	if err != nil {
		t.Fatal(err)
	}
	last, lastEnt, err := m.LayerLogProbs(ids, mask, n-1, false)
	if err != nil {
		t.Fatal(err)
	}
	if d := math.Max(maxAbsDiff2(full, last), maxAbsDiff2(fullEnt, lastEnt)); d > 1e-6 {
		t.Errorf("last layer's policy differs from the model's by %.3g", d)
	}
	cut := truncated(t, m, 1)
	want, _, err := cut.LogProbs(ids, mask)
	if err != nil {
		t.Fatal(err)
	}
	l0, _, err := m.LayerLogProbs(ids, mask, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	raw, _, _ := m.LayerLogProbs(ids, mask, 0, false)
	t.Logf("layer 0 (normed) vs 1-layer model: %.3g; vs full model %.3g; raw vs normed %.3g", maxAbsDiff2(l0, want), maxAbsDiff2(l0, full), maxAbsDiff2(raw, l0))
	if d := maxAbsDiff2(l0, want); d > 1e-5 {
		t.Errorf("layer 0 policy differs from the 1-layer model's by %.3g", d)
	}
	if maxAbsDiff2(l0, full) < 1e-3 || maxAbsDiff2(raw, l0) < 1e-3 {
		t.Error("the internal policy should differ from the full one, and the final norm should matter")
	}
	if _, _, err := m.LayerLogProbs(ids, mask, n, false); err == nil {
		t.Errorf("layer %d of a %d-layer model must be refused", n, n)
	}

	// Gradients: layer 0's policy trains layer 0 and not layer 1, and matches the cut model's.
	tr, _ := NewTrainer(m, DefaultOptimConfig())
	if _, err := tr.AccumulateLayer(ids, mask, coef, 0, true); err != nil {
		t.Fatal(err)
	}
	ctr, _ := NewTrainer(cut, DefaultOptimConfig())
	if _, _, err := ctr.Accumulate(ids, mask, coef, nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"model.layers.0.self_attn.q_proj.weight", "model.norm.weight", "model.embed_tokens.weight"} {
		g, _ := tr.gradients(name)
		gc, _ := ctr.gradients(name)
		d, s := 0.0, 0.0
		for i := range g {
			d = math.Max(d, math.Abs(float64(g[i]-gc[i])))
			s = math.Max(s, math.Abs(float64(gc[i])))
		}
		if !(s > 0) || d > 1e-4*s+1e-7 {
			t.Errorf("%s: gradient differs from the cut model's by %.3g (scale %.3g)", name, d, s)
		}
	}
	g1, _ := tr.gradients("model.layers.1.mlp.up_proj.weight")
	for _, x := range g1 {
		if x != 0 {
			t.Fatal("layer 1 received gradient from layer 0's policy")
		}
	}
}
