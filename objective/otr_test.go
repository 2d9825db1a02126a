package objective

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestOTRSpecWeights: K = 4, samples [a, x, b, x], β = −0.1 → weights (a, x, b) = (−0.025, 0.5, −0.025).
func TestOTRSpecWeights(t *testing.T) {
	o := &OTR{K: 4, Temperature: 1, Beta: -0.1}
	const a, x, b = 7, 3, 9
	ids, w := o.Weights([]int{a, x, b, x}, x)
	want := map[int]float64{a: -0.025, x: 0.5, b: -0.025}
	if len(ids) != 3 {
		t.Fatalf("ids %v", ids)
	}
	for j, id := range ids {
		if math.Abs(w[j]-want[id]) > 1e-15 {
			t.Errorf("token %d: weight %g, want %g", id, w[j], want[id])
		}
	}
}

// TestOTRBatchForm: the K-row batch gives the same loss and per-token gradient as the aggregated
// weights, and passes the finite-difference check.
func TestOTRBatchForm(t *testing.T) {
	o, err := NewOTR(map[string]string{"k": "4"})
	if err != nil {
		t.Fatal(err)
	}
	targets := []int{3, 5, 1}
	cands := [][]int{{7, 5, 1}, {3, 5, 2}, {9, 0, 1}, {3, 5, 1}} // row k = k-th draw at each position
	logp := func(tok, pos int) float64 { return -0.1*float64(tok) - 0.3*float64(pos) - 0.2 }
	mask := []float64{1, 1, 0}
	b := &Batch{TokenIDs: cands}
	for k := range cands {
		row := make([]float64, 3)
		for t := range row {
			row[t] = logp(cands[k][t], t)
		}
		b.LogP = append(b.LogP, row)
		b.Mask = append(b.Mask, mask)
	}
	if b.TokenRewards, err = o.Rewards(cands, targets); err != nil {
		t.Fatal(err)
	}
	if b.Advantages, err = o.Advantages(b); err != nil {
		t.Fatal(err)
	}
	r, err := o.Loss(b)
	if err != nil {
		t.Fatal(err)
	}
	var want float64 // aggregated form over the two valid positions, Ntok = 2
	for pos := 0; pos < 2; pos++ {
		samples := []int{cands[0][pos], cands[1][pos], cands[2][pos], cands[3][pos]}
		ids, w := o.Weights(samples, targets[pos])
		for j, id := range ids {
			want -= w[j] * logp(id, pos) / 2
		}
	}
	if math.Abs(r.Loss-want) > 1e-15 {
		t.Errorf("loss %.17g, aggregated form %.17g", r.Loss, want)
	}
	// Position 0 has draws [7, 3, 9, 3] → the spec's weights; each row's gradient is −R/(K·Ntok_seq).
	for k, g := range []float64{0.1 / 8, -1.0 / 8, 0.1 / 8, -1.0 / 8} {
		if math.Abs(r.GradLogP[k][0]-g) > 1e-15 {
			t.Errorf("grad[%d][0] = %g, want %g", k, r.GradLogP[k][0], g)
		}
	}
	if r.Metrics["match_frac"] != 5.0/8 {
		t.Errorf("match_frac %g", r.Metrics["match_frac"])
	}
	opCheckGrad(t, "otr", o, b, 1e-6)
}

// TestOTRExpected checks the exact-expectation variant: its logit gradient against central differences
// of the loss with π' frozen; at T_r = 1 it equals (1 − β)·π(x)·(e_x − π) scaled by −1/Ntok (a
// probability-weighted SFT direction); β = 1 gives zero; and the sampled form's average gradient over
// many seeded draws converges to it.
func TestOTRExpected(t *testing.T) {
	z := [][]float64{{1.5, -0.2, 0.3, 0.8, -1}, {0.1, 0.2, 2.5, -0.4, 0}}
	targets := []int{3, 0}
	mask := []float64{1, 1}
	for _, o := range []*OTR{{K: 1, Temperature: 1, Beta: -0.1}, {K: 1, Temperature: 1.7, Beta: 0.3}} {
		loss, g, err := o.ExpectedLoss(z, targets, mask, 0)
		if err != nil {
			t.Fatal(err)
		}
		frozen := func(zz [][]float64) float64 { // π' from the unperturbed logits
			var l float64
			for pos := range zz {
				pr, _ := opTemperedProbs(z[pos], o.Temperature)
				lp := opLogSoftmax(zz[pos])
				for v := range lp {
					w := o.Beta * pr[v]
					if v == targets[pos] {
						w = pr[v]
					}
					l -= w * lp[v] / 2
				}
			}
			return l
		}
		if math.Abs(frozen(z)-loss) > 1e-15 {
			t.Errorf("loss %g, frozen form %g", loss, frozen(z))
		}
		for pos := range z {
			for v := range z[pos] {
				zp, zm := opCopy2(z), opCopy2(z)
				zp[pos][v] += 1e-5
				zm[pos][v] -= 1e-5
				if fd := (frozen(zp) - frozen(zm)) / 2e-5; !opClose(g[pos][v], fd, 1e-6) {
					t.Errorf("T=%g pos %d v %d: grad %.12g, finite difference %.12g", o.Temperature, pos, v, g[pos][v], fd)
				}
			}
		}
		if o.Temperature != 1 {
			continue
		}
		for pos := range z {
			p := opSoftmax(z[pos])
			x := targets[pos]
			for v := range p {
				e := 0.0
				if v == x {
					e = 1
				}
				if want := -(1 - o.Beta) * p[x] * (e - p[v]) / 2; math.Abs(g[pos][v]-want) > 1e-15 {
					t.Errorf("pos %d v %d: grad %.17g, (1-β)π(x)(e_x-π) form %.17g", pos, v, g[pos][v], want)
				}
			}
		}
		// Monte Carlo: the sampled loss's logit gradient −(1/K)Σ_k R_k (e_{a_k} − π) at position 0.
		o.K = 40000
		cands, err := o.Draw(rand.New(rand.NewPCG(1, 2)), z[0])
		if err != nil {
			t.Fatal(err)
		}
		p := opSoftmax(z[0])
		mc := make([]float64, len(p))
		for _, a := range cands {
			r := o.Beta
			if a == targets[0] {
				r = 1
			}
			for v := range p {
				e := 0.0
				if v == a {
					e = 1
				}
				mc[v] -= r * (e - p[v]) / float64(o.K) / 2
			}
		}
		for v := range p {
			if math.Abs(mc[v]-g[0][v]) > 0.005 { // σ ≈ 0.0013
				t.Errorf("Monte Carlo grad[%d] = %.5f, expectation %.5f", v, mc[v], g[0][v])
			}
		}
	}
	one := &OTR{K: 1, Temperature: 1, Beta: 1}
	_, g, _ := one.ExpectedLoss(z, targets, mask, 0)
	for pos := range g {
		for v := range g[pos] {
			if math.Abs(g[pos][v]) > 1e-15 {
				t.Errorf("beta = 1: grad[%d][%d] = %g, want 0", pos, v, g[pos][v])
			}
		}
	}
}

// TestOTRDraw: candidate frequencies follow softmax(logits/T); a −Inf logit is never drawn.
func TestOTRDraw(t *testing.T) {
	o := &OTR{K: 50000, Temperature: 2, Beta: -0.1}
	z := []float64{1, 0, math.Inf(-1), 2}
	c, err := o.Draw(rand.New(rand.NewPCG(7, 7)), z)
	if err != nil {
		t.Fatal(err)
	}
	freq := make([]float64, 4)
	for _, a := range c {
		freq[a] += 1.0 / float64(o.K)
	}
	want, _ := opTemperedProbs(z, 2)
	for v := range want {
		if math.Abs(freq[v]-want[v]) > 0.01 {
			t.Errorf("token %d: frequency %.4f, want %.4f", v, freq[v], want[v])
		}
	}
	if freq[2] != 0 {
		t.Error("banned token drawn")
	}
	if _, err := o.Draw(rand.New(rand.NewPCG(1, 1)), []float64{math.NaN()}); err == nil {
		t.Error("NaN logits accepted")
	}
	for _, set := range []map[string]string{{"beta": "1"}, {"k": "0"}, {"temperature": "0"}, {"k": "2.5"}, {"kk": "1"}} {
		if _, err := NewOTR(set); err == nil {
			t.Errorf("otr %v accepted", set)
		}
	}
}

func opCopy2(m [][]float64) [][]float64 {
	out := make([][]float64, len(m))
	for i := range m {
		out[i] = append([]float64(nil), m[i]...)
	}
	return out
}
