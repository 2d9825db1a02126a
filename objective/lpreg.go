package objective

import (
	"fmt"
	"math"
	"sort"
)

// Lp-Reg (Huang et al., arXiv 2510.03222): the lowest-probability negative-advantage tokens that a
// min-p proxy of the old policy rates higher than the policy does are taken out of clipping and pulled
// toward the proxy with a k3 penalty. Input: Batch.ProxyLogP (see MinPProxyLogP).
func init() {
	registerSurrogate("lp_reg", "Lp-Reg: k3 pull of low-probability negative tokens toward a min-p proxy of the old policy (input proxy_logp)",
		LpRegParams{SurrogateParams: group(func(p *SurrogateParams) { p.EpsLow, p.EpsHigh, p.DualClip = 1, 9, 10 }), ProxyBeta: 1, RhoNeg: 0.01,
			Kappa: 0.02, Threshold: "minp"},
		func() *Surrogate {
			return &Surrogate{adv: advConfig{kind: advGroup}, Ratio: RatioToken, Gate: GateClip, lossNeed: needProxy}
		},
		func(c *LpRegParams, s *Surrogate) (Objective, error) {
			l := lpReg{beta: c.ProxyBeta, neg: c.RhoNeg, pos: c.RhoPos}
			if l.neg < 0 || l.neg > 1 || l.pos < 0 || l.pos > 1 {
				return nil, fmt.Errorf("rho_neg=%v, rho_pos=%v: want fractions in [0, 1]", l.neg, l.pos)
			}
			if !(c.Kappa > 0 && c.Kappa < 1) {
				return nil, fmt.Errorf("kappa=%v: want a probability threshold in (0, 1)", c.Kappa)
			}
			s.prepare = l.prepare
			s.dist = DistConfig{MinPKappa: c.Kappa, MinPFixed: c.Threshold == "fixed"}
			return nil, nil
		})
}

// LpRegParams configure lp_reg.
type LpRegParams struct {
	SurrogateParams
	ProxyBeta float64 `param:"proxy_beta"`
	RhoNeg    float64 `param:"rho_neg"`
	RhoPos    float64 `param:"rho_pos"`
	// Kappa and Threshold define the proxy the trainer computes proxy_logp from: keep tokens with
	// p ≥ kappa·max p (minp, the released scripts) or p ≥ kappa (fixed).
	Kappa     float64 `param:"kappa"`
	Threshold string  `param:"threshold" choices:"minp|fixed"`
}

type lpReg struct{ beta, neg, pos float64 }

// prepare selects, per sign of A, the k = max(1, floor(n·rho)) valid tokens with the smallest logp
// (regularisation only when k > 1, as the reference code) and keeps those with logp < proxy_logp.
// Selection uses the anchor (stop-gradient) log-probs.
func (l lpReg) prepare(b *Batch, anchor [][]float64) (tokenFunc, error) {
	reg := newLike(b.Mask)
	for _, side := range []struct {
		frac float64
		sign float64
	}{{l.neg, -1}, {l.pos, 1}} {
		if side.frac == 0 {
			continue
		}
		type tok struct{ i, t int }
		var cand []tok
		for i, row := range b.Mask {
			for t, m := range row {
				if m != 0 && b.Advantages[i][t]*side.sign > 0 {
					cand = append(cand, tok{i, t})
				}
			}
		}
		k := max(1, int(math.Floor(float64(len(cand))*side.frac)))
		if k <= 1 {
			continue
		}
		sort.SliceStable(cand, func(x, y int) bool { return anchor[cand[x].i][cand[x].t] < anchor[cand[y].i][cand[y].t] })
		for _, c := range cand[:k] {
			if anchor[c.i][c.t] < b.ProxyLogP[c.i][c.t] {
				reg[c.i][c.t] = 1
			}
		}
	}
	return func(i, t int, x, dx, a float64) (float64, float64, clipState, bool) {
		if reg[i][t] == 0 {
			return 0, 0, clipNone, false
		}
		v, dv := KL(KLk3, b.LogP[i][t], b.ProxyLogP[i][t])
		return -a*x + l.beta*v, -a*dx + l.beta*dv, clipNone, true
	}, nil
}

// MinPProxy returns Lp-Reg's proxy of a next-token distribution p: tokens with p(v) ≥ kappa·max p
// (min-p; fixed=true: p(v) ≥ kappa) keep their mass, the rest get 0, renormalised.
func MinPProxy(p []float64, kappa float64, fixed bool) []float64 {
	thr := kappa
	if !fixed {
		var m float64
		for _, v := range p {
			m = math.Max(m, v)
		}
		thr = kappa * m
	}
	out := make([]float64, len(p))
	var z float64
	for i, v := range p {
		if v >= thr {
			out[i] = v
			z += v
		}
	}
	for i := range out {
		out[i] /= z
	}
	return out
}

// MinPProxyLogP is log π_proxy of the sampled token (-Inf when the proxy filtered it out): the value
// the trainer puts in Batch.ProxyLogP, computed from the old policy's distribution at that position.
func MinPProxyLogP(p []float64, sampled int, kappa float64, fixed bool) float64 {
	return math.Log(MinPProxy(p, kappa, fixed)[sampled])
}
