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
	DPOScale  float64 `param:"dpo_reward_scale"`     // β1 (0.05); <= 0 means unscaled, as in the authors' code
	DPOClip   float64 `param:"dpo_reward_clip"`      // c (0.05); <= 0 disables the clip
	KLCoef    float64 `param:"kl_coef"`              // β2, init_kl_coef (0.01)
	RewardMax float64 `param:"reward_clip"`          // clamp of the reward-model score (10); <= 0 disables
	Gamma     float64 `param:"gamma"`                // GAE γ (1)
	Lambda    float64 `param:"lambda"`               // GAE λ (0.95)
	Clip      float64 `param:"clip"`                 // PPO clip ε (0.2)
	Normalize bool    `param:"normalize_advantages"` // whiten advantages over the batch's valid tokens (OpenRLHF's PPO default)
	// Critic (the trainer's value head, as ppo's) instead of Monte-Carlo returns; its clipped value
	// loss, token-mean, enters the loss times vf_coef.
	Critic    bool    `param:"critic"`
	ValueClip float64 `param:"value_clip"`
	VFCoef    float64 `param:"vf_coef"`
}

func init() {
	RegisterTyped("rto", "Reinforced Token Optimization: DPO-model token rewards (token_rewards) + KL + terminal RM score, GAE, PPO clip",
		RTO{DPOScale: 0.05, DPOClip: 0.05, KLCoef: 0.01, RewardMax: 10, Gamma: 1, Lambda: 0.95, Clip: 0.2, Normalize: true,
			ValueClip: 0.5, VFCoef: 0.5},
		func(o RTO) (Objective, error) {
			switch {
			case o.Gamma < 0 || o.Gamma > 1 || o.Lambda < 0 || o.Lambda > 1:
				return nil, fmt.Errorf("gamma=%g, lambda=%g: want values in [0, 1]", o.Gamma, o.Lambda)
			case o.Clip <= 0:
				return nil, fmt.Errorf("clip=%g: want a positive number", o.Clip)
			case o.Critic && (!(o.ValueClip > 0) || !(o.VFCoef >= 0)):
				return nil, fmt.Errorf("value_clip=%v, vf_coef=%v: want value_clip > 0 and vf_coef >= 0", o.ValueClip, o.VFCoef)
			}
			return &o, nil
		})
}

// DPOTokenRewards is the DPO part of RTO's reward, clip(β1·(lpDpo − lpRef), −c, c)·M, for
// Batch.TokenRewards. dpoLogP and refLogP are the DPO model's and the reference model's log-probs of the
// sampled tokens.
func (o *RTO) DPOTokenRewards(dpoLogP, refLogP, mask [][]float64) ([][]float64, error) {
	if err := check(&Batch{Mask: mask, RefLogP: refLogP}, needRef); err != nil {
		return nil, err
	}
	if err := checkMatrix("dpo_logp", dpoLogP, mask, false); err != nil {
		return nil, err
	}
	scale := o.DPOScale
	if scale <= 0 {
		scale = 1
	}
	out := newLike(mask)
	for i, row := range mask {
		for t, m := range row {
			if m == 0 {
				continue
			}
			x := scale * (dpoLogP[i][t] - refLogP[i][t])
			if o.DPOClip > 0 {
				x = math.Min(math.Max(x, -o.DPOClip), o.DPOClip)
			}
			out[i][t] = x
		}
	}
	return out, nil
}

// TokenRewards returns RTO's full per-token reward r[t]: TokenRewards (the DPO part) + the KL term
// −β2·k1(OldLogP, RefLogP) + the clamped score at the last valid token.
func (o *RTO) TokenRewards(b *Batch) ([][]float64, error) {
	if err := check(b, needOld|needRef|needRewards); err != nil {
		return nil, err
	}
	r := newLike(b.Mask)
	for i, row := range b.Mask {
		score := b.Rewards[i]
		if o.RewardMax > 0 {
			score = math.Min(math.Max(score, -o.RewardMax), o.RewardMax)
		}
		for t, m := range row {
			if m == 0 {
				continue
			}
			kl, _ := KL(KLk1, b.OldLogP[i][t], b.RefLogP[i][t])
			r[i][t] = -o.KLCoef * kl
			if b.TokenRewards != nil {
				r[i][t] += b.TokenRewards[i][t]
			}
		}
		if last := lastValid(row); last >= 0 {
			r[i][last] += score
		}
	}
	return r, nil
}

// Advantages returns the GAE advantages over TokenRewards' r[t] (normalised over the valid tokens
// to mean 0 and population std 1, +1e-8 as OpenRLHF, when normalize_advantages). Returns gives the
// critic's targets.
func (o *RTO) Advantages(b *Batch) ([][]float64, error) {
	adv, _, err := o.gae(b)
	if err != nil {
		return nil, err
	}
	if o.Normalize {
		var vals []float64
		for i, row := range b.Mask {
			for t, m := range row {
				if m != 0 {
					vals = append(vals, adv[i][t])
				}
			}
		}
		if len(vals) > 0 {
			mu, sd := mean(vals), std(vals, false)
			for i, row := range b.Mask {
				for t, m := range row {
					if m != 0 {
						adv[i][t] = (adv[i][t] - mu) / (sd + 1e-8)
					}
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

// gae is GAE over r[t] with the critic's values, or, with no critic (Values nil), the Monte-Carlo
// discounted return (V = 0, λ = 1).
func (o *RTO) gae(b *Batch) (adv, ret [][]float64, err error) {
	r, err := o.TokenRewards(b)
	if err != nil {
		return nil, nil, err
	}
	values, lambda := b.Values, o.Lambda
	if values == nil {
		values, lambda = newLike(b.Mask), 1
	}
	adv, ret = GAE(r, values, b.Mask, o.Gamma, lambda)
	return adv, ret, nil
}

// Inputs implements Objective: the DPO model's token rewards, the reference and the reward score.
func (o *RTO) Inputs() []string {
	n := needLogP | needOld | needRef | needRewards | needTokenRewards
	if o.Critic {
		n |= needValues
	}
	return n.names()
}

// CriticConfig implements Critic: the trainer trains a value head when critic=true.
func (o *RTO) CriticConfig() (CriticConfig, bool) {
	return CriticConfig{VFCoef: o.VFCoef, ValueClip: o.ValueClip}, o.Critic
}

// ValueLoss implements Critic: the clipped value loss, token-mean like RTO's policy loss.
func (o *RTO) ValueLoss(values, oldValues, returns, mask [][]float64) (float64, [][]float64, error) {
	return ValueLoss(values, oldValues, returns, mask, o.ValueClip, AggTokenMean, 0)
}

// Loss is PPO's clipped surrogate, token-mean over Mask (or NormTokens).
func (o *RTO) Loss(b *Batch) (Result, error) {
	if err := check(b, needLogP|needOld|needAdv); err != nil {
		return Result{}, err
	}
	loss, grad, acc := policyGradient(b.LogP, b.OldLogP, b.Advantages, tokenMean(b.Mask, b.NormTokens), o.Clip)
	return Result{Loss: loss, GradLogP: grad, Metrics: map[string]float64{
		"ratio_mean": acc.ratioMean(), "clip_frac": acc.clipFrac(), "tokens": acc.n}}, nil
}
