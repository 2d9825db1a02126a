package model

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// nucleusSets builds test sets from full logits: at every real position the k most probable tokens
// plus the target (so the target is always allowed), and every third position the whole vocabulary
// (nil).
func nucleusSets(ids, mask [][]int32, logits [][][]float32, k int) [][][]int32 {
	sets := make([][][]int32, len(ids))
	for b := range ids {
		sets[b] = make([][]int32, len(ids[b])-1)
		for t := range sets[b] {
			if mask[b][t] == 0 || mask[b][t+1] == 0 || t%3 == 2 {
				continue
			}
			z := logits[b][t]
			order := make([]int32, len(z))
			for j := range order {
				order[j] = int32(j)
			}
			sort.SliceStable(order, func(i, j int) bool { return z[order[i]] > z[order[j]] })
			s := append([]int32(nil), order[:k]...)
			if !slices.Contains(s, ids[b][t+1]) {
				s = append(s, ids[b][t+1])
			}
			sets[b][t] = s
		}
	}
	return sets
}

// TestNucleusLogProbsMatchFullLogits: log-probs (and entropies) renormalised over each position's
// set equal a float64 computation from the llama fixture's full logits, padding included.
func TestNucleusLogProbsMatchFullLogits(t *testing.T) {
	m, err := Load(fixtureDir("llama"))
	if err != nil {
		t.Fatal(err)
	}
	ids := [][]int32{{12, 40, 7, 99, 250, 3, 18, 5}, {0, 0, 1, 2, 3, 4, 5, 6}}
	mask := [][]int32{{1, 1, 1, 1, 1, 1, 1, 1}, {0, 0, 1, 1, 1, 1, 1, 1}}
	logits, err := m.Logits(ids, mask)
	if err != nil {
		t.Fatal(err)
	}
	sets := nucleusSets(ids, mask, logits, 5)
	lp, ent, err := m.NucleusLogProbs(ids, mask, sets)
	if err != nil {
		t.Fatal(err)
	}
	full, _, _ := m.LogProbs(ids, mask)
	worst, masked := 0.0, 0
	for b := range ids {
		for p := 0; p+1 < len(ids[b]); p++ {
			if mask[b][p] == 0 {
				if lp[b][p] != 0 {
					t.Errorf("padding [%d][%d] = %v", b, p, lp[b][p])
				}
				continue
			}
			want := nucleusLogProb64(logits[b][p], sets[b][p], ids[b][p+1])
			worst = math.Max(worst, math.Abs(float64(lp[b][p])-want))
			// entropy of the renormalised distribution
			set := sets[b][p]
			if set == nil {
				for v := range logits[b][p] {
					set = append(set, int32(v))
				}
			} else {
				masked++
				if float64(lp[b][p]) <= float64(full[b][p])-1e-6 {
					t.Errorf("[%d][%d]: masked log-prob %v not above the full one %v", b, p, lp[b][p], full[b][p])
				}
			}
			h := 0.0
			for _, v := range set {
				l := nucleusLogProb64(logits[b][p], sets[b][p], v)
				h -= math.Exp(l) * l
			}
			worst = math.Max(worst, math.Abs(float64(ent[b][p])-h))
		}
	}
	t.Logf("%d masked positions: max |graph - float64| = %.3g", masked, worst)
	if worst > 2e-5 || masked < 6 {
		t.Errorf("max deviation %.3g over %d masked positions", worst, masked)
	}
}

// TestAccumulateNucleusGradient: the gradient of Σ c·log π_N(a) equals the token-set surrogate
// Σ c·(log π(a) − Σ_{v∈N} π_N(v)·log π(v)) with π_N from a float64 computation of the full logits
// (∇ log π_N(a) = ∇ log π(a) − Σ_N π_N(v) ∇ log π(v)).
func TestAccumulateNucleusGradient(t *testing.T) {
	m := tinyModel(t, 4)
	rng := rand.New(rand.NewPCG(5, 5))
	ids, mask, coef := randomBatch(rng, 3, 7, 40)
	logits, err := m.Logits(ids, mask)
	if err != nil {
		t.Fatal(err)
	}
	sets := nucleusSets(ids, mask, logits, 4)
	const name = "model.layers.1.self_attn.v_proj.weight"
	tr, _ := NewTrainer(m, DefaultOptimConfig())
	lp, _, err := tr.AccumulateNucleus(ids, mask, sets, coef)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := tr.gradients(name)
	k := 1 + 40
	cand, cf := make([][][]int32, len(ids)), make([][][]float32, len(ids))
	for b := range ids {
		for p := 0; p+1 < len(ids[b]); p++ {
			c, w := make([]int32, k), make([]float32, k)
			c[0], w[0] = ids[b][p+1], coef[b][p]
			if mask[b][p] == 1 && mask[b][p+1] == 1 {
				if want := nucleusLogProb64(logits[b][p], sets[b][p], ids[b][p+1]); math.Abs(float64(lp[b][p])-want) > 2e-5 {
					t.Errorf("[%d][%d] log-prob %v, float64 %v", b, p, lp[b][p], want)
				}
				set := sets[b][p]
				if set == nil {
					for v := range 40 {
						set = append(set, int32(v))
					}
				}
				for j, v := range set {
					c[1+j] = v
					w[1+j] = float32(-float64(coef[b][p]) * math.Exp(nucleusLogProb64(logits[b][p], sets[b][p], v)))
				}
			}
			cand[b], cf[b] = append(cand[b], c), append(cf[b], w)
		}
	}
	tr2, _ := NewTrainer(m, DefaultOptimConfig())
	if _, err := tr2.AccumulateTokenSet(ids, mask, cand, cf); err != nil {
		t.Fatal(err)
	}
	want, _ := tr2.gradients(name)
	d, scale := 0.0, 0.0
	for i := range want {
		d = math.Max(d, math.Abs(float64(got[i]-want[i])))
		scale = math.Max(scale, math.Abs(float64(want[i])))
	}
	t.Logf("gradient: max |nucleus - token-set| = %.3g (scale %.3g)", d, scale)
	if d > 1e-4*scale || scale == 0 {
		t.Errorf("gradient off by %.3g (scale %.3g)", d, scale)
	}
	tr3, _ := NewTrainer(m, DefaultOptimConfig())
	if _, _, err := tr3.Accumulate(ids, mask, coef, nil); err != nil {
		t.Fatal(err)
	}
	plain, _ := tr3.gradients(name)
	dp := 0.0
	for i := range plain {
		dp = math.Max(dp, math.Abs(float64(got[i]-plain[i])))
	}
	t.Logf("the mask changes the gradient by up to %.3g", dp)
	if dp < 1e-2*scale {
		t.Errorf("masked gradient equals the unmasked one (%.3g)", dp)
	}
}
