package objective

import (
	"fmt"
	"math"
)

// HAPO (Liu et al., arXiv 2509.16591): token-entropy-aware components. B: token-level group average
// advantage; C: differential advantage redistribution; D: asymmetric adaptive clipping. Component A
// (adaptive sampling temperature) is rollout-side: see HAPOTemperature.
func init() {
	surrogatePreset("hapo", "HAPO: token-pooled group advantage, entropy-aware advantage redistribution and asymmetric adaptive clipping",
		defaults(join(policyParams, groupAdvParams), Params{"dual_clip": "10", "dynamic_sampling": "true",
			"overlong_buffer": "4096", "overlong_max_len": "20480", "overlong_factor": "1",
			"entropy_pivot": "0.8", "alpha_clip": "1", "beta_adv": "1", "tau_t": "0.05", "token_adv": "true", "repo_sign_bug": "false"}),
		func() *Surrogate {
			return &Surrogate{adv: advConfig{kind: advGroup}, Ratio: RatioToken, Gate: GateClip, lossNeed: needEntropy}
		})
	hooks["hapo"] = func(p Params, s *Surrogate) (Objective, error) {
		r := &reader{p: p}
		h := &hapo{s: s, pivot: r.float("entropy_pivot"), alpha: r.float("alpha_clip"), beta: r.float("beta_adv"),
			repoSign: r.bool("repo_sign_bug"), tokenAdv: r.bool("token_adv")}
		r.float("tau_t") // validated; used by the rollout through HAPOTemperature
		if r.err != nil {
			return nil, r.err
		}
		if h.pivot < 0 || h.pivot > 1 {
			return nil, fmt.Errorf("entropy_pivot=%v: want a quantile in [0, 1]", h.pivot)
		}
		if h.tokenAdv {
			s.advFn = h.advantages
		}
		s.prepare = h.prepare
		return nil, nil
	}
}

type hapo struct {
	s                  *Surrogate
	pivot, alpha, beta float64
	repoSign, tokenAdv bool
}

// advantages is component B: per group, every token of row i carries r_i; A_i = (r_i - μ_tok)/(σ_tok
// + eps_adv) with the token-weighted mean and population std. A group where some |A| ≥ 5 falls back
// to the GRPO advantage (checked over valid tokens; the reference code also counts padding).
func (h *hapo) advantages(b *Batch) ([][]float64, error) {
	c := h.s.adv
	if err := check(b, c.need()); err != nil {
		return nil, err
	}
	sc := c.outcome(b)
	grpo := GroupAdvantages(sc, b.Group, b.Mask, c.std, c.eps, c.singleton)
	lens := rowLens(b.Mask)
	a := make([]float64, len(sc))
	for _, g := range groups(b.Group, b.Mask) {
		var n, sum float64
		vals := make([]float64, len(g))
		for k, i := range g {
			n += lens[i]
			sum += lens[i] * sc[i]
			vals[k] = sc[i]
		}
		if allEqual(vals) {
			continue
		}
		mu := sum / n
		var v float64
		for _, i := range g {
			v += lens[i] * (sc[i] - mu) * (sc[i] - mu)
		}
		sd := math.Sqrt(v / n)
		fallback := false
		for _, i := range g {
			a[i] = (sc[i] - mu) / (sd + c.eps)
			fallback = fallback || math.Abs(a[i]) >= 5
		}
		if fallback {
			for _, i := range g {
				a[i] = grpo[i]
			}
		}
	}
	return broadcast(a, b.Mask), nil
}

// prepare normalises the entropies of the batch's valid tokens and returns components C and D.
func (h *hapo) prepare(b *Batch, _ [][]float64) (tokenFunc, error) {
	var ent []float64
	for i, row := range b.Mask {
		for t, m := range row {
			if m != 0 {
				ent = append(ent, b.Entropy[i][t])
			}
		}
	}
	hh := HAPOEntropyNorm(ent, h.pivot, h.repoSign)
	hat := newLike(b.Mask)
	k := 0
	for i, row := range b.Mask {
		for t, m := range row {
			if m != 0 {
				hat[i][t] = hh[k]
				k++
			}
		}
	}
	s := h.s
	return func(i, t int, x, dx, a float64) (float64, float64, clipState, bool) {
		e := hat[i][t]
		lo, hi := s.EpsLow, s.EpsHigh
		if e <= 0 {
			lo = s.EpsLow * (1 - h.alpha*e)
		} else {
			hi = s.EpsHigh * (1 + h.alpha*e)
		}
		inside := x > 1-lo/2 && x < 1+hi/2
		if (e > 0 && !inside) || (e <= 0 && inside) {
			a *= 1 + h.beta*e
		}
		l, d, st := clipLoss(x, a, lo, hi, s.DualClip)
		return l, d * dx, st, true
	}, nil
}

// HAPOEntropyNorm maps token entropies to ĥ ∈ [-1, 1]: l = log(max(H, 1e-6)), pivot = the
// q-quantile of l ("nearest"), h = (l - pivot)/RMS(l - pivot), then positive h divided by the largest
// h and non-positive h by |smallest h|. repoSign reproduces the reference code, which divides the
// negative side by the (negative) minimum and so makes it non-negative.
func HAPOEntropyNorm(ent []float64, q float64, repoSign bool) []float64 {
	out := make([]float64, len(ent))
	if len(ent) == 0 {
		return out
	}
	l := make([]float64, len(ent))
	for i, e := range ent {
		l[i] = math.Log(math.Max(e, 1e-6))
	}
	piv := quantileNearest(l, q)
	var ms float64
	for _, v := range l {
		ms += (v - piv) * (v - piv)
	}
	rms := math.Sqrt(ms / float64(len(l)))
	if rms == 0 {
		return out
	}
	var hmax, hmin float64
	for i, v := range l {
		out[i] = (v - piv) / rms
		hmax, hmin = math.Max(hmax, out[i]), math.Min(hmin, out[i])
	}
	for i, v := range out {
		switch {
		case v > 0:
			out[i] = v / hmax
		case v < 0 && repoSign:
			out[i] = v / hmin
		case v < 0:
			out[i] = v / -hmin
		}
	}
	return out
}

// HAPOTemperature is component A, applied by the sampler per generated token: T·(1 + ĥ·τ_T) with ĥ
// clamped to [-1, 1] (computed with the previous step's normalisation statistics).
func HAPOTemperature(t, hhat, tauT float64) float64 {
	return t * (1 + math.Max(-1, math.Min(1, hhat))*tauT)
}
