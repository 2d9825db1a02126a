package objective

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestBNPO(t *testing.T) {
	// 1: q1 [1,0,0,0] (p = 0.25), q2 [1,1,1,0] (p = 0.75) → α = β = 7/6, f(0.25) = 1.046600.
	o := mustNew(t, "bnpo", nil)
	b := rowsBatch([]int{1, 1, 1, 1, 1, 1, 1, 1}, []float64{1, 0, 0, 0, 1, 1, 1, 0}, []int{0, 0, 0, 0, 1, 1, 1, 1})
	a := rowAdv(advOf(t, o, b))
	f := BetaPDF(0.25, 7.0/6, 7.0/6)
	lg := func(x float64) float64 { v, _ := math.Lgamma(x); return v }
	fExact := math.Exp((1.0/6)*math.Log(0.25*0.75) + lg(7.0/3) - 2*lg(7.0/6))
	if !near(f, fExact, exact) || !near(f, 1.046600, specTol) {
		t.Errorf("f(0.25; 7/6, 7/6) = %.9g, want %.9g (1.046600)", f, fExact)
	}
	assertVec(t, "bnpo", a, []float64{0.75 / f, -0.25 / f, -0.25 / f, -0.25 / f, 0.25 / f, 0.25 / f, 0.25 / f, -0.75 / f}, exact)
	assertVec(t, "bnpo spec", a, []float64{0.716606, -0.238869, -0.238869, -0.238869, 0.238869, 0.238869, 0.238869, -0.716606}, specTol)
	// 2: groups sum to 0.
	if s := a[0] + a[1] + a[2] + a[3]; math.Abs(s) > exact {
		t.Errorf("group sum %g", s)
	}
	// 3: Beta(1.5,1.5) at 0.25 = (8/π)·sqrt(0.1875).
	if g := BetaPDF(0.25, 1.5, 1.5); !near(g, 8/math.Pi*math.Sqrt(0.1875), exact) || !near(g, 1.102658, specTol) {
		t.Errorf("Beta(1.5,1.5) pdf %g", g)
	}
	// 4: an all-correct group gets 0 (no NaN), 5: α = β = 1 reproduces x - p.
	c := rowsBatch([]int{1, 1, 1, 1, 1, 1}, []float64{1, 1, 1, 1, 0, 0}, []int{0, 0, 0, 1, 1, 1})
	for i, v := range rowAdv(advOf(t, o, c))[:3] {
		if v != 0 {
			t.Errorf("all-correct group A[%d] = %g", i, v)
		}
	}
	if g := BetaPDF(1, 1, 7.0/6); g != 0 {
		t.Errorf("pdf at the boundary: %g, want 0", g)
	}
	if g := BetaPDF(0, 1, 2); !near(g, 2, exact) {
		t.Errorf("Beta(1,2) at 0 with 0·log0 = 0: %g, want 2", g)
	}
	// m(1-m)/v ≤ 1 ⇒ α = β = 1: q1 p=0, q2 p=1 → x - p (zero), q3 p = 0.5.
	d := rowsBatch([]int{1, 1, 1, 1, 1, 1}, []float64{0, 0, 1, 1, 1, 0}, []int{0, 0, 1, 1, 2, 2})
	assertVec(t, "alpha=beta=1", rowAdv(advOf(t, o, d)), []float64{0, 0, 0, 0, 0.5, -0.5}, exact)
	// Decomposition: the average of per-component advantages.
	e := rowsBatch([]int{1, 1, 1, 1, 1, 1, 1, 1}, []float64{0, 0, 0, 0, 0, 0, 0, 0}, []int{0, 0, 0, 0, 1, 1, 1, 1})
	e.RewardComponents = [][]float64{{1, 1}, {0, 1}, {0, 1}, {0, 0}, {1, 1}, {1, 1}, {1, 0}, {0, 1}}
	dec := rowAdv(advOf(t, mustNew(t, "bnpo", map[string]string{"decompose": "true"}), e))
	x0 := BNPOAdvantages([]float64{1, 0, 0, 0, 1, 1, 1, 0}, e.Group, e.Mask)
	x1 := BNPOAdvantages([]float64{1, 1, 1, 0, 1, 1, 0, 1}, e.Group, e.Mask)
	for i := range dec {
		if !near(dec[i], (x0[i]+x1[i])/2, exact) {
			t.Errorf("decomposed A[%d] = %g, want %g", i, dec[i], (x0[i]+x1[i])/2)
		}
	}
}

func TestDisCO(t *testing.T) {
	// 1: rewards [1,1,0,0], logL scores [-0.5, -1.0, -0.8, -2.0] (one token per row).
	b := &Batch{Mask: [][]float64{{1}, {1}, {1}, {1}}, LogP: [][]float64{{-0.5}, {-1}, {-0.8}, {-2}},
		OldLogP: [][]float64{{-0.5}, {-1}, {-0.8}, {-2}}, Rewards: []float64{1, 1, 0, 0}, Group: []int{0, 0, 0, 0}}
	basic := lossOf(t, mustNew(t, "disco", map[string]string{"objective": "basic"}), b)
	if !near(-basic.Loss, 0.65, exact) {
		t.Errorf("DisCO-b J = %g, want 0.65", -basic.Loss)
	}
	dro := lossOf(t, mustNew(t, "disco", nil), b)
	jExact := -0.75 - 10*math.Log((math.Exp(-0.08)+math.Exp(-0.2))/2)
	if !near(-dro.Loss, jExact, exact) || !near(-dro.Loss, 0.632011, specTol) {
		t.Errorf("DisCO J = %.9g, want %.9g (0.632011)", -dro.Loss, jExact)
	}
	w1 := math.Exp(-0.08) / (math.Exp(-0.08) + math.Exp(-0.2))
	assertVec(t, "disco grads", []float64{dro.GradLogP[0][0], dro.GradLogP[1][0], dro.GradLogP[2][0], dro.GradLogP[3][0]},
		[]float64{-0.5, -0.5, w1, 1 - w1}, exact)
	assertVec(t, "negative weights", []float64{w1, 1 - w1}, []float64{0.529964, 0.470036}, specTol)
	// 2: an all-correct question contributes nothing but counts in Q.
	b2 := &Batch{Mask: [][]float64{{1}, {1}, {1}, {1}, {1}, {1}}, LogP: [][]float64{{-0.5}, {-1}, {-0.8}, {-2}, {-1}, {-3}},
		OldLogP: [][]float64{{-0.5}, {-1}, {-0.8}, {-2}, {-1}, {-3}}, Rewards: []float64{1, 1, 0, 0, 1, 1}, Group: []int{0, 0, 0, 0, 1, 1}}
	r2 := lossOf(t, mustNew(t, "disco", map[string]string{"objective": "basic"}), b2)
	if !near(-r2.Loss, 0.65/2, exact) || r2.GradLogP[4][0] != 0 || !near(r2.GradLogP[0][0], -0.25, exact) {
		t.Errorf("Q counts all questions: J = %g, grads %v", -r2.Loss, r2.GradLogP)
	}
	// 3: τ → ∞ ⇒ DisCO → DisCO-b; τ → 0 ⇒ only the top negative gets weight.
	big := lossOf(t, mustNew(t, "disco", map[string]string{"tau": "1e7"}), b)
	if !near(big.Loss, basic.Loss, 1e-7) {
		t.Errorf("large tau: %g vs basic %g", big.Loss, basic.Loss)
	}
	small := lossOf(t, mustNew(t, "disco", map[string]string{"tau": "1e-3"}), b)
	if !near(small.GradLogP[2][0], 1, 1e-9) || small.GradLogP[3][0] > 1e-12 {
		t.Errorf("small tau negative grads %g %g", small.GradLogP[2][0], small.GradLogP[3][0])
	}
	// 4: the constraint: D = 2e-4 > δ = 1e-4 with β = 1e3 → multiplier 0.1; D ≤ δ → inactive.
	c := &Batch{Mask: [][]float64{{1, 1}}, OldLogP: [][]float64{{-1, -1}}, LogP: [][]float64{{-1 - 2e-4, -1 - 2e-4}},
		Rewards: []float64{1}, Group: []int{0}}
	rc := lossOf(t, mustNew(t, "disco", nil), c)
	if !near(rc.Metrics["disco_penalty_mult"], 0.1, 1e-9) || !near(rc.GradLogP[0][0], 0.1*-0.5, 1e-9) {
		t.Errorf("penalty multiplier %g grad %g, want 0.1 and -0.05", rc.Metrics["disco_penalty_mult"], rc.GradLogP[0][0])
	}
	c.LogP = [][]float64{{-1 - 5e-5, -1 - 5e-5}}
	if rc := lossOf(t, mustNew(t, "disco", nil), c); rc.GradLogP[0][0] != 0 {
		t.Errorf("inactive penalty: grad %g", rc.GradLogP[0][0])
	}
	// 5: no clipping — far off-policy ratios still get gradient (Lratio: ds/dlogp = ρ/L).
	d := &Batch{Mask: [][]float64{{1}, {1}}, OldLogP: [][]float64{{-1}, {-1}}, LogP: [][]float64{{-1 + math.Log(5)}, {-1 + math.Log(0.1)}},
		Rewards: []float64{1, 0}, Group: []int{0, 0}}
	rd := lossOf(t, mustNew(t, "disco", map[string]string{"score": "Lratio", "beta": "0"}), d)
	assertVec(t, "Lratio unclipped", []float64{rd.GradLogP[0][0], rd.GradLogP[1][0]}, []float64{-5, 0.1}, exact)
	// Non-binary rewards are rejected.
	d.Rewards = []float64{1, 0.5}
	if _, err := mustNew(t, "disco", nil).Loss(d); err == nil {
		t.Error("non-binary rewards accepted")
	}
}

func TestGTPO(t *testing.T) {
	// 1/2: o1 (A>0) [5,7,9,2], o2 (A<0) [5,7,3,2]; r = [1,0], H̄ = [0.3, 0.5].
	b := rowsBatch([]int{4, 4}, []float64{1, 0}, []int{0, 0})
	b.TokenIDs = [][]int{{5, 7, 9, 2}, {5, 7, 3, 2}}
	b.Entropy = [][]float64{{0.3, 0.3, 0.3, 0.3}, {0.5, 0.5, 0.5, 0.5}}
	lam, nconf := ConflictWeights(b.TokenIDs, b.Mask, []float64{1, -1}, b.Group, 2, false)
	assertVec(t, "λ(o1)", lam[0], []float64{2, 2, 1, 2}, exact)
	assertVec(t, "λ(o2)", lam[1], []float64{0, 0, 1, 0}, exact)
	assertVec(t, "n_conf", nconf, []float64{3, 3}, exact)
	o := mustNew(t, "gtpo", nil)
	b.Advantages = advOf(t, o, b)
	a := 0.5 / (math.Sqrt(0.5) + 1e-6)
	ap, an := a-0.03, -a-0.05
	assertVec(t, "shaped A spec", []float64{ap, an}, []float64{0.677106, -0.757106}, specTol)
	res := lossOf(t, o, b)
	assertVec(t, "gtpo o1", res.GradLogP[0], []float64{-ap * 2 / 8, -ap * 2 / 8, -ap / 8, -ap * 2 / 8}, exact)
	assertVec(t, "gtpo o1 spec", res.GradLogP[0], []float64{-0.169277, -0.169277, -0.084638, -0.169277}, specTol)
	assertVec(t, "gtpo o2", res.GradLogP[1], []float64{0, 0, -an / 8, 0}, exact)
	assertVec(t, "gtpo o2 spec", res.GradLogP[1], []float64{0, 0, 0.094638, 0}, specTol)
	// 3: H̄ > 0.7 ⇒ the row contributes nothing (unless h_ini says the model started above it).
	b.Entropy[1] = []float64{0.8, 0.8, 0.8, 0.8}
	if adv := advOf(t, o, b); adv[1][2] != 0 {
		t.Errorf("high-entropy row advantage %g, want 0", adv[1][2])
	}
	if adv := advOf(t, mustNew(t, "gtpo", map[string]string{"h_ini": "1"}), b); !near(adv[1][2], -a-0.08, exact) {
		t.Errorf("h_ini above threshold: %g, want %g", adv[1][2], -a-0.08)
	}
	// Paper's "all shared positions" variant: position 3 (token 2) is shared forward too.
	lamAll, _ := ConflictWeights([][]int{{5, 1, 9, 2}, {5, 7, 3, 2}}, b.Mask, []float64{1, -1}, b.Group, 2, true)
	assertVec(t, "all-shared λ(o1)", lamAll[0], []float64{4, 1, 1, 4}, exact) // positions 0 and 3 are shared from both ends
	// 5: no shared tokens ⇒ λ ≡ 1 ⇒ on-policy GRPO/SMTM with the shaped advantage.
	lam1, _ := ConflictWeights([][]int{{1, 2, 3, 4}, {5, 6, 7, 8}}, b.Mask, []float64{1, -1}, b.Group, 2, false)
	assertVec(t, "no conflicts", append(lam1[0], lam1[1]...), []float64{1, 1, 1, 1, 1, 1, 1, 1}, exact)
	// repo_norm divides by n_conf.
	b.Entropy[1] = []float64{0.5, 0.5, 0.5, 0.5}
	if adv := advOf(t, mustNew(t, "gtpo", map[string]string{"repo_norm": "true"}), b); !near(adv[0][2], ap/3, exact) {
		t.Errorf("repo_norm: %g, want %g", adv[0][2], ap/3)
	}
}

func TestSPO(t *testing.T) {
	o := mustNew(t, "spo", nil).(*SPO)
	// 1: N0 = 8, k = 2 → N = 8, α0 = 2.222222, β0 = 5.777778, p̂ = 0.277778.
	if err := o.Init("q", 8, 2); err != nil {
		t.Fatal(err)
	}
	tr := o.Tracker("q")
	assertVec(t, "init", []float64{tr.Alpha, tr.Beta, tr.Value()}, []float64{8 * 2.5 / 9, 8 * 6.5 / 9, 2.5 / 9}, exact)
	assertVec(t, "init spec", []float64{tr.Alpha, tr.Beta, tr.Value()}, []float64{2.222222, 5.777778, 0.277778}, specTol)
	// Raw advantage before the update: 1 - 0.277778; normalisation over a batch of two.
	b := rowsBatch([]int{1, 1}, []float64{1, 0}, []int{0, 1})
	b.PromptID = []string{"q", "new"}
	a := rowAdv(advOf(t, o, b))
	raw := []float64{1 - 2.5/9, 0 - 0.5}
	mu, sd := mean(raw), std(raw, true)
	assertVec(t, "spo A", a, []float64{(raw[0] - mu) / (sd + 1e-8), (raw[1] - mu) / (sd + 1e-8)}, exact)
	if !near(raw[0], 0.722222, specTol) {
		t.Errorf("raw advantage %g", raw[0])
	}
	// D = 0.03: 2^(-0.5) = 0.707107 → clamped to 0.875 → α = 2.944444, β = 5.055556, p̂ = 0.368056.
	b.Drift = []float64{0.03, 0}
	stats, err := o.AfterBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	assertVec(t, "spo metrics", []float64{stats["spo_drift_mean"], stats["spo_forget_mean"]}, []float64{0.015, (0.875 + 0.96) / 2}, exact)
	tr = o.Tracker("q")
	assertVec(t, "update", []float64{tr.Alpha, tr.Beta, tr.Value()}, []float64{0.875*8*2.5/9 + 1, 0.875 * 8 * 6.5 / 9, (0.875*8*2.5/9 + 1) / (0.875*8 + 1)}, exact)
	assertVec(t, "update spec", []float64{tr.Alpha, tr.Beta, tr.Value()}, []float64{2.944444, 5.055556, 0.368056}, specTol)
	// 2: D = 0 → ρ = rho_max.
	if f := o.Forget(0); f != 0.96 {
		t.Errorf("forget(0) = %g, want 0.96", f)
	}
	// 3: α + β → 1/(1 - ρ) under repeated updates with fixed ρ.
	for range 500 {
		if _, err := o.AfterBatch(&Batch{Mask: [][]float64{{1}}, Rewards: []float64{1}, PromptID: []string{"z"}}); err != nil {
			t.Fatal(err)
		}
	}
	if z := o.Tracker("z"); !near(z.Alpha+z.Beta, 1/(1-0.96), 1e-6) {
		t.Errorf("effective sample size %g, want %g", z.Alpha+z.Beta, 25.0)
	}
	// 4: sampling weight 0.55 at p̂ = 0.5, 0.05 at p̂ → 0 or 1.
	if w := o.SampleWeight("never-seen"); !near(w, 0.55, exact) {
		t.Errorf("weight at 0.5: %g", w)
	}
	o.tracker["sure"] = &BetaTracker{1, 0}
	if w := o.SampleWeight("sure"); !near(w, 0.05, exact) {
		t.Errorf("weight at 1: %g", w)
	}
	// 5: a correct answer to an easy prompt (p̂ = 0.95) keeps raw advantage 0.05.
	o.tracker["easy"] = &BetaTracker{19, 1}
	if raw := 1 - o.Tracker("easy").Value(); !near(raw, 0.05, exact) {
		t.Errorf("raw advantage %g", raw)
	}
	// Prioritised sampling: uncertain prompts are drawn more often; no repeats within the pool size.
	rng := rand.New(rand.NewPCG(1, 1))
	count := map[string]int{}
	for range 2000 {
		for _, p := range o.SamplePrompts([]string{"never-seen", "sure"}, 1, rng) {
			count[p]++
		}
	}
	if f := float64(count["never-seen"]) / 2000; math.Abs(f-0.55/0.6) > 0.03 {
		t.Errorf("sampling frequency %g, want about %g", f, 0.55/0.6)
	}
	if ps := o.SamplePrompts([]string{"a", "b", "c"}, 3, rng); ps[0] == ps[1] || ps[1] == ps[2] || ps[0] == ps[2] {
		t.Errorf("sampled with replacement: %v", ps)
	}
	// State survives a checkpoint.
	st, err := o.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	o2 := mustNew(t, "spo", nil).(*SPO)
	if err := o2.UnmarshalState(st); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"q", "z", "easy", "sure"} {
		if o2.Tracker(p) != o.Tracker(p) {
			t.Errorf("tracker %s after restore %v, want %v", p, o2.Tracker(p), o.Tracker(p))
		}
	}
	if err := o2.UnmarshalState([]byte(`[{"prompt":"x","alpha":0,"beta":0}]`)); err == nil {
		t.Error("invalid state accepted")
	}
}

func TestSegmentSPO(t *testing.T) {
	lp := func(ps ...float64) []float64 {
		out := make([]float64, len(ps))
		for i, p := range ps {
			out[i] = math.Log(p)
		}
		return out
	}
	o := mustNew(t, "segment_spo", nil)
	for _, c := range []struct {
		probs  []float64
		r      float64
		cuts   []int
		values []float64
		want   []float64
	}{
		{[]float64{0.5, 0.95, 0.6, 0.99}, 0, []int{-1, 1}, []float64{0.5, 0.25}, []float64{-0.25, 0, -0.25, 0}},
		{[]float64{0.95, 0.5, 0.99, 0.3, 0.97}, 1, []int{0, 2}, []float64{0.4, 0.7}, []float64{0, 0.3, 0, 0.3, 0}},
	} {
		mask := make([]float64, len(c.probs))
		for i := range mask {
			mask[i] = 1
		}
		if c.cuts[0] == -1 { // cutpoints from the probabilities with interval 1
			got := Cutpoints(lp(c.probs...), mask, 0.9, 1)
			assertVec(t, "cutpoints", []float64{float64(got[0]), float64(got[1])}, []float64{-1, 1}, exact)
		}
		var segs []Segment
		for k, e := range c.cuts {
			segs = append(segs, Segment{End: e, Value: c.values[k]})
		}
		b := &Batch{Mask: [][]float64{mask}, OldLogP: [][]float64{lp(c.probs...)}, Rewards: []float64{c.r}, Segments: [][]Segment{segs}}
		a := advOf(t, o, b)
		assertVec(t, "segment advantages", a[0], c.want, exact)
		sel, err := o.(Selector).Select(b, a)
		if err != nil {
			t.Fatal(err)
		}
		for j, p := range c.probs {
			if want := map[bool]float64{true: 1, false: 0}[p <= 0.9]; sel.Mask[0][j] != want {
				t.Errorf("probability mask[%d] = %g, want %g", j, sel.Mask[0][j], want)
			}
		}
	}
	// Unmasked advantages of example 1 before the probability mask; telescoping sum = r - V(prompt).
	adv, _ := SegmentAdvantages([]Segment{{End: -1, Value: 0.5}, {End: 1, Value: 0.25}}, []float64{1, 1, 1, 1}, 0)
	assertVec(t, "before mask", adv, []float64{-0.25, -0.25, -0.25, -0.25}, exact)
	adv, _ = SegmentAdvantages([]Segment{{End: -1, Value: 0.5}, {End: 0, Value: 0.9}, {End: 2, Value: 0.1}}, []float64{1, 1, 1, 1, 1}, 1)
	if s := adv[0] + adv[2] + adv[4]; !near(s, 1-0.5, exact) {
		t.Errorf("telescoping %g, want 0.5", s)
	}
	// 3: no token below 0.9 → no cutpoints → advantage 0 everywhere.
	if cp := Cutpoints(lp(0.95, 0.99), []float64{1, 1}, 0.9, 5); len(cp) != 0 {
		t.Errorf("cutpoints %v, want none", cp)
	}
	adv, _ = SegmentAdvantages(nil, []float64{1, 1}, 1)
	assertVec(t, "no cutpoints", adv, []float64{0, 0}, exact)
	// Interval 2 keeps every second candidate.
	cp := Cutpoints(lp(0.5, 0.5, 0.5, 0.5, 0.5), []float64{1, 1, 1, 1, 1}, 0.9, 2)
	assertVec(t, "interval 2", []float64{float64(cp[0]), float64(cp[1]), float64(cp[2])}, []float64{-1, 1, 3}, exact)
	// SPO-tree: children [1, 0, 0.5] → [0.5, -0.5, 0], third edge dropped.
	ta, keep := TreeAdvantages([]float64{1, 0, 0.5}, "rloo")
	assertVec(t, "tree", ta, []float64{0.5, -0.5, 0}, exact)
	if !keep[0] || !keep[1] || keep[2] {
		t.Errorf("tree keep %v", keep)
	}
}

func TestHAPO(t *testing.T) {
	// 1: entropies [0.1, 0.5, 1, 2, 4] → pivot ln 2, RMS 1.539944.
	ent := []float64{0.1, 0.5, 1, 2, 4}
	hh := HAPOEntropyNorm(ent, 0.8, false)
	l := []float64{math.Log(0.1), math.Log(0.5), 0, math.Log(2), math.Log(4)}
	var ms float64
	for _, v := range l {
		ms += (v - math.Log(2)) * (v - math.Log(2))
	}
	rms := math.Sqrt(ms / 5)
	h := make([]float64, 5)
	for i := range l {
		h[i] = (l[i] - math.Log(2)) / rms
	}
	if !near(rms, 1.539944, specTol) {
		t.Errorf("rms %g", rms)
	}
	assertVec(t, "h spec", h, []float64{-1.945352, -0.900224, -0.450112, 0, 0.450112}, specTol)
	assertVec(t, "hhat", hh, []float64{-1, h[1] / -h[0], h[2] / -h[0], 0, 1}, exact)
	assertVec(t, "hhat spec", hh, []float64{-1, -0.462756, -0.231378, 0, 1}, specTol)
	assertVec(t, "hhat repo sign", HAPOEntropyNorm(ent, 0.8, true), []float64{1, 0.462756, 0.231378, 0, 1}, specTol)
	// 3: temperature.
	if a, b := HAPOTemperature(1, 1, 0.05), HAPOTemperature(1, -1, 0.05); !near(a, 1.05, exact) || !near(b, 0.95, exact) {
		t.Errorf("temperatures %g %g", a, b)
	}
	// 4: token-level group average, r = [1,0], L = [1,3] → 0.75/(σ+1e-6), σ = sqrt(0.1875).
	o := mustNew(t, "hapo", nil)
	b := rowsBatch([]int{1, 3}, []float64{1, 0}, []int{0, 0})
	a := rowAdv(advOf(t, o, b))
	sd := math.Sqrt(0.1875) + 1e-6
	assertVec(t, "token-level group average", a, []float64{0.75 / sd, -0.25 / sd}, exact)
	assertVec(t, "token-level spec", a, []float64{1.732047, -0.577349}, specTol)
	// Fallback to GRPO when some |A| ≥ 5: r = [1,0,...,0] over 1 + 40 tokens.
	f := rowsBatch([]int{1, 40}, []float64{1, 0}, []int{0, 0})
	assertVec(t, "fallback", rowAdv(advOf(t, o, f)), rowAdv(advOf(t, mustNew(t, "grpo", nil), f)), exact)
	// 2 and 5 through the loss: 5 tokens with the entropies above, each with A = +1 or -1 and a chosen ρ.
	// token 0 (ĥ = -1): eps_low' = 0.4 → lower bound 0.6; ρ = 0.65, A = -1: active, and ρ is outside
	//   N = (0.8, 1.1) so A' = A → g = 0.65/5.
	// token 4 (ĥ = 1): eps_high' = 0.4 → upper 1.4; ρ = 1.3, A = +1: active; outside N = (0.9, 1.2) →
	//   A' = 2A → g = -2·1.3/5. ρ = 1.0 (inside N) → A' = A.
	// token 3 (ĥ = 0): inside N=(0.9,1.1) at ρ = 1 → A' = A(1 + 0) = A.
	c := &Batch{Mask: [][]float64{{1, 1, 1, 1, 1}}, OldLogP: [][]float64{{-1, -1, -1, -1, -1}},
		LogP:       [][]float64{{-1 + math.Log(0.65), -1, -1, -1, -1 + math.Log(1.3)}},
		Advantages: [][]float64{{-1, 1, 1, 1, 1}}, Entropy: [][]float64{ent}}
	res := lossOf(t, o, c)
	w1, w2 := 1+hh[1], 1+hh[2] // tokens 1, 2: ĥ<0 and ρ=1 inside N → A' = A(1 + ĥ)
	assertVec(t, "hapo grads", res.GradLogP[0], []float64{0.65 / 5, -w1 / 5, -w2 / 5, -1.0 / 5, -2 * 1.3 / 5}, exact)
	c.LogP[0][4] = -1
	if g := lossOf(t, o, c).GradLogP[0][4]; !near(g, -1.0/5, exact) {
		t.Errorf("ĥ=1 inside N: grad %g, want -0.2", g)
	}
	c.LogP[0][4] = -1 + math.Log(1.45) // beyond the widened bound 1.4: clipped
	if g := lossOf(t, o, c).GradLogP[0][4]; g != 0 {
		t.Errorf("ĥ=1 beyond 1.4: grad %g, want 0", g)
	}
	// Component A: after a rollout batch with the entropies above, the next rollout samples a token
	// at T·(1 + ĥ·tau_t) with ĥ from that batch's statistics (spec test 3: 1.05 and 0.95); before any
	// batch, and with tau_t = 0, the temperature is the base one (nil rule). The statistics are state.
	ho := o.(*HAPO)
	if ho.TokenTemperature(1) != nil {
		t.Fatal("temperature rule before any rollout batch")
	}
	stats, err := ho.AfterBatch(&Batch{Mask: [][]float64{{1, 1, 1, 1, 1}}, Entropy: [][]float64{ent}})
	if err != nil || !near(stats["hapo_pivot"], math.Log(2), exact) || !near(stats["hapo_rms"], rms, exact) {
		t.Fatalf("after batch: %v %v", stats, err)
	}
	temp := ho.TokenTemperature(1)
	assertVec(t, "token temperatures", []float64{temp(4), temp(0.1), temp(1), temp(2), temp(100), temp(1e-9)},
		[]float64{1.05, 0.95, 1 + 0.05*hh[2], 1, 1.05, 0.95}, exact)
	if got := ho.TokenTemperature(0.5)(4); !near(got, 0.525, exact) {
		t.Errorf("base 0.5, ĥ = 1: %g, want 0.525", got)
	}
	data, _ := ho.MarshalState()
	ho2 := mustNew(t, "hapo", nil).(*HAPO)
	if err := ho2.UnmarshalState(data); err != nil || ho2.TokenTemperature(1)(1) != temp(1) {
		t.Errorf("restored state: %v", err)
	}
	if mustNew(t, "hapo", map[string]string{"tau_t": "0"}).(*HAPO).TokenTemperature(1) != nil {
		t.Error("tau_t = 0 still sets temperatures")
	}
}

func TestLpReg(t *testing.T) {
	// 1: proxy of [0.6, 0.3, 0.09, 0.01] with κ = 0.02.
	p := MinPProxy([]float64{0.6, 0.3, 0.09, 0.01}, 0.02, false)
	assertVec(t, "proxy", p, []float64{0.6 / 0.99, 0.3 / 0.99, 0.09 / 0.99, 0}, exact)
	assertVec(t, "proxy spec", p, []float64{0.606061, 0.303030, 0.090909, 0}, specTol)
	if v := MinPProxyLogP([]float64{0.6, 0.3, 0.09, 0.01}, 3, 0.02, false); !math.IsInf(v, -1) {
		t.Errorf("filtered token proxy logp %g, want -Inf", v)
	}
	// 2: token with current prob 0.08 and proxy 0.090909 → k3 = 0.008530, dk3/dlogp = -0.136364.
	lp, lq := math.Log(0.08), math.Log(0.09/0.99)
	k3, dk := KL(KLk3, lp, lq)
	assertVec(t, "k3", []float64{k3, dk}, []float64{0.08/(0.09/0.99)*0 + (0.09/0.99)/0.08 - math.Log((0.09/0.99)/0.08) - 1, 1 - (0.09/0.99)/0.08}, exact)
	assertVec(t, "k3 spec", []float64{k3, dk}, []float64{0.008530, -0.136364}, specTol)
	// Loss: 4 negative tokens, rho_neg = 0.5 → k = 2 lowest logp: tokens 0 and 1. Token 0 has proxy
	// above logp → regularised; token 1's proxy is -Inf → not. Token 4 is positive: untouched (rho_pos 0).
	o := mustNew(t, "lp_reg", map[string]string{"rho_neg": "0.5"})
	b := &Batch{Mask: [][]float64{{1, 1, 1, 1, 1}},
		OldLogP:    [][]float64{{lp, -3, -0.5, -0.4, -4}},
		LogP:       [][]float64{{lp, -3, -0.5, -0.4, -4}},
		ProxyLogP:  [][]float64{{lq, math.Inf(-1), -0.1, -0.1, -1}},
		Advantages: [][]float64{{-1, -1, -1, -1, 1}}}
	res := lossOf(t, o, b)
	assertVec(t, "lp_reg grads", res.GradLogP[0], []float64{(1 + dk) / 5, 1.0 / 5, 1.0 / 5, 1.0 / 5, -1.0 / 5}, exact)
	// 5: proxy_beta = 0 with the unclipped range is on-policy GRPO with token-mean.
	rng := rand.New(rand.NewPCG(8, 8))
	r := randomBatch(rng, 8, 6, 4)
	r.LogP = clone2(r.OldLogP)
	o0 := mustNew(t, "lp_reg", map[string]string{"proxy_beta": "0", "rho_neg": "0.5"})
	r.Advantages = advOf(t, o0, r)
	g1, g2 := lossOf(t, o0, r), lossOf(t, mustNew(t, "grpo", map[string]string{"beta": "0", "agg": "token-mean"}), r)
	for i := range g1.GradLogP {
		assertVec(t, "lp_reg beta=0 vs grpo", g1.GradLogP[i], g2.GradLogP[i], exact)
	}
}

func TestDCPO(t *testing.T) {
	o := mustNew(t, "dcpo", nil)
	d := &DCPO{H0: 0.5, THigh: 1.2, TLow: 0.8, cap: 0.1}
	// 1: H = 0.3, H0 = 0.5, p_corr = 0.25 → T = 1.2, a = 0.4, α = 0.285714.
	if tt := d.TargetTemperature(0.3); tt != 1.2 {
		t.Errorf("target temperature %g", tt)
	}
	al := d.Alpha(0.3, 0.25)
	if !near(al, 0.4/1.4, exact) || !near(al, 0.285714, specTol) {
		t.Errorf("alpha %g", al)
	}
	// Through the estimator: one correct of four, q = 1.1 on the correct response's token.
	b := rowsBatch([]int{1, 1, 1, 1}, []float64{1, 0, 0, 0}, []int{0, 0, 0, 0})
	b.MeanEntropy = 0.3
	b.TargetRatio = [][]float64{{1.1}, {0.9}, {0.9}, {0.9}}
	a := rowAdv(advOf(t, o, b))
	g := rowAdv(advOf(t, mustNew(t, "grpo", nil), b))
	assertVec(t, "dcpo A'", a, []float64{(1-al)*g[0] + al*1.1, (1 - al) * g[1], (1 - al) * g[2], (1 - al) * g[3]}, exact)
	// The spec's token examples with A = ±1.
	assertVec(t, "dcpo spec", []float64{(1-al)*1 + al*1.1, (1 - al) * -1}, []float64{1.028571, -0.714286}, specTol)
	// 2: H = H0 → α = 0 → GRPO; no correct answers → α = 0.
	b.MeanEntropy = 0.5
	assertVec(t, "H = H0", rowAdv(advOf(t, o, b)), g, exact)
	if d.Alpha(0.1, 0) != 0 {
		t.Error("alpha with no correct answers")
	}
	// 3: α ∈ [0, 1) for any inputs.
	rng := rand.New(rand.NewPCG(6, 6))
	for range 1000 {
		if x := d.Alpha(2*rng.Float64(), rng.Float64()+1e-9); x < 0 || x >= 1 {
			t.Fatalf("alpha %g outside [0,1)", x)
		}
	}
}

func TestGBPO(t *testing.T) {
	o := mustNew(t, "gbpo", nil)
	// 1: r = [1,0,0,0]: targets [1.2, 1, 1, 1]; on-policy row 1 loss 0.3, dl/dlogp = -1.5; others 0.
	b := rowsBatch([]int{1, 1, 1, 1}, []float64{1, 0, 0, 0}, []int{0, 0, 0, 0})
	tr, err := o.(BoundTargeter).BoundTargets(b)
	if err != nil {
		t.Fatal(err)
	}
	assertVec(t, "targets", rowAdv(tr), []float64{1.2, 1, 1, 1}, exact)
	b.Advantages = advOf(t, o, b)
	res := lossOf(t, o, b)
	a0 := 0.75 / (0.5 + 1e-6)
	// token-mean over 4 tokens: per-token loss |1 - 1.2|·|A|, gradient -|A|.
	if !near(res.Loss, 0.2*a0/4, exact) {
		t.Errorf("loss %g, want %g", res.Loss, 0.2*a0/4)
	}
	assertVec(t, "gbpo grads", rowAdv(res.GradLogP), []float64{-a0 / 4, 0, 0, 0}, exact)
	// With the trainer-supplied targets the result is the same.
	b.BoundTarget = tr
	if r2 := lossOf(t, o, b); r2.Loss != res.Loss {
		t.Errorf("with bound_target: %g vs %g", r2.Loss, res.Loss)
	}
	// 2: r = [1,1,0,0]: Ã = ±0.866024 → targets [1.2, 1.2, 0.8, 0.8].
	c := rowsBatch([]int{1, 1, 1, 1}, []float64{1, 1, 0, 0}, []int{0, 0, 0, 0})
	tr, _ = o.(BoundTargeter).BoundTargets(c)
	assertVec(t, "targets 2", rowAdv(tr), []float64{1.2, 1.2, 0.8, 0.8}, 1e-9)
	// 3: equal rewards ⇒ loss 0. 4: the loss is 0 at ρ = tr and grows on both sides.
	e := rowsBatch([]int{2, 2}, []float64{1, 1}, []int{0, 0})
	e.Advantages = advOf(t, o, e)
	if r := lossOf(t, o, e); r.Loss != 0 {
		t.Errorf("equal rewards loss %g", r.Loss)
	}
	f := rowsBatch([]int{1, 1, 1, 1}, []float64{1, 0, 0, 0}, []int{0, 0, 0, 0})
	f.Advantages = advOf(t, o, f)
	losses := map[float64]float64{}
	for _, rho := range []float64{1.1, 1.2, 1.3} {
		f.LogP[0][0] = -1 + math.Log(rho)
		losses[rho] = lossOf(t, o, f).Loss
	}
	if !(losses[1.2] < losses[1.1] && losses[1.2] < losses[1.3] && near(losses[1.2], 0, 1e-12)) {
		t.Errorf("losses around the target: %v", losses)
	}
}

func TestFiberPO(t *testing.T) {
	o := mustNew(t, "fiberpo", nil)
	rng := rand.New(rand.NewPCG(10, 10))
	b := randomBatch(rng, 8, 6, 4)
	b.LogP = clone2(b.OldLogP)
	b.Advantages = advOf(t, o, b)
	g1, g2 := lossOf(t, o, b), lossOf(t, mustNew(t, "grpo", map[string]string{"beta": "0"}), b)
	for i := range g1.GradLogP {
		assertVec(t, "on-policy fiberpo vs grpo", g1.GradLogP[i], g2.GradLogP[i], exact)
	}
	// Block-diagonal Jacobian: perturbing row 0 leaves every other row's gradient unchanged.
	for j := range b.LogP[0] {
		b.LogP[0][j] += 0.3 * rng.NormFloat64()
	}
	g3 := lossOf(t, o, b)
	for i := 1; i < len(b.LogP); i++ {
		assertVec(t, "other rows", g3.GradLogP[i], g1.GradLogP[i], exact)
	}
	// Gates: a row whose mean log-ratio exceeds delta_b is censored; a token residual beyond delta_f too.
	c := rowsBatch([]int{2}, []float64{0}, []int{0})
	c.Advantages = [][]float64{{1, 1}}
	c.LogP[0] = []float64{-0.7, -0.7} // u = 0.3 > 0.2
	if r := lossOf(t, o, c); r.GradLogP[0][0] != 0 || r.Metrics["clip_frac_high"] != 1 {
		t.Errorf("base gate: %v %v", r.GradLogP, r.Metrics)
	}
	c.LogP[0] = []float64{-0.75, -1.25} // u = 0, e = ±0.25 > 0.2
	if r := lossOf(t, o, c); r.GradLogP[0][0] != 0 || r.Metrics["clip_frac_low"] != 1 {
		t.Errorf("fibre gate: %v", r.GradLogP)
	}
	// sign_aware: the negative residual with A > 0 is moving back toward the region: kept.
	r := lossOf(t, mustNew(t, "fiberpo", map[string]string{"sign_aware": "true"}), c)
	if r.GradLogP[0][0] != 0 || !near(r.GradLogP[0][1], -math.Exp(-0.25)/2, exact) {
		t.Errorf("sign-aware grads %v", r.GradLogP)
	}
}

func TestOBLR(t *testing.T) {
	// (a) r = [1,0], w = [3,1] → b = 0.75, A = [0.25, -0.75]; (b) equal weights → mean baseline.
	b := rowsBatch([]int{1, 1}, []float64{1, 0}, []int{0, 0})
	b.GradWeight = []float64{3, 1}
	o := mustNew(t, "oblr", nil)
	assertVec(t, "oblr", rowAdv(advOf(t, o, b)), []float64{0.25, -0.75}, exact)
	b.GradWeight = []float64{2, 2}
	assertVec(t, "equal weights", rowAdv(advOf(t, o, b)), []float64{0.5, -0.5}, exact)
	b.Rewards, b.GradWeight = []float64{1, 0, 0.5}, []float64{1, 2, 3}
	b.Mask, b.OldLogP, b.LogP, b.Group = append(b.Mask, []float64{1}), append(b.OldLogP, []float64{-1}), append(b.LogP, []float64{-1}), []int{0, 0, 0}
	assertVec(t, "leave-one-out", rowAdv(advOf(t, mustNew(t, "oblr", map[string]string{"loo": "true"}), b)),
		[]float64{1 - 1.5/5, 0 - 2.5/4, 0.5 - 1.0/3}, exact)
	// (c) token proxy.
	if v := GradNormProxy(0.5, 0.3); !near(v, 0.3, exact) {
		t.Errorf("proxy %g", v)
	}
	if v := GradNormProxy(1, 1); v != 0 {
		t.Errorf("one-hot proxy %g", v)
	}
	// (d) SNR → ∞ ⇒ η → η_max; SNR → 0 ⇒ η → 0; a worked value.
	eta, _, _ := SNRLearningRate([][]float64{{1, 0}, {1, 0}}, 1e-6)
	if eta != 1e-6 {
		t.Errorf("noise-free eta %g", eta)
	}
	eta, _, _ = SNRLearningRate([][]float64{{1, 0}, {-1, 0}}, 1e-6)
	if eta != 0 {
		t.Errorf("pure-noise eta %g", eta)
	}
	// g = [2,0] and [0,0]: ḡ = [1,0], v = (1+1)/(2·1) = 1, S = max(1 - 1, 0) = 0; g = [3,0],[1,0]: ḡ=[2,0],
	// v = 1, S = 3, SNR = 3, η = 0.75·η_max.
	eta, snr, _ := SNRLearningRate([][]float64{{3, 0}, {1, 0}}, 1)
	if !near(snr, 3, exact) || !near(eta, 0.75, exact) {
		t.Errorf("snr %g eta %g, want 3 and 0.75", snr, eta)
	}
	if _, _, err := SNRLearningRate([][]float64{{1}}, 1); err == nil {
		t.Error("one gradient accepted")
	}
}

func TestD3S(t *testing.T) {
	// (a) values [0, 0.1, 0.4, 0.5, 0.9, 1.0], m = 3 → {0, 0.1, 1.0}, variance 0.202222; brute force agrees.
	vals := []float64{0, 0.1, 0.4, 0.5, 0.9, 1.0}
	popVar := func(idx []int) float64 {
		x := make([]float64, len(idx))
		for k, i := range idx {
			x[k] = vals[i]
		}
		s := std(x, false)
		return s * s
	}
	got := MaxVarianceSubset(vals, 3)
	assertVec(t, "subset", []float64{vals[got[0]], vals[got[1]], vals[got[2]]}, []float64{0, 0.1, 1.0}, exact)
	if !near(popVar(got), 0.202222, specTol) {
		t.Errorf("variance %g", popVar(got))
	}
	best := 0.0
	for a := 0; a < 6; a++ {
		for b := a + 1; b < 6; b++ {
			for c := b + 1; c < 6; c++ {
				best = math.Max(best, popVar([]int{a, b, c}))
			}
		}
	}
	if !near(best, popVar(got), 1e-12) {
		t.Errorf("brute force %g vs %g", best, popVar(got))
	}
	// (b) binary rewards, m = 4 → two 1s and two 0s.
	bin := []float64{1, 1, 1, 0, 0, 0, 0, 0}
	var s float64
	for _, i := range MaxVarianceSubset(bin, 4) {
		s += bin[i]
	}
	if s != 2 {
		t.Errorf("binary subset has %g ones, want 2", s)
	}
	// (c) keep ratios 1 ⇒ the host algorithm: every row and token kept.
	o := mustNew(t, "d3s", map[string]string{"smp_keep0": "1", "tok_keep0": "1"})
	rng := rand.New(rand.NewPCG(12, 12))
	b := randomBatch(rng, 8, 6, 4)
	adv := advOf(t, o, b)
	sel, err := o.(Selector).Select(b, adv)
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range b.Mask {
		if !sel.Keep[i] {
			t.Errorf("row %d dropped at keep ratio 1", i)
		}
		assertVec(t, "token mask", sel.Mask[i], row, exact)
	}
	// (d) tokens with A = 0 or H = 0 go first; schedule ramps to 1.
	c := rowsBatch([]int{4}, []float64{0}, []int{0})
	c.Entropy = [][]float64{{0.5, 0, 1, 2}}
	d := D3S{Smp0: 1, Tok0: 0.5, Ramp: 10, Schedule: "linear"}
	sel, _ = d.Select(c, [][]float64{{1, 1, 0, -1}})
	assertVec(t, "token selection", sel.Mask[0], []float64{1, 0, 0, 1}, exact)
	for _, c := range []struct {
		step int
		want float64
	}{{1, 0.5}, {6, 0.75}, {11, 1}, {50, 1}} {
		if _, k := d.Keep(c.step); !near(k, c.want, exact) {
			t.Errorf("keep at step %d = %g, want %g", c.step, k, c.want)
		}
	}
	d.Schedule = "cosine"
	if _, k := d.Keep(6); !near(k, 0.75, exact) {
		t.Errorf("cosine midpoint %g", k)
	}
}

func TestBuPO(t *testing.T) {
	o := mustNew(t, "bupo", map[string]string{"layer": "7", "iterative_steps": "30"})
	ls := o.(LayerSelector)
	if l, _, in := ls.PolicyLayer(30); l != 7 || !in {
		t.Errorf("step 30: layer %d internal %v", l, in)
	}
	if _, _, in := ls.PolicyLayer(31); in {
		t.Error("step 31 should use the full model")
	}
	// (b) the loss depends only on the given arrays: identical layer log-probs give on-policy GRPO
	// coefficients (token-mean, dual-clip inactive on-policy).
	rng := rand.New(rand.NewPCG(13, 13))
	b := randomBatch(rng, 8, 6, 4)
	b.LogP = clone2(b.OldLogP)
	b.Advantages = advOf(t, o, b)
	g1, g2 := lossOf(t, o, b), lossOf(t, mustNew(t, "grpo", map[string]string{"beta": "0", "agg": "token-mean"}), b)
	for i := range g1.GradLogP {
		assertVec(t, "bupo vs grpo", g1.GradLogP[i], g2.GradLogP[i], exact)
	}
}
