package objective

import (
	"fmt"
	"math"
	"testing"
)

// TestDistillAdvantages: the spec's token (lpSamp −1.2, lpTch −0.5, κ 1 → A = +0.7), κ scaling, the
// discounted sum over later valid tokens, and the optional task advantage.
func TestDistillAdvantages(t *testing.T) {
	b := &Batch{
		LogP:    [][]float64{{-1.2, -0.3, 0, -2}, {-1, -1, -1, -1}},
		OldLogP: [][]float64{{-1.2, -0.3, 5, -2}, {-1, -1, -1, -1}},
		RefLogP: [][]float64{{-0.5, -0.4, 0, -1}, {-1, -1.5, -0.5, -1}},
		Mask:    [][]float64{{1, 1, 0, 1}, {1, 1, 1, 1}},
		Rewards: []float64{1, 0},
	}
	cases := []struct {
		set  map[string]string
		want [][]float64
	}{
		{nil, [][]float64{{0.7, -0.1, 0, 1}, {0, -0.5, 0.5, 0}}},
		{map[string]string{"kl_coef": "2"}, [][]float64{{1.4, -0.2, 0, 2}, {0, -1, 1, 0}}},
		// γ = 0.5: row 0 → [0.7 + 0.5·(−0.1 + 0.5·1), −0.1 + 0.5·1, 0, 1] (the masked token is skipped).
		{map[string]string{"kl_discount": "0.5"}, [][]float64{{0.9, 0.4, 0, 1}, {-0.125, -0.25, 0.5, 0}}},
	}
	a := 0.5 / (math.Sqrt(0.5) + 1e-6) // group-normalised task advantage of rewards [1, 0]
	cases = append(cases, struct {
		set  map[string]string
		want [][]float64
	}{map[string]string{"task_coef": "0.1"}, [][]float64{{0.7 + 0.1*a, -0.1 + 0.1*a, 0, 1 + 0.1*a}, {-0.1 * a, -0.5 - 0.1*a, 0.5 - 0.1*a, -0.1 * a}}})
	for _, c := range cases {
		adv, err := opMust(t, "distill", c.set).Advantages(b)
		if err != nil {
			t.Fatal(err)
		}
		for i := range c.want {
			for j := range c.want[i] {
				if math.Abs(adv[i][j]-c.want[i][j]) > 1e-12 {
					t.Errorf("%v: adv[%d][%d] = %.15f, want %.15f", c.set, i, j, adv[i][j], c.want[i][j])
				}
			}
		}
	}
}

func TestDistillLossFiniteDifferences(t *testing.T) {
	b := &Batch{
		LogP:    [][]float64{{-1.0, -0.2, 0, -2.6}, {-0.7, -1.6, -0.9, -1.1}},
		OldLogP: [][]float64{{-1.2, -0.3, 5, -2}, {-1, -1, -1, -1}},
		RefLogP: [][]float64{{-0.5, -0.4, 0, -1}, {-1, -1.5, -0.5, -1}},
		Mask:    [][]float64{{1, 1, 0, 1}, {1, 1, 1, 1}},
	}
	for _, set := range []map[string]string{nil, {"loss": "ppo", "clip": "0.2"}, {"kl_discount": "0.9", "kl_coef": "0.5"}} {
		o := opMust(t, "distill", set)
		adv, err := o.Advantages(b)
		if err != nil {
			t.Fatal(err)
		}
		b.Advantages = adv
		opCheckGrad(t, fmt.Sprint("distill ", set), o, b, 1e-6)
		r, _ := o.Loss(b)
		// Sampled reverse-KL estimate: mean over valid tokens of lpSamp − lpTch = (−0.7+0.1−1+0+0.5−0.5+0)/7.
		if math.Abs(r.Metrics["reverse_kl"]-(-1.6/7)) > 1e-12 {
			t.Errorf("reverse_kl %g", r.Metrics["reverse_kl"])
		}
		if set["loss"] == "ppo" && r.Metrics["clip_frac"] == 0 {
			t.Errorf("ppo case should clip some tokens: %v", r.Metrics)
		}
	}
	// NormTokens rescales a micro-batch: the loss over NormTokens = 14 is half the loss over its 7 tokens.
	o := opMust(t, "distill", nil)
	r1, _ := o.Loss(b)
	b.NormTokens = 14
	r2, _ := o.Loss(b)
	if math.Abs(r2.Loss-r1.Loss/2) > 1e-15 || math.Abs(r2.GradLogP[1][2]-r1.GradLogP[1][2]/2) > 1e-15 {
		t.Errorf("NormTokens: %g vs %g", r2.Loss, r1.Loss)
	}
}

// TestDistillExpectedGradientIsReverseKL: at one position with student logits z, teacher distribution
// πt, and ratio 1, the expectation over the student's own sample v ~ πs of the distillation gradient
// backpropagated to the logits (g·(e_v − πs)) equals ∇_z KL(πs ‖ πt), checked against central
// differences of the exact KL.
func TestDistillExpectedGradientIsReverseKL(t *testing.T) {
	z := []float64{1.2, -0.3, 0.4, 2.0, -1.5}
	lt := opLogSoftmax([]float64{0.1, 0.9, -0.2, 1.1, 0.3})
	kl := func(z []float64) float64 {
		ls := opLogSoftmax(z)
		var s float64
		for v := range ls {
			s += math.Exp(ls[v]) * (ls[v] - lt[v])
		}
		return s
	}
	o := opMust(t, "distill", nil)
	ls := opLogSoftmax(z)
	expect := make([]float64, len(z))
	for v := range z { // exact expectation: enumerate the sampled token
		b := &Batch{LogP: [][]float64{{ls[v]}}, OldLogP: [][]float64{{ls[v]}}, RefLogP: [][]float64{{lt[v]}}, Mask: [][]float64{{1}}}
		adv, err := o.Advantages(b)
		if err != nil {
			t.Fatal(err)
		}
		b.Advantages = adv
		r, err := o.Loss(b)
		if err != nil {
			t.Fatal(err)
		}
		g := r.GradLogP[0][0]
		for j := range z {
			d := -math.Exp(ls[j])
			if j == v {
				d++
			}
			expect[j] += math.Exp(ls[v]) * g * d
		}
	}
	for j := range z {
		zp := append([]float64(nil), z...)
		zm := append([]float64(nil), z...)
		zp[j] += 1e-5
		zm[j] -= 1e-5
		fd := (kl(zp) - kl(zm)) / 2e-5
		if !opClose(expect[j], fd, 1e-6) {
			t.Errorf("logit %d: expected distillation gradient %.12g, ∂KL/∂z %.12g", j, expect[j], fd)
		}
	}
}

func opLogSoftmax(z []float64) []float64 {
	m := math.Inf(-1)
	for _, x := range z {
		m = math.Max(m, x)
	}
	var s float64
	for _, x := range z {
		s += math.Exp(x - m)
	}
	out := make([]float64, len(z))
	for i, x := range z {
		out[i] = x - m - math.Log(s)
	}
	return out
}

// TestTIPSpecExample: H = [2, 0.1, 0.05, 1.5], D = [0.1, 2, 0.01, 1], median thresholds hH = 0.8,
// hD = 0.55 → quadrants [Q2, Q3, Q4, Q1]; q3_only [0,1,0,0]; entropy_topk(0.5) [1,0,0,1];
// type_aware(0.5) [1,1,0,1]. A fifth, masked token with extreme values must not move the thresholds.
func TestTIPSpecExample(t *testing.T) {
	H := [][]float64{{2.0, 0.1, 0.05, 1.5, 99}}
	D := [][]float64{{0.1, 2.0, 0.01, 1.0, 99}}
	mask := [][]float64{{1, 1, 1, 1, 0}}
	wantQ := []int{2, 3, 4, 1}
	for k := range wantQ {
		if q := TIPQuadrant(H[0][k], D[0][k], 0.8, 0.55); q != wantQ[k] {
			t.Errorf("token %d: Q%d, want Q%d", k, q, wantQ[k])
		}
	}
	cases := []struct {
		rule string
		want []float64
	}{
		{"all", []float64{1, 1, 1, 1, 0}},
		{"q3_only", []float64{0, 1, 0, 0, 0}},
		{"entropy_topk", []float64{1, 0, 0, 1, 0}},
		{"type_aware", []float64{1, 1, 0, 1, 0}},
	}
	for _, c := range cases {
		r := TIPRule{Rule: c.rule, Rho: 0.5, QEntropy: 0.5, QDiverge: 0.5}
		sel, stats, err := r.Select(H, D, mask)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(sel[0]) != fmt.Sprint(c.want) {
			t.Errorf("%s: %v, want %v", c.rule, sel[0], c.want)
		}
		if math.Abs(stats["tip_h_threshold"]-0.8) > 1e-12 || math.Abs(stats["tip_d_threshold"]-0.55) > 1e-12 {
			t.Errorf("%s thresholds %v", c.rule, stats)
		}
		if stats["tip_q1"] != 1 || stats["tip_q2"] != 1 || stats["tip_q3"] != 1 || stats["tip_q4"] != 1 || stats["tip_tokens"] != 4 {
			t.Errorf("%s stats %v", c.rule, stats)
		}
	}
	// Through the objective: Entropy = H, D = |OldLogP − RefLogP|.
	b := &Batch{
		LogP: [][]float64{{-1, -1, -1, -1, -1}}, OldLogP: [][]float64{{-1, -1, -1, -1, -1}},
		RefLogP: [][]float64{{-0.9, -3, -1.01, 0, -100}}, Entropy: H, Mask: mask,
	}
	s, err := opMust(t, "distill", map[string]string{"select": "type_aware"}).(Selector).Select(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(s.Mask[0]) != "[1 1 0 1 0]" || !s.Keep[0] || s.Stats["tip_selected"] != 3 {
		t.Errorf("Distill.Select: %v %v %v", s.Mask, s.Keep, s.Stats)
	}
}

// TestTIPEntropySample: ceil(ρN) tokens, reproducible for a seed, and — drawing one of four tokens
// many times — selected with frequency H_i/ΣH.
func TestTIPEntropySample(t *testing.T) {
	H := [][]float64{{0.5, 1.5, 0, 2.0}}
	D := [][]float64{{0, 0, 0, 0}}
	mask := [][]float64{{1, 1, 1, 1}}
	r := TIPRule{Rule: "entropy_sample", Rho: 0.5, QEntropy: 0.5, QDiverge: 0.5, Seed: 3}
	a, _, err := r.Select(H, D, mask)
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := r.Select(H, D, mask)
	if fmt.Sprint(a) != fmt.Sprint(b) || a[0][0]+a[0][1]+a[0][2]+a[0][3] != 2 || a[0][2] != 0 {
		t.Errorf("selection %v / %v: want 2 tokens, reproducible, never the zero-entropy one", a, b)
	}
	r.Rho = 0.25
	const n = 20000
	count := make([]float64, 4)
	for s := 0; s < n; s++ {
		r.Seed = uint64(s)
		sel, _, _ := r.Select(H, D, mask)
		for k := range count {
			count[k] += sel[0][k]
		}
	}
	for k, h := range []float64{0.5, 1.5, 0, 2.0} {
		if p := h / 4; math.Abs(count[k]/n-p) > 0.015 { // σ ≤ 0.0036
			t.Errorf("token %d: frequency %.4f, want %.4f", k, count[k]/n, p)
		}
	}
}

// TestSparseKDOperators reproduces B10's numbers and checks its identities.
func TestSparseKDOperators(t *testing.T) {
	z := []float64{2, 1, 0, -1}
	p := opSoftmax(z)
	for i, w := range []float64{0.643914, 0.236883, 0.087144, 0.032059} {
		if math.Abs(p[i]-w) > 1e-6 {
			t.Errorf("softmax(z)[%d] = %.6f, spec %.6f", i, p[i], w)
		}
	}
	s2, _ := SoftenProbs(p, 2)
	exact := opSoftmax([]float64{1, 0.5, 0, -0.5})
	for i, w := range []float64{0.455054, 0.276004, 0.167405, 0.101536} {
		if math.Abs(s2[i]-w) > 1e-6 || math.Abs(s2[i]-exact[i]) > 1e-12 {
			t.Errorf("Soften_2(p)[%d] = %.12f, spec %.6f, softmax(z/2) %.12f", i, s2[i], w, exact[i])
		}
	}
	// Truncation and tempering commute.
	q := opSoftmax([]float64{3, 1, 0.5, -1})
	tk, _ := TopKProbs(q, 2)
	a, _ := SoftenProbs(tk, 2)
	sq, _ := SoftenProbs(q, 2)
	bb, _ := TopKProbs(sq, 2)
	for i, w := range []float64{0.731059, 0.268941, 0, 0} {
		if math.Abs(a[i]-w) > 1e-6 || math.Abs(a[i]-bb[i]) > 1e-12 {
			t.Errorf("[%d]: Soften∘TopK %.9f, TopK∘Soften %.9f, spec %.6f", i, a[i], bb[i], w)
		}
	}
	// Soften_1 = identity, zeros stay zero, ranking kept, entropy non-decreasing in T, limits.
	pz := []float64{0.5, 0, 0.3, 0.2}
	one, _ := SoftenProbs(pz, 1)
	prevH := -1.0
	for _, T := range []float64{0.01, 0.5, 1, 2, 10, 1e6} {
		s, _ := SoftenProbs(pz, T)
		if s[1] != 0 || !(s[0] >= s[2] && s[2] >= s[3]) {
			t.Errorf("T=%g: %v lost a zero or the ranking", T, s)
		}
		var h float64
		for _, x := range s {
			if x > 0 {
				h -= x * math.Log(x)
			}
		}
		if h < prevH-1e-12 {
			t.Errorf("T=%g: entropy %g fell below %g", T, h, prevH)
		}
		prevH = h
		if T == 0.01 && math.Abs(s[0]-1) > 1e-12 {
			t.Errorf("T→0: %v, want one-hot on the argmax", s)
		}
		if T == 1e6 && math.Abs(s[0]-1.0/3) > 1e-5 {
			t.Errorf("T→∞: %v, want uniform on the support", s)
		}
	}
	for i := range pz {
		if math.Abs(one[i]-pz[i]) > 1e-15 {
			t.Errorf("Soften_1 = %v, want %v", one, pz)
		}
	}
	// Ties in TopK: the lower index wins.
	if tt, _ := TopKProbs([]float64{0.2, 0.4, 0.2, 0.2}, 2); fmt.Sprint(tt) != "[0.3333333333333333 0.6666666666666666 0 0]" {
		t.Errorf("tie-break %v", tt)
	}
	for _, bad := range [][]float64{{}, {0, 0}, {0.5, math.NaN()}, {-0.1, 1}} {
		if _, err := SoftenProbs(bad, 1); err == nil {
			t.Errorf("SoftenProbs(%v): no error", bad)
		}
	}
	if _, err := SoftenProbs(p, 0); err == nil {
		t.Error("T = 0 accepted")
	}
}

// TestSparseKDLossGradient: the logit gradient T·(qS_U − pT) against central differences, and the
// loss is zero when the student already matches the tempered, truncated teacher.
func TestSparseKDLossGradient(t *testing.T) {
	p := opSoftmax([]float64{3, 1, 0.5, -1, 0.2})
	zS := []float64{0.3, 1.1, -0.4, 2, 0.7}
	for _, c := range []struct {
		k int
		T float64
	}{{0, 1}, {2, 2}, {3, 0.7}} {
		loss, g, err := SparseKDLoss(p, zS, c.k, c.T)
		if err != nil {
			t.Fatal(err)
		}
		if !(loss > 0) {
			t.Errorf("k=%d T=%g: loss %g", c.k, c.T, loss)
		}
		for j := range zS {
			zp := append([]float64(nil), zS...)
			zm := append([]float64(nil), zS...)
			zp[j] += 1e-5
			zm[j] -= 1e-5
			lp, _, _ := SparseKDLoss(p, zp, c.k, c.T)
			lm, _, _ := SparseKDLoss(p, zm, c.k, c.T)
			if fd := (lp - lm) / 2e-5; !opClose(g[j], fd, 1e-6) {
				t.Errorf("k=%d T=%g logit %d: grad %.12g, finite difference %.12g", c.k, c.T, j, g[j], fd)
			}
		}
	}
	// Student logits = teacher logits: the tempered student equals the tempered teacher, loss 0.
	z := []float64{3, 1, 0.5, -1, 0.2}
	if loss, g, _ := SparseKDLoss(opSoftmax(z), z, 0, 2); math.Abs(loss) > 1e-12 || math.Abs(g[0]) > 1e-12 {
		t.Errorf("matched student: loss %g grad %v", loss, g)
	}
	if _, _, err := SparseKDLoss(p, zS[:3], 0, 1); err == nil {
		t.Error("vocabulary mismatch accepted")
	}
}

func opSoftmax(z []float64) []float64 {
	ls := opLogSoftmax(z)
	for i := range ls {
		ls[i] = math.Exp(ls[i])
	}
	return ls
}
