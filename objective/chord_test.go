package objective

import (
	"errors"
	"math"
	"testing"
)

// TestCHORDSchedule reproduces B6's μ at steps 0…1000 with (W, D, peak, valley) = (200, 400, 0.5, 0.02).
func TestCHORDSchedule(t *testing.T) {
	c := opMust(t, "chord", map[string]string{"warmup": "200", "decay": "400", "mu_peak": "0.5", "mu_valley": "0.02"}).(*CHORD)
	for _, k := range []struct {
		step int
		mu   float64
	}{{0, 0}, {100, 0.25}, {200, 0.5}, {400, 0.26}, {599, 0.020007}, {600, 0.02}, {1000, 0.02}} {
		if got := c.Mu(k.step); math.Abs(got-k.mu) > 1e-6 {
			t.Errorf("mu(%d) = %.9f, want %g", k.step, got, k.mu)
		}
	}
	// Exact at 599: 0.48·0.5·(1 + cos(399π/400)) + 0.02; continuous at W; constant after W + D.
	if got, want := c.Mu(599), 0.24*(1+math.Cos(math.Pi*399/400))+0.02; math.Abs(got-want) > 1e-15 {
		t.Errorf("mu(599) = %.17g, want %.17g", got, want)
	}
	if math.Abs(c.Mu(199)+0.5/200-c.Mu(200)) > 1e-12 || math.Abs(c.Mu(201)-c.Mu(200)) > 1e-4 {
		t.Errorf("mu not continuous at W: %g %g %g", c.Mu(199), c.Mu(200), c.Mu(201))
	}
	flat := opMust(t, "chord", nil).(*CHORD)
	for _, s := range []int{0, 1, 50, 1 << 20} {
		if flat.Mu(s) != 0.1 {
			t.Errorf("default mu(%d) = %g, want constant 0.1", s, flat.Mu(s))
		}
	}
	for p, w := range map[float64]float64{0.5: 0.25, 0.9: 0.09, 0.1: 0.09, 0: 0, 1: 0} {
		if math.Abs(ExpertWeight(p)-w) > 1e-15 {
			t.Errorf("phi(%g) = %g, want %g", p, ExpertWeight(p), w)
		}
	}
}

// opChordBatch: rows 0–1 on-policy, rows 2–3 expert demonstrations (no old_logp/advantages needed there).
func opChordBatch() (*Batch, ExpertMix) {
	b := &Batch{
		LogP:       [][]float64{{-0.8, -1.4, -0.2}, {-1.6, -0.9, 0}, {-0.69, -0.05, -3}, {-0.3, -2, 0}},
		OldLogP:    [][]float64{{-1, -1.2, -0.6}, {-1.5, -1, 0}, nil, nil},
		Advantages: [][]float64{{1, 1, 1}, {-0.5, -0.5, 0}, nil, nil},
		Mask:       [][]float64{{1, 1, 1}, {1, 1, 0}, {1, 1, 1}, {1, 1, 0}},
	}
	return b, ExpertMix{Expert: []bool{false, false, true, true}}
}

func TestCHORDMixedLoss(t *testing.T) {
	b, mix := opChordBatch()
	lnHalf := math.Log(0.5)
	// A hand-sized case: one on-policy token at ratio 1, A = 1 (L_RL = −1) and one expert token with
	// p = 0.5 (φ = 0.25, L_SFT = −0.25·ln 0.5); μ = 0.1.
	small := &Batch{LogP: [][]float64{{-1}, {lnHalf}}, OldLogP: [][]float64{{-1}, nil}, Advantages: [][]float64{{1}, nil}, Mask: [][]float64{{1}, {1}}}
	c := opMust(t, "chord", nil).(*CHORD)
	r, err := c.MixedLoss(small, ExpertMix{Expert: []bool{false, true}})
	if err != nil {
		t.Fatal(err)
	}
	if want := 0.9*-1 + 0.1*(-0.25*lnHalf); math.Abs(r.Loss-want) > 1e-15 {
		t.Errorf("loss %.17g, want %.17g", r.Loss, want)
	}
	if math.Abs(r.GradLogP[0][0]+0.9) > 1e-15 || math.Abs(r.GradLogP[1][0]+0.025) > 1e-15 {
		t.Errorf("grads %v, want [-0.9] [-0.025]", r.GradLogP)
	}

	// φ off: the loss is an ordinary function of LogP, check all gradients by finite differences.
	off := opMust(t, "chord", map[string]string{"phi": "false", "warmup": "10", "mu_peak": "0.6", "mu_valley": "0.2", "decay": "10"}).(*CHORD)
	b.Step = 13 // μ is read at the batch's RL step
	opCheckGrad(t, "chord phi=false", opMixed{off, mix}, b, 1e-6)

	// φ on: expert tokens get exactly −μ·φ(p)·M/N_exp (φ is stop-gradient); on-policy tokens the same
	// gradient as with φ off.
	on := *off
	on.Phi = true
	ron, err := on.MixedLoss(b, mix)
	if err != nil {
		t.Fatal(err)
	}
	roff, _ := off.MixedLoss(b, mix)
	mu := off.Mu(13)
	for i := range b.Mask {
		for j, m := range b.Mask[i] {
			want := roff.GradLogP[i][j]
			if mix.Expert[i] {
				want = -mu * ExpertWeight(math.Exp(b.LogP[i][j])) * m / 5
			}
			if math.Abs(ron.GradLogP[i][j]-want) > 1e-15 {
				t.Errorf("phi on grad[%d][%d] = %.17g, want %.17g", i, j, ron.GradLogP[i][j], want)
			}
		}
	}
	if ron.Metrics["expert_tokens"] != 5 || ron.Metrics["tokens"] != 5 || math.Abs(ron.Metrics["mu"]-mu) > 0 {
		t.Errorf("metrics %v", ron.Metrics)
	}

	// cutoff_prob 0.9: the token with p = e^−0.05 > 0.9 is clamped (no gradient, constant loss term).
	cut := on
	cut.CutoffProb = 0.9
	rc, _ := cut.MixedLoss(b, mix)
	if rc.GradLogP[2][1] != 0 || rc.GradLogP[2][0] != ron.GradLogP[2][0] {
		t.Errorf("cutoff grads %v", rc.GradLogP[2])
	}
	shift := -mu * ExpertWeight(math.Exp(-0.05)) * (math.Log(0.9) - -0.05) / 5
	if math.Abs(rc.Loss-(ron.Loss+shift)) > 1e-15 {
		t.Errorf("cutoff loss %.17g, want %.17g", rc.Loss, ron.Loss+shift)
	}

	// NormExpertTokens = 10 halves the SFT part.
	mix2 := mix
	mix2.NormExpertTokens = 10
	r2, _ := on.MixedLoss(b, mix2)
	if math.Abs(r2.GradLogP[3][0]-ron.GradLogP[3][0]/2) > 1e-15 || r2.GradLogP[0][0] != ron.GradLogP[0][0] {
		t.Errorf("NormExpertTokens: %g vs %g", r2.GradLogP[3][0], ron.GradLogP[3][0])
	}
}

// opMixed adapts MixedLoss to the Objective interface for the finite-difference helper.
type opMixed struct {
	c   *CHORD
	mix ExpertMix
}

func (m opMixed) Advantages(b *Batch) ([][]float64, error) { return m.c.Advantages(b) }
func (m opMixed) Loss(b *Batch) (Result, error)            { return m.c.MixedLoss(b, m.mix) }
func (m opMixed) Inputs() []string                         { return m.c.Inputs() }

func TestCHORDStepAndErrors(t *testing.T) {
	// μ follows the batch's RL step: warmup 4 to 0.8 gives 0.6 at step 3; CHORD keeps no state.
	d := opMust(t, "chord", map[string]string{"warmup": "4", "mu_peak": "0.8"}).(*CHORD)
	if _, ok := Objective(d).(Stateful); ok {
		t.Error("chord is stateful; μ should come from Batch.Step")
	}
	b3, mix3 := opChordBatch()
	b3.Step = 3
	r3, err := d.MixedLoss(b3, mix3)
	if err != nil || math.Abs(r3.Metrics["mu"]-0.6) > 1e-15 {
		t.Errorf("step 3: mu %v (%v), want 0.6", r3.Metrics["mu"], err)
	}
	b, mix := opChordBatch()
	b.OldLogP[1] = nil // an on-policy row without old log-probs
	if _, err := d.MixedLoss(b, mix); !errors.Is(err, ErrBadInput) {
		t.Errorf("missing on-policy old_logp: %v", err)
	}
	b, _ = opChordBatch()
	if _, err := d.MixedLoss(b, ExpertMix{Expert: []bool{true}}); !errors.Is(err, ErrBadInput) {
		t.Errorf("short expert flags: %v", err)
	}
	for _, set := range []map[string]string{{"cutoff_prob": "0"}, {"mu_peak": "1.5"}, {"warmup": "-1"}, {"phi": "maybe"}} {
		if _, err := New("chord", set); err == nil {
			t.Errorf("chord %v accepted", set)
		}
	}
	// GRPO advantages on the rollout rows: rewards [1, 0] in one group → ±0.5/(√0.5 + 1e-6).
	adv, err := d.Advantages(&Batch{LogP: [][]float64{{0, 0}, {0, 0}}, Mask: [][]float64{{1, 0}, {1, 1}}, Rewards: []float64{1, 0}})
	if err != nil {
		t.Fatal(err)
	}
	a := 0.5 / (math.Sqrt(0.5) + 1e-6)
	if math.Abs(adv[0][0]-a) > 1e-15 || adv[0][1] != 0 || math.Abs(adv[1][1]+a) > 1e-15 {
		t.Errorf("advantages %v", adv)
	}
}
