package objective

import (
	"encoding/json"
	"fmt"
	"math"
)

// HAPO (Liu et al., arXiv 2509.16591): token-entropy-aware components. A: adaptive sampling
// temperature (Tempering: T·(1 + ĥ·tau_t) per generated token, ĥ from the previous RL step's entropy
// statistics); B: token-level group average advantage; C: differential advantage redistribution;
// D: asymmetric adaptive clipping.
func init() {
	registerSurrogate("hapo", "HAPO: token-pooled group advantage, entropy-aware advantage redistribution and asymmetric adaptive clipping",
		HAPOParams{SurrogateParams: group(func(p *SurrogateParams) { p.DualClip, p.DynamicSampling = 10, true }),
			OverlongParams: dapoOverlong, EntropyPivot: 0.8, AlphaClip: 1, BetaAdv: 1, TauT: 0.05, TokenAdv: true},
		func() *Surrogate {
			return &Surrogate{adv: advConfig{kind: advGroup}, Ratio: RatioToken, Gate: GateClip, lossNeed: needEntropy}
		},
		func(c *HAPOParams, s *Surrogate) (Objective, error) {
			if err := c.OverlongParams.apply(s); err != nil {
				return nil, err
			}
			h := &HAPO{Surrogate: s, pivot: c.EntropyPivot, alpha: c.AlphaClip, beta: c.BetaAdv,
				tauT: c.TauT, repoSign: c.RepoSignBug, tokenAdv: c.TokenAdv}
			if h.pivot < 0 || h.pivot > 1 {
				return nil, fmt.Errorf("entropy_pivot=%v: want a quantile in [0, 1]", h.pivot)
			}
			if h.tauT < 0 || h.tauT >= 1 {
				return nil, fmt.Errorf("tau_t=%v: want in [0, 1) (temperatures T·(1 ± tau_t) stay positive)", h.tauT)
			}
			if h.tokenAdv {
				s.advFn, s.advNeed = h.advantages, s.adv.need()
			}
			s.prepare = h.prepare
			return h, nil
		})
}

// HAPOParams configure hapo: DAPO's overlong punishment plus the entropy pivot (a quantile), the
// clip and advantage-redistribution strengths, the temperature swing tau_t and the token-level
// advantage switch.
type HAPOParams struct {
	SurrogateParams
	OverlongParams
	EntropyPivot float64 `param:"entropy_pivot"`
	AlphaClip    float64 `param:"alpha_clip"`
	BetaAdv      float64 `param:"beta_adv"`
	TauT         float64 `param:"tau_t"`
	TokenAdv     bool    `param:"token_adv"`
	RepoSignBug  bool    `param:"repo_sign_bug"`
}

// HAPO is the hapo objective: a Surrogate with its entropy-aware stages, plus the entropy statistics
// of the last rollout batch that set the next rollout's per-token temperatures (state, checkpointed).
type HAPO struct {
	*Surrogate
	pivot, alpha, beta, tauT float64
	repoSign, tokenAdv       bool
	norm                     *hapoNorm // nil until the first rollout batch has been seen
}

// TokenTemperature implements Tempering: T·(1 + ĥ(h)·tau_t) with ĥ from the previous RL step's
// normalisation statistics, clamped to [-1, 1]; nil (constant T) before the first step or when tau_t = 0.
func (h *HAPO) TokenTemperature(base float64) func(float64) float64 {
	if h.norm == nil || h.tauT == 0 {
		return nil
	}
	n := *h.norm
	return func(ent float64) float64 {
		return HAPOTemperature(base, n.hat(math.Log(math.Max(ent, 1e-6)), h.repoSign), h.tauT)
	}
}

// AfterBatch implements BatchObserver: it keeps the rollout batch's entropy statistics for the next
// rollout's temperatures. Metrics: hapo_pivot (the log-entropy pivot) and hapo_rms.
func (h *HAPO) AfterBatch(b *Batch) (map[string]float64, error) {
	if err := check(b, needEntropy); err != nil {
		return nil, err
	}
	var l []float64
	for i, row := range b.Mask {
		for t, m := range row {
			if m != 0 {
				l = append(l, math.Log(math.Max(b.Entropy[i][t], 1e-6)))
			}
		}
	}
	if len(l) == 0 {
		return nil, nil
	}
	n := newHAPONorm(l, h.pivot)
	h.norm = &n
	return map[string]float64{"hapo_pivot": n.Pivot, "hapo_rms": n.RMS}, nil
}

// MarshalState implements Stateful: the entropy statistics (null before the first step).
func (h *HAPO) MarshalState() ([]byte, error) { return json.Marshal(h.norm) }

// UnmarshalState implements Stateful.
func (h *HAPO) UnmarshalState(data []byte) error {
	var n *hapoNorm
	if err := json.Unmarshal(data, &n); err != nil {
		return fmt.Errorf("hapo state: %w", err)
	}
	h.norm = n
	return nil
}

// advantages is component B: per group, every token of row i carries r_i; A_i = (r_i - μ_tok)/(σ_tok
// + eps_adv) with the token-weighted mean and population std. A group where some |A| ≥ 5 falls back
// to the GRPO advantage (checked over valid tokens; the reference code also counts padding).
func (h *HAPO) advantages(b *Batch) ([][]float64, error) {
	c := h.Surrogate.adv
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
func (h *HAPO) prepare(b *Batch, _ [][]float64) (tokenFunc, error) {
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
	s := h.Surrogate
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
	n := newHAPONorm(l, q)
	for i, v := range l {
		out[i] = n.scale(n.z(v), repoSign)
	}
	return out
}

// hapoNorm holds the normalisation statistics of a set of log-entropies l: the pivot, the RMS of
// l - pivot, and the largest and smallest standardised values.
type hapoNorm struct {
	Pivot float64 `json:"pivot"`
	RMS   float64 `json:"rms"`
	HMax  float64 `json:"hmax"`
	HMin  float64 `json:"hmin"`
}

func newHAPONorm(l []float64, q float64) hapoNorm {
	n := hapoNorm{Pivot: quantileNearest(l, q)}
	var ms float64
	for _, v := range l {
		ms += (v - n.Pivot) * (v - n.Pivot)
	}
	n.RMS = math.Sqrt(ms / float64(len(l)))
	for _, v := range l {
		h := n.z(v)
		n.HMax, n.HMin = math.Max(n.HMax, h), math.Min(n.HMin, h)
	}
	return n
}

// z is the standardised log-entropy (l - pivot)/rms; 0 when all values were equal.
func (n hapoNorm) z(l float64) float64 {
	if n.RMS == 0 {
		return 0
	}
	return (l - n.Pivot) / n.RMS
}

// scale divides positive z by the largest, negative z by |smallest| (repoSign: by the smallest).
func (n hapoNorm) scale(v float64, repoSign bool) float64 {
	switch {
	case v > 0:
		return v / n.HMax
	case v < 0 && repoSign:
		return v / n.HMin
	case v < 0:
		return v / -n.HMin
	}
	return 0
}

// hat is ĥ of a new log-entropy under these statistics, clamped to [-1, 1] (values beyond the old
// extremes saturate).
func (n hapoNorm) hat(l float64, repoSign bool) float64 {
	return math.Max(-1, math.Min(1, n.scale(n.z(l), repoSign)))
}

// HAPOTemperature is component A, applied by the sampler per generated token: T·(1 + ĥ·τ_T) with ĥ
// clamped to [-1, 1] (computed with the previous step's normalisation statistics).
func HAPOTemperature(t, hhat, tauT float64) float64 {
	return t * (1 + math.Max(-1, math.Min(1, hhat))*tauT)
}
