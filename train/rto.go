package train

import (
	"fmt"

	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/objective"
)

// This file gives RTO its dense token rewards: the DPO-trained model's log-probs of the sampled
// tokens against the reference's (reward.dpo_model; the reference is the policy as RL starts, which
// should be the DPO model's own starting point, e.g. a `polo train` DPO run from the same SFT).

// dpoTokenRewarder is implemented by objectives that turn DPO-model log-probs into token rewards (rto).
type dpoTokenRewarder interface {
	DPOTokenRewards(dpoLogP, refLogP, mask [][]float64) ([][]float64, error)
}

// scoreTokenRewards fills ob.TokenRewards from the DPO model (ob.RefLogP must be set).
func (r *runner) scoreTokenRewards(b *rolloutBatch, ids, mask [][]int32, ob *objective.Batch) error {
	tr, ok := r.obj.(dpoTokenRewarder)
	if !ok {
		return fmt.Errorf("objective %s reads token_rewards but does not say how to make them from a DPO model", r.cfg.Algo.Name)
	}
	if r.dpo == nil {
		m, err := model.Load(r.cfg.Reward.DPOModel)
		if err != nil {
			return fmt.Errorf("reward.dpo_model: %w", err)
		}
		if m.Config().VocabSize != r.policy.Config().VocabSize {
			return fmt.Errorf("reward.dpo_model %s has vocab %d, the policy %d; they must share a tokenizer", r.cfg.Reward.DPOModel, m.Config().VocabSize, r.policy.Config().VocabSize)
		}
		r.dpo = m
	}
	lp, _, err := r.dpo.LogProbs(ids, mask)
	if err != nil {
		return err
	}
	ob.TokenRewards, err = tr.DPOTokenRewards(responseValues(b, lp, r.cfg.Sampling.MaxNewTokens), ob.RefLogP, ob.Mask)
	return err
}
