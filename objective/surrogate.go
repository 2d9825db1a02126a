package objective

import (
	"math"

	"github.com/polo-rl/polo/internal/fmath"
)

// Ratio levels (parameter ratio of the generic presets).
const (
	RatioToken    = "token"    // ρ[i,t] = exp(logp - old_logp)
	RatioSequence = "sequence" // GSPO: s_i = exp(mean_t(logp - old_logp)), per token as sg[s_i]·π/sg[π]
)

// Gates: what turns a ratio x and an advantage A into a per-token loss.
const (
	GateClip  = "clip"  // PPO clip with eps_low/eps_high and optional dual_clip
	GateSAPO  = "sapo"  // SAPO soft gate with tau_pos/tau_neg
	GateCISPO = "cispo" // -sg(clip(ρ))·A·logp
	GateRatio = "ratio" // -ρ·A, unclipped (REINFORCE, GTPO)
	GateLogP  = "logp"  // -A·logp (pure on-policy REINFORCE)
)

// tokenFunc lets a method replace the per-token loss: given row i, token t, the ratio value x and
// dx/dlogp and the advantage a, it returns the loss, dloss/dlogp and the clip state. handled=false
// falls back to the preset's gate.
type tokenFunc func(i, t int, x, dx, a float64) (l, dl float64, st clipState, handled bool)

// Surrogate is the composable policy-gradient objective behind most presets: an advantage stage, a
// ratio level, a gate, an optional KL term, an aggregation mode and optional filters. Methods that
// change only one stage set the corresponding hook.
type Surrogate struct {
	adv   advConfig
	advFn func(b *Batch) ([][]float64, error) // replaces adv when set

	Ratio                     string
	Gate                      string
	EpsLow, EpsHigh, DualClip float64
	TauPos, TauNeg            float64
	Beta                      float64 // KL coefficient (kl_in=loss adds β·agg(k(logp, ref_logp)))
	KLEstimator, KLIn         string
	Agg                       string
	MaxLen                    float64
	EntropyCoef               float64 // entropy bonus: loss -= entropy_coef·agg(H)

	DynamicSampling bool // drop groups whose rewards are all equal (dapo)
	OverlongFilter  bool // drop truncated responses (mask_truncated_completions)

	// OffPolicy reweights each token's policy loss by a truncated or masked importance weight
	// π_old/π_sampler (offpolicy.go); it reads rollout_logp when on.
	OffPolicy OffPolicyParams

	lossNeed   need                                                  // inputs the loss reads beyond logp, old_logp, advantages
	advNeed    need                                                  // inputs of advFn (when set; otherwise adv.need())
	selectNeed need                                                  // inputs of selectFn
	declare    need                                                  // further declared inputs, read outside the loss (step, drift, layer log-probs)
	prepare    func(b *Batch, anchor [][]float64) (tokenFunc, error) // per-batch hook (hapo, lp_reg, gbpo, …)
	selectFn   func(b *Batch, adv [][]float64) (Selection, error)    // extra selection (d3s, segment_spo)
	dist       DistConfig                                            // how the trainer computes distribution inputs (lp_reg, dcpo)
	critic     *CriticConfig                                         // the value function trained beside the policy (ppo)
	segments   *SegmentConfig                                        // Monte-Carlo segment values the trainer samples (segment_spo)
	mask       *ActionMaskConfig                                     // the masked action space the trainer samples and scores on (nlpo)
}

// Inputs implements Objective: the union of what its stages read.
func (s *Surrogate) Inputs() []string {
	n := needLogP | needOld | s.lossNeed | s.selectNeed | s.declare
	if s.advFn != nil {
		n |= s.advNeed
	} else {
		n |= s.adv.need()
	}
	if s.Beta != 0 {
		n |= needRef
	}
	if s.EntropyCoef != 0 {
		n |= needEntropy
	}
	if s.DynamicSampling {
		n |= needRewards | needGroup
	}
	if s.OffPolicy.on() {
		return append(n.names(), InRolloutLogP)
	}
	return n.names()
}

// Advantages implements Objective.
func (s *Surrogate) Advantages(b *Batch) ([][]float64, error) {
	if s.advFn != nil {
		return s.advFn(b)
	}
	return s.adv.advantages(b)
}

// Loss implements Objective.
func (s *Surrogate) Loss(b *Batch) (Result, error) { return s.lossAt(b, nil) }

// lossAt evaluates the loss with stop-gradient quantities (the sequence ratio's sg[s_i], cispo's
// clipped weight) taken at anchor instead of at b.LogP; anchor nil means b.LogP. The gradient of the
// loss with the anchor held fixed is exactly GradLogP, which is what the finite-difference tests check.
func (s *Surrogate) lossAt(b *Batch, anchor [][]float64) (Result, error) {
	n := needLogP | needOld | needAdv | s.lossNeed
	if s.Beta != 0 && s.KLIn == "loss" {
		n |= needRef
	}
	if s.EntropyCoef != 0 {
		n |= needEntropy
	}
	if err := check(b, n); err != nil {
		return Result{}, err
	}
	if anchor == nil {
		anchor = b.LogP
	}
	w, err := AggWeights(s.Agg, b.Mask, s.MaxLen, b.NormTokens, b.NormRows)
	if err != nil {
		return Result{}, err
	}
	var custom tokenFunc
	if s.prepare != nil {
		if custom, err = s.prepare(b, anchor); err != nil {
			return Result{}, err
		}
	}
	res := Result{GradLogP: newLike(b.Mask), Metrics: map[string]float64{}}
	var isw [][]float64 // off-policy correction weights (nil: none)
	if s.OffPolicy.on() {
		if err := checkExtra(b, InRolloutLogP); err != nil {
			return Result{}, err
		}
		var changed int
		isw, changed = s.OffPolicy.ISWeights(b.OldLogP, b.Extra[InRolloutLogP].([][]float64), b.Mask)
		isMetrics(s.OffPolicy, isw, b.Mask, changed, res.Metrics)
	}
	MismatchMetrics(b, res.Metrics)
	if s.EntropyCoef != 0 {
		res.GradEntropy = newLike(b.Mask)
	}
	var m metricAcc
	lens := rowLens(b.Mask)
	for i, row := range b.Mask {
		if lens[i] == 0 {
			continue
		}
		var seqLog float64
		if s.Ratio == RatioSequence {
			for t, mk := range row {
				if mk != 0 {
					seqLog += anchor[i][t] - b.OldLogP[i][t]
				}
			}
			seqLog /= lens[i]
		}
		for t, mk := range row {
			if mk == 0 {
				continue
			}
			lp, a := b.LogP[i][t], b.Advantages[i][t]
			var x, dx float64
			if s.Ratio == RatioSequence {
				lr := seqLog + lp - anchor[i][t]
				x, dx = fmath.Exp(lr), fmath.Exp(lr)
				if lr > seqLogClamp {
					x, dx = fmath.Exp(seqLogClamp), 0
				}
			} else {
				x, dx = TokenRatio(lp, b.OldLogP[i][t])
			}
			var l, dl float64
			var st clipState
			handled := false
			if custom != nil {
				l, dl, st, handled = custom(i, t, x, dx, a)
			}
			if !handled {
				l, dl, st = s.gate(x, dx, a, lp, anchor[i][t], b.OldLogP[i][t])
			}
			if isw != nil {
				l, dl = isw[i][t]*l, isw[i][t]*dl
			}
			if s.Beta != 0 && s.KLIn == "loss" {
				v, dv := KL(s.KLEstimator, lp, b.RefLogP[i][t])
				l += s.Beta * v
				dl += s.Beta * dv
			}
			if s.EntropyCoef != 0 {
				l -= s.EntropyCoef * b.Entropy[i][t]
				res.GradEntropy[i][t] = -s.EntropyCoef * w[i][t]
			}
			res.Loss += w[i][t] * l
			res.GradLogP[i][t] = w[i][t] * dl
			m.token(x, st)
		}
	}
	m.finish(b, s.KLEstimator, res.Metrics)
	return res, nil
}

// gate applies the preset's gate to one token.
func (s *Surrogate) gate(x, dx, a, logp, anchor, old float64) (float64, float64, clipState) {
	switch s.Gate {
	case GateSAPO:
		tau := s.TauNeg
		if a > 0 {
			tau = s.TauPos
		}
		f, df := SAPOGate(x, tau)
		return -f * a, -a * df * dx, clipNone
	case GateCISPO:
		r, _ := TokenRatio(anchor, old)
		c := math.Min(math.Max(r, 1-s.EpsLow), 1+s.EpsHigh)
		st := clipNone
		if r > 1+s.EpsHigh {
			st = clipHigh
		} else if r < 1-s.EpsLow {
			st = clipLow
		}
		return -c * a * logp, -c * a, st
	case GateRatio:
		return -x * a, -a * dx, clipNone
	case GateLogP:
		return -a * logp, -a, clipNone
	default:
		l, d, st := clipLoss(x, a, s.EpsLow, s.EpsHigh, s.DualClip)
		return l, d * dx, st
	}
}

// Select implements Selector: dynamic sampling and overlong filtering when enabled, then the method's
// own selection.
func (s *Surrogate) Select(b *Batch, adv [][]float64) (Selection, error) {
	n := need(0)
	if s.DynamicSampling {
		n |= needRewards | needGroup
	}
	if err := check(b, n); err != nil {
		return Selection{}, err
	}
	sel := Selection{Keep: make([]bool, len(b.Mask)), Stats: map[string]float64{}}
	for i := range sel.Keep {
		sel.Keep[i] = true
	}
	if s.DynamicSampling {
		keep := DynamicSamplingKeep(b.Rewards, b.Group, b.Mask)
		dropped := map[int]bool{}
		all := map[int]bool{}
		for i, k := range keep {
			all[b.Group[i]] = true
			if !k {
				sel.Keep[i] = false
				dropped[b.Group[i]] = true
			}
		}
		sel.Stats["dropped_groups"] = float64(len(dropped))
		sel.Stats["dropped_groups_frac"] = float64(len(dropped)) / float64(len(all))
	}
	if s.OverlongFilter && len(b.Truncated) > 0 {
		var n float64
		for i, tr := range b.Truncated {
			if tr && sel.Keep[i] {
				sel.Keep[i] = false
				n++
			}
		}
		sel.Stats["dropped_truncated"] = n
	}
	if s.selectFn != nil {
		extra, err := s.selectFn(b, adv)
		if err != nil {
			return Selection{}, err
		}
		for i, k := range extra.Keep {
			sel.Keep[i] = sel.Keep[i] && k
		}
		sel.Mask = extra.Mask
		for k, v := range extra.Stats {
			sel.Stats[k] = v
		}
	}
	var kept float64
	for _, k := range sel.Keep {
		if k {
			kept++
		}
	}
	sel.Stats["kept_frac"] = kept / float64(len(sel.Keep))
	return sel, nil
}

// metricAcc accumulates the per-token metrics of a loss call.
type metricAcc struct {
	n, sum, min, max     float64
	low, high, dual      float64
	initialised          bool
	ratioSum, ratioSumSq float64
}

func (m *metricAcc) token(x float64, st clipState) {
	if !m.initialised {
		m.min, m.max, m.initialised = x, x, true
	}
	m.n++
	m.sum += x
	m.min = math.Min(m.min, x)
	m.max = math.Max(m.max, x)
	switch st {
	case clipLow:
		m.low++
	case clipHigh:
		m.high++
	case clipDual:
		m.dual++
	}
}

// ratioMean and clipFrac summarise the tokens seen (0 when none).
func (m *metricAcc) ratioMean() float64 { return m.sum / math.Max(m.n, 1) }
func (m *metricAcc) clipFrac() float64  { return (m.low + m.high + m.dual) / math.Max(m.n, 1) }

// finish writes ratio and clip statistics plus the batch-level metrics (kl, entropy, advantages).
func (m *metricAcc) finish(b *Batch, klEst string, out map[string]float64) {
	if m.n > 0 {
		out["ratio_mean"] = m.sum / m.n
		out["ratio_min"] = m.min
		out["ratio_max"] = m.max
		out["clip_frac_low"] = m.low / m.n
		out["clip_frac_high"] = m.high / m.n
		out["clip_frac_dual"] = m.dual / m.n
	}
	batchMetrics(b, klEst, out)
}

// batchMetrics adds metrics that depend only on the batch: tokens, ppo_kl = mean(old - logp),
// kl = mean k(logp, ref) when ref_logp is given, entropy, and the advantage statistics.
func batchMetrics(b *Batch, klEst string, out map[string]float64) {
	if klEst == "" {
		klEst = KLk3
	}
	var n, ppoKL, kl, ent, adv float64
	for i, row := range b.Mask {
		for t, mk := range row {
			if mk == 0 {
				continue
			}
			n++
			if b.LogP != nil && b.OldLogP != nil {
				ppoKL += b.OldLogP[i][t] - b.LogP[i][t]
			}
			if b.RefLogP != nil && b.LogP != nil {
				v, _ := KL(klEst, b.LogP[i][t], b.RefLogP[i][t])
				kl += v
			}
			if b.Entropy != nil {
				ent += b.Entropy[i][t]
			}
			if b.Advantages != nil {
				adv += b.Advantages[i][t]
			}
		}
	}
	out["tokens"] = n
	if n == 0 {
		return
	}
	out["ppo_kl"] = ppoKL / n
	if b.RefLogP != nil {
		out["kl"] = kl / n
	}
	if b.Entropy != nil {
		out["entropy"] = ent / n
	}
	if b.Advantages != nil {
		out["adv_mean"] = adv / n
		if len(b.Group) == len(b.Mask) {
			out["zero_adv_groups_frac"] = zeroAdvGroupsFrac(b)
		}
	}
}

// zeroAdvGroupsFrac is the fraction of groups whose valid tokens all have advantage 0 (they carry no
// gradient under group-relative estimators).
func zeroAdvGroupsFrac(b *Batch) float64 {
	gs := groups(b.Group, b.Mask)
	if len(gs) == 0 {
		return 0
	}
	var zero float64
	for _, g := range gs {
		allZero := true
		for _, i := range g {
			for t, mk := range b.Mask[i] {
				if mk != 0 && b.Advantages[i][t] != 0 {
					allZero = false
				}
			}
		}
		if allZero {
			zero++
		}
	}
	return zero / float64(len(gs))
}
