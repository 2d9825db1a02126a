package objective

import (
	"fmt"
	"math"

	"github.com/polo-rl/polo/internal/fmath"
)

// BNPO (Xiao et al., arXiv 2506.02864): advantages normalised by a Beta density fitted to the
// per-prompt success rates, optionally computed per reward component and averaged.
func init() {
	registerSurrogate("bnpo", "BNPO: Beta-normalised advantages (x - p_g)/f_Beta(p_g), optional per-component decomposition",
		BNPOParams{PolicyParams: policy(func(p *PolicyParams) { p.EpsHigh, p.DualClip, p.Agg = 0.28, 10, AggSeqMeanTokenSum }), RMax: 1},
		func() *Surrogate { return &Surrogate{Ratio: RatioToken, Gate: GateClip} },
		func(c *BNPOParams, s *Surrogate) (Objective, error) {
			est, err := bnpoEstimator(c.RMin, c.RMax, c.Decompose)
			s.advFn, s.advNeed = est, needRewards|needGroup
			if c.Decompose {
				s.advNeed = needComponents | needGroup
			}
			return nil, err
		})
}

// BNPOParams configure bnpo: the reward range [r_min, r_max] mapped to [0, 1], and whether advantages
// are computed per reward component and averaged.
type BNPOParams struct {
	PolicyParams
	RMin      float64 `param:"r_min"`
	RMax      float64 `param:"r_max"`
	Decompose bool    `param:"decompose"`
}

// bnpoEstimator builds the advantage estimator from the preset's parameters.
func bnpoEstimator(lo, hi float64, dec bool) (func(*Batch) ([][]float64, error), error) {
	if hi <= lo {
		return nil, fmt.Errorf("r_max=%v must be > r_min=%v", hi, lo)
	}
	return func(b *Batch) ([][]float64, error) {
		n := needRewards | needGroup
		if dec {
			n = needComponents | needGroup
		}
		if err := check(b, n); err != nil {
			return nil, err
		}
		var comps [][]float64 // comps[k][i]
		if dec {
			for k := range b.RewardComponents[0] {
				c := make([]float64, len(b.Mask))
				for i := range c {
					c[i] = b.RewardComponents[i][k]
				}
				comps = append(comps, c)
			}
		} else {
			comps = [][]float64{b.Rewards}
		}
		a := make([]float64, len(b.Mask))
		for _, c := range comps {
			x := make([]float64, len(c))
			for i, v := range c {
				x[i] = (v - lo) / (hi - lo)
				if x[i] < -1e-12 || x[i] > 1+1e-12 {
					return nil, badInput("bnpo: reward %v of response %d outside [r_min, r_max] = [%v, %v]", v, i, lo, hi)
				}
			}
			for i, v := range BNPOAdvantages(x, b.Group, b.Mask) {
				a[i] += v / float64(len(comps))
			}
		}
		return broadcast(a, b.Mask), nil
	}, nil
}

// BNPOAdvantages returns (x_i - p_g)·clamp(1/f_Beta(p_g; α, β), 0, 1e6) for rewards x in [0,1]:
// p_g is the group mean (0 for a group of one, as the reference code), m and v the mean and unbiased
// variance of the p_g over groups (m = 0, v = 1 for a single group), a = (m(1-m)/v - 1)·m,
// b = (m(1-m)/v - 1)·(1-m), α = max(1 + a/3, 1), β = max(1 + b/3, 1). When every group has the same
// p (v = 0) the fit is undefined; α = β = 1 is used (plain group-mean baseline).
func BNPOAdvantages(x []float64, group []int, mask [][]float64) []float64 {
	gs := groups(group, mask)
	p := make([]float64, len(gs))
	for k, g := range gs {
		if len(g) == 1 {
			continue
		}
		for _, i := range g {
			p[k] += x[i]
		}
		p[k] /= float64(len(g))
	}
	alpha, beta := 1.0, 1.0
	m, v := 0.0, 1.0
	if len(p) > 1 {
		m, v = mean(p), std(p, true)
		v *= v
	}
	if v > 0 {
		c := m*(1-m)/v - 1
		alpha, beta = math.Max(1+c*m/3, 1), math.Max(1+c*(1-m)/3, 1)
	}
	a := make([]float64, len(x))
	for k, g := range gs {
		w := math.Min(1/BetaPDF(p[k], alpha, beta), 1e6)
		for _, i := range g {
			if d := x[i] - p[k]; d != 0 {
				a[i] = d * w
			}
		}
	}
	return a
}

// BetaPDF is the Beta(α, β) density at p with the convention 0·log 0 = 0 (α or β = 1 at the ends).
func BetaPDF(p, alpha, beta float64) float64 {
	lg := func(x float64) float64 { v, _ := math.Lgamma(x); return v }
	xlogy := func(c, y float64) float64 {
		if c == 0 {
			return 0
		}
		return c * math.Log(y)
	}
	return fmath.Exp(xlogy(alpha-1, p) + xlogy(beta-1, 1-p) + lg(alpha+beta) - lg(alpha) - lg(beta))
}
