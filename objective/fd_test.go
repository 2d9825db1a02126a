package objective

import (
	"math"
	"math/rand/v2"
	"testing"
)

// randomBatch builds a batch of rows responses (groups of groupSize) and width token slots with
// random lengths, one masked hole, log-probs near the old ones and every optional field filled, so any
// preset can run on it.
func randomBatch(rng *rand.Rand, rows, width, groupSize int) *Batch {
	b := &Batch{}
	mat := func(f func(i, t int) float64) [][]float64 {
		m := make([][]float64, rows)
		for i := range m {
			m[i] = make([]float64, width)
			for t := range m[i] {
				m[i][t] = f(i, t)
			}
		}
		return m
	}
	lens := make([]int, rows)
	for i := range lens {
		lens[i] = 3 + rng.IntN(width-2)
	}
	b.Mask = mat(func(i, t int) float64 {
		if t < lens[i] && !(i == 1 && t == 1) {
			return 1
		}
		return 0
	})
	b.OldLogP = mat(func(i, t int) float64 { return -0.05 - 2.5*rng.Float64() })
	b.LogP = mat(func(i, t int) float64 { return b.OldLogP[i][t] + 0.15*rng.NormFloat64() })
	b.RefLogP = mat(func(i, t int) float64 { return b.OldLogP[i][t] + 0.3*rng.NormFloat64() })
	b.Entropy = mat(func(i, t int) float64 { return 0.02 + 1.5*rng.Float64() })
	b.Values = mat(func(i, t int) float64 { return rng.Float64() })
	b.ProxyLogP = mat(func(i, t int) float64 { return b.OldLogP[i][t] + 0.2*rng.Float64() })
	b.TargetRatio = mat(func(i, t int) float64 { return 0.7 + 0.6*rng.Float64() })
	b.TokenIDs = make([][]int, rows)
	for i := range b.TokenIDs {
		b.TokenIDs[i] = make([]int, width)
		for t := range b.TokenIDs[i] {
			b.TokenIDs[i][t] = rng.IntN(3)
		}
	}
	for i := 0; i < rows; i++ {
		b.Group = append(b.Group, i/groupSize)
		b.PromptID = append(b.PromptID, string(rune('a'+i/groupSize)))
		r := float64(rng.IntN(2))
		b.Rewards = append(b.Rewards, r)
		b.RewardComponents = append(b.RewardComponents, []float64{r, float64(rng.IntN(2))})
		b.GradWeight = append(b.GradWeight, 0.5+rng.Float64())
		b.Truncated = append(b.Truncated, rng.IntN(4) == 0)
		b.Segments = append(b.Segments, []Segment{{End: -1, Value: rng.Float64()}, {End: 0, Value: rng.Float64()}})
	}
	b.MeanEntropy = 0.3
	fillExtras(rng, b)
	return b
}

// fillExtras gives every input registered with RegisterExtraInput random values in [0.5, 1.5) (a new
// method's input is in the FD tests without editing this file).
func fillExtras(rng *rand.Rand, b *Batch) {
	for _, s := range InputSpecs() {
		if !s.extra {
			continue
		}
		switch s.Get(&Batch{}).(type) {
		case [][]float64:
			if s.Per == PerToken {
				m := newLike(b.Mask)
				for i := range m {
					for t := range m[i] {
						m[i][t] = 0.5 + rng.Float64()
					}
				}
				s.Set(b, m)
			}
		case []float64:
			v := make([]float64, len(b.Mask))
			for i := range v {
				v[i] = 0.5 + rng.Float64()
			}
			s.Set(b, v)
		case float64:
			s.Set(b, 0.5+rng.Float64())
		}
	}
}

// lossAtAnchor evaluates an objective's loss with stop-gradient quantities held at anchor, when the
// objective has stop-gradients; otherwise the plain loss.
func lossAtAnchor(o Objective, b *Batch, anchor [][]float64) (Result, error) {
	if a, ok := o.(interface {
		lossAt(*Batch, [][]float64) (Result, error)
	}); ok {
		return a.lossAt(b, anchor)
	}
	return o.Loss(b)
}

// checkGradFD compares GradLogP with central finite differences (step 1e-6) of the loss with the
// stop-gradient anchor fixed at b.LogP. Tolerance: 1e-6 relative to the largest gradient entry.
func checkGradFD(t *testing.T, name string, o Objective, b *Batch) {
	t.Helper()
	res, err := o.Loss(b)
	if err != nil {
		t.Fatalf("%s: loss: %v", name, err)
	}
	base := clone2(b.LogP)
	var gmax float64
	for _, row := range res.GradLogP {
		for _, g := range row {
			gmax = math.Max(gmax, math.Abs(g))
		}
	}
	if gmax == 0 {
		t.Fatalf("%s: gradient is identically zero on a random batch", name)
	}
	const h = 1e-6
	for i := range b.LogP {
		for j := range b.LogP[i] {
			b.LogP[i][j] = base[i][j] + h
			up, err1 := lossAtAnchor(o, b, base)
			b.LogP[i][j] = base[i][j] - h
			down, err2 := lossAtAnchor(o, b, base)
			b.LogP[i][j] = base[i][j]
			if err1 != nil || err2 != nil {
				t.Fatalf("%s: %v %v", name, err1, err2)
			}
			fd := (up.Loss - down.Loss) / (2 * h)
			if d := math.Abs(fd - res.GradLogP[i][j]); d > 1e-6*gmax {
				t.Errorf("%s: grad[%d][%d] = %.12g, finite difference %.12g (|diff| %.3g > %.3g)", name, i, j, res.GradLogP[i][j], fd, d, 1e-6*gmax)
			}
		}
	}
}

func clone2(a [][]float64) [][]float64 {
	out := make([][]float64, len(a))
	for i := range a {
		out[i] = append([]float64(nil), a[i]...)
	}
	return out
}

// fdOverrides makes presets whose defaults need inputs a random batch lacks, or whose defaults leave
// most tokens at zero gradient, exercise their gradient paths.
var fdOverrides = map[string]map[string]string{
	"ppo":    {"entropy_coef": "0.01"},
	"gspo":   {"eps_low": "0.05", "eps_high": "0.08"},
	"lp_reg": {"rho_neg": "0.4", "rho_pos": "0.3"},
}

// TestGradientsFiniteDifferences runs every preset under every aggregation mode it accepts on random
// batches and checks GradLogP against central finite differences.
func TestGradientsFiniteDifferences(t *testing.T) {
	for _, name := range Names() {
		_, defs, _ := Describe(name)
		modes := []string{""}
		if _, ok := defs["agg"]; ok {
			modes = aggModes
		}
		for _, mode := range modes {
			over := map[string]string{}
			for k, v := range fdOverrides[name] {
				over[k] = v
			}
			if mode != "" {
				over["agg"] = mode
			}
			if _, ok := defs["beta"]; ok && over["beta"] == "" {
				over["beta"] = "0.05" // exercise the KL term too
			}
			o, err := New(name, over)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			for seed := uint64(1); seed <= 3; seed++ {
				rng := rand.New(rand.NewPCG(seed, 7))
				b := randomBatch(rng, 8, 6, 4)
				adv, err := o.Advantages(b)
				if err != nil {
					t.Fatalf("%s: advantages: %v", name, err)
				}
				b.Advantages = adv
				checkGradFD(t, name+"/"+mode, o, b)
				if res, _ := o.Loss(b); res.GradEntropy != nil {
					checkEntropyFD(t, name+"/"+mode, o, b, res)
				}
			}
		}
	}
}

// checkEntropyFD checks GradEntropy against finite differences in the entropy input.
func checkEntropyFD(t *testing.T, name string, o Objective, b *Batch, res Result) {
	const h = 1e-6
	for i := range b.Entropy {
		for j := range b.Entropy[i] {
			v := b.Entropy[i][j]
			b.Entropy[i][j] = v + h
			up, _ := o.Loss(b)
			b.Entropy[i][j] = v - h
			down, _ := o.Loss(b)
			b.Entropy[i][j] = v
			fd := (up.Loss - down.Loss) / (2 * h)
			if math.Abs(fd-res.GradEntropy[i][j]) > 1e-6*math.Max(1e-3, math.Abs(fd)) {
				t.Errorf("%s: grad_entropy[%d][%d] = %g, finite difference %g", name, i, j, res.GradEntropy[i][j], fd)
			}
		}
	}
}

// randomBatchLeavesOut are the inputs randomBatch does not fill, with the reason; every other input
// in the collection must be filled, so a new input gets random values in the finite-difference tests.
var randomBatchLeavesOut = map[string]string{
	InAdvantages:   "an output of the whole-batch phase",
	InBoundTarget:  "an output of the whole-batch phase",
	InTokenRewards: "optional shaping; the pinned golden values were recorded without it",
	InLengths:      "optional shaping (defaults to the mask lengths)",
	InDrift:        "read after the step only (spo's AfterBatch), tested there",
	InStep:         "a scalar each test sets",
}

// TestRandomBatchCoversEveryInput: the FD batches carry every registered input, and Subset keeps each
// one (rows picked, scalars shared).
func TestRandomBatchCoversEveryInput(t *testing.T) {
	b := randomBatch(rand.New(rand.NewPCG(1, 2)), 6, 5, 3)
	for _, s := range InputSpecs() {
		if _, skip := randomBatchLeavesOut[s.Name]; skip || s.Alias != "" {
			continue
		}
		if !Present(b, s.Name) {
			t.Errorf("randomBatch leaves input %s empty: fill it or list it in randomBatchLeavesOut", s.Name)
		}
	}
	b.Step, b.Drift, b.TokenRewards, b.Lengths = 4, []float64{0, 1, 2, 3, 4, 5}, clone2(b.Mask), []int{1, 2, 3, 4, 5, 6}
	b.Advantages, b.BoundTarget = clone2(b.Mask), clone2(b.Mask)
	sub := b.Subset([]int{4, 1})
	for _, s := range InputSpecs() {
		if !Present(sub, s.Name) {
			t.Errorf("Subset dropped input %s", s.Name)
			continue
		}
		if s.Per != PerBatch && lenOf(s.Get(sub)) != 2 {
			t.Errorf("Subset kept %d rows of %s, want 2", lenOf(s.Get(sub)), s.Name)
		}
	}
	if sub.Drift[0] != 4 || sub.Lengths[1] != 2 || sub.PromptID[0] != b.PromptID[4] || sub.Step != 4 {
		t.Errorf("Subset picked the wrong rows: drift %v lengths %v step %d", sub.Drift, sub.Lengths, sub.Step)
	}
}
