package objective

import (
	"fmt"
	"math"

	"github.com/polo-rl/polo/internal/fmath"
)

// InRolloutLogP is the sampler's log-probability of each sampled token (the inference engine's:
// polo's sampler, vLLM, SGLang). The trainer's recomputed π_old (old_logp) differs from it by
// kernel and precision mismatch, and by staleness under asynchronous sampling.
const InRolloutLogP = "rollout_logp"

func init() {
	RegisterExtraInput(InRolloutLogP, PerToken,
		"sampler (inference engine) log-prob of each token; off-policy correction is=tis|mis and the mismatch metrics read it",
		[][]float64(nil))
}

// Off-policy corrections (parameter is).
const (
	ISNone = "none"
	ISTIS  = "tis" // truncated importance sampling: weight min(w, C)
	ISMIS  = "mis" // masked importance sampling: weight w where lo <= w <= C, 0 elsewhere
)

// OffPolicyParams correct the policy loss of every Surrogate preset for the mismatch between the
// sampler that produced the tokens and the trainer's π_old: each token's policy-loss term (not the
// KL or entropy terms) is multiplied by a stop-gradient weight built from
// w = π_old/π_sampler = exp(old_logp − rollout_logp), per token (is_level token) or as the
// product over the response (is_level sequence).
type OffPolicyParams struct {
	IS      string  `param:"is" choices:"none|tis|mis"`
	ISLevel string  `param:"is_level" choices:"token|sequence"`
	ISCap   float64 `param:"is_cap"`     // C: TIS truncates at C, MIS masks above C
	ISCapLo float64 `param:"is_cap_low"` // MIS also masks below this (0 = no lower bound)
}

// DefaultOffPolicyParams: no correction; C = 2 (the cap of the TIS write-up by Yao et al., 2025).
func DefaultOffPolicyParams() OffPolicyParams {
	return OffPolicyParams{IS: ISNone, ISLevel: RatioToken, ISCap: 2}
}

func (p OffPolicyParams) check() error {
	switch {
	case p.IS != ISNone && p.IS != ISTIS && p.IS != ISMIS:
		return fmt.Errorf("is=%q: want none, tis or mis", p.IS)
	case p.ISLevel != RatioToken && p.ISLevel != RatioSequence:
		return fmt.Errorf("is_level=%q: want token or sequence", p.ISLevel)
	case !(p.ISCap > 0) || math.IsInf(p.ISCap, 0):
		return fmt.Errorf("is_cap=%v: want a finite value > 0", p.ISCap)
	case !(p.ISCapLo >= 0) || p.ISCapLo >= p.ISCap:
		return fmt.Errorf("is_cap_low=%v: want 0 <= is_cap_low < is_cap (%v)", p.ISCapLo, p.ISCap)
	case p.ISCapLo != 0 && p.IS != ISMIS:
		return fmt.Errorf("is_cap_low=%v applies to is=mis only", p.ISCapLo)
	}
	return nil
}

// on reports whether the loss is reweighted.
func (p OffPolicyParams) on() bool { return p.IS == ISTIS || p.IS == ISMIS }

// ISWeights returns the correction weight of every token (0 on padding) and how many weights the
// cap changed (truncated or masked). Sequence-level weights are the product of the token ratios
// of the response, the same for all its tokens.
func (p OffPolicyParams) ISWeights(oldLogP, rolloutLogP [][]float64, mask [][]float64) (w [][]float64, changed int) {
	w = newLike(mask)
	cut := func(x float64) float64 {
		switch p.IS {
		case ISTIS:
			if x > p.ISCap {
				changed++
				return p.ISCap
			}
		case ISMIS:
			if x > p.ISCap || x < p.ISCapLo {
				changed++
				return 0
			}
		}
		return x
	}
	for i, row := range mask {
		if p.ISLevel == RatioSequence {
			var s float64
			n := 0
			for t, mk := range row {
				if mk != 0 {
					s += oldLogP[i][t] - rolloutLogP[i][t]
					n++
				}
			}
			if n == 0 {
				continue
			}
			x := cut(fmath.Exp(s))
			for t, mk := range row {
				if mk != 0 {
					w[i][t] = x
				}
			}
			continue
		}
		for t, mk := range row {
			if mk != 0 {
				w[i][t] = cut(fmath.Exp(oldLogP[i][t] - rolloutLogP[i][t]))
			}
		}
	}
	return w, changed
}

// MismatchMetrics describe how far the sampler is from the trainer on the batch's tokens: KL
// estimates of KL(π_sampler ‖ π_old) from the sampled tokens (k1 = mean(rollout − old), k3 =
// mean(e^(old−rollout) − 1 − (old − rollout)), both ≥ 0 in expectation) and the token ratio
// w = π_old/π_sampler's mean, min and max. It writes nothing when rollout_logp is absent.
func MismatchMetrics(b *Batch, out map[string]float64) {
	r, _ := b.Extra[InRolloutLogP].([][]float64)
	if r == nil || b.OldLogP == nil {
		return
	}
	var n, k1, k3, sum float64
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, row := range b.Mask {
		for t, mk := range row {
			if mk == 0 {
				continue
			}
			d := b.OldLogP[i][t] - r[i][t]
			w := fmath.Exp(d)
			n++
			k1 -= d
			k3 += w - 1 - d
			sum += w
			lo, hi = math.Min(lo, w), math.Max(hi, w)
		}
	}
	if n == 0 {
		return
	}
	out["mismatch_kl_k1"], out["mismatch_kl_k3"] = k1/n, k3/n
	out["is_ratio_mean"], out["is_ratio_min"], out["is_ratio_max"] = sum/n, lo, hi
}

// isMetrics summarises the correction weights applied: their mean over tokens and the share of
// weights the cap changed (of tokens at token level, of responses at sequence level).
func isMetrics(p OffPolicyParams, w, mask [][]float64, changed int, out map[string]float64) {
	var n, sum, rows float64
	for i, row := range mask {
		has := false
		for t, mk := range row {
			if mk != 0 {
				n++
				sum += w[i][t]
				has = true
			}
		}
		if has {
			rows++
		}
	}
	units := n
	if p.ISLevel == RatioSequence {
		units = rows
	}
	out["is_weight_mean"] = sum / math.Max(n, 1)
	out["is_capped_frac"] = float64(changed) / math.Max(units, 1)
}
