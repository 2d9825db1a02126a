package objective

import "testing"

// TestPPOCriticReturnsAndValueLoss: the returns ppo's critic regresses to are the spec's hand-worked
// GAE example (§2 test 1: tok_r = [0,0,1], V = [0.5,0.6,0.8], γ = 1, λ = 0.95 → R = [0.9705, 0.99, 1]),
// and its value loss uses value_clip: V moved past V_old ± 0.5 is clipped when that is the larger
// error (zero gradient), token-mean.
func TestPPOCriticReturnsAndValueLoss(t *testing.T) {
	o := mustNew(t, "ppo", map[string]string{"lambda": "0.95", "beta": "0"})
	c, ok := o.(Critic)
	if !ok {
		t.Fatal("ppo does not implement Critic")
	}
	cfg, ok := c.CriticConfig()
	if !ok || cfg.ValueClip != 0.5 || cfg.VFCoef != 0.5 {
		t.Fatalf("critic config %+v, %v", cfg, ok)
	}
	b := &Batch{Mask: [][]float64{{1, 1, 1}}, Values: [][]float64{{0.5, 0.6, 0.8}}, Rewards: []float64{1},
		OldLogP: [][]float64{{-1, -1, -1}}, LogP: [][]float64{{-1, -1, -1}}}
	ret, err := c.Returns(b)
	if err != nil {
		t.Fatal(err)
	}
	assertVec(t, "ppo returns", ret[0], []float64{0.9705, 0.99, 1.0}, exact)
	// V = [0.5, 1.7, 0.8] against V_old = [0.5, 0.6, 0.8]: token 1 moved by 1.1 > 0.5.
	// Token 1: unclipped (1.7-0.99)² = 0.5041, clipped (1.1-0.99)² = 0.0121 → max is unclipped, gradient flows.
	// With R = [0, …]: token 0 exact, token 2 (0.8-1)² = 0.04.
	loss, grad, err := c.ValueLoss([][]float64{{0.5, 1.7, 0.8}}, b.Values, ret, b.Mask)
	if err != nil {
		t.Fatal(err)
	}
	want := (0.5*(0.5-0.9705)*(0.5-0.9705) + 0.5*0.5041 + 0.5*0.04) / 3
	if !near(loss, want, 1e-12) {
		t.Errorf("value loss %v, want %v", loss, want)
	}
	assertVec(t, "value grad", grad[0], []float64{(0.5 - 0.9705) / 3, (1.7 - 0.99) / 3, (0.8 - 1) / 3}, 1e-12)
	// V far below: V = -1 vs V_old = 0.6, R = 0.99: clipped V = 0.1, (0.1-0.99)² < (-1-0.99)² → unclipped.
	// V slightly past the clip toward R: V = 1.2 (V_old 0.6, clip 1.1), R = 0.99: unclipped 0.0441 >
	// clipped 0.0121 → unclipped. V = 1.2 with R = 1.3: unclipped 0.01 < clipped 0.04 → clipped, zero grad.
	_, g2, _ := c.ValueLoss([][]float64{{0, 1.2, 0}}, [][]float64{{0, 0.6, 0}}, [][]float64{{0, 1.3, 0}}, b.Mask)
	if g2[0][1] != 0 {
		t.Errorf("clipped value term must have zero gradient, got %v", g2[0][1])
	}
}
