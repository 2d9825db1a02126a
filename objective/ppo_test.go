package objective

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestValueLoss(t *testing.T) {
	// One token, R = 1, V_old = 0.5, eps 0.2: V = 0.6 (inside) → 0.5·0.16; V = 1.2: clipped value 0.7,
	// unclipped (0.04) < clipped (0.09) → loss 0.045, gradient 0 (clip active).
	for _, c := range []struct{ v, loss, grad float64 }{{0.6, 0.08, -0.4}, {1.2, 0.045, 0}, {-0.5, 1.125, -1.5}} {
		l, g, err := ValueLoss([][]float64{{c.v}}, [][]float64{{0.5}}, [][]float64{{1}}, [][]float64{{1}}, 0.2, AggTokenMean, 0)
		if err != nil || !near(l, c.loss, exact) || !near(g[0][0], c.grad, exact) {
			t.Errorf("V=%g: loss %g grad %g, want %g %g (%v)", c.v, l, g[0][0], c.loss, c.grad, err)
		}
	}
	// Finite differences on a random batch.
	rng := rand.New(rand.NewPCG(20, 20))
	b := randomBatch(rng, 6, 5, 3)
	old, ret := clone2(b.Values), clone2(b.Values)
	for i := range b.Values {
		for j := range b.Values[i] {
			b.Values[i][j] += 0.3 * rng.NormFloat64()
			ret[i][j] = rng.Float64()
		}
	}
	_, g, _ := ValueLoss(b.Values, old, ret, b.Mask, 0.2, AggSeqMeanTokenMean, 0)
	for i := range b.Values {
		for j := range b.Values[i] {
			v := b.Values[i][j]
			b.Values[i][j] = v + 1e-6
			up, _, _ := ValueLoss(b.Values, old, ret, b.Mask, 0.2, AggSeqMeanTokenMean, 0)
			b.Values[i][j] = v - 1e-6
			down, _, _ := ValueLoss(b.Values, old, ret, b.Mask, 0.2, AggSeqMeanTokenMean, 0)
			b.Values[i][j] = v
			if fd := (up - down) / 2e-6; math.Abs(fd-g[i][j]) > 1e-7 {
				t.Errorf("value grad[%d][%d] = %g, fd %g", i, j, g[i][j], fd)
			}
		}
	}
}

func TestAdaptiveKL(t *testing.T) {
	a := AdaptiveKL{Beta: 0.1, Target: 0.1, Horizon: 10000}
	if err := a.Update(0.5, 100); err != nil || !near(a.Beta, 0.1*(1+0.2*100/10000.0), exact) {
		t.Errorf("beta %g (%v)", a.Beta, err)
	}
	a = AdaptiveKL{Beta: 0.1, Target: 0.1, Horizon: 10000}
	_ = a.Update(0.09, 1000) // e = -0.1
	if !near(a.Beta, 0.1*(1-0.1*0.1), exact) {
		t.Errorf("beta %g", a.Beta)
	}
}

// BenchmarkLoss measures one Loss call of the main presets on a 64-response × 512-token mini-batch.
func BenchmarkLoss(b *testing.B) {
	for _, name := range []string{"grpo", "dapo", "gspo", "sapo"} {
		b.Run(name, func(b *testing.B) {
			o, _ := New(name, map[string]string{"beta": "0"})
			batch := randomBatch(rand.New(rand.NewPCG(1, 1)), 64, 512, 8)
			batch.Advantages, _ = o.Advantages(batch)
			b.ResetTimer()
			for range b.N {
				if _, err := o.Loss(batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*64*512)/b.Elapsed().Seconds()/1e6, "Mtok/s")
		})
	}
}
