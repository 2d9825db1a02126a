package objective

import (
	"fmt"
	"math"
)

// RTO is Reinforced Token Optimization (Zhong et al., 2024; spec B5, after the authors' OpenRLHF fork):
// PPO on a dense token reward whose main term comes from a separately DPO-trained model,
//
//	r[t] = clip(β1·(lpDpo − lpRef), −c, c) − β2·(lpOld − lpRef) + 1[t last]·clamp(R, −R_max, R_max),
//
// then GAE over r with the critic's values and PPO's clipped surrogate (token-mean).
//
// Field mapping on Batch: TokenRewards holds the DPO term, made by DPOTokenRewards from the DPO model's
// log-probs of the sampled tokens (nil: no DPO term, which leaves PPO with a KL-shaped terminal reward);
// RefLogP is the SFT/reference model (also the DPO model's reference), OldLogP the policy at sampling
// time, Rewards the reward-model score, Values the critic (nil: no critic, the advantage is the
// discounted return). Masked positions (padding, tool output) are skipped by the recursion.
type RTO struct {
	DPOScale  float64 // β1, dpo_reward_scale (0.05); <= 0 means unscaled, as in the authors' code
	DPOClip   float64 // c, dpo_reward_clip (0.05); <= 0 disables the clip
	KLCoef    float64 // β2, init_kl_coef (0.01)
	RewardMax float64 // clamp of the reward-model score (10); <= 0 disables
	Gamma     float64 // GAE γ (1)
	Lambda    float64 // GAE λ (0.95)
	Clip      float64 // PPO clip ε (0.2)
	Normalize bool    // whiten advantages over the batch's valid tokens (OpenRLHF's PPO default)
}

func init() {
	Register("rto", "Reinforced Token Optimization: DPO-model token rewards (token_rewards) + KL + terminal RM score, GAE, PPO clip",
		Params{"dpo_reward_scale": "0.05", "dpo_reward_clip": "0.05", "kl_coef": "0.01", "reward_clip": "10",
			"gamma": "1", "lambda": "0.95", "clip": "0.2", "normalize_advantages": "true"},
		func(p Params) (Objective, error) {
			r := reader{p: p}
			o := &RTO{DPOScale: r.float("dpo_reward_scale"), DPOClip: r.float("dpo_reward_clip"), KLCoef: r.float("kl_coef"),
				RewardMax: r.float("reward_clip"), Gamma: r.float("gamma"), Lambda: r.float("lambda"), Clip: r.float("clip"),
				Normalize: r.bool("normalize_advantages")}
			if r.err != nil {
				return nil, r.err
			}
			switch {
			case o.Gamma < 0 || o.Gamma > 1 || o.Lambda < 0 || o.Lambda > 1:
				return nil, fmt.Errorf("gamma=%g, lambda=%g: want values in [0, 1]", o.Gamma, o.Lambda)
			case o.Clip <= 0:
				return nil, fmt.Errorf("clip=%g: want a positive number", o.Clip)
			}
			return o, nil
		})
}

// DPOTokenRewards is the DPO part of RTO's reward, clip(β1·(lpDpo − lpRef), −c, c)·M, for
// Batch.TokenRewards. dpoLogP and refLogP are the DPO model's and the reference model's log-probs of the
// sampled tokens.
func (o *RTO) DPOTokenRewards(dpoLogP, refLogP, mask [][]float64) ([][]float64, error) {
	if err := opCheckLike("dpo_logp", dpoLogP, mask); err != nil {
		return nil, err
	}
	if err := opCheckLike("ref_logp", refLogP, mask); err != nil {
		return nil, err
	}
	scale := o.DPOScale
	if scale <= 0 {
		scale = 1
	}
	out := opZeros(mask)
	for i, row := range mask {
		for t, m := range row {
			if m == 0 {
				continue
			}
			x := scale * (dpoLogP[i][t] - refLogP[i][t])
			if o.DPOClip > 0 {
				x = math.Min(math.Max(x, -o.DPOClip), o.DPOClip)
			}
			out[i][t] = x * m
		}
	}
	return out, nil
}

// TokenRewards returns RTO's full per-token reward r[t]: TokenRewards (the DPO part) + the KL term
// −β2·(OldLogP − RefLogP) + the clamped score at the last valid token.
func (o *RTO) TokenRewards(b *Batch) ([][]float64, error) {
	fields := []string{"old_logp", "ref_logp"}
	if b != nil && b.TokenRewards != nil {
		fields = append(fields, "token_rewards")
	}
	if err := opCheckBatch(b, fields...); err != nil {
		return nil, err
	}
	if len(b.Rewards) != len(b.Mask) {
		return nil, badInput("rto needs rewards: %d values for %d rows", len(b.Rewards), len(b.Mask))
	}
	r := opZeros(b.Mask)
	for i, row := range b.Mask {
		score := b.Rewards[i]
		if math.IsNaN(score) || math.IsInf(score, 0) {
			return nil, badInput("rewards[%d] = %v: want a finite number", i, score)
		}
		if o.RewardMax > 0 {
			score = math.Min(math.Max(score, -o.RewardMax), o.RewardMax)
		}
		last := -1
		for t, m := range row {
			if m == 0 {
				continue
			}
			last = t
			r[i][t] = -o.KLCoef * (b.OldLogP[i][t] - b.RefLogP[i][t]) * m
			if b.TokenRewards != nil {
				r[i][t] += b.TokenRewards[i][t]
			}
		}
		if last >= 0 {
			r[i][last] += score
		}
	}
	return r, nil
}

// Advantages returns the GAE advantages over TokenRewards' r[t] (whitened over valid tokens when
// normalize_advantages). Returns gives the critic's targets.
func (o *RTO) Advantages(b *Batch) ([][]float64, error) {
	adv, _, err := o.gae(b)
	if err != nil {
		return nil, err
	}
	if o.Normalize {
		var n, s, ss float64
		for i, row := range b.Mask {
			for t, m := range row {
				if m != 0 {
					n += m
					s += m * adv[i][t]
				}
			}
		}
		mean := s / math.Max(n, 1)
		for i, row := range b.Mask {
			for t, m := range row {
				if m != 0 {
					ss += m * (adv[i][t] - mean) * (adv[i][t] - mean)
				}
			}
		}
		std := math.Sqrt(ss / math.Max(n, 1))
		for i, row := range b.Mask {
			for t, m := range row {
				if m != 0 {
					adv[i][t] = (adv[i][t] - mean) / (std + 1e-8)
				}
			}
		}
	}
	return adv, nil
}

// Returns are the critic's regression targets A_GAE + V (before any whitening).
func (o *RTO) Returns(b *Batch) ([][]float64, error) {
	_, ret, err := o.gae(b)
	return ret, err
}

func (o *RTO) gae(b *Batch) (adv, ret [][]float64, err error) {
	r, err := o.TokenRewards(b)
	if err != nil {
		return nil, nil, err
	}
	if b.Values != nil {
		if err := opCheckLike("values", b.Values, b.Mask); err != nil {
			return nil, nil, err
		}
	}
	adv, ret = opZeros(b.Mask), opZeros(b.Mask)
	for i, row := range b.Mask {
		var nextV, nextA float64 // at the next valid token; 0 past the end
		for t := len(row) - 1; t >= 0; t-- {
			if row[t] == 0 {
				continue
			}
			v := 0.0
			if b.Values != nil {
				v = b.Values[i][t]
			}
			lambda := o.Lambda
			if b.Values == nil {
				lambda = 1 // no critic: the Monte-Carlo discounted return
			}
			delta := r[i][t] + o.Gamma*nextV - v
			a := delta + o.Gamma*lambda*nextA
			adv[i][t], ret[i][t] = a, a+v
			nextV, nextA = v, a
		}
	}
	return adv, ret, nil
}

// Loss is PPO's clipped surrogate, token-mean over Mask (or NormTokens).
func (o *RTO) Loss(b *Batch) (Result, error) {
	if err := opCheckBatch(b, "old_logp", "advantages"); err != nil {
		return Result{}, err
	}
	res := Result{GradLogP: opZeros(b.Mask)}
	valid, ratioSum, clipped := opSurrogate(b, b.Advantages, o.Clip, nil, &res.Loss, res.GradLogP)
	ntok := b.NormTokens
	if ntok <= 0 {
		ntok = valid
	}
	opScale(&res.Loss, res.GradLogP, ntok)
	v := math.Max(valid, 1)
	res.Metrics = map[string]float64{"ratio_mean": ratioSum / v, "clip_frac": clipped / v, "tokens": valid}
	return res, nil
}
