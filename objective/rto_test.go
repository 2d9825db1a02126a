package objective

import (
	"fmt"
	"math"
	"testing"
)

// TestRTOTokenReward reproduces B5's three tokens (β1 = 0.05, c = 0.05, β2 = 0.01), each a non-final
// token of its row: (lpDpo − lpRef, lpOld − lpRef) = (0.4, 0.3) → 0.017, (2.0, 0.3) → 0.047 (DPO part
// clipped to 0.05), (−3, 0) → −0.05; the last token carries the clamped score (12 → 10, −20 → −10).
func TestRTOTokenReward(t *testing.T) {
	o := opMust(t, "rto", nil).(*RTO)
	ref := [][]float64{{-1, -2, -1.5, -0.5}, {-0.7, -1, 0, 0}}
	dpo := [][]float64{{-0.6, 0, -4.5, -0.5}, {-0.7, -1, 0, 0}}
	old := [][]float64{{-0.7, -1.7, -1.5, -0.5}, {-0.7, -1, 0, 0}}
	mask := [][]float64{{1, 1, 1, 1}, {1, 1, 0, 0}}
	dr, err := o.DPOTokenRewards(dpo, ref, mask)
	if err != nil {
		t.Fatal(err)
	}
	b := &Batch{LogP: old, OldLogP: old, RefLogP: ref, Mask: mask, Rewards: []float64{12, -20}, TokenRewards: dr}
	r, err := o.TokenRewards(b)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]float64{{0.017, 0.047, -0.05, 10}, {0, -10, 0, 0}}
	for i := range want {
		for j := range want[i] {
			if math.Abs(r[i][j]-want[i][j]) > 1e-12 {
				t.Errorf("r[%d][%d] = %.15f, want %g", i, j, r[i][j], want[i][j])
			}
		}
	}
	// β1 <= 0 means unscaled (authors' code), and the clip still bounds it.
	o2 := &RTO{DPOScale: 0, DPOClip: 0.05}
	if d, _ := o2.DPOTokenRewards([][]float64{{0.03}}, [][]float64{{0}}, [][]float64{{1}}); math.Abs(d[0][0]-0.03) > 1e-15 {
		t.Errorf("unscaled DPO reward %g, want 0.03", d[0][0])
	}
}

// TestRTOGAE checks GAE by hand on one row with a critic, skipping a masked token, and that without the
// DPO and KL terms RTO is PPO with a terminal reward (advantage = discounted return without a critic).
func TestRTOGAE(t *testing.T) {
	o := &RTO{KLCoef: 0, RewardMax: 10, Gamma: 0.9, Lambda: 0.5, Clip: 0.2}
	b := &Batch{
		LogP: [][]float64{{-1, -1, -1, -1}}, OldLogP: [][]float64{{-1, -1, -1, -1}}, RefLogP: [][]float64{{-1, -1, -1, -1}},
		Mask:         [][]float64{{1, 0, 1, 1}},
		TokenRewards: [][]float64{{0.1, 0, 0.2, -0.1}},
		Values:       [][]float64{{0.5, 9, 0.4, 0.3}},
		Rewards:      []float64{1},
	}
	adv, err := o.Advantages(b)
	if err != nil {
		t.Fatal(err)
	}
	// t=3: δ = (−0.1+1) − 0.3 = 0.6, A = 0.6. t=2: δ = 0.2 + 0.9·0.3 − 0.4 = 0.07, A = 0.07 + 0.45·0.6 = 0.34.
	// t=0 (next valid is t=2): δ = 0.1 + 0.9·0.4 − 0.5 = −0.04, A = −0.04 + 0.45·0.34 = 0.113.
	want := []float64{0.113, 0, 0.34, 0.6}
	for j := range want {
		if math.Abs(adv[0][j]-want[j]) > 1e-12 {
			t.Errorf("adv[%d] = %.15f, want %g", j, adv[0][j], want[j])
		}
	}
	ret, _ := o.Returns(b)
	if math.Abs(ret[0][0]-0.613) > 1e-12 || ret[0][1] != 0 {
		t.Errorf("returns %v", ret[0])
	}
	b.Values, b.TokenRewards = nil, nil
	adv, _ = o.Advantages(b)
	for j, w := range []float64{0.81, 0, 0.9, 1} {
		if math.Abs(adv[0][j]-w) > 1e-12 {
			t.Errorf("no critic adv[%d] = %.15f, want %g", j, adv[0][j], w)
		}
	}
}

func TestRTOLossFiniteDifferencesAndWhitening(t *testing.T) {
	b := &Batch{
		LogP:    [][]float64{{-0.8, -1.4, -0.2}, {-1.6, -0.9, 0}},
		OldLogP: [][]float64{{-1, -1.2, -0.6}, {-1.5, -1, 0}},
		RefLogP: [][]float64{{-1.1, -1, -0.5}, {-1.5, -1.3, 0}},
		Values:  [][]float64{{0.2, 0.1, 0.3}, {-0.4, 0.2, 0}},
		Mask:    [][]float64{{1, 1, 1}, {1, 1, 0}},
		Rewards: []float64{1, -1},
	}
	o := opMust(t, "rto", nil)
	adv, err := o.Advantages(b)
	if err != nil {
		t.Fatal(err)
	}
	var s, ss float64
	for i, row := range b.Mask {
		for j, m := range row {
			s += m * adv[i][j]
			ss += m * adv[i][j] * adv[i][j]
		}
	}
	if math.Abs(s/5) > 1e-12 || math.Abs(ss/5-1) > 1e-6 {
		t.Errorf("whitened advantages: mean %g, var %g", s/5, ss/5)
	}
	b.Advantages = adv
	opCheckGrad(t, "rto", o, b, 1e-6)
	r, _ := o.Loss(b)
	if r.Metrics["clip_frac"] == 0 {
		t.Errorf("expected some clipped tokens: %v", r.Metrics)
	}
	// A bad batch is an error naming the field.
	b.Rewards = nil
	if _, err := o.Advantages(b); err == nil || fmt.Sprint(err) == "" {
		t.Error("missing rewards accepted")
	}
}
