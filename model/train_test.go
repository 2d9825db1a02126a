package model

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// tinyModel is a seeded from-scratch model for tests that need no fixture.
func tinyModel(t *testing.T, seed int64) *Model {
	t.Helper()
	cfg, err := Preset("tiny", 40)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(cfg, seed)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// randomBatch draws ids in [0, vocab) with a mix of left/right padding and coefficients.
func randomBatch(rng *rand.Rand, b, T, vocab int) (ids, mask [][]int32, coef [][]float32) {
	for i := 0; i < b; i++ {
		row, mk, c := make([]int32, T), make([]int32, T), make([]float32, T-1)
		n := T - rng.IntN(T/2)
		left := i%2 == 0
		for j := range row {
			real := (left && j >= T-n) || (!left && j < n)
			if real {
				row[j], mk[j] = int32(rng.IntN(vocab)), 1
			}
		}
		for j := range c {
			c[j] = float32(rng.NormFloat64())
		}
		ids, mask, coef = append(ids, row), append(mask, mk), append(coef, c)
	}
	return
}

// TestAdamWKnownAnswer takes two AdamW steps with clipping active and compares a matrix and a
// norm vector (no weight decay) against a float64 hand computation of torch's AdamW. Eps is
// comparable to the clipped gradients, so the update depends on the clipping scale (Adam alone
// would be nearly invariant to it).
func TestAdamWKnownAnswer(t *testing.T) {
	m := tinyModel(t, 1)
	cfg := OptimConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.99, Eps: 1e-4, WeightDecay: 0.1, ClipNorm: 0.05}
	tr, err := NewTrainer(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	watch := []string{"model.layers.0.self_attn.q_proj.weight", "model.layers.1.post_attention_layernorm.weight"}
	mom, vel := map[string][]float64{}, map[string][]float64{}
	for step := 1; step <= 2; step++ {
		ids, mask, coef := randomBatch(rng, 3, 9, 40)
		if _, _, err := tr.Accumulate(ids, mask, coef, nil); err != nil {
			t.Fatal(err)
		}
		// Global norm over every parameter, in float64.
		sq := 0.0
		grads := map[string][]float32{}
		for _, name := range m.ParamNames() {
			g, err := tr.gradients(name)
			if err != nil {
				t.Fatal(err)
			}
			grads[name] = g
			for _, x := range g {
				sq += float64(x) * float64(x)
			}
		}
		norm := math.Sqrt(sq)
		clip := math.Min(1, cfg.ClipNorm/(norm+1e-6))
		if clip >= 1 {
			t.Fatalf("step %d: gradient norm %g does not exceed ClipNorm; the test must exercise clipping", step, norm)
		}
		before := map[string][]float32{}
		for _, name := range watch {
			before[name], _, _ = m.Weights(name)
		}
		gotNorm, err := tr.Step(cfg.LR)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(gotNorm-norm)/norm > 1e-5 {
			t.Errorf("step %d: grad norm %g, hand %g", step, gotNorm, norm)
		}
		bc1, bc2 := 1-math.Pow(cfg.Beta1, float64(step)), 1-math.Pow(cfg.Beta2, float64(step))
		for _, name := range watch {
			after, _, _ := m.Weights(name)
			wd := cfg.WeightDecay
			if len(after) == m.Config().HiddenSize { // norm scale: no decay
				wd = 0
			}
			if mom[name] == nil {
				mom[name], vel[name] = make([]float64, len(after)), make([]float64, len(after))
			}
			worst := 0.0
			for i := range after {
				g := float64(grads[name][i]) * clip
				mom[name][i] = cfg.Beta1*mom[name][i] + (1-cfg.Beta1)*g
				vel[name][i] = cfg.Beta2*vel[name][i] + (1-cfg.Beta2)*g*g
				p := float64(before[name][i]) * (1 - cfg.LR*wd)
				p -= cfg.LR / bc1 * mom[name][i] / (math.Sqrt(vel[name][i])/math.Sqrt(bc2) + cfg.Eps)
				worst = math.Max(worst, math.Abs(p-float64(after[i])))
			}
			t.Logf("step %d %s: max |Go − hand AdamW| = %.3g (lr %g)", step, name, worst, cfg.LR)
			if worst > 2e-6 {
				t.Errorf("step %d %s: AdamW update differs from hand computation by %.3g", step, name, worst)
			}
		}
	}
}

// TestAccumulateSums checks that two micro-batches accumulate to the gradient of their union.
func TestAccumulateSums(t *testing.T) {
	m := tinyModel(t, 2)
	rng := rand.New(rand.NewPCG(5, 6))
	ids, mask, coef := randomBatch(rng, 4, 10, 40)
	ent := make([][]float32, len(coef))
	for i := range ent {
		ent[i] = make([]float32, len(coef[i]))
		for j := range ent[i] {
			ent[i][j] = 0.3 * float32(rng.NormFloat64())
		}
	}
	split, _ := NewTrainer(m, DefaultOptimConfig())
	whole, _ := NewTrainer(m, DefaultOptimConfig())
	for _, r := range [][2]int{{0, 1}, {1, 4}} {
		if _, _, err := split.Accumulate(ids[r[0]:r[1]], mask[r[0]:r[1]], coef[r[0]:r[1]], ent[r[0]:r[1]]); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := whole.Accumulate(ids, mask, coef, ent); err != nil {
		t.Fatal(err)
	}
	for _, name := range m.ParamNames() {
		a, _ := split.gradients(name)
		b, _ := whole.gradients(name)
		if e := relErr(a, b); e > 1e-5 {
			t.Errorf("%s: split vs whole relative error %.3g", name, e)
		}
	}
}

// TestEntropyGradientFiniteDifference checks d/dw Σ coefEnt·entropy + coefLogp·logp against
// central differences for a few weights.
func TestEntropyGradientFiniteDifference(t *testing.T) {
	m := tinyModel(t, 3)
	rng := rand.New(rand.NewPCG(7, 8))
	ids, mask, coef := randomBatch(rng, 2, 8, 40)
	ent := make([][]float32, len(coef))
	for i := range ent {
		ent[i] = make([]float32, len(coef[i]))
		for j := range ent[i] {
			ent[i][j] = float32(rng.NormFloat64())
			coef[i][j] *= 0.5
		}
	}
	surrogate := func() float64 {
		lp, h, err := m.LogProbs(ids, mask)
		if err != nil {
			t.Fatal(err)
		}
		s := 0.0
		for i := range lp {
			for j := range lp[i] {
				s += float64(coef[i][j])*float64(lp[i][j]) + float64(ent[i][j])*float64(h[i][j])
			}
		}
		return s
	}
	tr, _ := NewTrainer(m, DefaultOptimConfig())
	if _, _, err := tr.Accumulate(ids, mask, coef, ent); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		idx  int
	}{{"model.norm.weight", 3}, {"model.layers.1.mlp.up_proj.weight", 77}, {"model.embed_tokens.weight", 64*int(ids[0][7]) + 5}} {
		g, _ := tr.gradients(c.name)
		w, _, _ := m.Weights(c.name)
		const h = 1e-2
		orig := w[c.idx]
		w[c.idx] = orig + h
		m.setWeights(c.name, w)
		up := surrogate()
		w[c.idx] = orig - h
		m.setWeights(c.name, w)
		down := surrogate()
		w[c.idx] = orig
		m.setWeights(c.name, w)
		fd := (up - down) / (2 * h)
		t.Logf("%s[%d]: autodiff %.6g, finite difference %.6g", c.name, c.idx, g[c.idx], fd)
		if math.Abs(fd-float64(g[c.idx])) > 2e-3*math.Max(1, math.Abs(fd)) {
			t.Errorf("%s[%d]: autodiff %.6g vs finite difference %.6g", c.name, c.idx, g[c.idx], fd)
		}
	}
}

// TestOptimizerStateResume: train 1 step, save model+state, take step 2 two ways (continuing vs
// reloaded) and require bit-identical weights.
func TestOptimizerStateResume(t *testing.T) {
	dir := t.TempDir()
	cfg := OptimConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.1, ClipNorm: 1}
	rng := rand.New(rand.NewPCG(9, 10))
	ids1, mask1, coef1 := randomBatch(rng, 2, 8, 40)
	ids2, mask2, coef2 := randomBatch(rng, 2, 8, 40)

	m := tinyModel(t, 4)
	tr, _ := NewTrainer(m, cfg)
	if _, _, err := tr.Accumulate(ids1, mask1, coef1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Step(cfg.LR); err != nil {
		t.Fatal(err)
	}
	if err := m.Save(filepath.Join(dir, "ckpt")); err != nil {
		t.Fatal(err)
	}
	if err := tr.SaveState(filepath.Join(dir, "ckpt", "optim.safetensors")); err != nil {
		t.Fatal(err)
	}
	step2 := func(m *Model, tr *Trainer) []float32 {
		if _, _, err := tr.Accumulate(ids2, mask2, coef2, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Step(cfg.LR); err != nil {
			t.Fatal(err)
		}
		w, _, _ := m.Weights("model.layers.0.self_attn.k_proj.weight")
		return w
	}
	a := step2(m, tr)

	m2, err := Load(filepath.Join(dir, "ckpt"))
	if err != nil {
		t.Fatal(err)
	}
	tr2, _ := NewTrainer(m2, cfg)
	if err := tr2.LoadState(filepath.Join(dir, "ckpt", "optim.safetensors")); err != nil {
		t.Fatal(err)
	}
	if tr2.StepCount() != 1 {
		t.Fatalf("restored step count %d, want 1", tr2.StepCount())
	}
	b := step2(m2, tr2)
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			t.Fatalf("resumed weights differ at %d: %v vs %v", i, a[i], b[i])
		}
	}
}
