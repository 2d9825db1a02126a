package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSampleTokensFollowsTheDistribution: 4000 in-graph draws at one position of the llama fixture at
// temperature 1.5 match softmax(logits/1.5) computed in float64: every token's frequency within 4.5
// standard errors, and Pearson's χ² within 5 standard deviations of its mean (V−1 degrees of freedom).
func TestSampleTokensFollowsTheDistribution(t *testing.T) {
	m, err := Load(fixtureDir("llama"))
	if err != nil {
		t.Fatal(err)
	}
	ids := [][]int32{{12, 40, 7}}
	mask := [][]int32{{1, 1, 1}}
	const k, temp = 4000, 1.5
	rng := rand.New(rand.NewPCG(1, 2))
	u := [][][]float32{make([][]float32, 2)}
	for p := range u[0] {
		u[0][p] = make([]float32, k)
		for j := range u[0][p] {
			u[0][p][j] = rng.Float32()
		}
	}
	got, err := m.SampleTokens(ids, mask, u, temp)
	if err != nil {
		t.Fatal(err)
	}
	logits, _ := m.Logits(ids, mask)
	row := logits[0][1]
	mx := math.Inf(-1)
	for _, v := range row {
		mx = math.Max(mx, float64(v)/temp)
	}
	p := make([]float64, len(row))
	z := 0.0
	for i, v := range row {
		p[i] = math.Exp(float64(v)/temp - mx)
		z += p[i]
	}
	counts := make([]float64, len(row))
	for _, c := range got[0][1] {
		counts[c]++
	}
	chi2, worst := 0.0, 0.0
	for i := range p {
		p[i] /= z
		f := counts[i] / k
		chi2 += (counts[i] - k*p[i]) * (counts[i] - k*p[i]) / (k * p[i])
		se := math.Sqrt(p[i]*(1-p[i])/k) + 1e-4
		worst = math.Max(worst, math.Abs(f-p[i])/se)
	}
	dof := float64(len(p) - 1)
	t.Logf("4000 draws over %d tokens: χ² %.1f (mean %v, sd %.1f), worst token %.2f standard errors", len(p), chi2, dof, math.Sqrt(2*dof), worst)
	if worst > 4.5 || math.Abs(chi2-dof) > 5*math.Sqrt(2*dof) {
		t.Errorf("draws do not follow softmax(logits/T): χ² %.1f, worst %.2f SE", chi2, worst)
	}
}

// TestAccumulateTokenSetGeneralisesAccumulate: with one candidate per position, the target, the
// token-set surrogate has exactly Accumulate's gradient; with two (target and another token) the
// gradient is the sum of the two single-candidate ones.
func TestAccumulateTokenSetGeneralisesAccumulate(t *testing.T) {
	m := tinyModel(t, 4)
	rng := rand.New(rand.NewPCG(9, 9))
	ids, mask, coef := randomBatch(rng, 3, 7, 40)
	single := func(cand [][][]int32, c [][][]float32) []float32 {
		tr, _ := NewTrainer(m, DefaultOptimConfig())
		if _, err := tr.AccumulateTokenSet(ids, mask, cand, c); err != nil {
			t.Fatal(err)
		}
		g, _ := tr.gradients("model.layers.1.self_attn.v_proj.weight")
		return g
	}
	tr, _ := NewTrainer(m, DefaultOptimConfig())
	if _, _, err := tr.Accumulate(ids, mask, coef, nil); err != nil {
		t.Fatal(err)
	}
	want, _ := tr.gradients("model.layers.1.self_attn.v_proj.weight")
	tgt, other := make([][][]int32, len(ids)), make([][][]int32, len(ids))
	c1, both := make([][][]float32, len(ids)), make([][][]float32, len(ids))
	pair := make([][][]int32, len(ids))
	for b := range ids {
		for j := 0; j+1 < len(ids[b]); j++ {
			o := (ids[b][j+1] + 1) % 40
			tgt[b] = append(tgt[b], []int32{ids[b][j+1]})
			other[b] = append(other[b], []int32{o})
			pair[b] = append(pair[b], []int32{ids[b][j+1], o})
			c1[b] = append(c1[b], []float32{coef[b][j]})
			both[b] = append(both[b], []float32{coef[b][j], coef[b][j]})
		}
	}
	diff := func(a, b []float32) float64 {
		d := 0.0
		for i := range a {
			d = math.Max(d, math.Abs(float64(a[i]-b[i])))
		}
		return d
	}
	gT := single(tgt, c1)
	if d := diff(gT, want); d > 1e-6 {
		t.Errorf("one candidate = target: gradient differs from Accumulate's by %.3g", d)
	}
	gO, gP := single(other, c1), single(pair, both)
	sum := make([]float32, len(gT))
	for i := range sum {
		sum[i] = gT[i] + gO[i]
	}
	scale := 0.0
	for _, x := range sum {
		scale = math.Max(scale, math.Abs(float64(x)))
	}
	if d := diff(gP, sum); d > 1e-5*scale || diff(gO, gT) < 1e-6 {
		t.Errorf("two candidates: gradient off the sum by %.3g", d)
	}
}

// TestTopKLogProbs: the in-graph top-k ids and log-probs equal a float64 sort of the full logits'
// log-softmax on the llama fixture (ids exact, values to 1e-5).
func TestTopKLogProbs(t *testing.T) {
	m, err := Load(fixtureDir("llama"))
	if err != nil {
		t.Fatal(err)
	}
	ids := [][]int32{{12, 40, 7, 99}, {5, 5, 6, 0}}
	mask := [][]int32{{1, 1, 1, 1}, {1, 1, 1, 0}}
	const k = 5
	idx, lp, err := m.TopKLogProbs(ids, mask, k)
	if err != nil {
		t.Fatal(err)
	}
	logits, _ := m.Logits(ids, mask)
	for b := range ids {
		for p := 0; p+1 < len(ids[b]); p++ {
			if mask[b][p+1] == 0 {
				continue
			}
			row := logits[b][p]
			lse, mx := 0.0, math.Inf(-1)
			for _, v := range row {
				mx = math.Max(mx, float64(v))
			}
			for _, v := range row {
				lse += math.Exp(float64(v) - mx)
			}
			lse = mx + math.Log(lse)
			order := make([]int, len(row))
			for i := range order {
				order[i] = i
			}
			for i := 0; i < k; i++ { // partial selection sort
				best := i
				for j := i + 1; j < len(order); j++ {
					if row[order[j]] > row[order[best]] {
						best = j
					}
				}
				order[i], order[best] = order[best], order[i]
				if int(idx[b][p][i]) != order[i] {
					t.Fatalf("[%d][%d] rank %d: id %d, want %d", b, p, i, idx[b][p][i], order[i])
				}
				if d := math.Abs(float64(lp[b][p][i]) - (float64(row[order[i]]) - lse)); d > 1e-5 {
					t.Fatalf("[%d][%d] rank %d: log-prob off by %.3g", b, p, i, d)
				}
			}
		}
	}
}
