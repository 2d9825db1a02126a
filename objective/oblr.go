package objective

import (
	"fmt"
	"math"
)

// OBLR-PO (Huang et al., arXiv 2511.23310). Only the abstract was available: the gradient-weighted
// baseline below is the standard variance-optimal baseline and the SNR learning rate a standard
// derivation (docs/objectives.md marks both unverified). Input: Batch.GradWeight (w_i ≈ ‖∇log π(o_i)‖²,
// e.g. the sum over tokens of GradNormProxy).
func init() {
	registerSurrogate("oblr", "OBLR-PO (provisional): gradient-norm-weighted group baseline (input grad_weight), PPO clip",
		OBLRParams{PolicyParams: DefaultPolicyParams()},
		func() *Surrogate { return &Surrogate{Ratio: RatioToken, Gate: GateClip} },
		func(c *OBLRParams, s *Surrogate) (Objective, error) {
			loo := c.LOO
			s.advNeed = needRewards | needGroup | needGradWeight
			s.advFn = func(b *Batch) ([][]float64, error) {
				if err := check(b, needRewards|needGroup|needGradWeight); err != nil {
					return nil, err
				}
				return broadcast(WeightedBaselineAdvantages(s.adv.outcome(b), b.GradWeight, b.Group, b.Mask, loo), b.Mask), nil
			}
			return nil, nil
		})
}

// OBLRParams configure oblr: loo leaves each response out of its own baseline.
type OBLRParams struct {
	PolicyParams
	LOO bool `param:"loo"`
}

// WeightedBaselineAdvantages returns r_i - b_g with b_g = Σ w_j r_j / Σ w_j over the group (with loo,
// over the other members). A group of one, or zero total weight, falls back to the plain mean
// baseline (A = r for a group of one, as RLOO).
func WeightedBaselineAdvantages(r, w []float64, group []int, mask [][]float64, loo bool) []float64 {
	a := make([]float64, len(r))
	for _, g := range groups(group, mask) {
		if len(g) == 1 {
			a[g[0]] = r[g[0]]
			continue
		}
		var sw, swr, sr float64
		for _, i := range g {
			sw += w[i]
			swr += w[i] * r[i]
			sr += r[i]
		}
		for _, i := range g {
			num, den := swr, sw
			plainNum, plainDen := sr, float64(len(g))
			if loo {
				num, den = num-w[i]*r[i], den-w[i]
				plainNum, plainDen = plainNum-r[i], plainDen-1
			}
			if den > 0 {
				a[i] = r[i] - num/den
			} else {
				a[i] = r[i] - plainNum/plainDen
			}
		}
	}
	return a
}

// GradNormProxy is the squared norm of the log-softmax gradient with respect to the logits at one
// position: 1 - 2·p_sampled + Σ_v p_v². Summed over a response's tokens it approximates w_i.
func GradNormProxy(pSampled, sumSq float64) float64 { return 1 - 2*pSampled + sumSq }

// SNRLearningRate returns eta_max·SNR/(1+SNR) from K ≥ 2 equally sized micro-batch gradients of one
// step: ḡ = mean g_k, v = Σ‖g_k - ḡ‖²/(K(K-1)) (variance of the mean), S = max(‖ḡ‖² - v, 0),
// SNR = S/v (+Inf when v = 0 and S > 0).
func SNRLearningRate(grads [][]float64, etaMax float64) (eta, snr float64, err error) {
	k := len(grads)
	if k < 2 {
		return 0, 0, fmt.Errorf("SNR learning rate needs at least 2 micro-batch gradients, got %d", k)
	}
	n := len(grads[0])
	mean := make([]float64, n)
	for _, g := range grads {
		if len(g) != n {
			return 0, 0, fmt.Errorf("SNR learning rate: gradients of different sizes %d and %d", len(g), n)
		}
		for j, x := range g {
			mean[j] += x / float64(k)
		}
	}
	var v, s float64
	for _, g := range grads {
		for j, x := range g {
			v += (x - mean[j]) * (x - mean[j])
		}
	}
	v /= float64(k * (k - 1))
	for _, x := range mean {
		s += x * x
	}
	s = math.Max(s-v, 0)
	switch {
	case v == 0 && s == 0:
		return 0, 0, nil
	case v == 0:
		return etaMax, math.Inf(1), nil
	}
	snr = s / v
	return etaMax * snr / (1 + snr), snr, nil
}
