package objective

import "fmt"

// NLPO (Ramamurthy et al., "Is Reinforcement Learning (Not) for Natural Language Processing?",
// RL4LMs / GRUE, arXiv 2210.01241) is PPO whose action space is masked: a masking policy, a copy of
// the policy refreshed every mask_sync_every RL steps, keeps at each position only its top-p
// nucleus (RL4LMs "learned_top_p": tokens sorted by the masking policy's probability, kept while
// the cumulative mass before them is ≤ mask_top_p, the first always, stop tokens always). The policy
// samples from its own distribution renormalised over that nucleus, and its log-probs (π_old and
// the trained π) are normalised over the same nucleus: log π_N(a) = z_a − log Σ_{v∈N} e^{z_v}.
//
// On the objective's arrays NLPO is PPO: the masking enters through the log-probs the trainer
// computes (train/nlpo.go), so the loss, GAE and critic are ppo's.

// NLPOParams configure nlpo: ppo's, plus the masking policy's nucleus and refresh interval.
type NLPOParams struct {
	PPOParams
	MaskTopP      float64 `param:"mask_top_p"`      // RL4LMs top_mask
	MaskSyncEvery int     `param:"mask_sync_every"` // RL4LMs target_update_iterations
}

// ActionMaskConfig tells the trainer how to mask the policy's action space (nlpo).
type ActionMaskConfig struct {
	TopP      float64 // the masking policy's nucleus mass, in (0, 1]
	SyncEvery int     // the masking policy is the policy as it was before RL steps 1, 1+SyncEvery, …
}

// ActionMasker is implemented by objectives whose policy acts on a masked action space (nlpo).
type ActionMasker interface {
	ActionMask() (ActionMaskConfig, bool)
}

// ActionMask implements ActionMasker.
func (s *Surrogate) ActionMask() (ActionMaskConfig, bool) {
	if s.mask == nil {
		return ActionMaskConfig{}, false
	}
	return *s.mask, true
}

// ppoDefaults are ppo's registered parameter values.
func ppoDefaults() PPOParams {
	return PPOParams{PolicyParams: policy(func(p *PolicyParams) { p.DualClip, p.KLIn, p.KLEstimator = 3, "reward", KLk1 }), Gamma: 1, Lambda: 1, Whiten: true,
		ValueClip: 0.5, VFCoef: 0.5}
}

// finishPPO sets ppo's GAE and critic on s.
func finishPPO(c *PPOParams, s *Surrogate) error {
	s.adv.gamma, s.adv.lambda, s.adv.whiten = c.Gamma, c.Lambda, c.Whiten
	if !(c.ValueClip > 0) || !(c.VFCoef >= 0) {
		return fmt.Errorf("value_clip=%v, vf_coef=%v: want value_clip > 0 and vf_coef >= 0", c.ValueClip, c.VFCoef)
	}
	s.critic = &CriticConfig{VFCoef: c.VFCoef, ValueClip: c.ValueClip}
	return nil
}

func init() {
	// Defaults: RL4LMs' NLPO configs (top_mask 0.9, target_update_iterations 20), ppo's otherwise.
	registerSurrogate("nlpo", "NLPO: PPO on the action space masked to a periodically synced masking policy's top-p nucleus (mask_top_p, mask_sync_every)",
		NLPOParams{PPOParams: ppoDefaults(), MaskTopP: 0.9, MaskSyncEvery: 20},
		func() *Surrogate { return &Surrogate{adv: advConfig{kind: advGAE}, Ratio: RatioToken, Gate: GateClip} },
		func(c *NLPOParams, s *Surrogate) (Objective, error) {
			if err := finishPPO(&c.PPOParams, s); err != nil {
				return nil, err
			}
			if !(c.MaskTopP > 0 && c.MaskTopP <= 1) || c.MaskSyncEvery < 1 {
				return nil, fmt.Errorf("mask_top_p=%v, mask_sync_every=%d: want mask_top_p in (0, 1] and mask_sync_every >= 1", c.MaskTopP, c.MaskSyncEvery)
			}
			s.mask = &ActionMaskConfig{TopP: c.MaskTopP, SyncEvery: c.MaskSyncEvery}
			return nil, nil
		})
}
