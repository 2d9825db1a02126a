package objective

import (
	"fmt"
	"math"
)

// DCPO (Li et al., arXiv 2601.12730): the GRPO advantage mixed with a REINFORCE-style term under the
// old policy at another temperature, A' = (1-α)A + α·1[correct]·q. Inputs: Batch.MeanEntropy and
// Batch.TargetRatio (q, from the old policy's logits at TargetTemperature).
func init() {
	registerSurrogate("dcpo", "DCPO: advantage mixed with a temperature-shifted old-policy ratio steered by entropy (inputs mean_entropy, target_ratio)",
		DCPOParams{SurrogateParams: group(func(p *SurrogateParams) { p.DualClip = 3 }),
			EntropyBase: 0.5, THigh: 1.2, TLow: 0.8, AlphaCap: 0.1, CorrectThreshold: 0.05},
		func() *Surrogate {
			return &Surrogate{adv: advConfig{kind: advGroup}, Ratio: RatioToken, Gate: GateClip}
		},
		func(c *DCPOParams, s *Surrogate) (Objective, error) {
			d := &DCPO{base: s.adv, H0: c.EntropyBase, THigh: c.THigh, TLow: c.TLow, cap: c.AlphaCap, thr: c.CorrectThreshold}
			if d.THigh <= 0 || d.TLow <= 0 {
				return nil, fmt.Errorf("t_high=%v, t_low=%v: want > 0", d.THigh, d.TLow)
			}
			s.advFn, s.advNeed = d.advantages, s.adv.need()|needTarget|needMeanEntropy
			s.dist = DistConfig{TargetTemperature: d.TargetTemperature, TargetTemperatures: []float64{d.THigh, d.TLow}}
			return nil, nil
		})
}

// DCPOParams configure dcpo: the entropy pivot, the two target temperatures, the cap of the mixing
// weight and the reward above which a response counts as correct.
type DCPOParams struct {
	SurrogateParams
	EntropyBase      float64 `param:"entropy_base"`
	THigh            float64 `param:"t_high"`
	TLow             float64 `param:"t_low"`
	AlphaCap         float64 `param:"alpha_cap"`
	CorrectThreshold float64 `param:"correct_threshold"`
}

// DCPO holds the distribution-level regulariser's settings.
type DCPO struct {
	base            advConfig
	H0, THigh, TLow float64
	cap, thr        float64
}

// TargetTemperature is the temperature of the virtual target distribution: t_high when the policy's
// mean entropy is at or below entropy_base (explore more), else t_low.
func (d *DCPO) TargetTemperature(meanEntropy float64) float64 {
	if meanEntropy <= d.H0 {
		return d.THigh
	}
	return d.TLow
}

// Alpha is the mixing weight: a = min(|H0 - H|, alpha_cap)/p_corr, α = a/(a+1); 0 when no response
// is correct (a guard the reference code lacks).
func (d *DCPO) Alpha(meanEntropy, pCorrect float64) float64 {
	if pCorrect <= 0 {
		return 0
	}
	a := math.Min(math.Abs(d.H0-meanEntropy), d.cap) / pCorrect
	return a / (a + 1)
}

func (d *DCPO) advantages(b *Batch) ([][]float64, error) {
	if err := check(b, d.base.need()); err != nil {
		return nil, err
	}
	a := broadcast(GroupAdvantages(d.base.outcome(b), b.Group, b.Mask, d.base.std, d.base.eps, d.base.singleton), b.Mask)
	lens := rowLens(b.Mask)
	var n, correct float64
	for i, l := range lens {
		if l > 0 {
			n++
			if b.Rewards[i] > d.thr {
				correct++
			}
		}
	}
	alpha := d.Alpha(b.MeanEntropy, correct/n)
	if alpha == 0 {
		return a, nil
	}
	if err := check(b, needTarget); err != nil {
		return nil, err
	}
	for i, row := range b.Mask {
		c := 0.0
		if b.Rewards[i] > d.thr {
			c = 1
		}
		for t, m := range row {
			if m != 0 {
				a[i][t] = (1-alpha)*a[i][t] + alpha*c*b.TargetRatio[i][t]
			}
		}
	}
	return a, nil
}
