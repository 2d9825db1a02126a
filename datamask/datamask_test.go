package datamask

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// (1) With only the quality term, the top-θ set is the top-quality set.
func TestSelectsTopQuality(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	qual := make([]float64, 60)
	for i := range qual {
		qual[i] = rng.Float64()
	}
	cfg := DefaultConfig(0.2)
	cfg.WD, cfg.WR, cfg.Iters, cfg.G = 0, 0, 3000, 16
	sel, curve, err := Select(qual, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	idx := make([]int, len(qual))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		if qual[a] > qual[b] {
			return -1
		}
		return 1
	})
	want := slices.Clone(idx[:12])
	slices.Sort(want)
	if !slices.Equal(sel, want) {
		t.Fatalf("selected %v, top quality %v", sel, want)
	}
	if curve[len(curve)-1] <= curve[0] {
		t.Fatalf("objective did not rise: %v → %v", curve[0], curve[len(curve)-1])
	}
}

// (2) ∂ log P/∂θ matches finite differences.
func TestGradLogProb(t *testing.T) {
	theta := []float64{-1.2, 0.3, 2.0, -0.1}
	m := []bool{true, false, true, false}
	g := GradLogProb(m, theta)
	for i := range theta {
		const eps = 1e-6
		old := theta[i]
		theta[i] = old + eps
		up := LogProb(m, theta)
		theta[i] = old - eps
		down := LogProb(m, theta)
		theta[i] = old
		if num := (up - down) / (2 * eps); math.Abs(num-g[i]) > 1e-6 {
			t.Errorf("θ_%d: analytic %v, numeric %v", i, g[i], num)
		}
	}
}

// (3) Identical masks: the baseline cancels, the gradient is exactly 0; (4) a seed fixes the result.
func TestBaselineAndDeterminism(t *testing.T) {
	m := []bool{true, false, true}
	grad := PolicyGradient([][]bool{m, m, m}, []float64{0.7, 0.7, 0.7}, []float64{0, 1, -1})
	for _, g := range grad {
		if g != 0 {
			t.Fatalf("gradient %v with identical masks", grad)
		}
	}
	qual := []float64{0.1, 0.9, 0.5, 0.3, 0.8, 0.2, 0.6, 0.4, 0.7, 0.05}
	emb := make([][]float64, len(qual))
	for i := range emb {
		emb[i] = []float64{math.Cos(float64(i)), math.Sin(float64(i)), 1}
	}
	a, _, _ := Select(qual, emb, DefaultConfig(0.3))
	b, _, _ := Select(qual, emb, DefaultConfig(0.3))
	if !slices.Equal(a, b) || len(a) != 3 {
		t.Fatalf("%v vs %v", a, b)
	}
}

// The diversity term: of two identical high-quality examples, a diverse selection keeps one.
func TestDiversity(t *testing.T) {
	qual := []float64{0.9, 0.9, 0.5, 0.1}
	emb := [][]float64{{1, 0}, {1, 0}, {0, 1}, {-1, 0.2}}
	o, err := NewObjective(qual, emb, Config{Ratio: 0.5, WQ: 1, WD: 1, WR: 0, Groups: 1, G: 2, LR: 1, Iters: 1})
	if err != nil {
		t.Fatal(err)
	}
	// {0,1}: quality 0.9, cos 1 → 0.9 − 1 = −0.1; {0,2}: quality 0.7, cos 0 → 0.7.
	if j := o.Eval([]bool{true, true, false, false}); math.Abs(j-(-0.1)) > 1e-12 {
		t.Fatalf("J({0,1}) = %v", j)
	}
	if j := o.Eval([]bool{true, false, true, false}); math.Abs(j-0.7) > 1e-12 {
		t.Fatalf("J({0,2}) = %v", j)
	}
	if _, err := NewObjective(qual, emb[:2], DefaultConfig(0.5)); err == nil {
		t.Fatal("mismatched embeddings accepted")
	}
}
