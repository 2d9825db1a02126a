package objective

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// opOnePair builds a single pair whose (unnormalised) margin is u.
func opOnePair(u float64) *PairBatch {
	return &PairBatch{
		ChosenLogP: []float64{-10 + u}, RejectedLogP: []float64{-12},
		RefChosenLogP: []float64{-10}, RefRejectedLogP: []float64{-12},
		ChosenLen: []float64{1}, RejectedLen: []float64{1},
	}
}

func opMustPair(t *testing.T, name string, set map[string]string) PairObjective {
	t.Helper()
	o, err := NewPair(name, set)
	if err != nil {
		t.Fatalf("NewPair(%s, %v): %v", name, set, err)
	}
	return o
}

// TestPreferenceSpecNumbers reproduces the worked numbers of B1–B3 (printed there to 6 decimals) and
// the closed forms behind them to 1e-12.
func TestPreferenceSpecNumbers(t *testing.T) {
	lsig := func(x float64) float64 { return -math.Log1p(math.Exp(-x)) }
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	cases := []struct {
		name        string
		set         map[string]string
		u           float64
		spec, dspec float64 // spec's printed values
		loss, dloss float64 // closed forms
	}{
		{"dpo", nil, 2, 0.598139, -0.045017, -lsig(0.2), -0.1 * sig(-0.2)},
		{"dpo", nil, 0, 0.693147, -0.05, math.Ln2, -0.05},
		{"ipo", nil, 2, 9.0, -6.0, 9, -6},
		{"ipo", nil, 5, 0, 0, 0, 0},
		{"rdpo", map[string]string{"label_smoothing": "0.1"}, 2, 0.573139, -0.057517,
			(-0.9*lsig(0.2) + 0.1*lsig(-0.2)) / 0.8, -0.1 * (0.9*sig(-0.2) + 0.1*sig(0.2)) / 0.8},
	}
	for _, c := range cases {
		o := opMustPair(t, c.name, c.set)
		r, err := o.PairLoss(opOnePair(c.u))
		if err != nil {
			t.Fatal(err)
		}
		g := r.GradChosenLogP[0]
		if math.Abs(r.Loss-c.spec) > 1e-6 || math.Abs(g-c.dspec) > 1e-6 {
			t.Errorf("%s u=%g: loss %.9f ℓ' %.9f, spec %.6f %.6f", c.name, c.u, r.Loss, g, c.spec, c.dspec)
		}
		if math.Abs(r.Loss-c.loss) > 1e-12 || math.Abs(g-c.dloss) > 1e-12 {
			t.Errorf("%s u=%g: loss %.15f ℓ' %.15f, closed form %.15f %.15f", c.name, c.u, r.Loss, g, c.loss, c.dloss)
		}
		if r.GradRejectedLogP[0] != -g {
			t.Errorf("%s: grad rejected %g, want %g", c.name, r.GradRejectedLogP[0], -g)
		}
	}
}

// TestPreferenceProperties checks the spec's stated properties of each loss over a grid of margins.
func TestPreferenceProperties(t *testing.T) {
	dpo := &Preference{Kind: "dpo", Beta: 0.1}
	ipo := &Preference{Kind: "ipo", Beta: 0.1}
	for _, eps := range []float64{0, 0.05, 0.1, 0.3, 0.49} {
		rdpo := &Preference{Kind: "rdpo", Beta: 0.1, LabelSmoothing: eps}
		for u := -30.0; u <= 30; u += 0.75 {
			l0, _ := dpo.Pair(u)
			a, _ := rdpo.Pair(u)
			b, _ := rdpo.Pair(-u)
			// Unbiasedness: the expected rDPO loss under random flips is the clean DPO loss.
			if got := (1-eps)*a + eps*b; math.Abs(got-l0) > 1e-12 {
				t.Errorf("rdpo eps=%g u=%g: (1-eps)ℓ(u)+eps ℓ(-u) = %.15f, clean dpo %.15f", eps, u, got, l0)
			}
		}
	}
	for u := -30.0; u <= 30; u += 0.75 {
		l, dl := dpo.Pair(u)
		lm, _ := dpo.Pair(-u)
		if math.Abs(l-lm-(-0.1*u)) > 1e-12 {
			t.Errorf("dpo u=%g: ℓ(u)-ℓ(-u) = %g, want -beta*u = %g", u, l-lm, -0.1*u)
		}
		if !(dl < 0) {
			t.Errorf("dpo u=%g: ℓ' = %g, want < 0", u, dl)
		}
		if li, _ := ipo.Pair(u); li < 0 {
			t.Errorf("ipo u=%g: loss %g < 0", u, li)
		}
	}
}

// TestRDPOZeroIsDPO: rdpo with flip rate 0 equals dpo on a whole batch, loss, gradients and metrics.
func TestRDPOZeroIsDPO(t *testing.T) {
	pb := &PairBatch{
		ChosenLogP: []float64{-12.5, -3.25, -40, -7}, RejectedLogP: []float64{-13, -2.5, -38.2, -7},
		RefChosenLogP: []float64{-12, -3, -41, -9}, RefRejectedLogP: []float64{-12.5, -3.5, -37, -6},
	}
	a, err := opMustPair(t, "dpo", map[string]string{"beta": "0.3"}).PairLoss(pb)
	if err != nil {
		t.Fatal(err)
	}
	b, err := opMustPair(t, "rdpo", map[string]string{"beta": "0.3", "label_smoothing": "0"}).PairLoss(pb)
	if err != nil {
		t.Fatal(err)
	}
	if a.Loss != b.Loss {
		t.Errorf("loss: dpo %.17g, rdpo(0) %.17g", a.Loss, b.Loss)
	}
	for k := range a.GradChosenLogP {
		if a.GradChosenLogP[k] != b.GradChosenLogP[k] || a.GradRejectedLogP[k] != b.GradRejectedLogP[k] {
			t.Errorf("pair %d: grads differ: %v %v vs %v %v", k, a.GradChosenLogP[k], a.GradRejectedLogP[k], b.GradChosenLogP[k], b.GradRejectedLogP[k])
		}
	}
	for k, v := range a.Metrics {
		if b.Metrics[k] != v {
			t.Errorf("metric %s: dpo %g, rdpo(0) %g", k, v, b.Metrics[k])
		}
	}
}

// TestPreferenceMetrics checks the implicit-reward metrics on a hand-computed batch (beta 0.5):
// D_w = [0.5, -1], D_l = [-0.5, 1] → rewards_w [0.25, -0.5], rewards_l [-0.25, 0.5].
func TestPreferenceMetrics(t *testing.T) {
	pb := &PairBatch{
		ChosenLogP: []float64{-1.5, -4}, RefChosenLogP: []float64{-2, -3},
		RejectedLogP: []float64{-2.5, -1}, RefRejectedLogP: []float64{-2, -2},
	}
	r, err := opMustPair(t, "dpo", map[string]string{"beta": "0.5"}).PairLoss(pb)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"reward_chosen": -0.125, "reward_rejected": 0.125, "reward_margin": -0.25, "reward_accuracy": 0.5, "pairs": 2}
	for k, v := range want {
		if math.Abs(r.Metrics[k]-v) > 1e-12 {
			t.Errorf("%s = %g, want %g", k, r.Metrics[k], v)
		}
	}
}

// TestPreferenceFiniteDifferences checks every gradient against central differences of the batch loss.
func TestPreferenceFiniteDifferences(t *testing.T) {
	base := PairBatch{
		ChosenLogP: []float64{-12.5, -3.25, -40, -7}, RejectedLogP: []float64{-13, -2.5, -38.2, -7.5},
		RefChosenLogP: []float64{-12, -3, -41, -9}, RefRejectedLogP: []float64{-12.5, -3.5, -37, -6},
		ChosenLen: []float64{5, 2, 17, 4}, RejectedLen: []float64{6, 3, 12, 0},
	}
	cases := []struct {
		name string
		set  map[string]string
	}{
		{"dpo", nil}, {"dpo", map[string]string{"beta": "2", "label_smoothing": "0.2"}},
		{"ipo", nil}, {"ipo", map[string]string{"length_normalize": "false", "beta": "0.5"}},
		{"rdpo", map[string]string{"label_smoothing": "0.25", "beta": "1.5"}},
	}
	for _, c := range cases {
		o := opMustPair(t, c.name, c.set)
		r, err := o.PairLoss(&base)
		if err != nil {
			t.Fatal(err)
		}
		for _, side := range []string{"chosen", "rejected"} {
			for k := range base.ChosenLogP {
				pb := opClonePairs(base)
				x, g := &pb.ChosenLogP[k], r.GradChosenLogP[k]
				if side == "rejected" {
					x, g = &pb.RejectedLogP[k], r.GradRejectedLogP[k]
				}
				h := 1e-5
				x0 := *x
				*x = x0 + h
				lp, _ := o.PairLoss(&pb)
				*x = x0 - h
				lm, _ := o.PairLoss(&pb)
				fd := (lp.Loss - lm.Loss) / (2 * h)
				if !opClose(g, fd, 1e-6) {
					t.Errorf("%s %v %s[%d]: grad %.12g, finite difference %.12g", c.name, c.set, side, k, g, fd)
				}
			}
		}
	}
}

func opClonePairs(b PairBatch) PairBatch {
	cp := func(v []float64) []float64 { return append([]float64(nil), v...) }
	return PairBatch{cp(b.ChosenLogP), cp(b.RejectedLogP), cp(b.RefChosenLogP), cp(b.RefRejectedLogP), cp(b.ChosenLen), cp(b.RejectedLen)}
}

// opClose reports |a-b| <= tol·max(|a|,|b|), with an absolute floor of tol for values near zero.
func opClose(a, b, tol float64) bool {
	return math.Abs(a-b) <= tol*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func TestPairBadInputAndParams(t *testing.T) {
	good := func() *PairBatch { return opOnePair(1) }
	inputs := []struct {
		name string
		mut  func(*PairBatch)
		want string
	}{
		{"ragged", func(b *PairBatch) { b.RejectedLogP = []float64{1, 2} }, "rejected_logp has 2 values"},
		{"nan", func(b *PairBatch) { b.RefChosenLogP[0] = math.NaN() }, "ref_chosen_logp[0]"},
		{"inf", func(b *PairBatch) { b.ChosenLogP[0] = math.Inf(-1) }, "chosen_logp[0]"},
		{"empty", func(b *PairBatch) { *b = PairBatch{} }, "chosen_logp is empty"},
		{"ipo no len", func(b *PairBatch) { b.ChosenLen = nil }, "chosen_len has 0 values"},
		{"negative len", func(b *PairBatch) { b.RejectedLen[0] = -1 }, "rejected_len[0]"},
	}
	ipo := opMustPair(t, "ipo", nil)
	for _, c := range inputs {
		b := good()
		c.mut(b)
		_, err := ipo.PairLoss(b)
		if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want ErrBadInput mentioning %q", c.name, err, c.want)
		}
	}
	params := []struct {
		name string
		set  map[string]string
		want string
	}{
		{"rdpo", map[string]string{"label_smoothing": "0.5"}, "[0, 0.5)"},
		{"dpo", map[string]string{"beta": "0"}, "beta"},
		{"dpo", map[string]string{"beta": "x"}, "beta"},
		{"ipo", map[string]string{"label_smoothing": "0.1"}, `unknown parameter "label_smoothing"`},
		{"nope", nil, "unknown preference loss"},
	}
	for _, c := range params {
		if _, err := NewPair(c.name, c.set); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewPair(%s, %v): err %v, want mention of %q", c.name, c.set, err, c.want)
		}
	}
}

// TestPairRegistry: the preference losses are listed, and no name is both a pair and a token objective
// (polo objective dispatches on IsPair).
func TestPairRegistry(t *testing.T) {
	if got := strings.Join(PairNames(), ","); got != "dpo,ipo,rdpo" {
		t.Errorf("PairNames = %s", got)
	}
	for _, n := range PairNames() {
		if _, _, ok := Describe(n); ok {
			t.Errorf("%s is registered as both a pair and a token objective", n)
		}
		if s, d, ok := DescribePair(n); !ok || s == "" || d["beta"] == "" {
			t.Errorf("DescribePair(%s) = %q %v %v", n, s, d, ok)
		}
	}
	if IsPair("grpo") || !IsPair("dpo") {
		t.Error("IsPair wrong")
	}
}
