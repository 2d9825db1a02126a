package objective

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestISWeightsByHand: token and sequence weights w = exp(old − rollout), truncated (tis) or
// masked (mis), against numbers worked out by hand.
func TestISWeightsByHand(t *testing.T) {
	old := [][]float64{{-1, -2, -0.5, 0}}
	roll := [][]float64{{-1.5, -1, -0.5, 0}}
	mask := [][]float64{{1, 1, 1, 0}}
	e := math.Exp
	tests := []struct {
		p       OffPolicyParams
		want    []float64
		changed int
	}{
		{OffPolicyParams{IS: ISTIS, ISLevel: RatioToken, ISCap: 1.5}, []float64{1.5, e(-1), 1, 0}, 1},
		{OffPolicyParams{IS: ISMIS, ISLevel: RatioToken, ISCap: 1.5}, []float64{0, e(-1), 1, 0}, 1},
		{OffPolicyParams{IS: ISMIS, ISLevel: RatioToken, ISCap: 1.5, ISCapLo: 0.5}, []float64{0, 0, 1, 0}, 2},
		{OffPolicyParams{IS: ISTIS, ISLevel: RatioToken, ISCap: 2}, []float64{e(0.5), e(-1), 1, 0}, 0},
		// sequence: exp(0.5 − 1 + 0) = e^−0.5 ≈ 0.6065 for every token
		{OffPolicyParams{IS: ISTIS, ISLevel: RatioSequence, ISCap: 0.5}, []float64{0.5, 0.5, 0.5, 0}, 1},
		{OffPolicyParams{IS: ISTIS, ISLevel: RatioSequence, ISCap: 2}, []float64{e(-0.5), e(-0.5), e(-0.5), 0}, 0},
		{OffPolicyParams{IS: ISMIS, ISLevel: RatioSequence, ISCap: 0.6}, []float64{0, 0, 0, 0}, 1},
	}
	for _, tc := range tests {
		w, changed := tc.p.ISWeights(old, roll, mask)
		for k := range tc.want {
			if math.Abs(w[0][k]-tc.want[k]) > 1e-12 || changed != tc.changed {
				t.Errorf("%+v: weights %v (%d changed), want %v (%d)", tc.p, w[0], changed, tc.want, tc.changed)
				break
			}
		}
	}
	// mismatch metrics: d = old − rollout = (0.5, −1, 0)
	b := &Batch{OldLogP: old, Mask: mask, Extra: map[string]any{InRolloutLogP: roll}}
	m := map[string]float64{}
	MismatchMetrics(b, m)
	want := map[string]float64{
		"mismatch_kl_k1": (-0.5 + 1 + 0) / 3,
		"mismatch_kl_k3": ((e(0.5) - 1 - 0.5) + (e(-1) - 1 + 1) + 0) / 3,
		"is_ratio_mean":  (e(0.5) + e(-1) + 1) / 3, "is_ratio_min": e(-1), "is_ratio_max": e(0.5),
	}
	for k, v := range want {
		if math.Abs(m[k]-v) > 1e-12 {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
}

// offBatch is a random batch whose rollout log-probs are near the old ones, so that some ratios
// exceed a cap of 1.1 and some do not.
func offBatch(seed uint64) *Batch {
	rng := rand.New(rand.NewPCG(seed, 17))
	b := randomBatch(rng, 6, 7, 3)
	r := newLike(b.Mask)
	for i := range r {
		for t := range r[i] {
			r[i][t] = b.OldLogP[i][t] + 0.2*rng.NormFloat64()
		}
	}
	b.Extra[InRolloutLogP] = r
	return b
}

// TestOffPolicyCorrectionLoss: with beta = 0 and no entropy bonus, each token's gradient is the
// uncorrected one times its weight, for every level and kind; the gradient matches finite
// differences; the metrics report the weights; without rollout_logp the loss refuses.
func TestOffPolicyCorrectionLoss(t *testing.T) {
	for _, algo := range []string{"grpo", "gspo", "dapo", "cispo"} {
		for _, set := range []map[string]string{
			{"is": "tis", "is_cap": "1.1"}, {"is": "mis", "is_cap": "1.1"},
			{"is": "tis", "is_level": "sequence", "is_cap": "1.2"}, {"is": "mis", "is_level": "sequence", "is_cap": "1.5", "is_cap_low": "0.5"},
		} {
			name := algo + "/" + set["is"] + "/" + set["is_level"]
			plainSet := map[string]string{"beta": "0"}
			set["beta"] = "0"
			plain, err := New(algo, plainSet)
			if err != nil {
				t.Fatal(err)
			}
			corr, err := New(algo, set)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !slices.Contains(corr.Inputs(), InRolloutLogP) || slices.Contains(plain.Inputs(), InRolloutLogP) {
				t.Errorf("%s: inputs %v; rollout_logp must be declared exactly when is != none", name, corr.Inputs())
			}
			b := offBatch(3)
			adv, err := corr.Advantages(b)
			if err != nil {
				t.Fatal(err)
			}
			b.Advantages = adv
			p := corr.(*Surrogate).OffPolicy
			w, _ := p.ISWeights(b.OldLogP, b.Extra[InRolloutLogP].([][]float64), b.Mask)
			r0, err := plain.Loss(b)
			if err != nil {
				t.Fatal(err)
			}
			r1, err := corr.Loss(b)
			if err != nil {
				t.Fatal(err)
			}
			zeros, ones := 0, 0
			for i := range b.Mask {
				for k := range b.Mask[i] {
					if d := math.Abs(r1.GradLogP[i][k] - w[i][k]*r0.GradLogP[i][k]); d > 1e-12 {
						t.Fatalf("%s: grad[%d][%d] = %v, want w·uncorrected = %v·%v", name, i, k, r1.GradLogP[i][k], w[i][k], r0.GradLogP[i][k])
					}
					if b.Mask[i][k] != 0 && w[i][k] == 0 {
						zeros++
					}
					if b.Mask[i][k] != 0 && w[i][k] != 0 {
						ones++
					}
				}
			}
			if set["is"] == "mis" && (zeros == 0 || ones == 0) {
				t.Errorf("%s: %d masked and %d kept tokens; the test batch should have both", name, zeros, ones)
			}
			if r1.Metrics["is_capped_frac"] <= 0 || r1.Metrics["is_weight_mean"] <= 0 || r1.Metrics["mismatch_kl_k3"] <= 0 {
				t.Errorf("%s: metrics %v", name, r1.Metrics)
			}
			checkGradFD(t, name, corr, b)
			delete(b.Extra, InRolloutLogP)
			if _, err := corr.Loss(b); err == nil || !strings.Contains(err.Error(), "rollout_logp") {
				t.Errorf("%s without rollout_logp: %v", name, err)
			}
		}
	}
	for _, bad := range []map[string]string{{"is": "xis"}, {"is": "tis", "is_cap": "0"}, {"is": "tis", "is_cap_low": "0.5"}, {"is": "mis", "is_cap": "2", "is_cap_low": "3"}} {
		if _, err := New("grpo", bad); err == nil {
			t.Errorf("grpo with %v: no error", bad)
		}
	}
}

// TestOffPolicyEverySurrogatePreset: every preset built on the shared Surrogate core accepts the
// option group.
func TestOffPolicyEverySurrogatePreset(t *testing.T) {
	n := 0
	var with, without []string
	defer func() { t.Logf("with the option: %v; not Surrogate presets: %v", with, without) }()
	for _, name := range Names() {
		o, err := New(name, nil)
		if err != nil {
			continue
		}
		if _, ok := o.(*Surrogate); !ok {
			// a preset wrapping the core may take the option too; then it must declare the input
			if c, err := New(name, map[string]string{"is": "tis"}); err == nil {
				with = append(with, name+"(wrapped)")
				if !slices.Contains(c.Inputs(), InRolloutLogP) {
					t.Errorf("%s accepts is=tis but does not declare rollout_logp", name)
				}
			} else {
				without = append(without, name)
			}
			continue
		}
		n++
		with = append(with, name)
		c, err := New(name, map[string]string{"is": "tis"})
		if err != nil {
			t.Errorf("%s with is=tis: %v", name, err)
			continue
		}
		if !slices.Contains(c.Inputs(), InRolloutLogP) {
			t.Errorf("%s with is=tis does not declare rollout_logp", name)
		}
	}
	if n < 10 {
		t.Errorf("only %d Surrogate presets found", n)
	}
}
