package objective

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Spec numbers are printed to 6 significant digits: they are checked at specTol, and the same
// quantities are checked at 1e-9 against their exact closed forms.
const (
	exact   = 1e-9
	specTol = 1e-6
)

func TestAggregationWorkedExample(t *testing.T) {
	// §1.3: losses row1 = [1,1] (L=2), row2 = [0,0,0,0] (L=4), C = 4.
	mask := [][]float64{{1, 1, 0, 0}, {1, 1, 1, 1}}
	loss := [][]float64{{1, 1, 0, 0}, {0, 0, 0, 0}}
	for _, c := range []struct {
		mode string
		want float64
	}{{AggTokenMean, 2.0 / 6}, {AggSeqMeanTokenMean, 0.5}, {AggSeqMeanTokenSum, 1.0}, {AggSeqSumConst, 0.25}} {
		w, err := AggWeights(c.mode, mask, 4, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got float64
		for i := range w {
			for j := range w[i] {
				got += w[i][j] * loss[i][j]
			}
		}
		if !near(got, c.want, exact) {
			t.Errorf("%s = %.12g, want %.12g", c.mode, got, c.want)
		}
	}
}

func TestKLEstimators(t *testing.T) {
	// §25: x = -1, y = -1.5.
	e := math.Exp(-0.5)
	for _, c := range []struct {
		est        string
		v, dv      float64
		specV, spD float64
	}{
		{KLk1, 0.5, 1, 0.5, 1},
		{KLk2, 0.125, 0.5, 0.125, 0.5},
		{KLk3, e + 0.5 - 1, 1 - e, 0.106531, 0.393469},
		{KLAbs, 0.5, 1, 0.5, 1},
	} {
		v, dv := KL(c.est, -1, -1.5)
		if !near(v, c.v, exact) || !near(dv, c.dv, exact) || !near(v, c.specV, specTol) || !near(dv, c.spD, specTol) {
			t.Errorf("%s: value %.9g deriv %.9g, want %.9g %.9g", c.est, v, dv, c.v, c.dv)
		}
		if v0, dv0 := KL(c.est, -1, -1); v0 != 0 || (c.est != KLk1 && c.est != KLAbs && dv0 != 0) {
			t.Errorf("%s at x = y: value %g deriv %g, want 0", c.est, v0, dv0)
		}
	}
	if v, _ := KL(KLk1, -2, -1); v >= 0 {
		t.Errorf("k1 can be negative, got %g", v)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	for range 1000 {
		if v, _ := KL(KLk3, -3*rng.Float64(), -3*rng.Float64()); v < 0 {
			t.Fatalf("k3 = %g < 0", v)
		}
	}
}

// TestKLLossGradientExpectation: on a 3-way categorical π_θ = softmax(θ), the expected pathwise
// gradient of k3(log π(x), log ref(x)) under x ~ π equals ∇_θ KL(ref‖π_θ), and k2's equals
// ∇_θ KL(π_θ‖ref). The expectation is enumerated exactly instead of sampled.
func TestKLLossGradientExpectation(t *testing.T) {
	theta := []float64{0.3, -0.4, 1.1}
	ref := softmax([]float64{-0.2, 0.5, 0.1})
	kl := func(th []float64, forward bool) float64 {
		p := softmax(th)
		var s float64
		for k := range p {
			if forward {
				s += ref[k] * math.Log(ref[k]/p[k])
			} else {
				s += p[k] * math.Log(p[k]/ref[k])
			}
		}
		return s
	}
	for _, c := range []struct {
		est     string
		forward bool
	}{{KLk3, true}, {KLk2, false}} {
		p := softmax(theta)
		got := make([]float64, 3)
		for x := range p {
			_, dx := KL(c.est, math.Log(p[x]), math.Log(ref[x]))
			for j := range got { // ∂ log π(x)/∂θ_j = 1[j=x] - π_j
				ind := 0.0
				if j == x {
					ind = 1
				}
				got[j] += p[x] * dx * (ind - p[j])
			}
		}
		for j := range theta {
			th := append([]float64(nil), theta...)
			th[j] += 1e-6
			up := kl(th, c.forward)
			th[j] -= 2e-6
			fd := (up - kl(th, c.forward)) / 2e-6
			if !near(got[j], fd, 1e-6) {
				t.Errorf("%s: expected gradient[%d] = %.9g, KL gradient %.9g", c.est, j, got[j], fd)
			}
		}
	}
}

func softmax(z []float64) []float64 {
	m := math.Inf(-1)
	for _, v := range z {
		m = math.Max(m, v)
	}
	var s float64
	out := make([]float64, len(z))
	for i, v := range z {
		out[i] = math.Exp(v - m)
		s += out[i]
	}
	for i := range out {
		out[i] /= s
	}
	return out
}

func TestClipLossValues(t *testing.T) {
	// §2 test 3 (eps 0.2): per-token loss and dl/dlogp = dl/dx·ρ.
	for _, c := range []struct {
		x, a, c   float64
		loss, dlp float64
	}{
		{1.5, 1, 0, -1.2, 0},
		{0.5, -1, 0, 0.8, 0},
		{5, -1, 0, 5, 5},
		{5, -1, 3, 3, 0},
		{1.1, 1, 0, -1.1, -1.1},
	} {
		l, dx := ClipLoss(c.x, c.a, 0.2, 0.2, c.c)
		if !near(l, c.loss, exact) || !near(dx*c.x, c.dlp, exact) {
			t.Errorf("x=%g A=%g c=%g: loss %g dl/dlogp %g, want %g %g", c.x, c.a, c.c, l, dx*c.x, c.loss, c.dlp)
		}
	}
}

func TestPPO(t *testing.T) {
	// §2 test 1: GAE, γ = 1, λ = 0.95.
	mask := [][]float64{{1, 1, 1}}
	adv, ret := GAE([][]float64{{0, 0, 1}}, [][]float64{{0.5, 0.6, 0.8}}, mask, 1, 0.95)
	assertVec(t, "gae A", adv[0], []float64{0.4705, 0.39, 0.2}, exact)
	assertVec(t, "gae R", ret[0], []float64{0.9705, 0.99, 1.0}, exact)

	// A masked hole is skipped: the running values carry across it.
	adv2, _ := GAE([][]float64{{0, 9, 0, 1}}, [][]float64{{0.5, 7, 0.6, 0.8}}, [][]float64{{1, 0, 1, 1}}, 1, 0.95)
	assertVec(t, "gae with hole", adv2[0], []float64{0.4705, 0, 0.39, 0.2}, exact)

	// §2 test 2: λ = γ = 1 ⇒ A_t = Σ_{k≥t} r_k - V_t.
	rng := rand.New(rand.NewPCG(1, 2))
	r, v := [][]float64{make([]float64, 6)}, [][]float64{make([]float64, 6)}
	for j := range 6 {
		r[0][j], v[0][j] = rng.NormFloat64(), rng.NormFloat64()
	}
	a1, _ := GAE(r, v, [][]float64{{1, 1, 1, 1, 1, 1}}, 1, 1)
	for j := range 6 {
		var g float64
		for k := j; k < 6; k++ {
			g += r[0][k]
		}
		if !near(a1[0][j], g-v[0][j], exact) {
			t.Errorf("λ=1: A[%d] = %g, want %g", j, a1[0][j], g-v[0][j])
		}
	}

	// §2 test 5: whitening gives masked mean 0 and unbiased variance s²/(s²+1e-8) ≈ 1.
	b := randomBatch(rng, 6, 5, 3)
	o := mustNew(t, "ppo", nil)
	w := advOf(t, o, b)
	var vals []float64
	for i := range w {
		for j, m := range b.Mask[i] {
			if m != 0 {
				vals = append(vals, w[i][j])
			}
		}
	}
	if m, s := mean(vals), std(vals, true); math.Abs(m) > 1e-12 || math.Abs(s-1) > 1e-6 {
		t.Errorf("whitened mean %g std %g, want 0 and 1", m, s)
	}

	// §2 test 4: on-policy the clipped surrogate's gradient is the vanilla -A·w_agg.
	b.LogP = clone2(b.OldLogP)
	b.Advantages = w
	res := lossOf(t, mustNew(t, "ppo", nil), b)
	n := float64(len(vals))
	for i := range w {
		for j, m := range b.Mask[i] {
			if want := -w[i][j] * m / n; !near(res.GradLogP[i][j], want, exact) {
				t.Errorf("on-policy grad[%d][%d] = %g, want %g", i, j, res.GradLogP[i][j], want)
			}
		}
	}
}

func TestPPOKLInReward(t *testing.T) {
	// k1 penalty per token: old - ref = 0.5 on both tokens, β = 0.1, outcome 1 at the last token.
	b := &Batch{Mask: [][]float64{{1, 1}}, OldLogP: [][]float64{{-1, -1}}, RefLogP: [][]float64{{-1.5, -1.5}},
		Values: [][]float64{{0, 0}}, Rewards: []float64{1}}
	o := mustNew(t, "ppo", map[string]string{"beta": "0.1", "whiten": "false"})
	a := advOf(t, o, b)
	assertVec(t, "ppo kl-in-reward A", a[0], []float64{-0.05 + 0.95, 0.95}, exact)
}

func TestReinforce(t *testing.T) {
	// (a) constant reward ⇒ group-mean baseline ⇒ zero advantage and gradient.
	b := rowsBatch([]int{2, 3, 1}, []float64{0.7, 0.7, 0.7}, []int{0, 0, 0})
	o := mustNew(t, "reinforce", nil)
	b.Advantages = advOf(t, o, b)
	for _, row := range lossOf(t, o, b).GradLogP {
		for _, g := range row {
			if g != 0 {
				t.Fatalf("constant rewards: gradient %g, want 0", g)
			}
		}
	}
	// (c) ratio form and logp form have the same gradient on-policy.
	b = rowsBatch([]int{2, 3, 1}, []float64{1, 0, 0.5}, []int{0, 0, 0})
	gr, gl := mustNew(t, "reinforce", nil), mustNew(t, "reinforce", map[string]string{"form": "logp"})
	b.Advantages = advOf(t, gr, b)
	r1, r2 := lossOf(t, gr, b), lossOf(t, gl, b)
	for i := range r1.GradLogP {
		assertVec(t, "ratio vs logp form", r1.GradLogP[i], r2.GradLogP[i], exact)
	}
	// seq-mean-token-sum: g = -A_i/B'.
	if want := -(1 - 0.5) / 3; !near(r1.GradLogP[0][0], want, exact) {
		t.Errorf("grad %g, want %g", r1.GradLogP[0][0], want)
	}
}

// TestReinforceBaselineUnbiased: §3 (b). On a 3-token softmax policy, the average gradient over 100k
// sampled tokens with baseline 0 and with baseline 0.7 both agree with the exact policy gradient within
// 5 standard errors.
func TestReinforceBaselineUnbiased(t *testing.T) {
	theta := []float64{0.2, -0.5, 0.4}
	reward := []float64{1, 0, 0.5}
	p := softmax(theta)
	exactG := make([]float64, 3) // ∇ E[r] = Σ_k π_k r_k (e_k - π)
	for k := range p {
		for j := range p {
			ind := 0.0
			if j == k {
				ind = 1
			}
			exactG[j] += p[k] * reward[k] * (ind - p[j])
		}
	}
	o := mustNew(t, "reinforce", map[string]string{"form": "logp"})
	for _, base := range []float64{0, 0.7} {
		rng := rand.New(rand.NewPCG(11, 13))
		const n = 100000
		sum, sumSq := make([]float64, 3), make([]float64, 3)
		for range n {
			u, k := rng.Float64(), 0
			for c := p[0]; u > c && k < 2; c += p[k] {
				k++
			}
			b := &Batch{Mask: [][]float64{{1}}, LogP: [][]float64{{math.Log(p[k])}}, OldLogP: [][]float64{{math.Log(p[k])}},
				Advantages: [][]float64{{reward[k] - base}}}
			g := lossOf(t, o, b).GradLogP[0][0] // dLoss/dlogp; ascent direction is -g
			for j := range p {
				ind := 0.0
				if j == k {
					ind = 1
				}
				x := -g * (ind - p[j])
				sum[j] += x
				sumSq[j] += x * x
			}
		}
		for j := range p {
			m := sum[j] / n
			se := math.Sqrt((sumSq[j]/n - m*m) / n)
			if math.Abs(m-exactG[j]) > 5*se {
				t.Errorf("baseline %g: mean gradient[%d] = %.5f ± %.5f, exact %.5f", base, j, m, se, exactG[j])
			}
		}
	}
}

func TestRLOO(t *testing.T) {
	b := rowsBatch([]int{1, 1, 1, 1, 2}, []float64{1, 0, 0, 0, 0.3}, []int{0, 0, 0, 0, 1})
	a := rowAdv(advOf(t, mustNew(t, "rloo", nil), b))
	assertVec(t, "rloo", a, []float64{1, -1.0 / 3, -1.0 / 3, -1.0 / 3, 0.3}, exact) // singleton keeps A = r
	if s := a[0] + a[1] + a[2] + a[3]; math.Abs(s) > exact {
		t.Errorf("group sum %g, want 0", s)
	}
	d := rowAdv(advOf(t, mustNew(t, "dr_grpo", nil), b))
	for i := range 4 {
		if !near(a[i], 4.0/3*d[i], exact) {
			t.Errorf("rloo[%d] = %g, want n/(n-1)·dr_grpo = %g", i, a[i], 4.0/3*d[i])
		}
	}
}

func TestReinforcePP(t *testing.T) {
	// (a) L = [2,1], r = [1,0], no KL: returns [1,1] and [0] → whitened.
	b := rowsBatch([]int{2, 1}, []float64{1, 0}, []int{0, 1})
	a := advOf(t, mustNew(t, "reinforce_pp", map[string]string{"beta": "0"}), b)
	den := math.Sqrt(1.0/3 + 1e-8)
	assertVec(t, "reinforce++ row 0", a[0], []float64{(1.0 / 3) / den, (1.0 / 3) / den}, exact)
	assertVec(t, "reinforce++ row 1", a[1][:1], []float64{(-2.0 / 3) / den}, exact)
	assertVec(t, "reinforce++ spec", []float64{a[0][0], a[0][1], a[1][0]}, []float64{0.577350, 0.577350, -1.154701}, specTol)
	// (c) constant rewards over the whole batch → all zero; (d) baseline variant with constant groups.
	for _, name := range []string{"reinforce_pp", "reinforce_pp_baseline"} {
		c := rowsBatch([]int{2, 3, 1}, []float64{0.5, 0.5, 0.5}, []int{0, 0, 1})
		if name == "reinforce_pp_baseline" {
			c.Rewards = []float64{1, 1, 0}
		}
		for _, row := range advOf(t, mustNew(t, name, map[string]string{"beta": "0"}), c) {
			for _, v := range row {
				if v != 0 {
					t.Errorf("%s: constant rewards give advantage %g, want 0", name, v)
				}
			}
		}
	}
	// With gamma = 1 and rewards only at the end a row's returns are constant; the KL penalty in the
	// reward makes them vary per token: β·k1 = 0.1·0.5 per token.
	k := &Batch{Mask: [][]float64{{1, 1}}, OldLogP: [][]float64{{-1, -1}}, RefLogP: [][]float64{{-1.5, -1.5}}, Rewards: []float64{1}}
	g := ReturnsToGo(advConfig{klIn: "reward", beta: 0.1, klEst: KLk1}.tokenRewards(k), k.Mask, 1)
	assertVec(t, "returns with KL", g[0], []float64{0.9, 0.95}, exact)
}

func TestGRPO(t *testing.T) {
	noKL := map[string]string{"beta": "0"}
	o := mustNew(t, "grpo", noKL)
	// 1: r = [1,0,0,0], unbiased std 0.5 (population std would give 1.732051).
	a := rowAdv(advOf(t, o, rowsBatch([]int{1, 1, 1, 1}, []float64{1, 0, 0, 0}, []int{0, 0, 0, 0})))
	e := 0.5 + 1e-6
	assertVec(t, "grpo [1,0,0,0]", a, []float64{0.75 / e, -0.25 / e, -0.25 / e, -0.25 / e}, exact)
	assertVec(t, "grpo spec", a, []float64{1.5, -0.5, -0.5, -0.5}, 1e-5)
	// 2: r = [1,0] → ±0.707106.
	a = rowAdv(advOf(t, o, rowsBatch([]int{1, 1}, []float64{1, 0}, []int{0, 0})))
	assertVec(t, "grpo [1,0]", a, []float64{0.5 / (math.Sqrt(0.5) + 1e-6), -0.5 / (math.Sqrt(0.5) + 1e-6)}, exact)
	// eps_adv and singleton options.
	a = rowAdv(advOf(t, mustNew(t, "grpo", map[string]string{"eps_adv": "1e-4"}), rowsBatch([]int{1, 1, 1}, []float64{1, 0, 2}, []int{0, 0, 1})))
	assertVec(t, "grpo eps 1e-4 + singleton", a, []float64{0.5 / (math.Sqrt(0.5) + 1e-4), -0.5 / (math.Sqrt(0.5) + 1e-4), 2 / (1 + 1e-4)}, exact)
	a = rowAdv(advOf(t, mustNew(t, "grpo", map[string]string{"singleton": "zero"}), rowsBatch([]int{1, 1, 1}, []float64{1, 0, 2}, []int{0, 0, 1})))
	if a[2] != 0 {
		t.Errorf("singleton=zero: A = %g, want 0", a[2])
	}
	// 3: equal rewards ⇒ zero gradient for the group, even off-policy.
	b := rowsBatch([]int{2, 3}, []float64{1, 1}, []int{0, 0})
	b.LogP[0][0], b.LogP[1][2] = -0.7, -1.4
	b.Advantages = advOf(t, o, b)
	for _, row := range lossOf(t, o, b).GradLogP {
		for _, g := range row {
			if g != 0 {
				t.Fatalf("equal rewards: gradient %g, want 0", g)
			}
		}
	}
	// 4: invariance under r → 3r + 2.
	r := []float64{0.3, 0.9, 0.1, 0.5}
	a1 := rowAdv(advOf(t, o, rowsBatch([]int{1, 1, 1, 1}, r, []int{0, 0, 0, 0})))
	r2 := []float64{2.9, 4.7, 2.3, 3.5}
	a2 := rowAdv(advOf(t, o, rowsBatch([]int{1, 1, 1, 1}, r2, []int{0, 0, 0, 0})))
	assertVec(t, "affine invariance", a2, a1, 1e-5)
	// 5/6: SMTM length bias; per-row gradient sums to -A_i/B'.
	b = rowsBatch([]int{2, 4}, []float64{1, 0}, []int{0, 1})
	b.Advantages = [][]float64{{1, 1, 0, 0}, {1, 1, 1, 1}}
	res := lossOf(t, o, b)
	assertVec(t, "smtm row 0", res.GradLogP[0], []float64{-0.25, -0.25, 0, 0}, exact)
	assertVec(t, "smtm row 1", res.GradLogP[1], []float64{-0.125, -0.125, -0.125, -0.125}, exact)
	// With the KL term: g = (1/B')(1/L)(-Aρ + β(1 - exp(ref - logp))).
	b = rowsBatch([]int{2}, []float64{1}, []int{0})
	b.RefLogP = [][]float64{{-1.5, -0.5}}
	b.Advantages = [][]float64{{1, 1}}
	res = lossOf(t, mustNew(t, "grpo", nil), b)
	assertVec(t, "grpo with k3", res.GradLogP[0], []float64{0.5 * (-1 + 0.04*(1-math.Exp(-0.5))), 0.5 * (-1 + 0.04*(1-math.Exp(0.5)))}, exact)
}

func TestDrGRPO(t *testing.T) {
	o := mustNew(t, "dr_grpo", map[string]string{"max_len": "4"})
	b := rowsBatch([]int{1, 2, 3, 4}, []float64{1, 0, 0, 0}, []int{0, 0, 0, 0})
	b.Advantages = advOf(t, o, b)
	assertVec(t, "dr_grpo", rowAdv(b.Advantages), []float64{0.75, -0.25, -0.25, -0.25}, exact)
	// Per-token gradient -A/(B·C), the same for every token of a row whatever its length.
	res := lossOf(t, o, b)
	for i, row := range b.Mask {
		for j, m := range row {
			if want := -b.Advantages[i][j] * m / 16; !near(res.GradLogP[i][j], want, exact) {
				t.Errorf("grad[%d][%d] = %g, want %g", i, j, res.GradLogP[i][j], want)
			}
		}
	}
	// Equal rewards → zero gradient.
	b = rowsBatch([]int{1, 3}, []float64{0, 0}, []int{0, 0})
	b.Advantages = advOf(t, o, b)
	for _, row := range lossOf(t, o, b).GradLogP {
		for _, g := range row {
			if g != 0 {
				t.Fatalf("gradient %g, want 0", g)
			}
		}
	}
}

func TestDAPO(t *testing.T) {
	// 1: soft overlong punishment.
	for _, c := range []struct {
		n    int
		want float64
	}{{16000, 0}, {18432, -0.5}, {20480, -1.0}} {
		if got := OverlongPenalty(c.n, 20480, 4096, 1); !near(got, c.want, exact) {
			t.Errorf("overlong penalty(%d) = %g, want %g", c.n, got, c.want)
		}
	}
	// ... applied to the rewards before the group statistics when lengths are given.
	b := rowsBatch([]int{1, 1}, []float64{1, 1}, []int{0, 0})
	b.Lengths = []int{16000, 18432}
	a := rowAdv(advOf(t, mustNew(t, "dapo", nil), b))
	sd := math.Sqrt(0.125)
	assertVec(t, "dapo overlong-shaped A", a, []float64{0.25 / (sd + 1e-6), -0.25 / (sd + 1e-6)}, exact)

	// 2: dynamic sampling.
	d := rowsBatch([]int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, []float64{1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1}, []int{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3})
	o := mustNew(t, "dapo", nil)
	sel, err := o.(Selector).Select(d, advOf(t, o, d))
	if err != nil {
		t.Fatal(err)
	}
	want := []bool{false, false, false, false, false, false, false, false, true, true, true, true, true}
	for i := range want {
		if sel.Keep[i] != want[i] {
			t.Errorf("dynamic sampling keep[%d] = %v, want %v", i, sel.Keep[i], want[i])
		}
	}
	if sel.Stats["dropped_groups"] != 2 {
		t.Errorf("dropped_groups = %g, want 2", sel.Stats["dropped_groups"])
	}

	// 3: clip-higher: A = +1, ρ = 1.25 is active (≤ 1.28) → g = -1.25/N_tok; eps_high 0.2 clips it.
	c := rowsBatch([]int{2}, []float64{1}, []int{0})
	c.LogP[0][0] = -1 + math.Log(1.25)
	c.Advantages = [][]float64{{1, 1}}
	if g := lossOf(t, o, c).GradLogP[0][0]; !near(g, -1.25/2, exact) {
		t.Errorf("clip-higher grad %g, want %g", g, -1.25/2)
	}
	if g := lossOf(t, mustNew(t, "dapo", map[string]string{"eps_high": "0.2"}), c).GradLogP[0][0]; g != 0 {
		t.Errorf("symmetric clip grad %g, want 0", g)
	}
}

// TestTokenMeanMicroBatches: §8 test 4. Splitting rows into two micro-batches with the global token
// count reproduces the whole loss and gradient; the local count does not. The same holds for the
// sequence modes with the global row count.
func TestTokenMeanMicroBatches(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for _, mode := range aggModes {
		o := mustNew(t, "dapo", map[string]string{"agg": mode, "max_len": "6"})
		b := randomBatch(rng, 8, 6, 4)
		b.Advantages = advOf(t, o, b)
		whole := lossOf(t, o, b)
		lens := rowLens(b.Mask)
		var nTok, nRows float64
		for _, l := range lens {
			nTok += l
			if l > 0 || mode == AggSeqSumConst {
				nRows++
			}
		}
		split := func(lo, hi int, global bool) *Batch {
			m := &Batch{LogP: b.LogP[lo:hi], OldLogP: b.OldLogP[lo:hi], Mask: b.Mask[lo:hi], Advantages: b.Advantages[lo:hi]}
			if global {
				m.NormTokens, m.NormRows = nTok, nRows
			}
			return m
		}
		for _, global := range []bool{true, false} {
			r1, r2 := lossOf(t, o, split(0, 3, global)), lossOf(t, o, split(3, 8, global))
			sum := r1.Loss + r2.Loss
			if global {
				if !near(sum, whole.Loss, 1e-12) {
					t.Errorf("%s: micro-batch sum %.15g, whole %.15g", mode, sum, whole.Loss)
				}
				grads := append(r1.GradLogP, r2.GradLogP...)
				for i := range grads {
					assertVec(t, mode+" micro-batch grad", grads[i], whole.GradLogP[i], 1e-12)
				}
			} else if mode == AggTokenMean && near(sum, whole.Loss, 1e-6) {
				t.Errorf("token-mean with local counts should differ: %g vs %g", sum, whole.Loss)
			}
		}
	}
}

// TestOverlongFilter: §8 test 5. Dropping truncated responses removes their tokens from N_tok.
func TestOverlongFilter(t *testing.T) {
	o := mustNew(t, "dapo", map[string]string{"overlong_filter": "true", "dynamic_sampling": "false"})
	b := rowsBatch([]int{2, 4}, []float64{1, 0}, []int{0, 0})
	b.Truncated = []bool{false, true}
	b.Advantages = advOf(t, o, b)
	sel, err := o.(Selector).Select(b, b.Advantages)
	if err != nil {
		t.Fatal(err)
	}
	if !sel.Keep[0] || sel.Keep[1] || sel.Stats["dropped_truncated"] != 1 {
		t.Fatalf("keep %v stats %v, want [true false] and 1 dropped", sel.Keep, sel.Stats)
	}
	kept := &Batch{LogP: b.LogP[:1], OldLogP: b.OldLogP[:1], Mask: b.Mask[:1], Advantages: b.Advantages[:1]}
	g := lossOf(t, o, kept).GradLogP[0][0]
	if want := -b.Advantages[0][0] / 2; !near(g, want, exact) { // N_tok = 2, not 6
		t.Errorf("grad after filtering %g, want %g", g, want)
	}
}

func TestLitePPO(t *testing.T) {
	o := mustNew(t, "lite_ppo", nil)
	r := []float64{1, 0, 0, 0, 1, 1, 1, 1}
	b := rowsBatch([]int{1, 1, 1, 1, 1, 1, 1, 1}, r, []int{0, 0, 0, 0, 1, 1, 1, 1})
	a := rowAdv(advOf(t, o, b))
	sd := math.Sqrt(120.0 / 64 / 7) // unbiased std of the raw rewards, 0.517549
	d := sd + 1e-6
	assertVec(t, "lite_ppo", a, []float64{0.75 / d, -0.25 / d, -0.25 / d, -0.25 / d, 0, 0, 0, 0}, exact)
	assertVec(t, "lite_ppo spec", a, []float64{1.449135, -0.483045, -0.483045, -0.483045, 0, 0, 0, 0}, specTol)
	// A single group: identical to GRPO up to eps.
	one := rowsBatch([]int{1, 1, 1, 1}, []float64{1, 0, 0, 0}, []int{0, 0, 0, 0})
	assertVec(t, "single group", rowAdv(advOf(t, o, one)), rowAdv(advOf(t, mustNew(t, "grpo", nil), one)), 1e-5)
	// Relative scale across groups is kept: spread 1 vs spread 0.1.
	s := rowAdv(advOf(t, o, rowsBatch([]int{1, 1, 1, 1}, []float64{1, 0, 0.1, 0}, []int{0, 0, 1, 1})))
	if !(math.Abs(s[0]) > 5*math.Abs(s[2])) {
		t.Errorf("lite_ppo keeps scale: |A| %v", s)
	}
}

func TestGSPO(t *testing.T) {
	o := mustNew(t, "gspo", nil)
	// 1: d = [0.1, -0.3] → s = exp(-0.1); A = +1 active, A = -1 clipped. Second row: one token, on-policy.
	b := rowsBatch([]int{2, 1}, []float64{0, 0}, []int{0, 1})
	b.LogP[0][0], b.LogP[0][1] = -0.9, -1.3
	s := math.Exp(-0.1)
	for _, c := range []struct {
		a    float64
		want float64
	}{{1, -s / (2 * 2)}, {-1, 0}} {
		b.Advantages = [][]float64{{c.a, c.a}, {0, 0}}
		res := lossOf(t, o, b)
		assertVec(t, "gspo grad", res.GradLogP[0], []float64{c.want, c.want}, exact)
		if !near(res.Metrics["ratio_mean"], (2*s+1)/3, exact) || !near(s, 0.904837, specTol) {
			t.Errorf("ratio_mean %g, want %g", res.Metrics["ratio_mean"], (2*s+1)/3)
		}
	}
	// 2: on-policy GSPO equals on-policy GRPO with SMTM.
	rng := rand.New(rand.NewPCG(9, 9))
	r := randomBatch(rng, 8, 6, 4)
	r.LogP = clone2(r.OldLogP)
	r.Advantages = advOf(t, o, r)
	g1, g2 := lossOf(t, o, r), lossOf(t, mustNew(t, "grpo", map[string]string{"beta": "0"}), r)
	for i := range g1.GradLogP {
		assertVec(t, "on-policy gspo vs grpo", g1.GradLogP[i], g2.GradLogP[i], exact)
	}
	// 3: permuting tokens within a response changes neither s nor the loss.
	oo := mustNew(t, "gspo", map[string]string{"eps_low": "0.2", "eps_high": "0.2"})
	r = rowsBatch([]int{4, 3, 2}, []float64{1, 0, 0}, []int{0, 0, 0})
	for i := range r.LogP {
		for j := range r.LogP[i] {
			r.LogP[i][j] += 0.1 * rng.NormFloat64()
		}
	}
	r.Advantages = advOf(t, oo, r)
	l1 := lossOf(t, oo, r).Loss
	for i, n := range []int{4, 3, 2} {
		for a, z := 0, n-1; a < z; a, z = a+1, z-1 {
			r.LogP[i][a], r.LogP[i][z] = r.LogP[i][z], r.LogP[i][a]
		}
	}
	if l2 := lossOf(t, oo, r).Loss; !near(l1, l2, exact) || l1 == 0 {
		t.Errorf("permuted loss %.12g, want %.12g (non-zero)", l2, l1)
	}
	// 4: doubling every token log-ratio doubles the sequence log-ratio.
	q := rowsBatch([]int{2}, []float64{0}, []int{0})
	q.Advantages = [][]float64{{1, 1}}
	q.LogP[0][0], q.LogP[0][1] = -0.8, -1.6
	m1 := lossOf(t, oo, q).Metrics["ratio_mean"]
	q.LogP[0][0], q.LogP[0][1] = -0.6, -2.2
	if m2 := lossOf(t, oo, q).Metrics["ratio_mean"]; !near(math.Log(m2), 2*math.Log(m1), exact) {
		t.Errorf("log s after doubling %g, want %g", math.Log(m2), 2*math.Log(m1))
	}
}

// TestGSPOTokenEqualsGSPO: §10.2 — with A[i,t] = A_i, gspo_token equals gspo in value and gradient
// (here off-policy, with a range wide enough that rows are active).
func TestGSPOTokenEqualsGSPO(t *testing.T) {
	over := map[string]string{"eps_low": "0.1", "eps_high": "0.1"}
	g, gt := mustNew(t, "gspo", over), mustNew(t, "gspo_token", over)
	b := randomBatch(rand.New(rand.NewPCG(4, 4)), 8, 6, 4)
	b.Advantages = advOf(t, g, b)
	r1, r2 := lossOf(t, g, b), lossOf(t, gt, b)
	if !near(r1.Loss, r2.Loss, exact) {
		t.Errorf("loss %g vs %g", r1.Loss, r2.Loss)
	}
	for i := range r1.GradLogP {
		assertVec(t, "gspo_token grad", r2.GradLogP[i], r1.GradLogP[i], exact)
	}
	// Per-token advantages: g[i,t] = -(1/B')(1/L_i)·A[i,t]·s_i where active.
	c := rowsBatch([]int{2}, []float64{0}, []int{0})
	c.Advantages = [][]float64{{1, -2}}
	res := lossOf(t, gt, c)
	assertVec(t, "gspo_token per-token A", res.GradLogP[0], []float64{-0.5, 1}, exact)
}

func TestBNGSPO(t *testing.T) {
	b := rowsBatch([]int{1, 1, 1, 1, 1, 1, 1, 1}, []float64{1, 0, 0, 0, 1, 1, 1, 1}, []int{0, 0, 0, 0, 1, 1, 1, 1})
	a := rowAdv(advOf(t, mustNew(t, "bn_gspo", nil), b))
	z1, z2 := 0.75/(0.5+1e-6), -0.25/(0.5+1e-6)
	ps := math.Sqrt((z1*z1 + 3*z2*z2) / 8)
	d := ps + 1e-9
	assertVec(t, "bn_gspo", a, []float64{z1 / d, z2 / d, z2 / d, z2 / d, 0, 0, 0, 0}, exact)
	assertVec(t, "bn_gspo spec", a, []float64{2.449490, -0.816497, -0.816497, -0.816497, 0, 0, 0, 0}, 1e-5)
}

func TestSAPO(t *testing.T) {
	// Gate values and effective weights w = 4z(1-z)ρ.
	for _, c := range []struct {
		rho, tau float64
		f, w     float64 // spec, 6 digits; f < 0 means not given
	}{
		{1, 1, 2, 1}, {1, 1.05, 2 / 1.05, 1},
		{1.5, 1, 2.489837, 1.410022}, {2, 1, -1, 1.572895}, {5, 1, -1, 0.353254},
		{0.5, 1.05, 1.415938, 0.467070}, {1.5, 1.05, -1, 1.401210},
	} {
		f, df := SAPOGate(c.rho, c.tau)
		z := sigmoid(c.tau * (c.rho - 1))
		if !near(f, 4/c.tau*z, exact) || !near(df*c.rho, 4*z*(1-z)*c.rho, exact) {
			t.Errorf("gate closed form mismatch at ρ=%g τ=%g", c.rho, c.tau)
		}
		if (c.f >= 0 && !near(f, c.f, specTol)) || !near(df*c.rho, c.w, specTol) {
			t.Errorf("ρ=%g τ=%g: f %.7g w %.7g, want %.7g %.7g", c.rho, c.tau, f, df*c.rho, c.f, c.w)
		}
	}
	// Monotone and bounded by 4/τ.
	prev := 0.0
	for x := 0.0; x < 50; x += 0.25 {
		f, _ := SAPOGate(x, 1.05)
		if f < prev || f > 4/1.05 {
			t.Fatalf("gate not monotone/bounded at %g: %g", x, f)
		}
		prev = f
	}
	// On-policy SAPO = on-policy GRPO (SMTM); A = 0 → zero gradient; A<0 uses tau_neg.
	rng := rand.New(rand.NewPCG(2, 2))
	b := randomBatch(rng, 8, 6, 4)
	b.LogP = clone2(b.OldLogP)
	o := mustNew(t, "sapo", nil)
	b.Advantages = advOf(t, o, b)
	g1, g2 := lossOf(t, o, b), lossOf(t, mustNew(t, "grpo", map[string]string{"beta": "0"}), b)
	for i := range g1.GradLogP {
		assertVec(t, "on-policy sapo vs grpo", g1.GradLogP[i], g2.GradLogP[i], exact)
	}
	c := rowsBatch([]int{1}, []float64{0}, []int{0})
	c.LogP[0][0] = -1 + math.Log(0.5)
	c.Advantages = [][]float64{{-1}}
	z := sigmoid(1.05 * -0.5)
	if g := lossOf(t, o, c).GradLogP[0][0]; !near(g, 4*z*(1-z)*0.5, exact) {
		t.Errorf("A<0 grad %g, want %g", g, 4*z*(1-z)*0.5)
	}
	c.Advantages = [][]float64{{0}}
	if g := lossOf(t, o, c).GradLogP[0][0]; g != 0 {
		t.Errorf("A=0 grad %g", g)
	}
}

func TestCISPO(t *testing.T) {
	// ρ = 2 with A = +1: weight clipped to 1.28 but the token keeps its gradient; ρ = 0.5, A = -1: the
	// default eps_low = 1 puts no lower bound on the weight.
	b := rowsBatch([]int{2}, []float64{0}, []int{0})
	b.LogP[0][0], b.LogP[0][1] = -1+math.Log(2), -1+math.Log(0.5)
	b.Advantages = [][]float64{{1, -1}}
	res := lossOf(t, mustNew(t, "cispo", nil), b)
	assertVec(t, "cispo grad", res.GradLogP[0], []float64{-1.28 / 2, 0.5 / 2}, exact)
	assertVec(t, "cispo loss", []float64{res.Loss}, []float64{(-1.28*b.LogP[0][0] + 0.5*b.LogP[0][1]) / 2}, exact)
	if res.Metrics["clip_frac_high"] != 0.5 {
		t.Errorf("clip_frac_high %g, want 0.5", res.Metrics["clip_frac_high"])
	}
}

func TestMetrics(t *testing.T) {
	// Tokens: ρ = 1.5 with A=+1 (clipped high), ρ = 0.5 with A=-1 (clipped low), ρ = 5 with A=-1
	// (dual-clipped at c=3), ρ = 1 with A = 1; group 1 has all-zero advantages.
	b := &Batch{
		Mask:       [][]float64{{1, 1}, {1, 1}, {1, 0}},
		OldLogP:    [][]float64{{0, 0}, {0, 0}, {0, 0}},
		LogP:       [][]float64{{math.Log(1.5), math.Log(0.5)}, {math.Log(5), 0}, {0, 0}},
		Advantages: [][]float64{{1, -1}, {-1, 1}, {0, 0}},
		Group:      []int{0, 0, 1},
	}
	res := lossOf(t, mustNew(t, "ppo", nil), b)
	want := map[string]float64{"clip_frac_low": 0.2, "clip_frac_high": 0.2, "clip_frac_dual": 0.2,
		"ratio_min": 0.5, "ratio_max": 5, "ratio_mean": 9.0 / 5, "zero_adv_groups_frac": 0.5, "tokens": 5}
	for k, v := range want {
		if !near(res.Metrics[k], v, exact) {
			t.Errorf("metric %s = %g, want %g", k, res.Metrics[k], v)
		}
	}
}
