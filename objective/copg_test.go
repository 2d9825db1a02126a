package objective

import (
	"errors"
	"math"
	"testing"
)

// opCloneBatch deep-copies the matrices a finite-difference check perturbs.
func opCloneBatch(b *Batch) *Batch {
	c := *b
	c.LogP = make([][]float64, len(b.LogP))
	for i := range b.LogP {
		c.LogP[i] = append([]float64(nil), b.LogP[i]...)
	}
	return &c
}

// opCheckGrad compares every gradient entry at a valid token with a central difference of the loss
// (relative tolerance tol) and checks that masked tokens get no gradient.
func opCheckGrad(t *testing.T, name string, o Objective, b *Batch, tol float64) {
	t.Helper()
	r, err := o.Loss(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	const h = 1e-5
	for i := range b.Mask {
		for j, m := range b.Mask[i] {
			if m == 0 {
				if r.GradLogP[i][j] != 0 {
					t.Errorf("%s: grad at masked [%d][%d] = %g", name, i, j, r.GradLogP[i][j])
				}
				continue
			}
			c := opCloneBatch(b)
			c.LogP[i][j] = b.LogP[i][j] + h
			lp, err1 := o.Loss(c)
			c.LogP[i][j] = b.LogP[i][j] - h
			lm, err2 := o.Loss(c)
			if err1 != nil || err2 != nil {
				t.Fatalf("%s: %v %v", name, err1, err2)
			}
			fd := (lp.Loss - lm.Loss) / (2 * h)
			if !opClose(r.GradLogP[i][j], fd, tol) {
				t.Errorf("%s: grad[%d][%d] = %.12g, finite difference %.12g", name, i, j, r.GradLogP[i][j], fd)
			}
		}
	}
}

func opMust(t *testing.T, name string, set map[string]string) Objective {
	t.Helper()
	o, err := New(name, set)
	if err != nil {
		t.Fatalf("New(%s, %v): %v", name, set, err)
	}
	return o
}

// TestCoPGSpecNumbers: k = 2, R = [1, 0], β = 0.1, S − Sref = [0.5, −0.5] → Rb = [0.95, 0.05],
// loss 0.81, ∂ℓ/∂S = [−0.18, +0.18] on every valid token.
func TestCoPGSpecNumbers(t *testing.T) {
	b := &Batch{
		LogP:    [][]float64{{-0.25, -0.75, 9}, {-1, -1.5, 0}},
		RefLogP: [][]float64{{-0.5, -1, 0}, {-0.75, -1.25, 0}},
		Mask:    [][]float64{{1, 1, 0}, {1, 1, 0}},
		Rewards: []float64{1, 0},
		Group:   []int{7, 7},
	}
	r, err := opMust(t, "copg", nil).Loss(b)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(r.Loss-0.81) > 1e-12 {
		t.Errorf("loss %.15f, want 0.81", r.Loss)
	}
	want := [][]float64{{-0.18, -0.18, 0}, {0.18, 0.18, 0}}
	for i := range want {
		for j := range want[i] {
			if math.Abs(r.GradLogP[i][j]-want[i][j]) > 1e-12 {
				t.Errorf("grad[%d][%d] = %.15f, want %g", i, j, r.GradLogP[i][j], want[i][j])
			}
		}
	}
	if math.Abs(r.Metrics["reward_reg_mean"]-0.5) > 1e-12 || r.Metrics["groups"] != 1 {
		t.Errorf("metrics %v", r.Metrics)
	}
}

// TestCoPGIsScaledIPO is the spec's special case: for a pair with R_w − R_l = 1/2, the CoPG loss is
// β²·ℓ_IPO(u) with τ = β on unnormalised log-ratios, and so are its gradients.
func TestCoPGIsScaledIPO(t *testing.T) {
	for _, beta := range []float64{0.1, 0.5, 2} {
		for _, u := range []float64{-3, 0, 0.7, 2, 5} {
			// chosen: S − Sref = u/2 + 0.1, rejected: −u/2 + 0.1 → margin u.
			b := &Batch{
				LogP:    [][]float64{{-1, -2 + u/2 + 0.1}, {-3, -1 - u/2 + 0.1}},
				RefLogP: [][]float64{{-1, -2}, {-3, -1}},
				Mask:    [][]float64{{1, 1}, {1, 1}},
				Rewards: []float64{0.25 + 3, -0.25 + 3}, // shifted by 3: CoPG ignores a per-prompt constant
			}
			c := &CoPG{Beta: beta}
			r, err := c.Loss(b)
			if err != nil {
				t.Fatal(err)
			}
			ipo := &Preference{Kind: "ipo", Beta: beta}
			pr, err := ipo.PairLoss(&PairBatch{
				ChosenLogP: []float64{-3 + u/2 + 0.1}, RefChosenLogP: []float64{-3},
				RejectedLogP: []float64{-4 - u/2 + 0.1}, RefRejectedLogP: []float64{-4},
			})
			if err != nil {
				t.Fatal(err)
			}
			b2 := beta * beta
			if math.Abs(r.Loss-b2*pr.Loss) > 1e-9*math.Max(1, r.Loss) {
				t.Errorf("beta %g u %g: copg %.12g, beta²·ipo %.12g", beta, u, r.Loss, b2*pr.Loss)
			}
			if math.Abs(r.GradLogP[0][1]-b2*pr.GradChosenLogP[0]) > 1e-9 || math.Abs(r.GradLogP[1][0]-b2*pr.GradRejectedLogP[0]) > 1e-9 {
				t.Errorf("beta %g u %g: grads %g %g, beta²·ipo %g %g", beta, u, r.GradLogP[0][1], r.GradLogP[1][0], b2*pr.GradChosenLogP[0], b2*pr.GradRejectedLogP[0])
			}
		}
	}
}

// TestCoPGFixedPoint: when log π/π_ref = R/β − log Z for every response, each Rb_i = β·log Z and the
// loss and gradient vanish, for any (off-policy) set of samples.
func TestCoPGFixedPoint(t *testing.T) {
	beta, logZ := 0.2, 1.7
	R := []float64{1, 0, 0.5, -2, 3}
	b := &Batch{Rewards: R, Group: []int{0, 0, 0, 1, 1}}
	for _, r := range R {
		d := r/beta - logZ // split over two tokens
		b.LogP = append(b.LogP, []float64{-1 + d/3, -2 + 2*d/3})
		b.RefLogP = append(b.RefLogP, []float64{-1, -2})
		b.Mask = append(b.Mask, []float64{1, 1})
	}
	r, err := (&CoPG{Beta: beta}).Loss(b)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(r.Loss) > 1e-20 {
		t.Errorf("loss %g, want 0", r.Loss)
	}
	for i := range r.GradLogP {
		for j := range r.GradLogP[i] {
			if math.Abs(r.GradLogP[i][j]) > 1e-12 {
				t.Errorf("grad[%d][%d] = %g, want 0", i, j, r.GradLogP[i][j])
			}
		}
	}
}

func TestCoPGFiniteDifferences(t *testing.T) {
	b := &Batch{
		LogP:    [][]float64{{-0.3, -1.2, -0.8}, {-2, -0.1, 0}, {-0.5, -0.5, -0.5}, {-1, -3, 0}, {-0.2, 0, 0}, {-4, -1, -1}},
		RefLogP: [][]float64{{-0.5, -1, -1}, {-1.5, -0.2, 0}, {-0.4, -0.9, -0.1}, {-1.1, -2, 0}, {-0.3, 0, 0}, {-3, -1, -2}},
		Mask:    [][]float64{{1, 1, 1}, {1, 1, 0}, {1, 1, 1}, {1, 1, 0}, {1, 0, 0}, {1, 1, 1}},
		Rewards: []float64{1, 0, 0.3, 2, -1, 5},
		Group:   []int{0, 0, 0, 1, 1, 2}, // group 2 is a singleton
	}
	for _, beta := range []string{"0.1", "1"} {
		o := opMust(t, "copg", map[string]string{"beta": beta})
		opCheckGrad(t, "copg beta="+beta, o, b, 1e-6)
		r, _ := o.Loss(b)
		if r.Metrics["groups"] != 2 || r.Metrics["singleton_groups"] != 1 {
			t.Errorf("metrics %v", r.Metrics)
		}
		adv, err := o.Advantages(b)
		if err != nil {
			t.Fatal(err)
		}
		// Advantages are −∂ℓ_group/∂S per token: −grad·#groups.
		for i := range adv {
			for j := range adv[i] {
				if math.Abs(adv[i][j]+2*r.GradLogP[i][j]) > 1e-12 {
					t.Errorf("adv[%d][%d] = %g, want %g", i, j, adv[i][j], -2*r.GradLogP[i][j])
				}
			}
		}
	}
}

func TestCoPGBadInput(t *testing.T) {
	base := func() *Batch {
		return &Batch{LogP: [][]float64{{-1}, {-2}}, RefLogP: [][]float64{{-1}, {-2}}, Mask: [][]float64{{1}, {1}}, Rewards: []float64{1, 0}}
	}
	muts := map[string]func(*Batch){
		"no rewards":  func(b *Batch) { b.Rewards = nil },
		"no ref":      func(b *Batch) { b.RefLogP = nil },
		"ragged logp": func(b *Batch) { b.LogP[1] = []float64{-1, -2} },
		"nan reward":  func(b *Batch) { b.Rewards[0] = math.NaN() },
		"short group": func(b *Batch) { b.Group = []int{1} },
		"nan logp":    func(b *Batch) { b.LogP[0][0] = math.NaN() },
	}
	for name, mut := range muts {
		b := base()
		mut(b)
		if _, err := (&CoPG{Beta: 0.1}).Loss(b); !errors.Is(err, ErrBadInput) {
			t.Errorf("%s: err %v, want ErrBadInput", name, err)
		}
	}
}
