package objective

import (
	"fmt"
	"math"
)

// ValueLoss is PPO's clipped critic loss 0.5·agg(max((V - R)², (clip(V, V_old ± epsV) - R)²)) with
// the aggregation mode of the policy loss; it returns the loss and dLoss/dV per token. returns are the
// GAE returns (GAE's second result, computed before whitening).
func ValueLoss(values, oldValues, returns, mask [][]float64, epsV float64, agg string, maxLen float64) (float64, [][]float64, error) {
	w, err := AggWeights(agg, mask, maxLen, 0, 0)
	if err != nil {
		return 0, nil, err
	}
	grad := newLike(mask)
	var loss float64
	for i, row := range mask {
		for t, m := range row {
			if m == 0 {
				continue
			}
			v, r := values[i][t], returns[i][t]
			lo, hi := oldValues[i][t]-epsV, oldValues[i][t]+epsV
			vc, dvc := math.Min(math.Max(v, lo), hi), 1.0
			if v < lo || v > hi {
				dvc = 0
			}
			a, b := (v-r)*(v-r), (vc-r)*(vc-r)
			if a >= b {
				loss += w[i][t] * 0.5 * a
				grad[i][t] = w[i][t] * (v - r)
			} else {
				loss += w[i][t] * 0.5 * b
				grad[i][t] = w[i][t] * (vc - r) * dvc
			}
		}
	}
	return loss, grad, nil
}

// AdaptiveKL is the adaptive KL-in-reward coefficient (Ziegler et al. 2019, as verl):
// e = clip(KL/target - 1, ±0.2), beta ← beta·(1 + e·nSteps/horizon). The trainer keeps it next to a
// ppo preset (set beta from Beta before each rollout) and checkpoints Beta.
type AdaptiveKL struct {
	Beta, Target, Horizon float64
}

// Update moves Beta after nSteps samples whose measured KL to the reference was kl.
func (a *AdaptiveKL) Update(kl float64, nSteps int) error {
	if a.Target <= 0 || a.Horizon <= 0 {
		return fmt.Errorf("adaptive KL: target=%v and horizon=%v must be > 0", a.Target, a.Horizon)
	}
	e := math.Max(-0.2, math.Min(0.2, kl/a.Target-1))
	a.Beta *= 1 + e*float64(nSteps)/a.Horizon
	return nil
}
